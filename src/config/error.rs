//! The errors of the configuration: [`ConfigError`] (one problem, with file, line, column
//! and key) and [`ConfigErrors`] (all of them, never empty).
//!
//! What it does: holds and displays the problems, as `FILE:LINE:COLUMN: key `KEY`: MESSAGE`.
//!
//! What it must never do: decide whether something is a problem (that is `parse` and
//! `validate`), drop an error, or do I/O (no `unsafe`).

use std::fmt;
use std::io;

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// The path as given, or `<embedded defaults>` / `<input>`.
    pub file: String,
    /// 1-based line.
    pub line: Option<usize>,
    /// 1-based column (in characters).
    pub column: Option<usize>,
    /// The top-level key concerned.
    pub key: Option<String>,
    /// What is wrong, e.g. "unknown key (did you mean `chroot_local_user`?)".
    pub message: String,
    /// The key is not set in the file: the problem is with its default value (shown as
    /// `key `KEY` (default):`).
    pub default: bool,
}

impl fmt::Display for ConfigError {
    /// `FILE:LINE:COLUMN: key `KEY`: MESSAGE`, omitting the parts that are `None`; with
    /// `default`, `FILE: key `KEY` (default): MESSAGE`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        f.write_str(":")?;
        if let Some(key) = &self.key {
            write!(f, " key `{key}`")?;
            if self.default {
                f.write_str(" (default)")?;
            }
            f.write_str(":")?;
        }
        write!(f, " {}", self.message)
    }
}

/// All problems found; never empty.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    /// One error per line (no trailing newline).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// `file` of the errors returned by [`Config::validate`], which does not know the file.
pub(super) const NO_FILE: &str = "<input>";

/// An I/O error's text without the trailing " (os error N)".
pub(super) fn io_message(e: &io::Error) -> String {
    let text = e.to_string();
    match e.raw_os_error() {
        Some(code) => text
            .strip_suffix(&format!(" (os error {code})"))
            .map(str::to_owned)
            .unwrap_or(text),
        None => text,
    }
}
