//! Runs the collector the way the node daemon does, N times at an interval, then prints its own
//! peak and current resident memory (from /proc/self/status) and the last snapshot's per-part
//! durations. Used to measure the daemon loop's memory and, under `strace -c -f`, the syscalls
//! of a collection (run with N=1 and N=11 and take the difference / 10).
//!
//! ```text
//! cargo run --release -p atlhyper-collect --example collect_loop -- [N=20] [INTERVAL_MS=100]
//! ```

use std::time::{Duration, Instant};

use atlhyper_collect::{CollectConfig, Collector, HostRoot};

fn status_kib(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u32 = args.next().and_then(|v| v.parse().ok()).unwrap_or(20);
    let interval = Duration::from_millis(args.next().and_then(|v| v.parse().ok()).unwrap_or(100));
    let mut c = Collector::new(HostRoot::from_env(), CollectConfig::from_host());
    let mut last = None;
    let t0 = Instant::now();
    for i in 0..n {
        if i > 0 {
            std::thread::sleep(interval);
        }
        last = Some(c.collect());
    }
    let wall = t0.elapsed();
    if let Some(s) = last {
        let parts: Vec<String> = s
            .collectors
            .iter()
            .map(|c| format!("{}={}us", c.name, c.duration_us))
            .collect();
        println!(
            "collections={n} processes_reported={} parts: {}",
            s.processes.len(),
            parts.join(" ")
        );
    }
    println!(
        "VmHWM={} KiB VmRSS={} KiB wall={:?}",
        status_kib("VmHWM:").map_or("?".into(), |v| v.to_string()),
        status_kib("VmRSS:").map_or("?".into(), |v| v.to_string()),
        wall
    );
}
