//! TLS for one session: the rustls configurations of the control connection (the pre-login
//! process runs its handshake) and of its data connections (the worker ends them itself,
//! `worker::datatls`), and the record of which handshakes happened.
//!
//! The control connection's sessions are carried to the worker (`protocol::link`) and put in
//! its store, so data connections can resume them (`require_ssl_reuse`). Its certificate resolver is
//! asked on every full handshake and its session store on every resumption, so the session
//! learns whether a data connection has started TLS yet (tickets are only issued before). How
//! each data connection's handshake went the worker reads from the connection itself.
//! Never offers ALPN (FileZilla treats `x-filezilla-ftp` as "FileZilla Server").
//! Picks the cipher suite by its own order, AES-128-GCM first ([`CIPHER_SUITES`]).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rustls::ServerConfig;
use rustls::crypto::ring as provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, StoresServerSessions};
use rustls::sign::CertifiedKey;

use crate::config::Config;

pub mod remote;
mod session_cache;

use session_cache::SessionCache;

/// How the latest data connection's TLS began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataHandshake {
    /// A new TLS session (did not resume the control connection's).
    Full,
    /// Resumed a session of this process (the control connection's).
    Resumed,
}

/// What the handshakes of this session have shown so far.
#[derive(Debug, Default)]
pub struct HandshakeLog {
    control_tls: AtomicBool,
    /// A data connection has started TLS at least once.
    data_seen: AtomicBool,
}

impl HandshakeLog {
    /// The worker's record: the control handshake happened elsewhere (in the pre-login
    /// process), so every handshake seen here is a data connection's.
    pub fn for_data_connections() -> HandshakeLog {
        let log = HandshakeLog::default();
        log.control_tls.store(true, Ordering::SeqCst);
        log
    }

    fn full_handshake(&self) {
        // The first handshake of a session is always the control connection's.
        if !self.control_tls.swap(true, Ordering::SeqCst) {
            return;
        }
        self.data_seen.store(true, Ordering::SeqCst);
    }

    fn resumed(&self) {
        self.data_seen.store(true, Ordering::SeqCst);
    }

    /// Tickets are issued on the control connection only: a TLS 1.3 ticket sent on a data
    /// connection is often never read (curl closes an upload's data connection without
    /// reading), and unread data makes the client's kernel reset the connection, losing the
    /// tail of the upload.
    fn may_issue_tickets(&self) -> bool {
        !self.data_seen.load(Ordering::SeqCst)
    }
}

/// The certificate and key files as read from disk (as root, before any client byte is
/// parsed). Parsing waits for the first handshake, so sessions that never use TLS don't pay
/// for it; the master parses and checks the pair once at startup and on reload.
#[derive(Clone)]
pub struct IdentityFiles {
    cert_path: std::path::PathBuf,
    cert_pem: Vec<u8>,
    key_path: std::path::PathBuf,
    key_pem: Vec<u8>,
}

/// Read the certificate chain only (for the pre-login process, which never holds the key).
pub fn read_certificate(config: &Config) -> Result<Vec<u8>, String> {
    std::fs::read(&config.rsa_cert_file)
        .map_err(|e| format!("rsa_cert_file {}: {e}", config.rsa_cert_file.display()))
}

/// Parse a PEM certificate chain.
pub fn parse_chain(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("rsa_cert_file: not a PEM certificate chain: {e}"))?;
    if chain.is_empty() {
        return Err("rsa_cert_file: no certificate in it".into());
    }
    Ok(chain)
}

/// Read the certificate chain and key (the key may be in the certificate file). Errors name
/// the file.
pub fn read_identity(config: &Config) -> Result<IdentityFiles, String> {
    let cert_path = config.rsa_cert_file.clone();
    let cert_pem = std::fs::read(&cert_path)
        .map_err(|e| format!("rsa_cert_file {}: {e}", cert_path.display()))?;
    let key_path = if config.rsa_private_key_file.as_os_str().is_empty() {
        cert_path.clone()
    } else {
        config.rsa_private_key_file.clone()
    };
    let key_pem = std::fs::read(&key_path)
        .map_err(|e| format!("rsa_private_key_file {}: {e}", key_path.display()))?;
    Ok(IdentityFiles {
        cert_path,
        cert_pem,
        key_path,
        key_pem,
    })
}

impl IdentityFiles {
    /// The private key, ready to sign (the monitor's, for the pre-login process's handshakes).
    pub fn signing_key(&self) -> Result<Arc<dyn rustls::sign::SigningKey>, String> {
        let key = PrivateKeyDer::from_pem_slice(&self.key_pem).map_err(|e| {
            format!(
                "rsa_private_key_file {}: no usable private key: {e}",
                self.key_path.display()
            )
        })?;
        provider::sign::any_supported_type(&key).map_err(|e| {
            format!(
                "rsa_private_key_file {}: unsupported key: {e}",
                self.key_path.display()
            )
        })
    }

    /// Parse the pair and check that the key belongs to the certificate.
    pub fn parse(&self) -> Result<Arc<CertifiedKey>, String> {
        let (cert_path, key_path) = (&self.cert_path, &self.key_path);
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&self.cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| {
                format!(
                    "rsa_cert_file {}: not a PEM certificate chain: {e}",
                    cert_path.display()
                )
            })?;
        if chain.is_empty() {
            return Err(format!(
                "rsa_cert_file {}: no certificate in it",
                cert_path.display()
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(&self.key_pem).map_err(|e| {
            format!(
                "rsa_private_key_file {}: no usable private key: {e}",
                key_path.display()
            )
        })?;
        let signing_key = provider::sign::any_supported_type(&key).map_err(|e| {
            format!(
                "rsa_private_key_file {}: unsupported key: {e}",
                key_path.display()
            )
        })?;
        let certified = CertifiedKey::new(chain, signing_key);
        certified.keys_match().map_err(|e| {
            format!(
                "rsa_private_key_file {} does not match rsa_cert_file {}: {e}",
                key_path.display(),
                cert_path.display()
            )
        })?;
        Ok(Arc::new(certified))
    }
}

/// Read and check the pair now (the master, at startup and reload).
pub fn load_identity(config: &Config) -> Result<Arc<CertifiedKey>, String> {
    read_identity(config)?.parse()
}

/// Where a session's certificate and key come from.
pub enum Identity {
    /// Both files, parsed at the first handshake (the worker's data connections).
    Files(IdentityFiles),
    /// A ready certificate and key (the pre-login process: the key is the monitor's,
    /// `remote::certified_key`).
    Ready(Arc<CertifiedKey>),
}

/// Hands out the one certificate and records every full handshake.
struct RecordingResolver {
    files: Option<IdentityFiles>,
    key: std::sync::OnceLock<Option<Arc<CertifiedKey>>>,
    log: Arc<HandshakeLog>,
}

impl fmt::Debug for RecordingResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecordingResolver")
    }
}

impl ResolvesServerCert for RecordingResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.log.full_handshake();
        self.key
            .get_or_init(|| {
                self.files
                    .as_ref()?
                    .parse()
                    .map_err(|e| tracing::error!("TLS: {e}"))
                    .ok()
            })
            .clone()
    }
}

/// rustls's in-memory session cache, recording every successful resumption. Sessions are not
/// consumed by a resumption, so every data connection can resume the control connection's
/// session (no 0-RTT data is accepted, so a reused ticket cannot replay anything).
#[derive(Debug)]
struct RecordingStore {
    inner: SessionCache,
    log: Arc<HandshakeLog>,
    /// Every session stored, for the worker (the control connection's; capped).
    stored: Arc<StoredSessions>,
}

/// The sessions a control connection's handshake left, to hand to the worker.
#[derive(Debug, Default)]
pub struct StoredSessions(Mutex<Vec<(Vec<u8>, Vec<u8>)>>);

/// Most sessions a configuration keeps for resumption.
const SESSIONS_KEPT: usize = 64;

/// Most sessions kept for the worker.
const MAX_STORED: usize = 8;

impl StoredSessions {
    pub fn take(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl StoresServerSessions for RecordingStore {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        if !self.log.may_issue_tickets() {
            return false;
        }
        let mut stored = self.stored.0.lock().unwrap_or_else(|p| p.into_inner());
        if stored.len() < MAX_STORED {
            stored.push((key.clone(), value.clone()));
        }
        self.inner.put(key, value)
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let found = self.inner.get(key);
        if found.is_some() {
            self.log.resumed();
        }
        found
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        let found = self.inner.get(key);
        if found.is_some() {
            self.log.resumed();
        }
        found
    }

    fn can_cache(&self) -> bool {
        true
    }
}

/// The cipher suites offered, in the server's order of preference, which the server follows
/// whatever order the client lists them in (`ignore_client_order`), as nginx's and Mozilla's
/// "intermediate" configurations order them: AES-128-GCM first, then AES-256-GCM, then
/// ChaCha20-Poly1305, in TLS 1.3 and (ECDHE, ECDSA then RSA keys) in TLS 1.2.
///
/// Why AES-128 first: with AES-NI (every x86 server of the last decade) AES-128-GCM costs
/// about a quarter less CPU per byte than AES-256-GCM (10 rounds instead of 14; `openssl speed`
/// on the benchmark machine: 2.9 against 2.1 GB/s per core, 16 KiB records) at the same
/// practical security (128-bit keys are out of reach of any brute force; the AES-256 margin
/// only matters against a large quantum computer, which would break the ECDHE key exchange
/// first). OpenSSL clients (curl, lftp, Python, vsftpd's own default list) offer AES-256-GCM
/// first, so without this every transfer paid for AES-256. Nothing weaker is offered than
/// rustls's defaults: the same six suites, only reordered.
///
/// vsftpd's `ssl_ciphers` is not a key of rftpd (rftpd.toml refuses it as a vsftpd option rftpd
/// does not support, and `rftpd import` turns it into a comment): the list is fixed here.
pub static CIPHER_SUITES: &[rustls::SupportedCipherSuite] = &[
    provider::cipher_suite::TLS13_AES_128_GCM_SHA256,
    provider::cipher_suite::TLS13_AES_256_GCM_SHA384,
    provider::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
    provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    provider::cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    provider::cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    provider::cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
];

/// The session's rustls configuration (TLS versions from the config, [`CIPHER_SUITES`] in the
/// server's order, no ALPN, resumption by session id and stateful TLS 1.3 tickets so every
/// resumption passes through our store).
///
/// `resumable`: sessions to accept resumptions of (the worker's, from the control connection).
/// Returns the configuration and where the sessions it stores are recorded.
pub fn server_config(
    config: &Config,
    identity: Identity,
    log: Arc<HandshakeLog>,
    resumable: Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<(Arc<ServerConfig>, Arc<StoredSessions>), String> {
    let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
    if config.ssl_tlsv1_3 {
        versions.push(&rustls::version::TLS13);
    }
    if config.ssl_tlsv1_2 {
        versions.push(&rustls::version::TLS12);
    }
    let crypto = rustls::crypto::CryptoProvider {
        cipher_suites: CIPHER_SUITES.to_vec(),
        ..provider::default_provider()
    };
    let mut server = ServerConfig::builder_with_provider(Arc::new(crypto))
        .with_protocol_versions(&versions)
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(match identity {
            Identity::Files(files) => RecordingResolver {
                files: Some(files),
                key: std::sync::OnceLock::new(),
                log: log.clone(),
            },
            Identity::Ready(key) => RecordingResolver {
                files: None,
                key: std::sync::OnceLock::from(Some(key)),
                log: log.clone(),
            },
        }));
    let inner = SessionCache::new(SESSIONS_KEPT);
    for (key, value) in resumable {
        inner.put(key, value);
    }
    let stored = Arc::new(StoredSessions::default());
    server.session_storage = Arc::new(RecordingStore {
        inner,
        log,
        stored: stored.clone(),
    });
    server.alpn_protocols.clear();
    server.ignore_client_order = true;
    server.send_tls13_tickets = 2;
    server.max_early_data_size = 0;
    Ok((Arc::new(server), stored))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cipher_order_only_reorders_rustls_defaults_aes_128_first() {
        let name = |s: &rustls::SupportedCipherSuite| s.suite();
        let mut ours: Vec<_> = CIPHER_SUITES.iter().map(name).collect();
        let mut defaults: Vec<_> = provider::DEFAULT_CIPHER_SUITES.iter().map(name).collect();
        assert_eq!(ours[0], rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
        ours.sort_by_key(|s| u16::from(*s));
        defaults.sort_by_key(|s| u16::from(*s));
        assert_eq!(ours, defaults);
    }
}
