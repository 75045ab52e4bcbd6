//! A text answer (a `/metrics` scrape) sent gzip-compressed when the client accepts it.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::{accepts_gzip, gzip};

/// gzip level of compressed text answers. A scrape is compressed once per request, so speed
/// matters as much as size; 6 is also what Go's `compress/gzip` (node_exporter) uses by default.
pub const TEXT_GZIP_LEVEL: u32 = 6;

/// `text` as a 200 answer of `content_type`, gzip-compressed (`Content-Encoding: gzip`) when the
/// request's `Accept-Encoding` allows it ([`accepts_gzip`]), as is otherwise. Both carry
/// `Vary: accept-encoding`, so a cache in between keys on what the client asked for.
pub fn text_response(
    request_headers: &HeaderMap,
    content_type: &'static str,
    text: String,
) -> Response {
    let content_type = (header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let vary = (header::VARY, HeaderValue::from_static("accept-encoding"));
    if accepts_gzip(request_headers) {
        let gzip_encoding = (header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        let body = gzip(text.as_bytes(), TEXT_GZIP_LEVEL);
        ([content_type, gzip_encoding, vary], body).into_response()
    } else {
        ([content_type, vary], text).into_response()
    }
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;

    use super::*;
    use crate::gunzip_limited;

    const TEXT: &str = "# TYPE up gauge\nup 1\n";

    async fn answer(accept_encoding: Option<&str>) -> (HeaderMap, Vec<u8>) {
        let mut headers = HeaderMap::new();
        if let Some(v) = accept_encoding {
            headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
        }
        let response = text_response(&headers, "text/plain", TEXT.to_owned());
        assert_eq!(response.status(), 200);
        let headers = response.headers().clone();
        let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (headers, body.to_vec())
    }

    #[tokio::test]
    async fn gzip_only_when_asked_and_vary_always() {
        let (headers, body) = answer(Some("gzip, deflate")).await;
        assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
        assert_eq!(headers[header::VARY], "accept-encoding");
        assert_eq!(headers[header::CONTENT_TYPE], "text/plain");
        assert_eq!(gunzip_limited(&body, 1024).unwrap(), TEXT.as_bytes());

        for refused in [None, Some("identity"), Some("gzip;q=0")] {
            let (headers, body) = answer(refused).await;
            assert!(
                headers.get(header::CONTENT_ENCODING).is_none(),
                "{refused:?}"
            );
            assert_eq!(headers[header::VARY], "accept-encoding");
            assert_eq!(body, TEXT.as_bytes());
        }
    }
}
