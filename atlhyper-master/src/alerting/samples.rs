//! Recent values of predicted series (the `predict` kind), kept per node: a node's series are
//! found beside its other state, without a lookup in one map of every series of every node.

use std::collections::VecDeque;

/// Recent values of one predicted series.
#[derive(Debug)]
pub(super) struct Samples {
    /// (Unix seconds, value), oldest first, one per lookback / 60.
    pub(super) points: VecDeque<(f64, f64)>,
    /// Times of the oldest and newest point (+inf and -inf without points), kept beside the
    /// points so an evaluation with no sample due and no prediction to make reads no point
    /// (tens of thousands of series per evaluation: the points are a cache miss each).
    oldest: f64,
    newest: f64,
    /// Whether stored history was loaded into it (or there is none to load).
    pub(super) seeded: bool,
    /// Last pass that used it (series not used for a while are dropped).
    pub(super) used: u64,
}

impl Default for Samples {
    fn default() -> Self {
        Self {
            points: VecDeque::new(),
            oldest: f64::INFINITY,
            newest: f64::NEG_INFINITY,
            seeded: false,
            used: 0,
        }
    }
}

impl Samples {
    /// Appends `(at, value)` when the newest point is `spacing` old or there is none.
    pub(super) fn push_if_due(&mut self, at: f64, value: f64, spacing: f64) {
        if at - self.newest >= spacing {
            self.points.push_back((at, value));
            self.newest = at;
            if self.points.len() == 1 {
                self.oldest = at;
            }
        }
    }

    /// Drops the points older than `since`.
    pub(super) fn drop_before(&mut self, since: f64) {
        if self.oldest >= since {
            return;
        }
        while self.points.front().is_some_and(|first| first.0 < since) {
            self.points.pop_front();
        }
        self.oldest = self.points.front().map_or(f64::INFINITY, |p| p.0);
        self.newest = self.points.back().map_or(f64::NEG_INFINITY, |p| p.0);
    }

    /// Puts `points` (oldest first) that are older than every point in front.
    pub(super) fn push_older(&mut self, points: &[(f64, f64)]) {
        let first = self.oldest;
        for p in points.iter().rev().filter(|p| p.0 < first) {
            self.points.push_front(*p);
        }
        self.oldest = self.points.front().map_or(f64::INFINITY, |p| p.0);
        self.newest = self.points.back().map_or(f64::NEG_INFINITY, |p| p.0);
    }
}

#[cfg(test)]
mod tests {
    use super::Samples;

    /// The inline oldest/newest times agree with the points through pushes, drops and seeds.
    fn consistent(s: &Samples) {
        assert_eq!(s.oldest, s.points.front().map_or(f64::INFINITY, |p| p.0));
        assert_eq!(s.newest, s.points.back().map_or(f64::NEG_INFINITY, |p| p.0));
    }

    #[test]
    fn bounds_follow_the_points() {
        let mut s = Samples::default();
        consistent(&s);
        s.push_if_due(100.0, 1.0, 10.0);
        s.push_if_due(105.0, 2.0, 10.0);
        assert_eq!(s.points.len(), 1, "not due 5 s after the last point");
        s.push_if_due(110.0, 3.0, 10.0);
        assert_eq!(s.points.len(), 2);
        consistent(&s);
        s.push_older(&[(80.0, 0.0), (90.0, 0.5), (100.0, 9.0)]);
        assert_eq!(
            s.points.iter().map(|p| p.0).collect::<Vec<_>>(),
            [80.0, 90.0, 100.0, 110.0],
            "only points older than the first are put in front"
        );
        consistent(&s);
        s.drop_before(95.0);
        assert_eq!(s.points.len(), 2);
        consistent(&s);
        s.drop_before(1000.0);
        assert!(s.points.is_empty());
        consistent(&s);
        s.push_if_due(1000.0, 1.0, 10.0);
        consistent(&s);
        let mut empty = Samples::default();
        empty.push_older(&[(1.0, 1.0), (2.0, 2.0)]);
        consistent(&empty);
    }
}
