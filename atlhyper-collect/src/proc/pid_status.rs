//! `/proc/[pid]/status`: Tgid, Pid, real Uid, VmRSS and Threads.

use crate::error::{ParseError, ParseErrorKind, ParseResult};
use crate::num::parse_u64;

const FILE: &str = "/proc/[pid]/status";

/// The fields of `/proc/[pid]/status` the collector uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PidStatus {
    /// Thread group id (the process id); differs from `pid` for a thread.
    pub tgid: u32,
    /// Task id.
    pub pid: u32,
    /// Real user id.
    pub uid: u32,
    /// Resident memory, bytes; absent for kernel threads.
    pub vm_rss: Option<u64>,
    /// Threads in the group. Since Linux 2.6.0.
    pub threads: Option<u32>,
}

/// Parses `/proc/[pid]/status`. Tgid, Pid and Uid are required.
pub fn parse(text: &str) -> ParseResult<PidStatus> {
    let mut s = PidStatus::default();
    let (mut tgid, mut pid, mut uid) = (None, None, None);
    for (idx, line) in text.lines().enumerate() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let bad = |what| ParseError::new(FILE, idx + 1, ParseErrorKind::BadNumber(what));
        let first = || rest.split_ascii_whitespace().next();
        let u32_of = |what| {
            first()
                .and_then(parse_u64)
                .and_then(|v| u32::try_from(v).ok())
                .ok_or(bad(what))
        };
        match key {
            "Tgid" => tgid = Some(u32_of("Tgid")?),
            "Pid" => pid = Some(u32_of("Pid")?),
            "Uid" => uid = Some(u32_of("Uid")?),
            "Threads" => s.threads = Some(u32_of("Threads")?),
            "VmRSS" => {
                let mut it = rest.split_ascii_whitespace();
                let kb = it.next().and_then(parse_u64).ok_or(bad("VmRSS"))?;
                if it.next() != Some("kB") {
                    return Err(ParseError::new(
                        FILE,
                        idx + 1,
                        ParseErrorKind::Malformed("VmRSS unit"),
                    ));
                }
                s.vm_rss = Some(kb.checked_mul(1024).ok_or(bad("VmRSS"))?);
            }
            _ => {}
        }
    }
    let missing = |what| ParseError::new(FILE, 1, ParseErrorKind::Missing(what));
    s.tgid = tgid.ok_or(missing("Tgid"))?;
    s.pid = pid.ok_or(missing("Pid"))?;
    s.uid = uid.ok_or(missing("Uid"))?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_process_and_thread() {
        let s = parse("Name:\tbash\nTgid:\t10\nPid:\t10\nPPid:\t1\nUid:\t1000\t1000\t1000\t1000\nVmRSS:\t  4096 kB\nThreads:\t2\n").unwrap();
        assert_eq!(
            (s.tgid, s.pid, s.uid, s.vm_rss, s.threads),
            (10, 10, 1000, Some(4096 * 1024), Some(2))
        );
        let t = parse("Tgid:\t10\nPid:\t11\nUid:\t0\t0\t0\t0\n").unwrap();
        assert_ne!(t.tgid, t.pid);
        assert_eq!(t.vm_rss, None);
    }

    #[test]
    fn rejects_malformed() {
        assert!(parse("").is_err());
        assert!(parse("Tgid:\t10\nPid:\t10\n").is_err());
        assert!(parse("Tgid:\tx\nPid:\t10\nUid:\t0\n").is_err());
        assert!(parse("Tgid:\t1\nPid:\t1\nUid:\t0\nVmRSS:\t12 MB\n").is_err());
        let e = parse("Tgid:\t1\nPid:\t1\nUid:\t0\nThreads:\t-3\n").unwrap_err();
        assert_eq!(e.line, 4);
    }
}
