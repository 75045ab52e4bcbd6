//! `/proc/[pid]/stat`. The command name is the text between the first `(` and the **last** `)`:
//! it may itself contain spaces, parentheses and newlines.

use crate::error::{ParseError, ParseErrorKind, ParseResult};
use crate::num::{Words, parse_u64};

const FILE: &str = "/proc/[pid]/stat";

/// The fields of `/proc/[pid]/stat` the collector uses, borrowing `comm` from the input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PidStat<'a> {
    /// Process (or thread) id.
    pub pid: u32,
    /// Command name, at most 15 bytes from the kernel (may contain anything but NUL).
    pub comm: &'a str,
    /// State letter: R, S, D, Z, T, t, X, I, ...
    pub state: char,
    /// Parent pid.
    pub ppid: u32,
    /// User-mode time, clock ticks.
    pub utime: u64,
    /// Kernel-mode time, clock ticks.
    pub stime: u64,
    /// Nice value (-20..19).
    pub nice: i64,
    /// Threads in the thread group.
    pub num_threads: u64,
    /// Start time after boot, clock ticks.
    pub starttime: u64,
    /// Virtual memory size, bytes.
    pub vsize: u64,
    /// Resident set size, pages.
    pub rss_pages: u64,
}

/// Parses `/proc/[pid]/stat`.
pub fn parse(text: &str) -> ParseResult<PidStat<'_>> {
    let err = |k| ParseError::new(FILE, 1, k);
    let open = text.find('(').ok_or(err(ParseErrorKind::Missing("'('")))?;
    let close = text.rfind(')').ok_or(err(ParseErrorKind::Missing("')'")))?;
    if close < open {
        return Err(err(ParseErrorKind::Malformed("parentheses")));
    }
    let pid = parse_u64(text[..open].trim())
        .and_then(|v| u32::try_from(v).ok())
        .ok_or(err(ParseErrorKind::BadNumber("pid")))?;
    let comm = &text[open + 1..close];
    let mut it = Words::new(&text[close + 1..]);
    let state_field = it.word().ok_or(err(ParseErrorKind::Missing("state")))?;
    let mut chars = state_field.chars();
    let state = match (chars.next(), chars.next()) {
        (Some(c), None) => c,
        _ => return Err(err(ParseErrorKind::Malformed("state"))),
    };
    // Fields after the state, 0-based: ppid=0 ... utime=10 stime=11 ... nice=15 num_threads=16
    // ... starttime=18 vsize=19 rss=20. One scan over the bytes; every field up to rss must be an
    // integer (some are signed: tty_nr, nice).
    let r = it.rest().as_bytes();
    let mut v = [0u64; 21];
    let mut nice = 0i64;
    let mut n = 0;
    let mut i = 0;
    while n < v.len() {
        while i < r.len() && r[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == r.len() {
            break;
        }
        let neg = r[i] == b'-';
        if neg {
            i += 1;
        }
        let start = i;
        let mut x: u64 = 0;
        while i < r.len() {
            let d = r[i].wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            x = x.wrapping_mul(10).wrapping_add(u64::from(d));
            i += 1;
        }
        let digits = &r[start..i];
        let bad = || err(ParseErrorKind::BadNumber("field"));
        if digits.is_empty() || (i < r.len() && !r[i].is_ascii_whitespace()) {
            return Err(bad());
        }
        if digits.len() > 19 {
            // Possibly out of range: the checked parser decides (the slice is ASCII digits).
            x = std::str::from_utf8(digits)
                .ok()
                .and_then(parse_u64)
                .ok_or_else(bad)?;
        }
        let unsigned = matches!(n, 0 | 10 | 11 | 16 | 18 | 19 | 20);
        if unsigned {
            if neg {
                return Err(bad());
            }
            v[n] = x;
        } else {
            // Skipped fields are still checked to fit an i64.
            let val = if neg {
                if x > (i64::MAX as u64) + 1 {
                    return Err(bad());
                }
                (x as i64).wrapping_neg()
            } else {
                i64::try_from(x).map_err(|_| bad())?
            };
            if n == 15 {
                nice = val;
            }
        }
        n += 1;
    }
    if n < v.len() {
        return Err(err(ParseErrorKind::Missing("fields (need rss)")));
    }
    Ok(PidStat {
        pid,
        comm,
        state,
        ppid: u32::try_from(v[0]).map_err(|_| err(ParseErrorKind::BadNumber("ppid")))?,
        utime: v[10],
        stime: v[11],
        nice,
        num_threads: v[16],
        starttime: v[18],
        vsize: v[19],
        rss_pages: v[20],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(comm: &str) -> String {
        format!(
            "4242 ({comm}) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 1234 10485760 512 \
18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0"
        )
    }

    #[test]
    fn parses_plain() {
        let text = line("bash");
        let s = parse(&text).unwrap();
        assert_eq!((s.pid, s.comm, s.state, s.ppid), (4242, "bash", 'S', 1));
        assert_eq!((s.utime, s.stime, s.num_threads), (250, 75, 3));
        assert_eq!(
            (s.starttime, s.vsize, s.rss_pages, s.nice),
            (1234, 10_485_760, 512, 0)
        );
    }

    #[test]
    fn comm_with_spaces_parens_and_newline() {
        let text = line("a) (b c)\nd)");
        let s = parse(&text).unwrap();
        assert_eq!(s.comm, "a) (b c)\nd)");
        assert_eq!(s.utime, 250);
        let text = line("");
        assert_eq!(parse(&text).unwrap().comm, "");
    }

    #[test]
    fn rejects_malformed() {
        assert!(parse("").is_err());
        assert!(parse("1 (x S 1 2").is_err());
        assert!(parse("1 )x( S").is_err());
        assert!(parse("x (bash) S 1").is_err());
        assert!(parse("1 (bash) S 1 2 3").is_err());
        assert!(parse("1 (bash) SS 1 2 3").is_err());
        let bad = line("bash").replace(" 250 ", " -250 ");
        assert!(parse(&bad).is_err());
        let bad = line("bash").replace(" 4194560 ", " x ");
        assert!(parse(&bad).is_err());
        let bad = line("bash").replace(" 4194560 ", " 41x ");
        assert!(parse(&bad).is_err());
        let bad = line("bash").replace(" 4194560 ", " - ");
        assert!(parse(&bad).is_err());
        // Signed skipped fields must fit an i64, unsigned ones a u64.
        let t = line("bash")
            .replace(" 20 0 3 ", " 20 -5 3 ")
            .replace(" -1 ", " -9223372036854775808 ");
        assert_eq!(parse(&t).unwrap().nice, -5);
        let bad = line("bash").replace(" -1 ", " 9223372036854775808 ");
        assert!(parse(&bad).is_err());
        let max = line("bash").replace(" 10485760 ", " 18446744073709551615 ");
        assert_eq!(parse(&max).unwrap().vsize, u64::MAX);
        let bad = line("bash").replace(" 10485760 ", " 18446744073709551616 ");
        assert!(parse(&bad).is_err());
    }
}
