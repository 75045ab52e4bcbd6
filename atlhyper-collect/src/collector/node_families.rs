//! node_exporter-compatible families from one raw sample: the kernel's counters as read, with
//! node_exporter's names, labels, units and help texts, so its dashboards and alert rules work
//! against atlhyper-metrics unchanged.
//!
//! Pure: the sample in, lines into an [`Exposition`]. Which interfaces and mounts appear is
//! decided when sampling (the collector's exclusion lists); which block devices appear is decided
//! here, with node_exporter's default device exclusion.

use atlhyper_model::{Exposition, MetricKind, ProcessMetrics};

use super::RawSample;
use super::host::HostFacts;
use super::psi::RESOURCES;
use crate::filter;
use crate::proc::meminfo;
use crate::proc::stat::CpuTimes;

use MetricKind::{Counter, Gauge};

/// The host constants the counters are scaled with.
#[derive(Debug, Clone, Copy)]
pub(super) struct Scale {
    /// Clock ticks per second (`/proc/stat` is in ticks).
    pub(super) clock_ticks_per_sec: u64,
    /// Bytes per `/proc/diskstats` sector.
    pub(super) sector_size: u64,
    /// Bytes per page (`/proc/net/sockstat` counts buffer memory in pages).
    pub(super) page_size: u64,
}

/// Writes every node_exporter family the sample has a value for.
pub(super) fn write(out: &mut Exposition, cur: &RawSample, facts: &HostFacts, scale: Scale) {
    write_cpu(out, cur, scale);
    write_host(out, cur, facts);
    write_memory(out, cur);
    write_filesystems(out, cur);
    write_disks(out, cur, scale);
    write_network(out, cur);
    write_temperatures(out, cur);
    write_pressure(out, cur);
    super::kernel_families::write(out, cur, scale.page_size);
}

fn write_cpu(out: &mut Exposition, cur: &RawSample, scale: Scale) {
    let ticks = scale.clock_ticks_per_sec.max(1) as f64;
    let secs = |t: u64| t as f64 / ticks;
    let Some(stat) = cur.cpu.stat() else {
        return;
    };
    let names: Vec<String> = (0..stat.cpus.len()).map(|i| i.to_string()).collect();
    {
        let mut f = out.family(
            "node_cpu_seconds_total",
            Counter,
            "Seconds the CPUs spent in each mode.",
        );
        for (cpu, t) in names.iter().zip(&stat.cpus) {
            for (mode, ticks) in modes(t) {
                f.sample(&[("cpu", cpu), ("mode", mode)], secs(ticks));
            }
        }
    }
    {
        let mut f = out.family(
            "node_cpu_guest_seconds_total",
            Counter,
            "Seconds the CPUs spent in guests (VMs) for each mode.",
        );
        for (cpu, t) in names.iter().zip(&stat.cpus) {
            for (mode, ticks) in [("nice", t.guest_nice), ("user", t.guest)] {
                if let Some(ticks) = ticks {
                    f.sample(&[("cpu", cpu), ("mode", mode)], secs(ticks));
                }
            }
        }
    }
    {
        let mut f = out.family(
            "node_cpu_scaling_frequency_hertz",
            Gauge,
            "Current scaled CPU thread frequency in hertz.",
        );
        for &(i, mhz) in &cur.cpu.scaling_mhz {
            f.sample(&[("cpu", &i.to_string())], mhz * 1e6);
        }
    }
    if let Some(load) = cur.cpu.loadavg {
        for (name, help, v) in [
            ("node_load1", "1m load average.", load.one),
            ("node_load5", "5m load average.", load.five),
            ("node_load15", "15m load average.", load.fifteen),
        ] {
            out.family(name, Gauge, help).sample(&[], v);
        }
    }
    let singles = [
        (
            "node_context_switches_total",
            Counter,
            "Total number of context switches.",
            stat.ctxt,
        ),
        (
            "node_intr_total",
            Counter,
            "Total number of interrupts serviced.",
            stat.intr,
        ),
        (
            "node_forks_total",
            Counter,
            "Total number of forks.",
            stat.processes,
        ),
        (
            "node_procs_running",
            Gauge,
            "Number of processes in runnable state.",
            stat.procs_running,
        ),
        (
            "node_procs_blocked",
            Gauge,
            "Number of processes blocked waiting for I/O to complete.",
            stat.procs_blocked,
        ),
        (
            "node_boot_time_seconds",
            Gauge,
            "Node boot time, in unixtime.",
            Some(stat.btime),
        ),
    ];
    for (name, kind, help, v) in singles {
        if let Some(v) = v {
            out.family(name, kind, help).sample(&[], v as f64);
        }
    }
}

/// node_exporter's modes of one cpu line, in its order, with their ticks.
fn modes(t: &CpuTimes) -> impl Iterator<Item = (&'static str, u64)> {
    [
        ("idle", Some(t.idle)),
        ("iowait", Some(t.iowait)),
        ("irq", Some(t.irq)),
        ("nice", Some(t.nice)),
        ("softirq", Some(t.softirq)),
        ("steal", t.steal),
        ("system", Some(t.system)),
        ("user", Some(t.user)),
    ]
    .into_iter()
    .filter_map(|(mode, v)| v.map(|v| (mode, v)))
}

/// The os-release keys of `node_os_info`, as (key, label).
const OS_INFO_LABELS: [(&str, &str); 12] = [
    ("BUILD_ID", "build_id"),
    ("ID", "id"),
    ("ID_LIKE", "id_like"),
    ("IMAGE_ID", "image_id"),
    ("IMAGE_VERSION", "image_version"),
    ("NAME", "name"),
    ("PRETTY_NAME", "pretty_name"),
    ("VARIANT", "variant"),
    ("VARIANT_ID", "variant_id"),
    ("VERSION", "version"),
    ("VERSION_CODENAME", "version_codename"),
    ("VERSION_ID", "version_id"),
];

fn write_host(out: &mut Exposition, cur: &RawSample, facts: &HostFacts) {
    if let Some(at) = cur.wall_time {
        out.family(
            "node_time_seconds",
            Gauge,
            "System time in seconds since epoch (1970).",
        )
        .sample(&[], at.timestamp_micros() as f64 / 1e6);
    }
    if !facts.uname.is_empty() {
        let labels: Vec<(&str, &str)> = facts.uname.iter().map(|(k, v)| (*k, v.as_str())).collect();
        out.family(
            "node_uname_info",
            Gauge,
            "Labeled system information as provided by the uname system call.",
        )
        .sample(&labels, 1.0);
    }
    let Some(text) = &facts.os_release else {
        return;
    };
    let mut values = [""; OS_INFO_LABELS.len()];
    for (k, v) in crate::etc::os_release::fields(text) {
        if let Some(i) = OS_INFO_LABELS.iter().position(|(key, _)| *key == k) {
            values[i] = v;
        }
    }
    let labels: Vec<(&str, &str)> = OS_INFO_LABELS
        .iter()
        .zip(values)
        .map(|((_, label), v)| (*label, v))
        .collect();
    out.family(
        "node_os_info",
        Gauge,
        "A metric with a constant '1' value labeled by build_id, id, id_like, image_id, \
         image_version, name, pretty_name, variant, variant_id, version, version_codename, \
         version_id.",
    )
    .sample(&labels, 1.0);
    // "12" or "22.04.3": node_exporter keeps major.minor.
    let version_id = values[11];
    let major_minor: String = version_id
        .splitn(3, '.')
        .take(2)
        .collect::<Vec<_>>()
        .join(".");
    if let Ok(v) = major_minor.parse::<f64>() {
        out.family(
            "node_os_version",
            Gauge,
            "Metric containing the major.minor part of the OS version.",
        )
        .sample(
            &[
                ("id", values[1]),
                ("id_like", values[2]),
                ("name", values[5]),
            ],
            v,
        );
    }
}

/// `node_memory_` name of a meminfo key: `Active(anon)` becomes `Active_anon`, sizes get
/// `_bytes`.
fn memory_name(key: &str, is_bytes: bool) -> String {
    let mut name = String::with_capacity(key.len() + 18);
    name.push_str("node_memory_");
    for c in key.chars() {
        match c {
            '(' => name.push('_'),
            ')' => {}
            c => name.push(c),
        }
    }
    if is_bytes {
        name.push_str("_bytes");
    }
    name
}

fn write_memory(out: &mut Exposition, cur: &RawSample) {
    for field in meminfo::fields(&cur.memory.text).flatten() {
        let name = memory_name(field.key, field.is_bytes);
        let help = format!(
            "Memory information field {}.",
            name.trim_start_matches("node_memory_")
        );
        out.family(&name, Gauge, &help)
            .sample(&[], field.value as f64);
    }
}

type FsRead = fn(&crate::sampler::FsSpace) -> f64;

/// Filesystem gauges of the statfs figures.
const FS_FAMILIES: [(&str, &str, FsRead); 5] = [
    (
        "node_filesystem_size_bytes",
        "Filesystem size in bytes.",
        |s| s.total as f64,
    ),
    (
        "node_filesystem_free_bytes",
        "Filesystem free space in bytes.",
        |s| s.free as f64,
    ),
    (
        "node_filesystem_avail_bytes",
        "Filesystem space available to non-root users in bytes.",
        |s| s.available as f64,
    ),
    (
        "node_filesystem_files",
        "Filesystem total file nodes.",
        |s| s.files as f64,
    ),
    (
        "node_filesystem_files_free",
        "Filesystem total free file nodes.",
        |s| s.files_free as f64,
    ),
];

fn write_filesystems(out: &mut Exposition, cur: &RawSample) {
    let labels = |m: &super::disks::MountSample| {
        [
            ("device", m.source.clone()),
            ("fstype", m.fs_type.clone()),
            ("mountpoint", m.mount_point.clone()),
        ]
    };
    let mounts = &cur.disks.mounts;
    for (name, help, read) in FS_FAMILIES {
        let mut f = out.family(name, Gauge, help);
        for m in mounts {
            if let Some(space) = &m.space {
                let l = labels(m);
                f.sample(&borrow(&l), read(space));
            }
        }
    }
    let mut f = out.family(
        "node_filesystem_readonly",
        Gauge,
        "Filesystem read-only status.",
    );
    for m in mounts.iter().filter(|m| m.space.is_some()) {
        let l = labels(m);
        f.sample(&borrow(&l), f64::from(u8::from(m.read_only)));
    }
    let mut f = out.family(
        "node_filesystem_device_error",
        Gauge,
        "Whether an error occurred while getting statistics for the given device.",
    );
    for m in mounts {
        let l = labels(m);
        f.sample(&borrow(&l), f64::from(u8::from(m.space.is_none())));
    }
}

/// Label pairs borrowed from owned ones.
fn borrow<'a, const N: usize>(labels: &'a [(&'a str, String); N]) -> [(&'a str, &'a str); N] {
    labels.each_ref().map(|(k, v)| (*k, v.as_str()))
}

type DiskRead = fn(&super::disks::DeviceSample, f64) -> f64;

/// Disk counters: name, help, value from a device and the sector size.
const DISK_FAMILIES: [(&str, &str, DiskRead); 8] = [
    (
        "node_disk_reads_completed_total",
        "The total number of reads completed successfully.",
        |d, _| d.counters.reads as f64,
    ),
    (
        "node_disk_writes_completed_total",
        "The total number of writes completed successfully.",
        |d, _| d.counters.writes as f64,
    ),
    (
        "node_disk_read_bytes_total",
        "The total number of bytes read successfully.",
        |d, sector| d.counters.sectors_read as f64 * sector,
    ),
    (
        "node_disk_written_bytes_total",
        "The total number of bytes written successfully.",
        |d, sector| d.counters.sectors_written as f64 * sector,
    ),
    (
        "node_disk_read_time_seconds_total",
        "The total number of seconds spent by all reads.",
        |d, _| d.times.read_ms as f64 / 1000.0,
    ),
    (
        "node_disk_write_time_seconds_total",
        "This is the total number of seconds spent by all writes.",
        |d, _| d.times.write_ms as f64 / 1000.0,
    ),
    (
        "node_disk_io_time_seconds_total",
        "Total seconds spent doing I/Os.",
        |d, _| d.counters.io_ms as f64 / 1000.0,
    ),
    (
        "node_disk_io_time_weighted_seconds_total",
        "The weighted # of seconds spent doing I/Os.",
        |d, _| d.times.weighted_io_ms as f64 / 1000.0,
    ),
];

fn write_disks(out: &mut Exposition, cur: &RawSample, scale: Scale) {
    let sector = scale.sector_size as f64;
    let devices: Vec<_> = cur
        .disks
        .devices
        .iter()
        .filter(|d| !filter::node_exporter_ignores_disk(&d.name))
        .collect();
    for (name, help, read) in DISK_FAMILIES {
        let mut f = out.family(name, Counter, help);
        for d in &devices {
            f.sample(&[("device", &d.name)], read(d, sector));
        }
    }
}

type NetRead = fn(&crate::delta::NetCounters) -> u64;

/// `/proc/net/dev` counters: name, help, value.
const NET_FAMILIES: [(&str, &str, NetRead); 8] = [
    (
        "node_network_receive_bytes_total",
        "Network device statistic receive_bytes.",
        |c| c.rx_bytes,
    ),
    (
        "node_network_receive_packets_total",
        "Network device statistic receive_packets.",
        |c| c.rx_packets,
    ),
    (
        "node_network_receive_errs_total",
        "Network device statistic receive_errs.",
        |c| c.rx_errors,
    ),
    (
        "node_network_receive_drop_total",
        "Network device statistic receive_drop.",
        |c| c.rx_dropped,
    ),
    (
        "node_network_transmit_bytes_total",
        "Network device statistic transmit_bytes.",
        |c| c.tx_bytes,
    ),
    (
        "node_network_transmit_packets_total",
        "Network device statistic transmit_packets.",
        |c| c.tx_packets,
    ),
    (
        "node_network_transmit_errs_total",
        "Network device statistic transmit_errs.",
        |c| c.tx_errors,
    ),
    (
        "node_network_transmit_drop_total",
        "Network device statistic transmit_drop.",
        |c| c.tx_dropped,
    ),
];

fn write_network(out: &mut Exposition, cur: &RawSample) {
    let ifaces = &cur.network.interfaces;
    for (name, help, read) in NET_FAMILIES {
        let mut f = out.family(name, Counter, help);
        for i in ifaces {
            f.sample(&[("device", &i.name)], read(&i.counters) as f64);
        }
    }
    {
        let mut f = out.family(
            "node_network_up",
            Gauge,
            "Value is 1 if operstate is 'up', 0 otherwise.",
        );
        for i in ifaces {
            f.sample(
                &[("device", &i.name)],
                f64::from(u8::from(i.status == "up")),
            );
        }
    }
    {
        let mut f = out.family(
            "node_network_info",
            Gauge,
            "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
        );
        for i in ifaces {
            let labels = [
                ("address", i.mac.as_str()),
                ("broadcast", &i.broadcast),
                ("device", &i.name),
                ("duplex", &i.duplex),
                ("ifalias", &i.ifalias),
                ("operstate", &i.status),
            ];
            f.sample(&labels, 1.0);
        }
    }
    {
        // A speed of -1 is "unknown" (virtual NICs, link down): left out, not -125000.
        let mut f = out.family(
            "node_network_speed_bytes",
            Gauge,
            "Network device property: speed_bytes",
        );
        for i in ifaces {
            if let Some(mbit) = i.link_speed.filter(|s| *s >= 0) {
                f.sample(&[("device", &i.name)], mbit as f64 * 125_000.0);
            }
        }
    }
    let mut f = out.family(
        "node_network_mtu_bytes",
        Gauge,
        "Network device property: mtu_bytes",
    );
    for i in ifaces {
        if let Some(mtu) = i.mtu {
            f.sample(&[("device", &i.name)], f64::from(mtu));
        }
    }
}

fn write_temperatures(out: &mut Exposition, cur: &RawSample) {
    {
        let mut f = out.family(
            "node_hwmon_temp_celsius",
            Gauge,
            "Hardware monitor for temperature (input)",
        );
        for t in &cur.temperature.hwmon {
            f.sample(&[("chip", &t.group), ("sensor", &t.item)], t.celsius);
        }
    }
    let mut f = out.family(
        "node_thermal_zone_temp",
        Gauge,
        "Zone temperature in Celsius",
    );
    for t in &cur.temperature.zones {
        f.sample(&[("type", &t.group), ("zone", &t.item)], t.celsius);
    }
}

fn write_pressure(out: &mut Exposition, cur: &RawSample) {
    let us = |v: u64| v as f64 / 1e6;
    for (resource, file) in RESOURCES.iter().zip(&cur.psi.files) {
        let Some(p) = file else { continue };
        let (waiting_help, stalled_help) = match *resource {
            "cpu" => (
                "Total time in seconds that processes have waited for CPU time",
                "Total time in seconds no process could make progress due to CPU congestion",
            ),
            "memory" => (
                "Total time in seconds that processes have waited for memory",
                "Total time in seconds no process could make progress due to memory congestion",
            ),
            _ => (
                "Total time in seconds that processes have waited due to IO congestion",
                "Total time in seconds no process could make progress due to IO congestion",
            ),
        };
        let waiting = format!("node_pressure_{resource}_waiting_seconds_total");
        out.family(&waiting, Counter, waiting_help)
            .sample(&[], us(p.some.total_us));
        if let Some(full) = p.full {
            let stalled = format!("node_pressure_{resource}_stalled_seconds_total");
            out.family(&stalled, Counter, stalled_help)
                .sample(&[], us(full.total_us));
        }
    }
}

/// The top processes of a snapshot as `atlhyper_process_*` gauges. The label set is bounded by
/// the collector's top-N setting (the union of the top N by CPU and by memory).
pub fn write_processes(out: &mut Exposition, processes: &[ProcessMetrics]) {
    type Read = fn(&ProcessMetrics) -> f64;
    let families: [(&str, &str, Read); 5] = [
        (
            "atlhyper_process_cpu_percent",
            "CPU use over the last collection interval as top shows it (100 = one core).",
            |p| p.cpu_percent,
        ),
        (
            "atlhyper_process_resident_memory_bytes",
            "Resident memory (VmRSS), bytes.",
            |p| p.mem_rss as f64,
        ),
        (
            "atlhyper_process_memory_percent",
            "Resident memory as a percent of MemTotal.",
            |p| p.mem_percent,
        ),
        ("atlhyper_process_threads", "Threads of the process.", |p| {
            f64::from(p.threads)
        }),
        (
            "atlhyper_process_start_time_seconds",
            "Start time of the process, Unix seconds.",
            |p| p.start_time as f64,
        ),
    ];
    let pids: Vec<String> = processes.iter().map(|p| p.pid.to_string()).collect();
    for (name, help, read) in families {
        let mut f = out.family(name, Gauge, help);
        for (p, pid) in processes.iter().zip(&pids) {
            f.sample(
                &[("pid", pid), ("name", &p.name), ("user", &p.user)],
                read(p),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_names_follow_node_exporter() {
        assert_eq!(memory_name("MemTotal", true), "node_memory_MemTotal_bytes");
        assert_eq!(
            memory_name("Active(anon)", true),
            "node_memory_Active_anon_bytes"
        );
        assert_eq!(
            memory_name("HugePages_Total", false),
            "node_memory_HugePages_Total"
        );
    }

    #[test]
    fn cpu_modes_skip_missing_steal() {
        let t = CpuTimes {
            user: 10,
            idle: 5,
            steal: None,
            ..CpuTimes::default()
        };
        let m: Vec<_> = modes(&t).collect();
        assert_eq!(m.len(), 7);
        assert!(m.contains(&("user", 10)) && m.contains(&("idle", 5)));
        assert!(!m.iter().any(|(mode, _)| *mode == "steal"));
    }
}
