//! atlhyper-metrics against the real node_exporter, in one run: Debian's
//! prometheus-node-exporter and two atlhyper-metrics daemons (atlhyper's default exclusions, and
//! `--node-exporter-filters`) on loopback, all scraped by a real Prometheus every second; then
//! PromQL expressions from the Node Exporter Full dashboard and node_exporter's mixin alerts must
//! return the same series with the same values for the `node` job and the atlhyper jobs. Also
//! runs `promtool check metrics` on the daemon's text exposition, and checks that it answers
//! gzip when asked, as node_exporter does.
//!
//! Needs /usr/bin/prometheus, /usr/bin/promtool and /usr/bin/prometheus-node-exporter (`.ci/run`
//! installs them): skipped with a message when missing, a failure when `CI=true`.

use std::collections::{BTreeMap, HashMap};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use atlhyper_collect::collector::{
    DEFAULT_EXCLUDE_FS_TYPES, DEFAULT_EXCLUDE_INTERFACES, DEFAULT_EXCLUDE_MOUNT_POINTS,
    NODE_EXPORTER_EXCLUDE_FS_TYPES,
};
use atlhyper_collect::filter::{interface_matches, mount_point_matches};
use atlhyper_testkit::{PROMTOOL, promtool_check_metrics, real_programs_here};

const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";
const PROMETHEUS: &str = "/usr/bin/prometheus";

/// Rate window of the compared expressions; long against the scrape interval, so that the up to
/// one second between the jobs' scrapes moves a rate by little.
const WINDOW: &str = "40s";
/// How long Prometheus scrapes before the expressions are evaluated.
const SCRAPE_FOR: Duration = Duration::from_secs(46);

/// Whether the real components are here; panics under CI=true when not.
fn real_components() -> bool {
    real_programs_here(
        &[NODE_EXPORTER, PROMETHEUS, PROMTOOL],
        "apt-get install -y prometheus prometheus-node-exporter",
    )
}

/// A child process killed (by its own id) and reaped when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(program: &str, args: &[String]) -> Running {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {program}: {e}"));
    Running(child)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GETs `url` until it answers 200, for up to 30 s.
async fn wait_ready(client: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client.get(url).send().await
            && r.status().is_success()
        {
            return;
        }
        assert!(Instant::now() < deadline, "{url} never became ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Percent-encodes a query parameter value.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One instant query's result: the series' labels (without job and instance) to their values.
type Series = BTreeMap<String, f64>;

async fn query(client: &reqwest::Client, prom: &str, expr: &str, at: f64) -> Series {
    let url = format!("{prom}/api/v1/query?query={}&time={at:.3}", encode(expr));
    let body: serde_json::Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["status"], "success", "{expr}: {body}");
    let mut out = Series::new();
    for r in body["data"]["result"].as_array().unwrap() {
        let mut labels: Vec<(String, String)> = r["metric"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| *k != "job" && *k != "instance")
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        labels.sort();
        let key = labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let value: f64 = match r["value"][1].as_str().unwrap() {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap(),
        };
        out.insert(key, value);
    }
    out
}

/// What an expression's values are, for the tolerance.
#[derive(Clone, Copy, PartialEq)]
enum Unit {
    /// Percent: equal within 2 % or 1 percentage point.
    Percent,
    /// Anything else: equal within 2 %.
    Plain,
}

/// Which series the default atlhyper job leaves out on purpose.
#[derive(Clone, Copy, PartialEq)]
enum Absent {
    None,
    /// Virtual interfaces (lo, veth*, cali*, ifb*, ...): atlhyper's DEFAULT_EXCLUDE_INTERFACES
    /// keep node dashboards about the machine's own links; `--node-exporter-filters` brings
    /// them back.
    VirtualInterfaces,
    /// tmpfs, ramfs and other filesystems in atlhyper's DEFAULT_EXCLUDE_FS_TYPES but not in
    /// node_exporter's exclusions (memory-backed, never "disk full"), and kubelet/container
    /// runtime mounts (DEFAULT_EXCLUDE_MOUNT_POINTS: one per pod volume, they would swamp the
    /// node's own filesystems); `--node-exporter-filters` brings them back.
    Filesystems,
}

/// Expressions from the Node Exporter Full dashboard (grafana.com 1860) and node_exporter's
/// mixin alerts, with `$job` and `$w` (the rate window) to fill in.
const EXPRESSIONS: &[(&str, Unit, Absent)] = &[
    // CPU
    (
        "sum by (mode) (rate(node_cpu_seconds_total{job=\"$job\"}[$w])) * 100 / scalar(count(count by (cpu) (node_cpu_seconds_total{job=\"$job\"})))",
        Unit::Percent,
        Absent::None,
    ),
    (
        "100 * (1 - avg(rate(node_cpu_seconds_total{job=\"$job\",mode=\"idle\"}[$w])))",
        Unit::Percent,
        Absent::None,
    ),
    (
        "rate(node_cpu_seconds_total{job=\"$job\"}[$w]) * 100",
        Unit::Percent,
        Absent::None,
    ),
    (
        "count(count by (cpu) (node_cpu_seconds_total{job=\"$job\"}))",
        Unit::Plain,
        Absent::None,
    ),
    (
        "rate(node_cpu_guest_seconds_total{job=\"$job\"}[$w]) * 100",
        Unit::Percent,
        Absent::None,
    ),
    (
        "node_cpu_scaling_frequency_hertz{job=\"$job\"}",
        Unit::Plain,
        Absent::None,
    ),
    // Load and kernel counters
    (
        "avg_over_time(node_load1{job=\"$job\"}[$w])",
        Unit::Plain,
        Absent::None,
    ),
    (
        "avg_over_time(node_load15{job=\"$job\"}[$w])",
        Unit::Plain,
        Absent::None,
    ),
    (
        "rate(node_context_switches_total{job=\"$job\"}[$w])",
        Unit::Plain,
        Absent::None,
    ),
    (
        "rate(node_intr_total{job=\"$job\"}[$w])",
        Unit::Plain,
        Absent::None,
    ),
    // Forks come in bursts (compilers on a shared machine): a rate over windows a second apart
    // can differ by more than 2 %, so the counter itself is compared.
    ("node_forks_total{job=\"$job\"}", Unit::Plain, Absent::None),
    (
        "node_boot_time_seconds{job=\"$job\"}",
        Unit::Plain,
        Absent::None,
    ),
    ("node_uname_info{job=\"$job\"}", Unit::Plain, Absent::None),
    ("node_os_info{job=\"$job\"}", Unit::Plain, Absent::None),
    // Memory
    (
        "100 * node_memory_MemAvailable_bytes{job=\"$job\"} / node_memory_MemTotal_bytes{job=\"$job\"}",
        Unit::Percent,
        Absent::None,
    ),
    (
        "node_memory_MemTotal_bytes{job=\"$job\"}",
        Unit::Plain,
        Absent::None,
    ),
    (
        "100 * (1 - node_memory_SwapFree_bytes{job=\"$job\"} / node_memory_SwapTotal_bytes{job=\"$job\"})",
        Unit::Percent,
        Absent::None,
    ),
    (
        "count({__name__=~\"node_memory_.*\",job=\"$job\"})",
        Unit::Plain,
        Absent::None,
    ),
    // Filesystems
    (
        "100 * node_filesystem_avail_bytes{job=\"$job\",fstype!=\"\"} / node_filesystem_size_bytes{job=\"$job\",fstype!=\"\"}",
        Unit::Percent,
        Absent::Filesystems,
    ),
    (
        "100 * node_filesystem_files_free{job=\"$job\",fstype!=\"\"} / node_filesystem_files{job=\"$job\",fstype!=\"\"}",
        Unit::Percent,
        Absent::Filesystems,
    ),
    (
        "node_filesystem_readonly{job=\"$job\",fstype!=\"\"}",
        Unit::Plain,
        Absent::Filesystems,
    ),
    (
        "node_filesystem_size_bytes{job=\"$job\",fstype!=\"\"} - node_filesystem_free_bytes{job=\"$job\",fstype!=\"\"}",
        Unit::Plain,
        Absent::Filesystems,
    ),
    // Disks
    (
        "rate(node_disk_read_bytes_total{job=\"$job\"}[$w])",
        Unit::Plain,
        Absent::None,
    ),
    (
        "rate(node_disk_written_bytes_total{job=\"$job\"}[$w])",
        Unit::Plain,
        Absent::None,
    ),
    (
        "rate(node_disk_io_time_seconds_total{job=\"$job\"}[$w]) * 100",
        Unit::Percent,
        Absent::None,
    ),
    (
        "rate(node_disk_io_time_weighted_seconds_total{job=\"$job\"}[$w])",
        Unit::Plain,
        Absent::None,
    ),
    (
        "rate(node_disk_reads_completed_total{job=\"$job\"}[$w]) + rate(node_disk_writes_completed_total{job=\"$job\"}[$w])",
        Unit::Plain,
        Absent::None,
    ),
    (
        "rate(node_disk_read_time_seconds_total{job=\"$job\"}[$w]) + rate(node_disk_write_time_seconds_total{job=\"$job\"}[$w])",
        Unit::Plain,
        Absent::None,
    ),
    // Network
    (
        "rate(node_network_receive_bytes_total{job=\"$job\"}[$w]) * 8",
        Unit::Plain,
        Absent::VirtualInterfaces,
    ),
    (
        "rate(node_network_transmit_bytes_total{job=\"$job\"}[$w]) * 8",
        Unit::Plain,
        Absent::VirtualInterfaces,
    ),
    (
        "rate(node_network_receive_packets_total{job=\"$job\"}[$w]) + rate(node_network_transmit_packets_total{job=\"$job\"}[$w])",
        Unit::Plain,
        Absent::VirtualInterfaces,
    ),
    (
        "rate(node_network_receive_errs_total{job=\"$job\"}[$w]) + rate(node_network_transmit_errs_total{job=\"$job\"}[$w]) + rate(node_network_receive_drop_total{job=\"$job\"}[$w]) + rate(node_network_transmit_drop_total{job=\"$job\"}[$w])",
        Unit::Plain,
        Absent::VirtualInterfaces,
    ),
    (
        "node_network_up{job=\"$job\"}",
        Unit::Plain,
        Absent::VirtualInterfaces,
    ),
    (
        "node_network_mtu_bytes{job=\"$job\"}",
        Unit::Plain,
        Absent::VirtualInterfaces,
    ),
    (
        "node_network_info{job=\"$job\"}",
        Unit::Plain,
        Absent::VirtualInterfaces,
    ),
    // Temperature
    (
        "node_hwmon_temp_celsius{job=\"$job\"}",
        Unit::Plain,
        Absent::None,
    ),
    (
        "node_thermal_zone_temp{job=\"$job\"}",
        Unit::Plain,
        Absent::None,
    ),
    // Pressure
    (
        "rate(node_pressure_cpu_waiting_seconds_total{job=\"$job\"}[$w]) * 100",
        Unit::Percent,
        Absent::None,
    ),
    (
        "rate(node_pressure_memory_waiting_seconds_total{job=\"$job\"}[$w]) * 100",
        Unit::Percent,
        Absent::None,
    ),
    (
        "rate(node_pressure_memory_stalled_seconds_total{job=\"$job\"}[$w]) * 100",
        Unit::Percent,
        Absent::None,
    ),
    (
        "rate(node_pressure_io_waiting_seconds_total{job=\"$job\"}[$w]) * 100",
        Unit::Percent,
        Absent::None,
    ),
    (
        "rate(node_pressure_io_stalled_seconds_total{job=\"$job\"}[$w]) * 100",
        Unit::Percent,
        Absent::None,
    ),
    // Kernel tables (Node Exporter Full: "Network Netstat", "Sockstat", "File Descriptors",
    // "Conntrack", "Memory Vmstat", "Softnet"; mixin: NodeFileDescriptorLimit). Gauges that move with every connection (CurrEstab, TCP
    // inuse), the softnet processed rate (a few loopback packets a second here, the scrapes
    // themselves) and the major fault rate (bursts of a few a second while others compile) are
    // left out: one socket, packet or fault between the jobs' scrapes is several percent.
    (
        "node_filefd_maximum{job=\"$job\"}",
        Unit::Plain,
        Absent::None,
    ),
    (
        "node_nf_conntrack_entries_limit{job=\"$job\"}",
        Unit::Plain,
        Absent::None,
    ),
    (
        "node_entropy_pool_size_bits{job=\"$job\"}",
        Unit::Plain,
        Absent::None,
    ),
    (
        "node_entropy_available_bits{job=\"$job\"}",
        Unit::Plain,
        Absent::None,
    ),
    (
        "node_sockstat_FRAG_inuse{job=\"$job\"}",
        Unit::Plain,
        Absent::None,
    ),
    (
        "rate(node_netstat_Tcp_RetransSegs{job=\"$job\"}[$w])",
        Unit::Plain,
        Absent::None,
    ),
    (
        "rate(node_vmstat_pswpout{job=\"$job\"}[$w])",
        Unit::Plain,
        Absent::None,
    ),
    (
        "rate(node_softnet_dropped_total{job=\"$job\"}[$w])",
        Unit::Plain,
        Absent::None,
    ),
    (
        "rate(node_softnet_times_squeezed_total{job=\"$job\"}[$w])",
        Unit::Plain,
        Absent::None,
    ),
];

/// The value of label `name` in a series key.
fn label<'a>(key: &'a str, name: &str) -> Option<&'a str> {
    key.split(',')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

/// Whether node_exporter's series `key` is one the default atlhyper job leaves out on purpose.
fn absent_on_purpose(absent: Absent, key: &str) -> bool {
    match absent {
        Absent::None => false,
        Absent::VirtualInterfaces => label(key, "device").is_some_and(|d| {
            DEFAULT_EXCLUDE_INTERFACES
                .iter()
                .any(|p| interface_matches(p, d))
        }),
        Absent::Filesystems => {
            label(key, "fstype").is_some_and(|t| {
                DEFAULT_EXCLUDE_FS_TYPES.contains(&t)
                    && !NODE_EXPORTER_EXCLUDE_FS_TYPES.contains(&t)
            }) || label(key, "mountpoint").is_some_and(|m| {
                DEFAULT_EXCLUDE_MOUNT_POINTS
                    .iter()
                    .any(|p| mount_point_matches(p, m))
            })
        }
    }
}

/// Relative deviation of `ours` from `theirs` (0 when both are NaN or equal), and whether it is
/// within the tolerance of `unit`.
fn deviation(unit: Unit, theirs: f64, ours: f64) -> (f64, bool) {
    if (theirs.is_nan() && ours.is_nan()) || theirs == ours {
        return (0.0, true);
    }
    let abs = (theirs - ours).abs();
    let rel = abs / theirs.abs().max(ours.abs());
    let ok = rel <= 0.02 || (unit == Unit::Percent && abs <= 1.0);
    (rel, ok)
}

/// Metric family names declared in an exposition, sorted.
fn families(text: &str) -> Vec<&str> {
    let mut names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    names.sort_unstable();
    names
}

/// Scrapes `port` plain and with `Accept-Encoding: gzip`; checks the second is gzip with the
/// same families, and returns both sizes, bytes.
async fn scrape_sizes(client: &reqwest::Client, port: u16) -> (usize, usize) {
    let url = format!("http://127.0.0.1:{port}/metrics");
    let plain = client.get(&url).send().await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none(), "{url}");
    let plain = plain.text().await.unwrap();
    let zipped = client
        .get(&url)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(zipped.headers()["content-encoding"], "gzip", "{url}");
    let zipped = zipped.bytes().await.unwrap();
    let unzipped = atlhyper_http::gunzip_limited(&zipped, 64 << 20).expect("a gzip body");
    let unzipped = String::from_utf8(unzipped).unwrap();
    assert_eq!(families(&unzipped), families(&plain), "{url}");
    (plain.len(), zipped.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atlhyper_metrics_answers_node_exporter_queries_like_node_exporter() {
    if !real_components() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (ne, ours, ours_all, prom) = (free_port(), free_port(), free_port(), free_port());
    // Upstream node_exporter's defaults: Debian's package also leaves out lo (netdev) and
    // /run, /mnt, /media (filesystems); the comparison is against node_exporter as released.
    let _node_exporter = spawn(
        NODE_EXPORTER,
        &[
            format!("--web.listen-address=127.0.0.1:{ne}"),
            "--collector.netdev.device-exclude=".to_owned(),
            format!(
                "--collector.filesystem.mount-points-exclude={}",
                "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)"
            ),
        ],
    );
    let daemon = env!("CARGO_BIN_EXE_atlhyper-metrics");
    let daemon_args = |port: u16, extra: &[&str]| {
        let mut a: Vec<String> = [
            "--pull-only",
            "--node-name",
            "compat-test",
            // Reuse a sample for at most 100 ms: every 1 s scrape reads the kernel afresh, as
            // node_exporter does, so both jobs' samples are taken when scraped.
            "--interval",
            "100ms",
            "--metrics-listen",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        a.push(format!("127.0.0.1:{port}"));
        a.extend(extra.iter().map(|s| (*s).to_owned()));
        a
    };
    let _ours = spawn(daemon, &daemon_args(ours, &[]));
    let _ours_all = spawn(daemon, &daemon_args(ours_all, &["--node-exporter-filters"]));
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n\
             - job_name: node\n  static_configs: [{{targets: ['127.0.0.1:{ne}']}}]\n\
             - job_name: atlhyper\n  static_configs: [{{targets: ['127.0.0.1:{ours}']}}]\n\
             - job_name: atlhyper_all\n  static_configs: [{{targets: ['127.0.0.1:{ours_all}']}}]\n"
        ),
    )
    .unwrap();
    let _prometheus = spawn(
        PROMETHEUS,
        &[
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address=127.0.0.1:{prom}"),
        ],
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    for port in [ne, ours, ours_all] {
        wait_ready(&client, &format!("http://127.0.0.1:{port}/metrics")).await;
    }
    let prom_url = format!("http://127.0.0.1:{prom}");
    wait_ready(&client, &format!("{prom_url}/-/ready")).await;

    // promtool on the daemon's text exposition: the only findings allowed are node_exporter's own
    // names, which dashboards need as they are: meminfo and netstat keys in camelCase
    // (node_memory_MemTotal_bytes, node_netstat_Tcp_CurrEstab) and entropy in bits.
    let text = client
        .get(format!("http://127.0.0.1:{ours}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let problems: Vec<String> = promtool_check_metrics(&text)
        .err()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| {
            let camel = (p.starts_with("node_memory_") || p.starts_with("node_netstat_"))
                && p.contains("camelCase");
            let bits = p.starts_with("node_entropy_") && p.contains("instead of \"bits\"");
            !(camel || bits)
        })
        .collect();
    assert!(problems.is_empty(), "promtool check metrics: {problems:#?}");

    // Compressed as Prometheus asks (Accept-Encoding: gzip), with the same families.
    for (job, port) in [("atlhyper", ours), ("node", ne)] {
        let (plain, zipped) = scrape_sizes(&client, port).await;
        println!("{job}: /metrics {plain} bytes plain, {zipped} bytes gzip");
    }

    tokio::time::sleep(SCRAPE_FOR).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        - 1.0;

    // Every target up, scraped in OpenMetrics (Prometheus asks for it first) or text.
    let up = query(&client, &prom_url, "count(up == 1)", now).await;
    assert_eq!(
        up.values().next(),
        Some(&3.0),
        "not every target is up: {up:?}"
    );

    let mut report = Vec::new();
    let mut failures = Vec::new();
    let mut within_noise = Vec::new();
    // Largest relative deviation of plain values, largest percentage-point gap of percents.
    let mut max_dev: (f64, String) = (0.0, String::new());
    let mut max_pp: (f64, String) = (0.0, String::new());
    let mut compared = 0;
    for &(template, unit, absent) in EXPRESSIONS {
        let expr_for = |job: &str| template.replace("$job", job).replace("$w", WINDOW);
        let theirs = query(&client, &prom_url, &expr_for("node"), now).await;
        // How far node_exporter's own value moves when the window shifts by one scrape
        // interval either way: the two jobs are scraped up to that far apart, before or after,
        // so a bursty rate (disk bytes while others compile) may differ by that much without
        // any difference in meaning.
        let theirs_before = query(&client, &prom_url, &expr_for("node"), now - 1.0).await;
        let theirs_after = query(&client, &prom_url, &expr_for("node"), now + 1.0).await;
        for (job, drop_on_purpose) in [("atlhyper", true), ("atlhyper_all", false)] {
            let ours = query(&client, &prom_url, &expr_for(job), now).await;
            let mut expected: HashMap<&String, f64> = HashMap::new();
            let mut left_out = Vec::new();
            for (k, v) in &theirs {
                if drop_on_purpose && absent_on_purpose(absent, k) {
                    left_out.push(k.as_str());
                } else {
                    expected.insert(k, *v);
                }
            }
            let missing: Vec<_> = expected
                .keys()
                .filter(|k| !ours.contains_key(**k))
                .collect();
            let extra: Vec<_> = ours.keys().filter(|k| !expected.contains_key(k)).collect();
            if !missing.is_empty() || !extra.is_empty() {
                failures.push(format!(
                    "{job}: {template}: missing {missing:?}, extra {extra:?}"
                ));
                continue;
            }
            for (k, v) in &expected {
                let (dev, mut ok) = deviation(unit, *v, ours[*k]);
                let noise = [theirs_before.get(*k), theirs_after.get(*k)]
                    .into_iter()
                    .flatten()
                    .map(|b| (b - v).abs())
                    .fold(0.0, f64::max);
                if !ok && (v - ours[*k]).abs() <= noise {
                    ok = true;
                    within_noise.push(format!(
                        "{job}: {template} {{{k}}}: node_exporter {v}, atlhyper {}, \
                         node_exporter moved {noise} in one scrape interval",
                        ours[*k]
                    ));
                }
                let at = || format!("{job}: {template} {{{k}}}");
                match unit {
                    Unit::Plain if dev > max_dev.0 => max_dev = (dev, at()),
                    Unit::Percent if (v - ours[*k]).abs() > max_pp.0 => {
                        max_pp = ((v - ours[*k]).abs(), at());
                    }
                    _ => {}
                }
                if !ok {
                    failures.push(format!(
                        "{job}: {template} {{{k}}}: node_exporter {v}, atlhyper {}",
                        ours[*k]
                    ));
                }
            }
            compared += 1;
            report.push(format!(
                "{job}: {} series, {} left out on purpose: {template}",
                expected.len(),
                left_out.len()
            ));
        }
    }
    for line in &report {
        println!("{line}");
    }
    for line in &within_noise {
        println!("beyond 2 % but within one scrape interval of node_exporter's own motion: {line}");
    }
    println!(
        "{} expressions x 2 jobs ({compared} comparisons); max relative deviation {:.4} at {}; \
         max percentage-point gap {:.3} at {}",
        EXPRESSIONS.len(),
        max_dev.0,
        max_dev.1,
        max_pp.0,
        max_pp.1
    );
    assert!(failures.is_empty(), "{failures:#?}");
    check_dashboard(&client, &prom_url, now).await;
    check_alert_rules(dir.path());
    // The comparison is not vacuous: the core families have series on any Linux host.
    for expr in [
        "node_cpu_seconds_total{job=\"atlhyper\"}",
        "node_filesystem_avail_bytes{job=\"atlhyper\"}",
        "node_disk_io_time_seconds_total{job=\"atlhyper\"}",
        "node_network_receive_bytes_total{job=\"atlhyper_all\"}",
        "node_memory_MemAvailable_bytes{job=\"atlhyper\"}",
    ] {
        assert!(
            !query(&client, &prom_url, expr, now).await.is_empty(),
            "{expr} has no series"
        );
    }
}

/// Every panel query of deploy/grafana/atlhyper-nodes.json returns data for the atlhyper job.
async fn check_dashboard(client: &reqwest::Client, prom: &str, at: f64) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/atlhyper-nodes.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut queries = 0;
    let mut empty = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$job", "atlhyper")
                .replace("$instance", ".+")
                .replace("$__rate_interval", WINDOW);
            queries += 1;
            if query(client, prom, &expr, at).await.is_empty() {
                empty.push(format!("{}: {expr}", panel["title"]));
            }
        }
    }
    assert!(queries >= 10, "only {queries} panel queries");
    assert!(empty.is_empty(), "panel queries without data: {empty:#?}");
    println!("dashboard: {queries} panel queries, all with data");
}

/// The PrometheusRule's groups in deploy/k8s/monitoring pass `promtool check rules`.
fn check_alert_rules(dir: &Path) {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/k8s/monitoring/monitoring.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let rule_doc = text
        .split("\n---\n")
        .find(|d| d.contains("kind: PrometheusRule"))
        .expect("a PrometheusRule");
    // The rules file is the PrometheusRule's spec, one level less indented.
    let spec: String = rule_doc
        .lines()
        .skip_while(|l| *l != "spec:")
        .skip(1)
        .map(|l| format!("{}\n", l.strip_prefix("  ").unwrap_or(l)))
        .collect();
    let rules = dir.join("rules.yml");
    std::fs::write(&rules, spec).unwrap();
    let out = Command::new(PROMTOOL)
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
