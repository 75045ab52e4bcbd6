//! Configuration helpers shared by the daemon and the agent: durations and node names.

use std::time::Duration;

/// A configuration value that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {reason}")]
pub struct ConfigError {
    /// The setting (flag or environment variable).
    pub name: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    /// An error about setting `name`.
    pub fn new(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            reason: reason.into(),
        }
    }
}

/// Parses a duration as AtlHyper's configuration writes them: Go-style `"5s"`, `"100ms"`,
/// `"1m30s"`, `"2h"`, `"1.5s"` (units `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`), or a bare number of
/// seconds (`"5"`, `"0.5"`).
///
/// ```
/// use std::time::Duration;
/// use atlhyper_agent::parse_duration;
///
/// assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
/// assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
/// assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
/// assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
/// assert!(parse_duration("5 parsecs").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".to_owned());
    }
    if let Ok(secs) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(secs)
            .map_err(|_| format!("{text:?} is not a non-negative number of seconds"));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("{text:?}: number without a unit"))?;
        if num_len == 0 {
            return Err(format!(
                "{text:?} is not a duration (expected e.g. 5s, 100ms, 1m30s)"
            ));
        }
        let value: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("{text:?}: bad number {:?}", &rest[..num_len]))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            unit => {
                return Err(format!(
                    "{text:?}: unknown unit {unit:?} (use ns, us, ms, s, m, h)"
                ));
            }
        };
        rest = &rest[unit_len..];
        let part = Duration::try_from_secs_f64(value * scale)
            .map_err(|_| format!("{text:?} is out of range"))?;
        total = total
            .checked_add(part)
            .ok_or_else(|| format!("{text:?} is out of range"))?;
    }
    Ok(total)
}

pub use atlhyper_model::validate_node_name;

/// Normalises an agent or master address: adds `http://` when no scheme is given and drops a
/// trailing slash.
pub(crate) fn base_url(addr: &str) -> String {
    let addr = addr.trim().trim_end_matches('/');
    if addr.contains("://") {
        addr.to_owned()
    } else {
        format!("http://{addr}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("100us"), Ok(Duration::from_micros(100)));
        assert_eq!(parse_duration(" 0.5 "), Ok(Duration::from_millis(500)));
        for bad in ["", "s", "5x", "-1", "1m-5s", "abc", "5s3", "1e400"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn node_names() {
        for good in [
            "a",
            "node-1",
            "k8s-worker-01",
            "10.0.0.5",
            "a.b-c.d",
            &"a".repeat(253),
        ] {
            assert!(validate_node_name(good).is_ok(), "{good:?} rejected");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "A",
            "node_1",
            "a..b",
            ".a",
            "a.",
            "nöde",
            "a b",
            &"a".repeat(254),
        ] {
            assert!(validate_node_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn base_urls() {
        assert_eq!(base_url("agent:8082"), "http://agent:8082");
        assert_eq!(base_url("https://m.example/"), "https://m.example");
    }
}
