//! The monitor's decision for one USER/PASS pair: policy, PAM, the user's `user_config_dir`
//! file, account lookup (the login's own, or `guest_username`'s for virtual users), start
//! directory.
//!
//! Runs as root, outside any jail. Returns either everything the worker needs (ids, names, an
//! open fd of the start directory, the open PAM session, the session's settings) or a reason
//! for the log. The reason never reaches the client, and the password never reaches a log.

use std::borrow::Cow;
use std::ffi::CString;
use std::net::IpAddr;
use std::os::fd::OwnedFd;

use nix::fcntl::OFlag;
use nix::unistd::{Group, User};

use crate::auth::{self, PamLogin};
use crate::config::Config;
use crate::monitor::user_config;
use crate::policy::UserList;
use crate::protocol::monitor::Grant;

/// A login the monitor accepted.
pub struct Accepted {
    pub grant: Grant,
    pub start_dir: OwnedFd,
    /// The open PAM session (none for anonymous logins, which do not use PAM).
    pub pam: Option<PamLogin>,
    /// The session's settings when a `user_config_dir` file changed them; `None` = the
    /// server's.
    pub config: Option<Box<Config>>,
    /// A real anonymous login (`ftp`/`anonymous`), whose "password" is logged as an e-mail
    /// address; a virtual user with the anonymous rights is not one.
    pub anonymous_login: bool,
    /// The name `max_per_user` counts: the login name, `ftp_username` for anonymous logins.
    pub counted_name: String,
}

impl Accepted {
    fn new(grant: Grant, start_dir: OwnedFd, pam: Option<PamLogin>) -> Accepted {
        Accepted {
            grant,
            start_dir,
            pam,
            config: None,
            anonymous_login: false,
            counted_name: String::new(),
        }
    }

    /// The session's settings (kept when a per-user file changed them) and counted name.
    fn with(mut self, config: Cow<'_, Config>, counted_name: &str) -> Accepted {
        if let Cow::Owned(config) = config {
            self.config = Some(Box::new(config));
        }
        self.counted_name = counted_name.to_owned();
        self
    }
}

/// One USER/PASS pair and what the monitor knows about the connection.
pub struct Attempt<'a> {
    pub user: &'a str,
    pub password: &'a [u8],
    pub client: IpAddr,
    /// The control connection is encrypted.
    pub tls: bool,
}

/// Names that can't be an account on this system are refused before PAM sees them.
fn plausible_user_name(user: &str) -> bool {
    !user.is_empty()
        && user.len() <= 32
        && !user.starts_with('-')
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-$@".contains(&b))
}

/// Decide one login attempt.
pub fn decide(
    config: &Config,
    users: &UserList,
    attempt: &Attempt<'_>,
) -> Result<Accepted, String> {
    let user = attempt.user;
    if config.anonymous_enable && config.is_anonymous_name(user) {
        return anonymous(config, attempt.tls);
    }
    if !config.local_enable {
        return Err("local logins are disabled (local_enable = false)".into());
    }
    if !plausible_user_name(user) {
        return Err("not a valid user name".into());
    }
    if users.refuses(user) {
        return Err(format!(
            "refused by userlist_file {} (PAM not consulted)",
            config.userlist_file.display()
        ));
    }
    if config.ssl_enable && config.force_local_logins_ssl && !attempt.tls {
        return Err("plain-text login refused (force_local_logins_ssl = true)".into());
    }
    let pam_attempt = auth::Attempt {
        service: &config.pam_service_name,
        open_session: config.session_support,
        user,
        remote_host: &attempt.client.to_string(),
    };
    let pam = auth::login(&pam_attempt, attempt.password)?;
    // The user's file is read only now that PAM accepted the name (vsftpd reads it at login
    // too); its settings govern everything below and the session itself.
    let session = user_config::session_config(config, user)?;
    if session.guest_enable {
        return guest(&session, user, pam).map(|a| a.with(session, user));
    }

    let account = User::from_name(user)
        .map_err(|e| format!("user lookup failed: {e}"))?
        .ok_or_else(|| "no passwd entry after PAM accepted the user".to_string())?;
    if account.uid.is_root() && !session.allow_root_login {
        // Defence in depth: the shipped PAM file already denies root through /etc/ftpusers.
        return Err("uid 0 may not log in (allow_root_login = false)".into());
    }
    let jailed = jailed(&session, user)?;
    let start = session.start_dir(user, &account.dir);
    let (grant, start_dir) = grant_for(&account, &start, jailed, false)?;
    let accepted = Accepted::new(grant, start_dir, Some(pam));
    Ok(accepted.with(session, user))
}

/// A virtual user (`guest_enable`): PAM accepted `login`, which need not exist in NSS; the
/// session runs as `guest_username`, in `local_root` with `user_sub_token` replaced by the
/// login name (else `guest_username`'s home), with the anonymous rights and always jailed
/// unless `virtual_use_local_privs` (vsftpd's rules).
fn guest(config: &Config, login: &str, pam: PamLogin) -> Result<Accepted, String> {
    // SECURITY: the login name may become part of the jail's path (user_sub_token).
    if !crate::config::plain_user_name(login) {
        return Err("guest_enable: the login name is not a plain name".into());
    }
    let name = &config.guest_username;
    let account = User::from_name(name)
        .map_err(|e| format!("lookup of guest_username {name}: {e}"))?
        .ok_or_else(|| format!("guest_username {name} has no passwd entry"))?;
    if account.uid.is_root() {
        return Err(format!(
            "guest_username {name} is uid 0; refusing the login"
        ));
    }
    let local_privs = config.virtual_use_local_privs;
    let jailed = if local_privs {
        jailed(config, login)?
    } else {
        true
    };
    let start = config.start_dir(login, &account.dir);
    let (mut grant, start_dir) = grant_for(&account, &start, jailed, !local_privs)?;
    // Logs, records and listings name the virtual user, not the account it runs as.
    grant.user_name = login.to_owned();
    Ok(Accepted::new(grant, start_dir, Some(pam)))
}

/// Whether `user` is jailed (an unreadable chroot list refuses the login: fail closed).
fn jailed(config: &Config, user: &str) -> Result<bool, String> {
    config.is_jailed(user).map_err(|e| {
        format!(
            "cannot read chroot_list_file {}: {e}",
            config.chroot_list_file.display()
        )
    })
}

/// `ftp` / `anonymous`: no PAM; always jailed, as `ftp_username`, in `anon_root` or its home.
fn anonymous(config: &Config, tls: bool) -> Result<Accepted, String> {
    // vsftpd reads the per-user file named after ftp_username for anonymous sessions.
    let session = user_config::session_config(config, &config.ftp_username)?;
    let config = session.as_ref();
    if tls && !config.allow_anon_ssl {
        return Err("anonymous sessions may not use encryption (allow_anon_ssl = false)".into());
    }
    if config.ssl_enable && config.force_anon_logins_ssl && !tls {
        return Err("plain-text anonymous login refused (force_anon_logins_ssl = true)".into());
    }
    let account = User::from_name(&config.ftp_username)
        .map_err(|e| format!("lookup of ftp_username {}: {e}", config.ftp_username))?
        .ok_or_else(|| format!("ftp_username {} has no passwd entry", config.ftp_username))?;
    if account.uid.is_root() {
        return Err(format!(
            "ftp_username {} is uid 0; refusing anonymous login",
            config.ftp_username
        ));
    }
    let root = config
        .anon_root
        .clone()
        .unwrap_or_else(|| account.dir.clone());
    let (grant, start_dir) = grant_for(&account, &root, true, true)?;
    let mut accepted = Accepted::new(grant, start_dir, None);
    accepted.anonymous_login = true;
    let counted = config.ftp_username.clone();
    Ok(accepted.with(session, &counted))
}

/// Ids, names and the open start directory for an account.
fn grant_for(
    account: &User,
    start: &std::path::Path,
    jailed: bool,
    anonymous: bool,
) -> Result<(Grant, OwnedFd), String> {
    let c_user =
        CString::new(account.name.as_str()).map_err(|_| "user name contains NUL".to_string())?;
    let groups = nix::unistd::getgrouplist(&c_user, account.gid)
        .map_err(|e| format!("getgrouplist: {e}"))?
        .into_iter()
        .map(|g| g.as_raw())
        .collect();
    let group_name = Group::from_gid(account.gid)
        .ok()
        .flatten()
        .map(|g| g.name)
        .unwrap_or_else(|| account.gid.to_string());
    let start_dir = nix::fcntl::open(
        start,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| format!("cannot open start directory {}: {e}", start.display()))?;
    let grant = Grant {
        uid: account.uid.as_raw(),
        gid: account.gid.as_raw(),
        groups,
        jailed,
        anonymous,
        user_name: account.name.clone(),
        group_name,
        // In the mapped form libunftp is given every path in (`crate::names`): a home whose
        // path is not UTF-8 is still where the session starts.
        start_dir: crate::names::from_fs(start.as_os_str()).into_owned(),
    };
    Ok((grant, start_dir))
}

#[cfg(test)]
mod tests {
    use super::plausible_user_name;

    #[test]
    fn odd_user_names_are_refused_before_pam() {
        assert!(plausible_user_name("alice"));
        assert!(plausible_user_name("rf_t3st.user-1"));
        assert!(!plausible_user_name(""));
        assert!(!plausible_user_name("-rf"));
        assert!(!plausible_user_name("../etc"));
        assert!(!plausible_user_name("a b"));
        assert!(!plausible_user_name(&"x".repeat(33)));
    }
}
