//! The output being built: comments, sections and `key = value` lines, rendered as TOML and
//! checked with rftpd's own parser before it is printed.
//!
//! What it does: renders the items with a header and wrapped comments; a setting rftpd
//! rejects becomes a comment with rftpd's reason, until the whole text parses
//! ([`Config::parse_without_files`]); a file the output names that is missing or unreadable
//! on this host stays in, with a comment and a warning that `--check-config` refuses it.
//!
//! What it must never do: print TOML that [`Config::parse_without_files`] refuses, drop a key
//! because the file it names is missing (the result would fail open: no user list, the
//! default certificate), put a control character in a comment, write any file, or contain
//! `unsafe` code.

use std::fmt::Write as _;

use crate::config::Config;

use super::Imported;
use super::read::Setting;

/// The output being built: comments and `key = value` lines in order.
#[derive(Default)]
pub(super) struct Translation {
    items: Vec<Item>,
    warnings: Vec<String>,
}

pub(super) enum Item {
    Comment(String),
    Section(String),
    Setting {
        key: String,
        toml: String,
        /// `NAME=VALUE` as vsftpd had it, for the comment if rftpd rejects the value.
        source: String,
        /// The line of the vsftpd file (0 = not from a line).
        line: usize,
    },
}

impl Translation {
    pub(super) fn comment(&mut self, text: String) {
        self.items.push(Item::Comment(text));
    }

    pub(super) fn section(&mut self, text: String) {
        self.items.push(Item::Section(text));
    }

    pub(super) fn warn(&mut self, text: String) {
        self.warnings.push(text);
    }

    pub(super) fn setting(&mut self, key: &str, toml: String, source: String, line: usize) {
        self.items.push(Item::Setting {
            key: key.to_owned(),
            toml,
            source,
            line,
        });
    }

    pub(super) fn unsupported(&mut self, s: &Setting<'_>, why: &str) {
        self.comment(format!(
            "vsftpd option {}={} not carried over: {why}",
            s.option.name, s.raw
        ));
    }

    /// The TOML text of the current items, and for each output line the item it came from.
    fn render(&self, origin: &str) -> (String, Vec<Option<usize>>) {
        let mut text = String::new();
        let mut owners = Vec::new();
        let mut push = |text: &mut String, line: &str, owner: Option<usize>| {
            text.push_str(line);
            text.push('\n');
            owners.push(owner);
        };
        for line in header(origin).lines() {
            push(&mut text, line, None);
        }
        let mut section_pending = None;
        for (i, item) in self.items.iter().enumerate() {
            match item {
                Item::Section(title) => section_pending = Some(title),
                Item::Comment(c) => {
                    if let Some(title) = section_pending.take() {
                        push(&mut text, "", None);
                        push(
                            &mut text,
                            &format!("# --- {} ---", comment_text(title)),
                            None,
                        );
                    }
                    for line in wrap(&comment_text(c), 92) {
                        push(&mut text, &format!("# {line}"), None);
                    }
                }
                Item::Setting { key, toml, .. } => {
                    if let Some(title) = section_pending.take() {
                        push(&mut text, "", None);
                        push(
                            &mut text,
                            &format!("# --- {} ---", comment_text(title)),
                            None,
                        );
                    }
                    push(&mut text, &format!("{key} = {toml}"), Some(i));
                }
            }
        }
        (text, owners)
    }

    /// Check the whole output with rftpd's own parser; settings it rejects become comments.
    pub(super) fn finish(mut self, origin: &str) -> Imported {
        loop {
            let (text, owners) = self.render(origin);
            // The files the configuration names are not looked at here: a missing user list or
            // certificate must stay in the output for `--check-config` to refuse (fail
            // closed), never be dropped, which would leave a configuration without it.
            let errors = match Config::parse_without_files(&text, "<imported>") {
                Ok(config) => {
                    // vsftpd's defaults that do nothing in this configuration are not written.
                    let mut idle: Vec<usize> = config
                        .keys_without_effect()
                        .iter()
                        .filter_map(|(key, _)| {
                            self.items.iter().position(|item| {
                                matches!(item, Item::Setting { key: k, line: 0, .. } if k == key)
                            })
                        })
                        .collect();
                    if !idle.is_empty() {
                        idle.sort_unstable();
                        idle.dedup();
                        for i in idle.into_iter().rev() {
                            self.items.remove(i);
                        }
                        continue;
                    }
                    return self.checked(origin, text, &owners, &config);
                }
                Err(errors) => errors.0,
            };
            let mut rejected: Vec<(usize, String)> = Vec::new();
            for e in &errors {
                let by_line = e.line.and_then(|l| owners.get(l - 1).copied().flatten());
                let by_key = || {
                    self.items.iter().position(|item| {
                        matches!(item, Item::Setting { key, .. } if Some(key.as_str()) == e.key.as_deref())
                    })
                };
                if let Some(i) = by_line.or_else(by_key) {
                    let message = match (&e.key, by_line) {
                        (Some(key), Some(j)) if !matches!(&self.items[j], Item::Setting { key: k, .. } if k == key) =>
                        {
                            format!("`{key}`: {}", e.message)
                        }
                        _ => e.message.clone(),
                    };
                    rejected.push((i, message));
                }
            }
            if rejected.is_empty() {
                // Nothing to pin the errors on: carry nothing over rather than print bad TOML.
                for e in &errors {
                    self.warnings
                        .push(format!("rftpd rejects the translation: {e}"));
                }
                rejected = (0..self.items.len())
                    .filter(|&i| matches!(self.items[i], Item::Setting { .. }))
                    .map(|i| (i, "rftpd rejects the translated configuration".to_owned()))
                    .collect();
                if rejected.is_empty() {
                    return Imported {
                        toml: header(origin),
                        warnings: self.warnings,
                    };
                }
            }
            for (i, why) in rejected {
                if let Item::Setting { source, line, .. } = &self.items[i] {
                    let why = format!("rftpd rejects it: {why}");
                    let place = if *line > 0 {
                        format!("{origin}:{line}: ")
                    } else {
                        format!("{origin}: ")
                    };
                    self.warnings
                        .push(format!("{place}{source} not carried over: {why}"));
                    self.items[i] =
                        Item::Comment(format!("vsftpd option {source} not carried over: {why}"));
                }
            }
        }
    }
}

impl Translation {
    /// The finished output: checked on this host as `--check-config` checks it, each problem
    /// (a missing or unreadable file it names) written as a comment above its key and as a
    /// warning; then rftpd's warnings about the configuration.
    fn checked(
        mut self,
        origin: &str,
        text: String,
        owners: &[Option<usize>],
        config: &Config,
    ) -> Imported {
        let mut text = text;
        if let Err(errors) = Config::parse(&text, "<imported>") {
            let mut notes: Vec<(usize, String)> = Vec::new();
            let mut unplaced = Vec::new();
            for e in &errors.0 {
                let item = e.line.and_then(|l| owners.get(l - 1).copied().flatten());
                let (place, source) = match item.map(|i| &self.items[i]) {
                    Some(Item::Setting { source, line, .. }) if *line > 0 => {
                        (format!("{origin}:{line}: "), format!("{source}: "))
                    }
                    Some(Item::Setting { source, .. }) => {
                        (format!("{origin}: "), format!("{source}: "))
                    }
                    _ => (format!("{origin}: "), String::new()),
                };
                let key = e
                    .key
                    .as_deref()
                    .map(|k| format!("`{k}`: "))
                    .unwrap_or_default();
                let vsftpd = match e.key.as_deref() {
                    Some("userlist_file") => {
                        "; vsftpd refused every login the same way (500 OOPS: cannot read user \
                         list file)"
                    }
                    _ => "",
                };
                let refusal = format!(
                    "rftpd --check-config refuses the imported configuration on this host: \
                     {key}{}{vsftpd}",
                    e.message
                );
                self.warnings.push(format!("{place}{source}{refusal}"));
                match item {
                    Some(i) => notes.push((i, refusal)),
                    None => unplaced.push(refusal),
                }
            }
            notes.sort_by_key(|(i, _)| std::cmp::Reverse(*i));
            for (i, note) in notes {
                self.items.insert(i, Item::Comment(note));
            }
            text = self.render(origin).0;
            if !unplaced.is_empty() {
                text.push_str("\n# --- rftpd --check-config refuses this configuration ---\n");
                for note in unplaced {
                    for line in wrap(&comment_text(&note), 92) {
                        let _ = writeln!(text, "# {line}");
                    }
                }
            }
        }
        let warnings = config.warnings();
        if !warnings.is_empty() {
            text.push_str("\n# --- rftpd's warnings about this configuration ---\n");
            for w in warnings {
                for line in wrap(&comment_text(&w), 92) {
                    let _ = writeln!(text, "# {line}");
                }
                self.warnings.push(format!("rftpd warns: {w}"));
            }
        }
        Imported {
            toml: text,
            warnings: self.warnings,
        }
    }
}

pub(super) fn header(origin: &str) -> String {
    let origin = comment_text(origin);
    let version = env!("CARGO_PKG_VERSION");
    let paragraphs = [
        format!(
            "rftpd configuration imported from {origin} by `rftpd import-vsftpd` (rftpd {version})."
        ),
        String::new(),
        format!(
            "Each vsftpd setting rftpd supports keeps its name and meaning; each other one is \
             listed as a comment saying why it is not carried over. Settings that {origin} \
             leaves out are written where vsftpd's built-in default differs from rftpd's, so \
             rftpd behaves as vsftpd did. Keys not written here have rftpd's defaults: see \
             rftpd.toml(5)."
        ),
        "Check before use: rftpd --check-config --config THIS_FILE".to_owned(),
    ];
    let mut text = String::new();
    for paragraph in paragraphs {
        for line in wrap(&paragraph, 92) {
            text.push_str(format!("# {line}").trim_end());
            text.push('\n');
        }
    }
    text.push('\n');
    text
}

/// Text safe inside a TOML comment (no control characters but tab).
pub(super) fn comment_text(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() && c != '\t' {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

/// Word-wrap a comment at `width` columns (a word longer than that keeps its own line).
pub(super) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in text.split(' ') {
        if !current.is_empty() && current.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    lines.push(current);
    lines
}

/// A TOML basic string.
pub(super) fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// An I/O error's text without the trailing " (os error N)".
pub(super) fn io_message(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}
