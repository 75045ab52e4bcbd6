//! The SQLite engine: one file, WAL, a dedicated writer thread and a few reader threads.
//!
//! See [`SqliteStore`] for threads, durability and the schema.

mod agents;
mod alerts;
mod audit;
mod commands;
mod log_table;
mod metrics;
mod notify;
mod schema;
mod series;

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags, ffi};
use tokio::sync::oneshot;

use crate::error::{StoreError, StoreResult};

pub use schema::{APPLICATION_ID, SCHEMA_VERSION};

/// How hard a commit pushes data to the disk; see [`SqliteStore`] (durability).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// `FULL`: every commit fsyncs the WAL. Acknowledged writes survive process kill and power
    /// loss.
    #[default]
    Full,
    /// `NORMAL`: no fsync at commit. Acknowledged writes survive process kill; a power loss may
    /// lose the last transactions.
    Normal,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Normal => "NORMAL",
        }
    }
}

/// Settings of [`SqliteStore::open_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Durability of a commit. Default [`Synchronous::Full`].
    pub synchronous: Synchronous,
    /// How long a statement waits for a lock held by another connection (another process on
    /// the same file, or a checkpoint) before failing. Default 5 s.
    pub busy_timeout: Duration,
    /// Reader threads (each with its own connection). Default 2, at least 1.
    pub readers: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(5),
            readers: 2,
        }
    }
}

/// Page cache of the writer connection, KiB.
const WRITER_CACHE_KIB: i64 = 64 * 1024;
/// Page cache of each reader connection, KiB.
const READER_CACHE_KIB: i64 = 16 * 1024;

/// Work for a connection thread.
type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Every store trait over one SQLite file.
///
/// # Threads
/// Every statement runs on a thread the engine owns, never on the async runtime's workers: one
/// writer thread owns the only read-write connection and runs each write (one trait call, one
/// batch) as one transaction; reader threads own read connections (WAL lets them read while the
/// writer writes). A trait call sends a closure over a channel and awaits its answer on a oneshot,
/// and is acknowledged only after its transaction committed.
///
/// # Durability: `synchronous`
/// The database runs in WAL mode. With `synchronous = NORMAL` a commit is written to the WAL file
/// (into the OS page cache) but not fsynced: a killed process (`kill -9`, a panic, an OOM kill)
/// loses nothing, since the kernel still holds the pages, but a power loss or kernel crash can
/// lose the last transactions (the database stays consistent). With `synchronous = FULL` every
/// commit fsyncs the WAL, so an acknowledged write also survives power loss. The master promises to
/// lose nothing it acknowledged, so the default is [`Synchronous::Full`]; [`Synchronous::Normal`]
/// is there for disposable data and slow disks. The cost is one fsync per batch, not per row:
/// batches keep it small (see the crate's benches).
///
/// # Schema
/// Versioned by `PRAGMA user_version` and marked as ours by `PRAGMA application_id`; see
/// [`SCHEMA_VERSION`] (which describes the tables) and [`APPLICATION_ID`]. A file that is not an
/// SQLite database, another program's database, or a database of a newer atlhyper-rs is refused
/// at open with [`StoreError::Corrupt`]; pages found damaged later give `Corrupt` too.
///
/// # Full disk
/// A write that finds the disk full fails with [`StoreError::Full`] and changes nothing; reads
/// go on working. Once space is back the next write checkpoints the WAL and succeeds.
///
/// # Example
/// ```
/// use atlhyper_store::{MetricsStore, SqliteStore};
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let dir = tempfile::tempdir().unwrap();
/// let store = SqliteStore::open(dir.path().join("atlhyper.db")).unwrap();
/// assert!(store.list_clusters().await.unwrap().is_empty());
/// # });
/// ```
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    writer: mpsc::Sender<Job>,
    readers: mpsc::Sender<Job>,
    /// The writer's thread first, then the readers'.
    threads: Vec<thread::JoinHandle<()>>,
    /// Set when a write failed for lack of space: the next write first checkpoints the WAL.
    after_full: Arc<AtomicBool>,
    /// Node ids the writer has seen (see `metrics::NodeIds`).
    node_ids: Arc<Mutex<metrics::NodeIds>>,
    /// Series key dictionaries by id (rows of `series_dict` never change).
    series_dicts: Arc<series::Dictionaries>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` with default [`SqliteOptions`],
    /// migrating an older schema. Blocks (it opens files and may migrate): call it before the
    /// runtime starts or from `spawn_blocking`.
    pub fn open(path: impl AsRef<Path>) -> StoreResult<Self> {
        Self::open_with(path, &SqliteOptions::default())
    }

    /// Opens the database at `path` with `options`.
    pub fn open_with(path: impl AsRef<Path>, options: &SqliteOptions) -> StoreResult<Self> {
        let path = path.as_ref().to_path_buf();
        let mut conn = connect(&path, options)?;
        schema::check_and_migrate(&mut conn)?;
        conn.pragma_update(None, "synchronous", options.synchronous.pragma())
            .map_err(map_err)?;
        // A batch of N nodes touches N history leaf pages; keep them cached (KiB, negative).
        conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)
            .map_err(map_err)?;
        // Checkpoint every ~40 MiB of WAL rather than 4 MiB: a page written by many batches is
        // copied to the database file once per checkpoint.
        conn.pragma_update(None, "wal_autocheckpoint", 10_000)
            .map_err(map_err)?;
        let mut readers = Vec::with_capacity(options.readers.max(1));
        for _ in 0..options.readers.max(1) {
            let reader = connect(&path, options)?;
            reader
                .pragma_update(None, "query_only", true)
                .map_err(map_err)?;
            reader
                .pragma_update(None, "cache_size", -READER_CACHE_KIB)
                .map_err(map_err)?;
            readers.push(reader);
        }

        let name = |role: &str| format!("atlhyper-sqlite-{role}");
        let mut threads = Vec::with_capacity(readers.len() + 1);
        let (writer_tx, writer_rx) = mpsc::channel::<Job>();
        threads.push(
            thread::Builder::new()
                .name(name("writer"))
                .spawn(move || serve(conn, &Mutex::new(writer_rx)))
                .map_err(|e| StoreError::Backend(format!("cannot start the writer thread: {e}")))?,
        );
        let (readers_tx, readers_rx) = mpsc::channel::<Job>();
        let readers_rx = Arc::new(Mutex::new(readers_rx));
        for reader in readers {
            let rx = Arc::clone(&readers_rx);
            threads.push(
                thread::Builder::new()
                    .name(name("reader"))
                    .spawn(move || serve(reader, &rx))
                    .map_err(|e| {
                        StoreError::Backend(format!("cannot start a reader thread: {e}"))
                    })?,
            );
        }
        Ok(Self {
            path,
            writer: writer_tx,
            readers: readers_tx,
            threads,
            after_full: Arc::new(AtomicBool::new(false)),
            node_ids: Arc::default(),
            series_dicts: Arc::default(),
        })
    }

    /// Finishes the work already sent, closes every connection (the last one checkpoints the
    /// WAL into the database file) and waits for the engine's threads. Blocks: call it from
    /// `spawn_blocking` or after the runtime stopped. Dropping the store closes it too, without
    /// waiting.
    pub fn close(self) -> StoreResult<()> {
        let Self {
            writer,
            readers,
            mut threads,
            ..
        } = self;
        let join = |t: thread::JoinHandle<()>| {
            t.join()
                .map_err(|_| StoreError::Backend("an SQLite thread panicked".to_owned()))
        };
        // Readers first (they are `query_only`, which keeps them from checkpointing), so the
        // writer's connection is the last one and folds the WAL into the database file.
        drop(readers);
        let writer_thread = threads.remove(0);
        for t in threads {
            join(t)?;
        }
        drop(writer);
        join(writer_thread)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `PRAGMA integrity_check` (reads the whole file): `Ok` when SQLite says `ok`,
    /// otherwise `Corrupt` with what it found.
    pub async fn integrity_check(&self) -> StoreResult<()> {
        self.read(|conn| {
            let mut stmt = conn.prepare("PRAGMA integrity_check").map_err(map_err)?;
            let found = stmt
                .query_map([], |row| row.get::<_, String>(0))
                .map_err(map_err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(map_err)?;
            if found == ["ok"] {
                Ok(())
            } else {
                Err(StoreError::Corrupt(found.join("; ")))
            }
        })
        .await
    }

    /// Runs `f` on the writer thread.
    ///
    /// After a write failed with [`StoreError::Full`], the WAL holds every frame since the last
    /// checkpoint and cannot be reset while the disk is full. So the write that failed, and every
    /// write after it until one succeeds, first tries `wal_checkpoint(TRUNCATE)`: once space is
    /// back, that moves the WAL into the database file and gives the WAL's space back.
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let after_full = Arc::clone(&self.after_full);
        run(&self.writer, move |conn| {
            if after_full.load(Ordering::Relaxed) && checkpoint(conn) {
                after_full.store(false, Ordering::Relaxed);
            }
            let result = f(conn);
            if matches!(result, Err(StoreError::Full(_))) {
                after_full.store(!checkpoint(conn), Ordering::Relaxed);
            }
            result
        })
        .await
    }

    /// Runs `f` on a reader thread.
    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        run(&self.readers, f).await
    }
}

/// Sends `f` to a connection thread and waits for its answer.
async fn run<T, F>(jobs: &mpsc::Sender<Job>, f: F) -> StoreResult<T>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let job: Job = Box::new(move |conn| {
        // The caller may have gone away (a cancelled request); the work is done either way.
        let _ = tx.send(f(conn));
    });
    let lost = || StoreError::Backend("the SQLite worker thread stopped".to_owned());
    jobs.send(job).map_err(|_| lost())?;
    rx.await.map_err(|_| lost())?
}

/// A connection thread: runs jobs until every sender is gone. A job that panics is dropped (its
/// caller gets `Backend`) and the thread goes on.
fn serve(mut conn: Connection, jobs: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        let job = jobs.lock().recv();
        let Ok(job) = job else {
            // Every sender is gone. Close explicitly: an error here (a checkpoint that could not
            // run) leaves a WAL that the next open replays, so nothing is lost.
            let _ = conn.close();
            return;
        };
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut conn)));
    }
}

/// Checkpoints the whole WAL and truncates it; whether that worked.
fn checkpoint(conn: &Connection) -> bool {
    // Columns: busy (1 when it could not finish), WAL frames, frames checkpointed.
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        r.get::<_, i64>(0)
    })
    .is_ok_and(|busy| busy == 0)
}

/// Opens one connection with the engine's pragmas.
fn connect(path: &Path, options: &SqliteOptions) -> StoreResult<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| match map_err(e) {
        StoreError::Backend(msg) => {
            StoreError::Backend(format!("cannot open {}: {msg}", path.display()))
        }
        other => other,
    })?;
    conn.busy_timeout(options.busy_timeout).map_err(map_err)?;
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(map_err)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Translates an engine error: full disk, corruption, everything else.
pub(crate) fn map_err(e: rusqlite::Error) -> StoreError {
    let code = e.sqlite_error().map(|f| (f.code, f.extended_code));
    match code {
        Some((ffi::ErrorCode::DiskFull, _)) => StoreError::Full(e.to_string()),
        // Growing the shared-memory index failed: on Linux that is ENOSPC (see unixShmMap).
        Some((_, ffi::SQLITE_IOERR_SHMSIZE)) => StoreError::Full(e.to_string()),
        Some((ffi::ErrorCode::NotADatabase | ffi::ErrorCode::DatabaseCorrupt, _)) => {
            StoreError::Corrupt(e.to_string())
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn synchronous_of(options: &SqliteOptions) -> i64 {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_with(dir.path().join("s.db"), options).unwrap();
        store
            .write(|c| {
                c.pragma_query_value(None, "synchronous", |r| r.get(0))
                    .map_err(map_err)
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn synchronous_is_applied_to_the_writer() {
        assert_eq!(synchronous_of(&SqliteOptions::default()).await, 2, "FULL");
        let normal = SqliteOptions {
            synchronous: Synchronous::Normal,
            ..SqliteOptions::default()
        };
        assert_eq!(synchronous_of(&normal).await, 1, "NORMAL");
    }

    #[tokio::test]
    async fn a_panicking_job_leaves_the_thread_serving() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("p.db")).unwrap();
        let err = store
            .write::<(), _>(|_| panic!("job panics"))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Backend(_)), "{err}");
        let n: i64 = store
            .write(|c| c.query_row("SELECT 1", [], |r| r.get(0)).map_err(map_err))
            .await
            .unwrap();
        assert_eq!(n, 1);
        store.close().unwrap();
    }
}
