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
