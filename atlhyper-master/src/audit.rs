//! The audit trail: every write through the reader API (command created, alert rule or silence
//! created, changed or deleted, cluster or node deleted, and any write route added later) is
//! recorded with its time, who sent it, from where, what it asked, on what, and how it ended,
//! through the [`AuditLog`](atlhyper_store::AuditLog) store trait.
//!
//! One route layer ([`record_writes`]) does it for every route it wraps, so a new write route is
//! audited without a line of its own; a route that knows more than its path (the id of what it
//! created) says so with an [`AuditNote`] on its answer. Refused attempts (401, 403, 400) are
//! recorded too: they are what an audit is read for. Rate-limited requests (429) are not, so
//! the log grows no faster than the write budget.

use std::net::SocketAddr;

use atlhyper_http::tls::ClientCertificate;
use atlhyper_store::{AuditEntry, MAX_AUDIT_FIELD_BYTES};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use chrono::Utc;

use crate::Master;

/// What a write route adds to its audit entry, as an extension of its answer:
/// `(StatusCode::CREATED, Extension(AuditNote::new(..)), Json(..))`.
#[derive(Debug, Clone, Default)]
pub(crate) struct AuditNote {
    /// The resource made or changed, when the path does not name it (a created command).
    pub target: Option<String>,
    /// Anything else worth keeping (the cluster and action of a command).
    pub detail: String,
}

impl AuditNote {
    /// A note naming the created `target`, with `detail`.
    pub(crate) fn new(target: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            target: Some(target.into()),
            detail: detail.into(),
        }
    }
}

/// The write routes' action names, by method and route pattern. A write route missing here is
/// still recorded, as `METHOD /route/pattern`.
const ACTIONS: &[(&str, &str, &str)] = &[
    ("POST", "/api/v2/commands", "command.create"),
    ("DELETE", "/api/v2/clusters/{id}", "cluster.delete"),
    (
        "DELETE",
        "/api/v2/clusters/{id}/nodes/{node}",
        "node.delete",
    ),
    ("POST", "/api/v2/alert-rules", "alert_rule.create"),
    ("PUT", "/api/v2/alert-rules/{name}", "alert_rule.update"),
    ("DELETE", "/api/v2/alert-rules/{name}", "alert_rule.delete"),
    ("POST", "/api/v2/silences", "silence.create"),
    ("DELETE", "/api/v2/silences/{id}", "silence.expire"),
];

/// The action of a write: its name from [`ACTIONS`], else `METHOD /route/pattern`.
pub(crate) fn action_name(method: &Method, route: &str) -> String {
    ACTIONS
        .iter()
        .find(|(m, r, _)| *m == method.as_str() && *r == route)
        .map_or_else(
            || format!("{method} {route}"),
            |(_, _, name)| (*name).to_owned(),
        )
}

/// `text` cut to at most [`MAX_AUDIT_FIELD_BYTES`] at a character boundary.
fn capped(mut text: String) -> String {
    if text.len() > MAX_AUDIT_FIELD_BYTES {
        let mut end = MAX_AUDIT_FIELD_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// Who sent a request: its reader token's name; `anonymous` on a master open to readers;
/// `cert:<subject>` for a client certificate without a known token; else `unknown`. Never a
/// token's text.
fn actor(master: &Master, request: &Request) -> String {
    if let Some((_, name)) = master.tokens.reader_token(request.headers()) {
        return name;
    }
    if master.tokens.readers_open() {
        return "anonymous".to_owned();
    }
    match request.extensions().get::<ClientCertificate>() {
        Some(cert) => format!("cert:{}", cert.subject()),
        None => "unknown".to_owned(),
    }
}

/// Route layer recording every write (any method but GET, HEAD, OPTIONS, TRACE) after its answer.
/// The entry is written before the answer leaves, so a client that got its answer finds the
/// entry; a store that fails is counted and logged (with the entry) and the answer stands: the
/// write it describes has happened either way.
pub(crate) async fn record_writes(
    State(master): State<Master>,
    request: Request,
    next: Next,
) -> Response {
    if request.method().is_safe() {
        return next.run(request).await;
    }
    let route = request.extensions().get::<MatchedPath>().map_or_else(
        || request.uri().path().to_owned(),
        |p| p.as_str().to_owned(),
    );
    let action = action_name(request.method(), &route);
    let path = request.uri().path().to_owned();
    let source = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(String::new, |ConnectInfo(peer)| peer.to_string());
    let actor = actor(&master, &request);
    let response = next.run(request).await;
    let note = response.extensions().get::<AuditNote>().cloned();
    let (target, detail) = match note {
        Some(note) => (note.target.unwrap_or(path), note.detail),
        None => (path, String::new()),
    };
    let entry = AuditEntry {
        at: Utc::now(),
        actor: capped(actor),
        source: capped(source),
        action: capped(action),
        target: capped(target),
        status: response.status().as_u16(),
        detail: capped(detail),
    };
    tracing::info!(
        actor = %entry.actor,
        source = %entry.source,
        action = %entry.action,
        target = %entry.target,
        status = entry.status,
        "audit"
    );
    // Spawned, so a client that hangs up now does not cancel the write of its entry.
    let log = std::sync::Arc::clone(&master.audit);
    let written =
        tokio::spawn(async move { log.append_audit(&entry).await.map_err(|e| (e, entry)) });
    match written.await {
        Ok(Ok(())) => {}
        Ok(Err((e, entry))) => {
            master.store_failure("recording an audit entry", &e);
            tracing::error!(?entry, "audit entry not stored");
        }
        Err(_) => tracing::error!("the audit write task failed"),
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_actions_and_the_fallback() {
        assert_eq!(
            action_name(&Method::POST, "/api/v2/commands"),
            "command.create"
        );
        assert_eq!(
            action_name(&Method::DELETE, "/api/v2/clusters/{id}/nodes/{node}"),
            "node.delete"
        );
        assert_eq!(
            action_name(&Method::PATCH, "/api/v2/commands/{id}"),
            "PATCH /api/v2/commands/{id}"
        );
    }

    #[test]
    fn fields_are_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_AUDIT_FIELD_BYTES);
        let cut = capped(long);
        assert!(cut.len() <= MAX_AUDIT_FIELD_BYTES);
        assert!(cut.len() >= MAX_AUDIT_FIELD_BYTES - 1);
        assert_eq!(capped("short".to_owned()), "short");
    }
}
