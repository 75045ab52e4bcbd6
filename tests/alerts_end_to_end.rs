//! Alerting end to end, issue #14: the real `atlhyper-metrics` daemon reads a fake host root
//! whose `/proc/stat` the test writes, pushes to the real `atlhyper-agent`, which pushes to the
//! real `atlhyper-master`; the master evaluates a threshold rule from its `--alert-config` file
//! every second and notifies a webhook receiver run by the test (Alertmanager's payload,
//! version 4). The CPU figure is driven over the threshold and back under; firing and resolved
//! must each arrive exactly once, within a bound, and the latencies are printed.
//!
//! A fake host root rather than a busy loop on the real host: on a shared machine the real CPU
//! figure moves with everybody's builds, the written one only when the test says so.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atlhyper_testkit::get_json;
use common::{AgentBuilder, MasterBuilder, Proc, Scratch, bins, serial, tail};
use serde_json::Value;

const CLUSTER: &str = "alert-e2e";
const NODE: &str = "e2e-node-1";
const AGENT_TOKEN: &str = "agent-token-alert-e2e-0000";
const NODE_TOKEN: &str = "node-token-alert-e2e-0000";
const VIEWER: &str = "viewer-token-alert-e2e-0000";
const ALERT: &str = "E2eHighCpu";

/// The rule: `cpu.usage_percent > THRESHOLD` for `FOR`.
const THRESHOLD: f64 = 80.0;
const FOR: Duration = Duration::from_secs(3);
/// `--alert-eval-interval`.
const EVAL_INTERVAL: Duration = Duration::from_secs(1);
/// The route's `group_wait` and `group_interval`.
const GROUP_WAIT: Duration = Duration::from_secs(1);
const GROUP_INTERVAL: Duration = Duration::from_secs(1);
/// The daemon's collection interval and the agent's snapshot (push) interval.
const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
const PUSH_INTERVAL: Duration = Duration::from_secs(1);
/// The issue's allowance for delivery and timer rounding.
const SLACK: Duration = Duration::from_secs(1);
/// How long the test listens for a duplicate after each notification: several group intervals.
const QUIET: Duration = Duration::from_secs(6);

/// Clock ticks the writer adds per CPU at each rewrite of `/proc/stat`, and how often it
/// rewrites: 100 ticks per second per CPU, as USER_HZ 100 counts.
const TICKS_PER_WRITE: u64 = 10;
const WRITE_EVERY: Duration = Duration::from_millis(100);
const CPUS: usize = 2;
/// Ticks added at once when the load changes: any delta the daemon takes across the change is
/// dominated by it, so the first sample read after the change is already on the new side.
const STEP_TICKS: u64 = 1_000_000;

/// How a CPU spends each write's [`TICKS_PER_WRITE`] ticks.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Load {
    /// 10 % busy.
    Quiet,
    /// 90 % busy.
    Busy,
}

impl Load {
    /// (user, system, idle) ticks of one write.
    fn split(self) -> (u64, u64, u64) {
        let tenth = TICKS_PER_WRITE / 10;
        match self {
            Load::Quiet => (tenth, 0, 9 * tenth),
            Load::Busy => (8 * tenth, tenth, tenth),
        }
    }

    /// The usage the daemon reports for a span entirely under this load, percent.
    fn percent(self) -> f64 {
        let (user, system, idle) = self.split();
        100.0 * (user + system) as f64 / (user + system + idle) as f64
    }
}

/// Cumulative tick counters of one CPU (the other columns stay 0).
#[derive(Debug, Clone, Copy, Default)]
struct Ticks {
    user: u64,
    system: u64,
    idle: u64,
}

/// A fake host root (`proc/`, `sys/`, and itself as the root filesystem) with `/proc/stat`
/// rewritten every [`WRITE_EVERY`] by a thread, atomically (write, then rename) so the daemon
/// never reads half a file.
struct FakeHost {
    dir: PathBuf,
    load: Arc<Mutex<(Load, Option<Instant>)>>,
    stop: Arc<AtomicBool>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl FakeHost {
    fn create(dir: &Path) -> FakeHost {
        let proc = dir.join("proc");
        std::fs::create_dir_all(&proc).expect("fake proc");
        std::fs::create_dir_all(dir.join("sys")).expect("fake sys");
        // The other files the CPU and memory parts read; static, written once.
        let files = [
            (
                "meminfo",
                "MemTotal:        8000000 kB\nMemFree:         3000000 kB\nMemAvailable:    6000000 kB\n\
                 Buffers:          100000 kB\nCached:          2000000 kB\nSwapCached:            0 kB\n\
                 Active:          2000000 kB\nInactive:        1000000 kB\nSwapTotal:             0 kB\n\
                 SwapFree:              0 kB\nShmem:             10000 kB\nSReclaimable:     200000 kB\n",
            ),
            ("loadavg", "0.10 0.20 0.30 1/100 4242\n"),
            ("uptime", "1000.00 1800.00\n"),
            (
                "cpuinfo",
                "processor\t: 0\nmodel name\t: atlhyper e2e cpu\ncpu MHz\t\t: 2000.000\nphysical id\t: 0\ncore id\t\t: 0\n\n\
                 processor\t: 1\nmodel name\t: atlhyper e2e cpu\ncpu MHz\t\t: 2000.000\nphysical id\t: 0\ncore id\t\t: 1\n\n",
            ),
        ];
        for (name, text) in files {
            std::fs::write(proc.join(name), text).expect("fake proc file");
        }
        let load = Arc::new(Mutex::new((Load::Quiet, None)));
        let stop = Arc::new(AtomicBool::new(false));
        let (load2, stop2, proc2) = (load.clone(), stop.clone(), proc.clone());
        let mut cpus = [Ticks::default(); CPUS];
        let mut written = Load::Quiet;
        write_stat(&proc, &cpus);
        let writer = std::thread::spawn(move || {
            // Bounded: a test that hangs elsewhere does not leave the thread writing forever.
            let deadline = Instant::now() + Duration::from_secs(300);
            while !stop2.load(Ordering::Relaxed) && Instant::now() < deadline {
                std::thread::sleep(WRITE_EVERY);
                let mut guard = load2.lock().unwrap_or_else(|p| p.into_inner());
                let want = guard.0;
                let (user, system, idle) = want.split();
                for cpu in &mut cpus {
                    if want != written {
                        match want {
                            Load::Busy => cpu.user += STEP_TICKS,
                            Load::Quiet => cpu.idle += STEP_TICKS,
                        }
                    }
                    cpu.user += user;
                    cpu.system += system;
                    cpu.idle += idle;
                }
                write_stat(&proc2, &cpus);
                if want != written {
                    // The instant the changed figure became readable.
                    guard.1 = Some(Instant::now());
                    written = want;
                }
            }
        });
        FakeHost {
            dir: dir.to_owned(),
            load,
            stop,
            writer: Some(writer),
        }
    }

    /// Switches the load; returns the instant the first `/proc/stat` under it was in place.
    fn set_load(&self, load: Load) -> Instant {
        self.load.lock().unwrap_or_else(|p| p.into_inner()).0 = load;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            {
                let mut guard = self.load.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(at) = guard.1.take() {
                    return at;
                }
            }
            assert!(Instant::now() < deadline, "the stat writer stalled");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for FakeHost {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

/// Writes `/proc/stat` as the kernel does (10 columns), atomically.
fn write_stat(proc: &Path, cpus: &[Ticks]) {
    let line =
        |name: &str, t: Ticks| format!("{name} {} 0 {} {} 0 0 0 0 0 0\n", t.user, t.system, t.idle);
    let total = cpus.iter().fold(Ticks::default(), |a, c| Ticks {
        user: a.user + c.user,
        system: a.system + c.system,
        idle: a.idle + c.idle,
    });
    let mut text = line("cpu ", total);
    for (i, c) in cpus.iter().enumerate() {
        text.push_str(&line(&format!("cpu{i}"), *c));
    }
    text.push_str(
        "intr 0\nctxt 0\nbtime 1700000000\nprocesses 100\nprocs_running 1\nprocs_blocked 0\n",
    );
    let tmp = proc.join("stat.tmp");
    std::fs::write(&tmp, text).expect("write stat");
    std::fs::rename(&tmp, proc.join("stat")).expect("rename stat");
}

/// One POST the webhook receiver got: when its body had arrived, and the body.
#[derive(Debug, Clone)]
struct Received {
    at: Instant,
    body: Value,
}

/// A webhook receiver on loopback: answers every request 200 and keeps each POST body with the
/// instant it arrived. One request per connection (it answers `Connection: close`).
struct Hook {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Hook {
    fn start() -> Hook {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind hook");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("hook addr");
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (received.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => match read_request(conn) {
                        Ok(Some(got)) => r.lock().unwrap_or_else(|p| p.into_inner()).push(got),
                        Ok(None) => {}
                        Err(e) => eprintln!("webhook receiver: bad request: {e}"),
                    },
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(e) => eprintln!("webhook receiver: accept: {e}"),
                }
            }
        });
        Hook {
            addr,
            received,
            stop,
            thread: Some(thread),
        }
    }

    /// The bodies received for [`ALERT`] so far.
    fn ours(&self) -> Vec<Received> {
        self.received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|r| r.body["groupLabels"]["alertname"] == ALERT)
            .cloned()
            .collect()
    }

    /// Waits up to `limit` for a notification of [`ALERT`] with `status`.
    fn wait_for(&self, status: &str, limit: Duration) -> Option<Received> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(r) = self.ours().into_iter().find(|r| r.body["status"] == status) {
                return Some(r);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one HTTP/1.1 request (body by Content-Length), answers 200 and closes; the POST body
/// as JSON, `None` for another method.
fn read_request(mut conn: TcpStream) -> std::io::Result<Option<Received>> {
    let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Err(bad("closed before the end of the headers".into()));
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = raw[head_end + 4..].to_vec();
    while body.len() < length {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Err(bad(format!("body cut at {} of {length} bytes", body.len())));
        }
        body.extend_from_slice(&buf[..n]);
    }
    let at = Instant::now();
    conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
    if !head.starts_with("POST ") {
        return Ok(None);
    }
    let body = serde_json::from_slice(&body).map_err(|e| bad(format!("body not JSON: {e}")))?;
    Ok(Some(Received { at, body }))
}

/// The alert configuration: the rule, and a route to the test's webhook.
fn alert_config(hook: SocketAddr) -> String {
    format!(
        r#"rules:
  - name: {ALERT}
    figure: cpu.usage_percent
    op: ">"
    threshold: {THRESHOLD}
    for: {for_}s
    severity: critical
    annotations: {{ summary: "CPU {{{{value}}}}% on {{{{node}}}}" }}
route:
  receiver: hook
  group_by: [alertname, cluster]
  group_wait: {wait}s
  group_interval: {interval}s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: http://{hook}/hook
        send_resolved: true
"#,
        for_ = FOR.as_secs(),
        wait = GROUP_WAIT.as_secs(),
        interval = GROUP_INTERVAL.as_secs(),
    )
}

/// The node's CPU usage as the master shows it, when it has the node.
fn master_cpu(master: SocketAddr) -> Option<f64> {
    let auth = format!("Bearer {VIEWER}");
    let (code, v) = get_json(
        master,
        &format!("/api/v2/clusters/{CLUSTER}/node-metrics/{NODE}"),
        &[("Authorization", &auth)],
        Duration::from_secs(5),
    )
    .ok()?;
    (code == 200).then(|| v["cpu"]["usage_percent"].as_f64())?
}

/// Checks one webhook body: Alertmanager's payload, version 4, about our alert on our node.
fn check_payload(body: &Value, status: &str) {
    assert_eq!(body["version"], "4", "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["receiver"], "hook", "{body}");
    let alerts = body["alerts"].as_array().expect("alerts list");
    assert_eq!(alerts.len(), 1, "one alert in the group: {body}");
    let alert = &alerts[0];
    assert_eq!(alert["status"], status, "{body}");
    for (label, value) in [
        ("alertname", ALERT),
        ("cluster", CLUSTER),
        ("node", NODE),
        ("severity", "critical"),
    ] {
        assert_eq!(alert["labels"][label], value, "label {label}: {body}");
    }
    assert!(
        alert["annotations"]["summary"]
            .as_str()
            .is_some_and(|s| s.contains(NODE)),
        "{body}"
    );
    let zero_end = alert["endsAt"] == "0001-01-01T00:00:00Z";
    assert_eq!(zero_end, status == "firing", "endsAt: {body}");
}

#[test]
fn threshold_crossing_fires_once_and_resolves_once_through_the_real_binaries() {
    let _serial = serial();
    let dir = Scratch::new("alerts-e2e");
    let host = FakeHost::create(&dir.0.join("host"));
    let hook = Hook::start();
    let config = dir.0.join("alerts.yaml");
    std::fs::write(&config, alert_config(hook.addr)).expect("alert config");

    let secs = |d: Duration| format!("{}ms", d.as_millis());
    let master = MasterBuilder::new("atlhyper-master")
        .in_dir(&dir.0)
        .agent_token(AGENT_TOKEN, CLUSTER)
        .viewer_token(VIEWER)
        .env("MASTER_ALERT_EVAL_INTERVAL", secs(EVAL_INTERVAL))
        .env("MASTER_ALERT_CONFIG", config.display().to_string())
        .start();
    let master_addr = master.addr;
    let agent = AgentBuilder::new("atlhyper-agent", CLUSTER)
        .in_dir(&dir.0)
        .master(master_addr)
        .token(AGENT_TOKEN)
        .node_token(NODE_TOKEN)
        .env("AGENT_SNAPSHOT_INTERVAL", secs(PUSH_INTERVAL))
        .env("AGENT_NODE_INTERVAL", secs(SAMPLE_INTERVAL))
        .backoff("100ms", "1s")
        .start();
    let daemon = Proc::spawn(
        "atlhyper-metrics",
        &bins().metrics,
        &[
            ("METRICS_AGENT_ADDR", agent.url()),
            ("METRICS_TOKEN", NODE_TOKEN.to_owned()),
            ("METRICS_NODE_NAME", NODE.to_owned()),
            ("METRICS_COLLECT_INTERVAL", secs(SAMPLE_INTERVAL)),
            (
                "METRICS_PROC_ROOT",
                host.dir.join("proc").display().to_string(),
            ),
            (
                "METRICS_SYS_ROOT",
                host.dir.join("sys").display().to_string(),
            ),
            ("METRICS_HOST_ROOT", host.dir.display().to_string()),
            ("METRICS_BACKOFF_BASE", "100ms".to_owned()),
            ("METRICS_BACKOFF_MAX", "1s".to_owned()),
        ],
        &dir.0,
    );
    let logs = || {
        format!(
            "master:\n{}\nagent:\n{}\ndaemon:\n{}",
            tail(&master.proc.log_text(), 3000),
            tail(&agent.proc.log_text(), 2000),
            tail(&daemon.log_text(), 2000)
        )
    };

    // The quiet figure reaches the master through the whole chain.
    let deadline = Instant::now() + Duration::from_secs(30);
    let quiet = loop {
        match master_cpu(master_addr) {
            Some(cpu) if cpu > 0.0 => break cpu,
            _ if Instant::now() > deadline => {
                panic!("the node's CPU never reached the master\n{}", logs())
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    assert!(
        (quiet - Load::Quiet.percent()).abs() < 1.0,
        "quiet CPU {quiet}% (written {}%)",
        Load::Quiet.percent()
    );
    // A few evaluations under the threshold: nothing is sent.
    std::thread::sleep(EVAL_INTERVAL * 3);
    assert!(hook.ours().is_empty(), "notified before the crossing");

    // Over the threshold. The figure can cross at the master only after the daemon sampled it
    // (up to one collection interval) and the agent pushed it (up to one push interval): the
    // issue's bound counts from the crossing as the master sees it, so both are added.
    let crossed = host.set_load(Load::Busy);
    let firing_bound = FOR + EVAL_INTERVAL + GROUP_WAIT + SLACK + SAMPLE_INTERVAL + PUSH_INTERVAL;
    let firing = hook
        .wait_for("firing", firing_bound + Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no firing notification\n{}", logs()));
    let firing_latency = firing.at.duration_since(crossed);
    check_payload(&firing.body, "firing");
    let busy = master_cpu(master_addr).expect("node in the master");
    assert!(busy > THRESHOLD, "busy CPU {busy}%");
    std::thread::sleep(QUIET);
    let ours = hook.ours();
    assert_eq!(
        ours.iter().filter(|r| r.body["status"] == "firing").count(),
        1,
        "exactly one firing notification in {QUIET:?} after the first: {:?}",
        ours.iter().map(|r| &r.body).collect::<Vec<_>>()
    );

    // Back under: resolved once. Resolution has no `for`; a resolved alert leaves at the
    // group's next flush (group_interval) instead of after group_wait.
    let calmed = host.set_load(Load::Quiet);
    let resolved_bound = EVAL_INTERVAL + GROUP_INTERVAL + SLACK + SAMPLE_INTERVAL + PUSH_INTERVAL;
    let resolved = hook
        .wait_for("resolved", resolved_bound + Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no resolved notification\n{}", logs()));
    let resolved_latency = resolved.at.duration_since(calmed);
    check_payload(&resolved.body, "resolved");
    assert_eq!(
        resolved.body["alerts"][0]["fingerprint"], firing.body["alerts"][0]["fingerprint"],
        "the same alert resolves"
    );
    std::thread::sleep(QUIET);
    let ours = hook.ours();
    let count = |status: &str| ours.iter().filter(|r| r.body["status"] == status).count();
    assert_eq!(
        (count("firing"), count("resolved"), ours.len()),
        (1, 1, 2),
        "exactly one firing and one resolved: {:?}",
        ours.iter().map(|r| &r.body).collect::<Vec<_>>()
    );

    eprintln!(
        "alerts end to end: firing latency {:.2} s (bound {:.0} s = for {:?} + eval {:?} + \
         group_wait {:?} + {:?} + sample {:?} + push {:?}), resolved latency {:.2} s (bound \
         {:.0} s = eval + group_interval {:?} + {:?} + sample + push); CPU quiet {quiet:.1}%, \
         busy {busy:.1}%",
        firing_latency.as_secs_f64(),
        firing_bound.as_secs_f64(),
        FOR,
        EVAL_INTERVAL,
        GROUP_WAIT,
        SLACK,
        SAMPLE_INTERVAL,
        PUSH_INTERVAL,
        resolved_latency.as_secs_f64(),
        resolved_bound.as_secs_f64(),
        GROUP_INTERVAL,
        SLACK,
    );
    assert!(
        firing_latency <= firing_bound,
        "firing arrived {firing_latency:?} after the crossing, bound {firing_bound:?}\n{}",
        logs()
    );
    assert!(
        resolved_latency <= resolved_bound,
        "resolved arrived {resolved_latency:?} after the figure went under, bound \
         {resolved_bound:?}\n{}",
        logs()
    );
    master.proc.assert_no_panic();
    agent.proc.assert_no_panic();
    daemon.assert_no_panic();
}
