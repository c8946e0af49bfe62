//! The messages between the master and its session spawner, over a `SOCK_SEQPACKET`
//! socketpair: "start a session for this client" (with the client socket attached), "retire",
//! and the spawner's reports of sessions started, not started and ended.
//!
//! Fixed-size little-endian records with a tag byte; decoding checks the exact length of
//! every record. The only thing derived from connection bytes is the client address a
//! trusted load balancer's PROXY header carried, already parsed and checked by the master.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::tally::{TALLY_LEN, Tally};

/// Longest record either side sends.
pub const MAX_RECORD: usize = 32;

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
const TALLY: u8 = 7;

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
            Report::Tally(tally) => {
                let mut out = Vec::with_capacity(1 + TALLY_LEN);
                out.push(TALLY);
                out.extend_from_slice(&tally.encode());
                out
            }
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<Report, DecodeError> {
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
}
