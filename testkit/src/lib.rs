//! Test support shared by the tests, benchmarks and examples of every atlhyper-rs crate: one
//! copy of what each of them used to carry.
//!
//! - [`snapshot`]: node and cluster snapshots, typed ([`node`], [`cluster`]) and as the JSON an
//!   AtlHyper v2 collector sends ([`v2_node_json`], [`node_json`]);
//! - [`free_port`], [`wait_for`]: sockets and polling for tests on loopback;
//! - [`http`], [`http_get`], [`get_json`], [`http_answer`]: a blocking HTTP/1.1 client over std
//!   TCP for tests against real servers;
//! - [`real_programs_here`], [`promtool_here`], [`promtool_check_metrics`]: real programs the
//!   tests run, failing under `CI=true` when missing and skipped elsewhere;
//! - [`TestPostgres`]: a throwaway PostgreSQL server (Debian's binaries, a temporary directory,
//!   a free port), or the one named by `ATLHYPER_TEST_PG_URL`;
//! - [`api::ApiCall`], [`api::json_of`], [`api::error_of`]: an axum router driven in-process;
//! - [`SimulatedNode`], [`SimulatedCluster`]: nodes of real shapes whose figures move between
//!   samples, for load generators (`examples/fleet_load`);
//! - [`gzip`]; [`percentile`] for load generators;
//! - [`Sleepers`], [`process_count`], [`own_cpu_time`], [`process_cpu_time`], [`median`]: a crowd
//!   of idle processes and CPU clocks for the benchmarks of the process scan.
//!
//! Not published: it is support, not a sixth product crate.
//!
//! ```
//! let at = chrono::Utc::now();
//! let cluster = atlhyper_testkit::cluster("demo", 3, 1, at);
//! assert_eq!(cluster.node_metrics.len(), 3);
//! assert!(cluster.node_metrics["node-000"].cpu.usage_percent <= 100.0);
//! ```

pub mod api;
mod fleet;
mod gzip;
mod http;
mod measure;
mod net;
mod postgres;
mod procs;
mod real_programs;
pub mod snapshot;
pub mod tls;

pub use fleet::{SimulatedCluster, SimulatedNode};
pub use gzip::gzip;
pub use http::{Answer, get_json, http, http_answer, http_get};
pub use measure::percentile;
pub use net::{free_port, held_port, wait_for, wait_until};
pub use postgres::{TEST_PG_URL_VAR, TestPostgres};
pub use procs::{BENCH_PROCS_VAR, Sleepers, median, own_cpu_time, process_count, process_cpu_time};
pub use real_programs::{PROMTOOL, promtool_check_metrics, promtool_here, real_programs_here};
pub use snapshot::{cluster, node, node_json, v2_node_json};
