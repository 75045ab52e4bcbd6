//! Delivery: pushing queued snapshots to the agent one request at a time, retrying with
//! backoff, dropping what the agent refuses for good.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use atlhyper_http::watched_file::DEFAULT_WATCH_INTERVAL;
use axum::body::Bytes;
use axum::http::header;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::config::DaemonConfig;
use super::outbox::Outbox;
use super::self_metrics::DaemonStats;
use crate::backoff::Backoff;
use crate::client_token::{ClientToken, watch_until};
use crate::error::AgentError;
use crate::failover::Endpoints;
use crate::master::error_chain;
use crate::stats::inc;
use crate::tls_client::WatchedClient;

/// Why one delivery failed.
#[derive(Debug)]
pub(crate) enum DeliverError {
    /// The agent could not be reached or answered 5xx: retry, and another agent listed may
    /// take it now.
    Unreachable(String),
    /// Worth retrying later at the same agent (401, 403, 408, 429).
    Retry(String),
    /// The agent will never take this body (other 4xx): drop it.
    Refused(String),
}

impl DeliverError {
    /// The verdict on an answer that was not a success. 401 and 403 are retried until the
    /// token is fixed, so the queued snapshots still arrive then; 408 and 429 say "later"; any
    /// other 4xx will not change for this body; 5xx and anything else is the agent's trouble
    /// and passes.
    fn from_status(status: u16, why: String) -> Self {
        match status {
            401 | 403 | 408 | 429 => Self::Retry(why),
            400..=499 => Self::Refused(why),
            _ => Self::Unreachable(why),
        }
    }
}

/// Delivers one gzipped snapshot body. The seam between the sender loop and HTTP.
pub(crate) trait Deliver: Send + 'static {
    fn deliver(&mut self, body: Bytes) -> impl Future<Output = Result<(), DeliverError>> + Send;
}

/// `POST /metrics/node` over HTTP, to the agent that answered last, or the next one listed
/// when it cannot be reached.
#[derive(Debug)]
pub(super) struct HttpDeliver {
    /// Re-made when the CA bundle changes.
    http: Arc<WatchedClient>,
    agents: Endpoints,
    /// `{agent}/metrics/node` of every agent listed, parsed once (by index in `agents`).
    urls: Vec<reqwest::Url>,
    token: ClientToken,
}

impl HttpDeliver {
    pub(super) fn new(config: &DaemonConfig) -> Result<Self, AgentError> {
        let timeout = config.request_timeout;
        let builder = move || {
            reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout)
                .pool_max_idle_per_host(1)
                .pool_idle_timeout(atlhyper_http::CLIENT_IDLE_TIMEOUT)
                .user_agent(concat!("atlhyper-metrics/", env!("CARGO_PKG_VERSION")))
        };
        let http = config
            .agent_tls
            .watched_client("METRICS", &config.agent_addr, builder)?;
        let token = ClientToken::new(
            config.token.as_deref(),
            "METRICS_TOKEN",
            config.token_file.clone(),
            "METRICS_TOKEN_FILE",
        )?;
        let agents = config.agents()?;
        let mut urls = vec![None; agents.len()];
        for (index, base) in agents.in_order() {
            let url = format!("{base}/metrics/node");
            let parsed = reqwest::Url::parse(&url)
                .map_err(|e| AgentError::config("METRICS_AGENT_ADDR", &format!("{url}: {e}")))?;
            urls[index] = Some(parsed);
        }
        Ok(Self {
            http: Arc::new(http),
            urls: urls.into_iter().flatten().collect(),
            agents,
            token,
        })
    }

    /// Watches the token file and the CA bundle, when given, until `cancel`.
    pub(super) fn watch_files(&self, cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
        let token = self.token.clone();
        let http = Arc::clone(&self.http);
        tokio::spawn(async move {
            let client = async {
                if !http.paths().is_empty() {
                    watch_until(
                        http,
                        DEFAULT_WATCH_INTERVAL,
                        "METRICS_CA_FILE",
                        cancel.clone(),
                    )
                    .await;
                }
            };
            tokio::join!(
                token.watch(DEFAULT_WATCH_INTERVAL, "METRICS_TOKEN_FILE", cancel.clone()),
                client
            );
        })
    }
}

impl HttpDeliver {
    async fn deliver_to(&self, url: &reqwest::Url, body: Bytes) -> Result<(), DeliverError> {
        let mut rb = self
            .http
            .current()
            .post(url.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_ENCODING, "gzip")
            .body(body);
        if let Some(auth) = self.token.header() {
            rb = rb.header(header::AUTHORIZATION, auth);
        }
        let resp = rb
            .send()
            .await
            .map_err(|e| DeliverError::Unreachable(format!("{url}: {}", error_chain(&e))))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let text = resp.text().await.unwrap_or_default();
        let why = format!(
            "{url} answered {status}: {}",
            text.chars().take(200).collect::<String>()
        );
        Err(DeliverError::from_status(status.as_u16(), why))
    }
}

impl Deliver for HttpDeliver {
    async fn deliver(&mut self, body: Bytes) -> Result<(), DeliverError> {
        let mut last = None;
        for (index, _) in self.agents.in_order() {
            let Some(url) = self.urls.get(index) else {
                continue;
            };
            match self.deliver_to(url, body.clone()).await {
                Ok(()) => {
                    self.agents.answered(index, "agent");
                    return Ok(());
                }
                // Another agent may take what this one could not.
                Err(e @ DeliverError::Unreachable(_)) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| DeliverError::Unreachable("no agent configured".into())))
    }
}

/// The retry delays for `config`: from `backoff_base` doubling to `backoff_max`, both capped at
/// one collection interval, so a daemon is back within about one interval of its agent
/// returning, however long the outage was.
pub(super) fn retry_backoff(config: &DaemonConfig) -> Backoff {
    let base = config.backoff_base.min(config.interval);
    Backoff::new(base, config.backoff_max.min(config.interval).max(base))
}

/// Sends what the outbox holds, one request at a time, until cancelled.
pub(crate) async fn run_sender<D: Deliver>(
    mut sink: D,
    outbox: Arc<Mutex<Outbox>>,
    notify: Arc<Notify>,
    mut backoff: Backoff,
    stats: Arc<DaemonStats>,
    cancel: CancellationToken,
) {
    loop {
        let next = outbox.lock().next();
        let Some((id, body)) = next else {
            tokio::select! {
                _ = notify.notified() => continue,
                _ = cancel.cancelled() => return,
            }
        };
        let result = tokio::select! {
            r = sink.deliver(body) => r,
            _ = cancel.cancelled() => return,
        };
        match result {
            Ok(()) => {
                let left = {
                    let mut o = outbox.lock();
                    o.ack(id);
                    o.len()
                };
                stats.queued.store(left as u64, Ordering::Relaxed);
                inc(&stats.pushes);
                stats.last_push_ok.store(true, Ordering::Relaxed);
                if backoff.attempts() > 0 {
                    tracing::info!(backlog = left, "agent reachable again");
                }
                backoff.reset();
            }
            Err(DeliverError::Refused(why)) => {
                outbox.lock().ack(id);
                inc(&stats.rejected);
                tracing::error!(error = %why, "agent refused a snapshot; dropped");
            }
            Err(DeliverError::Retry(why) | DeliverError::Unreachable(why)) => {
                inc(&stats.push_failures);
                stats.last_push_ok.store(false, Ordering::Relaxed);
                let delay = backoff.next_delay();
                tracing::warn!(error = %why, retry_in = ?delay, "push failed");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = cancel.cancelled() => return,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;
    use std::time::Duration;

    use tokio::time::Instant;

    use super::*;

    fn body(n: u8) -> Bytes {
        Bytes::from(vec![n])
    }

    fn verdict(status: u16) -> &'static str {
        match DeliverError::from_status(status, String::new()) {
            DeliverError::Retry(_) | DeliverError::Unreachable(_) => "retry",
            DeliverError::Refused(_) => "refused",
        }
    }

    #[test]
    fn client_errors_are_refused_except_auth_timeout_and_rate_limit() {
        for status in [400, 404, 413, 415, 422, 499] {
            assert_eq!(verdict(status), "refused", "{status}");
        }
        for status in [401, 403, 408, 429, 500, 502, 503, 504, 302, 100] {
            assert_eq!(verdict(status), "retry", "{status}");
        }
    }

    fn config(interval_ms: u64, base_ms: u64, max_ms: u64) -> DaemonConfig {
        let mut c = DaemonConfig::new("n1");
        c.interval = Duration::from_millis(interval_ms);
        c.backoff_base = Duration::from_millis(base_ms);
        c.backoff_max = Duration::from_millis(max_ms);
        c
    }

    /// The first ceiling (base) and the one reached after many failures (max).
    fn bounds(config: &DaemonConfig) -> (Duration, Duration) {
        let mut b = retry_backoff(config);
        let first = b.ceiling();
        for _ in 0..40 {
            b.next_delay();
        }
        (first, b.ceiling())
    }

    #[test]
    fn retries_never_wait_longer_than_one_interval() {
        let ms = Duration::from_millis;
        // The defaults: 1 s doubling, capped at the 5 s interval rather than at 60 s.
        assert_eq!(bounds(&config(5000, 1000, 60_000)), (ms(1000), ms(5000)));
        // A cap below the interval stays.
        assert_eq!(bounds(&config(5000, 1000, 2000)), (ms(1000), ms(2000)));
        // A base above the interval is cut to it too.
        assert_eq!(bounds(&config(500, 1000, 60_000)), (ms(500), ms(500)));
        // A cap below the base is raised to the base.
        assert_eq!(bounds(&config(5000, 1000, 10)), (ms(1000), ms(1000)));
    }

    /// Fails the first `fail` deliveries, recording when each attempt started and how many were
    /// in flight at once.
    struct Flaky {
        fail: usize,
        attempts: Arc<Mutex<Vec<(Instant, u8)>>>,
        in_flight: Arc<AtomicU64>,
        max_in_flight: Arc<AtomicU64>,
    }

    impl Deliver for Flaky {
        async fn deliver(&mut self, body: Bytes) -> Result<(), DeliverError> {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            self.attempts.lock().push((Instant::now(), body[0]));
            tokio::time::sleep(Duration::from_millis(50)).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            if self.fail > 0 {
                self.fail -= 1;
                Err(DeliverError::Retry("agent down".into()))
            } else {
                Ok(())
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn sender_backs_off_exponentially_then_drains_the_backlog() {
        let attempts = Arc::new(Mutex::new(Vec::new()));
        let max_in_flight = Arc::new(AtomicU64::new(0));
        let sink = Flaky {
            fail: 6,
            attempts: Arc::clone(&attempts),
            in_flight: Arc::new(AtomicU64::new(0)),
            max_in_flight: Arc::clone(&max_in_flight),
        };
        let outbox = Arc::new(Mutex::new(Outbox::new(100)));
        let notify = Arc::new(Notify::new());
        let stats = Arc::new(DaemonStats::default());
        let cancel = CancellationToken::new();
        let base = Duration::from_secs(1);
        let max = Duration::from_secs(8);
        let task = tokio::spawn(run_sender(
            sink,
            Arc::clone(&outbox),
            Arc::clone(&notify),
            Backoff::with_seed(base, max, 42),
            Arc::clone(&stats),
            cancel.clone(),
        ));
        let start = Instant::now();
        // A snapshot every 5 s for 60 s while the first six attempts fail.
        for n in 0..12u8 {
            outbox.lock().push(body(n));
            notify.notify_one();
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        cancel.cancel();
        task.await.unwrap();

        let attempts = attempts.lock().clone();
        assert_eq!(
            max_in_flight.load(Ordering::SeqCst),
            1,
            "never two requests at once"
        );
        // Gaps between the failing attempts follow the backoff: each within [c/2, c] of a
        // doubling ceiling capped at 8 s (plus the 50 ms the attempt itself took).
        let mut ceiling = base;
        for pair in attempts[..7].windows(2) {
            let gap = pair[1].0 - pair[0].0 - Duration::from_millis(50);
            assert!(
                gap >= ceiling / 2 && gap <= ceiling,
                "gap {gap:?} vs ceiling {ceiling:?}"
            );
            ceiling = (ceiling * 2).min(max);
        }
        // Afterwards everything queued was delivered: nothing is left, nothing dropped.
        assert_eq!(outbox.lock().len(), 0);
        assert_eq!(stats.push_failures.load(Ordering::SeqCst), 6);
        assert_eq!(stats.pushes.load(Ordering::SeqCst), 12);
        let mut delivered: Vec<u8> = attempts[6..].iter().map(|a| a.1).collect();
        delivered.sort();
        assert_eq!(delivered, (0..12).collect::<Vec<u8>>());
        assert!(Instant::now() - start >= Duration::from_secs(60));
    }
}
