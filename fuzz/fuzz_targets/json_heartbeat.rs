#![no_main]
//! Fuzz target `json_heartbeat`: see `atlhyper_fuzz::json_heartbeat` (src/lib.rs) for what it checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| atlhyper_fuzz::json_heartbeat(data));
