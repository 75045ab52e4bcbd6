//! Answers shared by the reader routes: JSON already serialized, gzip when the client takes it,
//! and the query parameters as a map.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;

use crate::error::ApiError;
use crate::view::{Encoded, GZIP_MIN_BYTES};

/// The query string as a map; a malformed one is a 400 with axum's reason.
pub(crate) type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

/// The parameters of a [`Params`] extraction, or its 400.
pub(crate) fn params(p: Params) -> Result<HashMap<String, String>, ApiError> {
    p.map(|Query(q)| q)
        .map_err(|e| ApiError::bad_request(e.body_text()))
}

/// A JSON answer that is already serialized, gzip-compressed when the client accepts it and the
/// compressed form is ready (large answers are compressed once per snapshot, in the background).
pub(crate) fn negotiated(encoded: &Arc<Encoded>, headers: &HeaderMap) -> Response {
    let accepts_gzip = atlhyper_http::accepts_gzip(headers);
    let gzip = if accepts_gzip { encoded.gzip() } else { None };
    let mut response = match gzip {
        Some(g) => {
            let mut r = json_bytes(g);
            r.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            r
        }
        None => json_bytes(encoded.plain.clone()),
    };
    if encoded.plain.len() >= GZIP_MIN_BYTES {
        response
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    response
}

/// A JSON body that is already serialized.
pub(crate) fn json_bytes(bytes: Bytes) -> Response {
    let mut response = Response::new(Body::from(bytes));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Which AtlHyper shape a reader route answers in (`?format=`): v3 (camelCase, the default, what
/// the AtlHyper web of model_v3 reads) or v2 (snake_case, the answers from before v3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// `format=v3` or none.
    V3,
    /// `format=v2`.
    V2,
}

/// The `format` query parameter; anything but `v2` or `v3` is a 400.
pub(crate) fn format(query: &HashMap<String, String>) -> Result<Format, ApiError> {
    match query.get("format").map(String::as_str) {
        None | Some("v3") => Ok(Format::V3),
        Some("v2") => Ok(Format::V2),
        Some(other) => Err(ApiError::bad_request(format!(
            "format must be v3 (the default) or v2, not {other:?}"
        ))),
    }
}
