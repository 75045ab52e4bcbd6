//! Alert notification: routes, groups, silences, inhibition, receivers and the notification log.
//!
//! The rule engine publishes every evaluation's firing alerts, and each alert that resolved in
//! it once, to a [`Dispatcher`] ([`AlertPublisher`](super::AlertPublisher)); publishing never
//! blocks. The dispatcher works as Alertmanager does, with its configuration's shape:
//!
//! 1. **Route** ([`route`]): the route tree picks the receivers (by `severity`, `cluster`,
//!    `alertname` or any label matchers; `continue`, nested routes).
//! 2. **Group** ([`group`]): per route and `group_by` labels; a new group waits `group_wait`
//!    (30 s), then is flushed every `group_interval` (5 m). A thousand nodes down in one
//!    cluster are one notification per group, not a thousand.
//! 3. **Mute** ([`silence`], [`inhibit`]): silences, and inhibition (AgentDown mutes its
//!    cluster's NodeDown; NodeDown mutes its node's other alerts; more in `inhibit_rules`).
//! 4. **De-duplicate** ([`log`]): per integration and group, the firing and resolved alerts last
//!    sent are kept in the store; a group is sent when it changed, or after `repeat_interval`
//!    (4 h). So firing and resolved each arrive once, and a restart does not notify again.
//! 5. **Deliver** ([`outbox`], [`receivers`]): one outbox per integration (webhook with
//!    Alertmanager's payload version 4, Slack, email, an external Alertmanager), retried with
//!    exponential backoff; a receiver that is down delays only itself.
//!
//! ```
//! use std::sync::Arc;
//!
//! use atlhyper_master::alerting::AlertPublisher;
//! use atlhyper_master::alerting::notify::{Dispatcher, NotifyConfig};
//! use atlhyper_store::MemoryStore;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let config = NotifyConfig::from_yaml(
//!     "route:\n  receiver: ops\n  group_wait: 1s\nreceivers:\n  - name: ops\n    webhook_configs:\n      - url: http://127.0.0.1:9/hook\n",
//!     "alerts.yaml",
//! )
//! .unwrap();
//! let dispatcher = Dispatcher::start(config, Arc::new(MemoryStore::new())).await.unwrap();
//! dispatcher.publish(chrono::Utc::now(), Vec::new());
//! dispatcher.stop().await;
//! # });
//! ```

pub(crate) mod api;
pub mod config;
pub mod dispatcher;
pub mod group;
pub mod inhibit;
pub(crate) mod late;
pub mod log;
pub mod matcher;
pub mod metrics;
pub mod outbox;
pub mod receivers;
pub mod route;
pub mod silence;

pub use config::{NotifyConfig, NotifyConfigError};
pub use dispatcher::{Dispatcher, NotifyError};
pub use metrics::{NotifyStats, write_metrics};
pub use silence::{SilenceState, Silences};
