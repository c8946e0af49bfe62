//! The relay's side of libunftp's in-process connection: reading one whole reply (all its
//! lines, and its code) and one command's round trip, each bounded in length and time.
//!
//! Runs in the worker, as the logged-in user, jailed. It never writes to the client and never
//! waits on libunftp without a deadline.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWriteExt};

use crate::control::line::{Line, LineReader};

/// Longest reply line accepted from libunftp.
pub(super) const MAX_ENGINE_LINE: usize = 1 << 20;
/// Longest wait for libunftp to answer one command of the login, or to take a command.
pub(super) const ENGINE_TIMEOUT: Duration = Duration::from_secs(20);

pub(super) type EngineRead = tokio::net::tcp::OwnedReadHalf;
pub(super) type EngineWrite = tokio::net::tcp::OwnedWriteHalf;

/// A complete reply from libunftp: all its lines, and its code.
pub(super) struct EngineReply {
    pub(super) code: u16,
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) text: String,
}

pub(super) async fn read_engine_reply<R: AsyncRead + Unpin>(
    lines: &mut LineReader,
    r: &mut R,
) -> io::Result<EngineReply> {
    let mut text = String::new();
    loop {
        let line = match lines.next(r, MAX_ENGINE_LINE).await? {
            Line::Text(l) => String::from_utf8_lossy(&l).into_owned(),
            Line::Closed => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "FTP engine closed",
                ));
            }
            Line::TooLong => return Err(io::Error::other("FTP engine reply too long")),
        };
        text.push_str(&line);
        text.push_str("\r\n");
        let b = line.as_bytes();
        if b.len() >= 4 && b[..3].iter().all(u8::is_ascii_digit) && b[3] == b' ' {
            let code = line[..3].parse().unwrap_or(0);
            return Ok(EngineReply { code, text });
        }
        if b.len() == 3 && b.iter().all(u8::is_ascii_digit) {
            return Ok(EngineReply {
                code: line.parse().unwrap_or(0),
                text,
            });
        }
    }
}

pub(super) async fn engine_round_trip(
    line: &str,
    engine_lines: &mut LineReader,
    engine_read: &mut EngineRead,
    engine_write: &mut EngineWrite,
) -> io::Result<EngineReply> {
    let exchange = async {
        engine_write.write_all(line.as_bytes()).await?;
        engine_write.write_all(b"\r\n").await?;
        read_engine_reply(engine_lines, engine_read).await
    };
    tokio::time::timeout(ENGINE_TIMEOUT, exchange)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the FTP engine did not answer"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn engine_replies_are_read_whole_including_multi_line() {
        let mut input: &[u8] =
            b"211-Extensions supported:\r\n UTF8\r\n211 END\r\n230 User logged in\r\n";
        let mut lines = LineReader::default();
        let feat = read_engine_reply(&mut lines, &mut input).await.unwrap();
        assert_eq!(feat.code, 211);
        assert!(feat.text.contains("UTF8"));
        assert_eq!(
            read_engine_reply(&mut lines, &mut input)
                .await
                .unwrap()
                .code,
            230
        );
    }
}
