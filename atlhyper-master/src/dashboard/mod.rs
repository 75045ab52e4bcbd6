//! The dashboard page served at `/`, with its assets embedded in the binary.
//!
//! The page is plain HTML, CSS and JavaScript written for atlhyper-rs (no third-party code); it
//! reads the master's REST API (`/api/v2/...`) from the same origin and fetches nothing else, so
//! the master works without any network access beyond its agents.
//!
//! The script is a set of ES modules, no build step: the master joins them into one script when
//! it starts (`bundle`), so a first load fetches the page, its style and one script. Each
//! module is still served under its own name.
//!
//! Caching: every asset carries a strong `ETag` (a hash of its bytes) and answers
//! `If-None-Match` with 304. The page links its stylesheet as `/assets/app.css?v=<hash>` and its
//! script as `/assets/<version>/bundle.js` (the modules as `/assets/<version>/<module>`), where
//! `<version>` is one hash over all modules, so the relative imports between modules stay in
//! that directory and a change to any module moves every module URL. A request whose `v` or
//! `<version>` matches the embedded files is cacheable for a year (`immutable`), anything else
//! must revalidate, so a new master version is picked up at once. Browsers that accept gzip get
//! the copies compressed once, when the router is first built (in a thread beside the start-up).
//!
//! ```
//! use axum::Router;
//!
//! // The dashboard merges into any router, whatever its state type.
//! let app: Router = Router::new().merge(atlhyper_master::dashboard::router());
//! # let _ = app;
//! ```

mod assets;
mod bundle;

use axum::Router;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use assets::Asset;

/// Routes of the dashboard: `GET /` (the page), `GET /assets/{file}` (its style, and its script
/// modules unversioned) and `GET /assets/{version}/{module}` (the modules as the page loads them).
///
/// The router has no state of its own, so it merges into the master's router whatever state that
/// one carries.
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    // Compressing the assets (level 9) takes a moment, in a debug build most of a first load:
    // done once per process, beside the start-up rather than in the first request.
    static PREPARED: std::sync::Once = std::sync::Once::new();
    PREPARED.call_once(|| {
        let _ = std::thread::Builder::new()
            .name("dashboard-assets".into())
            .spawn(assets::prepare);
    });
    Router::new()
        .route("/", get(index))
        .route("/assets/{file}", get(asset))
        .route("/assets/{version}/{file}", get(module))
}

async fn index(headers: HeaderMap) -> Response {
    serve(assets::index(), &headers, false)
}

async fn asset(
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(asset) = assets::by_name(&file) else {
        return not_found(&file);
    };
    let versioned = query
        .as_deref()
        .and_then(version_param)
        .is_some_and(|v| v == asset.hash);
    serve(asset, &headers, versioned)
}

async fn module(Path((version, file)): Path<(String, String)>, headers: HeaderMap) -> Response {
    let Some(asset) = assets::module(&file) else {
        return not_found(&file);
    };
    serve(asset, &headers, version == assets::modules_version())
}

/// The `v` parameter of a query string (`v=<hash>`), if present.
fn version_param(query: &str) -> Option<&str> {
    query.split('&').find_map(|pair| pair.strip_prefix("v="))
}

fn not_found(file: &str) -> Response {
    let body = atlhyper_model::ErrorBody::new(format!("no dashboard asset named {file:?}"));
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

/// Content security policy of the page: everything from this origin, nothing from elsewhere.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

fn serve(asset: &Asset, headers: &HeaderMap, versioned: bool) -> Response {
    let gzipped = asset
        .gzip
        .as_ref()
        .filter(|_| atlhyper_http::accepts_gzip(headers));
    let gzip = gzipped.is_some();
    let (body, etag) = match gzipped {
        Some(g) => (g.clone(), &asset.etag_gzip),
        None => (asset.body.clone(), &asset.etag),
    };
    let cache = if versioned {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut response = if if_none_match(headers, etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = body.into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
        if gzip {
            r.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        r
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if asset.content_type.starts_with("text/html") {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
    }
    response
}

/// Whether `If-None-Match` names this ETag (or `*`).
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

#[cfg(test)]
mod tests;
