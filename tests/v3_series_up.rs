//! Every v3 series metric answers this host's real figures end to end: `atlhyper up` in this
//! process (the real collector over this host's /proc and /sys, the agent's ring, the command
//! to the agent, the master's v3 series route). Each series is checked against the node's own
//! snapshot at the same instant; a figure the host does not report (no PSI, no disk) must be a
//! 404, never a made-up value. The node's `freqHz` holds each CPU's frequency where the host
//! tells it.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use atlhyper::up::{UpArgs, up};
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::oneshot;

const NODE: &str = "this-host";

fn args(dir: &Path) -> UpArgs {
    UpArgs {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: dir.join("data"),
        cluster_id: "local".to_owned(),
        node_name: Some(NODE.to_owned()),
        collect_interval: Duration::from_millis(300),
        snapshot_interval: Duration::from_millis(300),
        history_interval: Duration::from_secs(300),
        log_level: "warn".to_owned(),
        log_format: atlhyper::agent::LogFormat::Text,
    }
}

async fn get(addr: SocketAddr, path: String) -> (u16, Value) {
    tokio::task::spawn_blocking(move || {
        atlhyper_testkit::get_json(addr, &path, &[], Duration::from_secs(30))
    })
    .await
    .expect("no panic")
    .unwrap_or_else(|e| panic!("GET: {e}"))
}

fn series_path(metric: &str) -> String {
    format!(
        "/api/v2/observe/metrics/nodes/{NODE}/series?cluster_id=local&metric={metric}&minutes=10"
    )
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("not a time: {v}"))
}

/// The value a v3 series must carry at the snapshot's instant (v2 snapshot JSON): `None` when
/// the host does not report the figure.
fn expected(metric: &str, s: &Value) -> Option<f64> {
    let f = |v: &Value| v.as_f64();
    let primary_disk = || {
        let disks = s["disks"].as_array()?;
        disks
            .iter()
            .find(|d| d["mount_point"] == "/")
            .or_else(|| disks.first())
            .cloned()
    };
    match metric {
        "cpu_usage" => f(&s["cpu"]["usage_percent"]),
        "cpu_user" => f(&s["cpu"]["user_percent"]),
        "cpu_system" => f(&s["cpu"]["system_percent"]),
        "cpu_iowait" => f(&s["cpu"]["iowait_percent"]),
        "cpu_load1" => f(&s["cpu"]["load_1"]),
        "cpu_load5" => f(&s["cpu"]["load_5"]),
        "cpu_load15" => f(&s["cpu"]["load_15"]),
        "memory_usage" => f(&s["memory"]["usage_percent"]),
        "swap_usage" => f(&s["memory"]["swap_percent"]),
        "temperature" => f(&s["temperature"]["cpu_temp"]),
        "psi_cpu" => f(&s["psi"]["cpu_some"]),
        "psi_memory" => f(&s["psi"]["memory_some"]),
        "psi_io" => f(&s["psi"]["io_some"]),
        "tcp_established" => f(&s["tcp"]["curr_estab"]),
        "sockets_used" => f(&s["tcp"]["sockets_used"]),
        "disk_usage" => Some(primary_disk().map_or(0.0, |d| d["usage_percent"].as_f64().unwrap())),
        "disk_io_util" => primary_disk().and_then(|d| d["io_util"].as_f64()),
        "disk_read_bps" => f(&s["totals"]["disk_read_rate"]),
        "disk_write_bps" => f(&s["totals"]["disk_write_rate"]),
        "net_rx_bps" => f(&s["totals"]["network_rx_rate"]),
        "net_tx_bps" => f(&s["totals"]["network_tx_rate"]),
        "net_rx_pkt" => f(&s["totals"]["network_rx_packets_rate"]),
        "net_tx_pkt" => f(&s["totals"]["network_tx_packets_rate"]),
        other => panic!("no expectation for {other}"),
    }
}

/// v3's series names (aliases left out: the unit tests of the route cover them).
const METRICS: [&str; 23] = [
    "cpu_usage",
    "cpu_user",
    "cpu_system",
    "cpu_iowait",
    "cpu_load1",
    "cpu_load5",
    "cpu_load15",
    "memory_usage",
    "swap_usage",
    "temperature",
    "psi_cpu",
    "psi_memory",
    "psi_io",
    "tcp_established",
    "sockets_used",
    "disk_usage",
    "disk_read_bps",
    "disk_write_bps",
    "disk_io_util",
    "net_rx_bps",
    "net_tx_bps",
    "net_rx_pkt",
    "net_tx_pkt",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_v3_series_answers_this_hosts_figures() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (stop, stopped) = oneshot::channel::<()>();
    let (ready, started) = oneshot::channel();
    let running = tokio::spawn(up(
        args(dir.path()),
        async move {
            let _ = stopped.await;
        },
        Some(ready),
    ));
    let addr = started.await.expect("up is listening").dashboard;

    // Rates (packets among them) need a second collection: wait until the agent's ring has a
    // point with a packet rate. Generous: a loaded 2-core machine.
    let mut waited = Duration::ZERO;
    loop {
        let (status, body) = get(addr, series_path("net_rx_pkt")).await;
        if status == 200
            && body["data"]["points"]
                .as_array()
                .is_some_and(|p| !p.is_empty())
        {
            break;
        }
        assert!(
            waited < Duration::from_secs(90),
            "no packet rate within 90 s: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        waited += Duration::from_millis(200);
    }

    // The node's latest snapshot (v2, every figure) and each series at its instant.
    let (status, node) = get(
        addr,
        format!("/api/v2/observe/metrics/nodes/{NODE}?cluster_id=local&format=v2"),
    )
    .await;
    assert_eq!(status, 200, "{node}");
    let snapshot = &node["data"];
    let at = time(&snapshot["timestamp"]);
    let mut served = 0;
    for metric in METRICS {
        let (status, body) = get(addr, series_path(metric)).await;
        match expected(metric, snapshot) {
            Some(want) => {
                assert_eq!(status, 200, "{metric}: {body}");
                assert_eq!(body["data"]["metric"], metric);
                let point = body["data"]["points"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|p| time(&p["timestamp"]) == at)
                    .unwrap_or_else(|| panic!("{metric}: no point at {at}: {body}"));
                assert_eq!(point["value"].as_f64(), Some(want), "{metric} at {at}");
                served += 1;
            }
            None => {
                // The host does not report it: a 404 that says so.
                assert_eq!(status, 404, "{metric}: {body}");
                let e = body["error"].as_str().unwrap_or_default();
                assert!(e.contains(metric), "{metric}: {e}");
                println!("{metric}: this host does not report it ({e})");
            }
        }
    }
    println!("{served} of {} series served from this host", METRICS.len());
    // Whatever the host: CPU, load, memory, swap, TCP (sockstat, snmp) and packets are there.
    assert!(served >= 19, "only {served} series served");

    // freqHz: one value per logical CPU where the host tells each CPU's frequency (cpufreq, or
    // a `cpu MHz` line for every processor in /proc/cpuinfo, as on x86 VMs).
    let (status, v3) = get(
        addr,
        format!("/api/v2/observe/metrics/nodes/{NODE}?cluster_id=local"),
    )
    .await;
    assert_eq!(status, 200, "{v3}");
    let cpu = &v3["data"]["cpu"];
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let count = |key: &str| {
        cpuinfo
            .lines()
            .filter(|l| l.split(':').next().map(str::trim) == Some(key))
            .count()
    };
    let per_cpu_known = Path::new("/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq").exists()
        || (count("processor") > 0 && count("cpu MHz") == count("processor"));
    let freq: Vec<f64> = cpu["freqHz"]
        .as_array()
        .map(|a| a.iter().map(|f| f.as_f64().unwrap()).collect())
        .unwrap_or_default();
    if per_cpu_known {
        assert_eq!(freq.len() as u64, cpu["cores"].as_u64().unwrap(), "{cpu}");
        assert!(freq.iter().all(|hz| *hz > 1e6), "Hz, not MHz: {freq:?}");
    } else {
        println!("this host tells no per-CPU frequency: freqHz {freq:?}");
        assert!(freq.len() <= 1, "{freq:?}");
    }

    stop.send(()).expect("still running");
    let result = tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("stops within 30 s")
        .expect("no panic");
    assert!(result.is_ok(), "{result:?}");
}
