//! The embedded files of the dashboard, prepared once: content hash, ETags, gzip copy, the
//! modules joined into one script, and the page with its asset links versioned by hash.
//!
//! The script is a set of ES modules that import each other by relative URL (`./format.js`). The
//! page loads their bundle, and anyone the modules, from `/assets/<version>/`, where the version
//! is one hash over every module:
//! a change to any module moves all of them to a new directory, so a module cached as immutable
//! never meets an import it was not written against.

use std::sync::OnceLock;

use axum::body::Bytes;

const INDEX_HTML: &str = include_str!("../../assets/index.html");
const APP_CSS: &str = include_str!("../../assets/app.css");

/// The page's script modules by file name; `app.js` is the entry, the page preloads the others.
const MODULES: [(&str, &str); 15] = [
    ("app.js", include_str!("../../assets/app.js")),
    ("alerts.js", include_str!("../../assets/alerts.js")),
    ("api.js", include_str!("../../assets/api.js")),
    ("charts.js", include_str!("../../assets/charts.js")),
    ("cluster.js", include_str!("../../assets/cluster.js")),
    ("dom.js", include_str!("../../assets/dom.js")),
    ("fleet.js", include_str!("../../assets/fleet.js")),
    ("format.js", include_str!("../../assets/format.js")),
    ("health.js", include_str!("../../assets/health.js")),
    ("node.js", include_str!("../../assets/node.js")),
    ("overview.js", include_str!("../../assets/overview.js")),
    ("prefs.js", include_str!("../../assets/prefs.js")),
    ("route.js", include_str!("../../assets/route.js")),
    ("series.js", include_str!("../../assets/series.js")),
    ("trends.js", include_str!("../../assets/trends.js")),
];

/// The file name of the entry module.
pub(super) const ENTRY_MODULE: &str = "app.js";

/// The file name the page loads its script from: every module joined into one (see `bundle`).
pub(super) const BUNDLE: &str = "bundle.js";

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
        let gzip = Some(Bytes::from(atlhyper_http::gzip(&body, 9)));
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
    css: Asset,
    /// The modules in `MODULES` order, with their file names.
    modules: Vec<(&'static str, Asset)>,
    /// Every module joined into one script, what the page loads (`None`: the modules could
    /// not be joined, and the page loads them one by one).
    bundle: Option<Asset>,
    /// Hash over every module's name and bytes: the directory the page loads them from.
    modules_version: String,
}

fn all() -> &'static Assets {
    static ASSETS: OnceLock<Assets> = OnceLock::new();
    ASSETS.get_or_init(|| {
        let css = Asset::new(
            "text/css; charset=utf-8",
            Bytes::from_static(APP_CSS.as_bytes()),
        );
        let modules: Vec<_> = MODULES
            .iter()
            .map(|&(name, text)| {
                let asset = Asset::new(
                    "text/javascript; charset=utf-8",
                    Bytes::from_static(text.as_bytes()),
                );
                (name, asset)
            })
            .collect();
        let modules_version = version_of(MODULES.iter().map(|&(n, t)| (n, t.as_bytes())));
        let bundle = match super::bundle::bundle(&MODULES, ENTRY_MODULE) {
            Ok(js) => Some(Asset::new(
                "text/javascript; charset=utf-8",
                Bytes::from(js),
            )),
            Err(e) => {
                // The unit tests bundle these very modules, so this is a build that skipped
                // them; the page still works, one request per module.
                tracing::error!("dashboard script modules not bundled, served one by one: {e}");
                None
            }
        };
        let (script, preloads) = if bundle.is_some() {
            (BUNDLE, String::new())
        } else {
            let preloads = MODULES
                .iter()
                .filter(|&&(name, _)| name != ENTRY_MODULE)
                .map(|&(name, _)| {
                    format!(r#"<link rel="modulepreload" href="/assets/{modules_version}/{name}">"#)
                })
                .collect::<Vec<_>>()
                .join("\n");
            (ENTRY_MODULE, preloads)
        };
        let html = INDEX_HTML
            .replace("{{MODULES_VERSION}}", &modules_version)
            .replace("{{SCRIPT}}", script)
            .replace("{{MODULE_PRELOADS}}", &preloads)
            .replace("{{CSS_HASH}}", &css.hash);
        let index = Asset::new("text/html; charset=utf-8", Bytes::from(html));
        Assets {
            index,
            css,
            modules,
            bundle,
            modules_version,
        }
    })
}

/// The page.
pub(super) fn index() -> &'static Asset {
    &all().index
}

/// An asset under `/assets/` by file name: the stylesheet or a script module.
pub(super) fn by_name(name: &str) -> Option<&'static Asset> {
    match name {
        "app.css" => Some(&all().css),
        _ => module(name),
    }
}

/// A script module by file name, or the bundle of all of them (`bundle.js`).
pub(super) fn module(name: &str) -> Option<&'static Asset> {
    if name == BUNDLE {
        return all().bundle.as_ref();
    }
    all()
        .modules
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, asset)| asset)
}

/// Prepares every asset (hashes, bundle, gzip copies) now, so the first page load does not
/// wait for the compression.
pub(super) fn prepare() {
    all();
}

/// The file names and sources of every script module.
#[cfg(test)]
pub(super) fn modules() -> impl Iterator<Item = (&'static str, &'static Asset)> {
    all().modules.iter().map(|(name, asset)| (*name, asset))
}

/// The version directory of the script modules (`/assets/<version>/<module>`).
pub(super) fn modules_version() -> &'static str {
    &all().modules_version
}

/// One hash over a set of named files: it changes when any file's bytes or name changes, or a
/// file is added or removed. Each part is length-prefixed so no two sets collide by concatenation.
pub(super) fn version_of<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut h = Fnv1a64::new();
    for (name, bytes) in files {
        for part in [name.as_bytes(), bytes] {
            h.write(&(part.len() as u64).to_le_bytes());
            h.write(part);
        }
    }
    format!("{:016x}", h.finish())
}

/// FNV-1a, 64 bit: a content fingerprint for cache validation (not a security measure).
struct Fnv1a64(u64);

impl Fnv1a64 {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h = Fnv1a64::new();
    h.write(bytes);
    h.finish()
}
