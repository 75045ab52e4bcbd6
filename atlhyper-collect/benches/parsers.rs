//! Each hot parser against procfs-core on the same text (captured on this machine), in one run,
//! so the ratio is comparable even on a shared machine.

use std::hint::black_box;

use atlhyper_collect::proc::{
    diskstats, loadavg, meminfo, mountinfo, net_dev, net_snmp, net_sockstat, net_softnet_stat,
    pid_stat, pid_status, pressure, stat, vmstat,
};
use criterion::{Criterion, criterion_group, criterion_main};
use procfs_core::{ExplicitSystemInfo, FromBufRead, FromRead, FromReadSI};

const STAT: &str = include_str!("../tests/fixtures/vm/t0/proc/stat");
const MEMINFO: &str = include_str!("../tests/fixtures/vm/t0/proc/meminfo");
const LOADAVG: &str = include_str!("../tests/fixtures/vm/t0/proc/loadavg");
const DISKSTATS: &str = include_str!("../tests/fixtures/vm/t0/proc/diskstats");
const NET_DEV: &str = include_str!("../tests/fixtures/vm/t0/proc/net/dev");
const MOUNTINFO: &str = include_str!("../tests/fixtures/vm/t0/proc/1/mountinfo");
const PRESSURE: &str = include_str!("../tests/fixtures/vm/t0/proc/pressure/io");
const PID_STAT: &str = include_str!("../tests/fixtures/vm/t0/proc/1/stat");
const PID_STATUS: &str = include_str!("../tests/fixtures/vm/t0/proc/1/status");
const SOCKSTAT: &str = include_str!("../tests/fixtures/vm/t0/proc/net/sockstat");
const SNMP: &str = include_str!("../tests/fixtures/vm/t0/proc/net/snmp");
const VMSTAT: &str = include_str!("../tests/fixtures/vm/t0/proc/vmstat");
const SOFTNET_STAT: &str = include_str!("../tests/fixtures/vm/t0/proc/net/softnet_stat");

/// Consumes a result so the optimiser cannot drop the work.
fn sink<T>(v: T) {
    black_box(v);
}

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Thread CPU time of `ours` and `theirs`, alternated in 101 rounds of `n` calls each, so a load
/// burst on the shared machine hits both alike. Prints the median per-call times and the median
/// of the per-round ratios.
fn paired(name: &str, n: u32, ours: &mut dyn FnMut(), theirs: &mut dyn FnMut()) {
    let (mut a, mut b, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..101 {
        let t = thread_cpu_ns();
        for _ in 0..n {
            ours();
        }
        let t1 = thread_cpu_ns();
        for _ in 0..n {
            theirs();
        }
        let t2 = thread_cpu_ns();
        let (x, y) = (
            (t1 - t) as f64 / f64::from(n),
            (t2 - t1) as f64 / f64::from(n),
        );
        a.push(x);
        b.push(y);
        r.push(y / x);
    }
    for v in [&mut a, &mut b, &mut r] {
        v.sort_by(f64::total_cmp);
    }
    eprintln!(
        "paired {name:<11} ours {:>8.0} ns  procfs-core {:>8.0} ns  ratio {:.1}x",
        a[50], b[50], r[50]
    );
}

fn paired_report() {
    let si = ExplicitSystemInfo {
        boot_time_secs: 0,
        ticks_per_second: 100,
        page_size: 4096,
        is_little_endian: true,
    };
    let mut st = stat::Stat::default();
    paired(
        "stat",
        2000,
        &mut || sink(black_box(stat::parse_into(black_box(STAT), &mut st))),
        &mut || {
            sink(black_box(procfs_core::KernelStats::from_read(
                black_box(STAT.as_bytes()),
                &si,
            )))
        },
    );
    paired(
        "meminfo",
        1000,
        &mut || sink(black_box(meminfo::parse(black_box(MEMINFO)))),
        &mut || {
            sink(black_box(procfs_core::Meminfo::from_read(black_box(
                MEMINFO.as_bytes(),
            ))))
        },
    );
    paired(
        "loadavg",
        5000,
        &mut || sink(black_box(loadavg::parse(black_box(LOADAVG)))),
        &mut || {
            sink(black_box(procfs_core::LoadAverage::from_read(black_box(
                LOADAVG.as_bytes(),
            ))))
        },
    );
    paired(
        "diskstats",
        1000,
        &mut || {
            sink(black_box(
                diskstats::parse(black_box(DISKSTATS))
                    .filter_map(Result::ok)
                    .map(|d| d.sectors_read)
                    .sum::<u64>(),
            ))
        },
        &mut || {
            sink(black_box(procfs_core::DiskStats::from_read(black_box(
                DISKSTATS.as_bytes(),
            ))))
        },
    );
    paired(
        "net_dev",
        1000,
        &mut || {
            sink(black_box(
                net_dev::parse(black_box(NET_DEV))
                    .filter_map(Result::ok)
                    .map(|d| d.rx_bytes)
                    .sum::<u64>(),
            ))
        },
        &mut || {
            sink(black_box(
                procfs_core::net::InterfaceDeviceStatus::from_read(black_box(NET_DEV.as_bytes())),
            ))
        },
    );
    paired(
        "pid_stat",
        3000,
        &mut || sink(black_box(pid_stat::parse(black_box(PID_STAT)))),
        &mut || {
            sink(black_box(procfs_core::process::Stat::from_read(black_box(
                PID_STAT.as_bytes(),
            ))))
        },
    );
    paired(
        "pid_status",
        500,
        &mut || sink(black_box(pid_status::parse(black_box(PID_STATUS)))),
        &mut || {
            sink(black_box(procfs_core::process::Status::from_read(
                black_box(PID_STATUS.as_bytes()),
            )))
        },
    );
    paired(
        "mountinfo",
        300,
        &mut || {
            sink(black_box(
                mountinfo::parse_mountinfo(black_box(MOUNTINFO))
                    .filter_map(Result::ok)
                    .count(),
            ))
        },
        &mut || {
            sink(black_box(procfs_core::process::MountInfos::from_read(
                black_box(MOUNTINFO.as_bytes()),
            )))
        },
    );
    paired(
        "snmp",
        500,
        &mut || sink(black_box(net_snmp::parse(black_box(SNMP)))),
        &mut || {
            sink(black_box(procfs_core::net::Snmp::from_buf_read(black_box(
                SNMP.as_bytes(),
            ))))
        },
    );
    paired(
        "vmstat",
        300,
        &mut || sink(black_box(vmstat::parse(black_box(VMSTAT)))),
        &mut || {
            sink(black_box(procfs_core::VmStat::from_buf_read(black_box(
                VMSTAT.as_bytes(),
            ))))
        },
    );
    paired(
        "pressure",
        3000,
        &mut || sink(black_box(pressure::parse(black_box(PRESSURE)))),
        &mut || {
            sink(black_box(procfs_core::IoPressure::from_read(black_box(
                PRESSURE.as_bytes(),
            ))))
        },
    );
}

fn parsers(c: &mut Criterion) {
    paired_report();
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

    // procfs-core has no sockstat or softnet_stat parser: ours alone.
    let mut g = c.benchmark_group("sockstat");
    g.bench_function("ours", |b| {
        b.iter(|| net_sockstat::parse(black_box(SOCKSTAT)))
    });
    g.finish();

    let mut g = c.benchmark_group("softnet_stat");
    g.bench_function("ours", |b| {
        b.iter(|| {
            net_softnet_stat::parse(black_box(SOFTNET_STAT))
                .filter_map(Result::ok)
                .map(|c| c.dropped)
                .sum::<u64>()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("snmp");
    g.bench_function("ours", |b| b.iter(|| net_snmp::parse(black_box(SNMP))));
    g.bench_function("procfs-core", |b| {
        b.iter(|| procfs_core::net::Snmp::from_buf_read(black_box(SNMP.as_bytes())))
    });
    g.finish();

    let mut g = c.benchmark_group("vmstat");
    g.bench_function("ours", |b| b.iter(|| vmstat::parse(black_box(VMSTAT))));
    g.bench_function("procfs-core", |b| {
        b.iter(|| procfs_core::VmStat::from_buf_read(black_box(VMSTAT.as_bytes())))
    });
    g.finish();
}

criterion_group!(benches, parsers);
criterion_main!(benches);
