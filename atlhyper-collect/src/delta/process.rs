//! Process CPU percent as `top` shows it (100 = one full core).

use std::time::Duration;

/// The CPU time of one process at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessTimes {
    /// Start time after boot (identifies the process across pid reuse), clock ticks.
    pub starttime: u64,
    /// CPU time used by all its threads (user + system), in units the caller names:
    /// clock ticks from `/proc/<pid>/stat`, nanoseconds from the process CPU clock.
    pub cpu: u64,
}

/// CPU percent over the interval, 100 meaning one core; `cpu_units_per_sec` is what
/// [`ProcessTimes::cpu`] counts per second. `None` when the pid now belongs to another process
/// (start time changed), the counter went down, no time passed, or `cpu_units_per_sec` is 0.
pub fn process_cpu(
    prev: &ProcessTimes,
    cur: &ProcessTimes,
    elapsed: Duration,
    cpu_units_per_sec: u64,
) -> Option<f64> {
    let secs = elapsed.as_secs_f64();
    if prev.starttime != cur.starttime || secs <= 0.0 || !secs.is_finite() || cpu_units_per_sec == 0
    {
        return None;
    }
    let used = cur.cpu.checked_sub(prev.cpu)?;
    Some(used as f64 / cpu_units_per_sec as f64 / secs * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_busy_core_is_100() {
        let a = ProcessTimes {
            starttime: 5,
            cpu: 100,
        };
        let b = ProcessTimes {
            starttime: 5,
            cpu: 300,
        };
        assert_eq!(
            process_cpu(&a, &b, Duration::from_secs(2), 100),
            Some(100.0)
        );
    }

    #[test]
    fn nanoseconds_from_the_process_clock() {
        let a = ProcessTimes {
            starttime: 5,
            cpu: 1_000_000_000,
        };
        let b = ProcessTimes {
            starttime: 5,
            cpu: 2_500_000_000,
        };
        // 1.5 s of CPU over 2 s: three quarters of a core.
        assert_eq!(
            process_cpu(&a, &b, Duration::from_secs(2), 1_000_000_000),
            Some(75.0)
        );
    }

    #[test]
    fn reuse_reset_and_zero() {
        let a = ProcessTimes {
            starttime: 5,
            cpu: 100,
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
                &ProcessTimes { cpu: 1, ..a },
                Duration::from_secs(1),
                100
            ),
            None
        );
        assert_eq!(process_cpu(&a, &a, Duration::ZERO, 100), None);
        assert_eq!(process_cpu(&a, &a, Duration::from_secs(1), 0), None);
    }
}
