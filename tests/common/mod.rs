//! Harness of the fault suite: builds and spawns the real binaries (`atlhyper-metrics`,
//! `atlhyper-agent`, `atlhyper-master`) on loopback with compressed intervals, and measures them
//! from the outside (HTTP, /proc/<pid>/status, /proc/<pid>/fd).
//!
//! The binaries of the other crates are not built by `cargo test` of this package, so the
//! harness builds them once per test process with `cargo build --bins` into a separate target
//! directory (`target/fault-bins`): the outer `cargo test` holds the lock of the normal one.
#![allow(dead_code)] // each tests/faults_*.rs uses a different part

use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use atlhyper_testkit::http_get;

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Paths of the three binaries, built once per test process.
#[derive(Debug)]
pub struct Bins {
    pub metrics: PathBuf,
    pub agent: PathBuf,
    pub master: PathBuf,
}

/// Builds (incrementally) and returns the binaries. `ATLHYPER_FAULT_BIN_DIR` points at a
/// directory that already holds them instead (e.g. target/release of a load run).
pub fn bins() -> &'static Bins {
    static BINS: OnceLock<Bins> = OnceLock::new();
    BINS.get_or_init(|| {
        let dir = match std::env::var_os("ATLHYPER_FAULT_BIN_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => {
                let target = root().join("target/fault-bins");
                let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
                let started = Instant::now();
                let status = Command::new(cargo)
                    .current_dir(root())
                    .args([
                        "build",
                        "--quiet",
                        "-p",
                        "atlhyper-agent",
                        "-p",
                        "atlhyper-master",
                        "--bins",
                        "--target-dir",
                    ])
                    .arg(&target)
                    .status()
                    .expect("run cargo build for the fault suite's binaries");
                assert!(status.success(), "cargo build of the binaries failed");
                eprintln!(
                    "fault suite: binaries built in {:.1} s",
                    started.elapsed().as_secs_f64()
                );
                target.join("debug")
            }
        };
        Bins {
            metrics: dir.join("atlhyper-metrics"),
            agent: dir.join("atlhyper-agent"),
            master: dir.join("atlhyper-master"),
        }
    })
}

/// Tests of one file run one at a time: they measure latency and memory on a 2-core machine.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A scratch directory under the target dir, removed on drop.
#[derive(Debug)]
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        let dir = root().join("target/fault-scratch").join(format!(
            "{name}-{}-{}",
            std::process::id(),
            fastrand_u64()
        ));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
}

impl Scratch {
    /// `dir` when given (a directory the caller owns), else a new scratch directory named
    /// `name`, returned too so that it lives as long as whoever holds it.
    pub fn unless_given(dir: Option<PathBuf>, name: &str) -> (PathBuf, Option<Scratch>) {
        match dir {
            Some(dir) => (dir, None),
            None => {
                let scratch = Scratch::new(name);
                (scratch.0.clone(), Some(scratch))
            }
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fastrand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish()
}

/// A spawned binary; SIGKILLed and reaped on drop. Its stdout+stderr go to a log file.
#[derive(Debug)]
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
    bin: PathBuf,
    env: Vec<(String, String)>,
    nofile: Option<u64>,
    restarts: u32,
}

impl Proc {
    /// Starts `bin` with exactly `env` (plus PATH and RUST_LOG), logging to `dir/<name>.log`.
    pub fn spawn(name: &str, bin: &Path, env: &[(&str, String)], dir: &Path) -> Proc {
        Self::spawn_limited(name, bin, env, dir, None)
    }

    /// [`Proc::spawn`] with the child's open-file limit (`RLIMIT_NOFILE`) set to `nofile`, to
    /// drive it out of descriptors (kept across restarts).
    pub fn spawn_with_fd_limit(
        name: &str,
        bin: &Path,
        env: &[(&str, String)],
        dir: &Path,
        nofile: u64,
    ) -> Proc {
        Self::spawn_limited(name, bin, env, dir, Some(nofile))
    }

    fn spawn_limited(
        name: &str,
        bin: &Path,
        env: &[(&str, String)],
        dir: &Path,
        nofile: Option<u64>,
    ) -> Proc {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let log = dir.join(format!("{name}.log"));
        let child = start(bin, &env, &log, nofile);
        Proc {
            name: name.to_owned(),
            child,
            log,
            bin: bin.to_owned(),
            env,
            nofile,
            restarts: 0,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGKILL, reap, and start again with the same settings (log appended).
    pub fn kill9_and_restart(&mut self) {
        self.kill9();
        self.restarts += 1;
        self.child = start(&self.bin, &self.env, &self.log, self.nofile);
    }

    /// Sets `key` (replacing its value, or added) for the next [`Proc::kill9_and_restart`].
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// Still running?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics if the log shows a Rust panic.
    pub fn assert_no_panic(&self) {
        let log = self.log_text();
        assert!(
            !log.contains("panicked at"),
            "{} panicked:\n{}",
            self.name,
            tail(&log, 4000)
        );
    }

    /// Resident set size, KiB.
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
            .unwrap_or_else(|| panic!("{} is gone:\n{}", self.name, tail(&self.log_text(), 4000)))
    }

    /// Open file descriptors.
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// SIGTERM, then wait up to `grace` for a clean exit; SIGKILL otherwise. True if it exited
    /// by itself with status 0.
    pub fn terminate(&mut self, grace: Duration) -> bool {
        let pid = libc::pid_t::try_from(self.pid()).expect("pid fits");
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill9();
        false
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Starts `bin` with only `env` (plus PATH and quiet logging), output appended to `log`, and
/// the open-file limit set to `nofile` when given.
fn start(bin: &Path, env: &[(String, String)], log: &Path, nofile: Option<u64>) -> Child {
    use std::os::unix::process::CommandExt;
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("open log");
    let err = out.try_clone().expect("clone log fd");
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    for (k, v) in env {
        cmd.env(k, v);
    }
    if let Some(nofile) = nofile {
        let limit = libc::rlimit {
            rlim_cur: nofile,
            rlim_max: nofile,
        };
        // SAFETY: setrlimit(2) is async-signal-safe and only reads `limit`, a copy owned by the
        // closure; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    }
    cmd.spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()))
}

pub fn tail(s: &str, n: usize) -> &str {
    let start = s.len().saturating_sub(n);
    let start = (start..s.len())
        .find(|i| s.is_char_boundary(*i))
        .unwrap_or(s.len());
    &s[start..]
}

/// VmRSS of a process, KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// One setting of a builder: `RUST_LOG` into `log`, anything else into `env`, replacing an
/// earlier value of the same key.
fn set_env(log: &mut String, env: &mut Vec<(String, String)>, key: &str, value: String) {
    if key == "RUST_LOG" {
        *log = value;
        return;
    }
    env.retain(|(k, _)| k != key);
    env.push((key.to_owned(), value));
}

/// The real master on loopback, started by a [`MasterBuilder`]; SIGKILLed on drop.
#[derive(Debug)]
pub struct RunningMaster {
    /// The process.
    pub proc: Proc,
    /// Where it listens (the port it was given at its first start, kept across restarts).
    pub addr: SocketAddr,
    _dir: Option<Scratch>,
}

/// How to start a real `atlhyper-master`: its database, tokens, intervals and any other
/// setting. It listens on port 0 (the kernel picks a free port, so no port is released for it
/// that another process could take first) and the address is read from its log; a restart
/// asks for that same address again.
#[derive(Debug)]
pub struct MasterBuilder {
    name: String,
    dir: Option<PathBuf>,
    database: Option<(&'static str, String)>,
    log: String,
    env: Vec<(String, String)>,
}

impl MasterBuilder {
    /// A master named `name` (its process and log file; its scratch directory unless
    /// [`MasterBuilder::in_dir`] gives one), with a fresh SQLite database by default.
    pub fn new(name: &str) -> Self {
        MasterBuilder {
            name: name.to_owned(),
            dir: None,
            database: None,
            log: "warn".to_owned(),
            env: Vec::new(),
        }
    }

    /// Log and default database in `dir` (shared with the test's other processes) instead of
    /// a scratch directory of the master's own.
    pub fn in_dir(mut self, dir: &Path) -> Self {
        self.dir = Some(dir.to_owned());
        self
    }

    /// PostgreSQL at `url` (`MASTER_DB_URL`).
    pub fn db_url(mut self, url: &str) -> Self {
        self.database = Some(("MASTER_DB_URL", url.to_owned()));
        self
    }

    /// SQLite at `path` (`MASTER_DB_PATH`); the default is `<dir>/<name>.db`.
    pub fn sqlite(mut self, path: &Path) -> Self {
        self.database = Some(("MASTER_DB_PATH", path.display().to_string()));
        self
    }

    /// The one agent token (`MASTER_AGENT_TOKEN`) and the cluster it speaks for.
    pub fn agent_token(self, token: &str, cluster: &str) -> Self {
        self.env("MASTER_AGENT_TOKEN", token)
            .env("MASTER_CLUSTER_ID", cluster)
    }

    /// `MASTER_VIEWER_TOKEN`.
    pub fn viewer_token(self, token: &str) -> Self {
        self.env("MASTER_VIEWER_TOKEN", token)
    }

    /// `MASTER_OPERATOR_TOKEN`.
    pub fn operator_token(self, token: &str) -> Self {
        self.env("MASTER_OPERATOR_TOKEN", token)
    }

    /// `RUST_LOG` (default `warn`); the master's own info lines are always on, for the
    /// listening address.
    pub fn log(mut self, filter: &str) -> Self {
        self.log = filter.to_owned();
        self
    }

    /// Any other setting, e.g. `MASTER_HISTORY_INTERVAL`; a later value of a key wins.
    /// `RUST_LOG` goes to [`MasterBuilder::log`].
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        set_env(&mut self.log, &mut self.env, key, value.into());
        self
    }

    /// [`MasterBuilder::env`] for each pair.
    pub fn envs(self, pairs: &[(&str, String)]) -> Self {
        pairs.iter().fold(self, |b, (k, v)| b.env(k, v.clone()))
    }

    /// Starts it and waits until it logs its address and answers `/health`.
    pub fn start(self) -> RunningMaster {
        let (dir, scratch) = Scratch::unless_given(self.dir, &self.name);
        let database = self.database.unwrap_or_else(|| {
            let path = dir.join(format!("{}.db", self.name));
            ("MASTER_DB_PATH", path.display().to_string())
        });
        let mut all = vec![
            ("MASTER_LISTEN_ADDR", "127.0.0.1:0".to_owned()),
            ("RUST_LOG", format!("{},atlhyper_master=info", self.log)),
            database,
        ];
        all.extend(self.env.iter().map(|(k, v)| (k.as_str(), v.clone())));
        let mut proc = Proc::spawn(&self.name, &bins().master, &all, &dir);
        let addr = listening_addr(&proc, Duration::from_secs(60));
        // A restart (also a bare `proc.kill9_and_restart()`) asks for the same address.
        proc.set_env("MASTER_LISTEN_ADDR", &addr.to_string());
        wait_healthy(addr, Duration::from_secs(60), &proc);
        RunningMaster {
            proc,
            addr,
            _dir: scratch,
        }
    }
}

impl RunningMaster {
    /// A master with `env` on SQLite in a scratch directory named `name`, as
    /// [`MasterBuilder`] starts it.
    pub fn start(name: &str, env: &[(&str, String)]) -> Self {
        MasterBuilder::new(name).envs(env).start()
    }

    /// The same as [`RunningMaster::start`] (every master starts on port 0 now); kept for
    /// callers written before.
    pub fn start_on_any_port(name: &str, env: &[(&str, String)]) -> Self {
        Self::start(name, env)
    }

    /// SIGKILL and reap; [`RunningMaster::restart`] brings it back.
    pub fn kill9(&mut self) {
        self.proc.kill9();
    }

    /// SIGKILL (if it still runs), then the same settings again on the same address; waits
    /// until it is healthy.
    pub fn restart(&mut self) {
        self.proc.kill9_and_restart();
        wait_healthy(self.addr, Duration::from_secs(60), &self.proc);
    }
}

/// The address in the `master listening addr=...` line of a master's log, waiting up to
/// `limit` for it; panics with the log when it does not come.
pub fn listening_addr(who: &Proc, limit: Duration) -> SocketAddr {
    logged_addr(who, "master listening", limit)
}

/// The `addr=` of the last line holding `marker` in `who`'s log (a restart appends a new
/// one), waiting up to `limit` for it; panics with the log when it does not come.
pub fn logged_addr(who: &Proc, marker: &str, limit: Duration) -> SocketAddr {
    let deadline = Instant::now() + limit;
    loop {
        let log = who.log_text();
        let found = log
            .lines()
            .rev()
            .filter(|l| l.contains(marker))
            .find_map(|l| {
                l.split_once("addr=")?
                    .1
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            });
        if let Some(addr) = found {
            return addr;
        }
        assert!(
            Instant::now() < deadline,
            "{} logged no listening address within {limit:?}:\n{}",
            who.name,
            tail(&log, 4000)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `GET http://addr/health` answers 200, or panics after `limit`.
pub fn wait_healthy(addr: SocketAddr, limit: Duration, who: &Proc) {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok((200, _)) = http_get(addr, "/health", &[], Duration::from_millis(500)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} not healthy on {addr} within {limit:?}:\n{}",
            who.name,
            tail(&who.log_text(), 4000)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The real cluster agent on loopback, started by an [`AgentBuilder`]; SIGKILLed on drop.
#[derive(Debug)]
pub struct RunningAgent {
    /// The process.
    pub proc: Proc,
    /// Where it listens (the port it was given at its first start, kept across restarts).
    pub addr: SocketAddr,
    /// Probed on `/health` over plain HTTP (not when it serves TLS).
    healthy: bool,
    _dir: Option<Scratch>,
}

/// How to start a real `atlhyper-agent`: its cluster, masters, tokens (values or files), TLS
/// settings, intervals and any other setting. Like [`MasterBuilder`], it listens on port 0 and
/// the address is read from its log; a restart asks for that same address again.
#[derive(Debug)]
pub struct AgentBuilder {
    name: String,
    dir: Option<PathBuf>,
    log: String,
    fd_limit: Option<u64>,
    healthy: bool,
    env: Vec<(String, String)>,
}

impl AgentBuilder {
    /// An agent named `name` (its process and log file; its scratch directory unless
    /// [`AgentBuilder::in_dir`] gives one) for cluster `cluster`.
    pub fn new(name: &str, cluster: &str) -> Self {
        AgentBuilder {
            name: name.to_owned(),
            dir: None,
            log: "warn".to_owned(),
            fd_limit: None,
            healthy: true,
            env: Vec::new(),
        }
        .env("AGENT_CLUSTER_ID", cluster)
    }

    /// Log in `dir` (shared with the test's other processes) instead of a scratch directory of
    /// the agent's own.
    pub fn in_dir(mut self, dir: &Path) -> Self {
        self.dir = Some(dir.to_owned());
        self
    }

    /// The master at `addr` over plain HTTP.
    pub fn master(self, addr: SocketAddr) -> Self {
        self.masters(&format!("http://{addr}"))
    }

    /// `AGENT_MASTER_URL` as written: one URL or several, comma-separated, http or https.
    pub fn masters(self, urls: &str) -> Self {
        self.env("AGENT_MASTER_URL", urls)
    }

    /// A master nobody listens on (port 1 of loopback: connections are refused at once), for
    /// suites that look only at the agent's receiver.
    pub fn dead_master(self) -> Self {
        self.masters("http://127.0.0.1:1")
    }

    /// The token it shows the master (`AGENT_TOKEN`; empty for none).
    pub fn token(self, token: &str) -> Self {
        self.env("AGENT_TOKEN", token)
    }

    /// The token it reads from a file that may be rotated under it (`AGENT_TOKEN_FILE`).
    pub fn token_file(self, path: &Path) -> Self {
        self.env("AGENT_TOKEN_FILE", path.display().to_string())
    }

    /// The one token nodes must show (`AGENT_NODE_TOKEN`).
    pub fn node_token(self, token: &str) -> Self {
        self.env("AGENT_NODE_TOKEN", token)
    }

    /// Node tokens read from a file that may be rotated under it (`AGENT_NODE_TOKEN_FILE`).
    pub fn node_token_file(self, path: &Path) -> Self {
        self.env("AGENT_NODE_TOKEN_FILE", path.display().to_string())
    }

    /// Trust `ca` for the master's certificate and show it `cert`/`key` (mutual TLS).
    pub fn client_cert(self, ca: &Path, cert: &Path, key: &Path) -> Self {
        self.env("AGENT_CA_FILE", ca.display().to_string())
            .env("AGENT_CLIENT_CERT", cert.display().to_string())
            .env("AGENT_CLIENT_KEY", key.display().to_string())
    }

    /// Serve nodes over TLS with `cert`/`key`; `/health` is then not probed over plain HTTP,
    /// the caller waits for it its own way.
    pub fn serve_tls(mut self, cert: &Path, key: &Path) -> Self {
        self.healthy = false;
        self.env("AGENT_TLS_CERT", cert.display().to_string())
            .env("AGENT_TLS_KEY", key.display().to_string())
    }

    /// Retry delays after a failed call to the master (`AGENT_BACKOFF_BASE`, doubling up to
    /// `AGENT_BACKOFF_MAX`), in the agent's duration syntax (`100ms`, `1s`).
    pub fn backoff(self, base: &str, max: &str) -> Self {
        self.env("AGENT_BACKOFF_BASE", base)
            .env("AGENT_BACKOFF_MAX", max)
    }

    /// The child's open-file limit (`RLIMIT_NOFILE`), kept across restarts.
    pub fn fd_limit(mut self, nofile: u64) -> Self {
        self.fd_limit = Some(nofile);
        self
    }

    /// `RUST_LOG` (default `warn`); the line that gives the listening address is always on.
    pub fn log(mut self, filter: &str) -> Self {
        self.log = filter.to_owned();
        self
    }

    /// Any other setting, e.g. `AGENT_SNAPSHOT_INTERVAL`; a later value of a key wins.
    /// `RUST_LOG` goes to [`AgentBuilder::log`].
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        set_env(&mut self.log, &mut self.env, key, value.into());
        self
    }

    /// [`AgentBuilder::env`] for each pair.
    pub fn envs(self, pairs: &[(&str, String)]) -> Self {
        pairs.iter().fold(self, |b, (k, v)| b.env(k, v.clone()))
    }

    /// Starts it and waits until it logs its address and (unless it serves TLS) answers
    /// `/health`.
    pub fn start(self) -> RunningAgent {
        let (dir, scratch) = Scratch::unless_given(self.dir, &self.name);
        let mut all = vec![
            ("AGENT_LISTEN", "127.0.0.1:0".to_owned()),
            // The agent module's info lines only: the listening address, nodes coming and going.
            (
                "RUST_LOG",
                format!("{},atlhyper_agent::agent=info", self.log),
            ),
        ];
        all.extend(self.env.iter().map(|(k, v)| (k.as_str(), v.clone())));
        let mut proc = match self.fd_limit {
            Some(n) => Proc::spawn_with_fd_limit(&self.name, &bins().agent, &all, &dir, n),
            None => Proc::spawn(&self.name, &bins().agent, &all, &dir),
        };
        let addr = logged_addr(&proc, "agent listening", Duration::from_secs(60));
        assert_ne!(addr.port(), 0, "{} logged port 0", self.name);
        // A restart (also a bare `proc.kill9_and_restart()`) asks for the same address.
        proc.set_env("AGENT_LISTEN", &addr.to_string());
        if self.healthy {
            wait_healthy(addr, Duration::from_secs(60), &proc);
        }
        RunningAgent {
            proc,
            addr,
            healthy: self.healthy,
            _dir: scratch,
        }
    }
}

impl RunningAgent {
    /// `http://addr`, for `METRICS_AGENT_ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// SIGKILL and reap; [`RunningAgent::restart`] brings it back.
    pub fn kill9(&mut self) {
        self.proc.kill9();
    }

    /// SIGKILL (if it still runs), then the same settings again on the same address; waits
    /// until it logs that address (a restart that cannot bind it fails) and answers `/health`.
    pub fn restart(&mut self) {
        let before = self.proc.log_text().matches("agent listening").count();
        self.proc.kill9_and_restart();
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.proc.log_text().matches("agent listening").count() <= before {
            assert!(
                self.proc.alive() && Instant::now() < deadline,
                "{} did not come back on {}:\n{}",
                self.proc.name,
                self.addr,
                tail(&self.proc.log_text(), 4000)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let again = logged_addr(&self.proc, "agent listening", Duration::from_secs(1));
        assert_eq!(again, self.addr, "{} came back elsewhere", self.proc.name);
        if self.healthy {
            wait_healthy(self.addr, Duration::from_secs(60), &self.proc);
        }
    }
}

/// Snapshot `k` of one node as an agent pushes it (gzip JSON): taken at `base + k` s (its own
/// history bucket at a 1 s history interval), uptime `k` (the marker of the latest), CPU
/// `k % 100` percent.
pub fn numbered_snapshot(
    cluster: &str,
    node: &str,
    k: u64,
    base: chrono::DateTime<chrono::Utc>,
) -> Vec<u8> {
    let ts = base + chrono::Duration::seconds(i64::try_from(k).expect("small k"));
    let mut one: serde_json::Value =
        serde_json::from_str(&atlhyper_testkit::node_json(node, ts, (k % 100) as f64))
            .expect("node json");
    one["uptime"] = serde_json::json!(k);
    let body = serde_json::json!({
        "cluster_id": cluster,
        "timestamp": ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "seq": k,
        "node_metrics": { node: one },
    });
    atlhyper_testkit::gzip(body.to_string().as_bytes())
}

/// The points of `node`'s stored history (the last hour) at the master on `addr`, read with
/// the viewer token `viewer`, as seconds after `base`: which [`numbered_snapshot`]s are stored.
pub fn stored_numbers(
    addr: SocketAddr,
    viewer: &str,
    cluster: &str,
    node: &str,
    base: chrono::DateTime<chrono::Utc>,
) -> std::collections::BTreeSet<i64> {
    let auth = format!("Bearer {viewer}");
    let path = format!("/api/v2/clusters/{cluster}/node-metrics/{node}/history?hours=1&format=v2");
    let (code, body) = http_get(
        addr,
        &path,
        &[("Authorization", &auth)],
        Duration::from_secs(10),
    )
    .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    assert_eq!(code, 200, "GET {path}: {}", String::from_utf8_lossy(&body));
    let history: serde_json::Value = serde_json::from_slice(&body).expect("history JSON");
    history["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|p| p["timestamp"].as_str())
        .filter_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp() - base.timestamp())
        .collect()
}

/// Reads one sample `name{labels}` (labels as written, e.g. `{state="online"}`, or "") from a
/// Prometheus text exposition.
pub fn prom_value(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (series, value) = l.rsplit_once(' ')?;
        (series == name_and_labels).then(|| value.parse().ok())?
    })
}

/// `GET /metrics` of a server, parsed into `series -> value` (labels kept verbatim).
pub fn scrape(addr: SocketAddr) -> Option<BTreeMap<String, f64>> {
    scrape_with(addr, &[])
}

/// [`scrape`] with extra request headers (the master wants a viewer token).
pub fn scrape_with(addr: SocketAddr, headers: &[(&str, &str)]) -> Option<BTreeMap<String, f64>> {
    let (code, body) = http_get(addr, "/metrics", headers, Duration::from_secs(2)).ok()?;
    if code != 200 {
        return None;
    }
    let text = String::from_utf8(body).ok()?;
    Some(
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                Some((series.to_owned(), value.parse().ok()?))
            })
            .collect(),
    )
}

/// What a [`Slowloris`] run saw.
#[derive(Debug, Clone, Copy, Default)]
pub struct SlowlorisReport {
    /// Header bytes dribbled.
    pub bytes: usize,
    /// Connections the server closed (read EOF or a failed write).
    pub closed: usize,
    /// Connections the server answered (it should not: their headers never end).
    pub answered: usize,
}

/// `n` connections that send a request line for `path` and then one header byte per connection
/// every `every`, never finishing the headers; a driver thread watches which ones the server
/// closes. Bounded: the driver stops by itself after two minutes.
#[derive(Debug)]
pub struct Slowloris {
    pub n: usize,
    closed: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    driver: Option<std::thread::JoinHandle<SlowlorisReport>>,
}

impl Slowloris {
    pub fn start(addr: SocketAddr, path: &str, n: usize, every: Duration) -> Slowloris {
        let opening = format!("POST {path} HTTP/1.1\r\nHost: x\r\nX-Slow: ");
        Self::start_with(addr, opening.as_bytes(), None, n, every)
    }

    /// `n` connections that send `opening`, then one byte of `dribble` per connection every
    /// `every` (`None`: `a` forever), then nothing. A TLS server is held this way by the start
    /// of a real ClientHello record dribbled byte by byte.
    pub fn start_with(
        addr: SocketAddr,
        opening: &[u8],
        dribble: Option<Vec<u8>>,
        n: usize,
        every: Duration,
    ) -> Slowloris {
        use std::io::Write;
        use std::sync::atomic::Ordering::Relaxed;
        let mut conns = Vec::with_capacity(n);
        for _ in 0..n {
            let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
                .expect("slowloris connect");
            s.write_all(opening).expect("opening bytes");
            s.set_nonblocking(true).expect("nonblocking");
            conns.push(Some((s, 0usize)));
        }
        let closed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (closed2, stop2) = (closed.clone(), stop.clone());
        let driver = std::thread::spawn(move || {
            let mut report = SlowlorisReport::default();
            let deadline = Instant::now() + Duration::from_secs(120);
            while !stop2.load(Relaxed) && Instant::now() < deadline {
                for slot in &mut conns {
                    let Some((c, sent)) = slot else { continue };
                    let next = match &dribble {
                        None => Some(b'a'),
                        Some(bytes) => bytes.get(*sent).copied(),
                    };
                    let mut buf = [0u8; 64];
                    let gone = match c.read(&mut buf) {
                        Ok(0) => true,
                        Ok(_) => {
                            report.answered += 1;
                            true
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => match next {
                            None => false,
                            Some(byte) => match c.write(&[byte]) {
                                Ok(n) => {
                                    report.bytes += n;
                                    *sent += n;
                                    false
                                }
                                Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
                            },
                        },
                        Err(_) => true,
                    };
                    if gone {
                        *slot = None; // our end closes too
                        report.closed += 1;
                        closed2.fetch_add(1, Relaxed);
                    }
                }
                std::thread::sleep(every);
            }
            report
        });
        Slowloris {
            n,
            closed,
            stop,
            driver: Some(driver),
        }
    }

    /// Connections the server has closed so far.
    pub fn closed(&self) -> usize {
        self.closed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits up to `limit` for the server to close every connection; whether it did.
    pub fn wait_all_closed(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.closed() < self.n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.closed() >= self.n
    }

    /// Stops dribbling and closes our ends.
    pub fn stop(mut self) -> SlowlorisReport {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.driver
            .take()
            .map(|d| d.join().expect("slowloris driver"))
            .unwrap_or_default()
    }
}

impl Drop for Slowloris {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Holds 500 slowloris connections against `proc` (listening on `addr`, path `path`) while
/// calling `push` (one normal request, returning its latency) every `every` for 5 s, first with
/// all 500 open, then across their closing at the header timeout. Prints what happened and
/// checks the common expectations: no push over 1 s, every dribbling connection closed by the
/// server and none answered, descriptors back near the baseline. Returns the push latencies.
pub fn pushes_under_slowloris(
    what: &str,
    proc: &Proc,
    addr: SocketAddr,
    path: &str,
    header_timeout: Duration,
    every: Duration,
    push: &mut dyn FnMut() -> Duration,
) -> Vec<Duration> {
    pushes_under_slowloris_with(what, proc, header_timeout, every, push, &|| {
        Slowloris::start(addr, path, 500, Duration::from_millis(100))
    })
}

/// [`pushes_under_slowloris`] with the 500 connections opened by `start` (e.g. dribbling a TLS
/// ClientHello instead of HTTP headers).
pub fn pushes_under_slowloris_with(
    what: &str,
    proc: &Proc,
    header_timeout: Duration,
    every: Duration,
    push: &mut dyn FnMut() -> Duration,
    start: &dyn Fn() -> Slowloris,
) -> Vec<Duration> {
    let base: Vec<Duration> = (0..10).map(|_| push()).collect();
    let fds_before = proc.fds();
    let rss_before = proc.rss_kib();
    // Connecting takes ~1-2 s here (2-4 ms per connection on a loaded 2-core VM), so the
    // header timeout counts from well before the last connection opens.
    let connecting = Instant::now();
    let slow = start();
    let connect_time = connecting.elapsed();
    let opened = Instant::now();
    let (mut fds_peak, mut rss_peak) = (proc.fds(), proc.rss_kib());
    let mut under = Vec::new();
    let mut all_closed_at = None;
    while opened.elapsed() < Duration::from_secs(5) {
        under.push(push());
        std::thread::sleep(every);
        fds_peak = fds_peak.max(proc.fds());
        rss_peak = rss_peak.max(proc.rss_kib());
        if all_closed_at.is_none() && slow.closed() == slow.n {
            all_closed_at = Some(opened.elapsed());
        }
    }
    let all_closed = slow.wait_all_closed(header_timeout + Duration::from_secs(8));
    let all_closed_at = match all_closed_at.or_else(|| all_closed.then(|| opened.elapsed())) {
        Some(at) => format!("{at:.1?}"),
        None => "never".to_owned(),
    };
    let fds_after = proc.fds();
    let rss_after = proc.rss_kib();
    let report = slow.stop();
    let max = under.iter().max().copied().unwrap_or_default();
    eprintln!(
        "{what} slowloris (header timeout {header_timeout:?}): 500 connections opened in \
         {connect_time:.1?}, {} header bytes dribbled, {} closed by the server (all of them \
         {all_closed_at} after the last opened), {} answered; {} pushes meanwhile, max \
         {max:?} (baseline max {:?}); fds {fds_before} -> {fds_peak} (peak) -> {fds_after}, \
         RSS {rss_before} -> {rss_peak} (peak) -> {rss_after} KiB",
        report.bytes,
        report.closed,
        report.answered,
        under.len(),
        base.iter().max().copied().unwrap_or_default()
    );
    assert!(
        max < Duration::from_secs(1),
        "a normal push took {max:?} under slowloris"
    );
    assert!(
        all_closed,
        "the server closed only {} of 500 dribbling connections",
        report.closed
    );
    assert_eq!(report.answered, 0, "half-sent requests were answered");
    assert!(
        fds_after <= fds_before + 8,
        "descriptors back near the baseline: {fds_before} -> {fds_after}"
    );
    proc.assert_no_panic();
    under
}
