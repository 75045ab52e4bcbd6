//! Load generator: `--clusters` (100) agents of `--nodes` (100) nodes each, every agent pushing
//! a gzip ClusterSnapshot every `--interval-secs` (10) to a running master, for `--seconds` (120).
//!
//! Run the master as its own process (release build, SQLite) and pass its pid to get its CPU
//! and resident memory sampled from /proc every 10 s:
//!
//! ```sh
//! CARGO_TARGET_DIR=/work/target-bench cargo build --release -p atlhyper-master --bin atlhyper-master --example ingest_load
//! MASTER_DB_PATH=/tmp/ingest/atlhyper.db MASTER_SNAPSHOT_RATE_LIMIT=off /work/target-bench/release/atlhyper-master --listen 127.0.0.1:18080 &
//! /work/target-bench/release/examples/ingest_load --url http://127.0.0.1:18080 --pid $!
//! ```
//!
//! Without tokens the master budgets snapshots per client address, and every simulated agent here
//! comes from 127.0.0.1: hence `MASTER_SNAPSHOT_RATE_LIMIT=off` above.
//!
//! Bodies are built by the generator for every push (new seq, new timestamps), spread evenly over
//! the interval; the push latency (request sent -> 200) is reported as p50/p99.

use std::time::{Duration, Instant};

use chrono::Utc;

/// utime + stime of a process, in clock ticks, and its resident set in KiB.
fn proc_usage(pid: u32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((utime + stime, rss))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let url = arg("--url").unwrap_or_else(|| "http://127.0.0.1:18080".to_owned());
    let clusters: usize = arg("--clusters")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let nodes: usize = arg("--nodes").and_then(|v| v.parse().ok()).unwrap_or(100);
    let interval = Duration::from_secs(
        arg("--interval-secs")
            .and_then(|v| v.parse().ok())
            .unwrap_or(10),
    );
    let seconds: u64 = arg("--seconds").and_then(|v| v.parse().ok()).unwrap_or(120);
    let pid: Option<u32> = arg("--pid").and_then(|v| v.parse().ok());
    // SAFETY-free: sysconf is safe to call; clock ticks are 100 on every Linux we target.
    let ticks_per_sec = 100.0;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let spacing = interval / clusters as u32;
        let mut tasks = Vec::new();
        for c in 0..clusters {
            let http = http.clone();
            let url = url.clone();
            tasks.push(tokio::spawn(async move {
                let id = format!("load-{c:03}");
                tokio::time::sleep(spacing * c as u32).await;
                let mut tick = tokio::time::interval(interval);
                let mut latencies = Vec::new();
                let mut failures = 0u64;
                let mut seq = 0;
                while Instant::now() < deadline {
                    tick.tick().await;
                    seq += 1;
                    let snapshot = atlhyper_testkit::cluster(&id, nodes, seq, Utc::now());
                    let body = atlhyper_testkit::gzip(&serde_json::to_vec(&snapshot).expect("json"));
                    let started = Instant::now();
                    let ok = http
                        .post(format!("{url}/agent/snapshot"))
                        .header("x-cluster-id", &id)
                        .header("content-type", "application/json")
                        .header("content-encoding", "gzip")
                        .body(body)
                        .send()
                        .await
                        .is_ok_and(|r| r.status() == 200);
                    if ok {
                        latencies.push(started.elapsed().as_micros() as u64);
                    } else {
                        failures += 1;
                    }
                }
                (latencies, failures)
            }));
        }

        let monitor = pid.map(|pid| {
            tokio::spawn(async move {
                let mut last = proc_usage(pid);
                let mut last_at = Instant::now();
                let mut rows = Vec::new();
                while Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    let now = proc_usage(pid);
                    if let (Some((t0, _)), Some((t1, rss))) = (last, now) {
                        let cpu = (t1 - t0) as f64 / ticks_per_sec / last_at.elapsed().as_secs_f64();
                        println!("master: cpu {:5.1} % of one core, rss {:6.1} MiB", cpu * 100.0, rss as f64 / 1024.0);
                        rows.push((cpu, rss));
                    }
                    last = now;
                    last_at = Instant::now();
                }
                rows
            })
        });

        let mut all = Vec::new();
        let mut failures = 0;
        for t in tasks {
            let (l, f) = t.await.expect("agent task");
            all.extend(l);
            failures += f;
        }
        all.sort_unstable();
        println!(
            "{clusters} clusters x {nodes} nodes every {interval:?} for {seconds} s: {} pushes ok, {failures} failed; push latency p50 {} us, p99 {} us, max {} us",
            all.len(),
            atlhyper_testkit::percentile(&all, 50.0),
            atlhyper_testkit::percentile(&all, 99.0),
            all.last().copied().unwrap_or(0)
        );
        if let Some(m) = monitor {
            let rows = m.await.expect("monitor");
            // Skip the first window (start-up: first contact of every node).
            let steady: Vec<_> = rows.iter().skip(1).collect();
            if !steady.is_empty() {
                let cpu = steady.iter().map(|r| r.0).sum::<f64>() / steady.len() as f64;
                let rss = steady.iter().map(|r| r.1).max().unwrap_or(0);
                println!(
                    "master steady state: mean cpu {:.1} % of one core, max rss {:.1} MiB",
                    cpu * 100.0,
                    rss as f64 / 1024.0
                );
            }
        }
    });
}
