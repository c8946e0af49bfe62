//! Reading a vsftpd.conf the way vsftpd's `parseconf.c` does: `NAME=VALUE` lines, `#`
//! comment lines, leading spaces skipped.
//!
//! What it does: returns the valid settings in file order; each line vsftpd would refuse
//! becomes a comment and a warning.
//!
//! What it must never do: read anything but the text it is given, guess at a misspelled
//! name, or contain `unsafe` code.

use super::output::Translation;
use super::table::{VsftpdOption, vsftpd_option};

/// A valid `NAME=VALUE` line of the vsftpd file.
pub(super) struct Setting<'a> {
    pub(super) line: usize,
    pub(super) option: &'static VsftpdOption,
    /// The value as written.
    pub(super) raw: &'a str,
    /// Its TOML; `None` = unset (an empty string setting).
    pub(super) toml: Option<String>,
    /// What vsftpd does with the value when that is not what it looks like.
    pub(super) note: Option<String>,
}

/// Reads the file like vsftpd's `parseconf.c`; invalid lines become comments and warnings.
pub(super) fn read_vsftpd<'a>(
    text: &'a str,
    origin: &str,
    out: &mut Translation,
) -> Vec<Setting<'a>> {
    let mut settings = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        // vsftpd skips empty, all-space and '#' lines, then leading spaces of a setting.
        let trimmed = line.trim_start();
        if trimmed.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, raw) = trimmed.split_once('=').unwrap_or((trimmed, ""));
        let problem = match vsftpd_option(name) {
            None if trimmed.starts_with('#') => continue,
            None => Err(format!(
                "`{name}` is not a vsftpd setting (vsftpd refuses to start: unrecognised variable)"
            )),
            Some(option) => option
                .kind
                .read(option.name, Some(raw))
                .map(|r| (option, r)),
        };
        match problem {
            Ok((option, read)) => settings.push(Setting {
                line: number,
                option,
                raw,
                toml: read.toml,
                note: read.note,
            }),
            Err(why) => {
                out.warn(format!("{origin}:{number}: {why}; left out"));
                out.comment(format!("line {number}: `{trimmed}` left out: {why}"));
            }
        }
    }
    settings
}
