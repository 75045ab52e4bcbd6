//! One full collection (all parts, all processes) over the captured fixture tree and over this
//! machine's /proc, against (a) the floor: merely opening and reading the same files and listing
//! the same directories, recorded from a traced collection, and (b) sysinfo's `refresh_all`.
//!
//! `ATL_BENCH_PROCS=N` first starts idle `sleep` children until /proc lists about N processes
//! (they are killed by pid at the end), to measure how the cost grows with processes.

use std::hint::black_box;
use std::path::PathBuf;

use atlhyper_collect::sampler::read_into;
use atlhyper_collect::{Access, CollectConfig, Collector, HostRoot};
use atlhyper_testkit::{Sleepers, median, own_cpu_time, process_count};
use criterion::{Criterion, criterion_group, criterion_main};

fn floor(accesses: &[Access], buf: &mut Vec<u8>) -> usize {
    let mut total = 0;
    for a in accesses {
        match a {
            Access::File(p) => total += read_into(buf, p).unwrap_or(0),
            Access::Dir(p) => total += std::fs::read_dir(p).map(|rd| rd.count()).unwrap_or(0),
        }
    }
    total
}

fn cpu_of(f: &mut dyn FnMut()) -> f64 {
    let t = own_cpu_time();
    f();
    (own_cpu_time() - t).as_secs_f64() * 1e6
}

/// Process CPU time of `n` calls in a row (criterion's `iter_custom`).
fn cpu_per(n: u64, f: &mut dyn FnMut()) -> std::time::Duration {
    let t = own_cpu_time();
    for _ in 0..n {
        f();
    }
    own_cpu_time() - t
}

/// The order of the four measurements in round `r`: all 24 permutations in turn, so each
/// measurement follows each other one equally often. (Rotating one fixed order would put the
/// collector right after sysinfo in every round.)
fn round_order(r: usize) -> [usize; 4] {
    let mut left = vec![0, 1, 2, 3];
    let mut code = r % 24;
    let mut order = [0; 4];
    for (i, slot) in order.iter_mut().enumerate() {
        let radix = [6, 2, 1, 1][i];
        *slot = left.remove(code / radix);
        code %= radix;
    }
    order
}

/// Process CPU time (all threads, so sysinfo's worker threads count) of the collector (files kept
/// open, the default), the collector opening and closing every file (`keep_files_open: false`),
/// the read floor and sysinfo, measured alternately round by round so load on the shared machine
/// hits all alike; prints medians and the medians of the per-round ratios.
///
/// sysinfo's worker threads keep spinning for a moment after `refresh_all` returns; a 10 ms sleep
/// outside every window follows it, so that spinning is charged to nobody (not to whatever is
/// measured next, and not to sysinfo either: its figure is a slight underestimate).
///
/// The floor opens, reads and closes every file a collection reads. The default collector keeps
/// procfs/sysfs files open and re-reads them with one `pread`, so it makes fewer syscalls than
/// its floor; the open/close variant is the like-for-like comparison.
fn paired_cpu_report(
    live: &mut Collector,
    open_close: &mut Collector,
    trace: &[Access],
    sys: &mut sysinfo::System,
    procs: usize,
) {
    let rounds = 144;
    let settle = std::time::Duration::from_millis(10);
    let mut t: [Vec<f64>; 4] = Default::default();
    let (mut r1, mut r2, mut r3) = (vec![], vec![], vec![]);
    let mut buf = Vec::new();
    for round in 0..rounds {
        let mut m = [0.0; 4];
        for which in round_order(round) {
            m[which] = match which {
                0 => cpu_of(&mut || {
                    drop(black_box(live.collect()));
                }),
                1 => cpu_of(&mut || {
                    drop(black_box(open_close.collect()));
                }),
                2 => cpu_of(&mut || {
                    black_box(floor(trace, &mut buf));
                }),
                _ => {
                    let cpu = cpu_of(&mut || sys.refresh_all());
                    std::thread::sleep(settle);
                    cpu
                }
            };
        }
        for (v, x) in t.iter_mut().zip(m) {
            v.push(x);
        }
        r1.push(m[0] / m[2]);
        r2.push(m[1] / m[2]);
        r3.push(m[3] / m[0]);
    }
    let [a, b, f, s] = &mut t;
    eprintln!(
        "paired CPU time, {procs} processes, {rounds} rounds (median): collector {:.0} us, \
         collector open/close {:.0} us, read floor {:.0} us, sysinfo refresh_all {:.0} us; \
         collector/floor {:.2}x, open/close collector/floor {:.2}x, sysinfo/collector {:.2}x",
        median(a),
        median(b),
        median(f),
        median(s),
        median(&mut r1),
        median(&mut r2),
        median(&mut r3)
    );
}

fn collect(c: &mut Criterion) {
    let _sleepers = Sleepers::from_env();
    let procs = process_count();

    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vm/t1");
    let mut g = c.benchmark_group("collect_fixture");
    let mut fx = Collector::new(HostRoot::under(&fixture), CollectConfig::from_host());
    fx.collect();
    fx.sampler_mut().set_tracing(true);
    fx.collect();
    let fx_trace = fx.sampler_mut().take_trace();
    fx.sampler_mut().set_tracing(false);
    g.bench_function("collector", |b| b.iter(|| black_box(fx.collect())));
    let mut buf = Vec::new();
    g.bench_function("read_floor", |b| {
        b.iter(|| floor(black_box(&fx_trace), &mut buf))
    });
    g.finish();

    let mut g = c.benchmark_group(format!("collect_live_{procs}_procs"));
    let mut live = Collector::new(HostRoot::default(), CollectConfig::from_host());
    live.collect();
    live.sampler_mut().set_tracing(true);
    live.collect();
    let trace = live.sampler_mut().take_trace();
    live.sampler_mut().set_tracing(false);
    let files = trace
        .iter()
        .filter(|a| matches!(a, Access::File(_)))
        .count();
    eprintln!(
        "one live collection: {files} files read, {} directories listed",
        trace.len() - files
    );
    let mut open_close = Collector::new(
        HostRoot::default(),
        CollectConfig {
            keep_files_open: false,
            ..CollectConfig::from_host()
        },
    );
    open_close.collect();
    eprintln!(
        "files kept open by the collector: {}",
        live.sampler_mut().kept_files()
    );
    let mut sys = sysinfo::System::new_all();
    paired_cpu_report(&mut live, &mut open_close, &trace, &mut sys, procs);
    g.bench_function("collector", |b| b.iter(|| black_box(live.collect())));
    g.bench_function("read_floor", |b| {
        b.iter(|| floor(black_box(&trace), &mut buf))
    });
    g.bench_function("sysinfo_refresh_all", |b| b.iter(|| sys.refresh_all()));
    // The same three in process CPU time instead of wall time (criterion's "time" below is then
    // CPU time per call, all threads: sysinfo refreshes processes on a thread pool, so its wall
    // time understates what it costs the node).
    g.bench_function("collector_cpu", |b| {
        b.iter_custom(|n| cpu_per(n, &mut || drop(black_box(live.collect()))))
    });
    g.bench_function("read_floor_cpu", |b| {
        b.iter_custom(|n| {
            cpu_per(n, &mut || {
                black_box(floor(&trace, &mut buf));
            })
        })
    });
    g.bench_function("sysinfo_refresh_all_cpu", |b| {
        b.iter_custom(|n| cpu_per(n, &mut || sys.refresh_all()))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(std::time::Duration::from_secs(1)).measurement_time(std::time::Duration::from_secs(3));
    targets = collect
}
criterion_main!(benches);
