//! Reading CRLF- (or LF-) terminated lines with an exact length cap.
//!
//! A line longer than the cap is not an error that ends the session: its bytes are discarded
//! up to the next line feed and the caller answers `500` (vsftpd's limit is 4 KiB). Memory
//! stays bounded by the cap plus one read, however long the line.

use tokio::io::{AsyncRead, AsyncReadExt};

/// Longest command line accepted from a client, its CR LF included (vsftpd: 4 KiB).
pub const MAX_LINE: usize = 4096;

/// One read from a [`LineReader`].
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A whole line, without its terminator.
    Text(Vec<u8>),
    /// The peer closed the connection (a partial last line is dropped).
    Closed,
    /// A line over the cap was read and thrown away.
    TooLong,
}

/// Splits a byte stream into lines.
#[derive(Debug, Default)]
pub struct LineReader {
    buf: Vec<u8>,
    /// Inside a line that is already known to be too long.
    discarding: bool,
}

impl LineReader {
    /// A reader that starts with bytes already received elsewhere.
    pub fn seeded(bytes: Vec<u8>) -> LineReader {
        LineReader {
            buf: bytes,
            discarding: false,
        }
    }

    /// The next line of at most `max` bytes, terminator included.
    pub async fn next<R: AsyncRead + Unpin + ?Sized>(
        &mut self,
        r: &mut R,
        max: usize,
    ) -> std::io::Result<Line> {
        loop {
            if let Some(line) = self.take_line(max) {
                return Ok(line);
            }
            let mut chunk = [0u8; 4096];
            let n = r.read(&mut chunk).await?;
            if n == 0 {
                return Ok(Line::Closed);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// A complete line from what has arrived, if there is one.
    fn take_line(&mut self, max: usize) -> Option<Line> {
        match self.buf.iter().position(|b| *b == b'\n') {
            Some(pos) => {
                let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
                if std::mem::take(&mut self.discarding) || line.len() > max {
                    return Some(Line::TooLong);
                }
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                Some(Line::Text(line))
            }
            None => {
                if self.buf.len() >= max {
                    // SECURITY: no line of this length can be accepted; keep memory bounded.
                    self.buf.clear();
                    self.discarding = true;
                }
                None
            }
        }
    }

    /// Bytes received but not yet returned as a line.
    pub fn pending(&self) -> bool {
        !self.buf.is_empty() || self.discarding
    }

    /// What has been received and not yet returned, without taking it.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Everything received and not yet returned (to hand on to another reader).
    pub fn take_pending(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn all(input: &[u8], max: usize) -> Vec<Line> {
        let mut input = input;
        let mut lines = LineReader::default();
        let mut out = Vec::new();
        for _ in 0..100 {
            let line = lines.next(&mut input, max).await.unwrap();
            let closed = line == Line::Closed;
            out.push(line);
            if closed {
                break;
            }
        }
        out
    }

    #[tokio::test]
    async fn lines_end_at_crlf_or_lf_and_at_close() {
        assert_eq!(
            all(b"USER a\r\nPASS b\nNOOP", 100).await,
            vec![
                Line::Text(b"USER a".to_vec()),
                Line::Text(b"PASS b".to_vec()),
                Line::Closed
            ]
        );
    }

    #[tokio::test]
    async fn the_cap_is_exact_and_counts_the_terminator() {
        let mut ok = vec![b'x'; 4094];
        ok.extend_from_slice(b"\r\n");
        let mut over = vec![b'x'; 4095];
        over.extend_from_slice(b"\r\n");
        assert_eq!(all(&ok, MAX_LINE).await[0], Line::Text(vec![b'x'; 4094]));
        assert_eq!(all(&over, MAX_LINE).await[0], Line::TooLong);
    }

    #[tokio::test]
    async fn an_overlong_line_is_skipped_and_the_next_one_read() {
        let mut input = vec![b'y'; 100_000];
        input.extend_from_slice(b"\r\nNOOP\r\n");
        assert_eq!(
            all(&input, MAX_LINE).await,
            vec![Line::TooLong, Line::Text(b"NOOP".to_vec()), Line::Closed]
        );
    }
}
