//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use atlhyper_collect::sampler::StatfsFn;
use atlhyper_collect::{CollectConfig, Collector, FsSpace, HostConstants, HostRoot, Statfs};

/// A fixture tree, relative to the crate (tests run with the crate as working directory, so the
/// paths inside error messages and snapshots are stable).
pub fn fixture(rel: &str) -> PathBuf {
    Path::new("tests/fixtures").join(rel)
}

/// The statfs values a capture recorded in `statfs.txt`, served for paths under `dir`.
pub fn statfs_of(dir: &Path) -> StatfsFn {
    let mut table: HashMap<PathBuf, FsSpace> = HashMap::new();
    if let Ok(text) = std::fs::read_to_string(dir.join("statfs.txt")) {
        for line in text.lines() {
            let Some((mp, nums)) = line.split_once('\t') else {
                continue;
            };
            let v: Vec<u64> = nums
                .split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect();
            if v.len() != 6 {
                continue;
            }
            let sp = FsSpace {
                total: v[1] * v[0],
                free: v[2] * v[0],
                available: v[3] * v[0],
                files: v[4],
                files_free: v[5],
            };
            table.insert(dir.join(mp.trim_start_matches('/')), sp);
        }
    }
    Arc::new(move |p: &Path| {
        table.get(p).copied().ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "no statfs recorded for this path")
        })
    })
}

/// Config with the captured host's constants, so fixtures parse the same everywhere (nothing is
/// read from this machine or its environment).
pub fn config(top: usize) -> CollectConfig {
    let captured_host = HostConstants {
        clock_ticks_per_sec: 100,
        page_size: 4096,
    };
    CollectConfig {
        top_processes: top,
        ..CollectConfig::new("fixture-node", captured_host)
    }
}

/// A collector over one fixture tree, statfs answered from the tree's `statfs.txt`.
pub fn collector(dir: &Path, top: usize) -> Collector {
    Collector::with_statfs(
        HostRoot::under(dir),
        config(top),
        Statfs::with_fn(Duration::from_secs(1), statfs_of(dir)),
    )
}

/// Replays `prev -> cur` like the root `snapshot` example (`examples/snapshot.rs`): rates over the uptime difference.
pub fn replay(prev: &Path, cur: &Path, top: usize) -> atlhyper_model::NodeMetricsSnapshot {
    let mut c = collector(prev, top);
    c.collect();
    c.set_root(HostRoot::under(cur));
    // The statfs table must follow the tree too.
    *c.statfs_mut() = Statfs::with_fn(Duration::from_secs(1), statfs_of(cur));
    c.collect_over(None)
}
