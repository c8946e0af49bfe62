//! Build script: export the executable's own `mmap` (src/sys/huge_scratch.rs) in its dynamic
//! symbol table, so that the shared libraries rftpd loads (libcrypt, under PAM) bind to it.
fn main() {
    println!("cargo:rustc-link-arg=-Wl,--export-dynamic-symbol=mmap");
    println!("cargo:rerun-if-changed=build.rs");
}
