//! `/proc/net/softnet_stat`: one line per online CPU of 32-bit hexadecimal counters of the
//! network receive softirq. Kernels differ in the column count: 9 before 2.6.35 (processed,
//! dropped, time_squeeze, five unused, cpu_collision), 10 with `received_rps`, 11 with
//! `flow_limit_count` (3.11), 13 with the backlog length and the CPU number (5.10), 15 with the
//! two queue lengths on their own (6.x). Only the first three are required here.

use crate::error::{ParseError, ParseErrorKind, ParseResult};
use crate::num::Words;

const FILE: &str = "/proc/net/softnet_stat";

/// One CPU's line. The counters are 32-bit and wrap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SoftnetCpu {
    /// The CPU number: the kernel's own (column 13, since Linux 5.10), otherwise the line's
    /// index, which is the same unless CPUs are offline.
    pub cpu: u32,
    /// Packets processed.
    pub processed: u64,
    /// Packets dropped because the backlog queue was full (`netdev_max_backlog`).
    pub dropped: u64,
    /// Times the softirq ran out of budget or time with work left (`netdev_budget`).
    pub time_squeeze: u64,
    /// Times this CPU was woken by another to process packets (RPS). Since Linux 2.6.35.
    pub received_rps: Option<u64>,
    /// Packets dropped by the flow limit. Since Linux 3.11.
    pub flow_limit_count: Option<u64>,
    /// Packets waiting in the backlog now (a gauge). Since Linux 5.10.
    pub backlog_len: Option<u64>,
}

/// Iterates over the CPUs' lines without allocating. Blank lines are skipped.
pub fn parse(text: &str) -> SoftnetCpus<'_> {
    SoftnetCpus {
        lines: text.lines().enumerate(),
        index: 0,
    }
}

/// Iterator returned by [`parse`].
#[derive(Debug, Clone)]
pub struct SoftnetCpus<'a> {
    lines: std::iter::Enumerate<std::str::Lines<'a>>,
    /// Index of the next CPU line (the CPU number on kernels that do not print it).
    index: u32,
}

impl Iterator for SoftnetCpus<'_> {
    type Item = ParseResult<SoftnetCpu>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (idx, line) = self.lines.next()?;
            if line.trim().is_empty() {
                continue;
            }
            let r = parse_line(line, idx + 1, self.index);
            self.index = self.index.saturating_add(1);
            return Some(r);
        }
    }
}

/// One line; `index` is its position among the CPU lines.
fn parse_line(line: &str, lineno: usize, index: u32) -> ParseResult<SoftnetCpu> {
    // Columns 0-12: the ones with a meaning here (later ones are not read).
    let mut cols = [None::<u64>; 13];
    let mut n = 0;
    let mut words = Words::new(line);
    while let Some(word) = words.word() {
        let v = hex_u32(word).ok_or(ParseError::new(
            FILE,
            lineno,
            ParseErrorKind::BadNumber("hexadecimal counter"),
        ))?;
        if let Some(slot) = cols.get_mut(n) {
            *slot = Some(u64::from(v));
        }
        n += 1;
    }
    let [Some(processed), Some(dropped), Some(time_squeeze), ..] = cols else {
        return Err(ParseError::new(
            FILE,
            lineno,
            ParseErrorKind::Missing("processed, dropped and time_squeeze columns"),
        ));
    };
    let cpu = match cols[12] {
        Some(c) => u32::try_from(c).unwrap_or(u32::MAX),
        None => index,
    };
    Ok(SoftnetCpu {
        cpu,
        processed,
        dropped,
        time_squeeze,
        received_rps: cols[9],
        flow_limit_count: cols[10],
        backlog_len: cols[11],
    })
}

/// 1 to 8 hexadecimal digits (the kernel prints `%08x`).
fn hex_u32(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> ParseResult<Vec<SoftnetCpu>> {
        parse(text).collect()
    }

    #[test]
    fn parses_a_current_kernel() {
        let text = "00220c07 00000002 00000010 00000000 00000000 00000000 00000000 00000000 00000000 00000005 00000006 00000007 00000000 00000000 00000000\n\
                    0020afde 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000003 00000000 00000000\n";
        let c = all(text).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(
            c[0],
            SoftnetCpu {
                cpu: 0,
                processed: 0x0022_0c07,
                dropped: 2,
                time_squeeze: 16,
                received_rps: Some(5),
                flow_limit_count: Some(6),
                backlog_len: Some(7),
            }
        );
        // The kernel's CPU number, not the line index (CPUs 1 and 2 offline).
        assert_eq!(c[1].cpu, 3);
    }

    #[test]
    fn old_kernels_have_fewer_columns() {
        let nine = "00000100 00000001 00000002 00000000 00000000 00000000 00000000 00000000 00000000\n\
                    00000200 00000000 00000004 00000000 00000000 00000000 00000000 00000000 00000000\n";
        let c = all(nine).unwrap();
        assert_eq!((c[1].cpu, c[1].processed, c[1].time_squeeze), (1, 0x200, 4));
        assert_eq!(c[0].received_rps, None);
        assert_eq!(c[0].flow_limit_count, None);
        let eleven = "00000100 00000001 00000002 00000000 00000000 00000000 00000000 00000000 00000000 00000009 0000000a\n";
        let c = all(eleven).unwrap();
        assert_eq!(
            (c[0].received_rps, c[0].flow_limit_count),
            (Some(9), Some(10))
        );
        assert_eq!((c[0].backlog_len, c[0].cpu), (None, 0));
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(all("").unwrap(), []);
        assert!(all("00000001 00000002\n").is_err(), "too few columns");
        let e = all("00000001 00000002 00000003\n0000000g 0 0\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(all("100000000 0 0\n").is_err(), "more than 32 bits");
        assert!(all("-1 0 0\n").is_err());
        assert!(all("+1 0 0\n").is_err());
    }
}
