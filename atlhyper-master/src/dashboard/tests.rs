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
    let css = assets::by_name("app.css").expect("app.css");
    let version = assets::modules_version();
    // One script (every module joined), one stylesheet: nothing else on the critical path.
    assert!(html.contains(&format!(
        r#"<script type="module" src="/assets/{version}/{}"></script>"#,
        assets::BUNDLE
    )));
    assert!(html.contains(&format!("/assets/app.css?v={}", css.hash)));
    assert!(
        !html.contains("modulepreload"),
        "no module fetched one by one"
    );
    assert_eq!(html.matches("<script").count(), 1);
    assert_eq!(html.matches("<link rel=\"stylesheet\"").count(), 1);
    assert!(!html.contains("{{"), "unreplaced placeholder in the page");
}

#[tokio::test]
async fn the_bundle_joins_every_module_the_entry_reaches() {
    let version = assets::modules_version();
    let r = get_with(&format!("/assets/{version}/{}", assets::BUNDLE), &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        header_str(&r, header::CONTENT_TYPE),
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        header_str(&r, header::CACHE_CONTROL),
        "public, max-age=31536000, immutable"
    );
    let js = String::from_utf8(body_bytes(r).await).expect("utf-8");
    assert!(
        !js.lines()
            .any(|l| l.starts_with("import ") || l.starts_with("export "))
    );
    // Every module in the folder is reached from the entry, so each is in the bundle once, and
    // each statement of each module is there.
    for (name, asset) in assets::modules() {
        assert_eq!(
            js.matches(&format!("// ---- {name} ----\n")).count(),
            1,
            "{name}"
        );
        let source = std::str::from_utf8(&asset.body).expect("utf-8");
        for line in source.lines().filter(|l| !l.starts_with("import ")) {
            let line = line.strip_prefix("export ").unwrap_or(line);
            assert!(
                js.contains(line),
                "{name}: {line:?} missing from the bundle"
            );
        }
    }
    assert!(
        js.trim_end().ends_with('}'),
        "the entry module comes last, in its own block"
    );
    let entry = js.find(&format!("// ---- {} ----", assets::ENTRY_MODULE));
    assert!(entry.is_some_and(|at| js[at..].matches("// ---- ").count() == 1));
}

/// The relative module specifiers (`from './x.js'`) of a module's source.
fn imports(source: &str) -> Vec<&str> {
    source
        .lines()
        .filter(|l| l.starts_with("import ") || (l.starts_with("export ") && l.contains(" from ")))
        .filter_map(|l| l.split(" from ").nth(1))
        .map(|spec| spec.trim().trim_end_matches(';').trim_matches('\''))
        .collect()
}

#[test]
fn every_import_names_an_embedded_module_in_the_same_directory() {
    // The caching scheme depends on this: a module under /assets/<version>/ imports only
    // siblings, so every import is versioned by the same hash as the importer.
    let mut imported = std::collections::BTreeSet::new();
    for (name, asset) in assets::modules() {
        let source = std::str::from_utf8(&asset.body).expect("utf-8");
        for spec in imports(source) {
            let file = spec
                .strip_prefix("./")
                .unwrap_or_else(|| panic!("{name} imports {spec:?}, not a sibling"));
            assert!(
                !file.contains('/'),
                "{name} imports {spec:?} from another directory"
            );
            assert!(
                assets::module(file).is_some(),
                "{name} imports {spec:?}, not embedded"
            );
            imported.insert(file);
        }
    }
    // Every module but the entry is reached from it; none is embedded for nothing.
    for (name, _) in assets::modules().filter(|(n, _)| *n != assets::ENTRY_MODULE) {
        assert!(imported.contains(name), "{name} is never imported");
    }
    assert_eq!(
        imports("import { a } from './a.js';\nconst x = 1;\nexport { b } from './b.js';"),
        ["./a.js", "./b.js"]
    );
}

#[test]
fn every_script_in_the_assets_folder_is_embedded() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("assets folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".js"))
        .collect();
    on_disk.sort();
    let mut embedded: Vec<String> = assets::modules().map(|(n, _)| n.to_owned()).collect();
    embedded.sort();
    assert_eq!(
        on_disk, embedded,
        "assets.rs MODULES and the assets folder differ"
    );
}

#[test]
fn the_modules_version_changes_with_any_module() {
    let files = [("app.js", &b"import './a.js';"[..]), ("a.js", b"x")];
    let v = assets::version_of(files);
    assert_eq!(v.len(), 16);
    assert_eq!(v, assets::version_of(files), "deterministic");
    // One byte of an imported module changes the version of all, the entry's included.
    assert_ne!(v, assets::version_of([files[0], ("a.js", b"y")]));
    // So does a renamed, an added or a removed module.
    assert_ne!(v, assets::version_of([files[0], ("b.js", b"x")]));
    assert_ne!(v, assets::version_of([files[0], files[1], ("c.js", b"")]));
    assert_ne!(v, assets::version_of([files[0]]));
    // Moving bytes between a name and a body does not collide.
    assert_ne!(
        assets::version_of([("ab", &b"c"[..])]),
        assets::version_of([("a", &b"bc"[..])])
    );
    // The served version is the one over the embedded modules.
    let embedded: Vec<_> = assets::modules()
        .map(|(n, a)| (n, a.body.as_ref()))
        .collect();
    assert_eq!(assets::modules_version(), assets::version_of(embedded));
}

#[tokio::test]
async fn every_module_is_served_immutable_under_the_version_only() {
    let version = assets::modules_version();
    for (name, asset) in assets::modules() {
        let r = get_with(&format!("/assets/{version}/{name}"), &[]).await;
        assert_eq!(r.status(), StatusCode::OK, "{name}");
        assert_eq!(
            header_str(&r, header::CONTENT_TYPE),
            "text/javascript; charset=utf-8",
            "{name}"
        );
        assert_eq!(
            header_str(&r, header::CACHE_CONTROL),
            "public, max-age=31536000, immutable",
            "{name}"
        );
        assert_eq!(header_str(&r, header::ETAG), asset.etag, "{name}");
        assert_eq!(body_bytes(r).await, asset.body, "{name}");
        // An old (or made-up) version gets today's module, but must revalidate.
        let r = get_with(&format!("/assets/0000000000000000/{name}"), &[]).await;
        assert_eq!(r.status(), StatusCode::OK, "{name}");
        assert_eq!(header_str(&r, header::CACHE_CONTROL), "no-cache", "{name}");
        // Unversioned, as an import of an unversioned entry would ask.
        let r = get_with(&format!("/assets/{name}"), &[]).await;
        assert_eq!(header_str(&r, header::CACHE_CONTROL), "no-cache", "{name}");
    }
    let r = get_with(&format!("/assets/{version}/nope.js"), &[]).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // The stylesheet is versioned by its query, not by the modules' directory.
    let r = get_with(&format!("/assets/{version}/app.css"), &[]).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
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
    let css = assets::by_name("app.css").expect("app.css");
    let r = get_with(&format!("/assets/app.css?v={}", css.hash), &[]).await;
    assert_eq!(
        header_str(&r, header::CACHE_CONTROL),
        "public, max-age=31536000, immutable"
    );
    let r = get_with("/assets/app.css?v=0000000000000000", &[]).await;
    assert_eq!(header_str(&r, header::CACHE_CONTROL), "no-cache");
    let r = get_with("/assets/app.css", &[]).await;
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
    // The issue's budget: the whole page (HTML, script, style) under 200 KB as written,
    // before any compression.
    let total = assets::index().body.len()
        + assets::module(assets::BUNDLE).expect("bundle").body.len()
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
    for (name, asset) in assets::modules() {
        let js = std::str::from_utf8(&asset.body).expect("utf-8");
        // The SVG namespace URI is an identifier, never fetched; nothing else may name an origin.
        let stripped = js.replace("http://www.w3.org/2000/svg", "");
        for needle in ["http://", "https://", "import("] {
            assert!(!stripped.contains(needle), "{name} refers to {needle}");
        }
    }
}

#[test]
fn version_parameter() {
    assert_eq!(version_param("v=abc"), Some("abc"));
    assert_eq!(version_param("x=1&v=abc"), Some("abc"));
    assert_eq!(version_param("vv=abc"), None);
    assert_eq!(version_param(""), None);
}
