#![no_main]
//! Fuzz target `proc_net_dev`: see `atlhyper_fuzz::proc_net_dev` (src/lib.rs) for what it checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| atlhyper_fuzz::proc_net_dev(data));
