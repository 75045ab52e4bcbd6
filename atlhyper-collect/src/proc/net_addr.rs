//! Interface addresses from procfs, so a captured tree carries them too: local IPv4 addresses from
//! `/proc/net/fib_trie`, matched to interfaces through the connected routes of `/proc/net/route`,
//! and IPv6 addresses from `/proc/net/if_inet6`.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::error::{ParseError, ParseErrorKind, ParseResult};

/// Local (`/32 host LOCAL`) IPv4 addresses in `/proc/net/fib_trie`, in file order; the same
/// address may appear more than once (the Main and Local tables).
pub fn fib_trie_local(text: &str) -> impl Iterator<Item = Ipv4Addr> + '_ {
    let mut last: Option<Ipv4Addr> = None;
    text.lines().filter_map(move |line| {
        let t = line.trim_start();
        if let Some(addr) = t.strip_prefix("|-- ") {
            last = addr.trim().parse().ok();
            return None;
        }
        if t.starts_with("/32 host LOCAL") {
            last.take()
        } else {
            None
        }
    })
}

/// One route of `/proc/net/route`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Route<'a> {
    /// Interface name.
    pub iface: &'a str,
    /// Destination network.
    pub destination: Ipv4Addr,
    /// Gateway (0.0.0.0 for a connected route).
    pub gateway: Ipv4Addr,
    /// Netmask.
    pub mask: Ipv4Addr,
}

impl Route<'_> {
    /// Whether `addr` is inside this route's network.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        let m = u32::from(self.mask);
        u32::from(addr) & m == u32::from(self.destination) & m
    }
}

/// Iterates over the routes of `/proc/net/route` (header skipped).
pub fn routes(text: &str) -> impl Iterator<Item = ParseResult<Route<'_>>> {
    text.lines()
        .enumerate()
        .skip(1)
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let err = |k| ParseError::new("/proc/net/route", i + 1, k);
            let mut it = line.split_ascii_whitespace();
            let iface = it.next().ok_or(err(ParseErrorKind::Missing("interface")))?;
            let hex = |s: Option<&str>| -> Option<Ipv4Addr> {
                let v = u32::from_str_radix(s?, 16).ok()?;
                // The kernel prints the network-order word as a native-endian integer; its native
                // bytes are the address. (A tree captured on a little-endian host replays correctly
                // on little-endian hosts only.)
                Some(Ipv4Addr::from(v.to_ne_bytes()))
            };
            let destination =
                hex(it.next()).ok_or(err(ParseErrorKind::BadNumber("destination")))?;
            let gateway = hex(it.next()).ok_or(err(ParseErrorKind::BadNumber("gateway")))?;
            // Flags RefCnt Use Metric, then Mask.
            for _ in 0..4 {
                it.next()
                    .ok_or(err(ParseErrorKind::Missing("route fields")))?;
            }
            let mask = hex(it.next()).ok_or(err(ParseErrorKind::BadNumber("mask")))?;
            Ok(Route {
                iface,
                destination,
                gateway,
                mask,
            })
        })
}

/// One address of `/proc/net/if_inet6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Inet6<'a> {
    /// The address.
    pub addr: Ipv6Addr,
    /// Prefix length.
    pub prefix_len: u8,
    /// Scope (0x00 global, 0x20 link, 0x10 host).
    pub scope: u8,
    /// Interface name.
    pub iface: &'a str,
}

/// Iterates over `/proc/net/if_inet6`.
pub fn if_inet6(text: &str) -> impl Iterator<Item = ParseResult<Inet6<'_>>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let err = |k| ParseError::new("/proc/net/if_inet6", i + 1, k);
            let mut it = line.split_ascii_whitespace();
            let a = it
                .next()
                .filter(|s| s.len() == 32)
                .ok_or(err(ParseErrorKind::Malformed("address")))?;
            let addr = u128::from_str_radix(a, 16)
                .map_err(|_| err(ParseErrorKind::BadNumber("address")))?;
            let _ifindex = it.next().ok_or(err(ParseErrorKind::Missing("ifindex")))?;
            let hex_u8 = |s: Option<&str>, what| {
                s.and_then(|s| u8::from_str_radix(s, 16).ok())
                    .ok_or(err(ParseErrorKind::BadNumber(what)))
            };
            let prefix_len = hex_u8(it.next(), "prefix length")?;
            let scope = hex_u8(it.next(), "scope")?;
            let _flags = it.next().ok_or(err(ParseErrorKind::Missing("flags")))?;
            let iface = it.next().ok_or(err(ParseErrorKind::Missing("interface")))?;
            Ok(Inet6 {
                addr: Ipv6Addr::from(addr),
                prefix_len,
                scope,
                iface,
            })
        })
}

/// The address to show for `iface`: the first local IPv4 address inside one of its connected
/// routes (longest mask first), else its first global IPv6 address, else its first IPv6 address.
pub fn address_of(iface: &str, fib_trie: &str, route: &str, inet6: &str) -> Option<String> {
    let mut best: Option<(u32, Ipv4Addr)> = None;
    for r in routes(route).filter_map(Result::ok) {
        if r.iface != iface || r.gateway != Ipv4Addr::UNSPECIFIED || u32::from(r.mask) == 0 {
            continue;
        }
        let bits = u32::from(r.mask).count_ones();
        if let Some(a) = fib_trie_local(fib_trie).find(|a| r.contains(*a) && !a.is_loopback())
            && best.is_none_or(|(b, _)| bits > b)
        {
            best = Some((bits, a));
        }
    }
    if let Some((_, a)) = best {
        return Some(a.to_string());
    }
    let v6: Vec<Inet6<'_>> = if_inet6(inet6)
        .filter_map(Result::ok)
        .filter(|e| e.iface == iface)
        .collect();
    v6.iter()
        .find(|e| e.scope == 0)
        .or_else(|| v6.first())
        .map(|e| e.addr.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIB: &str = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n\
     +-- 127.0.0.0/8 2 0 2\n        +-- 127.0.0.0/31 1 0 0\n           |-- 127.0.0.1\n              /32 host LOCAL\n\
     +-- 192.0.2.0/24 2 0 2\n           |-- 192.0.2.0\n              /24 link UNICAST\n           |-- 192.0.2.2\n              /32 host LOCAL\n\
        |-- 192.0.2.255\n           /32 link BROADCAST\n";
    const ROUTE: &str = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
    const INET6: &str = "fe8000000000000000fc00fffe000001 04 40 20 80     eth0\n\
00000000000000000000000000000001 01 80 10 80       lo\n\
fd000000000000000000000000000002 04 40 00 82     eth0\n\
fe800000000000000000000000000009 05 40 20 80     wg0\n";

    #[test]
    fn parses_and_matches() {
        let local: Vec<_> = fib_trie_local(FIB).collect();
        assert_eq!(
            local,
            [Ipv4Addr::new(127, 0, 0, 1), Ipv4Addr::new(192, 0, 2, 2)]
        );
        let r: Vec<_> = routes(ROUTE).collect::<Result<_, _>>().unwrap();
        assert_eq!(r[1].destination, Ipv4Addr::new(192, 0, 2, 0));
        assert_eq!(r[1].mask, Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(r[0].gateway, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(
            address_of("eth0", FIB, ROUTE, INET6).as_deref(),
            Some("192.0.2.2")
        );
        assert_eq!(
            address_of("wg0", FIB, ROUTE, INET6).as_deref(),
            Some("fe80::9")
        );
        assert_eq!(address_of("eth1", FIB, ROUTE, INET6), None);
        // Without IPv4 the global IPv6 address wins over link-local.
        assert_eq!(
            address_of("eth0", "", ROUTE, INET6).as_deref(),
            Some("fd00::2")
        );
    }

    #[test]
    fn rejects_malformed() {
        assert!(routes("h\neth0 zz 0 0 0 0 0 0\n").next().unwrap().is_err());
        assert!(
            routes("h\neth0 00000000 00000000 1 0 0\n")
                .next()
                .unwrap()
                .is_err()
        );
        assert!(if_inet6("abc 01 80 10 80 lo\n").next().unwrap().is_err());
        assert!(
            if_inet6("00000000000000000000000000000001 01 zz 10 80 lo\n")
                .next()
                .unwrap()
                .is_err()
        );
        assert!(
            if_inet6("00000000000000000000000000000001 01 80 10 80\n")
                .next()
                .unwrap()
                .is_err()
        );
        assert_eq!(fib_trie_local("garbage\n/32 host LOCAL\n").count(), 0);
    }
}
