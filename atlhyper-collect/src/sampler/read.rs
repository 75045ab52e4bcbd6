//! The read loop: a file read to the end into one reused buffer, trusting no size the file
//! claims and making no more syscalls than needed.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

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
pub(super) fn read_file_into(buf: &mut Vec<u8>, f: &mut File) -> io::Result<usize> {
    fill(buf, |chunk, _| f.read(chunk))
}

/// Reads a kept file from offset 0 to the end with `pread` (the same short-read rule as
/// [`read_into`]); procfs and sysfs regenerate the content on a read at offset 0.
pub(super) fn pread_into(buf: &mut Vec<u8>, f: &File) -> io::Result<usize> {
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn fill_grows_the_buffer_retries_interruptions_and_stops_at_a_short_read() {
        // 10,000 bytes handed out as the kernel does, as much as fits; interrupted once.
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 7) as u8).collect();
        let mut calls = 0;
        let mut buf = Vec::new();
        let n = fill(&mut buf, |chunk, at| {
            calls += 1;
            if calls == 2 {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let k = chunk.len().min(data.len() - at);
            chunk[..k].copy_from_slice(&data[at..at + k]);
            Ok(k)
        })
        .unwrap();
        assert!(n == data.len() && buf[..n] == data[..], "read {n} bytes");
        // A short read is the end, even if the source had more to give.
        let n = fill(&mut buf, |chunk, _| Ok(chunk.len().min(100))).unwrap();
        assert_eq!(n, 100);
        let e = fill(&mut buf, |_, _| Err(io::ErrorKind::PermissionDenied.into())).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
    }
}
