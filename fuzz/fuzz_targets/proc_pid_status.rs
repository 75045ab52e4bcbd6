#![no_main]
//! Fuzz target `proc_pid_status`: see `atlhyper_fuzz::proc_pid_status` (src/lib.rs) for what it checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| atlhyper_fuzz::proc_pid_status(data));
