//! The store's error type.

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// What can go wrong in a store. Engine errors are translated; their types never leak.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The id is unknown, or it belongs to another cluster (the two are not told apart on purpose).
    #[error("{0} not found")]
    NotFound(String),
    /// The caller passed something the store cannot accept.
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// The disk (or the database's size limit) is full; the store works again once space is back.
    #[error("storage full: {0}")]
    Full(String),
    /// The file is not an atlhyper-rs database, is from a newer version, or is corrupt.
    #[error("cannot use database: {0}")]
    Corrupt(String),
    /// Any other engine failure (I/O, locking, a lost worker thread).
    #[error("storage error: {0}")]
    Backend(String),
}
