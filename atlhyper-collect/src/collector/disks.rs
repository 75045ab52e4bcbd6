//! Disks: mounts from the host's mountinfo, space by statfs (bounded by the sampler's timeout),
//! IO from `/proc/diskstats` matched by major:minor.

use std::ffi::OsStr;

use atlhyper_model::DiskMetrics;

use super::{CollectConfig, Context, percent};
use crate::delta::{self, DiskCounters, DiskRates};
use crate::filter;
use crate::proc::{diskstats, mountinfo};
use crate::sampler::{Base, FsSpace, Sampler};

/// One block device's line of `/proc/diskstats`.
#[derive(Debug, Clone, Default)]
pub(super) struct DeviceSample {
    dev: (u32, u32),
    pub(super) name: String,
    pub(super) counters: DiskCounters,
    /// The time counters node_exporter exposes (the rates above need none of them).
    pub(super) times: DiskTimes,
}

/// Milliseconds counters of one `/proc/diskstats` line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct DiskTimes {
    pub(super) read_ms: u64,
    pub(super) write_ms: u64,
    pub(super) weighted_io_ms: u64,
}

/// One mounted filesystem that is reported.
#[derive(Debug, Clone, Default)]
pub(super) struct MountSample {
    dev: Option<(u32, u32)>,
    pub(super) source: String,
    pub(super) mount_point: String,
    pub(super) fs_type: String,
    /// `ro` among the mount's options.
    pub(super) read_only: bool,
    /// statfs; `None` when it failed or timed out.
    pub(super) space: Option<FsSpace>,
}

/// The part of a raw sample this module reads.
#[derive(Debug, Default)]
pub(super) struct DisksSample {
    pub(super) devices: Vec<DeviceSample>,
    /// Names under `/sys/block` (whole disks, not partitions).
    whole_disks: Vec<String>,
    pub(super) mounts: Vec<MountSample>,
}

/// The node-wide IO rates over whole disks.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct DiskTotals {
    pub(super) read_bytes_per_s: f64,
    pub(super) write_bytes_per_s: f64,
    pub(super) read_iops: f64,
    pub(super) write_iops: f64,
}

/// Reads diskstats, the whole-disk names, the mount table and statfs of every reported mount.
/// What the disks part keeps from one collection to the next, so that what rarely changes is not
/// read again every time: the parsed mount table while the kernel says it is unchanged, and the
/// names under `/sys/block` while `/proc/diskstats` lists the same devices.
#[derive(Debug, Default)]
pub(super) struct DiskTables {
    mounts: Option<MountTable>,
    block: Option<BlockNames>,
}

/// The reported mounts (space unset) of the mount table last read, and its first bad line.
#[derive(Debug)]
struct MountTable {
    /// Which of [`MOUNT_TABLES`] it came from.
    source: usize,
    mounts: Vec<MountSample>,
    error: Option<String>,
}

/// `/sys/block`'s names, listed when `/proc/diskstats` had these devices.
#[derive(Debug)]
struct BlockNames {
    devices: Vec<(u32, u32)>,
    names: Vec<String>,
}

/// Where the mounts come from, in order: the host's view (pid 1), else ours, else the old
/// format (`true`: mountinfo).
const MOUNT_TABLES: [(&[&dyn AsRef<OsStr>], bool); 3] = [
    (&[&"1", &"mountinfo"], true),
    (&[&"self", &"mountinfo"], true),
    (&[&"mounts"], false),
];

pub(super) fn sample(
    s: &mut Sampler,
    cfg: &CollectConfig,
    tables: &mut DiskTables,
    cur: &mut DisksSample,
) -> Result<(), String> {
    let mut first_err: Option<String> = None;
    // Block devices.
    cur.devices.clear();
    match s.read_text(Base::Proc, &[&"diskstats"]) {
        Ok(t) => {
            for d in diskstats::parse(t) {
                match d {
                    Ok(d) => cur.devices.push(DeviceSample {
                        dev: (d.major, d.minor),
                        name: d.name.to_owned(),
                        counters: DiskCounters::from(&d),
                        times: DiskTimes {
                            read_ms: d.read_ms,
                            write_ms: d.write_ms,
                            weighted_io_ms: d.weighted_io_ms,
                        },
                    }),
                    Err(e) => {
                        first_err.get_or_insert(e.to_string());
                    }
                }
            }
        }
        Err(e) => first_err = Some(e.to_string()),
    }
    whole_disks(s, tables, &cur.devices, &mut cur.whole_disks);

    // Mounts: the table read last, while the kernel says it has not changed; else read afresh.
    let unchanged = tables
        .mounts
        .as_ref()
        .is_some_and(|m| s.mount_table_unchanged(Base::Proc, MOUNT_TABLES[m.source].0));
    if !unchanged {
        tables.mounts = read_mount_table(s, cfg);
    }
    cur.mounts.clear();
    match &tables.mounts {
        Some(table) => {
            cur.mounts.extend(table.mounts.iter().cloned());
            if let Some(e) = &table.error {
                first_err.get_or_insert(e.clone());
            }
        }
        None => {
            first_err.get_or_insert(format!(
                "no readable mount table under {}",
                s.root().proc.display()
            ));
        }
    }
    for m in &mut cur.mounts {
        let inline =
            cfg.statfs_inline_block_devices && filter::is_local_block_fs(m.dev, &m.fs_type);
        match s.statfs_mount(&m.mount_point, inline) {
            Ok(sp) => m.space = Some(sp),
            Err(e) => {
                first_err.get_or_insert(e.to_string());
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// The whole disks into `out`: the names under `/sys/block`, listed again only when the devices
/// of `/proc/diskstats` changed (every block device, whole or partition, is a line there);
/// without sysfs, recognised by name. `out` holds a sample of two collections ago: copying the
/// kept names over it reuses its strings.
fn whole_disks(
    s: &mut Sampler,
    tables: &mut DiskTables,
    devices: &[DeviceSample],
    out: &mut Vec<String>,
) {
    let same = tables.block.as_ref().is_some_and(|b| {
        b.devices.len() == devices.len() && b.devices.iter().zip(devices).all(|(a, d)| *a == d.dev)
    });
    if !same {
        tables.block = s
            .list_dir(Base::Sys, &[&"block"])
            .ok()
            .map(|names| BlockNames {
                devices: devices.iter().map(|d| d.dev).collect(),
                names: names
                    .into_iter()
                    .filter_map(|n| n.into_string().ok())
                    .collect(),
            });
    }
    match &tables.block {
        Some(b) => out.clone_from(&b.names),
        None => {
            out.clear();
            out.extend(
                devices
                    .iter()
                    .filter(|d| filter::looks_like_whole_disk(&d.name))
                    .map(|d| d.name.clone()),
            );
        }
    }
}

/// The first readable of [`MOUNT_TABLES`], parsed into the mounts `cfg` reports; `None` when none
/// is readable.
fn read_mount_table(s: &mut Sampler, cfg: &CollectConfig) -> Option<MountTable> {
    for (source, (path, is_mountinfo)) in MOUNT_TABLES.iter().enumerate() {
        let Ok(t) = s.read_text(Base::Proc, path) else {
            continue;
        };
        let it = if *is_mountinfo {
            mountinfo::parse_mountinfo(t)
        } else {
            mountinfo::parse_mounts(t)
        };
        let mut table = MountTable {
            source,
            mounts: Vec::new(),
            error: None,
        };
        for m in it {
            match m {
                Ok(m) => add_mount(cfg, m, &mut table.mounts),
                Err(e) => {
                    table.error.get_or_insert(e.to_string());
                }
            }
        }
        return Some(table);
    }
    None
}

/// Adds `m` to `mounts` unless it is excluded or already there.
fn add_mount(cfg: &CollectConfig, m: mountinfo::Mount<'_>, mounts: &mut Vec<MountSample>) {
    if cfg.exclude_fs_types.iter().any(|t| t == m.fs_type)
        || cfg
            .exclude_mount_points
            .iter()
            .any(|p| filter::mount_point_matches(p, &m.mount_point))
    {
        return;
    }
    // The same filesystem bind-mounted again (kubelet, containers) is reported once.
    let dup = mounts.iter().any(|x| match (x.dev, m.dev) {
        (Some(a), Some(b)) => a == b,
        _ => x.source == m.source && x.fs_type == m.fs_type,
    });
    if dup || mounts.iter().any(|x| x.mount_point == m.mount_point) {
        return;
    }
    mounts.push(MountSample {
        dev: m.dev,
        source: m.source.into_owned(),
        mount_point: m.mount_point.into_owned(),
        fs_type: m.fs_type.to_owned(),
        read_only: m.read_only,
        space: None,
    });
}

/// The device behind a mount: by major:minor, else by the source's name under `/dev/`.
fn device_of<'a>(cur: &'a DisksSample, m: &MountSample) -> Option<&'a DeviceSample> {
    m.dev
        .and_then(|dev| cur.devices.iter().find(|d| d.dev == dev))
        .or_else(|| {
            let base = m.source.strip_prefix("/dev/")?;
            cur.devices.iter().find(|d| d.name == base)
        })
}

/// Rates of device `d` against the same device (number and name) in `prev`.
fn rates(prev: Option<&DisksSample>, d: &DeviceSample, ctx: Context) -> Option<DiskRates> {
    let pd = prev?
        .devices
        .iter()
        .find(|x| x.dev == d.dev && x.name == d.name)?;
    delta::disk(
        &pd.counters,
        &d.counters,
        ctx.elapsed.known()?,
        ctx.sector_size,
    )
}

/// One entry per reported mount: space from statfs, IO counters and rates of its device (rates
/// are 0 on the first sample, with unknown elapsed time, or when a counter went down).
pub(super) fn metrics(
    prev: Option<&DisksSample>,
    cur: &DisksSample,
    ctx: Context,
) -> Vec<DiskMetrics> {
    let mut disks = Vec::with_capacity(cur.mounts.len());
    for m in &cur.mounts {
        let mut dm = DiskMetrics {
            device: m.source.clone(),
            mount_point: m.mount_point.clone(),
            fs_type: m.fs_type.clone(),
            ..Default::default()
        };
        if let Some(sp) = m.space {
            dm.total = sp.total;
            dm.used = sp.total.saturating_sub(sp.free);
            dm.available = sp.available;
            // As df: the share of what unprivileged users can have.
            dm.usage_percent = percent(dm.used, dm.used.saturating_add(sp.available));
            if sp.files > 0 {
                dm.inodes_total = Some(sp.files);
                dm.inodes_used = Some(sp.files.saturating_sub(sp.files_free));
            }
        }
        if let Some(d) = device_of(cur, m) {
            dm.device = d.name.clone();
            dm.read_bytes = d.counters.sectors_read.saturating_mul(ctx.sector_size);
            dm.write_bytes = d.counters.sectors_written.saturating_mul(ctx.sector_size);
            if let Some(r) = rates(prev, d, ctx) {
                dm.read_rate = r.read_bytes_per_s;
                dm.write_rate = r.write_bytes_per_s;
                dm.read_iops = r.read_iops;
                dm.write_iops = r.write_iops;
                dm.io_util = r.util_percent;
            }
        }
        disks.push(dm);
    }
    disks
}

/// IO rates summed over whole disks only, so a disk and its partitions never count twice.
pub(super) fn totals(prev: Option<&DisksSample>, cur: &DisksSample, ctx: Context) -> DiskTotals {
    let mut t = DiskTotals::default();
    for d in &cur.devices {
        if !cur.whole_disks.contains(&d.name) || !filter::counts_in_totals(&d.name) {
            continue;
        }
        if let Some(r) = rates(prev, d, ctx) {
            t.read_bytes_per_s += r.read_bytes_per_s;
            t.write_bytes_per_s += r.write_bytes_per_s;
            t.read_iops += r.read_iops;
            t.write_iops += r.write_iops;
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::Elapsed;
    use super::super::tests::ctx;
    use super::*;

    #[test]
    fn the_mount_table_and_sys_block_are_read_again_only_when_they_change() {
        // Live host: the second collection asks the kernel whether the mount table changed
        // (poll on the kept descriptor) instead of reading it, and lists /sys/block only if
        // /proc/diskstats shows other devices (not the case between two quick collections).
        let mut c = crate::Collector::new(
            crate::sampler::HostRoot::default(),
            crate::CollectConfig::from_host(),
        );
        let first = c.collect();
        c.sampler_mut().set_tracing(true);
        let second = c.collect();
        let reads: Vec<String> = c
            .sampler_mut()
            .take_trace()
            .into_iter()
            .map(|a| match a {
                crate::sampler::Access::File(p) | crate::sampler::Access::Dir(p) => {
                    p.display().to_string()
                }
            })
            .filter(|p| p.ends_with("mountinfo") || p.ends_with("/mounts") || p.ends_with("block"))
            .collect();
        assert_eq!(reads, Vec::<String>::new());
        let mounts = |s: &atlhyper_model::NodeMetricsSnapshot| -> Vec<String> {
            s.disks.iter().map(|d| d.mount_point.clone()).collect()
        };
        assert_eq!(mounts(&first), mounts(&second));
    }

    /// `sda` (8:0) with partition `sda1` (8:1) mounted at `/`; `sectors` read on each.
    fn sample(sectors: u64, reads: u64) -> DisksSample {
        let dev = |minor, name: &str| DeviceSample {
            dev: (8, minor),
            name: name.into(),
            counters: DiskCounters {
                reads,
                writes: 0,
                sectors_read: sectors,
                sectors_written: 0,
                io_ms: 0,
            },
            times: DiskTimes::default(),
        };
        DisksSample {
            devices: vec![dev(0, "sda"), dev(1, "sda1")],
            whole_disks: vec!["sda".into()],
            mounts: vec![MountSample {
                dev: Some((8, 1)),
                source: "/dev/root".into(),
                mount_point: "/".into(),
                fs_type: "ext4".into(),
                read_only: false,
                space: Some(FsSpace {
                    total: 1000,
                    free: 300,
                    available: 200,
                    files: 10,
                    files_free: 4,
                }),
            }],
        }
    }

    const TWO_SECONDS: Elapsed = Elapsed::Known(Duration::from_secs(2));

    #[test]
    fn space_and_device_by_major_minor() {
        let d = &metrics(None, &sample(4, 1), ctx(TWO_SECONDS))[0];
        assert_eq!(d.device, "sda1", "found by 8:1, not by the /dev/root name");
        assert_eq!((d.total, d.used, d.available), (1000, 700, 200));
        assert!((d.usage_percent - 700.0 / 9.0).abs() < 1e-9);
        assert_eq!((d.inodes_total, d.inodes_used), (Some(10), Some(6)));
        assert_eq!(d.read_bytes, 4 * 512);
    }

    #[test]
    fn first_sample_gives_no_rates() {
        let d = &metrics(None, &sample(4, 1), ctx(TWO_SECONDS))[0];
        assert_eq!((d.read_rate, d.read_iops, d.io_util), (0.0, 0.0, 0.0));
        assert_eq!(
            totals(None, &sample(4, 1), ctx(TWO_SECONDS)),
            DiskTotals::default()
        );
    }

    #[test]
    fn rates_over_the_elapsed_time_and_whole_disks_only_in_totals() {
        let (prev, cur) = (sample(0, 0), sample(8, 4));
        let d = &metrics(Some(&prev), &cur, ctx(TWO_SECONDS))[0];
        assert_eq!((d.read_rate, d.read_iops), (2048.0, 2.0));
        let t = totals(Some(&prev), &cur, ctx(TWO_SECONDS));
        assert_eq!(
            (t.read_bytes_per_s, t.read_iops),
            (2048.0, 2.0),
            "sda1 not added"
        );
    }

    #[test]
    fn unknown_elapsed_time_gives_no_rates() {
        let (prev, cur) = (sample(0, 0), sample(8, 4));
        let d = &metrics(Some(&prev), &cur, ctx(Elapsed::Unknown))[0];
        assert_eq!(d.read_rate, 0.0);
        assert_eq!(d.read_bytes, 8 * 512, "counters are still reported");
        assert_eq!(
            totals(Some(&prev), &cur, ctx(Elapsed::Unknown)),
            DiskTotals::default()
        );
    }

    #[test]
    fn counters_going_down_give_no_rates() {
        let (prev, cur) = (sample(8, 4), sample(0, 0));
        assert_eq!(
            metrics(Some(&prev), &cur, ctx(TWO_SECONDS))[0].read_rate,
            0.0
        );
        assert_eq!(
            totals(Some(&prev), &cur, ctx(TWO_SECONDS)),
            DiskTotals::default()
        );
    }

    #[test]
    fn device_by_source_name_without_numbers() {
        let mut cur = sample(4, 1);
        cur.mounts[0].dev = None;
        cur.mounts[0].source = "/dev/sda".into();
        cur.mounts[0].space = None;
        let d = &metrics(None, &cur, ctx(TWO_SECONDS))[0];
        assert_eq!(d.device, "sda");
        assert_eq!((d.total, d.usage_percent, d.inodes_total), (0, 0.0, None));
    }

    #[test]
    fn bind_mounts_and_excluded_mounts_are_left_out() {
        let cfg = CollectConfig::new(
            "",
            super::super::HostConstants {
                clock_ticks_per_sec: 100,
                page_size: 4096,
            },
        );
        let table = "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n\
                     23 22 8:1 /data /var/lib/kubelet/x rw - ext4 /dev/sda1 rw\n\
                     24 22 0:5 / /dev rw - devtmpfs udev rw\n\
                     25 22 0:30 / /run rw - tmpfs tmpfs rw\n";
        let mut mounts = Vec::new();
        for m in mountinfo::parse_mountinfo(table) {
            add_mount(&cfg, m.unwrap(), &mut mounts);
        }
        let points: Vec<&str> = mounts.iter().map(|m| m.mount_point.as_str()).collect();
        assert_eq!(points, ["/"]);
    }
}
