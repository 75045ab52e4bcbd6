//! The one Prometheus exposition writer of atlhyper-rs: text format 0.0.4, and OpenMetrics 1.0
//! when the scraper asks for it.
//!
//! Pure: it builds a `String`, so the master, the agent and the node daemon (and their tests)
//! share one set of rules: label values and help texts escaped, `NaN`/`+Inf`/`-Inf` spelled as
//! Prometheus reads them, `# HELP` and `# TYPE` once per family and only for families that have a
//! sample, and counters named as each format wants (`x_total` family in 0.0.4; family `x` with
//! samples `x_total` in OpenMetrics, which also ends with `# EOF`).
//!
//! ```
//! use atlhyper_model::{Exposition, ExpositionFormat, MetricKind};
//!
//! let mut out = Exposition::new(ExpositionFormat::Text);
//! out.family("jobs_total", MetricKind::Counter, "Jobs run.")
//!     .sample(&[("queue", "a\"b")], 3.0);
//! out.family("temperature_celsius", MetricKind::Gauge, "Reading.")
//!     .sample(&[], f64::NAN);
//! let text = out.finish();
//! assert!(text.contains("jobs_total{queue=\"a\\\"b\"} 3\n"));
//! assert!(text.contains("temperature_celsius NaN\n"));
//! ```

use std::collections::HashSet;
use std::fmt::Write as _;

/// Which exposition format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExpositionFormat {
    /// Prometheus text format 0.0.4 (the default).
    #[default]
    Text,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

impl ExpositionFormat {
    /// The format an `Accept` header asks for: OpenMetrics when `application/openmetrics-text`
    /// has a quality above zero and at least that of plain text (as Prometheus sends it),
    /// else text 0.0.4. A missing or unreadable header gives text.
    pub fn negotiate(accept: Option<&str>) -> Self {
        let Some(accept) = accept else {
            return Self::Text;
        };
        let (mut open_metrics, mut text) = (0.0_f64, 0.0_f64);
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f64>().ok())
                .filter(|q| q.is_finite())
                .unwrap_or(1.0)
                .clamp(0.0, 1.0);
            match media.as_str() {
                "application/openmetrics-text" => open_metrics = open_metrics.max(q),
                "text/plain" | "text/*" | "*/*" => text = text.max(q),
                _ => {}
            }
        }
        if open_metrics > 0.0 && open_metrics >= text {
            Self::OpenMetrics
        } else {
            Self::Text
        }
    }

    /// The `Content-Type` of a body in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Text => "text/plain; version=0.0.4; charset=utf-8",
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Only goes up (or resets to zero). Name it with `_total`.
    Counter,
    /// Any value.
    Gauge,
    /// Cumulative buckets with `_bucket{le}`, `_sum`, `_count`.
    Histogram,
    /// No declared type: node_exporter exposes raw kernel statistics this way (`node_netstat_*`,
    /// `node_vmstat_*`), and dashboards written for it expect the same type.
    Untyped,
}

impl MetricKind {
    fn as_str(self, format: ExpositionFormat) -> &'static str {
        match (self, format) {
            (Self::Counter, _) => "counter",
            (Self::Gauge, _) => "gauge",
            (Self::Histogram, _) => "histogram",
            (Self::Untyped, ExpositionFormat::Text) => "untyped",
            // OpenMetrics spells the same thing "unknown".
            (Self::Untyped, ExpositionFormat::OpenMetrics) => "unknown",
        }
    }
}

/// An exposition being written. Open families with [`Exposition::family`], end with
/// [`Exposition::finish`].
#[derive(Debug)]
pub struct Exposition {
    format: ExpositionFormat,
    out: String,
    /// Families whose header was written; a family must be contiguous, so one opened again is
    /// dropped (see [`Exposition::family`]).
    seen: HashSet<String>,
    /// Families opened more than once (a bug in the caller), for tests to check.
    repeated: Vec<String>,
}

impl Exposition {
    /// An empty exposition in `format`.
    pub fn new(format: ExpositionFormat) -> Self {
        Self::with_capacity(format, 4096)
    }

    /// An empty exposition with room for `bytes` of text.
    pub fn with_capacity(format: ExpositionFormat, bytes: usize) -> Self {
        Self {
            format,
            out: String::with_capacity(bytes),
            seen: HashSet::new(),
            repeated: Vec::new(),
        }
    }

    /// The format being written.
    pub fn format(&self) -> ExpositionFormat {
        self.format
    }

    /// Opens the family `name` (counters named with `_total`). Its `# HELP` and `# TYPE` lines
    /// are written with its first sample, so a family without samples leaves no trace. A name
    /// opened before is recorded in [`Exposition::repeated`] and its samples are dropped: the
    /// formats require one contiguous block per family.
    pub fn family<'a>(&'a mut self, name: &'a str, kind: MetricKind, help: &'a str) -> Family<'a> {
        let (header, sample) = match (kind, self.format) {
            (MetricKind::Counter, ExpositionFormat::OpenMetrics) => (
                name.strip_suffix("_total").unwrap_or(name),
                SampleName::Total,
            ),
            _ => (name, SampleName::AsIs),
        };
        let open = !self.seen.contains(header);
        if open {
            self.seen.insert(header.to_owned());
        } else {
            self.repeated.push(header.to_owned());
        }
        Family {
            exposition: self,
            name: header,
            kind,
            help,
            sample,
            state: if open {
                FamilyState::Unwritten
            } else {
                FamilyState::Dropped
            },
        }
    }

    /// Names of families opened more than once (their later samples were dropped).
    pub fn repeated(&self) -> &[String] {
        &self.repeated
    }

    /// The text so far, without the OpenMetrics end marker.
    pub fn as_str(&self) -> &str {
        &self.out
    }

    /// The finished body (OpenMetrics ends with `# EOF`).
    pub fn finish(mut self) -> String {
        if self.format == ExpositionFormat::OpenMetrics {
            self.out.push_str("# EOF\n");
        }
        self.out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SampleName {
    /// The family name.
    AsIs,
    /// The family name plus `_total` (OpenMetrics counters).
    Total,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FamilyState {
    Unwritten,
    Written,
    Dropped,
}

/// One family being written; add samples with [`Family::sample`] or [`Family::histogram`].
#[derive(Debug)]
pub struct Family<'a> {
    exposition: &'a mut Exposition,
    name: &'a str,
    kind: MetricKind,
    help: &'a str,
    sample: SampleName,
    state: FamilyState,
}

impl Family<'_> {
    /// Writes the header before the first sample; false when the family is dropped.
    fn begin(&mut self) -> bool {
        match self.state {
            FamilyState::Dropped => false,
            FamilyState::Written => true,
            FamilyState::Unwritten => {
                let format = self.exposition.format;
                let out = &mut self.exposition.out;
                let _ = write!(out, "# HELP {} ", self.name);
                escape_help(out, self.help, format);
                let _ = writeln!(out, "\n# TYPE {} {}", self.name, self.kind.as_str(format));
                self.state = FamilyState::Written;
                true
            }
        }
    }

    /// Adds one sample with `labels` (names must be valid label names; values are escaped).
    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) -> &mut Self {
        if self.begin() {
            let suffix = match self.sample {
                SampleName::AsIs => "",
                SampleName::Total => "_total",
            };
            let out = &mut self.exposition.out;
            out.push_str(self.name);
            out.push_str(suffix);
            write_labels(out, labels, None);
            out.push(' ');
            write_value(out, value);
            out.push('\n');
        }
        self
    }

    /// Adds one histogram: cumulative `buckets` as (upper bound, count) in ascending order, the
    /// `+Inf` bucket from `count`, then `_sum` and `_count`.
    pub fn histogram(
        &mut self,
        labels: &[(&str, &str)],
        buckets: &[(f64, u64)],
        sum: f64,
        count: u64,
    ) -> &mut Self {
        if !self.begin() {
            return self;
        }
        let out = &mut self.exposition.out;
        let mut bound = String::new();
        for &(le, n) in buckets
            .iter()
            .chain(std::iter::once(&(f64::INFINITY, count)))
        {
            bound.clear();
            write_value(&mut bound, le);
            let _ = write!(out, "{}_bucket", self.name);
            write_labels(out, labels, Some(("le", &bound)));
            let _ = writeln!(out, " {n}");
        }
        let _ = write!(out, "{}_sum", self.name);
        write_labels(out, labels, None);
        out.push(' ');
        write_value(out, sum);
        let _ = write!(out, "\n{}_count", self.name);
        write_labels(out, labels, None);
        let _ = writeln!(out, " {count}");
        self
    }
}

/// `{a="x",b="y"}` (nothing without labels), values escaped, `extra` last.
fn write_labels(out: &mut String, labels: &[(&str, &str)], extra: Option<(&str, &str)>) {
    if labels.is_empty() && extra.is_none() {
        return;
    }
    out.push('{');
    for (i, (name, value)) in labels.iter().copied().chain(extra).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        escape_label_value(out, value);
        out.push('"');
    }
    out.push('}');
}

/// A sample value as Prometheus reads it: `NaN`, `+Inf`, `-Inf`, else the shortest decimal that
/// reads back as the same float.
pub fn write_value(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value == f64::INFINITY {
        out.push_str("+Inf");
    } else if value == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let _ = write!(out, "{value}");
    }
}

/// Appends a label value with backslash, double quote and newline escaped (both formats).
pub fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Appends a help text: backslash and newline escaped; OpenMetrics also escapes double quotes.
fn escape_help(out: &mut String, help: &str, format: ExpositionFormat) {
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if format == ExpositionFormat::OpenMetrics => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_counter_keeps_its_name_and_writes_the_header_once() {
        let mut e = Exposition::new(ExpositionFormat::Text);
        e.family("a_total", MetricKind::Counter, "A.")
            .sample(&[("x", "1")], 1.0)
            .sample(&[("x", "2")], 2.5);
        assert_eq!(
            e.finish(),
            "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 1\na_total{x=\"2\"} 2.5\n"
        );
    }

    #[test]
    fn open_metrics_counter_family_drops_total_and_samples_keep_it() {
        let mut e = Exposition::new(ExpositionFormat::OpenMetrics);
        e.family("a_total", MetricKind::Counter, "Say \"hi\".")
            .sample(&[], 7.0);
        // A counter named without _total still gets it on its samples.
        e.family("b", MetricKind::Counter, "B.").sample(&[], 1.0);
        assert_eq!(
            e.finish(),
            "# HELP a Say \\\"hi\\\".\n# TYPE a counter\na_total 7\n\
             # HELP b B.\n# TYPE b counter\nb_total 1\n# EOF\n"
        );
    }

    #[test]
    fn special_values_and_escapes() {
        let mut e = Exposition::new(ExpositionFormat::Text);
        e.family("g", MetricKind::Gauge, "line\\one\ntwo")
            .sample(&[("v", "a\\b\"c\nd")], f64::NAN)
            .sample(&[("v", "p")], f64::INFINITY)
            .sample(&[("v", "n")], f64::NEG_INFINITY)
            .sample(&[("v", "big")], 1.5e300);
        let text = e.finish();
        assert!(text.starts_with("# HELP g line\\\\one\\ntwo\n# TYPE g gauge\n"));
        assert!(text.contains("g{v=\"a\\\\b\\\"c\\nd\"} NaN\n"), "{text}");
        assert!(text.contains("g{v=\"p\"} +Inf\n"));
        assert!(text.contains("g{v=\"n\"} -Inf\n"));
        let big = text.lines().last().unwrap().split(' ').nth(1).unwrap();
        assert_eq!(big.parse::<f64>().unwrap(), 1.5e300);
    }

    #[test]
    fn empty_family_writes_nothing_and_a_repeat_is_dropped() {
        let mut e = Exposition::new(ExpositionFormat::Text);
        e.family("empty", MetricKind::Gauge, "E.");
        e.family("g", MetricKind::Gauge, "G.").sample(&[], 1.0);
        e.family("g", MetricKind::Gauge, "G.").sample(&[], 2.0);
        assert_eq!(e.repeated(), ["g".to_owned()]);
        assert_eq!(e.finish(), "# HELP g G.\n# TYPE g gauge\ng 1\n");
    }

    #[test]
    fn untyped_is_unknown_in_open_metrics() {
        let mut e = Exposition::new(ExpositionFormat::Text);
        e.family("node_vmstat_pgfault", MetricKind::Untyped, "F.")
            .sample(&[], 1.0);
        assert!(e.finish().contains("# TYPE node_vmstat_pgfault untyped\n"));
        let mut e = Exposition::new(ExpositionFormat::OpenMetrics);
        e.family("node_vmstat_pgfault", MetricKind::Untyped, "F.")
            .sample(&[], 1.0);
        let text = e.finish();
        assert!(text.contains("# TYPE node_vmstat_pgfault unknown\nnode_vmstat_pgfault 1\n"));
    }

    #[test]
    fn histogram_adds_the_inf_bucket_sum_and_count() {
        let mut e = Exposition::new(ExpositionFormat::Text);
        e.family("h", MetricKind::Histogram, "H.").histogram(
            &[("op", "x")],
            &[(0.5, 1), (1.0, 2)],
            1.25,
            3,
        );
        assert_eq!(
            e.finish(),
            "# HELP h H.\n# TYPE h histogram\nh_bucket{op=\"x\",le=\"0.5\"} 1\n\
             h_bucket{op=\"x\",le=\"1\"} 2\nh_bucket{op=\"x\",le=\"+Inf\"} 3\n\
             h_sum{op=\"x\"} 1.25\nh_count{op=\"x\"} 3\n"
        );
    }

    #[test]
    fn negotiation_follows_prometheus_accept_headers() {
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                    version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(
            ExpositionFormat::negotiate(Some(prom)),
            ExpositionFormat::OpenMetrics
        );
        for text in [
            None,
            Some(""),
            Some("text/plain;version=0.0.4"),
            Some("*/*"),
            Some("application/openmetrics-text;q=0"),
            Some("application/openmetrics-text;q=0.2,text/plain"),
            Some(";;,,q=,application/json"),
        ] {
            assert_eq!(
                ExpositionFormat::negotiate(text),
                ExpositionFormat::Text,
                "{text:?}"
            );
        }
    }
}
