//! The control connection's TLS without the private key: in the pre-login process the server's
//! signing key is a stand-in that asks the monitor to sign each handshake (OpenSSH's privsep
//! does the same with its host key).
//!
//! SECURITY: the pre-login process parses TLS from the network; if it is compromised, the
//! server's private key is not in it to steal. And the monitor knows, from a signature it made
//! itself, that this session's control connection did a TLS handshake — the TLS login rules
//! (`force_local_logins_ssl`) rest on that, not on the pre-login process's word.
//!
//! The scheme list comes from the certificate's public-key algorithm; the monitor refuses any
//! scheme its key cannot sign with. Signing is a blocking round trip on the monitor channel,
//! made while the runtime's only thread is inside the handshake (nothing else can be using the
//! channel then: the pre-login conversation asks the monitor nothing during `AUTH TLS`).

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::CertificateDer;
use rustls::sign::{CertifiedKey, Signer, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};

use crate::protocol::monitor::{MAX_MESSAGE, Reply, Request};

/// How long the monitor may take to sign.
const SIGN_TIMEOUT: Duration = Duration::from_secs(10);

/// The DER of the OIDs that name a certificate's key type (with their tag and length).
const RSA_ENCRYPTION: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];
const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const ED25519_KEY: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The key's algorithm and the schemes it signs with, in rustls's order of preference, from the
/// end-entity certificate. (A certificate holds its own key's algorithm OID and its issuer's
/// signature algorithm; the signature algorithms' OIDs differ from these key OIDs, except
/// Ed25519's, which is therefore tried last.)
pub fn key_kind(cert: &[u8]) -> Option<(SignatureAlgorithm, Vec<SignatureScheme>)> {
    use SignatureScheme::*;
    if contains(cert, RSA_ENCRYPTION) {
        return Some((
            SignatureAlgorithm::RSA,
            vec![
                RSA_PSS_SHA512,
                RSA_PSS_SHA384,
                RSA_PSS_SHA256,
                RSA_PKCS1_SHA512,
                RSA_PKCS1_SHA384,
                RSA_PKCS1_SHA256,
            ],
        ));
    }
    if contains(cert, EC_PUBLIC_KEY) {
        if contains(cert, P256) {
            return Some((SignatureAlgorithm::ECDSA, vec![ECDSA_NISTP256_SHA256]));
        }
        if contains(cert, P384) {
            return Some((SignatureAlgorithm::ECDSA, vec![ECDSA_NISTP384_SHA384]));
        }
        return None;
    }
    if contains(cert, ED25519_KEY) {
        return Some((SignatureAlgorithm::ED25519, vec![ED25519]));
    }
    None
}

/// The stand-in signing key.
#[derive(Debug)]
struct MonitorKey {
    channel: Arc<OwnedFd>,
    algorithm: SignatureAlgorithm,
    schemes: Vec<SignatureScheme>,
}

#[derive(Debug)]
struct MonitorSigner {
    channel: Arc<OwnedFd>,
    scheme: SignatureScheme,
}

impl SigningKey for MonitorKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let scheme = self.schemes.iter().find(|s| offered.contains(s))?;
        Some(Box::new(MonitorSigner {
            channel: self.channel.clone(),
            scheme: *scheme,
        }))
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }
}

impl Signer for MonitorSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        let request = Request::Sign {
            scheme: u16::from(self.scheme),
            message: message.to_vec(),
        };
        match ask(&self.channel, &request) {
            Ok(Reply::Signature(signature)) => Ok(signature),
            Ok(_) => Err(rustls::Error::General("the monitor did not sign".into())),
            Err(e) => Err(rustls::Error::General(format!("monitor: {e}"))),
        }
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}

/// One blocking request/reply on the (non-blocking) monitor channel, within [`SIGN_TIMEOUT`].
fn ask(channel: &OwnedFd, request: &Request) -> std::io::Result<Reply> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let deadline = Instant::now() + SIGN_TIMEOUT;
    let wait = |flags: PollFlags| -> std::io::Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no answer from the monitor",
            ));
        }
        let ms =
            PollTimeout::try_from(left.as_millis().min(10_000) as i32).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(channel.as_fd(), flags)];
        match poll(&mut fds, ms) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => Ok(()),
            Err(e) => Err(e.into()),
        }
    };
    let bytes = request.encode();
    loop {
        match crate::sys::send_message(channel.as_fd(), &bytes, None) {
            Ok(()) => break,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => wait(PollFlags::POLLOUT)?,
            Err(e) => return Err(e),
        }
    }
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        match crate::sys::recv_message(channel.as_fd(), &mut buf) {
            Ok((0, _)) => return Err(std::io::Error::other("monitor closed the channel")),
            Ok((_, Some(_))) => return Err(std::io::Error::other("unexpected descriptor")),
            Ok((len, None)) => {
                return Reply::decode(&buf[..len]).map_err(std::io::Error::other);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => wait(PollFlags::POLLIN)?,
            Err(e) => return Err(e),
        }
    }
}

/// The certificate chain with the monitor as its key. `channel`: a descriptor of the monitor
/// channel for the signer's own use.
pub fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    channel: OwnedFd,
) -> Result<Arc<CertifiedKey>, String> {
    let leaf = chain
        .first()
        .ok_or_else(|| "rsa_cert_file: no certificate in it".to_string())?;
    let (algorithm, schemes) = key_kind(leaf.as_ref())
        .ok_or_else(|| "rsa_cert_file: unsupported public key type".to_string())?;
    let key = MonitorKey {
        channel: Arc::new(channel),
        algorithm,
        schemes,
    };
    Ok(Arc::new(CertifiedKey::new(chain, Arc::new(key))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_kind_comes_from_the_certificates_key_oid() {
        let mut rsa = vec![0x30, 0x10];
        rsa.extend_from_slice(RSA_ENCRYPTION);
        assert_eq!(key_kind(&rsa).unwrap().0, SignatureAlgorithm::RSA);
        let mut ec = EC_PUBLIC_KEY.to_vec();
        ec.extend_from_slice(P256);
        assert_eq!(
            key_kind(&ec).unwrap().1,
            vec![SignatureScheme::ECDSA_NISTP256_SHA256]
        );
        // An Ed25519 issuer signature does not make an RSA key Ed25519.
        let mut mixed = ED25519_KEY.to_vec();
        mixed.extend_from_slice(RSA_ENCRYPTION);
        assert_eq!(key_kind(&mixed).unwrap().0, SignatureAlgorithm::RSA);
        assert!(key_kind(b"nothing").is_none());
    }
}
