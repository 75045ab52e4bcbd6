//! Bearer tokens from files, as a Kubernetes Secret mount gives them, shared by every binary:
//!
//! - a server's file of **named tokens**, one per line, several valid at once so a token
//!   rotates without downtime ([`parse_token_lines`]; the master's `ROLE NAME TOKEN [CLUSTER]`,
//!   the agent's `NAME TOKEN [NODE]`), with each binary's own columns given by a closure;
//! - a client's file holding **its one token** ([`parse_client_token`]);
//! - the request side: the bearer token of a request ([`bearer`]) and a constant-time look-up
//!   among the tokens in force ([`position_constant_time`]).
//!
//! Errors name the line (`line 3: ...`; [`crate::watched_file`] adds the path), never the token.
//!
//! ```
//! use atlhyper_http::token_file::{TokenLine, parse_token_lines};
//!
//! let text = "# NAME     TOKEN             NODE\n\
//!             node-a-1   aaaaaaaaaaaaaaaa  node-a\n\
//!             fleet      bbbbbbbbbbbbbbbb\n";
//! let tokens = parse_token_lines(text, |fields| match fields {
//!     [name, token] => Ok(TokenLine { name: *name, secret: *token, scope: None }),
//!     [name, token, node] => Ok(TokenLine { name: *name, secret: *token, scope: Some(node.to_string()) }),
//!     _ => Err("a line is `NAME TOKEN [NODE]`".to_owned()),
//! })
//! .unwrap();
//! assert_eq!(tokens[0].scope.as_deref(), Some("node-a"));
//! let empty = parse_token_lines::<()>("# nothing yet\n", |_| Err(String::new()));
//! assert!(empty.unwrap_err().contains("no token"));
//! ```

use std::collections::HashSet;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// Longest token name.
pub const MAX_TOKEN_NAME_LEN: usize = 128;

/// One token of a server's file: who it is (the name that logs and the audit show), its text,
/// and what it may speak for (a cluster, a node, a role; `()` when nothing).
#[derive(Clone, PartialEq, Eq)]
pub struct NamedToken<S> {
    /// The token's name, unique in its file.
    pub name: String,
    /// The token itself; never logged.
    pub secret: String,
    /// What the token grants, from the binary's own columns.
    pub scope: S,
}

impl<S: std::fmt::Debug> std::fmt::Debug for NamedToken<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamedToken")
            .field("name", &self.name)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// One line split by a binary's closure: which field is the name, which the token, and the
/// scope its other columns give.
#[derive(Debug)]
pub struct TokenLine<'a, S> {
    /// The name field.
    pub name: &'a str,
    /// The token field.
    pub secret: &'a str,
    /// What the other columns grant.
    pub scope: S,
}

/// Parses a server's token file: blank lines and `#` comments skipped, every other line split
/// on whitespace and handed to `shape` (which checks the field count and the binary's own
/// columns). Shared checks: a name of 1 to 128 letters, digits, `.`, `_`, `-` or `@`; a token
/// long enough to be a secret ([`atlhyper_model::check_token`]); no name and no token twice; at
/// least one token (an empty file is more likely a half-written Secret than a wish to refuse
/// everyone). Errors start `line N: `.
pub fn parse_token_lines<'a, S>(
    text: &'a str,
    mut shape: impl FnMut(&[&'a str]) -> Result<TokenLine<'a, S>, String>,
) -> Result<Vec<NamedToken<S>>, String> {
    let mut tokens = Vec::new();
    let mut names = HashSet::new();
    let mut secrets = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let TokenLine {
            name,
            secret,
            scope,
        } = shape(&fields).map_err(|e| format!("line {n}: {e}"))?;
        if name.is_empty()
            || name.len() > MAX_TOKEN_NAME_LEN
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'))
        {
            return Err(format!(
                "line {n}: name {name:?} must be 1 to 128 letters, digits, '.', '_', '-' or '@'"
            ));
        }
        if let Err(e) = atlhyper_model::check_token(name, secret) {
            return Err(format!("line {n}: the token of {e}"));
        }
        if !names.insert(name) {
            return Err(format!("line {n}: the name {name:?} is used twice"));
        }
        if !secrets.insert(secret) {
            return Err(format!("line {n}: the token of {name:?} is listed twice"));
        }
        tokens.push(NamedToken {
            name: name.to_owned(),
            secret: secret.to_owned(),
            scope,
        });
    }
    if tokens.is_empty() {
        return Err("lists no token (only blank lines and comments)".to_owned());
    }
    Ok(tokens)
}

/// Parses a client's token file (`--token-file`): the one token it sends, alone on its line
/// (blank lines and `#` comments aside, so `kubectl create secret --from-literal` and a file
/// with a trailing newline both work). `setting` names the file's setting in errors.
pub fn parse_client_token(text: &str, setting: &str) -> Result<String, String> {
    let mut token = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.split_whitespace().nth(1).is_some() {
            return Err(format!(
                "line {n}: holds more than one field; the file holds the token alone"
            ));
        }
        if token.is_some() {
            return Err(format!(
                "line {n}: a second token; the file holds one (the server lists several)"
            ));
        }
        atlhyper_model::check_token(setting, line).map_err(|e| format!("line {n}: {e}"))?;
        token = Some(line.to_owned());
    }
    token.ok_or_else(|| "holds no token".to_owned())
}

/// The bearer token of a request (`Authorization: Bearer <token>`, scheme in any case), if any.
pub fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(AUTHORIZATION)?.as_bytes();
    let value = value.trim_ascii();
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Where `token` is among `candidates`, compared in constant time against every candidate (no
/// early exit on the first match), so the answer's timing says nothing about the tokens.
pub fn position_constant_time(
    token: &[u8],
    candidates: impl Iterator<Item = impl AsRef<[u8]>>,
) -> Option<usize> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn node_lines(text: &str) -> Result<Vec<NamedToken<Option<String>>>, String> {
        parse_token_lines(text, |fields| match fields {
            [name, secret] => Ok(TokenLine {
                name,
                secret,
                scope: None,
            }),
            [name, secret, node] => Ok(TokenLine {
                name,
                secret,
                scope: Some((*node).to_owned()),
            }),
            _ => Err("a line is `NAME TOKEN [NODE]`".to_owned()),
        })
    }

    #[test]
    fn named_tokens_with_and_without_a_scope() {
        let tokens = node_lines(
            "# rotation\n  old aaaaaaaaaaaaaaaa\nnew bbbbbbbbbbbbbbbb\n\nn-1 cccccccccccccccc node-1\n",
        )
        .unwrap();
        assert_eq!(tokens.len(), 3);
        assert_eq!(tokens[1].name, "new");
        assert_eq!(tokens[2].scope.as_deref(), Some("node-1"));
        assert!(
            !format!("{:?}", tokens[0]).contains("aaaa"),
            "Debug shows the token"
        );
    }

    #[test]
    fn bad_lines_name_the_line_and_never_the_token() {
        for (text, says) in [
            ("", "lists no token"),
            ("# only a comment\n\n", "lists no token"),
            ("a aaaaaaaaaaaaaaaa n extra", "line 1: a line is"),
            ("a", "line 1: a line is"),
            ("a short", "line 1: the token of a: a token of 5 characters"),
            ("a replace-me-node-token", "example value from deploy/"),
            ("a/b aaaaaaaaaaaaaaaa", "line 1: name \"a/b\""),
            (
                "a aaaaaaaaaaaaaaaa\n# c\na bbbbbbbbbbbbbbbb",
                "line 3: the name \"a\" is used twice",
            ),
            (
                "a aaaaaaaaaaaaaaaa\nb aaaaaaaaaaaaaaaa",
                "line 2: the token of \"b\" is listed twice",
            ),
        ] {
            let e = node_lines(text).unwrap_err();
            assert!(e.contains(says), "{text:?}: {e}");
            assert!(!e.contains("aaaaaaaaaaaaaaaa"), "the token is printed: {e}");
        }
    }

    #[test]
    fn a_client_file_holds_one_token() {
        let t = parse_client_token("aaaaaaaaaaaaaaaa\n", "METRICS_TOKEN_FILE").unwrap();
        assert_eq!(t, "aaaaaaaaaaaaaaaa");
        assert_eq!(
            parse_client_token("# new one\n  bbbbbbbbbbbbbbbb  \n\n", "X").unwrap(),
            "bbbbbbbbbbbbbbbb"
        );
        for (text, says) in [
            ("", "holds no token"),
            ("\n# c\n", "holds no token"),
            ("short", "line 1: METRICS_TOKEN_FILE: a token of 5"),
            (
                "aaaaaaaaaaaaaaaa bbbbbbbbbbbbbbbb",
                "line 1: holds more than one",
            ),
            (
                "aaaaaaaaaaaaaaaa\nbbbbbbbbbbbbbbbb",
                "line 2: a second token",
            ),
        ] {
            let e = parse_client_token(text, "METRICS_TOKEN_FILE").unwrap_err();
            assert!(e.contains(says), "{text:?}: {e}");
            assert!(!e.contains("aaaaaaaaaaaaaaaa"), "the token is printed: {e}");
        }
    }

    #[test]
    fn bearer_and_constant_time_lookup() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        for (value, token) in [
            ("Bearer abc", Some(&b"abc"[..])),
            ("bearer  abc ", Some(b"abc")),
            ("BEARER abc", Some(b"abc")),
            ("Bearer ", None),
            ("Basic abc", None),
            ("Bear", None),
        ] {
            h.insert(AUTHORIZATION, value.parse().unwrap());
            assert_eq!(bearer(&h), token, "{value:?}");
        }
        let list = ["one", "two", "three"];
        assert_eq!(position_constant_time(b"two", list.iter()), Some(1));
        assert_eq!(position_constant_time(b"tw", list.iter()), None);
        assert_eq!(
            position_constant_time(b"x", std::iter::empty::<&str>()),
            None
        );
    }
}
