//! [`Network`]: one entry of an address list key (`proxy_protocol_from`): an IPv4 or IPv6
//! address, or a network written `address/prefix`.
//!
//! What it does: parses and writes the text form (TOML strings) and answers whether an
//! address lies in the network; an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) counts as
//! its IPv4 address. What it must never do: resolve names or contain `unsafe` code.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An address (a network of one) or a network in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network(IpNet);

impl Network {
    /// True if `ip` is in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.contains(&ip)
    }
}

impl FromStr for Network {
    type Err = String;

    fn from_str(s: &str) -> Result<Network, String> {
        let s = s.trim();
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Network(IpNet::from(ip)));
        }
        let net: IpNet = s.parse().map_err(|_| {
            format!(
                "{s:?} is not an address or a network (such as \"192.0.2.10\" or \"10.0.0.0/8\")"
            )
        })?;
        // SECURITY: "10.1.2.3/8" is almost certainly a typo for one address or for 10.0.0.0/8;
        // trusting a whole network by accident is the worse mistake, so it is refused.
        if net.trunc() != net {
            return Err(format!(
                "{s:?} has host bits set; write the network as \"{}\"",
                net.trunc()
            ));
        }
        Ok(Network(net))
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.prefix_len() == self.0.max_prefix_len() {
            write!(f, "{}", self.0.addr())
        } else {
            write!(f, "{}", self.0)
        }
    }
}

impl Serialize for Network {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Network {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Network, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_address_is_a_network_of_one_and_mapped_addresses_count_as_ipv4() {
        let one: Network = "127.0.0.1".parse().unwrap();
        assert!(one.contains(ip("127.0.0.1")));
        assert!(one.contains(ip("::ffff:127.0.0.1")));
        assert!(!one.contains(ip("127.0.0.2")));
        assert_eq!(one.to_string(), "127.0.0.1");
        let net: Network = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains(ip("10.255.0.1")) && !net.contains(ip("11.0.0.1")));
        assert_eq!(net.to_string(), "10.0.0.0/8");
        let v6: Network = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8::5")) && !v6.contains(ip("10.0.0.1")));
    }

    #[test]
    fn names_garbage_and_host_bits_are_refused() {
        for bad in ["localhost", "", "10.0.0.0/33", "10.1.2.3/8", "1.2.3"] {
            assert!(bad.parse::<Network>().is_err(), "{bad}");
        }
    }
}
