#![no_main]
//! Fuzz target `etc_files`: see `atlhyper_fuzz::etc_files` (src/lib.rs) for what it checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| atlhyper_fuzz::etc_files(data));
