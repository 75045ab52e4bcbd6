//! Load run: CPU time per scrape of atlhyper-metrics against node_exporter with the equivalent
//! collector set, in one run, at the current process count and with extra sleeping processes.
//!
//! ```text
//! cargo build --release -p atlhyper-agent --bin atlhyper-metrics
//! cargo run --release -p atlhyper-agent --example scrape_cost -- \
//!     target/release/atlhyper-metrics 300 2000
//! ```
//!
//! Arguments: the daemon binary, scrapes per target per round (default 300), and the process
//! count of the second round (default 2000; sleepers are started to reach it and killed after).
//! Both targets are scraped alternately over loopback, each scrape reading its answer to the end,
//! once in plain text (as `curl` asks) and once with gzip (as Prometheus asks); the CPU time is the target's
//! utime + stime from `/proc/<pid>/stat` before and after. node_exporter runs with the
//! collectors whose families atlhyper-metrics serves: cpu, cpufreq, diskstats, filesystem, hwmon,
//! loadavg, meminfo, netclass, netdev, os, pressure, stat, thermal_zone, time, uname, plus
//! processes (it reads every `/proc/<pid>/stat`, as the daemon's top-N does).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";
const COLLECTORS: &[&str] = &[
    "cpu",
    "cpufreq",
    "diskstats",
    "filesystem",
    "hwmon",
    "loadavg",
    "meminfo",
    "netclass",
    "netdev",
    "os",
    "pressure",
    "stat",
    "thermal_zone",
    "time",
    "uname",
    "processes",
];

/// A child killed by its own id when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// One `GET /metrics`, asking for gzip as Prometheus does or for plain text as `curl` does; the
/// answer's length.
fn scrape(port: u16, gzip: bool) -> std::io::Result<usize> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    let encoding = if gzip {
        "Accept-Encoding: gzip\r\n"
    } else {
        ""
    };
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n{encoding}Connection: close\r\n\r\n"
    )?;
    let mut body = Vec::new();
    s.read_to_end(&mut body)?;
    Ok(body.len())
}

/// utime + stime of `pid`, clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = text.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    f.iter().sum()
}

fn process_count() -> usize {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
                .count()
        })
        .unwrap_or(0)
}

fn wait_up(port: u16) {
    for _ in 0..100 {
        if scrape(port, false).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("nothing answers on port {port}");
}

/// Scrapes both `rounds` times, alternating; (ticks per scrape, bytes per scrape) of each.
fn measure(targets: [(u32, u16); 2], rounds: usize, gzip: bool) -> [(f64, usize); 2] {
    // Warm-up: first collections, kept files, caches.
    for (_, port) in targets {
        for _ in 0..5 {
            let _ = scrape(port, gzip);
        }
    }
    let before = targets.map(|(pid, _)| cpu_ticks(pid));
    let mut bytes = [0usize; 2];
    for _ in 0..rounds {
        for (i, (_, port)) in targets.iter().enumerate() {
            bytes[i] = scrape(*port, gzip).expect("scrape");
        }
    }
    let after = targets.map(|(pid, _)| cpu_ticks(pid));
    [0, 1].map(|i| {
        (
            after[i].saturating_sub(before[i]) as f64 / rounds as f64,
            bytes[i],
        )
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(daemon) = args.get(1) else {
        eprintln!("usage: scrape_cost <atlhyper-metrics binary> [scrapes] [processes]");
        std::process::exit(2);
    };
    let rounds: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(300);
    let many: usize = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(2000);
    if !std::path::Path::new(NODE_EXPORTER).exists() {
        eprintln!("{NODE_EXPORTER} missing (apt-get install -y prometheus-node-exporter)");
        std::process::exit(2);
    }
    let (ne_port, our_port) = (free_port(), free_port());
    let mut ne_args = vec![
        format!("--web.listen-address=127.0.0.1:{ne_port}"),
        "--collector.disable-defaults".to_owned(),
        // No promhttp self-metrics noise in the comparison.
        "--web.disable-exporter-metrics".to_owned(),
    ];
    ne_args.extend(COLLECTORS.iter().map(|c| format!("--collector.{c}")));
    let ne = Running(
        Command::new(NODE_EXPORTER)
            .args(&ne_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node_exporter"),
    );
    // Interval 10 ms: no sample is reused, every scrape collects (the worst case for the daemon).
    let ours = Running(
        Command::new(daemon)
            .args([
                "--pull-only",
                "--node-name",
                "cost-run",
                "--interval",
                "10ms",
                "--metrics-listen",
                &format!("127.0.0.1:{our_port}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start atlhyper-metrics"),
    );
    wait_up(ne_port);
    wait_up(our_port);
    let targets = [(ne.0.id(), ne_port), (ours.0.id(), our_port)];
    let ticks_per_s = 100.0;

    let mut sleepers = Vec::new();
    for round in 0..2 {
        if round == 1 {
            let need = many.saturating_sub(process_count());
            for _ in 0..need {
                match Command::new("sleep")
                    .arg("3600")
                    .stdout(Stdio::null())
                    .spawn()
                {
                    Ok(c) => sleepers.push(Running(c)),
                    Err(e) => {
                        eprintln!("stopped starting sleepers: {e}");
                        break;
                    }
                }
            }
        }
        let procs = process_count();
        for gzip in [false, true] {
            let [(ne_t, ne_b), (our_t, our_b)] = measure(targets, rounds, gzip);
            let how = if gzip { "gzip " } else { "plain" };
            println!(
                "{procs} processes, {rounds} {how} scrapes each: node_exporter {:.2} ms CPU/scrape \
                 ({ne_b} B), atlhyper-metrics {:.2} ms CPU/scrape ({our_b} B), ratio {:.3}",
                ne_t / ticks_per_s * 1000.0,
                our_t / ticks_per_s * 1000.0,
                if ne_t > 0.0 { our_t / ne_t } else { f64::NAN }
            );
        }
    }
    drop(sleepers);
}
