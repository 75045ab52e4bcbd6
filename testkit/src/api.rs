//! An axum router driven in-process with `tower::ServiceExt::oneshot`: one request as an API
//! test writes it (a bearer token, a JSON body, the client address a handler sees), its status
//! and body back.

use std::net::SocketAddr;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// One request to a router.
#[derive(Debug)]
pub struct ApiCall {
    request: axum::http::request::Builder,
    body: Body,
    peer: Option<SocketAddr>,
}

impl ApiCall {
    /// `method path`, no headers, no body.
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            request: Request::builder().method(method).uri(path),
            body: Body::empty(),
            peer: None,
        }
    }

    /// `Authorization: Bearer <token>` when a token is given.
    pub fn bearer(mut self, token: Option<&str>) -> Self {
        if let Some(token) = token {
            self.request = self
                .request
                .header("authorization", format!("Bearer {token}"));
        }
        self
    }

    /// One more header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.request = self.request.header(name, value);
        self
    }

    /// `body` as JSON (with its content type) when given.
    pub fn json(mut self, body: Option<&Value>) -> Self {
        if let Some(body) = body {
            self.request = self.request.header("content-type", "application/json");
            self.body = Body::from(serde_json::to_vec(body).expect("JSON encodes"));
        }
        self
    }

    /// These bytes as the body, as they are.
    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = Body::from(body);
        self
    }

    /// The client address the handlers see (`ConnectInfo`), as a real socket would give it.
    pub fn from_peer(mut self, peer: SocketAddr) -> Self {
        self.peer = Some(peer);
        self
    }

    /// Sends it through `router`: the status and the whole body.
    pub async fn send(self, router: Router) -> (StatusCode, Bytes) {
        let mut request = self.request.body(self.body).expect("a valid request");
        if let Some(peer) = self.peer {
            request.extensions_mut().insert(ConnectInfo(peer));
        }
        let response = router.oneshot(request).await.expect("the router answers");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("the body arrives")
            .to_bytes();
        (status, body)
    }
}

/// A body as JSON, panicking with the body when it is not.
pub fn json_of(bytes: &Bytes) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("{e}: {bytes:?}"))
}

/// The `error` of an `{"error": "..."}` body.
pub fn error_of(bytes: &Bytes) -> String {
    json_of(bytes)["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {bytes:?}"))
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post;

    #[tokio::test]
    async fn token_body_and_peer_reach_the_handler() {
        let router = Router::new().route(
            "/echo",
            post(
                |ConnectInfo(peer): ConnectInfo<SocketAddr>,
                 headers: axum::http::HeaderMap,
                 body: Bytes| async move {
                    let auth = headers["authorization"].to_str().unwrap().to_owned();
                    let kind = headers["content-type"].to_str().unwrap().to_owned();
                    let text = String::from_utf8(body.to_vec()).unwrap();
                    (StatusCode::CREATED, format!("{peer} {auth} {kind} {text}"))
                },
            ),
        );
        let (status, body) = ApiCall::new("POST", "/echo")
            .bearer(Some("t"))
            .json(Some(&serde_json::json!({"a": 1})))
            .from_peer("192.0.2.1:9".parse().unwrap())
            .send(router)
            .await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(body, "192.0.2.1:9 Bearer t application/json {\"a\":1}");
        assert_eq!(error_of(&Bytes::from_static(br#"{"error":"x"}"#)), "x");
    }
}
