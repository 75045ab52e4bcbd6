//! Bearer tokens: which cluster an agent speaks for, and who may read or command.
//!
//! Tokens are compared in constant time against every configured token (no early exit on the
//! first match, `subtle` for the byte comparison), and never logged.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use atlhyper_http::tls::ClientCertificate;
use atlhyper_http::token_file::{bearer, position_constant_time};
use atlhyper_http::watched_file::{WatchError, WatchedFiles};

use crate::config::MasterConfig;
use crate::error::ApiError;
use crate::token_file::{FileRole, FileToken, parse_token_file};

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

/// One set of tokens, as bytes, each with its name (never its text in a log).
#[derive(Default)]
pub(crate) struct TokenSet {
    /// (token, cluster, name)
    agents: Vec<(Vec<u8>, String, String)>,
    /// (token, name)
    viewers: Vec<(Vec<u8>, String)>,
    operators: Vec<(Vec<u8>, String)>,
    /// A token file is configured: never open, even while it lists no token of a role.
    from_file: bool,
}

/// The tokens in force: those of the environment (`MASTER_AGENT_TOKENS`, ...; named
/// `env-agent-<cluster>`, `env-viewer-<n>`, `env-operator-<n>`) and those of the token file,
/// re-read when it changes ([`Tokens::reload`], [`Tokens::token_file`]).
#[derive(Default)]
pub(crate) struct Tokens {
    /// The environment's tokens, when there is no token file.
    fixed: Arc<TokenSet>,
    /// The file's tokens next to the environment's.
    file: Option<Arc<WatchedFiles<TokenSet>>>,
    /// Agents must present a client certificate (`--tls-client-ca`, either mode).
    agents_need_certificate: bool,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = self.set();
        f.debug_struct("Tokens")
            .field("agents", &set.agents.len())
            .field("viewers", &set.viewers.len())
            .field("operators", &set.operators.len())
            .field("file", &self.file.as_ref().map(|f| f.paths()))
            .finish()
    }
}

impl TokenSet {
    fn build(list: impl Iterator<Item = FileToken>, from_file: bool) -> Self {
        let mut set = Self {
            from_file,
            ..Self::default()
        };
        for t in list {
            let secret = t.secret.into_bytes();
            match t.scope {
                (FileRole::Agent, cluster) => {
                    set.agents
                        .push((secret, cluster.unwrap_or_default(), t.name));
                }
                (FileRole::Viewer, _) => set.viewers.push((secret, t.name)),
                (FileRole::Operator, _) => set.operators.push((secret, t.name)),
            }
        }
        set
    }

    /// How many tokens of each role: (agents, viewers, operators).
    pub(crate) fn counts(&self) -> (usize, usize, usize) {
        (self.agents.len(), self.viewers.len(), self.operators.len())
    }
}

/// Constant-time "is `token` one of `candidates`", returning the index of the match.
fn find(token: &[u8], candidates: impl Iterator<Item = impl AsRef<[u8]>>) -> Option<usize> {
    position_constant_time(token, candidates)
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
    /// The tokens of `config`; those of its token file are read by [`Tokens::reload`] (which
    /// [`crate::run_master`] calls before serving, so a bad file stops the start).
    pub(crate) fn from_config(config: &MasterConfig) -> Self {
        let mut env = Vec::new();
        let mut agents: Vec<_> = config.agent_tokens.iter().collect();
        agents.sort_by(|a, b| a.1.cmp(b.1));
        for (secret, cluster) in agents {
            env.push(FileToken {
                name: format!("env-agent-{cluster}"),
                secret: secret.clone(),
                scope: (FileRole::Agent, Some(cluster.clone())),
            });
        }
        for (role, list, what) in [
            (FileRole::Viewer, &config.viewer_tokens, "viewer"),
            (FileRole::Operator, &config.operator_tokens, "operator"),
        ] {
            for (i, secret) in list.iter().enumerate() {
                env.push(FileToken {
                    name: format!("env-{what}-{}", i + 1),
                    secret: secret.clone(),
                    scope: (role, None),
                });
            }
        }
        let fixed = Arc::new(TokenSet::build(env.iter().cloned(), false));
        let file = config.token_file.clone().map(|path| {
            // Nothing is open before the file is read: a file means tokens.
            let before = TokenSet::build(env.iter().cloned(), true);
            Arc::new(WatchedFiles::text_with_initial(path, before, move |text| {
                let listed = parse_token_file(text)?;
                Ok(TokenSet::build(env.iter().cloned().chain(listed), true))
            }))
        });
        Self {
            fixed,
            file,
            agents_need_certificate: config.agents_need_certificates(),
        }
    }

    fn set(&self) -> Arc<TokenSet> {
        match &self.file {
            Some(file) => file.current(),
            None => Arc::clone(&self.fixed),
        }
    }

    /// The token file, for the task that watches it; `None` without one.
    pub(crate) fn token_file(&self) -> Option<Arc<WatchedFiles<TokenSet>>> {
        self.file.clone()
    }

    /// Reads the token file again; when it changed and parses, its tokens (next to the
    /// environment's) are in force from the next request on: `Ok(true)`. A file that does not
    /// parse is an error naming the file and line, and the tokens in force stay.
    pub(crate) fn reload(&self) -> Result<bool, WatchError> {
        self.file.as_ref().map_or(Ok(false), |file| file.reload())
    }

    /// Whether agents are identified by token (otherwise by the cluster id they claim).
    pub(crate) fn agents_need_token(&self) -> bool {
        let set = self.set();
        set.from_file || !set.agents.is_empty()
    }

    /// The cluster of a request's agent token, when it carries a known one (no claim checked:
    /// the handler does that). For keying rate limits; the token itself is never kept.
    pub(crate) fn agent_token_cluster(&self, headers: &HeaderMap) -> Option<String> {
        let token = bearer(headers)?;
        let set = self.set();
        let index = find(token, set.agents.iter().map(|(t, _, _)| t))?;
        Some(set.agents[index].1.clone())
    }

    /// Which reader token a request carries, when it carries a known one: its role and its
    /// name (so a rate limit is keyed per token, never by its text).
    pub(crate) fn reader_token(&self, headers: &HeaderMap) -> Option<(Role, String)> {
        let token = bearer(headers)?;
        let set = self.set();
        if let Some(i) = find(token, set.operators.iter().map(|(t, _)| t)) {
            return Some((Role::Operator, set.operators[i].1.clone()));
        }
        find(token, set.viewers.iter().map(|(t, _)| t))
            .map(|i| (Role::Viewer, set.viewers[i].1.clone()))
    }

    /// Whether readers need no token (no viewer or operator tokens and no token file).
    pub(crate) fn readers_open(&self) -> bool {
        let set = self.set();
        !set.from_file && set.viewers.is_empty() && set.operators.is_empty()
    }

    /// What a reader request may do: its token's role, or operator when the master is open (no
    /// viewer or operator tokens and no token file: everything is allowed). `None` without a known
    /// token.
    pub(crate) fn role_of(&self, headers: &HeaderMap) -> Option<Role> {
        {
            let set = self.set();
            if !set.from_file && set.viewers.is_empty() && set.operators.is_empty() {
                return Some(Role::Operator);
            }
        }
        self.reader_token(headers).map(|(role, _)| role)
    }

    /// The cluster an agent request speaks for.
    ///
    /// `claimed` is every cluster id the request names (the `X-Cluster-ID` header, a query or body
    /// field); each one that is present must agree. With agent tokens configured, the identity
    /// is the token's cluster: no or an unknown token is 401, a claim of another cluster 403.
    /// Without tokens (development mode) the claims are the identity and at least one is needed.
    ///
    /// A client certificate (verified by the TLS layer against `--tls-client-ca`) identifies
    /// an agent instead of a token: the claimed cluster id must be one of its DNS names (403
    /// otherwise). Next to a token, it must name the token's cluster.
    pub(crate) fn agent_identity(
        &self,
        headers: &HeaderMap,
        cert: Option<&ClientCertificate>,
        claimed: &[Option<&str>],
    ) -> Result<String, ApiError> {
        // In the agents-only mode the handshake let it through without one; in mode `all` it
        // cannot get here without one.
        if cert.is_none() && self.agents_need_certificate {
            return Err(ApiError::unauthorized(
                "agents must present a client certificate of this master's client CA",
            ));
        }
        let claims: Vec<&str> = claimed
            .iter()
            .flatten()
            .copied()
            .filter(|c| !c.is_empty())
            .collect();
        let identity = match cert {
            Some(cert) if bearer(headers).is_none() => {
                let cluster = Self::claimed_identity(&claims)?;
                if !cert.names(&cluster) {
                    return Err(ApiError::forbidden(format!(
                        "the client certificate does not name cluster {cluster:?} among its DNS names"
                    )));
                }
                return Ok(cluster);
            }
            _ => self.token_identity(headers, &claims)?,
        };
        if let Some(cert) = cert
            && !cert.names(&identity)
        {
            return Err(ApiError::forbidden(
                "the client certificate does not name the agent token's cluster",
            ));
        }
        Ok(identity)
    }

    /// The identity of the claims alone (development mode, or a client certificate to check).
    fn claimed_identity(claims: &[&str]) -> Result<String, ApiError> {
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

    fn token_identity(&self, headers: &HeaderMap, claims: &[&str]) -> Result<String, ApiError> {
        if self.agents_need_token() {
            let token =
                bearer(headers).ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
            let set = self.set();
            let index = find(token, set.agents.iter().map(|(t, _, _)| t))
                .ok_or_else(|| ApiError::unauthorized("unknown agent token"))?;
            let cluster = &set.agents[index].1;
            if claims.iter().any(|c| *c != cluster) {
                return Err(ApiError::forbidden(
                    "cluster id does not match the agent token's cluster",
                ));
            }
            Ok(cluster.clone())
        } else {
            Self::claimed_identity(claims)
        }
    }

    /// Checks that a reader may do what `role` allows. Open when no viewer or operator tokens are
    /// configured and no token file (the master then listens on loopback only).
    pub(crate) fn require(&self, headers: &HeaderMap, role: Role) -> Result<(), ApiError> {
        let set = self.set();
        if !set.from_file && set.viewers.is_empty() && set.operators.is_empty() {
            return Ok(());
        }
        let token =
            bearer(headers).ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
        if find(token, set.operators.iter().map(|(t, _)| t)).is_some() {
            return Ok(());
        }
        if find(token, set.viewers.iter().map(|(t, _)| t)).is_some() {
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

/// Middleware letting only operators through, whatever the method (routes that only read, but
/// read what viewers must not see: the audit log). Install with
/// `.route_layer(from_fn_with_state(tokens, operator_guard))`.
pub(crate) async fn operator_guard(
    State(tokens): State<Arc<Tokens>>,
    request: Request,
    next: Next,
) -> Response {
    match tokens.require(request.headers(), Role::Operator) {
        Ok(()) => next.run(request).await,
        Err(refused) => refused.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use axum::http::header::AUTHORIZATION;

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
        assert_eq!(
            t.agent_identity(&headers("tb"), None, &[Some("b")])
                .unwrap(),
            "b"
        );
        assert_eq!(
            t.agent_identity(&headers("tb"), None, &[None]).unwrap(),
            "b"
        );
        let e = t
            .agent_identity(&headers("tb"), None, &[Some("a")])
            .unwrap_err();
        assert_eq!(e.status, 403);
        let e = t
            .agent_identity(&headers("tc"), None, &[Some("a")])
            .unwrap_err();
        assert_eq!(e.status, 401);
        let e = t
            .agent_identity(&HeaderMap::new(), None, &[Some("a")])
            .unwrap_err();
        assert_eq!(e.status, 401);
    }

    #[test]
    fn a_client_certificate_identifies_the_cluster_it_names() {
        use atlhyper_testkit::tls::{TestCa, Validity};
        let leaf = TestCa::new("agents").client(&["a"], Validity::Current);
        let path = std::path::Path::new("a.crt");
        let der = atlhyper_http::tls::parse_certificates(path, leaf.cert.as_bytes())
            .unwrap()
            .remove(0);
        let cert = ClientCertificate(Arc::new(der));
        // What the audit log names it by.
        assert_eq!(cert.subject(), "CN=a");
        let t = tokens();
        // Instead of a token: the claim must be a name of the certificate.
        let alone = |claim| t.agent_identity(&HeaderMap::new(), Some(&cert), &[claim]);
        assert_eq!(alone(Some("a")).unwrap(), "a");
        assert_eq!(alone(Some("b")).unwrap_err().status, 403);
        assert_eq!(alone(None).unwrap_err().status, 400);
        assert_eq!(alone(Some("bad id")).unwrap_err().status, 400);
        // Next to a token: the certificate must name the token's cluster.
        assert_eq!(
            t.agent_identity(&headers("ta"), Some(&cert), &[None])
                .unwrap(),
            "a"
        );
        let other = t.agent_identity(&headers("tb"), Some(&cert), &[None]);
        assert_eq!(other.unwrap_err().status, 403);
        let unknown = t.agent_identity(&headers("tc"), Some(&cert), &[Some("a")]);
        assert_eq!(unknown.unwrap_err().status, 401);
    }

    #[test]
    fn agents_need_a_certificate_with_a_client_ca_and_readers_do_not() {
        use atlhyper_http::tls::TlsSettings;
        use atlhyper_testkit::tls::{TestCa, Validity};
        let mut tls = TlsSettings::new("c.pem".into(), "k.pem".into());
        tls.client_ca = Some("ca.pem".into());
        tls.client_cert_optional = true;
        let config = MasterConfig {
            agent_tokens: [("ta".to_owned(), "a".to_owned())].into(),
            viewer_tokens: vec!["v".into()],
            tls: Some(tls),
            ..MasterConfig::default()
        };
        assert!(config.agents_need_certificates());
        assert!(!config.requires_client_certificates());
        let t = Tokens::from_config(&config);
        // A token alone is not enough for an agent route.
        let e = t
            .agent_identity(&headers("ta"), None, &[Some("a")])
            .unwrap_err();
        assert_eq!(e.status, 401);
        assert!(e.message.contains("client certificate"), "{}", e.message);
        let leaf = TestCa::new("agents").client(&["a"], Validity::Current);
        let der = atlhyper_http::tls::parse_certificates(
            std::path::Path::new("a.crt"),
            leaf.cert.as_bytes(),
        )
        .unwrap()
        .remove(0);
        let cert = ClientCertificate(Arc::new(der));
        assert_eq!(
            t.agent_identity(&headers("ta"), Some(&cert), &[Some("a")])
                .unwrap(),
            "a"
        );
        // Readers keep their bearer tokens.
        assert!(t.require(&headers("v"), Role::Viewer).is_ok());
    }

    #[test]
    fn token_file_rotates_named_tokens_next_to_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        let write = |text: &str| {
            let tmp = dir.path().join("tokens.tmp");
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
        };
        write(
            "agent a-old aaaaaaaaaaaaaaaa a\n\
             agent a-new bbbbbbbbbbbbbbbb a\n\
             viewer grafana cccccccccccccccc\n",
        );
        let config = MasterConfig {
            operator_tokens: vec!["o".into()],
            token_file: Some(path.clone()),
            ..MasterConfig::default()
        };
        let t = Tokens::from_config(&config);
        // Nothing is open before the file is read: a file means tokens.
        assert_eq!(
            t.require(&HeaderMap::new(), Role::Viewer)
                .unwrap_err()
                .status,
            401
        );
        assert!(t.reload().unwrap());
        assert!(!t.reload().unwrap(), "unchanged file");
        // Two tokens of one cluster at once, each with its name.
        for token in ["aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"] {
            assert_eq!(
                t.agent_identity(&headers(token), None, &[None]).unwrap(),
                "a"
            );
        }
        assert_eq!(
            t.reader_token(&headers("cccccccccccccccc")),
            Some((Role::Viewer, "grafana".to_owned()))
        );
        assert_eq!(
            t.reader_token(&headers("o")),
            Some((Role::Operator, "env-operator-1".to_owned()))
        );
        // The old agent token leaves; the environment's operator token stays.
        write("agent a-new bbbbbbbbbbbbbbbb a\nviewer grafana cccccccccccccccc\n");
        assert!(t.reload().unwrap());
        let gone = t.agent_identity(&headers("aaaaaaaaaaaaaaaa"), None, &[None]);
        assert_eq!(gone.unwrap_err().status, 401);
        assert!(t.require(&headers("o"), Role::Operator).is_ok());
        // A file that does not parse changes nothing.
        write("viewer x short\n");
        let e = t.reload().unwrap_err().to_string();
        assert!(e.contains(&format!("{}:1: ", path.display())), "{e}");
        assert!(
            t.require(&headers("cccccccccccccccc"), Role::Viewer)
                .is_ok()
        );
        // An empty file is a half-written one: refused, the tokens in force stay.
        write("# rotating\n");
        let e = t.reload().unwrap_err().to_string();
        assert!(e.contains("lists no token"), "{e}");
        assert!(
            t.require(&headers("cccccccccccccccc"), Role::Viewer)
                .is_ok()
        );
        // A file without reader tokens leaves none but does not open the API.
        write("agent a-new bbbbbbbbbbbbbbbb a\n");
        assert!(t.reload().unwrap());
        assert_eq!(
            t.require(&headers("cccccccccccccccc"), Role::Viewer)
                .unwrap_err()
                .status,
            401
        );
        assert!(t.agents_need_token());
    }

    #[test]
    fn dev_mode_uses_claim() {
        let t = Tokens::default();
        assert_eq!(
            t.agent_identity(&HeaderMap::new(), None, &[Some("x")])
                .unwrap(),
            "x"
        );
        assert_eq!(
            t.agent_identity(&HeaderMap::new(), None, &[None])
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            t.agent_identity(&HeaderMap::new(), None, &[Some("x"), Some("y")])
                .unwrap_err()
                .status,
            403
        );
        assert_eq!(
            t.agent_identity(&HeaderMap::new(), None, &[Some("bad id")])
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
        assert_eq!(
            t.reader_token(&headers("o")),
            Some((Role::Operator, "env-operator-1".to_owned()))
        );
        assert_eq!(
            t.reader_token(&headers("v")),
            Some((Role::Viewer, "env-viewer-1".to_owned()))
        );
        assert_eq!(t.reader_token(&headers("ta")), None);
        assert_eq!(t.agent_token_cluster(&headers("tb")).as_deref(), Some("b"));
        assert_eq!(t.agent_token_cluster(&headers("o")), None);
        assert_eq!(t.agent_token_cluster(&HeaderMap::new()), None);
        assert!(
            Tokens::default()
                .require(&HeaderMap::new(), Role::Operator)
                .is_ok()
        );
    }
}
