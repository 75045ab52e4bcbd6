#![no_main]
//! Fuzz target `config_values`: see `atlhyper_fuzz::config_values` (src/lib.rs) for what it checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| atlhyper_fuzz::config_values(data));
