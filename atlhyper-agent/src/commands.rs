//! The command loop: long-poll the master, run commands concurrently, post every result.

use std::sync::Arc;
use std::time::Duration;

use atlhyper_model::{Command, CommandResult};
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::master::MasterLink;
use crate::node_table::NodeTable;
use crate::stats::{AgentStats, inc};

/// The actions this agent runs.
pub const BUILTIN_ACTIONS: [&str; 4] = ["node_detail", "node_series", "list_nodes", "ping"];

/// Runs one command against the table and returns its result (never panics, never silent).
///
/// - `node_detail` (`target_name` = node): the node's latest full snapshot, as the node sent it.
/// - `node_series` (`target_name` = node; `params` `{"since": RFC 3339, "until": RFC 3339}` or
///   `{"minutes": N}`, none for the whole ring): a JSON array of MetricsDataPoint in time order.
/// - `list_nodes`: a JSON array of `{node_name, state, last_seen}`.
/// - `ping`: `pong`.
///
/// Anything else fails with an error naming the actions this agent knows.
///
/// ```
/// use atlhyper_agent::{NodeTable, NodeTableConfig, execute};
/// use atlhyper_model::Command;
///
/// let table = NodeTable::new(NodeTableConfig::default());
/// let ping = Command { id: "c-1".into(), action: "ping".into(), ..Default::default() };
/// let result = execute(&table, "prod", &ping);
/// assert!(result.success);
/// assert_eq!(result.output, "pong");
///
/// let odd = Command { id: "c-2".into(), action: "reboot".into(), ..Default::default() };
/// let result = execute(&table, "prod", &odd);
/// assert!(!result.success);
/// assert!(result.error.contains("unknown action"));
/// ```
pub fn execute(table: &NodeTable, cluster_id: &str, command: &Command) -> CommandResult {
    let started = std::time::Instant::now();
    let outcome = run_builtin(table, command);
    let exec_time_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (success, output, error) = match outcome {
        Ok(output) => (true, output, String::new()),
        Err(error) => (false, String::new(), error),
    };
    CommandResult {
        cluster_id: cluster_id.to_owned(),
        command_id: command.id.clone(),
        success,
        output,
        error,
        exec_time_ms,
    }
}

fn target_node(command: &Command) -> Result<&str, String> {
    let name = command.target_name.trim();
    if name.is_empty() {
        return Err(format!(
            "{} needs target_name (the node name)",
            command.action
        ));
    }
    Ok(name)
}

fn unknown_node(name: &str) -> String {
    format!("node {name:?} is not known to this agent (never reported, or silent past the TTL)")
}

fn run_builtin(table: &NodeTable, command: &Command) -> Result<String, String> {
    let now = Instant::now();
    match command.action.as_str() {
        "ping" => Ok("pong".to_owned()),
        "list_nodes" => to_json(&table.list(now)),
        "node_detail" => {
            let node = target_node(command)?;
            table
                .latest(node, now)
                .map(|raw| raw.get().to_owned())
                .ok_or_else(|| unknown_node(node))
        }
        "node_series" => {
            let node = target_node(command)?;
            let (since, until) = series_range(&command.params, Utc::now())?;
            let points = table
                .series(node, since, until, now)
                .ok_or_else(|| unknown_node(node))?;
            to_json(&points)
        }
        other => Err(format!(
            "unknown action {other:?}: this agent runs {}",
            BUILTIN_ACTIONS.join(", ")
        )),
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, String> {
    serde_json::to_string(value).map_err(|e| format!("could not encode the answer: {e}"))
}

/// `(since, until)`, each bound optional.
type TimeRange = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// The time range of `node_series` from its params.
fn series_range(
    params: &serde_json::Map<String, Value>,
    now: DateTime<Utc>,
) -> Result<TimeRange, String> {
    if let Some(m) = params.get("minutes") {
        let minutes = match m {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        }
        .filter(|m| m.is_finite() && *m > 0.0 && *m <= 525_600.0)
        .ok_or_else(|| {
            format!("params.minutes must be a number of minutes in 0..=525600, got {m}")
        })?;
        let span = chrono::Duration::milliseconds((minutes * 60_000.0).round() as i64);
        return Ok((Some(now - span), None));
    }
    let time = |key: &str| -> Result<Option<DateTime<Utc>>, String> {
        match params.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => DateTime::parse_from_rfc3339(s.trim())
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|e| format!("params.{key} {s:?} is not an RFC 3339 time: {e}")),
            Some(other) => Err(format!(
                "params.{key} must be an RFC 3339 time string, got {other}"
            )),
        }
    };
    let since = time("since")?;
    let until = time("until")?;
    if let (Some(s), Some(u)) = (since, until)
        && s > u
    {
        return Err(format!("params.since ({s}) is after params.until ({u})"));
    }
    Ok((since, until))
}

/// How the command loop behaves.
#[derive(Debug, Clone)]
pub(crate) struct CommandSettings {
    pub topic: String,
    pub concurrency: usize,
    pub poll_timeout: Duration,
    pub idle_interval: Duration,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub result_attempts: u32,
    pub shutdown_grace: Duration,
}

/// Long-polls for commands until cancelled. After a command it polls again at once (draining the
/// queue); after an empty answer it waits `idle_interval`; after an error it backs off. At most
/// `concurrency` commands run (and post results) at a time; a permit is taken before polling, so
/// the agent never takes a command it has no room to run.
pub(crate) async fn run_command_loop(
    table: Arc<NodeTable>,
    link: MasterLink,
    settings: CommandSettings,
    stats: Arc<AgentStats>,
    cancel: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    let mut backoff = Backoff::new(settings.backoff_base, settings.backoff_max);
    loop {
        while tasks.try_join_next().is_some() {}
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = cancel.cancelled() => break,
        };
        let polled = tokio::select! {
            r = link.poll_command(&settings.topic, settings.poll_timeout) => r,
            _ = cancel.cancelled() => break,
        };
        let wait = match polled {
            Ok(Some(command)) => {
                backoff.reset();
                let (table, link, stats) = (Arc::clone(&table), link.clone(), Arc::clone(&stats));
                let cancel = cancel.clone();
                let settings = settings.clone();
                tasks.spawn(async move {
                    let result = execute(&table, link.cluster_id(), &command);
                    if result.success {
                        inc(&stats.commands_ok);
                    } else {
                        inc(&stats.commands_failed);
                    }
                    post_result(&link, &result, &settings, &stats, &cancel).await;
                    drop(permit);
                });
                continue;
            }
            Ok(None) => {
                backoff.reset();
                settings.idle_interval
            }
            Err(e) => {
                inc(&stats.command_poll_errors);
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, retry_in = ?delay, "command poll failed");
                delay
            }
        };
        drop(permit);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = cancel.cancelled() => break,
        }
    }
    // Let running commands deliver their results for a moment, then stop them.
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(settings.shutdown_grace, drain)
        .await
        .is_err()
    {
        tasks.shutdown().await;
    }
}

async fn post_result(
    link: &MasterLink,
    result: &CommandResult,
    settings: &CommandSettings,
    stats: &AgentStats,
    cancel: &CancellationToken,
) {
    let mut backoff = Backoff::new(settings.backoff_base / 4, settings.backoff_max / 4);
    for attempt in 1..=settings.result_attempts.max(1) {
        match link.post_result(result).await {
            Ok(()) => return,
            Err(e) if attempt < settings.result_attempts => {
                let delay = backoff.next_delay();
                tracing::warn!(command = %result.command_id, error = %e, retry_in = ?delay, "posting a result failed");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = cancel.cancelled() => break,
                }
            }
            Err(e) => {
                tracing::error!(command = %result.command_id, error = %e, "result lost after every retry");
            }
        }
    }
    inc(&stats.results_lost);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn series_ranges() {
        let now = Utc::now();
        let (s, u) = series_range(&params(json!({"minutes": 10})), now).unwrap();
        assert_eq!(s, Some(now - chrono::Duration::minutes(10)));
        assert_eq!(u, None);
        let (s, _) = series_range(&params(json!({"minutes": "5"})), now).unwrap();
        assert_eq!(s, Some(now - chrono::Duration::minutes(5)));
        let (s, u) = series_range(
            &params(json!({"since": "2024-01-20T10:00:00Z", "until": "2024-01-20T19:30:00+09:00"})),
            now,
        )
        .unwrap();
        assert_eq!(s.unwrap().to_rfc3339(), "2024-01-20T10:00:00+00:00");
        assert_eq!(u.unwrap().to_rfc3339(), "2024-01-20T10:30:00+00:00");
        assert_eq!(series_range(&params(json!({})), now).unwrap(), (None, None));
        for bad in [
            json!({"minutes": -1}),
            json!({"minutes": "ten"}),
            json!({"minutes": [1]}),
            json!({"since": "yesterday"}),
            json!({"since": 5}),
            json!({"since": "2024-01-21T00:00:00Z", "until": "2024-01-20T00:00:00Z"}),
        ] {
            assert!(
                series_range(&params(bad.clone()), now).is_err(),
                "{bad} accepted"
            );
        }
    }
}
