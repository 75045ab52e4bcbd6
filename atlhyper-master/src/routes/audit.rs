//! `GET /api/v2/audit?from=&to=&action=&limit=` (operators only): the audit log, newest first.
//! A bad or unknown parameter is a 400 that names it.

use std::collections::HashMap;

use atlhyper_store::{AuditEntry, AuditQuery, MAX_AUDIT_LIMIT};
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};

use crate::Master;
use crate::error::ApiError;
use crate::routes::respond::{Params, params};

/// The parameters the route reads.
const PARAMETERS: [&str; 4] = ["from", "to", "action", "limit"];

/// Longest `action` filter, bytes (the names are short; see `crate::audit`).
const MAX_ACTION_LEN: usize = 128;

/// The query of a request's parameters, or a 400 naming the first bad one.
pub(crate) fn parse_query(query: &HashMap<String, String>) -> Result<AuditQuery, ApiError> {
    let mut unknown: Vec<&String> = query
        .keys()
        .filter(|k| !PARAMETERS.contains(&k.as_str()))
        .collect();
    unknown.sort();
    if let Some(name) = unknown.first() {
        return Err(ApiError::bad_request(format!(
            "{name}: unknown parameter (the audit log takes from, to, action and limit)"
        )));
    }
    let time = |name: &str| -> Result<Option<DateTime<Utc>>, ApiError> {
        query
            .get(name)
            .map(|v| {
                DateTime::parse_from_rfc3339(v.trim())
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| {
                        ApiError::bad_request(format!(
                            "{name}: {v:?} is not an RFC 3339 time (2026-11-30T18:00:00Z)"
                        ))
                    })
            })
            .transpose()
    };
    let from = time("from")?;
    let to = time("to")?;
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(ApiError::bad_request("from: is later than to"));
    }
    let action = match query.get("action").map(|a| a.trim()) {
        None => None,
        Some(a) if a.is_empty() || a.len() > MAX_ACTION_LEN => {
            return Err(ApiError::bad_request(format!(
                "action: must be 1 to {MAX_ACTION_LEN} characters (command.create, ...)"
            )));
        }
        Some(a) => Some(a.to_owned()),
    };
    let limit = match query.get("limit") {
        None => AuditQuery::default().limit,
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_AUDIT_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "limit: {v:?} is not an integer from 1 to {MAX_AUDIT_LIMIT}"
                ))
            })?,
    };
    Ok(AuditQuery {
        from,
        to,
        action,
        limit,
    })
}

/// `GET /api/v2/audit` (operator): the entries matching the query, newest first.
pub(crate) async fn list_audit(
    State(master): State<Master>,
    query: Params,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    let query = parse_query(&params(query)?)?;
    master
        .audit
        .list_audit(&query)
        .await
        .map(Json)
        .map_err(master.store_failed("reading the audit log"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Result<AuditQuery, ApiError> {
        let map = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        parse_query(&map)
    }

    #[test]
    fn parameters_parse_and_bad_ones_are_named() {
        assert_eq!(q(&[]).unwrap(), AuditQuery::default());
        let full = q(&[
            ("from", "2026-11-30T10:00:00Z"),
            ("to", "2026-11-30T12:00:00+01:00"),
            ("action", "command.create"),
            ("limit", "5"),
        ])
        .unwrap();
        assert_eq!(full.limit, 5);
        assert_eq!(full.action.as_deref(), Some("command.create"));
        assert_eq!(full.to.unwrap().to_rfc3339(), "2026-11-30T11:00:00+00:00");
        for (pairs, names) in [
            (&[("from", "yesterday")][..], "from:"),
            (&[("to", "1700000000")][..], "to:"),
            (&[("limit", "0")][..], "limit:"),
            (&[("limit", "10001")][..], "limit:"),
            (&[("limit", "-1")][..], "limit:"),
            (&[("action", "")][..], "action:"),
            (&[("acton", "command.create")][..], "acton:"),
            (
                &[
                    ("from", "2026-11-30T12:00:00Z"),
                    ("to", "2026-11-30T10:00:00Z"),
                ][..],
                "from:",
            ),
        ] {
            let e = q(pairs).unwrap_err();
            assert_eq!(e.status, 400, "{pairs:?}");
            assert!(e.message.starts_with(names), "{pairs:?}: {}", e.message);
        }
    }
}
