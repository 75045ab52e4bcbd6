//! Wire-compatibility tests: round trips, the AtlHyper v2 shape, unknown fields, field names.

use std::collections::BTreeMap;

use atlhyper_model::*;
use chrono::{TimeZone, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn ts(secs: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(1_705_746_600 + secs, 0).unwrap()
}

fn full_snapshot() -> NodeMetricsSnapshot {
    NodeMetricsSnapshot {
        node_name: "k8s-worker-01".into(),
        timestamp: ts(0),
        hostname: "worker01".into(),
        os: "Debian GNU/Linux 12 (bookworm)".into(),
        kernel: "6.1.0-18-amd64".into(),
        uptime: 86_400,
        cpu: CpuMetrics {
            usage_percent: 37.5,
            user_percent: 25.0,
            system_percent: 10.0,
            idle_percent: 60.0,
            iowait_percent: 2.5,
            per_core: vec![40.0, 35.0],
            load_1: 0.5,
            load_5: 0.75,
            load_15: 1.25,
            model: "Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz".into(),
            cores: 1,
            threads: 2,
            frequency: 2400.0,
            per_core_frequency: vec![2400.0, 2400.0],
            steal_percent: Some(0.5),
            nice_percent: Some(1.5),
            irq_percent: Some(0.25),
            softirq_percent: Some(0.75),
        },
        memory: MemoryMetrics {
            total: 8_000_000_000,
            used: 3_000_000_000,
            available: 5_000_000_000,
            free: 1_000_000_000,
            usage_percent: 37.5,
            cached: 3_500_000_000,
            buffers: 200_000_000,
            swap_total: 1_000_000_000,
            swap_used: 250_000_000,
            swap_free: 750_000_000,
            swap_percent: 25.0,
        },
        disks: vec![DiskMetrics {
            device: "sda1".into(),
            mount_point: "/".into(),
            fs_type: "ext4".into(),
            total: 100_000_000_000,
            used: 40_000_000_000,
            available: 55_000_000_000,
            usage_percent: 42.105_263_157_894_74,
            read_bytes: 1_000_000,
            write_bytes: 2_000_000,
            read_rate: 4096.0,
            write_rate: 8192.0,
            read_iops: 1.5,
            write_iops: 3.0,
            io_util: 2.25,
            inodes_total: Some(6_553_600),
            inodes_used: Some(250_000),
        }],
        networks: vec![NetworkMetrics {
            interface: "eth0".into(),
            ip_address: "10.0.0.5".into(),
            mac_address: "52:54:00:12:34:56".into(),
            status: "up".into(),
            speed: 1000,
            mtu: 1500,
            rx_bytes: 123_456,
            tx_bytes: 654_321,
            rx_packets: 1000,
            tx_packets: 2000,
            rx_rate: 1024.0,
            tx_rate: 2048.0,
            rx_errors: 1,
            tx_errors: 2,
            rx_dropped: 3,
            tx_dropped: 4,
            rx_packets_rate: Some(10.0),
            tx_packets_rate: Some(20.0),
            rx_errors_rate: Some(0.0),
            tx_errors_rate: Some(0.0),
            rx_dropped_rate: Some(0.2),
            tx_dropped_rate: Some(0.0),
        }],
        temperature: TemperatureMetrics {
            cpu_temp: 55.0,
            cpu_temp_max: 100.0,
            sensors: vec![SensorReading {
                name: "coretemp".into(),
                label: "Package id 0".into(),
                current: 55.0,
                max: 84.0,
                critical: 100.0,
            }],
        },
        processes: vec![ProcessMetrics {
            pid: 1234,
            name: "kubelet".into(),
            cmdline: "/usr/bin/kubelet --config=/var/lib/kubelet/config.yaml".into(),
            user: "root".into(),
            status: "S".into(),
            cpu_percent: 12.5,
            mem_percent: 1.5,
            mem_rss: 120_000_000,
            threads: 24,
            start_time: 1_705_660_200,
        }],
        psi: Some(PsiMetrics {
            cpu_some: 1.0,
            memory_some: 0.5,
            memory_full: 0.25,
            io_some: 2.0,
            io_full: 1.5,
        }),
        totals: Some(NodeTotals {
            disk_read_rate: 4096.0,
            disk_write_rate: 8192.0,
            disk_read_iops: 1.5,
            disk_write_iops: 3.0,
            network_rx_rate: 1024.0,
            network_tx_rate: 2048.0,
            ..Default::default()
        }),
        tcp: Some(TcpMetrics {
            curr_estab: 42,
            alloc: 60,
            in_use: 50,
            time_wait: 7,
            orphan: 1,
            sockets_used: 300,
        }),
        system: Some(SystemMetrics {
            conntrack_entries: Some(1200),
            conntrack_limit: Some(262_144),
            filefd_allocated: Some(3776),
            filefd_max: Some(9_223_372_036_854_775_807),
            entropy_bits: Some(256),
            entropy_pool_bits: Some(256),
        }),
        vmstat: Some(VmstatMetrics {
            pgfault_rate: 1500.5,
            pgmajfault_rate: 0.25,
            pswpin_rate: 0.0,
            pswpout_rate: 2.0,
            pgpgin_rate: 64.0,
            pgpgout_rate: 512.0,
        }),
        softnet: Some(SoftnetMetrics {
            dropped_rate: 0.5,
            squeezed_rate: 1.25,
        }),
        collectors: vec![
            CollectorStatus {
                name: "cpu".into(),
                ok: true,
                duration_us: 42,
                error: None,
            },
            CollectorStatus {
                name: "temperature".into(),
                ok: false,
                duration_us: 7,
                error: Some("no hwmon or thermal zone under /sys".into()),
            },
        ],
        clock_skew_seconds: Some(-12.5),
    }
}

fn round_trip<T>(value: &T)
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let text = serde_json::to_string(value).unwrap();
    let back: T = serde_json::from_str(&text).unwrap();
    assert_eq!(&back, value, "round trip changed the value: {text}");
}

#[test]
fn every_type_round_trips() {
    let snapshot = full_snapshot();
    round_trip(&snapshot);
    round_trip(&snapshot.cpu);
    round_trip(&snapshot.memory);
    round_trip(&snapshot.disks[0]);
    round_trip(&snapshot.networks[0]);
    round_trip(&snapshot.temperature);
    round_trip(&snapshot.temperature.sensors[0]);
    round_trip(&snapshot.processes[0]);
    round_trip(snapshot.psi.as_ref().unwrap());
    round_trip(snapshot.totals.as_ref().unwrap());
    round_trip(snapshot.tcp.as_ref().unwrap());
    round_trip(snapshot.system.as_ref().unwrap());
    round_trip(&SystemMetrics::default());
    round_trip(snapshot.vmstat.as_ref().unwrap());
    round_trip(snapshot.softnet.as_ref().unwrap());
    round_trip(&snapshot.collectors[1]);
    round_trip(&NodeMetricsSnapshot::default());

    let point = MetricsDataPoint::from_snapshot(&snapshot);
    round_trip(&point);
    round_trip(&ClusterMetricsSummary::from_nodes([(&snapshot, true)]));

    let mut status = BTreeMap::new();
    status.insert(
        "k8s-worker-01".to_owned(),
        NodeStatus {
            state: NodeState::Offline,
            last_seen: ts(-60),
        },
    );
    let cluster = ClusterSnapshot {
        cluster_id: "prod".into(),
        timestamp: ts(5),
        node_metrics: BTreeMap::from([("k8s-worker-01".to_owned(), snapshot.clone())]),
        seq: 42,
        agent_version: "0.1.0".into(),
        node_status: status.clone(),
        backfill: vec![point.clone()],
    };
    round_trip(&cluster);
    round_trip(&ClusterNodeMetrics {
        summary: cluster.summary(),
        nodes: vec![snapshot.clone()],
        node_status: status,
    });
    round_trip(&NodeHistory {
        node_name: "k8s-worker-01".into(),
        start: ts(-3600),
        end: ts(0),
        data: vec![point],
    });
    round_trip(&ClusterInfo {
        cluster_id: "prod".into(),
        status: "online".into(),
        last_seen: ts(0),
        node_count: 1,
        pod_count: 0,
    });

    let mut params = serde_json::Map::new();
    params.insert("hours".into(), json!(1));
    let command = Command {
        id: "c-1".into(),
        action: "node_series".into(),
        target_kind: "Node".into(),
        target_namespace: String::new(),
        target_name: "k8s-worker-01".into(),
        params: params.clone(),
        cluster_id: "prod".into(),
        created_at: Some(ts(0)),
    };
    round_trip(&command);
    round_trip(&CommandPoll::with(command));
    round_trip(&CommandPoll::empty());
    let result = CommandResult {
        cluster_id: "prod".into(),
        command_id: "c-1".into(),
        success: false,
        output: String::new(),
        error: "unknown action \"reboot\"".into(),
        exec_time_ms: 3,
    };
    round_trip(&result);
    for status in CommandStatus::ALL {
        round_trip(&status);
        assert_eq!(status.as_str().parse::<CommandStatus>().unwrap(), status);
    }
    round_trip(&CommandRecord {
        command_id: "c-1".into(),
        cluster_id: "prod".into(),
        action: "node_series".into(),
        target_kind: "Node".into(),
        target_namespace: String::new(),
        target_name: "k8s-worker-01".into(),
        params: params.clone(),
        status: CommandStatus::Failed,
        created_at: ts(0),
        deadline: ts(30),
        started_at: Some(ts(1)),
        finished_at: Some(ts(2)),
        result: Some(result),
    });
    round_trip(&CreateCommand {
        cluster_id: "prod".into(),
        action: "ping".into(),
        params,
        timeout_secs: Some(10),
        ..Default::default()
    });
    round_trip(&CommandCreated {
        command_id: "c-1".into(),
        status: CommandStatus::Pending,
    });
    round_trip(&Heartbeat {
        cluster_id: "prod".into(),
        timestamp: ts(0),
        agent_version: "0.1.0".into(),
    });
    round_trip(&AgentStatus {
        cluster_id: "prod".into(),
        status: AgentState::Online,
        last_heartbeat: ts(0),
        last_snapshot: ts(-5),
        agent_version: "0.1.0".into(),
        remote_addr: "127.0.0.1:5555".into(),
    });
    round_trip(&StatusBody::ok());
    round_trip(&ErrorBody::new("node_name is required"));
}

#[test]
fn fully_populated_snapshot_json() {
    insta::assert_yaml_snapshot!("full_node_metrics_snapshot", full_snapshot());
}

/// A snapshot exactly as an AtlHyper v2 collector writes it: every v2 field, none of ours, Go nulls
/// for empty slices, a local-offset timestamp with nanoseconds.
const V2_SNAPSHOT: &str = r#"{
  "node_name": "raspi-01",
  "timestamp": "2024-01-20T19:30:00.123456789+09:00",
  "hostname": "raspi-01",
  "os": "Ubuntu 22.04.3 LTS",
  "kernel": "5.15.0-1044-raspi",
  "uptime": 123456,
  "cpu": {"usage_percent": 12.5, "user_percent": 8.0, "system_percent": 4.5, "idle_percent": 87.0,
          "iowait_percent": 0.5, "per_core": [10.0, 15.0, 12.0, 13.0], "load_1": 0.3, "load_5": 0.25,
          "load_15": 0.2, "model": "Cortex-A72", "cores": 4, "threads": 4, "frequency": 1500},
  "memory": {"total": 8000000000, "used": 2000000000, "available": 6000000000, "free": 4000000000,
             "usage_percent": 25, "cached": 1500000000, "buffers": 100000000, "swap_total": 0,
             "swap_used": 0, "swap_free": 0, "swap_percent": 0},
  "disks": [{"device": "mmcblk0p2", "mount_point": "/", "fs_type": "ext4", "total": 64000000000,
             "used": 16000000000, "available": 45000000000, "usage_percent": 26.2, "read_bytes": 1000,
             "write_bytes": 2000, "read_rate": 10.5, "write_rate": 20.5, "read_iops": 1, "write_iops": 2,
             "io_util": 0.5}],
  "networks": [{"interface": "eth0", "ip_address": "192.168.1.10", "mac_address": "dc:a6:32:00:00:01",
                "status": "up", "speed": 1000, "mtu": 1500, "rx_bytes": 1, "tx_bytes": 2, "rx_packets": 3,
                "tx_packets": 4, "rx_rate": 100, "tx_rate": 200, "rx_errors": 0, "tx_errors": 0,
                "rx_dropped": 0, "tx_dropped": 0},
               {"interface": "wlan0", "ip_address": "", "mac_address": "dc:a6:32:00:00:02",
                "status": "down", "speed": -1, "mtu": 1500, "rx_bytes": 0, "tx_bytes": 0, "rx_packets": 0,
                "tx_packets": 0, "rx_rate": 5, "tx_rate": 6, "rx_errors": 0, "tx_errors": 0,
                "rx_dropped": 0, "tx_dropped": 0}],
  "temperature": {"cpu_temp": 48.3, "cpu_temp_max": 0, "sensors": null},
  "processes": null
}"#;

#[test]
fn parses_atlhyper_v2_snapshot() {
    let s: NodeMetricsSnapshot = serde_json::from_str(V2_SNAPSHOT).unwrap();
    assert_eq!(s.node_name, "raspi-01");
    assert_eq!(
        s.timestamp,
        Utc.with_ymd_and_hms(2024, 1, 20, 10, 30, 0).unwrap()
            + chrono::Duration::nanoseconds(123_456_789)
    );
    assert_eq!(s.cpu.per_core.len(), 4);
    assert_eq!(s.cpu.cores, 4);
    assert_eq!(s.memory.total, 8_000_000_000);
    assert_eq!(s.disks[0].device, "mmcblk0p2");
    assert_eq!(s.networks[1].speed, -1);
    assert!(s.temperature.sensors.is_empty());
    assert!(s.processes.is_empty());
    assert!(s.psi.is_none() && s.totals.is_none() && s.collectors.is_empty());
    assert!(s.tcp.is_none() && s.system.is_none() && s.vmstat.is_none() && s.softnet.is_none());
    assert_eq!(s.cpu.steal_percent, None);
    assert_eq!(s.disks[0].inodes_total, None);

    // Re-serialised, a v2 snapshot carries only v2 fields: none of our extensions appear.
    let back = serde_json::to_value(&s).unwrap();
    for ext in [
        "psi",
        "totals",
        "collectors",
        "tcp",
        "system",
        "vmstat",
        "softnet",
    ] {
        assert!(back.get(ext).is_none(), "{ext} leaked into a v2 snapshot");
    }
    for ext in [
        "steal_percent",
        "nice_percent",
        "irq_percent",
        "softirq_percent",
    ] {
        assert!(
            back["cpu"].get(ext).is_none(),
            "{ext} leaked into a v2 snapshot"
        );
    }
    assert_eq!(
        (s.cpu.nice_percent, s.cpu.irq_percent, s.cpu.softirq_percent),
        (None, None, None)
    );
    assert!(back["disks"][0].get("inodes_total").is_none());
    assert!(back["networks"][0].get("rx_packets_rate").is_none());

    // History point without totals: network summed over the reported interfaces, not the first.
    let p = MetricsDataPoint::from_snapshot(&s);
    assert_eq!(p.network_rx, 105.0);
    assert_eq!(p.network_tx, 206.0);
    assert_eq!(p.disk_io_read, 10.5);
}

#[test]
fn unknown_fields_are_ignored() {
    let mut v: Value = serde_json::from_str(V2_SNAPSHOT).unwrap();
    v["gpu"] = json!({"usage_percent": 99});
    v["cpu"]["future_field"] = json!([1, 2, 3]);
    v["disks"][0]["nvme_wear"] = json!(3);
    let s: NodeMetricsSnapshot = serde_json::from_value(v).unwrap();
    assert_eq!(s.node_name, "raspi-01");
    assert_eq!(s.disks.len(), 1);

    let cluster: ClusterSnapshot = serde_json::from_value(json!({
        "cluster_id": "c1",
        "fetched_at": "2024-01-20T10:30:00Z",
        "pods": [{"name": "x"}],
        "summary": {"total_pods": 1},
        "node_metrics": {"raspi-01": serde_json::from_str::<Value>(V2_SNAPSHOT).unwrap()}
    }))
    .unwrap();
    assert_eq!(
        cluster.timestamp,
        Utc.with_ymd_and_hms(2024, 1, 20, 10, 30, 0).unwrap()
    );
    assert!(cluster.is_node_online("raspi-01"));
    assert_eq!(cluster.summary().online_nodes, 1);
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

/// The v2 field names, written out by hand from `model_v2`. Renaming a field fails here.
#[test]
fn v2_field_names_are_stable() {
    let mut s = full_snapshot();
    // Drop the extensions so only v2 names remain.
    s.psi = None;
    s.totals = None;
    (s.tcp, s.system, s.vmstat, s.softnet) = (None, None, None, None);
    s.collectors.clear();
    s.clock_skew_seconds = None;
    s.cpu.steal_percent = None;
    (s.cpu.nice_percent, s.cpu.irq_percent, s.cpu.softirq_percent) = (None, None, None);
    s.cpu.per_core_frequency.clear();
    s.disks[0].inodes_total = None;
    s.disks[0].inodes_used = None;
    let n = &mut s.networks[0];
    (n.rx_packets_rate, n.tx_packets_rate, n.rx_errors_rate) = (None, None, None);
    (n.tx_errors_rate, n.rx_dropped_rate, n.tx_dropped_rate) = (None, None, None);
    let v = serde_json::to_value(&s).unwrap();

    assert_eq!(
        keys(&v),
        sorted(&[
            "node_name",
            "timestamp",
            "hostname",
            "os",
            "kernel",
            "uptime",
            "cpu",
            "memory",
            "disks",
            "networks",
            "temperature",
            "processes"
        ])
    );
    assert_eq!(
        keys(&v["cpu"]),
        sorted(&[
            "usage_percent",
            "user_percent",
            "system_percent",
            "idle_percent",
            "iowait_percent",
            "per_core",
            "load_1",
            "load_5",
            "load_15",
            "model",
            "cores",
            "threads",
            "frequency"
        ])
    );
    assert_eq!(
        keys(&v["memory"]),
        sorted(&[
            "total",
            "used",
            "available",
            "free",
            "usage_percent",
            "cached",
            "buffers",
            "swap_total",
            "swap_used",
            "swap_free",
            "swap_percent"
        ])
    );
    assert_eq!(
        keys(&v["disks"][0]),
        sorted(&[
            "device",
            "mount_point",
            "fs_type",
            "total",
            "used",
            "available",
            "usage_percent",
            "read_bytes",
            "write_bytes",
            "read_rate",
            "write_rate",
            "read_iops",
            "write_iops",
            "io_util"
        ])
    );
    assert_eq!(
        keys(&v["networks"][0]),
        sorted(&[
            "interface",
            "ip_address",
            "mac_address",
            "status",
            "speed",
            "mtu",
            "rx_bytes",
            "tx_bytes",
            "rx_packets",
            "tx_packets",
            "rx_rate",
            "tx_rate",
            "rx_errors",
            "tx_errors",
            "rx_dropped",
            "tx_dropped"
        ])
    );
    assert_eq!(
        keys(&v["temperature"]),
        sorted(&["cpu_temp", "cpu_temp_max", "sensors"])
    );
    assert_eq!(
        keys(&v["temperature"]["sensors"][0]),
        sorted(&["name", "label", "current", "max", "critical"])
    );
    assert_eq!(
        keys(&v["processes"][0]),
        sorted(&[
            "pid",
            "name",
            "cmdline",
            "user",
            "status",
            "cpu_percent",
            "mem_percent",
            "mem_rss",
            "threads",
            "start_time"
        ])
    );

    let p = serde_json::to_value(MetricsDataPoint::from_snapshot(&s).without_extensions()).unwrap();
    assert_eq!(
        keys(&p),
        sorted(&[
            "timestamp",
            "node_name",
            "cpu_usage",
            "memory_usage",
            "disk_usage",
            "disk_io_read",
            "disk_io_write",
            "network_rx",
            "network_tx",
            "cpu_temp",
            "load_1"
        ])
    );
    let sum = serde_json::to_value(ClusterMetricsSummary::default()).unwrap();
    assert_eq!(
        keys(&sum),
        sorted(&[
            "total_nodes",
            "online_nodes",
            "offline_nodes",
            "avg_cpu_usage",
            "avg_memory_usage",
            "avg_disk_usage",
            "max_cpu_usage",
            "max_memory_usage",
            "max_disk_usage",
            "avg_cpu_temp",
            "max_cpu_temp",
            "total_memory",
            "used_memory",
            "total_disk",
            "used_disk",
            "total_network_rx",
            "total_network_tx"
        ])
    );

    let c = serde_json::to_value(Command {
        id: "x".into(),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        keys(&c),
        sorted(&[
            "id",
            "action",
            "target_kind",
            "target_namespace",
            "target_name"
        ])
    );
    let r = serde_json::to_value(CommandResult {
        output: "o".into(),
        error: "e".into(),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        keys(&r),
        sorted(&[
            "cluster_id",
            "command_id",
            "success",
            "output",
            "error",
            "exec_time_ms"
        ])
    );
    let h = serde_json::to_value(Heartbeat::default()).unwrap();
    assert_eq!(keys(&h), sorted(&["cluster_id", "timestamp"]));
    let poll = serde_json::to_value(CommandPoll::empty()).unwrap();
    assert_eq!(keys(&poll), sorted(&["has_command"]));
    assert_eq!(
        serde_json::to_value(CommandStatus::Timeout).unwrap(),
        json!("timeout")
    );
    assert_eq!(
        serde_json::from_value::<CommandStatus>(json!("expired")).unwrap(),
        CommandStatus::Timeout
    );
}

#[test]
fn bad_json_is_an_error_not_a_panic() {
    assert!(serde_json::from_str::<NodeMetricsSnapshot>("{").is_err());
    assert!(serde_json::from_str::<NodeMetricsSnapshot>(r#"{"uptime": "long"}"#).is_err());
    assert!(serde_json::from_str::<NodeMetricsSnapshot>(r#"{"timestamp": "yesterday"}"#).is_err());
    assert!(serde_json::from_str::<CommandStatus>(r#""paused""#).is_err());
    assert!(
        "paused"
            .parse::<CommandStatus>()
            .unwrap_err()
            .to_string()
            .contains("paused")
    );
}

#[test]
fn overview_drops_only_the_per_item_lists() {
    let full = full_snapshot();
    assert!(
        !full.processes.is_empty()
            && !full.cpu.per_core.is_empty()
            && !full.temperature.sensors.is_empty()
            && !full.collectors.is_empty()
            && !full.networks.is_empty()
            && full.totals.is_some(),
        "the fixture has every list"
    );
    let o = full.overview();
    assert!(o.processes.is_empty() && o.cpu.per_core.is_empty());
    assert!(o.cpu.per_core_frequency.is_empty());
    assert!(o.temperature.sensors.is_empty() && o.collectors.is_empty());
    assert!(o.networks.is_empty(), "totals carry the network rates");
    // Everything else is unchanged: put the lists back and it is the same snapshot.
    let mut back = o.clone();
    back.processes = full.processes.clone();
    back.cpu.per_core = full.cpu.per_core.clone();
    back.cpu.per_core_frequency = full.cpu.per_core_frequency.clone();
    back.temperature.sensors = full.temperature.sensors.clone();
    back.collectors = full.collectors.clone();
    back.networks = full.networks.clone();
    assert_eq!(back, full);
    assert_eq!(o.is_healthy(), full.is_healthy());
    assert_eq!(
        MetricsDataPoint::from_snapshot(&o),
        MetricsDataPoint::from_snapshot(&full)
    );
    let (small, big) = (
        serde_json::to_vec(&o).unwrap().len(),
        serde_json::to_vec(&full).unwrap().len(),
    );
    assert!(small < big, "{small} >= {big}");

    // Without totals the interfaces are the only network rates: they stay.
    let v2 = NodeMetricsSnapshot {
        totals: None,
        ..full.clone()
    };
    assert_eq!(v2.overview().networks, full.networks);
}

/// Seed 000 names the process list `top_processes`: it is read as `processes` (and written back
/// under the v2 name).
#[test]
fn seed_000_top_processes_is_the_process_list() {
    let mut v: Value = serde_json::from_str(V2_SNAPSHOT).unwrap();
    let obj = v.as_object_mut().unwrap();
    obj.remove("processes");
    obj.insert(
        "top_processes".into(),
        json!([{"pid": 42, "name": "nginx", "cpu_percent": 12.5, "mem_rss": 4096}]),
    );
    let s: NodeMetricsSnapshot = serde_json::from_value(v).unwrap();
    assert_eq!(s.processes.len(), 1);
    assert_eq!(
        (s.processes[0].pid, s.processes[0].name.as_str()),
        (42, "nginx")
    );
    assert_eq!(
        (s.processes[0].cpu_percent, s.processes[0].mem_rss),
        (12.5, 4096)
    );
    let back = serde_json::to_value(&s).unwrap();
    assert!(back.get("top_processes").is_none());
    assert_eq!(back["processes"][0]["pid"], 42);

    // Go's null for an empty list is accepted under the seed name too.
    let mut v: Value = serde_json::from_str(V2_SNAPSHOT).unwrap();
    let obj = v.as_object_mut().unwrap();
    obj.remove("processes");
    obj.insert("top_processes".into(), Value::Null);
    let s: NodeMetricsSnapshot = serde_json::from_value(v).unwrap();
    assert!(s.processes.is_empty());
}

/// The extension parts with the figures AtlHyper v3 shows (tcp, system, vmstat, softnet): their
/// names are part of the wire contract, and a figure the node lacks (conntrack without the
/// module) is left out, not sent as 0.
#[test]
fn kernel_figure_extensions_have_stable_names() {
    let v = serde_json::to_value(full_snapshot()).unwrap();
    assert_eq!(
        keys(&v["tcp"]),
        sorted(&[
            "curr_estab",
            "alloc",
            "in_use",
            "time_wait",
            "orphan",
            "sockets_used"
        ])
    );
    assert_eq!(
        keys(&v["system"]),
        sorted(&[
            "conntrack_entries",
            "conntrack_limit",
            "filefd_allocated",
            "filefd_max",
            "entropy_bits",
            "entropy_pool_bits"
        ])
    );
    assert_eq!(
        keys(&v["vmstat"]),
        sorted(&[
            "pgfault_rate",
            "pgmajfault_rate",
            "pswpin_rate",
            "pswpout_rate",
            "pgpgin_rate",
            "pgpgout_rate"
        ])
    );
    assert_eq!(
        keys(&v["softnet"]),
        sorted(&["dropped_rate", "squeezed_rate"])
    );
    assert_eq!(
        v["system"]["filefd_max"],
        json!(9_223_372_036_854_775_807_u64)
    );

    let no_conntrack = SystemMetrics {
        conntrack_entries: None,
        conntrack_limit: None,
        ..full_snapshot().system.unwrap()
    };
    let v = serde_json::to_value(&no_conntrack).unwrap();
    assert!(v.get("conntrack_entries").is_none() && v.get("conntrack_limit").is_none());
    assert_eq!(v["filefd_allocated"], json!(3776));
}

#[test]
fn history_point_extensions_come_from_their_snapshot_figures() {
    let mut s = full_snapshot();
    s.totals.as_mut().unwrap().network_rx_packets_rate = Some(30.0);
    s.totals.as_mut().unwrap().network_tx_packets_rate = Some(40.0);
    let p = MetricsDataPoint::from_snapshot(&s);
    assert_eq!(
        p.extensions(),
        [
            Some(25.0),  // cpu_user
            Some(10.0),  // cpu_system
            Some(2.5),   // cpu_iowait
            Some(0.75),  // load_5
            Some(1.25),  // load_15
            Some(25.0),  // swap_usage
            Some(1.0),   // psi_cpu
            Some(0.5),   // psi_memory
            Some(2.0),   // psi_io
            Some(42.0),  // tcp_established
            Some(300.0), // sockets_used
            Some(2.25),  // disk_io_util of the disk mounted at /
            Some(30.0),  // network_rx_packets from totals
            Some(40.0),  // network_tx_packets
        ]
    );
    // Totals without packet rates (an older atlhyper-rs collector): none, even though the
    // interfaces have them (the bytes come from totals, so must the packets).
    let mut older = full_snapshot();
    older.totals.as_mut().unwrap().network_rx_packets_rate = None;
    let p = MetricsDataPoint::from_snapshot(&older);
    assert_eq!(p.network_rx_packets, None);
    // No totals: summed over the interfaces that have a rate, `lo` left out.
    older.totals = None;
    older.networks.push(NetworkMetrics {
        interface: "lo".into(),
        rx_packets_rate: Some(1000.0),
        ..Default::default()
    });
    older.networks.push(NetworkMetrics {
        interface: "eth1".into(),
        rx_packets_rate: Some(5.0),
        ..Default::default()
    });
    let p = MetricsDataPoint::from_snapshot(&older);
    assert_eq!(
        (p.network_rx_packets, p.network_tx_packets),
        (Some(15.0), Some(20.0))
    );
    // Nothing reported: no PSI, TCP, disk or interface rate.
    let bare = MetricsDataPoint::from_snapshot(&NodeMetricsSnapshot::default());
    let absent = [6, 7, 8, 9, 10, 11, 12, 13];
    for (i, v) in bare.extensions().into_iter().enumerate() {
        assert_eq!(v.is_none(), absent.contains(&i), "extension {i}: {v:?}");
    }
}

#[test]
fn history_points_of_older_agents_parse_and_v2_points_stay_nine_figures() {
    let nine = r#"{"timestamp":"2024-01-20T10:30:00Z","node_name":"n","cpu_usage":1.0,"memory_usage":2.0,"disk_usage":3.0,"disk_io_read":4.0,"disk_io_write":5.0,"network_rx":6.0,"network_tx":7.0,"cpu_temp":8.0,"load_1":9.0}"#;
    let p: MetricsDataPoint = serde_json::from_str(nine).unwrap();
    assert_eq!(p.extensions(), [None; MetricsDataPoint::EXTENSIONS]);
    assert_eq!(serde_json::to_string(&p).unwrap(), nine, "byte for byte");
    let full = p.with_extensions(std::array::from_fn(|i| Some(i as f64)));
    let v = serde_json::to_value(&full).unwrap();
    let extension_names = [
        "cpu_user",
        "cpu_system",
        "cpu_iowait",
        "load_5",
        "load_15",
        "swap_usage",
        "psi_cpu",
        "psi_memory",
        "psi_io",
        "tcp_established",
        "sockets_used",
        "disk_io_util",
        "network_rx_packets",
        "network_tx_packets",
    ];
    for (i, name) in extension_names.iter().enumerate() {
        assert_eq!(v[name], json!(i as f64), "{name}");
    }
    assert_eq!(v.as_object().unwrap().len(), 11 + extension_names.len());
    round_trip(&full);
    assert_eq!(
        serde_json::to_string(&full.without_extensions()).unwrap(),
        nine
    );
    // A null extension (a writer that does not skip) reads as absent.
    let with_null = nine.replace("}", r#","psi_cpu":null}"#);
    let p: MetricsDataPoint = serde_json::from_str(&with_null).unwrap();
    assert_eq!(p.psi_cpu, None);
}
