//! Alerting: the rule engine's output and what happens to it.
//!
//! The engine evaluates rules and hands every evaluation's alerts to an [`AlertPublisher`];
//! [`notify`] routes, groups, mutes and delivers them.

pub mod notify;

/// Receives the engine's output after every evaluation; must not block (hand off to a task).
pub trait AlertPublisher: Send + Sync + 'static {
    fn publish(
        &self,
        evaluated_at: chrono::DateTime<chrono::Utc>,
        alerts: Vec<atlhyper_model::Alert>,
    );
}
