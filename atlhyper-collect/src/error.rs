//! Errors: [`ParseError`] from the pure parsers (kernel file and line), [`Error`] from the sampler.

use std::path::PathBuf;

/// A parser rejected its input. Carries the kernel file it was parsing (as the kernel names it, e.g.
/// `/proc/stat`), the 1-based line, and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {kind}")]
pub struct ParseError {
    /// Kernel file name, e.g. `/proc/stat` or `/proc/[pid]/stat`.
    pub file: &'static str,
    /// 1-based line number (1 for one-line files).
    pub line: usize,
    /// What was wrong.
    pub kind: ParseErrorKind,
}

/// What a parser found wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    /// A required field or line was absent.
    #[error("missing {0}")]
    Missing(&'static str),
    /// A field that must be a number was not one (or overflowed).
    #[error("invalid number in {0}")]
    BadNumber(&'static str),
    /// A line did not have the expected shape.
    #[error("malformed {0}")]
    Malformed(&'static str),
}

impl ParseError {
    /// Builds an error for `file` at `line`.
    pub const fn new(file: &'static str, line: usize, kind: ParseErrorKind) -> Self {
        Self { file, line, kind }
    }
}

/// Something the sampler could not do: read a file, parse it, or finish a statfs in time.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Opening or reading a file failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A file was read but its content was rejected.
    #[error("parsing {path}: {source}")]
    Parse {
        /// The path that was read.
        path: PathBuf,
        /// File, line and reason.
        #[source]
        source: ParseError,
    },
    /// statfs did not answer within the configured timeout (e.g. a hung NFS mount).
    #[error("statfs {path} timed out after {timeout_ms} ms")]
    StatfsTimeout {
        /// Mount point (under the host root).
        path: PathBuf,
        /// The timeout that expired, milliseconds.
        timeout_ms: u64,
    },
    /// statfs on this path is still blocked from an earlier cycle; it is not retried until it returns.
    #[error("statfs {path} still blocked from an earlier cycle")]
    StatfsStillBlocked {
        /// Mount point (under the host root).
        path: PathBuf,
    },
}

impl Error {
    /// True when the error means the file does not exist (or the process it belonged to exited).
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::Io { source, .. } => {
                source.kind() == std::io::ErrorKind::NotFound
                    || source.raw_os_error() == Some(libc::ESRCH)
            }
            _ => false,
        }
    }
}

/// Shorthand for results with [`ParseError`].
pub type ParseResult<T> = Result<T, ParseError>;
