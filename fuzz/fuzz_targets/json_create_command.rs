#![no_main]
//! Fuzz target `json_create_command`: see `atlhyper_fuzz::json_create_command` (src/lib.rs) for what it checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| atlhyper_fuzz::json_create_command(data));
