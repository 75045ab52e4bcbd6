//! The token file (`--token-file`, `MASTER_TOKEN_FILE`): named tokens of every role, one per
//! line, so a Kubernetes Secret mounted as a file rotates them without a restart (the old and
//! the new token of a role are both listed while clients move over).
//!
//! ```text
//! # ROLE     NAME            TOKEN                 CLUSTER (agent lines only)
//! agent      prod-a-2026-11  9f8e7d6c5b4a39281706  prod-a
//! viewer     grafana         c0ffee0123456789abcd
//! operator   alice           d00d0123456789abcdef
//! ```

use atlhyper_http::token_file::{NamedToken, TokenLine, parse_token_lines};

use crate::auth::valid_cluster_id;

/// One token of the file: its name and secret, the role it grants, and for an agent the
/// cluster it speaks for.
pub(crate) type FileToken = NamedToken<(FileRole, Option<String>)>;

/// The role a line grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileRole {
    Agent,
    Viewer,
    Operator,
}

/// Parses the file's text (the shared checks of [`parse_token_lines`] plus the role and
/// cluster columns); an error names the line (never the token).
pub(crate) fn parse_token_file(text: &str) -> Result<Vec<FileToken>, String> {
    parse_token_lines(text, |fields| {
        let (role, cluster) = match (fields[0], fields.len()) {
            ("agent", 4) => (FileRole::Agent, Some(fields[3])),
            ("viewer", 3) => (FileRole::Viewer, None),
            ("operator", 3) => (FileRole::Operator, None),
            ("agent", _) => return Err("an agent line is `agent NAME TOKEN CLUSTER`".to_owned()),
            ("viewer" | "operator", _) => {
                return Err(format!(
                    "a {} line is `{} NAME TOKEN`",
                    fields[0], fields[0]
                ));
            }
            (other, _) => {
                return Err(format!("role {other:?} is not agent, viewer or operator"));
            }
        };
        if let Some(cluster) = cluster {
            valid_cluster_id(cluster).map_err(|e| e.message)?;
        }
        Ok(TokenLine {
            name: fields[1],
            secret: fields[2],
            scope: (role, cluster.map(str::to_owned)),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_every_role_with_comments() {
        let text = "# rotation in progress\n\
                    agent prod-a-old aaaaaaaaaaaaaaaa prod-a\n\
                    agent prod-a-new bbbbbbbbbbbbbbbb prod-a\n\
                    \n  viewer grafana cccccccccccccccc\n\
                    operator alice@example dddddddddddddddd\n";
        let tokens = parse_token_file(text).unwrap();
        assert_eq!(tokens.len(), 4);
        assert_eq!(tokens[1].name, "prod-a-new");
        assert_eq!(tokens[1].scope.1.as_deref(), Some("prod-a"));
        assert_eq!(tokens[2].scope.0, FileRole::Viewer);
        assert_eq!(tokens[3].scope.0, FileRole::Operator);
        assert!(parse_token_file("").unwrap_err().contains("lists no token"));
    }

    #[test]
    fn bad_lines_name_the_line_and_never_the_token() {
        for (text, says) in [
            ("admin x aaaaaaaaaaaaaaaa", "line 1: role \"admin\""),
            ("agent a aaaaaaaaaaaaaaaa", "line 1: an agent line"),
            ("viewer a aaaaaaaaaaaaaaaa extra", "line 1: a viewer line"),
            (
                "viewer a short",
                "line 1: the token of a: a token of 5 characters is too easy to guess",
            ),
            (
                "viewer a replace-me-viewer-token",
                "example value from deploy/",
            ),
            ("viewer a/b aaaaaaaaaaaaaaaa", "name \"a/b\""),
            (
                "viewer a aaaaaaaaaaaaaaaa\noperator a bbbbbbbbbbbbbbbb",
                "line 2: the name \"a\" is used twice",
            ),
            (
                "viewer a aaaaaaaaaaaaaaaa\noperator b aaaaaaaaaaaaaaaa",
                "line 2: the token of \"b\" is listed twice",
            ),
            ("agent a aaaaaaaaaaaaaaaa bad/cluster", "line 1: cluster_id"),
        ] {
            let e = parse_token_file(text).unwrap_err();
            assert!(e.contains(says), "{text:?}: {e}");
            assert!(!e.contains("aaaaaaaaaaaaaaaa"), "the token is printed: {e}");
        }
    }
}
