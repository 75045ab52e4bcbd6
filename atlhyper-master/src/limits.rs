//! Write rate limits and the heavy readers' concurrency bound: one route layer ([`limit`]) that
//! answers 429 when a client is over its budget and 503 when every slot of a heavy reader class
//! stays taken, both with `Retry-After`, and their counters on `/metrics`.
//!
//! - Write routes get a token bucket (GCRA, the `governor` crate) per route class and client:
//!   agent snapshots, heartbeats and results per agent (the cluster of its token, or the client
//!   address when agents need no token), and operator writes (every POST, PUT, PATCH or DELETE
//!   under `/api/`: command creation, and whatever write route is added under the layer) per
//!   reader token, or per client address when reads need no token. A request without a known
//!   token is keyed by its address (it is refused with 401 right after anyway).
//! - Heavy readers (history from the store; observe detail and series, which wait for an
//!   agent; the full node list, tens of MiB for a big cluster) get a semaphore per class. Over
//!   the bound a request waits up to [`MasterConfig::heavy_read_wait`] for a slot, then gets a
//!   503 with `Retry-After`: the bound is the server's capacity shared by everyone, not this
//!   client's budget, so 429 ("you sent too many") would blame a client that may have sent one
//!   request; 503 with `Retry-After` is what generic HTTP clients and proxies retry.
//!
//! Addresses are keyed per IPv4 address and per IPv6 /64 (one host's usual allocation), and
//! buckets that refilled completely are forgotten by [`Limits::forget_idle`], so the table
//! holds only clients seen within one refill window.
//!
//! [`MasterConfig::heavy_read_wait`]: crate::MasterConfig::heavy_read_wait

use atlhyper_model::{Exposition, MetricKind};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::Clock;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::Master;
use crate::auth::{Role, Tokens};
use crate::config::{MasterConfig, RateLimit};
use crate::error::ApiError;

/// A rate-limited route class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteClass {
    /// `POST /agent/snapshot`.
    AgentSnapshot,
    /// `POST /agent/heartbeat`.
    AgentHeartbeat,
    /// `POST /agent/result`.
    AgentResult,
    /// Every POST, PUT, PATCH or DELETE under `/api/`.
    OperatorWrite,
}

impl WriteClass {
    const ALL: [Self; 4] = [
        Self::AgentSnapshot,
        Self::AgentHeartbeat,
        Self::AgentResult,
        Self::OperatorWrite,
    ];

    /// The `class` label on `/metrics`.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::AgentSnapshot => "agent_snapshot",
            Self::AgentHeartbeat => "agent_heartbeat",
            Self::AgentResult => "agent_result",
            Self::OperatorWrite => "operator_write",
        }
    }

    /// What the client sent too many of, for the error message.
    fn what(self) -> &'static str {
        match self {
            Self::AgentSnapshot => "snapshots from this agent",
            Self::AgentHeartbeat => "heartbeats from this agent",
            Self::AgentResult => "command results from this agent",
            Self::OperatorWrite => "writes with this token",
        }
    }

    /// The setting that sets its budget.
    fn setting(self) -> &'static str {
        match self {
            Self::AgentSnapshot => "MASTER_SNAPSHOT_RATE_LIMIT",
            Self::AgentHeartbeat => "MASTER_HEARTBEAT_RATE_LIMIT",
            Self::AgentResult => "MASTER_RESULT_RATE_LIMIT",
            Self::OperatorWrite => "MASTER_OPERATOR_WRITE_RATE_LIMIT",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    fn is_agent(self) -> bool {
        self != Self::OperatorWrite
    }
}

/// A heavy reader class, bounded in concurrency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeavyRead {
    /// `GET .../node-metrics/{node}/history` (both routes): a store read.
    History,
    /// `GET /api/v2/observe/metrics/nodes/{name}[/series]`: waits for the cluster's agent.
    AgentQuery,
    /// `GET .../node-metrics` without `view=overview`: every node of a cluster.
    NodeList,
    /// `GET .../node-metrics/{node}/series` and `GET .../clusters/{id}/series`: stored series
    /// rows decoded (the cluster's for every node).
    Series,
}

impl HeavyRead {
    const ALL: [Self; 4] = [
        Self::History,
        Self::AgentQuery,
        Self::NodeList,
        Self::Series,
    ];

    /// The `class` label on `/metrics`.
    fn label(self) -> &'static str {
        match self {
            Self::History => "history",
            Self::AgentQuery => "agent_query",
            Self::NodeList => "node_list",
            Self::Series => "series",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What a matched route is subject to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    Write(WriteClass),
    Heavy(HeavyRead),
}

/// The limit of a request to `route` (the router's pattern, `{id}` placeholders) with `query`.
fn classify(method: &Method, route: &str, query: Option<&str>) -> Option<Limit> {
    let read = method == Method::GET || method == Method::HEAD;
    match route {
        "/agent/snapshot" if method == Method::POST => {
            Some(Limit::Write(WriteClass::AgentSnapshot))
        }
        "/agent/heartbeat" if method == Method::POST => {
            Some(Limit::Write(WriteClass::AgentHeartbeat))
        }
        "/agent/result" if method == Method::POST => Some(Limit::Write(WriteClass::AgentResult)),
        "/api/v2/clusters/{id}/node-metrics/{node}/history"
        | "/api/v2/node-metrics/{node}/history"
            if read =>
        {
            Some(Limit::Heavy(HeavyRead::History))
        }
        "/api/v2/observe/metrics/nodes/{name}" | "/api/v2/observe/metrics/nodes/{name}/series"
            if read =>
        {
            Some(Limit::Heavy(HeavyRead::AgentQuery))
        }
        "/api/v2/clusters/{id}/node-metrics/{node}/series" | "/api/v2/clusters/{id}/series"
            if read =>
        {
            Some(Limit::Heavy(HeavyRead::Series))
        }
        "/api/v2/clusters/{id}/node-metrics" if read => {
            let overview = query.is_some_and(|q| q.split('&').any(|p| p == "view=overview"));
            (!overview).then_some(Limit::Heavy(HeavyRead::NodeList))
        }
        _ if route.starts_with("/api/") && !read && method != Method::OPTIONS => {
            Some(Limit::Write(WriteClass::OperatorWrite))
        }
        _ => None,
    }
}

/// Whose budget a write spends. Tokens are kept as their position in the configuration, never
/// as text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ClientKey {
    /// An agent, by the cluster of its token.
    Cluster(String),
    /// A reader token (operator or viewer) by role and position.
    Reader(Role, String),
    /// A client address (IPv6 cut to its /64).
    Address(IpAddr),
    /// No token and no address (an in-process call without connection info).
    Unknown,
}

/// The address part of a key: IPv4 as is, IPv6 cut to its /64.
fn address_key(addr: IpAddr) -> IpAddr {
    match addr.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        v4 => v4,
    }
}

/// The client key of a write of `class`.
fn client_key(tokens: &Tokens, class: WriteClass, request: &Request) -> ClientKey {
    let headers = request.headers();
    let by_token = if class.is_agent() {
        tokens.agent_token_cluster(headers).map(ClientKey::Cluster)
    } else {
        tokens
            .reader_token(headers)
            .map(|(role, name)| ClientKey::Reader(role, name))
    };
    by_token.unwrap_or_else(|| {
        request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(ClientKey::Unknown, |c| {
                ClientKey::Address(address_key(c.0.ip()))
            })
    })
}

/// governor's clock over tokio's, so paused test time drives the buckets.
#[derive(Debug, Clone, Copy, Default)]
struct TokioClock;

impl Clock for TokioClock {
    type Instant = std::time::Instant;

    fn now(&self) -> Self::Instant {
        tokio::time::Instant::now().into_std()
    }
}

type Buckets = RateLimiter<ClientKey, DashMapStateStore<ClientKey>, TokioClock>;

/// One class's budget and its buckets.
struct WriteLimit {
    limit: RateLimit,
    buckets: Buckets,
}

/// Counters of refused requests, by class.
#[derive(Debug, Default)]
pub(crate) struct LimitCounters {
    rate_limited: [AtomicU64; WriteClass::ALL.len()],
    pending_commands: AtomicU64,
    busy: [AtomicU64; HeavyRead::ALL.len()],
}

impl LimitCounters {
    /// Counts a command refused because its cluster's queue is full.
    pub(crate) fn count_pending_full(&self) {
        self.pending_commands.fetch_add(1, Ordering::Relaxed);
    }

    /// Writes the counters into `out`.
    pub(crate) fn write(&self, out: &mut Exposition) {
        let load = |v: &AtomicU64| v.load(Ordering::Relaxed) as f64;
        let mut family = out.family(
            "atlhyper_master_too_many_requests_total",
            MetricKind::Counter,
            "Requests answered 429, by route class and reason (rate: over the client's budget; \
             pending_commands: the cluster's command queue is full).",
        );
        for class in WriteClass::ALL {
            family.sample(
                &[("class", class.label()), ("reason", "rate")],
                load(&self.rate_limited[class.index()]),
            );
        }
        family.sample(
            &[("class", "operator_write"), ("reason", "pending_commands")],
            load(&self.pending_commands),
        );
        let mut family = out.family(
            "atlhyper_master_heavy_reads_refused_total",
            MetricKind::Counter,
            "Heavy reads answered 503 because every slot of their class stayed taken, by class.",
        );
        for class in HeavyRead::ALL {
            family.sample(&[("class", class.label())], load(&self.busy[class.index()]));
        }
    }
}

/// The limits of one master: a bucket table per rate-limited class, a semaphore per heavy
/// reader class.
pub(crate) struct Limits {
    writes: [Option<WriteLimit>; WriteClass::ALL.len()],
    heavy: [Arc<Semaphore>; HeavyRead::ALL.len()],
    heavy_concurrency: usize,
    heavy_wait: Duration,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("clients_tracked", &self.clients_tracked())
            .field("heavy_concurrency", &self.heavy_concurrency)
            .finish_non_exhaustive()
    }
}

impl Limits {
    /// The limits `config` sets.
    pub(crate) fn from_config(config: &MasterConfig) -> Self {
        let write = |limit: Option<RateLimit>| {
            let limit = limit?;
            let burst = std::num::NonZeroU32::new(limit.requests)?;
            let quota = Quota::with_period(limit.refill_every())?.allow_burst(burst);
            Some(WriteLimit {
                limit,
                buckets: RateLimiter::new(quota, DashMapStateStore::default(), TokioClock),
            })
        };
        let concurrency = config.heavy_read_concurrency.max(1);
        Self {
            writes: [
                write(config.snapshot_rate_limit),
                write(config.heartbeat_rate_limit),
                write(config.result_rate_limit),
                write(config.operator_write_rate_limit),
            ],
            heavy: std::array::from_fn(|_| Arc::new(Semaphore::new(concurrency))),
            heavy_concurrency: concurrency,
            heavy_wait: config.heavy_read_wait,
        }
    }

    /// Spends one request of `key`'s budget for `class`; 429 with the wait when there is none.
    fn spend(&self, class: WriteClass, key: &ClientKey) -> Result<(), ApiError> {
        let Some(write) = &self.writes[class.index()] else {
            return Ok(());
        };
        write.buckets.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(TokioClock.now());
            ApiError::too_many_requests(
                format!(
                    "too many {}: at most {} per {} s ({}); retry in {} s",
                    class.what(),
                    write.limit.requests,
                    write.limit.per.as_secs_f64(),
                    class.setting(),
                    crate::error::retry_after_secs(wait),
                ),
                wait,
            )
        })
    }

    /// A slot of a heavy reader class, waiting up to the configured time for one.
    async fn heavy_slot(&self, class: HeavyRead) -> Result<OwnedSemaphorePermit, ApiError> {
        let slots = self.heavy[class.index()].clone();
        match tokio::time::timeout(self.heavy_wait, slots.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // Timed out (or closed, which never happens: nobody closes these semaphores).
            _ => Err(ApiError::busy(
                format!(
                    "the master is serving {} {} requests already (MASTER_HEAVY_READ_CONCURRENCY); retry shortly",
                    self.heavy_concurrency,
                    class.label()
                ),
                Duration::from_secs(1),
            )),
        }
    }

    /// Forgets the buckets of clients whose budget has refilled completely (they look exactly
    /// like new ones), and gives the memory back.
    pub(crate) fn forget_idle(&self) {
        for write in self.writes.iter().flatten() {
            write.buckets.retain_recent();
            write.buckets.shrink_to_fit();
        }
    }

    /// Clients with a bucket, over every class.
    pub(crate) fn clients_tracked(&self) -> usize {
        self.writes.iter().flatten().map(|w| w.buckets.len()).sum()
    }
}

/// A response body that keeps its heavy-read slot until the last byte is sent: for the node
/// list the transfer is the heavy part.
struct HoldingSlot {
    body: Body,
    _slot: OwnedSemaphorePermit,
}

impl HttpBody for HoldingSlot {
    type Data = <Body as HttpBody>::Data;
    type Error = <Body as HttpBody>::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The route layer: rate limits on the write routes, the concurrency bound on the heavy
/// readers, nothing on the rest. Applied with `route_layer`, so it sees the matched route and
/// covers every route added before it.
pub(crate) async fn limit(State(master): State<Master>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let Some(limit) = route.and_then(|r| classify(request.method(), r, request.uri().query()))
    else {
        return next.run(request).await;
    };
    match limit {
        Limit::Write(class) => {
            let key = client_key(&master.tokens, class, &request);
            if let Err(refused) = master.limits.spend(class, &key) {
                master.stats.limits.rate_limited[class.index()].fetch_add(1, Ordering::Relaxed);
                return refused.into_response();
            }
            next.run(request).await
        }
        Limit::Heavy(class) => match master.limits.heavy_slot(class).await {
            Ok(slot) => next
                .run(request)
                .await
                .map(|body| Body::new(HoldingSlot { body, _slot: slot })),
            Err(refused) => {
                master.stats.limits.busy[class.index()].fetch_add(1, Ordering::Relaxed);
                refused.into_response()
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_classified() {
        let c = |m: Method, route: &str, q: Option<&str>| classify(&m, route, q);
        assert_eq!(
            c(Method::POST, "/agent/snapshot", None),
            Some(Limit::Write(WriteClass::AgentSnapshot))
        );
        assert_eq!(
            c(Method::POST, "/agent/result", None),
            Some(Limit::Write(WriteClass::AgentResult))
        );
        assert_eq!(c(Method::GET, "/agent/commands", None), None);
        assert_eq!(
            c(Method::POST, "/api/v2/commands", None),
            Some(Limit::Write(WriteClass::OperatorWrite))
        );
        assert_eq!(
            c(Method::DELETE, "/api/v2/clusters/{id}", None),
            Some(Limit::Write(WriteClass::OperatorWrite)),
            "a write route added later sits under the operator budget"
        );
        assert_eq!(c(Method::GET, "/api/v2/commands", None), None);
        assert_eq!(
            c(Method::GET, "/api/v2/clusters/{id}/node-metrics", None),
            Some(Limit::Heavy(HeavyRead::NodeList))
        );
        assert_eq!(
            c(
                Method::GET,
                "/api/v2/clusters/{id}/node-metrics",
                Some("view=overview")
            ),
            None
        );
        assert_eq!(
            c(
                Method::GET,
                "/api/v2/observe/metrics/nodes/{name}/series",
                Some("cluster_id=a")
            ),
            Some(Limit::Heavy(HeavyRead::AgentQuery))
        );
        assert_eq!(
            c(
                Method::HEAD,
                "/api/v2/clusters/{id}/node-metrics/{node}/history",
                None
            ),
            Some(Limit::Heavy(HeavyRead::History))
        );
        assert_eq!(
            c(
                Method::GET,
                "/api/v2/node-metrics/{node}/history",
                Some("cluster_id=a")
            ),
            Some(Limit::Heavy(HeavyRead::History))
        );
        assert_eq!(
            c(
                Method::GET,
                "/api/v2/clusters/{id}/node-metrics/{node}/series",
                Some("figure=cpu.usage")
            ),
            Some(Limit::Heavy(HeavyRead::Series))
        );
        assert_eq!(
            c(Method::GET, "/api/v2/clusters/{id}/series", None),
            Some(Limit::Heavy(HeavyRead::Series))
        );
        assert_eq!(c(Method::GET, "/metrics", None), None);
    }

    #[test]
    fn ipv6_clients_are_keyed_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(other));
        let v4: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(address_key(v4), v4);
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(address_key(mapped), v4);
    }

    #[tokio::test(start_paused = true)]
    async fn buckets_refill_with_tokio_time_and_forget_idle_clients() {
        let config = MasterConfig {
            operator_write_rate_limit: Some(RateLimit::new(2, Duration::from_secs(10))),
            ..MasterConfig::default()
        };
        let limits = Limits::from_config(&config);
        let me = ClientKey::Address("127.0.0.1".parse().unwrap());
        let other = ClientKey::Reader(Role::Operator, "alice".to_owned());
        assert!(limits.spend(WriteClass::OperatorWrite, &me).is_ok());
        assert!(limits.spend(WriteClass::OperatorWrite, &me).is_ok());
        let refused = limits.spend(WriteClass::OperatorWrite, &me).unwrap_err();
        assert_eq!(refused.status, 429);
        assert_eq!(refused.retry_after, Some(Duration::from_secs(5)));
        assert!(refused.message.contains("MASTER_OPERATOR_WRITE_RATE_LIMIT"));
        assert!(
            limits.spend(WriteClass::OperatorWrite, &other).is_ok(),
            "one client's budget is its own"
        );
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(limits.spend(WriteClass::OperatorWrite, &me).is_ok());
        assert!(limits.spend(WriteClass::OperatorWrite, &me).is_err());
        assert_eq!(limits.clients_tracked(), 2);
        tokio::time::advance(Duration::from_secs(20)).await;
        limits.forget_idle();
        assert_eq!(limits.clients_tracked(), 0, "refilled buckets are dropped");
    }
}
