#![no_main]
//! Fuzz target: serde_json decoding of `CreateCommand`, the POST /api/v2/commands body (master API).
//!
//! Decoding must never panic, and what decodes must survive a round trip: encode, decode again,
//! encode again gives the same JSON (so nothing accepted on ingest is lost or altered when stored
//! and served back).

use atlhyper_model::CreateCommand;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<CreateCommand>(data) else {
        return;
    };
    let first = serde_json::to_string(&value).expect("a decoded value encodes");
    let again: CreateCommand = serde_json::from_str(&first).expect("what we encode decodes");
    let second = serde_json::to_string(&again).expect("encodes");
    assert_eq!(first, second, "round trip is stable");
});
