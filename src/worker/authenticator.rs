//! libunftp's `Authenticator` and `UserDetailProvider` for a worker.
//!
//! The relay (`control`) has already had the monitor decide the login; libunftp is then
//! logged in over the in-process connection with a one-time token. This authenticator accepts
//! exactly that token, and only while a login granted by the monitor is waiting for `enter`.
//! It never calls PAM or NSS and never logs a password.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use unftp_core::auth::{
    AuthenticationError, Authenticator, Credentials, Principal, UserDetail, UserDetailError,
    UserDetailProvider,
};

use crate::worker::state::SessionShared;

#[derive(Debug)]
pub struct TokenAuthenticator {
    shared: Arc<SessionShared>,
}

impl TokenAuthenticator {
    pub fn new(shared: Arc<SessionShared>) -> Self {
        TokenAuthenticator { shared }
    }
}

/// Compare without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[async_trait]
impl Authenticator for TokenAuthenticator {
    async fn authenticate(
        &self,
        username: &str,
        creds: &Credentials,
    ) -> Result<Principal, AuthenticationError> {
        let token_ok = creds
            .password
            .as_deref()
            .is_some_and(|p| same(p.as_bytes(), self.shared.login_token.as_bytes()));
        let granted = self
            .shared
            .grant
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some();
        if token_ok && granted {
            Ok(Principal {
                username: username.to_string(),
            })
        } else {
            Err(AuthenticationError::BadPassword)
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

#[cfg(test)]
mod tests {
    use super::same;

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
    }
}
