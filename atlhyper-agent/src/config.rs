//! Configuration helpers shared by the daemon and the agent: the value parsers of their flags,
//! node names and base URLs.

use std::net::{SocketAddr, ToSocketAddrs};

use atlhyper_model::{ListenAddrError, parse_listen_addr};

pub use atlhyper_model::{ConfigError, validate_node_name};

/// Value parser of every duration flag of the agent and the daemon: the one grammar
/// ([`atlhyper_model::parse_duration`]), zero refused; clap's error names the flag.
pub(crate) use atlhyper_model::parse_positive_duration as duration_arg;

/// Value parser of the listen flags: an IP literal, a host name (`localhost:8082`, looked up
/// once at start through the system resolver) or `:8082`.
pub fn parse_listen_arg(text: &str) -> Result<SocketAddr, ListenAddrError> {
    parse_listen_addr(text, |host| {
        Ok((host, 0).to_socket_addrs()?.map(|a| a.ip()).collect())
    })
}

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
    fn listen_flags_take_host_names() {
        assert_eq!(
            parse_listen_arg("localhost:8082").map(|a| a.ip().is_loopback()),
            Ok(true)
        );
        assert_eq!(
            parse_listen_arg("0.0.0.0:8082"),
            Ok(SocketAddr::from(([0, 0, 0, 0], 8082)))
        );
        assert!(parse_listen_arg("localhost").is_err());
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
