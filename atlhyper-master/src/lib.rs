//! atlhyper-master: multi-cluster ingest, persistence, REST API, commands and dashboard.

pub mod dashboard;
