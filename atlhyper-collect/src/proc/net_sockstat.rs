//! `/proc/net/sockstat` (IPv4) and `/proc/net/sockstat6` (IPv6, absent without IPv6): sockets
//! in use per protocol, as `PROTO: key value key value ...` lines.
//!
//! ```text
//! sockets: used 18
//! TCP: inuse 2 orphan 0 tw 1 alloc 2 mem 0
//! UDP: inuse 0 mem 0
//! FRAG: inuse 0 memory 0
//! ```
//!
//! `mem` is in pages (the host's page size); FRAG's `memory` is in bytes.

use crate::error::{ParseError, ParseErrorKind, ParseResult};
use crate::num::{Words, parse_u64};

const FILE: &str = "/proc/net/sockstat";

/// One `key value` pair of a protocol line, e.g. (`TCP`, `tw`, 1); the `sockets: used` line is
/// (`sockets`, `used`, n).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockstatField<'a> {
    /// The protocol as the kernel spells it (`sockets`, `TCP`, `UDP`, `TCP6`, `FRAG6`, ...).
    pub protocol: &'a str,
    /// The key (`used`, `inuse`, `orphan`, `tw`, `alloc`, `mem`, `memory`).
    pub key: &'a str,
    /// The count (pages for `mem`, bytes for `memory`).
    pub value: u64,
}

/// Every pair of every line in file order (for both files), without allocating. A malformed
/// pair ends its line with an error item (with the line number); the lines after it still parse.
pub fn fields(text: &str) -> Fields<'_> {
    Fields {
        lines: text.lines().enumerate(),
        line: None,
    }
}

/// The iterator of [`fields`].
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    lines: std::iter::Enumerate<std::str::Lines<'a>>,
    /// The line being read: its number, protocol and the words after the colon.
    line: Option<(usize, &'a str, Words<'a>)>,
}

impl<'a> Iterator for Fields<'a> {
    type Item = ParseResult<SockstatField<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((lineno, protocol, words)) = &mut self.line {
                let (lineno, protocol) = (*lineno, *protocol);
                let Some(key) = words.word() else {
                    self.line = None;
                    continue;
                };
                return match words.word().and_then(parse_u64) {
                    Some(value) => Some(Ok(SockstatField {
                        protocol,
                        key,
                        value,
                    })),
                    None => {
                        self.line = None;
                        Some(Err(ParseError::new(
                            FILE,
                            lineno,
                            ParseErrorKind::BadNumber("value"),
                        )))
                    }
                };
            }
            let (idx, line) = self.lines.next()?;
            if line.trim().is_empty() {
                continue;
            }
            match start_line(line, idx + 1) {
                Ok((protocol, words)) => self.line = Some((idx + 1, protocol, words)),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// The protocol of a line and the words after its colon; an error when the line has no
/// `PROTO:` prefix or nothing after it.
fn start_line(line: &str, lineno: usize) -> ParseResult<(&str, Words<'_>)> {
    let err = |k| ParseError::new(FILE, lineno, k);
    let (protocol, rest) = line
        .split_once(':')
        .ok_or(err(ParseErrorKind::Malformed("line without ':'")))?;
    let protocol = protocol.trim();
    if protocol.is_empty() || protocol.contains(|c: char| c.is_ascii_whitespace()) {
        return Err(err(ParseErrorKind::Malformed("protocol")));
    }
    if rest.trim().is_empty() {
        return Err(err(ParseErrorKind::Missing("key value pairs")));
    }
    Ok((protocol, Words::new(rest)))
}

/// The TCP line of `/proc/net/sockstat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TcpSockets {
    /// Sockets in use (not listening-only: every TCP socket bound to a port).
    pub inuse: u64,
    /// Orphaned sockets (closed by the application, still held by the kernel).
    pub orphan: u64,
    /// Sockets in TIME_WAIT.
    pub tw: u64,
    /// Sockets allocated (including ones not yet bound).
    pub alloc: u64,
    /// Memory of TCP buffers, pages.
    pub mem_pages: u64,
}

/// The UDP line of `/proc/net/sockstat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct UdpSockets {
    /// Sockets in use.
    pub inuse: u64,
    /// Memory of UDP buffers, pages. Since Linux 2.6.25.
    pub mem_pages: Option<u64>,
}

/// What the collector uses of `/proc/net/sockstat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Sockstat {
    /// `sockets: used`: IPv4 and IPv6 sockets of every kind in use.
    pub sockets_used: u64,
    /// The TCP line.
    pub tcp: TcpSockets,
    /// The UDP line.
    pub udp: UdpSockets,
}

/// Parses `/proc/net/sockstat`. The `sockets` line and the TCP line with `inuse`, `orphan`,
/// `tw`, `alloc` and `mem`, and the UDP line with `inuse`, are required (every kernel since 2.6
/// writes them); other lines (UDPLITE since 2.6.20, RAW, FRAG) are only checked for shape.
pub fn parse(text: &str) -> ParseResult<Sockstat> {
    let mut s = Sockstat::default();
    // Bit per required pair seen: sockets used, TCP inuse/orphan/tw/alloc/mem, UDP inuse.
    let mut seen = 0u8;
    for field in fields(text) {
        let f = field?;
        let (slot, bit) = match (f.protocol, f.key) {
            ("sockets", "used") => (&mut s.sockets_used, 1),
            ("TCP", "inuse") => (&mut s.tcp.inuse, 2),
            ("TCP", "orphan") => (&mut s.tcp.orphan, 4),
            ("TCP", "tw") => (&mut s.tcp.tw, 8),
            ("TCP", "alloc") => (&mut s.tcp.alloc, 16),
            ("TCP", "mem") => (&mut s.tcp.mem_pages, 32),
            ("UDP", "inuse") => (&mut s.udp.inuse, 64),
            ("UDP", "mem") => {
                s.udp.mem_pages = Some(f.value);
                continue;
            }
            _ => continue,
        };
        *slot = f.value;
        seen |= bit;
    }
    const REQUIRED: [&str; 7] = [
        "sockets used",
        "TCP inuse",
        "TCP orphan",
        "TCP tw",
        "TCP alloc",
        "TCP mem",
        "UDP inuse",
    ];
    if let Some((_, missing)) = REQUIRED
        .iter()
        .enumerate()
        .find(|(i, _)| seen & (1 << i) == 0)
    {
        return Err(ParseError::new(FILE, 1, ParseErrorKind::Missing(missing)));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CURRENT: &str = "sockets: used 18\nTCP: inuse 2 orphan 0 tw 1 alloc 3 mem 5\n\
        UDP: inuse 4 mem 6\nUDPLITE: inuse 0\nRAW: inuse 0\nFRAG: inuse 0 memory 0\n";

    #[test]
    fn parses_a_current_kernel() {
        let s = parse(CURRENT).unwrap();
        assert_eq!(s.sockets_used, 18);
        assert_eq!(
            s.tcp,
            TcpSockets {
                inuse: 2,
                orphan: 0,
                tw: 1,
                alloc: 3,
                mem_pages: 5
            }
        );
        assert_eq!(
            s.udp,
            UdpSockets {
                inuse: 4,
                mem_pages: Some(6)
            }
        );
    }

    #[test]
    fn old_kernels_lack_udp_mem_and_udplite() {
        let s = parse("sockets: used 7\nTCP: inuse 1 orphan 0 tw 0 alloc 1 mem 1\nUDP: inuse 2\n")
            .unwrap();
        assert_eq!(s.udp.mem_pages, None);
        assert_eq!(s.udp.inuse, 2);
    }

    #[test]
    fn fields_cover_every_pair_of_both_files() {
        let f: Vec<_> = fields(CURRENT).map(Result::unwrap).collect();
        assert_eq!(f.len(), 12);
        assert_eq!(
            f[0],
            SockstatField {
                protocol: "sockets",
                key: "used",
                value: 18
            }
        );
        assert_eq!(
            (f[11].protocol, f[11].key, f[11].value),
            ("FRAG", "memory", 0)
        );
        let six: Vec<_> = fields("TCP6: inuse 3\nFRAG6: inuse 0 memory 0\n")
            .map(Result::unwrap)
            .collect();
        assert_eq!((six[0].protocol, six[0].value), ("TCP6", 3));
        assert_eq!(six.len(), 3);
    }

    #[test]
    fn rejects_malformed() {
        assert!(parse("").is_err());
        assert!(parse("sockets: used 1\n").is_err(), "no TCP line");
        let e = parse("sockets: used 1\nTCP inuse 2\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(parse("sockets: used x\nTCP: inuse 1 orphan 0 tw 0 alloc 1 mem 1\n").is_err());
        assert!(parse("sockets: used\n").is_err());
        assert!(parse("sockets: used -1\n").is_err());
        let e = parse("sockets: used 1\nTCP: inuse 1 orphan 0 tw 0 alloc 1\nUDP: inuse 1\n")
            .unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::Missing("TCP mem"));
        // A bad pair ends its line with one error item; the next line still parses.
        let f: Vec<_> = fields("A: x 1 y\nB: z 2\n").collect();
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].as_ref().unwrap().key, "x");
        assert!(f[1].as_ref().is_err_and(|e| e.line == 1));
        assert_eq!(f[2].as_ref().unwrap().key, "z");
        assert!(fields(" : x 1\n").next().unwrap().is_err());
        assert!(fields("A:\n").next().unwrap().is_err());
    }
}
