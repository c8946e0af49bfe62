//! After login: the pre-login process carries bytes between the client (plain or TLS) and the
//! worker's link, in both directions, until the session ends.
//!
//! The worker parses and answers; this side only moves bytes (the worker applies the line cap
//! and the parser). When the worker's side ends, the client is closed at once (with TLS
//! close_notify) without waiting for the client; when the client's side ends, the worker is
//! told and given a moment for its last words. Nothing here can keep a session alive once
//! either end is gone.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use super::client::Client;
use crate::protocol::ExitReason;

/// How long the worker has for its last replies once the client has closed.
const LAST_WORDS: Duration = Duration::from_secs(5);
/// How long closing the client's side (TLS close_notify) may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Write the preamble and what the client already sent, then carry bytes both ways.
pub async fn run(client: Client, link: UnixStream, first: Vec<u8>) -> ExitReason {
    let (mut link_read, mut link_write) = link.into_split();
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let to_client = async {
        let _ = tokio::io::copy(&mut link_read, &mut client_write).await;
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, client_write.shutdown()).await;
    };
    let from_client = async {
        // A worker that refused the session may be gone already: its last words still reach
        // the client through `to_client`.
        if link_write.write_all(&first).await.is_err() {
            return;
        }
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if link_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = link_write.shutdown().await;
    };
    tokio::pin!(to_client);
    tokio::pin!(from_client);
    tokio::select! {
        _ = &mut to_client => {}
        _ = &mut from_client => {
            let _ = tokio::time::timeout(LAST_WORDS, &mut to_client).await;
        }
    }
    ExitReason::Closed
}
