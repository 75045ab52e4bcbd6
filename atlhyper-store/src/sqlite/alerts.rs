//! [`AlertStore`] over SQLite: rules by name, running alerts by fingerprint, history by time.
//! Alerts are kept as JSON, as the in-memory engine keeps them (every field, to the nanosecond).

use atlhyper_model::Alert;
use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{TransactionBehavior, params, params_from_iter};

use super::{SqliteStore, map_err};
use crate::alerts::{
    AlertChanges, AlertHistoryQuery, AlertRuleRecord, AlertStore, check_history_query, check_rule,
    decode_alert, encode_alert,
};
use crate::error::{StoreError, StoreResult};
use crate::timestamp::{from_ns, to_ns_clamped};

#[async_trait::async_trait]
impl AlertStore for SqliteStore {
    async fn list_alert_rules(&self) -> StoreResult<Vec<AlertRuleRecord>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT name, body, updated_at FROM alert_rule ORDER BY name")
                .map_err(map_err)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(AlertRuleRecord {
                        name: r.get(0)?,
                        body: r.get(1)?,
                        updated_at: from_ns(r.get(2)?),
                    })
                })
                .map_err(map_err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(map_err)?;
            Ok(rows)
        })
        .await
    }

    async fn put_alert_rule(&self, rule: &AlertRuleRecord) -> StoreResult<()> {
        let at = check_rule(rule)?;
        let rule = rule.clone();
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO alert_rule (name, body, updated_at) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut s| s.execute(params![rule.name, rule.body, at]))
            .map(drop)
            .map_err(map_err)
        })
        .await
    }

    async fn delete_alert_rule(&self, name: &str) -> StoreResult<bool> {
        let name = name.to_owned();
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM alert_rule WHERE name = ?1")
                .and_then(|mut s| s.execute([&name]))
                .map(|n| n > 0)
                .map_err(map_err)
        })
        .await
    }

    async fn active_alerts(&self) -> StoreResult<Vec<Alert>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT alert FROM alert_active ORDER BY fingerprint")
                .map_err(map_err)?;
            let rows = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(map_err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(map_err)?;
            rows.iter().map(|json| decode_alert(json)).collect()
        })
        .await
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
        let remove = changes.remove.clone();
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(map_err)?;
            {
                let mut delete = tx
                    .prepare_cached("DELETE FROM alert_active WHERE fingerprint = ?1")
                    .map_err(map_err)?;
                for fingerprint in &remove {
                    delete.execute([fingerprint]).map_err(map_err)?;
                }
                let mut insert = tx
                    .prepare_cached(
                        "INSERT OR REPLACE INTO alert_active (fingerprint, alert) VALUES (?1, ?2)",
                    )
                    .map_err(map_err)?;
                for a in &upsert {
                    insert
                        .execute(params![a.fingerprint, a.json])
                        .map_err(map_err)?;
                }
                let mut append = tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO alert_history (at, fingerprint, rule, cluster, alert) \
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )
                    .map_err(map_err)?;
                for a in &history {
                    append
                        .execute(params![a.at, a.fingerprint, a.rule, a.cluster, a.json])
                        .map_err(map_err)?;
                }
            }
            tx.commit().map_err(map_err)
        })
        .await
    }

    async fn alert_history(&self, query: &AlertHistoryQuery) -> StoreResult<Vec<Alert>> {
        check_history_query(query)?;
        let mut sql = String::from("SELECT alert FROM alert_history WHERE at >= ?1 AND at <= ?2");
        let mut args: Vec<Value> = vec![
            Value::Integer(query.from.map_or(i64::MIN, to_ns_clamped)),
            Value::Integer(query.to.map_or(i64::MAX, to_ns_clamped)),
        ];
        if let Some(rule) = &query.rule {
            args.push(Value::Text(rule.clone()));
            sql.push_str(&format!(" AND rule = ?{}", args.len()));
        }
        if let Some(cluster) = &query.cluster {
            args.push(Value::Text(cluster.clone()));
            sql.push_str(&format!(" AND cluster = ?{}", args.len()));
        }
        let limit = i64::try_from(query.limit)
            .map_err(|_| StoreError::Invalid("limit too large".to_owned()))?;
        args.push(Value::Integer(limit));
        sql.push_str(&format!(
            " ORDER BY at DESC, fingerprint DESC LIMIT ?{}",
            args.len()
        ));
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&sql).map_err(map_err)?;
            let rows = stmt
                .query_map(params_from_iter(args), |r| r.get::<_, String>(0))
                .map_err(map_err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(map_err)?;
            rows.iter().map(|json| decode_alert(json)).collect()
        })
        .await
    }

    async fn prune_alert_history(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let before = to_ns_clamped(before);
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM alert_history WHERE at < ?1")
                .and_then(|mut s| s.execute([before]))
                .map(|n| n as u64)
                .map_err(map_err)
        })
        .await
    }
}
