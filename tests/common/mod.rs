//! Test harness for rftpd's integration tests: real users, real PAM files, the real binary and
//! the real `curl`, all on loopback.
//!
//! Everything a test creates (users, PAM service files, temporary directories, files in /tmp)
//! is owned by a guard that removes it in `Drop`, also when the test panics. When a test fails,
//! the server's log is printed so the server side of the failure is visible.
//!
//! Std only: no extra crates.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The binary under test.
pub const RFTPD: &str = env!("CARGO_BIN_EXE_rftpd");

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

/// `n` random bytes from /dev/urandom.
pub fn rand_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("read /dev/urandom");
    buf
}

/// `n` random lowercase hex digits.
pub fn rand_hex(n: usize) -> String {
    rand_bytes(n)
        .iter()
        .map(|b| char::from(b"0123456789abcdef"[usize::from(b & 0xf)]))
        .collect()
}

/// `n` random characters from [A-Za-z0-9] (safe in URLs without encoding).
pub fn rand_alnum(n: usize) -> String {
    const SET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    rand_bytes(n)
        .iter()
        .map(|b| char::from(SET[usize::from(*b) % SET.len()]))
        .collect()
}

/// A name no other test (or earlier run) uses: `prefix` + 8 hex digits.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}{}", rand_hex(8))
}

/// The name of the running test (the test harness names its threads after the tests).
pub fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("<unknown test>")
        .to_string()
}

/// Effective uid of this process, from /proc (std has no geteuid).
pub fn euid() -> u32 {
    let status = fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status_ids(&status, "Uid:").expect("Uid: line in /proc/self/status")[1]
}

/// Most tests create users, PAM files and jails: they need root. Without it, say so and skip.
pub fn require_root() -> bool {
    if euid() == 0 {
        return true;
    }
    eprintln!(
        "SKIPPED {}: needs root (creates users, PAM files, chroot)",
        test_name()
    );
    false
}

/// Make what rftpd refuses to start without (`nopriv_user`, `secure_chroot_dir` at their
/// defaults), as the Debian package does: the system account `rftpd` and the empty, root-owned
/// directory `/run/rftpd/empty` (mode 0555; `/run/rftpd` 0755). Once per test binary; without
/// root it does nothing (and the server, if started, says what is missing).
pub fn ensure_service_account() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use std::os::unix::fs::{PermissionsExt, chown};
        if euid() != 0 {
            return;
        }
        let quiet = |program: &str, args: &[&str]| {
            Command::new(program)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !quiet("getent", &["passwd", "rftpd"]) {
            // adduser when Debian's is there, else useradd (a concurrent creator is fine too).
            let made = quiet(
                "adduser",
                &[
                    "--system",
                    "--group",
                    "--no-create-home",
                    "--home",
                    "/nonexistent",
                    "--shell",
                    "/usr/sbin/nologin",
                    "rftpd",
                ],
            ) || quiet(
                "useradd",
                &[
                    "--system",
                    "--user-group",
                    "--no-create-home",
                    "--home-dir",
                    "/nonexistent",
                    "--shell",
                    "/usr/sbin/nologin",
                    "rftpd",
                ],
            );
            assert!(
                made || quiet("getent", &["passwd", "rftpd"]),
                "cannot create the rftpd account"
            );
        }
        for (dir, mode) in [("/run/rftpd", 0o755), ("/run/rftpd/empty", 0o555)] {
            let _ = fs::create_dir(dir);
            chown(dir, Some(0), Some(0)).unwrap_or_else(|e| panic!("chown {dir}: {e}"));
            fs::set_permissions(dir, fs::Permissions::from_mode(mode))
                .unwrap_or_else(|e| panic!("chmod {dir}: {e}"));
        }
    });
}

/// Run a command, returning its output; panics only if it cannot be started at all.
pub fn run<I, S>(program: &str, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

/// Poll `f` until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Text for assertion messages.
pub fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Whether `haystack` contains `needle` (bytes).
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Send a signal with kill(1) (std cannot send anything but SIGKILL to a `Child`).
pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

pub fn process_alive(pid: u32) -> bool {
    // A zombie still has a /proc entry; treat it as gone.
    match fs::read_to_string(format!("/proc/{pid}/status")) {
        Ok(s) => !s
            .lines()
            .any(|l| l.starts_with("State:") && l.contains('Z')),
        Err(_) => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Guards for files and directories
// ---------------------------------------------------------------------------------------------

/// A fresh directory `/tmp/rftpd-test-<hex>`, removed with its contents on drop.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new() -> TempDir {
        let path = PathBuf::from(format!("/tmp/rftpd-test-{}", rand_hex(12)));
        fs::create_dir(&path).expect("create temp dir");
        TempDir { path }
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Removes a path (file, symlink or tree) on drop if it exists — for places a test hopes
/// nothing is ever created (e.g. `/tmp/<unique>` targets of escape attempts).
pub struct RemoveOnDrop(pub PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        match fs::symlink_metadata(&self.0) {
            Ok(m) if m.is_dir() => {
                let _ = fs::remove_dir_all(&self.0);
            }
            Ok(_) => {
                let _ = fs::remove_file(&self.0);
            }
            Err(_) => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------------

/// useradd/userdel take the shadow-utils lock; serialize them within this process and retry
/// when another process (another test binary) holds the lock.
static ACCOUNTS: Mutex<()> = Mutex::new(());

/// Hold this while a test looks at directories that useradd/userdel change (e.g. /etc), so
/// other tests in this process do not change them meanwhile.
pub fn accounts_quiet() -> std::sync::MutexGuard<'static, ()> {
    ACCOUNTS.lock().unwrap_or_else(|p| p.into_inner())
}

fn user_exists(name: &str) -> bool {
    passwd_entry(name).is_some()
}

/// `(uid, gid, home)` from /etc/passwd. Read as bytes: another test's account may have a
/// home whose path is not UTF-8 (tests/names.rs).
fn passwd_entry(name: &str) -> Option<(u32, u32, PathBuf)> {
    use std::os::unix::ffi::OsStrExt;
    let passwd = fs::read("/etc/passwd").ok()?;
    passwd.split(|&b| b == b'\n').find_map(|line| {
        let f: Vec<&[u8]> = line.split(|&b| b == b':').collect();
        if f.len() >= 7 && f[0] == name.as_bytes() {
            let number = |b: &[u8]| std::str::from_utf8(b).ok()?.parse().ok();
            Some((
                number(f[2])?,
                number(f[3])?,
                PathBuf::from(OsStr::from_bytes(f[5])),
            ))
        } else {
            None
        }
    })
}

fn accounts_cmd(program: &str, args: &[&str], done: impl Fn() -> bool) -> Output {
    let _lock = ACCOUNTS.lock().unwrap_or_else(|p| p.into_inner());
    let mut last = None;
    // Bounded (50 × 200 ms): concurrent useradd/userdel may hold the passwd lock a while.
    for _ in 0..50 {
        let out = run(program, args);
        if out.status.success() || done() {
            return out;
        }
        last = Some(out);
        std::thread::sleep(Duration::from_millis(200));
    }
    last.expect("at least one attempt")
}

/// A real local account `rft<8 hex>` with a home directory and a random password; removed
/// (with its home and any process it still runs) on drop.
pub struct TestUser {
    pub name: String,
    pub password: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

impl TestUser {
    pub fn create() -> TestUser {
        let name = unique_name("rft");
        let out = accounts_cmd("useradd", &["-m", "-s", "/bin/bash", &name], || {
            user_exists(&name)
        });
        assert!(
            user_exists(&name),
            "useradd {name} failed: {}",
            lossy(&out.stderr)
        );
        let password = rand_alnum(20);
        // From here on the guard exists, so a failure below still removes the account.
        let (uid, gid, home) = passwd_entry(&name).expect("passwd entry of the new user");
        let user = TestUser {
            name,
            password,
            uid,
            gid,
            home,
        };
        let mut child = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run chpasswd");
        child
            .stdin
            .take()
            .expect("chpasswd stdin")
            .write_all(format!("{}:{}\n", user.name, user.password).as_bytes())
            .expect("write to chpasswd");
        let out = child.wait_with_output().expect("wait for chpasswd");
        assert!(
            out.status.success(),
            "chpasswd for {} failed: {}",
            user.name,
            lossy(&out.stderr)
        );
        user
    }

    /// Write a file in the home (or below it), owned by the user, mode 0644.
    pub fn put_file(&self, relative: &str, contents: &[u8]) -> PathBuf {
        let path = self.home.join(relative);
        fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        self.chown(&path);
        path
    }

    /// Make a directory in the home (or below it), owned by the user.
    pub fn put_dir(&self, relative: &str) -> PathBuf {
        let path = self.home.join(relative);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        self.chown(&path);
        path
    }

    /// Give `path` (not following a symlink) to the user.
    pub fn chown(&self, path: &Path) {
        std::os::unix::fs::lchown(path, Some(self.uid), Some(self.gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // Sessions of this user may still be ending; userdel refuses while they run.
        let _ = Command::new("pkill")
            .args(["-KILL", "-u", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // If the test made the home read-only, make sure userdel -r can still remove it.
        let name = self.name.clone();
        let out = accounts_cmd("userdel", &["-r", &self.name], || !user_exists(&name));
        if user_exists(&self.name) {
            eprintln!(
                "warning: userdel -r {} failed: {}",
                self.name,
                lossy(&out.stderr)
            );
        }
        let _ = fs::remove_dir_all(&self.home);
    }
}

// ---------------------------------------------------------------------------------------------
// PAM
// ---------------------------------------------------------------------------------------------

/// The shipped PAM file's shape, used if `packaging/pam.d/rftpd` no longer mentions
/// `/etc/ftpusers` (so the deny list could not be redirected).
const PAM_TEMPLATE: &str = "\
auth\trequired\tpam_listfile.so item=user sense=deny file=/etc/ftpusers onerr=succeed
@include common-account
@include common-session
@include common-auth
auth\trequired\tpam_shells.so
";

/// `/etc/pam.d/rftpd-test-<hex>`: the shipped PAM file with its `pam_listfile` deny list
/// pointed at `/tmp/rftpd-test-ftpusers-<hex>` (the given users plus root). Removed on drop.
pub struct PamService {
    pub name: String,
    pub file: PathBuf,
    pub deny_file: PathBuf,
    /// A `pam_userdb` database of the service's own ([`PamService::userdb`]), removed on drop.
    pub userdb: Option<PathBuf>,
}

impl PamService {
    /// A service name and file paths of its own; nothing written yet.
    fn unwritten() -> PamService {
        let hex = rand_hex(10);
        let name = format!("rftpd-test-{hex}");
        PamService {
            file: PathBuf::from(format!("/etc/pam.d/{name}")),
            deny_file: PathBuf::from(format!("/tmp/rftpd-test-ftpusers-{hex}")),
            userdb: None,
            name,
        }
    }

    /// Virtual users: a service that authenticates and checks accounts with `pam_userdb`
    /// only, against a Berkeley DB hash of `users` (name, password) built with `db_load -T -t
    /// hash` (Debian's `db-util`). The names need not exist in the passwd database.
    pub fn userdb(users: &[(&str, &str)]) -> PamService {
        let mut service = PamService::unwritten();
        let base = PathBuf::from(format!("/tmp/{}-userdb", service.name));
        let db = base.with_extension("db");
        let mut input = String::new();
        for (name, password) in users {
            input.push_str(&format!("{name}\n{password}\n"));
        }
        let mut child = Command::new("db_load")
            .args(["-T", "-t", "hash"])
            .arg(&db)
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run db_load (Debian package db-util; tests/run.sh installs it)");
        child
            .stdin
            .take()
            .expect("db_load stdin")
            .write_all(input.as_bytes())
            .expect("write to db_load");
        let out = child.wait_with_output().expect("wait for db_load");
        assert!(out.status.success(), "db_load: {}", lossy(&out.stderr));
        fs::set_permissions(&db, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("chmod the user database");
        service.userdb = Some(db);
        // pam_userdb adds `.db` to the name it is given.
        let module = format!("pam_userdb.so db={}", base.display());
        fs::write(
            &service.file,
            format!("auth\trequired\t{module}\naccount\trequired\t{module}\n"),
        )
        .expect("write the PAM service file");
        service
    }

    pub fn create(deny_users: &[&str]) -> PamService {
        let service = PamService::unwritten();

        let mut deny = String::from("root\n");
        for user in deny_users {
            deny.push_str(user);
            deny.push('\n');
        }
        fs::write(&service.deny_file, deny).expect("write the PAM deny list");
        // pam_listfile refuses a world-writable list.
        std::os::unix::fs::chown(&service.deny_file, Some(0), Some(0)).expect("chown deny list");
        fs::set_permissions(
            &service.deny_file,
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .expect("chmod deny list");

        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/pam.d/rftpd");
        let template = fs::read_to_string(shipped)
            .ok()
            .filter(|t| t.contains("file=/etc/ftpusers"))
            .unwrap_or_else(|| PAM_TEMPLATE.to_string());
        let text = template.replace(
            "file=/etc/ftpusers",
            &format!("file={}", service.deny_file.display()),
        );
        fs::write(&service.file, text).expect("write the PAM service file");
        service
    }

    /// Append one line (e.g. an extra `session` module) to the service file.
    pub fn append(&self, line: &str) {
        let mut text = fs::read_to_string(&self.file).expect("read the PAM service file");
        text.push_str(line);
        text.push('\n');
        fs::write(&self.file, text).expect("write the PAM service file");
    }
}

impl Drop for PamService {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.file);
        let _ = fs::remove_file(&self.deny_file);
        if let Some(db) = &self.userdb {
            let _ = fs::remove_file(db);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

/// `key = value` lines into a map (comments and blank lines dropped).
fn toml_keys(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// A running `rftpd --config FILE` (the master) with its log collected.
pub struct Server {
    child: Option<Child>,
    log: Arc<Mutex<Vec<String>>>,
    addrs: Vec<SocketAddr>,
    pub dir: TempDir,
    pub config_file: PathBuf,
}

/// How the master is started.
enum Wrap<'a> {
    None,
    /// With an inherited descriptor of this directory.
    InheritDir(&'a Path),
    /// Inside these cgroups (their `cgroup.procs` files).
    Cgroups(&'a [PathBuf]),
}

impl Server {
    /// Start with `RFTPD_LOG=info` (or `$RFTPD_TEST_LOG` when set).
    pub fn start(extra_toml: &str, pam: &PamService) -> Server {
        let filter = std::env::var("RFTPD_TEST_LOG").unwrap_or_else(|_| "info".to_string());
        Server::start_with_log(extra_toml, pam, &filter)
    }

    /// Start with a config of the test's base keys, where any key in `extra_toml` replaces the
    /// base one; wait until it says where it listens.
    pub fn start_with_log(extra_toml: &str, pam: &PamService, log_filter: &str) -> Server {
        Server::launch(extra_toml, pam, log_filter, Wrap::None, &[])
    }

    /// Like [`Server::start`], with `env` added to the master's environment (e.g. `TZ`).
    pub fn start_with_env(extra_toml: &str, pam: &PamService, env: &[(&str, &str)]) -> Server {
        Server::launch(extra_toml, pam, "info", Wrap::None, env)
    }

    /// Like [`Server::start`], but the master starts in the cgroups whose `cgroup.procs` files
    /// are given (it is moved there before it executes), as a service manager would start it.
    pub fn start_in_cgroups(extra_toml: &str, pam: &PamService, procs: &[PathBuf]) -> Server {
        Server::launch(extra_toml, pam, "info", Wrap::Cgroups(procs), &[])
    }

    /// Like [`Server::start`], but the master inherits an open, not close-on-exec, descriptor
    /// (number 7) of `dir` from whoever started it — as a careless init script might pass.
    pub fn start_inheriting_dir(extra_toml: &str, pam: &PamService, dir: &Path) -> Server {
        Server::launch(extra_toml, pam, "info", Wrap::InheritDir(dir), &[])
    }

    fn launch(
        extra_toml: &str,
        pam: &PamService,
        log_filter: &str,
        wrap: Wrap<'_>,
        env: &[(&str, &str)],
    ) -> Server {
        ensure_service_account();
        let mut keys: BTreeMap<String, String> = BTreeMap::new();
        keys.insert("listen".into(), "true".into());
        keys.insert("listen_address".into(), "\"127.0.0.1\"".into());
        keys.insert("listen_port".into(), "0".into());
        keys.insert("pam_service_name".into(), format!("\"{}\"", pam.name));
        for (k, v) in toml_keys(extra_toml) {
            keys.insert(k, v);
        }
        let expected_addrs = usize::from(keys.get("listen").is_some_and(|v| v == "true"))
            + usize::from(keys.get("listen_ipv6").is_some_and(|v| v == "true"));
        let text: String = keys.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();

        let dir = TempDir::new();
        let config_file = dir.join("rftpd.toml");
        fs::write(&config_file, &text).expect("write the server config");

        let mut command = match wrap {
            Wrap::None => Command::new(RFTPD),
            Wrap::Cgroups(procs) => {
                // `exec` keeps the shell's pid: the master is the process moved.
                let mut sh = Command::new("/bin/sh");
                sh.args([
                    "-c",
                    "while [ \"$1\" != -- ]; do echo $$ > \"$1\" || exit 97; shift; done; shift; exec \"$@\"",
                    "sh",
                ])
                .args(procs)
                .arg("--")
                .arg(RFTPD);
                sh
            }
            Wrap::InheritDir(dir) => {
                // `exec` keeps the shell's pid, so the pid is still the master's.
                let mut sh = Command::new("/bin/sh");
                sh.args(["-c", "exec 7<\"$1\"; shift; exec \"$@\"", "sh"])
                    .arg(dir)
                    .arg(RFTPD);
                sh
            }
        };
        let mut child = command
            .arg("--config")
            .arg(&config_file)
            .env("RFTPD_LOG", log_filter)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start rftpd");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("rftpd stderr");
        let sink = log.clone();
        let echo = std::env::var_os("RFTPD_TEST_ECHO").is_some();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if echo {
                    eprintln!("[rftpd] {line}");
                }
                sink.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        });
        let mut server = Server {
            child: Some(child),
            log,
            addrs: Vec::new(),
            dir,
            config_file,
        };

        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let addrs = server.listening_addrs();
            if addrs.len() >= expected_addrs.max(1) {
                server.addrs = addrs;
                break;
            }
            let exited = server
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() >= deadline {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "rftpd did not start listening ({}); config:\n{text}\nlog:\n{}",
                    match exited {
                        Some(status) => format!("exited with {status}"),
                        None => "timed out".to_string(),
                    },
                    server.log().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// Addresses from `listening on ADDR` lines so far.
    fn listening_addrs(&self) -> Vec<SocketAddr> {
        self.log()
            .iter()
            .filter_map(|l| {
                let rest = &l[l.find("listening on ")? + "listening on ".len()..];
                rest.split_whitespace().next()?.parse().ok()
            })
            .collect()
    }

    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The first (IPv4 when `listen` is on) control address.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    pub fn port(&self) -> u16 {
        self.addrs[0].port()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server running").id()
    }

    /// Whether the master is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// All log lines so far (master and sessions).
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn log_contains(&self, needle: &str) -> bool {
        self.log().iter().any(|l| l.contains(needle))
    }

    /// Wait until some log line contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.log_contains(needle))
    }

    /// Wait until some log line contains every one of `needles`; returns that line.
    pub fn wait_log_line(&self, needles: &[&str], timeout: Duration) -> Option<String> {
        let mut found = None;
        wait_until(timeout, || {
            found = self
                .log()
                .into_iter()
                .find(|l| needles.iter().all(|n| l.contains(n)));
            found.is_some()
        });
        found
    }

    /// `ftp://NAME:PASS@127.0.0.1:PORT/path` for the server's first address.
    pub fn ftp_url(&self, user: &TestUser, path: &str) -> String {
        ftp_url_at(self.addr(), &user.name, &user.password, path)
    }

    /// Worker processes (children of session monitors) of this server.
    pub fn workers(&self) -> Vec<u32> {
        session_workers(self.pid())
    }

    /// Monitor processes (children of the master's session spawners).
    pub fn monitors(&self) -> Vec<u32> {
        session_monitors(self.pid())
    }

    /// The master's session spawners (its children: one, two while a reload drains).
    pub fn spawners(&self) -> Vec<u32> {
        children_of(self.pid())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let master = child.id();
            // Session processes outlive the master: stop the master first (so it starts no new
            // spawner), then end the rest, deepest first.
            let mut tree = Vec::new();
            descendants(master, &mut tree);
            signal(master, "TERM");
            let ended = wait_until(Duration::from_secs(3), || {
                matches!(child.try_wait(), Ok(Some(_)))
            });
            if !ended {
                let _ = child.kill();
            }
            let _ = child.wait();
            for pid in tree.iter().rev() {
                signal(*pid, "KILL");
            }
        }
        if std::thread::panicking() {
            // Give the reader thread a moment to collect the last lines.
            std::thread::sleep(Duration::from_millis(100));
            eprintln!("----- rftpd log ({}) -----", test_name());
            for line in self.log() {
                eprintln!("{line}");
            }
            eprintln!("----- end of rftpd log -----");
        }
    }
}

pub fn ftp_url_at(addr: SocketAddr, name: &str, password: &str, path: &str) -> String {
    let host = match addr {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    };
    format!(
        "ftp://{name}:{password}@{host}:{}/{}",
        addr.port(),
        path.trim_start_matches('/')
    )
}

// ---------------------------------------------------------------------------------------------
// curl
// ---------------------------------------------------------------------------------------------

/// `curl -sS --max-time 20 ARGS`.
pub fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run curl")
}

/// curl's exit code (-1 if killed by a signal).
pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// For assertion messages: exit code, stderr and the start of stdout.
pub fn describe(out: &Output) -> String {
    let stdout = lossy(&out.stdout);
    let shown: String = stdout.chars().take(2000).collect();
    format!(
        "exit {:?}\nstderr: {}\nstdout: {}",
        out.status.code(),
        lossy(&out.stderr),
        shown
    )
}

// ---------------------------------------------------------------------------------------------
// A raw FTP control connection
// ---------------------------------------------------------------------------------------------

/// A minimal FTP client for what curl cannot express: holding a session open, PWD, CWD probes,
/// raw paths.
pub struct FtpClient {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    pub greeting: (u16, String),
}

impl FtpClient {
    /// Connect and read the greeting.
    pub fn connect(addr: SocketAddr) -> FtpClient {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("set read timeout");
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .expect("set write timeout");
        let writer = stream.try_clone().expect("clone the control socket");
        let mut client = FtpClient {
            reader: BufReader::new(stream),
            writer,
            greeting: (0, String::new()),
        };
        client.greeting = client
            .read_reply()
            .unwrap_or_else(|e| panic!("greeting from {addr}: {e}"));
        client
    }

    /// Read one (possibly multi-line) reply.
    pub fn read_reply(&mut self) -> io::Result<(u16, String)> {
        let first = self.read_line()?;
        let code: u16 = first.get(..3).and_then(|c| c.parse().ok()).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not an FTP reply: {first:?}"),
            )
        })?;
        let mut text = first.clone();
        if first.as_bytes().get(3) == Some(&b'-') {
            let end = format!("{code} ");
            loop {
                let line = self.read_line()?;
                text.push('\n');
                text.push_str(&line);
                if line.starts_with(&end) {
                    break;
                }
            }
        }
        Ok((code, text))
    }

    /// One reply line; a file name's bytes that are not UTF-8 (rftpd passes them through, as
    /// vsftpd does) are shown as U+FFFD.
    fn read_line(&mut self) -> io::Result<String> {
        let mut line = Vec::new();
        if self.reader.read_until(b'\n', &mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "control connection closed",
            ));
        }
        Ok(lossy(&line).trim_end_matches(['\r', '\n']).to_string())
    }

    /// Send one command line.
    pub fn send(&mut self, line: &str) -> io::Result<()> {
        self.writer.write_all(format!("{line}\r\n").as_bytes())
    }

    /// Send a command and read its reply.
    pub fn try_cmd(&mut self, line: &str) -> io::Result<(u16, String)> {
        self.send(line)?;
        self.read_reply()
    }

    /// Send a command and read its reply; panics if the connection fails.
    pub fn cmd(&mut self, line: &str) -> (u16, String) {
        let shown = if line.starts_with("PASS ") {
            "PASS ***"
        } else {
            line
        };
        self.try_cmd(line)
            .unwrap_or_else(|e| panic!("{shown}: {e}"))
    }

    /// USER + PASS; returns the reply to PASS (or to USER if that was not 331).
    pub fn login(&mut self, user: &str, pass: &str) -> (u16, String) {
        let reply = self.cmd(&format!("USER {user}"));
        if reply.0 != 331 {
            return reply;
        }
        self.cmd(&format!("PASS {pass}"))
    }

    /// Log in and insist on 230.
    pub fn login_ok(&mut self, user: &TestUser) {
        let reply = self.login(&user.name, &user.password);
        assert_eq!(reply.0, 230, "login of {} failed: {reply:?}", user.name);
    }

    /// The path in a `257 "PATH" ...` reply to PWD.
    pub fn pwd(&mut self) -> String {
        let (code, text) = self.cmd("PWD");
        assert_eq!(code, 257, "PWD: {text}");
        quoted_path(&text).unwrap_or_else(|| panic!("no quoted path in {text:?}"))
    }

    /// Everything the server still sends until it closes the connection (or 5 s of silence).
    pub fn read_until_closed(&mut self) -> String {
        let _ = self
            .reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_secs(5)));
        let mut out = Vec::new();
        let _ = self.reader.read_to_end(&mut out);
        lossy(&out)
    }

    /// Open a passive data connection (EPSV, which works on IPv4 and IPv6).
    fn open_data(&mut self) -> io::Result<TcpStream> {
        let (code, text) = self.try_cmd("EPSV")?;
        if code != 229 {
            return Err(io::Error::other(format!("EPSV: {text}")));
        }
        // 229 Entering Extended Passive Mode (|||PORT|)
        let port: u16 = text
            .split("|||")
            .nth(1)
            .and_then(|r| r.split('|').next())
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| io::Error::other(format!("cannot parse {text:?}")))?;
        let mut addr = self.writer.peer_addr()?;
        addr.set_port(port);
        let data = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
        data.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(data)
    }

    /// Wait up to `timeout` for the server to close the connection. Returns what it sent
    /// meanwhile if it closed (EOF or reset), `None` if the connection is still open.
    pub fn wait_closed(&mut self, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        // What the BufReader already holds counts as sent.
        let mut out = self.reader.buffer().to_vec();
        let consumed = out.len();
        self.reader.consume(consumed);
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let _ = self.reader.get_ref().set_read_timeout(Some(left));
            match self.reader.get_mut().read(&mut buf) {
                Ok(0) => return Some(lossy(&out)),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return None;
                }
                Err(_) => return Some(lossy(&out)),
            }
        }
    }

    /// Open a passive data connection with `EPSV` (connected, 10 s read timeout).
    pub fn epsv_data(&mut self) -> io::Result<TcpStream> {
        self.open_data()
    }

    /// Open a passive data connection with `PASV` (connected, 10 s read timeout).
    pub fn pasv_data(&mut self) -> io::Result<TcpStream> {
        let (code, text) = self.try_cmd("PASV")?;
        if code != 227 {
            return Err(io::Error::other(format!("PASV: {text}")));
        }
        let addr =
            pasv_addr(&text).ok_or_else(|| io::Error::other(format!("cannot parse {text:?}")))?;
        let data = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
        data.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(data)
    }

    /// Write raw bytes on the control connection (no line ending added).
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes)
    }

    /// Change how long reads on the control connection wait (`None` = forever).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) {
        let _ = self.reader.get_ref().set_read_timeout(timeout);
    }

    /// The client's end of the control connection.
    pub fn local_addr(&self) -> SocketAddr {
        self.writer
            .local_addr()
            .expect("local address of the control socket")
    }

    /// Run a command that sends data to us (LIST, NLST, RETR). Returns the final reply (or the
    /// first one, if it refused the transfer) and the data received.
    pub fn transfer_in(&mut self, line: &str) -> (u16, String, Vec<u8>) {
        self.try_transfer_in(line)
            .unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    /// [`FtpClient::transfer_in`] that reports a broken connection instead of panicking.
    pub fn try_transfer_in(&mut self, line: &str) -> io::Result<(u16, String, Vec<u8>)> {
        let mut data = self
            .open_data()
            .map_err(|e| io::Error::new(e.kind(), format!("data connection: {e}")))?;
        let first = self.try_cmd(line)?;
        if first.0 >= 300 {
            return Ok((first.0, first.1, Vec::new()));
        }
        let mut bytes = Vec::new();
        let _ = data.read_to_end(&mut bytes);
        drop(data);
        let last = self
            .read_reply()
            .map_err(|e| io::Error::new(e.kind(), format!("final reply: {e}")))?;
        Ok((last.0, last.1, bytes))
    }

    /// Run a command that sends data to the server (STOR, APPE). Returns the final reply.
    pub fn transfer_out(&mut self, line: &str, bytes: &[u8]) -> (u16, String) {
        let mut data = self
            .open_data()
            .unwrap_or_else(|e| panic!("data connection for {line}: {e}"));
        let first = self.cmd(line);
        if first.0 >= 300 {
            return first;
        }
        let _ = data.write_all(bytes);
        drop(data);
        self.read_reply()
            .unwrap_or_else(|e| panic!("final reply to {line}: {e}"))
    }
}

/// The address in a `227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)` reply.
pub fn pasv_addr(text: &str) -> Option<SocketAddr> {
    let inner = &text[text.find('(')? + 1..];
    let inner = &inner[..inner.find(')')?];
    let n: Vec<u8> = inner
        .split(',')
        .map(|v| v.trim().parse().ok())
        .collect::<Option<_>>()?;
    if n.len() != 6 {
        return None;
    }
    let ip = std::net::Ipv4Addr::new(n[0], n[1], n[2], n[3]);
    Some(SocketAddr::from((
        ip,
        u16::from(n[4]) << 8 | u16::from(n[5]),
    )))
}

/// Run a Python 3 script (`python3 -c SCRIPT ARGS…`), killed after 60 s.
pub fn python(script: &str, args: &[&str]) -> Output {
    Command::new("timeout")
        .args(["60", "python3", "-c", script])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run python3")
}

/// `"PATH"` in a 257 reply, with `""` unescaped.
pub fn quoted_path(text: &str) -> Option<String> {
    let start = text.find('"')? + 1;
    let mut out = String::new();
    let mut chars = text[start..].chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' {
            if chars.peek() == Some(&'"') {
                chars.next();
                out.push('"');
            } else {
                return Some(out);
            }
        } else {
            out.push(c);
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// /proc
// ---------------------------------------------------------------------------------------------

fn status_ids(status: &str, key: &str) -> Option<[u32; 4]> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    let ids: Vec<u32> = line[key.len()..]
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    ids.try_into().ok()
}

/// A process's name (`/proc/PID/comm`), empty if it is gone.
pub fn comm(pid: u32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim_end()
        .to_string()
}

/// The parent of a process, from its `PPid:` line.
pub fn ppid_of(pid: u32) -> Option<u32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Direct children of `parent` (from the `PPid:` lines of /proc/*/status).
pub fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out: Vec<u32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| ppid_of(*pid) == Some(parent))
        .collect();
    out.sort_unstable();
    out
}

fn descendants(pid: u32, out: &mut Vec<u32>) {
    for child in children_of(pid) {
        out.push(child);
        descendants(child, out);
    }
}

/// The `comm` of each spawner's template process, the one child of a spawner that is not a
/// session's monitor.
pub const TEMPLATE_COMM: &str = "rftpd-template";

/// Session monitors: children of the master's children (the spawners), but for each
/// spawner's template process.
pub fn session_monitors(master_pid: u32) -> Vec<u32> {
    children_of(master_pid)
        .into_iter()
        .flat_map(spawner_sessions)
        .collect()
}

/// The session monitors one spawner has started: its children but its template process.
pub fn spawner_sessions(spawner: u32) -> Vec<u32> {
    children_of(spawner)
        .into_iter()
        .filter(|p| comm(*p) != TEMPLATE_COMM)
        .collect()
}

/// Session workers: the monitors' children named `rftpd-worker` (one per logged-in session).
pub fn session_workers(master_pid: u32) -> Vec<u32> {
    session_children_named(master_pid, "rftpd-worker")
}

/// Pre-login processes: the monitors' children named `rftpd-prelogin` (one per session).
pub fn session_prelogins(master_pid: u32) -> Vec<u32> {
    session_children_named(master_pid, "rftpd-prelogin")
}

fn session_children_named(master_pid: u32, name: &str) -> Vec<u32> {
    session_monitors(master_pid)
        .into_iter()
        .flat_map(children_of)
        .filter(|pid| comm(*pid) == name)
        .collect()
}

/// `([real, effective, saved, fs] uids, [real, effective, saved, fs] gids)` of a process.
pub fn proc_ids(pid: u32) -> ([u32; 4], [u32; 4]) {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    (
        status_ids(&status, "Uid:").expect("Uid: line"),
        status_ids(&status, "Gid:").expect("Gid: line"),
    )
}

/// Where the process's root directory is (`/proc/PID/root`).
pub fn proc_root(pid: u32) -> PathBuf {
    fs::read_link(format!("/proc/{pid}/root")).unwrap_or_else(|e| panic!("/proc/{pid}/root: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

/// `(uid, gid, permission bits)` of a path (not following symlinks).
pub fn owner_and_mode(path: &Path) -> (u32, u32, u32) {
    let m = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
    (m.uid(), m.gid(), m.mode() & 0o7777)
}

/// The `LIST` line naming `file` (the last field), if any.
pub fn list_line<'a>(listing: &'a str, file: &str) -> Option<&'a str> {
    listing
        .lines()
        .find(|l| l.split_whitespace().last() == Some(file) || l.contains(&format!(" {file} -> ")))
}

/// Whether /proc/net/if_inet6 shows ::1 on lo.
pub fn ipv6_loopback_configured() -> bool {
    fs::read_to_string("/proc/net/if_inet6")
        .map(|t| {
            t.lines().any(|l| {
                l.starts_with("00000000000000000000000000000001") && l.trim_end().ends_with("lo")
            })
        })
        .unwrap_or(false)
}

/// Run `rftpd --config FILE` until it exits (10 s at most); its exit code and all it printed.
pub fn start_expecting_exit(config: &Path) -> (Option<i32>, String) {
    let mut child = Command::new(RFTPD)
        .arg("--config")
        .arg(config)
        .env("RFTPD_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rftpd");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rftpd kept running with {}", config.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut text = String::new();
    let _ = child.stdout.take().unwrap().read_to_string(&mut text);
    let _ = child.stderr.take().unwrap().read_to_string(&mut text);
    (status.code(), text)
}

/// A throw-away self-signed certificate and key (`NAME.pem`, `NAME.key` in `dir`).
pub fn self_signed_pair(dir: &TempDir, name: &str) -> (PathBuf, PathBuf) {
    let cert = dir.join(&format!("{name}.pem"));
    let key = dir.join(&format!("{name}.key"));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(["-days", "1", "-subj", "/CN=localhost"])
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    assert!(out.status.success(), "openssl req: {}", describe(&out));
    (cert, key)
}
