//! Network receive softirq: `/proc/net/softnet_stat`. The snapshot gets the drops and squeezes
//! per second over the interval, summed over the CPUs; the per-CPU counters are kept for
//! node_exporter's `node_softnet_*` families.

use atlhyper_model::SoftnetMetrics;

use super::Context;
use crate::delta;
use crate::proc::net_softnet_stat::{self, SoftnetCpu};
use crate::sampler::{Base, Sampler};

/// The part of a raw sample this module reads.
#[derive(Debug, Default)]
pub(super) struct SoftnetSample {
    /// One entry per CPU line; empty when unreadable.
    pub(super) cpus: Vec<SoftnetCpu>,
}

/// Reads `/proc/net/softnet_stat`; a malformed line drops the whole reading (a sum over some
/// CPUs would understate the rates).
pub(super) fn sample(s: &mut Sampler, cur: &mut SoftnetSample) -> Result<(), String> {
    cur.cpus.clear();
    let t = s
        .read_text(Base::Proc, &[&"net", &"softnet_stat"])
        .map_err(|e| e.to_string())?;
    for cpu in net_softnet_stat::parse(t) {
        match cpu {
            Ok(c) => cur.cpus.push(c),
            Err(e) => {
                cur.cpus.clear();
                return Err(e.to_string());
            }
        }
    }
    Ok(())
}

/// Drops and squeezes per second; `None` on the first sample, when no time passed, or when a
/// counter wrapped (see [`delta::softnet`]).
pub(super) fn metrics(
    prev: Option<&SoftnetSample>,
    cur: &SoftnetSample,
    ctx: Context,
) -> Option<SoftnetMetrics> {
    let r = delta::softnet(&prev?.cpus, &cur.cpus, ctx.elapsed.known()?);
    Some(SoftnetMetrics {
        dropped_rate: r.dropped?,
        squeezed_rate: r.time_squeeze?,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::Elapsed;
    use super::super::tests::ctx;
    use super::*;

    fn sample(text: &str) -> SoftnetSample {
        SoftnetSample {
            cpus: net_softnet_stat::parse(text)
                .collect::<Result<_, _>>()
                .unwrap(),
        }
    }

    #[test]
    fn drops_and_squeezes_per_second() {
        let prev = sample("00000100 00000001 00000002\n00000100 00000000 00000000\n");
        let cur = sample("00000200 00000005 00000002\n00000300 00000002 00000008\n");
        let four = ctx(Elapsed::of(Duration::from_secs(4)));
        assert_eq!(
            metrics(Some(&prev), &cur, four),
            Some(SoftnetMetrics {
                dropped_rate: 1.5,
                squeezed_rate: 2.0,
            })
        );
        assert_eq!(metrics(None, &cur, four), None);
        assert_eq!(metrics(Some(&prev), &SoftnetSample::default(), four), None);
    }
}
