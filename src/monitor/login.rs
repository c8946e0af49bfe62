//! The monitor's decision for one USER/PASS pair: policy, PAM, account lookup, start directory.
//!
//! Runs as root, outside any jail. Returns either everything the worker needs (ids, names, an
//! open fd of the start directory, the open PAM session) or a reason for the log. The reason
//! never reaches the client, and the password never reaches a log.

use std::ffi::CString;
use std::net::IpAddr;
use std::os::fd::OwnedFd;

use nix::fcntl::OFlag;
use nix::unistd::{Group, User};

use crate::auth::{self, PamLogin};
use crate::config::Config;
use crate::policy::UserList;
use crate::protocol::monitor::Grant;

/// A login the monitor accepted.
pub struct Accepted {
    pub grant: Grant,
    pub start_dir: OwnedFd,
    /// The open PAM session (none for anonymous logins, which do not use PAM).
    pub pam: Option<PamLogin>,
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

    let account = User::from_name(user)
        .map_err(|e| format!("user lookup failed: {e}"))?
        .ok_or_else(|| "no passwd entry after PAM accepted the user".to_string())?;
    if account.uid.is_root() && !config.allow_root_login {
        // Defence in depth: the shipped PAM file already denies root through /etc/ftpusers.
        return Err("uid 0 may not log in (allow_root_login = false)".into());
    }
    let jailed = config.is_jailed(user).map_err(|e| {
        format!(
            "cannot read chroot_list_file {}: {e}",
            config.chroot_list_file.display()
        )
    })?;
    let start = config.start_dir(user, &account.dir);
    let (grant, start_dir) = grant_for(&account, &start, jailed, false)?;
    Ok(Accepted {
        grant,
        start_dir,
        pam: Some(pam),
    })
}

/// `ftp` / `anonymous`: no PAM; always jailed, as `ftp_username`, in `anon_root` or its home.
fn anonymous(config: &Config, tls: bool) -> Result<Accepted, String> {
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
    Ok(Accepted {
        grant,
        start_dir,
        pam: None,
    })
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
