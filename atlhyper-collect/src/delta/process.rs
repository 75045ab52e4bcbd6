//! Process CPU percent as `top` shows it (100 = one full core).

use std::time::Duration;

/// The CPU time of one process at one moment, in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessTimes {
    /// Start time after boot (identifies the process across pid reuse), clock ticks.
    pub starttime: u64,
    /// User time, clock ticks.
    pub utime: u64,
    /// System time, clock ticks.
    pub stime: u64,
}

/// CPU percent over the interval, 100 meaning one core. `None` when the pid now belongs to another
/// process (start time changed), a counter went down, no time passed, or `ticks_per_sec` is 0.
pub fn process_cpu(
    prev: &ProcessTimes,
    cur: &ProcessTimes,
    elapsed: Duration,
    ticks_per_sec: u64,
) -> Option<f64> {
    let secs = elapsed.as_secs_f64();
    if prev.starttime != cur.starttime || secs <= 0.0 || !secs.is_finite() || ticks_per_sec == 0 {
        return None;
    }
    let du = cur.utime.checked_sub(prev.utime)?;
    let ds = cur.stime.checked_sub(prev.stime)?;
    let ticks = du.checked_add(ds)?;
    Some(ticks as f64 / ticks_per_sec as f64 / secs * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_busy_core_is_100() {
        let a = ProcessTimes {
            starttime: 5,
            utime: 100,
            stime: 0,
        };
        let b = ProcessTimes {
            starttime: 5,
            utime: 290,
            stime: 10,
        };
        assert_eq!(
            process_cpu(&a, &b, Duration::from_secs(2), 100),
            Some(100.0)
        );
    }

    #[test]
    fn reuse_reset_and_zero() {
        let a = ProcessTimes {
            starttime: 5,
            utime: 100,
            stime: 0,
        };
        assert_eq!(
            process_cpu(
                &a,
                &ProcessTimes { starttime: 6, ..a },
                Duration::from_secs(1),
                100
            ),
            None
        );
        assert_eq!(
            process_cpu(
                &a,
                &ProcessTimes { utime: 1, ..a },
                Duration::from_secs(1),
                100
            ),
            None
        );
        assert_eq!(process_cpu(&a, &a, Duration::ZERO, 100), None);
        assert_eq!(process_cpu(&a, &a, Duration::from_secs(1), 0), None);
    }
}
