#![no_main]
//! Fuzz target `sys_files`: see `atlhyper_fuzz::sys_files` (src/lib.rs) for what it checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| atlhyper_fuzz::sys_files(data));
