//! Several masters over one PostgreSQL database (`MASTER_DB_URL`), interchangeable: every
//! master serves every cluster.
//!
//! - **News** ([`News`]): what one master changes, the others hear through `LISTEN`/`NOTIFY`
//!   (the store's fleet channel): a snapshot's nodes (the others re-read those latest rows and
//!   put them in their views), an agent heard, a command queued (the others wake their long
//!   polls of that cluster, so a command created on B reaches an agent polling A at once), a
//!   command's result stored (a request waiting for it on another master, such as an observe
//!   detail query sent through the shared queue because the agent polls elsewhere, gets it), a
//!   cluster or node deleted. A payload names nodes, never carries figures, and stays under
//!   PostgreSQL's 8000 bytes (long lists are split over several notifications). A master
//!   ignores its own news. When its listening connection ends (database restarted) it
//!   reconnects and re-reads every latest row and the agent registry, since whatever was sent
//!   meanwhile is lost.
//! - **Leader**: the periodic work that must run once (command expiry, the retention prune and
//!   retirement, alert evaluation) runs on the master holding a session-level advisory lock;
//!   the others try to take it every `MASTER_LEADER_INTERVAL`, so when the leader dies (its
//!   session closes with it) another leads within two intervals. The leader re-reads the alert
//!   rules before each evaluation; the others show the alerts it stored. `/health` (`leader`) and
//!   `/metrics` (`atlhyper_master_leader`) say who leads.
//! - **Database health**: `/health` answers 200 with `"status": "degraded"` while the database
//!   is unreachable (liveness stays 200; the master serves what it holds in memory and answers
//!   ingest with 503, so agents keep their points and send them later).
//!
//! Without a shared database (SQLite) there is one master: it always leads and hears nothing.

#[cfg(feature = "postgres")]
mod postgres;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use atlhyper_model::{Exposition, MetricKind};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::Master;
use crate::view::ClusterView;

#[cfg(feature = "postgres")]
/// News waiting to be sent; past this many, news is dropped (the database is too slow or
/// down) and counted.
const OUTBOX_CAPACITY: usize = 4096;

/// Largest notification payload, bytes (PostgreSQL refuses 8000 and more).
const MAX_PAYLOAD: usize = 7999;

/// This master's place among the masters sharing its database.
#[derive(Debug)]
pub(crate) struct Fleet {
    /// Names this process in its news, so it ignores its own.
    instance: String,
    /// Whether this master runs the once-per-fleet periodic work.
    leader: AtomicBool,
    /// Whether the database answered last time it was asked (always with SQLite).
    database_up: AtomicBool,
    /// News to send, when the database is shared.
    outbox: OnceLock<mpsc::Sender<String>>,
    /// News dropped because the outbox was full.
    pub(crate) news_dropped: AtomicU64,
    /// News heard from the other masters and applied.
    pub(crate) news_heard: AtomicU64,
    /// The shared database, and the receiving end of the outbox until its task starts.
    #[cfg(feature = "postgres")]
    shared: OnceLock<postgres::Shared>,
}

impl Default for Fleet {
    fn default() -> Self {
        Self {
            instance: uuid::Uuid::new_v4().to_string(),
            leader: AtomicBool::new(true),
            database_up: AtomicBool::new(true),
            outbox: OnceLock::new(),
            news_dropped: AtomicU64::new(0),
            news_heard: AtomicU64::new(0),
            #[cfg(feature = "postgres")]
            shared: OnceLock::new(),
        }
    }
}

impl Fleet {
    /// Whether this master runs the periodic work that must run once across the fleet.
    pub(crate) fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Relaxed)
    }

    /// Whether the database answered last time it was asked.
    pub(crate) fn database_up(&self) -> bool {
        self.database_up.load(Ordering::Relaxed)
    }

    /// Whether other masters may share the database (PostgreSQL).
    pub(crate) fn is_shared(&self) -> bool {
        self.outbox.get().is_some()
    }

    pub(crate) fn set_database_up(&self, up: bool) {
        self.database_up.store(up, Ordering::Relaxed);
    }

    #[cfg(feature = "postgres")]
    fn set_leader(&self, leader: bool) {
        self.leader.store(leader, Ordering::Relaxed);
    }

    /// Tells the other masters `news` (nothing without a shared database). Never waits: when
    /// the outbox is full the news is dropped and counted.
    pub(crate) fn tell(&self, news: News) {
        let Some(outbox) = self.outbox.get() else {
            return;
        };
        for payload in encode(&self.instance, news) {
            if outbox.try_send(payload).is_err() {
                self.news_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// `/metrics`: who leads, whether the database answers, the news counts.
    pub(crate) fn write_metrics(&self, out: &mut Exposition) {
        out.family(
            "atlhyper_master_leader",
            MetricKind::Gauge,
            "1 while this master runs the fleet's periodic work (expiry, prune, alert \
             evaluation); always 1 without a shared database.",
        )
        .sample(&[], f64::from(u8::from(self.is_leader())));
        out.family(
            "atlhyper_master_database_up",
            MetricKind::Gauge,
            "1 while the database answers.",
        )
        .sample(&[], f64::from(u8::from(self.database_up())));
        out.family(
            "atlhyper_master_fleet_news_total",
            MetricKind::Counter,
            "News between masters sharing a database: heard and applied, or dropped unsent.",
        )
        .sample(
            &[("result", "heard")],
            self.news_heard.load(Ordering::Relaxed) as f64,
        )
        .sample(
            &[("result", "dropped")],
            self.news_dropped.load(Ordering::Relaxed) as f64,
        );
    }
}

/// What a master tells the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum News {
    /// A snapshot of `cluster` was stored: these nodes' latest rows are new; the agent lists
    /// `online` as online and `offline` as offline. Received at `at_ms` (Unix ms).
    Snapshot {
        cluster: String,
        at_ms: i64,
        online: Vec<String>,
        offline: Vec<String>,
    },
    /// The agent of `cluster` was heard (heartbeat) at `at_ms`.
    Heard { cluster: String, at_ms: i64 },
    /// A command for `cluster` was queued.
    Command { cluster: String },
    /// A command's result was stored.
    Result { command_id: String },
    /// These nodes of `cluster` were deleted; none listed: the whole cluster.
    Deleted { cluster: String, nodes: Vec<String> },
}

/// One notification: the news and who sent it.
#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    from: String,
    #[serde(flatten)]
    news: News,
}

impl News {
    /// The news of an accepted snapshot, from its view.
    pub(crate) fn snapshot(view: &ClusterView, at: DateTime<Utc>) -> Self {
        let (online, offline) = view
            .snapshot
            .node_metrics
            .keys()
            .cloned()
            .partition(|name| view.is_node_online(name));
        Self::Snapshot {
            cluster: view.snapshot.cluster_id.clone(),
            at_ms: at.timestamp_millis(),
            online,
            offline,
        }
    }

    /// The same news in two halves by its node lists, when it has at least two nodes.
    fn split(self) -> Option<(Self, Self)> {
        match self {
            Self::Snapshot {
                cluster,
                at_ms,
                mut online,
                mut offline,
            } if online.len() + offline.len() >= 2 => {
                let online_rest = online.split_off(online.len() / 2);
                let offline_rest = offline.split_off(offline.len().div_ceil(2));
                Some((
                    Self::Snapshot {
                        cluster: cluster.clone(),
                        at_ms,
                        online,
                        offline,
                    },
                    Self::Snapshot {
                        cluster,
                        at_ms,
                        online: online_rest,
                        offline: offline_rest,
                    },
                ))
            }
            Self::Deleted { cluster, mut nodes } if nodes.len() >= 2 => {
                let rest = nodes.split_off(nodes.len() / 2);
                Some((
                    Self::Deleted {
                        cluster: cluster.clone(),
                        nodes,
                    },
                    Self::Deleted {
                        cluster,
                        nodes: rest,
                    },
                ))
            }
            _ => None,
        }
    }
}

/// The payloads of `news` from `from`, each under [`MAX_PAYLOAD`] bytes: split by its node
/// lists as often as needed. A single node's news that does not fit (names are capped far
/// below) is left out.
fn encode(from: &str, news: News) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![news];
    while let Some(news) = todo.pop() {
        let envelope = Envelope {
            from: from.to_owned(),
            news,
        };
        let Ok(text) = serde_json::to_string(&envelope) else {
            continue;
        };
        if text.len() <= MAX_PAYLOAD {
            out.push(text);
        } else if let Some((a, b)) = envelope.news.split() {
            todo.push(b);
            todo.push(a);
        } else {
            tracing::warn!(bytes = text.len(), "news too long to send, left out");
        }
    }
    out
}

#[cfg(feature = "postgres")]
/// Reads a payload heard on the fleet channel; `None` for this master's own news.
fn decode(own: &str, payload: &str) -> Result<Option<News>, serde_json::Error> {
    let envelope: Envelope = serde_json::from_str(payload)?;
    Ok((envelope.from != own).then_some(envelope.news))
}

/// The tasks of the fleet (none without a shared database).
pub(crate) fn spawn(master: &Master) -> Vec<(&'static str, tokio::task::JoinHandle<()>)> {
    #[cfg(feature = "postgres")]
    {
        postgres::spawn(master)
    }
    #[cfg(not(feature = "postgres"))]
    {
        let _ = master;
        Vec::new()
    }
}

impl Master {
    /// Whether this master leads the fleet's periodic work right now: call before each run.
    /// Over a shared database the lock is confirmed on the live session that holds it (one
    /// round trip), so two masters never both run it after a database restart; a master that
    /// finds it no longer holds the lock stops leading at once. Without one: always.
    pub(crate) async fn confirm_leader(&self) -> bool {
        if !self.fleet.is_leader() {
            return false;
        }
        #[cfg(feature = "postgres")]
        if let Some(shared) = self.fleet.shared.get() {
            return postgres::confirm(self, shared).await;
        }
        true
    }
}

#[cfg(feature = "postgres")]
impl Master {
    /// Makes this master one of several over `database` (before [`crate::run_master`]): it
    /// tells the others what it stores, hears what they store, and leads the periodic work
    /// only while it holds the fleet's advisory lock. Only the first call counts; returns
    /// whether it did.
    pub fn share_database(&self, database: std::sync::Arc<atlhyper_store::PgStore>) -> bool {
        let (tx, rx) = mpsc::channel(OUTBOX_CAPACITY);
        if self
            .fleet
            .shared
            .set(postgres::Shared::new(database, rx))
            .is_err()
        {
            return false;
        }
        let _ = self.fleet.outbox.set(tx);
        // Until the lock is taken.
        self.fleet.set_leader(false);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(prefix: &str, n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("{prefix}-{i:04}-{}", "x".repeat(40)))
            .collect()
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn long_node_lists_are_split_under_the_payload_limit_and_lose_nothing() {
        let news = News::Snapshot {
            cluster: "c".into(),
            at_ms: 7,
            online: names("on", 900),
            offline: names("off", 100),
        };
        let payloads = encode("me", news);
        assert!(payloads.len() > 1, "{} payloads", payloads.len());
        let (mut online, mut offline) = (Vec::new(), Vec::new());
        for p in &payloads {
            assert!(p.len() <= MAX_PAYLOAD, "{} bytes", p.len());
            match decode("other", p).unwrap().unwrap() {
                News::Snapshot {
                    cluster,
                    at_ms,
                    online: on,
                    offline: off,
                } => {
                    assert_eq!((cluster.as_str(), at_ms), ("c", 7));
                    online.extend(on);
                    offline.extend(off);
                }
                other => panic!("{other:?}"),
            }
        }
        online.sort();
        offline.sort();
        assert_eq!(online, names("on", 900));
        assert_eq!(offline, names("off", 100));
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn own_news_is_ignored_and_bad_payloads_are_errors() {
        let payload = encode(
            "me",
            News::Command {
                cluster: "c".into(),
            },
        );
        assert_eq!(payload.len(), 1);
        assert_eq!(decode("me", &payload[0]).unwrap(), None);
        assert_eq!(
            decode("you", &payload[0]).unwrap(),
            Some(News::Command {
                cluster: "c".into()
            })
        );
        for bad in [
            "",
            "{",
            "{\"from\":\"x\"}",
            "{\"from\":\"x\",\"kind\":\"nope\"}",
            "[]",
        ] {
            assert!(decode("me", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn without_a_shared_database_a_master_leads_and_tells_nobody() {
        let fleet = Fleet::default();
        assert!(fleet.is_leader());
        assert!(fleet.database_up());
        assert!(!fleet.is_shared());
        fleet.tell(News::Command {
            cluster: "c".into(),
        });
        assert_eq!(fleet.news_dropped.load(Ordering::Relaxed), 0);
    }
}
