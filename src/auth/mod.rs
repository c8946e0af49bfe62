//! PAM policy: checks a user's password, establishes their credentials and (with
//! `session_support`) opens their PAM session, in the monitor process.
//!
//! Runs as root, outside any jail, single-threaded. It sets `PAM_RHOST`, `PAM_TTY` and
//! `PAM_RUSER`, runs `pam_authenticate` → `pam_acct_mgmt` → `pam_setcred` (→ `pam_open_session`)
//! and at logout closes what it opened. It must never log, copy or keep the password beyond the PAM
//! conversation, and never accept a login whose `PAM_USER` a module changed.

use std::ffi::{CStr, CString};

use pam_client2::{Context, ConversationHandler, ErrorCode, Flag, SessionToken};

/// Answers PAM's prompts: the user name for echoed prompts, the password for hidden ones.
/// The password bytes are wiped when the conversation is dropped.
struct FtpConversation {
    user: CString,
    password: Vec<u8>,
}

impl Drop for FtpConversation {
    fn drop(&mut self) {
        for b in self.password.iter_mut() {
            *b = 0;
        }
        std::hint::black_box(&self.password);
    }
}

impl ConversationHandler for FtpConversation {
    fn prompt_echo_on(&mut self, _prompt: &CStr) -> Result<CString, ErrorCode> {
        Ok(self.user.clone())
    }

    fn prompt_echo_off(&mut self, _prompt: &CStr) -> Result<CString, ErrorCode> {
        CString::new(self.password.clone()).map_err(|_| ErrorCode::CONV_ERR)
    }

    fn text_info(&mut self, msg: &CStr) {
        tracing::debug!(message = %msg.to_string_lossy(), "PAM info");
    }

    fn error_msg(&mut self, msg: &CStr) {
        tracing::debug!(message = %msg.to_string_lossy(), "PAM error message");
    }
}

/// A successful PAM login whose credentials (and session, if one was opened) last until
/// [`PamLogin::close`] (or drop).
pub struct PamLogin {
    context: Context<FtpConversation>,
    session: Option<SessionToken>,
}

impl PamLogin {
    /// `pam_close_session` (if opened), `pam_setcred(DELETE)`, `pam_end`.
    pub fn close(mut self) {
        if let Some(token) = self.session.take() {
            let session = self.context.unleak_session(token);
            if let Err(e) = session.close(Flag::NONE) {
                tracing::warn!(error = %e, "PAM session close failed");
            }
        }
    }
}

impl Drop for PamLogin {
    fn drop(&mut self) {
        if let Some(token) = self.session.take() {
            drop(self.context.unleak_session(token));
        }
    }
}

/// Everything PAM needs to know about the attempt besides the secret.
pub struct Attempt<'a> {
    pub service: &'a str,
    pub user: &'a str,
    pub remote_host: &'a str,
    /// Open a PAM session (`session_support`), not only credentials.
    pub open_session: bool,
}

/// Run the whole PAM stack for one attempt. On refusal, the error is PAM's reason, for the log.
pub fn login(attempt: &Attempt<'_>, password: &[u8]) -> Result<PamLogin, String> {
    let user = CString::new(attempt.user).map_err(|_| "user name contains NUL".to_string())?;
    let conversation = FtpConversation {
        user,
        password: password.to_vec(),
    };
    let mut context = Context::new(attempt.service, Some(attempt.user), conversation)
        .map_err(|e| format!("pam_start({}): {e}", attempt.service))?;
    context
        .set_rhost(Some(attempt.remote_host))
        .map_err(|e| format!("PAM_RHOST: {e}"))?;
    context
        .set_tty(Some("ftp"))
        .map_err(|e| format!("PAM_TTY: {e}"))?;
    context
        .set_ruser(Some(attempt.user))
        .map_err(|e| format!("PAM_RUSER: {e}"))?;
    crate::sys::disable_pam_fail_delay(&mut context).map_err(|e| e.to_string())?;

    {
        // The hash's scratch memory in huge pages (see `crate::sys::HugeScratch`).
        let _scratch = crate::sys::HugeScratch::new();
        context
            .authenticate(Flag::DISALLOW_NULL_AUTHTOK)
            .map_err(|e| format!("authentication failed: {e}"))?;
    }
    context
        .acct_mgmt(Flag::DISALLOW_NULL_AUTHTOK)
        .map_err(|e| format!("account refused: {e}"))?;
    // A module may map PAM_USER to another account; we only ever serve the one that was asked for.
    match context.user() {
        Ok(mapped) if mapped == attempt.user => {}
        Ok(mapped) => return Err(format!("a PAM module changed the user to {mapped:?}")),
        Err(e) => return Err(format!("PAM_USER unreadable: {e}")),
    }
    // Drop the conversation's copy of the password now that authentication is over.
    context
        .conversation_mut()
        .password
        .iter_mut()
        .for_each(|b| *b = 0);
    let token = if attempt.open_session {
        context
            .open_session(Flag::NONE)
            .map_err(|e| format!("session refused: {e}"))?
            .leak()
    } else {
        context
            .open_pseudo_session(Flag::NONE)
            .map_err(|e| format!("credentials refused: {e}"))?
            .leak()
    };
    Ok(PamLogin {
        context,
        session: Some(token),
    })
}

/// A PAM transaction that is started and never used, held by the session spawner for its whole
/// life: `pam_start` loads and relocates the service's modules once, and every session forked
/// afterwards finds them already loaded (its own `pam_start` only bumps their reference counts),
/// sharing those pages instead of relocating its own copies. No module function runs for it.
pub struct PreloadedModules {
    _context: Context<pam_client2::conv_null::Conversation>,
}

/// Load `service`'s PAM modules into this process (see [`PreloadedModules`]).
pub fn preload_modules(service: &str) -> Result<PreloadedModules, String> {
    Context::new(service, None, pam_client2::conv_null::Conversation::new())
        .map(|context| PreloadedModules { _context: context })
        .map_err(|e| format!("pam_start({service}): {e}"))
}
