use std::io::Read;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt;

use super::*;

async fn get_with(path: &str, headers: &[(header::HeaderName, &str)]) -> Response {
    let mut req = Request::get(path);
    for (k, v) in headers {
        req = req.header(k, *v);
    }
    router::<()>()
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("infallible")
}

async fn body_bytes(r: Response) -> Vec<u8> {
    axum::body::to_bytes(r.into_body(), 1 << 20)
        .await
        .expect("body")
        .to_vec()
}

fn header_str(r: &Response, name: header::HeaderName) -> &str {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn index_is_html_with_hashed_asset_links() {
    let r = get_with("/", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        header_str(&r, header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    assert_eq!(header_str(&r, header::CACHE_CONTROL), "no-cache");
    assert!(header_str(&r, header::CONTENT_SECURITY_POLICY).contains("default-src 'self'"));
    let html = String::from_utf8(body_bytes(r).await).expect("utf-8");
    let js = assets::by_name("app.js").expect("app.js");
    let css = assets::by_name("app.css").expect("app.css");
    assert!(html.contains(&format!("/assets/app.js?v={}", js.hash)));
    assert!(html.contains(&format!("/assets/app.css?v={}", css.hash)));
    assert!(!html.contains("{{"), "unreplaced placeholder in the page");
}

#[tokio::test]
async fn assets_have_their_content_types() {
    for (path, ct) in [
        ("/assets/app.js", "text/javascript; charset=utf-8"),
        ("/assets/app.css", "text/css; charset=utf-8"),
    ] {
        let r = get_with(path, &[]).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(header_str(&r, header::CONTENT_TYPE), ct, "{path}");
        assert_eq!(header_str(&r, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        assert!(!body_bytes(r).await.is_empty());
    }
}

#[tokio::test]
async fn unknown_asset_is_a_json_404() {
    let r = get_with("/assets/nope.js", &[]).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = serde_json::from_slice(&body_bytes(r).await).expect("json");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("nope.js"))
    );
}

#[tokio::test]
async fn versioned_asset_is_immutable_and_others_revalidate() {
    let js = assets::by_name("app.js").expect("app.js");
    let r = get_with(&format!("/assets/app.js?v={}", js.hash), &[]).await;
    assert_eq!(
        header_str(&r, header::CACHE_CONTROL),
        "public, max-age=31536000, immutable"
    );
    let r = get_with("/assets/app.js?v=0000000000000000", &[]).await;
    assert_eq!(header_str(&r, header::CACHE_CONTROL), "no-cache");
    let r = get_with("/assets/app.js", &[]).await;
    assert_eq!(header_str(&r, header::CACHE_CONTROL), "no-cache");
}

#[tokio::test]
async fn etag_revalidation_answers_304_without_body() {
    let r = get_with("/assets/app.css", &[]).await;
    let etag = header_str(&r, header::ETAG).to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    let r = get_with("/assets/app.css", &[(header::IF_NONE_MATCH, &etag)]).await;
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header_str(&r, header::ETAG), etag);
    assert!(body_bytes(r).await.is_empty());
    // A different tag gets the full body.
    let r = get_with("/assets/app.css", &[(header::IF_NONE_MATCH, "\"other\"")]).await;
    assert_eq!(r.status(), StatusCode::OK);
    // The page revalidates the same way.
    let r = get_with("/", &[]).await;
    let etag = header_str(&r, header::ETAG).to_owned();
    let r = get_with("/", &[(header::IF_NONE_MATCH, &etag)]).await;
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn gzip_is_served_when_accepted_and_decodes_to_the_asset() {
    let plain = body_bytes(get_with("/assets/app.js", &[]).await).await;
    let r = get_with(
        "/assets/app.js",
        &[(header::ACCEPT_ENCODING, "br;q=1.0, gzip;q=0.8")],
    )
    .await;
    assert_eq!(header_str(&r, header::CONTENT_ENCODING), "gzip");
    assert_eq!(header_str(&r, header::VARY), "Accept-Encoding");
    let plain_etag = assets::by_name("app.js").expect("app.js").etag.clone();
    assert_ne!(header_str(&r, header::ETAG), plain_etag);
    let packed = body_bytes(r).await;
    assert!(
        packed.len() < plain.len() / 2,
        "gzip should at least halve the script"
    );
    let mut unpacked = Vec::new();
    flate2::read::GzDecoder::new(packed.as_slice())
        .read_to_end(&mut unpacked)
        .expect("valid gzip");
    assert_eq!(unpacked, plain);

    let r = get_with("/assets/app.js", &[(header::ACCEPT_ENCODING, "gzip;q=0")]).await;
    assert!(r.headers().get(header::CONTENT_ENCODING).is_none());
    let r = get_with("/assets/app.js", &[(header::ACCEPT_ENCODING, "identity")]).await;
    assert!(r.headers().get(header::CONTENT_ENCODING).is_none());
}

#[tokio::test]
async fn head_answers_like_get() {
    let req = Request::head("/").body(Body::empty()).expect("request");
    let r = router::<()>().oneshot(req).await.expect("infallible");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        header_str(&r, header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
}

#[test]
fn page_weight_is_under_budget() {
    // The budget: the whole page (HTML, script, style) under 200 KB as written,
    // before any compression.
    let total = assets::index().body.len()
        + assets::by_name("app.js").expect("js").body.len()
        + assets::by_name("app.css").expect("css").body.len();
    assert!(total < 200 * 1024, "page weight {total} bytes");
}

#[test]
fn page_loads_nothing_from_other_origins() {
    let html = std::str::from_utf8(&assets::index().body).expect("utf-8");
    for needle in ["http://", "https://", "src=\"//", "href=\"//"] {
        assert!(!html.contains(needle), "page refers to {needle}");
    }
    let css = std::str::from_utf8(&assets::by_name("app.css").expect("css").body).expect("utf-8");
    assert!(!css.contains("url("), "stylesheet loads a resource");
    let js = std::str::from_utf8(&assets::by_name("app.js").expect("js").body).expect("utf-8");
    // The SVG namespace URI is an identifier, never fetched; nothing else may name an origin.
    let stripped = js.replace("http://www.w3.org/2000/svg", "");
    for needle in ["http://", "https://", "import("] {
        assert!(!stripped.contains(needle), "script refers to {needle}");
    }
}

#[test]
fn accept_encoding_parsing() {
    let h = |v: &str| {
        let mut m = HeaderMap::new();
        m.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(v).expect("hv"),
        );
        accepts_gzip(&m)
    };
    assert!(h("gzip"));
    assert!(h("GZIP"));
    assert!(h("deflate, gzip;q=0.5"));
    assert!(h("*"));
    assert!(!h("gzip;q=0"));
    assert!(!h("gzip; q=0.0"));
    assert!(!h("br, deflate"));
    assert!(!h(""));
    assert!(!accepts_gzip(&HeaderMap::new()));
}

#[test]
fn version_parameter() {
    assert_eq!(version_param("v=abc"), Some("abc"));
    assert_eq!(version_param("x=1&v=abc"), Some("abc"));
    assert_eq!(version_param("vv=abc"), None);
    assert_eq!(version_param(""), None);
}
