//! `/sys/devices/system/cpu/cpu*/cpufreq/scaling_cur_freq` (kHz).

use crate::error::{ParseError, ParseErrorKind, ParseResult};
use crate::num::parse_u64;

/// Parses `scaling_cur_freq` into MHz.
pub fn parse_cur_freq_mhz(text: &str) -> ParseResult<f64> {
    let khz = parse_u64(text.trim()).ok_or(ParseError::new(
        "/sys/devices/system/cpu/cpu*/cpufreq/scaling_cur_freq",
        1,
        ParseErrorKind::BadNumber("kHz"),
    ))?;
    Ok(khz as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_khz() {
        assert_eq!(parse_cur_freq_mhz("2600000\n").unwrap(), 2600.0);
        assert!(parse_cur_freq_mhz("").is_err());
        assert!(parse_cur_freq_mhz("-1").is_err());
    }
}
