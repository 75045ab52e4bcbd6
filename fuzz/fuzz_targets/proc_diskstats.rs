#![no_main]
//! Fuzz target: proc_diskstats. Must never panic on any input.

use atlhyper_collect::proc;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        for disk in proc::diskstats::parse(text) {
            let _ = disk;
        }
        for (i, line) in text.lines().enumerate() {
            let _ = proc::diskstats::parse_line(line, i + 1);
        }
    }
});
