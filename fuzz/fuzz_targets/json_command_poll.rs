#![no_main]
//! Fuzz target `json_command_poll`: see `atlhyper_fuzz::json_command_poll` (src/lib.rs) for what it checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| atlhyper_fuzz::json_command_poll(data));
