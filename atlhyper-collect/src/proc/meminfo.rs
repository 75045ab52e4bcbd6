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
    /// MemAvailable. Since Linux 3.14; see [`Meminfo::estimate_available`] for the estimate
    /// before that.
    pub mem_available: Option<u64>,
    /// Buffers.
    pub buffers: u64,
    /// Cached (page cache without swap cache).
    pub cached: u64,
    /// SReclaimable. Since Linux 2.6.19.
    pub s_reclaimable: Option<u64>,
    /// Shmem. Since Linux 2.6.32.
    pub shmem: Option<u64>,
    /// Active(file): file-backed pages on the active LRU list. Since Linux 2.6.28.
    pub active_file: Option<u64>,
    /// Inactive(file): file-backed pages on the inactive LRU list. Since Linux 2.6.28.
    pub inactive_file: Option<u64>,
    /// SwapTotal.
    pub swap_total: u64,
    /// SwapFree.
    pub swap_free: u64,
}

impl Meminfo {
    /// MemAvailable as the kernel reports it; `None` before Linux 3.14 (then see
    /// [`Meminfo::estimate_available`]).
    pub fn available(&self) -> Option<u64> {
        self.mem_available
    }

    /// MemAvailable when the kernel reports it, else [`Meminfo::estimate_available`].
    pub fn available_or_estimate(&self, low_watermark_pages: u64, page_size: u64) -> u64 {
        self.mem_available
            .unwrap_or_else(|| self.estimate_available(low_watermark_pages, page_size))
    }

    /// The kernel's own MemAvailable estimate (`si_mem_available` as Linux 3.14 introduced it,
    /// and what procps computes on kernels without MemAvailable), bytes:
    ///
    /// ```text
    /// MemFree - wmark_low
    ///   + pagecache   - min(pagecache / 2, wmark_low)
    ///   + reclaimable - min(reclaimable / 2, wmark_low)
    /// ```
    ///
    /// with `wmark_low` the sum of every zone's low watermark (`low_watermark_pages` from
    /// [`crate::proc::zoneinfo::low_watermark_pages`], times the host's `page_size`), `pagecache`
    /// = Active(file) + Inactive(file) and `reclaimable` = SReclaimable. Floored at 0 and capped
    /// at MemTotal.
    ///
    /// Kernels before 2.6.28 have no Active(file)/Inactive(file): the page cache is then taken
    /// as Buffers + Cached (both on the file LRU lists). Before 2.6.19 there is no SReclaimable
    /// and no reclaimable slab is counted.
    pub fn estimate_available(&self, low_watermark_pages: u64, page_size: u64) -> u64 {
        // i128 holds every sum of u64s below; only the product can overflow it.
        let wmark_low = i128::from(low_watermark_pages).saturating_mul(i128::from(page_size));
        let pagecache = match (self.active_file, self.inactive_file) {
            (Some(a), Some(i)) => i128::from(a) + i128::from(i),
            _ => i128::from(self.buffers) + i128::from(self.cached),
        };
        let reclaimable = i128::from(self.s_reclaimable.unwrap_or(0));
        let available = i128::from(self.mem_free) - wmark_low + pagecache
            - (pagecache / 2).min(wmark_low)
            + reclaimable
            - (reclaimable / 2).min(wmark_low);
        // In range of u64 after the clamp (MemTotal is a u64).
        u64::try_from(available.clamp(0, i128::from(self.mem_total))).unwrap_or(0)
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
            "MemAvailable" | "SReclaimable" | "Shmem" | "Active(file)" | "Inactive(file)" => {
                let v = Some(value(rest, idx + 1)?);
                match key {
                    "MemAvailable" => m.mem_available = v,
                    "SReclaimable" => m.s_reclaimable = v,
                    "Shmem" => m.shmem = v,
                    "Active(file)" => m.active_file = v,
                    _ => m.inactive_file = v,
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
/// One line of `/proc/meminfo`, every key (the kernel adds keys over time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeminfoField<'a> {
    /// The key as the kernel spells it (`MemTotal`, `Active(anon)`, `HugePages_Total`).
    pub key: &'a str,
    /// The value: bytes when the line has the `kB` unit (converted), else the bare count.
    pub value: u64,
    /// Whether the line had the `kB` unit (a size), as opposed to a count.
    pub is_bytes: bool,
}

/// Every line of `/proc/meminfo` in file order; a malformed line is an error item and the rest
/// still parse.
pub fn fields(text: &str) -> impl Iterator<Item = ParseResult<MeminfoField<'_>>> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(idx, line)| {
            let Some((key, rest)) = line.split_once(':') else {
                return Err(ParseError::new(
                    FILE,
                    idx + 1,
                    ParseErrorKind::Malformed("line without ':'"),
                ));
            };
            Ok(MeminfoField {
                key: key.trim(),
                value: value(rest, idx + 1)?,
                is_bytes: rest.trim_end().ends_with("kB"),
            })
        })
}

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

    #[test]
    fn fields_keep_every_key_with_its_unit() {
        let text =
            "MemTotal:       16 kB\nActive(anon):  2 kB\nHugePages_Total:   3\nbad line\nX: 1 MB\n";
        let f: Vec<_> = fields(text).collect();
        assert_eq!(
            f[0],
            Ok(MeminfoField {
                key: "MemTotal",
                value: 16 * 1024,
                is_bytes: true
            })
        );
        assert_eq!(f[1].as_ref().unwrap().key, "Active(anon)");
        assert_eq!(
            f[2],
            Ok(MeminfoField {
                key: "HugePages_Total",
                value: 3,
                is_bytes: false
            })
        );
        assert!(f[3].is_err() && f[4].is_err());
    }

    const MODERN: &str = "MemTotal:       49367316 kB\nMemFree:        40000000 kB\n\
MemAvailable:   45000000 kB\nBuffers:          100000 kB\nCached:          2000000 kB\n\
SwapCached:            0 kB\nShmem:             10000 kB\nSReclaimable:     50000 kB\n\
SwapTotal:       1000000 kB\nSwapFree:         900000 kB\nHugePages_Total:       0\n";

    #[test]
    fn parses_modern() {
        let m = parse(MODERN).unwrap();
        assert_eq!(m.mem_total, 49_367_316 * 1024);
        assert_eq!(m.available(), Some(45_000_000 * 1024));
        assert_eq!(m.available_or_estimate(1, 4096), 45_000_000 * 1024);
        assert_eq!(m.page_cache(), 2_050_000 * 1024);
        assert_eq!(m.swap_free, 900_000 * 1024);
    }

    #[test]
    fn estimates_available_without_memavailable() {
        // Linux 3.2-style: no MemAvailable.
        let text = "MemTotal: 1000000 kB\nMemFree: 100000 kB\nBuffers: 50000 kB\n\
Cached: 300000 kB\nActive(file): 200000 kB\nInactive(file): 140000 kB\nShmem: 10000 kB\n\
SReclaimable: 30000 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n";
        let m = parse(text).unwrap();
        assert_eq!(m.available(), None);
        assert_eq!(
            (m.active_file, m.inactive_file),
            (Some(200_000 * 1024), Some(140_000 * 1024))
        );
        // wmark_low 5000 pages of 4 KiB = 20000 kB:
        // 100000 - 20000 + 340000 - min(170000, 20000) + 30000 - min(15000, 20000) = 415000 kB.
        assert_eq!(m.estimate_available(5000, 4096), 415_000 * 1024);
        assert_eq!(m.available_or_estimate(5000, 4096), 415_000 * 1024);
        // The page size is the host's: 64 KiB pages make the same count 16 times the bytes.
        // wmark_low 320000 kB: 100000 - 320000 + 340000 - 170000 + 30000 - 15000 = -35000 -> 0.
        assert_eq!(m.estimate_available(5000, 65536), 0);
        // No watermarks: free + page cache + reclaimable slab, each halved at most by wmark_low 0.
        assert_eq!(m.estimate_available(0, 4096), 470_000 * 1024);
        // Kernels before 2.6.28: Buffers + Cached as the page cache.
        let old = parse(
            "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 300 kB\n\
SwapTotal: 0 kB\nSwapFree: 0 kB\n",
        )
        .unwrap();
        // 100 - 10 + 350 - 10 + 0 = 430 kB with wmark_low 10 kB (10 pages of 1 KiB).
        assert_eq!(old.estimate_available(10, 1024), 430 * 1024);
        // Capped at MemTotal.
        let big = Meminfo {
            mem_total: 100,
            mem_free: 1000,
            ..Meminfo::default()
        };
        assert_eq!(big.estimate_available(0, 4096), 100);
        let huge = Meminfo {
            mem_total: u64::MAX,
            mem_free: u64::MAX,
            cached: u64::MAX,
            buffers: u64::MAX,
            s_reclaimable: Some(u64::MAX),
            ..Meminfo::default()
        };
        assert_eq!(huge.estimate_available(u64::MAX, u64::MAX), 0);
        assert_eq!(huge.estimate_available(0, 4096), u64::MAX);
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
