//! `rftpd seccomp-probe ROLE ACTION`: install one role's seccomp allow-list in this process,
//! then do one thing — how the test suite proves what each list kills and what it allows.
//!
//! ROLE: `prelogin`, `metrics` (the metrics endpoint) or `worker`. ACTION: a system call the
//! role must never make (`execve`, `ptrace`, `socket-inet`, `socket-inet6`, `bind`, `connect`,
//! `open`, `mount`, `unshare`, `setuid`, `fork`), or `work`, the role's normal work (a runtime
//! with timers and sockets; for the worker also threads of the blocking pool, file operations
//! in a temporary directory given as a third argument, and a stand-in listener with its
//! connection queued, made before its filter as the monitor makes them: listen, accept). Exit 0: the action was allowed (whatever its result);
//! killed by SIGSYS: the filter refused it. It gives its caller nothing: it only restricts
//! itself, and it is hidden from the usage text.

use std::process::ExitCode;

use super::seccomp::{self, Role};

pub fn main(args: &[String]) -> ExitCode {
    let (role, action) = match (args.first().map(String::as_str), args.get(1)) {
        (Some("prelogin"), Some(a)) => (Role::Prelogin, a.as_str()),
        (Some("metrics"), Some(a)) => (Role::Metrics, a.as_str()),
        (Some("worker"), Some(a)) => (Role::Worker, a.as_str()),
        _ => {
            eprintln!("usage: rftpd seccomp-probe prelogin|metrics|worker ACTION [DIR]");
            return ExitCode::from(2);
        }
    };
    let dir = args.get(2).cloned().unwrap_or_else(|| "/tmp".to_owned());
    if let Err(e) = nix::sys::prctl::set_no_new_privs() {
        eprintln!("PR_SET_NO_NEW_PRIVS: {e}");
        return ExitCode::from(1);
    }
    // The worker's stand-in sockets, made (and bound) before the filter as the monitor makes
    // them in the worker's namespace.
    let stand_ins = match (role, action) {
        (Role::Worker, "work") => match stand_in_sockets() {
            Ok(pair) => Some(pair),
            Err(e) => {
                eprintln!("stand-in sockets: {e}");
                return ExitCode::from(1);
            }
        },
        _ => None,
    };
    let spare = match action {
        "bind" | "connect" => nix::sys::socket::socket(
            nix::sys::socket::AddressFamily::Inet,
            nix::sys::socket::SockType::Stream,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            None,
        )
        .ok(),
        _ => None,
    };
    if let Err(e) = seccomp::install(role) {
        eprintln!("{e}");
        return ExitCode::from(1);
    }
    let outcome = match action {
        "execve" => nix::unistd::execv(c"/bin/true", &[c"true"])
            .map(|_| ())
            .map_err(|e| e.to_string()),
        "ptrace" => crate::sys::ptrace_traceme().map_err(|e| e.to_string()),
        "socket-inet" => new_socket(nix::sys::socket::AddressFamily::Inet),
        "socket-inet6" => new_socket(nix::sys::socket::AddressFamily::Inet6),
        "bind" | "connect" => address_call(action, spare),
        "open" => std::fs::File::open("/etc/hostname")
            .map(drop)
            .map_err(|e| e.to_string()),
        "mount" => nix::mount::mount(
            None::<&str>,
            "/",
            None::<&str>,
            nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(|e| e.to_string()),
        "unshare" => {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(|e| e.to_string())
        }
        "setuid" => nix::unistd::setuid(nix::unistd::Uid::from_raw(0)).map_err(|e| e.to_string()),
        "fork" => fork_once(),
        "work" => work(role, &dir, stand_ins),
        other => {
            eprintln!("unknown action {other}");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(()) => println!("allowed: ok"),
        Err(e) => println!("allowed: {e}"),
    }
    ExitCode::SUCCESS
}

fn new_socket(family: nix::sys::socket::AddressFamily) -> Result<(), String> {
    nix::sys::socket::socket(
        family,
        nix::sys::socket::SockType::Stream,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map(drop)
    .map_err(|e| e.to_string())
}

/// `bind` or `connect` of `spare`, a socket made before the filter, to loopback.
fn address_call(action: &str, spare: Option<std::os::fd::OwnedFd>) -> Result<(), String> {
    use nix::sys::socket::SockaddrStorage;
    use std::os::fd::AsRawFd;
    let spare = spare.ok_or("no socket")?;
    let to = SockaddrStorage::from(std::net::SocketAddr::from((
        std::net::Ipv4Addr::LOCALHOST,
        9,
    )));
    let done = if action == "bind" {
        nix::sys::socket::bind(spare.as_raw_fd(), &to)
    } else {
        nix::sys::socket::connect(spare.as_raw_fd(), &to)
    };
    done.map_err(|e| e.to_string())
}

/// A listening socket on loopback with a connection to it in its queue, and that connection's
/// end, as the monitor makes them in the worker's namespace.
fn stand_in_sockets() -> std::io::Result<(std::net::TcpStream, std::net::TcpStream)> {
    let listener = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))?;
    let engine = std::net::TcpStream::connect(listener.local_addr()?)?;
    let listener = std::net::TcpStream::from(std::os::fd::OwnedFd::from(listener));
    Ok((listener, engine))
}

fn fork_once() -> Result<(), String> {
    match crate::sys::fork_single_threaded().map_err(|e| e.to_string())? {
        crate::sys::Forked::Child => std::process::exit(0),
        crate::sys::Forked::Parent(pid) => {
            let _ = nix::sys::wait::waitpid(pid, None);
            Ok(())
        }
    }
}

/// The role's normal work, under its filter; any failure is an error (exit 0 still, but the
/// output says which step failed).
fn work(
    role: Role,
    dir: &str,
    stand_ins: Option<(std::net::TcpStream, std::net::TcpStream)>,
) -> Result<(), String> {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_all();
    if role == Role::Worker {
        builder.max_blocking_threads(4);
    }
    let runtime = builder.build().map_err(|e| format!("runtime: {e}"))?;
    runtime.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // Sockets it was given: a pair, both ways, with a timer.
        let (mut a, mut b) = tokio::net::UnixStream::pair().map_err(|e| format!("pair: {e}"))?;
        a.write_all(b"ping")
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut got = [0u8; 4];
        tokio::time::timeout(std::time::Duration::from_secs(2), b.read_exact(&mut got))
            .await
            .map_err(|_| "read timed out".to_owned())?
            .map_err(|e| format!("read: {e}"))?;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        // Memory (the allocator's mmap for a large block) and randomness (std's hash seeds
        // come from getrandom, as rustls's keys do).
        let big = vec![7u8; 8 << 20];
        let mut seeded = std::collections::HashMap::<u8, u8>::new();
        seeded.insert(big[0], 1);
        drop(big);
        Ok::<(), String>(())
    })?;
    if role != Role::Worker {
        return Ok(());
    }
    if let Some((listener, engine)) = stand_ins {
        runtime.block_on(async {
            // libunftp listens on the stand-in and accepts the queued connection.
            listener
                .set_nonblocking(true)
                .map_err(|e| format!("fcntl: {e}"))?;
            let listener = tokio::net::TcpSocket::from_std_stream(listener)
                .listen(1024)
                .map_err(|e| format!("listen: {e}"))?;
            let (accepted, from) = listener
                .accept()
                .await
                .map_err(|e| format!("accept: {e}"))?;
            if Some(from) != engine.local_addr().ok() {
                return Err(format!("accepted a connection from {from}"));
            }
            drop(accepted);
            Ok::<(), String>(())
        })?;
    }
    runtime.block_on(async {
        // File work through the blocking pool (its threads are started under the filter).
        let path = format!("{dir}/probe-file");
        let renamed = format!("{dir}/probe-renamed");
        let sub = format!("{dir}/probe-dir");
        tokio::fs::write(&path, b"data")
            .await
            .map_err(|e| format!("write file: {e}"))?;
        let back = tokio::fs::read(&path)
            .await
            .map_err(|e| format!("read file: {e}"))?;
        if back != b"data" {
            return Err("file content differs".to_owned());
        }
        tokio::fs::rename(&path, &renamed)
            .await
            .map_err(|e| format!("rename: {e}"))?;
        tokio::fs::metadata(&renamed)
            .await
            .map_err(|e| format!("stat: {e}"))?;
        tokio::fs::create_dir(&sub)
            .await
            .map_err(|e| format!("mkdir: {e}"))?;
        let mut entries = tokio::fs::read_dir(dir)
            .await
            .map_err(|e| format!("readdir: {e}"))?;
        while let Some(_entry) = entries
            .next_entry()
            .await
            .map_err(|e| format!("readdir: {e}"))?
        {}
        tokio::fs::set_permissions(
            &renamed,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .await
        .map_err(|e| format!("chmod: {e}"))?;
        tokio::fs::remove_dir(&sub)
            .await
            .map_err(|e| format!("rmdir: {e}"))?;
        tokio::fs::remove_file(&renamed)
            .await
            .map_err(|e| format!("unlink: {e}"))?;
        Ok(())
    })
}
