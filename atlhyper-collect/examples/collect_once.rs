//! Prints one `NodeMetricsSnapshot` of this machine as JSON, after two collections 1 s apart.
//! Given two captured trees (`collect_once PREV_DIR DIR`) it replays them instead, with rates over
//! the difference of their `/proc/uptime` (see also the root package's `snapshot` example,
//! `examples/snapshot.rs`, for all options).
//!
//! ```text
//! cargo run --release -p atlhyper-collect --example collect_once
//! cargo run --release -p atlhyper-collect --example collect_once -- tests/fixtures/vm/t0 tests/fixtures/vm/t1
//! ```

use std::time::Duration;

use atlhyper_collect::{CollectConfig, Collector, HostRoot};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let snapshot = match args.as_slice() {
        [prev, cur] => {
            let mut c = Collector::new(HostRoot::under(prev), CollectConfig::from_host());
            c.collect();
            c.set_root(HostRoot::under(cur));
            c.collect_over(None)
        }
        [] => {
            let mut c = Collector::new(HostRoot::from_env(), CollectConfig::from_host());
            c.collect();
            std::thread::sleep(Duration::from_secs(1));
            c.collect()
        }
        _ => {
            eprintln!("usage: collect_once [PREV_DIR DIR]");
            std::process::exit(2);
        }
    };
    match serde_json::to_string_pretty(&snapshot) {
        Ok(s) => println!("{s}"),
        Err(e) => {
            eprintln!("collect_once: {e}");
            std::process::exit(1);
        }
    }
}
