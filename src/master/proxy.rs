//! The PROXY protocol header (v1 text, v2 binary) a trusted load balancer sends at the start
//! of a control connection (HAProxy's `send-proxy` / `send-proxy-v2`): [`read_header`] reads
//! it and says which client the connection is for.
//!
//! SECURITY: this is the one place where the root master reads bytes from a connection. It is
//! only ever called for a peer listed in `proxy_protocol_from` — the operator's own load
//! balancer, not a client; a header from any other peer is never read here (the pre-login
//! process refuses it as the first command). It reads at most [`V1_MAX`] or 16 + [`V2_MAX_BODY`]
//! bytes, never one byte past the header (what follows belongs to the session), within
//! [`HEADER_TIMEOUT`], in a task of its own (the accept loop never waits for it), and leaves
//! the parsing to the `ppp` crate. Why here and not in the unprivileged pre-login process:
//! `max_clients`, `max_per_ip` and the failed-login ban are decided before any session process
//! exists, and they must count the client, not the balancer every client comes through.
//!
//! What it must never do: read from a peer that is not a listed proxy, block, or accept a
//! header it cannot fully check (a UDP or UNIX-socket source, a truncated or oversized header).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// How long a listed proxy has to send its header (HAProxy sends it with the connection).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest v1 header, CR LF included (the protocol's own limit).
const V1_MAX: usize = 107;
/// The longest v2 address-and-TLV block accepted: IPv6 addresses (36 bytes) leave room for
/// HAProxy's optional TLVs (unique id, TLS details, ...).
const V2_MAX_BODY: usize = 512;
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// What a header said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carried {
    /// A proxied connection from this client.
    Client(SocketAddr),
    /// The proxy's own connection (v2 `LOCAL`, v1 `UNKNOWN`, an unspecified family: a health
    /// check): the socket's peer is the client.
    Proxy,
}

/// Read and parse the header at the start of `stream` (from a listed proxy), within
/// [`HEADER_TIMEOUT`].
pub async fn read_header(stream: &mut TcpStream) -> Result<Carried, String> {
    match tokio::time::timeout(HEADER_TIMEOUT, read(stream)).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "no PROXY protocol header within {} seconds",
            HEADER_TIMEOUT.as_secs()
        )),
    }
}

async fn read(stream: &mut TcpStream) -> Result<Carried, String> {
    let io = |e: std::io::Error| format!("reading the PROXY protocol header: {e}");
    // Every header is at least 15 bytes long ("PROXY UNKNOWN\r\n"), so 12 never over-read.
    let mut start = [0u8; 12];
    stream.read_exact(&mut start).await.map_err(io)?;
    if &start == V2_SIGNATURE {
        let mut fixed = [0u8; 4];
        stream.read_exact(&mut fixed).await.map_err(io)?;
        let body = usize::from(u16::from_be_bytes([fixed[2], fixed[3]]));
        if body > V2_MAX_BODY {
            return Err(format!(
                "PROXY protocol v2 header of {body} bytes (rftpd accepts up to {V2_MAX_BODY})"
            ));
        }
        let mut header = Vec::with_capacity(16 + body);
        header.extend_from_slice(&start);
        header.extend_from_slice(&fixed);
        header.resize(16 + body, 0);
        stream.read_exact(&mut header[16..]).await.map_err(io)?;
        return parse_v2(&header);
    }
    if !start.starts_with(b"PROXY ") {
        return Err("the connection does not start with a PROXY protocol header".to_owned());
    }
    let mut header = start.to_vec();
    // Take what has arrived up to the line feed: peeked bytes before it are all header.
    while header.last() != Some(&b'\n') {
        if header.len() >= V1_MAX {
            return Err(format!(
                "PROXY protocol v1 header longer than {V1_MAX} bytes"
            ));
        }
        let mut chunk = [0u8; V1_MAX];
        let room = V1_MAX - header.len();
        let seen = stream.peek(&mut chunk[..room]).await.map_err(io)?;
        if seen == 0 {
            return Err("the proxy closed the connection inside the header".to_owned());
        }
        let take = chunk[..seen]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(seen, |i| i + 1);
        stream.read_exact(&mut chunk[..take]).await.map_err(io)?;
        header.extend_from_slice(&chunk[..take]);
    }
    parse_v1(&header)
}

fn parse_v1(header: &[u8]) -> Result<Carried, String> {
    use ppp::v1::{Addresses, Header};
    let parsed =
        Header::try_from(header).map_err(|e| format!("malformed PROXY protocol v1 header: {e}"))?;
    if parsed.header.len() != header.len() {
        return Err("malformed PROXY protocol v1 header: bytes after it".to_owned());
    }
    Ok(match parsed.addresses {
        Addresses::Tcp4(a) => Carried::Client(SocketAddr::from((a.source_address, a.source_port))),
        Addresses::Tcp6(a) => Carried::Client(unmapped(SocketAddr::from((
            a.source_address,
            a.source_port,
        )))),
        Addresses::Unknown => Carried::Proxy,
    })
}

fn parse_v2(header: &[u8]) -> Result<Carried, String> {
    use ppp::v2::{Addresses, Command, Header, Protocol};
    let parsed =
        Header::try_from(header).map_err(|e| format!("malformed PROXY protocol v2 header: {e}"))?;
    if parsed.len() != header.len() {
        return Err("malformed PROXY protocol v2 header: wrong length".to_owned());
    }
    if parsed.command == Command::Local {
        return Ok(Carried::Proxy);
    }
    if parsed.protocol == Protocol::Datagram {
        return Err("PROXY protocol v2 header for a datagram (UDP) connection".to_owned());
    }
    match parsed.addresses {
        Addresses::IPv4(a) => Ok(Carried::Client(SocketAddr::from((
            a.source_address,
            a.source_port,
        )))),
        Addresses::IPv6(a) => Ok(Carried::Client(unmapped(SocketAddr::from((
            a.source_address,
            a.source_port,
        ))))),
        Addresses::Unspecified => Ok(Carried::Proxy),
        Addresses::Unix(_) => {
            Err("PROXY protocol v2 header for a UNIX-socket client (no address)".to_owned())
        }
    }
}

/// `::ffff:192.0.2.1` as `192.0.2.1` (a dual-stack balancer may write either).
fn unmapped(address: SocketAddr) -> SocketAddr {
    SocketAddr::new(crate::jail::netns::unmapped(address.ip()), address.port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppp::v2::{Builder, Command, Protocol, Version};

    fn v2(command: Command, addresses: ppp::v2::Addresses) -> Vec<u8> {
        Builder::with_addresses(Version::Two | command, Protocol::Stream, addresses)
            .build()
            .unwrap()
    }

    #[test]
    fn v1_tcp4_tcp6_and_unknown_headers_name_the_client() {
        assert_eq!(
            parse_v1(b"PROXY TCP4 192.0.2.5 198.51.100.1 40001 21\r\n"),
            Ok(Carried::Client("192.0.2.5:40001".parse().unwrap()))
        );
        assert_eq!(
            parse_v1(b"PROXY TCP6 ::ffff:192.0.2.5 ::1 40001 21\r\n"),
            Ok(Carried::Client("192.0.2.5:40001".parse().unwrap()))
        );
        assert_eq!(parse_v1(b"PROXY UNKNOWN\r\n"), Ok(Carried::Proxy));
        for bad in [
            &b"PROXY TCP4 192.0.2.5 198.51.100.1 40001\r\n"[..],
            b"PROXY TCP4 999.0.2.5 198.51.100.1 1 21\r\n",
            b"PROXY TCP5 192.0.2.5 198.51.100.1 1 21\r\n",
            b"PROXY TCP4 192.0.2.5 198.51.100.1 1 21\n",
        ] {
            assert!(parse_v1(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn v2_proxy_and_local_headers_and_refused_families() {
        let client: SocketAddr = "192.0.2.9:5000".parse().unwrap();
        let ours: SocketAddr = "198.51.100.2:21".parse().unwrap();
        let header = v2(Command::Proxy, (client, ours).into());
        assert_eq!(parse_v2(&header), Ok(Carried::Client(client)));
        let six: SocketAddr = "[2001:db8::9]:5000".parse().unwrap();
        let six_ours: SocketAddr = "[2001:db8::1]:21".parse().unwrap();
        assert_eq!(
            parse_v2(&v2(Command::Proxy, (six, six_ours).into())),
            Ok(Carried::Client(six))
        );
        assert_eq!(
            parse_v2(&v2(Command::Local, ppp::v2::Addresses::Unspecified)),
            Ok(Carried::Proxy)
        );
        let unix = ppp::v2::Addresses::Unix(ppp::v2::Unix::new([0; 108], [0; 108]));
        assert!(parse_v2(&v2(Command::Proxy, unix)).is_err());
        let udp = Builder::with_addresses(
            Version::Two | Command::Proxy,
            Protocol::Datagram,
            (client, ours),
        )
        .build()
        .unwrap();
        assert!(parse_v2(&udp).is_err());
        assert!(parse_v2(&header[..header.len() - 1]).is_err());
    }

    #[tokio::test]
    async fn exactly_the_header_is_read_and_garbage_or_an_oversized_header_is_refused() {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let send = |bytes: Vec<u8>| async move {
            let mut c = TcpStream::connect(address).await.unwrap();
            c.write_all(&bytes).await.unwrap();
            c
        };
        let _c = send(b"PROXY TCP4 192.0.2.5 198.51.100.1 40001 21\r\nUSER x\r\n".to_vec()).await;
        let (mut s, _) = listener.accept().await.unwrap();
        assert_eq!(
            read_header(&mut s).await,
            Ok(Carried::Client("192.0.2.5:40001".parse().unwrap()))
        );
        let mut rest = [0u8; 8];
        s.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"USER x\r\n");

        let _c = send(b"USER someone\r\n".to_vec()).await;
        let (mut s, _) = listener.accept().await.unwrap();
        assert!(read_header(&mut s).await.is_err());

        let mut long = b"PROXY TCP4 ".to_vec();
        long.resize(200, b'1');
        let _c = send(long).await;
        let (mut s, _) = listener.accept().await.unwrap();
        assert!(read_header(&mut s).await.is_err());

        let mut big = V2_SIGNATURE.to_vec();
        big.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        let _c = send(big).await;
        let (mut s, _) = listener.accept().await.unwrap();
        assert!(read_header(&mut s).await.unwrap_err().contains("65535"));
    }
}
