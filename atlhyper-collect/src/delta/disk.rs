//! Disk IO rates from two `/proc/diskstats` readings of one device.

use std::time::Duration;

use crate::proc::diskstats::DiskStat;

/// The counters of one device that rates are computed from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskCounters {
    /// Reads completed.
    pub reads: u64,
    /// Writes completed.
    pub writes: u64,
    /// Sectors read.
    pub sectors_read: u64,
    /// Sectors written.
    pub sectors_written: u64,
    /// Milliseconds with I/O in flight.
    pub io_ms: u64,
}

impl From<&DiskStat<'_>> for DiskCounters {
    fn from(d: &DiskStat<'_>) -> Self {
        Self {
            reads: d.reads,
            writes: d.writes,
            sectors_read: d.sectors_read,
            sectors_written: d.sectors_written,
            io_ms: d.io_ms,
        }
    }
}

/// Rates of one device over an interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DiskRates {
    /// Bytes read per second.
    pub read_bytes_per_s: f64,
    /// Bytes written per second.
    pub write_bytes_per_s: f64,
    /// Reads completed per second.
    pub read_iops: f64,
    /// Writes completed per second.
    pub write_iops: f64,
    /// Percent of the interval with I/O in flight (iostat `%util`), clamped to 0-100.
    pub util_percent: f64,
}

/// Rates between two readings; `None` if any counter went down (the device was reset or
/// replaced) or no time passed. `sector_size` is 512 for `/proc/diskstats`.
pub fn disk(
    prev: &DiskCounters,
    cur: &DiskCounters,
    elapsed: Duration,
    sector_size: u64,
) -> Option<DiskRates> {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 || !secs.is_finite() {
        return None;
    }
    let reads = cur.reads.checked_sub(prev.reads)?;
    let writes = cur.writes.checked_sub(prev.writes)?;
    let sr = cur.sectors_read.checked_sub(prev.sectors_read)?;
    let sw = cur.sectors_written.checked_sub(prev.sectors_written)?;
    let io_ms = cur.io_ms.checked_sub(prev.io_ms)?;
    let ss = sector_size as f64;
    Some(DiskRates {
        read_bytes_per_s: sr as f64 * ss / secs,
        write_bytes_per_s: sw as f64 * ss / secs,
        read_iops: reads as f64 / secs,
        write_iops: writes as f64 / secs,
        util_percent: (io_ms as f64 / (secs * 1000.0) * 100.0).clamp(0.0, 100.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_util() {
        let a = DiskCounters {
            reads: 10,
            writes: 20,
            sectors_read: 100,
            sectors_written: 2000,
            io_ms: 100,
        };
        let b = DiskCounters {
            reads: 30,
            writes: 60,
            sectors_read: 300,
            sectors_written: 4000,
            io_ms: 1100,
        };
        let r = disk(&a, &b, Duration::from_secs(2), 512).unwrap();
        assert_eq!(r.read_bytes_per_s, 200.0 * 512.0 / 2.0);
        assert_eq!(r.write_bytes_per_s, 2000.0 * 512.0 / 2.0);
        assert_eq!((r.read_iops, r.write_iops), (10.0, 20.0));
        assert_eq!(r.util_percent, 50.0);
        let c = DiskCounters { io_ms: 10_000, ..b };
        assert_eq!(
            disk(&b, &c, Duration::from_secs(2), 512)
                .unwrap()
                .util_percent,
            100.0
        );
    }

    #[test]
    fn reset_gives_none() {
        let a = DiskCounters {
            reads: 10,
            ..Default::default()
        };
        assert_eq!(
            disk(&a, &DiskCounters::default(), Duration::from_secs(1), 512),
            None
        );
        assert_eq!(disk(&a, &a, Duration::ZERO, 512), None);
    }
}
