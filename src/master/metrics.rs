//! The master's metrics (`metrics_enable`): the counters it keeps itself (connections
//! admitted and refused, bans, spawner restarts, session durations), the counts sessions
//! report through the spawner (logins, transfers, bytes), and their OpenMetrics text, encoded
//! by `prometheus-client`.
//!
//! The text is served by the endpoint process (`super::endpoint`, `crate::metrics`), never by the master: the master
//! reads no HTTP. What it must never do: take a label value from a client (every label below
//! is one of a fixed set of words) or block the runtime.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::limits::Refusal;
use crate::protocol::event::Direction;
use crate::protocol::tally::{LoginResult, Tally};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabel {
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransferLabels {
    direction: &'static str,
    result: &'static str,
}

/// Why the master closed a connection without starting a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Admission(Refusal),
    /// A listed load balancer's PROXY header was missing, malformed or late.
    ProxyHeader,
    /// Too many PROXY headers were being read at once.
    ProxyBacklog,
    /// No session spawner could be started, or it did not take the connection.
    NoSpawner,
}

impl Refused {
    fn label(self) -> &'static str {
        match self {
            Refused::Admission(Refusal::TooManyClients) => "max_clients",
            Refused::Admission(Refusal::TooManyFromAddress) => "max_per_ip",
            Refused::Admission(Refusal::Banned) => "banned",
            Refused::ProxyHeader => "proxy_header",
            Refused::ProxyBacklog => "proxy_backlog",
            Refused::NoSpawner => "no_spawner",
        }
    }
}

/// Every metric the master exports.
pub struct Metrics {
    /// Encoding reads the registry; registering happens once, in [`Metrics::new`].
    registry: Mutex<Registry>,
    sessions_open: Gauge,
    accepted: Counter,
    refused: Family<ReasonLabel, Counter>,
    logins: Family<ResultLabel, Counter>,
    bans: Counter,
    spawner_restarts: Counter,
    bytes: Family<DirectionLabel, Counter>,
    transfers: Family<TransferLabels, Counter>,
    session_duration: Histogram,
}

fn direction_word(direction: Direction) -> &'static str {
    match direction {
        Direction::Upload => "upload",
        Direction::Download => "download",
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let m = Metrics {
            registry: Mutex::new(Registry::default()),
            sessions_open: Gauge::default(),
            accepted: Counter::default(),
            refused: Family::default(),
            logins: Family::default(),
            bans: Counter::default(),
            spawner_restarts: Counter::default(),
            bytes: Family::default(),
            transfers: Family::default(),
            // 0.25 s to about 4.5 h.
            session_duration: Histogram::new(exponential_buckets(0.25, 4.0, 9)),
        };
        // Every label a family can have exists from the start, at 0, so a scrape shows it.
        for result in ["ok", "failed", "refused"] {
            let _ = m.logins.get_or_create(&ResultLabel { result });
        }
        for direction in [Direction::Upload, Direction::Download] {
            let direction = direction_word(direction);
            let _ = m.bytes.get_or_create(&DirectionLabel { direction });
            for result in ["ok", "failed"] {
                let _ = m
                    .transfers
                    .get_or_create(&TransferLabels { direction, result });
            }
        }
        {
            let mut r = m.registry.lock().unwrap_or_else(|p| p.into_inner());
            r.register(
                "rftpd_sessions_open",
                "Sessions running now (handed to the spawner and not yet ended)",
                m.sessions_open.clone(),
            );
            r.register(
                "rftpd_connections_accepted",
                "Control connections admitted (a session was started for them)",
                m.accepted.clone(),
            );
            r.register(
                "rftpd_connections_refused",
                "Control connections closed by the master before any session, by reason",
                m.refused.clone(),
            );
            r.register(
                "rftpd_logins",
                "Logins by result: ok (served), failed (USER/PASS refused), refused (password \
                 right, session refused)",
                m.logins.clone(),
            );
            r.register(
                "rftpd_bans",
                "Addresses banned after repeated failed logins (ban_failed_logins)",
                m.bans.clone(),
            );
            r.register(
                "rftpd_spawner_restarts",
                "Session spawners started again after one ended unexpectedly",
                m.spawner_restarts.clone(),
            );
            r.register(
                "rftpd_transfer_bytes",
                "Bytes moved by uploads and downloads (finished or not), as the sessions report",
                m.bytes.clone(),
            );
            r.register(
                "rftpd_transfers",
                "Uploads and downloads by direction and result",
                m.transfers.clone(),
            );
            r.register(
                "rftpd_session_duration_seconds",
                "How long ended sessions lasted",
                m.session_duration.clone(),
            );
        }
        m
    }

    pub fn accepted(&self) {
        self.accepted.inc();
    }

    pub fn refused(&self, why: Refused) {
        self.refused
            .get_or_create(&ReasonLabel {
                reason: why.label(),
            })
            .inc();
    }

    pub fn banned(&self) {
        self.bans.inc();
    }

    pub fn spawner_restarted(&self) {
        self.spawner_restarts.inc();
    }

    pub fn session_ended(&self, lasted: Duration) {
        self.session_duration.observe(lasted.as_secs_f64());
    }

    /// A count a session reported (through its spawner).
    pub fn tally(&self, tally: Tally) {
        match tally {
            Tally::Login(result) => {
                let result = match result {
                    LoginResult::Ok => "ok",
                    LoginResult::Failed => "failed",
                    LoginResult::Refused => "refused",
                };
                self.logins.get_or_create(&ResultLabel { result }).inc();
            }
            Tally::Transfer {
                direction,
                ok,
                bytes,
            } => {
                let direction = direction_word(direction);
                self.bytes
                    .get_or_create(&DirectionLabel { direction })
                    .inc_by(bytes);
                let result = if ok { "ok" } else { "failed" };
                self.transfers
                    .get_or_create(&TransferLabels { direction, result })
                    .inc();
            }
        }
    }

    /// The OpenMetrics text, with `sessions_open` sessions running.
    pub fn encode(&self, sessions_open: usize) -> String {
        self.sessions_open
            .set(i64::try_from(sessions_open).unwrap_or(i64::MAX));
        let mut text = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &registry) {
            tracing::warn!(error = %e, "cannot encode the metrics");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_appear_in_the_text_under_their_names() {
        let m = Metrics::new();
        m.accepted();
        m.refused(Refused::Admission(Refusal::Banned));
        m.tally(Tally::Login(LoginResult::Failed));
        m.tally(Tally::Transfer {
            direction: Direction::Upload,
            ok: true,
            bytes: 4096,
        });
        m.session_ended(Duration::from_secs(2));
        let text = m.encode(3);
        for line in [
            "rftpd_sessions_open 3",
            "rftpd_connections_accepted_total 1",
            "rftpd_connections_refused_total{reason=\"banned\"} 1",
            "rftpd_logins_total{result=\"failed\"} 1",
            "rftpd_logins_total{result=\"ok\"} 0",
            "rftpd_transfer_bytes_total{direction=\"upload\"} 4096",
            "rftpd_transfer_bytes_total{direction=\"download\"} 0",
            "rftpd_transfers_total{direction=\"upload\",result=\"ok\"} 1",
            "rftpd_session_duration_seconds_count 1",
            "rftpd_bans_total 0",
            "rftpd_spawner_restarts_total 0",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }
}
