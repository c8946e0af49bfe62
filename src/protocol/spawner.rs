//! The messages between the master and its session spawner, over a `SOCK_SEQPACKET`
//! socketpair: "start a session for this client" (with the client socket attached), "retire",
//! the answer to a login claim, and the spawner's reports of sessions started, not started,
//! ended, and logged in (a claim, for `max_per_user`). Also the claim each monitor sends its
//! spawner ([`encode_claim`]) and the one-byte answer it gets back.
//!
//! Little-endian records with a tag byte; decoding checks the exact length of every record.
//! Derived from connection bytes: the client address a trusted load balancer's PROXY header
//! carried (parsed and checked by the master), and a claim's login name, which PAM accepted
//! and which is checked again to be a plain name of at most [`MAX_CLAIM_NAME`] bytes by
//! every process it crosses.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::tally::{TALLY_LEN, Tally};

/// Longest record either side sends.
pub const MAX_RECORD: usize = 64;

/// Longest login name a claim carries (the monitor refuses longer names before PAM).
pub const MAX_CLAIM_NAME: usize = 32;

/// A login name in a claim: a plain name ([`crate::config::plain_user_name`]) of at most
/// [`MAX_CLAIM_NAME`] bytes, checked when made and when decoded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ClaimName {
    len: u8,
    bytes: [u8; MAX_CLAIM_NAME],
}

impl ClaimName {
    pub fn new(name: &str) -> Option<ClaimName> {
        if name.len() > MAX_CLAIM_NAME || !crate::config::plain_user_name(name) {
            return None;
        }
        let mut bytes = [0; MAX_CLAIM_NAME];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        Some(ClaimName {
            len: name.len() as u8,
            bytes,
        })
    }

    fn from_bytes(bytes: &[u8]) -> Result<ClaimName, DecodeError> {
        let name = std::str::from_utf8(bytes).map_err(|_| DecodeError("claim name"))?;
        ClaimName::new(name).ok_or(DecodeError("claim name"))
    }

    pub fn as_str(&self) -> &str {
        // Made from a `str` by `new` only.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl fmt::Debug for ClaimName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// Monitor → spawner: "count this session's login under this name". The answer is one byte,
/// [`CLAIM_GRANTED`] or [`CLAIM_REFUSED`].
pub fn encode_claim(name: &ClaimName) -> Vec<u8> {
    let mut out = vec![CLAIM];
    out.extend_from_slice(name.as_str().as_bytes());
    out
}

pub fn decode_claim(bytes: &[u8]) -> Result<ClaimName, DecodeError> {
    match bytes.split_first() {
        Some((&CLAIM, name)) => ClaimName::from_bytes(name),
        _ => Err(DecodeError("not a claim")),
    }
}

pub const CLAIM_GRANTED: u8 = 1;
pub const CLAIM_REFUSED: u8 = 0;

/// Master → spawner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Start a session (monitor and worker) for the client socket attached to this record.
    /// `id` names the session in the reports. `client` is the client's address when the
    /// connection came through a trusted load balancer (PROXY protocol), which then stands
    /// for the socket's peer everywhere in the session.
    Spawn { id: u64, client: Option<SocketAddr> },
    /// Start no more sessions; exit once every session started so far has ended (SIGHUP: a
    /// new spawner with the new configuration takes over).
    Retire,
    /// The answer to session `id`'s [`Report::Claim`]: `granted` = it may go on.
    Answer { id: u64, granted: bool },
}

/// Spawner → master.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// The session process for `id` runs as `pid`.
    Started { id: u64, pid: u32 },
    /// No session could be started for `id` (fork failed); the client socket is closed.
    NotStarted { id: u64 },
    /// The session process for `id` ended: with an exit code, or killed by a signal.
    Ended { id: u64, end: ProcessEnd },
    /// Session `id` has a login accepted for `user`: count it (`max_per_user`) and answer.
    Claim { id: u64, user: ClaimName },
    /// A count one of the spawner's sessions reported (a login, a transfer), for the metrics.
    Tally(Tally),
}

/// How a session process ended, from `waitpid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessEnd {
    Exited(u8),
    Killed(i32),
}

#[derive(Debug, PartialEq, Eq)]
pub struct DecodeError(&'static str);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed spawner record: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

const SPAWN: u8 = 1;
const RETIRE: u8 = 2;
const STARTED: u8 = 3;
const NOT_STARTED: u8 = 4;
const EXITED: u8 = 5;
const KILLED: u8 = 6;
const ANSWER: u8 = 7;
const CLAIMED: u8 = 8;
const CLAIM: u8 = 9;
const TALLY: u8 = 10;

fn record(tag: u8, id: u64, extra: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(13);
    out.push(tag);
    out.extend_from_slice(&id.to_le_bytes());
    if let Some(e) = extra {
        out.extend_from_slice(&e);
    }
    out
}

/// `(tag, id, 4 more bytes if present)`, checking the length matches what the tag needs.
fn fields(bytes: &[u8]) -> Result<(u8, u64, Option<[u8; 4]>), DecodeError> {
    let (&tag, rest) = bytes.split_first().ok_or(DecodeError("empty"))?;
    let wants_extra = matches!(tag, STARTED | EXITED | KILLED);
    let expected = if tag == RETIRE {
        0
    } else if wants_extra {
        12
    } else {
        8
    };
    if rest.len() != expected {
        return Err(DecodeError("wrong length"));
    }
    if tag == RETIRE {
        return Ok((tag, 0, None));
    }
    let id = u64::from_le_bytes(rest[..8].try_into().map_err(|_| DecodeError("id"))?);
    let extra = if wants_extra {
        Some(rest[8..12].try_into().map_err(|_| DecodeError("value"))?)
    } else {
        None
    };
    Ok((tag, id, extra))
}

/// A spawn record's address: family (0 none, 4, 6), 16 address bytes, port: 19 bytes.
const ADDRESS_LEN: usize = 19;

fn encode_address(out: &mut Vec<u8>, address: Option<SocketAddr>) {
    let (family, octets) = match address.map(|a| a.ip()) {
        None => (0, [0; 16]),
        Some(IpAddr::V4(v4)) => {
            let mut o = [0; 16];
            o[..4].copy_from_slice(&v4.octets());
            (4, o)
        }
        Some(IpAddr::V6(v6)) => (6, v6.octets()),
    };
    out.push(family);
    out.extend_from_slice(&octets);
    out.extend_from_slice(&address.map_or(0, |a| a.port()).to_le_bytes());
}

fn decode_address(bytes: &[u8]) -> Result<Option<SocketAddr>, DecodeError> {
    let [family, rest @ ..] = bytes else {
        return Err(DecodeError("address"));
    };
    let octets: [u8; 16] = rest[..16].try_into().map_err(|_| DecodeError("address"))?;
    let port = u16::from_le_bytes([rest[16], rest[17]]);
    let ip = match family {
        0 if octets == [0; 16] && port == 0 => return Ok(None),
        4 if octets[4..] == [0; 12] => {
            IpAddr::V4(Ipv4Addr::new(octets[0], octets[1], octets[2], octets[3]))
        }
        6 => IpAddr::V6(Ipv6Addr::from(octets)),
        _ => return Err(DecodeError("address family")),
    };
    Ok(Some(SocketAddr::new(ip, port)))
}

impl Order {
    pub fn encode(&self) -> Vec<u8> {
        match *self {
            Order::Spawn { id, client } => {
                let mut out = record(SPAWN, id, None);
                encode_address(&mut out, client);
                out
            }
            Order::Retire => vec![RETIRE],
            Order::Answer { id, granted } => {
                let mut out = record(ANSWER, id, None);
                out.push(u8::from(granted));
                out
            }
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<Order, DecodeError> {
        if bytes.first() == Some(&SPAWN) {
            if bytes.len() != 9 + ADDRESS_LEN {
                return Err(DecodeError("wrong length"));
            }
            let (_, id, _) = fields(&bytes[..9])?;
            let client = decode_address(&bytes[9..])?;
            return Ok(Order::Spawn { id, client });
        }
        if bytes.first() == Some(&ANSWER) {
            let granted = match bytes {
                [_, .., 0] if bytes.len() == 10 => false,
                [_, .., 1] if bytes.len() == 10 => true,
                _ => return Err(DecodeError("answer")),
            };
            let (_, id, _) = fields(&bytes[..9])?;
            return Ok(Order::Answer { id, granted });
        }
        match fields(bytes)? {
            (RETIRE, _, None) => Ok(Order::Retire),
            _ => Err(DecodeError("not an order")),
        }
    }
}

impl Report {
    pub fn encode(&self) -> Vec<u8> {
        match *self {
            Report::Started { id, pid } => record(STARTED, id, Some(pid.to_le_bytes())),
            Report::NotStarted { id } => record(NOT_STARTED, id, None),
            Report::Ended {
                id,
                end: ProcessEnd::Exited(code),
            } => record(EXITED, id, Some(u32::from(code).to_le_bytes())),
            Report::Ended {
                id,
                end: ProcessEnd::Killed(signal),
            } => record(KILLED, id, Some(signal.to_le_bytes())),
            Report::Claim { id, user } => {
                let mut out = record(CLAIMED, id, None);
                out.extend_from_slice(user.as_str().as_bytes());
                out
            }
            Report::Tally(tally) => {
                let mut out = Vec::with_capacity(1 + TALLY_LEN);
                out.push(TALLY);
                out.extend_from_slice(&tally.encode());
                out
            }
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<Report, DecodeError> {
        if bytes.first() == Some(&CLAIMED) {
            if bytes.len() < 10 {
                return Err(DecodeError("claim"));
            }
            let (_, id, _) = fields(&bytes[..9])?;
            let user = ClaimName::from_bytes(&bytes[9..])?;
            return Ok(Report::Claim { id, user });
        }
        if let [TALLY, rest @ ..] = bytes {
            return Tally::decode(rest)
                .map(Report::Tally)
                .map_err(|_| DecodeError("tally"));
        }
        match fields(bytes)? {
            (STARTED, id, Some(v)) => Ok(Report::Started {
                id,
                pid: u32::from_le_bytes(v),
            }),
            (NOT_STARTED, id, None) => Ok(Report::NotStarted { id }),
            (EXITED, id, Some(v)) => {
                let code = u8::try_from(u32::from_le_bytes(v))
                    .map_err(|_| DecodeError("exit code out of range"))?;
                Ok(Report::Ended {
                    id,
                    end: ProcessEnd::Exited(code),
                })
            }
            (KILLED, id, Some(v)) => Ok(Report::Ended {
                id,
                end: ProcessEnd::Killed(i32::from_le_bytes(v)),
            }),
            _ => Err(DecodeError("not a report")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_survives_a_round_trip() {
        for order in [
            Order::Spawn {
                id: 0,
                client: None,
            },
            Order::Spawn {
                id: u64::MAX,
                client: Some("192.0.2.7:40001".parse().unwrap()),
            },
            Order::Spawn {
                id: 3,
                client: Some("[2001:db8::1]:21".parse().unwrap()),
            },
            Order::Retire,
            Order::Answer {
                id: 4,
                granted: true,
            },
            Order::Answer {
                id: u64::MAX,
                granted: false,
            },
        ] {
            assert_eq!(Order::decode(&order.encode()), Ok(order));
            assert!(order.encode().len() <= MAX_RECORD);
        }
        for report in [
            Report::Started { id: 7, pid: 4242 },
            Report::NotStarted { id: 8 },
            Report::Ended {
                id: 9,
                end: ProcessEnd::Exited(0x23),
            },
            Report::Ended {
                id: u64::MAX,
                end: ProcessEnd::Killed(9),
            },
            Report::Claim {
                id: 10,
                user: ClaimName::new(&"u".repeat(MAX_CLAIM_NAME)).unwrap(),
            },
            Report::Tally(Tally::Transfer {
                direction: crate::protocol::event::Direction::Upload,
                ok: true,
                bytes: 4096,
            }),
        ] {
            assert_eq!(Report::decode(&report.encode()), Ok(report));
            assert!(report.encode().len() <= MAX_RECORD);
        }
    }

    #[test]
    fn truncated_padded_and_crossed_records_are_refused() {
        let spawn = Order::Spawn {
            id: 5,
            client: None,
        }
        .encode();
        assert!(Order::decode(&spawn[..spawn.len() - 1]).is_err());
        let mut padded = spawn.clone();
        padded.push(0);
        assert!(Order::decode(&padded).is_err());
        assert!(Order::decode(&[]).is_err());
        assert!(Order::decode(&[99]).is_err());
        // A report is not an order and the other way round.
        assert!(Order::decode(&Report::NotStarted { id: 5 }.encode()).is_err());
        assert!(Report::decode(&spawn).is_err());
        // An unknown address family, or an IPv4 address with stray bytes, is refused.
        let mut family = spawn.clone();
        family[9] = 5;
        assert!(Order::decode(&family).is_err());
        let mut v4 = Order::Spawn {
            id: 5,
            client: Some("192.0.2.1:1".parse().unwrap()),
        }
        .encode();
        v4[20] = 1;
        assert!(Order::decode(&v4).is_err());
        // An exit code is one byte.
        let mut bad = Report::Ended {
            id: 1,
            end: ProcessEnd::Exited(1),
        }
        .encode();
        bad[9] = 0;
        bad[10] = 1;
        assert!(Report::decode(&bad).is_err());
    }

    #[test]
    fn claims_carry_only_plain_short_names() {
        let alice = ClaimName::new("alice").unwrap();
        assert_eq!(decode_claim(&encode_claim(&alice)), Ok(alice));
        for bad in ["", "..", "a/b", "a\0b"] {
            assert!(ClaimName::new(bad).is_none(), "{bad:?}");
        }
        assert!(ClaimName::new(&"x".repeat(MAX_CLAIM_NAME + 1)).is_none());
        assert!(decode_claim(&[CLAIM, b'.', b'.']).is_err());
        assert!(decode_claim(&[CLAIM, 0xff]).is_err());
        assert!(decode_claim(b"xalice").is_err());
        // A claim report with a bad name, or none, is refused; so is an answer of 2.
        let mut report = Report::Claim { id: 1, user: alice }.encode();
        report.truncate(9);
        assert!(Report::decode(&report).is_err());
        report.extend_from_slice(b"../x");
        assert!(Report::decode(&report).is_err());
        let mut answer = Order::Answer {
            id: 1,
            granted: true,
        }
        .encode();
        *answer.last_mut().unwrap() = 2;
        assert!(Order::decode(&answer).is_err());
    }
}
