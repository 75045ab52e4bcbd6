//! `/proc/sys/kernel/random/entropy_avail` and `poolsize`: one number of bits each. Since
//! Linux 5.18 both always read 256 (the pool is a hash and is never "drained"); older kernels
//! report a pool of 4096 bits and how full it is.

use crate::error::{ParseError, ParseErrorKind, ParseResult};
use crate::num::Words;

const FILE: &str = "/proc/sys/kernel/random/*";

/// Parses either file: a single non-negative number of bits.
pub fn parse_bits(text: &str) -> ParseResult<u64> {
    let mut w = Words::new(text);
    let bits =
        w.u64()
            .flatten()
            .ok_or(ParseError::new(FILE, 1, ParseErrorKind::BadNumber("bits")))?;
    if w.word().is_some() {
        return Err(ParseError::new(
            FILE,
            1,
            ParseErrorKind::Malformed("more than one number"),
        ));
    }
    Ok(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        assert_eq!(parse_bits("256\n"), Ok(256));
        assert_eq!(parse_bits("  3121"), Ok(3121));
        assert!(parse_bits("").is_err());
        assert!(parse_bits("-1").is_err());
        assert!(parse_bits("12 13").is_err());
        assert!(parse_bits("x").is_err());
    }
}
