//! One parser for a command line's verb and argument, used by every check in the pre-login
//! process and the worker's relay.
//!
//! SECURITY: a line holding any control character other than its CR LF terminator (a bare CR,
//! NUL, ESC, BEL, TAB, DEL, …) is refused as a whole. libunftp splits on CR as well as on
//! space; if a relay check looked at `USER\rname` as one unknown verb while the engine saw
//! `USER`, every check could be bypassed. What the engine is given is the line rebuilt from
//! this parse ([`Command::line`]), so both see the same verb.

use std::borrow::Cow;

/// A parsed command: the verb upper-cased, the argument as it came (lossy UTF-8 from
/// [`parse`]; the reversible mapping of `crate::names` from [`parse_names`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command<'a> {
    pub verb: String,
    pub arg: Cow<'a, str>,
}

/// Why a line is not a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A control character inside the line.
    ControlCharacter,
    /// No verb, or a verb that is not letters and digits.
    NoVerb,
}

impl Refusal {
    /// The reply to send; the session goes on.
    pub fn reply(self) -> &'static str {
        match self {
            Refusal::ControlCharacter => "500 Illegal character in command.",
            Refusal::NoVerb => "500 Unknown command.",
        }
    }
}

/// Longest verb (SITE subcommands are arguments; RFC verbs are 3–4 letters).
const MAX_VERB: usize = 16;

/// Parse one line (its CR LF already removed).
pub fn parse(line: &[u8]) -> Result<Command<'_>, Refusal> {
    let (verb, arg) = split(line)?;
    Ok(Command {
        verb,
        arg: String::from_utf8_lossy(arg),
    })
}

/// Parse one line for the worker's relay: as [`parse`], but an argument's bytes that are not
/// UTF-8 are kept, mapped by [`crate::names::to_engine`], so a file name passes through libunftp
/// byte for byte (and [`Command::line`] gives libunftp that mapped form).
pub fn parse_names(line: &[u8]) -> Result<Command<'_>, Refusal> {
    let (verb, arg) = split(line)?;
    Ok(Command {
        verb,
        arg: crate::names::to_engine(arg),
    })
}

/// The argument's bytes as they came (`PASS`: a password is bytes, and PAM takes them as a C
/// string, so nothing is replaced); the same refusals as [`parse`].
pub fn argument_bytes(line: &[u8]) -> Result<&[u8], Refusal> {
    split(line).map(|(_, arg)| arg)
}

/// The upper-cased verb and the argument's bytes.
fn split(line: &[u8]) -> Result<(String, &[u8]), Refusal> {
    if line.iter().any(|b| *b < 0x20 || *b == 0x7f) {
        return Err(Refusal::ControlCharacter);
    }
    let start = line.iter().position(|b| *b != b' ').unwrap_or(line.len());
    let line = &line[start..];
    let (verb, arg) = match line.iter().position(|b| *b == b' ') {
        Some(space) => (&line[..space], &line[space + 1..]),
        None => (line, &line[line.len()..]),
    };
    if verb.is_empty() || verb.len() > MAX_VERB || !verb.iter().all(u8::is_ascii_alphanumeric) {
        return Err(Refusal::NoVerb);
    }
    Ok((String::from_utf8_lossy(verb).to_ascii_uppercase(), arg))
}

impl Command<'_> {
    /// The line as the engine is to see it: `VERB` or `VERB argument`.
    pub fn line(&self) -> String {
        if self.arg.is_empty() {
            self.verb.clone()
        } else {
            format!("{} {}", self.verb, self.arg)
        }
    }

    /// The same command under another verb (RFC 775's X-verbs → the verbs libunftp knows).
    pub fn renamed(&self, verb: &str) -> String {
        Command {
            verb: verb.to_string(),
            arg: self.arg.clone(),
        }
        .line()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> (String, String) {
        let c = parse(line.as_bytes()).unwrap();
        (c.verb, c.arg.into_owned())
    }

    #[test]
    fn verbs_are_upper_cased_and_split_at_the_first_space() {
        assert_eq!(ok("user alice"), ("USER".into(), "alice".into()));
        assert_eq!(ok("PASS with space"), ("PASS".into(), "with space".into()));
        assert_eq!(ok("noop"), ("NOOP".into(), "".into()));
        assert_eq!(ok("  CWD  two"), ("CWD".into(), " two".into()));
        assert_eq!(parse(b"CWD x").unwrap().line(), "CWD x");
        assert_eq!(parse(b"pwd").unwrap().line(), "PWD");
    }

    #[test]
    fn control_characters_anywhere_refuse_the_line() {
        for bad in [
            &b"AUTH\rTLS"[..],
            b"USER\rroot",
            b"PORT\r127,0,0,2,4,1",
            b"NOOP\x07",
            b"\r\0",
            b"USER a\x1b[1A",
            b"RETR a\0b",
            b"STOR a\tb",
            b"NOOP\x7f",
        ] {
            assert_eq!(parse(bad), Err(Refusal::ControlCharacter), "{bad:?}");
        }
    }

    #[test]
    fn lines_without_a_proper_verb_are_refused() {
        for bad in [
            &b""[..],
            b"   ",
            b"US-ER x",
            b"\xffUSER",
            b"ABCDEFGHIJKLMNOPQ",
        ] {
            assert_eq!(parse(bad), Err(Refusal::NoVerb), "{bad:?}");
        }
    }

    #[test]
    fn arguments_that_are_not_utf8_survive_as_replacement_characters() {
        assert_eq!(ok("USER ab\u{fffd}cd").1, "ab\u{fffd}cd");
        assert_eq!(parse(b"USER ab\xffcd").unwrap().arg, "ab\u{fffd}cd");
    }

    #[test]
    fn argument_bytes_are_the_bytes_after_the_verb() {
        assert_eq!(argument_bytes(b"PASS caf\xe9 x").unwrap(), b"caf\xe9 x");
        assert_eq!(argument_bytes(b"PASS").unwrap(), b"");
        assert!(argument_bytes(b"PASS a\x01").is_err());
    }

    #[test]
    fn the_relay_parse_keeps_every_byte_of_a_name_and_still_refuses_control_characters() {
        let c = parse_names(b"retr caf\xe9 \xff.txt").unwrap();
        assert_eq!(c.verb, "RETR");
        assert_eq!(c.arg, "caf\u{F7E9} \u{F7FF}.txt");
        assert_eq!(c.line(), "RETR caf\u{F7E9} \u{F7FF}.txt");
        assert_eq!(
            &*crate::names::to_wire(c.line().as_bytes()),
            b"RETR caf\xe9 \xff.txt"
        );
        assert_eq!(
            parse_names(b"CWD caf\xe9").unwrap().renamed("CWD"),
            "CWD caf\u{F7E9}"
        );
        assert_eq!(
            parse_names(b"STOR a\xe9\rb"),
            Err(Refusal::ControlCharacter)
        );
        assert_eq!(
            parse_names(b"DELE \xe9\x00"),
            Err(Refusal::ControlCharacter)
        );
        assert_eq!(parse_names(b"\xe9DELE x"), Err(Refusal::NoVerb));
        assert_eq!(parse_names(b"NOOP").unwrap().arg, "");
    }
}
