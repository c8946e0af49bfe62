//! The master ↔ metrics endpoint channel (a `SOCK_SEQPACKET` socketpair): the master first
//! hands the endpoint its listening socket, then answers each scrape request with the
//! encoded metrics text.
//!
//! The endpoint is unprivileged and reads HTTP from the network, so the master trusts none of
//! its bytes: the only thing it accepts from it is the one-byte scrape request, anything else
//! ends the endpoint ([`is_scrape`]). The text goes the other way, at most [`MAX_TEXT`]
//! bytes.

/// The endpoint asks for the current text.
pub const SCRAPE: &[u8] = b"S";
/// The master's first message, with the listening socket attached.
pub const LISTENER: &[u8] = b"L";
/// The longest metrics text the master sends (the endpoint's receive buffer).
pub const MAX_TEXT: usize = 64 * 1024;

/// Whether a message from the endpoint is a scrape request, exactly.
pub fn is_scrape(message: &[u8]) -> bool {
    message == SCRAPE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_request_is_a_scrape() {
        assert!(is_scrape(b"S"));
        assert!(!is_scrape(b""));
        assert!(!is_scrape(b"SS"));
        assert!(!is_scrape(b"GET /metrics"));
    }
}
