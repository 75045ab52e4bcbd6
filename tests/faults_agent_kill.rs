//! Fault suite: the cluster agent SIGKILLed 20 times under load (3 real node daemons at a
//! 200 ms interval, 25x the default 5 s, plus a load generator of 20 more nodes). After every restart each daemon's
//! next accepted push comes within 2 collection intervals of the agent being back.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use atlhyper_testkit::{free_port, http, node_json};
use common::{AgentBuilder, Proc, Scratch, bins, scrape, serial, wait_healthy};

const NODE_TOKEN: &str = "node-token-kill-agent";

#[test]
fn agent_sigkilled_20_times_under_load_daemons_reconnect_within_2_intervals() {
    let _serial = serial();
    let dir = Scratch::new("agent-kill");
    // 25x compressed; at 100 ms the scheduling noise of a loaded 2-core machine running debug
    // binaries is already of the order of an interval.
    let interval = Duration::from_millis(200);
    let mut agent = AgentBuilder::new("atlhyper-agent", "agent-kill")
        .in_dir(&dir.0)
        // No master: the pusher backs off; the receiver side is what is under test.
        .dead_master()
        .node_token(NODE_TOKEN)
        .env("AGENT_NODE_INTERVAL", "200ms")
        .env("AGENT_SNAPSHOT_INTERVAL", "400ms")
        .start();
    let agent_addr = agent.addr;

    // Three real daemons on this host under different node names. Retry delays scaled with the
    // interval as the defaults are (1 s base, 60 s cap at a 5 s interval).
    let mut daemons = Vec::new();
    for i in 0..3 {
        let listen: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let d = Proc::spawn(
            &format!("atlhyper-metrics-{i}"),
            &bins().metrics,
            &[
                ("METRICS_AGENT_ADDR", format!("http://{agent_addr}")),
                ("METRICS_COLLECT_INTERVAL", "200ms".to_owned()),
                ("METRICS_NODE_NAME", format!("kill-node-{i}")),
                ("METRICS_TOKEN", NODE_TOKEN.to_owned()),
                ("METRICS_PUSH_TIMEOUT", "500ms".to_owned()),
                ("METRICS_BACKOFF_BASE", "40ms".to_owned()),
                ("METRICS_BACKOFF_MAX", "2400ms".to_owned()),
                ("METRICS_LISTEN", listen.to_string()),
            ],
            &dir.0,
        );
        wait_healthy(listen, Duration::from_secs(20), &d);
        daemons.push((d, listen));
    }

    // Load: 20 more nodes pushing as fast as one client thread can, all along.
    let stop = Arc::new(AtomicBool::new(false));
    let load_ok = Arc::new(AtomicU64::new(0));
    let load = {
        let (stop, load_ok) = (stop.clone(), load_ok.clone());
        std::thread::spawn(move || {
            let auth = format!("Bearer {NODE_TOKEN}");
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let body = node_json(&format!("load-{}", i % 20), chrono::Utc::now(), 50.0);
                if let Ok((200, _)) = http(
                    agent_addr,
                    "POST",
                    "/metrics/node",
                    &[
                        ("Authorization", &auth),
                        ("Content-Type", "application/json"),
                    ],
                    body.as_bytes(),
                    Duration::from_secs(2),
                ) {
                    load_ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    std::thread::sleep(Duration::from_millis(5));
                }
                i += 1;
            }
        })
    };

    let pushes = |listen: SocketAddr| -> f64 {
        scrape(listen)
            .and_then(|m| m.get("atlhyper_metrics_pushes_total").copied())
            .expect("daemon /metrics")
    };
    std::thread::sleep(Duration::from_millis(500));
    let mut worst = Duration::ZERO;
    let mut delays = Vec::new();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let t_all = Instant::now();
    for round in 0..20 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(200 + rng % 300));
        agent.restart();
        let back = Instant::now();
        let before: Vec<f64> = daemons.iter().map(|(_, l)| pushes(*l)).collect();
        let mut pending: Vec<usize> = (0..daemons.len()).collect();
        while !pending.is_empty() && back.elapsed() < Duration::from_secs(10) {
            pending.retain(|&i| {
                if pushes(daemons[i].1) > before[i] {
                    let d = back.elapsed();
                    delays.push(d);
                    worst = worst.max(d);
                    false
                } else {
                    true
                }
            });
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            pending.is_empty(),
            "round {round}: daemons {pending:?} did not reconnect within 10 s"
        );
    }
    let elapsed = t_all.elapsed();
    stop.store(true, Ordering::Relaxed);
    load.join().expect("load thread");
    delays.sort();
    let p50 = delays[delays.len() / 2];
    let rss: Vec<u64> = daemons.iter().map(|(d, _)| d.rss_kib()).collect();
    eprintln!(
        "agent kill -9 x20 under load ({} load pushes accepted in {elapsed:?}): daemon \
         reconnect after the agent is healthy p50 {p50:?}, worst {worst:?} (interval \
         {interval:?}); daemon RSS {rss:?} KiB",
        load_ok.load(Ordering::Relaxed)
    );
    assert!(
        worst <= 2 * interval,
        "every daemon reconnected within 2 intervals (worst {worst:?})"
    );
    for (d, listen) in &mut daemons {
        assert!(d.alive(), "{} died", d.name);
        d.assert_no_panic();
        let m = scrape(*listen).expect("daemon /metrics");
        assert_eq!(
            m["atlhyper_metrics_rejected_total"], 0.0,
            "{}: nothing refused for good",
            d.name
        );
    }
    agent.proc.assert_no_panic();
}

/// Started on port 0, the agent logs the port the kernel gave it; a kill -9 and restart asks
/// for that same address and gets it.
#[test]
fn agent_on_port_0_logs_its_address_and_a_restart_keeps_it() {
    let _serial = serial();
    let mut agent = AgentBuilder::new("atlhyper-agent", "agent-port-0")
        .dead_master()
        .node_token(NODE_TOKEN)
        .start();
    let addr = agent.addr;
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
    let line = agent
        .proc
        .log_text()
        .lines()
        .find(|l| l.contains("agent listening"))
        .map(str::to_owned)
        .expect("the listening line");
    assert!(line.contains(&format!("addr={addr}")), "{line}");
    assert!(line.contains("cluster_id=agent-port-0"), "{line}");

    let first_pid = agent.proc.pid();
    agent.restart();
    assert_ne!(agent.proc.pid(), first_pid, "a new process");
    assert_eq!(agent.addr, addr);
    let (code, _) = atlhyper_testkit::http_get(addr, "/health", &[], Duration::from_secs(5))
        .expect("the restarted agent answers");
    assert_eq!(code, 200);
    assert_eq!(
        agent.proc.log_text().matches("agent listening").count(),
        2,
        "one listening line per start"
    );
    agent.proc.assert_no_panic();
}
