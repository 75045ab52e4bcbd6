//! The one duration grammar of every flag and environment variable of every binary.
//!
//! What users of Prometheus and Go write: one or more `<number><unit>` terms (`500ms`, `5s`,
//! `1m30s`, `1h`, `2d`, `1.5s`), units `ns`, `us` (`µs`), `ms`, `s`, `m`, `h`, `d` (24 h) and
//! `w` (7 d); or a bare number of seconds (`5`, `0.5`), as the earlier parsers accepted.
//! No sign, no exponent, no spaces between terms. Arithmetic is in whole nanoseconds, so `0.1s`
//! is exactly 100 ms.
//!
//! Hand-written rather than `humantime`: that crate takes no bare seconds and no fractions
//! (`1.5s` worked here before), and reads `M` and `y` as months and years.

use std::time::Duration;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Why a text is not a duration. The message quotes the text; the caller names the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DurationError(String);

/// Parses a duration of the grammar above; zero (`0s`, `0`) is a duration.
///
/// ```
/// use std::time::Duration;
/// use atlhyper_model::parse_duration;
///
/// assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
/// assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
/// assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(2 * 86_400)));
/// assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
/// assert!(parse_duration("-5s").is_err());
/// assert!(parse_duration("5 parsecs").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let s = text.trim();
    let expected = || {
        DurationError(format!(
            "{text:?} is not a duration (write e.g. 500ms, 5s, 1m30s, 1h, 2d)"
        ))
    };
    if s.is_empty() {
        return Err(DurationError("empty duration".to_owned()));
    }
    if s.starts_with(['-', '+']) {
        return Err(DurationError(format!(
            "{text:?}: a duration has no sign (and is never negative)"
        )));
    }
    let mut nanos: u128 = 0;
    let mut rest = s;
    let mut first = true;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return Err(expected());
        }
        let number = &rest[..number_len];
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let unit_nanos: u128 = match unit {
            // A bare number is seconds, but only alone: `5s3` is a typo, not 5 s + 3 s.
            "" if first && rest.is_empty() => NANOS_PER_SEC,
            "" => {
                return Err(DurationError(format!(
                    "{text:?}: {number:?} has no unit (ns, us, ms, s, m, h, d, w)"
                )));
            }
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => NANOS_PER_SEC,
            "m" => 60 * NANOS_PER_SEC,
            "h" => 3_600 * NANOS_PER_SEC,
            "d" => 86_400 * NANOS_PER_SEC,
            "w" => 7 * 86_400 * NANOS_PER_SEC,
            _ => {
                return Err(DurationError(format!(
                    "{text:?}: unknown unit {unit:?} (use ns, us, ms, s, m, h, d or w)"
                )));
            }
        };
        let term = term_nanos(number, unit_nanos).ok_or_else(expected)?;
        nanos = nanos
            .checked_add(term)
            .ok_or_else(|| DurationError(format!("{text:?} is too long")))?;
        first = false;
    }
    let secs = u64::try_from(nanos / NANOS_PER_SEC)
        .map_err(|_| DurationError(format!("{text:?} is too long")))?;
    // The remainder is below one second, so it fits a u32.
    let subsec = u32::try_from(nanos % NANOS_PER_SEC).map_err(|_| expected())?;
    Ok(Duration::new(secs, subsec))
}

/// [`parse_duration`] for settings where zero makes no sense (every interval, timeout and
/// window of the binaries): zero is refused. It is the `value_parser` of their duration flags,
/// so clap's error names the flag.
///
/// ```
/// use std::time::Duration;
/// use atlhyper_model::parse_positive_duration;
///
/// assert_eq!(parse_positive_duration("1m30s"), Ok(Duration::from_secs(90)));
/// assert!(parse_positive_duration("0s").is_err());
/// ```
pub fn parse_positive_duration(text: &str) -> Result<Duration, DurationError> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err(DurationError(format!("{text:?}: must be above zero")));
    }
    Ok(duration)
}

/// Nanoseconds of `number` (digits with at most one `.`) times `unit_nanos`; `None` when the
/// number is malformed or the product overflows. Fraction digits below one nanosecond are cut.
fn term_nanos(number: &str, unit_nanos: u128) -> Option<u128> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return None;
    }
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut nanos = whole.checked_mul(unit_nanos)?;
    // Digit by digit: no float rounding, and a long fraction cannot overflow.
    let mut scale = unit_nanos;
    for digit in fraction.bytes() {
        scale /= 10;
        if scale == 0 {
            break;
        }
        nanos = nanos.checked_add(u128::from(digit - b'0') * scale)?;
    }
    Some(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_prometheus_and_go_users_write() {
        for (text, want) in [
            ("500ms", Duration::from_millis(500)),
            ("5s", Duration::from_secs(5)),
            ("1m30s", Duration::from_secs(90)),
            ("1h", Duration::from_secs(3600)),
            ("2d", Duration::from_secs(2 * 86_400)),
            ("1w", Duration::from_secs(7 * 86_400)),
            ("30d", Duration::from_secs(30 * 86_400)),
            ("1h2m3s4ms5us6ns", Duration::new(3723, 4_005_006)),
            ("1.5s", Duration::from_millis(1500)),
            ("0.1s", Duration::from_millis(100)),
            (".5m", Duration::from_secs(30)),
            ("2.m", Duration::from_secs(120)),
            ("100us", Duration::from_micros(100)),
            ("100µs", Duration::from_micros(100)),
            ("1.0000000009s", Duration::from_secs(1)),
            ("0s", Duration::ZERO),
        ] {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn bare_numbers_are_seconds() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration(" 0.5 "), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn garbage_is_refused_with_the_text_quoted() {
        for bad in [
            "", " ", "s", "5x", "-1", "-5s", "+5s", "1m-5s", "abc", "5s3", "1e3", "1e400", "inf",
            "NaN", "1..5s", ".s", "5 s", "1m 30s", "5M", "1y", "5sec", "ms5",
        ] {
            let err = parse_duration(bad).expect_err(bad);
            if !bad.trim().is_empty() {
                assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
            }
        }
    }

    #[test]
    fn overflow_is_an_error_not_a_panic() {
        assert!(parse_duration("99999999999999999999d").is_err());
        assert!(parse_duration("999999999999999999999999999999999999999999s").is_err());
        assert!(parse_duration(&format!("{}s", u64::MAX)).is_ok());
        assert!(parse_duration(&format!("{}s1s", u64::MAX)).is_err());
    }

    #[test]
    fn zero_is_refused_where_it_makes_no_sense() {
        for zero in ["0", "0s", "0ms", "0.0h", "0h0m"] {
            let err = parse_positive_duration(zero).expect_err(zero);
            assert!(err.to_string().contains("above zero"), "{err}");
        }
        assert_eq!(parse_positive_duration("1ns"), Ok(Duration::from_nanos(1)));
    }
}
