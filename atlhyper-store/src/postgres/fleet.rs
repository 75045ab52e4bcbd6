//! What several masters over one database share besides the tables: messages between them
//! (`LISTEN`/`NOTIFY` on [`FLEET_CHANNEL`]) and a leader (a session-level advisory lock).
//!
//! Both need a connection of their own, outside the pool: a `LISTEN` and a session advisory lock
//! belong to the session that took them, and a pooled connection is handed to someone else
//! between calls. [`PgSession`] is that connection; it reports its end (database restarted,
//! network cut) so its owner opens a new one.

use atlhyper_model::NodeMetricsSnapshot;
use tokio::sync::{mpsc, watch};
use tokio_postgres::{AsyncMessage, Client, NoTls};

use super::{PgStore, map_err};
use crate::error::{StoreError, StoreResult};
use crate::metrics::decode_snapshot;

/// The channel masters send each other their news on.
pub const FLEET_CHANNEL: &str = "atlhyper_fleet";

/// Advisory lock key of the fleet's leader ("ATLH" and 3; 1 is the migrations', 2 the history
/// partitions').
const LEADER_LOCK: i64 = 0x4154_4C48_0000_0003;

/// Largest payload of one notification, bytes: PostgreSQL refuses 8000 and more.
pub const MAX_NOTIFY_PAYLOAD: usize = 7999;

impl PgStore {
    /// Sends `payload` to every session listening on [`FLEET_CHANNEL`] (this one's own
    /// listeners included), delivered once the statement commits. A payload of
    /// [`MAX_NOTIFY_PAYLOAD`] bytes or more is `Invalid`.
    pub async fn notify_fleet(&self, payload: &str) -> StoreResult<()> {
        if payload.len() > MAX_NOTIFY_PAYLOAD {
            return Err(StoreError::Invalid(format!(
                "notification of {} bytes; at most {MAX_NOTIFY_PAYLOAD}",
                payload.len()
            )));
        }
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT pg_notify($1, $2)")
            .await
            .map_err(map_err)?;
        client
            .execute(&stmt, &[&FLEET_CHANNEL, &payload])
            .await
            .map_err(map_err)?;
        Ok(())
    }

    /// The latest snapshots of these nodes of `cluster_id` (those that have one), by name.
    pub async fn latest_of(
        &self,
        cluster_id: &str,
        node_names: &[String],
    ) -> StoreResult<Vec<NodeMetricsSnapshot>> {
        if node_names.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT l.snapshot FROM node n JOIN latest l ON l.node_id = n.id
                 WHERE n.cluster_id = $1 AND n.node_name = ANY($2) ORDER BY n.node_name",
            )
            .await
            .map_err(map_err)?;
        let rows = client
            .query(&stmt, &[&cluster_id, &node_names])
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| decode_snapshot(r.get::<_, &str>(0).as_bytes()))
            .collect()
    }

    /// The names of the nodes of `cluster_id` that have a latest snapshot, sorted (what a
    /// master's memory may hold of the cluster after it missed news).
    pub async fn latest_names(&self, cluster_id: &str) -> StoreResult<Vec<String>> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT n.node_name FROM node n JOIN latest l ON l.node_id = n.id
                 WHERE n.cluster_id = $1 ORDER BY n.node_name",
            )
            .await
            .map_err(map_err)?;
        let rows = client.query(&stmt, &[&cluster_id]).await.map_err(map_err)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// A connection of its own to the database, outside the pool (see the module docs).
    /// Fails with [`StoreError::Backend`] when the database cannot be reached within the
    /// connect timeout.
    pub async fn session(&self) -> StoreResult<PgSession> {
        let (client, notifications) = match &self.tls {
            Some(tls) => {
                let (client, connection) = self
                    .config
                    .connect(tls.clone())
                    .await
                    .map_err(|e| self.connect_err(e))?;
                (client, drive(connection))
            }
            None => {
                let (client, connection) = self
                    .config
                    .connect(NoTls)
                    .await
                    .map_err(|e| self.connect_err(e))?;
                (client, drive(connection))
            }
        };
        let (notifications, driver, ended) = notifications;
        Ok(PgSession {
            client,
            notifications,
            driver,
            ended,
        })
    }
}

/// Drives a session's connection in a task of its own; notifications go to the channel, which
/// closes when the connection ends.
#[allow(clippy::type_complexity)]
fn drive<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
) -> (
    mpsc::UnboundedReceiver<String>,
    tokio::task::JoinHandle<()>,
    watch::Receiver<()>,
)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (tx, notifications) = mpsc::unbounded_channel();
    // Dropped with the task: its receivers see the end at once.
    let (alive, ended) = watch::channel(());
    let driver = tokio::spawn(async move {
        let _alive = alive;
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if tx.send(n.payload().to_owned()).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            }
        }
    });
    (notifications, driver, ended)
}

/// One connection to the database outside the pool: for `LISTEN` ([`Self::listen`],
/// [`Self::next_notification`]) and for the leader's session advisory lock ([`Self::try_lead`]), which last
/// as long as the session. Dropping it closes the connection, releasing its locks.
pub struct PgSession {
    client: Client,
    notifications: mpsc::UnboundedReceiver<String>,
    driver: tokio::task::JoinHandle<()>,
    /// Closed when the connection ends.
    ended: watch::Receiver<()>,
}

impl std::fmt::Debug for PgSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSession")
            .field("closed", &self.client.is_closed())
            .finish_non_exhaustive()
    }
}

impl Drop for PgSession {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl PgSession {
    /// Starts listening on [`FLEET_CHANNEL`].
    pub async fn listen(&self) -> StoreResult<()> {
        self.client
            .batch_execute(&format!("LISTEN {FLEET_CHANNEL}"))
            .await
            .map_err(map_err)
    }

    /// The next notification's payload; `None` once the connection has ended (reconnect, and
    /// catch up on what was missed meanwhile).
    pub async fn next_notification(&mut self) -> Option<String> {
        self.notifications.recv().await
    }

    /// Takes the fleet's leader lock (a session advisory lock) if no other session holds it;
    /// `true` when this session holds it, until the session ends. Taking it again while held
    /// stacks, so call it only while not leading.
    pub async fn try_lead(&self) -> StoreResult<bool> {
        let row = self
            .client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&LEADER_LOCK])
            .await
            .map_err(map_err)?;
        Ok(row.get(0))
    }

    /// Whether this session holds the fleet's leader lock now, asked of the server (one round
    /// trip): after a database restart a session that took it is gone, and with it the lock.
    pub async fn holds_lead(&self) -> StoreResult<bool> {
        // A bigint advisory key shows as classid (high 32 bits), objid (low) and objsubid 1.
        let row = self
            .client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_locks
                   WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()
                     AND objsubid = 1
                     AND classid::bigint = ($1::bigint >> 32)
                     AND objid::bigint = ($1::bigint & 4294967295))",
                &[&LEADER_LOCK],
            )
            .await
            .map_err(map_err)?;
        Ok(row.get(0))
    }

    /// Completes when the connection ends (database restarted, network cut, dropped); at once
    /// when it has already. Owns what it waits on, so the session may be used meanwhile.
    pub fn ended(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut ended = self.ended.clone();
        async move { while ended.changed().await.is_ok() {} }
    }

    /// One round trip: `Ok` while the session is alive.
    pub async fn ping(&self) -> StoreResult<()> {
        self.client
            .simple_query("SELECT 1")
            .await
            .map_err(map_err)
            .map(drop)
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}
