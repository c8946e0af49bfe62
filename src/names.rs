//! File names as byte strings: the reversible mapping between the bytes a client sends or a
//! directory holds and the UTF-8 text libunftp works with.
//!
//! libunftp reads every command as text (lossily: a byte that is not UTF-8 becomes U+FFFD) and
//! hands paths on as text. vsftpd passes a name's bytes through untouched, so rftpd maps every
//! byte that is not part of valid UTF-8 to one code point of the private-use range
//! U+F780–U+F7FF (U+F700 + the byte) on the way in, and back on the way out. A name that really
//! holds a code point of that range (three UTF-8 bytes `EF 9E|9F 80–BF`) has each of its three
//! bytes mapped the same way, so the rule "a code point of U+F780–U+F7FF stands for one byte"
//! has no exception and the mapping is injective: [`to_wire`] ∘ [`to_engine`] is the identity
//! on every byte string. Valid UTF-8 outside that range is never changed.
//!
//! Where it is applied — the edges, nowhere in between:
//! - the relay maps each client command line with [`to_engine`] and each libunftp reply line
//!   with [`to_wire`] (so `PWD`, `MKD`, `MLST`, `STAT path` carry the raw bytes);
//! - the storage backend turns each path from libunftp into the filesystem's bytes with
//!   [`to_fs`] just before a system call, and each name read from a directory into text with
//!   [`from_fs`]; listings it writes to a data connection go out through [`to_wire`].
//!
//! Every check (`deny_file`, `hide_file`, dot files, the root clamp) sees the mapped text, in
//! which a byte that is not UTF-8 can never look like `/`, `.`, `*` or a control character.
//! Nothing here allocates unless a name actually needs mapping, and nothing here panics.

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// First code point of the range that stands for bytes (U+F700 + 0x80).
const BASE: u32 = 0xF700;

/// The code point standing for byte `b` (always ≥ 0x80: bytes below are ASCII, always valid).
fn stand_in(b: u8) -> char {
    char::from_u32(BASE + u32::from(b)).unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// Whether `c` is one of the code points that stand for a byte.
fn is_stand_in(c: char) -> bool {
    (0xF780..=0xF7FF).contains(&u32::from(c))
}

/// Wire or filesystem bytes → the text libunftp is given.
pub fn to_engine(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(bytes)
        && !text.chars().any(is_stand_in)
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if is_stand_in(c) {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push(stand_in(b));
                }
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push(stand_in(*b));
        }
    }
    Cow::Owned(out)
}

/// Whether `bytes[i..]` starts with the UTF-8 encoding of a stand-in (`EF 9E|9F 80–BF`).
fn stand_in_at(bytes: &[u8], i: usize) -> Option<u8> {
    match bytes.get(i..i + 3) {
        Some(&[0xEF, 0x9E, c @ 0x80..=0xBF]) => Some(c),
        Some(&[0xEF, 0x9F, c @ 0x80..=0xBF]) => Some(c + 0x40),
        _ => None,
    }
}

/// Text from libunftp or the storage backend (as bytes: a reply line, a listing) → the bytes
/// for the wire. Bytes that are not UTF-8 pass unchanged; a stand-in becomes its byte (never
/// below 0x80, so no CR, LF, `"` or `/` can appear that was not there).
pub fn to_wire(bytes: &[u8]) -> Cow<'_, [u8]> {
    // Only an 0xEF can start a stand-in: skip from one to the next (large listings stay cheap).
    let next_stand_in = |from: usize| {
        let mut at = from;
        while let Some(p) = bytes[at..].iter().position(|b| *b == 0xEF) {
            if let Some(b) = stand_in_at(bytes, at + p) {
                return Some((at + p, b));
            }
            at += p + 1;
        }
        None
    };
    let Some(mut found) = next_stand_in(0) else {
        return Cow::Borrowed(bytes);
    };
    let mut out = Vec::with_capacity(bytes.len());
    let mut copied = 0;
    loop {
        let (at, b) = found;
        out.extend_from_slice(&bytes[copied..at]);
        out.push(b);
        copied = at + 3;
        match next_stand_in(copied) {
            Some(f) => found = f,
            None => break,
        }
    }
    out.extend_from_slice(&bytes[copied..]);
    Cow::Owned(out)
}

/// A path from libunftp → the path the kernel is to see.
pub fn to_fs(path: &Path) -> Cow<'_, Path> {
    match to_wire(path.as_os_str().as_bytes()) {
        Cow::Borrowed(_) => Cow::Borrowed(path),
        Cow::Owned(bytes) => Cow::Owned(PathBuf::from(OsString::from_vec(bytes))),
    }
}

/// A name (or path) read from the filesystem → the text libunftp and the listings work with.
pub fn from_fs(name: &OsStr) -> Cow<'_, str> {
    to_engine(name.as_bytes())
}

/// A mapped name for a log line: the raw bytes that are not UTF-8 written `\xNN`, the rest as
/// it is (the log writer escapes control characters).
pub fn for_log(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_stand_in) {
        return Cow::Borrowed(text);
    }
    let wire = to_wire(text.as_bytes());
    let mut out = String::with_capacity(wire.len() + 8);
    for chunk in wire.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(bytes: &[u8]) {
        let engine = to_engine(bytes);
        assert_eq!(
            &*to_wire(engine.as_bytes()),
            bytes,
            "{bytes:x?} via {engine:?}"
        );
        // The engine form of valid UTF-8 outside the range is the text itself.
        if let Ok(text) = std::str::from_utf8(bytes)
            && !text.chars().any(is_stand_in)
        {
            assert!(matches!(engine, Cow::Borrowed(_)));
        }
    }

    #[test]
    fn utf8_names_are_left_alone() {
        for name in [
            "",
            "plain.txt",
            "café.txt",
            "日本語",
            "a b/c",
            "\u{F77F}\u{F800}",
        ] {
            assert_eq!(to_engine(name.as_bytes()), name);
            assert_eq!(&*to_wire(name.as_bytes()), name.as_bytes());
            round_trip(name.as_bytes());
        }
    }

    #[test]
    fn latin1_and_invalid_bytes_become_stand_ins_and_come_back() {
        assert_eq!(to_engine(b"caf\xe9.txt"), "caf\u{F7E9}.txt");
        assert_eq!(to_engine(b"\xff\xfe"), "\u{F7FF}\u{F7FE}");
        assert_eq!(&*to_wire("caf\u{F7E9}.txt".as_bytes()), b"caf\xe9.txt");
        // What is not a whole stand-in passes to the wire unchanged.
        for raw in [
            &b"\xef"[..],
            b"\xef\x9e",
            b"a\xef\x41\xef\x9f",
            b"\xef\xbf\xbd",
        ] {
            assert_eq!(&*to_wire(raw), raw);
        }
        assert_eq!(
            &*to_wire("a\u{F7E9}\u{F7E9}b\u{F780}".as_bytes()),
            b"a\xe9\xe9b\x80"
        );
        // A truncated sequence: each byte on its own.
        assert_eq!(to_engine(b"a\xe2\x82"), "a\u{F7E2}\u{F782}");
        for bytes in [
            &b"caf\xe9.txt"[..],
            b"\xff\xfe",
            b"\x80",
            b"\xc3",
            b"\xc3\xa9\xe9",
            b"\xed\xa0\x80", // a UTF-16 surrogate encoded: not UTF-8
            b"\xf4\x90\x80\x80",
        ] {
            round_trip(bytes);
        }
    }

    #[test]
    fn real_stand_in_code_points_are_escaped_so_the_mapping_stays_injective() {
        let real = "x\u{F7E9}y";
        let engine = to_engine(real.as_bytes());
        assert_eq!(engine, "x\u{F7EF}\u{F79F}\u{F7A9}y");
        assert_ne!(engine, to_engine(b"x\xe9y"));
        round_trip(real.as_bytes());
        round_trip("\u{F780}\u{F7FF}\u{F7C0}\u{F7BF}".as_bytes());
    }

    #[test]
    fn stand_ins_never_produce_ascii() {
        for b in 0x80..=0xFFu8 {
            let wire = to_wire(stand_in(b).to_string().as_bytes()).into_owned();
            assert_eq!(wire, vec![b]);
        }
        assert_eq!(stand_in(0x80), '\u{F780}');
        assert_eq!(stand_in(0xFF), '\u{F7FF}');
    }

    #[test]
    fn paths_map_to_raw_bytes_for_the_kernel() {
        let p = PathBuf::from("/dir\u{F7E9}/caf\u{F7E9}.txt");
        assert_eq!(to_fs(&p).as_os_str().as_bytes(), b"/dir\xe9/caf\xe9.txt");
        assert!(matches!(to_fs(Path::new("/plain")), Cow::Borrowed(_)));
        assert_eq!(
            from_fs(OsStr::from_bytes(b"caf\xe9")),
            "caf\u{F7E9}".to_string()
        );
    }

    #[test]
    fn log_form_shows_raw_bytes_escaped() {
        assert_eq!(for_log("caf\u{F7E9}.txt"), "caf\\xe9.txt");
        assert_eq!(for_log("café"), "café");
        assert_eq!(for_log(&to_engine("x\u{F7E9}".as_bytes())), "x\u{F7E9}");
    }

    fn lossless_count(hay: &[u8], needle: &[u8]) -> usize {
        hay.windows(needle.len()).filter(|w| *w == needle).count()
    }

    /// Bounded random round trips (a fixed-seed xorshift: the same cases every run).
    #[test]
    fn random_byte_strings_round_trip() {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        // Bytes drawn mostly from the interesting places: ASCII, lead and continuation
        // bytes, and the encoding of the stand-in range.
        let alphabet: &[u8] = b"a/.\x80\x9e\x9f\xbf\xc3\xa9\xe2\x82\xac\xef\xf0\xf4\xfe\xff";
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    let r = next();
                    if r % 4 == 0 {
                        (r >> 8) as u8
                    } else {
                        alphabet[(r >> 8) as usize % alphabet.len()]
                    }
                })
                .collect();
            round_trip(&bytes);
            let engine = to_engine(&bytes);
            // The text libunftp sees holds exactly the ASCII bytes (`/`, `.`, CR, LF, NUL, …)
            // the bytes held, and U+FFFD only where the bytes spelled it.
            let ascii = |s: &[u8]| {
                s.iter()
                    .filter(|b| b.is_ascii())
                    .copied()
                    .collect::<Vec<u8>>()
            };
            assert_eq!(ascii(engine.as_bytes()), ascii(&bytes));
            let fffd = "\u{FFFD}";
            assert_eq!(
                engine.matches(fffd).count(),
                lossless_count(&bytes, fffd.as_bytes())
            );
        }
    }
}
