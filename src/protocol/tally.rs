//! A session's counts for the master's metrics: a login's result, a transfer's direction,
//! result and bytes. Sent by the session's monitor to the spawner as each happens (one
//! datagram each), and passed on by the spawner to the master inside a
//! [`Report`](super::spawner::Report).
//!
//! Fixed 9-byte records (a kind byte, then a little-endian `u64` of bytes, 0 for a login);
//! decoding checks the exact length, the kind and that a login carries no bytes.
//!
//! What it must never do: carry a user name, an address or a path (the metrics have no
//! labels a client chooses), or accept a record of any other length.

use std::fmt;

use super::event::Direction;

/// The length of every encoded tally.
pub const TALLY_LEN: usize = 9;

/// How a login ended, as the metrics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginResult {
    /// The worker started and serves the user.
    Ok,
    /// The monitor refused the USER/PASS pair (PAM, the user list, an unknown account…).
    Failed,
    /// The password was right but the session was refused (a writable jail root, or the
    /// worker ended before it served).
    Refused,
}

/// One count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tally {
    Login(LoginResult),
    Transfer {
        direction: Direction,
        ok: bool,
        bytes: u64,
    },
}

#[derive(Debug, PartialEq, Eq)]
pub struct DecodeError(&'static str);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed tally: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

const LOGIN_OK: u8 = 1;
const LOGIN_FAILED: u8 = 2;
const LOGIN_REFUSED: u8 = 3;
const UPLOAD_OK: u8 = 4;
const UPLOAD_FAILED: u8 = 5;
const DOWNLOAD_OK: u8 = 6;
const DOWNLOAD_FAILED: u8 = 7;

impl Tally {
    pub fn encode(&self) -> [u8; TALLY_LEN] {
        let (kind, bytes) = match *self {
            Tally::Login(LoginResult::Ok) => (LOGIN_OK, 0),
            Tally::Login(LoginResult::Failed) => (LOGIN_FAILED, 0),
            Tally::Login(LoginResult::Refused) => (LOGIN_REFUSED, 0),
            Tally::Transfer {
                direction,
                ok,
                bytes,
            } => {
                let kind = match (direction, ok) {
                    (Direction::Upload, true) => UPLOAD_OK,
                    (Direction::Upload, false) => UPLOAD_FAILED,
                    (Direction::Download, true) => DOWNLOAD_OK,
                    (Direction::Download, false) => DOWNLOAD_FAILED,
                };
                (kind, bytes)
            }
        };
        let mut out = [0u8; TALLY_LEN];
        out[0] = kind;
        out[1..].copy_from_slice(&bytes.to_le_bytes());
        out
    }

    pub fn decode(record: &[u8]) -> Result<Tally, DecodeError> {
        let record: &[u8; TALLY_LEN] = record.try_into().map_err(|_| DecodeError("length"))?;
        let bytes = u64::from_le_bytes(record[1..].try_into().map_err(|_| DecodeError("bytes"))?);
        let login = |result| {
            if bytes == 0 {
                Ok(Tally::Login(result))
            } else {
                Err(DecodeError("a login with bytes"))
            }
        };
        let transfer = |direction, ok| {
            Ok(Tally::Transfer {
                direction,
                ok,
                bytes,
            })
        };
        match record[0] {
            LOGIN_OK => login(LoginResult::Ok),
            LOGIN_FAILED => login(LoginResult::Failed),
            LOGIN_REFUSED => login(LoginResult::Refused),
            UPLOAD_OK => transfer(Direction::Upload, true),
            UPLOAD_FAILED => transfer(Direction::Upload, false),
            DOWNLOAD_OK => transfer(Direction::Download, true),
            DOWNLOAD_FAILED => transfer(Direction::Download, false),
            _ => Err(DecodeError("kind")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tally_survives_a_round_trip() {
        for tally in [
            Tally::Login(LoginResult::Ok),
            Tally::Login(LoginResult::Failed),
            Tally::Login(LoginResult::Refused),
            Tally::Transfer {
                direction: Direction::Upload,
                ok: true,
                bytes: u64::MAX,
            },
            Tally::Transfer {
                direction: Direction::Download,
                ok: false,
                bytes: 7,
            },
        ] {
            assert_eq!(Tally::decode(&tally.encode()), Ok(tally));
        }
    }

    #[test]
    fn malformed_tallies_are_refused() {
        let good = Tally::Login(LoginResult::Ok).encode();
        assert!(Tally::decode(&good[..8]).is_err());
        assert!(Tally::decode(&[good.as_slice(), &[0]].concat()).is_err());
        assert!(Tally::decode(&[]).is_err());
        let mut kind = good;
        kind[0] = 0;
        assert!(Tally::decode(&kind).is_err());
        kind[0] = 8;
        assert!(Tally::decode(&kind).is_err());
        let mut login_bytes = good;
        login_bytes[1] = 1;
        assert!(Tally::decode(&login_bytes).is_err());
    }
}
