//! Storage for the atlhyper-rs master: narrow traits, one per concern, and two engines.
//!
//! - [`MetricsStore`]: the latest snapshot per (cluster, node) and the history of
//!   [`MetricsDataPoint`](atlhyper_model::MetricsDataPoint)s.
//! - [`CommandQueue`]: commands for agents, with leases so a command taken by an agent that died
//!   is offered again.
//! - [`AgentRegistry`]: when each cluster's agent was last heard from.
//!
//! Every trait is object safe (`Arc<dyn MetricsStore>`) and async where an engine blocks; the
//! binaries wire a concrete engine in. Errors are [`StoreError`]; engine types never leak.

mod agents;
mod commands;
mod error;
mod memory;
mod metrics;
mod sqlite;
mod timestamp;

pub use agents::{AgentRegistry, AgentSeen, SeenVia};
pub use commands::{CommandFilter, CommandQueue, DEFAULT_LIST_LIMIT};
pub use error::{StoreError, StoreResult};
pub use memory::MemoryStore;
pub use metrics::{HistoryQuery, MetricsStore};
pub use sqlite::{APPLICATION_ID, SCHEMA_VERSION, SqliteOptions, SqliteStore, Synchronous};
