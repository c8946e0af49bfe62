//! libunftp's `Authenticator` and `UserDetailProvider` for a worker: they forward USER/PASS to
//! the monitor and keep its answer for the storage backend's `enter`.
//!
//! They never call PAM or NSS, never log a password, and treat any answer outside the protocol
//! as fatal for the process.

use std::fmt;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use unftp_core::auth::{
    AuthenticationError, Authenticator, ChannelEncryptionState, Credentials, Principal, UserDetail,
    UserDetailError, UserDetailProvider,
};

use crate::session::ExitReason;
use crate::session::protocol::{MAX_MESSAGE, MAX_PASSWORD, MAX_USER, Reply, Request};
use crate::session::worker::SessionShared;
use crate::sys;

#[derive(Debug)]
pub struct MonitorAuthenticator {
    shared: Arc<SessionShared>,
}

impl MonitorAuthenticator {
    pub fn new(shared: Arc<SessionShared>) -> Self {
        MonitorAuthenticator { shared }
    }

    /// `delay_failed_login`: how long a refused client waits for its `530`.
    async fn failed_login_delay(&self) {
        tokio::time::sleep(Duration::from_secs(self.shared.config.delay_failed_login)).await;
    }
}

/// One blocking request/reply round trip with the monitor.
fn ask_monitor(
    shared: &SessionShared,
    request: &Request,
) -> std::io::Result<(Reply, Option<std::os::fd::OwnedFd>)> {
    let channel = shared.monitor.lock().unwrap_or_else(|p| p.into_inner());
    sys::send_message(channel.as_fd(), &request.encode(), None)?;
    let mut buf = vec![0u8; MAX_MESSAGE];
    let (len, fd) = sys::recv_message(channel.as_fd(), &mut buf)?;
    if len == 0 {
        return Err(std::io::Error::other("monitor closed the channel"));
    }
    let reply = Reply::decode(&buf[..len]).map_err(std::io::Error::other)?;
    Ok((reply, fd))
}

#[async_trait]
impl Authenticator for MonitorAuthenticator {
    /// libunftp asks this at every `USER`: rftpd's hook for vsftpd's answers that come before
    /// the password. Refusals end the connection (see `SessionShared::refuse_and_exit`); the
    /// monitor applies the same rules again at `PASS`, so a refusal missed here is not a hole.
    async fn cert_auth_sufficient(&self, username: &str) -> bool {
        let shared = &self.shared;
        let config = &shared.config;
        let anonymous = config.anonymous_enable && config.is_anonymous_name(username);
        if !anonymous && shared.users.refuses(username) {
            tracing::warn!(user = username, "refused at USER by userlist_file");
            shared.refuse_and_exit("530 Permission denied.", ExitReason::Refused);
        }
        if config.ssl_enable && !shared.control_tls() {
            if !anonymous && config.force_local_logins_ssl {
                tracing::warn!(
                    user = username,
                    "plain-text login refused (force_local_logins_ssl)"
                );
                shared.refuse_and_exit(
                    "530 Non-anonymous sessions must use encryption.",
                    ExitReason::Refused,
                );
            }
            if anonymous && config.force_anon_logins_ssl {
                tracing::warn!(
                    user = username,
                    "plain-text anonymous login refused (force_anon_logins_ssl)"
                );
                shared.refuse_and_exit(
                    "530 Anonymous sessions must use encryption.",
                    ExitReason::Refused,
                );
            }
        }
        false
    }

    async fn authenticate(
        &self,
        username: &str,
        creds: &Credentials,
    ) -> Result<Principal, AuthenticationError> {
        let password = creds.password.clone().unwrap_or_default().into_bytes();
        if username.len() > MAX_USER || password.len() > MAX_PASSWORD {
            self.failed_login_delay().await;
            return Err(AuthenticationError::BadPassword);
        }
        let tls = creds.command_channel_security == ChannelEncryptionState::Tls;
        let request = Request::Login {
            user: username.to_string(),
            password,
            tls,
        };
        let shared = self.shared.clone();
        let answer = tokio::task::spawn_blocking(move || ask_monitor(&shared, &request)).await;
        match answer {
            Ok(Ok((Reply::Granted(grant), Some(dir)))) => {
                *self.shared.grant.lock().unwrap_or_else(|p| p.into_inner()) = Some((grant, dir));
                Ok(Principal {
                    username: username.to_string(),
                })
            }
            Ok(Ok((Reply::Denied { disconnect }, None))) => {
                self.failed_login_delay().await;
                if disconnect {
                    // Let libunftp write its 530, then end the session.
                    tokio::spawn(async {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        std::process::exit(ExitReason::LoginFailures as i32);
                    });
                }
                Err(AuthenticationError::BadPassword)
            }
            other => {
                let what = match other {
                    Ok(Ok(_)) => "reply and descriptor do not match".to_string(),
                    Ok(Err(e)) => e.to_string(),
                    Err(e) => e.to_string(),
                };
                tracing::error!(error = %what, "lost the monitor; ending the session");
                std::process::exit(ExitReason::Error as i32);
            }
        }
    }
}

/// The logged-in user as libunftp sees it: just a name. Ids and the jail travel separately.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub name: String,
}

impl fmt::Display for SessionUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl UserDetail for SessionUser {}

#[derive(Debug)]
pub struct SessionUserProvider;

#[async_trait]
impl UserDetailProvider for SessionUserProvider {
    type User = SessionUser;

    async fn provide_user_detail(
        &self,
        principal: &Principal,
    ) -> Result<SessionUser, UserDetailError> {
        Ok(SessionUser {
            name: principal.username.clone(),
        })
    }
}
