//! Exponential backoff with jitter, capped.

use std::time::Duration;

/// Delays between retries: doubling from `base` up to `max`, with "equal jitter" (each delay is
/// drawn uniformly from the upper half of the current step), so that many nodes retrying against
/// one agent spread out instead of arriving together.
///
/// ```
/// use std::time::Duration;
/// use atlhyper_agent::Backoff;
///
/// let mut b = Backoff::with_seed(Duration::from_millis(100), Duration::from_secs(1), 7);
/// let first = b.next_delay();
/// assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
/// for _ in 0..20 {
///     assert!(b.next_delay() <= Duration::from_secs(1));
/// }
/// b.reset();
/// assert_eq!(b.attempts(), 0);
/// ```
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempts: u32,
    rng: fastrand::Rng,
}

impl Backoff {
    /// Backoff from `base` doubling to at most `max`, seeded from the OS.
    pub fn new(base: Duration, max: Duration) -> Self {
        Self::from_rng(base, max, fastrand::Rng::new())
    }

    /// Backoff with a fixed jitter seed (deterministic, for tests).
    pub fn with_seed(base: Duration, max: Duration, seed: u64) -> Self {
        Self::from_rng(base, max, fastrand::Rng::with_seed(seed))
    }

    fn from_rng(base: Duration, max: Duration, rng: fastrand::Rng) -> Self {
        let base = base.max(Duration::from_millis(1));
        Self {
            base,
            max: max.max(base),
            attempts: 0,
            rng,
        }
    }

    /// The upper bound of the next delay: `base * 2^attempts`, capped at `max`.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempts.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// The delay before the next retry; counts one more failed attempt.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempts = self.attempts.saturating_add(1);
        let half = ceiling / 2;
        let spread = u64::try_from((ceiling - half).as_micros()).unwrap_or(u64::MAX);
        half + Duration::from_micros(self.rng.u64(0..=spread))
    }

    /// Failed attempts since the last success.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Back to the first step (after a success).
    pub fn reset(&mut self) {
        self.attempts = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_within_jitter_bounds_and_stop_at_the_cap() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(5);
        for seed in 0..50 {
            let mut b = Backoff::with_seed(base, max, seed);
            let mut ceiling = base;
            for _ in 0..12 {
                let d = b.next_delay();
                assert!(
                    d >= ceiling / 2 && d <= ceiling,
                    "{d:?} outside {ceiling:?}"
                );
                ceiling = (ceiling * 2).min(max);
            }
            assert_eq!(b.ceiling(), max);
        }
    }

    #[test]
    fn reset_starts_over() {
        let mut b = Backoff::with_seed(Duration::from_secs(1), Duration::from_secs(60), 1);
        for _ in 0..10 {
            b.next_delay();
        }
        assert_eq!(b.ceiling(), Duration::from_secs(60));
        b.reset();
        assert!(b.next_delay() <= Duration::from_secs(1));
    }

    #[test]
    fn jitter_spreads_delays() {
        let mut a = Backoff::with_seed(Duration::from_secs(8), Duration::from_secs(8), 1);
        let delays: std::collections::HashSet<Duration> = (0..20).map(|_| a.next_delay()).collect();
        assert!(delays.len() > 10);
    }

    #[test]
    fn huge_attempt_counts_do_not_overflow() {
        let mut b = Backoff::with_seed(Duration::from_secs(1), Duration::from_secs(30), 3);
        b.attempts = u32::MAX - 1;
        assert!(b.next_delay() <= Duration::from_secs(30));
        assert!(b.next_delay() <= Duration::from_secs(30));
    }
}
