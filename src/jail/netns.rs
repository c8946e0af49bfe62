//! The worker's private network namespace, so libunftp can serve the client through an
//! in-process relay while still seeing the client's real address.
//!
//! The monitor makes it before it forks the worker ([`session_namespace`]): a new namespace
//! with only a loopback device, brought up and given the client's address; the worker enters it
//! ([`enter`]) and connects to itself from that address, so libunftp's control connection
//! reports the client's address (which it compares with each data connection's). Data sockets
//! are made by the monitor in the host's network and passed in, and the worker can reach
//! nothing else — the isolation vsftpd calls `isolate_network`. The monitor keeps the
//! namespace's handle to make the stand-in sockets the worker may not make itself
//! ([`socket_in`]: its seccomp filter forbids `socket(AF_INET…)`). Netlink messages are built
//! here by hand; nothing here is unsafe.
//!
//! What it must never do: leave the calling process in another namespace than its own (a
//! failed switch back aborts it).

use std::io;
use std::net::IpAddr;
use std::os::fd::OwnedFd;

use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recv, send,
    socket,
};

const NLMSG_ERROR: u16 = 2;
const RTM_NEWLINK: u16 = 16;
const RTM_NEWADDR: u16 = 20;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const IFF_UP: u32 = 0x1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_F_NODAD: u8 = 0x02;
const RT_SCOPE_HOST: u8 = 254;
/// The loopback device is always index 1 in a new namespace.
const LOOPBACK_INDEX: u32 = 1;

/// A network namespace with nothing in it (not even loopback up), made once by the spawner and
/// entered by every pre-login process: cheaper than a namespace per session, and as empty.
/// Must be called while the process has one thread; the caller stays in its own namespace.
pub fn empty_namespace() -> io::Result<std::os::fd::OwnedFd> {
    use nix::sched::{CloneFlags, setns, unshare};
    let own = std::fs::File::open("/proc/self/ns/net")?;
    unshare(CloneFlags::CLONE_NEWNET)?;
    let empty = std::fs::File::open("/proc/self/ns/net");
    // Back to where we were, whatever happened to the open.
    setns(&own, CloneFlags::CLONE_NEWNET)?;
    Ok(std::os::fd::OwnedFd::from(empty?))
}

/// A new network namespace whose loopback device is up and also carries `client`, for one
/// session's worker; the caller stays in its own. Must be called while the process has one
/// thread (a namespace switch is per thread).
pub fn session_namespace(client: IpAddr) -> io::Result<OwnedFd> {
    use nix::sched::{CloneFlags, unshare};
    let own = OwnedFd::from(std::fs::File::open("/proc/self/ns/net")?);
    unshare(CloneFlags::CLONE_NEWNET)?;
    let made = configure(client).and_then(|()| std::fs::File::open("/proc/self/ns/net"));
    back_to(&own);
    Ok(OwnedFd::from(made?))
}

/// Enter the namespace the monitor made (the worker, as root, before its jail).
pub fn enter(namespace: &OwnedFd) -> io::Result<()> {
    Ok(nix::sched::setns(
        namespace,
        nix::sched::CloneFlags::CLONE_NEWNET,
    )?)
}

/// Run `make` inside `namespace` (the socket it makes stays there), then return to `own`.
/// One thread only, as [`session_namespace`].
pub fn socket_in<T>(
    own: &OwnedFd,
    namespace: &OwnedFd,
    make: impl FnOnce() -> io::Result<T>,
) -> io::Result<T> {
    enter(namespace)?;
    let made = make();
    back_to(own);
    made
}

/// Return to the namespace `own`; a process that cannot would make its next sockets in the
/// wrong network: it aborts.
fn back_to(own: &OwnedFd) {
    if let Err(e) = nix::sched::setns(own, nix::sched::CloneFlags::CLONE_NEWNET) {
        tracing::error!(error = %e, "cannot return to the host's network namespace; aborting");
        std::process::abort();
    }
}

/// In a new namespace: loopback up, with `client`'s address on it.
fn configure(client: IpAddr) -> io::Result<()> {
    let route = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )?;
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&route),
        &NetlinkAddr::new(0, 0),
    )?;
    request(&route, &link_up(1))?;
    match request(&route, &add_address(2, client)) {
        // 127.0.0.1 and ::1 are already there.
        Err(e) if e.raw_os_error() == Some(nix::libc::EEXIST) => Ok(()),
        other => other,
    }
}

/// Send one netlink request and wait for its acknowledgement.
fn request(route: &std::os::fd::OwnedFd, message: &[u8]) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    send(route.as_raw_fd(), message, MsgFlags::empty())?;
    let mut buf = [0u8; 1024];
    let n = recv(route.as_raw_fd(), &mut buf, MsgFlags::empty())?;
    parse_ack(&buf[..n])
}

/// An `NLMSG_ERROR` acknowledgement: error 0 is success.
fn parse_ack(reply: &[u8]) -> io::Result<()> {
    if reply.len() < 20 || u16::from_ne_bytes([reply[4], reply[5]]) != NLMSG_ERROR {
        return Err(io::Error::other("unexpected netlink reply"));
    }
    let code = i32::from_ne_bytes([reply[16], reply[17], reply[18], reply[19]]);
    if code == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(-code))
    }
}

/// `nlmsghdr` + `body`, with the total length filled in.
fn message(kind: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let len = 16 + body.len();
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(body);
    m
}

/// `RTM_NEWLINK` setting `IFF_UP` on the loopback device.
fn link_up(seq: u32) -> Vec<u8> {
    let mut ifinfo = Vec::with_capacity(16);
    ifinfo.push(0u8); // ifi_family = AF_UNSPEC
    ifinfo.push(0u8); // padding
    ifinfo.extend_from_slice(&0u16.to_ne_bytes()); // ifi_type
    ifinfo.extend_from_slice(&(LOOPBACK_INDEX as i32).to_ne_bytes());
    ifinfo.extend_from_slice(&IFF_UP.to_ne_bytes()); // ifi_flags
    ifinfo.extend_from_slice(&IFF_UP.to_ne_bytes()); // ifi_change
    message(RTM_NEWLINK, 0, seq, &ifinfo)
}

/// One `rtattr` carrying `data`, padded to 4 bytes.
fn attribute(kind: u16, data: &[u8]) -> Vec<u8> {
    let len = 4 + data.len();
    let mut a = Vec::with_capacity(len.next_multiple_of(4));
    a.extend_from_slice(&(len as u16).to_ne_bytes());
    a.extend_from_slice(&kind.to_ne_bytes());
    a.extend_from_slice(data);
    a.resize(len.next_multiple_of(4), 0);
    a
}

/// `RTM_NEWADDR` putting `address` (a host address, no duplicate detection) on loopback.
fn add_address(seq: u32, address: IpAddr) -> Vec<u8> {
    let (family, prefix, bytes): (u8, u8, Vec<u8>) = match address {
        IpAddr::V4(a) => (nix::libc::AF_INET as u8, 32, a.octets().to_vec()),
        IpAddr::V6(a) => (nix::libc::AF_INET6 as u8, 128, a.octets().to_vec()),
    };
    let mut body = vec![family, prefix, IFA_F_NODAD, RT_SCOPE_HOST];
    body.extend_from_slice(&LOOPBACK_INDEX.to_ne_bytes());
    body.extend(attribute(IFA_LOCAL, &bytes));
    body.extend(attribute(IFA_ADDRESS, &bytes));
    message(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, seq, &body)
}

/// The address as the kernel reports it for an IPv4 client on a dual-stack socket
/// (`::ffff:a.b.c.d`) is really IPv4.
pub fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netlink_messages_have_the_kernel_layout() {
        let up = link_up(7);
        assert_eq!(up.len(), 32);
        assert_eq!(u32::from_ne_bytes(up[0..4].try_into().unwrap()), 32);
        assert_eq!(
            u16::from_ne_bytes(up[4..6].try_into().unwrap()),
            RTM_NEWLINK
        );
        let v4 = add_address(8, "192.0.2.9".parse().unwrap());
        // header 16 + ifaddrmsg 8 + two 8-byte attributes
        assert_eq!(v4.len(), 40);
        assert_eq!(&v4[28..32], &[192, 0, 2, 9]);
        let v6 = add_address(9, "2001:db8::9".parse().unwrap());
        assert_eq!(v6.len(), 16 + 8 + 20 + 20);
    }

    #[test]
    fn acknowledgements_carry_the_error_code() {
        let mut ack = vec![0u8; 36];
        ack[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        assert!(parse_ack(&ack).is_ok());
        ack[16..20].copy_from_slice(&(-nix::libc::EEXIST).to_ne_bytes());
        assert_eq!(
            parse_ack(&ack).unwrap_err().raw_os_error(),
            Some(nix::libc::EEXIST)
        );
        assert!(parse_ack(&[0u8; 8]).is_err());
    }

    #[test]
    fn ipv4_mapped_addresses_are_unmapped() {
        assert_eq!(
            unmapped("::ffff:192.0.2.1".parse().unwrap()),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            unmapped("2001:db8::1".parse().unwrap()),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
    }
}
