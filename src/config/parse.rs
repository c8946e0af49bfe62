//! Reading TOML into a [`Config`]: [`Config::parse`] (and `Config::load` for the tests).
//!
//! What it does: parses the text, stores each key through the key table, and reports every
//! problem at once with file, line, column and key: syntax errors (with hints for vsftpd
//! habits such as `YES`), unknown keys (with the closest known key, or "a vsftpd option rftpd
//! does not support"), wrong types, nested tables, and the semantic problems of
//! [`Config::validate`] placed at the line of their key.
//!
//! What it must never do: return `Ok` for a configuration with any problem, ignore an
//! unknown key, read any file but the one it is given (validation may open the files the
//! configuration names), or contain `unsafe` code.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::Path;

use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::error::io_message;
use super::keys::{FIELDS, Field, Kind, VSFTPD_ONLY, related_keys};
use super::validate::Files;
use super::{Config, ConfigError, ConfigErrors};

/// Where each top-level key sits in the text (the key's byte span).
pub(super) type Spans = HashMap<String, Range<usize>>;

impl Config {
    /// Reads and validates a file, without the host checks (the tests use it; the daemon
    /// uses [`Config::load_and_check_host`]). Every error names the file; I/O errors too
    /// (`cannot read: No such file or directory`).
    #[cfg(test)]
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        Config::parse(&read(path)?, &path.display().to_string())
    }

    /// Parses and validates text; `origin` is used as `file` in errors.
    ///
    /// Reports every problem: a TOML syntax error (one error, as the document cannot be read
    /// further), or else every unknown key, every value of the wrong type, every nested table,
    /// and every semantic problem found by [`Config::validate`] (except those about keys that
    /// already have an error), sorted by position.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigErrors> {
        Config::parse_checking(text, origin, Files::Check)
    }

    /// [`Config::parse`] without looking at the files the configuration names (user and chroot
    /// lists, banner, TLS pair): for `rftpd import-vsftpd`, which must carry those keys over
    /// even when the files are missing here, so that `--check-config` refuses the result
    /// (fail closed) rather than the importer quietly dropping them.
    pub fn parse_without_files(text: &str, origin: &str) -> Result<Config, ConfigErrors> {
        Config::parse_checking(text, origin, Files::Skip)
    }

    fn parse_checking(text: &str, origin: &str, files: Files) -> Result<Config, ConfigErrors> {
        let error = |span: Option<&Range<usize>>, key: Option<&str>, message: String| {
            error_at(text, origin, span.map(|s| s.start), key, message)
        };

        let table = match DeTable::parse(text) {
            Ok(table) => table.into_inner(),
            Err(e) => {
                let span = e.span();
                let key = span.as_ref().and_then(|s| key_of_line(text, s.start));
                let message = syntax_message(text, e.message(), span.as_ref());
                return Err(ConfigErrors(vec![error(span.as_ref(), key, message)]));
            }
        };

        let mut config = Config::default();
        let mut errors = Vec::new();
        let mut spans = Spans::new();
        let mut bad_keys = HashSet::new();
        for (key, value) in table {
            let key_span = key.span();
            let value_span = value.span();
            let name: &str = key.get_ref();
            spans.insert(name.to_owned(), key_span.clone());
            let field = FIELDS.iter().find(|f| f.name == name);
            let problem = match (field, value.get_ref()) {
                (None, DeValue::Table(inner)) => Some((&key_span, table_message(None, inner))),
                (None, _) => Some((&key_span, unknown_key_message(name))),
                (Some(field), DeValue::Table(inner)) => {
                    Some((&key_span, table_message(Some(field), inner)))
                }
                (Some(field), found) => {
                    let found = describe_value(found);
                    let hint = quoted_value_hint(field.kind, value.get_ref());
                    let literal = text.get(value_span.clone()).unwrap_or_default();
                    let decimal = decimal_mode_message(field, literal);
                    match (field.set)(&mut config, ValueDeserializer::from(value)) {
                        Ok(()) if decimal.is_some() => decimal.map(|m| (&value_span, m)),
                        Ok(()) => None,
                        // A list of the right shape with a bad entry: name the entry.
                        Err(e) if field.kind == Kind::Networks && found == "an array" => {
                            Some((&value_span, e.message().to_owned()))
                        }
                        Err(_) => Some((
                            &value_span,
                            format!("expected {}, found {found}{hint}", field.kind.expected()),
                        )),
                    }
                }
            };
            if let Some((span, message)) = problem {
                errors.push(error(Some(span), Some(name), message));
                bad_keys.insert(name.to_owned());
            }
        }

        let problems = match files {
            Files::Check => config.validate().err().unwrap_or_default(),
            Files::Skip => config.problems(Files::Skip),
        };
        for problem in problems {
            let key = problem.key.as_deref().unwrap_or_default();
            let involved = || std::iter::once(key).chain(related_keys(key).iter().copied());
            if involved().any(|k| bad_keys.contains(k)) {
                continue;
            }
            let span = involved().find_map(|k| spans.get(k));
            errors.push(error(span, Some(key), problem.message));
        }

        if errors.is_empty() {
            Ok(config)
        } else {
            errors.sort_by_key(|e| (e.line.is_none(), e.line, e.column));
            Err(ConfigErrors(errors))
        }
    }
}

/// The error for a mode written as a bare decimal integer (`local_umask = 22`): TOML reads it
/// as decimal, which is almost never what was meant, so it is refused with the octal value it
/// really is and the spelling of the value that was probably meant. `None` for `0`, `0o…`
/// integers, strings and other kinds of key.
pub(super) fn decimal_mode_message(field: &Field, literal: &str) -> Option<String> {
    if field.kind != Kind::Mode {
        return None;
    }
    let digits = literal.trim().trim_start_matches('+').replace('_', "");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: u64 = digits.parse().ok()?;
    if value == 0 {
        return None;
    }
    let name = field.name;
    let now = format!("0o{value:03o} for the mode it is now");
    let advice = if digits.bytes().all(|b| b <= b'7') {
        let octal = u64::from_str_radix(&digits, 8).ok()?;
        format!("write \"{digits:0>3}\" (or 0o{octal:03o}) for octal {digits:0>3}, or {now}")
    } else {
        format!("write {now}")
    };
    Some(format!(
        "`{name} = {literal}` is decimal {value} = octal {value:03o}; modes are octal: {advice}"
    ))
}

/// 1-based line and column (in characters) of a byte offset.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The bare key at the start of the line holding `offset`, if the line looks like `key = …`.
pub(super) fn key_of_line(text: &str, offset: usize) -> Option<&str> {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next().unwrap_or("").trim_start();
    let end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(line.len());
    let (key, rest) = line.split_at(end);
    (!key.is_empty() && rest.trim_start().starts_with('=')).then_some(key)
}

/// The message for a TOML syntax error, with a hint for the mistakes vsftpd users make.
pub(super) fn syntax_message(text: &str, message: &str, span: Option<&Range<usize>>) -> String {
    let token = span
        .and_then(|s| text.get(s.start..s.end.max(s.start)))
        .unwrap_or("");
    let bool_word = ["yes", "no", "true", "false", "on", "off"]
        .iter()
        .any(|w| token.eq_ignore_ascii_case(w));
    let hint = if message.contains("must be quoted") && bool_word {
        " (booleans are written `true` or `false`, lower case, without quotes)"
    } else if message.contains("leading zero") {
        " (write a file mode as 0o022 or \"022\")"
    } else {
        ""
    };
    let message = message
        .strip_suffix(", expected nothing")
        .unwrap_or(message);
    format!("invalid TOML: {message}{hint}")
}

/// A short description of a value as found in the file.
pub(super) fn describe_value(value: &DeValue<'_>) -> String {
    match value {
        DeValue::String(s) => {
            let s: &str = s;
            if s.chars().count() > 40 {
                let short: String = s.chars().take(40).collect();
                format!("the string {short:?}…")
            } else {
                format!("the string {s:?}")
            }
        }
        DeValue::Integer(i) => format!("the integer {}", i.as_str()),
        DeValue::Float(f) => format!("the number {}", f.as_str()),
        DeValue::Boolean(b) => format!("the boolean {b}"),
        DeValue::Datetime(d) => format!("the date/time {d}"),
        DeValue::Array(_) => "an array".to_owned(),
        DeValue::Table(_) => "a table".to_owned(),
    }
}

/// "; write `true` without quotes" when a quoted value would have been right unquoted.
pub(super) fn quoted_value_hint(kind: Kind, value: &DeValue<'_>) -> String {
    let DeValue::String(s) = value else {
        return String::new();
    };
    let s = s.trim();
    match kind {
        Kind::Bool => {
            let word = match s.to_ascii_lowercase().as_str() {
                "yes" | "true" | "on" => "true",
                "no" | "false" | "off" => "false",
                _ => return String::new(),
            };
            format!("; write `{word}` without quotes")
        }
        Kind::Port | Kind::Count | Kind::Seconds if s.parse::<u64>().is_ok() => {
            format!("; write `{s}` without quotes")
        }
        _ => String::new(),
    }
}

/// The message for a key whose value is a table (a `[section]`, dotted key or inline table).
pub(super) fn table_message(field: Option<&Field>, inner: &DeTable<'_>) -> String {
    let mut message = match field {
        Some(field) => format!(
            "expected {}, found a table; rftpd keys are all top-level",
            field.kind.expected()
        ),
        None => "nested tables are not supported: rftpd keys are all top-level".to_owned(),
    };
    let known: Vec<String> = inner
        .keys()
        .filter(|k| FIELDS.iter().any(|f| f.name == k.get_ref().as_ref()))
        .map(|k| format!("`{}`", k.get_ref()))
        .collect();
    if !known.is_empty() {
        message.push_str(&format!(
            " (move {} above the first [section] header)",
            known.join(", ")
        ));
    }
    message
}

pub(super) fn unknown_key_message(key: &str) -> String {
    if VSFTPD_ONLY.contains(&key) {
        return format!("unknown key (`{key}` is a vsftpd option that rftpd does not support)");
    }
    match suggest(key) {
        Some(known) => format!("unknown key (did you mean `{known}`?)"),
        None => "unknown key".to_owned(),
    }
}

/// The closest known key: a case/dash variant, else the nearest within edit distance 3,
/// else the nearest key that the unknown key is a prefix or suffix of (or the reverse),
/// preferring keys that are not about anonymous users (`umask` means `local_umask` far more
/// often than `anon_umask`).
pub(super) fn suggest(key: &str) -> Option<&'static str> {
    let normal = key.to_ascii_lowercase().replace('-', "_");
    let names = || FIELDS.iter().map(|f| f.name);
    if let Some(name) = names().find(|n| *n == normal) {
        return Some(name);
    }
    let nearest = |candidates: &mut dyn Iterator<Item = &'static str>| {
        candidates.min_by_key(|n| levenshtein(&normal, n))
    };
    if let Some(best) = nearest(&mut names()).filter(|n| levenshtein(&normal, n) <= 3) {
        return Some(best);
    }
    if normal.len() < 3 {
        return None;
    }
    names()
        .filter(|n| {
            n.starts_with(&normal)
                || n.ends_with(&normal)
                || normal.starts_with(n)
                || normal.ends_with(n)
        })
        .min_by_key(|n| (n.starts_with("anon_"), levenshtein(&normal, n)))
}

/// Edit distance (insertions, deletions, substitutions) between two strings, by characters.
pub(super) fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// The text of a configuration file, or the error naming it (`cannot read: …`).
pub(super) fn read(path: &Path) -> Result<String, ConfigErrors> {
    std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: path.display().to_string(),
            line: None,
            column: None,
            key: None,
            message: format!("cannot read: {}", io_message(&e)),
            default: false,
        }])
    })
}

/// Places problems found after parsing (by [`Config::check_host`]) in the text they came
/// from: `file` = `origin`, line and column of their key; a key the text does not set (or no
/// text at all: the embedded defaults) is marked `default`.
pub(super) fn locate(text: Option<&str>, origin: &str, problems: Vec<ConfigError>) -> ConfigErrors {
    let mut spans = Spans::new();
    if let Some(Ok(table)) = text.map(DeTable::parse) {
        for (key, _) in table.into_inner() {
            spans.insert(key.get_ref().to_string(), key.span());
        }
    }
    let mut errors: Vec<ConfigError> = problems
        .into_iter()
        .map(|problem| {
            let span = problem.key.as_deref().and_then(|k| spans.get(k));
            let (line, column) = match (span, text) {
                (Some(span), Some(text)) => {
                    let (line, column) = line_column(text, span.start);
                    (Some(line), Some(column))
                }
                _ => (None, None),
            };
            ConfigError {
                file: origin.to_owned(),
                line,
                column,
                default: problem.key.is_some() && line.is_none(),
                ..problem
            }
        })
        .collect();
    errors.sort_by_key(|e| (e.line.is_none(), e.line, e.column));
    ConfigErrors(errors)
}

/// A problem in `text` (the file `origin`) at byte `offset` (its line and column), or in the
/// file as a whole, with the key it concerns if any.
pub(super) fn error_at(
    text: &str,
    origin: &str,
    offset: Option<usize>,
    key: Option<&str>,
    message: String,
) -> ConfigError {
    let (line, column) = match offset.map(|o| line_column(text, o)) {
        Some((line, column)) => (Some(line), Some(column)),
        None => (None, None),
    };
    ConfigError {
        file: origin.to_owned(),
        line,
        column,
        key: key.map(str::to_owned),
        message,
        default: false,
    }
}
