//! CPU usage from two `/proc/stat` cpu lines.

use crate::proc::stat::CpuTimes;

/// CPU time shares over an interval, percent 0-100, split into modes as `mpstat` reports them
/// (see the collect crate's README for the column mapping).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuUsage {
    /// `100 - idle - iowait`.
    pub usage: f64,
    /// user without guest (mpstat `%usr`): the kernel counts guest time in user as well.
    pub user: f64,
    /// nice without guest_nice (mpstat `%nice`).
    pub nice: f64,
    /// system alone, without irq and softirq (mpstat `%sys`).
    pub system: f64,
    /// Hardware interrupts (mpstat `%irq`).
    pub irq: f64,
    /// Softirqs (mpstat `%soft`).
    pub softirq: f64,
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
/// tickless systems (see proc(5)), and `top` and `mpstat` do the same.
pub fn cpu(prev: &CpuTimes, cur: &CpuTimes) -> Option<CpuUsage> {
    let total = cur.total().checked_sub(prev.total())?;
    if total == 0 {
        return None;
    }
    let d = |a: u64, b: u64| b.saturating_sub(a) as f64;
    let t = total as f64;
    let pct = |v: f64| (v / t * 100.0).clamp(0.0, 100.0);
    // Guest time is already inside user (and guest_nice inside nice); mpstat takes it out. A
    // kernel without the guest columns has none to take out.
    let without = |all: u64, guest: Option<u64>| all.saturating_sub(guest.unwrap_or(0));
    let idle = pct(d(prev.idle, cur.idle));
    let iowait = pct(d(prev.iowait, cur.iowait));
    let user = pct(d(
        without(prev.user, prev.guest),
        without(cur.user, cur.guest),
    ));
    let nice = pct(d(
        without(prev.nice, prev.guest_nice),
        without(cur.nice, cur.guest_nice),
    ));
    let steal = match (prev.steal, cur.steal) {
        (Some(a), Some(b)) => Some(pct(d(a, b))),
        _ => None,
    };
    Some(CpuUsage {
        usage: (100.0 - idle - iowait).clamp(0.0, 100.0),
        user,
        nice,
        system: pct(d(prev.system, cur.system)),
        irq: pct(d(prev.irq, cur.irq)),
        softirq: pct(d(prev.softirq, cur.softirq)),
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
    fn modes_as_mpstat_splits_them() {
        let prev = CpuTimes {
            user: 1000,
            nice: 500,
            system: 300,
            idle: 5000,
            iowait: 100,
            irq: 10,
            softirq: 20,
            steal: Some(0),
            guest: Some(200),
            guest_nice: Some(50),
        };
        // Deltas: user 60 (of which guest 20), nice 15 (guest_nice 5), system 10, irq 2,
        // softirq 3, idle 100, iowait 5, steal 5: total 200 (guest columns not counted again).
        let cur = CpuTimes {
            user: 1060,
            nice: 515,
            system: 310,
            idle: 5100,
            iowait: 105,
            irq: 12,
            softirq: 23,
            steal: Some(5),
            guest: Some(220),
            guest_nice: Some(55),
        };
        let u = cpu(&prev, &cur).unwrap();
        assert_eq!(u.user, 20.0, "user 60 - guest 20 of 200");
        assert_eq!(u.nice, 5.0, "nice 15 - guest_nice 5");
        assert_eq!(u.system, 5.0, "system alone");
        assert_eq!((u.irq, u.softirq), (1.0, 1.5));
        assert_eq!((u.idle, u.iowait, u.steal), (50.0, 2.5, Some(2.5)));
        assert_eq!(u.usage, 47.5);
        // Guest columns going backwards (a bad reading) never push a share above the user ticks.
        let odd = CpuTimes {
            guest: Some(0),
            ..cur
        };
        let u = cpu(&prev, &odd).unwrap();
        assert!((0.0..=100.0).contains(&u.user));
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
