//! How a session ended, as the monitor's exit code: the one message a session sends the
//! master (through the spawner), so it must decode whatever number arrives.

/// How a session ended, as the monitor's exit code. The master reads it to log the end of the
/// session (and, later, to penalise addresses that keep failing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitReason {
    /// The client quit or closed the connection.
    Closed = 0,
    /// Something went wrong on our side (or the worker broke the protocol / crashed).
    Error = 1,
    /// Too many failed logins on this connection.
    LoginFailures = 2,
    /// A policy refused the session (user list, writable jail root, TLS required, …).
    Refused = 3,
    /// A timeout ended the session (login, idle or data).
    Timeout = 4,
}

impl ExitReason {
    pub fn from_code(code: i32) -> Option<ExitReason> {
        [
            ExitReason::Closed,
            ExitReason::Error,
            ExitReason::LoginFailures,
            ExitReason::Refused,
            ExitReason::Timeout,
        ]
        .into_iter()
        .find(|r| *r as i32 == code)
    }

    pub fn describe(self) -> &'static str {
        match self {
            ExitReason::Closed => "closed",
            ExitReason::Error => "error",
            ExitReason::LoginFailures => "too many failed logins",
            ExitReason::Refused => "refused",
            ExitReason::Timeout => "timeout",
        }
    }
}

/// A session's exit code, decoded: the reason in the low four bits, the number of failed
/// logins (capped at 15) in the next four.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionEnd {
    pub reason: Option<ExitReason>,
    pub failed_logins: u32,
}

impl SessionEnd {
    pub fn code(reason: ExitReason, failed_logins: u32) -> u8 {
        (reason as u8) | ((failed_logins.min(15) as u8) << 4)
    }

    pub fn from_code(code: i32) -> SessionEnd {
        SessionEnd {
            reason: ExitReason::from_code(code & 0x0f),
            failed_logins: ((code >> 4) & 0x0f) as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_carry_reason_and_failure_count() {
        for reason in [ExitReason::Closed, ExitReason::Refused, ExitReason::Timeout] {
            for n in [0, 1, 3, 15, 40] {
                let end = SessionEnd::from_code(i32::from(SessionEnd::code(reason, n)));
                assert_eq!(
                    end,
                    SessionEnd {
                        reason: Some(reason),
                        failed_logins: n.min(15)
                    }
                );
            }
        }
    }
}
