//! `/proc/meminfo`: memory and swap, converted from kB to bytes. No map, no allocation: the keys the
//! collector needs are matched into fixed fields.

use crate::error::{ParseError, ParseErrorKind, ParseResult};
use crate::num::parse_u64;

const FILE: &str = "/proc/meminfo";

/// The `/proc/meminfo` fields the collector uses, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Meminfo {
    /// MemTotal.
    pub mem_total: u64,
    /// MemFree.
    pub mem_free: u64,
    /// MemAvailable. Since Linux 3.14; see [`Meminfo::available`] for the estimate before that.
    pub mem_available: Option<u64>,
    /// Buffers.
    pub buffers: u64,
    /// Cached (page cache without swap cache).
    pub cached: u64,
    /// SReclaimable. Since Linux 2.6.19.
    pub s_reclaimable: Option<u64>,
    /// Shmem. Since Linux 2.6.32.
    pub shmem: Option<u64>,
    /// SwapTotal.
    pub swap_total: u64,
    /// SwapFree.
    pub swap_free: u64,
}

impl Meminfo {
    /// MemAvailable, or on kernels without it the estimate `free + buffers + cached + SReclaimable
    /// - Shmem` (reclaimable memory, shared memory being unreclaimable), capped at MemTotal.
    pub fn available(&self) -> u64 {
        match self.mem_available {
            Some(v) => v,
            None => self
                .mem_free
                .saturating_add(self.buffers)
                .saturating_add(self.cached)
                .saturating_add(self.s_reclaimable.unwrap_or_default())
                .saturating_sub(self.shmem.unwrap_or_default())
                .min(self.mem_total),
        }
    }

    /// Page cache as `free` shows it: Cached + SReclaimable.
    pub fn page_cache(&self) -> u64 {
        self.cached
            .saturating_add(self.s_reclaimable.unwrap_or_default())
    }
}

/// Parses `/proc/meminfo`. MemTotal, MemFree, Buffers, Cached, SwapTotal and SwapFree are required.
pub fn parse(text: &str) -> ParseResult<Meminfo> {
    let mut m = Meminfo::default();
    // Bit per required key seen.
    let mut seen = 0u8;
    for (idx, line) in text.lines().enumerate() {
        let Some((key, rest)) = line.split_once(':') else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(ParseError::new(
                FILE,
                idx + 1,
                ParseErrorKind::Malformed("line without ':'"),
            ));
        };
        let (slot, bit): (&mut u64, u8) = match key {
            "MemTotal" => (&mut m.mem_total, 1),
            "MemFree" => (&mut m.mem_free, 2),
            "Buffers" => (&mut m.buffers, 4),
            "Cached" => (&mut m.cached, 8),
            "SwapTotal" => (&mut m.swap_total, 16),
            "SwapFree" => (&mut m.swap_free, 32),
            "MemAvailable" | "SReclaimable" | "Shmem" => {
                let v = value(rest, idx + 1)?;
                match key {
                    "MemAvailable" => m.mem_available = Some(v),
                    "SReclaimable" => m.s_reclaimable = Some(v),
                    _ => m.shmem = Some(v),
                }
                continue;
            }
            _ => continue,
        };
        *slot = value(rest, idx + 1)?;
        seen |= bit;
    }
    if seen != 63 {
        let missing = [
            "MemTotal",
            "MemFree",
            "Buffers",
            "Cached",
            "SwapTotal",
            "SwapFree",
        ]
        .into_iter()
        .enumerate()
        .find(|(i, _)| seen & (1 << i) == 0)
        .map_or("field", |(_, k)| k);
        return Err(ParseError::new(FILE, 1, ParseErrorKind::Missing(missing)));
    }
    Ok(m)
}

/// `"   123 kB"` -> bytes; a value without unit is taken as is (HugePages_* lines have none).
fn value(rest: &str, line: usize) -> ParseResult<u64> {
    let mut it = rest.split_ascii_whitespace();
    let n = it.next().and_then(parse_u64).ok_or(ParseError::new(
        FILE,
        line,
        ParseErrorKind::BadNumber("value"),
    ))?;
    match it.next() {
        None => Ok(n),
        Some("kB") => n.checked_mul(1024).ok_or(ParseError::new(
            FILE,
            line,
            ParseErrorKind::BadNumber("value"),
        )),
        Some(_) => Err(ParseError::new(
            FILE,
            line,
            ParseErrorKind::Malformed("unit"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODERN: &str = "MemTotal:       49367316 kB\nMemFree:        40000000 kB\n\
MemAvailable:   45000000 kB\nBuffers:          100000 kB\nCached:          2000000 kB\n\
SwapCached:            0 kB\nShmem:             10000 kB\nSReclaimable:     50000 kB\n\
SwapTotal:       1000000 kB\nSwapFree:         900000 kB\nHugePages_Total:       0\n";

    #[test]
    fn parses_modern() {
        let m = parse(MODERN).unwrap();
        assert_eq!(m.mem_total, 49_367_316 * 1024);
        assert_eq!(m.available(), 45_000_000 * 1024);
        assert_eq!(m.page_cache(), 2_050_000 * 1024);
        assert_eq!(m.swap_free, 900_000 * 1024);
    }

    #[test]
    fn estimates_available_without_memavailable() {
        let text = "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 300 kB\n\
SwapTotal: 0 kB\nSwapFree: 0 kB\n";
        let m = parse(text).unwrap();
        assert_eq!(m.mem_available, None);
        assert_eq!(m.available(), 450 * 1024);
    }

    #[test]
    fn rejects_malformed() {
        let e = parse("MemTotal: x kB\n").unwrap_err();
        assert_eq!(
            (e.line, e.kind.clone()),
            (1, ParseErrorKind::BadNumber("value"))
        );
        let e = parse("MemTotal: 1 kB\n").unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::Missing("MemFree"));
        assert!(parse("garbage\n").is_err());
        assert!(parse("MemTotal: 1 MB\n").is_err());
        assert!(parse("MemTotal: 18446744073709551615 kB\n").is_err());
        assert!(parse("").is_err());
    }
}
