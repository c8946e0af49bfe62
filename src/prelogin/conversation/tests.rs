//! Unit tests of the pre-login conversation's pure parts (PASS detection, PROXY headers, FEAT).

use super::is_proxy_header;

#[test]
fn pass_lines_are_recognised_in_any_case() {
    use super::is_pass;
    assert!(is_pass(b"PASS secret"));
    assert!(is_pass(b"  pass secret"));
    assert!(is_pass(b"PaSs"));
    assert!(is_pass(b"PASSsecret\x1b"));
    assert!(!is_pass(b"USER pass"));
    assert!(!is_pass(b"PAS"));
    assert!(!is_pass(b""));
}

#[test]
fn proxy_headers_of_both_versions_are_recognised_and_commands_are_not() {
    assert!(is_proxy_header(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 21", b""));
    assert!(is_proxy_header(b"proxy UNKNOWN", b""));
    assert!(is_proxy_header(b"", b"\r\n\0\r\nQUIT\n!\x11"));
    assert!(is_proxy_header(b"", b"\r\n"));
    assert!(!is_proxy_header(b"", b""));
    assert!(!is_proxy_header(b"", b"USER x\r\n"));
    assert!(!is_proxy_header(b"PROXYX", b""));
    assert!(!is_proxy_header(b"USER PROXY ", b""));
}

use super::features;

#[test]
fn features_are_listed_as_after_login() {
    assert_eq!(
        features(true, true),
        "211-Features:\r\n AUTH TLS\r\n EPRT\r\n EPSV\r\n MDTM\r\n MFMT\r\n MLST type*;size*;modify*;perm*;UNIX.mode*;UNIX.owner*;UNIX.group*;\r\n PASV\r\n PBSZ\r\n PROT\r\n REST STREAM\r\n SIZE\r\n TVFS\r\n UTF8\r\n211 End"
    );
    assert!(!features(false, true).contains("AUTH"));
    assert!(!features(true, false).contains("UTF8"));
}
