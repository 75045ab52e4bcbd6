//! The stored form of a series row: a dictionary (the row's series keys, shared by every row
//! with the same keys) and a value blob.
//!
//! Dictionary: the layout mark [`LAYOUT_2`], then per key the figure id (1 byte), the device's
//! length (varint) and bytes. Dictionaries written before the mark existed start straight with
//! a figure id (ids are below 32) and their rows read with layout 1, so old rows stay readable
//! without a migration.
//!
//! Values: a form byte; with [`FORM_ZERO_MAP`], a bit map of the series that are all zero
//! (every error and drop counter on a healthy node, swap, most PSI: stored as nothing), taken
//! when it is shorter than the byte each of them would cost. Then per key in dictionary order
//! (but those zero series), min, avg and max as integer codes (see [`code_of`]): one varint
//! `head(min) << 1 | spread`, then, when `spread` is 1, `avg - min` and `max - avg` (of the
//! codes) as varints. `head` is the code itself for figures that cannot be negative and
//! its zigzag form for the others (temperatures). A series that stayed put over the row costs
//! one or two bytes.
//!
//! Layout 1 has no form byte and differs in the codes: every head zigzag'd, no significant-bit limit, bytes in
//! KiB and hundredths of a degree.

use std::ops::Range;

use integer_encoding::VarInt;

use super::{Figure, SeriesKey, Triple};
use crate::error::{StoreError, StoreResult};

/// Longest device name kept, bytes.
pub const MAX_DEVICE_BYTES: usize = 256;
/// Most series in one row.
pub const MAX_SERIES_PER_ROW: usize = 16_384;
/// Largest magnitude of a stored value, in quanta (2^53: integers exact in an f64).
const MAX_QUANTA: f64 = 9_007_199_254_740_992.0;
const MAX_QUANTA_INT: u64 = 1 << 53;
/// First byte of a layout 2 dictionary (never a figure id).
const LAYOUT_2: u8 = 0xFF;
/// First byte of layout 2 values: every series follows.
const FORM_PLAIN: u8 = 0;
/// First byte of layout 2 values: a bit per series (series `i` in bit `i % 8` of byte `i / 8`),
/// set for a series whose min, avg and max are all 0, which are left out of what follows.
const FORM_ZERO_MAP: u8 = 1;
/// Significant bits a rate keeps ([`Figure::significant_bits`]).
const RATE_BITS: u32 = 10;

/// How a row's values are laid out, as its dictionary says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Before the layout mark: zigzag heads, exact quanta, temperatures in hundredths.
    V1,
    /// Current.
    V2,
}

/// A decoded dictionary: the layout of the rows that use it and their keys, sorted.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Dictionary {
    pub(crate) layout: Layout,
    pub(crate) keys: Vec<SeriesKey>,
}

impl Dictionary {
    /// The indexes of the keys of `figure` (all figures when `None`) and, with `device`, of
    /// that device: one range, the keys being sorted by figure then device.
    pub(crate) fn range_of(&self, figure: Option<Figure>, device: Option<&str>) -> Range<usize> {
        let Some(figure) = figure else {
            return 0..self.keys.len();
        };
        let keys = &self.keys;
        let start = keys.partition_point(|k| match device {
            None => k.figure < figure,
            Some(d) => (k.figure, k.device.as_str()) < (figure, d),
        });
        let end = start
            + keys[start..]
                .partition_point(|k| k.figure == figure && device.is_none_or(|d| k.device == d));
        start..end
    }
}

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

/// Steps over one varint without decoding it.
fn skip_varint(data: &[u8], pos: &mut usize) -> StoreResult<()> {
    let rest = data.get(*pos..).unwrap_or_default();
    let len = rest
        .iter()
        .take(10)
        .position(|b| b & 0x80 == 0)
        .ok_or_else(|| corrupt("truncated varint"))?;
    *pos += len + 1;
    Ok(())
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("stored series row: {what}"))
}

/// Encodes a row's keys (sorted, unique, checked by the caller) as a layout 2 dictionary.
pub(crate) fn encode_keys(keys: &[&SeriesKey]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + keys.len() * 8);
    out.push(LAYOUT_2);
    for k in keys {
        out.push(k.figure.id());
        push_varint(&mut out, k.device.len() as u64);
        out.extend_from_slice(k.device.as_bytes());
    }
    out
}

/// Decodes a dictionary stored by [`encode_keys`] (or by layout 1, without the mark).
pub(crate) fn decode_keys(data: &[u8]) -> StoreResult<Dictionary> {
    let (layout, mut pos) = match data.first() {
        Some(&LAYOUT_2) => (Layout::V2, 1),
        _ => (Layout::V1, 0),
    };
    let mut keys = Vec::new();
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
        keys.push(SeriesKey { figure, device });
    }
    Ok(Dictionary { layout, keys })
}

/// How a figure's values map to integers under a layout: `value / quantum`, rounded.
fn scale(layout: Layout, figure: Figure) -> f64 {
    match layout {
        // Layout 1: KiB, bytes per second, and hundredths of everything else.
        Layout::V1 => match figure.unit() {
            "B" => 1.0 / 1024.0,
            "B/s" => 1.0,
            _ => 100.0,
        },
        Layout::V2 => 1.0 / figure.quantum(),
    }
}

fn quantize(v: f64, scale: f64) -> i64 {
    // Rounded, saturated to ±2^53 quanta (finite values are checked before).
    (v * scale).round().clamp(-MAX_QUANTA, MAX_QUANTA) as i64
}

fn dequantize(q: i64, scale: f64) -> f64 {
    // Dividing by the exact scale (100, 10, 1, or 1/1024) gives the nearest f64 to the decimal.
    q as f64 / scale
}

fn zigzag(q: i64) -> u64 {
    ((q << 1) ^ (q >> 63)) as u64
}

fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

/// A non-negative count of quanta kept to [`RATE_BITS`] significant bits, as a code that grows
/// with the value: below 2^10 the count itself, above it `e * 2^9 + mantissa` with the
/// mantissa in `[2^9, 2^10)` and the count `mantissa << e` (rounded to nearest).
fn rate_code(q: u64) -> u64 {
    let bits = u64::BITS - q.leading_zeros();
    if bits <= RATE_BITS {
        return q;
    }
    let mut e = bits - RATE_BITS;
    let mut mantissa = (q + (1 << (e - 1))) >> e;
    if mantissa == 1 << RATE_BITS {
        mantissa >>= 1;
        e += 1;
    }
    (u64::from(e) << (RATE_BITS - 1)) + mantissa
}

/// The count of quanta of a [`rate_code`]; `None` past 2^53.
fn rate_count(code: u64) -> Option<u64> {
    if code < 1 << RATE_BITS {
        return Some(code);
    }
    let e = (code >> (RATE_BITS - 1)) - 1;
    let mantissa = code - (e << (RATE_BITS - 1));
    (e <= 53)
        .then(|| mantissa << e)
        .filter(|&q| q <= MAX_QUANTA_INT)
}

/// The layout 2 code of a value: its count of quanta ([`Figure::quantum`]), at 0 for a figure
/// that cannot be negative, kept to the figure's significant bits.
fn code_of(figure: Figure, v: f64) -> i64 {
    let q = quantize(v, scale(Layout::V2, figure));
    if figure.can_be_negative() {
        q
    } else if figure.significant_bits().is_some() {
        // Non-negative and at most 2^53 quanta, so the code fits an i64.
        rate_code(q.max(0).unsigned_abs()) as i64
    } else {
        q.max(0)
    }
}

/// The value of a layout `layout` code; `None` when out of range (a corrupt row).
fn value_of(layout: Layout, figure: Figure, code: i64) -> Option<f64> {
    let q = match layout {
        Layout::V2 if figure.significant_bits().is_some() => {
            i64::try_from(rate_count(u64::try_from(code).ok()?)?).ok()?
        }
        _ => code,
    };
    (q.unsigned_abs() <= MAX_QUANTA_INT).then(|| dequantize(q, scale(layout, figure)))
}

/// A triple's codes, ordered (min <= avg <= max).
fn codes(figure: Figure, t: Triple) -> (i64, i64, i64) {
    let min = code_of(figure, t.min);
    let avg = code_of(figure, t.avg).max(min);
    let max = code_of(figure, t.max).max(avg);
    (min, avg, max)
}

/// Whether a layout writes the head of `figure` zigzag'd.
fn signed_head(layout: Layout, figure: Figure) -> bool {
    layout == Layout::V1 || figure.can_be_negative()
}

/// Encodes the values of a row (layout 2), in the order of its keys.
pub(crate) fn encode_values(series: &[(SeriesKey, Triple)]) -> Vec<u8> {
    let all_codes: Vec<(i64, i64, i64)> = series.iter().map(|(k, t)| codes(k.figure, *t)).collect();
    let zeros = all_codes.iter().filter(|c| **c == (0, 0, 0)).count();
    let map_len = series.len().div_ceil(8);
    // A zero series costs a byte plainly, nothing with the map: take the map when it pays.
    let with_map = zeros > map_len;
    let mut out = Vec::with_capacity(1 + map_len + series.len() * 4);
    out.push(if with_map { FORM_ZERO_MAP } else { FORM_PLAIN });
    if with_map {
        let mut map = vec![0u8; map_len];
        for (i, c) in all_codes.iter().enumerate() {
            if *c == (0, 0, 0) {
                map[i / 8] |= 1 << (i % 8);
            }
        }
        out.extend_from_slice(&map);
    }
    for ((key, _), &(min, avg, max)) in series.iter().zip(&all_codes) {
        if with_map && (min, avg, max) == (0, 0, 0) {
            continue;
        }
        let spread = min != avg || avg != max;
        let head = if signed_head(Layout::V2, key.figure) {
            zigzag(min)
        } else {
            min.unsigned_abs()
        };
        push_varint(&mut out, (head << 1) | u64::from(spread));
        if spread {
            push_varint(&mut out, (avg - min).unsigned_abs());
            push_varint(&mut out, (max - avg).unsigned_abs());
        }
    }
    out
}

/// Decodes the values of the keys `wanted` (indexes into `dict.keys`) from a row's blob,
/// appending them to `out`: the series before them are stepped over without being decoded,
/// the ones after are not read.
pub(crate) fn decode_values(
    dict: &Dictionary,
    data: &[u8],
    wanted: Range<usize>,
    out: &mut Vec<(SeriesKey, Triple)>,
) -> StoreResult<()> {
    let n = dict.keys.len();
    // Layout 2 starts with its form: plain, or a map of the series that are all zero (stored
    // as nothing).
    let (zero_map, mut pos): (&[u8], usize) = match dict.layout {
        Layout::V1 => (&[], 0),
        Layout::V2 => match data.first() {
            Some(&FORM_PLAIN) => (&[], 1),
            Some(&FORM_ZERO_MAP) => {
                let map = data
                    .get(1..1 + n.div_ceil(8))
                    .ok_or_else(|| corrupt("truncated zero map"))?;
                (map, 1 + map.len())
            }
            _ => return Err(corrupt("unknown form")),
        },
    };
    let is_zero = |i: usize| zero_map.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0);
    for i in 0..wanted.start.min(n) {
        if is_zero(i) {
            continue;
        }
        let spread = data.get(pos).ok_or_else(|| corrupt("truncated varint"))? & 1 == 1;
        skip_varint(data, &mut pos)?;
        if spread {
            skip_varint(data, &mut pos)?;
            skip_varint(data, &mut pos)?;
        }
    }
    let keys = dict.keys.get(wanted.clone()).unwrap_or_default();
    let out_of_range = || corrupt("value out of range");
    for (i, key) in wanted.clone().zip(keys) {
        let f = key.figure;
        if is_zero(i) {
            let zero = value_of(dict.layout, f, 0).ok_or_else(out_of_range)?;
            out.push((key.clone(), Triple::one(zero)));
            continue;
        }
        let head = read_varint(data, &mut pos)?;
        let min = if signed_head(dict.layout, f) {
            unzigzag(head >> 1)
        } else {
            i64::try_from(head >> 1).map_err(|_| out_of_range())?
        };
        let (avg, max) = if head & 1 == 1 {
            let up = |from: i64, pos: &mut usize| -> StoreResult<i64> {
                let d = i64::try_from(read_varint(data, pos)?).map_err(|_| out_of_range())?;
                from.checked_add(d).ok_or_else(out_of_range)
            };
            let avg = up(min, &mut pos)?;
            (avg, up(avg, &mut pos)?)
        } else {
            (min, min)
        };
        let value = |code| value_of(dict.layout, f, code).ok_or_else(out_of_range);
        out.push((
            key.clone(),
            Triple::new(value(min)?, value(avg)?, value(max)?),
        ));
    }
    if wanted.end >= dict.keys.len() && pos != data.len() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(())
}

/// A triple as it reads back after storage: rounded to the figure's quantum and significant
/// bits, at 0 when a figure that cannot be negative came in below it, `min <= avg <= max`,
/// saturated at 2^53 quanta.
pub fn stored_form(figure: Figure, t: Triple) -> Triple {
    let (min, avg, max) = codes(figure, t);
    let value = |code| value_of(Layout::V2, figure, code).unwrap_or(MAX_QUANTA);
    Triple::new(value(min), value(avg), value(max))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(f: Figure, d: &str) -> SeriesKey {
        SeriesKey::device(f, d)
    }

    fn decode_all(dict: &Dictionary, data: &[u8]) -> StoreResult<Vec<Triple>> {
        let mut out = Vec::new();
        decode_values(dict, data, 0..dict.keys.len(), &mut out)?;
        Ok(out.into_iter().map(|(_, t)| t).collect())
    }

    fn dict_of(series: &[(SeriesKey, Triple)]) -> Dictionary {
        Dictionary {
            layout: Layout::V2,
            keys: series.iter().map(|(k, _)| k.clone()).collect(),
        }
    }

    #[test]
    fn keys_round_trip() {
        let keys = [key(Figure::CpuUsage, ""), key(Figure::Temp, "Tctl °")];
        let data = encode_keys(&keys.iter().collect::<Vec<_>>());
        assert_eq!(data[0], LAYOUT_2);
        let dict = decode_keys(&data).unwrap();
        assert_eq!((dict.layout, &dict.keys[..]), (Layout::V2, &keys[..]));
        // Layout 1: no mark.
        let old = decode_keys(&data[1..]).unwrap();
        assert_eq!((old.layout, &old.keys[..]), (Layout::V1, &keys[..]));
        for bad in [
            &[200u8][..],
            &[0, 5, b'a'],
            &[0, 2, 0xff, 0xfe],
            &[0xff, 40],
        ] {
            assert!(matches!(decode_keys(bad), Err(StoreError::Corrupt(_))));
        }
    }

    #[test]
    fn rate_codes_keep_ten_significant_bits_and_grow_with_the_value() {
        for f in Figure::ALL {
            let rate = matches!(f.unit(), "B/s" | "ops/s" | "/s");
            assert_eq!(f.significant_bits(), rate.then_some(RATE_BITS), "{f}");
        }
        let mut last = 0;
        for q in (0..5000).chain([1 << 20, (1 << 53) - 1, 1 << 53]) {
            let code = rate_code(q);
            assert!(code >= last, "monotonic at {q}");
            last = code;
            let back = rate_count(code).unwrap();
            let err = back.abs_diff(q) as f64;
            assert!(err <= q as f64 / 1024.0 + 0.5, "{q} -> {back}");
            assert_eq!(rate_code(back), code, "a stored count encodes to itself");
        }
        assert_eq!(rate_code(1023), 1023, "exact below 2^10");
        assert_eq!(rate_count(1024), Some(1024));
        assert_eq!(rate_count(rate_code(2047)), Some(2048));
        assert_eq!(rate_count(u64::MAX >> 1), None, "corrupt codes are refused");
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
            (
                key(Figure::NetTxRate, "eth0"),
                Triple::new(1234.0, 2_000_000.0, 123_456_789.0),
            ),
        ];
        let data = encode_values(&series);
        let dict = dict_of(&series);
        let back = decode_all(&dict, &data).unwrap();
        assert_eq!(back[0], Triple::new(1.25, 42.5, 99.99));
        assert_eq!(back[1], Triple::new(0.0, 0.0, 0.0));
        // Pages of 4 KiB: 1 KiB rounds down, 2 KiB up; 1e12 B is 244,140,625 pages, exact.
        assert_eq!(back[2], Triple::new(0.0, 4096.0, 1e12));
        assert_eq!(back[3], Triple::new(-5.5, -5.5, -5.5));
        // Saturated at 2^53 quanta, never wrapped.
        assert_eq!(back[4].max, MAX_QUANTA);
        assert_eq!(back[4].min, 0.0);
        // Rates: exact below 1024, then 10 significant bits (1234 is 617 x 2).
        assert_eq!(back[5], Triple::new(1234.0, 2_000_896.0, 123_469_824.0));
        for (i, (k, t)) in series.iter().enumerate() {
            assert_eq!(stored_form(k.figure, *t), back[i], "stored_form of {k:?}");
        }
        // A zero series costs its head byte plainly (after the form byte); several cost a bit
        // each in the zero map.
        assert_eq!(encode_values(&series[1..2]), [FORM_PLAIN, 0]);
        let zeros: Vec<(SeriesKey, Triple)> = (0..12)
            .map(|i| {
                (
                    key(Figure::NetTxDrops, &format!("eth{i:02}")),
                    Triple::one(0.0),
                )
            })
            .chain([(key(Figure::Temp, "t"), Triple::one(-1.0))])
            .collect();
        let data = encode_values(&zeros);
        assert_eq!(data, [FORM_ZERO_MAP, 0xff, 0x0f, zigzag(-10) as u8 * 2]);
        let dict_z = dict_of(&zeros);
        let back_z = decode_all(&dict_z, &data).unwrap();
        assert!(back_z[..12].iter().all(|t| *t == Triple::one(0.0)));
        assert_eq!(back_z[12], Triple::one(-1.0));
        let mut one = Vec::new();
        decode_values(&dict_z, &data, 12..13, &mut one).unwrap();
        assert_eq!(one[0].1, Triple::one(-1.0));
        assert!(decode_all(&dict_z, &data[..2]).is_err(), "cut zero map");
        assert!(decode_all(&dict_z, &[9]).is_err(), "unknown form");
        assert_eq!(
            stored_form(Figure::CpuUsage, Triple::new(1.234, 50.0, 49.0)),
            Triple::new(1.23, 50.0, 50.0),
            "rounded, and max never below avg"
        );
        assert_eq!(
            stored_form(Figure::Temp, Triple::new(40.04, 40.06, 40.16)),
            Triple::new(40.0, 40.1, 40.2),
            "tenths of a degree"
        );
        assert_eq!(
            stored_form(Figure::Load1, Triple::new(-1.0, 0.5, 1.0)),
            Triple::new(0.0, 0.5, 1.0),
            "a figure that cannot be negative is kept at 0"
        );
        assert!(matches!(
            decode_all(&dict, &data[..data.len() - 1]),
            Err(StoreError::Corrupt(_))
        ));
        let mut longer = data.clone();
        longer.push(0);
        assert!(decode_all(&dict, &longer).is_err());
    }

    #[test]
    fn wanted_series_are_decoded_alone() {
        let mut series: Vec<(SeriesKey, Triple)> = ["vda", "vdb", "vdc"]
            .into_iter()
            .flat_map(|d| {
                [
                    (key(Figure::DiskReadRate, d), Triple::new(1.0, 2.0, 3e6)),
                    (key(Figure::DiskWriteRate, d), Triple::one(7.0)),
                ]
            })
            .collect();
        series.push((key(Figure::Temp, "t"), Triple::new(-3.0, 1.0, 2.0)));
        series.sort_by(|a, b| a.0.cmp(&b.0));
        let data = encode_values(&series);
        let dict = dict_of(&series);
        let all = decode_all(&dict, &data).unwrap();
        let pick = |figure, device| {
            let range = dict.range_of(Some(figure), device);
            let mut out = Vec::new();
            decode_values(&dict, &data, range, &mut out).unwrap();
            out
        };
        let got = pick(Figure::DiskWriteRate, Some("vdb"));
        assert_eq!(got, [(key(Figure::DiskWriteRate, "vdb"), all[4])]);
        let got = pick(Figure::DiskWriteRate, None);
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|(k, _)| k.figure == Figure::DiskWriteRate));
        assert_eq!(pick(Figure::Temp, Some("t"))[0].1, all[6]);
        assert!(pick(Figure::Temp, Some("zz")).is_empty());
        assert!(pick(Figure::CpuUsage, None).is_empty());
        // The series after the wanted ones are not read, so a cut blob still answers for the
        // first ones, and fails for the last.
        let cut = &data[..data.len() - 1];
        let mut out = Vec::new();
        decode_values(
            &dict,
            cut,
            dict.range_of(Some(Figure::DiskReadRate), None),
            &mut out,
        )
        .unwrap();
        assert!(
            decode_values(
                &dict,
                cut,
                dict.range_of(Some(Figure::Temp), None),
                &mut out
            )
            .is_err()
        );
    }

    #[test]
    fn layout_one_rows_still_read() {
        // Written by layout 1: CPU (1.25, 42.5, 99.99) and a temperature of -5.5 in hundredths.
        let dict = Dictionary {
            layout: Layout::V1,
            keys: vec![key(Figure::CpuUsage, ""), key(Figure::Temp, "t")],
        };
        let mut data = Vec::new();
        push_varint(&mut data, zigzag(125) << 1 | 1);
        push_varint(&mut data, 4250 - 125);
        push_varint(&mut data, 9999 - 4250);
        push_varint(&mut data, zigzag(-550) << 1);
        assert_eq!(
            decode_all(&dict, &data).unwrap(),
            [Triple::new(1.25, 42.5, 99.99), Triple::one(-5.5)]
        );
    }
}
