//! Paging and swapping rates from two `/proc/vmstat` readings.

use std::time::Duration;

use super::counter_rate;
use crate::proc::vmstat::Vmstat;

/// Per-second rates of the paging counters. Each is `None` on its own when its counter is
/// missing from either reading, went down, or no time passed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct VmstatRates {
    /// Page faults (minor and major) per second.
    pub pgfault: Option<f64>,
    /// Major page faults per second.
    pub pgmajfault: Option<f64>,
    /// KiB paged in from block devices per second.
    pub pgpgin: Option<f64>,
    /// KiB paged out to block devices per second.
    pub pgpgout: Option<f64>,
    /// Pages swapped in per second.
    pub pswpin: Option<f64>,
    /// Pages swapped out per second.
    pub pswpout: Option<f64>,
}

/// Rates from `prev` to `cur` over `elapsed`.
pub fn vmstat(prev: &Vmstat, cur: &Vmstat, elapsed: Duration) -> VmstatRates {
    let rate = |p: Option<u64>, c: Option<u64>| counter_rate(p?, c?, elapsed);
    VmstatRates {
        pgfault: rate(prev.pgfault, cur.pgfault),
        pgmajfault: rate(prev.pgmajfault, cur.pgmajfault),
        pgpgin: rate(prev.pgpgin, cur.pgpgin),
        pgpgout: rate(prev.pgpgout, cur.pgpgout),
        pswpin: rate(prev.pswpin, cur.pswpin),
        pswpout: rate(prev.pswpout, cur.pswpout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_per_counter() {
        let prev = Vmstat {
            pgfault: Some(1000),
            pgmajfault: Some(10),
            pgpgin: Some(500),
            pgpgout: Some(900),
            pswpin: Some(4),
            pswpout: None,
            oom_kill: None,
        };
        let cur = Vmstat {
            pgfault: Some(3000),
            pgmajfault: Some(5),
            pgpgin: Some(500),
            pgpgout: Some(1300),
            pswpin: Some(8),
            pswpout: Some(2),
            oom_kill: None,
        };
        let r = vmstat(&prev, &cur, Duration::from_secs(2));
        assert_eq!(r.pgfault, Some(1000.0));
        assert_eq!(r.pgmajfault, None, "went down");
        assert_eq!(r.pgpgin, Some(0.0));
        assert_eq!(r.pgpgout, Some(200.0));
        assert_eq!(r.pswpin, Some(2.0));
        assert_eq!(r.pswpout, None, "missing before");
        assert_eq!(vmstat(&prev, &cur, Duration::ZERO), VmstatRates::default());
    }
}
