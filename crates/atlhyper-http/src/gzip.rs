//! gzip for request bodies: compress what we send, decompress what we receive within a limit.

use std::io::{Read, Write};

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::{Compress, Compression, Crc, FlushCompress, Status};

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

/// A gzip compressor kept between bodies: the deflate state (hundreds of KiB, zeroed on every
/// [`gzip`] call) is allocated once and reset, and the output goes into a caller's buffer. For a
/// sender that compresses one body per cycle.
pub struct GzipWriter {
    deflate: Compress,
    header: [u8; 10],
}

impl std::fmt::Debug for GzipWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GzipWriter").finish_non_exhaustive()
    }
}

impl GzipWriter {
    /// A compressor at `level` (0-9; 1 is fastest).
    pub fn new(level: u32) -> Self {
        let level = level.min(9);
        // RFC 1952 header: deflate, no flags, no modification time, XFL saying fastest (4) or
        // best (2) compression, operating system unknown.
        let xfl = match level {
            0 | 1 => 4,
            9 => 2,
            _ => 0,
        };
        Self {
            deflate: Compress::new(Compression::new(level), false),
            header: [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 0xff],
        }
    }

    /// Replaces `out`'s content with `data` as one gzip member (its capacity is kept, so a
    /// buffer reused across calls stops allocating once it has grown to the largest body).
    pub fn compress_into(&mut self, data: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
        out.clear();
        out.extend_from_slice(&self.header);
        self.deflate.reset();
        let mut rest = data;
        loop {
            // compress_vec writes only into spare capacity: make room, then go on where it
            // stopped.
            out.reserve(rest.len() / 2 + 1024);
            let before = self.deflate.total_in();
            let status = self
                .deflate
                .compress_vec(rest, out, FlushCompress::Finish)
                .map_err(std::io::Error::other)?;
            let used = usize::try_from(self.deflate.total_in() - before).unwrap_or(rest.len());
            rest = rest.get(used..).unwrap_or_default();
            if status == Status::StreamEnd {
                break;
            }
        }
        let mut crc = Crc::new();
        crc.update(data);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        // ISIZE: the input length modulo 2^32.
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        Ok(())
    }
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
    fn reused_writer_gives_what_gzip_gives() {
        let mut w = GzipWriter::new(1);
        let mut out = Vec::new();
        // Bodies of several sizes through one writer and one buffer, the large one first (so
        // later ones land in a buffer with room to spare) and one past the first reservation.
        let bodies: Vec<Vec<u8>> = vec![
            (0..200_000u32)
                .flat_map(|i| (i % 251).to_le_bytes())
                .collect(),
            b"{\"node_name\":\"a\"}".repeat(100),
            Vec::new(),
            (0..5000u32).map(|i| (i * 7 % 256) as u8).collect(),
        ];
        for data in &bodies {
            w.compress_into(data, &mut out).unwrap();
            assert!(is_gzip(&out));
            assert_eq!(&gunzip_limited(&out, data.len()).unwrap(), data);
            // As small as the one-shot function's stream at the same level (the bytes may
            // differ: zlib-rs splits blocks by how the input is fed).
            assert!(
                out.len() <= gzip(data, 1).len() + 64,
                "{} against {}",
                out.len(),
                gzip(data, 1).len()
            );
        }
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
