//! The master's side of its spawners' lives: starting one, and reading its reports until it
//! exits — sessions started and ended, their limits and login-name claims released, a spawner
//! that died replaced.
//!
//! Runs in the master, as root. It trusts a report only as far as the spawner it came from
//! (the master's own child); it never reads a client's bytes.

use super::*;

/// Start the spawner for `prepared` and the task that reads its reports.
pub(super) fn launch_spawner(
    state: &Arc<State>,
    prepared: &Prepared,
) -> std::io::Result<Arc<SpawnerHandle>> {
    static GENERATION: AtomicU64 = AtomicU64::new(1);
    let generation = GENERATION.fetch_add(1, Ordering::Relaxed);
    let (handle, child) = SpawnerHandle::start(prepared, &state.log_filter, generation)?;
    let handle = Arc::new(handle);
    tracing::debug!(pid = handle.pid, generation, "session spawner started");
    tokio::spawn(follow_spawner(state.clone(), handle.clone(), child));
    Ok(handle)
}

/// Read one spawner's reports until it exits; then settle what it left behind.
pub(super) async fn follow_spawner(
    state: Arc<State>,
    handle: Arc<SpawnerHandle>,
    mut child: tokio::process::Child,
) {
    let why = loop {
        match handle.next_report().await {
            Ok(Some(Report::Claim { id, user })) => {
                let granted = state.claim(id, user.as_str(), handle.generation);
                if let Err(e) = handle.answer(id, granted).await {
                    break Some(e);
                }
            }
            Ok(Some(report)) => on_report(&state, report),
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
    };
    if why.is_some() {
        // It broke the protocol: it cannot be trusted to report further; replace it (its
        // sessions go on without it).
        let _ = child.start_kill();
    }
    let status = child.wait().await;
    handle.mark_exited();
    // Sessions it never reported ended are lost to the count: give their slots back.
    let orphans: Vec<Session> = {
        let mut sessions = state.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions
            .extract_if(|_, s| s.generation == handle.generation)
            .map(|(_, s)| s)
            .collect()
    };
    for session in &orphans {
        state.release(session.peer, 0);
        state.release_login(session);
    }
    let current = state
        .current_spawner()
        .is_some_and(|c| Arc::ptr_eq(&c, &handle));
    if !current && why.is_none() && orphans.is_empty() {
        tracing::debug!(pid = handle.pid, "retired session spawner exited");
        return;
    }
    tracing::error!(pid = handle.pid, status = ?status, error = ?why, lost_sessions = orphans.len(),
        "the session spawner ended unexpectedly");
    if current {
        // Replace it now rather than at the next connection.
        let _ = state.live_spawner();
    }
}

/// Account for one spawner report.
pub(super) fn on_report(state: &State, report: Report) {
    match report {
        Report::Tally(tally) => state.count(|m| m.tally(tally)),
        Report::Started { id, pid } => {
            if let Some(s) = state
                .sessions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(&id)
            {
                s.pid = pid;
                tracing::debug!(client = %s.peer, pid, "session started");
            }
        }
        Report::NotStarted { id } => {
            if let Some(s) = state.forget(id) {
                tracing::error!(client = %s.peer, "the spawner could not start a session");
                state.release(s.peer, 0);
                state.release_login(&s);
            }
        }
        Report::Claim { id, .. } => {
            tracing::error!(id, "a login claim outside the spawner's reader");
        }
        Report::Ended { id, end } => {
            let Some(s) = state.forget(id) else {
                tracing::warn!(id, "the spawner reported the end of an unknown session");
                return;
            };
            let (reason, failures) = match end {
                ProcessEnd::Exited(code) => {
                    let end = SessionEnd::from_code(i32::from(code));
                    (
                        end.reason.map(ExitReason::describe).unwrap_or("error"),
                        end.failed_logins,
                    )
                }
                ProcessEnd::Killed(_) => ("killed", 0),
            };
            let banned = state.release(s.peer, failures);
            state.release_login(&s);
            state.count(|m| m.session_ended(s.started.elapsed()));
            // The session's own monitor logs "session ended" with the user; a killed one
            // could not, so the master says it.
            if matches!(end, ProcessEnd::Killed(_)) {
                tracing::warn!(client = %s.peer.ip(), port = s.peer.port(), pid = s.pid,
                    duration_ms = s.started.elapsed().as_millis() as u64,
                    "session ended: its process was killed");
            } else {
                tracing::debug!(client = %s.peer, pid = s.pid, failed_logins = failures, reason,
                    "session process ended");
            }
            if banned {
                state.count(|m| m.banned());
                let ban_secs = state.prepared().limits.ban_time.as_secs();
                tracing::warn!(client = %s.peer.ip(), ban_secs, "address banned after repeated failed logins");
            }
        }
    }
}
