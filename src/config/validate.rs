//! The semantic checks of a typed [`Config`]: [`Config::validate`].
//!
//! What it does: finds every contradiction and out-of-range value (no listener, a bad passive
//! range, a mode above 0o777, an empty PAM service, ...) and checks that the files the
//! configuration depends on (lists, banner, TLS pair) are absolute paths to regular files
//! that can be opened. Errors carry the key; `parse` adds the file and line.
//!
//! What it must never do: read, create or change any file (it only stats and opens), look at
//! anything but the configuration and those files, stop at the first problem, or contain
//! `unsafe` code.

use std::fs::Metadata;
use std::io;
use std::path::Path;

use super::error::{NO_FILE, io_message};
use super::{BANNER_FILE_MAX, Config, ConfigError};

impl Config {
    /// Semantic checks on an already-typed config (also called by [`Config::parse`]).
    /// Errors have `key` set, `file` = `<input>` and no line/column (`parse` fills those in).
    ///
    /// It opens, but does not read, the files the configuration depends on: `chroot_list_file`
    /// with `chroot_list_enable` and `userlist_file` with `userlist_enable` (vsftpd treats a
    /// missing list as fatal), `banner_file` when set (also checking its size), and with
    /// `ssl_enable` `rsa_cert_file` and a non-empty `rsa_private_key_file`. Each must be an
    /// absolute path to a regular file.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let errors = self.problems(Files::Check);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Every semantic problem of this configuration (the body of [`Config::validate`]); with
    /// [`Files::Skip`], the files it names are not looked at (the importer's own check).
    pub(super) fn problems(&self, files: Files) -> Vec<ConfigError> {
        let check_file = |path: &Path, what: &str, kind: &str, because: &str| match files {
            Files::Check => check_file(path, what, kind, because),
            Files::Skip => Ok(None),
        };
        let mut problems = Vec::new();
        let mut add = |key: &str, message: String| {
            problems.push(ConfigError {
                file: NO_FILE.to_owned(),
                line: None,
                column: None,
                key: Some(key.to_owned()),
                message,
                default: false,
            })
        };

        if !self.listen && !self.listen_ipv6 {
            add(
                "listen",
                "`listen` and `listen_ipv6` are both false, so rftpd would accept no connection; \
                 set at least one of them to true"
                    .to_owned(),
            );
        }
        if let Some(banner) = &self.ftpd_banner
            && banner.contains(['\r', '\n', '\0'])
        {
            add(
                "ftpd_banner",
                "must be a single line (no line breaks or NUL characters)".to_owned(),
            );
        }

        let pam = &self.pam_service_name;
        if pam.is_empty() {
            add("pam_service_name", "must not be empty".to_owned());
        } else if pam.contains(['/', '\0']) || pam == "." || pam == ".." {
            add(
                "pam_service_name",
                format!(
                    "{pam:?} is not a service name: it names a file in /etc/pam.d/, \
                     so it must not contain `/`"
                ),
            );
        }

        if let Some(path) = &self.banner_file {
            match check_file(
                path,
                "the banner file",
                "a text file",
                "`banner_file` is set",
            ) {
                Ok(Some(meta)) if meta.len() > BANNER_FILE_MAX => add(
                    "banner_file",
                    format!(
                        "`{}` is {} bytes long; a banner file may be at most {BANNER_FILE_MAX} \
                         bytes (64 KiB)",
                        path.display(),
                        meta.len()
                    ),
                ),
                Ok(_) => {}
                Err(message) => add("banner_file", message),
            }
        }

        if self.userlist_enable
            && let Err(message) = check_file(
                &self.userlist_file,
                "the user list",
                "a list of users",
                "`userlist_enable` is true",
            )
        {
            add("userlist_file", message);
        }

        if self.ban_failed_logins > 0 {
            for (key, value) in [("ban_window", self.ban_window), ("ban_time", self.ban_time)] {
                if value == 0 {
                    add(
                        key,
                        format!(
                            "must be at least 1 while `ban_failed_logins` is {} \
                             (set `ban_failed_logins = 0` to turn banning off)",
                            self.ban_failed_logins
                        ),
                    );
                }
            }
        }

        if self.proxy_protocol && self.proxy_protocol_from.is_empty() {
            add(
                "proxy_protocol_from",
                "is empty while `proxy_protocol` is true: list the load balancers' addresses \
                 (such as [\"192.0.2.10\"]); rftpd reads a PROXY header from those only"
                    .to_owned(),
            );
        }

        let user = &self.ftp_username;
        if user.is_empty() {
            add("ftp_username", "must not be empty".to_owned());
        } else if user.contains('\0') {
            add(
                "ftp_username",
                format!("{user:?} must not contain a NUL character"),
            );
        }
        let guest = &self.guest_username;
        if guest.is_empty() {
            add("guest_username", "must not be empty".to_owned());
        } else if guest.contains(['\0', ':', '/']) {
            add(
                "guest_username",
                format!("{guest:?} is not a user name (no NUL, `:` or `/`)"),
            );
        }
        if let Some(dir) = &self.user_config_dir
            && (!dir.is_absolute() || dir.as_os_str().as_encoded_bytes().contains(&0))
        {
            add(
                "user_config_dir",
                format!(
                    "`{}` must be an absolute path (starting with `/`)",
                    dir.display()
                ),
            );
        }
        let owner = &self.chown_username;
        if owner.is_empty() || owner.contains(['\0', ':', '/']) {
            add(
                "chown_username",
                format!("{owner:?} is not a user name (not empty; no NUL, `:` or `/`)"),
            );
        }
        let nopriv = &self.nopriv_user;
        if nopriv.is_empty() {
            add("nopriv_user", "must not be empty".to_owned());
        } else if nopriv.contains(['\0', ':', '/']) {
            add(
                "nopriv_user",
                format!("{nopriv:?} is not a user name (no NUL, `:` or `/`)"),
            );
        }
        let empty = &self.secure_chroot_dir;
        if !empty.is_absolute() || empty.as_os_str().as_encoded_bytes().contains(&0) {
            add(
                "secure_chroot_dir",
                format!("`{}` must be an absolute path", empty.display()),
            );
        } else if empty.parent().is_none() {
            // SECURITY: a jail in `/` would show the pre-login process the whole filesystem.
            add(
                "secure_chroot_dir",
                "`/` is not an empty directory; use a directory of its own such as \
                 /run/rftpd/empty"
                    .to_owned(),
            );
        }

        // The monitor (root, no chdir) appends to these: a relative path would land wherever
        // the server was started.
        for (key, file) in [
            ("xferlog_file", &self.xferlog_file),
            ("vsftpd_log_file", &self.vsftpd_log_file),
        ] {
            if !file.is_absolute() || file.as_os_str().as_encoded_bytes().contains(&0) {
                add(
                    key,
                    format!("`{}` must be an absolute path", file.display()),
                );
            }
        }

        if let Some(root) = &self.anon_root
            && (!root.is_absolute() || root.as_os_str().as_encoded_bytes().contains(&0))
        {
            add(
                "anon_root",
                format!("`{}` must be an absolute path", root.display()),
            );
        }

        if self.chroot_list_enable
            && let Err(message) = check_file(
                &self.chroot_list_file,
                "the chroot list",
                "a list of users",
                "`chroot_list_enable` is true",
            )
        {
            add("chroot_list_file", message);
        }

        if let Some(root) = &self.local_root
            && (!root.starts_with('/') || root.contains('\0'))
        {
            add(
                "local_root",
                format!("{root:?} must be an absolute path (starting with `/`)"),
            );
        }
        match (&self.user_sub_token, &self.local_root) {
            (Some(token), _) if token.is_empty() => {
                add("user_sub_token", "must not be empty".to_owned());
            }
            (Some(_), None) => add(
                "user_sub_token",
                "is set but `local_root` is not; the token is only replaced in `local_root`"
                    .to_owned(),
            ),
            _ => {}
        }

        for (key, mode) in [
            ("local_umask", self.local_umask),
            ("file_open_mode", self.file_open_mode),
            ("anon_umask", self.anon_umask),
            // SECURITY: no setuid/setgid/sticky bits on a file an anonymous user wrote.
            ("chown_upload_mode", self.chown_upload_mode),
        ] {
            if mode.0 > 0o777 {
                add(
                    key,
                    format!("0o{:o} is too large: at most 0o777 (rwx bits only)", mode.0),
                );
            }
        }

        let (min, max) = (self.pasv_min_port, self.pasv_max_port);
        match (min, max) {
            (0, 0) => {}
            (_, 0) => add(
                "pasv_max_port",
                format!(
                    "must be set too when `pasv_min_port` is set ({min}); \
                     or set both to 0 to let the kernel pick any port"
                ),
            ),
            (0, _) => add(
                "pasv_min_port",
                format!(
                    "must be set too when `pasv_max_port` is set ({max}); \
                     or set both to 0 to let the kernel pick any port"
                ),
            ),
            _ if min > max => add(
                "pasv_min_port",
                format!("{min} is greater than `pasv_max_port` ({max})"),
            ),
            _ => {}
        }

        for (key, pattern) in [
            ("hide_file", &self.hide_file),
            ("deny_file", &self.deny_file),
        ] {
            if let Some(pattern) = pattern
                && !braces_balance(pattern)
            {
                add(
                    key,
                    format!(
                        "{pattern:?} has unbalanced braces: every `{{` needs a matching `}}` \
                         after it, e.g. \"{{*.mp3,*.mov,.private}}\""
                    ),
                );
            }
        }

        for (key, seconds) in [
            ("delay_failed_login", self.delay_failed_login),
            ("ban_window", self.ban_window),
            ("ban_time", self.ban_time),
            ("idle_session_timeout", self.idle_session_timeout),
            ("data_connection_timeout", self.data_connection_timeout),
            ("accept_timeout", self.accept_timeout),
            ("connect_timeout", self.connect_timeout),
            ("login_timeout", self.login_timeout),
        ] {
            if seconds > i64::MAX as u64 {
                add(key, format!("{seconds} is too large"));
            }
        }
        if self.login_timeout == 0 {
            add("login_timeout", "must be at least 1".to_owned());
        }

        if self.ssl_enable {
            if !self.ssl_tlsv1_2 && !self.ssl_tlsv1_3 {
                add(
                    "ssl_tlsv1_2",
                    "`ssl_tlsv1_2` and `ssl_tlsv1_3` are both false, so no TLS version is \
                     left; turn at least one of them on (or turn `ssl_enable` off)"
                        .to_owned(),
                );
            }
            let because = "`ssl_enable` is true";
            if let Err(message) = check_file(
                &self.rsa_cert_file,
                "the certificate file",
                "a PEM file",
                because,
            ) {
                add("rsa_cert_file", message);
            }
            if !self.rsa_private_key_file.as_os_str().is_empty()
                && let Err(message) = check_file(
                    &self.rsa_private_key_file,
                    "the private key file",
                    "a PEM file",
                    because,
                )
            {
                add("rsa_private_key_file", message);
            }
        }
        if self.seccomp_sandbox && !crate::jail::seccomp::SUPPORTED {
            add(
                "seccomp_sandbox",
                "the seccomp allow-lists are written for x86_64 only; set \
                 `seccomp_sandbox = false` on this machine"
                    .to_owned(),
            );
        }
        if self.worker_max_open_files < MIN_WORKER_FILES {
            add(
                "worker_max_open_files",
                format!(
                    "{} is too few: a worker needs at least {MIN_WORKER_FILES} descriptors \
                     (its sockets, runtime and a transfer)",
                    self.worker_max_open_files
                ),
            );
        }
        if self.worker_max_processes < MIN_WORKER_PROCESSES {
            add(
                "worker_max_processes",
                format!(
                    "{} is too few: the worker's threads count (at least \
                     {MIN_WORKER_PROCESSES})",
                    self.worker_max_processes
                ),
            );
        }
        if self.worker_max_memory_mb < MIN_WORKER_MEMORY_MB {
            add(
                "worker_max_memory_mb",
                format!(
                    "{} MiB is too little address space for a worker (at least \
                     {MIN_WORKER_MEMORY_MB})",
                    self.worker_max_memory_mb
                ),
            );
        }
        if self.session_pids_max != 0 && self.session_pids_max < MIN_SESSION_PIDS {
            add(
                "session_pids_max",
                format!(
                    "{} is too few for a session's processes and threads (at least \
                     {MIN_SESSION_PIDS}, or 0 for no limit)",
                    self.session_pids_max
                ),
            );
        }
        if self.session_memory_max_mb != 0 && self.session_memory_max_mb < MIN_SESSION_MEMORY_MB {
            add(
                "session_memory_max_mb",
                format!(
                    "{} MiB is too little for a session (at least {MIN_SESSION_MEMORY_MB}, or \
                     0 for no limit)",
                    self.session_memory_max_mb
                ),
            );
        }
        problems
    }
}

/// The least a worker can run with (its sockets, the runtime's descriptors, a transfer).
const MIN_WORKER_FILES: u32 = 32;
/// A worker's main thread and its blocking pool, with room for the user's other processes.
const MIN_WORKER_PROCESSES: u32 = 16;
/// A worker's runtime, thread stacks and buffers.
const MIN_WORKER_MEMORY_MB: u32 = 128;
/// Monitor, pre-login process, worker and the worker's threads.
const MIN_SESSION_PIDS: u32 = 12;
/// The three processes of a session and a transfer's buffers.
const MIN_SESSION_MEMORY_MB: u32 = 32;

/// Whether [`Config::problems`] looks at the files the configuration names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Files {
    Check,
    Skip,
}

/// Checks a file named in the configuration without reading it: `path` must be absolute and
/// name a regular file that can be opened for reading. Returns its metadata, or the problem:
/// `what` names the file ("the chroot list"), `kind` says what it should be ("a list of
/// users"), `because` why it is needed ("`chroot_list_enable` is true").
fn check_file(
    path: &Path,
    what: &str,
    kind: &str,
    because: &str,
) -> Result<Option<Metadata>, String> {
    let shown = path.display();
    if !path.is_absolute() {
        return Err(format!("`{shown}` must be an absolute path"));
    }
    let cannot_read = |e: io::Error| {
        format!(
            "cannot read {what} `{shown}`: {} (it is required because {because})",
            io_message(&e)
        )
    };
    // Metadata first, so that opening a FIFO cannot block.
    let meta = std::fs::metadata(path).map_err(cannot_read)?;
    if meta.is_dir() {
        return Err(format!("`{shown}` is a directory, not {kind}"));
    }
    if !meta.is_file() {
        return Err(format!("`{shown}` is not a regular file, so not {kind}"));
    }
    std::fs::File::open(path).map_err(cannot_read)?;
    Ok(Some(meta))
}

/// Whether every `{` in a vsftpd filename pattern is closed by a later `}` and every `}`
/// closes an earlier `{`.
fn braces_balance(pattern: &str) -> bool {
    let mut depth = 0usize;
    for c in pattern.chars() {
        match c {
            '{' => depth += 1,
            '}' => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            _ => {}
        }
    }
    depth == 0
}
