#![no_main]
//! Fuzz target: proc_net_dev. Must never panic on any input.

use atlhyper_collect::proc;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        for dev in proc::net_dev::parse(text) {
            let _ = dev;
        }
        for (i, line) in text.lines().enumerate() {
            let _ = proc::net_dev::parse_line(line, i + 1);
        }
    }
});
