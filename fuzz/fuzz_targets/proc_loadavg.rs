#![no_main]
//! Fuzz target: proc_loadavg. Must never panic on any input.

use atlhyper_collect::proc;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = proc::loadavg::parse(text);
    }
});
