//! Paging and swapping: `/proc/vmstat`. The snapshot gets per-second rates of the fault, paging
//! and swap counters over the interval; the text is kept as read for node_exporter's
//! `node_vmstat_*` families.

use atlhyper_model::VmstatMetrics;

use super::Context;
use crate::delta;
use crate::proc::vmstat::{self, Vmstat};
use crate::sampler::{Base, Sampler};

/// The part of a raw sample this module reads.
#[derive(Debug, Default)]
pub(super) struct VmstatSample {
    pub(super) counters: Option<Vmstat>,
    /// The text of `/proc/vmstat` as read; empty when unreadable.
    pub(super) text: String,
}

/// Reads `/proc/vmstat`.
pub(super) fn sample(s: &mut Sampler, cur: &mut VmstatSample) -> Result<(), String> {
    cur.counters = None;
    cur.text.clear();
    let t = s
        .read_text(Base::Proc, &[&"vmstat"])
        .map_err(|e| e.to_string())?;
    cur.text.push_str(t);
    cur.counters = Some(vmstat::parse(&cur.text).map_err(|e| e.to_string())?);
    Ok(())
}

/// Rates over the interval; `None` on the first sample, when no time passed, or when any of
/// the six counters is missing or went down (a kernel without `CONFIG_VM_EVENT_COUNTERS` has
/// none of them).
pub(super) fn metrics(
    prev: Option<&VmstatSample>,
    cur: &VmstatSample,
    ctx: Context,
) -> Option<VmstatMetrics> {
    let r = delta::vmstat(
        prev?.counters.as_ref()?,
        cur.counters.as_ref()?,
        ctx.elapsed.known()?,
    );
    Some(VmstatMetrics {
        pgfault_rate: r.pgfault?,
        pgmajfault_rate: r.pgmajfault?,
        pswpin_rate: r.pswpin?,
        pswpout_rate: r.pswpout?,
        pgpgin_rate: r.pgpgin?,
        pgpgout_rate: r.pgpgout?,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::Elapsed;
    use super::super::tests::ctx;
    use super::*;

    fn sample(text: &str) -> VmstatSample {
        VmstatSample {
            counters: vmstat::parse(text).ok(),
            text: text.to_owned(),
        }
    }

    #[test]
    fn rates_over_the_interval() {
        let prev =
            sample("pgpgin 10\npgpgout 20\npswpin 0\npswpout 0\npgfault 1000\npgmajfault 4\n");
        let cur =
            sample("pgpgin 30\npgpgout 20\npswpin 2\npswpout 4\npgfault 6000\npgmajfault 5\n");
        let two = ctx(Elapsed::of(Duration::from_secs(2)));
        assert_eq!(
            metrics(Some(&prev), &cur, two),
            Some(VmstatMetrics {
                pgfault_rate: 2500.0,
                pgmajfault_rate: 0.5,
                pswpin_rate: 1.0,
                pswpout_rate: 2.0,
                pgpgin_rate: 10.0,
                pgpgout_rate: 0.0,
            })
        );
        assert_eq!(metrics(None, &cur, two), None, "first sample");
        assert_eq!(metrics(Some(&prev), &cur, ctx(Elapsed::Unknown)), None);
        assert_eq!(metrics(Some(&cur), &prev, two), None, "went down");
        let no_swap_events = sample("pgpgin 30\npgpgout 20\npgfault 6000\npgmajfault 5\n");
        assert_eq!(metrics(Some(&prev), &no_swap_events, two), None);
    }
}
