//! Guards of an open master (no agent tokens, or no reader tokens; loopback only): what a web
//! page in the user's browser must not be able to do to it.
//!
//! - DNS rebinding: a page on `evil.example` whose name is re-pointed at 127.0.0.1 reads the
//!   master as same-origin. Its requests still say `Host: evil.example`, so only loopback host
//!   names are answered: `localhost`, a loopback IP literal (`127.0.0.1`, `[::1]`), each with
//!   any port. Anything else gets **421 Misdirected Request**: the request reached a server that
//!   does not serve that name, which is exactly the case (403 would suggest a token could help).
//!   A request without any Host is let through: browsers always send one, and a local program
//!   that omits it can reach the socket directly anyway.
//! - Cross-site forms: a form can POST `text/plain`, `application/x-www-form-urlencoded` or
//!   `multipart/form-data` to any origin without a preflight, so a JSON body in a text/plain
//!   form would create commands or clusters. POST, PUT and PATCH must say
//!   `Content-Type: application/json` (parameters allowed; a charset, if given, must be UTF-8),
//!   else **415**. Our agent sends `application/json` (also with `Content-Encoding: gzip`); the
//!   dashboard only reads.

use std::net::{IpAddr, Ipv6Addr};

use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The layer: refuses what [`check`] refuses, passes the rest on.
pub(crate) async fn guard(request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .map(|h| h.as_bytes())
        .or_else(|| request.uri().authority().map(|a| a.as_str().as_bytes()));
    if let Err(refused) = check(host, request.method(), request.headers()) {
        return refused.into_response();
    }
    next.run(request).await
}

/// Checks the host a request names (`None`: it names none) and the body type of a write.
fn check(host: Option<&[u8]>, method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
    if let Some(host) = host
        && !is_loopback_host(host)
    {
        let shown = String::from_utf8_lossy(&host[..host.len().min(100)]).into_owned();
        return Err(ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "this master has no tokens and answers only requests for localhost, 127.0.0.1 or \
                 [::1], not Host {shown:?}; configure tokens to serve it under other names"
            ),
        ));
    }
    if matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
        let content_type = headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes());
        if !content_type.is_some_and(is_json) {
            let shown = content_type.map_or_else(
                || "none".to_owned(),
                |v| format!("{:?}", String::from_utf8_lossy(&v[..v.len().min(100)])),
            );
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "request bodies must be JSON sent as Content-Type application/json (optionally \
                     with charset=utf-8); got {shown}"
                ),
            ));
        }
    }
    Ok(())
}

/// `localhost` or a loopback IP literal, with an optional port (`[::1]:8080`).
fn is_loopback_host(host: &[u8]) -> bool {
    let Ok(host) = std::str::from_utf8(host) else {
        return false;
    };
    let valid_port =
        |p: &str| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit());
    let name = if let Some(rest) = host.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return false;
        };
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(valid_port)) {
            return false;
        }
        return inside.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback());
    } else {
        match host.split_once(':') {
            Some((name, port)) if valid_port(port) => name,
            Some(_) => return false,
            None => host,
        }
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `application/json`, any case, with optional parameters; a `charset` must be UTF-8.
fn is_json(content_type: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(content_type) else {
        return false;
    };
    let mut parts = text.split(';');
    let essence = parts.next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return false;
    }
    parts.all(|p| match p.split_once('=') {
        Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
            let value = value.trim().trim_matches('"');
            value.eq_ignore_ascii_case("utf-8") || value.eq_ignore_ascii_case("utf8")
        }
        _ => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for ok in [
            "localhost",
            "LOCALHOST:8080",
            "127.0.0.1",
            "127.0.0.1:80",
            "127.1.2.3:9",
            "[::1]",
            "[::1]:8080",
        ] {
            assert!(is_loopback_host(ok.as_bytes()), "{ok} refused");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "10.0.0.1:8080",
            "0.0.0.0",
            "[::2]:80",
            "[::1]x",
            "localhost:",
            "localhost:80:80",
            "localhost:http",
            "::1",
            "",
        ] {
            assert!(!is_loopback_host(bad.as_bytes()), "{bad} accepted");
        }
        assert!(!is_loopback_host(b"local\xffhost"));
    }

    #[test]
    fn json_content_types() {
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=\"UTF-8\"",
        ] {
            assert!(is_json(ok.as_bytes()), "{ok} refused");
        }
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonp",
            "application/json; charset=latin1",
            "text/plain; a=application/json",
            "",
        ] {
            assert!(!is_json(bad.as_bytes()), "{bad} accepted");
        }
    }

    #[test]
    fn only_writes_need_json() {
        let mut headers = HeaderMap::new();
        assert!(check(Some(b"localhost"), &Method::GET, &headers).is_ok());
        assert!(check(None, &Method::DELETE, &headers).is_ok());
        let e = check(Some(b"localhost"), &Method::POST, &headers).unwrap_err();
        assert_eq!(e.status, 415);
        assert!(e.message.contains("got none"), "{}", e.message);
        headers.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert_eq!(check(None, &Method::PUT, &headers).unwrap_err().status, 415);
        let e = check(Some(b"evil.example"), &Method::GET, &headers).unwrap_err();
        assert_eq!(e.status, 421);
        assert!(e.message.contains("evil.example"), "{}", e.message);
    }
}
