#![no_main]
//! Fuzz target: proc_pid_cmdline. Must never panic on any input.

use atlhyper_collect::proc;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for arg in proc::pid_cmdline::args(data) {
        let _ = arg;
    }
    let shown = proc::pid_cmdline::to_display(data);
    let mut appended = String::new();
    proc::pid_cmdline::append_display(data, &mut appended);
    assert_eq!(shown, appended, "to_display and append_display agree");
});
