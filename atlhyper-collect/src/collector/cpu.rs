//! CPU: `/proc/stat` (usage, per core, boot time), cpufreq or `/proc/cpuinfo` (model, cores,
//! MHz) and `/proc/loadavg`.

use std::time::{Duration, Instant};

use atlhyper_model::CpuMetrics;

use crate::delta;
use crate::proc::cpuinfo::{self, CpuInfo};
use crate::proc::loadavg::{self, LoadAvg};
use crate::proc::stat::{self, Stat};
use crate::sampler::{Base, Sampler};
use crate::sys::cpufreq;

/// How long cpuinfo's MHz is reused when there is no cpufreq (cpuinfo is slow to generate on large
/// machines).
const CPUINFO_REFRESH: Duration = Duration::from_secs(60);

/// What `/proc/cpuinfo` and sysfs say about the processors; the model and core counts are read
/// once, the MHz refreshed.
#[derive(Debug, Default)]
pub(super) struct CpuInfoCache {
    pub(super) cpuinfo: Option<CpuInfo>,
    read_at: Option<Instant>,
    /// Whether cpu0 has `cpufreq/scaling_cur_freq` (checked once).
    has_cpufreq: Option<bool>,
}

/// The part of a raw sample this module reads.
#[derive(Debug, Default)]
pub(super) struct CpuSample {
    /// `/proc/stat`, valid only when `stat_ok` (the buffer is reused between samples).
    stat: Stat,
    stat_ok: bool,
    /// Average current frequency, MHz: cpufreq when present, else cpuinfo.
    mhz: Option<f64>,
    /// cpufreq's current frequency of each cpu (by `cpuN` number), MHz; empty without cpufreq.
    pub(super) scaling_mhz: Vec<(usize, f64)>,
    /// `/proc/loadavg` (its own part: "load").
    pub(super) loadavg: Option<LoadAvg>,
}

impl CpuSample {
    /// Boot time from `/proc/stat`, seconds since the epoch; a change means a reboot.
    pub(super) fn boot_time(&self) -> Option<u64> {
        self.stat_ok.then_some(self.stat.btime)
    }

    /// `/proc/stat` when it was read and parsed.
    pub(super) fn stat(&self) -> Option<&Stat> {
        self.stat_ok.then_some(&self.stat)
    }
}

/// Reads `/proc/stat`, cpuinfo when due, and the frequency.
pub(super) fn sample(
    s: &mut Sampler,
    info: &mut CpuInfoCache,
    cur: &mut CpuSample,
) -> Result<(), String> {
    let mut first_err: Option<String> = None;
    cur.stat_ok = false;
    match s.read_text(Base::Proc, &[&"stat"]) {
        Ok(t) => match stat::parse_into(t, &mut cur.stat) {
            Ok(()) => cur.stat_ok = true,
            Err(e) => first_err = Some(e.to_string()),
        },
        Err(e) => first_err = Some(e.to_string()),
    }
    // cpuinfo: model and core counts once; MHz from cpufreq every time, else from cpuinfo re-read
    // every CPUINFO_REFRESH.
    let has_cpufreq = *info.has_cpufreq.get_or_insert_with(|| {
        s.exists(
            Base::Sys,
            &[&"devices/system/cpu/cpu0/cpufreq/scaling_cur_freq"],
        )
    });
    let stale = info.read_at.is_none_or(|t| t.elapsed() >= CPUINFO_REFRESH);
    if info.cpuinfo.is_none() || (!has_cpufreq && stale) {
        match s.read_text(Base::Proc, &[&"cpuinfo"]).map(cpuinfo::parse) {
            Ok(Ok(ci)) => {
                info.cpuinfo = Some(ci);
                info.read_at = Some(Instant::now());
            }
            Ok(Err(e)) => {
                first_err.get_or_insert(e.to_string());
            }
            Err(e) => {
                first_err.get_or_insert(e.to_string());
            }
        }
    }
    cur.mhz = info.cpuinfo.as_ref().and_then(|c| c.mhz);
    cur.scaling_mhz.clear();
    if has_cpufreq {
        let n = cur.stat().map_or(0, |st| st.cpus.len());
        let (mut sum, mut k) = (0.0, 0u32);
        for i in 0..n {
            let cpu = format!("cpu{i}");
            if let Ok(Ok(mhz)) = s
                .read_text(
                    Base::Sys,
                    &[&"devices/system/cpu", &cpu, &"cpufreq/scaling_cur_freq"],
                )
                .map(cpufreq::parse_cur_freq_mhz)
            {
                sum += mhz;
                k += 1;
                cur.scaling_mhz.push((i, mhz));
            }
        }
        if k > 0 {
            cur.mhz = Some(sum / f64::from(k));
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// Reads `/proc/loadavg`.
pub(super) fn sample_load(s: &mut Sampler, cur: &mut CpuSample) -> Result<(), String> {
    cur.loadavg = None;
    let t = s
        .read_text(Base::Proc, &[&"loadavg"])
        .map_err(|e| e.to_string())?;
    cur.loadavg = Some(loadavg::parse(t).map_err(|e| e.to_string())?);
    Ok(())
}

/// CPU metrics: usage shares from the two `/proc/stat` readings (none on the first sample or when
/// the counters went down; per core only while the core count is unchanged), model and cores
/// from cpuinfo, frequency and load.
pub(super) fn metrics(
    prev: Option<&CpuSample>,
    cur: &CpuSample,
    info: Option<&CpuInfo>,
) -> CpuMetrics {
    let mut cpu = CpuMetrics::default();
    let prev_stat = prev.and_then(CpuSample::stat);
    if let Some(cur_stat) = cur.stat() {
        if let Some(u) = prev_stat.and_then(|p| delta::cpu(&p.cpu, &cur_stat.cpu)) {
            cpu.usage_percent = u.usage;
            cpu.user_percent = u.user;
            cpu.nice_percent = Some(u.nice);
            cpu.system_percent = u.system;
            cpu.irq_percent = Some(u.irq);
            cpu.softirq_percent = Some(u.softirq);
            cpu.idle_percent = u.idle;
            cpu.iowait_percent = u.iowait;
            cpu.steal_percent = u.steal;
        }
        let same_cores = prev_stat.filter(|p| p.cpus.len() == cur_stat.cpus.len());
        cpu.per_core = cur_stat
            .cpus
            .iter()
            .enumerate()
            .map(|(i, c)| {
                same_cores
                    .and_then(|p| delta::cpu(&p.cpus[i], c))
                    .map_or(0.0, |u| u.usage)
            })
            .collect();
        cpu.threads = u32::try_from(cur_stat.cpus.len()).unwrap_or(u32::MAX);
    }
    if let Some(ci) = info {
        cpu.model = ci.model.clone();
        cpu.cores = ci.physical;
        if cpu.threads == 0 {
            cpu.threads = ci.logical;
        }
    }
    cpu.frequency = cur.mhz.unwrap_or(0.0);
    cpu.per_core_frequency = per_cpu_mhz(cur, info, cpu.threads);
    if let Some(l) = cur.loadavg {
        cpu.load_1 = l.one;
        cpu.load_5 = l.five;
        cpu.load_15 = l.fifteen;
    }
    cpu
}

/// The current frequency of every CPU in `cpuN` order, MHz, from where the mean came: cpufreq
/// when it was read for every CPU, else cpuinfo when it lists every CPU; empty otherwise (one
/// CPU missing would shift the rest onto the wrong numbers).
fn per_cpu_mhz(cur: &CpuSample, info: Option<&CpuInfo>, cpus: u32) -> Vec<f64> {
    let cpus = cpus as usize;
    if !cur.scaling_mhz.is_empty() {
        if cur.scaling_mhz.len() == cpus {
            return cur.scaling_mhz.iter().map(|&(_, mhz)| mhz).collect();
        }
        return Vec::new();
    }
    match info {
        Some(ci) if ci.per_processor_mhz.len() == cpus => ci.per_processor_mhz.clone(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(stat_text: &str) -> CpuSample {
        let stat = stat::parse(stat_text).ok();
        CpuSample {
            stat_ok: stat.is_some(),
            stat: stat.unwrap_or_default(),
            mhz: Some(2400.0),
            loadavg: loadavg::parse("0.50 0.25 0.10 1/100 42\n").ok(),
            scaling_mhz: Vec::new(),
        }
    }

    const T0: &str = "cpu 100 0 100 800 0 0 0 0\ncpu0 50 0 50 400 0 0 0 0\n\
                      cpu1 50 0 50 400 0 0 0 0\nbtime 1000\n";
    /// 100 ticks later: cpu0 fully busy in user, cpu1 idle.
    const T1: &str = "cpu 200 0 100 900 0 0 0 0\ncpu0 150 0 50 400 0 0 0 0\n\
                      cpu1 50 0 50 500 0 0 0 0\nbtime 1000\n";

    #[test]
    fn first_sample_has_no_usage_but_counts_and_load() {
        let m = metrics(None, &sample(T0), None);
        assert_eq!(m.usage_percent, 0.0);
        assert_eq!(m.nice_percent, None);
        assert_eq!(m.per_core, vec![0.0, 0.0]);
        assert_eq!(m.threads, 2);
        assert_eq!(m.frequency, 2400.0);
        assert_eq!((m.load_1, m.load_5, m.load_15), (0.5, 0.25, 0.1));
        assert_eq!(sample(T0).boot_time(), Some(1000));
    }

    #[test]
    fn frequency_per_cpu_from_cpufreq_else_cpuinfo() {
        let info = cpuinfo::parse(
            "processor\t: 0\ncpu MHz\t\t: 2599.998\n\nprocessor\t: 1\ncpu MHz\t\t: 1200.5\n",
        )
        .unwrap();
        // No cpufreq: cpuinfo's per-processor MHz.
        let m = metrics(None, &sample(T0), Some(&info));
        assert_eq!(m.per_core_frequency, vec![2599.998, 1200.5]);
        // cpufreq read for every CPU wins.
        let mut cur = sample(T0);
        cur.scaling_mhz = vec![(0, 3000.0), (1, 800.0)];
        assert_eq!(
            metrics(None, &cur, Some(&info)).per_core_frequency,
            vec![3000.0, 800.0]
        );
        // cpufreq missing a CPU: no per-CPU list (never shifted onto the wrong CPU).
        cur.scaling_mhz = vec![(1, 800.0)];
        assert!(
            metrics(None, &cur, Some(&info))
                .per_core_frequency
                .is_empty()
        );
        // cpuinfo for another CPU count (a CPU came online since it was read): none either.
        let three = cpuinfo::parse(
            "processor : 0\ncpu MHz : 1\n\nprocessor : 1\ncpu MHz : 2\n\nprocessor : 2\ncpu MHz : 3\n",
        )
        .unwrap();
        assert!(
            metrics(None, &sample(T0), Some(&three))
                .per_core_frequency
                .is_empty()
        );
        assert!(
            metrics(None, &sample(T0), None)
                .per_core_frequency
                .is_empty()
        );
    }

    #[test]
    fn usage_between_two_samples() {
        let m = metrics(Some(&sample(T0)), &sample(T1), None);
        assert_eq!(m.usage_percent, 50.0);
        assert_eq!(m.user_percent, 50.0);
        assert_eq!(m.idle_percent, 50.0);
        assert_eq!(m.per_core, vec![100.0, 0.0]);
    }

    #[test]
    fn counters_going_down_give_no_usage() {
        let m = metrics(Some(&sample(T1)), &sample(T0), None);
        assert_eq!(m.usage_percent, 0.0);
        assert_eq!(m.nice_percent, None);
        assert_eq!(m.per_core, vec![0.0, 0.0]);
    }

    #[test]
    fn a_changed_core_count_gives_no_per_core_usage() {
        let one_core = "cpu 100 0 100 800 0 0 0 0\ncpu0 100 0 100 800 0 0 0 0\nbtime 1000\n";
        let m = metrics(Some(&sample(one_core)), &sample(T1), None);
        assert_eq!(m.usage_percent, 50.0);
        assert_eq!(m.per_core, vec![0.0, 0.0]);
    }

    #[test]
    fn unreadable_stat_falls_back_to_cpuinfo() {
        let info = CpuInfo {
            model: "Xeon".into(),
            logical: 8,
            physical: 4,
            mhz: None,
            per_processor_mhz: Vec::new(),
        };
        let cur = sample("garbage");
        assert_eq!(cur.boot_time(), None);
        let m = metrics(Some(&sample(T0)), &cur, Some(&info));
        assert_eq!((m.threads, m.cores), (8, 4));
        assert_eq!(m.model, "Xeon");
        assert!(m.per_core.is_empty());
        // With /proc/stat, threads are its per-cpu lines.
        assert_eq!(metrics(None, &sample(T0), Some(&info)).threads, 2);
    }
}
