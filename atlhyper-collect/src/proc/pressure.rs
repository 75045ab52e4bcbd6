//! `/proc/pressure/{cpu,memory,io}` (Linux 4.20+ with `CONFIG_PSI`). Before Linux 5.13 the cpu file
//! has no `full` line.

use crate::error::{ParseError, ParseErrorKind, ParseResult};
use crate::num::{parse_f64, parse_u64};

const FILE: &str = "/proc/pressure/*";

/// One `some`/`full` line: stall averages in percent and the total stall time.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct PsiLine {
    /// Percent of the last 10 s.
    pub avg10: f64,
    /// Percent of the last 60 s.
    pub avg60: f64,
    /// Percent of the last 300 s.
    pub avg300: f64,
    /// Total stall time, microseconds.
    pub total_us: u64,
}

/// A whole pressure file.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Pressure {
    /// Some task stalled.
    pub some: PsiLine,
    /// All non-idle tasks stalled. Absent for cpu before Linux 5.13.
    pub full: Option<PsiLine>,
}

/// Parses one `/proc/pressure/*` file.
pub fn parse(text: &str) -> ParseResult<Pressure> {
    let mut some = None;
    let mut full = None;
    for (idx, line) in text.lines().enumerate() {
        let lineno = idx + 1;
        let mut it = line.split_ascii_whitespace();
        let slot = match it.next() {
            Some("some") => &mut some,
            Some("full") => &mut full,
            Some(_) => {
                return Err(ParseError::new(
                    FILE,
                    lineno,
                    ParseErrorKind::Malformed("line kind"),
                ));
            }
            None => continue,
        };
        let mut l = PsiLine::default();
        let mut seen = 0u8;
        for kv in it {
            let (k, v) = kv.split_once('=').ok_or(ParseError::new(
                FILE,
                lineno,
                ParseErrorKind::Malformed("key=value"),
            ))?;
            let pct = || {
                parse_f64(v)
                    .filter(|x| (0.0..=100.0).contains(x))
                    .ok_or(ParseError::new(
                        FILE,
                        lineno,
                        ParseErrorKind::BadNumber("average"),
                    ))
            };
            match k {
                "avg10" => (l.avg10, seen) = (pct()?, seen | 1),
                "avg60" => (l.avg60, seen) = (pct()?, seen | 2),
                "avg300" => (l.avg300, seen) = (pct()?, seen | 4),
                "total" => {
                    l.total_us = parse_u64(v).ok_or(ParseError::new(
                        FILE,
                        lineno,
                        ParseErrorKind::BadNumber("total"),
                    ))?;
                    seen |= 8;
                }
                _ => {}
            }
        }
        if seen != 15 {
            return Err(ParseError::new(
                FILE,
                lineno,
                ParseErrorKind::Missing("avg10/avg60/avg300/total"),
            ));
        }
        *slot = Some(l);
    }
    let some = some.ok_or(ParseError::new(
        FILE,
        1,
        ParseErrorKind::Missing("some line"),
    ))?;
    Ok(Pressure { some, full })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_and_without_full() {
        let p = parse("some avg10=19.68 avg60=16.34 avg300=9.10 total=43693198\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n").unwrap();
        assert_eq!(p.some.avg10, 19.68);
        assert_eq!(p.some.total_us, 43_693_198);
        assert_eq!(p.full.unwrap().avg300, 0.0);
        let p = parse("some avg10=1.00 avg60=2.00 avg300=3.00 total=4\n").unwrap();
        assert_eq!(p.full, None);
    }

    #[test]
    fn rejects_malformed() {
        assert!(parse("").is_err());
        assert!(parse("full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n").is_err());
        assert!(parse("some avg10=1.00 avg60=2.00 total=4\n").is_err());
        assert!(parse("some avg10=x avg60=2.00 avg300=3.00 total=4\n").is_err());
        assert!(parse("some avg10=101 avg60=2.00 avg300=3.00 total=4\n").is_err());
        assert!(parse("some avg10 avg60=2.00 avg300=3.00 total=4\n").is_err());
        let e = parse("some avg10=1 avg60=2 avg300=3 total=4\nweird\n").unwrap_err();
        assert_eq!(e.line, 2);
    }
}
