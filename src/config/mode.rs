//! [`Mode`]: a file mode or umask as written in the configuration (`0o022`, `"022"`).
//!
//! What it does: reads a mode from TOML (an integer, or a string of octal digits), refusing
//! anything above 0o7777, and writes it back as a string of octal digits.
//!
//! What it must never do: accept a non-octal digit or a value above 0o7777 silently, or touch
//! anything outside the value it is given (no I/O, no `unsafe`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The largest value a [`Mode`] may hold when read from TOML.
const MODE_MAX: u32 = 0o7777;

/// A file mode such as a umask. Accepts in TOML: an integer (`0o022`; `Config::parse` refuses
/// a bare decimal one such as `22`, which is rarely what was meant), or a
/// string of octal digits (`"022"`, `"0022"`, `"0o022"`). Must be <= 0o7777. Serializes as
/// a string of four octal digits (`"0022"`), as it displays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode(pub u32);

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

impl Serialize for Mode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // A string of octal digits: an integer would be written in decimal, which
        // `Config::parse` refuses for a mode.
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ModeVisitor)
    }
}

struct ModeVisitor;

impl ModeVisitor {
    fn checked<E: serde::de::Error>(value: u64, shown: &dyn fmt::Display) -> Result<Mode, E> {
        if value > u64::from(MODE_MAX) {
            Err(E::custom(format!("mode {shown} is larger than 0o7777")))
        } else {
            // Cannot truncate: value <= 0o7777.
            Ok(Mode(value as u32))
        }
    }
}

impl serde::de::Visitor<'_> for ModeVisitor {
    type Value = Mode;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an octal file mode: an integer such as 0o022 or a string such as \"022\"")
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Mode, E> {
        match u64::try_from(v) {
            Ok(u) => Self::checked(u, &format_args!("0o{u:o}")),
            Err(_) => Err(E::custom(format!("mode {v} is negative"))),
        }
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Mode, E> {
        Self::checked(v, &format_args!("0o{v:o}"))
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Mode, E> {
        let digits = s.strip_prefix("0o").unwrap_or(s);
        if digits.is_empty() || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return Err(E::custom(format!(
                "{s:?} is not an octal mode (octal digits 0-7 only, e.g. \"022\")"
            )));
        }
        match u64::from_str_radix(digits, 8) {
            Ok(v) => Self::checked(v, &format_args!("{s:?}")),
            Err(_) => Err(E::custom(format!("mode {s:?} is larger than 0o7777"))),
        }
    }
}
