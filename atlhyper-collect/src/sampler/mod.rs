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
//! few hundred bytes of kernel memory per kept file (one per process: the file the process scan
//! reads, `statm` or `stat`; and `stat` of each reported process), bounded by the limit (default `min(RLIMIT_NOFILE soft / 2, 8192)`);
//! past it files are opened, read and closed as before. A kept descriptor pins the kernel's `struct pid`, not the number, so
//! a reused pid can never be read through an old descriptor: reading a process that exited fails
//! (`ESRCH`), the descriptor is closed and the path opened afresh. Descriptors not read during a
//! collection (vanished processes, interfaces, mounts) are closed at its end
//! ([`Sampler::sweep_kept`]). Regular files (captured fixture trees) are never kept: they can be
//! replaced under the same name.

mod cpu_clock;
mod dir;
mod host_root;
mod kept;
mod read;
mod statfs;

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::path::PathBuf;

pub use host_root::HostRoot;
pub use kept::{default_kept_files_limit, raise_open_files_limit};
pub use read::read_into;
pub use statfs::{FsSpace, Statfs, StatfsFn, statvfs};

use crate::error::{Error, ParseError, ParseErrorKind};
use kept::{Keep, KeptFiles};

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

/// A file of `/proc/<pid>/` read by the process scan ([`Sampler::scan_pid`]).
#[derive(Debug)]
pub struct ScanRead<'a> {
    /// The content, valid until the next read.
    pub bytes: &'a [u8],
    /// Read through a descriptor kept open since an earlier collection: the same process as
    /// then (a kept descriptor pins the process, not its number). `false` when the file was
    /// opened now (a process not seen before, or a pid that names another process now).
    pub same_process: bool,
}

/// Reads files under a [`HostRoot`] into one reused buffer.
#[derive(Debug)]
pub struct Sampler {
    root: HostRoot,
    /// The contents of the last file read.
    buf: Vec<u8>,
    /// The path of the last file read (reused: no allocation per read).
    path: PathBuf,
    statfs: Statfs,
    trace: Option<Vec<Access>>,
    kept: KeptFiles,
    /// The `getdents64` buffer of [`Sampler::list_pids`].
    dents: Vec<u8>,
    /// The proc root's directory, kept open between listings when it is a procfs.
    proc_dir: Option<File>,
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
            kept: KeptFiles::new(default_kept_files_limit()),
            dents: Vec::new(),
            proc_dir: None,
        }
    }

    /// At most `max` procfs/sysfs files stay open between collections (0: none; every file is
    /// opened, read and closed). Lowering the limit closes all kept files. See the module docs.
    pub fn set_kept_files_limit(&mut self, max: usize) {
        self.kept.set_limit(max);
    }

    /// How many files are kept open now.
    pub fn kept_files(&self) -> usize {
        self.kept.len()
    }

    /// Closes the kept files not read since the previous call (processes that exited, devices
    /// that went away); call once at the end of each collection.
    pub fn sweep_kept(&mut self) {
        self.kept.sweep();
    }

    /// Reads `self.path` into `self.buf`, through a kept descriptor when there is one; the
    /// length, and whether a kept descriptor was read.
    fn load_kept(&mut self, keep: Keep) -> io::Result<(usize, bool)> {
        if let Some(n) = self.kept.reread(keep, &self.path, &mut self.buf) {
            return Ok((n, true));
        }
        let mut f = File::open(&self.path)?;
        let n = read::read_file_into(&mut self.buf, &mut f)?;
        self.kept.offer(keep, &self.path, f);
        Ok((n, false))
    }

    /// [`Sampler::load_kept`] without saying how.
    fn load(&mut self, keep: Keep) -> io::Result<usize> {
        self.load_kept(keep).map(|(n, _)| n)
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
        self.kept.clear();
        self.proc_dir = None;
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

    /// Names of the entries of a directory under `base`, sorted (allocates; directories are
    /// small except /proc, where the caller uses [`Sampler::list_pids`]).
    pub fn list_dir(
        &mut self,
        base: Base,
        parts: &[&dyn AsRef<OsStr>],
    ) -> Result<Vec<OsString>, Error> {
        self.build(base, parts);
        self.note(true);
        dir::sorted_names(&self.path).map_err(|source| Error::Io {
            path: self.path.clone(),
            source,
        })
    }

    /// Fills `out` with the numeric entries of the proc root (process ids), ascending.
    ///
    /// Reads the directory with `getdents64` into a reused 64 KiB buffer and parses the names in
    /// place: no allocation per entry, and two or three calls for a few thousand processes. A
    /// procfs root stays open and is rewound for the next listing.
    pub fn list_pids(&mut self, out: &mut Vec<u32>) -> Result<(), Error> {
        out.clear();
        self.build(Base::Proc, &[]);
        self.note(true);
        dir::pids(&self.root.proc, &mut self.proc_dir, &mut self.dents, out).map_err(|source| {
            Error::Io {
                path: self.root.proc.clone(),
                source,
            }
        })
    }

    /// Reads `{proc}/{pid}/{file}`, opened and closed (a reused path, no allocation on success).
    pub fn read_pid(&mut self, pid: u32, file: &str) -> Result<&[u8], Error> {
        self.build_pid(pid, file);
        match self.load(Keep::No) {
            Ok(n) => Ok(&self.buf[..n]),
            Err(source) => Err(Error::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Reads `{proc}/{pid}/{file}`, the one file of the process that every collection reads:
    /// kept open by pid (see the module docs) and re-read with one `pread`. Says whether the
    /// descriptor was kept since an earlier collection (the same process as then).
    pub fn scan_pid(&mut self, pid: u32, file: &str) -> Result<ScanRead<'_>, Error> {
        self.build_pid(pid, file);
        match self.load_kept(Keep::Pid(pid)) {
            Ok((n, same_process)) => Ok(ScanRead {
                bytes: &self.buf[..n],
                same_process,
            }),
            Err(source) => Err(Error::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Reads `{proc}/{pid}/stat` of a reported process, kept open by pid while it stays reported
    /// (re-read with one `pread`; closed by the sweep of a collection that did not read it).
    pub fn reported_pid_stat(&mut self, pid: u32) -> Result<&[u8], Error> {
        self.build_pid(pid, "stat");
        match self.load(Keep::PidStat(pid)) {
            Ok(n) => Ok(&self.buf[..n]),
            Err(source) => Err(Error::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Keeps the descriptor of [`Sampler::scan_pid`] for `pid` open through this collection's
    /// sweep without reading it: the caller knows its content is unchanged. Whether there is one.
    pub fn keep_scan_pid(&mut self, pid: u32) -> bool {
        self.kept.touch(Keep::Pid(pid))
    }

    /// Like [`Sampler::keep_scan_pid`], for the kept descriptor of [`Sampler::reported_pid_stat`].
    pub fn keep_reported_pid_stat(&mut self, pid: u32) -> bool {
        self.kept.touch(Keep::PidStat(pid))
    }

    /// Whether the mount table `parts` under `base` (a `/proc/<pid>/mountinfo` read before with
    /// [`Sampler::read_text`]) is unchanged since that read, by the kernel's own change
    /// notification on the kept descriptor; no read. `false` when it cannot tell (not kept: a
    /// captured tree, descriptors not kept), so the caller reads the file.
    pub fn mount_table_unchanged(&mut self, base: Base, parts: &[&dyn AsRef<OsStr>]) -> bool {
        self.build(base, parts);
        self.kept.mount_table_unchanged(&self.path)
    }

    fn build_pid(&mut self, pid: u32, file: &str) {
        let mut num = PidText::default();
        let pid_s = num.format(pid);
        self.build(Base::Proc, &[&pid_s, &file]);
        self.note(false);
    }

    /// The on-CPU time of process `pid`, all threads, nanoseconds, from its process CPU clock
    /// (`clock_gettime`; no file read). Only meaningful when [`Sampler::process_clocks_usable`].
    pub fn process_cpu_ns(&mut self, pid: u32) -> io::Result<u64> {
        cpu_clock::process_cpu_ns(pid)
    }

    /// Whether process CPU clocks describe the processes under this root's procfs: it is the
    /// live procfs of this process's pid namespace and the kernel has the clocks.
    pub fn process_clocks_usable(&self) -> bool {
        cpu_clock::usable_for(&self.root.proc)
    }

    /// `parts` under `base` with every symbolic link resolved (hwmon's `device` link leads to
    /// the bus and device a chip sits on).
    pub fn resolve(&mut self, base: Base, parts: &[&dyn AsRef<OsStr>]) -> Result<PathBuf, Error> {
        self.build(base, parts);
        self.note(false);
        std::fs::canonicalize(&self.path).map_err(|source| Error::Io {
            path: self.path.clone(),
            source,
        })
    }

    /// Whether `parts` exists under `base`.
    pub fn exists(&mut self, base: Base, parts: &[&dyn AsRef<OsStr>]) -> bool {
        self.build(base, parts);
        self.path.exists()
    }
}

/// The line number of the end of `valid` (for the UTF-8 error of a file).
fn line_of(valid: &[u8]) -> usize {
    valid.iter().filter(|&&b| b == b'\n').count() + 1
}

/// A pid formatted in a stack buffer, for building `/proc/<pid>/...` without allocating.
#[derive(Debug, Default)]
struct PidText {
    bytes: [u8; 10],
}

impl PidText {
    fn format(&mut self, mut v: u32) -> &str {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_pids() {
        let mut b = PidText::default();
        assert_eq!(b.format(0), "0");
        assert_eq!(b.format(4_294_967_295), "4294967295");
    }

    #[test]
    fn reads_paths_under_each_base_and_reports_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc/net")).unwrap();
        std::fs::write(dir.path().join("proc/net/dev"), b"a\nb\xff\n").unwrap();
        std::fs::write(dir.path().join("hostname"), "box\n").unwrap();
        let mut s = Sampler::new(
            HostRoot::under(dir.path()),
            Statfs::new(Duration::from_secs(1)),
        );
        s.set_tracing(true);
        assert_eq!(s.read_text(Base::Root, &[&"hostname"]).unwrap(), "box\n");
        let e = s.read_text(Base::Proc, &[&"net", &"dev"]).unwrap_err();
        assert!(
            matches!(e, Error::Parse { ref source, .. } if source.line == 2),
            "{e}"
        );
        assert_eq!(
            s.read(Base::Proc, &[&"net", &"dev"]).unwrap(),
            b"a\nb\xff\n"
        );
        let e = s.read(Base::Sys, &[&"missing"]).unwrap_err();
        assert!(e.to_string().contains("sys/missing"), "{e}");
        assert!(s.exists(Base::Proc, &[&"net"]));
        assert_eq!(s.list_dir(Base::Proc, &[]).unwrap(), ["net"]);
        assert_eq!(
            s.take_trace(),
            [
                Access::File(dir.path().join("hostname")),
                Access::File(dir.path().join("proc/net/dev")),
                Access::File(dir.path().join("proc/net/dev")),
                Access::File(dir.path().join("sys/missing")),
                Access::Dir(dir.path().join("proc")),
            ]
        );
    }
}
