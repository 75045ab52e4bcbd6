//! `/proc/loadavg`: `0.52 0.58 0.59 2/345 12345`.

use crate::error::{ParseError, ParseErrorKind, ParseResult};
use crate::num::{Words, parse_f64, parse_u64};

const FILE: &str = "/proc/loadavg";

/// Load averages and scheduler counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct LoadAvg {
    /// 1-minute load average.
    pub one: f64,
    /// 5-minute load average.
    pub five: f64,
    /// 15-minute load average.
    pub fifteen: f64,
    /// Runnable scheduling entities now.
    pub running: u64,
    /// Scheduling entities that exist.
    pub total: u64,
    /// Most recently assigned pid.
    pub last_pid: u64,
}

/// Parses `/proc/loadavg`.
pub fn parse(text: &str) -> ParseResult<LoadAvg> {
    let err = |k| ParseError::new(FILE, 1, k);
    let mut it = Words::new(text);
    let mut load = || {
        it.word()
            .and_then(parse_f64)
            .filter(|v| *v >= 0.0)
            .ok_or(err(ParseErrorKind::BadNumber("load average")))
    };
    let (one, five, fifteen) = (load()?, load()?, load()?);
    let (running, total) = it
        .word()
        .and_then(|s| {
            s.bytes()
                .position(|b| b == b'/')
                .map(|i| (&s[..i], &s[i + 1..]))
        })
        .ok_or(err(ParseErrorKind::Malformed("running/total")))?;
    let running = parse_u64(running).ok_or(err(ParseErrorKind::BadNumber("running")))?;
    let total = parse_u64(total).ok_or(err(ParseErrorKind::BadNumber("total")))?;
    let last_pid = it
        .u64()
        .flatten()
        .ok_or(err(ParseErrorKind::BadNumber("last pid")))?;
    Ok(LoadAvg {
        one,
        five,
        fifteen,
        running,
        total,
        last_pid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let l = parse("0.52 0.58 1.59 2/345 12345\n").unwrap();
        assert_eq!((l.one, l.five, l.fifteen), (0.52, 0.58, 1.59));
        assert_eq!((l.running, l.total, l.last_pid), (2, 345, 12345));
    }

    #[test]
    fn rejects_malformed() {
        assert!(parse("").is_err());
        assert!(parse("0.5 0.5").is_err());
        assert!(parse("0.5 0.5 0.5 2 3").is_err());
        assert!(parse("0.5 0.5 0.5 2/x 3").is_err());
        assert!(parse("-1 0.5 0.5 2/3 3").is_err());
        assert!(parse("0.5 0.5 0.5 2/3").is_err());
        assert!(parse("nan 0.5 0.5 2/3 3").is_err());
    }
}
