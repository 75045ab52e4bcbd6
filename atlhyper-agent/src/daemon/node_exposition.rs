//! The node's figures on the daemon's `/metrics`: node_exporter-compatible families and the top
//! processes, from the same sample the daemon pushes.
//!
//! One collector behind a lock serves both the push loop and scrapes. A scrape reuses the latest
//! sample while it is younger than the collection interval, and collects first otherwise (always
//! the case in pull-only mode, where nothing else collects).

use std::time::{Duration, Instant};

use atlhyper_collect::{Collector, write_processes};
use atlhyper_model::{Exposition, NodeMetricsSnapshot, ProcessMetrics};
use parking_lot::Mutex;

/// The collector and what its latest collection left behind.
#[derive(Debug)]
struct Latest {
    collector: Collector,
    /// When the latest collection ran; `None` before the first.
    taken: Option<Instant>,
    /// The top processes of the latest snapshot (the raw sample holds every process).
    processes: Vec<ProcessMetrics>,
}

/// The daemon's collector, shared by the push loop and `/metrics`.
#[derive(Debug)]
pub struct NodeSource {
    latest: Mutex<Latest>,
    /// A sample younger than this is reused by a scrape.
    max_age: Duration,
}

impl NodeSource {
    /// Wraps `collector`; scrapes reuse samples younger than `max_age` (the push interval).
    pub fn new(collector: Collector, max_age: Duration) -> Self {
        Self {
            latest: Mutex::new(Latest {
                collector,
                taken: None,
                processes: Vec::new(),
            }),
            max_age,
        }
    }

    /// Collects a snapshot now (blocking: run it on the blocking pool).
    pub fn collect(&self) -> NodeMetricsSnapshot {
        let mut latest = self.latest.lock();
        collect_into(&mut latest)
    }

    /// Writes the node families of the latest sample into `out`, collecting first when there is
    /// none younger than the interval (blocking: run it on the blocking pool).
    pub fn write(&self, out: &mut Exposition) {
        let mut latest = self.latest.lock();
        if latest.taken.is_none_or(|t| t.elapsed() >= self.max_age) {
            collect_into(&mut latest);
        }
        latest.collector.write_node_families(out);
        write_processes(out, &latest.processes);
    }
}

fn collect_into(latest: &mut Latest) -> NodeMetricsSnapshot {
    let snapshot = latest.collector.collect();
    latest.taken = Some(Instant::now());
    latest.processes.clone_from(&snapshot.processes);
    snapshot
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use atlhyper_collect::{CollectConfig, HostRoot};
    use atlhyper_model::ExpositionFormat;

    use super::*;

    /// A collector over the captured `vm/t0` tree of the collect crate.
    fn source(max_age: Duration) -> NodeSource {
        let tree =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../atlhyper-collect/tests/fixtures/vm/t0");
        let collector = Collector::new(HostRoot::under(&tree), CollectConfig::from_host());
        NodeSource::new(collector, max_age)
    }

    fn scrape(node: &NodeSource) -> String {
        let mut out = Exposition::new(ExpositionFormat::Text);
        node.write(&mut out);
        out.finish()
    }

    fn sample_time(text: &str) -> String {
        text.lines()
            .find(|l| l.starts_with("node_time_seconds "))
            .expect("node_time_seconds")
            .to_owned()
    }

    #[test]
    fn the_first_scrape_collects_and_a_young_sample_is_reused() {
        let node = source(Duration::from_secs(3600));
        let first = scrape(&node);
        assert!(first.contains("node_cpu_seconds_total{cpu=\"0\",mode=\"user\"} 315.55\n"));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(sample_time(&scrape(&node)), sample_time(&first));
    }

    #[test]
    fn an_old_sample_is_collected_again() {
        let node = source(Duration::ZERO);
        let first = scrape(&node);
        std::thread::sleep(Duration::from_millis(5));
        assert_ne!(sample_time(&scrape(&node)), sample_time(&first));
    }

    #[test]
    fn a_push_collection_is_what_scrapes_reuse() {
        let node = source(Duration::from_secs(3600));
        let snapshot = node.collect();
        let text = scrape(&node);
        let at = snapshot.timestamp.timestamp_micros() as f64 / 1e6;
        assert_eq!(sample_time(&text), format!("node_time_seconds {at}"));
    }
}
