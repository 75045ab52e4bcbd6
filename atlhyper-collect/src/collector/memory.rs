//! Memory: `/proc/meminfo`, plus the zones' low watermarks from `/proc/zoneinfo` on kernels
//! without MemAvailable.

use atlhyper_model::MemoryMetrics;

use super::{Context, percent};
use crate::proc::meminfo::{self, Meminfo};
use crate::proc::zoneinfo;
use crate::sampler::{Base, Sampler};

/// The part of a raw sample this module reads.
#[derive(Debug, Default)]
pub(super) struct MemorySample {
    pub(super) meminfo: Option<Meminfo>,
    /// The text of `/proc/meminfo` as read (every field, for the node_exporter families); empty
    /// when unreadable.
    pub(super) text: String,
    /// Sum of the zones' low watermarks, pages; read only when meminfo has no MemAvailable.
    low_watermark_pages: Option<u64>,
}

/// Reads `/proc/meminfo`, and `/proc/zoneinfo` when MemAvailable is missing.
pub(super) fn sample(s: &mut Sampler, cur: &mut MemorySample) -> Result<(), String> {
    cur.meminfo = None;
    cur.low_watermark_pages = None;
    cur.text.clear();
    let t = s
        .read_text(Base::Proc, &[&"meminfo"])
        .map_err(|e| e.to_string())?;
    cur.text.push_str(t);
    let m = meminfo::parse(t).map_err(|e| e.to_string())?;
    cur.meminfo = Some(m);
    if m.mem_available.is_some() {
        return Ok(());
    }
    // Before Linux 3.14: MemAvailable is estimated as the kernel does, which needs the zones' low
    // watermarks. Without them the estimate leaves the watermarks out (a little high) and this
    // part says so.
    let wmark = s
        .read_text(Base::Proc, &[&"zoneinfo"])
        .map_err(|e| e.to_string())
        .and_then(|t| zoneinfo::low_watermark_pages(t).map_err(|e| e.to_string()));
    match wmark {
        Ok(pages) => {
            cur.low_watermark_pages = Some(pages);
            Ok(())
        }
        Err(e) => Err(format!(
            "no MemAvailable and no low watermarks ({e}): available estimated without them"
        )),
    }
}

/// Memory metrics as `free` shows them: used = total - available. All zero when meminfo was
/// unreadable. No rates, so no previous sample.
pub(super) fn metrics(cur: &MemorySample, ctx: Context) -> MemoryMetrics {
    let mut memory = MemoryMetrics::default();
    if let Some(m) = cur.meminfo {
        // Without the watermarks (sample reported why) the estimate leaves them out.
        let low_watermark_pages = cur.low_watermark_pages.unwrap_or(0);
        let avail = m.available_or_estimate(low_watermark_pages, ctx.page_size);
        memory.total = m.mem_total;
        memory.available = avail;
        memory.used = m.mem_total.saturating_sub(avail);
        memory.free = m.mem_free;
        memory.usage_percent = percent(memory.used, memory.total);
        memory.cached = m.page_cache();
        memory.buffers = m.buffers;
        memory.swap_total = m.swap_total;
        memory.swap_free = m.swap_free;
        memory.swap_used = m.swap_total.saturating_sub(m.swap_free);
        memory.swap_percent = percent(memory.swap_used, memory.swap_total);
    }
    memory
}

#[cfg(test)]
mod tests {
    use super::super::Elapsed;
    use super::super::tests::ctx;
    use super::*;

    fn sample(text: &str, low_watermark_pages: Option<u64>) -> MemorySample {
        MemorySample {
            meminfo: meminfo::parse(text).ok(),
            low_watermark_pages,
            text: text.to_owned(),
        }
    }

    #[test]
    fn used_is_total_minus_available() {
        let cur = sample(
            "MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 600 kB\nBuffers: 10 kB\n\
             Cached: 200 kB\nSReclaimable: 20 kB\nSwapTotal: 400 kB\nSwapFree: 300 kB\n",
            None,
        );
        let m = metrics(&cur, ctx(Elapsed::Unknown));
        assert_eq!(m.total, 1000 * 1024);
        assert_eq!(m.used, 400 * 1024);
        assert_eq!(m.usage_percent, 40.0);
        assert_eq!(m.cached, 220 * 1024);
        assert_eq!(m.swap_used, 100 * 1024);
        assert_eq!(m.swap_percent, 25.0);
    }

    #[test]
    fn old_kernels_estimate_available_with_the_page_size() {
        let text = "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 0 kB\nCached: 0 kB\n\
                    SwapTotal: 0 kB\nSwapFree: 0 kB\n";
        // 10 pages of 4 KiB low watermark come off MemFree.
        let m = metrics(&sample(text, Some(10)), ctx(Elapsed::Unknown));
        assert_eq!(m.available, 60 * 1024);
        assert_eq!(m.swap_percent, 0.0, "no swap is 0 %, not NaN");
        let mut big_pages = ctx(Elapsed::Unknown);
        big_pages.page_size = 8192;
        assert_eq!(
            metrics(&sample(text, Some(10)), big_pages).available,
            20 * 1024
        );
    }

    #[test]
    fn unreadable_meminfo_gives_zeros() {
        let m = metrics(&sample("garbage", None), ctx(Elapsed::Unknown));
        assert_eq!(m, MemoryMetrics::default());
    }
}
