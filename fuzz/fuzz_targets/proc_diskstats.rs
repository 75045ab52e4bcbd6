#![no_main]
//! Fuzz target `proc_diskstats`: see `atlhyper_fuzz::proc_diskstats` (src/lib.rs) for what it checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| atlhyper_fuzz::proc_diskstats(data));
