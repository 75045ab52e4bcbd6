//! `/proc/[pid]/mountinfo` and the older `/proc/mounts` (`/proc/[pid]/mounts`) format.
//!
//! Paths in both files escape space, tab, newline and backslash as octal (`\040`); they are
//! unescaped here (borrowed when there is nothing to unescape).

use std::borrow::Cow;

use crate::error::{ParseError, ParseErrorKind, ParseResult};
use crate::num::parse_u64;

const MOUNTINFO: &str = "/proc/[pid]/mountinfo";
const MOUNTS: &str = "/proc/mounts";

/// One mounted filesystem.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Mount<'a> {
    /// Device `(major, minor)` of the filesystem; `None` from the `mounts` format.
    pub dev: Option<(u32, u32)>,
    /// Root of the mount within the filesystem (`/` unless a bind mount of a subtree); `None`
    /// from the `mounts` format.
    pub root: Option<Cow<'a, str>>,
    /// Mount point, relative to the reading process's root.
    pub mount_point: Cow<'a, str>,
    /// Filesystem type (ext4, xfs, nfs4, tmpfs, ...).
    pub fs_type: &'a str,
    /// Mount source (`/dev/sda1`, `/dev/root`, `server:/export`, `tmpfs`).
    pub source: Cow<'a, str>,
    /// Mounted read-only: `ro` among this mount's options (what node_exporter's
    /// `node_filesystem_readonly` reports).
    pub read_only: bool,
}

/// Iterates over `/proc/[pid]/mountinfo` lines.
pub fn parse_mountinfo(text: &str) -> Mounts<'_> {
    Mounts {
        lines: text.lines().enumerate(),
        mountinfo: true,
    }
}

/// Iterates over `/proc/mounts` lines.
pub fn parse_mounts(text: &str) -> Mounts<'_> {
    Mounts {
        lines: text.lines().enumerate(),
        mountinfo: false,
    }
}

/// Iterator returned by [`parse_mountinfo`] and [`parse_mounts`].
#[derive(Debug, Clone)]
pub struct Mounts<'a> {
    lines: std::iter::Enumerate<std::str::Lines<'a>>,
    mountinfo: bool,
}

impl<'a> Iterator for Mounts<'a> {
    type Item = ParseResult<Mount<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (idx, line) = self.lines.next()?;
            if line.trim().is_empty() {
                continue;
            }
            return Some(if self.mountinfo {
                mountinfo_line(line, idx + 1)
            } else {
                mounts_line(line, idx + 1)
            });
        }
    }
}

fn mountinfo_line(line: &str, lineno: usize) -> ParseResult<Mount<'_>> {
    let err = |k| ParseError::new(MOUNTINFO, lineno, k);
    let mut it = line.split(' ').filter(|s| !s.is_empty());
    let _id = it
        .next()
        .and_then(parse_u64)
        .ok_or(err(ParseErrorKind::BadNumber("mount id")))?;
    let _parent = it
        .next()
        .and_then(parse_u64)
        .ok_or(err(ParseErrorKind::BadNumber("parent id")))?;
    let (major, minor) = it
        .next()
        .and_then(|s| s.split_once(':'))
        .ok_or(err(ParseErrorKind::Malformed("major:minor")))?;
    let num = |s: &str| parse_u64(s).and_then(|v| u32::try_from(v).ok());
    let dev = (
        num(major).ok_or(err(ParseErrorKind::BadNumber("major")))?,
        num(minor).ok_or(err(ParseErrorKind::BadNumber("minor")))?,
    );
    let root = it.next().ok_or(err(ParseErrorKind::Missing("root")))?;
    let mount_point = it
        .next()
        .ok_or(err(ParseErrorKind::Missing("mount point")))?;
    let options = it
        .next()
        .ok_or(err(ParseErrorKind::Missing("mount options")))?;
    // Optional fields (shared:N, master:N, ...) up to the "-" separator.
    loop {
        match it.next() {
            Some("-") => break,
            Some(_) => continue,
            None => return Err(err(ParseErrorKind::Missing("'-' separator"))),
        }
    }
    let fs_type = it
        .next()
        .ok_or(err(ParseErrorKind::Missing("filesystem type")))?;
    let source = it
        .next()
        .ok_or(err(ParseErrorKind::Missing("mount source")))?;
    Ok(Mount {
        dev: Some(dev),
        root: Some(unescape(root)),
        mount_point: unescape(mount_point),
        fs_type,
        source: unescape(source),
        read_only: has_ro(options),
    })
}

/// Whether a comma-separated option list holds `ro`.
fn has_ro(options: &str) -> bool {
    options.split(',').any(|o| o == "ro")
}

fn mounts_line(line: &str, lineno: usize) -> ParseResult<Mount<'_>> {
    let err = |k| ParseError::new(MOUNTS, lineno, k);
    let mut it = line.split(' ').filter(|s| !s.is_empty());
    let source = it
        .next()
        .ok_or(err(ParseErrorKind::Missing("mount source")))?;
    let mount_point = it
        .next()
        .ok_or(err(ParseErrorKind::Missing("mount point")))?;
    let fs_type = it
        .next()
        .ok_or(err(ParseErrorKind::Missing("filesystem type")))?;
    // Old kernels' files may stop after the type; then nothing says read-only.
    let read_only = it.next().is_some_and(has_ro);
    Ok(Mount {
        dev: None,
        root: None,
        mount_point: unescape(mount_point),
        fs_type,
        source: unescape(source),
        read_only,
    })
}

/// Undoes the kernel's octal escaping (`\040` -> space). Invalid escapes are kept verbatim.
pub fn unescape(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = u32::from(oct[0] - b'0') * 64
                    + u32::from(oct[1] - b'0') * 8
                    + u32::from(oct[2] - b'0');
                if let Ok(byte) = u8::try_from(v) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo() {
        let text = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard\n\
36 35 98:0 /mnt1 /mnt\\040two ro,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue\n\
22 27 0:21 / /proc rw,relatime - proc proc rw\n";
        let m: Vec<_> = parse_mountinfo(text).collect::<Result<_, _>>().unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].dev, Some((254, 0)));
        assert_eq!(m[0].mount_point, "/");
        assert_eq!(m[0].fs_type, "ext4");
        assert_eq!(m[0].source, "/dev/vda");
        assert_eq!(m[1].mount_point, "/mnt two");
        assert_eq!(m[1].root.as_deref(), Some("/mnt1"));
        assert_eq!(m[1].fs_type, "ext3");
        assert_eq!(m[1].source, "/dev/root");
        assert!(!m[0].read_only);
        // The per-mount options decide, not the superblock's ("rw,errors=continue").
        assert!(m[1].read_only);
    }

    #[test]
    fn parses_mounts() {
        let m: Vec<_> =
            parse_mounts("/dev/sda1 / ext4 rw 0 0\nserver:/x /mnt/n\\011fs nfs4 ro,noatime 0 0\n")
                .collect::<Result<_, _>>()
                .unwrap();
        assert_eq!(m[0].dev, None);
        assert_eq!(m[1].mount_point, "/mnt/n\tfs");
        assert_eq!(m[1].source, "server:/x");
        assert!(!m[0].read_only);
        assert!(m[1].read_only);
    }

    #[test]
    fn unescape_edge_cases() {
        assert_eq!(unescape("a\\134b"), "a\\b");
        assert_eq!(unescape("a\\"), "a\\");
        assert_eq!(unescape("a\\12"), "a\\12");
        assert_eq!(unescape("a\\999"), "a\\999");
        assert_eq!(unescape("\\777"), "\\777");
    }

    #[test]
    fn rejects_malformed() {
        let errs: Vec<_> = parse_mountinfo("x 1 8:0 / / rw - ext4 /dev/sda rw\n1 1 8-0 / / rw - ext4 a b\n1 1 8:0 / / rw ext4 a\n1 1 8:0 / / rw -\n")
            .filter_map(Result::err)
            .collect();
        assert_eq!(errs.len(), 4);
        assert_eq!(errs[3].line, 4);
        assert!(parse_mounts("/dev/sda1 /\n").next().unwrap().is_err());
    }
}
