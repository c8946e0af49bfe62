//! The `FEAT` reply (RFC 2389), the same before login (the pre-login process) and after it
//! (the worker's relay, which knows the session's `OPTS MLST` selection): vsftpd's shape
//! (`211-Features:` … `211 End`) with rftpd's extensions. Pure text; no I/O.

/// The whole reply; `mlst` is the ` MLST …` line with the facts; `UTF8` (RFC 2640) only with
/// `utf8`, as vsftpd's `utf8_filesystem`.
pub fn list(tls: bool, utf8: bool, mlst: &str) -> String {
    let mut list = vec![
        " EPRT",
        " EPSV",
        " MDTM",
        " MFMT",
        mlst,
        " PASV",
        " REST STREAM",
        " SIZE",
        " TVFS",
    ];
    if utf8 {
        list.push(" UTF8");
    }
    if tls {
        list.extend([" AUTH TLS", " PBSZ", " PROT"]);
    }
    list.sort_unstable();
    let mut out = String::from("211-Features:\r\n");
    for f in list {
        out.push_str(f);
        out.push_str("\r\n");
    }
    out.push_str("211 End");
    out
}
