//! [`NodeMetrics`] (v3 `metrics.NodeMetrics`) and its parts, from a [`NodeMetricsSnapshot`].

use atlhyper_model::{
    DiskMetrics, NetworkMetrics, NodeMetricsSnapshot, NodeState, NodeStatus, SensorReading,
    TemperatureMetrics,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Bytes per second in one Mbit/s (the unit of a NIC's `speed` in sysfs).
const BYTES_PER_SEC_PER_MBIT: i64 = 1_000_000 / 8;

/// Hz in one MHz.
const HZ_PER_MHZ: f64 = 1e6;

/// One node's figures at one time, as v3 `metrics.NodeMetrics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeMetrics {
    /// Node name.
    pub node_name: String,
    /// The node's primary IP: the address of its first interface that is up (IPv4 where the
    /// interface has one); empty when no interface has an address.
    #[serde(rename = "nodeIP")]
    pub node_ip: String,
    /// When the collection ran.
    pub timestamp: DateTime<Utc>,
    /// CPU.
    pub cpu: NodeCpu,
    /// Memory and swap.
    pub memory: NodeMemory,
    /// One per reported mount.
    pub disks: Vec<NodeDisk>,
    /// One per reported interface.
    pub networks: Vec<NodeNetwork>,
    /// CPU temperature and every sensor.
    pub temperature: NodeTemperature,
    /// Pressure stall information (zero without `/proc/pressure`).
    pub psi: NodePsi,
    /// TCP connections and sockets.
    pub tcp: NodeTcp,
    /// Kernel tables.
    pub system: NodeSystem,
    /// Paging and swapping rates.
    pub vmstat: NodeVmstat,
    /// Network receive softirq trouble.
    pub softnet: NodeSoftnet,
    /// Kernel release; left out when unknown.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kernel: String,
    /// Seconds since boot; left out when unknown.
    #[serde(skip_serializing_if = "is_zero")]
    pub uptime: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// v3 `NodeCPU`: percent 0-100 over the last interval, load, logical CPU count, frequency.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeCpu {
    /// Busy percent.
    pub usage_pct: f64,
    /// User percent.
    pub user_pct: f64,
    /// System percent.
    pub system_pct: f64,
    /// I/O wait percent.
    pub iowait_pct: f64,
    /// 1-minute load average.
    pub load1: f64,
    /// 5-minute load average.
    pub load5: f64,
    /// 15-minute load average.
    pub load15: f64,
    /// Logical CPUs (v3 counts the `cpu` labels of `node_cpu_seconds_total`).
    pub cores: u32,
    /// CPU frequency of each logical CPU, Hz, in `cpuN` order; one value, the mean over the
    /// CPUs, from a collector that reports no per-CPU frequency; empty (and left out) when
    /// unknown.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub freq_hz: Vec<f64>,
}

/// v3 `NodeMemory`, bytes and percent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeMemory {
    /// MemTotal.
    pub total_bytes: u64,
    /// MemAvailable.
    pub available_bytes: u64,
    /// MemFree.
    pub free_bytes: u64,
    /// Page cache.
    pub cached_bytes: u64,
    /// Buffers.
    pub buffers_bytes: u64,
    /// Used percent (`1 - available / total`).
    pub usage_pct: f64,
    /// SwapTotal.
    pub swap_total_bytes: u64,
    /// SwapFree.
    pub swap_free_bytes: u64,
    /// Swap used percent.
    pub swap_usage_pct: f64,
}

/// v3 `NodeDisk`: one mount, its space and its device's IO.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeDisk {
    /// Device name.
    pub device: String,
    /// Mount point.
    pub mount_point: String,
    /// Filesystem type.
    pub fs_type: String,
    /// Size, bytes.
    pub total_bytes: u64,
    /// Available to unprivileged users, bytes.
    pub avail_bytes: u64,
    /// Used percent, as `df`.
    pub usage_pct: f64,
    /// Read, bytes/s.
    pub read_bytes_per_sec: f64,
    /// Written, bytes/s.
    pub write_bytes_per_sec: f64,
    /// Completed reads per second.
    #[serde(rename = "readIOPS")]
    pub read_iops: f64,
    /// Completed writes per second.
    #[serde(rename = "writeIOPS")]
    pub write_iops: f64,
    /// Busy percent of the interval (iostat `%util`).
    pub io_util_pct: f64,
}

/// v3 `NodeNetwork`: one interface, its state and per-second rates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeNetwork {
    /// Interface name.
    pub interface: String,
    /// Operational state is `up` (node_exporter's `node_network_up`).
    pub up: bool,
    /// Link speed, bytes per second; 0 when the driver does not know (virtual NICs).
    pub speed_bps: i64,
    /// MTU, bytes.
    pub mtu: u32,
    /// Received, bytes/s.
    pub rx_bytes_per_sec: f64,
    /// Sent, bytes/s.
    pub tx_bytes_per_sec: f64,
    /// Received packets/s.
    pub rx_pkt_per_sec: f64,
    /// Sent packets/s.
    pub tx_pkt_per_sec: f64,
    /// Receive errors/s.
    pub rx_err_per_sec: f64,
    /// Send errors/s.
    pub tx_err_per_sec: f64,
    /// Received packets dropped/s.
    pub rx_drop_per_sec: f64,
    /// Sent packets dropped/s.
    pub tx_drop_per_sec: f64,
}

/// v3 `NodeTemperature`, Celsius.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeTemperature {
    /// The CPU reading; 0 without a CPU sensor.
    pub cpu_temp_c: f64,
    /// The CPU sensor's high threshold; 0 when it has none.
    pub cpu_max_c: f64,
    /// The CPU sensor's critical threshold; 0 when it has none.
    pub cpu_crit_c: f64,
    /// Every sensor.
    pub sensors: Vec<TempSensor>,
}

/// v3 `TempSensor`, Celsius; thresholds 0 when the sensor has none.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TempSensor {
    /// Chip (hwmon `name`, or the thermal zone's type).
    pub chip: String,
    /// Sensor label.
    pub sensor: String,
    /// Reading.
    pub current_c: f64,
    /// High threshold.
    pub max_c: f64,
    /// Critical threshold.
    pub crit_c: f64,
}

/// v3 `NodePSI`: the share of time tasks stalled, percent (`avg10`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodePsi {
    /// Some task waited for CPU.
    pub cpu_some_pct: f64,
    /// Some task waited for memory.
    pub mem_some_pct: f64,
    /// All non-idle tasks waited for memory.
    pub mem_full_pct: f64,
    /// Some task waited for IO.
    pub io_some_pct: f64,
    /// All non-idle tasks waited for IO.
    pub io_full_pct: f64,
}

/// v3 `NodeTCP`: gauges.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeTcp {
    /// Connections in ESTABLISHED or CLOSE-WAIT.
    pub curr_estab: u64,
    /// TCP sockets allocated.
    pub alloc: u64,
    /// TCP sockets in use.
    pub in_use: u64,
    /// TCP sockets in TIME_WAIT.
    pub time_wait: u64,
    /// Sockets of every kind in use.
    pub sockets_used: u64,
}

/// v3 `NodeSystem`: kernel tables.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeSystem {
    /// Connection tracking entries (0 without the `nf_conntrack` module).
    pub conntrack_entries: u64,
    /// Connection tracking table size.
    pub conntrack_limit: u64,
    /// File handles allocated.
    pub filefd_allocated: u64,
    /// File handle limit.
    pub filefd_max: u64,
    /// Entropy available, bits.
    pub entropy_bits: u64,
}

/// v3 `NodeVMStat`: per second over the last interval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeVmstat {
    /// Page faults.
    pub pg_fault_per_sec: f64,
    /// Major page faults.
    pub pg_maj_fault_per_sec: f64,
    /// Pages swapped in.
    pub pswp_in_per_sec: f64,
    /// Pages swapped out.
    pub pswp_out_per_sec: f64,
}

/// v3 `NodeSoftnet`: per second over the last interval, summed over the CPUs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeSoftnet {
    /// Packets dropped on a full backlog.
    pub dropped_per_sec: f64,
    /// Softirq runs out of budget with work left.
    pub squeezed_per_sec: f64,
}

/// Extension (not in v3): a node's liveness as every atlhyper-rs view counts it, camelCase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeLiveness {
    /// `online` or `offline`.
    pub state: NodeState,
    /// When its last report arrived.
    pub last_seen: DateTime<Utc>,
}

impl From<&NodeStatus> for NodeLiveness {
    fn from(s: &NodeStatus) -> Self {
        Self {
            state: s.state,
            last_seen: s.last_seen,
        }
    }
}

impl NodeMetrics {
    /// The v3 form of a snapshot.
    pub fn from_snapshot(s: &NodeMetricsSnapshot) -> Self {
        let cpu = &s.cpu;
        let mem = &s.memory;
        let psi = s.psi.clone().unwrap_or_default();
        let tcp = s.tcp.clone().unwrap_or_default();
        let system = s.system.clone().unwrap_or_default();
        let vmstat = s.vmstat.clone().unwrap_or_default();
        let softnet = s.softnet.clone().unwrap_or_default();
        Self {
            node_name: s.node_name.clone(),
            node_ip: primary_ip(&s.networks).to_owned(),
            timestamp: s.timestamp,
            cpu: NodeCpu {
                usage_pct: cpu.usage_percent,
                user_pct: cpu.user_percent,
                system_pct: cpu.system_percent,
                iowait_pct: cpu.iowait_percent,
                load1: cpu.load_1,
                load5: cpu.load_5,
                load15: cpu.load_15,
                cores: logical_cpus(s),
                freq_hz: if !cpu.per_core_frequency.is_empty() {
                    cpu.per_core_frequency
                        .iter()
                        .map(|mhz| mhz * HZ_PER_MHZ)
                        .collect()
                } else if cpu.frequency > 0.0 {
                    vec![cpu.frequency * HZ_PER_MHZ]
                } else {
                    Vec::new()
                },
            },
            memory: NodeMemory {
                total_bytes: mem.total,
                available_bytes: mem.available,
                free_bytes: mem.free,
                cached_bytes: mem.cached,
                buffers_bytes: mem.buffers,
                usage_pct: mem.usage_percent,
                swap_total_bytes: mem.swap_total,
                swap_free_bytes: mem.swap_free,
                swap_usage_pct: mem.swap_percent,
            },
            disks: s.disks.iter().map(disk).collect(),
            networks: s.networks.iter().map(network).collect(),
            temperature: temperature(&s.temperature),
            psi: NodePsi {
                cpu_some_pct: psi.cpu_some,
                mem_some_pct: psi.memory_some,
                mem_full_pct: psi.memory_full,
                io_some_pct: psi.io_some,
                io_full_pct: psi.io_full,
            },
            tcp: NodeTcp {
                curr_estab: tcp.curr_estab,
                alloc: tcp.alloc,
                in_use: tcp.in_use,
                time_wait: tcp.time_wait,
                sockets_used: tcp.sockets_used,
            },
            system: NodeSystem {
                conntrack_entries: system.conntrack_entries.unwrap_or(0),
                conntrack_limit: system.conntrack_limit.unwrap_or(0),
                filefd_allocated: system.filefd_allocated.unwrap_or(0),
                filefd_max: system.filefd_max.unwrap_or(0),
                entropy_bits: system.entropy_bits.unwrap_or(0),
            },
            vmstat: NodeVmstat {
                pg_fault_per_sec: vmstat.pgfault_rate,
                pg_maj_fault_per_sec: vmstat.pgmajfault_rate,
                pswp_in_per_sec: vmstat.pswpin_rate,
                pswp_out_per_sec: vmstat.pswpout_rate,
            },
            softnet: NodeSoftnet {
                dropped_per_sec: softnet.dropped_rate,
                squeezed_per_sec: softnet.squeezed_rate,
            },
            kernel: s.kernel.clone(),
            uptime: s.uptime,
        }
    }
}

/// Logical CPUs: the collector's thread count, else its core count, else the per-CPU list.
fn logical_cpus(s: &NodeMetricsSnapshot) -> u32 {
    [s.cpu.threads, s.cpu.cores]
        .into_iter()
        .find(|n| *n > 0)
        .unwrap_or_else(|| u32::try_from(s.cpu.per_core.len()).unwrap_or(u32::MAX))
}

/// The address of the first interface that is up and has one, else of the first that has one.
fn primary_ip(networks: &[NetworkMetrics]) -> &str {
    let addressed = || networks.iter().filter(|n| !n.ip_address.is_empty());
    addressed()
        .find(|n| is_up(n))
        .or_else(|| addressed().next())
        .map_or("", |n| n.ip_address.as_str())
}

fn is_up(n: &NetworkMetrics) -> bool {
    n.status.eq_ignore_ascii_case("up")
}

fn disk(d: &DiskMetrics) -> NodeDisk {
    NodeDisk {
        device: d.device.clone(),
        mount_point: d.mount_point.clone(),
        fs_type: d.fs_type.clone(),
        total_bytes: d.total,
        avail_bytes: d.available,
        usage_pct: d.usage_percent,
        read_bytes_per_sec: d.read_rate,
        write_bytes_per_sec: d.write_rate,
        read_iops: d.read_iops,
        write_iops: d.write_iops,
        io_util_pct: d.io_util,
    }
}

fn network(n: &NetworkMetrics) -> NodeNetwork {
    // Rates absent from a v2 collector read 0, as v3 reads a counter it has no rate of yet.
    let rate = |r: Option<f64>| r.unwrap_or(0.0);
    NodeNetwork {
        interface: n.interface.clone(),
        up: is_up(n),
        // sysfs says -1 when the driver does not know; v3's node_exporter leaves the series out.
        speed_bps: n.speed.max(0).saturating_mul(BYTES_PER_SEC_PER_MBIT),
        mtu: n.mtu,
        rx_bytes_per_sec: n.rx_rate,
        tx_bytes_per_sec: n.tx_rate,
        rx_pkt_per_sec: rate(n.rx_packets_rate),
        tx_pkt_per_sec: rate(n.tx_packets_rate),
        rx_err_per_sec: rate(n.rx_errors_rate),
        tx_err_per_sec: rate(n.tx_errors_rate),
        rx_drop_per_sec: rate(n.rx_dropped_rate),
        tx_drop_per_sec: rate(n.tx_dropped_rate),
    }
}

fn temperature(t: &TemperatureMetrics) -> NodeTemperature {
    // The collector copies the chosen CPU sensor's reading into `cpu_temp`: that sensor gives
    // the thresholds. Among equal readings, one with a critical threshold wins.
    let cpu_sensor = t
        .sensors
        .iter()
        .filter(|s| t.cpu_temp > 0.0 && s.current == t.cpu_temp)
        .max_by(|a, b| (a.critical > 0.0).cmp(&(b.critical > 0.0)));
    let (cpu_max_c, cpu_crit_c) = match cpu_sensor {
        Some(s) => (s.max, s.critical),
        // No sensor list (v2 collectors): `cpu_temp_max` is the threshold they knew.
        None => (t.cpu_temp_max, 0.0),
    };
    NodeTemperature {
        cpu_temp_c: t.cpu_temp,
        cpu_max_c,
        cpu_crit_c,
        sensors: t.sensors.iter().map(sensor).collect(),
    }
}

fn sensor(s: &SensorReading) -> TempSensor {
    TempSensor {
        chip: s.name.clone(),
        sensor: s.label.clone(),
        current_c: s.current,
        max_c: s.max,
        crit_c: s.critical,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nic(name: &str, status: &str, ip: &str, speed: i64) -> NetworkMetrics {
        NetworkMetrics {
            interface: name.into(),
            status: status.into(),
            ip_address: ip.into(),
            speed,
            ..Default::default()
        }
    }

    #[test]
    fn primary_ip_is_the_first_up_interface_with_an_address() {
        let nets = [
            nic("eth0", "down", "10.0.0.1", 1000),
            nic("eth1", "up", "", 1000),
            nic("eth2", "UP", "10.0.0.3", 1000),
        ];
        assert_eq!(primary_ip(&nets), "10.0.0.3");
        assert_eq!(
            primary_ip(&nets[..2]),
            "10.0.0.1",
            "none up: the first with one"
        );
        assert_eq!(primary_ip(&[]), "");
    }

    #[test]
    fn speed_is_bytes_per_second_and_unknown_is_zero() {
        assert_eq!(network(&nic("e", "up", "", 1000)).speed_bps, 125_000_000);
        assert_eq!(
            network(&nic("e", "up", "", 25_000)).speed_bps,
            3_125_000_000
        );
        assert_eq!(network(&nic("e", "up", "", -1)).speed_bps, 0);
        assert_eq!(network(&nic("e", "up", "", i64::MAX)).speed_bps, i64::MAX);
        assert!(network(&nic("e", "up", "", 1)).up);
        assert!(!network(&nic("e", "unknown", "", 1)).up);
        assert!(!network(&nic("e", "down", "", 1)).up);
    }

    #[test]
    fn errors_and_drops_are_the_rates_not_the_counters() {
        let n = NetworkMetrics {
            rx_errors: 1_000_000,
            tx_dropped: 5_000,
            rx_errors_rate: Some(0.5),
            tx_dropped_rate: Some(2.0),
            ..Default::default()
        };
        let v3 = network(&n);
        assert_eq!(v3.rx_err_per_sec, 0.5);
        assert_eq!(v3.tx_drop_per_sec, 2.0);
        assert_eq!(v3.tx_err_per_sec, 0.0, "no rate yet: 0, never the counter");
    }

    #[test]
    fn critical_temperature_comes_from_the_cpu_sensor() {
        let reading = |label: &str, current: f64, max: f64, critical: f64| SensorReading {
            name: "coretemp".into(),
            label: label.into(),
            current,
            max,
            critical,
        };
        let t = TemperatureMetrics {
            cpu_temp: 55.0,
            cpu_temp_max: 80.0,
            sensors: vec![
                reading("Core 0", 50.0, 80.0, 95.0),
                reading("Package id 0", 55.0, 82.0, 100.0),
            ],
        };
        let v3 = temperature(&t);
        assert_eq!(
            (v3.cpu_temp_c, v3.cpu_max_c, v3.cpu_crit_c),
            (55.0, 82.0, 100.0)
        );
        assert_eq!(v3.sensors[0].crit_c, 95.0);
        assert_eq!(v3.sensors[1].sensor, "Package id 0");
        // A v2 collector: no sensor list, its threshold kept as the max.
        let v2 = TemperatureMetrics {
            cpu_temp: 48.0,
            cpu_temp_max: 90.0,
            sensors: Vec::new(),
        };
        let v3 = temperature(&v2);
        assert_eq!((v3.cpu_max_c, v3.cpu_crit_c), (90.0, 0.0));
        // No CPU reading: no thresholds taken from a sensor that happens to read 0.
        let none = TemperatureMetrics {
            cpu_temp: 0.0,
            cpu_temp_max: 0.0,
            sensors: vec![reading("x", 0.0, 70.0, 90.0)],
        };
        assert_eq!(temperature(&none).cpu_crit_c, 0.0);
    }

    #[test]
    fn frequency_is_hz_and_cores_are_logical_cpus() {
        let mut s = NodeMetricsSnapshot::default();
        assert!(NodeMetrics::from_snapshot(&s).cpu.freq_hz.is_empty());
        assert_eq!(NodeMetrics::from_snapshot(&s).cpu.cores, 0);
        s.cpu.frequency = 3400.5;
        s.cpu.cores = 4;
        s.cpu.threads = 8;
        let v3 = NodeMetrics::from_snapshot(&s);
        assert_eq!(v3.cpu.freq_hz, vec![3_400_500_000.0]);
        // Per CPU where the collector reports it; the mean only without it.
        s.cpu.per_core_frequency = vec![3400.0, 1200.5];
        assert_eq!(
            NodeMetrics::from_snapshot(&s).cpu.freq_hz,
            vec![3_400_000_000.0, 1_200_500_000.0]
        );
        s.cpu.per_core_frequency.clear();
        assert_eq!(v3.cpu.cores, 8);
        s.cpu.threads = 0;
        assert_eq!(NodeMetrics::from_snapshot(&s).cpu.cores, 4);
        s.cpu.cores = 0;
        s.cpu.per_core = vec![1.0; 3];
        assert_eq!(NodeMetrics::from_snapshot(&s).cpu.cores, 3);
    }

    #[test]
    fn absent_parts_are_zero_and_unknown_kernel_and_uptime_are_left_out() {
        let v = serde_json::to_value(NodeMetrics::from_snapshot(&NodeMetricsSnapshot::default()))
            .unwrap();
        for part in ["psi", "tcp", "system", "vmstat", "softnet"] {
            let fields = v[part].as_object().unwrap();
            assert!(!fields.is_empty(), "{part}");
            assert!(
                fields.values().all(|f| f.as_f64() == Some(0.0)),
                "{part}: {v}"
            );
        }
        assert!(v.get("kernel").is_none() && v.get("uptime").is_none());
        assert!(v["cpu"].get("freqHz").is_none());
        assert_eq!(v["disks"], serde_json::json!([]));
    }
}
