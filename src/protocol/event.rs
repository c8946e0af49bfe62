//! What the worker tells its monitor happened in the session, for the logs: its start (or the
//! refusal of a writable jail root), each transfer, each directory operation, and — with
//! `log_ftp_protocol` — each command and reply. One-way: the monitor never answers an event.
//!
//! The worker runs as the user and parses the client's bytes, so an event is a claim, not a
//! fact: every field is length-capped here, and the monitor adds what it knows itself (user,
//! client address and port, session pid, time of day) and never takes those from an event.
//! Nothing here may carry a password: the relay never sends a `PASS` line's argument.

use super::wire::{DecodeError, Reader, Writer};

/// Longest path an event carries (Linux's PATH_MAX).
pub const MAX_PATH: usize = 4096;
/// Longest command or reply line an event carries (longer ones are cut by the sender).
pub const MAX_LINE: usize = 512;

/// A file transfer's direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Upload,
    Download,
}

/// A directory operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Mkdir,
    Delete,
    Rmdir,
    Rename,
    Chmod,
}

impl Op {
    const ALL: [Op; 5] = [Op::Mkdir, Op::Delete, Op::Rmdir, Op::Rename, Op::Chmod];

    fn code(self) -> u8 {
        Op::ALL.iter().position(|o| *o == self).unwrap_or(0) as u8
    }
}

/// One event of a session, as the worker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The worker is jailed and serving (`writable_root_refused: false`), or refuses the
    /// session because the jail root is writable. Sent once, before anything else.
    Started { writable_root_refused: bool },
    /// One RETR or STOR/APPE/STOU, finished, failed or aborted. `path` as the user sees it.
    Transfer {
        direction: Direction,
        path: Vec<u8>,
        bytes: u64,
        micros: u64,
        ascii: bool,
        ok: bool,
    },
    /// MKD, DELE, RMD, RNFR+RNTO (`to`), SITE CHMOD, succeeded or not.
    Op {
        op: Op,
        path: Vec<u8>,
        to: Option<Vec<u8>>,
        ok: bool,
    },
    /// `log_ftp_protocol`: a command from the client (`input`) or a reply to it.
    Protocol { input: bool, line: Vec<u8> },
}

const TAG_STARTED: u8 = 1;
const TAG_TRANSFER: u8 = 2;
const TAG_OP: u8 = 3;
const TAG_PROTOCOL: u8 = 4;

fn u64_of(r: &mut Reader<'_>) -> Result<u64, DecodeError> {
    let b: [u8; 8] = r.take(8)?.try_into().map_err(|_| DecodeError("u64"))?;
    Ok(u64::from_le_bytes(b))
}

impl Event {
    pub fn encode(&self, w: &mut Writer) {
        match self {
            Event::Started {
                writable_root_refused,
            } => {
                w.u8(TAG_STARTED);
                w.u8(*writable_root_refused as u8);
            }
            Event::Transfer {
                direction,
                path,
                bytes,
                micros,
                ascii,
                ok,
            } => {
                w.u8(TAG_TRANSFER);
                w.u8((*direction == Direction::Upload) as u8);
                w.bytes(&path[..path.len().min(MAX_PATH)]);
                w.0.extend_from_slice(&bytes.to_le_bytes());
                w.0.extend_from_slice(&micros.to_le_bytes());
                w.u8(*ascii as u8);
                w.u8(*ok as u8);
            }
            Event::Op { op, path, to, ok } => {
                w.u8(TAG_OP);
                w.u8(op.code());
                w.bytes(&path[..path.len().min(MAX_PATH)]);
                match to {
                    Some(to) => {
                        w.u8(1);
                        w.bytes(&to[..to.len().min(MAX_PATH)]);
                    }
                    None => w.u8(0),
                }
                w.u8(*ok as u8);
            }
            Event::Protocol { input, line } => {
                w.u8(TAG_PROTOCOL);
                w.u8(*input as u8);
                w.bytes(&line[..line.len().min(MAX_LINE)]);
            }
        }
    }

    pub fn decode(r: &mut Reader<'_>) -> Result<Event, DecodeError> {
        Ok(match r.u8()? {
            TAG_STARTED => Event::Started {
                writable_root_refused: r.bool()?,
            },
            TAG_TRANSFER => {
                let direction = if r.bool()? {
                    Direction::Upload
                } else {
                    Direction::Download
                };
                let path = r.bytes(MAX_PATH)?.to_vec();
                let bytes = u64_of(r)?;
                let micros = u64_of(r)?;
                Event::Transfer {
                    direction,
                    path,
                    bytes,
                    micros,
                    ascii: r.bool()?,
                    ok: r.bool()?,
                }
            }
            TAG_OP => {
                let op = *Op::ALL
                    .get(usize::from(r.u8()?))
                    .ok_or(DecodeError("unknown operation"))?;
                let path = r.bytes(MAX_PATH)?.to_vec();
                let to = if r.bool()? {
                    Some(r.bytes(MAX_PATH)?.to_vec())
                } else {
                    None
                };
                if (op == Op::Rename) != to.is_some() {
                    return Err(DecodeError("rename without a target"));
                }
                Event::Op {
                    op,
                    path,
                    to,
                    ok: r.bool()?,
                }
            }
            TAG_PROTOCOL => Event::Protocol {
                input: r.bool()?,
                line: r.bytes(MAX_LINE)?.to_vec(),
            },
            _ => return Err(DecodeError("unknown event")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(e: &Event) -> Result<Event, DecodeError> {
        let mut w = Writer(Vec::new());
        e.encode(&mut w);
        let mut r = Reader(&w.0);
        let back = Event::decode(&mut r)?;
        r.finish()?;
        Ok(back)
    }

    #[test]
    fn events_round_trip() {
        for e in [
            Event::Started {
                writable_root_refused: true,
            },
            Event::Transfer {
                direction: Direction::Upload,
                path: b"/a b".to_vec(),
                bytes: 1 << 40,
                micros: 7,
                ascii: false,
                ok: true,
            },
            Event::Op {
                op: Op::Rename,
                path: b"/x".to_vec(),
                to: Some(b"/y".to_vec()),
                ok: false,
            },
            Event::Op {
                op: Op::Chmod,
                path: b"/x".to_vec(),
                to: None,
                ok: true,
            },
            Event::Protocol {
                input: true,
                line: b"RETR f".to_vec(),
            },
        ] {
            assert_eq!(round_trip(&e), Ok(e.clone()));
        }
    }

    #[test]
    fn hostile_events_are_refused_and_long_fields_cut() {
        let mut r = Reader(&[TAG_OP, 9]);
        assert!(Event::decode(&mut r).is_err());
        // a rename without a target, a mkdir with one
        for (op, to) in [(Op::Rename, None), (Op::Mkdir, Some(b"/t".to_vec()))] {
            let e = Event::Op {
                op,
                path: b"/p".to_vec(),
                to,
                ok: true,
            };
            assert!(round_trip(&e).is_err());
        }
        let long = Event::Protocol {
            input: false,
            line: vec![b'x'; MAX_LINE * 3],
        };
        match round_trip(&long) {
            Ok(Event::Protocol { line, .. }) => assert_eq!(line.len(), MAX_LINE),
            other => panic!("{other:?}"),
        }
    }
}
