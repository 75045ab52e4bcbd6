//! Allocation-free number parsing shared by the parsers.

/// Parses a decimal `u64` without sign, whitespace or overflow; `None` otherwise.
#[inline]
pub(crate) fn parse_u64(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    Some(v)
}

/// Parses a decimal `i64` with an optional leading `-`.
#[inline]
pub(crate) fn parse_i64(s: &str) -> Option<i64> {
    if let Some(rest) = s.strip_prefix('-') {
        let v = parse_u64(rest)?;
        if v <= i64::MAX as u64 {
            Some(-(v as i64))
        } else if v == (i64::MAX as u64) + 1 {
            Some(i64::MIN)
        } else {
            None
        }
    } else {
        i64::try_from(parse_u64(s)?).ok()
    }
}

/// Parses a finite `f64` (the kernel only prints plain decimals).
#[inline]
pub(crate) fn parse_f64(s: &str) -> Option<f64> {
    let v: f64 = s.parse().ok()?;
    v.is_finite().then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u64_accepts_plain_digits_only() {
        assert_eq!(parse_u64("0"), Some(0));
        assert_eq!(parse_u64("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64("18446744073709551616"), None);
        assert_eq!(parse_u64(""), None);
        assert_eq!(parse_u64("-1"), None);
        assert_eq!(parse_u64("1a"), None);
        assert_eq!(parse_u64(" 1"), None);
    }

    #[test]
    fn i64_and_f64() {
        assert_eq!(parse_i64("-1"), Some(-1));
        assert_eq!(parse_i64("42"), Some(42));
        assert_eq!(parse_i64("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64("9223372036854775808"), None);
        assert_eq!(parse_f64("19.68"), Some(19.68));
        assert_eq!(parse_f64("inf"), None);
        assert_eq!(parse_f64("x"), None);
    }
}
