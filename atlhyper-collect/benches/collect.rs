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
    g.bench_function("collector", |b| b.iter(|| black_box(live.collect())));
    g.bench_function("read_floor", |b| {
        b.iter(|| floor(black_box(&trace), &mut buf))
    });
    let mut sys = sysinfo::System::new_all();
    g.bench_function("sysinfo_refresh_all", |b| b.iter(|| sys.refresh_all()));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(std::time::Duration::from_secs(1)).measurement_time(std::time::Duration::from_secs(3));
    targets = collect
}
criterion_main!(benches);
