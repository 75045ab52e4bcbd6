//! Fault suite: a peer that accepts TCP and never answers. The node daemon pushing to such an
//! "agent", and the agent pushing, heartbeating and long-polling such a "master", bound every
//! call by its timeout, keep their own cycles on schedule, and keep serving their own routes.

mod common;

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atlhyper_testkit::{free_port, http, node_json};
use common::{AgentBuilder, Proc, Scratch, bins, prom_value, scrape, serial, wait_healthy};

/// A TCP peer that accepts every connection, reads (and discards) whatever is sent, and never
/// writes a byte. Records how long each connection stayed open before the client gave up.
struct Blackhole {
    addr: SocketAddr,
    lifetimes: Arc<Mutex<Vec<(Instant, Duration)>>>,
    open: Arc<Mutex<usize>>,
    stop: Arc<AtomicBool>,
}

impl Blackhole {
    fn start() -> Blackhole {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let lifetimes = Arc::new(Mutex::new(Vec::new()));
        let open = Arc::new(Mutex::new(0usize));
        let stop = Arc::new(AtomicBool::new(false));
        let (l2, o2, s2) = (lifetimes.clone(), open.clone(), stop.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            while !s2.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        let accepted = Instant::now();
                        let (l3, o3, s3) = (l2.clone(), o2.clone(), s2.clone());
                        *o3.lock().expect("lock") += 1;
                        std::thread::spawn(move || {
                            let _ = conn.set_read_timeout(Some(Duration::from_millis(50)));
                            let mut buf = [0u8; 4096];
                            loop {
                                match conn.read(&mut buf) {
                                    Ok(0) => break,
                                    Ok(_) => {}
                                    Err(e)
                                        if e.kind() == std::io::ErrorKind::WouldBlock
                                            || e.kind() == std::io::ErrorKind::TimedOut =>
                                    {
                                        if s3.load(Ordering::Relaxed)
                                            || accepted.elapsed() > Duration::from_secs(60)
                                        {
                                            break;
                                        }
                                    }
                                    Err(_) => break,
                                }
                            }
                            *o3.lock().expect("lock") -= 1;
                            l3.lock()
                                .expect("lock")
                                .push((accepted, accepted.elapsed()));
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Blackhole {
            addr,
            lifetimes,
            open,
            stop,
        }
    }

    fn lifetimes(&self) -> Vec<Duration> {
        self.lifetimes
            .lock()
            .expect("lock")
            .iter()
            .map(|(_, d)| *d)
            .collect()
    }

    fn open(&self) -> usize {
        *self.open.lock().expect("lock")
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn daemon_pushing_to_a_silent_agent_stays_on_schedule() {
    let _serial = serial();
    let hole = Blackhole::start();
    let dir = Scratch::new("blackhole-daemon");
    let listen: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let interval = Duration::from_millis(100);
    let push_timeout = Duration::from_millis(300);
    let d = Proc::spawn(
        "atlhyper-metrics",
        &bins().metrics,
        &[
            ("METRICS_AGENT_ADDR", format!("http://{}", hole.addr)),
            ("METRICS_COLLECT_INTERVAL", "100ms".to_owned()),
            ("METRICS_PUSH_TIMEOUT", "300ms".to_owned()),
            ("METRICS_BACKOFF_BASE", "20ms".to_owned()),
            ("METRICS_BACKOFF_MAX", "200ms".to_owned()),
            ("METRICS_QUEUE_CAPACITY", "20".to_owned()),
            ("METRICS_NODE_NAME", "blackhole-node".to_owned()),
            ("METRICS_LISTEN", listen.to_string()),
        ],
        &dir.0,
    );
    wait_healthy(listen, Duration::from_secs(20), &d);
    let start = scrape(listen).expect("daemon /metrics");
    // The collector keeps one descriptor per host process (/proc/<pid>/stat) between
    // collections, so the absolute count follows the host; a leak is growth after the first
    // collections have opened them (measured from 1 s into the run).
    let mut fds_start = None;
    let t0 = Instant::now();
    let run = Duration::from_secs(4);
    let mut max_queue = 0.0f64;
    let mut max_rss = 0;
    while t0.elapsed() < run {
        if let Some(m) = scrape(listen) {
            max_queue = max_queue.max(m["atlhyper_metrics_queue_length"]);
        }
        max_rss = max_rss.max(d.rss_kib());
        if fds_start.is_none() && t0.elapsed() >= Duration::from_secs(1) {
            fds_start = Some(d.fds());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let elapsed = t0.elapsed();
    let end = scrape(listen).expect("daemon still serves /metrics");
    let cycles = end["atlhyper_metrics_cycles_total"] - start["atlhyper_metrics_cycles_total"];
    let failures =
        end["atlhyper_metrics_push_failures_total"] - start["atlhyper_metrics_push_failures_total"];
    let dropped = end["atlhyper_metrics_dropped_points_total"];
    let lifetimes = hole.lifetimes();
    let longest = lifetimes.iter().max().copied().unwrap_or_default();
    let expected_cycles = elapsed.as_secs_f64() / interval.as_secs_f64();
    eprintln!(
        "daemon vs silent agent: {cycles} cycles in {elapsed:?} (expected ~{expected_cycles:.0}), \
         {failures} failed pushes, {} connections closed by the daemon, longest {longest:?} \
         (timeout {push_timeout:?}), {} still open, queue max {max_queue} (cap 20), dropped \
         {dropped}, RSS max {max_rss} KiB",
        lifetimes.len(),
        hole.open()
    );
    assert!(
        cycles >= expected_cycles * 0.8,
        "collection stays on schedule: {cycles} cycles, expected ~{expected_cycles:.0}"
    );
    assert!(
        failures >= 3.0,
        "pushes time out and are retried ({failures})"
    );
    assert!(!lifetimes.is_empty(), "the daemon gave up on connections");
    assert!(
        longest <= push_timeout + Duration::from_millis(250),
        "every push is bounded by the timeout: longest connection {longest:?}"
    );
    assert!(
        hole.open() <= 1,
        "at most one request in flight ({})",
        hole.open()
    );
    // The newest snapshot is kept besides the queue of older ones: cap + 1.
    assert!(max_queue <= 21.0, "backfill queue bounded ({max_queue})");
    assert!(dropped > 0.0, "what did not fit was counted as dropped");
    let fds_start = fds_start.expect("the run lasts longer than 1 s");
    let fds_end = d.fds();
    assert!(
        fds_end <= fds_start + 32,
        "no descriptor leak ({fds_start} -> {fds_end})"
    );
    d.assert_no_panic();
}

#[test]
fn agent_talking_to_a_silent_master_stays_bounded_and_keeps_receiving() {
    let _serial = serial();
    let hole = Blackhole::start();
    let dir = Scratch::new("blackhole-agent");
    let request_timeout = Duration::from_millis(300);
    let poll_timeout = Duration::from_millis(500);
    let a = AgentBuilder::new("atlhyper-agent", "blackhole")
        .in_dir(&dir.0)
        .master(hole.addr)
        .env("AGENT_SNAPSHOT_INTERVAL", "200ms")
        .env("AGENT_HEARTBEAT_INTERVAL", "200ms")
        .env("AGENT_NODE_INTERVAL", "100ms")
        .env("AGENT_REQUEST_TIMEOUT", "300ms")
        .env("AGENT_COMMAND_POLL_TIMEOUT", "500ms")
        .backoff("50ms", "400ms")
        .start();
    let addr = a.addr;
    let t0 = Instant::now();
    let run = Duration::from_secs(4);
    let mut latencies = Vec::new();
    let mut i = 0u32;
    while t0.elapsed() < run {
        let body = node_json(&format!("node-{}", i % 5), chrono::Utc::now(), 1.0);
        let t = Instant::now();
        let (code, text) = http(
            addr,
            "POST",
            "/metrics/node",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
            Duration::from_secs(5),
        )
        .expect("agent answers its nodes");
        assert_eq!(code, 200, "{}", String::from_utf8_lossy(&text));
        latencies.push(t.elapsed());
        i += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    let m = scrape(addr).expect("agent /metrics");
    let push_failed = m
        .get("atlhyper_agent_push_failures_total")
        .or_else(|| {
            m.iter()
                .find(|(k, _)| k.contains("push") && k.contains("fail"))
                .map(|(_, v)| v)
        })
        .copied();
    let lifetimes = hole.lifetimes();
    let longest = lifetimes.iter().max().copied().unwrap_or_default();
    let max_latency = latencies.iter().max().copied().unwrap_or_default();
    eprintln!(
        "agent vs silent master: {} calls ended by the agent in {:?}, longest {longest:?} \
         (request timeout {request_timeout:?}, long poll {poll_timeout:?}), {} open now; \
         push failures {push_failed:?}; {} node pushes meanwhile, max latency {max_latency:?}",
        lifetimes.len(),
        t0.elapsed(),
        hole.open(),
        latencies.len()
    );
    assert!(
        longest <= poll_timeout + Duration::from_millis(300),
        "every call to the master is bounded: longest {longest:?}"
    );
    // Snapshot pushes (200 ms + backoff <= 400 ms), heartbeats and polls keep cycling: in 4 s
    // at least 4 pushes plus 4 heartbeats plus 4 polls must have been attempted and given up.
    assert!(
        lifetimes.len() >= 12,
        "calls cycle on schedule ({} in 4 s)",
        lifetimes.len()
    );
    assert!(
        push_failed.is_some_and(|v| v >= 3.0),
        "failed pushes are counted ({push_failed:?}): {m:?}"
    );
    assert!(
        max_latency < Duration::from_millis(500),
        "the receiver is not held up by the master ({max_latency:?})"
    );
    assert!(
        prom_value(
            &String::from_utf8_lossy(
                &atlhyper_testkit::http_get(addr, "/metrics", &[], Duration::from_secs(2))
                    .expect("metrics")
                    .1
            ),
            "atlhyper_agent_nodes{state=\"online\"}"
        )
        .is_some_and(|n| n >= 5.0),
        "the nodes are in the table"
    );
    a.proc.assert_no_panic();
}
