#![no_main]
//! Fuzz target `proc_mountinfo`: see `atlhyper_fuzz::proc_mountinfo` (src/lib.rs) for what it checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| atlhyper_fuzz::proc_mountinfo(data));
