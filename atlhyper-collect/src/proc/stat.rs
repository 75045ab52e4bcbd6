//! `/proc/stat`: CPU time counters (8 to 10 columns depending on the kernel) and `btime`.
//!
//! Counters are in clock ticks (`USER_HZ`, see `sysconf(_SC_CLK_TCK)`); the parser keeps them as
//! ticks and leaves the conversion to the caller.

use crate::error::{ParseError, ParseErrorKind, ParseResult};
use crate::num::{Words, parse_u64};

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
pub fn parse_into(text: &str, out: &mut Stat) -> ParseResult<()> {
    out.cpus.clear();
    out.ctxt = None;
    out.processes = None;
    out.procs_running = None;
    out.procs_blocked = None;
    let mut saw_cpu = false;
    let mut btime = None;
    for (idx, line) in text.lines().enumerate() {
        let lineno = idx + 1;
        let mut fields = Words::new(line);
        let Some(key) = fields.word() else { continue };
        if let Some(rest) = key.strip_prefix("cpu") {
            let times = parse_cpu_fields(&mut fields, lineno)?;
            if rest.is_empty() {
                out.cpu = times;
                saw_cpu = true;
            } else if parse_u64(rest).is_some() {
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
        let slot = match key {
            "btime" => &mut btime,
            "ctxt" => &mut out.ctxt,
            "processes" => &mut out.processes,
            "procs_running" => &mut out.procs_running,
            "procs_blocked" => &mut out.procs_blocked,
            _ => continue,
        };
        let value = fields.u64().flatten().ok_or(ParseError::new(
            FILE,
            lineno,
            ParseErrorKind::BadNumber("counter"),
        ))?;
        *slot = Some(value);
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

fn parse_cpu_fields(fields: &mut Words<'_>, lineno: usize) -> ParseResult<CpuTimes> {
    let mut vals = [None::<u64>; 10];
    let mut n = 0;
    while let Some(f) = fields.u64() {
        if n == vals.len() {
            // Columns a future kernel adds are ignored.
            break;
        }
        let bad = ParseError::new(FILE, lineno, ParseErrorKind::BadNumber("cpu column"));
        vals[n] = Some(f.ok_or(bad)?);
        n += 1;
    }
    if n < 7 {
        return Err(ParseError::new(
            FILE,
            lineno,
            ParseErrorKind::Missing("cpu columns (need 7)"),
        ));
    }
    let req = |i: usize| vals[i].unwrap_or_default();
    Ok(CpuTimes {
        user: req(0),
        nice: req(1),
        system: req(2),
        idle: req(3),
        iowait: req(4),
        irq: req(5),
        softirq: req(6),
        steal: vals[7],
        guest: vals[8],
        guest_nice: vals[9],
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
        assert_eq!(s.procs_running, Some(2));
        assert_eq!(s.cpu.total(), 33182 + 5405 + 37344 + 259 + 41 + 23);
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
