//! Receive softirq rates from two `/proc/net/softnet_stat` readings, summed over the CPUs.

use std::time::Duration;

use super::counter_rate;
use crate::proc::net_softnet_stat::SoftnetCpu;

/// Per-second rates summed over the CPUs present in both readings (matched by CPU number; a CPU
/// that came online or went offline in between is left out). Each is `None` when no time
/// passed, no CPU is in both readings, or one CPU's counter went down (a 32-bit wrap): a sum
/// without that CPU would understate the rate.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SoftnetRates {
    /// Packets processed per second.
    pub processed: Option<f64>,
    /// Packets dropped per second (backlog full).
    pub dropped: Option<f64>,
    /// Times per second the softirq ran out of budget with work left.
    pub time_squeeze: Option<f64>,
}

/// Rates from `prev` to `cur` over `elapsed`.
pub fn softnet(prev: &[SoftnetCpu], cur: &[SoftnetCpu], elapsed: Duration) -> SoftnetRates {
    let sum = |read: fn(&SoftnetCpu) -> u64| -> Option<f64> {
        let mut total = 0.0;
        let mut matched = false;
        for c in cur {
            // Lines are in CPU order, so this is a short scan from the same position.
            let Some(p) = prev.iter().find(|p| p.cpu == c.cpu) else {
                continue;
            };
            total += counter_rate(read(p), read(c), elapsed)?;
            matched = true;
        }
        matched.then_some(total)
    };
    SoftnetRates {
        processed: sum(|c| c.processed),
        dropped: sum(|c| c.dropped),
        time_squeeze: sum(|c| c.time_squeeze),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(cpu: u32, processed: u64, dropped: u64, time_squeeze: u64) -> SoftnetCpu {
        SoftnetCpu {
            cpu,
            processed,
            dropped,
            time_squeeze,
            ..SoftnetCpu::default()
        }
    }

    #[test]
    fn sums_matched_cpus() {
        let prev = [cpu(0, 100, 1, 0), cpu(1, 200, 0, 5), cpu(2, 7, 7, 7)];
        let cur = [cpu(0, 300, 3, 0), cpu(1, 400, 0, 9), cpu(3, 9, 9, 9)];
        let r = softnet(&prev, &cur, Duration::from_secs(2));
        assert_eq!(r.processed, Some(200.0));
        assert_eq!(r.dropped, Some(1.0));
        assert_eq!(r.time_squeeze, Some(2.0));
    }

    #[test]
    fn no_rate_on_a_wrap_no_time_or_no_common_cpu() {
        let prev = [cpu(0, u64::from(u32::MAX) - 5, 1, 0), cpu(1, 10, 0, 0)];
        let cur = [cpu(0, 10, 2, 0), cpu(1, 20, 0, 0)];
        let r = softnet(&prev, &cur, Duration::from_secs(1));
        assert_eq!(r.processed, None, "cpu0 wrapped");
        assert_eq!(r.dropped, Some(1.0));
        assert_eq!(
            softnet(&prev, &cur, Duration::ZERO),
            SoftnetRates::default()
        );
        assert_eq!(
            softnet(&[], &cur, Duration::from_secs(1)),
            SoftnetRates::default()
        );
    }
}
