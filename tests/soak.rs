//! Soak: 3 node daemons, an agent and a master at 100 ms intervals for 30 minutes (by default),
//! sampling every process's resident memory and open descriptors and the database size. Passes
//! when all of them are flat: the last third of the run is within a small margin of the middle
//! third. Too long for CI; run it by hand with release binaries:
//!
//! ```sh
//! CARGO_TARGET_DIR=/work/target-bench cargo build --release -p atlhyper-agent -p atlhyper-master --bins
//! ATLHYPER_FAULT_BIN_DIR=/work/target-bench/release ATLHYPER_SOAK_SECS=1800 \
//!   cargo test -p atlhyper --test soak -- --ignored --nocapture
//! ```
//!
//! The master keeps history at a 1 s interval with a 2-minute retention pruned every 20 s, so
//! the database reaches its steady size within minutes and must stay there.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use atlhyper_testkit::free_port;
use common::{AgentBuilder, Proc, Scratch, bins, scrape_with, wait_healthy};

const AGENT_TOKEN: &str = "agent-token-soak-0000";
const VIEWER: &str = "viewer-token-soak-0000";
const NODE_TOKEN: &str = "node-token-soak-00000";

fn db_bytes(dir: &std::path::Path) -> u64 {
    ["atlhyper.db", "atlhyper.db-wal", "atlhyper.db-shm"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

/// Processes on the host (numeric entries of /proc).
fn host_processes() -> usize {
    std::fs::read_dir("/proc").map_or(0, |rd| {
        rd.flatten()
            .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
            .count()
    })
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len().max(1) as f64
}

#[test]
#[ignore = "30-minute soak: run by hand (see the file's docs)"]
fn soak_three_daemons_agent_master_at_100ms() {
    let secs: u64 = std::env::var("ATLHYPER_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1800);
    let sample_every = Duration::from_secs((secs / 60).clamp(1, 30));
    let dir = Scratch::new("soak");
    let master_addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let master = Proc::spawn(
        "atlhyper-master",
        &bins().master,
        &[
            ("MASTER_LISTEN_ADDR", master_addr.to_string()),
            (
                "MASTER_DB_PATH",
                dir.0.join("atlhyper.db").display().to_string(),
            ),
            ("MASTER_AGENT_TOKEN", AGENT_TOKEN.to_owned()),
            ("MASTER_CLUSTER_ID", "soak".to_owned()),
            ("MASTER_VIEWER_TOKEN", VIEWER.to_owned()),
            ("MASTER_HISTORY_INTERVAL", "1s".to_owned()),
            ("MASTER_RETENTION", "2m".to_owned()),
            ("MASTER_PRUNE_INTERVAL", "20s".to_owned()),
        ],
        &dir.0,
    );
    wait_healthy(master_addr, Duration::from_secs(30), &master);
    let agent = AgentBuilder::new("atlhyper-agent", "soak")
        .in_dir(&dir.0)
        .master(master_addr)
        .token(AGENT_TOKEN)
        .node_token(NODE_TOKEN)
        .env("AGENT_NODE_INTERVAL", "100ms")
        .env("AGENT_SNAPSHOT_INTERVAL", "100ms")
        .env("AGENT_HEARTBEAT_INTERVAL", "1s")
        .start();
    let mut daemons = Vec::new();
    for i in 0..3 {
        let listen: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let d = Proc::spawn(
            &format!("soak-node-{i}"),
            &bins().metrics,
            &[
                ("METRICS_AGENT_ADDR", agent.url()),
                ("METRICS_COLLECT_INTERVAL", "100ms".to_owned()),
                ("METRICS_NODE_NAME", format!("soak-node-{i}")),
                ("METRICS_TOKEN", NODE_TOKEN.to_owned()),
                ("METRICS_LISTEN", listen.to_string()),
            ],
            &dir.0,
        );
        wait_healthy(listen, Duration::from_secs(20), &d);
        daemons.push((d, listen));
    }

    let procs: Vec<&Proc> = std::iter::once(&master)
        .chain(std::iter::once(&agent.proc))
        .chain(daemons.iter().map(|(d, _)| d))
        .collect();
    let names: Vec<&str> = procs.iter().map(|p| p.name.as_str()).collect();
    // A node daemon keeps one /proc/<pid>/stat descriptor per host process, so its descriptor
    // count follows the host's process count; a leak shows in what is left above that.
    let is_daemon: Vec<bool> = (0..procs.len()).map(|i| i >= 2).collect();
    // samples[i] = (elapsed s, rss per proc, fds per proc (daemons: minus host processes), db bytes)
    let mut samples: Vec<(f64, Vec<u64>, Vec<usize>, u64)> = Vec::new();
    let csv = std::env::temp_dir().join(format!("atlhyper-soak-{}.csv", std::process::id()));
    let mut out = format!(
        "secs,{},{},db_bytes\n",
        names
            .iter()
            .map(|n| format!("{n}_rss_kib"))
            .collect::<Vec<_>>()
            .join(","),
        names
            .iter()
            .map(|n| format!("{n}_fds"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let t0 = Instant::now();
    let run = Duration::from_secs(secs);
    while t0.elapsed() < run {
        std::thread::sleep(sample_every);
        let rss: Vec<u64> = procs.iter().map(|p| p.rss_kib()).collect();
        let host = host_processes();
        let fds: Vec<usize> = procs
            .iter()
            .zip(&is_daemon)
            .map(|(p, &daemon)| {
                if daemon {
                    p.fds().saturating_sub(host)
                } else {
                    p.fds()
                }
            })
            .collect();
        let db = db_bytes(&dir.0);
        let s = t0.elapsed().as_secs_f64();
        out.push_str(&format!(
            "{s:.0},{},{},{db}\n",
            rss.iter().map(u64::to_string).collect::<Vec<_>>().join(","),
            fds.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ));
        eprintln!(
            "soak t={s:.0}s rss={rss:?} KiB fds={fds:?} (daemons: above {host} host processes) db={db} B"
        );
        samples.push((s, rss, fds, db));
    }
    std::fs::write(&csv, &out).expect("write soak CSV");
    let viewer = format!("Bearer {VIEWER}");
    let master_stats = scrape_with(master_addr, &[("Authorization", &viewer)]);
    let third = samples.len() / 3;
    assert!(third >= 2, "enough samples ({})", samples.len());
    let middle = &samples[third..2 * third];
    let last = &samples[2 * third..];
    let mut report = Vec::new();
    let mut failures = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let m = mean(&middle.iter().map(|s| s.1[i] as f64).collect::<Vec<_>>());
        let l = mean(&last.iter().map(|s| s.1[i] as f64).collect::<Vec<_>>());
        let fm = middle.iter().map(|s| s.2[i]).max().unwrap_or(0);
        let fl = last.iter().map(|s| s.2[i]).max().unwrap_or(0);
        report.push(format!(
            "{name}: RSS {m:.0} -> {l:.0} KiB, fds max {fm} -> {fl}"
        ));
        // Flat: within 10 % or 2 MiB of the middle third, whichever is larger.
        if l > m + (m * 0.10).max(2048.0) {
            failures.push(format!("{name} RSS grew {m:.0} -> {l:.0} KiB"));
        }
        // Daemons: the host's processes come and go between a collection and the sample.
        let slack = if is_daemon[i] { 8 } else { 2 };
        if fl > fm + slack {
            failures.push(format!("{name} fds grew {fm} -> {fl}"));
        }
    }
    let dbm = mean(&middle.iter().map(|s| s.3 as f64).collect::<Vec<_>>());
    let dbl = mean(&last.iter().map(|s| s.3 as f64).collect::<Vec<_>>());
    report.push(format!("database: {dbm:.0} -> {dbl:.0} bytes"));
    if dbl > dbm * 1.10 + 65536.0 {
        failures.push(format!("database grew {dbm:.0} -> {dbl:.0} bytes"));
    }
    let history_pruned = master_stats
        .as_ref()
        .and_then(|m| m.get("atlhyper_master_history_pruned_total").copied());
    eprintln!(
        "soak {secs} s, {} samples (CSV {}):\n  {}\n  master pruned {history_pruned:?} history rows",
        samples.len(),
        csv.display(),
        report.join("\n  "),
    );
    // Past the 2-minute retention plus a prune interval, retention must have deleted rows:
    // a flat database is then flat because of it.
    if secs >= 180 && !history_pruned.is_some_and(|n| n > 0.0) {
        failures.push(format!(
            "retention pruned no history rows in {secs} s ({history_pruned:?})"
        ));
    }
    for p in &procs {
        p.assert_no_panic();
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
