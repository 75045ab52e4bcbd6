//! Each hot parser against procfs-core on the same text (captured on this machine), in one run,
//! so the ratio is comparable even on a shared machine.

use std::hint::black_box;

use atlhyper_collect::proc::{
    diskstats, loadavg, meminfo, mountinfo, net_dev, pid_stat, pid_status, pressure, stat,
};
use criterion::{Criterion, criterion_group, criterion_main};
use procfs_core::{ExplicitSystemInfo, FromRead, FromReadSI};

const STAT: &str = include_str!("../tests/fixtures/vm/t0/proc/stat");
const MEMINFO: &str = include_str!("../tests/fixtures/vm/t0/proc/meminfo");
const LOADAVG: &str = include_str!("../tests/fixtures/vm/t0/proc/loadavg");
const DISKSTATS: &str = include_str!("../tests/fixtures/vm/t0/proc/diskstats");
const NET_DEV: &str = include_str!("../tests/fixtures/vm/t0/proc/net/dev");
const MOUNTINFO: &str = include_str!("../tests/fixtures/vm/t0/proc/1/mountinfo");
const PRESSURE: &str = include_str!("../tests/fixtures/vm/t0/proc/pressure/io");
const PID_STAT: &str = include_str!("../tests/fixtures/vm/t0/proc/1/stat");
const PID_STATUS: &str = include_str!("../tests/fixtures/vm/t0/proc/1/status");

fn parsers(c: &mut Criterion) {
    let si = ExplicitSystemInfo {
        boot_time_secs: 0,
        ticks_per_second: 100,
        page_size: 4096,
        is_little_endian: true,
    };

    let mut g = c.benchmark_group("stat");
    let mut reused = stat::Stat::default();
    g.bench_function("ours", |b| {
        b.iter(|| stat::parse_into(black_box(STAT), &mut reused).map(|()| reused.cpu.user))
    });
    g.bench_function("procfs-core", |b| {
        b.iter(|| procfs_core::KernelStats::from_read(black_box(STAT.as_bytes()), &si))
    });
    g.finish();

    let mut g = c.benchmark_group("meminfo");
    g.bench_function("ours", |b| b.iter(|| meminfo::parse(black_box(MEMINFO))));
    g.bench_function("procfs-core", |b| {
        b.iter(|| procfs_core::Meminfo::from_read(black_box(MEMINFO.as_bytes())))
    });
    g.finish();

    let mut g = c.benchmark_group("loadavg");
    g.bench_function("ours", |b| b.iter(|| loadavg::parse(black_box(LOADAVG))));
    g.bench_function("procfs-core", |b| {
        b.iter(|| procfs_core::LoadAverage::from_read(black_box(LOADAVG.as_bytes())))
    });
    g.finish();

    let mut g = c.benchmark_group("diskstats");
    g.bench_function("ours", |b| {
        b.iter(|| {
            diskstats::parse(black_box(DISKSTATS))
                .filter_map(Result::ok)
                .map(|d| d.sectors_read)
                .sum::<u64>()
        })
    });
    g.bench_function("procfs-core", |b| {
        b.iter(|| procfs_core::DiskStats::from_read(black_box(DISKSTATS.as_bytes())))
    });
    g.finish();

    let mut g = c.benchmark_group("net_dev");
    g.bench_function("ours", |b| {
        b.iter(|| {
            net_dev::parse(black_box(NET_DEV))
                .filter_map(Result::ok)
                .map(|d| d.rx_bytes)
                .sum::<u64>()
        })
    });
    g.bench_function("procfs-core", |b| {
        b.iter(|| procfs_core::net::InterfaceDeviceStatus::from_read(black_box(NET_DEV.as_bytes())))
    });
    g.finish();

    let mut g = c.benchmark_group("pid_stat");
    g.bench_function("ours", |b| {
        b.iter(|| pid_stat::parse(black_box(PID_STAT)).map(|s| s.utime))
    });
    g.bench_function("procfs-core", |b| {
        b.iter(|| procfs_core::process::Stat::from_read(black_box(PID_STAT.as_bytes())))
    });
    g.finish();

    let mut g = c.benchmark_group("pid_status");
    g.bench_function("ours", |b| {
        b.iter(|| pid_status::parse(black_box(PID_STATUS)))
    });
    g.bench_function("procfs-core", |b| {
        b.iter(|| procfs_core::process::Status::from_read(black_box(PID_STATUS.as_bytes())))
    });
    g.finish();

    let mut g = c.benchmark_group("mountinfo");
    g.bench_function("ours", |b| {
        b.iter(|| {
            mountinfo::parse_mountinfo(black_box(MOUNTINFO))
                .filter_map(Result::ok)
                .count()
        })
    });
    g.bench_function("procfs-core", |b| {
        b.iter(|| procfs_core::process::MountInfos::from_read(black_box(MOUNTINFO.as_bytes())))
    });
    g.finish();

    let mut g = c.benchmark_group("pressure");
    g.bench_function("ours", |b| b.iter(|| pressure::parse(black_box(PRESSURE))));
    g.bench_function("procfs-core", |b| {
        b.iter(|| procfs_core::IoPressure::from_read(black_box(PRESSURE.as_bytes())))
    });
    g.finish();
}

criterion_group!(benches, parsers);
criterion_main!(benches);
