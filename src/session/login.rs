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
use crate::session::protocol::Grant;

/// A login the monitor accepted.
pub struct Accepted {
    pub grant: Grant,
    pub start_dir: OwnedFd,
    pub pam: PamLogin,
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
    user: &str,
    password: &[u8],
    client: IpAddr,
) -> Result<Accepted, String> {
    if !config.local_enable {
        return Err("local logins are disabled (local_enable = false)".into());
    }
    if !plausible_user_name(user) {
        return Err("not a valid user name".into());
    }
    let attempt = auth::Attempt {
        service: &config.pam_service_name,
        user,
        remote_host: &client.to_string(),
    };
    let pam = auth::login(&attempt, password)?;

    let account = User::from_name(user)
        .map_err(|e| format!("user lookup failed: {e}"))?
        .ok_or_else(|| "no passwd entry after PAM accepted the user".to_string())?;
    if account.uid.is_root() {
        // Defence in depth: the shipped PAM file already denies root through /etc/ftpusers.
        return Err("uid 0 may not log in".into());
    }
    let c_user = CString::new(user).map_err(|_| "user name contains NUL".to_string())?;
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
    let jailed = config.is_jailed(user).map_err(|e| {
        format!(
            "cannot read chroot_list_file {}: {e}",
            config.chroot_list_file.display()
        )
    })?;
    let start = config.start_dir(user, &account.dir);
    let start_dir = nix::fcntl::open(
        &start,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| format!("cannot open start directory {}: {e}", start.display()))?;

    Ok(Accepted {
        grant: Grant {
            uid: account.uid.as_raw(),
            gid: account.gid.as_raw(),
            groups,
            jailed,
            user_name: account.name,
            group_name,
            start_dir: start.to_string_lossy().into_owned(),
        },
        start_dir,
        pam,
    })
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
