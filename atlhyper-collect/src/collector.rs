//! The [`Collector`]: samples the host through a [`Sampler`], keeps the previous raw sample and
//! turns two samples into a [`NodeMetricsSnapshot`] with the pure [`crate::delta`] functions.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use atlhyper_model::{
    CollectorStatus, CpuMetrics, DiskMetrics, MemoryMetrics, NetworkMetrics, NodeMetricsSnapshot,
    NodeTotals, ProcessMetrics, PsiMetrics, SensorReading, TemperatureMetrics,
};
use chrono::{DateTime, Utc};

use crate::delta::{self, DiskCounters, NetCounters, ProcessTimes};
use crate::proc::net_addr;
use crate::proc::{
    cpuinfo, diskstats, loadavg, meminfo, mountinfo, net_dev, pid_cmdline, pid_stat, pid_status,
    pressure, stat, uptime, zoneinfo,
};
use crate::sampler::{Base, FsSpace, HostRoot, Sampler, Statfs};
use crate::sys::{cpufreq, hwmon, net_class, thermal};
use crate::{etc, filter};

/// Filesystem types left out by default: pseudo and container filesystems (node_exporter's
/// defaults plus tmpfs/ramfs and FUSE helpers).
pub const DEFAULT_EXCLUDE_FS_TYPES: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fusectl",
    "fuse.lxcfs",
    "fuse.gvfsd-fuse",
    "fuse.portal",
    "hugetlbfs",
    "iso9660",
    "mqueue",
    "nsfs",
    "overlay",
    "proc",
    "procfs",
    "pstore",
    "ramfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "erofs",
    "sysfs",
    "tmpfs",
    "tracefs",
    "shm",
];

/// Mount point patterns left out by default (see [`filter::mount_point_matches`]): system trees
/// and kubelet/container runtime mounts.
pub const DEFAULT_EXCLUDE_MOUNT_POINTS: &[&str] = &[
    "/dev",
    "/proc",
    "/sys",
    "/run/credentials/*",
    "/var/lib/docker/*",
    "/var/lib/containers/storage/*",
    "/var/lib/kubelet/pods/*",
    "/var/lib/kubelet/plugins/*",
    "/run/containerd/*",
    "/var/run/containerd/*",
    "/run/k3s/*",
    "/var/lib/rancher/k3s/agent/containerd/*",
    "/run/netns/*",
    "/var/run/netns/*",
    "/run/docker/*",
    "/var/lib/containerd/*",
    "/snap/*",
];

/// Interface patterns left out by default (virtual interfaces; `*` at the end is a prefix match).
pub const DEFAULT_EXCLUDE_INTERFACES: &[&str] = &[
    "lo",
    "veth*",
    "cali*",
    "flannel*",
    "cni*",
    "docker*",
    "br-*",
    "virbr*",
    "vnet*",
    "tunl*",
    "kube-ipvs*",
    "cilium*",
    "vxlan*",
    "ifb*",
    "dummy*",
    "lxc*",
    "nodelocaldns",
    "kube-bridge",
    "weave",
    "genev_sys_*",
];

/// How the collector samples.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectConfig {
    /// Kubernetes node name; when empty the host name (`{proc}/sys/kernel/hostname`) is used.
    /// [`CollectConfig::default`] takes it from `NODE_NAME`.
    pub node_name: String,
    /// N of "top N by CPU and top N by resident memory" (default 10).
    pub top_processes: usize,
    /// Time limit of one statfs call (default 2 s).
    pub statfs_timeout: Duration,
    /// Run statfs inline (no worker thread, no timeout) for filesystems on a local block device
    /// (major device number not 0, type not a network filesystem); default true. Network, FUSE
    /// and other anonymous-device filesystems (NFS, CIFS, Ceph, FUSE, btrfs, ...) always go
    /// through the worker with [`CollectConfig::statfs_timeout`]. Set false to route every
    /// mount through the worker.
    pub statfs_inline_block_devices: bool,
    /// Filesystem types left out (exact names).
    pub exclude_fs_types: Vec<String>,
    /// Mount point patterns left out: `/dev` matches `/dev` and anything below it, `/var/lib/docker/*`
    /// only what is below.
    pub exclude_mount_points: Vec<String>,
    /// Interfaces left out of `networks` and the totals: exact names, or prefixes ending in `*`.
    pub exclude_interfaces: Vec<String>,
    /// Clock ticks per second of the sampled host (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
    pub clock_ticks_per_sec: u64,
    /// Page size of the sampled host, bytes (`sysconf(_SC_PAGESIZE)`).
    pub page_size: u64,
    /// Sector size of `/proc/diskstats`, bytes (always 512 on Linux).
    pub sector_size: u64,
    /// Keep procfs/sysfs files (one `/proc/<pid>/stat` per process, plus the host-wide files)
    /// open between collections and re-read them with `pread` at offset 0: one syscall per file
    /// instead of open, read and close. Costs one file descriptor and a little kernel memory per
    /// kept file, at most `min(RLIMIT_NOFILE soft / 2, 8192)` of them; files past the limit are
    /// opened and closed each time. Default true. See [`crate::sampler`].
    pub keep_files_open: bool,
}

impl Default for CollectConfig {
    fn default() -> Self {
        // SAFETY: sysconf has no preconditions.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        // SAFETY: as above.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        Self {
            node_name: std::env::var("NODE_NAME").unwrap_or_default(),
            top_processes: 10,
            statfs_timeout: Duration::from_secs(2),
            statfs_inline_block_devices: true,
            keep_files_open: true,
            exclude_fs_types: DEFAULT_EXCLUDE_FS_TYPES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            exclude_mount_points: DEFAULT_EXCLUDE_MOUNT_POINTS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            exclude_interfaces: DEFAULT_EXCLUDE_INTERFACES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            clock_ticks_per_sec: u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100),
            page_size: u64::try_from(page).ok().filter(|&p| p > 0).unwrap_or(4096),
            sector_size: 512,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct DiskSample {
    dev: (u32, u32),
    name: String,
    counters: DiskCounters,
}

#[derive(Debug, Clone, Default)]
struct MountSample {
    dev: Option<(u32, u32)>,
    source: String,
    mount_point: String,
    fs_type: String,
    space: Option<FsSpace>,
}

#[derive(Debug, Clone, Default)]
struct NetSample {
    name: String,
    counters: NetCounters,
    status: String,
    speed: i64,
    mac: String,
    mtu: u32,
    ip: String,
}

#[derive(Debug, Clone, Default)]
struct ProcSample {
    pid: u32,
    comm: String,
    state: char,
    times: ProcessTimes,
    rss_pages: u64,
    threads: u64,
}

#[derive(Debug, Clone, Default)]
struct ProcDetail {
    idx: usize,
    cpu_percent: Option<f64>,
    uid: u32,
    cmdline: String,
    /// VmRSS from `/proc/[pid]/status`, bytes (what top and ps show); `None` for kernel threads.
    vm_rss: Option<u64>,
}

/// What `/proc/[pid]/status` and `cmdline` say about a process, cached per (pid, start time).
#[derive(Debug, Clone, Default)]
struct Ident {
    starttime: u64,
    uid: u32,
    is_thread: bool,
    cmdline: String,
    read_at: Option<Instant>,
}

/// How long a process's identity (uid, command line) is cached.
const IDENT_REFRESH: Duration = Duration::from_secs(60);

/// One raw sample: parsed counters, not yet rates.
#[derive(Debug, Default)]
struct RawSample {
    taken: Option<Instant>,
    uptime: Option<uptime::Uptime>,
    stat: stat::Stat,
    stat_ok: bool,
    cpu_mhz: Option<f64>,
    meminfo: Option<meminfo::Meminfo>,
    /// Sum of the zones' low watermarks, pages; read only when meminfo has no MemAvailable.
    low_watermark_pages: Option<u64>,
    loadavg: Option<loadavg::LoadAvg>,
    disks: Vec<DiskSample>,
    whole_disks: Vec<String>,
    mounts: Vec<MountSample>,
    nets: Vec<NetSample>,
    procs: Vec<ProcSample>,
    details: Vec<ProcDetail>,
    psi: Option<PsiMetrics>,
    temps: TemperatureMetrics,
}

impl RawSample {
    fn btime(&self) -> Option<u64> {
        self.stat_ok.then_some(self.stat.btime)
    }
}

#[derive(Debug, Default)]
struct HostInfo {
    hostname: Option<String>,
    kernel: Option<String>,
    os: Option<String>,
    cpuinfo: Option<cpuinfo::CpuInfo>,
    cpuinfo_at: Option<Instant>,
    has_cpufreq: Option<bool>,
    /// Interface -> address, refreshed every [`ADDRESS_REFRESH`] or when an interface appears.
    addresses: HashMap<String, String>,
    addresses_at: Option<Instant>,
}

/// How long interface addresses are cached (fib_trie can be large on nodes with many routes), and
/// cpuinfo's MHz when there is no cpufreq (cpuinfo is slow to generate on large machines).
const ADDRESS_REFRESH: Duration = Duration::from_secs(60);

/// Samples one host and produces [`NodeMetricsSnapshot`]s. Keeps the previous raw sample, so the
/// first [`Collector::collect`] yields no rates and later calls give rates over the elapsed time.
#[derive(Debug)]
pub struct Collector {
    sampler: Sampler,
    config: CollectConfig,
    prev: Option<RawSample>,
    cur: RawSample,
    host: HostInfo,
    users: HashMap<u32, String>,
    idents: HashMap<u32, Ident>,
    pids: Vec<u32>,
    order: Vec<usize>,
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
            config,
            prev: None,
            cur: RawSample::default(),
            host: HostInfo::default(),
            users: HashMap::new(),
            idents: HashMap::new(),
            pids: Vec::new(),
            order: Vec::new(),
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
        self.host = HostInfo::default();
        self.users.clear();
        self.idents.clear();
    }

    /// The sampler (e.g. to trace which files a collection reads).
    pub fn sampler_mut(&mut self) -> &mut Sampler {
        &mut self.sampler
    }

    /// The statfs runner (to replace it, e.g. when replaying a tree with recorded statfs values).
    pub fn statfs_mut(&mut self) -> &mut Statfs {
        self.sampler.statfs_mut()
    }

    /// Forgets the previous sample: the next collection yields no rates.
    pub fn reset(&mut self) {
        self.prev = None;
    }

    /// Samples the host and returns a snapshot. Blocking (run it in `spawn_blocking`). Rates are
    /// over the time since the previous call, measured with the monotonic clock.
    pub fn collect(&mut self) -> NodeMetricsSnapshot {
        self.collect_inner(None)
    }

    /// Like [`Collector::collect`] but with rates over `elapsed` when given, else over the
    /// difference of the two samples' `/proc/uptime` (for replaying captured trees).
    pub fn collect_over(&mut self, elapsed: Option<Duration>) -> NodeMetricsSnapshot {
        let e = elapsed.or(Some(Duration::ZERO));
        self.collect_inner(e)
    }

    fn collect_inner(&mut self, elapsed_override: Option<Duration>) -> NodeMetricsSnapshot {
        let timestamp = Utc::now();
        let mut statuses = Vec::with_capacity(9);
        let mut cur = std::mem::take(&mut self.cur);
        cur.taken = Some(Instant::now());

        timed(&mut statuses, "host", || self.sample_host(&mut cur));
        timed(&mut statuses, "cpu", || self.sample_cpu(&mut cur));
        // A new boot time means a reboot (or a clock step): the previous counters are meaningless.
        if let (Some(p), Some(c)) = (self.prev.as_ref().and_then(RawSample::btime), cur.btime())
            && p != c
        {
            self.prev = None;
        }
        timed(&mut statuses, "memory", || self.sample_memory(&mut cur));
        timed(&mut statuses, "load", || self.sample_load(&mut cur));
        timed(&mut statuses, "disks", || self.sample_disks(&mut cur));
        timed(&mut statuses, "network", || self.sample_network(&mut cur));
        timed(&mut statuses, "temperature", || {
            self.sample_temperature(&mut cur)
        });
        timed(&mut statuses, "psi", || self.sample_psi(&mut cur));

        let elapsed = match (elapsed_override, self.prev.as_ref()) {
            (_, None) => None,
            (Some(d), Some(_)) if !d.is_zero() => Some(d),
            (Some(_), Some(p)) => match (p.uptime, cur.uptime) {
                (Some(a), Some(b)) if b.uptime_secs > a.uptime_secs => {
                    Some(Duration::from_secs_f64(b.uptime_secs - a.uptime_secs))
                }
                _ => None,
            },
            (None, Some(p)) => match (p.taken, cur.taken) {
                (Some(a), Some(b)) => Some(b.saturating_duration_since(a)),
                _ => None,
            },
        };
        timed(&mut statuses, "processes", || {
            self.sample_processes(&mut cur, elapsed)
        });
        self.sampler.sweep_kept();

        let snap = build(
            self.prev.as_ref(),
            &cur,
            elapsed,
            &self.config,
            &self.host,
            &self.users,
            timestamp,
            statuses,
        );
        // Keep this sample as the previous one and reuse the older one's buffers next time.
        self.cur = self.prev.take().unwrap_or_default();
        self.prev = Some(cur);
        snap
    }

    fn sample_host(&mut self, cur: &mut RawSample) -> Result<(), String> {
        let s = &mut self.sampler;
        let mut first_err = None;
        cur.uptime = match s.read_text(Base::Proc, &[&"uptime"]) {
            Ok(t) => match uptime::parse(t) {
                Ok(u) => Some(u),
                Err(e) => {
                    first_err.get_or_insert(format!(
                        "{}: {e}",
                        s.path_of(Base::Proc, &[&"uptime"]).display()
                    ));
                    None
                }
            },
            Err(e) => {
                first_err.get_or_insert(e.to_string());
                None
            }
        };
        if self.host.hostname.is_none() {
            match s.read_text(Base::Proc, &[&"sys", &"kernel", &"hostname"]) {
                Ok(t) => self.host.hostname = Some(t.trim().to_owned()),
                Err(e) => {
                    first_err.get_or_insert(e.to_string());
                }
            }
        }
        if self.host.kernel.is_none() {
            match s.read_text(Base::Proc, &[&"sys", &"kernel", &"osrelease"]) {
                Ok(t) => self.host.kernel = Some(t.trim().to_owned()),
                Err(e) => {
                    first_err.get_or_insert(e.to_string());
                }
            }
        }
        if self.host.os.is_none() {
            let r = s
                .read_text(Base::Root, &[&"etc", &"os-release"])
                .map(|t| etc::os_release::pretty_name(t).map(str::to_owned));
            let r = match r {
                Ok(v) => Ok(v),
                Err(_) => s
                    .read_text(Base::Root, &[&"usr", &"lib", &"os-release"])
                    .map(|t| etc::os_release::pretty_name(t).map(str::to_owned)),
            };
            match r {
                Ok(Some(v)) => self.host.os = Some(v),
                Ok(None) => {
                    first_err.get_or_insert("os-release has no PRETTY_NAME or NAME".to_owned());
                }
                Err(e) => {
                    first_err.get_or_insert(e.to_string());
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn sample_cpu(&mut self, cur: &mut RawSample) -> Result<(), String> {
        let s = &mut self.sampler;
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
        // every ADDRESS_REFRESH.
        let has_cpufreq = *self.host.has_cpufreq.get_or_insert_with(|| {
            s.exists(
                Base::Sys,
                &[&"devices/system/cpu/cpu0/cpufreq/scaling_cur_freq"],
            )
        });
        let stale = self
            .host
            .cpuinfo_at
            .is_none_or(|t| t.elapsed() >= ADDRESS_REFRESH);
        if self.host.cpuinfo.is_none() || (!has_cpufreq && stale) {
            match s.read_text(Base::Proc, &[&"cpuinfo"]).map(cpuinfo::parse) {
                Ok(Ok(ci)) => {
                    self.host.cpuinfo = Some(ci);
                    self.host.cpuinfo_at = Some(Instant::now());
                }
                Ok(Err(e)) => {
                    first_err.get_or_insert(e.to_string());
                }
                Err(e) => {
                    first_err.get_or_insert(e.to_string());
                }
            }
        }
        cur.cpu_mhz = self.host.cpuinfo.as_ref().and_then(|c| c.mhz);
        if has_cpufreq {
            let n = if cur.stat_ok { cur.stat.cpus.len() } else { 0 };
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
                }
            }
            if k > 0 {
                cur.cpu_mhz = Some(sum / f64::from(k));
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn sample_memory(&mut self, cur: &mut RawSample) -> Result<(), String> {
        cur.meminfo = None;
        cur.low_watermark_pages = None;
        let t = self
            .sampler
            .read_text(Base::Proc, &[&"meminfo"])
            .map_err(|e| e.to_string())?;
        let m = meminfo::parse(t).map_err(|e| e.to_string())?;
        cur.meminfo = Some(m);
        if m.mem_available.is_some() {
            return Ok(());
        }
        // Before Linux 3.14: MemAvailable is estimated as the kernel does, which needs the
        // zones' low watermarks. Without them the estimate leaves the watermarks out (a little
        // high) and this part says so.
        let wmark = self
            .sampler
            .read_text(Base::Proc, &[&"zoneinfo"])
            .map_err(|e| e.to_string())
            .and_then(|t| zoneinfo::low_watermark_pages(t).map_err(|e| e.to_string()));
        match wmark {
            Ok(pages) => {
                cur.low_watermark_pages = Some(pages);
                Ok(())
            }
            Err(e) => Err(format!(
                "no MemAvailable and no low watermarks ({e}): available estimated without them"
            )),
        }
    }

    fn sample_load(&mut self, cur: &mut RawSample) -> Result<(), String> {
        cur.loadavg = None;
        let t = self
            .sampler
            .read_text(Base::Proc, &[&"loadavg"])
            .map_err(|e| e.to_string())?;
        cur.loadavg = Some(loadavg::parse(t).map_err(|e| e.to_string())?);
        Ok(())
    }

    fn sample_disks(&mut self, cur: &mut RawSample) -> Result<(), String> {
        let s = &mut self.sampler;
        let mut first_err: Option<String> = None;
        // Block devices.
        cur.disks.clear();
        match s.read_text(Base::Proc, &[&"diskstats"]) {
            Ok(t) => {
                for d in diskstats::parse(t) {
                    match d {
                        Ok(d) => cur.disks.push(DiskSample {
                            dev: (d.major, d.minor),
                            name: d.name.to_owned(),
                            counters: DiskCounters::from(&d),
                        }),
                        Err(e) => {
                            first_err.get_or_insert(e.to_string());
                        }
                    }
                }
            }
            Err(e) => first_err = Some(e.to_string()),
        }
        cur.whole_disks = match s.list_dir(Base::Sys, &[&"block"]) {
            Ok(names) => names
                .into_iter()
                .filter_map(|n| n.into_string().ok())
                .collect(),
            // Without sysfs, fall back to recognising whole disks by name.
            Err(_) => cur
                .disks
                .iter()
                .filter(|d| filter::looks_like_whole_disk(&d.name))
                .map(|d| d.name.clone())
                .collect(),
        };

        // Mounts: the host's view (pid 1), else ours, else the old format.
        cur.mounts.clear();
        let cfg = &self.config;
        let push = |m: mountinfo::Mount<'_>, mounts: &mut Vec<MountSample>| {
            if cfg.exclude_fs_types.iter().any(|t| t == m.fs_type)
                || cfg
                    .exclude_mount_points
                    .iter()
                    .any(|p| filter::mount_point_matches(p, &m.mount_point))
            {
                return;
            }
            // The same filesystem bind-mounted again (kubelet, containers) is reported once.
            let dup = mounts.iter().any(|x| match (x.dev, m.dev) {
                (Some(a), Some(b)) => a == b,
                _ => x.source == m.source && x.fs_type == m.fs_type,
            });
            if dup || mounts.iter().any(|x| x.mount_point == m.mount_point) {
                return;
            }
            mounts.push(MountSample {
                dev: m.dev,
                source: m.source.into_owned(),
                mount_point: m.mount_point.into_owned(),
                fs_type: m.fs_type.to_owned(),
                space: None,
            });
        };
        let sources: [(&[&dyn AsRef<std::ffi::OsStr>], bool); 3] = [
            (&[&"1", &"mountinfo"], true),
            (&[&"self", &"mountinfo"], true),
            (&[&"mounts"], false),
        ];
        let mut mount_err = None;
        let mut read_any = false;
        for (parts, is_mountinfo) in sources {
            let Ok(t) = s.read_text(Base::Proc, parts) else {
                continue;
            };
            read_any = true;
            let it = if is_mountinfo {
                mountinfo::parse_mountinfo(t)
            } else {
                mountinfo::parse_mounts(t)
            };
            for m in it {
                match m {
                    Ok(m) => push(m, &mut cur.mounts),
                    Err(e) => {
                        mount_err.get_or_insert(e.to_string());
                    }
                }
            }
            break;
        }
        if !read_any {
            first_err.get_or_insert(format!(
                "no readable mount table under {}",
                s.root().proc.display()
            ));
        }
        if let Some(e) = mount_err {
            first_err.get_or_insert(e);
        }
        for m in &mut cur.mounts {
            let inline = self.config.statfs_inline_block_devices
                && filter::is_local_block_fs(m.dev, &m.fs_type);
            match s.statfs_mount(&m.mount_point, inline) {
                Ok(sp) => m.space = Some(sp),
                Err(e) => {
                    first_err.get_or_insert(e.to_string());
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn sample_network(&mut self, cur: &mut RawSample) -> Result<(), String> {
        let s = &mut self.sampler;
        let mut first_err: Option<String> = None;
        let mut n = 0;
        let t = s
            .read_text(Base::Proc, &[&"net", &"dev"])
            .map_err(|e| e.to_string())?;
        for d in net_dev::parse(t) {
            match d {
                Ok(d) => {
                    if self
                        .config
                        .exclude_interfaces
                        .iter()
                        .any(|p| filter::interface_matches(p, d.name))
                    {
                        continue;
                    }
                    if n == cur.nets.len() {
                        cur.nets.push(NetSample::default());
                    }
                    let slot = &mut cur.nets[n];
                    slot.name.clear();
                    slot.name.push_str(d.name);
                    slot.counters = NetCounters::from(&d);
                    n += 1;
                }
                Err(e) => {
                    first_err.get_or_insert(e.to_string());
                }
            }
        }
        cur.nets.truncate(n);
        let stale = self
            .host
            .addresses_at
            .is_none_or(|t| t.elapsed() >= ADDRESS_REFRESH)
            || cur
                .nets
                .iter()
                .any(|n| !self.host.addresses.contains_key(&n.name));
        if stale {
            let mut read = |f: &str| {
                s.read_text(Base::Proc, &[&"net", &f])
                    .map(str::to_owned)
                    .unwrap_or_default()
            };
            let (fib, route, inet6) = (read("fib_trie"), read("route"), read("if_inet6"));
            self.host.addresses.clear();
            for net in &cur.nets {
                let ip = net_addr::address_of(&net.name, &fib, &route, &inet6).unwrap_or_default();
                self.host.addresses.insert(net.name.clone(), ip);
            }
            self.host.addresses_at = Some(Instant::now());
        }
        for net in &mut cur.nets {
            net.ip.clear();
            if let Some(ip) = self.host.addresses.get(&net.name) {
                net.ip.push_str(ip);
            }
        }
        for net in &mut cur.nets {
            let dir = ["class", "net", net.name.as_str()];
            net.status = match s.read_text(Base::Sys, &[&dir[0], &dir[1], &dir[2], &"operstate"]) {
                Ok(t) => net_class::parse_operstate(t).to_owned(),
                Err(_) => "unknown".to_owned(),
            };
            net.speed = match s.read_text(Base::Sys, &[&dir[0], &dir[1], &dir[2], &"speed"]) {
                Ok(t) => net_class::parse_speed(t).unwrap_or(-1),
                // EINVAL (virtual NICs, link down) and a missing file both mean "unknown".
                Err(_) => -1,
            };
            net.mac = match s.read_text(Base::Sys, &[&dir[0], &dir[1], &dir[2], &"address"]) {
                Ok(t) => net_class::parse_address(t).to_owned(),
                Err(_) => String::new(),
            };
            net.mtu = match s
                .read_text(Base::Sys, &[&dir[0], &dir[1], &dir[2], &"mtu"])
                .map(net_class::parse_mtu)
            {
                Ok(Ok(v)) => v,
                Ok(Err(e)) => {
                    first_err.get_or_insert(e.to_string());
                    0
                }
                Err(_) => 0,
            };
        }
        first_err.map_or(Ok(()), Err)
    }

    fn sample_temperature(&mut self, cur: &mut RawSample) -> Result<(), String> {
        let s = &mut self.sampler;
        let mut temps = TemperatureMetrics::default();
        let mut best: Option<(u8, f64, f64)> = None;
        let hwmons = s
            .list_dir(Base::Sys, &[&"class", &"hwmon"])
            .unwrap_or_default();
        for hw in &hwmons {
            // Attributes directly in hwmonN, or in the legacy hwmonN/device/ directory.
            for sub in ["", "device"] {
                let mut attrs: Vec<(u32, hwmon::TempAttr)> = s
                    .list_dir(Base::Sys, &[&"class/hwmon", hw, &sub])
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|n| n.to_str().and_then(hwmon::temp_attr))
                    .collect();
                if attrs.is_empty() {
                    continue;
                }
                attrs.sort_by_key(|(i, _)| *i);
                let chip = match s.read_text(Base::Sys, &[&"class/hwmon", hw, &sub, &"name"]) {
                    Ok(t) => t.trim().to_owned(),
                    Err(_) => hw.to_string_lossy().into_owned(),
                };
                for &(idx, attr) in &attrs {
                    if attr != hwmon::TempAttr::Input {
                        continue;
                    }
                    let read = |s: &mut Sampler, suffix: &str| -> Option<f64> {
                        let f = format!("temp{idx}_{suffix}");
                        s.read_text(Base::Sys, &[&"class/hwmon", hw, &sub, &f])
                            .ok()
                            .and_then(|t| hwmon::parse_millidegrees(t).ok())
                    };
                    let Some(current) = read(s, "input") else {
                        continue;
                    };
                    if !hwmon::plausible(current) {
                        continue;
                    }
                    let max = read(s, "max")
                        .filter(|v| hwmon::plausible(*v) && *v > 0.0)
                        .unwrap_or(0.0);
                    let critical = read(s, "crit")
                        .filter(|v| hwmon::plausible(*v) && *v > 0.0)
                        .unwrap_or(0.0);
                    let label_file = format!("temp{idx}_label");
                    let label =
                        match s.read_text(Base::Sys, &[&"class/hwmon", hw, &sub, &label_file]) {
                            Ok(t) if !t.trim().is_empty() => t.trim().to_owned(),
                            _ => format!("temp{idx}"),
                        };
                    if let Some(rank) = hwmon::cpu_sensor_rank(&chip, &label) {
                        let thr = if max > 0.0 { max } else { critical };
                        if best.is_none_or(|(r, c, _)| rank > r || (rank == r && current > c)) {
                            best = Some((rank, current, thr));
                        }
                    }
                    temps.sensors.push(SensorReading {
                        name: chip.clone(),
                        label,
                        current,
                        max,
                        critical,
                    });
                }
                break;
            }
        }
        // Thermal zones only as fallback: for the sensor list when hwmon has none, and for the CPU
        // reading when hwmon has no CPU sensor.
        if best.is_none() {
            let hwmon_had_sensors = !temps.sensors.is_empty();
            let zones = s
                .list_dir(Base::Sys, &[&"class", &"thermal"])
                .unwrap_or_default();
            for z in zones
                .iter()
                .filter(|z| z.to_string_lossy().starts_with("thermal_zone"))
            {
                let Ok(ty) = s
                    .read_text(Base::Sys, &[&"class/thermal", z, &"type"])
                    .map(|t| t.trim().to_owned())
                else {
                    continue;
                };
                let Ok(Ok(current)) = s
                    .read_text(Base::Sys, &[&"class/thermal", z, &"temp"])
                    .map(thermal::parse_temp)
                else {
                    continue;
                };
                if !hwmon::plausible(current) {
                    continue;
                }
                if thermal::is_cpu_zone(&ty) && best.is_none_or(|(_, c, _)| current > c) {
                    best = Some((1, current, 0.0));
                }
                if !hwmon_had_sensors {
                    temps.sensors.push(SensorReading {
                        name: ty,
                        label: z.to_string_lossy().into_owned(),
                        current,
                        max: 0.0,
                        critical: 0.0,
                    });
                }
            }
        }
        if let Some((_, c, thr)) = best {
            temps.cpu_temp = c;
            temps.cpu_temp_max = thr;
        }
        cur.temps = temps;
        if cur.temps.sensors.is_empty() {
            return Err(format!(
                "no temperature sensors under {}/class/hwmon or {}/class/thermal",
                s.root().sys.display(),
                s.root().sys.display()
            ));
        }
        Ok(())
    }

    fn sample_psi(&mut self, cur: &mut RawSample) -> Result<(), String> {
        cur.psi = None;
        let mut read = |name: &str| -> Result<pressure::Pressure, String> {
            let t = self
                .sampler
                .read_text(Base::Proc, &[&"pressure", &name])
                .map_err(|e| e.to_string())?;
            pressure::parse(t).map_err(|e| e.to_string())
        };
        let cpu = read("cpu")?;
        let mem = read("memory")?;
        let io = read("io")?;
        cur.psi = Some(PsiMetrics {
            cpu_some: cpu.some.avg10,
            memory_some: mem.some.avg10,
            memory_full: mem.full.map_or(0.0, |f| f.avg10),
            io_some: io.some.avg10,
            io_full: io.full.map_or(0.0, |f| f.avg10),
        });
        Ok(())
    }

    fn sample_processes(
        &mut self,
        cur: &mut RawSample,
        elapsed: Option<Duration>,
    ) -> Result<(), String> {
        let s = &mut self.sampler;
        cur.details.clear();
        s.list_pids(&mut self.pids).map_err(|e| e.to_string())?;
        let mut n = 0;
        let mut bad = 0usize;
        let mut first_bad = None;
        for &pid in &self.pids {
            let bytes = match s.read_pid(pid, "stat") {
                Ok(b) => b,
                // Exited between listing and reading: not an error.
                Err(e) if e.is_not_found() => continue,
                Err(e) => {
                    bad += 1;
                    first_bad.get_or_insert(e.to_string());
                    continue;
                }
            };
            // comm may hold any bytes; validate first (fast) and repair only when needed.
            let text = match std::str::from_utf8(bytes) {
                Ok(t) => std::borrow::Cow::Borrowed(t),
                Err(_) => String::from_utf8_lossy(bytes),
            };
            let ps = match pid_stat::parse(&text) {
                Ok(p) => p,
                Err(e) => {
                    // An empty read means the process exited while we read it.
                    if !bytes.is_empty() {
                        bad += 1;
                        first_bad
                            .get_or_insert(format!("{}/{pid}/stat: {e}", s.root().proc.display()));
                    }
                    continue;
                }
            };
            if n == cur.procs.len() {
                cur.procs.push(ProcSample::default());
            }
            let slot = &mut cur.procs[n];
            slot.pid = pid;
            slot.comm.clear();
            slot.comm.push_str(ps.comm);
            slot.state = ps.state;
            slot.times = ProcessTimes {
                starttime: ps.starttime,
                utime: ps.utime,
                stime: ps.stime,
            };
            slot.rss_pages = ps.rss_pages;
            slot.threads = ps.num_threads;
            n += 1;
        }
        cur.procs.truncate(n);

        // CPU percent of every process against the previous sample.
        let prev = self.prev.as_ref();
        let ticks = self.config.clock_ticks_per_sec;
        // `q`: the previous sample's process with the same pid, if any.
        let cpu_with = |p: &ProcSample, q: Option<&ProcSample>| -> Option<f64> {
            let prev = prev?;
            let elapsed = elapsed?;
            match q.filter(|q| q.times.starttime == p.times.starttime) {
                Some(q) => delta::process_cpu(&q.times, &p.times, elapsed, ticks),
                None => {
                    // Started after the previous sample: all of its CPU time falls inside the
                    // interval, and top counts it so. (A process already running then but missed
                    // by the previous sample gets no rate.)
                    let started_secs = p.times.starttime as f64 / ticks.max(1) as f64;
                    if started_secs < prev.uptime?.uptime_secs {
                        return None;
                    }
                    let born = ProcessTimes {
                        starttime: p.times.starttime,
                        utime: 0,
                        stime: 0,
                    };
                    delta::process_cpu(&born, &p.times, elapsed, ticks)
                }
            }
        };
        let prev_procs: &[ProcSample] = prev.map_or(&[], |p| &p.procs);
        let cpu_of = |p: &ProcSample| -> Option<f64> {
            let q = prev_procs
                .binary_search_by_key(&p.pid, |q| q.pid)
                .ok()
                .map(|i| &prev_procs[i]);
            cpu_with(p, q)
        };
        // Both samples are in ascending pid order: match them in one merge walk.
        let mut k = 0;
        let cpu: Vec<f64> = cur
            .procs
            .iter()
            .map(|p| {
                while k < prev_procs.len() && prev_procs[k].pid < p.pid {
                    k += 1;
                }
                let q = prev_procs.get(k).filter(|q| q.pid == p.pid);
                cpu_with(p, q).unwrap_or(0.0)
            })
            .collect();

        // Candidates: by CPU, then by resident memory; status and cmdline only for those reported.
        let top = self.config.top_processes;
        let order = &mut self.order;
        let mut chosen: Vec<usize> = Vec::with_capacity(top * 2);
        let mut rejected: Vec<usize> = Vec::new();
        for by_cpu in [true, false] {
            order.clear();
            order.extend(0..cur.procs.len());
            // A total order (ties broken by pid), so a partial sort gives the same ranking as a
            // full one.
            let cmp = |a: &usize, b: &usize| {
                let (a, b) = (*a, *b);
                let by = if by_cpu {
                    cpu[b].total_cmp(&cpu[a])
                } else {
                    cur.procs[b].rss_pages.cmp(&cur.procs[a].rss_pages)
                };
                by.then(cur.procs[a].pid.cmp(&cur.procs[b].pid))
            };
            // Only the head is ranked (threads and vanished processes may be skipped, so more than
            // `top`); the rest is sorted only if the loop runs past the head.
            let len = order.len();
            let mut sorted = top.saturating_mul(4).saturating_add(16).min(len);
            if sorted > 0 && sorted < len {
                order.select_nth_unstable_by(sorted - 1, cmp);
            }
            order[..sorted].sort_unstable_by(cmp);
            let mut taken = 0;
            let mut j = 0;
            while taken < top {
                if j == sorted {
                    if sorted == len {
                        break;
                    }
                    order[sorted..].sort_unstable_by(cmp);
                    sorted = len;
                }
                let i = order[j];
                j += 1;
                if chosen.contains(&i) {
                    taken += 1;
                    continue;
                }
                if rejected.contains(&i) {
                    continue;
                }
                let pid = cur.procs[i].pid;
                let starttime = cur.procs[i].times.starttime;
                // Identity (uid, thread or not, command line) is read once per process and
                // refreshed every IDENT_REFRESH. status is read for every reported process in
                // every collection: its VmRSS is the resident size top and ps show (stat's rss,
                // used for the ranking above, runs a few percent below it on recent kernels).
                let cached = self.idents.get(&pid).filter(|id| {
                    id.starttime == starttime
                        && id.read_at.is_some_and(|t| t.elapsed() < IDENT_REFRESH)
                });
                if cached.is_some_and(|id| id.is_thread) {
                    rejected.push(i);
                    continue;
                }
                let status = match s.read_pid(pid, "status") {
                    Ok(b) => match std::str::from_utf8(b).map(pid_status::parse) {
                        Ok(Ok(st)) => st,
                        _ => {
                            rejected.push(i);
                            continue;
                        }
                    },
                    Err(_) => {
                        rejected.push(i);
                        continue;
                    }
                };
                if let Some(id) = cached {
                    cur.details.push(ProcDetail {
                        idx: i,
                        cpu_percent: cpu_of(&cur.procs[i]),
                        uid: id.uid,
                        cmdline: id.cmdline.clone(),
                        vm_rss: status.vm_rss,
                    });
                    chosen.push(i);
                    taken += 1;
                    continue;
                }
                // Threads are not processes.
                if status.tgid != status.pid || status.pid != pid {
                    self.idents.insert(
                        pid,
                        Ident {
                            starttime,
                            uid: status.uid,
                            is_thread: true,
                            cmdline: String::new(),
                            read_at: Some(Instant::now()),
                        },
                    );
                    rejected.push(i);
                    continue;
                }
                let cmdline = match s.read_pid(pid, "cmdline") {
                    Ok(b) => pid_cmdline::to_display(b),
                    Err(e) if e.is_not_found() => {
                        rejected.push(i);
                        continue;
                    }
                    Err(_) => String::new(),
                };
                self.idents.insert(
                    pid,
                    Ident {
                        starttime,
                        uid: status.uid,
                        is_thread: false,
                        cmdline: cmdline.clone(),
                        read_at: Some(Instant::now()),
                    },
                );
                cur.details.push(ProcDetail {
                    idx: i,
                    cpu_percent: cpu_of(&cur.procs[i]),
                    uid: status.uid,
                    cmdline,
                    vm_rss: status.vm_rss,
                });
                chosen.push(i);
                taken += 1;
            }
        }

        // Keep identities only of processes looked at this time.
        let procs = &cur.procs;
        self.idents.retain(|pid, _| {
            chosen
                .iter()
                .chain(rejected.iter())
                .any(|&i| procs[i].pid == *pid)
        });

        // User names from the host's passwd, re-read when a uid is unknown.
        if cur.details.iter().any(|d| !self.users.contains_key(&d.uid))
            && let Ok(t) = s.read_text(Base::Root, &[&"etc", &"passwd"])
        {
            self.users.clear();
            for (name, uid) in etc::passwd::entries(t) {
                self.users.entry(uid).or_insert_with(|| name.to_owned());
            }
        }
        if bad > 0 {
            return Err(format!(
                "skipped {bad} unreadable process(es); first: {}",
                first_bad.unwrap_or_default()
            ));
        }
        Ok(())
    }
}

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

#[allow(clippy::too_many_arguments)]
fn build(
    prev: Option<&RawSample>,
    cur: &RawSample,
    elapsed: Option<Duration>,
    cfg: &CollectConfig,
    host: &HostInfo,
    users: &HashMap<u32, String>,
    timestamp: DateTime<Utc>,
    collectors: Vec<CollectorStatus>,
) -> NodeMetricsSnapshot {
    let hostname = host.hostname.clone().unwrap_or_default();
    let node_name = if cfg.node_name.is_empty() {
        hostname.clone()
    } else {
        cfg.node_name.clone()
    };
    let prev_stat = prev.filter(|p| p.stat_ok).map(|p| &p.stat);

    // CPU.
    let mut cpu = CpuMetrics::default();
    if cur.stat_ok {
        if let Some(u) = prev_stat.and_then(|p| delta::cpu(&p.cpu, &cur.stat.cpu)) {
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
        cpu.per_core = cur
            .stat
            .cpus
            .iter()
            .enumerate()
            .map(|(i, c)| {
                prev_stat
                    .filter(|p| p.cpus.len() == cur.stat.cpus.len())
                    .and_then(|p| delta::cpu(&p.cpus[i], c))
                    .map_or(0.0, |u| u.usage)
            })
            .collect();
        cpu.threads = u32::try_from(cur.stat.cpus.len()).unwrap_or(u32::MAX);
    }
    if let Some(ci) = &host.cpuinfo {
        cpu.model = ci.model.clone();
        cpu.cores = ci.physical;
        if cpu.threads == 0 {
            cpu.threads = ci.logical;
        }
    }
    cpu.frequency = cur.cpu_mhz.unwrap_or(0.0);
    if let Some(l) = cur.loadavg {
        cpu.load_1 = l.one;
        cpu.load_5 = l.five;
        cpu.load_15 = l.fifteen;
    }

    // Memory.
    let mut memory = MemoryMetrics::default();
    if let Some(m) = cur.meminfo {
        let avail = m.available_or_estimate(cur.low_watermark_pages.unwrap_or(0), cfg.page_size);
        memory.total = m.mem_total;
        memory.available = avail;
        memory.used = m.mem_total.saturating_sub(avail);
        memory.free = m.mem_free;
        memory.usage_percent = percent(memory.used, memory.total);
        memory.cached = m.page_cache();
        memory.buffers = m.buffers;
        memory.swap_total = m.swap_total;
        memory.swap_free = m.swap_free;
        memory.swap_used = m.swap_total.saturating_sub(m.swap_free);
        memory.swap_percent = percent(memory.swap_used, memory.swap_total);
    }

    // Disks.
    let find_disk = |sample: &RawSample, m: &MountSample| -> Option<usize> {
        m.dev
            .and_then(|dev| sample.disks.iter().position(|d| d.dev == dev))
            .or_else(|| {
                let base = m.source.strip_prefix("/dev/")?;
                sample.disks.iter().position(|d| d.name == base)
            })
    };
    let disk_rates = |sample_prev: Option<&RawSample>, d: &DiskSample| {
        let p = sample_prev?;
        let pd = p
            .disks
            .iter()
            .find(|x| x.dev == d.dev && x.name == d.name)?;
        delta::disk(&pd.counters, &d.counters, elapsed?, cfg.sector_size)
    };
    let mut disks = Vec::with_capacity(cur.mounts.len());
    for m in &cur.mounts {
        let mut dm = DiskMetrics {
            device: m.source.clone(),
            mount_point: m.mount_point.clone(),
            fs_type: m.fs_type.clone(),
            ..Default::default()
        };
        if let Some(sp) = m.space {
            dm.total = sp.total;
            dm.used = sp.total.saturating_sub(sp.free);
            dm.available = sp.available;
            dm.usage_percent = percent(dm.used, dm.used.saturating_add(sp.available));
            if sp.files > 0 {
                dm.inodes_total = Some(sp.files);
                dm.inodes_used = Some(sp.files.saturating_sub(sp.files_free));
            }
        }
        if let Some(i) = find_disk(cur, m) {
            let d = &cur.disks[i];
            dm.device = d.name.clone();
            dm.read_bytes = d.counters.sectors_read.saturating_mul(cfg.sector_size);
            dm.write_bytes = d.counters.sectors_written.saturating_mul(cfg.sector_size);
            if let Some(r) = disk_rates(prev, d) {
                dm.read_rate = r.read_bytes_per_s;
                dm.write_rate = r.write_bytes_per_s;
                dm.read_iops = r.read_iops;
                dm.write_iops = r.write_iops;
                dm.io_util = r.util_percent;
            }
        }
        disks.push(dm);
    }

    // Networks.
    let mut networks = Vec::with_capacity(cur.nets.len());
    let mut totals = NodeTotals::default();
    for n in &cur.nets {
        let rates = prev
            .and_then(|p| p.nets.iter().find(|x| x.name == n.name))
            .zip(elapsed)
            .map(|(p, e)| delta::net(&p.counters, &n.counters, e));
        let c = &n.counters;
        let r = rates.unwrap_or_default();
        totals.network_rx_rate += r.rx_bytes.unwrap_or(0.0);
        totals.network_tx_rate += r.tx_bytes.unwrap_or(0.0);
        networks.push(NetworkMetrics {
            interface: n.name.clone(),
            ip_address: n.ip.clone(),
            mac_address: n.mac.clone(),
            status: n.status.clone(),
            speed: n.speed,
            mtu: n.mtu,
            rx_bytes: c.rx_bytes,
            tx_bytes: c.tx_bytes,
            rx_packets: c.rx_packets,
            tx_packets: c.tx_packets,
            rx_rate: r.rx_bytes.unwrap_or(0.0),
            tx_rate: r.tx_bytes.unwrap_or(0.0),
            rx_errors: c.rx_errors,
            tx_errors: c.tx_errors,
            rx_dropped: c.rx_dropped,
            tx_dropped: c.tx_dropped,
            rx_packets_rate: r.rx_packets,
            tx_packets_rate: r.tx_packets,
            rx_errors_rate: r.rx_errors,
            tx_errors_rate: r.tx_errors,
            rx_dropped_rate: r.rx_dropped,
            tx_dropped_rate: r.tx_dropped,
        });
    }
    for d in &cur.disks {
        if !cur.whole_disks.contains(&d.name) || !filter::counts_in_totals(&d.name) {
            continue;
        }
        if let Some(r) = disk_rates(prev, d) {
            totals.disk_read_rate += r.read_bytes_per_s;
            totals.disk_write_rate += r.write_bytes_per_s;
            totals.disk_read_iops += r.read_iops;
            totals.disk_write_iops += r.write_iops;
        }
    }

    // Processes.
    let mem_total = cur.meminfo.map_or(0, |m| m.mem_total);
    let btime = cur.stat_ok.then_some(cur.stat.btime);
    let mut processes: Vec<ProcessMetrics> = cur
        .details
        .iter()
        .map(|d| {
            let p = &cur.procs[d.idx];
            // VmRSS as top and ps show it; stat's rss only when status has none (kernel threads,
            // whose stat rss is 0 as well).
            let rss = d
                .vm_rss
                .unwrap_or_else(|| p.rss_pages.saturating_mul(cfg.page_size));
            let start = btime.map_or(0, |b| {
                let secs = p.times.starttime / cfg.clock_ticks_per_sec.max(1);
                i64::try_from(b.saturating_add(secs)).unwrap_or(i64::MAX)
            });
            ProcessMetrics {
                pid: p.pid,
                name: p.comm.clone(),
                cmdline: d.cmdline.clone(),
                user: users
                    .get(&d.uid)
                    .cloned()
                    .unwrap_or_else(|| d.uid.to_string()),
                status: p.state.to_string(),
                cpu_percent: d.cpu_percent.unwrap_or(0.0),
                mem_percent: percent(rss, mem_total),
                mem_rss: rss,
                threads: u32::try_from(p.threads).unwrap_or(u32::MAX),
                start_time: start,
            }
        })
        .collect();
    processes.sort_by(|a, b| {
        b.cpu_percent
            .total_cmp(&a.cpu_percent)
            .then(b.mem_rss.cmp(&a.mem_rss))
            .then(a.pid.cmp(&b.pid))
    });

    NodeMetricsSnapshot {
        node_name,
        timestamp,
        hostname,
        os: host.os.clone().unwrap_or_default(),
        kernel: host.kernel.clone().unwrap_or_default(),
        uptime: cur.uptime.map_or(0, |u| u.uptime_secs as u64),
        cpu,
        memory,
        disks,
        networks,
        temperature: cur.temps.clone(),
        processes,
        psi: cur.psi.clone(),
        totals: Some(totals),
        collectors,
        clock_skew_seconds: None,
    }
}

/// `part / whole * 100`, 0 when `whole` is 0, clamped to 0-100.
fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 / whole as f64 * 100.0).clamp(0.0, 100.0)
    }
}
