//! A cycle's body: the snapshot as gzip JSON. The serialisation buffer, the compressor's state
//! and its output buffer are kept from one cycle to the next, so after the first few cycles
//! encoding allocates only the body that is queued (its exact size).

use atlhyper_http::GzipWriter;
use atlhyper_model::NodeMetricsSnapshot;
use axum::body::Bytes;

/// gzip level of the pushed bodies: the fastest (the agent is on the same network; CPU on
/// every node is what counts).
const GZIP_LEVEL: u32 = 1;

/// Turns snapshots into gzip JSON bodies for `POST /metrics/node`, reusing its buffers.
#[derive(Debug)]
pub struct SnapshotEncoder {
    json: Vec<u8>,
    gzip: GzipWriter,
    body: Vec<u8>,
}

impl Default for SnapshotEncoder {
    fn default() -> Self {
        Self {
            json: Vec::new(),
            gzip: GzipWriter::new(GZIP_LEVEL),
            body: Vec::new(),
        }
    }
}

impl SnapshotEncoder {
    /// An encoder with empty buffers (they grow to the largest snapshot and stay).
    pub fn new() -> Self {
        Self::default()
    }

    /// The gzip JSON body of `snapshot`.
    pub fn encode(&mut self, snapshot: &NodeMetricsSnapshot) -> std::io::Result<Bytes> {
        self.json.clear();
        serde_json::to_writer(&mut self.json, snapshot)?;
        self.gzip.compress_into(&self.json, &mut self.body)?;
        Ok(Bytes::copy_from_slice(&self.body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_decode_to_the_snapshots_and_buffers_are_kept() {
        let mut enc = SnapshotEncoder::new();
        let at = chrono::Utc::now();
        let big = atlhyper_testkit::snapshot::node("n1", at, 0.5);
        let mut small = big.clone();
        small.processes.clear();
        small.disks.clear();
        for snap in [&big, &small, &big] {
            let body = enc.encode(snap).unwrap();
            let json = atlhyper_http::gunzip_limited(&body, 10 << 20).unwrap();
            let back: NodeMetricsSnapshot = serde_json::from_slice(&json).unwrap();
            assert_eq!(&back, snap);
        }
        // After the largest snapshot, the buffers hold at least its size: a smaller one and the
        // same one again needed no growth.
        let cap = (enc.json.capacity(), enc.body.capacity());
        enc.encode(&small).unwrap();
        enc.encode(&big).unwrap();
        assert_eq!((enc.json.capacity(), enc.body.capacity()), cap);
    }
}
