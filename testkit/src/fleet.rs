//! Simulated nodes and clusters for load runs: every node has a shape a real Kubernetes worker
//! has (4 to 64 cores, two or three disks, one to three interfaces, a sensor per physical core
//! and per NVMe drive, the top processes), and its figures move between samples the way a real
//! node's do: utilisation wanders around a level of its own, counters grow by rate times
//! elapsed time, space fills slowly, temperatures follow the load.
//!
//! The shape of a node and the path of its figures follow from a seed, so a run is repeatable.
//!
//! ```
//! use chrono::{Duration, Utc};
//! let mut cluster = atlhyper_testkit::SimulatedCluster::new("fleet-000", 3, 7);
//! let t0 = Utc::now();
//! let first = cluster.snapshot(t0);
//! let second = cluster.snapshot(t0 + Duration::seconds(10));
//! assert_eq!(second.seq, first.seq + 1);
//! let (a, b) = (&first.node_metrics["node-000"], &second.node_metrics["node-000"]);
//! assert!(b.networks[0].rx_bytes >= a.networks[0].rx_bytes);
//! ```

use std::collections::BTreeMap;

use atlhyper_model::{
    ClusterSnapshot, CollectorStatus, CpuMetrics, DiskMetrics, MemoryMetrics, NetworkMetrics,
    NodeMetricsSnapshot, NodeState, NodeStatus, NodeTotals, ProcessMetrics, PsiMetrics,
    SensorReading, SoftnetMetrics, SystemMetrics, TcpMetrics, TemperatureMetrics, VmstatMetrics,
};
use chrono::{DateTime, Utc};

const GIB: u64 = 1 << 30;

/// The collectors a real daemon reports on, in its order.
const COLLECTORS: [&str; 13] = [
    "host",
    "cpu",
    "memory",
    "load",
    "disks",
    "network",
    "temperature",
    "psi",
    "tcp",
    "system",
    "vmstat",
    "softnet",
    "processes",
];

/// Processes of a worker node: name, user, command line, resident MiB, threads.
const PROCESSES: [(&str, &str, &str, u64, u32); 16] = [
    (
        "kubelet",
        "root",
        "/usr/bin/kubelet --bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf \
         --kubeconfig=/etc/kubernetes/kubelet.conf --config=/var/lib/kubelet/config.yaml \
         --container-runtime-endpoint=unix:///run/containerd/containerd.sock",
        180,
        24,
    ),
    ("containerd", "root", "/usr/bin/containerd", 90, 18),
    (
        "containerd-shim",
        "root",
        "/usr/bin/containerd-shim-runc-v2 -namespace k8s.io -id \
         4f1c2a9e8b7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928170615e4d3 -address \
         /run/containerd/containerd.sock",
        12,
        11,
    ),
    (
        "kube-proxy",
        "root",
        "/usr/local/bin/kube-proxy --config=/var/lib/kube-proxy/config.conf \
         --hostname-override=$(NODE_NAME)",
        45,
        9,
    ),
    ("calico-node", "root", "calico-node -felix", 110, 20),
    (
        "java",
        "1000",
        "java -XX:+UseG1GC -XX:MaxRAMPercentage=75.0 -Djava.security.egd=file:/dev/./urandom \
         -jar /app/orders-service.jar --spring.profiles.active=prod",
        2048,
        96,
    ),
    ("postgres", "999", "postgres: checkpointer", 160, 1),
    ("node", "1000", "node /usr/src/app/dist/server.js", 310, 11),
    (
        "python3",
        "1000",
        "/usr/local/bin/python3 /usr/local/bin/gunicorn app.wsgi:application --workers 4 \
         --bind 0.0.0.0:8000",
        220,
        5,
    ),
    ("nginx", "101", "nginx: worker process", 24, 1),
    (
        "coredns",
        "65532",
        "/coredns -conf /etc/coredns/Corefile",
        40,
        14,
    ),
    (
        "prometheus",
        "65534",
        "/bin/prometheus --config.file=/etc/prometheus/config_out/prometheus.env.yaml \
         --storage.tsdb.path=/prometheus --storage.tsdb.retention.time=24h",
        1400,
        30,
    ),
    (
        "fluent-bit",
        "root",
        "/fluent-bit/bin/fluent-bit -c /fluent-bit/etc/fluent-bit.conf",
        35,
        8,
    ),
    (
        "atlhyper-metric",
        "root",
        "/usr/local/bin/atlhyper-metrics",
        14,
        3,
    ),
    ("redis-server", "999", "redis-server *:6379", 96, 6),
    (
        "systemd-journal",
        "root",
        "/lib/systemd/systemd-journald",
        60,
        1,
    ),
];

/// A figure that wanders around `level` within `lo..=hi`: each step moves it a little towards
/// the level and by a random amount scaled by `noise`.
#[derive(Debug, Clone, Copy)]
struct Wander {
    value: f64,
    level: f64,
    noise: f64,
    lo: f64,
    hi: f64,
}

impl Wander {
    fn new(level: f64, noise: f64, lo: f64, hi: f64) -> Self {
        Self {
            value: level,
            level,
            noise,
            lo,
            hi,
        }
    }

    fn step(&mut self, rng: &mut fastrand::Rng) -> f64 {
        let pull = (self.level - self.value) * 0.2;
        let kick = (rng.f64() * 2.0 - 1.0) * self.noise;
        self.value = (self.value + pull + kick).clamp(self.lo, self.hi);
        self.value
    }
}

#[derive(Debug, Clone)]
struct SimDisk {
    device: String,
    mount_point: &'static str,
    total: u64,
    used: f64,
    inodes_total: u64,
    inodes_used: f64,
    read_bytes: u64,
    write_bytes: u64,
    read_rate: Wander,
    write_rate: Wander,
    util: Wander,
}

#[derive(Debug, Clone)]
struct SimInterface {
    name: String,
    ip: String,
    mac: String,
    speed: i64,
    mtu: u32,
    rx_bytes: u64,
    tx_bytes: u64,
    rx_packets: u64,
    tx_packets: u64,
    rx_errors: u64,
    rx_dropped: u64,
    rx_rate: Wander,
    tx_rate: Wander,
}

/// One simulated node: its shape, and the state its figures move from.
#[derive(Debug, Clone)]
pub struct SimulatedNode {
    name: String,
    rng: fastrand::Rng,
    cores: u32,
    physical_cores: u32,
    memory_total: u64,
    /// Seconds the node had been up at its first sample.
    uptime_at_first: i64,
    /// Boot time, fixed by the first sample.
    boot: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
    cpu: Wander,
    core_spread: Vec<f64>,
    memory: Wander,
    disks: Vec<SimDisk>,
    interfaces: Vec<SimInterface>,
    process_cpu: Vec<f64>,
    tcp_estab: Wander,
}

impl SimulatedNode {
    /// A node named `name` whose shape and figures follow from `seed`.
    pub fn new(name: &str, seed: u64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let cores = [4u32, 8, 8, 16, 16, 32, 64][rng.usize(..7)];
        let memory_total = u64::from(cores) * GIB * [2u64, 4, 4, 8][rng.usize(..4)];
        let busy = 5.0 + rng.f64() * 70.0;
        let disks = disk_layout(&mut rng);
        let interfaces = interface_layout(&mut rng, seed);
        let uptime_at_first = rng.i64(3_600..60 * 86_400);
        Self {
            name: name.to_owned(),
            cores,
            physical_cores: (cores / 2).max(1),
            memory_total,
            uptime_at_first,
            boot: None,
            last: None,
            cpu: Wander::new(busy, 6.0, 0.5, 99.5),
            core_spread: (0..cores).map(|_| rng.f64() * 20.0 - 10.0).collect(),
            memory: Wander::new(30.0 + rng.f64() * 55.0, 1.5, 5.0, 97.0),
            disks,
            interfaces,
            process_cpu: (0..PROCESSES.len()).map(|_| rng.f64()).collect(),
            tcp_estab: Wander::new(50.0 + rng.f64() * 2000.0, 40.0, 0.0, 60_000.0),
            rng,
        }
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node's snapshot at `at`: figures moved on from the previous sample, counters grown
    /// by their rates over the time since it (none before the first).
    pub fn sample(&mut self, at: DateTime<Utc>) -> NodeMetricsSnapshot {
        let elapsed = self
            .last
            .map_or(0.0, |last| (at - last).as_seconds_f64().max(0.0));
        self.last = Some(at);
        let rng = &mut self.rng;

        let usage = self.cpu.step(rng);
        let per_core: Vec<f64> = self
            .core_spread
            .iter()
            .map(|spread| (usage + spread + (rng.f64() * 8.0 - 4.0)).clamp(0.0, 100.0))
            .collect();
        let iowait = rng.f64() * 2.0;
        let steal = rng.f64() * 0.5;
        let system = usage * 0.25;
        let cpu = CpuMetrics {
            usage_percent: usage,
            user_percent: usage * 0.7,
            system_percent: system,
            idle_percent: (100.0 - usage - iowait).max(0.0),
            iowait_percent: iowait,
            per_core,
            load_1: f64::from(self.cores) * usage / 100.0 * (0.8 + rng.f64() * 0.4),
            load_5: f64::from(self.cores) * usage / 100.0,
            load_15: f64::from(self.cores) * usage / 100.0 * 0.95,
            model: "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz".to_owned(),
            cores: self.physical_cores,
            threads: self.cores,
            frequency: 2900.0,
            per_core_frequency: (0..self.cores)
                .map(|_| 2000.0 + (rng.f64() * 1500.0).round())
                .collect(),
            steal_percent: Some(steal),
            nice_percent: Some(0.0),
            irq_percent: Some(0.0),
            softirq_percent: Some(usage * 0.02),
        };

        let mem_pct = self.memory.step(rng);
        let used = (self.memory_total as f64 * mem_pct / 100.0) as u64;
        let cached = (self.memory_total - used) / 2;
        let memory = MemoryMetrics {
            total: self.memory_total,
            used,
            available: self.memory_total - used,
            free: (self.memory_total - used) / 3,
            usage_percent: mem_pct,
            cached,
            buffers: self.memory_total / 200,
            swap_total: 0,
            swap_used: 0,
            swap_free: 0,
            swap_percent: 0.0,
        };

        let mut disks = Vec::with_capacity(self.disks.len());
        for d in &mut self.disks {
            let read_rate = d.read_rate.step(rng);
            let write_rate = d.write_rate.step(rng);
            let io_util = d.util.step(rng);
            d.read_bytes += (read_rate * elapsed) as u64;
            d.write_bytes += (write_rate * elapsed) as u64;
            // Space fills with writes and is freed now and then (log rotation, image GC).
            d.used = (d.used + write_rate * elapsed * 0.05).min(d.total as f64 * 0.95);
            if rng.f64() < 0.01 {
                d.used *= 0.9;
            }
            d.inodes_used = (d.inodes_used + elapsed * 0.2).min(d.inodes_total as f64);
            let used = d.used as u64;
            disks.push(DiskMetrics {
                device: d.device.clone(),
                mount_point: d.mount_point.to_owned(),
                fs_type: "ext4".to_owned(),
                total: d.total,
                used,
                available: d.total - used,
                usage_percent: d.used / d.total as f64 * 100.0,
                read_bytes: d.read_bytes,
                write_bytes: d.write_bytes,
                read_rate,
                write_rate,
                read_iops: read_rate / 16_384.0,
                write_iops: write_rate / 8_192.0,
                io_util,
                inodes_total: Some(d.inodes_total),
                inodes_used: Some(d.inodes_used as u64),
            });
        }

        let mut networks = Vec::with_capacity(self.interfaces.len());
        for i in &mut self.interfaces {
            let rx_rate = i.rx_rate.step(rng);
            let tx_rate = i.tx_rate.step(rng);
            let rx_pkt_rate = rx_rate / 900.0;
            let tx_pkt_rate = tx_rate / 700.0;
            i.rx_bytes += (rx_rate * elapsed) as u64;
            i.tx_bytes += (tx_rate * elapsed) as u64;
            i.rx_packets += (rx_pkt_rate * elapsed) as u64;
            i.tx_packets += (tx_pkt_rate * elapsed) as u64;
            let new_drops = u64::from(rng.f64() < 0.02);
            i.rx_dropped += new_drops;
            let per_second = |n: u64| {
                if elapsed > 0.0 {
                    n as f64 / elapsed
                } else {
                    0.0
                }
            };
            networks.push(NetworkMetrics {
                interface: i.name.clone(),
                ip_address: i.ip.clone(),
                mac_address: i.mac.clone(),
                status: "up".to_owned(),
                speed: i.speed,
                mtu: i.mtu,
                rx_bytes: i.rx_bytes,
                tx_bytes: i.tx_bytes,
                rx_packets: i.rx_packets,
                tx_packets: i.tx_packets,
                rx_rate,
                tx_rate,
                rx_errors: i.rx_errors,
                tx_errors: 0,
                rx_dropped: i.rx_dropped,
                tx_dropped: 0,
                rx_packets_rate: Some(rx_pkt_rate),
                tx_packets_rate: Some(tx_pkt_rate),
                rx_errors_rate: Some(0.0),
                tx_errors_rate: Some(0.0),
                rx_dropped_rate: Some(per_second(new_drops)),
                tx_dropped_rate: Some(0.0),
            });
        }

        let package = 38.0 + usage * 0.45 + rng.f64() * 2.0;
        let mut sensors: Vec<SensorReading> = vec![SensorReading {
            name: "coretemp".to_owned(),
            label: "Package id 0".to_owned(),
            current: package,
            max: 85.0,
            critical: 105.0,
        }];
        sensors.extend((0..self.physical_cores.min(32)).map(|c| SensorReading {
            name: "coretemp".to_owned(),
            label: format!("Core {c}"),
            current: package - 3.0 + rng.f64() * 4.0,
            max: 85.0,
            critical: 105.0,
        }));
        sensors.extend(
            self.disks
                .iter()
                .filter(|d| d.device.starts_with("nvme"))
                .map(|_| SensorReading {
                    name: "nvme".to_owned(),
                    label: "Composite".to_owned(),
                    current: 35.0 + rng.f64() * 10.0,
                    max: 80.0,
                    critical: 85.0,
                }),
        );
        let temperature = TemperatureMetrics {
            cpu_temp: package,
            cpu_temp_max: 85.0,
            sensors,
        };

        let boot = *self
            .boot
            .get_or_insert(at - chrono::Duration::seconds(self.uptime_at_first));
        let uptime = (at - boot).num_seconds().max(0) as u64;
        let boot_secs = boot.timestamp();
        let processes: Vec<ProcessMetrics> = PROCESSES
            .iter()
            .zip(&mut self.process_cpu)
            .enumerate()
            .map(|(k, ((name, user, cmdline, rss_mib, threads), share))| {
                *share = (*share + rng.f64() * 0.1 - 0.05).clamp(0.0, 1.0);
                let rss = rss_mib << 20;
                ProcessMetrics {
                    pid: 900 + 173 * k as u32,
                    name: (*name).to_owned(),
                    cmdline: (*cmdline).to_owned(),
                    user: (*user).to_owned(),
                    status: if *share > 0.8 { "R" } else { "S" }.to_owned(),
                    cpu_percent: *share * usage * f64::from(self.cores) / 100.0 * 20.0,
                    mem_percent: rss as f64 / self.memory_total as f64 * 100.0,
                    mem_rss: rss,
                    threads: *threads,
                    start_time: boot_secs + 30 + 11 * k as i64,
                }
            })
            .collect();

        let tcp_estab = self.tcp_estab.step(rng) as u64;
        let disk_read_rate = disks.iter().map(|d| d.read_rate).sum();
        let disk_write_rate = disks.iter().map(|d| d.write_rate).sum();
        let disk_read_iops = disks.iter().map(|d| d.read_iops).sum();
        let disk_write_iops = disks.iter().map(|d| d.write_iops).sum();
        let network_rx_rate = networks.iter().map(|n| n.rx_rate).sum();
        let network_tx_rate = networks.iter().map(|n| n.tx_rate).sum();
        let rx_pps = networks.iter().filter_map(|n| n.rx_packets_rate).sum();
        let tx_pps = networks.iter().filter_map(|n| n.tx_packets_rate).sum();
        NodeMetricsSnapshot {
            node_name: self.name.clone(),
            timestamp: at,
            hostname: self.name.clone(),
            os: "Ubuntu 22.04.4 LTS".to_owned(),
            kernel: "5.15.0-1057-aws".to_owned(),
            uptime,
            cpu,
            memory,
            disks,
            networks,
            temperature,
            processes,
            psi: Some(PsiMetrics {
                cpu_some: usage * 0.1,
                memory_some: rng.f64() * 0.5,
                memory_full: 0.0,
                io_some: rng.f64() * 2.0,
                io_full: rng.f64() * 0.5,
            }),
            totals: Some(NodeTotals {
                disk_read_rate,
                disk_write_rate,
                disk_read_iops,
                disk_write_iops,
                network_rx_rate,
                network_tx_rate,
                network_rx_packets_rate: Some(rx_pps),
                network_tx_packets_rate: Some(tx_pps),
            }),
            tcp: Some(TcpMetrics {
                curr_estab: tcp_estab,
                alloc: tcp_estab + 40,
                in_use: tcp_estab + 30,
                time_wait: tcp_estab / 4,
                orphan: 0,
                sockets_used: tcp_estab * 2 + 200,
            }),
            system: Some(SystemMetrics {
                conntrack_entries: Some(tcp_estab * 3),
                conntrack_limit: Some(262_144),
                filefd_allocated: Some(8_000 + tcp_estab * 2),
                filefd_max: Some(9_223_372_036_854_775_807),
                entropy_bits: Some(256),
                entropy_pool_bits: Some(256),
            }),
            vmstat: Some(VmstatMetrics {
                pgfault_rate: 2_000.0 + usage * 300.0,
                pgmajfault_rate: rng.f64() * 3.0,
                pswpin_rate: 0.0,
                pswpout_rate: 0.0,
                pgpgin_rate: disk_read_rate / 1024.0,
                pgpgout_rate: disk_write_rate / 1024.0,
            }),
            softnet: Some(SoftnetMetrics {
                dropped_rate: 0.0,
                squeezed_rate: rng.f64() * 0.2,
            }),
            collectors: COLLECTORS
                .iter()
                .map(|name| CollectorStatus {
                    name: (*name).to_owned(),
                    ok: true,
                    duration_us: 40 + rng.u64(..400),
                    error: None,
                })
                .collect(),
            clock_skew_seconds: None,
        }
    }
}

fn disk_layout(rng: &mut fastrand::Rng) -> Vec<SimDisk> {
    let nvme = rng.bool();
    let mut mounts = vec!["/", "/var/lib/containerd"];
    if rng.u8(..3) == 0 {
        mounts.push("/data");
    }
    mounts
        .into_iter()
        .enumerate()
        .map(|(k, mount_point)| {
            let total = [100u64, 200, 500, 1000][rng.usize(..4)] * GIB;
            let write = 50_000.0 + rng.f64() * 5_000_000.0;
            SimDisk {
                device: if nvme {
                    format!("nvme{k}n1")
                } else {
                    format!("sd{}", char::from(b'a' + k as u8))
                },
                mount_point,
                total,
                used: total as f64 * (0.1 + rng.f64() * 0.6),
                inodes_total: total / 16_384,
                inodes_used: (total / 16_384) as f64 * 0.05,
                read_bytes: rng.u64(1 << 30..1 << 40),
                write_bytes: rng.u64(1 << 30..1 << 40),
                read_rate: Wander::new(write * 0.3, write * 0.1, 0.0, 2e9),
                write_rate: Wander::new(write, write * 0.2, 0.0, 2e9),
                util: Wander::new(rng.f64() * 30.0, 3.0, 0.0, 100.0),
            }
        })
        .collect()
}

fn interface_layout(rng: &mut fastrand::Rng, seed: u64) -> Vec<SimInterface> {
    let count = [1usize, 1, 2, 3][rng.usize(..4)];
    (0..count)
        .map(|k| {
            let rx = 100_000.0 + rng.f64() * 50_000_000.0;
            SimInterface {
                name: ["ens5", "ens6", "bond0"][k].to_owned(),
                ip: format!("10.{}.{}.{}", k, (seed >> 8) % 256, (seed % 254) + 1),
                mac: format!(
                    "02:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                    k,
                    (seed >> 24) & 0xff,
                    (seed >> 16) & 0xff,
                    (seed >> 8) & 0xff,
                    seed & 0xff
                ),
                speed: [10_000i64, 25_000][rng.usize(..2)],
                mtu: [1500u32, 9001][rng.usize(..2)],
                rx_bytes: rng.u64(1 << 30..1 << 42),
                tx_bytes: rng.u64(1 << 30..1 << 42),
                rx_packets: rng.u64(1 << 20..1 << 32),
                tx_packets: rng.u64(1 << 20..1 << 32),
                rx_errors: 0,
                rx_dropped: rng.u64(..100),
                rx_rate: Wander::new(rx, rx * 0.15, 0.0, 3e9),
                tx_rate: Wander::new(rx * 0.6, rx * 0.1, 0.0, 3e9),
            }
        })
        .collect()
}

/// A simulated cluster: `nodes` [`SimulatedNode`]s named `node-000`..., and the sequence of
/// its snapshots.
#[derive(Debug, Clone)]
pub struct SimulatedCluster {
    cluster_id: String,
    nodes: Vec<SimulatedNode>,
    seq: u64,
}

impl SimulatedCluster {
    /// `nodes` nodes whose shapes and figures follow from `seed`.
    pub fn new(cluster_id: &str, nodes: usize, seed: u64) -> Self {
        Self {
            cluster_id: cluster_id.to_owned(),
            nodes: (0..nodes)
                .map(|i| {
                    let node_seed = seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
                    SimulatedNode::new(&format!("node-{i:03}"), node_seed)
                })
                .collect(),
            // As the agent does: seqs above those of any earlier run.
            seq: u64::try_from(Utc::now().timestamp_millis()).unwrap_or(1),
        }
    }

    /// The cluster id.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// How many nodes it has.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether it has no node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The next cluster snapshot, as the agent sends it: every node sampled at `at`, online,
    /// and a `seq` one above the last.
    pub fn snapshot(&mut self, at: DateTime<Utc>) -> ClusterSnapshot {
        self.seq += 1;
        let mut node_metrics = BTreeMap::new();
        let mut node_status = BTreeMap::new();
        for node in &mut self.nodes {
            node_status.insert(
                node.name().to_owned(),
                NodeStatus {
                    state: NodeState::Online,
                    last_seen: at,
                },
            );
            node_metrics.insert(node.name().to_owned(), node.sample(at));
        }
        ClusterSnapshot {
            cluster_id: self.cluster_id.clone(),
            timestamp: at,
            seq: self.seq,
            agent_version: "fleet-load".to_owned(),
            node_metrics,
            node_status,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn figures_move_and_stay_within_their_ranges() {
        let mut node = SimulatedNode::new("n", 42);
        let t0 = Utc::now();
        let mut prev = node.sample(t0);
        let mut cpu_values = std::collections::BTreeSet::new();
        for k in 1..200 {
            let s = node.sample(t0 + Duration::seconds(10 * k));
            assert!((0.0..=100.0).contains(&s.cpu.usage_percent));
            assert!(s.cpu.per_core.iter().all(|c| (0.0..=100.0).contains(c)));
            assert_eq!(s.cpu.per_core.len(), s.cpu.threads as usize);
            assert!(s.memory.used <= s.memory.total);
            for (d, p) in s.disks.iter().zip(&prev.disks) {
                assert!(d.used <= d.total);
                assert!(d.write_bytes >= p.write_bytes, "counters never go down");
            }
            for (n, p) in s.networks.iter().zip(&prev.networks) {
                assert!(n.rx_bytes >= p.rx_bytes && n.tx_packets >= p.tx_packets);
            }
            assert!(s.uptime > prev.uptime);
            cpu_values.insert(s.cpu.usage_percent.to_bits());
            prev = s;
        }
        assert!(cpu_values.len() > 150, "the CPU figure changes");
    }

    #[test]
    fn a_node_has_a_real_nodes_parts() {
        let s = SimulatedNode::new("n", 1).sample(Utc::now());
        assert!(s.cpu.threads >= 4);
        assert!((2..=3).contains(&s.disks.len()));
        assert!((1..=3).contains(&s.networks.len()));
        assert!(s.temperature.sensors.len() > s.cpu.cores as usize);
        assert_eq!(s.processes.len(), PROCESSES.len());
        assert!(s.psi.is_some() && s.tcp.is_some() && s.vmstat.is_some());
        let json = serde_json::to_vec(&s).unwrap();
        assert!(
            (4_000..40_000).contains(&json.len()),
            "{} bytes of JSON",
            json.len()
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_node() {
        let at = Utc::now();
        let a = SimulatedNode::new("n", 9).sample(at);
        let b = SimulatedNode::new("n", 9).sample(at);
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            serde_json::to_value(&b).unwrap()
        );
        let c = SimulatedNode::new("n", 10).sample(at);
        assert_ne!(
            serde_json::to_value(&a).unwrap(),
            serde_json::to_value(&c).unwrap()
        );
    }

    #[test]
    fn cluster_snapshots_count_up_and_mark_every_node_online() {
        let mut c = SimulatedCluster::new("fleet-001", 5, 3);
        let at = Utc::now();
        let a = c.snapshot(at);
        let b = c.snapshot(at + Duration::seconds(10));
        assert_eq!(b.seq, a.seq + 1);
        assert_eq!(b.node_metrics.len(), 5);
        assert!(b.node_metrics.keys().all(|n| b.is_node_online(n)));
        assert_eq!(
            b.node_metrics["node-004"].timestamp,
            at + Duration::seconds(10)
        );
    }
}
