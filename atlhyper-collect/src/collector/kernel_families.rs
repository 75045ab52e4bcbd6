//! node_exporter's families of the kernel's network and table counters: `node_sockstat_*`,
//! `node_netstat_*` (its default field set), `node_nf_conntrack_entries{,_limit}`,
//! `node_filefd_*`, `node_entropy_*`, `node_vmstat_*` (its default field set) and
//! `node_softnet_*`, with node_exporter 1.5's names, types, labels and help texts. Values are
//! the kernel's as read. Pure: the sample in, lines into an [`Exposition`].

use atlhyper_model::{Exposition, MetricKind};

use super::RawSample;
use crate::filter;
use crate::proc::{net_snmp, net_sockstat, vmstat};

use MetricKind::{Counter, Gauge, Untyped};

/// Writes every family the sample has a value for; `page_size` turns sockstat's `mem` pages
/// into `mem_bytes`.
pub(super) fn write(out: &mut Exposition, cur: &RawSample, page_size: u64) {
    write_sockstat(out, &cur.tcp.sockstat_text, page_size);
    write_sockstat(out, &cur.tcp.sockstat6_text, page_size);
    write_netstat(out, &cur.tcp.snmp_text);
    write_netstat(out, &cur.tcp.netstat_text);
    write_tables(out, cur);
    write_vmstat(out, &cur.vmstat.text);
    write_softnet(out, cur);
}

/// One gauge per pair of every line: `node_sockstat_<PROTO>_<key>`, plus `_mem_bytes` beside
/// each `mem` (pages); the `sockets: used` line is `node_sockstat_sockets_used`.
fn write_sockstat(out: &mut Exposition, text: &str, page_size: u64) {
    for f in net_sockstat::fields(text).flatten() {
        if (f.protocol, f.key) == ("sockets", "used") {
            out.family(
                "node_sockstat_sockets_used",
                Gauge,
                "Number of IPv4 sockets in use.",
            )
            .sample(&[], f.value as f64);
            continue;
        }
        let mut one = |key: &str, value: f64| {
            let name = format!("node_sockstat_{}_{key}", f.protocol);
            let help = format!("Number of {} sockets in state {key}.", f.protocol);
            out.family(&name, Gauge, &help).sample(&[], value);
        };
        one(f.key, f.value as f64);
        if f.key == "mem" {
            one("mem_bytes", f.value as f64 * page_size as f64);
        }
    }
}

/// `node_netstat_<Protocol>_<Name>` (untyped) for the counters node_exporter reports by default.
fn write_netstat(out: &mut Exposition, text: &str) {
    for f in net_snmp::fields(text).flatten() {
        if !filter::node_exporter_netstat_field(f.protocol, f.name) {
            continue;
        }
        let name = format!("node_netstat_{}_{}", f.protocol, f.name);
        let help = format!("Statistic {}{}.", f.protocol, f.name);
        out.family(&name, Untyped, &help)
            .sample(&[], f.value as f64);
    }
}

/// Conntrack, file handles and entropy: one gauge each, where the kernel has the file.
fn write_tables(out: &mut Exposition, cur: &RawSample) {
    let t = &cur.system;
    let gauges = [
        (
            "node_nf_conntrack_entries",
            "Number of currently allocated flow entries for connection tracking.",
            t.conntrack_entries,
        ),
        (
            "node_nf_conntrack_entries_limit",
            "Maximum size of connection tracking table.",
            t.conntrack_limit,
        ),
        (
            "node_filefd_allocated",
            "File descriptor statistics: allocated.",
            t.file_nr.map(|f| f.allocated),
        ),
        (
            "node_filefd_maximum",
            "File descriptor statistics: maximum.",
            t.file_nr.map(|f| f.maximum),
        ),
        (
            "node_entropy_available_bits",
            "Bits of available entropy.",
            t.entropy_bits,
        ),
        (
            "node_entropy_pool_size_bits",
            "Bits of entropy pool.",
            t.entropy_pool_bits,
        ),
    ];
    for (name, help, value) in gauges {
        if let Some(v) = value {
            out.family(name, Gauge, help).sample(&[], v as f64);
        }
    }
}

/// `node_vmstat_<key>` (untyped) for the keys node_exporter reports by default.
fn write_vmstat(out: &mut Exposition, text: &str) {
    for f in vmstat::fields(text).flatten() {
        if !filter::node_exporter_vmstat_field(f.key) {
            continue;
        }
        let name = format!("node_vmstat_{}", f.key);
        let help = format!("/proc/vmstat information field {}.", f.key);
        out.family(&name, Untyped, &help)
            .sample(&[], f.value as f64);
    }
}

type SoftnetRead = fn(&crate::proc::net_softnet_stat::SoftnetCpu) -> u64;

/// Per-CPU softnet counters, labelled with the CPU number.
fn write_softnet(out: &mut Exposition, cur: &RawSample) {
    let cpus = &cur.softnet.cpus;
    let labels: Vec<String> = cpus.iter().map(|c| c.cpu.to_string()).collect();
    let families: [(&str, &str, SoftnetRead); 3] = [
        (
            "node_softnet_processed_total",
            "Number of processed packets",
            |c| c.processed,
        ),
        (
            "node_softnet_dropped_total",
            "Number of dropped packets",
            |c| c.dropped,
        ),
        (
            "node_softnet_times_squeezed_total",
            "Number of times processing packets ran out of quota",
            |c| c.time_squeeze,
        ),
    ];
    for (name, help, read) in families {
        let mut f = out.family(name, Counter, help);
        for (c, cpu) in cpus.iter().zip(&labels) {
            f.sample(&[("cpu", cpu)], read(c) as f64);
        }
    }
}
