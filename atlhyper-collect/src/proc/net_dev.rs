//! `/proc/net/dev`: per interface traffic counters. The interface name ends at the first `:`
//! (the kernel forbids `:` in names), and a large counter can abut it: `enp0s31f6:1234567890 ...`.

use crate::error::{ParseError, ParseErrorKind, ParseResult};
use crate::num::Words;

const FILE: &str = "/proc/net/dev";

/// Counters of one interface, borrowing its name from the input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct NetDev<'a> {
    /// Interface name.
    pub name: &'a str,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Received packets dropped.
    pub rx_dropped: u64,
    /// Receive FIFO overruns.
    pub rx_fifo: u64,
    /// Frame errors.
    pub rx_frame: u64,
    /// Compressed packets received.
    pub rx_compressed: u64,
    /// Multicast packets received.
    pub rx_multicast: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Send errors.
    pub tx_errors: u64,
    /// Sent packets dropped.
    pub tx_dropped: u64,
    /// Send FIFO overruns.
    pub tx_fifo: u64,
    /// Collisions.
    pub tx_collisions: u64,
    /// Carrier losses.
    pub tx_carrier: u64,
    /// Compressed packets sent.
    pub tx_compressed: u64,
}

/// Iterates over the interfaces of `/proc/net/dev`, skipping the two header lines.
pub fn parse(text: &str) -> NetDevs<'_> {
    NetDevs {
        lines: text.lines().enumerate(),
    }
}

/// Iterator returned by [`parse`].
#[derive(Debug, Clone)]
pub struct NetDevs<'a> {
    lines: std::iter::Enumerate<std::str::Lines<'a>>,
}

impl<'a> Iterator for NetDevs<'a> {
    type Item = ParseResult<NetDev<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (idx, line) = self.lines.next()?;
            // The two header lines contain '|'; interface names cannot.
            if (idx < 2 && line.contains('|')) || line.trim().is_empty() {
                continue;
            }
            return Some(parse_line(line, idx + 1));
        }
    }
}

/// Parses one interface line (`line` is its 1-based number, for errors).
pub fn parse_line(line: &str, lineno: usize) -> ParseResult<NetDev<'_>> {
    let err = |k| ParseError::new(FILE, lineno, k);
    let (name, rest) = line
        .split_once(':')
        .ok_or(err(ParseErrorKind::Malformed("line without ':'")))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(err(ParseErrorKind::Missing("interface name")));
    }
    let mut v = [0u64; 16];
    let mut n = 0;
    let mut words = Words::new(rest);
    while let Some(f) = words.u64() {
        if n == v.len() {
            return Err(err(ParseErrorKind::Malformed("more than 16 counters")));
        }
        v[n] = f.ok_or(err(ParseErrorKind::BadNumber("counter")))?;
        n += 1;
    }
    if n < 16 {
        return Err(err(ParseErrorKind::Missing("counters (need 16)")));
    }
    Ok(NetDev {
        name,
        rx_bytes: v[0],
        rx_packets: v[1],
        rx_errors: v[2],
        rx_dropped: v[3],
        rx_fifo: v[4],
        rx_frame: v[5],
        rx_compressed: v[6],
        rx_multicast: v[7],
        tx_bytes: v[8],
        tx_packets: v[9],
        tx_errors: v[10],
        tx_dropped: v[11],
        tx_fifo: v[12],
        tx_collisions: v[13],
        tx_carrier: v[14],
        tx_compressed: v[15],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "Inter-|   Receive                                                |  Transmit\n \
face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n\
    lo:    3193      29    0    0    0     0          0         0     3193      29    0    0    0     0       0          0\n\
enp0s31f6:1234567890 5 1 2 0 0 0 3 99 4 5 6 0 0 0 0\n";

    #[test]
    fn parses_including_abutting_name() {
        let d: Vec<_> = parse(TEXT).collect::<Result<_, _>>().unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(
            (d[0].name, d[0].rx_bytes, d[0].tx_packets),
            ("lo", 3193, 29)
        );
        assert_eq!(d[1].name, "enp0s31f6");
        assert_eq!(d[1].rx_bytes, 1_234_567_890);
        assert_eq!(
            (d[1].rx_errors, d[1].rx_dropped, d[1].rx_multicast),
            (1, 2, 3)
        );
        assert_eq!((d[1].tx_bytes, d[1].tx_errors, d[1].tx_dropped), (99, 5, 6));
    }

    #[test]
    fn rejects_malformed() {
        let errs: Vec<_> = parse("eth0 1 2 3\n: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\neth0: 1 2\neth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 x\neth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\n")
            .filter_map(Result::err)
            .collect();
        assert_eq!(errs.len(), 5);
        assert_eq!(errs[0].line, 1);
        assert_eq!(errs[3].kind, ParseErrorKind::BadNumber("counter"));
    }
}
