//! `/proc/diskstats`: per block device IO counters. 14 fields (Linux 2.6.25+), 18 with discards
//! (4.18+), 20 with flushes (5.5+). Sectors are always 512 bytes in this file, whatever the device's
//! logical block size; the caller passes the sector size to the delta functions anyway.

use crate::error::{ParseError, ParseErrorKind, ParseResult};
use crate::num::{Words, parse_u64};

const FILE: &str = "/proc/diskstats";

/// One line of `/proc/diskstats`, borrowing the device name from the input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DiskStat<'a> {
    /// Major device number.
    pub major: u32,
    /// Minor device number.
    pub minor: u32,
    /// Device name (sda, sda1, nvme0n1, dm-0).
    pub name: &'a str,
    /// Reads completed.
    pub reads: u64,
    /// Reads merged.
    pub reads_merged: u64,
    /// Sectors read.
    pub sectors_read: u64,
    /// Milliseconds spent reading.
    pub read_ms: u64,
    /// Writes completed.
    pub writes: u64,
    /// Writes merged.
    pub writes_merged: u64,
    /// Sectors written.
    pub sectors_written: u64,
    /// Milliseconds spent writing.
    pub write_ms: u64,
    /// I/Os currently in progress (a gauge, not a counter).
    pub in_progress: u64,
    /// Milliseconds the device had I/O in flight (basis of `%util`).
    pub io_ms: u64,
    /// Weighted milliseconds doing I/O.
    pub weighted_io_ms: u64,
    /// Discards completed. Since Linux 4.18.
    pub discards: Option<u64>,
    /// Discards merged. Since Linux 4.18.
    pub discards_merged: Option<u64>,
    /// Sectors discarded. Since Linux 4.18.
    pub sectors_discarded: Option<u64>,
    /// Milliseconds spent discarding. Since Linux 4.18.
    pub discard_ms: Option<u64>,
    /// Flush requests completed. Since Linux 5.5.
    pub flushes: Option<u64>,
    /// Milliseconds spent flushing. Since Linux 5.5.
    pub flush_ms: Option<u64>,
}

/// Iterates over the lines of `/proc/diskstats` without allocating. Blank lines are skipped.
pub fn parse(text: &str) -> DiskStats<'_> {
    DiskStats {
        lines: text.lines().enumerate(),
    }
}

/// Iterator returned by [`parse`].
#[derive(Debug, Clone)]
pub struct DiskStats<'a> {
    lines: std::iter::Enumerate<std::str::Lines<'a>>,
}

impl<'a> Iterator for DiskStats<'a> {
    type Item = ParseResult<DiskStat<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (idx, line) = self.lines.next()?;
            if line.trim().is_empty() {
                continue;
            }
            return Some(parse_line(line, idx + 1));
        }
    }
}

/// Parses one line of `/proc/diskstats` (`line` is its 1-based number, for errors).
pub fn parse_line(line: &str, lineno: usize) -> ParseResult<DiskStat<'_>> {
    let err = |k| ParseError::new(FILE, lineno, k);
    let mut it = Words::new(line);
    let major = it
        .word()
        .and_then(parse_u64)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or(err(ParseErrorKind::BadNumber("major")))?;
    let minor = it
        .word()
        .and_then(parse_u64)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or(err(ParseErrorKind::BadNumber("minor")))?;
    let name = it
        .word()
        .ok_or(err(ParseErrorKind::Missing("device name")))?;
    let mut v = [0u64; 17];
    let mut n = 0;
    while let Some(f) = it.u64() {
        if n == v.len() {
            break;
        }
        v[n] = f.ok_or(err(ParseErrorKind::BadNumber("counter")))?;
        n += 1;
    }
    if n < 11 {
        return Err(err(ParseErrorKind::Missing("counters (need 14 fields)")));
    }
    let opt = |i: usize| (i < n).then_some(v[i]);
    Ok(DiskStat {
        major,
        minor,
        name,
        reads: v[0],
        reads_merged: v[1],
        sectors_read: v[2],
        read_ms: v[3],
        writes: v[4],
        writes_merged: v[5],
        sectors_written: v[6],
        write_ms: v[7],
        in_progress: v[8],
        io_ms: v[9],
        weighted_io_ms: v[10],
        discards: opt(11),
        discards_merged: opt(12),
        sectors_discarded: opt(13),
        discard_ms: opt(14),
        flushes: opt(15),
        flush_ms: opt(16),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_14_18_20_fields() {
        let text = " 254 0 vda 13272 3866 2313442 8832 4935 29082 6321080 36023 0 4856 45686 5549 33 1212032 821 69 8\n\
   8 0 sda 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15\n\
   8 1 sda1 1 2 3 4 5 6 7 8 9 10 11\n\n";
        let d: Vec<_> = parse(text).collect::<Result<_, _>>().unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!((d[0].major, d[0].minor, d[0].name), (254, 0, "vda"));
        assert_eq!(d[0].sectors_written, 6321080);
        assert_eq!(d[0].io_ms, 4856);
        assert_eq!(d[0].flush_ms, Some(8));
        assert_eq!(d[1].discard_ms, Some(15));
        assert_eq!(d[1].flushes, None);
        assert_eq!(d[2].discards, None);
        assert_eq!(d[2].weighted_io_ms, 11);
    }

    #[test]
    fn rejects_malformed() {
        let errs: Vec<_> = parse(
            "8 0 sda 1 2 3\nx 0 sda 1 2 3 4 5 6 7 8 9 10 11\n8 0 sda 1 2 3 4 5 6 7 8 9 10 z\n8 0\n",
        )
        .filter_map(Result::err)
        .collect();
        assert_eq!(errs.len(), 4);
        assert_eq!(errs[1].line, 2);
        assert_eq!(errs[2].kind, ParseErrorKind::BadNumber("counter"));
        assert!(parse_line("99999999999 0 sda 1 2 3 4 5 6 7 8 9 10 11", 1).is_err());
    }
}
