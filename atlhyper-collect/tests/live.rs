//! Live accuracy against this machine: `free -b`, `ps`, `df` and the kernel's own totals. Runs
//! by default on Linux. A check whose reference tool is missing skips with a message, except when
//! the `CI` environment variable is set: then a missing tool fails the test (CI installs procps).

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use atlhyper_collect::{CollectConfig, Collector, HostRoot};

/// Runs a reference tool and returns its stdout. `None` (after saying so on stderr) when the tool
/// is not installed, outside CI only: with `CI` set a missing tool is a failure, not a skip. A
/// tool that runs and fails is always a failure.
fn tool(cmd: &str, args: &[&str]) -> Option<String> {
    let out = match Command::new(cmd).env("LC_ALL", "C").args(args).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var_os("CI").is_none(),
                "`{cmd}` is not installed but CI is set: the live checks need it (install procps)"
            );
            eprintln!("skipped: `{cmd}` is not installed (not in CI, so this check is skipped)");
            return None;
        }
        Err(e) => panic!("running `{cmd}`: {e}"),
    };
    assert!(
        out.status.success(),
        "`{cmd} {}` failed: {}\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn collector() -> Collector {
    Collector::new(
        HostRoot::default(),
        CollectConfig {
            top_processes: 100_000,
            ..CollectConfig::from_host()
        },
    )
}

#[test]
fn memory_matches_free() {
    let Some(out) = tool("free", &["-b"]) else {
        return;
    };
    let s = collector().collect();
    let mem: Vec<u64> = out
        .lines()
        .find(|l| l.starts_with("Mem:"))
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect();
    // free -b: total used free shared buff/cache available
    assert_eq!(s.memory.total, mem[0]);
    let tol = mem[0] / 50; // memory moves between the two reads; 2 % of total
    assert!(
        s.memory.used.abs_diff(mem[1]) < tol,
        "used {} vs free {}",
        s.memory.used,
        mem[1]
    );
    assert!(
        s.memory.available.abs_diff(mem[5]) < tol,
        "available {} vs free {}",
        s.memory.available,
        mem[5]
    );
    assert!((s.memory.cached + s.memory.buffers).abs_diff(mem[4]) < tol);
}

#[test]
fn processes_match_ps_and_busy_thread_is_seen() {
    let me = std::process::id();
    let stop = Arc::new(AtomicBool::new(false));
    let mut c = collector();
    c.collect();
    let s2 = Arc::clone(&stop);
    let busy = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut x = 0u64;
        while !s2.load(Ordering::Relaxed) && Instant::now() < deadline {
            x = x.wrapping_mul(31).wrapping_add(7);
            std::hint::black_box(x);
        }
    });
    std::thread::sleep(Duration::from_millis(1000));
    let s = c.collect();
    stop.store(true, Ordering::Relaxed);
    busy.join().unwrap();

    let mine = s
        .processes
        .iter()
        .find(|p| p.pid == me)
        .expect("this test process is reported");
    // One thread spinning for the whole interval on a shared 2-core machine: well above 30 %, and
    // never more than all cores.
    let cores = s.cpu.per_core.len() as f64;
    assert!(
        mine.cpu_percent > 30.0 && mine.cpu_percent <= cores * 100.0 + 5.0,
        "{}",
        mine.cpu_percent
    );
    assert!(
        s.cpu.usage_percent > 100.0 / cores * 0.3,
        "node CPU {}",
        s.cpu.usage_percent
    );

    let Some(out) = tool(
        "ps",
        &["-o", "rss=,nlwp=,user=,comm=", "-p", &me.to_string()],
    ) else {
        return;
    };
    let f: Vec<&str> = out.split_whitespace().collect();
    let rss_kib: u64 = f[0].parse().unwrap();
    // Both are VmRSS; the test process barely allocates between the collection and ps.
    assert!(
        mine.mem_rss.abs_diff(rss_kib * 1024) < 2 << 20,
        "rss {} vs ps {} KiB",
        mine.mem_rss,
        rss_kib
    );
    assert_eq!(mine.user, f[2]);
    assert!(f[3].starts_with(&mine.name[..mine.name.len().min(15)]) || mine.name.starts_with(f[3]));
    // Threads are not processes: every reported pid is a thread group leader.
    for p in &s.processes {
        if let Ok(st) = std::fs::read_to_string(format!("/proc/{}/status", p.pid)) {
            let tgid = st
                .lines()
                .find_map(|l| l.strip_prefix("Tgid:"))
                .map(str::trim);
            assert_eq!(tgid, Some(p.pid.to_string().as_str()));
        }
    }
    // Every process in /proc is seen (listing again now; processes may come and go meanwhile).
    let listed = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .count();
    assert!(
        s.processes.len() + 50 >= listed && listed + 50 >= s.processes.len(),
        "{} vs {listed}",
        s.processes.len()
    );
}

#[test]
fn counters_match_kernel_totals() {
    let s = collector().collect();
    // One entry per `cpuN` line of /proc/stat (online CPUs), and at least as many as this process
    // may run on (affinity and cgroup quotas can only lower that).
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let cpu_lines = stat
        .lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count();
    assert_eq!(s.cpu.per_core.len(), cpu_lines);
    let usable = std::thread::available_parallelism().unwrap().get();
    assert!(
        s.cpu.per_core.len() >= usable,
        "{} per-core entries, {usable} usable CPUs",
        s.cpu.per_core.len()
    );
    for n in &s.networks {
        let path = format!("/sys/class/net/{}/statistics/rx_bytes", n.interface);
        if let Ok(v) = std::fs::read_to_string(path) {
            let v: u64 = v.trim().parse().unwrap();
            assert!(
                v >= n.rx_bytes && v - n.rx_bytes < 100 << 20,
                "{}: {} vs {v}",
                n.interface,
                n.rx_bytes
            );
        }
    }
    let root = s.primary_disk().expect("a disk");
    assert!(root.total > 0 && root.used <= root.total);
    if let Some(out) = tool(
        "df",
        &["-B1", "--output=size,used,avail", &root.mount_point],
    ) {
        let v: Vec<u64> = out
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        assert_eq!(root.total, v[0]);
        assert!(root.used.abs_diff(v[1]) < 1 << 30 && root.available.abs_diff(v[2]) < 1 << 30);
    }
    for st in &s.collectors {
        if st.name != "temperature" {
            assert!(st.ok, "{st:?}");
        }
    }
}
