//! The address arguments of `PORT` and `EPRT`, and vsftpd's rule for which addresses an active
//! data connection may go to. Pure functions: the worker's relay checks with them before
//! asking, and the monitor, which trusts nothing from the worker, checks again before it
//! connects.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};

use crate::jail::netns::unmapped;

/// The argument of `PORT h1,h2,h3,h4,p1,p2`.
pub fn parse_port(arg: &str) -> Option<SocketAddr> {
    let numbers: Vec<u8> = arg
        .trim()
        .split(',')
        .map(|n| n.trim().parse::<u8>())
        .collect::<Result<_, _>>()
        .ok()?;
    let [a, b, c, d, hi, lo] = numbers.as_slice() else {
        return None;
    };
    let port = u16::from(*hi) << 8 | u16::from(*lo);
    Some(SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::new(*a, *b, *c, *d),
        port,
    )))
}

/// The argument of `EPRT |1|ipv4|port|` or `EPRT |2|ipv6|port|` (RFC 2428; any delimiter).
pub fn parse_eprt(arg: &str) -> Option<SocketAddr> {
    let arg = arg.trim();
    let delimiter = arg.chars().next()?;
    let fields: Vec<&str> = arg.split(delimiter).collect();
    let ["", family, address, port, ""] = fields.as_slice() else {
        return None;
    };
    let port: u16 = port.parse().ok()?;
    let ip: IpAddr = match *family {
        "1" => IpAddr::V4(address.parse::<Ipv4Addr>().ok()?),
        "2" => IpAddr::V6(address.parse::<Ipv6Addr>().ok()?),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// vsftpd's rule for a PORT/EPRT address: anything but port 0 with `port_promiscuous`, else
/// only the client's own address and a port of 1024 or above.
pub fn allowed(target: SocketAddr, client: IpAddr, promiscuous: bool) -> bool {
    if target.port() == 0 {
        return false;
    }
    promiscuous || (unmapped(target.ip()) == unmapped(client) && target.port() >= 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_and_eprt_arguments_parse() {
        assert_eq!(
            parse_port("127,0,0,1,4,1"),
            Some("127.0.0.1:1025".parse().unwrap())
        );
        assert_eq!(
            parse_port(" 10, 1, 2, 3, 0, 21 "),
            Some("10.1.2.3:21".parse().unwrap())
        );
        for bad in [
            "",
            "1,2,3,4,5",
            "1,2,3,4,5,6,7",
            "256,0,0,1,4,1",
            "a,b,c,d,e,f",
        ] {
            assert_eq!(parse_port(bad), None, "{bad:?}");
        }
        assert_eq!(
            parse_eprt("|1|127.0.0.1|2121|"),
            Some("127.0.0.1:2121".parse().unwrap())
        );
        assert_eq!(
            parse_eprt("!2!::1!65535!"),
            Some("[::1]:65535".parse().unwrap())
        );
        for bad in [
            "",
            "|1|::1|21|",
            "|2|127.0.0.1|21|",
            "|3|x|1|",
            "|1|127.0.0.1|70000|",
            "|1|127.0.0.1|21",
        ] {
            assert_eq!(parse_eprt(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_the_clients_own_address_and_unprivileged_ports_unless_promiscuous() {
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        let ok: SocketAddr = "192.0.2.1:1024".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:192.0.2.1]:40000".parse().unwrap();
        let other: SocketAddr = "192.0.2.2:40000".parse().unwrap();
        let low: SocketAddr = "192.0.2.1:1023".parse().unwrap();
        let zero: SocketAddr = "192.0.2.1:0".parse().unwrap();
        assert!(allowed(ok, client, false));
        assert!(allowed(mapped, client, false));
        assert!(!allowed(other, client, false));
        assert!(!allowed(low, client, false));
        assert!(allowed(other, client, true));
        assert!(allowed(low, client, true));
        assert!(!allowed(zero, client, true));
    }
}
