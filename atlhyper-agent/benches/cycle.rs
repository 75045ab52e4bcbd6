//! One whole cycle of the node daemon (collect this machine, encode to gzip JSON, push over
//! loopback HTTP to a sink) against prometheus-node-exporter answering one scrape with the
//! collectors that cover the same ground (cpu, meminfo, diskstats, filesystem, netdev, loadavg,
//! hwmon, thermal_zone, pressure; it reads no process), measured in alternating rounds of one run.
//!
//! Our side is this process's CPU time (collector, encoder, HTTP client and the in-process sink:
//! a slight overcount). node_exporter's is its own process CPU clock from before the scrape until
//! 20 ms after the answer (its garbage collection triggered by the scrape included).
//!
//! `ATL_BENCH_PROCS=N` first starts idle `sleep` children until /proc lists about N processes
//! (killed at the end). Without /usr/bin/prometheus-node-exporter only our side is measured.

use std::hint::black_box;
use std::process::{Child, Command, Stdio};

use atlhyper_testkit::{Sleepers, median, own_cpu_time, process_count, process_cpu_time};
use std::time::{Duration, Instant};

use atlhyper_agent::SnapshotEncoder;
use atlhyper_collect::{CollectConfig, Collector, HostRoot};
use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use criterion::{Criterion, criterion_group, criterion_main};

const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";

/// The daemon's cycle: collector, encoder and an HTTP client pushing to a loopback sink.
struct Daemon {
    rt: tokio::runtime::Runtime,
    collector: Collector,
    encoder: SnapshotEncoder,
    http: reqwest::Client,
    url: String,
}

impl Daemon {
    /// `carry_idle`: [`CollectConfig::carry_idle_processes`] (false: every process read every
    /// time, the worst case of a node where every process runs between two collections);
    /// `probe_new_pids`: [`CollectConfig::probe_new_pids`] (false: `/proc` listed every time).
    fn new(carry_idle: bool, probe_new_pids: bool) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}/metrics/node", listener.local_addr().unwrap());
        // The sink takes the body whole and answers as the agent does.
        let sink = Router::new().route(
            "/metrics/node",
            post(|body: Bytes| async move {
                black_box(body.len());
                r#"{"status":"ok"}"#
            }),
        );
        rt.spawn(async move { axum::serve(listener, sink).await });
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .unwrap();
        let mut collector = Collector::new(
            HostRoot::default(),
            CollectConfig {
                carry_idle_processes: carry_idle,
                probe_new_pids,
                ..CollectConfig::from_host()
            },
        );
        collector.collect();
        Self {
            rt,
            collector,
            encoder: SnapshotEncoder::new(),
            http,
            url,
        }
    }

    fn cycle(&mut self) {
        let snapshot = self.collector.collect();
        let body = self.encoder.encode(&snapshot).unwrap();
        let req = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(body);
        let status = self
            .rt
            .block_on(async { req.send().await.unwrap().status() });
        assert!(status.is_success());
    }
}

/// node_exporter with the collectors comparable to ours, and a client scraping it as Prometheus
/// does (gzip accepted).
struct NodeExporter {
    child: Child,
    pid: u32,
    url: String,
}

impl Drop for NodeExporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl NodeExporter {
    fn start(rt: &tokio::runtime::Runtime, http: &reqwest::Client) -> Option<Self> {
        if !std::path::Path::new(NODE_EXPORTER).exists() {
            eprintln!("{NODE_EXPORTER} not installed: measuring our side only");
            return None;
        }
        let port = atlhyper_testkit::free_port();
        let mut args = vec![
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--collector.disable-defaults".to_owned(),
        ];
        for c in [
            "cpu",
            "meminfo",
            "diskstats",
            "filesystem",
            "netdev",
            "loadavg",
            "hwmon",
            "thermal_zone",
            "pressure",
        ] {
            args.push(format!("--collector.{c}"));
        }
        let child = Command::new(NODE_EXPORTER)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let pid = child.id();
        let ne = Self {
            child,
            pid,
            url: format!("http://127.0.0.1:{port}/metrics"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if ne.scrape(rt, http) {
                return Some(ne);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("node_exporter did not answer on {}", ne.url);
    }

    fn scrape(&self, rt: &tokio::runtime::Runtime, http: &reqwest::Client) -> bool {
        rt.block_on(async {
            match http
                .get(&self.url)
                .header("accept-encoding", "gzip")
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                _ => false,
            }
        })
    }
}

fn cycle(c: &mut Criterion) {
    let _sleepers = Sleepers::from_env();
    let procs = process_count();
    let mut daemon = Daemon::new(true, true);
    let mut worst = Daemon::new(false, true);
    let mut listing = Daemon::new(true, false);
    let scraper = reqwest::Client::new();
    let ne = NodeExporter::start(&daemon.rt, &scraper);

    // Paired rounds: our cycle, the collector alone, the cycle reading every process, the cycle
    // listing /proc every time, node_exporter's scrape; order alternating.
    let rounds = 60;
    let settle = Duration::from_millis(20);
    let (mut ours, mut collect_only, mut theirs, mut ratio) = (vec![], vec![], vec![], vec![]);
    let (mut worst_us, mut worst_ratio) = (vec![], vec![]);
    let mut listing_us = vec![];
    for round in 0..rounds {
        let ne_first = round % 2 == 1;
        let measure_ne = |rt: &tokio::runtime::Runtime| {
            let ne = ne.as_ref()?;
            let t = process_cpu_time(ne.pid);
            assert!(ne.scrape(rt, &scraper), "scrape failed");
            std::thread::sleep(settle);
            Some((process_cpu_time(ne.pid) - t).as_secs_f64() * 1e6)
        };
        let mut them = None;
        if ne_first {
            them = measure_ne(&daemon.rt);
        }
        let t = own_cpu_time();
        daemon.cycle();
        let us = (own_cpu_time() - t).as_secs_f64() * 1e6;
        let t = own_cpu_time();
        black_box(daemon.collector.collect());
        collect_only.push((own_cpu_time() - t).as_secs_f64() * 1e6);
        let t = own_cpu_time();
        worst.cycle();
        let every = (own_cpu_time() - t).as_secs_f64() * 1e6;
        let t = own_cpu_time();
        listing.cycle();
        listing_us.push((own_cpu_time() - t).as_secs_f64() * 1e6);
        if !ne_first {
            them = measure_ne(&daemon.rt);
        }
        ours.push(us);
        worst_us.push(every);
        if let Some(them) = them {
            theirs.push(them);
            ratio.push(us / them);
            worst_ratio.push(every / them);
        }
    }
    let ne_report = if theirs.is_empty() {
        "node_exporter not measured".to_owned()
    } else {
        format!(
            "node_exporter scrape {:.0} us; ours/node_exporter {:.2}x (reading every process \
             {:.2}x)",
            median(&mut theirs),
            median(&mut ratio),
            median(&mut worst_ratio)
        )
    };
    let collect_us = median(&mut collect_only);
    eprintln!(
        "paired CPU time, {procs} processes, {rounds} rounds (median): daemon cycle {:.0} us \
         (collector alone {collect_us:.0} us = {:.2} us per process; cycle reading every \
         process {:.0} us; cycle listing /proc every time {:.0} us); {ne_report}",
        median(&mut ours),
        collect_us / procs.max(1) as f64,
        median(&mut worst_us),
        median(&mut listing_us),
    );

    drop(worst);
    drop(listing);
    let mut g = c.benchmark_group(format!("daemon_cycle_{procs}_procs"));
    g.bench_function("collect_encode_push_cpu", |b| {
        b.iter_custom(|n| {
            let t = own_cpu_time();
            for _ in 0..n {
                daemon.cycle();
            }
            own_cpu_time() - t
        })
    });
    let snapshot = daemon.collector.collect();
    let mut encoder = SnapshotEncoder::new();
    g.bench_function("encode_only", |b| {
        b.iter(|| encoder.encode(black_box(&snapshot)).unwrap())
    });
    g.bench_function("encode_only_fresh_buffers", |b| {
        b.iter(|| {
            let json = serde_json::to_vec(black_box(&snapshot)).unwrap();
            Bytes::from(atlhyper_http::gzip(&json, 1))
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = cycle
}
criterion_main!(benches);
