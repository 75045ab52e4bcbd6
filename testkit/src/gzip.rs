//! Gzip for request bodies in tests (fast level: tests want bytes, not ratio).

use std::io::Write as _;

/// `data` gzip-compressed.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    #[test]
    fn decodes_to_the_input() {
        let body = b"{\"node_name\":\"n\"}".repeat(100);
        let packed = super::gzip(&body);
        assert!(packed.len() < body.len());
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&packed[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, body);
    }
}
