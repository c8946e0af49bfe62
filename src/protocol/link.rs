//! The pre-login process's first message to the worker on their link (a stream socket the
//! monitor made when it accepted a login).
//!
//! Two ways on from there: with a plain control connection the message carries the client's
//! socket itself (SCM_RIGHTS) and the bytes the client already sent, and the pre-login process
//! exits — from then on the worker, the user's own jailed process, reads its client directly,
//! as vsftpd's post-login process does. Under TLS the pre-login process stays, as vsftpd's SSL
//! process does, and the client's commands follow on the link as they came.
//!
//! It carries the pre-login state the worker's FTP engine must know about — whether the
//! control connection is encrypted, `PBSZ`/`PROT` given before login — and the control
//! connection's TLS sessions, so a data connection (whose TLS runs in the worker) can resume
//! them (`require_ssl_reuse`). The worker treats it as what it is: bytes from a process that
//! parses the network. Every field is capped; a malformed preamble ends the session.

use super::wire::{DecodeError, Reader, Writer};

/// Largest encoded preamble (its length prefix included).
pub const MAX_PREAMBLE: usize = 64 * 1024;
/// Most TLS sessions carried over.
const MAX_SESSIONS: usize = 16;
/// Longest session key (a session id or ticket) and value (rustls's encoded session).
const MAX_SESSION_KEY: usize = 512;
const MAX_SESSION_VALUE: usize = 8 * 1024;

const MAGIC: u8 = 0x52;

/// What the pre-login phase leaves for the worker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preamble {
    /// The control connection is under TLS.
    pub control_tls: bool,
    /// `PBSZ 0` was accepted before login.
    pub pbsz: bool,
    /// `PROT P` (true) was the last `PROT` accepted before login; `None`: none was.
    pub prot_private: Option<bool>,
    /// The control connection's TLS sessions (key, value) as rustls stored them.
    pub tls_sessions: Vec<(Vec<u8>, Vec<u8>)>,
    /// The client's socket comes with this message; the pre-login process is gone.
    pub handoff: bool,
    /// What the client sent after PASS and before the worker's `230` (handoff only).
    pub pending: Vec<u8>,
}

/// Most pending bytes carried (two command lines).
const MAX_PENDING: usize = 2 * crate::control::line::MAX_LINE;

impl Preamble {
    /// The bytes to write on the link: a 4-byte length, then the body.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        w.u8(MAGIC);
        w.u8(u8::from(self.control_tls));
        w.u8(u8::from(self.pbsz));
        w.u8(match self.prot_private {
            None => 0,
            Some(false) => 1,
            Some(true) => 2,
        });
        w.u8(u8::from(self.handoff));
        w.bytes(&self.pending[..self.pending.len().min(MAX_PENDING)]);
        let sessions = &self.tls_sessions[..self.tls_sessions.len().min(MAX_SESSIONS)];
        w.u32(sessions.len() as u32);
        for (key, value) in sessions {
            w.bytes(key);
            w.bytes(value);
        }
        let mut out = (w.0.len() as u32).to_le_bytes().to_vec();
        out.extend_from_slice(&w.0);
        out
    }

    /// Decode a body (without its length prefix).
    pub fn decode(body: &[u8]) -> Result<Preamble, DecodeError> {
        let mut r = Reader(body);
        if r.u8()? != MAGIC {
            return Err(DecodeError("not a link preamble"));
        }
        let control_tls = r.bool()?;
        let pbsz = r.bool()?;
        let prot_private = match r.u8()? {
            0 => None,
            1 => Some(false),
            2 => Some(true),
            _ => return Err(DecodeError("bad PROT level")),
        };
        let handoff = r.bool()?;
        let pending = r.bytes(MAX_PENDING)?.to_vec();
        let n = r.u32()? as usize;
        if n > MAX_SESSIONS {
            return Err(DecodeError("too many TLS sessions"));
        }
        let mut tls_sessions = Vec::with_capacity(n);
        for _ in 0..n {
            let key = r.bytes(MAX_SESSION_KEY)?.to_vec();
            let value = r.bytes(MAX_SESSION_VALUE)?.to_vec();
            tls_sessions.push((key, value));
        }
        r.finish()?;
        Ok(Preamble {
            control_tls,
            pbsz,
            prot_private,
            tls_sessions,
            handoff,
            pending,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preamble_survives_a_round_trip() {
        let p = Preamble {
            control_tls: true,
            pbsz: true,
            prot_private: Some(true),
            tls_sessions: vec![(vec![1, 2, 3], vec![9; 100])],
            handoff: true,
            pending: b"PWD\r\n".to_vec(),
        };
        let bytes = p.encode();
        let len = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
        assert_eq!(len, bytes.len() - 4);
        assert_eq!(Preamble::decode(&bytes[4..]).unwrap(), p);
        assert_eq!(
            Preamble::decode(&Preamble::default().encode()[4..]).unwrap(),
            Preamble::default()
        );
    }

    #[test]
    fn hostile_preambles_are_refused() {
        assert!(Preamble::decode(&[]).is_err());
        let z = [0u8; 4];
        let body = |head: &[u8]| [head, &z[..], &z[..]].concat();
        assert!(Preamble::decode(&body(&[0, 0, 0, 0, 0])).is_err());
        assert!(Preamble::decode(&body(&[MAGIC, 2, 0, 0, 0])).is_err());
        assert!(Preamble::decode(&body(&[MAGIC, 0, 0, 3, 0])).is_err());
        assert!(Preamble::decode(&body(&[MAGIC, 0, 0, 0, 2])).is_err());
        assert!(Preamble::decode(&[MAGIC, 0, 0, 0, 0, 0xff, 0xff, 0, 0]).is_err());
        let mut ok = Preamble::default().encode()[4..].to_vec();
        ok.push(1);
        assert!(Preamble::decode(&ok).is_err());
    }
}
