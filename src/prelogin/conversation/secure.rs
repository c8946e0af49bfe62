//! The pre-login conversation's TLS part: `AUTH TLS` and the control connection's handshake,
//! and `PBSZ`/`PROT` before login (remembered for the worker).
//!
//! SECURITY: the handshake runs in the pre-login sandbox, inside the conversation's
//! `login_timeout`; bytes a client pipelines after `AUTH TLS` before the handshake end the
//! session (they would otherwise be read as plaintext commands). It never touches the key: the
//! monitor signs.

use super::{Conversation, Step};
use crate::prelogin::client::Client;
use crate::protocol::ExitReason;

impl Conversation<'_> {
    /// `PBSZ` and `PROT` before login (vsftpd's replies); remembered for the worker.
    pub(super) fn protection(&mut self, verb: &str, arg: &str) -> &'static str {
        if !self.preamble.control_tls {
            return if verb == "PBSZ" {
                "503 PBSZ needs a secure connection."
            } else {
                "503 PROT needs a secure connection."
            };
        }
        if verb == "PBSZ" {
            self.preamble.pbsz = true;
            return "200 PBSZ set to 0.";
        }
        match arg.trim().to_ascii_uppercase().as_str() {
            "P" => {
                self.preamble.prot_private = Some(true);
                "200 PROT now Private."
            }
            "C" => {
                self.preamble.prot_private = Some(false);
                "200 PROT now Clear."
            }
            "S" | "E" => "536 PROT not supported.",
            _ => "504 PROT not recognised.",
        }
    }

    pub(super) async fn auth(
        &mut self,
        client: &mut Client,
        arg: &str,
    ) -> Result<Step, ExitReason> {
        if !self.tls_offered {
            self.say(client, "530 Please login with USER and PASS.")
                .await?;
            return Ok(Step::Continue);
        }
        if self.preamble.control_tls {
            self.say(client, "503 Already using TLS.").await?;
            return Ok(Step::Continue);
        }
        if !matches!(
            arg.trim().to_ascii_uppercase().as_str(),
            "TLS" | "SSL" | "TLS-C" | "TLS-P"
        ) {
            self.say(client, "504 Unknown AUTH type.").await?;
            return Ok(Step::Continue);
        }
        let acceptor = match self.acceptor() {
            Ok(acceptor) => acceptor,
            Err(e) => {
                tracing::error!("TLS: {e}");
                let _ = self.say(client, "421 TLS is not available.").await;
                return Err(ExitReason::Error);
            }
        };
        self.say(client, "234 Proceed with negotiation.").await?;
        if self.lines.pending() {
            tracing::warn!(client = %self.client_address,
                "client sent data after AUTH TLS before the handshake; closing");
            return Err(ExitReason::Refused);
        }
        self.start_tls(client, acceptor).await?;
        Ok(Step::Continue)
    }

    /// The control connection's TLS, built at its first use. The key stays in the monitor,
    /// which signs.
    pub(super) fn acceptor(&mut self) -> Result<tokio_rustls::TlsAcceptor, String> {
        let setup = self.tls.take().ok_or("TLS set up twice")?;
        let (acceptor, stored) = setup.build()?;
        self.stored = Some(stored);
        Ok(acceptor)
    }

    /// The control connection's handshake (after `AUTH TLS`, or first of all with
    /// `implicit_ssl`).
    pub(super) async fn start_tls(
        &mut self,
        client: &mut Client,
        acceptor: tokio_rustls::TlsAcceptor,
    ) -> Result<(), ExitReason> {
        let Client::Plain(tcp) = std::mem::replace(client, Client::Upgrading) else {
            return Err(ExitReason::Error);
        };
        match acceptor.accept(tcp).await {
            Ok(tls) => {
                *client = Client::Tls(Box::new(tls));
                self.preamble.control_tls = true;
                Ok(())
            }
            Err(e) => {
                tracing::info!(client = %self.client_address, error = %e,
                    "control connection TLS handshake failed");
                Err(ExitReason::Closed)
            }
        }
    }
}
