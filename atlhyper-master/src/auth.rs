//! Bearer tokens: which cluster an agent speaks for, and who may read or command.
//!
//! Tokens are compared in constant time against every configured token (no early exit on the
//! first match, `subtle` for the byte comparison), and never logged.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::config::MasterConfig;
use crate::error::ApiError;

/// Longest accepted cluster id.
const MAX_CLUSTER_ID_LEN: usize = 128;

/// What a reader may do (`"viewer"` or `"operator"` in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Role {
    /// Read every `GET /api/v2/...` endpoint and `/metrics`.
    Viewer,
    /// Read, and create commands.
    Operator,
}

/// The configured tokens, as bytes.
#[derive(Default)]
pub(crate) struct Tokens {
    agents: Vec<(Vec<u8>, String)>,
    viewers: Vec<Vec<u8>>,
    operators: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("agents", &self.agents.len())
            .field("viewers", &self.viewers.len())
            .field("operators", &self.operators.len())
            .finish()
    }
}

/// Constant-time "is `token` one of `candidates`", returning the index of the match.
fn find(token: &[u8], candidates: impl Iterator<Item = impl AsRef<[u8]>>) -> Option<usize> {
    let mut found = subtle::Choice::from(0);
    let mut index = 0u32;
    for (i, candidate) in candidates.enumerate() {
        let eq = candidate.as_ref().ct_eq(token);
        let i = u32::try_from(i).unwrap_or(u32::MAX);
        index = u32::conditional_select(&index, &i, eq);
        found |= eq;
    }
    if bool::from(found) {
        usize::try_from(index).ok()
    } else {
        None
    }
}

/// The bearer token of a request, if any.
fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(AUTHORIZATION)?.as_bytes();
    let rest = value
        .strip_prefix(b"Bearer ")
        .or_else(|| value.strip_prefix(b"bearer "))?;
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Checks that a cluster id is something we can store and show: 1 to 128 of `A-Z a-z 0-9 . _ -`.
pub(crate) fn valid_cluster_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty() {
        return Err(ApiError::bad_request("cluster_id is required"));
    }
    if id.len() > MAX_CLUSTER_ID_LEN
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(ApiError::bad_request(
            "cluster_id must be 1 to 128 characters of letters, digits, '.', '_' or '-'",
        ));
    }
    Ok(())
}

impl Tokens {
    pub(crate) fn from_config(config: &MasterConfig) -> Self {
        Self {
            agents: config
                .agent_tokens
                .iter()
                .map(|(t, c)| (t.as_bytes().to_vec(), c.clone()))
                .collect(),
            viewers: config
                .viewer_tokens
                .iter()
                .map(|t| t.as_bytes().to_vec())
                .collect(),
            operators: config
                .operator_tokens
                .iter()
                .map(|t| t.as_bytes().to_vec())
                .collect(),
        }
    }

    /// Whether agents are identified by token (otherwise by the cluster id they claim).
    pub(crate) fn agents_need_token(&self) -> bool {
        !self.agents.is_empty()
    }

    /// The cluster of a request's agent token, when it carries a known one (no claim checked:
    /// the handler does that). For keying rate limits; the token itself is never kept.
    pub(crate) fn agent_token_cluster(&self, headers: &HeaderMap) -> Option<&str> {
        let token = bearer(headers)?;
        let index = find(token, self.agents.iter().map(|(t, _)| t))?;
        Some(self.agents[index].1.as_str())
    }

    /// Which reader token a request carries, when it carries a known one: its role and its
    /// position in the configuration (so a rate limit is keyed per token, never by its text).
    pub(crate) fn reader_token(&self, headers: &HeaderMap) -> Option<(Role, usize)> {
        let token = bearer(headers)?;
        if let Some(i) = find(token, self.operators.iter()) {
            return Some((Role::Operator, i));
        }
        find(token, self.viewers.iter()).map(|i| (Role::Viewer, i))
    }

    /// What a reader request may do: its token's role, or operator when the master is open (no
    /// viewer or operator tokens configured: everything is allowed). `None` without a known token.
    pub(crate) fn role_of(&self, headers: &HeaderMap) -> Option<Role> {
        if self.viewers.is_empty() && self.operators.is_empty() {
            return Some(Role::Operator);
        }
        self.reader_token(headers).map(|(role, _)| role)
    }

    /// The cluster an agent request speaks for.
    ///
    /// `claimed` is every cluster id the request names (the `X-Cluster-ID` header, a query or body
    /// field); each one that is present must agree. With agent tokens configured, the identity
    /// is the token's cluster: no or an unknown token is 401, a claim of another cluster 403.
    /// Without tokens (development mode) the claims are the identity and at least one is needed.
    pub(crate) fn agent_identity(
        &self,
        headers: &HeaderMap,
        claimed: &[Option<&str>],
    ) -> Result<String, ApiError> {
        let claims: Vec<&str> = claimed
            .iter()
            .flatten()
            .copied()
            .filter(|c| !c.is_empty())
            .collect();
        if self.agents_need_token() {
            let token =
                bearer(headers).ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
            let index = find(token, self.agents.iter().map(|(t, _)| t))
                .ok_or_else(|| ApiError::unauthorized("unknown agent token"))?;
            let cluster = &self.agents[index].1;
            if claims.iter().any(|c| *c != cluster) {
                return Err(ApiError::forbidden(
                    "cluster id does not match the agent token's cluster",
                ));
            }
            Ok(cluster.clone())
        } else {
            let Some(first) = claims.first() else {
                return Err(ApiError::bad_request(
                    "X-Cluster-ID header (or cluster_id) is required",
                ));
            };
            if claims.iter().any(|c| c != first) {
                return Err(ApiError::forbidden(
                    "conflicting cluster ids in one request",
                ));
            }
            valid_cluster_id(first)?;
            Ok((*first).to_owned())
        }
    }

    /// Checks that a reader may do what `role` allows. Open when no viewer or operator tokens are
    /// configured (the master then listens on loopback only).
    pub(crate) fn require(&self, headers: &HeaderMap, role: Role) -> Result<(), ApiError> {
        if self.viewers.is_empty() && self.operators.is_empty() {
            return Ok(());
        }
        let token =
            bearer(headers).ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
        if find(token, self.operators.iter()).is_some() {
            return Ok(());
        }
        if find(token, self.viewers.iter()).is_some() {
            return match role {
                Role::Viewer => Ok(()),
                Role::Operator => Err(ApiError::forbidden(
                    "this needs an operator token (a viewer token only reads)",
                )),
            };
        }
        Err(ApiError::unauthorized("unknown token"))
    }
}

/// The role a reader request needs: reads (`GET`, `HEAD`) a viewer token, anything else
/// (create, delete) an operator token.
pub(crate) fn role_for(method: &axum::http::Method) -> Role {
    if method.is_safe() {
        Role::Viewer
    } else {
        Role::Operator
    }
}

/// Middleware checking the reader's token against [`role_for`] the request's method, before
/// the handler runs (and before a body is read): 401 without a known token, 403 when the token's
/// role is not enough. Install with `.route_layer(from_fn_with_state(tokens, role_guard))`.
pub(crate) async fn role_guard(
    State(tokens): State<Arc<Tokens>>,
    request: Request,
    next: Next,
) -> Response {
    match tokens.require(request.headers(), role_for(request.method())) {
        Ok(()) => next.run(request).await,
        Err(refused) => refused.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        h
    }

    fn tokens() -> Tokens {
        let config = MasterConfig {
            agent_tokens: [
                ("ta".to_owned(), "a".to_owned()),
                ("tb".to_owned(), "b".to_owned()),
            ]
            .into(),
            viewer_tokens: vec!["v".into()],
            operator_tokens: vec!["o".into()],
            ..MasterConfig::default()
        };
        Tokens::from_config(&config)
    }

    #[test]
    fn agent_identity_comes_from_token() {
        let t = tokens();
        assert_eq!(t.agent_identity(&headers("tb"), &[Some("b")]).unwrap(), "b");
        assert_eq!(t.agent_identity(&headers("tb"), &[None]).unwrap(), "b");
        let e = t.agent_identity(&headers("tb"), &[Some("a")]).unwrap_err();
        assert_eq!(e.status, 403);
        let e = t.agent_identity(&headers("tc"), &[Some("a")]).unwrap_err();
        assert_eq!(e.status, 401);
        let e = t
            .agent_identity(&HeaderMap::new(), &[Some("a")])
            .unwrap_err();
        assert_eq!(e.status, 401);
    }

    #[test]
    fn dev_mode_uses_claim() {
        let t = Tokens::default();
        assert_eq!(
            t.agent_identity(&HeaderMap::new(), &[Some("x")]).unwrap(),
            "x"
        );
        assert_eq!(
            t.agent_identity(&HeaderMap::new(), &[None])
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            t.agent_identity(&HeaderMap::new(), &[Some("x"), Some("y")])
                .unwrap_err()
                .status,
            403
        );
        assert_eq!(
            t.agent_identity(&HeaderMap::new(), &[Some("bad id")])
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn roles() {
        let t = tokens();
        assert!(t.require(&headers("v"), Role::Viewer).is_ok());
        assert_eq!(
            t.require(&headers("v"), Role::Operator).unwrap_err().status,
            403
        );
        assert!(t.require(&headers("o"), Role::Operator).is_ok());
        assert_eq!(
            t.require(&headers("x"), Role::Viewer).unwrap_err().status,
            401
        );
        assert_eq!(
            t.require(&HeaderMap::new(), Role::Viewer)
                .unwrap_err()
                .status,
            401
        );
        // An agent token is not a reader token.
        assert_eq!(
            t.require(&headers("ta"), Role::Viewer).unwrap_err().status,
            401
        );
        assert_eq!(t.reader_token(&headers("o")), Some((Role::Operator, 0)));
        assert_eq!(t.reader_token(&headers("v")), Some((Role::Viewer, 0)));
        assert_eq!(t.reader_token(&headers("ta")), None);
        assert_eq!(t.agent_token_cluster(&headers("tb")), Some("b"));
        assert_eq!(t.agent_token_cluster(&headers("o")), None);
        assert_eq!(t.agent_token_cluster(&HeaderMap::new()), None);
        assert!(
            Tokens::default()
                .require(&HeaderMap::new(), Role::Operator)
                .is_ok()
        );
    }
}
