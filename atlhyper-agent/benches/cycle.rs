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
use std::time::{Duration, Instant};

use atlhyper_agent::SnapshotEncoder;
use atlhyper_collect::{CollectConfig, Collector, HostRoot};
use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use criterion::{Criterion, criterion_group, criterion_main};

const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";

/// Children killed by pid when dropped.
struct Children(Vec<Child>);

impl Drop for Children {
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

fn start_sleepers() -> Children {
    let mut s = Children(Vec::new());
    let Some(target) = std::env::var("ATL_BENCH_PROCS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    else {
        return s;
    };
    let have = process_count();
    for _ in have..target.min(have + 5000) {
        match Command::new("sleep")
            .arg("900")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
        {
            Ok(c) => s.0.push(c),
            Err(_) => break,
        }
    }
    s
}

/// CPU time of a whole process: ours (`pid` 0) or another's, through its process CPU clock.
fn process_cpu(pid: u32) -> Duration {
    let id = if pid == 0 {
        libc::CLOCK_PROCESS_CPUTIME_ID
    } else {
        // MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)
        (!(pid as libc::clockid_t) << 3) | 2
    };
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(id, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The daemon's cycle: collector, encoder and an HTTP client pushing to a loopback sink.
struct Daemon {
    rt: tokio::runtime::Runtime,
    collector: Collector,
    encoder: SnapshotEncoder,
    http: reqwest::Client,
    url: String,
}

impl Daemon {
    fn new() -> Self {
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
        let mut collector = Collector::new(HostRoot::default(), CollectConfig::from_host());
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
    _child: Children,
    pid: u32,
    url: String,
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
            _child: Children(vec![child]),
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
    let _sleepers = start_sleepers();
    let procs = process_count();
    let mut daemon = Daemon::new();
    let scraper = reqwest::Client::new();
    let ne = NodeExporter::start(&daemon.rt, &scraper);

    // Paired rounds: our cycle, the collector alone, node_exporter's scrape; order alternating.
    let rounds = 60;
    let settle = Duration::from_millis(20);
    let (mut ours, mut collect_only, mut theirs, mut ratio) = (vec![], vec![], vec![], vec![]);
    for round in 0..rounds {
        let ne_first = round % 2 == 1;
        let measure_ne = |rt: &tokio::runtime::Runtime| {
            let ne = ne.as_ref()?;
            let t = process_cpu(ne.pid);
            assert!(ne.scrape(rt, &scraper), "scrape failed");
            std::thread::sleep(settle);
            Some((process_cpu(ne.pid) - t).as_secs_f64() * 1e6)
        };
        let mut them = None;
        if ne_first {
            them = measure_ne(&daemon.rt);
        }
        let t = process_cpu(0);
        daemon.cycle();
        let us = (process_cpu(0) - t).as_secs_f64() * 1e6;
        let t = process_cpu(0);
        black_box(daemon.collector.collect());
        collect_only.push((process_cpu(0) - t).as_secs_f64() * 1e6);
        if !ne_first {
            them = measure_ne(&daemon.rt);
        }
        ours.push(us);
        if let Some(them) = them {
            theirs.push(them);
            ratio.push(us / them);
        }
    }
    let ne_report = if theirs.is_empty() {
        "node_exporter not measured".to_owned()
    } else {
        format!(
            "node_exporter scrape {:.0} us; ours/node_exporter {:.2}x",
            median(&mut theirs),
            median(&mut ratio)
        )
    };
    let collect_us = median(&mut collect_only);
    eprintln!(
        "paired CPU time, {procs} processes, {rounds} rounds (median): daemon cycle {:.0} us \
         (collector alone {collect_us:.0} us = {:.2} us per process); {ne_report}",
        median(&mut ours),
        collect_us / procs.max(1) as f64,
    );

    let mut g = c.benchmark_group(format!("daemon_cycle_{procs}_procs"));
    g.bench_function("collect_encode_push_cpu", |b| {
        b.iter_custom(|n| {
            let t = process_cpu(0);
            for _ in 0..n {
                daemon.cycle();
            }
            process_cpu(0) - t
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
