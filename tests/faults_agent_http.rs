//! Fault suite, cluster agent's receiver, against the real `atlhyper-agent` binary on loopback:
//! bad input gets the right status (400/401/413/415) and is not stored, a gzip bomb and oversize
//! bodies get 413 with bounded memory, and 500 slowloris connections do not delay a normal push and are closed at the header
//! timeout.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use atlhyper_testkit::{gzip, http, node_json};
use common::{AgentBuilder, RunningAgent, Slowloris, scrape, serial};

const NODE_TOKEN: &str = "node-secret-0123456789";

/// An agent whose master is a closed port (pushes fail and back off; the receiver is what we test).
fn agent(extra: &[(&str, String)]) -> RunningAgent {
    agent_with(extra, None)
}

/// [`agent`], optionally with at most `nofile` open descriptors.
fn agent_with(extra: &[(&str, String)], nofile: Option<u64>) -> RunningAgent {
    let agent = AgentBuilder::new("atlhyper-agent", "fault-http")
        .dead_master()
        .node_token(NODE_TOKEN)
        .token("agent-secret-0123456789")
        .env("AGENT_SNAPSHOT_INTERVAL", "1s")
        .envs(extra);
    match nofile {
        Some(n) => agent.fd_limit(n),
        None => agent,
    }
    .start()
}

fn push(
    addr: SocketAddr,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut h: Vec<(&str, &str)> = vec![("Content-Type", "application/json")];
    if let Some(a) = &auth {
        h.push(("Authorization", a));
    }
    h.extend_from_slice(headers);
    let (code, body) = http(
        addr,
        "POST",
        "/metrics/node",
        &h,
        body,
        Duration::from_secs(10),
    )
    .expect("agent answers");
    (code, String::from_utf8_lossy(&body).into_owned())
}

fn accepted_latest(addr: SocketAddr) -> f64 {
    scrape(addr)
        .and_then(|m| {
            m.get("atlhyper_agent_snapshots_received_total{outcome=\"latest\"}")
                .copied()
        })
        .expect("agent exposes its ingest counter")
}

/// A gzip member of `mib` MiB of zeros (about 1 KiB per MiB), built once.
fn gzip_bomb(mib: usize) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..mib {
        enc.write_all(&zeros).expect("compress");
    }
    enc.finish().expect("finish")
}

/// (what, token, extra headers, body, expected status)
type Case<'a> = (
    &'a str,
    Option<&'a str>,
    Vec<(&'a str, &'a str)>,
    Vec<u8>,
    u16,
);

#[test]
fn bad_input_gets_the_right_status_and_is_not_stored() {
    let _serial = serial();
    let a = agent(&[]);
    let now = chrono::Utc::now();
    let good = node_json("worker-1", now, 10.0);

    // (what, token, extra headers, body, expected status)
    let wrong_type = good.replacen("\"uptime\":12345", "\"uptime\":\"long\"", 1);
    assert_ne!(wrong_type, good, "the fixture has an uptime to corrupt");
    let gz_good = gzip(good.as_bytes());
    let cases: Vec<Case<'_>> = vec![
        ("no token", None, vec![], good.clone().into_bytes(), 401),
        (
            "wrong token",
            Some("nope"),
            vec![],
            good.clone().into_bytes(),
            401,
        ),
        (
            "token with a prefix of the right one",
            Some(&NODE_TOKEN[..10]),
            vec![],
            good.clone().into_bytes(),
            401,
        ),
        (
            "malformed JSON",
            Some(NODE_TOKEN),
            vec![],
            b"{\"node_name\": \"x\",".to_vec(),
            400,
        ),
        (
            "not JSON at all",
            Some(NODE_TOKEN),
            vec![],
            b"hello".to_vec(),
            400,
        ),
        ("empty body", Some(NODE_TOKEN), vec![], Vec::new(), 400),
        (
            "JSON array",
            Some(NODE_TOKEN),
            vec![],
            b"[1,2,3]".to_vec(),
            400,
        ),
        (
            "wrong type",
            Some(NODE_TOKEN),
            vec![],
            wrong_type.into_bytes(),
            400,
        ),
        (
            "node_name a number",
            Some(NODE_TOKEN),
            vec![],
            br#"{"node_name": 5}"#.to_vec(),
            400,
        ),
        (
            "empty node_name",
            Some(NODE_TOKEN),
            vec![],
            br#"{"node_name": ""}"#.to_vec(),
            400,
        ),
        (
            "node_name not DNS-1123",
            Some(NODE_TOKEN),
            vec![],
            br#"{"node_name": "Bad_Name"}"#.to_vec(),
            400,
        ),
        (
            "gzip header on plain JSON",
            Some(NODE_TOKEN),
            vec![("Content-Encoding", "gzip")],
            good.clone().into_bytes(),
            400,
        ),
        (
            "unsupported encoding",
            Some(NODE_TOKEN),
            vec![("Content-Encoding", "br")],
            good.clone().into_bytes(),
            415,
        ),
        (
            "gzip JSON",
            Some(NODE_TOKEN),
            vec![("Content-Encoding", "gzip")],
            gz_good,
            200,
        ),
        (
            "plain JSON",
            Some(NODE_TOKEN),
            vec![],
            good.clone().into_bytes(),
            200,
        ),
    ];
    let mut failures = Vec::new();
    let before = accepted_latest(a.addr);
    for (what, token, headers, body, want) in &cases {
        let (got, text) = push(a.addr, *token, headers, body);
        if got != *want {
            failures.push(format!("{what}: want {want}, got {got} {text}"));
        } else if *want != 200 {
            let err: serde_json::Value = serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("{what}: error body is JSON: {text}"));
            assert!(
                err["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{what}: error body says why: {text}"
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Only the two good pushes were stored (the second one as a duplicate or a newer latest).
    let after = accepted_latest(a.addr);
    assert!(
        (1.0..=2.0).contains(&(after - before)),
        "rejected bodies stored nothing ({before} -> {after})"
    );
    a.proc.assert_no_panic();
}

#[test]
fn gzip_bomb_and_oversize_bodies_get_413_with_bounded_memory() {
    let _serial = serial();
    let a = agent(&[]);
    // Warm up allocator and connection paths.
    let now = chrono::Utc::now();
    for i in 0..20 {
        let body = node_json(&format!("warm-{i}"), now, 1.0);
        assert_eq!(push(a.addr, Some(NODE_TOKEN), &[], body.as_bytes()).0, 200);
    }
    let rss_before = a.proc.rss_kib();

    let bomb = gzip_bomb(64); // 64 MiB of zeros in ~64 KiB: under the 1 MiB wire limit
    assert!(bomb.len() < (1 << 20));
    let oversize_plain = vec![b' '; 3 << 20]; // 3 MiB of JSON whitespace
    let oversize_gzip = {
        // Compressed body itself over the limit (random bytes do not compress).
        let mut noise = vec![0u8; 2 << 20];
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for b in &mut noise {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        gzip(&noise)
    };
    let started = Instant::now();
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let addr = a.addr;
            let (headers, body): (Vec<(&str, &str)>, Vec<u8>) = match i % 3 {
                0 => (vec![("Content-Encoding", "gzip")], bomb.clone()),
                1 => (vec![], oversize_plain.clone()),
                _ => (vec![("Content-Encoding", "gzip")], oversize_gzip.clone()),
            };
            std::thread::spawn(move || push(addr, Some(NODE_TOKEN), &headers, &body))
        })
        .collect();
    let mut peak = rss_before;
    while handles.iter().any(|h| !h.is_finished()) {
        peak = peak.max(a.proc.rss_kib());
        std::thread::sleep(Duration::from_millis(5));
    }
    for (i, h) in handles.into_iter().enumerate() {
        let (code, text) = h.join().expect("client thread");
        assert_eq!(code, 413, "request {i}: {text}");
    }
    let took = started.elapsed();
    let rss_after = a.proc.rss_kib();
    peak = peak.max(rss_after);
    eprintln!(
        "agent 413s: 8 bodies (64 MiB gzip bomb x3, 3 MiB plain x3, 2 MiB gzip x2) in {took:?}; \
         RSS before {rss_before} KiB, peak {peak} KiB, after {rss_after} KiB"
    );
    assert!(
        peak.saturating_sub(rss_before) < 48 * 1024,
        "memory bounded under 8 concurrent bombs: {rss_before} -> peak {peak} KiB"
    );
    // Still serving.
    let body = node_json("after-bomb", chrono::Utc::now(), 1.0);
    assert_eq!(push(a.addr, Some(NODE_TOKEN), &[], body.as_bytes()).0, 200);
    a.proc.assert_no_panic();
}

#[test]
fn slowloris_does_not_delay_a_normal_push() {
    let _serial = serial();
    let a = agent(&[("AGENT_HEADER_TIMEOUT", "3s".to_owned())]);
    let body = node_json("normal-node", chrono::Utc::now(), 5.0);
    let mut push_one = || {
        let t = Instant::now();
        let (code, text) = push(a.addr, Some(NODE_TOKEN), &[], body.as_bytes());
        assert_eq!(code, 200, "{text}");
        t.elapsed()
    };
    let under = common::pushes_under_slowloris(
        "agent",
        &a.proc,
        a.addr,
        "/metrics/node",
        Duration::from_secs(3),
        Duration::from_millis(50),
        &mut push_one,
    );
    assert!(under.len() >= 20, "pushes kept flowing ({})", under.len());
}

#[test]
fn out_of_descriptors_the_accept_loop_backs_off_and_recovers() {
    let _serial = serial();
    // 64 descriptors, about 12 in use at rest: 150 dribbling connections exhaust them, and the
    // rest wait in the listen backlog.
    let a = agent_with(&[("AGENT_HEADER_TIMEOUT", "2s".to_owned())], Some(64));
    let fds_before = a.proc.fds();
    let started = Instant::now();
    let slow = Slowloris::start(a.addr, "/metrics/node", 150, Duration::from_millis(100));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !a.proc.log_text().contains("accepting a connection failed") {
        assert!(
            Instant::now() < deadline,
            "no accept error logged with 150 connections and 64 descriptors:\n{}",
            common::tail(&a.proc.log_text(), 2000)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let fds_peak = a.proc.fds();
    // Each accepted connection is closed at its header timeout, which frees descriptors for the
    // ones still in the backlog, until every one has been accepted and closed.
    let all_closed = slow.wait_all_closed(Duration::from_secs(40));
    let took = started.elapsed();
    let report = slow.stop();
    let body = node_json("after-emfile", chrono::Utc::now(), 1.0);
    let t = Instant::now();
    let (code, text) = push(a.addr, Some(NODE_TOKEN), &[], body.as_bytes());
    let push_took = t.elapsed();
    let fds_after = a.proc.fds();
    eprintln!(
        "agent out of descriptors (RLIMIT_NOFILE 64, header timeout 2 s): 150 slowloris \
         connections, {} closed by the server in {took:.1?}, {} answered; fds {fds_before} -> \
         {fds_peak} -> {fds_after}; push afterwards {code} in {push_took:?}; accept errors \
         logged: {}",
        report.closed,
        report.answered,
        a.proc
            .log_text()
            .matches("accepting a connection failed")
            .count()
    );
    assert!(
        all_closed,
        "only {} of 150 connections closed",
        report.closed
    );
    assert_eq!(report.answered, 0, "half-sent requests were answered");
    assert_eq!(code, 200, "{text}");
    assert!(
        fds_after <= fds_before + 8,
        "descriptors back near the baseline: {fds_before} -> {fds_after}"
    );
    a.proc.assert_no_panic();
}
