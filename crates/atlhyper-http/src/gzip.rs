//! gzip for request bodies: compress what we send, decompress what we receive within a limit.

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

/// Why a gzip body could not be decompressed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GunzipError {
    /// The decompressed body is larger than the limit.
    #[error("decompressed body is larger than {limit} bytes")]
    TooLarge {
        /// The limit, bytes.
        limit: usize,
    },
    /// The body is not valid gzip.
    #[error("body is not valid gzip: {0}")]
    Invalid(String),
}

/// Compresses `data` with gzip at `level` (0-9; 1 is fastest).
pub fn gzip(data: &[u8], level: u32) -> Vec<u8> {
    let mut enc = GzEncoder::new(
        Vec::with_capacity(data.len() / 3 + 64),
        Compression::new(level.min(9)),
    );
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

/// Whether `data` starts with the gzip magic bytes (for senders that compress without saying so
/// in `Content-Encoding`).
pub fn is_gzip(data: &[u8]) -> bool {
    data.starts_with(&[0x1f, 0x8b])
}

/// Decompresses a gzip body (one or more members), refusing to produce more than `limit` bytes.
pub fn gunzip_limited(data: &[u8], limit: usize) -> Result<Vec<u8>, GunzipError> {
    let mut out = Vec::with_capacity((data.len() * 4).min(limit));
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    MultiGzDecoder::new(data)
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| GunzipError::Invalid(e.to_string()))?;
    if out.len() > limit {
        return Err(GunzipError::TooLarge { limit });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let data = b"{\"node_name\":\"a\"}".repeat(100);
        let z = gzip(&data, 1);
        assert!(is_gzip(&z));
        assert!(!is_gzip(&data));
        assert!(z.len() < data.len());
        assert_eq!(gunzip_limited(&z, data.len()).unwrap(), data);
    }

    #[test]
    fn limit_applies_to_decompressed_size() {
        let data = vec![b'a'; 100_000];
        let z = gzip(&data, 9);
        assert!(z.len() < 1_000);
        assert_eq!(
            gunzip_limited(&z, 99_999),
            Err(GunzipError::TooLarge { limit: 99_999 })
        );
        assert!(gunzip_limited(&z, 100_000).is_ok());
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(matches!(
            gunzip_limited(b"not gzip at all", 1000),
            Err(GunzipError::Invalid(_))
        ));
        let z = gzip(b"hello world", 6);
        assert!(matches!(
            gunzip_limited(&z[..z.len() - 4], 1000),
            Err(GunzipError::Invalid(_))
        ));
    }
}
