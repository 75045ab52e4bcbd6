//! Timestamps as the engines store them: `i64` nanoseconds since the Unix epoch, which keeps every
//! `DateTime<Utc>` the wire can carry exact (years 1677 to 2262) in 8 bytes.

use chrono::{DateTime, Utc};

use crate::error::{StoreError, StoreResult};

/// Nanoseconds since the epoch, or `Invalid` naming `what` when out of the storable range.
pub(crate) fn to_ns(at: DateTime<Utc>, what: &str) -> StoreResult<i64> {
    at.timestamp_nanos_opt().ok_or_else(|| {
        StoreError::Invalid(format!(
            "{what} {at} is outside the storable range (years 1677 to 2262)"
        ))
    })
}

/// Nanoseconds since the epoch, clamped to the storable range (for query bounds).
pub(crate) fn to_ns_clamped(at: DateTime<Utc>) -> i64 {
    let n = nanos128(at);
    n.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// Nanoseconds since the epoch, without any range limit (for comparisons).
pub(crate) fn nanos128(at: DateTime<Utc>) -> i128 {
    i128::from(at.timestamp()) * 1_000_000_000 + i128::from(at.timestamp_subsec_nanos())
}

/// The instant `ns` nanoseconds after the epoch.
pub(crate) fn from_ns(ns: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(ns)
}

/// `d` in nanoseconds, saturated to `i64::MAX`.
pub(crate) fn duration_ns(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_nanoseconds() {
        let at = DateTime::parse_from_rfc3339("2024-01-20T10:30:00.123456789Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(from_ns(to_ns(at, "t").unwrap()), at);
    }

    #[test]
    fn out_of_range_is_invalid_or_clamped() {
        let far = DateTime::<Utc>::MAX_UTC;
        assert!(matches!(to_ns(far, "t"), Err(StoreError::Invalid(_))));
        assert_eq!(to_ns_clamped(far), i64::MAX);
        assert_eq!(to_ns_clamped(DateTime::<Utc>::MIN_UTC), i64::MIN);
    }
}
