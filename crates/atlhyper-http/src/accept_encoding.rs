//! `Accept-Encoding` (RFC 9110 section 12.5.3), reduced to the one question our servers ask:
//! may this answer be sent gzip-compressed?

use axum::http::{HeaderMap, header};

/// Whether the request's `Accept-Encoding` allows gzip: `gzip` (or `x-gzip`) listed with a
/// non-zero quality, or, when gzip is not listed, `*` with a non-zero quality. An explicit
/// `gzip;q=0` refuses gzip even next to `*`. A quality that does not parse counts as 1, as if it
/// were absent; no header means identity only.
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut gzip = None;
    let mut any = None;
    for item in headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let quality = parts
            .filter_map(|p| p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let slot = if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            &mut gzip
        } else if coding == "*" {
            &mut any
        } else {
            continue;
        };
        // Listed twice: the higher quality wins (what a lenient reader would do).
        *slot = Some(slot.map_or(quality, |q: f32| q.max(quality)));
    }
    gzip.or(any).is_some_and(|q| q > 0.0)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn accepts(values: &[&str]) -> bool {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
        }
        accepts_gzip(&headers)
    }

    #[test]
    fn gzip_listed_or_by_wildcard() {
        assert!(accepts(&["gzip"]));
        assert!(accepts(&["GZIP"]));
        assert!(accepts(&["deflate, gzip;q=0.5, br"]));
        assert!(accepts(&["br", "x-gzip"]));
        assert!(accepts(&["*"]));
        assert!(accepts(&["br;q=1, *;q=0.1"]));
    }

    #[test]
    fn refused_or_absent() {
        assert!(!accepts(&[]));
        assert!(!accepts(&[""]));
        assert!(!accepts(&["identity"]));
        assert!(!accepts(&["br, deflate"]));
        assert!(!accepts(&["gzip;q=0"]));
        assert!(!accepts(&["gzip; q=0.000"]));
        assert!(!accepts(&["*;q=0"]));
        // An explicit refusal beats the wildcard, in either order.
        assert!(!accepts(&["*, gzip;q=0"]));
        assert!(!accepts(&["gzip;q=0", "*"]));
        // An explicit gzip beats a refusing wildcard.
        assert!(accepts(&["*;q=0, gzip"]));
    }

    #[test]
    fn unparsable_quality_counts_as_one() {
        assert!(accepts(&["gzip;q=abc"]));
        assert!(accepts(&["gzip;level=9"]));
    }
}
