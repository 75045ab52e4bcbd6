//! Files whose parsed value is in force until they change: a token file mounted from a
//! Kubernetes Secret, a client certificate rotated by cert-manager. The files are read again
//! every few seconds ([`WatchedFiles::watch`]); a change that parses replaces the value for the
//! next request, one that does not (a half-written rotation, a typo) is logged once and the
//! previous value stays.
//!
//! ```
//! use std::path::PathBuf;
//! use atlhyper_http::watched_file::WatchedFiles;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("limit");
//! std::fs::write(&path, "5").unwrap();
//! let parse = |text: &str| text.trim().parse::<u32>().map_err(|e| e.to_string());
//! let limit = WatchedFiles::load_text(path.clone(), parse).unwrap();
//! assert_eq!(*limit.current(), 5);
//! std::fs::write(&path, "six").unwrap();
//! assert!(limit.reload().is_err());
//! assert_eq!(*limit.current(), 5, "a bad change keeps the value in force");
//! std::fs::write(&path, "6").unwrap();
//! assert!(limit.reload().unwrap());
//! assert_eq!(*limit.current(), 6);
//! ```

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// Default pause between two looks at a watched file (as the TLS certificates).
pub const DEFAULT_WATCH_INTERVAL: Duration = Duration::from_secs(5);

/// Why the files could not be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WatchError {
    /// A file could not be read (missing, no permission).
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        reason: String,
    },
    /// The files were read but do not make a value; the message names the file (and the line,
    /// for text files).
    #[error("{0}")]
    Invalid(String),
}

/// Makes a value of the files' bytes, one entry per path in order; an error message names the
/// file.
type Parse<T> = dyn Fn(&[Vec<u8>]) -> Result<T, String> + Send + Sync;

/// The bytes last taken and what was made of them.
struct Taken<T> {
    bytes: Vec<Vec<u8>>,
    value: Arc<T>,
}

/// A value made of one or more files, re-read on demand ([`Self::reload`]) or every few
/// seconds ([`Self::watch`]).
pub struct WatchedFiles<T> {
    paths: Vec<PathBuf>,
    parse: Box<Parse<T>>,
    taken: RwLock<Taken<T>>,
    /// The last reload problem, so one that stays is logged once.
    last_error: Mutex<Option<WatchError>>,
}

impl<T> fmt::Debug for WatchedFiles<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchedFiles")
            .field("paths", &self.paths)
            .finish_non_exhaustive()
    }
}

fn read_all(paths: &[PathBuf]) -> Result<Vec<Vec<u8>>, WatchError> {
    paths
        .iter()
        .map(|path| {
            std::fs::read(path).map_err(|e| WatchError::Read {
                path: path.clone(),
                reason: e.to_string(),
            })
        })
        .collect()
}

impl<T: Send + Sync + 'static> WatchedFiles<T> {
    /// Reads `paths` and makes the first value: a missing file or one that does not parse is
    /// an error, so a program fails at start rather than running without it.
    pub fn load(
        paths: Vec<PathBuf>,
        parse: impl Fn(&[Vec<u8>]) -> Result<T, String> + Send + Sync + 'static,
    ) -> Result<Self, WatchError> {
        let bytes = read_all(&paths)?;
        let value = parse(&bytes).map_err(WatchError::Invalid)?;
        Ok(Self::with_value(paths, bytes, value, Box::new(parse)))
    }

    /// One UTF-8 text file, parsed by `parse`; its error is prefixed with the path (so
    /// `line 3: ...` reads `/etc/tokens:3: ...`).
    pub fn load_text(
        path: PathBuf,
        parse: impl Fn(&str) -> Result<T, String> + Send + Sync + 'static,
    ) -> Result<Self, WatchError> {
        Self::load(vec![path.clone()], text_parser(path, parse))
    }

    /// [`Self::load_text`] with `value` in force until the first [`Self::reload`] (which the
    /// caller runs before serving): for a value that exists before the file is read.
    pub fn text_with_initial(
        path: PathBuf,
        value: T,
        parse: impl Fn(&str) -> Result<T, String> + Send + Sync + 'static,
    ) -> Self {
        let parse = text_parser(path.clone(), parse);
        Self::with_value(vec![path], Vec::new(), value, Box::new(parse))
    }

    fn with_value(
        paths: Vec<PathBuf>,
        bytes: Vec<Vec<u8>>,
        value: T,
        parse: Box<Parse<T>>,
    ) -> Self {
        Self {
            paths,
            parse,
            taken: RwLock::new(Taken {
                bytes,
                value: Arc::new(value),
            }),
            last_error: Mutex::new(None),
        }
    }

    /// The value in force.
    pub fn current(&self) -> Arc<T> {
        // A poisoned lock only means a reload panicked mid-swap; the value is still whole.
        let taken = self.taken.read().unwrap_or_else(|e| e.into_inner());
        Arc::clone(&taken.value)
    }

    /// The files watched.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// Reads the files again: `Ok(true)` when they changed and the new value is in force,
    /// `Ok(false)` when they are unchanged, an error (and the old value kept) when one cannot be
    /// read or they do not parse.
    pub fn reload(&self) -> Result<bool, WatchError> {
        let bytes = read_all(&self.paths)?;
        {
            let taken = self.taken.read().unwrap_or_else(|e| e.into_inner());
            if taken.bytes == bytes {
                return Ok(false);
            }
        }
        let value = (self.parse)(&bytes).map_err(WatchError::Invalid)?;
        *self.taken.write().unwrap_or_else(|e| e.into_inner()) = Taken {
            bytes,
            value: Arc::new(value),
        };
        Ok(true)
    }

    /// Notes a reload's outcome: whether `error` is news (differs from the last one) and so
    /// worth a log line. A good reload (`None`) clears it, so the next failure is news again.
    pub fn is_new_error(&self, error: Option<&WatchError>) -> bool {
        let mut last = self.last_error.lock().unwrap_or_else(|e| e.into_inner());
        let news = error.is_some() && last.as_ref() != error;
        *last = error.cloned();
        news
    }

    /// Reloads every `every` (off the async workers), logging each change as `"{what}
    /// reloaded"` and each new problem as a warning (the value in force stays), and calls
    /// `changed` with each new value. Runs until dropped: callers select it against their
    /// shutdown or abort it.
    pub async fn watch(
        self: Arc<Self>,
        every: Duration,
        what: &'static str,
        changed: impl Fn(&T) + Send + 'static,
    ) {
        loop {
            tokio::time::sleep(every).await;
            let this = Arc::clone(&self);
            let Ok(outcome) = tokio::task::spawn_blocking(move || this.reload()).await else {
                return;
            };
            match outcome {
                Ok(true) => {
                    self.is_new_error(None);
                    let path = self.paths.first().map(|p| p.display().to_string());
                    tracing::info!(path = path.unwrap_or_default(), "{what} reloaded");
                    changed(&self.current());
                }
                Ok(false) => {
                    self.is_new_error(None);
                }
                Err(e) => {
                    if self.is_new_error(Some(&e)) {
                        tracing::warn!(error = %e, "{what} not reloaded; the one in force stays");
                    }
                }
            }
        }
    }
}

/// A parser of the bytes of one text file that names the file in its errors.
fn text_parser<T>(
    path: PathBuf,
    parse: impl Fn(&str) -> Result<T, String> + Send + Sync + 'static,
) -> impl Fn(&[Vec<u8>]) -> Result<T, String> + Send + Sync + 'static {
    move |bytes: &[Vec<u8>]| {
        let shown = path.display();
        let text = bytes
            .first()
            .map(|b| std::str::from_utf8(b))
            .unwrap_or(Ok(""))
            .map_err(|_| format!("{shown}: not UTF-8 text"))?;
        parse(text).map_err(|e| match e.strip_prefix("line ") {
            // `line 3: why` becomes `path:3: why`, as compilers name a place in a file.
            Some(rest) => format!("{shown}:{rest}"),
            None => format!("{shown}: {e}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_number(text: &str) -> Result<u32, String> {
        text.trim()
            .parse()
            .map_err(|_| "line 1: not a number".to_owned())
    }

    #[test]
    fn a_missing_file_fails_the_start_and_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent");
        let e = WatchedFiles::load_text(path.clone(), parse_number).unwrap_err();
        assert!(matches!(e, WatchError::Read { .. }), "{e}");
        assert!(e.to_string().contains("absent"), "{e}");
    }

    #[test]
    fn errors_name_the_file_and_line_and_keep_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n");
        std::fs::write(&path, "1").unwrap();
        let watched = WatchedFiles::load_text(path.clone(), parse_number).unwrap();
        assert!(!watched.reload().unwrap(), "unchanged");
        std::fs::write(&path, "x").unwrap();
        let e = watched.reload().unwrap_err();
        assert_eq!(e.to_string(), format!("{}:1: not a number", path.display()));
        assert_eq!(*watched.current(), 1);
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        assert!(
            watched
                .reload()
                .unwrap_err()
                .to_string()
                .contains("not UTF-8")
        );
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(watched.reload(), Err(WatchError::Read { .. })));
        assert_eq!(*watched.current(), 1);
    }

    #[test]
    fn several_files_change_together() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, "x").unwrap();
        std::fs::write(&b, "y").unwrap();
        let joined = |bytes: &[Vec<u8>]| -> Result<Vec<u8>, String> { Ok(bytes.concat()) };
        let watched = WatchedFiles::load(vec![a, b.clone()], joined).unwrap();
        assert_eq!(*watched.current(), b"xy");
        std::fs::write(&b, "z").unwrap();
        assert!(watched.reload().unwrap());
        assert_eq!(*watched.current(), b"xz");
    }

    #[test]
    fn a_problem_is_news_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n");
        let watched = WatchedFiles::text_with_initial(path, 0, parse_number);
        let bad = |s: &str| WatchError::Invalid(s.to_owned());
        assert!(watched.is_new_error(Some(&bad("a"))));
        assert!(!watched.is_new_error(Some(&bad("a"))), "the same problem");
        assert!(watched.is_new_error(Some(&bad("b"))), "another problem");
        assert!(!watched.is_new_error(None));
        assert!(watched.is_new_error(Some(&bad("b"))), "broken again");
    }

    #[tokio::test(start_paused = true)]
    async fn watch_takes_a_change_and_tells() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n");
        std::fs::write(&path, "1").unwrap();
        let watched = Arc::new(WatchedFiles::load_text(path.clone(), parse_number).unwrap());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(Arc::clone(&watched).watch(
            Duration::from_secs(5),
            "number",
            move |n: &u32| {
                let _ = tx.send(*n);
            },
        ));
        std::fs::write(&path, "2").unwrap();
        assert_eq!(rx.recv().await, Some(2));
        assert_eq!(*watched.current(), 2);
        task.abort();
    }
}
