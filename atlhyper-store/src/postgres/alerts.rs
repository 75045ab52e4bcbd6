//! [`AlertStore`] over PostgreSQL: rules by name, running alerts by fingerprint, history by
//! time. Alerts are kept as JSON, as the other engines keep them.

use atlhyper_model::Alert;
use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;

use super::{PgStore, map_err, to_i64};
use crate::alerts::{
    AlertChanges, AlertHistoryQuery, AlertRuleRecord, AlertStore, check_history_query, check_rule,
    decode_alert, encode_alert,
};
use crate::error::StoreResult;
use crate::timestamp::{from_ns, to_ns_clamped};

#[async_trait::async_trait]
impl AlertStore for PgStore {
    async fn list_alert_rules(&self) -> StoreResult<Vec<AlertRuleRecord>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT name, body, updated_at FROM alert_rule ORDER BY name",
                &[],
            )
            .await
            .map_err(map_err)?;
        Ok(rows
            .iter()
            .map(|r| AlertRuleRecord {
                name: r.get(0),
                body: r.get(1),
                updated_at: from_ns(r.get(2)),
            })
            .collect())
    }

    async fn put_alert_rule(&self, rule: &AlertRuleRecord) -> StoreResult<()> {
        let at = check_rule(rule)?;
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO alert_rule (name, body, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET body = excluded.body,
                     updated_at = excluded.updated_at",
                &[&rule.name, &rule.body, &at],
            )
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn delete_alert_rule(&self, name: &str) -> StoreResult<bool> {
        let client = self.client().await?;
        let n = client
            .execute("DELETE FROM alert_rule WHERE name = $1", &[&name])
            .await
            .map_err(map_err)?;
        Ok(n > 0)
    }

    async fn active_alerts(&self) -> StoreResult<Vec<Alert>> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT alert FROM alert_active ORDER BY fingerprint", &[])
            .await
            .map_err(map_err)?;
        rows.iter().map(|r| decode_alert(r.get(0))).collect()
    }

    async fn apply_alert_changes(&self, changes: &AlertChanges) -> StoreResult<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let upsert = changes
            .upsert
            .iter()
            .map(encode_alert)
            .collect::<StoreResult<Vec<_>>>()?;
        let history = changes
            .history
            .iter()
            .map(encode_alert)
            .collect::<StoreResult<Vec<_>>>()?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        for fingerprint in &changes.remove {
            tx.execute(
                "DELETE FROM alert_active WHERE fingerprint = $1",
                &[fingerprint],
            )
            .await
            .map_err(map_err)?;
        }
        for a in &upsert {
            tx.execute(
                "INSERT INTO alert_active (fingerprint, alert) VALUES ($1, $2)
                 ON CONFLICT (fingerprint) DO UPDATE SET alert = excluded.alert",
                &[&a.fingerprint, &a.json],
            )
            .await
            .map_err(map_err)?;
        }
        for a in &history {
            tx.execute(
                "INSERT INTO alert_history (at, fingerprint, rule, cluster, alert)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                &[&a.at, &a.fingerprint, &a.rule, &a.cluster, &a.json],
            )
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn alert_history(&self, query: &AlertHistoryQuery) -> StoreResult<Vec<Alert>> {
        check_history_query(query)?;
        let from = query.from.map_or(i64::MIN, to_ns_clamped);
        let to = query.to.map_or(i64::MAX, to_ns_clamped);
        let limit = to_i64(query.limit);
        let mut sql = String::from("SELECT alert FROM alert_history WHERE at >= $1 AND at <= $2");
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&from, &to];
        if let Some(rule) = &query.rule {
            params.push(rule);
            sql.push_str(&format!(" AND rule = ${}", params.len()));
        }
        if let Some(cluster) = &query.cluster {
            params.push(cluster);
            sql.push_str(&format!(" AND cluster = ${}", params.len()));
        }
        params.push(&limit);
        sql.push_str(&format!(
            " ORDER BY at DESC, fingerprint DESC LIMIT ${}",
            params.len()
        ));
        let client = self.client().await?;
        let rows = client.query(&sql, &params).await.map_err(map_err)?;
        rows.iter().map(|r| decode_alert(r.get(0))).collect()
    }

    async fn prune_alert_history(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let before = to_ns_clamped(before);
        let client = self.client().await?;
        client
            .execute("DELETE FROM alert_history WHERE at < $1", &[&before])
            .await
            .map_err(map_err)
    }
}
