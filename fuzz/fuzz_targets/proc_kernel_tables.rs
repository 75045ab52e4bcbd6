#![no_main]
//! Fuzz target `proc_kernel_tables`: see `atlhyper_fuzz::proc_kernel_tables` (src/lib.rs) for what it checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| atlhyper_fuzz::proc_kernel_tables(data));
