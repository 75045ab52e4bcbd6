#![no_main]
//! Fuzz target: etc_files. Must never panic on any input.

use atlhyper_collect::etc;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = etc::os_release::pretty_name(text);
        let mut last_uid = None;
        for (name, uid) in etc::passwd::entries(text) {
            let _ = name;
            last_uid = Some(uid);
        }
        if let Some(uid) = last_uid {
            let _ = etc::passwd::lookup(text, uid);
        }
        let _ = etc::passwd::lookup(text, 0);
    }
});
