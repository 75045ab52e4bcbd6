//! The append-only logs over SQLite (audit entries, notification deliveries): rows with their
//! time `at` (ns) and a rowid `id`, listed newest first under optional filters and pruned by
//! age, one way for every such table.

use rusqlite::{Connection, Row, ToSql};

use super::map_err;
use crate::error::StoreResult;

/// Which rows of a log to list.
#[derive(Debug, Default)]
pub(super) struct LogFilter {
    /// Rows at or after this time (ns).
    pub from: Option<i64>,
    /// Rows at or before this time (ns).
    pub to: Option<i64>,
    /// Rows whose column (a name from this crate, never from a request) equals the value.
    pub equal: Option<(&'static str, String)>,
    /// At most this many rows.
    pub limit: usize,
}

/// The rows of `table`, `columns` (a tuple `R` of the same arity and order), newest first
/// (ties by insertion, newest first) under `filter`.
pub(super) fn newest_first<R>(
    conn: &Connection,
    table: &str,
    columns: &str,
    filter: &LogFilter,
) -> StoreResult<Vec<R>>
where
    R: for<'a> TryFrom<&'a Row<'a>, Error = rusqlite::Error>,
{
    let (column, value) = match &filter.equal {
        Some((column, value)) => (*column, Some(value.as_str())),
        None => ("at", None),
    };
    let sql = format!(
        "SELECT {columns} FROM {table} \
         WHERE (?1 IS NULL OR at >= ?1) AND (?2 IS NULL OR at <= ?2) \
           AND (?3 IS NULL OR {column} = ?3) \
         ORDER BY at DESC, id DESC LIMIT ?4"
    );
    let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
    let params: [&dyn ToSql; 4] = [&filter.from, &filter.to, &value, &limit];
    let mut st = conn.prepare_cached(&sql).map_err(map_err)?;
    st.query_map(&params[..], |row| R::try_from(row))
        .and_then(|rows| rows.collect::<Result<Vec<R>, _>>())
        .map_err(map_err)
}

/// Deletes the rows of `table` older than `before` (ns); how many.
pub(super) fn prune_before(conn: &Connection, table: &str, before: i64) -> StoreResult<u64> {
    conn.prepare_cached(&format!("DELETE FROM {table} WHERE at < ?1"))
        .and_then(|mut st| st.execute([before]))
        .map(|n| n as u64)
        .map_err(map_err)
}
