//! The stored form of a series row: a dictionary (the row's series keys, shared by every row
//! with the same keys) and a value blob.
//!
//! Dictionary: per key, the figure id (1 byte), the device's length (varint) and bytes.
//!
//! Values: per key in dictionary order, min, avg and max as integers in the figure's quantum
//! ([`Figure::quantum`]): one varint `zigzag(min) << 1 | spread`, then, when `spread` is 1,
//! `avg - min` and `max - avg` as varints. A series that stayed put over the row (every error
//! and drop counter on a healthy node, swap, most PSI) costs one or two bytes, a moving one
//! five to nine.

use integer_encoding::VarInt;

use super::{Figure, SeriesKey, Triple};
use crate::error::{StoreError, StoreResult};

/// Longest device name kept, bytes.
pub const MAX_DEVICE_BYTES: usize = 256;
/// Most series in one row.
pub const MAX_SERIES_PER_ROW: usize = 16_384;
/// Largest magnitude of a stored value, in quanta (2^53: integers exact in an f64).
const MAX_QUANTA: f64 = 9_007_199_254_740_992.0;

fn push_varint(out: &mut Vec<u8>, v: u64) {
    let start = out.len();
    out.resize(start + v.required_space(), 0);
    v.encode_var(&mut out[start..]);
}

fn read_varint(data: &[u8], pos: &mut usize) -> StoreResult<u64> {
    let (v, used) = data
        .get(*pos..)
        .and_then(u64::decode_var)
        .ok_or_else(|| corrupt("truncated varint"))?;
    *pos += used;
    Ok(v)
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("stored series row: {what}"))
}

/// Encodes a row's keys (sorted, unique, checked by the caller).
pub(crate) fn encode_keys(keys: &[&SeriesKey]) -> Vec<u8> {
    let mut out = Vec::with_capacity(keys.len() * 8);
    for k in keys {
        out.push(k.figure.id());
        push_varint(&mut out, k.device.len() as u64);
        out.extend_from_slice(k.device.as_bytes());
    }
    out
}

/// Decodes a dictionary stored by [`encode_keys`].
pub(crate) fn decode_keys(data: &[u8]) -> StoreResult<Vec<SeriesKey>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let figure = Figure::from_id(data[pos]).ok_or_else(|| corrupt("unknown figure id"))?;
        pos += 1;
        let len = usize::try_from(read_varint(data, &mut pos)?)
            .ok()
            .filter(|&l| l <= MAX_DEVICE_BYTES)
            .ok_or_else(|| corrupt("device name too long"))?;
        let bytes = data
            .get(pos..pos + len)
            .ok_or_else(|| corrupt("truncated device name"))?;
        let device = std::str::from_utf8(bytes)
            .map_err(|_| corrupt("device name is not UTF-8"))?
            .to_owned();
        pos += len;
        out.push(SeriesKey { figure, device });
    }
    Ok(out)
}

/// How a figure's values map to integers: `value * scale`, rounded.
fn scale(figure: Figure) -> f64 {
    1.0 / figure.quantum()
}

fn quantize(v: f64, scale: f64) -> i64 {
    // Rounded, saturated to ±2^53 quanta (finite values are checked before).
    (v * scale).round().clamp(-MAX_QUANTA, MAX_QUANTA) as i64
}

fn dequantize(q: i64, scale: f64) -> f64 {
    // Dividing by the exact scale (100, 1, or 1/1024) gives the nearest f64 to the decimal.
    q as f64 / scale
}

fn zigzag(q: i64) -> u64 {
    ((q << 1) ^ (q >> 63)) as u64
}

fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

/// Encodes the values of a row, in the order of its keys.
pub(crate) fn encode_values(series: &[(SeriesKey, Triple)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(series.len() * 4);
    for (key, t) in series {
        let s = scale(key.figure);
        let min = quantize(t.min, s);
        let avg = quantize(t.avg, s).max(min);
        let max = quantize(t.max, s).max(avg);
        let spread = min != avg || avg != max;
        push_varint(&mut out, (zigzag(min) << 1) | u64::from(spread));
        if spread {
            push_varint(&mut out, (avg - min) as u64);
            push_varint(&mut out, (max - avg) as u64);
        }
    }
    out
}

/// Decodes the values stored by [`encode_values`] for `keys`.
pub(crate) fn decode_values(keys: &[SeriesKey], data: &[u8]) -> StoreResult<Vec<Triple>> {
    let mut out = Vec::with_capacity(keys.len());
    let mut pos = 0;
    let bounded = |q: i128| {
        i64::try_from(q)
            .ok()
            .filter(|q| q.unsigned_abs() <= 1 << 53)
            .ok_or_else(|| corrupt("value out of range"))
    };
    for key in keys {
        let s = scale(key.figure);
        let head = read_varint(data, &mut pos)?;
        let min = bounded(i128::from(unzigzag(head >> 1)))?;
        let (avg, max) = if head & 1 == 1 {
            let avg = bounded(i128::from(min) + i128::from(read_varint(data, &mut pos)?))?;
            let max = bounded(i128::from(avg) + i128::from(read_varint(data, &mut pos)?))?;
            (avg, max)
        } else {
            (min, min)
        };
        out.push(Triple {
            min: dequantize(min, s),
            avg: dequantize(avg, s),
            max: dequantize(max, s),
        });
    }
    if pos != data.len() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(out)
}

/// A triple as it reads back after storage.
pub fn stored_form(figure: Figure, t: Triple) -> Triple {
    let s = scale(figure);
    let min = quantize(t.min, s);
    let avg = quantize(t.avg, s).max(min);
    let max = quantize(t.max, s).max(avg);
    Triple {
        min: dequantize(min, s),
        avg: dequantize(avg, s),
        max: dequantize(max, s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(f: Figure, d: &str) -> SeriesKey {
        SeriesKey::device(f, d)
    }

    #[test]
    fn keys_round_trip() {
        let keys = [key(Figure::CpuUsage, ""), key(Figure::Temp, "Tctl °")];
        let data = encode_keys(&keys.iter().collect::<Vec<_>>());
        assert_eq!(decode_keys(&data).unwrap(), keys);
        for bad in [&[200u8][..], &[0, 5, b'a'], &[0, 2, 0xff, 0xfe]] {
            assert!(matches!(decode_keys(bad), Err(StoreError::Corrupt(_))));
        }
    }

    #[test]
    fn values_round_trip_at_the_quantum() {
        let series = vec![
            (key(Figure::CpuUsage, ""), Triple::new(1.25, 42.5, 99.99)),
            (key(Figure::NetRxErrors, "eth0"), Triple::new(0.0, 0.0, 0.0)),
            (
                key(Figure::MemoryUsed, ""),
                Triple::new(1024.0, 2048.0, 1e12),
            ),
            (key(Figure::Temp, "t"), Triple::new(-5.5, -5.5, -5.5)),
            (
                key(Figure::DiskWriteRate, "vda"),
                Triple::new(0.4, 1e20, 1e300),
            ),
        ];
        let data = encode_values(&series);
        let keys: Vec<SeriesKey> = series.iter().map(|(k, _)| k.clone()).collect();
        let back = decode_values(&keys, &data).unwrap();
        assert_eq!(back[0], Triple::new(1.25, 42.5, 99.99));
        assert_eq!(back[1], Triple::new(0.0, 0.0, 0.0));
        assert_eq!(back[2], Triple::new(1024.0, 2048.0, 1e12));
        assert_eq!(back[3], Triple::new(-5.5, -5.5, -5.5));
        // Saturated at 2^53 quanta, never wrapped.
        assert_eq!(back[4].max, MAX_QUANTA);
        assert_eq!(back[4].min, 0.0);
        // Zero and flat series cost one byte.
        assert_eq!(encode_values(&series[1..2]).len(), 1);
        assert_eq!(
            stored_form(Figure::CpuUsage, Triple::new(1.234, 50.0, 49.0)),
            Triple::new(1.23, 50.0, 50.0),
            "rounded, and max never below avg"
        );
        assert!(matches!(
            decode_values(&keys, &data[..data.len() - 1]),
            Err(StoreError::Corrupt(_))
        ));
        let mut longer = data.clone();
        longer.push(0);
        assert!(decode_values(&keys, &longer).is_err());
    }
}
