#![no_main]
//! Fuzz target: serde_json decoding of `Heartbeat`, the POST /agent/heartbeat body (master ingest).
//!
//! Decoding must never panic, and what decodes must survive a round trip: encode, decode again,
//! encode again gives the same JSON (so nothing accepted on ingest is lost or altered when stored
//! and served back).

use atlhyper_model::Heartbeat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Heartbeat>(data) else {
        return;
    };
    let first = serde_json::to_string(&value).expect("a decoded value encodes");
    let again: Heartbeat = serde_json::from_str(&first).expect("what we encode decodes");
    let second = serde_json::to_string(&again).expect("encodes");
    assert_eq!(first, second, "round trip is stable");
});
