//! Who may push to the node receiver: the one token of `AGENT_NODE_TOKEN` (any node) and the
//! named tokens of the node-token file (`--node-token-file`, `AGENT_NODE_TOKEN_FILE`), re-read
//! when it changes, so tokens rotate without a restart. A token with a node may push only that
//! node's name.
//!
//! ```text
//! # NAME          TOKEN                              NODE (optional)
//! fleet-2026-11   3c1f0e9a8b7d6c5e4f3a2b1c0d9e8f7a
//! worker-3        9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b   worker-3
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use atlhyper_http::token_file::{
    NamedToken, TokenLine, bearer, parse_token_lines, position_constant_time,
};
use atlhyper_http::watched_file::{WatchError, WatchedFiles};
use axum::http::HeaderMap;

/// One node token: its name, its text, and the node it is limited to (`None`: any node).
pub type NodeToken = NamedToken<Option<String>>;

/// The tokens in force at one moment.
#[derive(Debug, Default)]
pub struct NodeTokenSet {
    tokens: Vec<NodeToken>,
}

impl NodeTokenSet {
    /// How many tokens are in force, and how many of them are limited to one node.
    pub fn counts(&self) -> (usize, usize) {
        let per_node = self.tokens.iter().filter(|t| t.scope.is_some()).count();
        (self.tokens.len(), per_node)
    }
}

/// Parses a node-token file: `NAME TOKEN [NODE]` lines (the shared checks of
/// [`parse_token_lines`], and a NODE that is a valid node name). Errors start `line N: `.
pub fn parse_node_token_file(text: &str) -> Result<Vec<NodeToken>, String> {
    parse_token_lines(text, |fields| {
        let (name, secret, node) = match fields {
            [name, secret] => (*name, *secret, None),
            [name, secret, node] => (*name, *secret, Some(*node)),
            _ => {
                return Err(format!(
                    "{} fields; a line is `NAME TOKEN [NODE]`",
                    fields.len()
                ));
            }
        };
        if let Some(node) = node {
            atlhyper_model::validate_node_name(node).map_err(|e| format!("node {e}"))?;
        }
        Ok(TokenLine {
            name,
            secret,
            scope: node.map(str::to_owned),
        })
    })
}

/// Which token a request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeAuth {
    /// No token is configured: every node may push.
    Open,
    /// A known token: its name, and the node it is limited to.
    Token {
        /// The token's name (for logs; never its text).
        name: String,
        /// The only node name it may push, when limited.
        node: Option<String>,
    },
}

impl NodeAuth {
    /// Whether a snapshot of `node_name` may come with this token; otherwise the token's name
    /// and its own node, for the refusal.
    pub fn allows(&self, node_name: &str) -> Result<(), (&str, &str)> {
        match self {
            Self::Token {
                name,
                node: Some(node),
            } if node != node_name => Err((name, node)),
            _ => Ok(()),
        }
    }
}

/// The node tokens in force: the environment's one, the file's (re-read), both, or none.
#[derive(Debug, Clone, Default)]
pub struct NodeTokens {
    /// `AGENT_NODE_TOKEN`, named `env-node`, valid for every node.
    env: Option<Arc<NodeToken>>,
    file: Option<Arc<WatchedFiles<NodeTokenSet>>>,
}

impl NodeTokens {
    /// No token: every node may push.
    pub fn open() -> Self {
        Self::default()
    }

    /// One token for every node (`AGENT_NODE_TOKEN`); an empty one requires nothing.
    pub fn single(token: Option<&str>) -> Self {
        Self {
            env: token.filter(|t| !t.is_empty()).map(|t| {
                Arc::new(NodeToken {
                    name: "env-node".to_owned(),
                    secret: t.to_owned(),
                    scope: None,
                })
            }),
            file: None,
        }
    }

    /// [`Self::single`] and the named tokens of `file`, read now: a missing file or one that
    /// does not parse is an error naming the file (and line), so the agent does not start.
    pub fn with_file(token: Option<&str>, file: PathBuf) -> Result<Self, WatchError> {
        let parse = |text: &str| parse_node_token_file(text).map(|tokens| NodeTokenSet { tokens });
        Ok(Self {
            file: Some(Arc::new(WatchedFiles::load_text(file, parse)?)),
            ..Self::single(token)
        })
    }

    /// The token file, for the task that watches it.
    pub fn file(&self) -> Option<&Arc<WatchedFiles<NodeTokenSet>>> {
        self.file.as_ref()
    }

    /// Which token `headers` carry; `None` (401) when tokens are configured and the request
    /// has none of them. Every token in force is compared, in constant time.
    pub fn check(&self, headers: &HeaderMap) -> Option<NodeAuth> {
        if self.env.is_none() && self.file.is_none() {
            return Some(NodeAuth::Open);
        }
        let token = bearer(headers)?;
        let set = self.file.as_ref().map(|f| f.current());
        let listed = set.as_ref().map_or(&[][..], |s| &s.tokens[..]);
        let all = || self.env.iter().map(|t| &**t).chain(listed);
        let index = position_constant_time(token, all().map(|t| t.secret.as_bytes()))?;
        let found = all().nth(index)?;
        Some(NodeAuth::Token {
            name: found.name.clone(),
            node: found.scope.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header::AUTHORIZATION;

    fn headers(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
        h
    }

    #[test]
    fn lines_with_and_without_a_node_and_bad_ones_named_by_line() {
        let tokens =
            parse_node_token_file("fleet aaaaaaaaaaaaaaaa\nw-3 bbbbbbbbbbbbbbbb worker-3\n")
                .unwrap();
        assert_eq!(tokens[0].scope, None);
        assert_eq!(tokens[1].scope.as_deref(), Some("worker-3"));
        for (text, says) in [
            ("", "lists no token"),
            ("a aaaaaaaaaaaaaaaa n extra", "line 1: 4 fields"),
            ("a aaaaaaaaaaaaaaaa Bad_Node", "line 1: node"),
            (
                "a 0123456789",
                "line 1: the token of a: a token of 10 characters",
            ),
            (
                "a aaaaaaaaaaaaaaaa\na bbbbbbbbbbbbbbbb",
                "line 2: the name \"a\" is used twice",
            ),
        ] {
            let e = parse_node_token_file(text).unwrap_err();
            assert!(e.contains(says), "{text:?}: {e}");
        }
    }

    #[test]
    fn environment_and_file_tokens_with_per_node_limits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node-tokens");
        std::fs::write(
            &path,
            "old aaaaaaaaaaaaaaaa\nnew bbbbbbbbbbbbbbbb\nw-3 cccccccccccccccc worker-3\n",
        )
        .unwrap();
        let tokens = NodeTokens::with_file(Some("eeeeeeeeeeeeeeee"), path.clone()).unwrap();
        assert_eq!(tokens.check(&HeaderMap::new()), None);
        assert_eq!(tokens.check(&headers("zzzzzzzzzzzzzzzz")), None);
        for (token, name) in [
            ("aaaaaaaaaaaaaaaa", "old"),
            ("bbbbbbbbbbbbbbbb", "new"),
            ("eeeeeeeeeeeeeeee", "env-node"),
        ] {
            let auth = tokens.check(&headers(token)).unwrap();
            assert_eq!(
                auth,
                NodeAuth::Token {
                    name: name.into(),
                    node: None
                }
            );
            assert!(auth.allows("any-node").is_ok());
        }
        let limited = tokens.check(&headers("cccccccccccccccc")).unwrap();
        assert!(limited.allows("worker-3").is_ok());
        assert_eq!(limited.allows("worker-4"), Err(("w-3", "worker-3")));
        // The old token leaves; a broken file keeps the set in force.
        std::fs::write(&path, "new bbbbbbbbbbbbbbbb\n").unwrap();
        assert!(tokens.file().unwrap().reload().unwrap());
        assert_eq!(tokens.check(&headers("aaaaaaaaaaaaaaaa")), None);
        std::fs::write(&path, "new short\n").unwrap();
        let e = tokens.file().unwrap().reload().unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}:1: ", path.display())), "{e}");
        assert!(tokens.check(&headers("bbbbbbbbbbbbbbbb")).is_some());
    }

    #[test]
    fn a_missing_file_fails_and_no_token_is_open() {
        let e = NodeTokens::with_file(None, "/nonexistent/node-tokens".into()).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/node-tokens"), "{e}");
        assert_eq!(
            NodeTokens::open().check(&HeaderMap::new()),
            Some(NodeAuth::Open)
        );
        assert_eq!(
            NodeTokens::single(Some("")).check(&HeaderMap::new()),
            Some(NodeAuth::Open)
        );
    }
}
