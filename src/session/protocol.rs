//! The messages a worker and its monitor exchange over their `SOCK_SEQPACKET` socketpair.
//!
//! A small, explicit, typed set (three requests and their replies), encoded by hand so that every field
//! is length-checked on decode. The monitor treats every byte it receives as hostile: the worker
//! parses FTP from the network and may be compromised. Nothing here ever carries a password in
//! a `Debug` or log line.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// Largest message either side accepts.
pub const MAX_MESSAGE: usize = 16 * 1024;
/// Longest user name the protocol carries (Linux allows 32; leave room, refuse nonsense).
pub const MAX_USER: usize = 256;
/// Longest password the protocol carries.
pub const MAX_PASSWORD: usize = 1024;
/// Most supplementary groups passed for one user.
const MAX_GROUPS: usize = 65536 / 4;

/// Worker → monitor.
pub enum Request {
    /// Check these credentials (the client's USER and PASS); `tls`: the control connection
    /// is encrypted.
    Login {
        user: String,
        password: Vec<u8>,
        tls: bool,
    },
    /// After login: a passive data socket, bound (not listening) in the host's network on the
    /// control connection's local address, with a port from the passive range.
    BindPassive,
    /// After login, active mode (PORT/EPRT): a data connection to this address, made in the
    /// host's network from the control connection's local address. The monitor checks the
    /// address again (the client's own, a port of 1024 or above, unless `port_promiscuous`).
    ConnectActive(SocketAddr),
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Login { user, tls, .. } => {
                write!(f, "Login {{ user: {user:?}, password: ***, tls: {tls} }}")
            }
            Request::BindPassive => f.write_str("BindPassive"),
            Request::ConnectActive(a) => write!(f, "ConnectActive({a})"),
        }
    }
}

/// What the worker needs to jail itself and serve a logged-in user. Travels with the open
/// directory fd of the start (and jail) directory.
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

/// Monitor → worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Login accepted; the message carries the start directory's fd.
    Granted(Grant),
    /// Login refused. `disconnect`: too many failures, end the session after the reply.
    Denied { disconnect: bool },
    /// The passive socket; the message carries its fd.
    Bound,
    /// No passive socket (passive mode off, or no free port).
    NotBound,
    /// The active-mode data connection; the message carries its fd.
    Connected,
    /// The active-mode connection failed (refused, unreachable, timed out).
    NotConnected,
}

#[derive(Debug, PartialEq, Eq)]
pub struct DecodeError(&'static str);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed message: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

const TAG_LOGIN: u8 = 1;
const TAG_GRANTED: u8 = 2;
const TAG_DENIED: u8 = 3;
const TAG_BIND_PASSIVE: u8 = 4;
const TAG_BOUND: u8 = 5;
const TAG_NOT_BOUND: u8 = 6;
const TAG_CONNECT_ACTIVE: u8 = 7;
const TAG_CONNECTED: u8 = 8;
const TAG_NOT_CONNECTED: u8 = 9;

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError("truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError("bad boolean")),
        }
    }
    fn bytes(&mut self, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(DecodeError("field too long"));
        }
        self.take(len)
    }
    fn string(&mut self, max: usize) -> Result<String, DecodeError> {
        let b = self.bytes(max)?;
        String::from_utf8(b.to_vec()).map_err(|_| DecodeError("not UTF-8"))
    }
    fn finish(self) -> Result<(), DecodeError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DecodeError("trailing bytes"))
        }
    }
}

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
            Reply::Granted(g) => {
                w.u8(TAG_GRANTED);
                w.u32(g.uid);
                w.u32(g.gid);
                w.u32(g.groups.len() as u32);
                for gid in &g.groups {
                    w.u32(*gid);
                }
                w.u8(g.jailed as u8);
                w.u8(g.anonymous as u8);
                w.bytes(g.user_name.as_bytes());
                w.bytes(g.group_name.as_bytes());
                w.bytes(g.start_dir.as_bytes());
            }
            Reply::Denied { disconnect } => {
                w.u8(TAG_DENIED);
                w.u8(*disconnect as u8);
            }
            Reply::Bound => w.u8(TAG_BOUND),
            Reply::NotBound => w.u8(TAG_NOT_BOUND),
            Reply::Connected => w.u8(TAG_CONNECTED),
            Reply::NotConnected => w.u8(TAG_NOT_CONNECTED),
        }
        w.0
    }

    pub fn decode(bytes: &[u8]) -> Result<Reply, DecodeError> {
        let mut r = Reader(bytes);
        let reply = match r.u8()? {
            TAG_GRANTED => {
                let uid = r.u32()?;
                let gid = r.u32()?;
                let n = r.u32()? as usize;
                if n > MAX_GROUPS {
                    return Err(DecodeError("too many groups"));
                }
                let groups = (0..n).map(|_| r.u32()).collect::<Result<Vec<_>, _>>()?;
                let jailed = r.bool()?;
                let anonymous = r.bool()?;
                let user_name = r.string(MAX_USER)?;
                let group_name = r.string(MAX_USER)?;
                let start_dir = r.string(4096)?;
                Reply::Granted(Grant {
                    uid,
                    gid,
                    groups,
                    jailed,
                    anonymous,
                    user_name,
                    group_name,
                    start_dir,
                })
            }
            TAG_DENIED => Reply::Denied {
                disconnect: r.bool()?,
            },
            TAG_BOUND => Reply::Bound,
            TAG_NOT_BOUND => Reply::NotBound,
            TAG_CONNECTED => Reply::Connected,
            TAG_NOT_CONNECTED => Reply::NotConnected,
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
        let g = Reply::Granted(Grant {
            uid: 1001,
            gid: 1002,
            groups: vec![1002, 27],
            jailed: true,
            anonymous: false,
            user_name: "alice".into(),
            group_name: "alice".into(),
            start_dir: "/home/alice".into(),
        });
        assert_eq!(Reply::decode(&g.encode()).unwrap(), g);
        for r in [
            Reply::Bound,
            Reply::NotBound,
            Reply::Connected,
            Reply::NotConnected,
        ] {
            assert_eq!(Reply::decode(&r.encode()).unwrap(), r);
        }
        assert!(matches!(
            Request::decode(&Request::BindPassive.encode()),
            Ok(Request::BindPassive)
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
    }
}
