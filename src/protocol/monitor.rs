//! The messages the pre-login process and the worker exchange with their monitor, each over
//! its own `SOCK_SEQPACKET` socketpair.
//!
//! A small, explicit, typed set (six requests and their replies), encoded by hand so that
//! every field is length-checked on decode. Which request is allowed from whom and when is the
//! monitor's request table (`crate::monitor::requests`); this module only says what the bytes
//! mean. The monitor treats every byte it receives as hostile: both peers parse bytes from the
//! network and may be compromised. Nothing here ever carries a password in a `Debug` or log
//! line.

use std::fmt;

use super::wire::{DecodeError, Reader, Writer};
use std::net::{IpAddr, SocketAddr};

/// Largest message either side accepts.
pub const MAX_MESSAGE: usize = 16 * 1024;
/// Longest user name the protocol carries (Linux allows 32; leave room, refuse nonsense).
pub const MAX_USER: usize = 256;
/// Longest password the protocol carries.
pub const MAX_PASSWORD: usize = 1024;
/// Longest handshake message the monitor signs (TLS 1.3 CertificateVerify input is ~130
/// bytes, TLS 1.2 ServerKeyExchange parameters a few hundred).
pub const MAX_SIGNED: usize = 2048;
/// Longest signature (RSA 8192).
pub const MAX_SIGNATURE: usize = 1024;

/// Pre-login process or worker → monitor.
pub enum Request {
    /// Pre-login process: check these credentials (the client's USER and PASS); `tls`: the
    /// pre-login process says the control connection is encrypted.
    Login {
        user: String,
        password: Vec<u8>,
        tls: bool,
    },
    /// Worker: a passive data socket, listening in the host's network on the control
    /// connection's local address, with a port from the passive range.
    BindPassive,
    /// Worker: the spare passive socket the last `Bound` reply to this request gave is now in
    /// use (it replaces the session's listener); a new spare, listening like it, is wanted.
    /// The first one after a `BindPassive` makes the first spare.
    PassiveSpare,
    /// Worker, active mode (PORT/EPRT): a data connection to this address, made in the
    /// host's network from the control connection's local address. The monitor checks the
    /// address again (the client's own, a port of 1024 or above, unless `port_promiscuous`).
    ConnectActive(SocketAddr),
    /// Worker: a TCP socket inside the worker's own network namespace, for a stand-in
    /// connection libunftp is given (active mode, protected data connections): the worker's
    /// seccomp filter forbids it to make an AF_INET/AF_INET6 socket itself.
    StandIn(StandInSocket),
    /// Pre-login process, during the control connection's TLS handshake: sign this handshake
    /// message with the server's private key (which never leaves the monitor) using this
    /// TLS `SignatureScheme`.
    Sign { scheme: u16, message: Vec<u8> },
    /// Worker: something happened in the session, for the logs (never answered).
    Event(super::event::Event),
    /// Worker of an anonymous session with `chown_uploads`: give the file this upload just
    /// created (its open descriptor rides with the message) to `chown_username`, with
    /// `chown_upload_mode`. The only request that carries a descriptor.
    ChownUpload,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Login { user, tls, .. } => {
                write!(f, "Login {{ user: {user:?}, password: ***, tls: {tls} }}")
            }
            Request::BindPassive => f.write_str("BindPassive"),
            Request::ChownUpload => f.write_str("ChownUpload"),
            Request::PassiveSpare => f.write_str("PassiveSpare"),
            Request::ConnectActive(a) => write!(f, "ConnectActive({a})"),
            Request::StandIn(s) => write!(f, "StandIn({s:?})"),
            Request::Event(e) => write!(f, "Event({e:?})"),
            Request::Sign { scheme, message } => {
                write!(
                    f,
                    "Sign {{ scheme: {scheme:#06x}, {} bytes }}",
                    message.len()
                )
            }
        }
    }
}

/// The two ends of a stand-in connection inside the worker's namespace, each made by the
/// monitor there (`crate::monitor::standin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandInSocket {
    /// A listener on the namespace's loopback address of the client's family, at `port` (0:
    /// any; else the session's passive port, which libunftp names in its `227`/`229`),
    /// already listening: libunftp listens on it and accepts the one connection.
    Listener { port: u16 },
    /// A connection from the client's address (any port) to the stand-in listener made last,
    /// at port `to`: libunftp accepts only a peer with the client's address. Made connected:
    /// the worker may not `connect` (a TCP socket it holds from the host's network could be
    /// disconnected with `AF_UNSPEC` and connected anywhere).
    Connector { to: u16 },
}

/// What the worker needs to jail itself and serve a logged-in user. Never serialized: the
/// monitor forks the worker with it (and the open directory fd of the start and jail
/// directory) in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    /// chroot into the passed directory (true) or just start there (false).
    pub jailed: bool,
    /// An anonymous session (`ftp` / `anonymous`): anonymous rights and umask apply.
    pub anonymous: bool,
    pub user_name: String,
    pub group_name: String,
    /// Real path of the start directory (what a user who is not jailed sees).
    pub start_dir: String,
}

/// Monitor → pre-login process or worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Login accepted and the user's worker started; the message carries the pre-login
    /// process's end of its link to the worker (a stream socket).
    LoggedIn,
    /// Login refused. `disconnect`: too many failures, end the session after the reply.
    Denied { disconnect: bool },
    /// Login refused because the login name has `max_per_user` sessions already: answer
    /// `421` and end the session.
    TooManySessions,
    /// The passive socket; the message carries its fd.
    Bound,
    /// No passive socket (passive mode off, or no free port).
    NotBound,
    /// The active-mode data connection; the message carries its fd.
    Connected,
    /// The active-mode connection failed (refused, unreachable, timed out).
    NotConnected,
    /// The stand-in socket; the message carries its fd.
    StandIn,
    /// No stand-in socket could be made (the port is taken in the namespace, or no memory).
    NoStandIn,
    /// The handshake signature.
    Signature(Vec<u8>),
    /// No signature (no key, or a scheme the key does not support).
    NotSigned,
    /// The upload now belongs to `chown_username`.
    Chowned,
}

const TAG_LOGIN: u8 = 1;
const TAG_DENIED: u8 = 3;
const TAG_BIND_PASSIVE: u8 = 4;
const TAG_BOUND: u8 = 5;
const TAG_NOT_BOUND: u8 = 6;
const TAG_CONNECT_ACTIVE: u8 = 7;
const TAG_CONNECTED: u8 = 8;
const TAG_NOT_CONNECTED: u8 = 9;
const TAG_LOGGED_IN: u8 = 11;
const TAG_SIGN: u8 = 12;
const TAG_SIGNATURE: u8 = 13;
const TAG_NOT_SIGNED: u8 = 14;
const TAG_EVENT: u8 = 15;
const TAG_TOO_MANY_SESSIONS: u8 = 16;
const TAG_CHOWN_UPLOAD: u8 = 17;
const TAG_CHOWNED: u8 = 18;
const TAG_PASSIVE_SPARE: u8 = 19;
const TAG_STAND_IN: u8 = 20;
const TAG_STAND_IN_MADE: u8 = 21;
const TAG_NO_STAND_IN: u8 = 22;
/// `StandIn`'s kinds on the wire.
const STAND_IN_LISTENER: u8 = 1;
const STAND_IN_CONNECTOR: u8 = 2;

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        match self {
            Request::Login {
                user,
                password,
                tls,
            } => {
                w.u8(TAG_LOGIN);
                w.bytes(user.as_bytes());
                w.bytes(password);
                w.u8(*tls as u8);
            }
            Request::BindPassive => w.u8(TAG_BIND_PASSIVE),
            Request::ChownUpload => w.u8(TAG_CHOWN_UPLOAD),
            Request::PassiveSpare => w.u8(TAG_PASSIVE_SPARE),
            Request::Event(e) => {
                w.u8(TAG_EVENT);
                e.encode(&mut w);
            }
            Request::Sign { scheme, message } => {
                w.u8(TAG_SIGN);
                w.0.extend_from_slice(&scheme.to_le_bytes());
                w.bytes(message);
            }
            Request::StandIn(kind) => {
                w.u8(TAG_STAND_IN);
                match kind {
                    StandInSocket::Listener { port } => {
                        w.u8(STAND_IN_LISTENER);
                        w.0.extend_from_slice(&port.to_le_bytes());
                    }
                    StandInSocket::Connector { to } => {
                        w.u8(STAND_IN_CONNECTOR);
                        w.0.extend_from_slice(&to.to_le_bytes());
                    }
                }
            }
            Request::ConnectActive(address) => {
                w.u8(TAG_CONNECT_ACTIVE);
                match address.ip() {
                    IpAddr::V4(ip) => {
                        w.u8(4);
                        w.0.extend_from_slice(&ip.octets());
                    }
                    IpAddr::V6(ip) => {
                        w.u8(6);
                        w.0.extend_from_slice(&ip.octets());
                    }
                }
                w.0.extend_from_slice(&address.port().to_le_bytes());
            }
        }
        w.0
    }

    pub fn decode(bytes: &[u8]) -> Result<Request, DecodeError> {
        let mut r = Reader(bytes);
        let req = match r.u8()? {
            TAG_LOGIN => {
                let user = r.string(MAX_USER)?;
                let password = r.bytes(MAX_PASSWORD)?.to_vec();
                let tls = r.bool()?;
                Request::Login {
                    user,
                    password,
                    tls,
                }
            }
            TAG_BIND_PASSIVE => Request::BindPassive,
            TAG_CHOWN_UPLOAD => Request::ChownUpload,
            TAG_PASSIVE_SPARE => Request::PassiveSpare,
            TAG_EVENT => Request::Event(super::event::Event::decode(&mut r)?),
            TAG_SIGN => {
                let scheme = r.take(2)?;
                let scheme = u16::from_le_bytes([scheme[0], scheme[1]]);
                let message = r.bytes(MAX_SIGNED)?.to_vec();
                Request::Sign { scheme, message }
            }
            TAG_CONNECT_ACTIVE => {
                let ip = match r.u8()? {
                    4 => {
                        let b: [u8; 4] = r.take(4)?.try_into().map_err(|_| DecodeError("ip"))?;
                        IpAddr::from(b)
                    }
                    6 => {
                        let b: [u8; 16] = r.take(16)?.try_into().map_err(|_| DecodeError("ip"))?;
                        IpAddr::from(b)
                    }
                    _ => return Err(DecodeError("bad address family")),
                };
                let port = r.take(2)?;
                Request::ConnectActive(SocketAddr::new(ip, u16::from_le_bytes([port[0], port[1]])))
            }
            TAG_STAND_IN => match r.u8()? {
                STAND_IN_LISTENER => {
                    let port = r.take(2)?;
                    Request::StandIn(StandInSocket::Listener {
                        port: u16::from_le_bytes([port[0], port[1]]),
                    })
                }
                STAND_IN_CONNECTOR => {
                    let to = r.take(2)?;
                    Request::StandIn(StandInSocket::Connector {
                        to: u16::from_le_bytes([to[0], to[1]]),
                    })
                }
                _ => return Err(DecodeError("bad stand-in kind")),
            },
            _ => return Err(DecodeError("unknown request")),
        };
        r.finish()?;
        Ok(req)
    }
}

impl Reply {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        match self {
            Reply::LoggedIn => w.u8(TAG_LOGGED_IN),
            Reply::Denied { disconnect } => {
                w.u8(TAG_DENIED);
                w.u8(*disconnect as u8);
            }
            Reply::TooManySessions => w.u8(TAG_TOO_MANY_SESSIONS),
            Reply::Bound => w.u8(TAG_BOUND),
            Reply::NotBound => w.u8(TAG_NOT_BOUND),
            Reply::Connected => w.u8(TAG_CONNECTED),
            Reply::NotConnected => w.u8(TAG_NOT_CONNECTED),
            Reply::StandIn => w.u8(TAG_STAND_IN_MADE),
            Reply::NoStandIn => w.u8(TAG_NO_STAND_IN),
            Reply::Signature(signature) => {
                w.u8(TAG_SIGNATURE);
                w.bytes(signature);
            }
            Reply::NotSigned => w.u8(TAG_NOT_SIGNED),
            Reply::Chowned => w.u8(TAG_CHOWNED),
        }
        w.0
    }

    pub fn decode(bytes: &[u8]) -> Result<Reply, DecodeError> {
        let mut r = Reader(bytes);
        let reply = match r.u8()? {
            TAG_LOGGED_IN => Reply::LoggedIn,
            TAG_SIGNATURE => Reply::Signature(r.bytes(MAX_SIGNATURE)?.to_vec()),
            TAG_NOT_SIGNED => Reply::NotSigned,
            TAG_CHOWNED => Reply::Chowned,
            TAG_DENIED => Reply::Denied {
                disconnect: r.bool()?,
            },
            TAG_TOO_MANY_SESSIONS => Reply::TooManySessions,
            TAG_BOUND => Reply::Bound,
            TAG_NOT_BOUND => Reply::NotBound,
            TAG_CONNECTED => Reply::Connected,
            TAG_NOT_CONNECTED => Reply::NotConnected,
            TAG_STAND_IN_MADE => Reply::StandIn,
            TAG_NO_STAND_IN => Reply::NoStandIn,
            _ => return Err(DecodeError("unknown reply")),
        };
        r.finish()?;
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_request_round_trips_and_hides_the_password_in_debug() {
        let req = Request::Login {
            user: "alice".into(),
            password: b"s3cret".to_vec(),
            tls: true,
        };
        let back = Request::decode(&req.encode()).unwrap();
        let Request::Login {
            user,
            password,
            tls,
        } = &back
        else {
            panic!("decoded {back:?}");
        };
        assert!(*tls);
        assert_eq!(user, "alice");
        assert_eq!(password, b"s3cret");
        assert!(!format!("{back:?}").contains("s3cret"));
    }

    #[test]
    fn replies_round_trip() {
        let sign = Request::Sign {
            scheme: 0x0804,
            message: vec![7; 130],
        };
        assert!(matches!(
            Request::decode(&sign.encode()),
            Ok(Request::Sign { scheme: 0x0804, message }) if message == vec![7; 130]
        ));
        assert!(
            Request::decode(
                &Request::Sign {
                    scheme: 1,
                    message: vec![0; MAX_SIGNED + 1]
                }
                .encode()
            )
            .is_err()
        );
        for r in [
            Reply::Signature(vec![1, 2, 3]),
            Reply::NotSigned,
            Reply::LoggedIn,
            Reply::TooManySessions,
            Reply::Bound,
            Reply::NotBound,
            Reply::Connected,
            Reply::NotConnected,
            Reply::StandIn,
            Reply::NoStandIn,
            Reply::Chowned,
        ] {
            assert_eq!(Reply::decode(&r.encode()).unwrap(), r);
        }
        for kind in [
            StandInSocket::Listener { port: 0 },
            StandInSocket::Listener { port: 50123 },
            StandInSocket::Connector { to: 40000 },
        ] {
            assert!(matches!(
                Request::decode(&Request::StandIn(kind).encode()),
                Ok(Request::StandIn(k)) if k == kind
            ));
        }
        assert!(matches!(
            Request::decode(&Request::ChownUpload.encode()),
            Ok(Request::ChownUpload)
        ));
        assert!(matches!(
            Request::decode(&Request::BindPassive.encode()),
            Ok(Request::BindPassive)
        ));
        assert!(matches!(
            Request::decode(&Request::PassiveSpare.encode()),
            Ok(Request::PassiveSpare)
        ));
        for address in ["192.0.2.7:2121", "[2001:db8::1]:65535"] {
            let address: SocketAddr = address.parse().unwrap();
            assert!(matches!(
                Request::decode(&Request::ConnectActive(address).encode()),
                Ok(Request::ConnectActive(a)) if a == address
            ));
        }
        let d = Reply::Denied { disconnect: true };
        assert_eq!(Reply::decode(&d.encode()).unwrap(), d);
    }

    #[test]
    fn hostile_messages_are_rejected() {
        assert!(Request::decode(&[]).is_err());
        assert!(Request::decode(&[9]).is_err());
        // a user name claiming 4 GiB
        assert!(Request::decode(&[TAG_LOGIN, 0xff, 0xff, 0xff, 0xff]).is_err());
        let mut ok = Request::Login {
            user: "a".into(),
            password: vec![],
            tls: false,
        }
        .encode();
        ok.push(0);
        assert_eq!(
            Request::decode(&ok).unwrap_err(),
            DecodeError("trailing bytes")
        );
        assert!(Reply::decode(&[TAG_DENIED, 7]).is_err());
        assert!(Request::decode(&[TAG_CONNECT_ACTIVE, 5, 1, 2, 3, 4, 0, 1]).is_err());
        assert!(Request::decode(&[TAG_CONNECT_ACTIVE, 4, 1, 2, 3, 4, 0]).is_err());
        assert!(Request::decode(&[TAG_STAND_IN, 3]).is_err());
        assert!(Request::decode(&[TAG_STAND_IN, STAND_IN_LISTENER, 1]).is_err());
        assert!(Request::decode(&[TAG_STAND_IN, STAND_IN_CONNECTOR, 0]).is_err());
        assert!(Request::decode(&[TAG_STAND_IN, STAND_IN_CONNECTOR, 0, 1, 2]).is_err());
    }
}
