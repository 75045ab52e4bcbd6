//! Loopback ports and polling for tests that run real servers.

use std::time::Duration;

/// A port on 127.0.0.1 that nothing listens on right now (bound, then released for the server
/// under test to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a loopback port")
}

/// A loopback socket bound but not listening, and its port: connections to it are refused, and
/// no other test can take the port, until [`tokio::net::TcpSocket::listen`] turns it into the
/// listener of the server under test. For a peer that is down and comes back in-process.
pub fn held_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
    socket
        .bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("bind a loopback port");
    let port = socket.local_addr().expect("bound address").port();
    (socket, port)
}

/// Polls `cond` every 20 ms on this thread for at most `limit`: how long until it held, or
/// `None`. For tests driving real processes without a runtime.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = std::time::Instant::now();
    loop {
        if cond() {
            return Some(start.elapsed());
        }
        if start.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits, polling every 20 ms and at most `limit`, until `cond` holds; whether it did.
/// Tokio's clock: under paused time it advances without sleeping.
pub async fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_port_can_be_bound() {
        let port = free_port();
        assert_ne!(port, 0);
        std::net::TcpListener::bind(("127.0.0.1", port)).expect("still free");
    }

    #[tokio::test(start_paused = true)]
    async fn waits_until_the_condition_or_the_limit() {
        let mut calls = 0;
        assert!(
            wait_for(Duration::from_secs(1), || {
                calls += 1;
                calls == 3
            })
            .await
        );
        let started = tokio::time::Instant::now();
        assert!(!wait_for(Duration::from_millis(100), || false).await);
        assert!(started.elapsed() >= Duration::from_millis(100));
    }
}
