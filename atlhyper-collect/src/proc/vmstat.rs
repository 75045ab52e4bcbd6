//! `/proc/vmstat`: virtual memory statistics, one `name value` per line (gauges `nr_*` and event
//! counters since boot such as `pgfault`). The kernel adds and renames keys between versions, so
//! every key is optional.

use crate::error::{ParseError, ParseErrorKind, ParseResult};
use crate::num::{Words, parse_u64};

const FILE: &str = "/proc/vmstat";

/// One line: key and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmstatField<'a> {
    /// The key as the kernel spells it (`pgfault`, `nr_free_pages`, ...).
    pub key: &'a str,
    /// The value.
    pub value: u64,
}

/// Every line in file order, without allocating; a malformed line is an error item and the
/// rest still parse.
pub fn fields(text: &str) -> impl Iterator<Item = ParseResult<VmstatField<'_>>> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(idx, line)| field(line, idx + 1))
}

fn field(line: &str, lineno: usize) -> ParseResult<VmstatField<'_>> {
    let err = |k| ParseError::new(FILE, lineno, k);
    let mut w = Words::new(line);
    let key = w.word().ok_or(err(ParseErrorKind::Missing("key")))?;
    let value = w
        .word()
        .and_then(parse_u64)
        .ok_or(err(ParseErrorKind::BadNumber("value")))?;
    if w.word().is_some() {
        return Err(err(ParseErrorKind::Malformed(
            "line with more than two words",
        )));
    }
    Ok(VmstatField { key, value })
}

/// The sum of every reclaim counter (`pgscan_*`, `pgsteal_*`: pages the kernel looked at or took
/// back to free memory, from any process). While it stands still, no page was unmapped from a
/// process by reclaim, so a process that did not run kept its resident size. `None` when the
/// kernel has no such counter (no `CONFIG_VM_EVENT_COUNTERS`) or a line is malformed.
pub fn reclaim_events(text: &str) -> Option<u64> {
    let mut sum = None::<u64>;
    for f in fields(text) {
        let f = f.ok()?;
        if f.key.starts_with("pgscan") || f.key.starts_with("pgsteal") {
            sum = Some(sum.unwrap_or(0).wrapping_add(f.value));
        }
    }
    sum
}

/// The paging and swapping event counters the collector turns into rates, since boot. Each is
/// absent on kernels built without `CONFIG_VM_EVENT_COUNTERS`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Vmstat {
    /// Page faults, minor and major.
    pub pgfault: Option<u64>,
    /// Major page faults (the page had to be read from disk).
    pub pgmajfault: Option<u64>,
    /// KiB paged in from block devices.
    pub pgpgin: Option<u64>,
    /// KiB paged out to block devices.
    pub pgpgout: Option<u64>,
    /// Pages swapped in.
    pub pswpin: Option<u64>,
    /// Pages swapped out.
    pub pswpout: Option<u64>,
    /// Processes killed by the OOM killer. Since Linux 4.13.
    pub oom_kill: Option<u64>,
}

/// Parses the counters of [`Vmstat`] out of `/proc/vmstat`. Lines with other keys are only
/// checked for shape; a malformed line is an error.
pub fn parse(text: &str) -> ParseResult<Vmstat> {
    let mut v = Vmstat::default();
    for f in fields(text) {
        let f = f?;
        let slot = match f.key {
            "pgfault" => &mut v.pgfault,
            "pgmajfault" => &mut v.pgmajfault,
            "pgpgin" => &mut v.pgpgin,
            "pgpgout" => &mut v.pgpgout,
            "pswpin" => &mut v.pswpin,
            "pswpout" => &mut v.pswpout,
            "oom_kill" => &mut v.oom_kill,
            _ => continue,
        };
        *slot = Some(f.value);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reclaim_events_sum_every_scan_and_steal_counter() {
        let t = "nr_free_pages 5\npgsteal_kswapd 10\npgsteal_direct 1\npgscan_kswapd 20\n\
                 pgscan_direct 2\npgfault 900\n";
        assert_eq!(reclaim_events(t), Some(33));
        assert_eq!(reclaim_events("pgfault 900\n"), None, "no reclaim counter");
        assert_eq!(reclaim_events("pgscan_kswapd x\n"), None, "malformed");
        assert_eq!(
            reclaim_events("pgscan_a 18446744073709551615\npgsteal_b 2\n"),
            Some(1),
            "wraps rather than panics"
        );
    }

    #[test]
    fn parses_the_counters() {
        let v = parse(
            "nr_free_pages 53571\npgpgin 49498429\npgpgout 361697032\npswpin 0\npswpout 5\n\
             pgfault 669444136\npgmajfault 160875\n",
        )
        .unwrap();
        assert_eq!(v.pgfault, Some(669_444_136));
        assert_eq!(v.pgmajfault, Some(160_875));
        assert_eq!((v.pgpgin, v.pgpgout), (Some(49_498_429), Some(361_697_032)));
        assert_eq!((v.pswpin, v.pswpout), (Some(0), Some(5)));
        assert_eq!(v.oom_kill, None, "before 4.13");
    }

    #[test]
    fn fields_keep_every_key() {
        let f: Vec<_> = fields("nr_free_pages 1\n\noom_kill 2\n").collect();
        assert_eq!(
            f,
            [
                Ok(VmstatField {
                    key: "nr_free_pages",
                    value: 1
                }),
                Ok(VmstatField {
                    key: "oom_kill",
                    value: 2
                })
            ]
        );
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(parse("").unwrap(), Vmstat::default());
        let e = parse("pgfault 1\npgmajfault x\n").unwrap_err();
        assert_eq!((e.line, e.kind), (2, ParseErrorKind::BadNumber("value")));
        assert!(parse("pgfault\n").is_err());
        assert!(parse("pgfault -1\n").is_err());
        assert!(parse("pgfault 1 2\n").is_err());
        assert!(parse("nr_x 99999999999999999999999\n").is_err());
    }
}
