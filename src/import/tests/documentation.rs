//! Unit tests of the importer against rftpd.toml(5): the man page documents every key the
//! importer writes, with the default it states.
//!
//! What it must never do: need root or the network, or write any file.

use super::*;

#[test]
fn the_man_page_documents_every_key() {
    let page = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/man/rftpd.toml.5"),
    )
    .unwrap();
    let entry = |key: &str| format!(".TP\n.B {key}\n");
    let missing: Vec<_> = rftpd_keys()
        .iter()
        .filter(|key| !page.contains(&entry(key)))
        .collect();
    assert!(
        missing.is_empty(),
        "packaging/man/rftpd.toml.5 has no `.TP` / `.B KEY` entry for {missing:?}"
    );
}

#[test]
fn the_man_page_states_every_default() {
    let page = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/man/rftpd.toml.5"),
    )
    .unwrap();
    let lines: Vec<&str> = page.lines().collect();
    let defaults = toml::Table::try_from(Config::default()).unwrap();
    let mut wrong = Vec::new();
    for key in rftpd_keys() {
        let entry = format!(".B {key}");
        let Some(start) = (1..lines.len()).find(|&i| lines[i - 1] == ".TP" && lines[i] == entry)
        else {
            continue; // the_man_page_documents_every_key reports it
        };
        let stated = lines[start + 1..]
            .iter()
            .take_while(|l| !l.starts_with(".TP") && !l.starts_with(".SH"))
            .find_map(|l| l.strip_prefix("Default: "));
        let Some(stated) = stated else {
            wrong.push(format!("{key}: no `Default: ` line"));
            continue;
        };
        let value = stated
            .strip_prefix("\\fB")
            .and_then(|v| v.split_once("\\fR"))
            .map(|(v, _)| v.replace("\\-", "-"));
        match (defaults.get(*key), value) {
            (None, None) if stated.starts_with("unset") => {}
            (Some(expected), Some(text)) => {
                let parsed = format!("v = {text}").parse::<toml::Table>().ok();
                // A mode serializes as a string ("0022") and is stated as 0o022: same value.
                let same = Config::parse(&format!("{key} = {text}"), "<man page>")
                    .is_ok_and(|c| c == Config::default());
                if !same && parsed.as_ref().and_then(|t| t.get("v")) != Some(expected) {
                    wrong.push(format!("{key}: man page says {text}, rftpd has {expected}"));
                }
            }
            (expected, _) => wrong.push(format!(
                "{key}: man page says `{stated}`, rftpd has {}",
                expected.map_or("unset".to_owned(), |v| v.to_string())
            )),
        }
    }
    assert!(
        wrong.is_empty(),
        "packaging/man/rftpd.toml.5:\n{}",
        wrong.join("\n")
    );
}
