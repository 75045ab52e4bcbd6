//! Listen addresses as every binary's listen flag takes them: an IP literal with a port
//! (`0.0.0.0:8080`, `[::1]:8080`), a host name with a port (`localhost:8080`), or Go's `:8080`
//! for every interface.
//!
//! The host name lookup is I/O, and this crate does none: the caller passes the resolver (the
//! binaries pass the system's, tests a fixed table).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Why a text is not a listen address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ListenAddrError(String);

/// Parses `HOST:PORT` into the one address to bind. A host name is looked up once, through
/// `resolve`, and its first IPv4 address is taken (else its first address), as Go's
/// `net.Listen` does: one socket, not one per address.
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
/// use atlhyper_model::parse_listen_addr;
///
/// let hosts = |host: &str| match host {
///     "localhost" => Ok(vec![IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1]), IpAddr::from([127, 0, 0, 1])]),
///     _ => Err(std::io::Error::other("unknown host")),
/// };
/// assert_eq!(parse_listen_addr("localhost:8080", hosts), Ok(SocketAddr::from(([127, 0, 0, 1], 8080))));
/// assert_eq!(parse_listen_addr(":9100", hosts), Ok(SocketAddr::from(([0, 0, 0, 0], 9100))));
/// assert!(parse_listen_addr("nowhere:80", hosts).is_err());
/// ```
pub fn parse_listen_addr(
    text: &str,
    resolve: impl FnOnce(&str) -> std::io::Result<Vec<IpAddr>>,
) -> Result<SocketAddr, ListenAddrError> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(ListenAddrError(format!(
            "{text:?} has no port (write e.g. 0.0.0.0:8080, localhost:8080 or :8080)"
        )));
    };
    let port: u16 = port.parse().map_err(|_| {
        ListenAddrError(format!(
            "{text:?}: {port:?} is not a port number (0 to 65535)"
        ))
    })?;
    if host.is_empty() {
        return Ok(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)));
    }
    if host.contains(':') || host.starts_with('[') {
        return Err(ListenAddrError(format!(
            "{text:?}: write an IPv6 address in brackets, e.g. [::1]:{port}"
        )));
    }
    let addresses = resolve(host)
        .map_err(|e| ListenAddrError(format!("{text:?}: cannot resolve {host:?}: {e}")))?;
    let ip = addresses
        .iter()
        .find(|ip| ip.is_ipv4())
        .or_else(|| addresses.first())
        .ok_or_else(|| ListenAddrError(format!("{text:?}: {host:?} has no address")))?;
    Ok(SocketAddr::new(*ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(host: &str) -> std::io::Result<Vec<IpAddr>> {
        match host {
            "localhost" => Ok(vec![IpAddr::from([127, 0, 0, 1])]),
            "v6only" => Ok(vec![IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1])]),
            "empty" => Ok(Vec::new()),
            _ => Err(std::io::Error::other("no such host")),
        }
    }

    #[test]
    fn literals_names_and_go_shorthand() {
        for (text, want) in [
            ("127.0.0.1:8080", SocketAddr::from(([127, 0, 0, 1], 8080))),
            (
                "[::1]:8080",
                SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], 8080)),
            ),
            (" localhost:0 ", SocketAddr::from(([127, 0, 0, 1], 0))),
            (
                "v6only:80",
                SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], 80)),
            ),
            (":8082", SocketAddr::from(([0, 0, 0, 0], 8082))),
        ] {
            assert_eq!(parse_listen_addr(text, table), Ok(want), "{text}");
        }
    }

    #[test]
    fn bad_addresses_say_why() {
        for (text, says) in [
            ("localhost", "no port"),
            ("8080", "no port"),
            ("", "no port"),
            ("localhost:http", "not a port"),
            ("localhost:65536", "not a port"),
            ("::1:8080", "brackets"),
            ("[::1:8080", "brackets"),
            ("nowhere:80", "cannot resolve"),
            ("empty:80", "no address"),
        ] {
            let err = parse_listen_addr(text, table).expect_err(text);
            assert!(err.to_string().contains(says), "{text}: {err}");
        }
    }
}
