//! Node metrics from `/proc` and `/sys`: exact, allocation-free parsers, reset-safe rates, and a
//! sampler that reads each file once into one reused buffer.
//!
//! - [`proc`], [`sys`], [`etc`]: one parser module per kernel file; they take text, never open
//!   files, never panic, and report errors with the kernel file and line.
//! - [`delta`]: pure `(prev, cur, elapsed)` rate functions; a counter that went down gives no rate.
//! - [`Sampler`] over a [`HostRoot`]: the only code that touches the filesystem.
//! - [`Collector`]: keeps the previous raw sample and produces an
//!   [`atlhyper_model::NodeMetricsSnapshot`].
//!
//! ```
//! use atlhyper_collect::{CollectConfig, Collector, HostRoot};
//!
//! let mut collector = Collector::new(HostRoot::default(), CollectConfig::from_host());
//! let first = collector.collect(); // no rates yet
//! assert!(first.memory.total > 0);
//! std::thread::sleep(std::time::Duration::from_millis(100));
//! let snapshot = collector.collect(); // rates over the last 100 ms
//! assert!((0.0..=100.0).contains(&snapshot.cpu.usage_percent));
//! assert!(snapshot.collectors.iter().any(|c| c.name == "cpu" && c.ok));
//! ```
//!
//! Parsers work on text alone:
//!
//! ```
//! let m = atlhyper_collect::proc::meminfo::parse(
//!     "MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 600 kB\nBuffers: 10 kB\n\
//!      Cached: 200 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n",
//! ).unwrap();
//! assert_eq!(m.available(), Some(600 * 1024));
//! ```

pub mod collector;
pub mod delta;
pub mod error;
pub mod etc;
pub mod filter;
mod num;
pub mod proc;
pub mod sampler;
pub mod sys;

pub use collector::{CollectConfig, Collector, HostConstants, PidSetStats, write_processes};
pub use error::{Error, ParseError, ParseErrorKind};
pub use sampler::{Access, FsSpace, HostRoot, Sampler, Statfs};
