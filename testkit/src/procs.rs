//! A fake crowd of processes for the benchmarks that measure a process scan, and the CPU clocks
//! those benchmarks read.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The environment variable naming how many processes /proc should list during a benchmark.
pub const BENCH_PROCS_VAR: &str = "ATL_BENCH_PROCS";

/// Idle `sleep` children, killed and reaped by pid when dropped.
#[derive(Debug, Default)]
pub struct Sleepers(Vec<Child>);

impl Sleepers {
    /// Starts idle `sleep` children until /proc lists about `target` processes (at most 5,000
    /// more; stops early when a spawn fails, e.g. at the process limit).
    pub fn until(target: usize) -> Self {
        let mut s = Self::default();
        let have = process_count();
        for _ in have..target.min(have + 5000) {
            match Command::new("sleep")
                .arg("3600")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
            {
                Ok(c) => s.0.push(c),
                Err(e) => {
                    eprintln!("stopped starting sleepers after {}: {e}", s.0.len());
                    break;
                }
            }
        }
        s
    }

    /// [`Sleepers::until`] the count in [`BENCH_PROCS_VAR`], or none when it is unset; says on
    /// stderr how many processes /proc lists then.
    pub fn from_env() -> Self {
        let target = std::env::var(BENCH_PROCS_VAR)
            .ok()
            .and_then(|v| v.parse::<usize>().ok());
        let s = target.map(Self::until).unwrap_or_default();
        eprintln!(
            "processes in /proc: {} ({} sleepers started)",
            process_count(),
            s.len()
        );
        s
    }

    /// How many were started.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none was started.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Drop for Sleepers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// How many processes /proc lists now (its numeric entries).
pub fn process_count() -> usize {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
                .count()
        })
        .unwrap_or(0)
}

/// The CPU time of this whole process (all threads).
pub fn own_cpu_time() -> Duration {
    clock_time(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// The CPU time of process `pid` (all threads) from its process CPU clock; zero when it does not
/// exist.
pub fn process_cpu_time(pid: u32) -> Duration {
    match libc::clockid_t::try_from(pid) {
        // MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED), the clock glibc's clock_getcpuclockid gives.
        Ok(p) if p > 0 => clock_time((!p << 3) | 2),
        _ => Duration::ZERO,
    }
}

fn clock_time(id: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the kernel validates the clock id.
    if unsafe { libc::clock_gettime(id, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// The median of `samples` (sorted in place); 0 when there are none.
pub fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied().unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleepers_are_counted_and_reaped() {
        let before = process_count();
        let s = Sleepers::until(before + 3);
        assert_eq!(s.len(), 3);
        let pids: Vec<u32> = s.0.iter().map(Child::id).collect();
        assert!(process_count() >= before + 3);
        drop(s);
        for pid in pids {
            assert!(
                !std::path::Path::new(&format!("/proc/{pid}")).exists(),
                "pid {pid} reaped"
            );
        }
    }

    #[test]
    fn cpu_clocks() {
        let mut x = 0u64;
        let t = own_cpu_time();
        while own_cpu_time() - t < Duration::from_millis(5) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(process_cpu_time(std::process::id()) >= Duration::from_millis(5));
        assert_eq!(process_cpu_time(0), Duration::ZERO);
        assert_eq!(process_cpu_time(u32::MAX), Duration::ZERO);
    }

    #[test]
    fn medians() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut []), 0.0);
    }
}
