//! One node's metrics: [`NodeMetricsSnapshot`] and its parts (AtlHyper `model_v2/node_metrics.go`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::serde_util::null_default;

/// Everything one collection of one node yields. Sent by the node daemon to the agent every
/// collection interval (`POST /metrics/node`) and carried inside [`crate::ClusterSnapshot`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeMetricsSnapshot {
    /// Kubernetes node name (a DNS-1123 name). Required by every receiver.
    #[serde(deserialize_with = "null_default")]
    pub node_name: String,
    /// When the collection ran (UTC on the wire as RFC 3339).
    pub timestamp: DateTime<Utc>,
    /// Host name of the machine (may differ from the node name).
    #[serde(deserialize_with = "null_default")]
    pub hostname: String,
    /// Operating system, from os-release `PRETTY_NAME` (e.g. "Debian GNU/Linux 12 (bookworm)").
    #[serde(deserialize_with = "null_default")]
    pub os: String,
    /// Kernel release (e.g. "6.1.0-18-amd64").
    #[serde(deserialize_with = "null_default")]
    pub kernel: String,
    /// Seconds since boot.
    pub uptime: u64,
    /// CPU usage, load and model.
    pub cpu: CpuMetrics,
    /// Memory and swap.
    pub memory: MemoryMetrics,
    /// One entry per reported mount.
    #[serde(deserialize_with = "null_default")]
    pub disks: Vec<DiskMetrics>,
    /// One entry per reported (non-virtual by default) interface.
    #[serde(deserialize_with = "null_default")]
    pub networks: Vec<NetworkMetrics>,
    /// CPU temperature and every sensor.
    pub temperature: TemperatureMetrics,
    /// Top processes: the union of the top N by CPU and the top N by resident memory. Also read
    /// from `top_processes`, the name seed 000 gives the list (written back as `processes`).
    #[serde(alias = "top_processes", deserialize_with = "null_default")]
    pub processes: Vec<ProcessMetrics>,

    /// Extension: pressure stall information (Linux 4.20+ with `CONFIG_PSI`); absent when the
    /// kernel has no `/proc/pressure`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psi: Option<PsiMetrics>,
    /// Extension: node totals over whole disks and non-virtual interfaces.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub totals: Option<NodeTotals>,
    /// Extension: TCP connections and sockets (`/proc/net/snmp`, `/proc/net/sockstat`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpMetrics>,
    /// Extension: kernel tables: connection tracking, file handles, entropy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemMetrics>,
    /// Extension: paging and swapping rates (`/proc/vmstat`); absent on the first collection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vmstat: Option<VmstatMetrics>,
    /// Extension: network receive softirq drops and squeezes (`/proc/net/softnet_stat`);
    /// absent on the first collection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub softnet: Option<SoftnetMetrics>,
    /// Extension: one entry per part of the collection (cpu, memory, disks, ...), saying whether it
    /// worked, how long it took and why it failed.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub collectors: Vec<CollectorStatus>,
    /// Extension: how far the node's clock was off, seconds (node clock minus the receiver's;
    /// positive = ahead), when a receiver replaced a timestamp too far ahead or too old by the
    /// time the snapshot arrived (see [`crate::ClockPolicy`]). Absent when the clock was fine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_skew_seconds: Option<f64>,
}

/// CPU usage over the last collection interval, load, and hardware description.
///
/// The modes split time as `mpstat` does: user + nice + system + irq + softirq + idle + iowait +
/// steal (+ guest time, which is in none of them) = 100.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuMetrics {
    /// Busy percent 0-100: `100 - idle - iowait` over the interval.
    pub usage_percent: f64,
    /// User time percent as mpstat `%usr`: the user column without nice (see `nice_percent`) and
    /// without guest time (which the kernel also counts in user).
    pub user_percent: f64,
    /// System time percent as mpstat `%sys`: the system column without irq and softirq (see
    /// `irq_percent`, `softirq_percent`).
    pub system_percent: f64,
    /// Idle percent.
    pub idle_percent: f64,
    /// I/O wait percent (idle time with outstanding I/O).
    pub iowait_percent: f64,
    /// Busy percent of every logical CPU, in `cpuN` order.
    #[serde(deserialize_with = "null_default")]
    pub per_core: Vec<f64>,
    /// 1-minute load average.
    pub load_1: f64,
    /// 5-minute load average.
    pub load_5: f64,
    /// 15-minute load average.
    pub load_15: f64,
    /// CPU model name from /proc/cpuinfo.
    #[serde(deserialize_with = "null_default")]
    pub model: String,
    /// Physical cores.
    pub cores: u32,
    /// Logical CPUs (hardware threads).
    pub threads: u32,
    /// Current frequency in MHz (average over CPUs).
    pub frequency: f64,
    /// Extension: current frequency of every logical CPU in `cpuN` order, MHz (cpufreq, else
    /// `/proc/cpuinfo`); empty when the collector cannot tell every CPU's.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub per_core_frequency: Vec<f64>,

    /// Extension: steal percent (time a hypervisor gave to someone else).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steal_percent: Option<f64>,
    /// Extension: niced user time percent as mpstat `%nice` (without guest_nice); absent before
    /// the first interval and from collectors that do not report it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nice_percent: Option<f64>,
    /// Extension: hardware interrupt time percent as mpstat `%irq`; absent like `nice_percent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub irq_percent: Option<f64>,
    /// Extension: softirq time percent as mpstat `%soft`; absent like `nice_percent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub softirq_percent: Option<f64>,
}

/// Memory and swap in bytes, as `free -b` reports them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryMetrics {
    /// MemTotal, bytes.
    pub total: u64,
    /// `total - available`, bytes (what `free` calls used).
    pub used: u64,
    /// MemAvailable (estimated on kernels before 3.14), bytes.
    pub available: u64,
    /// MemFree, bytes.
    pub free: u64,
    /// `used / total * 100`.
    pub usage_percent: f64,
    /// Page cache (Cached + SReclaimable), bytes.
    pub cached: u64,
    /// Buffers, bytes.
    pub buffers: u64,
    /// SwapTotal, bytes.
    pub swap_total: u64,
    /// `swap_total - swap_free`, bytes.
    pub swap_used: u64,
    /// SwapFree, bytes.
    pub swap_free: u64,
    /// `swap_used / swap_total * 100`, 0 without swap.
    pub swap_percent: f64,
}

/// One mounted filesystem: space, and the IO of the block device behind it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DiskMetrics {
    /// Device name as in /proc/diskstats (sda1, nvme0n1p2, dm-0), or the mount source.
    #[serde(deserialize_with = "null_default")]
    pub device: String,
    /// Mount point as seen on the host.
    #[serde(deserialize_with = "null_default")]
    pub mount_point: String,
    /// Filesystem type.
    #[serde(deserialize_with = "null_default")]
    pub fs_type: String,
    /// Size, bytes.
    pub total: u64,
    /// Used (size - free), bytes.
    pub used: u64,
    /// Available to unprivileged users, bytes.
    pub available: u64,
    /// `used / (used + available) * 100`, as `df` computes it.
    pub usage_percent: f64,
    /// Bytes read since boot.
    pub read_bytes: u64,
    /// Bytes written since boot.
    pub write_bytes: u64,
    /// Read rate, bytes/s.
    pub read_rate: f64,
    /// Write rate, bytes/s.
    pub write_rate: f64,
    /// Completed reads per second.
    pub read_iops: f64,
    /// Completed writes per second.
    pub write_iops: f64,
    /// Percent of the interval the device was busy (iostat `%util`), 0-100.
    pub io_util: f64,

    /// Extension: total inodes (absent on filesystems without inodes, e.g. btrfs reports 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inodes_total: Option<u64>,
    /// Extension: used inodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inodes_used: Option<u64>,
}

/// One network interface: identity, counters since boot and rates over the interval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkMetrics {
    /// Interface name.
    #[serde(deserialize_with = "null_default")]
    pub interface: String,
    /// First IPv4 address (or IPv6 when there is none); empty when unknown.
    #[serde(deserialize_with = "null_default")]
    pub ip_address: String,
    /// Hardware address.
    #[serde(deserialize_with = "null_default")]
    pub mac_address: String,
    /// Operational state (up, down, unknown, ...).
    #[serde(deserialize_with = "null_default")]
    pub status: String,
    /// Link speed in Mbit/s; -1 when the driver does not know (virtual NICs).
    pub speed: i64,
    /// MTU, bytes.
    pub mtu: u32,
    /// Bytes received since boot.
    pub rx_bytes: u64,
    /// Bytes sent since boot.
    pub tx_bytes: u64,
    /// Packets received since boot.
    pub rx_packets: u64,
    /// Packets sent since boot.
    pub tx_packets: u64,
    /// Receive rate, bytes/s.
    pub rx_rate: f64,
    /// Send rate, bytes/s.
    pub tx_rate: f64,
    /// Receive errors since boot.
    pub rx_errors: u64,
    /// Send errors since boot.
    pub tx_errors: u64,
    /// Received packets dropped since boot.
    pub rx_dropped: u64,
    /// Sent packets dropped since boot.
    pub tx_dropped: u64,

    /// Extension: received packets/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rx_packets_rate: Option<f64>,
    /// Extension: sent packets/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tx_packets_rate: Option<f64>,
    /// Extension: receive errors/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rx_errors_rate: Option<f64>,
    /// Extension: send errors/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tx_errors_rate: Option<f64>,
    /// Extension: received drops/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rx_dropped_rate: Option<f64>,
    /// Extension: sent drops/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tx_dropped_rate: Option<f64>,
}

/// Temperatures in degrees Celsius.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TemperatureMetrics {
    /// CPU temperature (coretemp package, k10temp Tctl, zenpower, cpu/soc thermal zone), 0 if none.
    pub cpu_temp: f64,
    /// The CPU sensor's max or critical threshold, 0 if unknown.
    pub cpu_temp_max: f64,
    /// Every sensor that gave a plausible reading (-40..150 C).
    #[serde(deserialize_with = "null_default")]
    pub sensors: Vec<SensorReading>,
}

/// One temperature sensor reading.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SensorReading {
    /// Chip name (hwmon `name`, or thermal zone `type`).
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    /// Sensor label (e.g. "Core 0", "Package id 0", "Tctl"); `tempN` when the chip gives none.
    #[serde(deserialize_with = "null_default")]
    pub label: String,
    /// Current reading, Celsius.
    pub current: f64,
    /// High threshold, Celsius; 0 if none.
    pub max: f64,
    /// Critical threshold, Celsius; 0 if none.
    pub critical: f64,
}

/// One process, as `top` shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessMetrics {
    /// Process id (thread group id).
    pub pid: u32,
    /// Command name (`comm`).
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    /// Full command line, arguments separated by spaces; empty for kernel threads.
    #[serde(deserialize_with = "null_default")]
    pub cmdline: String,
    /// User name of the real uid, from the host's /etc/passwd (the uid as text if unknown).
    #[serde(deserialize_with = "null_default")]
    pub user: String,
    /// State letter (R, S, D, Z, T, I, ...).
    #[serde(deserialize_with = "null_default")]
    pub status: String,
    /// CPU over the interval as top shows it: 100 = one full core.
    pub cpu_percent: f64,
    /// Resident memory as percent of MemTotal.
    pub mem_percent: f64,
    /// Resident memory, bytes.
    pub mem_rss: u64,
    /// Threads.
    pub threads: u32,
    /// Start time, Unix seconds.
    pub start_time: i64,
}

/// Extension: pressure stall information, `avg10` of /proc/pressure/*, percent 0-100.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PsiMetrics {
    /// Some task waited for CPU.
    pub cpu_some: f64,
    /// Some task waited for memory.
    pub memory_some: f64,
    /// All non-idle tasks waited for memory.
    pub memory_full: f64,
    /// Some task waited for IO.
    pub io_some: f64,
    /// All non-idle tasks waited for IO.
    pub io_full: f64,
}

/// Extension: node totals. Disk figures sum whole disks only (never a disk and its partitions);
/// network figures sum the non-virtual interfaces.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeTotals {
    /// bytes/s read over all whole disks.
    pub disk_read_rate: f64,
    /// bytes/s written over all whole disks.
    pub disk_write_rate: f64,
    /// Reads/s over all whole disks.
    pub disk_read_iops: f64,
    /// Writes/s over all whole disks.
    pub disk_write_iops: f64,
    /// bytes/s received over non-virtual interfaces.
    pub network_rx_rate: f64,
    /// bytes/s sent over non-virtual interfaces.
    pub network_tx_rate: f64,
    /// Extension: packets/s received over non-virtual interfaces; absent before the second
    /// collection and from collectors that do not sum them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_rx_packets_rate: Option<f64>,
    /// Extension: packets/s sent over non-virtual interfaces; absent like
    /// `network_rx_packets_rate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_tx_packets_rate: Option<f64>,
}

/// Extension: TCP connections and sockets in use now (gauges).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TcpMetrics {
    /// Connections in ESTABLISHED or CLOSE-WAIT (`/proc/net/snmp` Tcp CurrEstab).
    pub curr_estab: u64,
    /// TCP sockets allocated, bound or not (`/proc/net/sockstat` TCP alloc).
    pub alloc: u64,
    /// TCP sockets in use (TCP inuse).
    pub in_use: u64,
    /// TCP sockets in TIME_WAIT (TCP tw).
    pub time_wait: u64,
    /// Orphaned TCP sockets: closed by their process, still held by the kernel (TCP orphan).
    pub orphan: u64,
    /// Sockets of every kind in use (`sockets: used`).
    pub sockets_used: u64,
}

/// Extension: kernel tables. Each figure is absent when its file is (conntrack without the
/// `nf_conntrack` module).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SystemMetrics {
    /// Connection tracking entries in use (`nf_conntrack_count`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conntrack_entries: Option<u64>,
    /// Connection tracking table size (`nf_conntrack_max`); new flows are dropped past it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conntrack_limit: Option<u64>,
    /// File handles allocated (`/proc/sys/fs/file-nr`, first field).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filefd_allocated: Option<u64>,
    /// File handle limit, `fs.file-max`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filefd_max: Option<u64>,
    /// Entropy available, bits (`entropy_avail`; 256 on every Linux since 5.18).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entropy_bits: Option<u64>,
    /// Entropy pool size, bits (`poolsize`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entropy_pool_bits: Option<u64>,
}

/// Extension: paging and swapping over the last collection interval, per second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VmstatMetrics {
    /// Page faults (minor and major) per second.
    pub pgfault_rate: f64,
    /// Major page faults (read from disk) per second.
    pub pgmajfault_rate: f64,
    /// Pages swapped in per second.
    pub pswpin_rate: f64,
    /// Pages swapped out per second.
    pub pswpout_rate: f64,
    /// KiB paged in from block devices per second.
    pub pgpgin_rate: f64,
    /// KiB paged out to block devices per second.
    pub pgpgout_rate: f64,
}

/// Extension: network receive softirq trouble over the last collection interval, per second,
/// summed over the CPUs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SoftnetMetrics {
    /// Packets dropped because a CPU's backlog queue was full, per second.
    pub dropped_rate: f64,
    /// Times per second the softirq ran out of budget with packets left.
    pub squeezed_rate: f64,
}

/// Extension: how one part of a collection went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CollectorStatus {
    /// Part name: host, cpu, memory, load, disks, network, temperature, psi, tcp, system,
    /// vmstat, softnet, processes.
    pub name: String,
    /// Whether the part produced its data.
    pub ok: bool,
    /// Wall time the part took, microseconds.
    pub duration_us: u64,
    /// Why it failed (file and line where known); absent when ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl NodeMetricsSnapshot {
    /// The overview form of this snapshot, for lists of many nodes: the same fields and the same
    /// JSON shape, without the per-item lists a node list does not show: no processes, no
    /// per-core CPU, no temperature sensors (the CPU reading stays), no collector reports, and no
    /// per-core frequency, no interfaces when `totals` carries the network rates. Disks stay (the health rule reads
    /// every disk). About a quarter of the full size for a typical node.
    pub fn overview(&self) -> NodeMetricsSnapshot {
        NodeMetricsSnapshot {
            node_name: self.node_name.clone(),
            timestamp: self.timestamp,
            hostname: self.hostname.clone(),
            os: self.os.clone(),
            kernel: self.kernel.clone(),
            uptime: self.uptime,
            cpu: CpuMetrics {
                per_core: Vec::new(),
                per_core_frequency: Vec::new(),
                model: self.cpu.model.clone(),
                ..self.cpu
            },
            memory: self.memory.clone(),
            disks: self.disks.clone(),
            networks: if self.totals.is_some() {
                Vec::new()
            } else {
                self.networks.clone()
            },
            temperature: TemperatureMetrics {
                cpu_temp: self.temperature.cpu_temp,
                cpu_temp_max: self.temperature.cpu_temp_max,
                sensors: Vec::new(),
            },
            processes: Vec::new(),
            psi: self.psi.clone(),
            totals: self.totals.clone(),
            tcp: self.tcp.clone(),
            system: self.system.clone(),
            vmstat: self.vmstat.clone(),
            softnet: self.softnet.clone(),
            collectors: Vec::new(),
            clock_skew_seconds: self.clock_skew_seconds,
        }
    }

    /// The primary disk: the one mounted at `/`, otherwise the first.
    pub fn primary_disk(&self) -> Option<&DiskMetrics> {
        self.disks
            .iter()
            .find(|d| d.mount_point == "/")
            .or_else(|| self.disks.first())
    }
}
