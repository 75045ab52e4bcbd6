//! Live accuracy against this machine: `free -b`, `ps`, `df`, `pidstat` and the kernel's own
//! totals. Runs by default on Linux. A check whose reference tool is missing skips with a message,
//! except when the `CI` environment variable is set: then a missing tool fails the test (CI
//! installs procps and sysstat).

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

/// Held by the tests that burn CPU and measure it, so they do not compete with each other.
static BURNING: std::sync::Mutex<()> = std::sync::Mutex::new(());

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
    let _burning = BURNING.lock().unwrap_or_else(|e| e.into_inner());
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

/// Environment variable that turns [`busy_threads_child`] into a CPU burner for that many
/// milliseconds (set only on the child the cross-check below spawns).
const BUSY_CHILD_MS: &str = "ATL_BUSY_CHILD_MS";

/// Not a test: the body of the busy child [`processes_match_pidstat`] spawns (this test binary
/// run again with `--ignored --exact`). Two threads spin while the main thread waits, so a
/// source that counted only the thread-group leader (as `/proc/<pid>/schedstat` does) would see
/// the child idle.
#[test]
#[ignore = "helper process for processes_match_pidstat"]
fn busy_threads_child() {
    let Some(ms) = std::env::var(BUSY_CHILD_MS)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    let burn = move || {
        let end = Instant::now() + Duration::from_millis(ms);
        let mut x = 0u64;
        while Instant::now() < end {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
    };
    let threads: Vec<_> = (0..2).map(|_| std::thread::spawn(burn)).collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// Kills the child when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The busy child's CPU percent and resident memory as the collector reports them over the same
/// 2 s window that `pidstat` (sysstat) measures, started together: they agree within a
/// tolerance, and the child (two spinning threads, an idle main thread) is among the busiest.
#[test]
fn processes_match_pidstat() {
    let _burning = BURNING.lock().unwrap_or_else(|e| e.into_inner());
    let exe = std::env::current_exe().unwrap();
    let child = Command::new(exe)
        .args([
            "--ignored",
            "--exact",
            "busy_threads_child",
            "--test-threads=1",
        ])
        .env(BUSY_CHILD_MS, "20000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let child = KillOnDrop(child);
    let pid = child.0.id().to_string();
    // Let it start its threads and settle.
    std::thread::sleep(Duration::from_millis(500));

    let mut c = collector();
    // pidstat takes its first sample at once and its second 2 s later; the collector's two
    // collections bracket the same window.
    let pidstat = match Command::new("pidstat")
        .env("LC_ALL", "C")
        .args(["-u", "-r", "-h", "-p", &pid, "2", "1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
    {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var_os("CI").is_none(),
                "`pidstat` is not installed but CI is set: install sysstat"
            );
            eprintln!("skipped: `pidstat` is not installed (not in CI, so this check is skipped)");
            return;
        }
        Err(e) => panic!("running pidstat: {e}"),
    };
    c.collect();
    let out = pidstat.wait_with_output().unwrap();
    let s = c.collect();
    assert!(out.status.success(), "pidstat failed: {}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);

    // `# Time UID PID %usr %system %guest %wait %CPU CPU minflt/s majflt/s VSZ RSS %MEM Command`
    let header: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with('#'))
        .unwrap_or_else(|| panic!("no header in pidstat output:\n{text}"))
        .trim_start_matches('#')
        .split_whitespace()
        .collect();
    let row: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() == header.len() && f.contains(&pid.as_str()))
        .unwrap_or_else(|| panic!("no row for {pid} in pidstat output:\n{text}"));
    let col = |name: &str| -> f64 {
        let i = header.iter().position(|h| *h == name).unwrap();
        row[i].parse().unwrap()
    };
    let (their_cpu, their_rss_kib) = (col("%CPU"), col("RSS"));

    let child_pid: u32 = pid.parse().unwrap();
    let mine = s
        .processes
        .iter()
        .find(|p| p.pid == child_pid)
        .expect("the busy child is reported");
    // Both over the same 2 s give or take the few milliseconds between starting pidstat and
    // collecting; pidstat counts clock ticks (1 % of a core per tick over 1 s).
    let tolerance = 10.0 + their_cpu * 0.1;
    assert!(
        (mine.cpu_percent - their_cpu).abs() <= tolerance,
        "collector {:.1} % vs pidstat {their_cpu:.1} % (tolerance {tolerance:.1})",
        mine.cpu_percent
    );
    // Two spinning threads: busy even on a loaded shared machine (so the comparison above is
    // not between two zeros).
    assert!(mine.cpu_percent > 5.0, "{}", mine.cpu_percent);
    let their_rss = their_rss_kib as u64 * 1024;
    assert!(
        mine.mem_rss.abs_diff(their_rss) <= 1 << 20,
        "collector rss {} vs pidstat {} KiB",
        mine.mem_rss,
        their_rss_kib
    );
    // The two spinners, the waiting main thread (and the test harness's thread).
    assert!(mine.threads >= 3, "{} threads", mine.threads);

    // Ranked from the cheap sources, the child is among the top 5 by CPU on this host.
    let mut top = Collector::new(
        HostRoot::default(),
        CollectConfig {
            top_processes: 5,
            ..CollectConfig::from_host()
        },
    );
    top.collect();
    std::thread::sleep(Duration::from_millis(1000));
    let ranked = top.collect();
    let by_cpu: Vec<(u32, f64)> = ranked
        .processes
        .iter()
        .map(|p| (p.pid, p.cpu_percent))
        .collect();
    assert!(
        by_cpu.iter().take(5).any(|(p, _)| *p == child_pid),
        "child {child_pid} not among the top 5 by CPU: {by_cpu:?}"
    );
    drop(child);
}

/// Set (to a size in MiB) for the child of [`a_process_that_grows_is_ranked_by_its_new_size`].
const GROW_CHILD_MIB: &str = "ATL_TEST_GROW_CHILD_MIB";

/// Not a test: the body of the child [`a_process_that_grows_is_ranked_by_its_new_size`] spawns.
/// Sleeps until a line arrives on stdin, then fills `GROW_CHILD_MIB` MiB (every page touched,
/// so resident), says "grown" and sleeps until stdin closes.
#[test]
#[ignore = "helper process for a_process_that_grows_is_ranked_by_its_new_size"]
fn grow_on_request_child() {
    use std::io::{BufRead, Write};
    let Some(mib) = std::env::var(GROW_CHILD_MIB)
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    else {
        return;
    };
    let mut line = String::new();
    let mut stdin = std::io::stdin().lock();
    println!("ready");
    stdin.read_line(&mut line).unwrap();
    let filled = vec![1u8; mib << 20];
    println!("grown");
    std::io::stdout().flush().unwrap();
    while stdin.read_line(&mut line).unwrap() > 0 {}
    std::hint::black_box(filled);
}

/// The scan carries an idle process's resident size over without reading it; a process that ran
/// and grew since is re-read, and ranked by its new size from then on. The child sleeps through
/// two collections (small), then fills 1 GiB: the next collection reports it (it ran, so maybe
/// by CPU), and the one after, when it is idle again (0 % CPU, so only its memory can rank it),
/// must still report it among the top 20 by memory with that size.
#[test]
fn a_process_that_grows_is_ranked_by_its_new_size() {
    use std::io::{BufRead, BufReader, Write};
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "--ignored",
            "--exact",
            "grow_on_request_child",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(GROW_CHILD_MIB, "1024")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut to_child = child.stdin.take().unwrap();
    let mut from_child = BufReader::new(child.stdout.take().unwrap());
    let child = KillOnDrop(child);
    let pid = child.0.id();
    let wait_for_line = |from: &mut BufReader<std::process::ChildStdout>, want: &str| {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                from.read_line(&mut line).unwrap() > 0,
                "child ended before {want:?}"
            );
            // libtest prints the test's name on the same line before the child's first words.
            if line.trim_end().ends_with(want) {
                return;
            }
        }
    };
    wait_for_line(&mut from_child, "ready");

    let mut c = Collector::new(
        HostRoot::default(),
        CollectConfig {
            top_processes: 20,
            ..CollectConfig::from_host()
        },
    );
    c.collect();
    std::thread::sleep(Duration::from_millis(200));
    c.collect();
    writeln!(to_child).unwrap();
    wait_for_line(&mut from_child, "grown");
    for when in ["after it grew", "idle again"] {
        let s = c.collect();
        let me = s.processes.iter().find(|p| p.pid == pid);
        assert!(
            me.is_some_and(|p| p.mem_rss >= 1 << 30),
            "{when}: the grown child {pid} among the top 20 by memory: {:?}",
            s.processes
                .iter()
                .map(|p| (p.pid, p.mem_rss, p.cpu_percent))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(to_child);
}
