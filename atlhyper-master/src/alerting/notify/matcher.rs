//! Label matchers, in Alertmanager's syntax: `name="value"`, `name!="value"`, `name=~"regex"`,
//! `name!~"regex"` (regexes anchored at both ends, as in Prometheus).

use std::fmt;

use atlhyper_model::Labels;
use atlhyper_store::SilenceMatcher;
use regex::Regex;

/// Longest accepted matcher value or regex, bytes (a regex is compiled once, but unbounded
/// patterns from the API would still cost memory).
pub const MAX_MATCHER_VALUE: usize = 4096;
/// Longest label name a matcher accepts, bytes (as rule label names).
pub const MAX_MATCHER_NAME: usize = 128;

/// How a matcher compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regex,
    /// `!~`
    NotRegex,
}

impl MatchOp {
    fn as_str(self) -> &'static str {
        match self {
            Self::Equal => "=",
            Self::NotEqual => "!=",
            Self::Regex => "=~",
            Self::NotRegex => "!~",
        }
    }

    fn is_regex(self) -> bool {
        matches!(self, Self::Regex | Self::NotRegex)
    }
}

/// One compiled matcher. A missing label matches as the empty string, as in Alertmanager.
#[derive(Debug, Clone)]
pub struct Matcher {
    name: String,
    op: MatchOp,
    value: String,
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Matcher {
    /// A matcher; a regex that does not compile, an empty or bad label name, a name past
    /// [`MAX_MATCHER_NAME`] or a value past [`MAX_MATCHER_VALUE`] is an error saying which.
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Self, String> {
        if name.len() > MAX_MATCHER_NAME {
            return Err(format!(
                "label name is {} bytes, more than {MAX_MATCHER_NAME}",
                name.len()
            ));
        }
        if !valid_label_name(name) {
            return Err(format!("label name {name:?} is not [a-zA-Z_][a-zA-Z0-9_]*"));
        }
        if value.len() > MAX_MATCHER_VALUE {
            return Err(format!(
                "value of {name} is {} bytes, more than {MAX_MATCHER_VALUE}",
                value.len()
            ));
        }
        let regex = if op.is_regex() {
            Some(
                Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| format!("regex {value:?} of {name} does not compile: {e}"))?,
            )
        } else {
            None
        };
        Ok(Self {
            name: name.to_owned(),
            op,
            value: value.to_owned(),
            regex,
        })
    }

    /// From a silence's stored matcher.
    pub fn from_silence(m: &SilenceMatcher) -> Result<Self, String> {
        let op = match (m.is_regex, m.is_equal) {
            (false, true) => MatchOp::Equal,
            (false, false) => MatchOp::NotEqual,
            (true, true) => MatchOp::Regex,
            (true, false) => MatchOp::NotRegex,
        };
        Self::new(&m.name, op, &m.value)
    }

    /// The label name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether `labels` satisfy this matcher.
    pub fn matches(&self, labels: &Labels) -> bool {
        let got = labels.get(&self.name).map_or("", String::as_str);
        match (&self.regex, self.op) {
            (_, MatchOp::Equal) => got == self.value,
            (_, MatchOp::NotEqual) => got != self.value,
            (Some(re), MatchOp::Regex) => re.is_match(got),
            (Some(re), MatchOp::NotRegex) => !re.is_match(got),
            // `new` compiles a regex for both regex operators.
            (None, _) => false,
        }
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op.as_str(), self.value)
    }
}

impl std::str::FromStr for Matcher {
    type Err = String;

    /// `name OP value`, the value in double quotes (with `\"` and `\\` escapes) or bare.
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let name_end = text
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .ok_or_else(|| format!("{text:?} has no operator (=, !=, =~, !~)"))?;
        let (name, rest) = text.split_at(name_end);
        let rest = rest.trim_start();
        let (op, value) = [
            ("=~", MatchOp::Regex),
            ("!~", MatchOp::NotRegex),
            ("!=", MatchOp::NotEqual),
            ("=", MatchOp::Equal),
        ]
        .into_iter()
        .find_map(|(token, op)| rest.strip_prefix(token).map(|v| (op, v.trim())))
        .ok_or_else(|| format!("{text:?} has no operator (=, !=, =~, !~) after the label name"))?;
        let value = unquote(value).map_err(|why| format!("{text:?}: {why}"))?;
        Self::new(name, op, &value).map_err(|why| format!("{text:?}: {why}"))
    }
}

/// A bare value as is, or a double-quoted one with its escapes undone.
fn unquote(value: &str) -> Result<String, String> {
    let Some(inner) = value.strip_prefix('"') else {
        return Ok(value.to_owned());
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some(c @ ('"' | '\\')) => out.push(c),
                Some(c) => {
                    out.push('\\');
                    out.push(c);
                }
                None => return Err("unterminated escape".to_owned()),
            },
            '"' => {
                return if chars.as_str().trim().is_empty() {
                    Ok(out)
                } else {
                    Err("text after the closing quote".to_owned())
                };
            }
            c => out.push(c),
        }
    }
    Err("missing closing quote".to_owned())
}

/// Prometheus label name syntax.
pub fn valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether every matcher matches (an empty list matches everything).
pub fn all_match(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_every_operator() {
        let l = labels(&[("severity", "critical"), ("node", "worker-3")]);
        let m = |s: &str| s.parse::<Matcher>().unwrap();
        assert!(m(r#"severity="critical""#).matches(&l));
        assert!(m("severity=critical").matches(&l));
        assert!(!m(r#"severity!="critical""#).matches(&l));
        assert!(m(r#"node=~"worker-.*""#).matches(&l));
        assert!(!m(r#"node!~"worker-\\d""#).matches(&l));
        // Anchored: a partial match is no match.
        assert!(!m(r#"node=~"worker""#).matches(&l));
        // A missing label is the empty string.
        assert!(m(r#"cluster="""#).matches(&l));
        assert!(m(r#"cluster!="prod""#).matches(&l));
        assert_eq!(m(r#"a = "x\"y""#).to_string(), r#"a="x\"y""#);
    }

    #[test]
    fn refuses_bad_matchers_with_reasons() {
        for (text, why) in [
            ("severity", "no operator"),
            ("1abc=x", "label name"),
            ("=x", "label name"),
            (r#"node=~"(""#, "does not compile"),
            (r#"node="open"#, "missing closing quote"),
            (r#"node="a" b"#, "after the closing quote"),
        ] {
            let err = text.parse::<Matcher>().unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
        let long = format!("a={}", "x".repeat(MAX_MATCHER_VALUE + 1));
        assert!(long.parse::<Matcher>().unwrap_err().contains("bytes"));
    }

    #[test]
    fn from_silence_matchers() {
        let m = Matcher::from_silence(&SilenceMatcher {
            name: "alertname".into(),
            value: "High.*".into(),
            is_regex: true,
            is_equal: false,
        })
        .unwrap();
        assert!(!m.matches(&labels(&[("alertname", "HighCpu")])));
        assert!(m.matches(&labels(&[("alertname", "NodeDown")])));
    }
}
