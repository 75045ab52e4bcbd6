//! The [`Collector`]: samples the host through a [`Sampler`], keeps the previous raw sample and
//! turns two samples into a [`NodeMetricsSnapshot`] with the pure [`crate::delta`] functions.
//!
//! One module per part of the snapshot (host, cpu, memory, disks, network, temperature, psi,
//! tcp, system, vmstat, softnet, processes). Each holds that part's raw sample, the code that fills it through the sampler, and
//! a pure `metrics` function from the previous and current sample (and a context: the elapsed
//! time and the host constants) to the part's metrics.

mod config;
mod cpu;
mod disks;
mod host;
mod kernel_families;
mod memory;
mod network;
mod node_families;
mod pid_set;
mod processes;
mod psi;
mod softnet;
mod system;
mod tcp;
mod temperature;
mod vmstat;

use std::time::{Duration, Instant};

use atlhyper_model::{CollectorStatus, NetworkMetrics, NodeMetricsSnapshot, NodeTotals};
use chrono::{DateTime, Utc};

pub use config::{
    CollectConfig, DEFAULT_EXCLUDE_FS_TYPES, DEFAULT_EXCLUDE_INTERFACES,
    DEFAULT_EXCLUDE_MOUNT_POINTS, HostConstants, NODE_EXPORTER_EXCLUDE_FS_TYPES,
    NODE_EXPORTER_EXCLUDE_MOUNT_POINTS,
};
pub use node_families::write_processes;
pub use pid_set::PidSetStats;

use crate::sampler::{HostRoot, Sampler, Statfs};

/// The time between two samples that rates are taken over.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Elapsed {
    /// No previous sample, or no way to tell how long ago it was: no rates.
    Unknown,
    /// Rates over this span (never zero: see [`Elapsed::of`]).
    Known(Duration),
}

impl Elapsed {
    /// `d`, or [`Elapsed::Unknown`] when it is zero (no rate can be taken over no time).
    fn of(d: Duration) -> Self {
        if d.is_zero() {
            Self::Unknown
        } else {
            Self::Known(d)
        }
    }

    /// The span, if known.
    fn known(self) -> Option<Duration> {
        match self {
            Self::Known(d) => Some(d),
            Self::Unknown => None,
        }
    }
}

/// Where the span between two samples comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Clock {
    /// This process's monotonic clock at the two samples (live collection).
    Monotonic,
    /// A span given by the caller (replaying captured trees at a known interval).
    Given(Duration),
    /// The difference of the two samples' `/proc/uptime` (replaying captured trees).
    Uptime,
}

/// What turning samples into metrics needs besides the samples themselves.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Context {
    /// The span rates are taken over.
    elapsed: Elapsed,
    /// Clock ticks per second of the sampled host.
    clock_ticks_per_sec: u64,
    /// Page size of the sampled host, bytes.
    page_size: u64,
    /// Sector size of `/proc/diskstats`, bytes.
    sector_size: u64,
}

/// One raw sample: parsed counters, not yet rates.
#[derive(Debug, Default)]
struct RawSample {
    taken: Option<Instant>,
    /// Wall-clock time of the sample (node_exporter's `node_time_seconds`).
    wall_time: Option<DateTime<Utc>>,
    host: host::HostSample,
    cpu: cpu::CpuSample,
    memory: memory::MemorySample,
    disks: disks::DisksSample,
    network: network::NetworkSample,
    temperature: temperature::TemperatureSample,
    psi: psi::PsiSample,
    tcp: tcp::TcpSample,
    system: system::SystemSample,
    vmstat: vmstat::VmstatSample,
    softnet: softnet::SoftnetSample,
    processes: processes::ProcessesSample,
}

/// The span from `prev` to `cur` as `clock` measures it.
fn elapsed_between(clock: Clock, prev: Option<&RawSample>, cur: &RawSample) -> Elapsed {
    let Some(prev) = prev else {
        return Elapsed::Unknown;
    };
    match clock {
        Clock::Given(d) => Elapsed::of(d),
        Clock::Uptime => match (prev.host.uptime, cur.host.uptime) {
            (Some(a), Some(b)) if b.uptime_secs > a.uptime_secs => {
                Elapsed::of(Duration::from_secs_f64(b.uptime_secs - a.uptime_secs))
            }
            _ => Elapsed::Unknown,
        },
        Clock::Monotonic => match (prev.taken, cur.taken) {
            (Some(a), Some(b)) => Elapsed::of(b.saturating_duration_since(a)),
            _ => Elapsed::Unknown,
        },
    }
}

/// Samples one host and produces [`NodeMetricsSnapshot`]s. Keeps the previous raw sample, so the
/// first [`Collector::collect`] yields no rates and later calls give rates over the elapsed time.
#[derive(Debug)]
pub struct Collector {
    sampler: Sampler,
    config: CollectConfig,
    prev: Option<RawSample>,
    cur: RawSample,
    host: host::HostFacts,
    cpu_info: cpu::CpuInfoCache,
    addresses: network::AddressCache,
    processes: processes::ProcessTable,
    disks: disks::DiskTables,
    sensors: temperature::SensorLayout,
}

impl Collector {
    /// A collector over `root`.
    pub fn new(root: HostRoot, config: CollectConfig) -> Self {
        let statfs = Statfs::new(config.statfs_timeout);
        Self::with_statfs(root, config, statfs)
    }

    /// A collector with a custom statfs runner (a test seam for blocking mounts).
    pub fn with_statfs(root: HostRoot, config: CollectConfig, statfs: Statfs) -> Self {
        let mut sampler = Sampler::new(root, statfs);
        if !config.keep_files_open {
            sampler.set_kept_files_limit(0);
        }
        Self {
            sampler,
            prev: None,
            cur: RawSample::default(),
            host: host::HostFacts::default(),
            cpu_info: cpu::CpuInfoCache::default(),
            addresses: network::AddressCache::default(),
            processes: processes::ProcessTable::new(
                config.top_processes,
                config.carry_idle_processes,
                config.probe_new_pids,
            ),
            disks: disks::DiskTables::default(),
            sensors: temperature::SensorLayout::default(),
            config,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &CollectConfig {
        &self.config
    }

    /// The host root being sampled.
    pub fn root(&self) -> &HostRoot {
        self.sampler.root()
    }

    /// Points the collector at another host root, keeping the previous sample (to replay two
    /// captured trees: collect the earlier one, switch, collect the later one). Cached host facts
    /// (host name, os, cpu model, users) are dropped.
    pub fn set_root(&mut self, root: HostRoot) {
        self.sampler.set_root(root);
        self.host = host::HostFacts::default();
        self.cpu_info = cpu::CpuInfoCache::default();
        self.addresses = network::AddressCache::default();
        self.processes.forget_host();
    }

    /// How the process scans found their candidate pids so far: by listing `/proc` or by
    /// extending the previous set (see [`crate::CollectConfig::probe_new_pids`]).
    pub fn pid_set_stats(&self) -> PidSetStats {
        self.processes.pid_set.stats()
    }

    /// The sampler (e.g. to trace which files a collection reads).
    pub fn sampler_mut(&mut self) -> &mut Sampler {
        &mut self.sampler
    }

    /// The statfs runner (to replace it, e.g. when replaying a tree with recorded statfs values).
    pub fn statfs_mut(&mut self) -> &mut Statfs {
        self.sampler.statfs_mut()
    }

    /// Writes the node_exporter-compatible families of the latest sample (the one the last
    /// [`Collector::collect`] returned a snapshot of): the kernel's counters as read, with
    /// node_exporter's names, labels and units. Nothing before the first collection.
    pub fn write_node_families(&self, out: &mut atlhyper_model::Exposition) {
        if let Some(latest) = &self.prev {
            let scale = node_families::Scale {
                clock_ticks_per_sec: self.config.clock_ticks_per_sec,
                sector_size: self.config.sector_size,
                page_size: self.config.page_size,
            };
            node_families::write(out, latest, &self.host, scale);
        }
    }

    /// Forgets the previous sample: the next collection yields no rates.
    pub fn reset(&mut self) {
        self.prev = None;
    }

    /// Samples the host and returns a snapshot. Blocking (run it in `spawn_blocking`). Rates are
    /// over the time since the previous call, measured with the monotonic clock.
    pub fn collect(&mut self) -> NodeMetricsSnapshot {
        self.collect_with(Clock::Monotonic)
    }

    /// Like [`Collector::collect`] but with rates over `elapsed` when given (and not zero), else
    /// over the difference of the two samples' `/proc/uptime` (for replaying captured trees).
    pub fn collect_over(&mut self, elapsed: Option<Duration>) -> NodeMetricsSnapshot {
        match elapsed.filter(|d| !d.is_zero()) {
            Some(d) => self.collect_with(Clock::Given(d)),
            None => self.collect_with(Clock::Uptime),
        }
    }

    fn collect_with(&mut self, clock: Clock) -> NodeMetricsSnapshot {
        let timestamp = Utc::now();
        let mut statuses = Vec::with_capacity(13);
        let mut cur = std::mem::take(&mut self.cur);
        cur.taken = Some(Instant::now());
        cur.wall_time = Some(timestamp);
        let s = &mut self.sampler;

        timed(&mut statuses, "host", || {
            host::sample(s, &mut self.host, &mut cur.host)
        });
        timed(&mut statuses, "cpu", || {
            cpu::sample(s, &mut self.cpu_info, &mut cur.cpu)
        });
        // A new boot time means a reboot (or a clock step): the previous counters are meaningless.
        if let (Some(p), Some(c)) = (
            self.prev.as_ref().and_then(|p| p.cpu.boot_time()),
            cur.cpu.boot_time(),
        ) && p != c
        {
            self.prev = None;
        }
        timed(&mut statuses, "memory", || {
            memory::sample(s, &mut cur.memory)
        });
        timed(&mut statuses, "load", || cpu::sample_load(s, &mut cur.cpu));
        timed(&mut statuses, "disks", || {
            disks::sample(s, &self.config, &mut self.disks, &mut cur.disks)
        });
        timed(&mut statuses, "network", || {
            network::sample(
                s,
                &self.config.exclude_interfaces,
                &mut self.addresses,
                &mut cur.network,
            )
        });
        timed(&mut statuses, "temperature", || {
            temperature::sample(s, &mut self.sensors, &mut cur.temperature)
        });
        timed(&mut statuses, "psi", || psi::sample(s, &mut cur.psi));
        timed(&mut statuses, "tcp", || tcp::sample(s, &mut cur.tcp));
        timed(&mut statuses, "system", || {
            system::sample(s, &mut cur.system)
        });
        timed(&mut statuses, "vmstat", || {
            vmstat::sample(s, &mut cur.vmstat)
        });
        timed(&mut statuses, "softnet", || {
            softnet::sample(s, &mut cur.softnet)
        });

        let ctx = Context {
            elapsed: elapsed_between(clock, self.prev.as_ref(), &cur),
            clock_ticks_per_sec: self.config.clock_ticks_per_sec,
            page_size: self.config.page_size,
            sector_size: self.config.sector_size,
        };
        let uptime_secs = cur.host.uptime.map(|u| u.uptime_secs);
        let counters = processes::NodeCounters::new(
            cur.cpu.stat().and_then(|st| st.processes),
            crate::proc::vmstat::reclaim_events(&cur.vmstat.text),
            cur.cpu.loadavg.as_ref(),
        );
        timed(&mut statuses, "processes", || {
            processes::sample(
                s,
                &mut self.processes,
                self.prev.as_ref().map(|p| &p.processes),
                &mut cur.processes,
                uptime_secs,
                counters,
                ctx,
            )
        });
        s.sweep_kept();

        let snap = self.snapshot(&cur, ctx, timestamp, statuses);
        // Keep this sample as the previous one and reuse the older one's buffers next time.
        self.cur = self.prev.take().unwrap_or_default();
        self.prev = Some(cur);
        snap
    }

    /// The snapshot of `cur` against the previous sample.
    fn snapshot(
        &self,
        cur: &RawSample,
        ctx: Context,
        timestamp: DateTime<Utc>,
        collectors: Vec<CollectorStatus>,
    ) -> NodeMetricsSnapshot {
        let prev = self.prev.as_ref();
        let host = host::metrics(&cur.host, &self.host, &self.config.node_name);
        let cpu = cpu::metrics(
            prev.map(|p| &p.cpu),
            &cur.cpu,
            self.cpu_info.cpuinfo.as_ref(),
        );
        let memory = memory::metrics(&cur.memory, ctx);
        let prev_disks = prev.map(|p| &p.disks);
        let disks = disks::metrics(prev_disks, &cur.disks, ctx);
        let disk_totals = disks::totals(prev_disks, &cur.disks, ctx);
        let networks = network::metrics(prev.map(|p| &p.network), &cur.network, ctx);
        // Summed in interface order from 0.0 (not `Iterator::sum`, which starts from -0.0).
        let rx_rate = networks.iter().fold(0.0, |t, n| t + n.rx_rate);
        let tx_rate = networks.iter().fold(0.0, |t, n| t + n.tx_rate);
        // Packet rates: none before the second collection (no interface has one yet).
        let packets = |rate: fn(&NetworkMetrics) -> Option<f64>| {
            networks
                .iter()
                .filter_map(rate)
                .fold(None, |t: Option<f64>, r| Some(t.unwrap_or(0.0) + r))
        };
        let rx_packets_rate = packets(|n| n.rx_packets_rate);
        let tx_packets_rate = packets(|n| n.tx_packets_rate);
        let processes = processes::metrics(
            &cur.processes,
            &self.processes,
            memory.total,
            cur.cpu.boot_time(),
            ctx,
        );
        NodeMetricsSnapshot {
            node_name: host.node_name,
            timestamp,
            hostname: host.hostname,
            os: host.os,
            kernel: host.kernel,
            uptime: host.uptime_secs,
            cpu,
            memory,
            disks,
            networks,
            temperature: cur.temperature.metrics.clone(),
            processes,
            psi: cur.psi.metrics.clone(),
            tcp: tcp::metrics(&cur.tcp),
            system: system::metrics(&cur.system),
            vmstat: vmstat::metrics(prev.map(|p| &p.vmstat), &cur.vmstat, ctx),
            softnet: softnet::metrics(prev.map(|p| &p.softnet), &cur.softnet, ctx),
            totals: Some(NodeTotals {
                disk_read_rate: disk_totals.read_bytes_per_s,
                disk_write_rate: disk_totals.write_bytes_per_s,
                disk_read_iops: disk_totals.read_iops,
                disk_write_iops: disk_totals.write_iops,
                network_rx_rate: rx_rate,
                network_tx_rate: tx_rate,
                network_rx_packets_rate: rx_packets_rate,
                network_tx_packets_rate: tx_packets_rate,
            }),
            collectors,
            clock_skew_seconds: None,
        }
    }
}

/// Runs one part's sampling and records how it went and how long it took.
fn timed(statuses: &mut Vec<CollectorStatus>, name: &str, f: impl FnOnce() -> Result<(), String>) {
    let t = Instant::now();
    let r = f();
    statuses.push(CollectorStatus {
        name: name.to_owned(),
        ok: r.is_ok(),
        duration_us: u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX),
        error: r.err(),
    });
}

/// `part / whole * 100`, 0 when `whole` is 0, clamped to 0-100.
fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 / whole as f64 * 100.0).clamp(0.0, 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proc::uptime;

    /// A context for the parts' tests: rates over `elapsed`, Linux's usual constants.
    pub(super) fn ctx(elapsed: Elapsed) -> Context {
        Context {
            elapsed,
            clock_ticks_per_sec: 100,
            page_size: 4096,
            sector_size: 512,
        }
    }

    fn sample_at(uptime_text: &str, taken: Option<Instant>) -> RawSample {
        RawSample {
            taken,
            host: host::HostSample {
                uptime: uptime::parse(uptime_text).ok(),
            },
            ..RawSample::default()
        }
    }

    #[test]
    fn zero_is_unknown() {
        assert_eq!(Elapsed::of(Duration::ZERO), Elapsed::Unknown);
        assert_eq!(Elapsed::of(Duration::ZERO).known(), None);
        let s = Duration::from_secs(5);
        assert_eq!(Elapsed::of(s).known(), Some(s));
    }

    #[test]
    fn first_sample_has_no_elapsed_time() {
        let cur = sample_at("100.0 50.0\n", Some(Instant::now()));
        for clock in [
            Clock::Monotonic,
            Clock::Uptime,
            Clock::Given(Duration::from_secs(5)),
        ] {
            assert_eq!(elapsed_between(clock, None, &cur), Elapsed::Unknown);
        }
    }

    #[test]
    fn elapsed_from_each_clock() {
        let t0 = Instant::now();
        let prev = sample_at("100.0 50.0\n", Some(t0));
        let cur = sample_at("105.5 50.0\n", Some(t0 + Duration::from_millis(300)));
        assert_eq!(
            elapsed_between(Clock::Monotonic, Some(&prev), &cur),
            Elapsed::Known(Duration::from_millis(300))
        );
        assert_eq!(
            elapsed_between(Clock::Uptime, Some(&prev), &cur),
            Elapsed::Known(Duration::from_secs_f64(5.5))
        );
        assert_eq!(
            elapsed_between(Clock::Given(Duration::from_secs(2)), Some(&prev), &cur),
            Elapsed::Known(Duration::from_secs(2))
        );
    }

    #[test]
    fn uptime_going_back_or_missing_gives_no_elapsed_time() {
        let prev = sample_at("105.0 50.0\n", None);
        let earlier = sample_at("100.0 50.0\n", None);
        let same = sample_at("105.0 50.0\n", None);
        let unreadable = sample_at("garbage", None);
        for cur in [&earlier, &same, &unreadable] {
            assert_eq!(
                elapsed_between(Clock::Uptime, Some(&prev), cur),
                Elapsed::Unknown
            );
        }
        // No monotonic time stamps: unknown as well.
        assert_eq!(
            elapsed_between(Clock::Monotonic, Some(&prev), &earlier),
            Elapsed::Unknown
        );
    }

    #[test]
    fn percent_is_clamped_and_zero_safe() {
        assert_eq!(percent(1, 4), 25.0);
        assert_eq!(percent(5, 0), 0.0);
        assert_eq!(percent(9, 4), 100.0);
    }
}
