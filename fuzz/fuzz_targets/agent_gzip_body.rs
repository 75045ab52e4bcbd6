#![no_main]
//! Fuzz target: the agent's body decoding of `POST /metrics/node` with `Content-Encoding: gzip`:
//! gunzip within the 1 MiB limit, then the NodeMetricsSnapshot decoder. Never panics, never
//! returns more than the limit, and a body that is not too large inflates to the same bytes a
//! reference decoder gives.

use std::io::Read;

use atlhyper_agent::{GunzipError, gunzip_limited};
use atlhyper_model::NodeMetricsSnapshot;
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    match gunzip_limited(data, LIMIT) {
        Ok(json) => {
            assert!(json.len() <= LIMIT, "output over the limit");
            // Reference: flate2's own multi-member decoder, bounded the same way.
            let mut reference = Vec::new();
            let ok = flate2::read::MultiGzDecoder::new(data)
                .take(LIMIT as u64 + 1)
                .read_to_end(&mut reference)
                .is_ok();
            assert!(
                ok && reference == json,
                "differs from the reference decoder"
            );
            let _ = serde_json::from_slice::<NodeMetricsSnapshot>(&json);
        }
        Err(GunzipError::TooLarge { limit }) => assert_eq!(limit, LIMIT),
        Err(GunzipError::Invalid(_)) => {}
    }
});
