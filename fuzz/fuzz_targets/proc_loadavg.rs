#![no_main]
//! Fuzz target `proc_loadavg`: see `atlhyper_fuzz::proc_loadavg` (src/lib.rs) for what it checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| atlhyper_fuzz::proc_loadavg(data));
