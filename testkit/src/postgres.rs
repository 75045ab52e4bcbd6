//! A throwaway PostgreSQL server for tests: Debian's binaries (`initdb`, `pg_ctl`, `createdb`
//! from /usr/lib/postgresql/VERSION/bin), a data directory and socket directory in a temporary
//! directory, 127.0.0.1 on a port picked at random (another one is tried when it is taken), run
//! as the `postgres` user when the tests run as root, stopped (`pg_ctl stop -m immediate`) when
//! the last handle is dropped.
//!
//! `ATLHYPER_TEST_PG_URL=postgres://user@host:port/db` makes the tests use that server instead
//! (each test still gets its own database, created there). Without either, a test is skipped
//! with the reason printed, and fails under `CI=true`.
//!
//! ```no_run
//! let Some(server) = atlhyper_testkit::TestPostgres::shared() else { return };
//! let url = server.fresh_database();
//! assert!(url.starts_with("postgres://"));
//! ```

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The environment variable naming an existing server to use instead of starting one.
pub const TEST_PG_URL_VAR: &str = "ATLHYPER_TEST_PG_URL";

/// A PostgreSQL server for tests: one started here, or the one of [`TEST_PG_URL_VAR`].
#[derive(Debug)]
pub struct TestPostgres {
    /// URL of the server's `postgres` database.
    url: String,
    /// The server this process started, if it did.
    local: Option<LocalServer>,
}

/// A server started by [`TestPostgres::start`].
#[derive(Debug)]
struct LocalServer {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    /// `postgres` options of the first start (`-o`), kept for later starts.
    options: String,
    as_postgres: bool,
    /// Data, socket and log; deleted after the server stopped.
    dir: Option<tempfile::TempDir>,
}

/// Databases created so far by this process (their names must differ).
static DATABASES: AtomicU32 = AtomicU32::new(0);
/// The server [`TestPostgres::shared`] hands out while anyone holds it.
static SHARED: Mutex<Weak<TestPostgres>> = Mutex::new(Weak::new());

impl TestPostgres {
    /// The server the tests of this process share: started on the first call (or taken from
    /// [`TEST_PG_URL_VAR`]), stopped when the last handle is dropped. `None` (reason printed)
    /// when there is no PostgreSQL here; panics instead under `CI=true`.
    pub fn shared() -> Option<Arc<Self>> {
        let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(server) = shared.upgrade() {
            return Some(server);
        }
        let server = Arc::new(Self::start(false)?);
        *shared = Arc::downgrade(&server);
        Some(server)
    }

    /// A server of its own (or the one of [`TEST_PG_URL_VAR`]), for tests that restart or stop
    /// it. `durable`: fsync on (benchmarks); off, tests run faster and lose nothing unless the
    /// machine itself crashes. `None` as for [`Self::shared`].
    pub fn start(durable: bool) -> Option<Self> {
        if let Ok(url) = std::env::var(TEST_PG_URL_VAR) {
            return Some(Self { url, local: None });
        }
        Self::start_local(durable, None)
    }

    /// A server of its own with TLS on (`ssl=on`; plain connections are still accepted), its
    /// certificate issued by `ca` for `names` (DNS names or IP literals; it listens on
    /// 127.0.0.1, which `localhost` reaches too). Always a local server: the
    /// one of [`TEST_PG_URL_VAR`] cannot be given a certificate, so with that variable set
    /// this is `None` (reason printed). `None` as for [`Self::shared`] otherwise.
    pub fn start_tls(ca: &crate::tls::TestCa, names: &[&str]) -> Option<Self> {
        if std::env::var(TEST_PG_URL_VAR).is_ok() {
            eprintln!("skipped: {TEST_PG_URL_VAR} is set; a TLS test needs a server of its own");
            return None;
        }
        let cert = ca.server(names, crate::tls::Validity::Current);
        Self::start_local(false, Some(&cert))
    }

    fn start_local(durable: bool, tls: Option<&crate::tls::CertPem>) -> Option<Self> {
        let Some(bin) = binaries() else {
            let reason = "PostgreSQL is not installed (apt-get install -y postgresql), and \
                          ATLHYPER_TEST_PG_URL is not set";
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true and {reason}"
            );
            eprintln!("skipped: {reason}");
            return None;
        };
        let server = LocalServer::start(bin, durable, tls).unwrap_or_else(|e| panic!("{e}"));
        Some(Self {
            url: format!("postgres://postgres@127.0.0.1:{}/postgres", server.port),
            local: Some(server),
        })
    }

    /// The URL of the server's `postgres` database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Creates an empty database of its own for one test; its URL.
    pub fn fresh_database(&self) -> String {
        let n = DATABASES.fetch_add(1, Ordering::Relaxed);
        let name = format!("atlhyper_test_{}_{n}", std::process::id());
        let createdb = self
            .local
            .as_ref()
            .map_or_else(|| PathBuf::from("createdb"), |l| l.bin.join("createdb"));
        let out = Command::new(createdb)
            .arg(format!("--maintenance-db={}", self.url))
            .arg(&name)
            .output()
            .unwrap_or_else(|e| panic!("cannot run createdb: {e}"));
        assert!(out.status.success(), "createdb {name}: {}", text(&out));
        with_database(&self.url, &name)
    }

    /// `pg_ctl restart -m immediate`: the server dies at once (no checkpoint, clients cut) and
    /// comes back on the same port, recovering from its WAL. Panics for a server of
    /// [`TEST_PG_URL_VAR`].
    pub fn restart_immediate(&self) {
        self.local().pg_ctl(&["restart", "-m", "immediate"]);
    }

    /// `pg_ctl stop -m immediate`; [`Self::start_again`] brings it back.
    pub fn stop_immediate(&self) {
        self.local().pg_ctl(&["stop", "-m", "immediate"]);
    }

    /// Starts a server stopped by [`Self::stop_immediate`] on its port.
    pub fn start_again(&self) {
        self.local().pg_ctl(&["start"]);
    }

    /// The port (for a server of [`TEST_PG_URL_VAR`], `None`).
    pub fn port(&self) -> Option<u16> {
        self.local.as_ref().map(|l| l.port)
    }

    fn local(&self) -> &LocalServer {
        self.local
            .as_ref()
            .expect("only a server started by the tests can be restarted or stopped")
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        if let Some(local) = &mut self.local {
            // Whatever state it is in; an error here (already stopped) changes nothing.
            let _ = local
                .command("pg_ctl", &["stop", "-m", "immediate"])
                .output();
            drop(local.dir.take());
        }
    }
}

impl LocalServer {
    fn start(
        bin: PathBuf,
        durable: bool,
        tls: Option<&crate::tls::CertPem>,
    ) -> Result<Self, String> {
        let as_postgres = is_root();
        let dir = tempfile::Builder::new()
            .prefix("atlhyper-pg-")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        if as_postgres {
            run(Command::new("chown").arg("postgres:").arg(dir.path()))?;
        }
        let data = dir.path().join("data");
        let mut server = Self {
            bin,
            data,
            port: 0,
            options: String::new(),
            as_postgres,
            dir: None,
        };
        let data_arg = server.data.display().to_string();
        run(&mut server.command(
            "initdb",
            &[
                "-D",
                &data_arg,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
        ))?;
        let tls_options = match tls {
            Some(cert) => {
                let (crt, key) = cert.write(dir.path(), "server");
                // The server refuses a key others can read, or one it does not own.
                std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                    .map_err(|e| format!("chmod {}: {e}", key.display()))?;
                if as_postgres {
                    run(Command::new("chown").arg("postgres:").arg(&crt).arg(&key))?;
                }
                format!(
                    " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                    crt.display(),
                    key.display()
                )
            }
            None => String::new(),
        };
        let socket_dir = dir.path().display().to_string();
        let log = dir.path().join("server.log").display().to_string();
        let mut last = String::new();
        // A port picked at random may be taken: the server then fails to bind; try another.
        for attempt in 0..20u32 {
            server.port = random_port(attempt);
            server.options = format!(
                "-p {} -c listen_addresses=127.0.0.1 -k {socket_dir} -c fsync={} \
                 -c max_connections=300 -c full_page_writes={}{tls_options}",
                server.port,
                if durable { "on" } else { "off" },
                if durable { "on" } else { "off" },
            );
            let out = server
                .command(
                    "pg_ctl",
                    &["start", "-w", "-t", "60", "-l", &log, "-o", &server.options],
                )
                .output()
                .map_err(|e| format!("cannot run pg_ctl: {e}"))?;
            if out.status.success() {
                server.dir = Some(dir);
                return Ok(server);
            }
            last = format!(
                "{}; log: {}",
                text(&out),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        Err(format!("PostgreSQL did not start: {last}"))
    }

    /// `pg_ctl ACTION` (waiting, up to 60 s), panicking when it fails; a start gets the
    /// options of the first start and the log.
    fn pg_ctl(&self, args: &[&str]) {
        let mut all = vec!["-w", "-t", "60"];
        all.extend_from_slice(args);
        let log = self.data.with_file_name("server.log").display().to_string();
        if args.first() != Some(&"stop") {
            all.extend_from_slice(&["-l", &log, "-o", &self.options]);
        }
        run(&mut self.command("pg_ctl", &all)).unwrap_or_else(|e| panic!("{e}"));
    }

    /// A command of the server's binaries, as the `postgres` user when we are root; `pg_ctl`
    /// gets the data directory.
    fn command(&self, program: &str, args: &[&str]) -> Command {
        let path = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        if program == "pg_ctl" && !args.contains(&"-D") {
            cmd.arg("-D").arg(&self.data);
        }
        cmd.args(args);
        cmd
    }
}

/// The newest /usr/lib/postgresql/VERSION/bin with initdb and pg_ctl.
fn binaries() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").exists() && bin.join("pg_ctl").exists()).then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A port in 20000..60000 that differs per process, attempt and moment.
fn random_port(attempt: u32) -> u16 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .subsec_nanos();
    let mixed =
        nanos ^ std::process::id().wrapping_mul(2_654_435_761) ^ attempt.wrapping_mul(40_503);
    20_000 + (mixed % 40_000) as u16
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?}: {}", text(&out)))
    }
}

fn text(out: &Output) -> String {
    format!(
        "{} {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `url` with its database (the path) replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| after_scheme + i);
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_replace_the_path() {
        assert_eq!(
            with_database("postgres://u@h:5/postgres", "x"),
            "postgres://u@h:5/x"
        );
        assert_eq!(with_database("postgres://u@h:5", "x"), "postgres://u@h:5/x");
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
    }

    #[test]
    fn a_server_starts_serves_and_restarts() {
        let Some(server) = TestPostgres::start(false) else {
            return;
        };
        let url = server.fresh_database();
        let psql = |url: &str| {
            Command::new("psql")
                .args([url, "-tAc", "SELECT 40 + 2"])
                .output()
                .expect("psql")
        };
        let out = psql(&url);
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
        if server.port().is_some() {
            server.restart_immediate();
            assert!(psql(&url).status.success());
            server.stop_immediate();
            assert!(!psql(&url).status.success());
            server.start_again();
            assert!(psql(&url).status.success());
        }
    }
}
