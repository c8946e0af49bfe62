//! Where the worker's relay reads the client's commands and writes its replies: the client's
//! own control connection (plain, handed over by the pre-login process after login), or the
//! link to the pre-login process (which holds the client's TLS).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

/// Where the client's commands come from.
pub enum Client {
    /// The client's own (plain) control connection, handed over by the pre-login process.
    Direct(TcpStream),
    /// The link to the pre-login process, which holds the client's TLS.
    Link(UnixStream),
}

impl AsyncRead for Client {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Client::Direct(s) => Pin::new(s).poll_read(cx, buf),
            Client::Link(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Client {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Client::Direct(s) => Pin::new(s).poll_write(cx, buf),
            Client::Link(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Client::Direct(s) => Pin::new(s).poll_flush(cx),
            Client::Link(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Client::Direct(s) => Pin::new(s).poll_shutdown(cx),
            Client::Link(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
