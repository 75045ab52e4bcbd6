//! Several interchangeable peers behind one setting (`AGENT_MASTER_URL=http://a,http://b`,
//! `METRICS_AGENT_ADDR=agent-0:8082,agent-1:8082`): requests go to the peer that last answered,
//! and move on to the next one when it cannot be reached.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::config::{ConfigError, base_url};

/// Base URLs of interchangeable peers and which of them answered last. Clones share that
/// choice, so the pusher, the heartbeat and the command loop move together.
#[derive(Debug, Clone)]
pub struct Endpoints {
    bases: Arc<[Arc<str>]>,
    current: Arc<AtomicUsize>,
}

impl Endpoints {
    /// Parses a comma-separated list of addresses (scheme optional, `http://` by default).
    /// `setting` names the flag or variable in the error.
    pub fn parse(list: &str, setting: &'static str) -> Result<Self, ConfigError> {
        let parts: Vec<&str> = list.split(',').map(str::trim).collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(ConfigError::new(
                setting,
                "must be one address or a comma-separated list of them, none empty",
            ));
        }
        let mut bases: Vec<Arc<str>> = Vec::with_capacity(parts.len());
        for part in parts {
            let base = base_url(part);
            if !(base.starts_with("http://") || base.starts_with("https://")) {
                return Err(ConfigError::new(
                    setting,
                    "addresses must be http:// or https:// (or have no scheme)",
                ));
            }
            if bases.iter().any(|b| **b == *base) {
                return Err(ConfigError::new(setting, "lists an address twice"));
            }
            bases.push(Arc::from(base));
        }
        Ok(Self {
            bases: bases.into(),
            current: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// How many peers there are.
    pub fn len(&self) -> usize {
        self.bases.len()
    }

    /// Never true: [`Endpoints::parse`] refuses an empty list.
    pub fn is_empty(&self) -> bool {
        self.bases.is_empty()
    }

    /// The base URL requests go to now.
    pub fn current(&self) -> &str {
        &self.bases[self.current_index()]
    }

    fn current_index(&self) -> usize {
        self.current.load(Ordering::Relaxed) % self.bases.len()
    }

    /// Every peer once, the current one first, as (index, base URL).
    pub fn in_order(&self) -> impl Iterator<Item = (usize, &str)> {
        let start = self.current_index();
        let n = self.bases.len();
        (0..n).map(move |k| {
            let i = (start + k) % n;
            (i, &*self.bases[i])
        })
    }

    /// Peer `index` answered: later requests start there. Logs the switch once.
    pub fn answered(&self, index: usize, what: &'static str) {
        let before = self.current.swap(index, Ordering::Relaxed) % self.bases.len();
        if before != index {
            tracing::warn!(
                from = %self.bases[before],
                to = %self.bases[index],
                "{what} unreachable; switched to the next one listed"
            );
        }
    }

    /// Every base URL, joined as given (for logs).
    pub fn joined(&self) -> String {
        self.bases.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_or_several_addresses() {
        let one = Endpoints::parse("agent:8082", "X").unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one.current(), "http://agent:8082");
        let two = Endpoints::parse(" http://a:1/ , https://b:2", "X").unwrap();
        assert_eq!(two.joined(), "http://a:1,https://b:2");
        let order: Vec<_> = two.in_order().collect();
        assert_eq!(order, vec![(0, "http://a:1"), (1, "https://b:2")]);
        two.answered(1, "master");
        let order: Vec<_> = two.clone().in_order().map(|(i, _)| i).collect();
        assert_eq!(order, vec![1, 0]);
        assert_eq!(two.current(), "https://b:2");
    }

    #[test]
    fn bad_lists_are_refused_with_the_setting_named() {
        for bad in ["", "a,", ",a", "a,,b", "ftp://a", "a,a"] {
            let err = Endpoints::parse(bad, "AGENT_MASTER_URL").unwrap_err();
            assert!(
                err.to_string().contains("AGENT_MASTER_URL"),
                "{bad:?}: {err}"
            );
        }
    }
}
