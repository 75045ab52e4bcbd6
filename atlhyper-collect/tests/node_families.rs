//! The node_exporter-compatible families over a captured tree: values are the kernel's raw
//! counters in node_exporter's units, each family announced once, and the metric list in
//! `deploy/prometheus/node-metrics.md` is exactly what the code writes (regenerate it with
//! `UPDATE_METRIC_LIST=1 cargo test -p atlhyper-collect --test node_families`).

mod common;

use std::collections::BTreeMap;

use atlhyper_collect::write_processes;
use atlhyper_model::{Exposition, ExpositionFormat};
use common::{collector, fixture};

/// The text exposition of the `vm/t0` capture, with its top processes.
fn exposition() -> String {
    let mut c = collector(&fixture("vm/t0"), 5);
    let snapshot = c.collect();
    let mut out = Exposition::new(ExpositionFormat::Text);
    c.write_node_families(&mut out);
    write_processes(&mut out, &snapshot.processes);
    assert!(out.repeated().is_empty(), "{:?}", out.repeated());
    out.finish()
}

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn counters_are_the_kernels_in_node_exporter_units() {
    let text = exposition();
    // /proc/stat cpu0: user 31555 ticks at 100 Hz.
    assert_eq!(
        value(&text, "node_cpu_seconds_total{cpu=\"0\",mode=\"user\"}"),
        Some(315.55)
    );
    assert_eq!(value(&text, "node_intr_total"), Some(810_554.0));
    assert_eq!(
        value(&text, "node_context_switches_total"),
        Some(1_226_524.0)
    );
    assert_eq!(
        value(&text, "node_boot_time_seconds"),
        Some(1_795_574_545.0)
    );
    // meminfo in kB, exposed in bytes, every field.
    assert_eq!(
        value(&text, "node_memory_MemTotal_bytes"),
        Some(24_683_656.0 * 1024.0)
    );
    assert!(text.contains("\nnode_memory_HugePages_Total "));
    assert!(text.contains("\nnode_memory_Active_anon_bytes "));
    // diskstats vda: 7843978 sectors read, 21601128 written, 18192 ms doing IO.
    assert_eq!(
        value(&text, "node_disk_read_bytes_total{device=\"vda\"}"),
        Some(7_843_978.0 * 512.0)
    );
    assert_eq!(
        value(&text, "node_disk_written_bytes_total{device=\"vda\"}"),
        Some(21_601_128.0 * 512.0)
    );
    assert_eq!(
        value(&text, "node_disk_io_time_seconds_total{device=\"vda\"}"),
        Some(18.192)
    );
    // statfs of /: 4096-byte blocks, 18112919 available to users, 60344468 free.
    let root = "{device=\"/dev/vda\",fstype=\"ext4\",mountpoint=\"/\"}";
    assert_eq!(
        value(&text, &format!("node_filesystem_avail_bytes{root}")),
        Some(18_112_919.0 * 4096.0)
    );
    assert_eq!(
        value(&text, &format!("node_filesystem_free_bytes{root}")),
        Some(60_344_468.0 * 4096.0)
    );
    assert_eq!(
        value(&text, &format!("node_filesystem_readonly{root}")),
        Some(0.0)
    );
    // Virtual interfaces are left out by default; eth0 is there with its counters.
    assert!(!text.contains("device=\"lo\""));
    assert!(text.contains("node_network_receive_bytes_total{device=\"eth0\"} "));
    assert!(text.contains("node_network_up{device=\"eth0\"} "));
}

/// The kernel table families against the values in the `vm/t0` files, with node_exporter 1.5's
/// types: sockstat gauges (mem also in bytes), netstat and vmstat untyped and filtered to
/// node_exporter's default fields, softnet counters per CPU.
#[test]
fn kernel_table_families_follow_node_exporter() {
    let text = exposition();
    let v = |series: &str| value(&text, series);
    assert_eq!(v("node_sockstat_sockets_used"), Some(111.0));
    assert_eq!(v("node_sockstat_TCP_tw"), Some(15.0));
    assert_eq!(v("node_sockstat_TCP_alloc"), Some(27.0));
    assert_eq!(v("node_sockstat_TCP_mem_bytes"), Some(96.0 * 4096.0));
    assert_eq!(v("node_sockstat_FRAG_memory"), Some(0.0));
    assert_eq!(v("node_sockstat_TCP6_inuse"), Some(0.0), "from sockstat6");
    assert_eq!(v("node_netstat_Tcp_CurrEstab"), Some(20.0));
    assert_eq!(v("node_netstat_Tcp_ActiveOpens"), Some(307_553.0));
    assert_eq!(
        v("node_netstat_Ip_Forwarding"),
        Some(2.0),
        "2: not a router"
    );
    assert!(
        v("node_netstat_TcpExt_ListenDrops").is_some(),
        "from netstat"
    );
    assert_eq!(v("node_netstat_Tcp_MaxConn"), None, "not a default field");
    assert_eq!(v("node_nf_conntrack_entries"), Some(0.0));
    assert_eq!(v("node_nf_conntrack_entries_limit"), Some(262_144.0));
    assert_eq!(v("node_filefd_allocated"), Some(2398.0));
    assert_eq!(v("node_filefd_maximum"), Some(2_466_170.0));
    assert_eq!(v("node_entropy_available_bits"), Some(256.0));
    assert_eq!(v("node_entropy_pool_size_bits"), Some(256.0));
    assert_eq!(v("node_vmstat_pgfault"), Some(704_220_857.0));
    assert_eq!(v("node_vmstat_pswpout"), Some(0.0));
    assert_eq!(v("node_vmstat_nr_free_pages"), None, "not a default field");
    assert_eq!(
        v("node_softnet_processed_total{cpu=\"0\"}"),
        Some(f64::from(0x0022_1c92))
    );
    assert_eq!(v("node_softnet_dropped_total{cpu=\"1\"}"), Some(0.0));
    for (family, kind) in [
        ("node_sockstat_TCP_inuse", "gauge"),
        ("node_netstat_Tcp_CurrEstab", "untyped"),
        ("node_vmstat_pgmajfault", "untyped"),
        ("node_nf_conntrack_entries", "gauge"),
        ("node_filefd_allocated", "gauge"),
        ("node_softnet_times_squeezed_total", "counter"),
    ] {
        assert!(
            text.contains(&format!("\n# TYPE {family} {kind}\n")),
            "{family} {kind}"
        );
    }
}

#[test]
fn each_family_is_announced_once_with_help_and_type() {
    let text = exposition();
    let mut seen = BTreeMap::new();
    for l in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        *seen.entry(l.to_owned()).or_insert(0) += 1;
    }
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
    let helps = text.lines().filter(|l| l.starts_with("# HELP ")).count();
    assert_eq!(helps, seen.len());
}

/// The metric list: one row per family with its type, labels and help, from the exposition.
fn metric_list(text: &str) -> String {
    let mut rows: Vec<(String, String, String, String)> = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix("# HELP ") else {
            continue;
        };
        let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
        let kind = lines
            .next()
            .and_then(|t| t.rsplit(' ').next())
            .unwrap_or("")
            .to_owned();
        let labels = lines
            .peek()
            .and_then(|s| s.split_once('{'))
            .map(|(_, l)| {
                l.split("\",")
                    .filter_map(|kv| kv.split_once('=').map(|(k, _)| k.to_owned()))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        rows.push((name.to_owned(), kind, labels, help.to_owned()));
    }
    let mut doc = String::from(
        "# Node metrics of atlhyper-metrics\n\n\
         Generated from the code by `atlhyper-collect/tests/node_families.rs` over the captured \
         `vm/t0` tree (a 2-CPU VM without hwmon, thermal zones or cpufreq: on hosts that have \
         them, `node_hwmon_temp_celsius{chip,sensor}`, `node_thermal_zone_temp{type,zone}` and \
         `node_cpu_scaling_frequency_hertz{cpu}` appear as well). The `node_memory_*` rows are \
         the meminfo fields of that kernel; other kernels have more or fewer. The daemon's own \
         `atlhyper_metrics_*` figures follow these on the same endpoint.\n\n\
         | family | type | labels | help |\n|---|---|---|---|\n",
    );
    for (name, kind, labels, help) in rows {
        doc.push_str(&format!(
            "| `{name}` | {kind} | {labels} | {} |\n",
            help.replace('|', "\\|")
        ));
    }
    doc
}

#[test]
fn metric_list_matches_the_code() {
    let doc = metric_list(&exposition());
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/prometheus/node-metrics.md");
    if std::env::var_os("UPDATE_METRIC_LIST").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &doc).unwrap();
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        stored == doc,
        "{} is out of date: UPDATE_METRIC_LIST=1 cargo test -p atlhyper-collect --test node_families",
        path.display()
    );
}
