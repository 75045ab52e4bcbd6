//! The floor of a process scan: what the kernel charges per process for each of the cheapest
//! reads a scan could make, each alone, over every process /proc lists. No parsing beyond the
//! pid digits of the listing, no allocation per process: the sum of these is the least a scan
//! that makes these calls can cost.
//!
//! - listing /proc: `std::fs::read_dir` (a `String` per entry), `getdents64` on /proc opened and
//!   closed each time with a 64 KiB buffer, and on a descriptor kept open, rewound with `lseek`,
//!   with a 256 KiB buffer;
//! - `clock_gettime` on each process's CPU clock (needs no descriptor), and on numbers that name
//!   no process (what probing newly handed-out pids mostly meets);
//! - `pread` of `statm` and of `stat` through descriptors kept open;
//! - `statm` opened, read and closed (what a scan without kept descriptors pays);
//! - `getppid`, the cost of entering the kernel at all on this machine.
//!
//! Every figure is this process's CPU time divided by the number of processes, the median of
//! paired rounds (all pieces in each round, the order rotating) so load on a shared machine hits
//! all alike. `ATL_BENCH_PROCS=N` first starts idle `sleep` children until /proc lists about N.
//!
//! ```sh
//! ATL_BENCH_PROCS=2000 cargo bench -p atlhyper-collect --bench scan_floor
//! ```

use std::fs::File;
use std::hint::black_box;
use std::io::Read;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::time::Duration;

use atlhyper_testkit::{Sleepers, median, own_cpu_time, process_count};
use criterion::{Criterion, criterion_group, criterion_main};

/// The pids among the `linux_dirent64` records of `records`, parsed in place.
fn pids_in(mut records: &[u8], out: &mut Vec<u32>) {
    while records.len() >= 19 {
        let reclen = usize::from(u16::from_ne_bytes([records[16], records[17]]));
        if reclen < 19 || reclen > records.len() {
            return;
        }
        let mut pid = 0u32;
        let mut digits = 0;
        for &c in &records[19..reclen] {
            match c {
                b'0'..=b'9' => {
                    pid = pid.wrapping_mul(10).wrapping_add(u32::from(c - b'0'));
                    digits += 1;
                }
                0 => break,
                _ => {
                    digits = 0;
                    break;
                }
            }
        }
        if digits > 0 {
            out.push(pid);
        }
        records = &records[reclen..];
    }
}

/// Every `getdents64` batch of `fd` from its current position.
fn getdents_all(fd: RawFd, buf: &mut [u8], out: &mut Vec<u32>) {
    loop {
        // SAFETY: `fd` is an open directory and the kernel writes at most `buf.len()` bytes.
        let n = unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) };
        let Ok(n) = usize::try_from(n) else { return };
        if n == 0 {
            return;
        }
        pids_in(&buf[..n], out);
    }
}

fn list_read_dir(out: &mut Vec<u32>) {
    out.clear();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() {
            out.push(p);
        }
    }
}

fn list_getdents_open(buf: &mut [u8], out: &mut Vec<u32>) {
    out.clear();
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open("/proc")
        .unwrap();
    getdents_all(dir.as_raw_fd(), &mut buf[..64 * 1024], out);
}

fn list_getdents_kept(dir: &File, buf: &mut [u8], out: &mut Vec<u32>) {
    out.clear();
    // SAFETY: `dir` is open; rewinding a directory is lseek to 0.
    unsafe { libc::lseek(dir.as_raw_fd(), 0, libc::SEEK_SET) };
    getdents_all(dir.as_raw_fd(), buf, out);
}

fn clock_ns(pid: u32) -> u64 {
    let id = (!(pid as libc::clockid_t) << 3) | 2;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the kernel validates the clock id.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts.tv_nsec as u64
}

/// One kept descriptor of `file` for every pid (those that exited meanwhile are left out).
fn open_all(pids: &[u32], file: &str) -> Vec<File> {
    pids.iter()
        .filter_map(|p| File::open(format!("/proc/{p}/{file}")).ok())
        .collect()
}

fn pread_all(files: &[File], buf: &mut [u8]) -> usize {
    files.iter().map(|f| f.read_at(buf, 0).unwrap_or(0)).sum()
}

fn open_read_close_all(pids: &[u32], buf: &mut [u8]) -> usize {
    let mut path = String::with_capacity(32);
    let mut total = 0;
    for p in pids {
        use std::fmt::Write;
        path.clear();
        let _ = write!(path, "/proc/{p}/statm");
        if let Ok(mut f) = File::open(&path) {
            total += f.read(buf).unwrap_or(0);
        }
    }
    total
}

const PIECES: [&str; 9] = [
    "list /proc, std read_dir",
    "list /proc, getdents64, opened each time, 64 KiB",
    "list /proc, getdents64, kept and rewound, 256 KiB",
    "clock_gettime on the pid's CPU clock",
    "clock_gettime on a number that names no process",
    "pread statm, kept descriptor",
    "pread stat, kept descriptor",
    "statm opened, read, closed",
    "getppid (entering the kernel)",
];

struct Floor {
    pids: Vec<u32>,
    /// As many numbers as there are processes, none of them a process (gaps between pids): what
    /// probing a range of newly handed-out pids mostly meets.
    absent: Vec<u32>,
    list: Vec<u32>,
    dents: Vec<u8>,
    proc_dir: File,
    statm: Vec<File>,
    stat: Vec<File>,
    buf: Vec<u8>,
}

impl Floor {
    fn new() -> Self {
        let mut list = Vec::new();
        list_read_dir(&mut list);
        list.sort_unstable();
        Self {
            statm: open_all(&list, "statm"),
            stat: open_all(&list, "stat"),
            absent: (1..)
                .filter(|n| list.binary_search(n).is_err())
                .take(list.len())
                .collect(),
            pids: list.clone(),
            list,
            dents: vec![0; 256 * 1024],
            proc_dir: std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECTORY)
                .open("/proc")
                .unwrap(),
            buf: vec![0; 4096],
        }
    }

    fn run(&mut self, piece: usize) {
        match piece {
            0 => list_read_dir(&mut self.list),
            1 => list_getdents_open(&mut self.dents, &mut self.list),
            2 => list_getdents_kept(&self.proc_dir, &mut self.dents, &mut self.list),
            3 => {
                let s: u64 = self.pids.iter().map(|&p| clock_ns(p)).sum();
                black_box(s);
            }
            4 => {
                let s: u64 = self.absent.iter().map(|&p| clock_ns(p)).sum();
                black_box(s);
            }
            5 => drop(black_box(pread_all(&self.statm, &mut self.buf))),
            6 => drop(black_box(pread_all(&self.stat, &mut self.buf))),
            7 => drop(black_box(open_read_close_all(&self.pids, &mut self.buf))),
            _ => {
                for _ in &self.pids {
                    // SAFETY: getppid has no arguments and cannot fail.
                    black_box(unsafe { libc::syscall(libc::SYS_getppid) });
                }
            }
        }
        black_box(&self.list);
    }
}

fn scan_floor(c: &mut Criterion) {
    let _sleepers = Sleepers::from_env();
    let mut f = Floor::new();
    let procs = f.pids.len();
    eprintln!(
        "{procs} processes, {} statm and {} stat descriptors kept",
        f.statm.len(),
        f.stat.len()
    );

    let rounds = 60;
    let mut per_proc_ns: Vec<Vec<f64>> = vec![Vec::new(); PIECES.len()];
    for round in 0..rounds {
        for k in 0..PIECES.len() {
            let piece = (k + round) % PIECES.len();
            let t = own_cpu_time();
            f.run(piece);
            let ns = (own_cpu_time() - t).as_nanos() as f64;
            per_proc_ns[piece].push(ns / procs.max(1) as f64);
        }
    }
    eprintln!("CPU per process, median of {rounds} paired rounds, {procs} processes:");
    for (name, v) in PIECES.iter().zip(&mut per_proc_ns) {
        eprintln!("  {:>7.3} us  {name}", median(v) / 1000.0);
    }
    assert!(
        f.list.len() + 64 >= procs && process_count() + 64 >= procs,
        "listing saw {} of {procs}",
        f.list.len()
    );

    let mut g = c.benchmark_group(format!("scan_floor_{procs}_procs_cpu"));
    for (piece, name) in PIECES.iter().enumerate() {
        g.bench_function(*name, |b| {
            b.iter_custom(|n| {
                let t = own_cpu_time();
                for _ in 0..n {
                    f.run(piece);
                }
                own_cpu_time() - t
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = scan_floor
}
criterion_main!(benches);
