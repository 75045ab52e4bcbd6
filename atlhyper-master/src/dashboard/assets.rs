//! The embedded files of the dashboard, prepared once: content hash, ETags, gzip copy, and the
//! page with its asset links versioned by hash.

use std::io::Write;
use std::sync::OnceLock;

use axum::body::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;

const INDEX_HTML: &str = include_str!("../../assets/index.html");
const APP_JS: &str = include_str!("../../assets/app.js");
const APP_CSS: &str = include_str!("../../assets/app.css");

/// One file ready to serve.
#[derive(Debug)]
pub(super) struct Asset {
    /// `Content-Type` header value.
    pub content_type: &'static str,
    /// The bytes as written.
    pub body: Bytes,
    /// The bytes gzip-compressed (`None` only if compression failed, then identity is served).
    pub gzip: Option<Bytes>,
    /// Hex FNV-1a 64 hash of `body`.
    pub hash: String,
    /// Strong ETag of the identity representation.
    pub etag: String,
    /// Strong ETag of the gzip representation (a different representation, a different tag).
    pub etag_gzip: String,
}

impl Asset {
    fn new(content_type: &'static str, body: Bytes) -> Self {
        let hash = format!("{:016x}", fnv1a64(&body));
        let gzip = gzip(&body);
        Self {
            content_type,
            etag: format!("\"{hash}\""),
            etag_gzip: format!("\"{hash}.gz\""),
            hash,
            body,
            gzip,
        }
    }
}

#[derive(Debug)]
struct Assets {
    index: Asset,
    js: Asset,
    css: Asset,
}

fn all() -> &'static Assets {
    static ASSETS: OnceLock<Assets> = OnceLock::new();
    ASSETS.get_or_init(|| {
        let js = Asset::new(
            "text/javascript; charset=utf-8",
            Bytes::from_static(APP_JS.as_bytes()),
        );
        let css = Asset::new(
            "text/css; charset=utf-8",
            Bytes::from_static(APP_CSS.as_bytes()),
        );
        let html = INDEX_HTML
            .replace("{{JS_HASH}}", &js.hash)
            .replace("{{CSS_HASH}}", &css.hash);
        let index = Asset::new("text/html; charset=utf-8", Bytes::from(html));
        Assets { index, js, css }
    })
}

/// The page.
pub(super) fn index() -> &'static Asset {
    &all().index
}

/// An asset under `/assets/` by file name.
pub(super) fn by_name(name: &str) -> Option<&'static Asset> {
    match name {
        "app.js" => Some(&all().js),
        "app.css" => Some(&all().css),
        _ => None,
    }
}

/// FNV-1a, 64 bit: a content fingerprint for cache validation (not a security measure).
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn gzip(bytes: &[u8]) -> Option<Bytes> {
    let mut enc = GzEncoder::new(Vec::with_capacity(bytes.len() / 3), Compression::best());
    enc.write_all(bytes).ok()?;
    enc.finish().ok().map(Bytes::from)
}
