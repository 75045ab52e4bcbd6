//! Kept file descriptors: procfs/sysfs files left open between collections and re-read with
//! `pread` at offset 0 (see the [`crate::sampler`] docs for why that is safe and what it costs).

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::read::pread_into;

/// An open procfs/sysfs file, and the collection that last read it.
#[derive(Debug)]
struct Kept {
    file: File,
    generation: u64,
}

/// Which kept-descriptor table a read may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Keep {
    /// Never kept.
    No,
    /// Kept by path.
    Path,
    /// The one file of `/proc/<pid>/` the process scan reads every collection, kept by pid.
    Pid(u32),
    /// `/proc/<pid>/stat` of a reported process, read every collection while it is reported.
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

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit (what the Go runtime does for
/// every program since 1.19), so that [`default_kept_files_limit`] can keep one descriptor per
/// process: under systemd the soft limit is 1024 while the hard one is far higher, and a process
/// scan past the kept limit opens and closes two files per process instead of one `pread`. Call
/// it before creating a sampler; returns the soft limit now in force.
pub fn raise_open_files_limit() -> std::io::Result<libc::rlim_t> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `rl` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if rl.rlim_cur < rl.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: rl.rlim_max,
            rlim_max: rl.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit; raising the soft limit up to the hard one needs no
        // privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        rl = raised;
    }
    Ok(rl.rlim_cur)
}

/// Whether `f` is on procfs or sysfs, whose files are regenerated on every read from offset 0.
pub(super) fn is_kernel_fs(f: &File) -> bool {
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

/// The kept descriptors, by path and by pid, at most `limit` of them. A generation counter marks
/// which were read during the current collection, so [`KeptFiles::sweep`] can close the rest.
#[derive(Debug)]
pub(super) struct KeptFiles {
    limit: usize,
    by_path: HashMap<PathBuf, Kept>,
    by_pid: PidMap<Kept>,
    by_pid_stat: PidMap<Kept>,
    generation: u64,
}

impl KeptFiles {
    /// No descriptors yet, at most `limit` later.
    pub(super) fn new(limit: usize) -> Self {
        Self {
            limit,
            by_path: HashMap::new(),
            by_pid: PidMap::default(),
            by_pid_stat: PidMap::default(),
            generation: 0,
        }
    }

    /// At most `max` descriptors from now on; lowering the limit closes all of them.
    pub(super) fn set_limit(&mut self, max: usize) {
        if max < self.limit {
            self.clear();
        }
        self.limit = max;
    }

    /// How many are open.
    pub(super) fn len(&self) -> usize {
        self.by_path.len() + self.by_pid.len() + self.by_pid_stat.len()
    }

    /// Closes all of them.
    pub(super) fn clear(&mut self) {
        self.by_path.clear();
        self.by_pid.clear();
        self.by_pid_stat.clear();
    }

    /// Closes those not read since the previous sweep and starts a new generation.
    pub(super) fn sweep(&mut self) {
        let g = self.generation;
        self.by_path.retain(|_, k| k.generation == g);
        self.by_pid.retain(|_, k| k.generation == g);
        self.by_pid_stat.retain(|_, k| k.generation == g);
        self.generation = g.wrapping_add(1);
    }

    /// Re-reads the descriptor kept for `keep` (and `path`) into `buf`; the length read, or
    /// `None` when there is none. A descriptor that fails (exited process: `ESRCH`, removed
    /// device: `ENODEV`), or a process's file that reads nothing, is closed, so a fresh open
    /// gives the real answer.
    pub(super) fn reread(&mut self, keep: Keep, path: &Path, buf: &mut Vec<u8>) -> Option<usize> {
        if self.limit == 0 {
            return None;
        }
        let kept = match keep {
            Keep::No => None,
            Keep::Path => self.by_path.get_mut(path),
            Keep::Pid(pid) => self.by_pid.get_mut(&pid),
            Keep::PidStat(pid) => self.by_pid_stat.get_mut(&pid),
        }?;
        kept.generation = self.generation;
        match pread_into(buf, &kept.file) {
            Ok(n) if n > 0 => Some(n),
            // An empty sysfs attribute (an interface without `ifalias`) is its content; only a
            // process's file reads empty because the process is gone (a removed device fails).
            Ok(0) if keep == Keep::Path => Some(0),
            _ => {
                match keep {
                    Keep::Path => drop(self.by_path.remove(path)),
                    Keep::Pid(pid) => drop(self.by_pid.remove(&pid)),
                    Keep::PidStat(pid) => drop(self.by_pid_stat.remove(&pid)),
                    Keep::No => {}
                }
                None
            }
        }
    }

    /// Marks the descriptor kept for `pid` (the scan's file, [`Keep::Pid`], or a reported
    /// process's `stat`, [`Keep::PidStat`]) as used in this collection without reading it (the
    /// caller knows the content cannot have changed), so [`KeptFiles::sweep`] leaves it open.
    /// Whether there is one.
    pub(super) fn touch(&mut self, keep: Keep) -> bool {
        let g = self.generation;
        let kept = match keep {
            Keep::Pid(pid) => self.by_pid.get_mut(&pid),
            Keep::PidStat(pid) => self.by_pid_stat.get_mut(&pid),
            Keep::No | Keep::Path => None,
        };
        kept.map(|k| k.generation = g).is_some()
    }

    /// Whether the mount table kept open at `path` (a `/proc/<pid>/mountinfo`) is unchanged since
    /// it was opened or last asked: the kernel marks such a descriptor `POLLPRI` once for every
    /// change of its namespace's mount table (what util-linux's libmount waits on). When unchanged
    /// it stays kept through this collection's sweep. `false` when the file is not kept (a
    /// captured tree, the kept limit reached) or the poll fails: then the caller reads it.
    /// Meaningful only for mount tables: other procfs and sysfs files never report `POLLPRI`
    /// this way and would look unchanged forever.
    pub(super) fn mount_table_unchanged(&mut self, path: &Path) -> bool {
        let g = self.generation;
        let Some(kept) = self.by_path.get_mut(path) else {
            return false;
        };
        let mut pfd = libc::pollfd {
            fd: kept.file.as_raw_fd(),
            events: libc::POLLPRI,
            revents: 0,
        };
        // SAFETY: `pfd` is one valid pollfd for a descriptor this table owns; timeout 0 never
        // blocks.
        let rc = unsafe { libc::poll(&mut pfd, 1, 0) };
        let changed = libc::POLLPRI | libc::POLLERR | libc::POLLNVAL;
        if rc < 0 || pfd.revents & changed != 0 {
            return false;
        }
        kept.generation = g;
        true
    }

    /// Keeps `file`, just opened from `path` and read, if `keep` allows it, the limit has room and
    /// it is on procfs or sysfs (regular files can be replaced under their name); else closes it.
    pub(super) fn offer(&mut self, keep: Keep, path: &Path, file: File) {
        if keep == Keep::No || self.len() >= self.limit || !is_kernel_fs(&file) {
            return;
        }
        let k = Kept {
            file,
            generation: self.generation,
        };
        match keep {
            Keep::Path => drop(self.by_path.insert(path.to_path_buf(), k)),
            Keep::Pid(pid) => drop(self.by_pid.insert(pid, k)),
            Keep::PidStat(pid) => drop(self.by_pid_stat.insert(pid, k)),
            Keep::No => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::sampler::{Base, HostRoot, Sampler, Statfs};

    fn cpu_ticks(stat: &[u8]) -> u64 {
        let p = crate::proc::pid_stat::parse(std::str::from_utf8(stat).unwrap()).unwrap();
        p.utime + p.stime
    }

    fn live_sampler() -> Sampler {
        Sampler::new(HostRoot::default(), Statfs::new(Duration::from_secs(1)))
    }

    /// A shell in its own user and mount namespace (`unshare -rm`), which mounts a tmpfs when
    /// told to; `None` (a skip, failing in CI) where namespaces cannot be made.
    fn namespaced_shell() -> Option<std::process::Child> {
        use std::io::BufRead;
        let script =
            "echo ready; read a; mount -t tmpfs atlhyper-poll-test /tmp && echo mounted; read b";
        let spawned = std::process::Command::new("unshare")
            .args(["-rm", "sh", "-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                assert!(std::env::var_os("CI").is_none(), "unshare in CI: {e}");
                eprintln!("skipped: no unshare ({e}; not in CI)");
                return None;
            }
        };
        let mut line = String::new();
        let out = child.stdout.as_mut().unwrap();
        std::io::BufReader::new(out).read_line(&mut line).unwrap();
        if line.trim() != "ready" {
            let _ = child.kill();
            let _ = child.wait();
            assert!(
                std::env::var_os("CI").is_none(),
                "unshare -rm failed in CI: {line:?}"
            );
            eprintln!("skipped: no user and mount namespace here (not in CI)");
            return None;
        }
        Some(child)
    }

    #[test]
    fn a_kept_mount_table_says_when_it_changed() {
        use std::io::{BufRead, Write};
        let Some(mut child) = namespaced_shell() else {
            return;
        };
        let pid = child.id().to_string();
        let parts: [&dyn AsRef<std::ffi::OsStr>; 2] = [&pid, &"mountinfo"];
        let mut s = live_sampler();
        assert!(
            !s.mount_table_unchanged(Base::Proc, &parts),
            "not read yet, so not known"
        );
        let before = s.read_text(Base::Proc, &parts).unwrap().to_owned();
        assert!(!before.contains("atlhyper-poll-test"));
        assert!(s.mount_table_unchanged(Base::Proc, &parts));
        assert!(
            s.mount_table_unchanged(Base::Proc, &parts),
            "still unchanged"
        );
        // The shell mounts a tmpfs in its namespace: the kept descriptor says so once.
        child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "mounted");
        assert!(
            !s.mount_table_unchanged(Base::Proc, &parts),
            "the mount is a change"
        );
        let after = s.read_text(Base::Proc, &parts).unwrap().to_owned();
        assert!(after.contains("atlhyper-poll-test"), "{after}");
        assert!(s.mount_table_unchanged(Base::Proc, &parts), "told once");
        child.stdin.as_mut().unwrap().write_all(b"done\n").unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn kept_pid_stat_gives_fresh_content() {
        let mut s = live_sampler();
        let me = std::process::id();
        let first = cpu_ticks(s.scan_pid(me, "stat").unwrap().bytes);
        assert_eq!(s.kept_files(), 1, "/proc/<pid>/stat is kept open");
        // Burn CPU until the kernel's tick counter moves (bounded: at most 5 s).
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut x = 0u64;
        let mut later = first;
        while later == first && Instant::now() < deadline {
            for i in 0..1_000_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
            let read = s.scan_pid(me, "stat").unwrap();
            assert!(read.same_process, "read through the descriptor kept before");
            later = cpu_ticks(read.bytes);
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
    fn an_empty_sysfs_attribute_stays_kept() {
        // An interface's `ifalias` is empty unless set: kept and re-read like any other file,
        // not closed and opened again every collection.
        let Some(empty) = std::fs::read_dir("/sys/class/net")
            .unwrap()
            .flatten()
            .map(|e| e.path().join("ifalias"))
            .find(|p| std::fs::read(p).is_ok_and(|b| b.is_empty()))
        else {
            eprintln!("skipped: no interface with an empty ifalias here");
            return;
        };
        let mut kept = super::KeptFiles::new(4);
        let file = std::fs::File::open(&empty).unwrap();
        kept.offer(super::Keep::Path, &empty, file);
        assert_eq!(kept.len(), 1);
        let mut buf = vec![0; 64];
        assert_eq!(
            kept.reread(super::Keep::Path, &empty, &mut buf),
            Some(0),
            "re-read through the kept descriptor"
        );
        assert_eq!(kept.len(), 1);
    }

    #[test]
    fn open_files_limit_is_raised_to_the_hard_limit() {
        let soft = super::raise_open_files_limit().unwrap();
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `rl` is a valid, writable rlimit.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) }, 0);
        assert_eq!((rl.rlim_cur, rl.rlim_max), (soft, soft));
    }

    #[test]
    fn kept_descriptor_of_an_exited_process_is_closed() {
        let mut s = live_sampler();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let first = s.scan_pid(pid, "statm").unwrap();
        assert!(!first.bytes.is_empty() && !first.same_process);
        assert_eq!(s.kept_files(), 1);
        assert!(s.scan_pid(pid, "statm").unwrap().same_process);
        // Files read outside the scan are never kept.
        s.read_pid(pid, "status").unwrap();
        assert_eq!(s.kept_files(), 1);
        child.kill().unwrap();
        child.wait().unwrap();
        let e = s.scan_pid(pid, "statm").unwrap_err();
        assert!(e.is_not_found(), "{e}");
        assert_eq!(s.kept_files(), 0);
    }

    #[test]
    fn reported_stat_is_kept_until_the_process_exits_or_is_not_read() {
        let mut s = live_sampler();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        assert!(!s.reported_pid_stat(pid).unwrap().is_empty());
        // Beside the scan's own descriptor of the same process.
        s.scan_pid(pid, "statm").unwrap();
        assert_eq!(s.kept_files(), 2);
        s.sweep_kept();
        assert!(
            s.reported_pid_stat(pid)
                .unwrap()
                .starts_with(pid.to_string().as_bytes())
        );
        s.sweep_kept();
        assert_eq!(
            s.kept_files(),
            1,
            "statm not read in that collection: closed"
        );
        child.kill().unwrap();
        child.wait().unwrap();
        let e = s.reported_pid_stat(pid).unwrap_err();
        assert!(e.is_not_found(), "{e}");
        assert_eq!(s.kept_files(), 0);
    }

    #[test]
    fn kept_files_limit_sweep_and_regular_files() {
        let me = std::process::id();
        let mut s = live_sampler();
        s.set_kept_files_limit(1);
        s.scan_pid(me, "stat").unwrap();
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
        assert!(!s.scan_pid(me, "stat").unwrap().same_process);
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
}
