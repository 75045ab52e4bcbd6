//! [`AgentRegistry`] over PostgreSQL: one upsert per sign of life, so two masters hearing the
//! same agent at once both count (times move forward only, in the statement itself).

use std::time::Duration;

use atlhyper_model::AgentStatus;
use chrono::{DateTime, Utc};

use super::{PgStore, map_err};
use crate::agents::{AgentRecord, AgentRegistry, AgentSeen, SeenVia, check_seen};
use crate::error::StoreResult;

#[async_trait::async_trait]
impl AgentRegistry for PgStore {
    async fn seen(&self, seen: &AgentSeen) -> StoreResult<()> {
        let at = check_seen(seen)?;
        let (heartbeat, snapshot) = match seen.via {
            SeenVia::Heartbeat => (Some(at), None),
            SeenVia::Snapshot => (None, Some(at)),
        };
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO agent (cluster_id, agent_version, remote_addr, last_heartbeat,
                     last_snapshot)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (cluster_id) DO UPDATE SET
                     agent_version = CASE WHEN excluded.agent_version <> ''
                         THEN excluded.agent_version ELSE agent.agent_version END,
                     remote_addr = CASE WHEN excluded.remote_addr <> ''
                         THEN excluded.remote_addr ELSE agent.remote_addr END,
                     last_heartbeat = GREATEST(agent.last_heartbeat, excluded.last_heartbeat),
                     last_snapshot = GREATEST(agent.last_snapshot, excluded.last_snapshot)",
            )
            .await
            .map_err(map_err)?;
        client
            .execute(
                &stmt,
                &[
                    &seen.cluster_id,
                    &seen.agent_version,
                    &seen.remote_addr,
                    &heartbeat,
                    &snapshot,
                ],
            )
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn list(
        &self,
        now: DateTime<Utc>,
        offline_after: Duration,
    ) -> StoreResult<Vec<AgentStatus>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT cluster_id, agent_version, remote_addr, last_heartbeat, last_snapshot
                 FROM agent ORDER BY cluster_id",
                &[],
            )
            .await
            .map_err(map_err)?;
        Ok(rows
            .iter()
            .map(|r| {
                AgentRecord {
                    cluster_id: r.get(0),
                    agent_version: r.get(1),
                    remote_addr: r.get(2),
                    last_heartbeat: r.get(3),
                    last_snapshot: r.get(4),
                }
                .status(now, offline_after)
            })
            .collect())
    }

    async fn forget(&self, cluster_id: &str) -> StoreResult<bool> {
        let client = self.client().await?;
        let n = client
            .execute("DELETE FROM agent WHERE cluster_id = $1", &[&cluster_id])
            .await
            .map_err(map_err)?;
        Ok(n > 0)
    }
}
