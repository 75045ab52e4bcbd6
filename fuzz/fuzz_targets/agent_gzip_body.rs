#![no_main]
//! Fuzz target `agent_gzip_body`: see `atlhyper_fuzz::agent_gzip_body` (src/lib.rs) for what it checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| atlhyper_fuzz::agent_gzip_body(data));
