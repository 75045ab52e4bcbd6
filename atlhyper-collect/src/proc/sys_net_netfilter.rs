//! `/proc/sys/net/netfilter/nf_conntrack_count` and `nf_conntrack_max`: one number each. Both
//! files exist only while the `nf_conntrack` module is loaded (a node without iptables/ipvs NAT
//! has none: no figure, not an error; the sampler decides that).

use crate::error::{ParseError, ParseErrorKind, ParseResult};
use crate::num::Words;

const FILE: &str = "/proc/sys/net/netfilter/nf_conntrack_*";

/// Parses either file: a single non-negative number of flow entries.
pub fn parse_entries(text: &str) -> ParseResult<u64> {
    let mut w = Words::new(text);
    let n = w.u64().flatten().ok_or(ParseError::new(
        FILE,
        1,
        ParseErrorKind::BadNumber("entries"),
    ))?;
    if w.word().is_some() {
        return Err(ParseError::new(
            FILE,
            1,
            ParseErrorKind::Malformed("more than one number"),
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        assert_eq!(parse_entries("262144\n"), Ok(262_144));
        assert_eq!(parse_entries("0"), Ok(0));
        assert!(parse_entries("").is_err());
        assert!(parse_entries("-5").is_err());
        assert!(parse_entries("1 2").is_err());
    }
}
