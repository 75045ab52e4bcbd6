//! Pressure stall information: the avg10 shares of `/proc/pressure/{cpu,memory,io}` (Linux 4.20+,
//! with `CONFIG_PSI`). Averages the kernel already computes: no previous sample.

use atlhyper_model::PsiMetrics;

use crate::proc::pressure::{self, Pressure};
use crate::sampler::{Base, Sampler};

/// The part of a raw sample this module reads.
#[derive(Debug, Default)]
pub(super) struct PsiSample {
    /// The snapshot's shares; `None` unless all three files parse.
    pub(super) metrics: Option<PsiMetrics>,
    /// Each file as parsed (its stall totals are node_exporter's counters), in the order
    /// cpu, memory, io; `None` where unreadable.
    pub(super) files: [Option<Pressure>; 3],
}

/// The pressure files, in [`PsiSample::files`] order.
pub(super) const RESOURCES: [&str; 3] = ["cpu", "memory", "io"];

/// Reads the three pressure files.
pub(super) fn sample(s: &mut Sampler, cur: &mut PsiSample) -> Result<(), String> {
    let mut first_err = None;
    for (slot, name) in cur.files.iter_mut().zip(RESOURCES) {
        let read = s
            .read_text(Base::Proc, &[&"pressure", &name])
            .map_err(|e| e.to_string())
            .and_then(|t| pressure::parse(t).map_err(|e| e.to_string()));
        *slot = match read {
            Ok(p) => Some(p),
            Err(e) => {
                first_err.get_or_insert(e);
                None
            }
        };
    }
    cur.metrics = match &cur.files {
        [Some(cpu), Some(memory), Some(io)] => Some(metrics(cpu, memory, io)),
        _ => None,
    };
    first_err.map_or(Ok(()), Err)
}

/// The avg10 shares, percent; a missing `full` line (the cpu file before Linux 5.13) is 0.
fn metrics(cpu: &Pressure, memory: &Pressure, io: &Pressure) -> PsiMetrics {
    PsiMetrics {
        cpu_some: cpu.some.avg10,
        memory_some: memory.some.avg10,
        memory_full: memory.full.map_or(0.0, |f| f.avg10),
        io_some: io.some.avg10,
        io_full: io.full.map_or(0.0, |f| f.avg10),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avg10_of_each_file() {
        let p = |some: &str, full: Option<&str>| {
            let mut t = format!("some avg10={some} avg60=0.00 avg300=0.00 total=1\n");
            if let Some(f) = full {
                t.push_str(&format!("full avg10={f} avg60=0.00 avg300=0.00 total=1\n"));
            }
            pressure::parse(&t).unwrap()
        };
        let m = metrics(
            &p("1.50", None),
            &p("2.00", Some("0.50")),
            &p("3.25", Some("1.00")),
        );
        assert_eq!(
            m,
            PsiMetrics {
                cpu_some: 1.5,
                memory_some: 2.0,
                memory_full: 0.5,
                io_some: 3.25,
                io_full: 1.0,
            }
        );
    }
}
