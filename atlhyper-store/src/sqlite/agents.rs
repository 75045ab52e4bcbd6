//! [`AgentRegistry`] over SQLite.

use std::time::Duration;

use atlhyper_model::AgentStatus;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};

use super::{SqliteStore, map_err};
use crate::agents::{AgentRecord, AgentRegistry, AgentSeen, check_seen};
use crate::error::StoreResult;

const COLUMNS: &str = "cluster_id, agent_version, remote_addr, last_heartbeat, last_snapshot";

fn record(r: &Row<'_>) -> rusqlite::Result<AgentRecord> {
    Ok(AgentRecord {
        cluster_id: r.get(0)?,
        agent_version: r.get(1)?,
        remote_addr: r.get(2)?,
        last_heartbeat: r.get(3)?,
        last_snapshot: r.get(4)?,
    })
}

#[async_trait::async_trait]
impl AgentRegistry for SqliteStore {
    async fn seen(&self, seen: &AgentSeen) -> StoreResult<()> {
        let at = check_seen(seen)?;
        let seen = seen.clone();
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(map_err)?;
            let mut agent = tx
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM agent WHERE cluster_id = ?1"
                ))
                .and_then(|mut s| s.query_row([&seen.cluster_id], record).optional())
                .map_err(map_err)?
                .unwrap_or_else(|| AgentRecord {
                    cluster_id: seen.cluster_id.clone(),
                    ..AgentRecord::default()
                });
            agent.apply(&seen, at);
            tx.prepare_cached(&format!(
                "INSERT OR REPLACE INTO agent ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    agent.cluster_id,
                    agent.agent_version,
                    agent.remote_addr,
                    agent.last_heartbeat,
                    agent.last_snapshot
                ])
            })
            .map_err(map_err)?;
            tx.commit().map_err(map_err)
        })
        .await
    }

    async fn list(
        &self,
        now: DateTime<Utc>,
        offline_after: Duration,
    ) -> StoreResult<Vec<AgentStatus>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!("SELECT {COLUMNS} FROM agent ORDER BY cluster_id"))
                .map_err(map_err)?;
            let agents = stmt
                .query_map([], record)
                .map_err(map_err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(map_err)?;
            Ok(agents
                .iter()
                .map(|a| a.status(now, offline_after))
                .collect())
        })
        .await
    }

    async fn forget(&self, cluster_id: &str) -> StoreResult<bool> {
        let cluster_id = cluster_id.to_owned();
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM agent WHERE cluster_id = ?1")
                .and_then(|mut s| s.execute([&cluster_id]))
                .map(|n| n > 0)
                .map_err(map_err)
        })
        .await
    }
}
