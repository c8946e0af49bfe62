//! The packaging, checked from the outside: systemd's own verdict on the unit files, the
//! contents of the Debian package, `packaging/install.sh`, the man pages, and
//! `rftpd import-vsftpd` on several vsftpd.conf files, its output fed to `--check-config`.
//!
//! The real install and the units' behaviour under systemd are in tests/systemd.rs. Std only.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const RFTPD: &str = env!("CARGO_BIN_EXE_rftpd");

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn have(tool: &str) -> bool {
    run("sh", &["-c", &format!("command -v {tool}")])
        .status
        .success()
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "rftpd-packaging-{name}-{}-{nanos}",
            std::process::id()
        ));
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn path(relative: &str) -> PathBuf {
    Path::new(ROOT).join(relative)
}

// ---------------------------------------------------------------------------------------------
// systemd units
// ---------------------------------------------------------------------------------------------

#[test]
fn systemd_analyze_verify_accepts_the_units() {
    if !have("systemd-analyze") {
        eprintln!("SKIPPED: no systemd-analyze here (tests/systemd.rs verifies inside Debian 12)");
        return;
    }
    // The units name /usr/sbin/rftpd; point them at the binary under test so that systemd
    // checks the command lines too.
    let dir = TempDir::new("units");
    for unit in ["rftpd.service", "rftpd.socket"] {
        let text = fs::read_to_string(path(&format!("packaging/{unit}"))).unwrap();
        fs::write(dir.0.join(unit), text.replace("/usr/sbin/rftpd", RFTPD)).unwrap();
    }
    let service = dir.0.join("rftpd.service");
    let socket = dir.0.join("rftpd.socket");
    let out = run(
        "systemd-analyze",
        &[
            "verify",
            "--man=no",
            &service.to_string_lossy(),
            &socket.to_string_lossy(),
        ],
    );
    // verify exits 0 on unknown keys and only prints them: any output is a finding.
    assert!(
        out.status.success() && text(&out).trim().is_empty(),
        "systemd-analyze verify:\n{}",
        text(&out)
    );
}

#[test]
fn the_service_is_type_notify_and_reload_checks_the_config_first() {
    let unit = fs::read_to_string(path("packaging/rftpd.service")).unwrap();
    let lines: Vec<&str> = unit.lines().map(str::trim).collect();
    for expected in [
        "Type=notify",
        "ExecStartPre=/usr/sbin/rftpd --check-config",
        "ExecStart=/usr/sbin/rftpd",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "KillMode=control-group",
        "WantedBy=multi-user.target",
    ] {
        assert!(
            lines.contains(&expected),
            "rftpd.service lacks `{expected}`"
        );
    }
    let check = lines
        .iter()
        .position(|l| *l == "ExecReload=/usr/sbin/rftpd --check-config");
    let hup = lines
        .iter()
        .position(|l| *l == "ExecReload=/bin/kill -HUP $MAINPID");
    assert!(
        check.is_some() && check < hup,
        "reload must check the file before SIGHUP"
    );
    // Settings that would take away what rftpd needs.
    for forbidden in [
        "ProtectHome=",
        "PrivateTmp=yes",
        "ProtectSystem=strict",
        "PrivateUsers=",
    ] {
        assert!(
            !lines.iter().any(|l| l.starts_with(forbidden)),
            "rftpd.service must not set {forbidden} (see packaging/README.md)"
        );
    }
    let socket = fs::read_to_string(path("packaging/rftpd.socket")).unwrap();
    for expected in [
        "ListenStream=0.0.0.0:21",
        "ListenStream=[::]:21",
        "BindIPv6Only=ipv6-only",
    ] {
        assert!(
            socket.lines().any(|l| l.trim() == expected),
            "rftpd.socket lacks {expected}"
        );
    }
}

/// What each process of a session needs (DESIGN.md section 6), and nothing more.
const CAPABILITIES: [&str; 11] = [
    "CAP_NET_BIND_SERVICE", // master: port 21; monitor: connect_from_port_20
    "CAP_SYS_CHROOT",       // pre-login: secure_chroot_dir; worker: the home
    "CAP_SETUID",           // pre-login: nopriv_user; worker: the user
    "CAP_SETGID",           // setgroups, setresgid for both
    "CAP_SETPCAP",          // pre-login: PR_CAPBSET_DROP
    "CAP_DAC_READ_SEARCH",  // monitor: opens 0700 homes as the jail fd
    "CAP_KILL",             // monitor: SIGKILLs children running under other uids
    "CAP_CHOWN",            // monitor: chown_uploads (fchown of the handed-over upload)
    "CAP_AUDIT_WRITE",      // monitor: PAM's audit records
    "CAP_SYS_ADMIN",        // pre-login and worker: unshare(CLONE_NEWNET)
    "CAP_NET_ADMIN",        // pre-login and worker: loopback up in the new namespace
];

#[test]
fn the_bounding_set_is_exactly_what_the_session_processes_need_and_each_is_documented() {
    let unit = fs::read_to_string(path("packaging/rftpd.service")).unwrap();
    let sets: Vec<&str> = unit
        .lines()
        .filter_map(|l| l.trim().strip_prefix("CapabilityBoundingSet="))
        .collect();
    assert_eq!(sets.len(), 1, "one CapabilityBoundingSet= line: {sets:?}");
    let mut listed: Vec<&str> = sets[0].split_whitespace().collect();
    listed.sort_unstable();
    let mut wanted = CAPABILITIES.to_vec();
    wanted.sort_unstable();
    assert_eq!(listed, wanted, "rftpd.service's CapabilityBoundingSet");
    // Each one has its row, with a reason, in packaging/README.md's table.
    let readme = fs::read_to_string(path("packaging/README.md")).unwrap();
    for cap in CAPABILITIES {
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{cap}` |")))
            .unwrap_or_else(|| panic!("packaging/README.md has no table row for {cap}"));
        let reason = row.split('|').nth(2).unwrap_or("").trim();
        assert!(!reason.is_empty(), "{cap}: no reason in {row}");
    }
    // The directory the pre-login process is chrooted into exists at every start.
    assert!(
        unit.lines()
            .any(|l| l.trim() == "ExecStartPre=systemd-tmpfiles --create rftpd.conf"),
        "rftpd.service does not make /run/rftpd/empty before it starts"
    );
    let tmpfiles = fs::read_to_string(path("packaging/tmpfiles.d/rftpd.conf")).unwrap();
    let entries: Vec<Vec<&str>> = tmpfiles
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        entries,
        [
            ["d", "/run/rftpd", "0755", "root", "root", "-"],
            ["d", "/run/rftpd/empty", "0555", "root", "root", "-"],
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// The Debian package
// ---------------------------------------------------------------------------------------------

/// Build the package into `dir` with tests/systemd/build-deb.sh; returns the `.deb`'s path.
/// One build at a time: the tests of this file run in parallel and share cargo-deb's target.
fn build_deb(dir: &TempDir) -> String {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut args = vec![
        path("tests/systemd/build-deb.sh")
            .to_string_lossy()
            .into_owned(),
    ];
    args.push(dir.0.to_string_lossy().into_owned());
    if RFTPD.ends_with("/release/rftpd") {
        args.push("--no-build".into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(args[0], &args[1..]);
    assert!(out.status.success(), "build-deb.sh:\n{}", text(&out));
    let deb = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(deb.ends_with(".deb"), "{deb}");
    deb
}

/// Whether this process runs as root (uid 0), from /proc/self/status.
fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().nth(1))
        == Some("0")
}

#[test]
fn the_debian_package_holds_what_it_should() {
    if !have("dpkg-deb") {
        eprintln!("SKIPPED: no dpkg-deb here");
        return;
    }
    let out_dir = TempDir::new("deb");
    let deb = build_deb(&out_dir);

    // Contents: `dpkg-deb -c` lines end with the path.
    let listing = text(&run("dpkg-deb", &["-c", &deb]));
    let entry = |p: &str| listing.lines().find(|l| l.ends_with(&format!(" {p}")));
    for (file, mode) in [
        ("./usr/sbin/rftpd", "-rwxr-xr-x"),
        ("./etc/rftpd.toml", "-rw-r--r--"),
        ("./etc/pam.d/rftpd", "-rw-r--r--"),
        ("./usr/lib/systemd/system/rftpd.service", "-rw-r--r--"),
        ("./lib/systemd/system/rftpd.socket", "-rw-r--r--"),
        ("./usr/share/man/man8/rftpd.8.gz", "-rw-r--r--"),
        ("./usr/share/man/man5/rftpd.toml.5.gz", "-rw-r--r--"),
        ("./usr/share/rftpd/ftpusers", "-rw-r--r--"),
        ("./usr/lib/tmpfiles.d/rftpd.conf", "-rw-r--r--"),
        ("./usr/share/doc/rftpd/copyright", "-rw-r--r--"),
        ("./usr/share/doc/rftpd/README.md", "-rw-r--r--"),
        ("./etc/logrotate.d/rftpd", "-rw-r--r--"),
        ("./etc/fail2ban/filter.d/rftpd.conf", "-rw-r--r--"),
        ("./etc/fail2ban/jail.d/rftpd.conf", "-rw-r--r--"),
    ] {
        let line = entry(file).unwrap_or_else(|| panic!("{file} not in the package:\n{listing}"));
        assert!(line.starts_with(mode), "{file}: {line}");
        assert!(
            line.contains(" 0/0 ") || line.contains(" root/root "),
            "{line}"
        );
    }
    // Not shipped: /etc/ftpusers belongs to no FTP server alone (postinst creates it).
    assert!(
        !listing.contains("./etc/ftpusers"),
        "/etc/ftpusers shipped:\n{listing}"
    );

    // Control fields.
    let field = |name: &str| {
        text(&run("dpkg-deb", &["-f", &deb, name]))
            .trim()
            .to_owned()
    };
    assert_eq!(field("Package"), "rftpd");
    let depends = field("Depends");
    for dep in [
        "libc6",
        "libpam0g",
        "libpam-modules",
        "libpam-runtime",
        "adduser",
    ] {
        assert!(depends.contains(dep), "Depends: {depends}");
    }
    assert_eq!(field("Section"), "net");
    assert!(field("Provides").contains("ftp-server"));

    // Maintainer scripts and conffiles.
    let control = TempDir::new("control");
    let out = run("dpkg-deb", &["-e", &deb, &control.0.to_string_lossy()]);
    assert!(out.status.success(), "{}", text(&out));
    let read = |name: &str| fs::read_to_string(control.0.join(name)).unwrap_or_default();
    let mut conffiles: Vec<String> = read("conffiles").lines().map(str::to_owned).collect();
    conffiles.sort();
    assert_eq!(
        conffiles,
        [
            "/etc/fail2ban/filter.d/rftpd.conf",
            "/etc/fail2ban/jail.d/rftpd.conf",
            "/etc/logrotate.d/rftpd",
            "/etc/pam.d/rftpd",
            "/etc/rftpd.toml"
        ]
    );
    let postinst = read("postinst");
    assert!(
        postinst.contains("deb-systemd-helper enable rftpd.service"),
        "{postinst}"
    );
    assert!(
        postinst.contains("deb-systemd-invoke $_dh_action rftpd.service"),
        "{postinst}"
    );
    assert!(postinst.contains("/usr/share/rftpd/ftpusers"), "{postinst}");
    assert!(!postinst.contains("#DEBHELPER#"));
    // The socket is not enabled on install: only an earlier admin choice is restored.
    assert!(!postinst.contains("start rftpd.socket"), "{postinst}");
    assert!(read("prerm").contains("deb-systemd-invoke stop rftpd.service"));
    let postrm = read("postrm");
    assert!(
        postrm.contains("deb-systemd-helper purge rftpd.service"),
        "{postrm}"
    );
    assert!(
        postrm.contains("deb-systemd-helper purge rftpd.socket"),
        "{postrm}"
    );
    for script in ["postinst", "prerm", "postrm"] {
        let out = run("sh", &["-n", &control.0.join(script).to_string_lossy()]);
        assert!(out.status.success(), "{script}: {}", text(&out));
    }

    // /etc/rftpd.toml in the package is config/rftpd.toml itself.
    let tree = TempDir::new("tree");
    let out = run("dpkg-deb", &["-x", &deb, &tree.0.to_string_lossy()]);
    assert!(out.status.success(), "{}", text(&out));
    let same = |a: &str, b: &str| fs::read(tree.0.join(a)).unwrap() == fs::read(path(b)).unwrap();
    assert!(same("etc/rftpd.toml", "config/rftpd.toml"));
    assert!(same("etc/pam.d/rftpd", "packaging/pam.d/rftpd"));
    assert!(same("usr/share/rftpd/ftpusers", "packaging/ftpusers"));
    assert!(same(
        "usr/lib/tmpfiles.d/rftpd.conf",
        "packaging/tmpfiles.d/rftpd.conf"
    ));
    let out = run(
        &tree.0.join("usr/sbin/rftpd").to_string_lossy(),
        &["--version"],
    );
    assert!(text(&out).starts_with("rftpd "), "{}", text(&out));
}

/// The package's maintainer scripts, run for real but in a private mount namespace: `/etc` is
/// a copy of the host's (without any `rftpd` account), `/run` and `/var` are empty tmpfs, so
/// neither the account nor the directories reach the host. Prints `key=value` lines.
const MAINTAINER_SCRIPTS_IN_A_SANDBOX: &str = r#"
set -eu
control=$1 tree=$2 scratch=$3
cp -a /etc "$scratch/etc"
for db in passwd group shadow gshadow; do
    if [ -e "$scratch/etc/$db" ]; then sed -i '/^rftpd:/d' "$scratch/etc/$db"; fi
done
# What dpkg would have unpacked before postinst runs, where the scripts look for it.
mkdir -p "$scratch/etc/tmpfiles.d"
cp "$tree/usr/lib/tmpfiles.d/rftpd.conf" "$scratch/etc/tmpfiles.d/rftpd.conf"
[ -e "$scratch/etc/ftpusers" ] || cp "$tree/usr/share/rftpd/ftpusers" "$scratch/etc/ftpusers"
exec unshare --mount --propagation private sh -eu -c '
    control=$1 scratch=$2
    mount --bind "$scratch/etc" /etc
    mount -t tmpfs tmpfs /run
    mount -t tmpfs tmpfs /var
    echo "before=$(getent passwd rftpd || echo none)"
    sh "$control/postinst" configure >/dev/null
    echo "passwd=$(getent passwd rftpd || echo none)"
    echo "group=$(getent group rftpd || echo none)"
    echo "run=$(stat -c "%a %U:%G" /run/rftpd)"
    echo "empty=$(stat -c "%a %U:%G" /run/rftpd/empty)"
    echo "empty-entries=$(ls -A /run/rftpd/empty | wc -l)"
    rmdir /run/rftpd/empty
    sh "$control/postinst" configure >/dev/null
    echo "again=$(getent passwd rftpd | wc -l) $(stat -c "%a" /run/rftpd/empty)"
    sh "$control/postrm" remove >/dev/null
    echo "after-remove=$(getent passwd rftpd || echo none)"
    sh "$control/postrm" purge >/dev/null
    echo "after-purge=$(getent passwd rftpd || echo none)"
    echo "group-after-purge=$(getent group rftpd || echo none)"
    echo "run-after-purge=$(test -e /run/rftpd && echo present || echo none)"
' sh "$control" "$scratch"
"#;

#[test]
fn postinst_creates_the_rftpd_system_account_and_its_empty_chroot_and_purge_removes_them() {
    if !(is_root() && have("dpkg-deb") && have("unshare") && have("adduser")) {
        let why = "needs root, dpkg-deb, unshare and adduser (tests/systemd.rs covers it too)";
        assert!(std::env::var_os("CI").is_none(), "cannot run here: {why}");
        eprintln!("SKIPPED: {why}");
        return;
    }
    let out_dir = TempDir::new("deb-scripts");
    let deb = build_deb(&out_dir);
    let control = TempDir::new("scripts-control");
    let tree = TempDir::new("scripts-tree");
    let scratch = TempDir::new("scripts-sandbox");
    for (flag, dir) in [("-e", &control), ("-x", &tree)] {
        let out = run("dpkg-deb", &[flag, &deb, &dir.0.to_string_lossy()]);
        assert!(out.status.success(), "{}", text(&out));
    }
    let out = run(
        "sh",
        &[
            "-c",
            MAINTAINER_SCRIPTS_IN_A_SANDBOX,
            "sh",
            &control.0.to_string_lossy(),
            &tree.0.to_string_lossy(),
            &scratch.0.to_string_lossy(),
        ],
    );
    let report = text(&out);
    assert!(out.status.success(), "maintainer scripts:\n{report}");
    let value = |key: &str| {
        report
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key}= in:\n{report}"))
            .to_owned()
    };
    assert_eq!(value("before"), "none", "{report}");

    // rftpd:x:UID:GID:GECOS:/nonexistent:/usr/sbin/nologin, a system uid, its own group.
    let passwd = value("passwd");
    let fields: Vec<&str> = passwd.split(':').collect();
    assert_eq!(fields.len(), 7, "{passwd}");
    assert_eq!(fields[0], "rftpd");
    let uid: u32 = fields[2].parse().unwrap();
    assert!(uid > 0 && uid < 1000, "not a system uid: {passwd}");
    assert_eq!(fields[5], "/nonexistent", "a home: {passwd}");
    assert_eq!(fields[6], "/usr/sbin/nologin", "a login shell: {passwd}");
    let group = value("group");
    assert!(
        group.starts_with(&format!("rftpd:x:{}:", fields[3])),
        "the account's group is not its own rftpd group: {passwd} / {group}"
    );
    assert!(
        !scratch.0.join("nonexistent").exists() && !Path::new("/nonexistent").exists(),
        "a home directory was made"
    );

    // secure_chroot_dir: empty, root's, nobody may write into it.
    assert_eq!(value("run"), "755 root:root");
    assert_eq!(value("empty"), "555 root:root");
    assert_eq!(value("empty-entries"), "0");
    // A second configure (an upgrade) keeps the one account and remakes a removed directory.
    assert_eq!(value("again"), "1 555");
    // `remove` keeps the account (a reinstall finds it again); only `purge` removes it.
    assert_eq!(value("after-remove"), passwd);
    assert_eq!(value("after-purge"), "none");
    assert_eq!(value("group-after-purge"), "none");
    assert_eq!(value("run-after-purge"), "none");
}

#[test]
fn the_default_ftpusers_is_debians_list() {
    let text = fs::read_to_string(path("packaging/ftpusers")).unwrap();
    let users: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    assert_eq!(
        users,
        [
            "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp",
            "nobody"
        ]
    );
    let pam = fs::read_to_string(path("packaging/pam.d/rftpd")).unwrap();
    assert!(pam.contains("file=/etc/ftpusers onerr=fail"), "{pam}");
}

// ---------------------------------------------------------------------------------------------
// install.sh
// ---------------------------------------------------------------------------------------------

#[test]
fn install_sh_installs_keeps_configuration_and_uninstalls() {
    let dest = TempDir::new("install");
    let d = dest.0.to_string_lossy().into_owned();
    let script = path("packaging/install.sh").to_string_lossy().into_owned();
    let install = |extra: &[&str]| {
        let mut args = vec!["--destdir", d.as_str()];
        args.extend_from_slice(extra);
        run(&script, &args)
    };
    let out = install(&["--binary", RFTPD]);
    assert!(out.status.success(), "{}", text(&out));
    let installed = [
        "usr/sbin/rftpd",
        "etc/rftpd.toml",
        "etc/pam.d/rftpd",
        "etc/ftpusers",
        "usr/local/lib/systemd/system/rftpd.service",
        "usr/local/lib/systemd/system/rftpd.socket",
        "usr/local/lib/tmpfiles.d/rftpd.conf",
        "usr/local/share/man/man8/rftpd.8",
        "usr/local/share/man/man5/rftpd.toml.5",
    ];
    for file in installed {
        assert!(dest.0.join(file).is_file(), "{file} not installed");
    }
    assert_eq!(
        fs::read(dest.0.join("etc/rftpd.toml")).unwrap(),
        fs::read(path("config/rftpd.toml")).unwrap()
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(dest.0.join("usr/sbin/rftpd"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);

    // A second install keeps the admin's configuration and ftpusers.
    fs::write(dest.0.join("etc/rftpd.toml"), "listen_port = 2121\n").unwrap();
    fs::write(dest.0.join("etc/ftpusers"), "root\nmallory\n").unwrap();
    let out = install(&["--binary", RFTPD]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("keeping"), "{}", text(&out));
    assert_eq!(
        fs::read_to_string(dest.0.join("etc/rftpd.toml")).unwrap(),
        "listen_port = 2121\n"
    );
    assert_eq!(
        fs::read_to_string(dest.0.join("etc/ftpusers")).unwrap(),
        "root\nmallory\n"
    );

    // --uninstall keeps the configuration; --purge removes it; ftpusers always stays.
    let out = install(&["--uninstall"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!dest.0.join("usr/sbin/rftpd").exists());
    assert!(
        !dest
            .0
            .join("usr/local/lib/systemd/system/rftpd.service")
            .exists()
    );
    assert!(!dest.0.join("usr/local/lib/tmpfiles.d/rftpd.conf").exists());
    assert!(dest.0.join("etc/rftpd.toml").exists());
    let out = install(&["--uninstall", "--purge"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!dest.0.join("etc/rftpd.toml").exists());
    assert!(!dest.0.join("etc/pam.d/rftpd").exists());
    assert!(dest.0.join("etc/ftpusers").exists());

    // Mistakes are refused.
    assert!(
        !install(&["--binary", "/nonexistent/rftpd"])
            .status
            .success()
    );
    assert_eq!(run(&script, &["--purge"]).status.code(), Some(2));
    assert_eq!(run(&script, &["--bogus"]).status.code(), Some(2));
}

// ---------------------------------------------------------------------------------------------
// Man pages
// ---------------------------------------------------------------------------------------------

#[test]
fn the_man_pages_format_without_warnings() {
    if !have("groff") {
        eprintln!("SKIPPED: no groff here");
        return;
    }
    for page in ["packaging/man/rftpd.8", "packaging/man/rftpd.toml.5"] {
        let out = run(
            "groff",
            &["-man", "-ww", "-z", "-Tutf8", &path(page).to_string_lossy()],
        );
        assert!(
            out.status.success() && text(&out).trim().is_empty(),
            "{page}:\n{}",
            text(&out)
        );
    }
}

#[test]
fn the_man_page_documents_every_key_of_the_shipped_config() {
    // src/import/tests.rs checks the man page against the program's own keys and defaults; this
    // checks it against the shipped file, key by key, value by value.
    let page = fs::read_to_string(path("packaging/man/rftpd.toml.5")).unwrap();
    let config = fs::read_to_string(path("config/rftpd.toml")).unwrap();
    let mut checked = 0;
    for line in config.lines() {
        let commented = line.trim_start().starts_with('#');
        let body = line.trim_start().trim_start_matches('#').trim();
        let Some((key, value)) = body.split_once(" = ") else {
            continue;
        };
        // `# key = value` lines are unset keys; other comments may contain " = " too.
        let scalar = value == "true"
            || value == "false"
            || (value.len() > 1 && value.starts_with('"') && value.ends_with('"'))
            || value.starts_with("0o")
            || value.parse::<i64>().is_ok();
        if !scalar
            || !key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            continue;
        }
        let entry = format!(".TP\n.B {key}\n");
        let Some(at) = page.find(&entry) else {
            panic!("rftpd.toml.5 has no entry for `{key}`");
        };
        let rest = &page[at + entry.len()..];
        let section = &rest[..rest
            .find("\n.TP\n")
            .or(rest.find("\n.SH"))
            .unwrap_or(rest.len())];
        let stated = section
            .lines()
            .find_map(|l| l.strip_prefix("Default: "))
            .unwrap_or_else(|| panic!("`{key}`: no Default: line"));
        if key == "xferlog_enable" {
            // The one key the shipped file sets unlike the default (vsftpd's NO, Debian's YES):
            // the man page says both.
            assert!(
                stated.starts_with("\\fBfalse\\fR") && section.contains("sets\n.BR true"),
                "`{key}`: {section}"
            );
        } else if commented {
            assert!(
                stated.starts_with("unset"),
                "`{key}` is unset in the config: {stated}"
            );
        } else {
            let shown = format!("\\fB{}\\fR", value.replace('-', "\\-"));
            assert!(
                stated.starts_with(&shown),
                "`{key}`: config {value}, man page {stated}"
            );
        }
        checked += 1;
    }
    assert!(
        checked >= 20,
        "only {checked} keys found in config/rftpd.toml"
    );
}

// ---------------------------------------------------------------------------------------------
// rftpd import-vsftpd
// ---------------------------------------------------------------------------------------------

/// Import `file`, save the output, and check it with `rftpd --check-config`.
fn import_and_check(file: &Path) -> (Output, String) {
    common::ensure_service_account();
    let out = run(RFTPD, &["import-vsftpd", &file.to_string_lossy()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "import-vsftpd {}:\n{}",
        file.display(),
        text(&out)
    );
    let dir = TempDir::new("import");
    let toml = dir.0.join("rftpd.toml");
    fs::write(&toml, &out.stdout).unwrap();
    let check = run(
        RFTPD,
        &["--check-config", "--config", &toml.to_string_lossy()],
    );
    assert!(
        check.status.success(),
        "--check-config rejects the import of {}:\n{}\n--- output\n{}",
        file.display(),
        text(&check),
        String::from_utf8_lossy(&out.stdout)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, stdout)
}

fn setting<'a>(toml: &'a str, key: &str) -> Option<&'a str> {
    toml.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(" = ")))
}

#[test]
fn debians_vsftpd_conf_imports_and_passes_check_config() {
    let (out, toml) = import_and_check(&path("tests/data/vsftpd-debian.conf"));
    assert_eq!(setting(&toml, "listen"), Some("true"));
    assert_eq!(setting(&toml, "listen_ipv6"), Some("true"));
    assert_eq!(setting(&toml, "pam_service_name"), Some("\"rftpd\""));
    assert_eq!(setting(&toml, "write_enable"), Some("false"));
    assert_eq!(setting(&toml, "local_umask"), Some("0o077"));
    assert!(
        toml.contains("# vsftpd option secure_chroot_dir=/var/run/vsftpd/empty not carried over: ")
    );
    // Nothing in Debian's own file is a mistake.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("left out"), "{stderr}");
}

#[test]
fn the_classic_exercise_imports_and_passes_check_config() {
    let (out, toml) = import_and_check(&path("tests/data/vsftpd-classic.conf"));
    for (key, value) in [
        ("chroot_local_user", "true"),
        ("allow_writeable_chroot", "true"),
        ("write_enable", "true"),
        ("local_umask", "0o022"),
        ("pasv_min_port", "40000"),
        ("pasv_max_port", "40100"),
        ("listen", "true"),
        ("listen_ipv6", "false"),
    ] {
        assert_eq!(setting(&toml, key), Some(value), "{key}:\n{toml}");
    }
    assert!(!String::from_utf8_lossy(&out.stderr).contains("left out"));
}

#[test]
fn a_broken_vsftpd_conf_imports_with_warnings_and_passes_check_config() {
    let (out, toml) = import_and_check(&path("tests/data/vsftpd-invalid.conf"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in [3, 4, 5, 6, 7, 8] {
        assert!(
            stderr.contains(&format!("vsftpd-invalid.conf:{line}: ")),
            "no warning for line {line}:\n{stderr}"
        );
    }
    assert_eq!(
        setting(&toml, "write_enable"),
        Some("true"),
        "the last write_enable wins"
    );
    assert!(toml.contains("# vsftpd option pasv_address=ftp.example.com not carried over: "));
    assert!(toml.contains("Hello \"friends\" \\o/"), "{toml}");
}

#[test]
fn an_unreadable_file_is_exit_1_naming_it() {
    let out = run(RFTPD, &["import-vsftpd", "/nonexistent/vsftpd.conf"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/vsftpd.conf"), "{stderr}");
    assert!(out.stdout.is_empty());
    // Without an argument it reads /etc/vsftpd.conf.
    let out = run(RFTPD, &["import-vsftpd"]);
    if Path::new("/etc/vsftpd.conf").is_file() {
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains("/etc/vsftpd.conf"));
    } else {
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("/etc/vsftpd.conf"));
    }
    assert_eq!(
        run(RFTPD, &["import-vsftpd", "a", "b"]).status.code(),
        Some(2)
    );
}
