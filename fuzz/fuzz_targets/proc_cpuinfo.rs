#![no_main]
//! Fuzz target `proc_cpuinfo`: see `atlhyper_fuzz::proc_cpuinfo` (src/lib.rs) for what it checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| atlhyper_fuzz::proc_cpuinfo(data));
