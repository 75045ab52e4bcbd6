//! Linear prediction over a series, as Prometheus' `predict_linear`: least squares over the
//! samples, the line's value `ahead` seconds after `now`.

/// The value the least-squares line through `samples` (seconds, value) reaches at `at` seconds.
/// `None` with fewer than two samples or when every sample has the same time.
pub fn predict_linear(samples: &[(f64, f64)], at: f64) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let n = samples.len() as f64;
    // Centre times on their mean: the sums stay small with Unix-time magnitudes.
    let mean_t = samples.iter().map(|s| s.0).sum::<f64>() / n;
    let mean_v = samples.iter().map(|s| s.1).sum::<f64>() / n;
    let (mut stt, mut stv) = (0.0, 0.0);
    for &(t, v) in samples {
        let dt = t - mean_t;
        stt += dt * dt;
        stv += dt * (v - mean_v);
    }
    if stt == 0.0 {
        return None;
    }
    let slope = stv / stt;
    let predicted = mean_v + slope * (at - mean_t);
    predicted.is_finite().then_some(predicted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_straight_line_is_extrapolated_exactly() {
        // 1 % per hour from 50 % over six hours: 24 hours on, 80 %.
        let start = 1_700_000_000.0;
        let samples: Vec<(f64, f64)> = (0..=6)
            .map(|h| (start + f64::from(h) * 3600.0, 50.0 + f64::from(h)))
            .collect();
        let now = start + 6.0 * 3600.0;
        let p = predict_linear(&samples, now + 24.0 * 3600.0).unwrap();
        assert!((p - 80.0).abs() < 1e-6, "{p}");
    }

    #[test]
    fn noise_is_averaged_out() {
        // y = 2t + 1 with alternating ±1 noise: least squares gives the line back.
        let samples: Vec<(f64, f64)> = (0..100)
            .map(|i| {
                let t = f64::from(i);
                (t, 2.0 * t + 1.0 + if i % 2 == 0 { 1.0 } else { -1.0 })
            })
            .collect();
        let p = predict_linear(&samples, 200.0).unwrap();
        assert!((p - 401.0).abs() < 0.1, "{p}");
    }

    #[test]
    fn too_few_or_simultaneous_samples_predict_nothing() {
        assert_eq!(predict_linear(&[], 1.0), None);
        assert_eq!(predict_linear(&[(1.0, 5.0)], 2.0), None);
        assert_eq!(predict_linear(&[(1.0, 5.0), (1.0, 6.0)], 2.0), None);
        assert_eq!(
            predict_linear(&[(0.0, 5.0), (10.0, 5.0)], 1e6),
            Some(5.0),
            "flat"
        );
    }
}
