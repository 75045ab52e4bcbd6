//! Facade of atlhyper-rs: re-exports the member crates by name.
//!
//! - [`model`]: the wire types; [`collect`]: `/proc` and `/sys` parsers and the collector;
//!   [`store`]: the store traits and engines; [`agent`]: the cluster agent and node daemon;
//!   [`master`]: the master (ingest, API, commands, dashboard, Prometheus exposition).
//! - [`up`]: `atlhyper up`, master, agent and this host's collector in one process (dashboard on
//!   http://127.0.0.1:8080); the `atlhyper` binary runs it, and `atlhyper master|agent|metrics`
//!   run the parts.
//!
//! A master over the in-memory store, asked through its router without a socket:
//!
//! ```
//! use std::sync::Arc;
//!
//! use atlhyper::master::{Master, MasterConfig};
//! use atlhyper::store::MemoryStore;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let store = Arc::new(MemoryStore::new());
//! let master = Master::new(MasterConfig::default(), store.clone(), store.clone(), store);
//! let snapshot = atlhyper::model::ClusterSnapshot::default();
//! let ingested = master.ingest_snapshot("demo", snapshot, "127.0.0.1:1").await.unwrap();
//! assert_eq!(ingested.outcome, atlhyper::master::Ingested::Accepted);
//! assert!(master.hub().view("demo").is_some());
//! # });
//! ```

pub mod up;

pub use atlhyper_agent as agent;
pub use atlhyper_collect as collect;
pub use atlhyper_master as master;
pub use atlhyper_model as model;
pub use atlhyper_store as store;
