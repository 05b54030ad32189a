//! This machine's name and addresses, as servers would reach it.

use std::net::IpAddr;

/// The host name (uname's nodename), or `banlight.local` when it has none.
pub fn hostname() -> String {
    let uts = rustix::system::uname();
    let name = uts.nodename().to_string_lossy();
    if name.is_empty() {
        "banlight.local".into()
    } else {
        name.into_owned()
    }
}

/// This machine's addresses that servers could use: not loopback, not IPv6
/// link-local (unusable in a URL without an interface name).
/// Written with getifaddrs(3) from libc, already a dependency, rather than a
/// crate for these few lines.
pub fn local_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list we only read, and
    // free once with freeifaddrs; each ifa_addr is null or points at a
    // sockaddr whose family says which struct it is.
    unsafe {
        if libc::getifaddrs(&mut list) != 0 {
            return out;
        }
        let mut cur = list;
        while !cur.is_null() {
            let addr = (*cur).ifa_addr;
            if !addr.is_null() {
                match i32::from((*addr).sa_family) {
                    libc::AF_INET => {
                        let a = &*(addr as *const libc::sockaddr_in);
                        out.push(IpAddr::from(a.sin_addr.s_addr.to_ne_bytes()));
                    }
                    libc::AF_INET6 => {
                        let a = &*(addr as *const libc::sockaddr_in6);
                        out.push(IpAddr::from(a.sin6_addr.s6_addr));
                    }
                    _ => {}
                }
            }
            cur = (*cur).ifa_next;
        }
        libc::freeifaddrs(list);
    }
    out.retain(|a| match a {
        IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_unspecified(),
        IpAddr::V6(v6) => {
            !v6.is_loopback() && !v6.is_unspecified() && (v6.segments()[0] & 0xffc0) != 0xfe80
        }
    });
    out.sort_by_key(|a| (a.is_ipv6(), *a));
    out.dedup();
    out
}
