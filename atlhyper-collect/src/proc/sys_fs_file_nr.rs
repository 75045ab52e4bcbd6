//! `/proc/sys/fs/file-nr`: `allocated unused maximum` file handles, tab-separated (`607 0 2466170`).

use crate::error::{ParseError, ParseErrorKind, ParseResult};
use crate::num::Words;

const FILE: &str = "/proc/sys/fs/file-nr";

/// The kernel's file handle counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FileNr {
    /// File handles allocated (open files across the host).
    pub allocated: u64,
    /// Allocated but unused handles; always 0 since Linux 2.6 (freed handles are released).
    pub unused: u64,
    /// The limit, `fs.file-max`.
    pub maximum: u64,
}

/// Parses `/proc/sys/fs/file-nr`.
pub fn parse(text: &str) -> ParseResult<FileNr> {
    let err = |k| ParseError::new(FILE, 1, k);
    let mut w = Words::new(text);
    let mut next = |what| {
        w.u64()
            .flatten()
            .ok_or(err(ParseErrorKind::BadNumber(what)))
    };
    let nr = FileNr {
        allocated: next("allocated")?,
        unused: next("unused")?,
        maximum: next("maximum")?,
    };
    if w.word().is_some() {
        return Err(err(ParseErrorKind::Malformed("more than three numbers")));
    }
    Ok(nr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(
            parse("607\t0\t2466170\n").unwrap(),
            FileNr {
                allocated: 607,
                unused: 0,
                maximum: 2_466_170
            }
        );
        // fs.file-max can be set to the largest long.
        assert_eq!(
            parse("1 0 9223372036854775807").unwrap().maximum,
            i64::MAX as u64
        );
    }

    #[test]
    fn rejects_malformed() {
        assert!(parse("").is_err());
        assert!(parse("607 0").is_err());
        assert!(parse("607 x 5").is_err());
        assert!(parse("-1 0 5").is_err());
        assert!(parse("1 0 5 6").is_err());
    }
}
