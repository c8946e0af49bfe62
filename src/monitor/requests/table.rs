//! The monitor's request table: which request is allowed from which child in which phase of
//! the session (OpenSSH `monitor.c`'s `{request, flags, handler}` table), and the kind of each
//! request as the table names it.
//!
//! Runs in the monitor, as root. SECURITY: this is the one list of what a child may ask; a
//! request it does not allow for its sender and phase ends the session (see `super`). Nothing
//! may be allowed here that is not also checked by its handler.

use crate::protocol::event::Event;
use crate::protocol::monitor::Request;

/// Who sent a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Prelogin,
    Worker,
}

/// Where the session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No login accepted yet.
    BeforeLogin,
    /// One login accepted; its worker runs.
    LoggedIn,
    /// `max_login_fails` reached, or `max_per_user` refused the login: nothing more is
    /// answered.
    LoginsExhausted,
}

/// The kinds of request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Login,
    BindPassive,
    PassiveSpare,
    ConnectActive,
    StandIn,
    Sign,
    Event,
    ChownUpload,
    /// `log_ftp_protocol`: a command or reply line ([`Event::Protocol`]).
    Protocol,
}

/// One row of the table: this request, from this peer, in this phase.
struct Rule {
    kind: Kind,
    from: Peer,
    phase: Phase,
}

/// Every request the monitor answers. Anything else ends the session.
const TABLE: &[Rule] = &[
    // Once per attempt, and never again after one succeeded.
    Rule {
        kind: Kind::Login,
        from: Peer::Prelogin,
        phase: Phase::BeforeLogin,
    },
    // The control connection's TLS handshake (at most MAX_SIGNATURES per session).
    Rule {
        kind: Kind::Sign,
        from: Peer::Prelogin,
        phase: Phase::BeforeLogin,
    },
    Rule {
        kind: Kind::BindPassive,
        from: Peer::Worker,
        phase: Phase::LoggedIn,
    },
    Rule {
        kind: Kind::PassiveSpare,
        from: Peer::Worker,
        phase: Phase::LoggedIn,
    },
    Rule {
        kind: Kind::ConnectActive,
        from: Peer::Worker,
        phase: Phase::LoggedIn,
    },
    // A socket inside the worker's own namespace (its filter forbids it to make one).
    Rule {
        kind: Kind::StandIn,
        from: Peer::Worker,
        phase: Phase::LoggedIn,
    },
    // What happened, for the logs: from the worker only (the records module checks the
    // order: `Started` first and once, nothing recorded for a refused session).
    Rule {
        kind: Kind::Event,
        from: Peer::Worker,
        phase: Phase::LoggedIn,
    },
    // chown_uploads: the handler also requires an anonymous session with the setting on.
    Rule {
        kind: Kind::ChownUpload,
        from: Peer::Worker,
        phase: Phase::LoggedIn,
    },
    // Command and reply lines (`log_ftp_protocol`): before login from the pre-login process
    // (which holds the conversation until then), after it from the worker.
    Rule {
        kind: Kind::Protocol,
        from: Peer::Prelogin,
        phase: Phase::BeforeLogin,
    },
    Rule {
        kind: Kind::Protocol,
        from: Peer::Prelogin,
        phase: Phase::LoginsExhausted,
    },
    Rule {
        kind: Kind::Protocol,
        from: Peer::Worker,
        phase: Phase::LoggedIn,
    },
];

/// Whether the table allows `kind` from `from` in `phase`.
pub fn allowed(kind: Kind, from: Peer, phase: Phase) -> bool {
    TABLE
        .iter()
        .any(|r| r.kind == kind && r.from == from && r.phase == phase)
}

/// The table's name for `request`.
pub(super) fn kind_of(request: &Request) -> Kind {
    match request {
        Request::Login { .. } => Kind::Login,
        Request::BindPassive => Kind::BindPassive,
        Request::PassiveSpare => Kind::PassiveSpare,
        Request::ConnectActive(_) => Kind::ConnectActive,
        Request::StandIn(_) => Kind::StandIn,
        Request::Sign { .. } => Kind::Sign,
        Request::Event(Event::Protocol { .. }) => Kind::Protocol,
        Request::Event(_) => Kind::Event,
        Request::ChownUpload => Kind::ChownUpload,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_allows_each_request_only_from_its_peer_and_phase() {
        use Kind::*;
        use Peer::*;
        use Phase::*;
        for kind in [
            Login,
            BindPassive,
            PassiveSpare,
            ConnectActive,
            StandIn,
            Sign,
            Event,
            ChownUpload,
            Protocol,
        ] {
            for from in [Prelogin, Worker] {
                for phase in [BeforeLogin, LoggedIn, LoginsExhausted] {
                    let expected = matches!(
                        (kind, from, phase),
                        (Login | Sign, Prelogin, BeforeLogin)
                            | (BindPassive | PassiveSpare, Worker, LoggedIn)
                            | (ConnectActive, Worker, LoggedIn)
                            | (StandIn, Worker, LoggedIn)
                            | (Event, Worker, LoggedIn)
                            | (ChownUpload, Worker, LoggedIn)
                            | (Protocol, Prelogin, BeforeLogin | LoginsExhausted)
                            | (Protocol, Worker, LoggedIn)
                    );
                    assert_eq!(
                        allowed(kind, from, phase),
                        expected,
                        "{kind:?} {from:?} {phase:?}"
                    );
                }
            }
        }
    }
}
