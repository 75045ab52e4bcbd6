//! Rates from two raw samples: pure functions `(prev, cur, elapsed)`. They never read files.
//!
//! Every function returns `None` instead of a rate when there is none to give: the elapsed time is
//! zero, or a counter went down (reboot, driver reset, 32-bit wrap), so a rate is never negative
//! or astronomical. A btime change is handled by the collector, which then drops its previous
//! sample altogether.

pub mod cpu;
pub mod disk;
pub mod net;
pub mod process;
pub mod softnet;
pub mod vmstat;

use std::time::Duration;

pub use cpu::{CpuUsage, cpu};
pub use disk::{DiskCounters, DiskRates, disk};
pub use net::{NetCounters, NetRates, net};
pub use process::{ProcessTimes, process_cpu};
pub use softnet::{SoftnetRates, softnet};
pub use vmstat::{VmstatRates, vmstat};

/// `(cur - prev) / elapsed` per second; `None` when the counter went down or no time passed.
pub fn counter_rate(prev: u64, cur: u64, elapsed: Duration) -> Option<f64> {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 || !secs.is_finite() {
        return None;
    }
    let d = cur.checked_sub(prev)?;
    Some(d as f64 / secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_rate_is_reset_safe() {
        let s = Duration::from_secs(2);
        assert_eq!(counter_rate(100, 300, s), Some(100.0));
        assert_eq!(counter_rate(300, 100, s), None, "went down");
        assert_eq!(
            counter_rate(u64::from(u32::MAX) - 10, 5, s),
            None,
            "32-bit wrap"
        );
        assert_eq!(counter_rate(1, 2, Duration::ZERO), None);
        assert_eq!(counter_rate(7, 7, s), Some(0.0));
    }
}
