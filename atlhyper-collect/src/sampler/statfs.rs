//! statfs of mount points: [`statvfs`] itself, and [`Statfs`], which runs it on a worker thread
//! with a timeout so a dead NFS server never stalls a collection.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::time::Duration;

use crate::error::Error;

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Condvar, Mutex};
    use std::time::Instant;

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
