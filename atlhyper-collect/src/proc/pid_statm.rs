//! `/proc/[pid]/statm`: seven page counts on one line, `size resident shared text lib data dt`.
//! Cheaper for the kernel than `/proc/[pid]/stat` (no thread walk, no signal lock), so the process
//! scan ranks memory from it.

use crate::error::{ParseError, ParseErrorKind, ParseResult};
use crate::num::Words;

const FILE: &str = "/proc/[pid]/statm";

/// The fields of `/proc/[pid]/statm` the collector uses, in pages (of the host's page size).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PidStatm {
    /// Virtual memory size, pages.
    pub size_pages: u64,
    /// Resident set size (anonymous + file + shared memory), pages: VmRSS in pages.
    pub resident_pages: u64,
    /// Resident file-backed and shared memory, pages (RssFile + RssShmem).
    pub shared_pages: u64,
}

/// Parses `/proc/[pid]/statm`. The first three fields are required; the rest (text, lib, data,
/// dt) must be numbers when present. Kernel threads and zombies have no memory map: all zeros.
pub fn parse(text: &str) -> ParseResult<PidStatm> {
    let err = |k| ParseError::new(FILE, 1, k);
    let mut it = Words::new(text);
    let mut field = |name| match it.u64() {
        Some(Some(v)) => Ok(v),
        Some(None) => Err(err(ParseErrorKind::BadNumber(name))),
        None => Err(err(ParseErrorKind::Missing(name))),
    };
    let statm = PidStatm {
        size_pages: field("size")?,
        resident_pages: field("resident")?,
        shared_pages: field("shared")?,
    };
    for name in ["text", "lib", "data", "dt"] {
        match it.u64() {
            Some(Some(_)) => {}
            Some(None) => return Err(err(ParseErrorKind::BadNumber(name))),
            None => break,
        }
    }
    if it.word().is_some() {
        return Err(err(ParseErrorKind::Malformed("more than seven fields")));
    }
    Ok(statm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let s = parse("5522 1268 995 205 0 276 0\n").unwrap();
        assert_eq!(
            s,
            PidStatm {
                size_pages: 5522,
                resident_pages: 1268,
                shared_pages: 995
            }
        );
        // A kernel thread.
        assert_eq!(parse("0 0 0 0 0 0 0\n").unwrap(), PidStatm::default());
        // Only the fields it needs.
        assert_eq!(parse("1 2 3").unwrap().resident_pages, 2);
    }

    #[test]
    fn rejects_malformed() {
        assert!(parse("").is_err());
        assert!(parse("\n").is_err());
        assert!(parse("1 2").is_err());
        assert!(parse("1 -2 3 0 0 0 0").is_err());
        assert!(parse("1 x 3 0 0 0 0").is_err());
        assert!(parse("1 2 3 0 0 y 0").is_err());
        assert!(parse("1 2 3 0 0 0 0 8").is_err());
        assert!(parse("1 18446744073709551616 3").is_err());
    }
}
