//! The ignore list: networks whose bans are recorded but never counted
//! (the owner's own office, a monitoring host). CIDR matching is ipnet's.

use std::net::IpAddr;

use ipnet::IpNet;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IgnoreList {
    nets: Vec<IpNet>,
}

impl IgnoreList {
    pub fn new(nets: Vec<IpNet>) -> Self {
        // Host bits set (`203.0.113.7/24`) mean the whole network.
        IgnoreList {
            nets: nets.into_iter().map(|n| n.trunc()).collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }

    /// Whether `ip` lies in a listed network. An IPv4-mapped IPv6 address
    /// (`::ffff:203.0.113.9`) is the IPv4 address it carries.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|n| n.contains(&ip))
    }
}

/// Parses one entry: a network in CIDR form or a single address.
pub fn parse_net(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<IpNet>() {
        return Ok(n);
    }
    s.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
        format!("\"{s}\" is not a network like \"203.0.113.0/24\" or \"2001:db8:1::/48\", nor an address")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(nets: &[&str]) -> IgnoreList {
        IgnoreList::new(nets.iter().map(|s| parse_net(s).unwrap()).collect())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn matches_v4_and_v6_networks() {
        let l = list(&["203.0.113.0/24", "2001:db8:1::/48", "192.0.2.7"]);
        for inside in [
            "203.0.113.0",
            "203.0.113.255",
            "2001:db8:1::1",
            "2001:db8:1:ffff:ffff:ffff:ffff:ffff",
            "192.0.2.7",
        ] {
            assert!(l.contains(ip(inside)), "{inside}");
        }
        for outside in [
            "203.0.114.0",
            "203.0.112.255",
            "2001:db8:2::1",
            "192.0.2.8",
            "::",
        ] {
            assert!(!l.contains(ip(outside)), "{outside}");
        }
    }

    #[test]
    fn mapped_v6_is_the_v4_address() {
        let l = list(&["203.0.113.0/24"]);
        assert!(l.contains(ip("::ffff:203.0.113.9")));
        assert!(!l.contains(ip("::ffff:203.0.114.9")));
        // and a v4 address never matches a v6-only list
        assert!(!list(&["2001:db8::/32"]).contains(ip("203.0.113.9")));
    }

    #[test]
    fn host_bits_are_dropped_and_empty_matches_nothing() {
        let l = list(&["203.0.113.77/24"]);
        assert_eq!(l.nets()[0].to_string(), "203.0.113.0/24");
        assert!(l.contains(ip("203.0.113.1")));
        assert!(IgnoreList::default().is_empty());
        assert!(!IgnoreList::default().contains(ip("127.0.0.1")));
        assert!(list(&["0.0.0.0/0"]).contains(ip("8.8.8.8")));
    }

    #[test]
    fn bad_entries_are_errors() {
        for bad in ["", "203.0.113.0/33", "2001:db8::/129", "office", "1.2.3/24"] {
            let e = parse_net(bad).unwrap_err();
            assert!(e.contains("203.0.113.0/24"), "{bad}: {e}");
        }
    }
}
