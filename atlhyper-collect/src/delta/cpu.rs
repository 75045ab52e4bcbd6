//! CPU usage from two `/proc/stat` cpu lines.

use crate::proc::stat::CpuTimes;

/// CPU time shares over an interval, percent 0-100.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuUsage {
    /// `100 - idle - iowait`.
    pub usage: f64,
    /// user + nice (guest included, as the kernel counts it there).
    pub user: f64,
    /// system + irq + softirq.
    pub system: f64,
    /// idle.
    pub idle: f64,
    /// iowait.
    pub iowait: f64,
    /// steal; `None` when the kernel has no steal column.
    pub steal: Option<f64>,
}

/// Usage between two readings of the same cpu line. The ratio of ticks needs no elapsed time.
///
/// `None` when the line's total went down (a reset) or did not move. Single columns that went
/// down a little are taken as zero: the kernel's idle and iowait are known not to be monotonic on
/// tickless systems (see proc(5)), and `top` does the same.
pub fn cpu(prev: &CpuTimes, cur: &CpuTimes) -> Option<CpuUsage> {
    let total = cur.total().checked_sub(prev.total())?;
    if total == 0 {
        return None;
    }
    let d = |a: u64, b: u64| b.saturating_sub(a) as f64;
    let t = total as f64;
    let pct = |v: f64| (v / t * 100.0).clamp(0.0, 100.0);
    let idle = pct(d(prev.idle, cur.idle));
    let iowait = pct(d(prev.iowait, cur.iowait));
    let user = pct(d(prev.user, cur.user) + d(prev.nice, cur.nice));
    let system =
        pct(d(prev.system, cur.system) + d(prev.irq, cur.irq) + d(prev.softirq, cur.softirq));
    let steal = match (prev.steal, cur.steal) {
        (Some(a), Some(b)) => Some(pct(d(a, b))),
        _ => None,
    };
    Some(CpuUsage {
        usage: (100.0 - idle - iowait).clamp(0.0, 100.0),
        user,
        system,
        idle,
        iowait,
        steal,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(user: u64, system: u64, idle: u64, iowait: u64, steal: u64) -> CpuTimes {
        CpuTimes {
            user,
            system,
            idle,
            iowait,
            steal: Some(steal),
            ..Default::default()
        }
    }

    #[test]
    fn shares() {
        let u = cpu(&t(100, 100, 100, 0, 0), &t(150, 110, 130, 5, 5)).unwrap();
        // total delta 50 + 10 + 30 + 5 + 5 = 100
        assert_eq!(u.user, 50.0);
        assert_eq!(u.system, 10.0);
        assert_eq!(u.idle, 30.0);
        assert_eq!(u.iowait, 5.0);
        assert_eq!(u.steal, Some(5.0));
        assert_eq!(u.usage, 65.0);
    }

    #[test]
    fn reset_and_standstill_give_none() {
        assert_eq!(cpu(&t(100, 100, 100, 0, 0), &t(10, 10, 10, 0, 0)), None);
        assert_eq!(cpu(&t(1, 1, 1, 1, 1), &t(1, 1, 1, 1, 1)), None);
    }

    #[test]
    fn iowait_going_backwards_is_clamped() {
        let u = cpu(&t(100, 0, 100, 50, 0), &t(150, 0, 160, 45, 0)).unwrap();
        assert!(u.iowait == 0.0 && (0.0..=100.0).contains(&u.usage));
    }
}
