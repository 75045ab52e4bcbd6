//! `/sys/class/net/<iface>/{operstate,speed,address,mtu}`.

use crate::error::{ParseError, ParseErrorKind, ParseResult};
use crate::num::{parse_i64, parse_u64};

const FILE: &str = "/sys/class/net/*";

/// Parses `operstate` (`up`, `down`, `unknown`, `dormant`, ...), trimmed.
pub fn parse_operstate(text: &str) -> &str {
    text.trim()
}

/// Parses `speed` in Mbit/s. Virtual NICs print `-1` (or fail the read with EINVAL, which the
/// sampler maps to -1); any negative value becomes -1.
pub fn parse_speed(text: &str) -> ParseResult<i64> {
    let v = parse_i64(text.trim()).ok_or(ParseError::new(
        FILE,
        1,
        ParseErrorKind::BadNumber("speed"),
    ))?;
    Ok(if v < 0 { -1 } else { v })
}

/// Parses `address` (a MAC like `52:54:00:12:34:56`), trimmed.
pub fn parse_address(text: &str) -> &str {
    text.trim()
}

/// Parses `mtu`.
pub fn parse_mtu(text: &str) -> ParseResult<u32> {
    parse_u64(text.trim())
        .and_then(|v| u32::try_from(v).ok())
        .ok_or(ParseError::new(FILE, 1, ParseErrorKind::BadNumber("mtu")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_attributes() {
        assert_eq!(parse_operstate("up\n"), "up");
        assert_eq!(parse_speed("1000\n").unwrap(), 1000);
        assert_eq!(parse_speed("-1\n").unwrap(), -1);
        assert_eq!(parse_speed("4294967295").unwrap(), 4_294_967_295);
        assert!(parse_speed("fast").is_err());
        assert_eq!(parse_address("52:54:00:12:34:56\n"), "52:54:00:12:34:56");
        assert_eq!(parse_mtu("1500\n").unwrap(), 1500);
        assert!(parse_mtu("").is_err());
        assert!(parse_mtu("99999999999").is_err());
    }
}
