//! `user_config_dir`: the monitor reads one user's file after PAM accepted the login and
//! returns the settings that govern that session.
//!
//! Root, outside any jail, in the monitor only. vsftpd's rules, made stricter: the name must
//! be a plain name ([`plain_user_name`]); the directory must be root's and not writable by
//! group or others (whoever can write it could delete a user's file, and so widen that user's
//! rights to the server's); the file is opened in that directory with `O_NOFOLLOW` (a symlink
//! is refused), and must be a regular file owned by root, not writable by group or others,
//! and small. A missing file means no overrides (vsftpd). Any other problem refuses the login
//! with the reason; it never falls back to the server's (wider) settings.
//!
//! What it must never do: read anything but `<user_config_dir>/<name>`, follow a symlink,
//! block on a FIFO, use a name that is not plain as a path, or let a user's file set a key
//! that is not per-session (`Config::with_user_file` refuses those).

use std::borrow::Cow;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;

use crate::config::{Config, plain_user_name};

/// Largest per-user file read (64 KiB, as `banner_file`).
const MAX_FILE: u64 = 64 * 1024;

/// The settings of `user`'s session: `config` itself when `user_config_dir` is unset or
/// holds no file for `user`, else `config` with that file applied. `Err` is the reason the
/// login is refused, for the log.
pub fn session_config<'a>(config: &'a Config, user: &str) -> Result<Cow<'a, Config>, String> {
    let Some(dir) = &config.user_config_dir else {
        return Ok(Cow::Borrowed(config));
    };
    // SECURITY: only a plain name becomes a file name; `..` or `a/b` would leave the directory.
    if !plain_user_name(user) {
        return Err("user_config_dir: the login name is not a plain file name".into());
    }
    let path = dir.join(user);
    let Some(text) = read_checked(dir, user)? else {
        return Ok(Cow::Borrowed(config));
    };
    config
        .with_user_file(&text, &path.display().to_string())
        .map(Cow::Owned)
        .map_err(|errors| {
            let each: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
            format!("invalid per-user file: {}", each.join("; "))
        })
}

/// The text of `dir`'s file `name`, `None` if there is none, or why it is refused.
fn read_checked(dir: &Path, name: &str) -> Result<Option<String>, String> {
    let shown = dir.display();
    let dir_fd: OwnedFd = nix::fcntl::open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| format!("cannot open user_config_dir {shown}: {e}"))?;
    let dir_meta = std::fs::File::from(
        dir_fd
            .try_clone()
            .map_err(|e| format!("user_config_dir {shown}: {e}"))?,
    )
    .metadata()
    .map_err(|e| format!("cannot stat user_config_dir {shown}: {e}"))?;
    // SECURITY: whoever may write the directory may remove a user's file (wider rights).
    if dir_meta.uid() != 0 || dir_meta.mode() & 0o022 != 0 {
        return Err(format!(
            "user_config_dir {shown} is not owned by root or is writable by group or others"
        ));
    }
    let shown = dir.join(name);
    let shown = shown.display();
    // SECURITY: O_NOFOLLOW refuses a symlink in the last component; O_NONBLOCK keeps a FIFO
    // from blocking the open (it is then refused as not a regular file).
    let fd: OwnedFd = match nix::fcntl::openat(
        &dir_fd,
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(Errno::ELOOP) => return Err(format!("per-user file {shown} is a symlink")),
        Err(e) => return Err(format!("cannot open per-user file {shown}: {e}")),
    };
    let mut file = std::fs::File::from(fd);
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot stat per-user file {shown}: {e}"))?;
    if let Some(why) = refusal(&meta) {
        return Err(format!("per-user file {shown} {why}"));
    }
    let mut text = String::new();
    file.by_ref()
        .take(MAX_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read per-user file {shown}: {e}"))?;
    if text.len() as u64 > MAX_FILE {
        return Err(format!(
            "per-user file {shown} is longer than {MAX_FILE} bytes"
        ));
    }
    Ok(Some(text))
}

/// Why an open per-user file may not be used, from its metadata.
fn refusal(meta: &std::fs::Metadata) -> Option<&'static str> {
    // SECURITY: only root may write what widens a user's rights (vsftpd's owner check).
    if !meta.file_type().is_file() {
        Some("is not a regular file")
    } else if meta.uid() != 0 {
        Some("is not owned by root")
    } else if meta.mode() & 0o022 != 0 {
        Some("is writable by group or others")
    } else if meta.len() > MAX_FILE {
        Some("is longer than 64 KiB")
    } else {
        None
    }
}
