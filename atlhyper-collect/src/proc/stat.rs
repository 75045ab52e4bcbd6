//! `/proc/stat`: CPU time counters (8 to 10 columns depending on the kernel) and `btime`.
//!
//! Counters are in clock ticks (`USER_HZ`, see `sysconf(_SC_CLK_TCK)`); the parser keeps them as
//! ticks and leaves the conversion to the caller.

use crate::error::{ParseError, ParseErrorKind, ParseResult};
use crate::num::Words;

const FILE: &str = "/proc/stat";

/// The time counters of one `cpu` line, in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CpuTimes {
    /// Normal processes in user mode (includes guest time).
    pub user: u64,
    /// Niced processes in user mode (includes guest_nice time).
    pub nice: u64,
    /// Kernel mode.
    pub system: u64,
    /// Idle.
    pub idle: u64,
    /// Idle with outstanding I/O.
    pub iowait: u64,
    /// Servicing hardware interrupts.
    pub irq: u64,
    /// Servicing softirqs.
    pub softirq: u64,
    /// Stolen by the hypervisor. Since Linux 2.6.11 (8th column).
    pub steal: Option<u64>,
    /// Running a guest (already counted in `user`). Since Linux 2.6.24.
    pub guest: Option<u64>,
    /// Running a niced guest (already counted in `nice`). Since Linux 2.6.33.
    pub guest_nice: Option<u64>,
}

impl CpuTimes {
    /// All ticks of the line: guest columns excluded because the kernel already counts them in
    /// user and nice.
    pub fn total(&self) -> u64 {
        self.user
            .saturating_add(self.nice)
            .saturating_add(self.system)
            .saturating_add(self.idle)
            .saturating_add(self.iowait)
            .saturating_add(self.irq)
            .saturating_add(self.softirq)
            .saturating_add(self.steal.unwrap_or_default())
    }
}

/// What the collector uses from `/proc/stat`. Reuse one value across samples: [`parse_into`] clears
/// and refills `cpus`, keeping its capacity, so a steady-state parse allocates nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stat {
    /// The aggregate `cpu` line.
    pub cpu: CpuTimes,
    /// One entry per `cpuN` line, in file order.
    pub cpus: Vec<CpuTimes>,
    /// Boot time, Unix seconds.
    pub btime: u64,
    /// Context switches since boot.
    pub ctxt: Option<u64>,
    /// Interrupts serviced since boot (the first number of the `intr` line).
    pub intr: Option<u64>,
    /// Forks since boot.
    pub processes: Option<u64>,
    /// Runnable tasks now. Since Linux 2.6.0.
    pub procs_running: Option<u64>,
    /// Tasks blocked on I/O now. Since Linux 2.6.0.
    pub procs_blocked: Option<u64>,
}

/// Parses `/proc/stat` into a fresh [`Stat`].
pub fn parse(text: &str) -> ParseResult<Stat> {
    let mut stat = Stat::default();
    parse_into(text, &mut stat)?;
    Ok(stat)
}

/// Parses `/proc/stat` into `out`, reusing its `cpus` buffer. On error `out` holds partial data.
///
/// One pass over the bytes: a line is classified by its first byte, so the long `intr` and
/// `softirq` lines (most of the file) cost only the newline search that skips them; `cpu` lines
/// are scanned number by number straight into their columns.
pub fn parse_into(text: &str, out: &mut Stat) -> ParseResult<()> {
    out.cpus.clear();
    out.ctxt = None;
    out.intr = None;
    out.processes = None;
    out.procs_running = None;
    out.procs_blocked = None;
    let mut saw_cpu = false;
    let mut btime = None;
    let b = text.as_bytes();
    let mut pos = 0;
    let mut lineno = 0;
    while pos < b.len() {
        lineno += 1;
        let rest = &b[pos..];
        let len = next_newline(rest);
        let mut line = &rest[..len];
        pos += len + 1;
        // Keys start the line in every kernel; tolerate leading blanks anyway.
        while let [c, tail @ ..] = line {
            if !c.is_ascii_whitespace() {
                break;
            }
            line = tail;
        }
        let slot = match line.first() {
            Some(b'c') => {
                if let Some(tail) = line.strip_prefix(b"cpu") {
                    let name_len = tail
                        .iter()
                        .position(u8::is_ascii_whitespace)
                        .unwrap_or(tail.len());
                    let (name, cols) = tail.split_at(name_len);
                    let times = parse_cpu_fields(cols, lineno)?;
                    if name.is_empty() {
                        out.cpu = times;
                        saw_cpu = true;
                    } else if name.iter().all(u8::is_ascii_digit) {
                        out.cpus.push(times);
                    } else {
                        return Err(ParseError::new(
                            FILE,
                            lineno,
                            ParseErrorKind::Malformed("cpu line name"),
                        ));
                    }
                    continue;
                }
                match key_value(line, b"ctxt") {
                    Some(v) => (&mut out.ctxt, v),
                    None => continue,
                }
            }
            // Only the total leads the long `intr` line: read its digits, skip the rest unscanned.
            Some(b'i') => match line.strip_prefix(b"intr ") {
                Some(rest) => {
                    let digits = rest
                        .iter()
                        .position(|c| !c.is_ascii_digit())
                        .unwrap_or(rest.len());
                    let total = std::str::from_utf8(&rest[..digits])
                        .ok()
                        .and_then(|d| d.parse::<u64>().ok())
                        .ok_or(ParseError::new(
                            FILE,
                            lineno,
                            ParseErrorKind::BadNumber("intr"),
                        ))?;
                    out.intr = Some(total);
                    continue;
                }
                None => continue,
            },
            Some(b'b') => match key_value(line, b"btime") {
                Some(v) => (&mut btime, v),
                None => continue,
            },
            Some(b'p') => {
                if let Some(v) = key_value(line, b"processes") {
                    (&mut out.processes, v)
                } else if let Some(v) = key_value(line, b"procs_running") {
                    (&mut out.procs_running, v)
                } else if let Some(v) = key_value(line, b"procs_blocked") {
                    (&mut out.procs_blocked, v)
                } else {
                    continue;
                }
            }
            _ => continue,
        };
        let value = Words::new(slot.1).u64().flatten().ok_or(ParseError::new(
            FILE,
            lineno,
            ParseErrorKind::BadNumber("counter"),
        ))?;
        *slot.0 = Some(value);
    }
    if !saw_cpu {
        return Err(ParseError::new(
            FILE,
            1,
            ParseErrorKind::Missing("cpu line"),
        ));
    }
    out.btime = btime.ok_or(ParseError::new(FILE, 1, ParseErrorKind::Missing("btime")))?;
    Ok(())
}

/// Offset of the first `\n` in `b`, or `b.len()`: eight bytes per step (the classic "has a zero
/// byte" test on the word XOR-ed with newlines; its lowest flagged byte is always a true match).
#[inline]
fn next_newline(b: &[u8]) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const NL: u64 = LO * b'\n' as u64;
    let mut i = 0;
    while i + 8 <= b.len() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[i..i + 8]);
        let x = u64::from_le_bytes(w) ^ NL;
        let found = x.wrapping_sub(LO) & !x & HI;
        if found != 0 {
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() {
        if b[i] == b'\n' {
            return i;
        }
        i += 1;
    }
    b.len()
}

/// The rest of `line` after `key` when the line's first word is exactly `key`.
#[inline]
fn key_value<'a>(line: &'a [u8], key: &[u8]) -> Option<&'a str> {
    let rest = line.strip_prefix(key)?;
    match rest.first() {
        None => Some(""),
        // The rest is ASCII-led and cut from a `str` after an ASCII byte: valid UTF-8.
        Some(c) if c.is_ascii_whitespace() => std::str::from_utf8(rest).ok(),
        Some(_) => None,
    }
}

/// The columns of a `cpu` line (the bytes after its name) in one scan; at least 7 are required,
/// columns past the 10th are ignored.
#[inline]
fn parse_cpu_fields(cols: &[u8], lineno: usize) -> ParseResult<CpuTimes> {
    let mut vals = [0u64; 10];
    let mut n = 0;
    let mut i = 0;
    loop {
        while i < cols.len() && cols[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == cols.len() || n == vals.len() {
            // Columns a future kernel adds are ignored.
            break;
        }
        let start = i;
        let mut v: u64 = 0;
        let mut ok = true;
        while i < cols.len() {
            let d = cols[i].wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            if i - start < 19 {
                // 19 digits never overflow a u64.
                v = v * 10 + u64::from(d);
            } else {
                match v.checked_mul(10).and_then(|x| x.checked_add(u64::from(d))) {
                    Some(x) => v = x,
                    None => ok = false,
                }
            }
            i += 1;
        }
        if !ok || (i < cols.len() && !cols[i].is_ascii_whitespace()) {
            return Err(ParseError::new(
                FILE,
                lineno,
                ParseErrorKind::BadNumber("cpu column"),
            ));
        }
        vals[n] = v;
        n += 1;
    }
    if n < 7 {
        return Err(ParseError::new(
            FILE,
            lineno,
            ParseErrorKind::Missing("cpu columns (need 7)"),
        ));
    }
    let opt = |i: usize| (i < n).then_some(vals[i]);
    Ok(CpuTimes {
        user: vals[0],
        nice: vals[1],
        system: vals[2],
        idle: vals[3],
        iowait: vals[4],
        irq: vals[5],
        softirq: vals[6],
        steal: opt(7),
        guest: opt(8),
        guest_nice: opt(9),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODERN: &str = "cpu  33182 0 5405 37344 259 0 41 23 0 0\n\
cpu0 15245 0 2383 20381 86 0 5 8 0 0\n\
cpu1 17937 0 3021 16962 173 0 35 14 0 0\n\
intr 1 2 3\nctxt 123\nbtime 1700000000\nprocesses 77\nprocs_running 2\nprocs_blocked 0\n\
softirq 1 2 3\n";

    #[test]
    fn parses_ten_columns_and_btime() {
        let s = parse(MODERN).unwrap();
        assert_eq!(s.cpu.user, 33182);
        assert_eq!(s.cpu.steal, Some(23));
        assert_eq!(s.cpu.guest_nice, Some(0));
        assert_eq!(s.cpus.len(), 2);
        assert_eq!(s.cpus[1].idle, 16962);
        assert_eq!(s.btime, 1_700_000_000);
        assert_eq!(s.ctxt, Some(123));
        assert_eq!(s.intr, Some(1));
        assert_eq!(s.procs_running, Some(2));
        assert_eq!(s.cpu.total(), 33182 + 5405 + 37344 + 259 + 41 + 23);
    }

    #[test]
    fn intr_total_is_the_first_number_and_a_bad_one_is_an_error() {
        let s = parse(
            "cpu 1 2 3 4 5 6 7
intr 987654321 0 5
btime 5
",
        )
        .unwrap();
        assert_eq!(s.intr, Some(987_654_321));
        assert!(
            parse(
                "cpu 1 2 3 4 5 6 7
intr x 1
btime 5
"
            )
            .is_err()
        );
        // Another key starting with "intr" is not the total.
        let s = parse(
            "cpu 1 2 3 4 5 6 7
intrx 9
btime 5
",
        )
        .unwrap();
        assert_eq!(s.intr, None);
    }

    #[test]
    fn parses_eight_columns() {
        let s = parse("cpu 1 2 3 4 5 6 7 8\ncpu0 1 2 3 4 5 6 7 8\nbtime 5\n").unwrap();
        assert_eq!(s.cpu.steal, Some(8));
        assert_eq!(s.cpu.guest, None);
        assert_eq!(s.cpu.total(), 36);
    }

    #[test]
    fn reuses_buffer() {
        let mut s = Stat::default();
        parse_into(MODERN, &mut s).unwrap();
        let cap = s.cpus.capacity();
        parse_into(MODERN, &mut s).unwrap();
        assert_eq!(s.cpus.len(), 2);
        assert_eq!(s.cpus.capacity(), cap);
    }

    #[test]
    fn rejects_malformed() {
        let e = parse("cpu 1 2 3\nbtime 5\n").unwrap_err();
        assert_eq!((e.file, e.line), ("/proc/stat", 1));
        let e = parse("cpu 1 2 3 4 5 6 7\ncpu0 1 x 3 4 5 6 7\nbtime 1\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(e.kind, ParseErrorKind::BadNumber("cpu column"));
        assert!(parse("cpu 1 2 3 4 5 6 7\n").is_err(), "btime is required");
        assert!(parse("btime 1\n").is_err(), "cpu is required");
        assert!(parse("cpu 1 2 3 4 5 6 7\nbtime\n").is_err());
        assert!(parse("cpux 1 2 3 4 5 6 7\ncpu 1 2 3 4 5 6 7\nbtime 1\n").is_err());
        assert!(parse("").is_err());
    }
}
