#![no_main]
//! Fuzz target: proc_mountinfo. Must never panic on any input.

use atlhyper_collect::proc;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        for m in proc::mountinfo::parse_mountinfo(text) {
            let _ = m;
        }
        for m in proc::mountinfo::parse_mounts(text) {
            let _ = m;
        }
        let _ = proc::mountinfo::unescape(text);
    }
});
