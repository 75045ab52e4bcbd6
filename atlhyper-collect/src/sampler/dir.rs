//! Directory listing: small directories by name, and the proc root's process ids with
//! `getdents64` into a reused buffer (no allocation per entry).

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Size of the `getdents64` buffer: two or three calls for a few thousand processes.
const DENTS_BUF: usize = 64 * 1024;

/// The names of `dir`'s entries, sorted.
pub(super) fn sorted_names(dir: &Path) -> io::Result<Vec<OsString>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        out.push(e?.file_name());
    }
    out.sort();
    Ok(out)
}

/// Appends the numeric entries of `proc` (process ids) to `out`, ascending; `dents` is the reused
/// `getdents64` buffer. `kept` holds the directory between calls when it is a procfs (rewound with
/// `lseek`: no open and close per listing; the entries are generated afresh from offset 0); a
/// regular directory (a captured tree) is opened each time.
pub(super) fn pids(
    proc: &Path,
    kept: &mut Option<File>,
    dents: &mut Vec<u8>,
    out: &mut Vec<u32>,
) -> io::Result<()> {
    let rewound = kept.take().filter(|dir| {
        // SAFETY: the descriptor is open for the lifetime of `dir`; rewinding is lseek to 0.
        unsafe { libc::lseek(dir.as_raw_fd(), 0, libc::SEEK_SET) == 0 }
    });
    let dir = match rewound {
        Some(dir) => dir,
        None => std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(proc)?,
    };
    if dents.len() < DENTS_BUF {
        dents.resize(DENTS_BUF, 0);
    }
    loop {
        // SAFETY: the descriptor is open for the lifetime of `dir`, and the kernel writes at most
        // `len` bytes into the buffer, which is valid and writable for that length.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir.as_raw_fd(),
                dents.as_mut_ptr(),
                dents.len(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let Ok(n) = usize::try_from(n) else { break };
        if n == 0 {
            break;
        }
        pids_in_records(dents.get(..n).unwrap_or_default(), out)?;
    }
    if super::kept::is_kernel_fs(&dir) {
        *kept = Some(dir);
    }
    if !out.is_sorted() {
        out.sort_unstable();
    }
    Ok(())
}

/// Appends the names that are process ids among the `linux_dirent64` records in `records`.
fn pids_in_records(mut records: &[u8], out: &mut Vec<u32>) -> io::Result<()> {
    // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
    while records.len() >= 19 {
        let reclen = usize::from(u16::from_ne_bytes([records[16], records[17]]));
        if reclen < 19 || reclen > records.len() {
            return Err(io::Error::other("malformed getdents64 record"));
        }
        let name = &records[19..reclen];
        let name = &name[..name.iter().position(|&c| c == 0).unwrap_or(name.len())];
        if let Some(pid) = std::str::from_utf8(name)
            .ok()
            .and_then(crate::num::parse_u64)
            .and_then(|v| u32::try_from(v).ok())
        {
            out.push(pid);
        }
        records = &records[reclen..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::sampler::{HostRoot, Sampler, Statfs};

    /// One `linux_dirent64` record named `name`, padded to 8 bytes as the kernel does.
    fn record(name: &str) -> Vec<u8> {
        let len = (19 + name.len() + 1).next_multiple_of(8);
        let mut r = vec![0u8; len];
        r[16..18].copy_from_slice(&u16::try_from(len).unwrap().to_ne_bytes());
        r[19..19 + name.len()].copy_from_slice(name.as_bytes());
        r
    }

    #[test]
    fn pids_from_records() {
        let buf: Vec<u8> = ["1", ".", "self", "4294967295", "4294967296", "42"]
            .iter()
            .flat_map(|n| record(n))
            .collect();
        let mut out = Vec::new();
        pids_in_records(&buf, &mut out).unwrap();
        assert_eq!(
            out,
            [1, 4_294_967_295, 42],
            "names that are no u32 are skipped"
        );
    }

    #[test]
    fn malformed_records_are_errors() {
        let mut r = record("7");
        r[16..18].copy_from_slice(&200u16.to_ne_bytes());
        assert!(
            pids_in_records(&r, &mut Vec::new()).is_err(),
            "longer than the buffer"
        );
        r[16..18].copy_from_slice(&3u16.to_ne_bytes());
        assert!(
            pids_in_records(&r, &mut Vec::new()).is_err(),
            "shorter than a header"
        );
    }

    #[test]
    fn lists_pids_like_read_dir() {
        let mut s = Sampler::new(HostRoot::default(), Statfs::new(Duration::from_secs(1)));
        let mut got = Vec::new();
        s.list_pids(&mut got).unwrap();
        assert!(got.contains(&std::process::id()));
        assert!(got.is_sorted());
        // The kept, rewound /proc descriptor lists processes started and reaped since.
        assert!(s.proc_dir.is_some(), "/proc is kept open");
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        s.list_pids(&mut got).unwrap();
        assert!(got.contains(&child.id()), "a new process is listed");
        child.kill().unwrap();
        child.wait().unwrap();
        s.list_pids(&mut got).unwrap();
        assert!(!got.contains(&child.id()), "a reaped process is gone");
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
        assert!(s.proc_dir.is_none(), "a regular directory is not kept");
        let mut s = Sampler::new(
            HostRoot::under(dir.path().join("missing")),
            Statfs::new(Duration::from_secs(1)),
        );
        assert!(s.list_pids(&mut got).is_err());
    }

    #[test]
    fn sorted_names_of_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["b", "a", "c"] {
            std::fs::write(dir.path().join(n), "").unwrap();
        }
        assert_eq!(sorted_names(dir.path()).unwrap(), ["a", "b", "c"]);
        assert!(sorted_names(&dir.path().join("missing")).is_err());
    }
}
