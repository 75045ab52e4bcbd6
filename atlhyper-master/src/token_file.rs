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

use std::collections::HashSet;

use crate::auth::valid_cluster_id;

/// One token of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileToken {
    pub role: FileRole,
    pub name: String,
    pub secret: String,
    /// The cluster an agent token speaks for.
    pub cluster: Option<String>,
}

/// The role a line grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileRole {
    Agent,
    Viewer,
    Operator,
}

/// Parses the file's text; an error names the line (never the token).
pub(crate) fn parse_token_file(text: &str) -> Result<Vec<FileToken>, String> {
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
        let (role, cluster) = match (fields[0], fields.len()) {
            ("agent", 4) => (FileRole::Agent, Some(fields[3])),
            ("viewer", 3) => (FileRole::Viewer, None),
            ("operator", 3) => (FileRole::Operator, None),
            ("agent", _) => {
                return Err(format!(
                    "line {n}: an agent line is `agent NAME TOKEN CLUSTER`"
                ));
            }
            ("viewer" | "operator", _) => {
                return Err(format!(
                    "line {n}: a {} line is `{} NAME TOKEN`",
                    fields[0], fields[0]
                ));
            }
            (other, _) => {
                return Err(format!(
                    "line {n}: role {other:?} is not agent, viewer or operator"
                ));
            }
        };
        let (name, secret) = (fields[1], fields[2]);
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'))
            || name.len() > 128
        {
            return Err(format!(
                "line {n}: name {name:?} must be 1 to 128 letters, digits, '.', '_', '-' or '@'"
            ));
        }
        if let Err(e) = atlhyper_model::check_token(name, secret) {
            return Err(format!("line {n}: the token of {}", e));
        }
        if !names.insert(name.to_owned()) {
            return Err(format!("line {n}: the name {name:?} is used twice"));
        }
        if !secrets.insert(secret.to_owned()) {
            return Err(format!("line {n}: the token of {name:?} is listed twice"));
        }
        if let Some(cluster) = cluster {
            valid_cluster_id(cluster).map_err(|e| format!("line {n}: {}", e.message))?;
        }
        tokens.push(FileToken {
            role,
            name: name.to_owned(),
            secret: secret.to_owned(),
            cluster: cluster.map(str::to_owned),
        });
    }
    Ok(tokens)
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
        assert_eq!(tokens[1].cluster.as_deref(), Some("prod-a"));
        assert_eq!(tokens[2].role, FileRole::Viewer);
        assert_eq!(tokens[3].role, FileRole::Operator);
        assert!(parse_token_file("").unwrap().is_empty());
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
