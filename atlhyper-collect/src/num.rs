//! Allocation-free number parsing shared by the parsers.

/// Parses a decimal `u64` without sign, whitespace or overflow; `None` otherwise.
#[inline]
pub(crate) fn parse_u64(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for (i, &c) in b.iter().enumerate() {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = if i < 19 {
            // 19 digits never overflow a u64.
            v * 10 + u64::from(d)
        } else {
            v.checked_mul(10)?.checked_add(u64::from(d))?
        };
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

/// Parses a finite `f64`. Plain decimals (`123.45`, what the kernel prints) take a fast exact
/// path: the digits as one integer divided by a power of ten, a single correctly rounded
/// operation, so the result equals `str::parse`. Anything else goes through `str::parse`.
#[inline]
pub(crate) fn parse_f64(s: &str) -> Option<f64> {
    const POW10: [f64; 19] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18,
    ];
    let b = s.as_bytes();
    if !b.is_empty() && b.len() <= 16 {
        let mut mant: u64 = 0;
        let mut i = 0;
        while i < b.len() && b[i].is_ascii_digit() {
            mant = mant * 10 + u64::from(b[i] - b'0');
            i += 1;
        }
        let int_digits = i;
        let mut frac = 0;
        if i < b.len() && b[i] == b'.' {
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                mant = mant * 10 + u64::from(b[i] - b'0');
                i += 1;
                frac += 1;
            }
        }
        // At most 16 digits: the mantissa is below 2^53, so it converts to f64 exactly.
        if i == b.len() && int_digits + frac > 0 {
            return Some(mant as f64 / POW10[frac]);
        }
    }
    let v: f64 = s.parse().ok()?;
    v.is_finite().then_some(v)
}

/// A cursor over whitespace-separated ASCII words that parses numbers in the same pass (no second
/// scan as with `split_ascii_whitespace` + `parse`).
#[derive(Debug, Clone)]
pub(crate) struct Words<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Words<'a> {
    #[inline]
    pub(crate) fn new(s: &'a str) -> Self {
        Self { s, i: 0 }
    }

    #[inline]
    fn skip_ws(&mut self) {
        let b = self.s.as_bytes();
        while self.i < b.len() && b[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    /// The text not consumed yet.
    #[inline]
    pub(crate) fn rest(&self) -> &'a str {
        self.s.get(self.i..).unwrap_or_default()
    }

    /// The next word, or `None` at the end.
    #[inline]
    pub(crate) fn word(&mut self) -> Option<&'a str> {
        self.skip_ws();
        let b = self.s.as_bytes();
        let start = self.i;
        while self.i < b.len() && !b[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
        // Word boundaries are ASCII bytes, so `get` always succeeds; it just cannot panic.
        if self.i > start {
            self.s.get(start..self.i)
        } else {
            None
        }
    }

    /// The next word as a `u64`: `None` at the end, `Some(None)` when the word is not a number.
    #[inline]
    pub(crate) fn u64(&mut self) -> Option<Option<u64>> {
        self.skip_ws();
        let b = self.s.as_bytes();
        if self.i >= b.len() {
            return None;
        }
        let start = self.i;
        let mut v: u64 = 0;
        let mut ok = true;
        // Digits first (one compare per byte), then check what ended them.
        while self.i < b.len() {
            let d = b[self.i].wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            if self.i - start < 19 {
                // 19 digits never overflow a u64.
                v = v * 10 + u64::from(d);
            } else {
                match v.checked_mul(10).and_then(|x| x.checked_add(u64::from(d))) {
                    Some(x) => v = x,
                    None => ok = false,
                }
            }
            self.i += 1;
        }
        if self.i < b.len() && !b[self.i].is_ascii_whitespace() {
            // Not a number: skip the rest of the word.
            ok = false;
            while self.i < b.len() && !b[self.i].is_ascii_whitespace() {
                self.i += 1;
            }
        }
        Some((ok && self.i > start).then_some(v))
    }
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
        for t in [
            "0.58",
            "3.55",
            "19.68",
            "350735.47",
            "1e3",
            "0",
            "100.00",
            "12345678901234.56",
            ".5",
            "5.",
        ] {
            assert_eq!(parse_f64(t), t.parse().ok(), "{t}");
        }
        assert_eq!(parse_f64("."), None);
        assert_eq!(parse_f64("1.2.3"), None);
    }

    #[test]
    fn words() {
        let mut w = Words::new("  12 ab\t3x 18446744073709551616 7\n");
        assert_eq!(w.u64(), Some(Some(12)));
        assert_eq!(w.word(), Some("ab"));
        assert_eq!(w.u64(), Some(None));
        assert_eq!(w.u64(), Some(None), "overflow");
        assert_eq!(w.u64(), Some(Some(7)));
        assert_eq!(w.u64(), None);
        assert_eq!(w.word(), None);
        let mut w = Words::new("12 rest of it");
        assert_eq!(w.u64(), Some(Some(12)));
        assert_eq!(w.rest(), " rest of it");
    }
}
