//! Agent ingest over plain HTTP and over TLS in one run, on loopback: the real receiver
//! (`serve_agent`) and reqwest clients with keep-alive in one process, sharing the machine as a
//! load tool would.
//!
//! 1. Throughput: `CONNS` requests in flight (closed loop) for `SECS` seconds.
//! 2. Latency at a fixed `RATE` per second (open loop: each request is timed from when it was
//!    due, so a stall counts against every request it delays): p50, p99, max.
//!
//! ```sh
//! cargo run --release -p atlhyper-agent --example ingest_tls_load   # CONNS=32 SECS=8 RATE=2000
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use atlhyper_agent::{AgentConfig, NodeTable, serve_agent};
use atlhyper_http::tls::TlsSettings;
use atlhyper_testkit::tls::{TestCa, Validity};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The load body (about 5.2 KB) with node `node` stamped `round` intervals after a day ago.
fn body(template: &str, node: u64, round: u64) -> String {
    let day_ago = chrono::Utc::now().timestamp() - 86_400;
    let ts = chrono::DateTime::from_timestamp(day_ago + 5 * round as i64, 0)
        .expect("a timestamp")
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    template
        .replace("load-node-1", &format!("load-node-{node}"))
        .replace("2024-01-20T10:30:00Z", &ts)
}

struct Target {
    url: String,
    http: reqwest::Client,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
}

async fn start(tls: Option<(&TestCa, &std::path::Path)>, conns: usize) -> Target {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut config = AgentConfig {
        listen: listener.local_addr().unwrap(),
        cluster_id: "load".to_owned(),
        master_url: "http://127.0.0.1:9".to_owned(),
        ..AgentConfig::default()
    };
    let mut http = reqwest::Client::builder()
        .pool_max_idle_per_host(conns)
        .timeout(Duration::from_secs(10));
    let scheme = match tls {
        Some((ca, dir)) => {
            let (cert, key) = ca
                .server(&["localhost"], Validity::Current)
                .write(dir, "agent");
            config.tls = Some(TlsSettings::new(cert, key));
            let roots = reqwest::Certificate::from_pem_bundle(ca.cert_pem().as_bytes()).unwrap();
            http = http.tls_certs_only(roots);
            "https"
        }
        None => "http",
    };
    let table = Arc::new(NodeTable::new(config.table_config()));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        serve_agent(listener, config, table, async move {
            let _ = stopped.await;
        })
        .await
        .expect("the agent runs");
    });
    Target {
        url: format!("{scheme}://localhost:{port}/metrics/node"),
        http: http.build().unwrap(),
        stop,
        server,
    }
}

async fn post(t: &Target, body: String) -> bool {
    match t
        .http
        .post(&t.url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
    {
        Ok(r) => r.status().is_success(),
        Err(_) => false,
    }
}

/// Snapshots per second with `conns` requests in flight for `secs`; and failures.
async fn throughput(t: &Arc<Target>, template: &Arc<String>, conns: u64, secs: u64) -> (f64, u64) {
    let done = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..conns {
        let (t, template, done, ok, failed) = (
            Arc::clone(t),
            Arc::clone(template),
            Arc::clone(&done),
            Arc::clone(&ok),
            Arc::clone(&failed),
        );
        workers.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !done.load(Ordering::Relaxed) {
                let node = (w * 1000 / conns.max(1) + i) % 1000;
                if post(&t, body(&template, node, i)).await {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                i += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    done.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let rate = ok.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    (rate, failed.load(Ordering::Relaxed))
}

/// Latencies (from when each request was due) at `rate` per second for `secs`.
async fn latency(
    t: &Arc<Target>,
    template: &Arc<String>,
    rate: u64,
    secs: u64,
) -> (Vec<Duration>, u64) {
    let period = Duration::from_secs_f64(1.0 / rate as f64);
    let total = rate * secs;
    let failed = Arc::new(AtomicU64::new(0));
    let started = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for k in 0..total {
        let due = started + period * k as u32;
        tokio::time::sleep_until(due).await;
        let (t, template, failed) = (Arc::clone(t), Arc::clone(template), Arc::clone(&failed));
        tasks.push(tokio::spawn(async move {
            let ok = post(&t, body(&template, k % 1000, k / 1000)).await;
            if !ok {
                failed.fetch_add(1, Ordering::Relaxed);
            }
            due.elapsed()
        }));
    }
    let mut lat = Vec::with_capacity(tasks.len());
    for task in tasks {
        lat.push(task.await.unwrap());
    }
    lat.sort_unstable();
    (lat, failed.load(Ordering::Relaxed))
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn main() {
    let conns = env_or("CONNS", 32);
    let secs = env_or("SECS", 8);
    let rate = env_or("RATE", 2000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let template = Arc::new(
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/load/snapshot.json"))
                .expect("load/snapshot.json (python3 load/make_snapshot.py load)"),
        );
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("load CA");
        println!("agent ingest, {conns} requests in flight for {secs} s, then {rate}/s for {secs} s (keep-alive, about {} bytes per snapshot)", template.len());
        for (name, tls) in [("plain HTTP", None), ("TLS", Some((&ca, dir.path())))] {
            let target = Arc::new(start(tls, conns as usize).await);
            // Warm up: connections open, handshakes done.
            let _ = throughput(&target, &template, conns, 1).await;
            let (per_s, failed) = throughput(&target, &template, conns, secs).await;
            let (lat, lat_failed) = latency(&target, &template, rate, secs).await;
            println!(
                "{name:>10}: {per_s:>8.0} snapshots/s ({failed} failed); at {rate}/s: p50 {:?} p99 {:?} max {:?} ({lat_failed} failed of {})",
                pct(&lat, 0.50),
                pct(&lat, 0.99),
                lat.last().copied().unwrap_or_default(),
                lat.len()
            );
            let target = Arc::into_inner(target).expect("no request left");
            let _ = target.stop.send(());
            target.server.await.unwrap();
        }
    });
}
