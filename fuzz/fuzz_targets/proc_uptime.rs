#![no_main]
//! Fuzz target `proc_uptime`: see `atlhyper_fuzz::proc_uptime` (src/lib.rs) for what it checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| atlhyper_fuzz::proc_uptime(data));
