#![no_main]
//! Fuzz target: proc_stat. Must never panic on any input, and parsing into a reused buffer
//! (what the sampler does every cycle) must give the same result as a fresh parse.

use atlhyper_collect::proc;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let fresh = proc::stat::parse(text);
    if let Ok(stat) = &fresh {
        let _ = stat.cpu.total();
        for core in &stat.cpus {
            let _ = core.total();
        }
    }
    // A buffer that held a different sample before, as in the sampler's loop.
    let mut reused = proc::stat::Stat::default();
    let _ = proc::stat::parse_into(
        "cpu 1 2 3 4 5 6 7 8 9 10\ncpu0 1 2 3 4 5 6 7 8\nbtime 5\n",
        &mut reused,
    );
    let again = proc::stat::parse_into(text, &mut reused);
    if let Ok(stat) = fresh {
        assert!(again.is_ok(), "parse_into fails where parse succeeds");
        assert_eq!(
            stat, reused,
            "parse_into into a reused buffer differs from parse"
        );
    }
});
