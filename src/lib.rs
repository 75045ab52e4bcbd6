//! Facade of atlhyper-rs: re-exports the member crates by name.
pub use atlhyper_agent as agent;
pub use atlhyper_collect as collect;
pub use atlhyper_master as master;
pub use atlhyper_model as model;
pub use atlhyper_store as store;
