//! `/proc/zoneinfo`: the sum of every zone's `low` watermark, in pages. The kernel's own
//! MemAvailable (since Linux 3.14) keeps that much free memory out of its estimate; on older
//! kernels [`crate::proc::meminfo::Meminfo::estimate_available`] does the same with this sum.
//!
//! One block per zone, opened by `Node N, zone NAME`; the watermarks are lines of two words
//! (`        low      6`). The per-cpu `pagesets` lines (`high:  0`) carry a colon and never
//! count. No allocation: the text is walked line by line.

use crate::error::{ParseError, ParseErrorKind, ParseResult};
use crate::num::parse_u64;

const FILE: &str = "/proc/zoneinfo";

/// The sum over all zones (populated or not, as the kernel's `for_each_zone`) of the `low`
/// watermark, in pages (multiply by the host's page size for bytes).
///
/// Errors when there is no zone, when a zone has no `low` line or two of them, when a `low` line
/// comes before the first zone, or when its value is not a number.
pub fn low_watermark_pages(text: &str) -> ParseResult<u64> {
    let mut sum = 0u64;
    let mut zones = 0usize;
    // Whether the current zone has had its `low` line.
    let mut zone_has_low = true;
    for (idx, line) in text.lines().enumerate() {
        let line_no = idx + 1;
        if line.starts_with("Node ") {
            if !zone_has_low {
                return Err(ParseError::new(
                    FILE,
                    line_no,
                    ParseErrorKind::Missing("low"),
                ));
            }
            if !line.contains(", zone ") {
                return Err(ParseError::new(
                    FILE,
                    line_no,
                    ParseErrorKind::Malformed("zone header"),
                ));
            }
            zones += 1;
            zone_has_low = false;
            continue;
        }
        let mut words = line.split_ascii_whitespace();
        if words.next() != Some("low") {
            continue;
        }
        let bad = ParseError::new(FILE, line_no, ParseErrorKind::BadNumber("low"));
        let value = words.next().and_then(parse_u64).ok_or(bad.clone())?;
        if words.next().is_some() {
            return Err(bad);
        }
        if zones == 0 || zone_has_low {
            return Err(ParseError::new(
                FILE,
                line_no,
                ParseErrorKind::Malformed("low watermark outside a zone"),
            ));
        }
        zone_has_low = true;
        sum = sum.checked_add(value).ok_or(bad)?;
    }
    if zones == 0 {
        return Err(ParseError::new(FILE, 1, ParseErrorKind::Missing("zone")));
    }
    if !zone_has_low {
        return Err(ParseError::new(
            FILE,
            text.lines().count(),
            ParseErrorKind::Missing("low"),
        ));
    }
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Linux 3.2 layout (no per-node stats, no `managed`), two zones.
    const OLD: &str = "Node 0, zone      DMA\n  pages free     3975\n        min      5\n\
        low      6\n        high     7\n        scanned  0\n        spanned  4095\n\
        present  3994\n    nr_free_pages 3975\n        protection: (0, 3236, 3933, 3933)\n\
  pagesets\n    cpu: 0\n              count: 0\n              high:  0\n\
              batch: 1\n  vm stats threshold: 8\n  all_unreclaimable: 1\n\
Node 0, zone   Normal\n  pages free     1000\n        min      100\n        low      125\n\
        high     150\n  pagesets\n    cpu: 0\n              high:  186\n";

    /// Linux 6.x layout: per-node stats, `boost`, an unpopulated zone.
    const NEW: &str = "Node 0, zone      DMA\n  per-node stats\n      nr_inactive_anon 23839\n\
  pages free     3840\n        boost    0\n        min      18\n        low      22\n\
        high     26\n        promo    30\n        spanned  4095\n        protection: (0, 1, 2)\n\
Node 0, zone  Movable\n  pages free     0\n        boost    0\n        min      0\n\
        low      0\n        high     0\n        protection: (0, 0, 0)\n";

    #[test]
    fn sums_low_watermarks_of_every_zone() {
        assert_eq!(low_watermark_pages(OLD).unwrap(), 131);
        assert_eq!(low_watermark_pages(NEW).unwrap(), 22);
    }

    #[test]
    fn rejects_malformed() {
        let kind = |t: &str| low_watermark_pages(t).unwrap_err().kind;
        assert_eq!(kind(""), ParseErrorKind::Missing("zone"));
        assert_eq!(kind("garbage\n"), ParseErrorKind::Missing("zone"));
        assert_eq!(
            kind("Node 0, zone DMA\n  low x\n"),
            ParseErrorKind::BadNumber("low")
        );
        assert_eq!(
            kind("Node 0, zone DMA\n  low -3\n"),
            ParseErrorKind::BadNumber("low")
        );
        assert_eq!(
            kind("Node 0, zone DMA\n  low 1 2\n"),
            ParseErrorKind::BadNumber("low")
        );
        assert_eq!(
            kind("Node 0, zone DMA\n  min 1\n"),
            ParseErrorKind::Missing("low")
        );
        let e = low_watermark_pages("Node 0, zone DMA\n  min 1\nNode 0, zone Normal\n low 2\n")
            .unwrap_err();
        assert_eq!((e.line, e.kind), (3, ParseErrorKind::Missing("low")));
        assert_eq!(
            kind("  low 5\nNode 0, zone DMA\n  low 1\n"),
            ParseErrorKind::Malformed("low watermark outside a zone")
        );
        assert_eq!(
            kind("Node 0, zone DMA\n  low 1\n  low 1\n"),
            ParseErrorKind::Malformed("low watermark outside a zone")
        );
        assert_eq!(
            kind("Node 0 DMA\n  low 1\n"),
            ParseErrorKind::Malformed("zone header")
        );
        assert_eq!(
            kind("Node 0, zone A\n low 18446744073709551615\nNode 0, zone B\n low 1\n"),
            ParseErrorKind::BadNumber("low")
        );
    }
}
