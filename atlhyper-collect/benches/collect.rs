//! One full collection (all parts, all processes) over the captured fixture tree and over this
//! machine's /proc, against (a) the floor: merely opening and reading the same files and listing
//! the same directories, recorded from a traced collection, and (b) sysinfo's `refresh_all`.
//!
//! `ATL_BENCH_PROCS=N` first starts idle `sleep` children until /proc lists about N processes
//! (they are killed by pid at the end), to measure how the cost grows with processes.

use std::hint::black_box;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use atlhyper_collect::sampler::read_into;
use atlhyper_collect::{Access, CollectConfig, Collector, HostRoot};
use criterion::{Criterion, criterion_group, criterion_main};

struct Sleepers(Vec<Child>);

impl Drop for Sleepers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn process_count() -> usize {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
                .count()
        })
        .unwrap_or(0)
}

fn start_sleepers() -> Sleepers {
    let mut s = Sleepers(Vec::new());
    let Some(target) = std::env::var("ATL_BENCH_PROCS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    else {
        return s;
    };
    let have = process_count();
    for _ in have..target.min(have + 5000) {
        match Command::new("sleep")
            .arg("600")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
        {
            Ok(c) => s.0.push(c),
            Err(_) => break,
        }
    }
    eprintln!(
        "processes in /proc: {} ({} sleepers started)",
        process_count(),
        s.0.len()
    );
    s
}

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

fn cpu_now() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn cpu_of(f: &mut dyn FnMut()) -> f64 {
    let t = cpu_now();
    f();
    (cpu_now() - t).as_secs_f64() * 1e6
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Process CPU time (all threads, so sysinfo's worker threads count) of the collector, the read
/// floor and sysinfo, measured alternately round by round so load on the shared machine hits all
/// three alike; prints medians and the median of the per-round ratios.
fn paired_cpu_report(
    live: &mut Collector,
    trace: &[Access],
    sys: &mut sysinfo::System,
    procs: usize,
) {
    let rounds = 150;
    let (mut a, mut b, mut s, mut r1, mut r2) = (vec![], vec![], vec![], vec![], vec![]);
    let mut buf = Vec::new();
    for round in 0..rounds {
        // Rotate the order so each measurement follows each other one equally often (sysinfo
        // evicts caches the next one then pays for).
        let (mut tc, mut tf, mut ts) = (0.0, 0.0, 0.0);
        for k in 0..3 {
            match (round + k) % 3 {
                0 => tc = cpu_of(&mut || drop(black_box(live.collect()))),
                1 => {
                    tf = cpu_of(&mut || {
                        black_box(floor(trace, &mut buf));
                    })
                }
                _ => ts = cpu_of(&mut || sys.refresh_all()),
            }
        }
        a.push(tc);
        b.push(tf);
        s.push(ts);
        r1.push(tc / tf);
        r2.push(ts / tc);
    }
    eprintln!(
        "paired CPU time, {procs} processes, {rounds} rounds (median): collector {:.0} us, read floor {:.0} us, \
         sysinfo refresh_all {:.0} us; collector/floor {:.2}x, sysinfo/collector {:.1}x",
        median(&mut a),
        median(&mut b),
        median(&mut s),
        median(&mut r1),
        median(&mut r2)
    );
}

fn collect(c: &mut Criterion) {
    let _sleepers = start_sleepers();
    let procs = process_count();

    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vm/t1");
    let mut g = c.benchmark_group("collect_fixture");
    let mut fx = Collector::new(HostRoot::under(&fixture), CollectConfig::default());
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
    let mut live = Collector::new(HostRoot::default(), CollectConfig::default());
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
    let mut sys = sysinfo::System::new_all();
    paired_cpu_report(&mut live, &trace, &mut sys, procs);
    g.bench_function("collector", |b| b.iter(|| black_box(live.collect())));
    g.bench_function("read_floor", |b| {
        b.iter(|| floor(black_box(&trace), &mut buf))
    });
    g.bench_function("sysinfo_refresh_all", |b| b.iter(|| sys.refresh_all()));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(std::time::Duration::from_secs(1)).measurement_time(std::time::Duration::from_secs(3));
    targets = collect
}
criterion_main!(benches);
