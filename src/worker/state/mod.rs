//! What the worker's relay and libunftp's extension points (storage, binder, SITE) of one
//! session share, and — separately, so that only the binder and active mode hold it — the
//! worker's handle on its monitor.
//!
//! The worker runs as the user, jailed; nothing here grants anything: the monitor decides
//! every data socket again, whatever this process asks.

use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize};

use crate::config::Config;
use crate::protocol::ExitReason;
use crate::protocol::event::Event;
use crate::protocol::monitor::{Grant, MAX_MESSAGE, Reply, Request, StandInSocket};
use crate::sys;
use crate::worker::datatls::DataTls;
use std::sync::Arc;

/// The worker's end of its channel to the monitor (non-blocking, on the runtime's reactor):
/// one request at a time, each answered before the next.
///
/// Events (one-way records) wait in [`MonitorClient::hold`] for the next request, which
/// carries them: sent just before it, they cost the monitor no wake-up of their own (a busy
/// session's next PASV follows its transfer's record within a millisecond). What no request
/// carried within [`EVENT_HOLD`] is sent by itself ([`MonitorClient::flush`]).
#[derive(Debug)]
pub struct MonitorClient {
    channel: tokio::sync::Mutex<tokio::io::unix::AsyncFd<OwnedFd>>,
    held: Mutex<Vec<Event>>,
}

/// The longest an event waits for a request to go out with.
pub const EVENT_HOLD: std::time::Duration = std::time::Duration::from_millis(50);

impl MonitorClient {
    pub fn new(channel: tokio::io::unix::AsyncFd<OwnedFd>) -> MonitorClient {
        MonitorClient {
            channel: tokio::sync::Mutex::new(channel),
            held: Mutex::new(Vec::new()),
        }
    }

    /// Keep an event for the next request (or [`MonitorClient::flush`]); beyond
    /// [`EVENT_QUEUE`] waiting, it is dropped (records are lost, a transfer never waits).
    pub fn hold(&self, event: Event) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.len() < EVENT_QUEUE {
            held.push(event);
        }
    }

    /// Send the events still held, by themselves.
    pub async fn flush(&self) -> std::io::Result<()> {
        let channel = self.channel.lock().await;
        self.send_held(&channel).await
    }

    /// The held events, in order, on the channel already locked (so never inside a round
    /// trip).
    async fn send_held(&self, channel: &tokio::io::unix::AsyncFd<OwnedFd>) -> std::io::Result<()> {
        let events = std::mem::take(&mut *self.held.lock().unwrap_or_else(|p| p.into_inner()));
        for event in events {
            sys::send_message_async(channel, &Request::Event(event).encode(), None).await?;
        }
        Ok(())
    }

    /// One request/reply round trip with the monitor, on the runtime's own thread (no
    /// blocking-pool hop: a passive socket costs one socketpair round trip). One at a time.
    pub async fn ask(&self, request: &Request) -> std::io::Result<(Reply, Option<OwnedFd>)> {
        self.ask_with(request, None).await
    }

    /// [`MonitorClient::ask`], with a descriptor riding on the request (only `ChownUpload`
    /// may carry one: the monitor ends the session for any other).
    pub async fn ask_with(
        &self,
        request: &Request,
        fd: Option<std::os::fd::BorrowedFd<'_>>,
    ) -> std::io::Result<(Reply, Option<OwnedFd>)> {
        let channel = self.channel.lock().await;
        self.send_held(&channel).await?;
        let bytes = request.encode();
        sys::send_message_async(&channel, &bytes, fd).await?;
        let mut buf = vec![0u8; MAX_MESSAGE];
        let (len, fd) = sys::recv_message_async(&channel, &mut buf).await?;
        if len == 0 {
            return Err(std::io::Error::other("monitor closed the channel"));
        }
        let reply = Reply::decode(&buf[..len]).map_err(std::io::Error::other)?;
        Ok((reply, fd))
    }

    /// A stand-in socket, made by the monitor inside this worker's namespace (the worker's
    /// filter forbids it `socket(AF_INET…)`).
    pub async fn stand_in(&self, kind: StandInSocket) -> std::io::Result<OwnedFd> {
        match self.ask(&Request::StandIn(kind)).await? {
            (Reply::StandIn, Some(fd)) => Ok(fd),
            // Most likely the port is taken in the namespace (the monitor logs the cause).
            (Reply::NoStandIn, None) => Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                "the monitor could not make a stand-in socket",
            )),
            _ => {
                tracing::error!("monitor answered a stand-in socket request out of protocol");
                std::process::exit(ExitReason::Error as i32);
            }
        }
    }
}

/// Events waiting for the monitor: a bounded queue (a session that outruns its monitor loses
/// records, never blocks a transfer).
pub const EVENT_QUEUE: usize = 256;

/// What the relay and libunftp's extension points of one session share.
#[derive(Debug)]
pub struct SessionShared {
    pub config: Config,
    /// The client's address (as the host sees it).
    pub client_ip: IpAddr,
    /// The accepted login (the process is already jailed and dropped), for the storage
    /// backend's `enter`.
    pub grant: Mutex<Option<Grant>>,
    /// The one-time password the relay gives libunftp once the monitor accepted a login.
    pub login_token: String,
    /// Set by `enter` once the session is jailed and logged in.
    pub logged_in: AtomicBool,
    /// Whether this session may rename (decided at `enter`).
    pub rename_allowed: AtomicBool,
    /// Data connection protection, when TLS is configured (`ssl_enable`).
    pub tls: Option<Arc<DataTls>>,
    /// Data transfers in progress (the idle timer does not run during one).
    pub transfers: AtomicUsize,
    /// Data connections that have reached the storage layer (for `accept_timeout`).
    pub data_connections: AtomicUsize,
    /// The client sent `ABOR` while a transfer ran: the transfer ends (cleared when the next
    /// one starts).
    abort: AtomicBool,
    abort_notify: tokio::sync::Notify,
    /// Where the passive listener now handed to libunftp is bound (host side) when libunftp
    /// accepts the client's own connection (never under `PROT P`, where it gets a stand-in),
    /// so a download can find that socket for `sendfile` (see `storage::zero_copy`).
    pub passive_address: Mutex<Option<std::net::SocketAddr>>,
    /// Options of the last LIST/NLST (libunftp drops them; the relay passes them on here).
    list_flags: Mutex<ListFlags>,
    /// The session's working directory: libunftp's, mirrored for SITE CHMOD's relative paths
    /// (libunftp gives SITE handlers none), set by the storage backend's `cwd`, moved up by the
    /// relay on a CDUP it forwards (which libunftp handles without the storage backend) — or
    /// the relay's own, ahead of libunftp's, after a CWD it answered (`catching_up`).
    working_dir: Mutex<std::path::PathBuf>,
    /// A directory the relay let the session into on its own turn (`CWD` answered without
    /// libunftp): libunftp is given a `CWD` to it before its next command, which the storage
    /// backend takes as already checked (libunftp's copy then follows the relay's).
    catching_up: Mutex<Option<std::path::PathBuf>>,
    /// The last reply of a session that must end, for the relay to send (inside TLS if on).
    ending: Mutex<Option<(String, ExitReason)>>,
    ending_notify: tokio::sync::Notify,
    /// What the storage backend found when a transfer reached it (the relay holds libunftp's
    /// `150` until it knows, so a refusal comes instead of the `150`, as with vsftpd).
    data_outcome: Mutex<Option<DataOutcome>>,
    data_outcome_notify: tokio::sync::Notify,
    /// `TYPE A` is in force (ascii_upload_enable / ascii_download_enable, and the xferlog's
    /// transfer type; a session starts in ASCII).
    pub ascii: AtomicBool,
    /// The MLST facts `OPTS MLST` selected (RFC 3659 §7.9).
    mlst_facts: Mutex<crate::storage::facts::FactSet>,
    /// An active (PORT/EPRT) connection the monitor made, waiting for the binder to splice it
    /// to libunftp's passive listener (see `worker::active`).
    stand_in: Mutex<Option<crate::worker::active::StandIn>>,
    /// The relay holds a `150` back, waiting for the storage backend's word.
    pub holding_preliminary: AtomicBool,
    /// The relay forwarded `EPSV` for a `PORT`/`EPRT`: its `229` is answered with this
    /// command's `200`.
    active_reply: Mutex<Option<&'static str>>,
    /// Where events for the monitor's records go (set once the session serves).
    events: Mutex<Option<tokio::sync::mpsc::Sender<Box<Event>>>>,
}

/// What the storage backend found for the transfer the relay forwarded last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataOutcome {
    /// The transfer starts: the preliminary reply to send (vsftpd's words).
    Ready(String),
    /// Refused before a byte moved: the reply to send instead of the `150` and libunftp's
    /// error.
    Refused(&'static str),
    /// No data connection came in time (`accept_timeout`): the reply to send instead of the
    /// `150` (libunftp sends nothing more).
    Abandoned(&'static str),
}

impl SessionShared {
    pub fn new(
        config: Config,
        client_ip: IpAddr,
        grant: Grant,
        login_token: String,
        tls: Option<Arc<DataTls>>,
    ) -> SessionShared {
        SessionShared {
            config,
            client_ip,
            grant: Mutex::new(Some(grant)),
            login_token,
            logged_in: AtomicBool::new(false),
            rename_allowed: AtomicBool::new(false),
            tls,
            transfers: AtomicUsize::new(0),
            data_connections: AtomicUsize::new(0),
            abort: AtomicBool::new(false),
            abort_notify: tokio::sync::Notify::new(),
            passive_address: Mutex::new(None),
            list_flags: Mutex::new(ListFlags::default()),
            working_dir: Mutex::new(std::path::PathBuf::from("/")),
            catching_up: Mutex::new(None),
            ending: Mutex::new(None),
            ending_notify: tokio::sync::Notify::new(),
            data_outcome: Mutex::new(None),
            data_outcome_notify: tokio::sync::Notify::new(),
            ascii: AtomicBool::new(true),
            mlst_facts: Mutex::new(crate::storage::facts::FactSet::default()),
            stand_in: Mutex::new(None),
            active_reply: Mutex::new(None),
            holding_preliminary: AtomicBool::new(false),
            events: Mutex::new(None),
        }
    }

    /// A transfer starts: an earlier `ABOR` is not its own.
    pub fn transfer_started(&self) {
        self.abort.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// `ABOR` during a transfer: end it (vsftpd's `426`, then `226`).
    pub fn request_abort(&self) {
        self.abort.store(true, std::sync::atomic::Ordering::SeqCst);
        self.abort_notify.notify_waiters();
    }

    /// Completes once an `ABOR` asked the running transfer to end.
    pub async fn abort_requested(&self) {
        loop {
            let notified = self.abort_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.abort.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }

    /// Events reported from now on go to `sender`.
    pub fn set_events(&self, sender: tokio::sync::mpsc::Sender<Box<Event>>) {
        *self.events.lock().unwrap_or_else(|p| p.into_inner()) = Some(sender);
    }

    /// No more events (the queue drains and closes).
    pub fn close_events(&self) {
        self.events.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// Report an event to the monitor (dropped if the queue is full or closed).
    pub fn report(&self, event: Event) {
        if let Some(sender) = self
            .events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            let _ = sender.try_send(Box::new(event));
        }
    }

    pub fn working_dir(&self) -> std::path::PathBuf {
        self.working_dir
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_working_dir(&self, path: std::path::PathBuf) {
        *self.working_dir.lock().unwrap_or_else(|p| p.into_inner()) = path;
    }

    /// The relay answered a `CWD` itself: `dir` (checked) is the session's directory now, and
    /// libunftp's `CWD` to it will be taken as checked.
    pub fn entered_on_relay_turn(&self, dir: std::path::PathBuf) {
        *self.catching_up.lock().unwrap_or_else(|p| p.into_inner()) = Some(dir.clone());
        self.set_working_dir(dir);
    }

    /// Whether libunftp's `CWD` to `dir` only catches up on the relay's (then it needs no
    /// check: the relay's was made); clears the mark either way.
    pub fn take_catching_up(&self, dir: &std::path::Path) -> bool {
        self.catching_up
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .is_some_and(|d| d == dir)
    }

    /// CDUP / XCUP: what libunftp does to its own copy (`PathBuf::pop`, so `/` stays `/`).
    pub fn working_dir_up(&self) {
        self.working_dir
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop();
    }

    /// End the session with one last reply (vsftpd's refusals and timeouts). The relay sends
    /// it and closes the connection; callers return an error meanwhile.
    pub fn end_session(&self, reply: &str, reason: ExitReason) {
        let mut ending = self.ending.lock().unwrap_or_else(|p| p.into_inner());
        if ending.is_none() {
            *ending = Some((reply.to_string(), reason));
        }
        self.ending_notify.notify_one();
    }

    pub fn take_ending(&self) -> Option<(String, ExitReason)> {
        self.ending.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    pub async fn ending_notified(&self) {
        self.ending_notify.notified().await
    }

    /// The relay saw `LIST`/`NLST` with these options.
    pub fn set_list_flags(&self, flags: ListFlags) {
        *self.list_flags.lock().unwrap_or_else(|p| p.into_inner()) = flags;
    }

    /// The options of the listing now being produced (consumed).
    pub fn take_list_flags(&self) -> ListFlags {
        std::mem::take(&mut *self.list_flags.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The relay is about to forward a transfer command: forget an earlier outcome.
    pub fn clear_data_outcome(&self) {
        *self.data_outcome.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The storage backend's word, if it has given one (not waiting).
    pub fn take_data_outcome(&self) -> Option<DataOutcome> {
        self.data_outcome
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// The storage backend's word on the transfer now reaching it.
    pub fn report_data(&self, outcome: DataOutcome) {
        *self.data_outcome.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
        self.data_outcome_notify.notify_one();
    }

    /// The outcome of the pending transfer, waiting at most `wait` for it.
    pub async fn data_outcome(&self, wait: std::time::Duration) -> Option<DataOutcome> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(outcome) = self
                .data_outcome
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
            {
                return Some(outcome);
            }
            let notified = self.data_outcome_notify.notified();
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// A plain passive listener is set up (its address known, see `passive_address`) and the
    /// client's data connection has not reached it, neither accepted nor waiting in its queue.
    /// `false` when unsure (no such listener: active mode, `PROT P`).
    pub fn passive_client_absent(&self) -> bool {
        /// Descriptors looked at (a worker has a few dozen at most).
        const FD_SCAN_LIMIT: i32 = 128;
        let local = *self
            .passive_address
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        local.is_some_and(|local| {
            !crate::sys::data_connection_came(local, self.client_ip, FD_SCAN_LIMIT)
        })
    }

    pub fn set_stand_in(&self, real: Option<crate::worker::active::StandIn>) {
        *self.stand_in.lock().unwrap_or_else(|p| p.into_inner()) = real;
    }

    pub fn take_stand_in(&self) -> Option<crate::worker::active::StandIn> {
        self.stand_in
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    pub fn set_active_reply(&self, reply: Option<&'static str>) {
        *self.active_reply.lock().unwrap_or_else(|p| p.into_inner()) = reply;
    }

    pub fn take_active_reply(&self) -> Option<&'static str> {
        self.active_reply
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    pub fn mlst_facts(&self) -> crate::storage::facts::FactSet {
        *self.mlst_facts.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_mlst_facts(&self, facts: crate::storage::facts::FactSet) {
        *self.mlst_facts.lock().unwrap_or_else(|p| p.into_inner()) = facts;
    }

    pub fn may_rename(&self) -> bool {
        self.rename_allowed
            .load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// `ls`-style options of a listing command that libunftp would drop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListFlags {
    /// `-a`: dot files too.
    pub all: bool,
    /// `-R`: subdirectories too (only with `ls_recurse_enable`).
    pub recursive: bool,
    /// The client asked for `MLSD`, which the relay passes to libunftp as `LIST -- path` so
    /// that the storage backend writes the lines (with the names' bytes, `crate::names`).
    pub mlsd: bool,
}

impl ListFlags {
    /// Options from a `LIST`/`NLST` argument such as `-la dir` (only leading `-x` words).
    pub fn parse(argument: &str) -> ListFlags {
        let mut flags = ListFlags::default();
        for word in argument
            .split_whitespace()
            .take_while(|w| w.starts_with('-') && *w != "--")
        {
            flags.all |= word.contains('a');
            flags.recursive |= word.contains('R');
        }
        flags
    }
}

#[cfg(test)]
mod tests;
