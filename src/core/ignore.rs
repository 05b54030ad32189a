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

    /// Whether `ip` lies in a listed network. An IPv6 address that carries
    /// an IPv4 one is that IPv4 address (see `fold_ipv4`).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = fold_ipv4(ip);
        self.nets.iter().any(|n| n.contains(&ip))
    }
}

/// The IPv4 address an IPv6 address stands for, if it carries one (issue
/// 19, item 6), so the ignore list and dedupe see one client, however a
/// dual-stack server, a NAT64 or a 6to4 relay wrote it:
/// - IPv4-mapped `::ffff:a.b.c.d` (a v4 client of a dual-stack socket);
/// - IPv4-compatible `::a.b.c.d` (deprecated, RFC 4291), but not `::` and
///   `::1` (nor anything else in `::/104`, which is not an IPv4 host);
/// - NAT64 `64:ff9b::a.b.c.d` (the well-known prefix, RFC 6052): the v4
///   host behind the translator;
/// - 6to4 `2002:AABB:CCDD::/48` (RFC 3056): the site's v4 address
///   `AA.BB.CC.DD`; the host part is dropped (one site, one client, as the
///   rate limiter treats a /64).
///
/// Anything else is returned as it is (canonical form).
pub fn fold_ipv4(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else {
        return ip;
    };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let s = v6.segments();
    let v4 = |hi: u16, lo: u16| {
        IpAddr::V4(std::net::Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        ))
    };
    match s {
        [0, 0, 0, 0, 0, 0, hi, lo] if hi >> 8 != 0 => v4(hi, lo),
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => v4(hi, lo),
        [0x2002, hi, lo, ..] => v4(hi, lo),
        _ => ip,
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
        // IPv4-compatible, NAT64 and 6to4 forms of 203.0.113.9 too.
        for v6 in ["::203.0.113.9", "64:ff9b::203.0.113.9", "2002:cb00:7109::1"] {
            assert!(l.contains(ip(v6)), "{v6}");
            assert_eq!(fold_ipv4(ip(v6)), ip("203.0.113.9"), "{v6}");
        }
        for not_v4 in [
            "::",
            "::1",
            "::ff:1",
            "64:ff9b:1::cb00:7109",
            "2001:db8::cb00:7109",
        ] {
            assert_eq!(fold_ipv4(ip(not_v4)), ip(not_v4), "{not_v4}");
        }
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
