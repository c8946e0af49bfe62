//! Arguments libunftp's parser would refuse, checked before a command is forwarded.
//!
//! libunftp reads commands through a `tokio_util` codec; when its parser refuses a line
//! (`InvalidCommand`: `REST abc`, `MODE Z`, `SIZE` without a path, `OPTS MLST …`, `NOOP x`,
//! `PBSZ 1`, `PROT X`, …) it answers `501 Invalid Parameter` — and the codec's stream ends after
//! an error, which libunftp takes for a closed connection: the session is gone. vsftpd keeps the
//! session. So every verb/argument shape libunftp's parser refuses
//! (`libunftp-0.24.0/src/server/controlchan/line_parser/parser.rs`) is decided here: answered
//! with vsftpd's reply, or rewritten into a line libunftp accepts.
//!
//! The shapes (argument after the relay's own parse; the relay already refuses control
//! characters, non-alphanumeric verbs and invalid UTF-8 verbs):
//! - must be empty: NOOP, PASV, FEAT, PWD, CDUP, QUIT, ABOR, STOU, CCC → the verb alone
//!   (vsftpd ignores the argument);
//! - must not be empty: PORT (the relay's PORT check), RETR, STOR, APPE, CWD, DELE, RMD, MKD,
//!   RNFR, RNTO, SIZE, MDTM, SITE MD5 → vsftpd's failure reply;
//! - must be one letter of a set, case-sensitive: STRU, MODE, PROT; `PBSZ` only `0`; `REST` a
//!   `u64`; `OPTS` only `UTF8 ON`/`UTF8 OFF` exactly.
//!
//! `TYPE` libunftp accepts with anything; it is answered here with vsftpd's words.

use std::borrow::Cow;

/// What to do with one command, if not "forward it as it is".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Send libunftp this line instead.
    Forward(String),
    /// Answer the client with this reply; libunftp sees nothing.
    Answer(Cow<'static, str>),
}

/// The data type the client asked for (reported by STAT; no conversion is ever done).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    Ascii,
    Binary,
}

/// vsftpd's reply to `TYPE arg`, and the type it sets.
///
/// rftpd, like vsftpd with its default `ascii_upload_enable = NO` and
/// `ascii_download_enable = NO`, transfers every file byte for byte whichever type is set.
pub fn data_type(arg: &str) -> Result<(DataType, &'static str), &'static str> {
    match arg.to_ascii_uppercase().as_str() {
        "A" | "A N" => Ok((DataType::Ascii, "200 Switching to ASCII mode.")),
        "I" | "L8" | "L 8" => Ok((DataType::Binary, "200 Switching to Binary mode.")),
        _ => Err("500 Unrecognised TYPE command."),
    }
}

/// The leading decimal digits of `arg` as vsftpd's `str_a_to_filesize_t` reads them: digits
/// up to the first other character, 0 if there are none or the number overflows.
fn leading_number(arg: &str) -> u64 {
    let digits: &str = &arg[..arg.find(|c: char| !c.is_ascii_digit()).unwrap_or(arg.len())];
    match digits.parse::<u64>() {
        Ok(n) if n <= i64::MAX as u64 => n,
        _ => 0,
    }
}

/// Decide `verb arg` (the verb upper-cased, X-verbs already renamed); `None`: forward as is.
pub fn check(verb: &str, arg: &str) -> Option<Decision> {
    let answer = |text: &'static str| Some(Decision::Answer(Cow::Borrowed(text)));
    let upper = arg.to_ascii_uppercase();
    match verb {
        "TYPE" => Some(Decision::Answer(Cow::Borrowed(match data_type(arg) {
            Ok((_, text)) | Err(text) => text,
        }))),
        "MODE" if upper == "S" => answer("200 Mode set to S."),
        "MODE" => answer("504 Bad MODE command."),
        "STRU" if upper == "F" => answer("200 Structure set to F."),
        "STRU" => answer("504 Bad STRU command."),
        "OPTS" if upper == "UTF8 ON" => answer("200 Always in UTF8 mode."),
        "OPTS" => answer("501 Option not understood."),
        // vsftpd takes any argument as a size of 0.
        "PBSZ" if arg != "0" => Some(Decision::Forward("PBSZ 0".into())),
        "PROT" if matches!(upper.as_str(), "C" | "P") && upper != arg => {
            Some(Decision::Forward(format!("PROT {upper}")))
        }
        "PROT" if matches!(upper.as_str(), "S" | "E") => answer("536 PROT not supported."),
        "PROT" if !matches!(upper.as_str(), "C" | "P") => answer("504 PROT not recognised."),
        "REST" => {
            let offset = leading_number(arg);
            (arg != offset.to_string()).then(|| Decision::Forward(format!("REST {offset}")))
        }
        "NOOP" | "PASV" | "FEAT" | "PWD" | "CDUP" | "QUIT" | "ABOR" | "STOU" | "CCC"
            if !arg.is_empty() =>
        {
            Some(Decision::Forward(verb.to_string()))
        }
        _ if !arg.is_empty() => {
            let (site, rest) = arg.split_once(' ').unwrap_or((arg, ""));
            (verb == "SITE" && site.eq_ignore_ascii_case("MD5") && rest.is_empty())
                .then(|| Decision::Answer("501 Syntax error in parameters or arguments.".into()))
        }
        "RETR" => answer("550 Failed to open file."),
        "STOR" | "APPE" => answer("553 Could not create file."),
        "CWD" => answer("550 Failed to change directory."),
        "DELE" => answer("550 Delete operation failed."),
        "RMD" => answer("550 Remove directory operation failed."),
        "MKD" => answer("550 Create directory operation failed."),
        "RNFR" => answer("550 RNFR command failed."),
        "RNTO" => answer("503 RNFR required first."),
        "SIZE" => answer("550 Could not get file size."),
        "MDTM" => answer("550 Could not get file modification time."),
        // The relay's PORT/EPRT check answers an empty PORT.
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(verb: &str, arg: &str) -> String {
        match check(verb, arg) {
            Some(Decision::Answer(text)) => text.into_owned(),
            other => panic!("{verb} {arg:?}: {other:?}"),
        }
    }

    fn forwarded(verb: &str, arg: &str) -> Option<String> {
        match check(verb, arg) {
            Some(Decision::Forward(line)) => Some(line),
            None => None,
            other => panic!("{verb} {arg:?}: {other:?}"),
        }
    }

    #[test]
    fn type_mode_and_stru_get_vsftpds_replies() {
        assert_eq!(answered("TYPE", "A"), "200 Switching to ASCII mode.");
        assert_eq!(answered("TYPE", "a n"), "200 Switching to ASCII mode.");
        assert_eq!(answered("TYPE", "I"), "200 Switching to Binary mode.");
        assert_eq!(answered("TYPE", "L 8"), "200 Switching to Binary mode.");
        assert_eq!(answered("TYPE", "X"), "500 Unrecognised TYPE command.");
        assert_eq!(answered("TYPE", ""), "500 Unrecognised TYPE command.");
        assert_eq!(answered("MODE", "s"), "200 Mode set to S.");
        assert_eq!(answered("MODE", "Z"), "504 Bad MODE command.");
        assert_eq!(answered("MODE", "B"), "504 Bad MODE command.");
        assert_eq!(answered("STRU", "f"), "200 Structure set to F.");
        assert_eq!(answered("STRU", "X"), "504 Bad STRU command.");
        assert_eq!(answered("STRU", ""), "504 Bad STRU command.");
    }

    #[test]
    fn rest_takes_the_leading_digits_as_vsftpd_does() {
        assert_eq!(forwarded("REST", "100"), None);
        assert_eq!(forwarded("REST", "abc").as_deref(), Some("REST 0"));
        assert_eq!(forwarded("REST", "").as_deref(), Some("REST 0"));
        assert_eq!(forwarded("REST", "12x").as_deref(), Some("REST 12"));
        assert_eq!(forwarded("REST", "-5").as_deref(), Some("REST 0"));
        assert_eq!(
            forwarded("REST", "99999999999999999999999").as_deref(),
            Some("REST 0")
        );
    }

    #[test]
    fn verbs_that_take_no_argument_lose_it() {
        for verb in [
            "NOOP", "PASV", "FEAT", "PWD", "CDUP", "QUIT", "ABOR", "STOU",
        ] {
            assert_eq!(forwarded(verb, "x y").as_deref(), Some(verb));
            assert_eq!(forwarded(verb, ""), None);
        }
    }

    #[test]
    fn verbs_that_need_an_argument_fail_without_one() {
        assert_eq!(answered("SIZE", ""), "550 Could not get file size.");
        assert_eq!(
            answered("MDTM", ""),
            "550 Could not get file modification time."
        );
        assert_eq!(answered("CWD", ""), "550 Failed to change directory.");
        assert_eq!(answered("RETR", ""), "550 Failed to open file.");
        assert_eq!(answered("STOR", ""), "553 Could not create file.");
        assert_eq!(answered("RNTO", ""), "503 RNFR required first.");
        assert!(answered("SITE", "md5").starts_with("501 "));
        for verb in ["SIZE", "MDTM", "CWD", "RETR", "STOR", "DELE", "MKD", "SITE"] {
            assert_eq!(forwarded(verb, "name"), None, "{verb}");
        }
        assert_eq!(forwarded("SITE", "MD5 file"), None);
        assert_eq!(forwarded("LIST", ""), None);
        assert_eq!(forwarded("STAT", ""), None);
    }

    #[test]
    fn opts_pbsz_and_prot_never_reach_libunftp_in_a_shape_it_refuses() {
        assert_eq!(answered("OPTS", "utf8 On"), "200 Always in UTF8 mode.");
        // OPTS MLST is answered by the relay (it knows the session's facts).
        assert_eq!(answered("OPTS", "MLSX"), "501 Option not understood.");
        assert_eq!(answered("OPTS", ""), "501 Option not understood.");
        assert_eq!(forwarded("PBSZ", "0"), None);
        assert_eq!(forwarded("PBSZ", "16384").as_deref(), Some("PBSZ 0"));
        assert_eq!(forwarded("PBSZ", "").as_deref(), Some("PBSZ 0"));
        assert_eq!(forwarded("PROT", "P"), None);
        assert_eq!(forwarded("PROT", "c").as_deref(), Some("PROT C"));
        assert_eq!(answered("PROT", "S"), "536 PROT not supported.");
        assert_eq!(answered("PROT", "PP"), "504 PROT not recognised.");
        assert_eq!(answered("PROT", ""), "504 PROT not recognised.");
    }
}

/// `CWD arg` from `cwd` when `arg` climbs above the root: the path with every `..` at the
/// root dropped, as the kernel does at `/` (vsftpd: `CWD ..` at the jail root is `250` and
/// stays at `/`); `None` when it does not climb (the storage backend's checks decide).
pub fn clamped_cwd(cwd: &std::path::Path, arg: &str) -> Option<String> {
    let (path, climbed, _) = lexical_cwd(cwd, arg);
    climbed.then_some(path)
}

/// `CWD arg` from `cwd` as one absolute path without `.` or `..` (clamped at the root), when
/// `arg` has any: libunftp joins the argument to its working directory as it is, so a client
/// that goes `CWD dir` / `CWD ..` over and over would grow `/dir/../dir/..` until the path is
/// too long for the kernel (`550`). Only for a `cwd` known to be current.
pub fn normalized_cwd(cwd: &std::path::Path, arg: &str) -> Option<String> {
    let (path, climbed, dotted) = lexical_cwd(cwd, arg);
    (climbed || dotted).then_some(path)
}

/// `CWD arg` from `cwd` as one absolute path without `.` or `..`, clamped at the root (the
/// relay's own `CWD`). Only for a `cwd` known to be current.
pub fn absolute_cwd(cwd: &std::path::Path, arg: &str) -> String {
    lexical_cwd(cwd, arg).0
}

/// The lexical join of `cwd` and `arg`; whether it climbed above the root; whether it had a
/// `.` or `..` component at all.
fn lexical_cwd(cwd: &std::path::Path, arg: &str) -> (String, bool, bool) {
    use std::path::Component;
    let mut parts: Vec<String> = Vec::new();
    let (mut climbed, mut dotted) = (false, false);
    for component in cwd.join(arg).components() {
        match component {
            Component::ParentDir if parts.is_empty() => climbed = true,
            Component::ParentDir => {
                dotted = true;
                parts.pop();
            }
            Component::Normal(name) => parts.push(name.to_string_lossy().into_owned()),
            Component::CurDir => dotted = true,
            Component::RootDir | Component::Prefix(_) => {}
        }
    }
    (format!("/{}", parts.join("/")), climbed, dotted)
}

/// libunftp's fixed reply lines that vsftpd words differently, and vsftpd's words for them: the
/// end of a transfer (RETR/STOR/APPE), of a listing (LIST/NLST/MLSD) and of an ABOR.
const VSFTPD_WORDS: &[(&[u8], &[u8])] = &[
    (b"226 Successfully sent", b"226 Transfer complete."),
    (b"226 File successfully written", b"226 Transfer complete."),
    (b"226 Listed the directory", b"226 Directory send OK."),
    (
        b"226 Failed to list the directory",
        b"226 Transfer done (but failed to open directory).",
    ),
    (
        b"226 Data channel already closed",
        b"225 No transfer to ABOR.",
    ),
    (b"226 Closed data channel", b"226 ABOR successful."),
];

/// A reply line from libunftp in the shape vsftpd gives: MKD's `257 /path` quoted as RFC 959
/// says (a `"` inside doubled), MLST's `550 storage error: …` without library words, and
/// vsftpd's words for the end of a transfer, a listing or an ABOR (`VSFTPD_WORDS`).
pub fn engine_line(line: &[u8]) -> Option<Vec<u8>> {
    if let Some((_, words)) = VSFTPD_WORDS.iter().find(|(libunftp, _)| *libunftp == line) {
        return Some(words.to_vec());
    }
    if let Some(path) = line.strip_prefix(b"257 ")
        && path.first() != Some(&b'"')
    {
        let path = String::from_utf8_lossy(path).replace('"', "\"\"");
        return Some(format!("257 \"{path}\" created").into_bytes());
    }
    line.starts_with(b"550 storage error:")
        .then(|| b"550 Could not get file status.".to_vec())
}

#[cfg(test)]
mod reply_tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn cwd_above_the_root_stays_at_the_root() {
        assert_eq!(clamped_cwd(Path::new("/"), "..").as_deref(), Some("/"));
        assert_eq!(
            clamped_cwd(Path::new("/a"), "../../b").as_deref(),
            Some("/b")
        );
        assert_eq!(
            clamped_cwd(Path::new("/"), "/../a/..").as_deref(),
            Some("/")
        );
        assert_eq!(clamped_cwd(Path::new("/a"), ".."), None);
        assert_eq!(clamped_cwd(Path::new("/"), "a/../b"), None);
    }

    #[test]
    fn a_cwd_with_dot_or_dot_dot_becomes_one_absolute_path() {
        assert_eq!(normalized_cwd(Path::new("/a"), "..").as_deref(), Some("/"));
        assert_eq!(
            normalized_cwd(Path::new("/a/b"), "../c/./d").as_deref(),
            Some("/a/c/d")
        );
        assert_eq!(normalized_cwd(Path::new("/"), "..").as_deref(), Some("/"));
        assert_eq!(normalized_cwd(Path::new("/a"), "b c"), None);
        assert_eq!(normalized_cwd(Path::new("/a"), "/x/y"), None);
        assert_eq!(absolute_cwd(Path::new("/a"), "b c"), "/a/b c");
        assert_eq!(absolute_cwd(Path::new("/a"), "/x//y/"), "/x/y");
        assert_eq!(absolute_cwd(Path::new("/a"), "../../.."), "/");
    }

    #[test]
    fn transfer_and_listing_ends_are_worded_as_vsftpd_words_them() {
        for (libunftp, vsftpd) in [
            (
                &b"226 Successfully sent"[..],
                &b"226 Transfer complete."[..],
            ),
            (b"226 File successfully written", b"226 Transfer complete."),
            (b"226 Listed the directory", b"226 Directory send OK."),
            (
                b"226 Data channel already closed",
                b"225 No transfer to ABOR.",
            ),
        ] {
            assert_eq!(engine_line(libunftp).as_deref(), Some(vsftpd));
        }
        // Only the whole line: a name or other text that starts the same way is left alone.
        assert_eq!(engine_line(b"226 Successfully sent more"), None);
    }

    #[test]
    fn mkd_replies_are_quoted_and_storage_errors_named_plainly() {
        assert_eq!(
            engine_line(b"257 /x y").unwrap(),
            b"257 \"/x y\" created".to_vec()
        );
        assert_eq!(
            engine_line(b"257 /say \"hi\"").unwrap(),
            b"257 \"/say \"\"hi\"\"\" created".to_vec()
        );
        assert_eq!(engine_line(b"257 \"/\" is the current directory"), None);
        assert_eq!(
            engine_line(b"550 storage error: 550 Permanent file not available").unwrap(),
            b"550 Could not get file status.".to_vec()
        );
        assert_eq!(engine_line(b"550 File not found"), None);
    }
}
