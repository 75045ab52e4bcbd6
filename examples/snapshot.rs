//! Prints one `NodeMetricsSnapshot` as JSON.
//!
//! ```text
//! cargo run --release --example snapshot -- --root / [--top N]
//! cargo run --release --example snapshot -- --root DIR --prev-root DIR2 [--interval-ms N]
//! ```
//!
//! Run from the repository root (an example of the root package `atlhyper`, over the facade's
//! `atlhyper::collect`).
//!
//! With `--root /` and no `--prev-root` it samples the live host twice, 1 s apart. A DIR other
//! than `/` holds `proc/` and `sys/` (a captured tree) and serves as the host root. With
//! `--prev-root`, rates come from the two trees (DIR2 earlier, DIR later) over `--interval-ms`,
//! or over the difference of their `/proc/uptime`. Missing files degrade (see `collectors`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use atlhyper::collect::{CollectConfig, Collector, HostRoot};

fn root_of(dir: &str) -> HostRoot {
    if dir == "/" {
        HostRoot::from_env()
    } else {
        HostRoot::under(PathBuf::from(dir))
    }
}

fn main() -> ExitCode {
    let mut root = None;
    let mut prev_root = None;
    let mut interval_ms = None;
    let mut top = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        let r = match a.as_str() {
            "--root" => val("--root").map(|v| root = Some(v)),
            "--prev-root" => val("--prev-root").map(|v| prev_root = Some(v)),
            "--interval-ms" => val("--interval-ms")
                .and_then(|v| v.parse::<u64>().map_err(|e| format!("--interval-ms: {e}")))
                .map(|v| interval_ms = Some(v)),
            "--top" => val("--top")
                .and_then(|v| v.parse::<usize>().map_err(|e| format!("--top: {e}")))
                .map(|v| top = Some(v)),
            "-h" | "--help" => {
                eprintln!(
                    "usage: snapshot --root DIR [--prev-root DIR2] [--interval-ms N] [--top N]"
                );
                return ExitCode::SUCCESS;
            }
            other => Err(format!("unknown argument {other}")),
        };
        if let Err(e) = r {
            eprintln!("snapshot: {e}");
            return ExitCode::from(2);
        }
    }
    let Some(root) = root else {
        eprintln!("snapshot: --root DIR is required (use --root / for this machine)");
        return ExitCode::from(2);
    };
    let mut config = CollectConfig::default();
    if let Some(n) = top {
        config.top_processes = n;
    }
    let snapshot = match prev_root {
        Some(prev) => {
            let mut c = Collector::new(root_of(&prev), config);
            c.collect();
            c.set_root(root_of(&root));
            c.collect_over(interval_ms.map(Duration::from_millis))
        }
        None => {
            let mut c = Collector::new(root_of(&root), config);
            c.collect();
            std::thread::sleep(Duration::from_millis(interval_ms.unwrap_or(1000)));
            c.collect()
        }
    };
    match serde_json::to_string_pretty(&snapshot) {
        Ok(s) => {
            println!("{s}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("snapshot: {e}");
            ExitCode::FAILURE
        }
    }
}
