//! Reading request bodies: one size-limited reader for every JSON body, the gzip snapshot
//! decoder, and the agent's authenticated JSON body (its token checked before a byte is read,
//! every cluster id it names checked against the token after).

use std::net::SocketAddr;

use atlhyper_http::GunzipError;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use http_body_util::{BodyExt, Limited};
use serde::de::DeserializeOwned;

use crate::Master;
use crate::error::ApiError;

/// Reads a body of at most `limit` bytes (413 above); `what` names it in the error.
pub(crate) async fn read_body(body: Body, limit: usize, what: &str) -> Result<Bytes, ApiError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::too_large(format!(
            "{what} is larger than {limit} bytes"
        ))),
        Err(_) => Err(ApiError::bad_request(format!(
            "{what}: could not read the body"
        ))),
    }
}

/// Parses JSON bytes; a 400 naming `what` when they do not fit `T`.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("{what}: {e}")))
}

/// A JSON body of at most `limit` bytes: 413 above, 400 when it is not a `T`. The caller's
/// role was checked by the routes' guard before the body is read.
pub(crate) async fn read_json<T: DeserializeOwned>(
    body: Body,
    limit: usize,
    what: &str,
) -> Result<T, ApiError> {
    parse_json(&read_body(body, limit, what).await?, what)
}

/// An agent's JSON body (heartbeat, command result) and the cluster the agent speaks for.
#[derive(Debug)]
pub(crate) struct AgentJson<T> {
    /// The cluster of the agent's token (or, on an open master, the one it names).
    pub(crate) cluster_id: String,
    pub(crate) body: T,
    /// The agent's address, for the registry.
    pub(crate) remote_addr: String,
}

/// Reads an agent's JSON body of at most the configured JSON limit: the token is checked
/// before the body is read (401 without reading it), then every cluster id the request names
/// (the `X-Cluster-ID` header and `claimed(&body)`) must be the token's (403).
pub(crate) async fn read_agent_json<T: DeserializeOwned>(
    master: &Master,
    request: Request,
    what: &str,
    claimed: impl Fn(&T) -> &str,
) -> Result<AgentJson<T>, ApiError> {
    let (parts, body) = request.into_parts();
    let header_cluster = header_str(&parts.headers, "x-cluster-id");
    if master.tokens.agents_need_token() {
        master
            .tokens
            .agent_identity(&parts.headers, client_cert(&parts), &[header_cluster])?;
    }
    let body: T = read_json(body, master.config.json_body_limit, what).await?;
    let cluster_id = master.tokens.agent_identity(
        &parts.headers,
        client_cert(&parts),
        &[header_cluster, Some(claimed(&body))],
    )?;
    Ok(AgentJson {
        cluster_id,
        body,
        remote_addr: remote_addr(&parts),
    })
}

/// Gunzips `body` when it is gzip (by header or magic bytes), refusing more than `limit` bytes.
pub(crate) fn decompress(body: Bytes, gzip_header: bool, limit: usize) -> Result<Bytes, ApiError> {
    if !(gzip_header || atlhyper_http::is_gzip(&body)) {
        if body.len() > limit {
            return Err(ApiError::too_large(format!(
                "snapshot is larger than {limit} bytes"
            )));
        }
        return Ok(body);
    }
    match atlhyper_http::gunzip_limited(&body, limit) {
        Ok(json) => Ok(Bytes::from(json)),
        Err(GunzipError::TooLarge { limit }) => Err(ApiError::too_large(format!(
            "snapshot decompresses to more than {limit} bytes"
        ))),
        Err(GunzipError::Invalid(e)) => Err(ApiError::bad_request(format!(
            "snapshot: bad gzip data: {e}"
        ))),
    }
}

pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The client certificate of the request's TLS connection, when the master requires them.
pub(crate) fn client_cert(parts: &Parts) -> Option<&atlhyper_http::tls::ClientCertificate> {
    parts.extensions.get()
}

pub(crate) fn remote_addr(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gz(data: &[u8]) -> Bytes {
        Bytes::from(atlhyper_http::gzip(data, 1))
    }

    #[test]
    fn decompress_limits() {
        let plain = Bytes::from_static(b"{\"cluster_id\":\"a\"}");
        assert_eq!(decompress(plain.clone(), false, 100).unwrap(), plain);
        assert_eq!(decompress(gz(&plain), false, 100).unwrap(), plain);
        assert_eq!(decompress(gz(&plain), true, 100).unwrap(), plain);
        let bomb = gz(&vec![b' '; 10_000]);
        assert_eq!(decompress(bomb, true, 1000).unwrap_err().status, 413);
        assert_eq!(
            decompress(plain.clone(), true, 100).unwrap_err().status,
            400
        );
        assert_eq!(decompress(plain, false, 5).unwrap_err().status, 413);
    }
}
