//! The only code that touches the filesystem: reads files under a [`HostRoot`] into one reused
//! buffer, lists directories, and runs `statfs` with a timeout.
//!
//! Every file is read to the end into the same buffer (files under /proc lie about their size, and
//! `read_to_string` would add a `statx` per file). Parsing is done by the pure parsers in
//! [`crate::proc`], [`crate::sys`] and [`crate::etc`].
//!
//! # Kept file descriptors
//!
//! By default (see [`Sampler::set_kept_files_limit`]) files on procfs and sysfs stay open between
//! collections and are re-read with `pread` at offset 0: one syscall per file instead of three
//! (open, read, close), which is most of a collection's kernel time with many processes. procfs
//! and sysfs regenerate a file's content on every read from offset 0 (seq_file resets its
//! iterator there), so a kept descriptor always gives fresh data. The cost: one descriptor and a
//! few hundred bytes of kernel memory per kept file (one per process for `/proc/<pid>/stat`),
//! bounded by the limit (default `min(RLIMIT_NOFILE soft / 2, 8192)`); past it files are opened,
//! read and closed as before. A kept descriptor pins the kernel's `struct pid`, not the number, so
//! a reused pid can never be read through an old descriptor: reading a process that exited fails
//! (`ESRCH`), the descriptor is closed and the path opened afresh. Descriptors not read during a
//! collection (vanished processes, interfaces, mounts) are closed at its end
//! ([`Sampler::sweep_kept`]). Regular files (captured fixture trees) are never kept: they can be
//! replaced under the same name.

use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::time::Duration;

use crate::error::{Error, ParseError, ParseErrorKind};

/// Where the host's `/proc`, `/sys` and `/` are mounted. In a container with the host mounted at
/// `/host` this is `{proc: /host/proc, sys: /host/sys, rootfs: /host}`; tests point it at a
/// fixture tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoot {
    /// The host's procfs (default `/proc`).
    pub proc: PathBuf,
    /// The host's sysfs (default `/sys`).
    pub sys: PathBuf,
    /// The host's root filesystem (default `/`): `/etc/passwd`, `/etc/os-release` and statfs of
    /// mount points are looked up under it.
    pub rootfs: PathBuf,
}

impl HostRoot {
    /// A host root from its three parts.
    pub fn new(
        proc: impl Into<PathBuf>,
        sys: impl Into<PathBuf>,
        rootfs: impl Into<PathBuf>,
    ) -> Self {
        Self {
            proc: proc.into(),
            sys: sys.into(),
            rootfs: rootfs.into(),
        }
    }

    /// From `METRICS_PROC_ROOT`, `METRICS_SYS_ROOT` and `METRICS_HOST_ROOT` (AtlHyper v2 names),
    /// each defaulting to `/proc`, `/sys` and `/`. Empty values count as unset.
    pub fn from_env() -> Self {
        let var = |name: &str, default: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map_or_else(|| PathBuf::from(default), PathBuf::from)
        };
        Self::new(
            var("METRICS_PROC_ROOT", "/proc"),
            var("METRICS_SYS_ROOT", "/sys"),
            var("METRICS_HOST_ROOT", "/"),
        )
    }

    /// A captured tree `dir` holding `proc/` and `sys/`, also serving as the root filesystem.
    pub fn under(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        Self::new(dir.join("proc"), dir.join("sys"), dir)
    }

    /// `rel` (an absolute host path such as a mount point) under the root filesystem.
    pub fn host_path(&self, rel: &str) -> PathBuf {
        self.rootfs.join(rel.trim_start_matches('/'))
    }
}

impl Default for HostRoot {
    fn default() -> Self {
        Self::new("/proc", "/sys", "/")
    }
}

/// Space and inodes of one filesystem, from `statvfs`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FsSpace {
    /// Size, bytes.
    pub total: u64,
    /// Free, bytes (including blocks reserved for root).
    pub free: u64,
    /// Available to unprivileged users, bytes.
    pub available: u64,
    /// Total inodes (0 on filesystems without a fixed inode count).
    pub files: u64,
    /// Free inodes.
    pub files_free: u64,
}

/// `statvfs(2)` on `path`.
#[allow(clippy::useless_conversion)]
pub fn statvfs(path: &Path) -> io::Result<FsSpace> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `c` is a valid NUL-terminated string and `st` points to writable memory of the right
    // size; statvfs fills it completely on success.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so the struct is initialised.
    let st = unsafe { st.assume_init() };
    // Field widths differ between platforms (u32 on some 32-bit targets); `u64::from` widens
    // all of them losslessly and is a no-op here.
    let frsize = if st.f_frsize > 0 {
        u64::from(st.f_frsize)
    } else {
        u64::from(st.f_bsize)
    };
    Ok(FsSpace {
        total: u64::from(st.f_blocks).saturating_mul(frsize),
        free: u64::from(st.f_bfree).saturating_mul(frsize),
        available: u64::from(st.f_bavail).saturating_mul(frsize),
        files: u64::from(st.f_files),
        files_free: u64::from(st.f_ffree),
    })
}

/// The function a [`Statfs`] runs on its worker thread (the real one is [`statvfs`]; tests inject
/// one that blocks).
pub type StatfsFn = Arc<dyn Fn(&Path) -> io::Result<FsSpace> + Send + Sync>;

type Reply = (PathBuf, io::Result<FsSpace>);

#[derive(Debug)]
struct Worker {
    jobs: Sender<PathBuf>,
    replies: Receiver<Reply>,
}

impl Worker {
    fn spawn(func: &StatfsFn) -> io::Result<Self> {
        let (jobs, job_rx) = mpsc::channel::<PathBuf>();
        let (reply_tx, replies) = mpsc::channel::<Reply>();
        let func = Arc::clone(func);
        std::thread::Builder::new()
            .name("atlhyper-statfs".into())
            .spawn(move || {
                for path in job_rx {
                    let r = func(&path);
                    if reply_tx.send((path, r)).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Self { jobs, replies })
    }
}

/// Runs statfs on a worker thread with a timeout, so a hung mount (dead NFS server) never stalls a
/// collection. A call that times out leaves its worker blocked in the kernel; the path is then
/// answered with [`Error::StatfsStillBlocked`] at once until that old call returns, so at most one
/// thread per hung mount is ever parked.
pub struct Statfs {
    func: StatfsFn,
    timeout: Duration,
    worker: Option<Worker>,
    blocked: Vec<(PathBuf, Worker)>,
}

impl std::fmt::Debug for Statfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Statfs")
            .field("timeout", &self.timeout)
            .field("worker", &self.worker.is_some())
            .field(
                "blocked",
                &self.blocked.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Statfs {
    /// Real statfs ([`statvfs`]) with `timeout` per call.
    pub fn new(timeout: Duration) -> Self {
        Self::with_fn(timeout, Arc::new(statvfs))
    }

    /// A custom statfs function (a test seam: inject one that blocks).
    pub fn with_fn(timeout: Duration, func: StatfsFn) -> Self {
        Self {
            func,
            timeout,
            worker: None,
            blocked: Vec::new(),
        }
    }

    /// Paths whose statfs is still blocked from an earlier call.
    pub fn blocked_paths(&self) -> impl Iterator<Item = &Path> {
        self.blocked.iter().map(|(p, _)| p.as_path())
    }

    /// statfs of `path` on the calling thread, no timeout. For filesystems on a local block
    /// device, where statfs answers from the in-memory superblock: it saves the worker
    /// round trip, whose thread wake-up alone costs tens of microseconds to milliseconds on a
    /// busy node. A path still blocked from an earlier timed call is refused.
    pub fn stat_inline(&mut self, path: &Path) -> Result<FsSpace, Error> {
        if self.blocked.iter().any(|(p, _)| p == path) {
            return self.stat(path);
        }
        (self.func)(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// statfs of `path`, or an error after the timeout.
    pub fn stat(&mut self, path: &Path) -> Result<FsSpace, Error> {
        if let Some(i) = self.blocked.iter().position(|(p, _)| p == path) {
            match self.blocked[i].1.replies.try_recv() {
                Err(TryRecvError::Empty) => {
                    return Err(Error::StatfsStillBlocked {
                        path: path.to_path_buf(),
                    });
                }
                // The old call returned (or its thread died): forget it and ask again below.
                Ok(_) | Err(TryRecvError::Disconnected) => {
                    self.blocked.swap_remove(i);
                }
            }
        }
        let worker = match self.worker.take() {
            Some(w) => w,
            None => Worker::spawn(&self.func).map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })?,
        };
        if worker.jobs.send(path.to_path_buf()).is_err() {
            // The worker died (the injected function panicked); a new one is spawned next call.
            return Err(Error::Io {
                path: path.to_path_buf(),
                source: io::Error::other("statfs worker exited"),
            });
        }
        match worker.replies.recv_timeout(self.timeout) {
            Ok((_, r)) => {
                self.worker = Some(worker);
                r.map_err(|source| Error::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
            Err(RecvTimeoutError::Timeout) => {
                self.blocked.push((path.to_path_buf(), worker));
                Err(Error::StatfsTimeout {
                    path: path.to_path_buf(),
                    timeout_ms: u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
                })
            }
            Err(RecvTimeoutError::Disconnected) => Err(Error::Io {
                path: path.to_path_buf(),
                source: io::Error::other("statfs worker exited"),
            }),
        }
    }
}

/// Which tree a relative path is under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// The host's procfs.
    Proc,
    /// The host's sysfs.
    Sys,
    /// The host's root filesystem.
    Root,
}

/// One filesystem access of the sampler, recorded when tracing is on (see
/// [`Sampler::set_tracing`]): to measure the cost floor of a collection and to debug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// A file opened and read to the end.
    File(PathBuf),
    /// A directory listed.
    Dir(PathBuf),
}

/// An open procfs/sysfs file re-read with `pread` at offset 0, and the collection that last read it.
#[derive(Debug)]
struct Kept {
    file: File,
    generation: u64,
}

/// Which kept-descriptor table a read may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// Never kept.
    No,
    /// Kept by path.
    Path,
    /// `/proc/<pid>/stat`, kept by pid.
    PidStat(u32),
}

/// Hashes a pid with one multiplication (Fibonacci hashing): pids are small dense integers chosen by
/// the kernel, not by an attacker who could aim for collisions in a map that holds one entry per
/// live process.
#[derive(Debug, Default, Clone, Copy)]
struct PidHasher(u64);

impl std::hash::Hasher for PidHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, v: u32) {
        self.0 = u64::from(v).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type PidMap<V> = HashMap<u32, V, std::hash::BuildHasherDefault<PidHasher>>;

/// The default limit of kept descriptors: half the soft `RLIMIT_NOFILE`, at most 8192.
pub fn default_kept_files_limit() -> usize {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `rl` is a valid, writable rlimit.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) };
    if rc != 0 {
        return 0;
    }
    usize::try_from(rl.rlim_cur / 2).map_or(8192, |half| half.min(8192))
}

/// Whether `f` is on procfs or sysfs, whose files are regenerated on every read from offset 0.
fn is_kernel_fs(f: &File) -> bool {
    const PROC_SUPER_MAGIC: i64 = 0x9fa0;
    const SYSFS_MAGIC: i64 = 0x6265_6572;
    let mut st = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: the descriptor is open for the lifetime of `f` and `st` is writable memory of the
    // right size; fstatfs fills it on success.
    let rc = unsafe { libc::fstatfs(f.as_raw_fd(), st.as_mut_ptr()) };
    if rc != 0 {
        return false;
    }
    // SAFETY: fstatfs returned 0, so the struct is initialised.
    let st = unsafe { st.assume_init() };
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    let t = st.f_type as i64;
    t == PROC_SUPER_MAGIC || t == SYSFS_MAGIC
}

/// Reads files under a [`HostRoot`] into one reused buffer.
#[derive(Debug)]
pub struct Sampler {
    root: HostRoot,
    buf: Vec<u8>,
    path: PathBuf,
    statfs: Statfs,
    trace: Option<Vec<Access>>,
    kept_limit: usize,
    kept_paths: HashMap<PathBuf, Kept>,
    kept_pids: PidMap<Kept>,
    generation: u64,
    dents: Vec<u8>,
}

impl Sampler {
    /// A sampler over `root` with the given statfs runner.
    pub fn new(root: HostRoot, statfs: Statfs) -> Self {
        Self {
            root,
            buf: vec![0; 16 * 1024],
            path: PathBuf::new(),
            statfs,
            trace: None,
            kept_limit: default_kept_files_limit(),
            kept_paths: HashMap::new(),
            kept_pids: PidMap::default(),
            generation: 0,
            dents: Vec::new(),
        }
    }

    /// At most `max` procfs/sysfs files stay open between collections (0: none; every file is
    /// opened, read and closed). Lowering the limit closes all kept files. See the module docs.
    pub fn set_kept_files_limit(&mut self, max: usize) {
        if max < self.kept_limit {
            self.kept_paths.clear();
            self.kept_pids.clear();
        }
        self.kept_limit = max;
    }

    /// How many files are kept open now.
    pub fn kept_files(&self) -> usize {
        self.kept_paths.len() + self.kept_pids.len()
    }

    /// Closes the kept files not read since the previous call (processes that exited, devices
    /// that went away); call once at the end of each collection.
    pub fn sweep_kept(&mut self) {
        let g = self.generation;
        self.kept_paths.retain(|_, k| k.generation == g);
        self.kept_pids.retain(|_, k| k.generation == g);
        self.generation = g.wrapping_add(1);
    }

    /// Reads `self.path` into `self.buf`, through a kept descriptor when there is one.
    fn load(&mut self, keep: Keep) -> io::Result<usize> {
        if self.kept_limit > 0 {
            let g = self.generation;
            let kept = match keep {
                Keep::No => None,
                Keep::Path => self.kept_paths.get_mut(self.path.as_path()),
                Keep::PidStat(pid) => self.kept_pids.get_mut(&pid),
            };
            if let Some(k) = kept {
                k.generation = g;
                match pread_into(&mut self.buf, &k.file) {
                    Ok(n) if n > 0 => return Ok(n),
                    // Exited process (ESRCH), removed device, or any other failure: close it and
                    // let a fresh open give the real answer.
                    _ => match keep {
                        Keep::Path => drop(self.kept_paths.remove(self.path.as_path())),
                        Keep::PidStat(pid) => drop(self.kept_pids.remove(&pid)),
                        Keep::No => {}
                    },
                }
            }
        }
        let mut f = File::open(&self.path)?;
        let n = read_file_into(&mut self.buf, &mut f)?;
        if keep != Keep::No && self.kept_files() < self.kept_limit && is_kernel_fs(&f) {
            let k = Kept {
                file: f,
                generation: self.generation,
            };
            match keep {
                Keep::Path => drop(self.kept_paths.insert(self.path.clone(), k)),
                Keep::PidStat(pid) => drop(self.kept_pids.insert(pid, k)),
                Keep::No => {}
            }
        }
        Ok(n)
    }

    fn keep_for(base: Base) -> Keep {
        match base {
            Base::Proc | Base::Sys => Keep::Path,
            Base::Root => Keep::No,
        }
    }

    /// Starts (or stops) recording every file read and directory listed.
    pub fn set_tracing(&mut self, on: bool) {
        self.trace = on.then(Vec::new);
    }

    /// The accesses recorded since the last call (empty when tracing is off).
    pub fn take_trace(&mut self) -> Vec<Access> {
        self.trace.as_mut().map(std::mem::take).unwrap_or_default()
    }

    fn note(&mut self, dir: bool) {
        if let Some(t) = &mut self.trace {
            let p = self.path.clone();
            t.push(if dir { Access::Dir(p) } else { Access::File(p) });
        }
    }

    /// The host root.
    pub fn root(&self) -> &HostRoot {
        &self.root
    }

    /// Points the sampler at another host root (used to replay a pair of captured trees); closes
    /// the kept files.
    pub fn set_root(&mut self, root: HostRoot) {
        self.root = root;
        self.kept_paths.clear();
        self.kept_pids.clear();
    }

    /// The statfs runner.
    pub fn statfs_mut(&mut self) -> &mut Statfs {
        &mut self.statfs
    }

    /// statfs of a host mount point (looked up under the root filesystem).
    ///
    /// With `inline`, statfs runs on the calling thread without a timeout (see
    /// [`Statfs::stat_inline`]).
    pub fn statfs_mount(&mut self, mount_point: &str, inline: bool) -> Result<FsSpace, Error> {
        let p = self.root.host_path(mount_point);
        if inline {
            self.statfs.stat_inline(&p)
        } else {
            self.statfs.stat(&p)
        }
    }

    fn build(&mut self, base: Base, parts: &[&dyn AsRef<OsStr>]) {
        let b = match base {
            Base::Proc => &self.root.proc,
            Base::Sys => &self.root.sys,
            Base::Root => &self.root.rootfs,
        };
        let s = self.path.as_mut_os_string();
        s.clear();
        s.push(b.as_os_str());
        for p in parts {
            self.path.push(p.as_ref());
        }
    }

    /// The full path of `parts` under `base` (allocates; for messages and directory listing).
    pub fn path_of(&self, base: Base, parts: &[&dyn AsRef<OsStr>]) -> PathBuf {
        let mut p = match base {
            Base::Proc => self.root.proc.clone(),
            Base::Sys => self.root.sys.clone(),
            Base::Root => self.root.rootfs.clone(),
        };
        for part in parts {
            p.push(part.as_ref());
        }
        p
    }

    /// Reads `parts` joined under `base` to the end; the bytes live until the next read.
    pub fn read(&mut self, base: Base, parts: &[&dyn AsRef<OsStr>]) -> Result<&[u8], Error> {
        self.build(base, parts);
        self.note(false);
        match self.load(Self::keep_for(base)) {
            Ok(n) => Ok(&self.buf[..n]),
            Err(source) => Err(Error::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Like [`Sampler::read`] but as UTF-8 text.
    pub fn read_text(&mut self, base: Base, parts: &[&dyn AsRef<OsStr>]) -> Result<&str, Error> {
        self.build(base, parts);
        self.note(false);
        let n = match self.load(Self::keep_for(base)) {
            Ok(n) => n,
            Err(source) => {
                return Err(Error::Io {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        match std::str::from_utf8(&self.buf[..n]) {
            Ok(s) => Ok(s),
            Err(e) => Err(Error::Parse {
                path: self.path.clone(),
                source: ParseError::new(
                    "file",
                    line_of(&self.buf[..e.valid_up_to()]),
                    ParseErrorKind::Malformed("UTF-8"),
                ),
            }),
        }
    }

    /// Names of the entries of a directory under `base` (allocates; directories are small except
    /// /proc, where the caller uses [`Sampler::list_pids`]).
    pub fn list_dir(
        &mut self,
        base: Base,
        parts: &[&dyn AsRef<OsStr>],
    ) -> Result<Vec<std::ffi::OsString>, Error> {
        self.build(base, parts);
        self.note(true);
        let rd = std::fs::read_dir(&self.path).map_err(|source| Error::Io {
            path: self.path.clone(),
            source,
        })?;
        let mut out = Vec::new();
        for e in rd {
            match e {
                Ok(e) => out.push(e.file_name()),
                Err(source) => {
                    return Err(Error::Io {
                        path: self.path.clone(),
                        source,
                    });
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Fills `out` with the numeric entries of the proc root (process ids), ascending.
    ///
    /// Reads the directory with `getdents64` into a reused 64 KiB buffer and parses the names in
    /// place: no allocation per entry, and two or three calls for a few thousand processes.
    pub fn list_pids(&mut self, out: &mut Vec<u32>) -> Result<(), Error> {
        out.clear();
        self.build(Base::Proc, &[]);
        self.note(true);
        let io_err = |source| Error::Io {
            path: self.root.proc.clone(),
            source,
        };
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(&self.root.proc)
            .map_err(io_err)?;
        if self.dents.len() < 64 * 1024 {
            self.dents.resize(64 * 1024, 0);
        }
        loop {
            // SAFETY: the descriptor is open for the lifetime of `dir`, and the kernel writes at
            // most `len` bytes into the buffer, which is valid and writable for that length.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_getdents64,
                    dir.as_raw_fd(),
                    self.dents.as_mut_ptr(),
                    self.dents.len(),
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(io_err(e));
            }
            let Ok(n) = usize::try_from(n) else { break };
            if n == 0 {
                break;
            }
            let mut rest = self.dents.get(..n).unwrap_or_default();
            // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
            while rest.len() >= 19 {
                let reclen = usize::from(u16::from_ne_bytes([rest[16], rest[17]]));
                if reclen < 19 || reclen > rest.len() {
                    return Err(io_err(io::Error::other("malformed getdents64 record")));
                }
                let name = &rest[19..reclen];
                let name = &name[..name.iter().position(|&c| c == 0).unwrap_or(name.len())];
                if let Some(pid) = std::str::from_utf8(name)
                    .ok()
                    .and_then(crate::num::parse_u64)
                    .and_then(|v| u32::try_from(v).ok())
                {
                    out.push(pid);
                }
                rest = &rest[reclen..];
            }
        }
        if !out.is_sorted() {
            out.sort_unstable();
        }
        Ok(())
    }

    /// Reads `{proc}/{pid}/{file}` (a reused path, no allocation on success). `stat`, read for
    /// every process in every collection, is kept open by pid (see the module docs); other files
    /// are opened, read and closed.
    pub fn read_pid(&mut self, pid: u32, file: &str) -> Result<&[u8], Error> {
        let mut num = itoa_buf::Buf::default();
        let pid_s = num.format(pid);
        self.build(Base::Proc, &[&pid_s, &file]);
        self.note(false);
        let keep = if file == "stat" {
            Keep::PidStat(pid)
        } else {
            Keep::No
        };
        match self.load(keep) {
            Ok(n) => Ok(&self.buf[..n]),
            Err(source) => Err(Error::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Whether `parts` exists under `base`.
    pub fn exists(&mut self, base: Base, parts: &[&dyn AsRef<OsStr>]) -> bool {
        self.build(base, parts);
        self.path.exists()
    }
}

fn line_of(valid: &[u8]) -> usize {
    valid.iter().filter(|&&b| b == b'\n').count() + 1
}

/// Opens `path` and reads it to the end into `buf` (grown as needed, never shrunk); returns the
/// length. No `statx`, no `lseek`: one open, reads, close.
///
/// The size the file claims is never used. Reading stops at a read that returns fewer bytes than
/// asked for: for regular files that is the end, and procfs (seq_file, `cmdline`) and sysfs files
/// fill the whole buffer while they have more to give, so a short read is their end as well. That
/// saves the extra `read` returning 0 on every file (a quarter of a collection's syscalls).
pub fn read_into(buf: &mut Vec<u8>, path: &Path) -> io::Result<usize> {
    let mut f = File::open(path)?;
    read_file_into(buf, &mut f)
}

/// Reads an open file from its current position to the end, as [`read_into`].
fn read_file_into(buf: &mut Vec<u8>, f: &mut File) -> io::Result<usize> {
    fill(buf, |chunk, _| f.read(chunk))
}

/// Reads a kept file from offset 0 to the end with `pread` (the same short-read rule as
/// [`read_into`]); procfs and sysfs regenerate the content on a read at offset 0.
fn pread_into(buf: &mut Vec<u8>, f: &File) -> io::Result<usize> {
    fill(buf, |chunk, at| f.read_at(chunk, at as u64))
}

/// Fills `buf` from its start with `read(chunk, offset)` calls until a short read (the end, see
/// [`read_into`]), growing the buffer while reads fill it; returns the bytes read.
fn fill(
    buf: &mut Vec<u8>,
    mut read: impl FnMut(&mut [u8], usize) -> io::Result<usize>,
) -> io::Result<usize> {
    if buf.len() < 4096 {
        buf.resize(4096, 0);
    }
    let mut n = 0;
    loop {
        if n == buf.len() {
            let len = buf.len();
            buf.resize(len * 2, 0);
        }
        let want = buf.len() - n;
        match read(&mut buf[n..], n) {
            Ok(0) => return Ok(n),
            Ok(k) if k < want => return Ok(n + k),
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

mod itoa_buf {
    /// Formats a u32 into a stack buffer.
    #[derive(Debug, Default)]
    pub(super) struct Buf {
        bytes: [u8; 10],
    }

    impl Buf {
        pub(super) fn format(&mut self, mut v: u32) -> &str {
            let mut i = self.bytes.len();
            loop {
                i -= 1;
                self.bytes[i] = b'0' + (v % 10) as u8;
                v /= 10;
                if v == 0 {
                    break;
                }
            }
            // Only ASCII digits were written.
            std::str::from_utf8(&self.bytes[i..]).unwrap_or("0")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Condvar, Mutex};
    use std::time::Instant;

    #[test]
    fn formats_pids() {
        let mut b = itoa_buf::Buf::default();
        assert_eq!(b.format(0), "0");
        assert_eq!(b.format(4_294_967_295), "4294967295");
    }

    #[test]
    fn reads_files_larger_than_the_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        let mut buf = Vec::new();
        let n = read_into(&mut buf, &p).unwrap();
        assert_eq!(&buf[..n], &data[..]);
        assert!(read_into(&mut buf, &dir.path().join("missing")).is_err());
    }

    fn cpu_ticks(stat: &[u8]) -> u64 {
        let p = crate::proc::pid_stat::parse(std::str::from_utf8(stat).unwrap()).unwrap();
        p.utime + p.stime
    }

    #[test]
    fn kept_pid_stat_gives_fresh_content() {
        let mut s = Sampler::new(HostRoot::default(), Statfs::new(Duration::from_secs(1)));
        let me = std::process::id();
        let first = cpu_ticks(s.read_pid(me, "stat").unwrap());
        assert_eq!(s.kept_files(), 1, "/proc/<pid>/stat is kept open");
        // Burn CPU until the kernel's tick counter moves (bounded: at most 5 s).
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut x = 0u64;
        let mut later = first;
        while later == first && Instant::now() < deadline {
            for i in 0..1_000_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
            later = cpu_ticks(s.read_pid(me, "stat").unwrap());
            assert_eq!(s.kept_files(), 1, "re-read through the same descriptor");
        }
        assert!(
            later > first,
            "kept descriptor returned stale data: {first} -> {later}"
        );

        // A host-wide seq_file: /proc/uptime advances through the kept descriptor too.
        let up = |s: &mut Sampler| {
            crate::proc::uptime::parse(s.read_text(Base::Proc, &[&"uptime"]).unwrap())
                .unwrap()
                .uptime_secs
        };
        let a = up(&mut s);
        assert_eq!(s.kept_files(), 2);
        std::thread::sleep(Duration::from_millis(30));
        let b = up(&mut s);
        assert!(b > a, "{a} -> {b}");
        assert_eq!(s.kept_files(), 2);
    }

    #[test]
    fn kept_descriptor_of_an_exited_process_is_closed() {
        let mut s = Sampler::new(HostRoot::default(), Statfs::new(Duration::from_secs(1)));
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        assert!(!s.read_pid(pid, "stat").unwrap().is_empty());
        assert_eq!(s.kept_files(), 1);
        child.kill().unwrap();
        child.wait().unwrap();
        let e = s.read_pid(pid, "stat").unwrap_err();
        assert!(e.is_not_found(), "{e}");
        assert_eq!(s.kept_files(), 0);
    }

    #[test]
    fn kept_files_limit_sweep_and_regular_files() {
        let me = std::process::id();
        let mut s = Sampler::new(HostRoot::default(), Statfs::new(Duration::from_secs(1)));
        s.set_kept_files_limit(1);
        s.read_pid(me, "stat").unwrap();
        s.read_text(Base::Proc, &[&"loadavg"]).unwrap();
        s.read_text(Base::Proc, &[&"loadavg"]).unwrap();
        assert_eq!(
            s.kept_files(),
            1,
            "past the limit files are opened and closed"
        );
        s.sweep_kept();
        assert_eq!(s.kept_files(), 1, "read during this collection");
        s.sweep_kept();
        assert_eq!(s.kept_files(), 0, "not read since the last sweep");
        s.set_kept_files_limit(0);
        s.read_pid(me, "stat").unwrap();
        assert_eq!(s.kept_files(), 0);

        // Regular files (a captured tree) are never kept: they can be replaced under their name.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc")).unwrap();
        std::fs::write(dir.path().join("proc/loadavg"), "1").unwrap();
        let mut s = Sampler::new(
            HostRoot::under(dir.path()),
            Statfs::new(Duration::from_secs(1)),
        );
        assert_eq!(s.read_text(Base::Proc, &[&"loadavg"]).unwrap(), "1");
        assert_eq!(s.kept_files(), 0);
        std::fs::write(dir.path().join("proc/loadavg"), "2").unwrap();
        assert_eq!(s.read_text(Base::Proc, &[&"loadavg"]).unwrap(), "2");
    }

    #[test]
    fn lists_pids_like_read_dir() {
        let mut s = Sampler::new(HostRoot::default(), Statfs::new(Duration::from_secs(1)));
        let mut got = Vec::new();
        s.list_pids(&mut got).unwrap();
        assert!(got.contains(&std::process::id()));
        assert!(got.is_sorted());
        // A fixture tree (a regular directory) with more entries than one getdents64 buffer.
        let dir = tempfile::tempdir().unwrap();
        let proc = dir.path().join("proc");
        std::fs::create_dir_all(&proc).unwrap();
        let want: Vec<u32> = (1..=3000).map(|i| i * 7).collect();
        for p in &want {
            std::fs::create_dir(proc.join(p.to_string())).unwrap();
        }
        for other in ["self", "net", "12x", "99999999999"] {
            std::fs::create_dir(proc.join(other)).unwrap();
        }
        std::fs::write(proc.join("stat"), "").unwrap();
        let mut s = Sampler::new(
            HostRoot::under(dir.path()),
            Statfs::new(Duration::from_secs(1)),
        );
        s.list_pids(&mut got).unwrap();
        assert_eq!(got, want);
        let mut s = Sampler::new(
            HostRoot::under(dir.path().join("missing")),
            Statfs::new(Duration::from_secs(1)),
        );
        assert!(s.list_pids(&mut got).is_err());
    }

    #[test]
    fn host_root_paths() {
        let r = HostRoot::under("/x");
        assert_eq!(r.proc, PathBuf::from("/x/proc"));
        assert_eq!(r.host_path("/var/lib"), PathBuf::from("/x/var/lib"));
        assert_eq!(HostRoot::default().host_path("/"), PathBuf::from("/"));
    }

    /// A statfs function that blocks on one path until released, as a hung NFS mount would.
    /// (What this tests: the timeout and recovery logic around a blocking call. It does not mount
    /// a real hung filesystem, which needs privileges this machine's tests do not have.)
    #[test]
    fn statfs_times_out_on_a_blocking_path_and_recovers() {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let g2 = Arc::clone(&gate);
        let func: StatfsFn = Arc::new(move |p: &Path| {
            if p == Path::new("/hang") {
                let (lock, cv) = &*g2;
                let mut open = lock.lock().unwrap();
                let deadline = Instant::now() + Duration::from_secs(10);
                while !*open && Instant::now() < deadline {
                    open = cv.wait_timeout(open, Duration::from_millis(50)).unwrap().0;
                }
            }
            Ok(FsSpace {
                total: 100,
                free: 50,
                available: 40,
                files: 10,
                files_free: 5,
            })
        });
        let mut s = Statfs::with_fn(Duration::from_millis(100), func);
        assert_eq!(s.stat(Path::new("/ok")).unwrap().total, 100);

        let t0 = Instant::now();
        let e = s.stat(Path::new("/hang")).unwrap_err();
        assert!(
            matches!(
                e,
                Error::StatfsTimeout {
                    timeout_ms: 100,
                    ..
                }
            ),
            "{e}"
        );
        assert!(t0.elapsed() < Duration::from_secs(5));

        // The next cycle answers the hung path at once and other paths still work.
        let t1 = Instant::now();
        assert!(matches!(
            s.stat(Path::new("/hang")).unwrap_err(),
            Error::StatfsStillBlocked { .. }
        ));
        assert!(t1.elapsed() < Duration::from_millis(50));
        assert_eq!(s.stat(Path::new("/ok")).unwrap().available, 40);
        assert_eq!(s.blocked_paths().count(), 1);

        // Once the old call returns, the path is tried again.
        {
            let (lock, cv) = &*gate;
            *lock.lock().unwrap() = true;
            cv.notify_all();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match s.stat(Path::new("/hang")) {
                Ok(sp) => {
                    assert_eq!(sp.free, 50);
                    break;
                }
                Err(Error::StatfsStillBlocked { .. }) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(s.blocked_paths().count(), 0);
    }

    #[test]
    fn real_statvfs() {
        let sp = statvfs(Path::new("/")).unwrap();
        assert!(sp.total > 0 && sp.available <= sp.total);
        assert!(statvfs(Path::new("/definitely/not/here")).is_err());
    }
}
