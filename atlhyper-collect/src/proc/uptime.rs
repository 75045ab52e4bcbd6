//! `/proc/uptime`: `350735.47 234388.90` (seconds since boot, idle seconds summed over CPUs).

use crate::error::{ParseError, ParseErrorKind, ParseResult};
use crate::num::parse_f64;

const FILE: &str = "/proc/uptime";

/// Seconds since boot and idle seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Uptime {
    /// Seconds since boot.
    pub uptime_secs: f64,
    /// Idle seconds summed over all CPUs.
    pub idle_secs: f64,
}

/// Parses `/proc/uptime`.
pub fn parse(text: &str) -> ParseResult<Uptime> {
    let mut it = text.split_ascii_whitespace();
    let mut next = |what| {
        it.next()
            .and_then(parse_f64)
            .filter(|v| *v >= 0.0)
            .ok_or(ParseError::new(FILE, 1, ParseErrorKind::BadNumber(what)))
    };
    Ok(Uptime {
        uptime_secs: next("uptime")?,
        idle_secs: next("idle")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let u = parse("350735.47 234388.90\n").unwrap();
        assert_eq!(u.uptime_secs, 350735.47);
        assert_eq!(u.idle_secs, 234388.90);
        assert!(parse("").is_err());
        assert!(parse("12.0").is_err());
        assert!(parse("-1 2").is_err());
        assert!(parse("a b").is_err());
    }
}
