//! The figures a node snapshot carries, as named series: their names, units and the device each
//! series is kept per, and the samples one snapshot gives.

use std::collections::{HashMap, HashSet};

use atlhyper_model::{NodeMetricsSnapshot, SensorReading};

/// One figure of a node: a series per device (mount point, disk, interface, sensor, core, CPU
/// mode) or one series for the node (device `""`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Figure {
    /// CPU busy, % (100 - idle - iowait).
    CpuUsage,
    /// CPU time per mode, %; device = mode (user, system, iowait, steal, irq, softirq, nice, idle).
    CpuMode,
    /// Busy per core, %; device = `cpu0`, `cpu1`, ...
    CpuCore,
    /// Load average over 1 minute.
    Load1,
    /// Load average over 5 minutes.
    Load5,
    /// Load average over 15 minutes.
    Load15,
    /// Memory used, %.
    MemoryUsage,
    /// Memory used (total - available), bytes.
    MemoryUsed,
    /// Memory available, bytes.
    MemoryAvailable,
    /// Page cache, bytes.
    MemoryCached,
    /// Buffers, bytes.
    MemoryBuffers,
    /// Swap used, %.
    SwapUsage,
    /// Swap used, bytes.
    SwapUsed,
    /// Space used per mount point, %.
    FsUsage,
    /// Inodes used per mount point, %.
    FsInodesUsage,
    /// Read per disk, bytes/s.
    DiskReadRate,
    /// Written per disk, bytes/s.
    DiskWriteRate,
    /// Reads per disk, per second.
    DiskReadIops,
    /// Writes per disk, per second.
    DiskWriteIops,
    /// Busy time per disk, %.
    DiskUtil,
    /// Received per interface, bytes/s.
    NetRxRate,
    /// Sent per interface, bytes/s.
    NetTxRate,
    /// Receive errors per interface, per second.
    NetRxErrors,
    /// Send errors per interface, per second.
    NetTxErrors,
    /// Received packets dropped per interface, per second.
    NetRxDrops,
    /// Sent packets dropped per interface, per second.
    NetTxDrops,
    /// Temperature per sensor, Celsius.
    Temp,
    /// PSI cpu some avg10, %.
    PsiCpuSome,
    /// PSI memory some avg10, %.
    PsiMemorySome,
    /// PSI memory full avg10, %.
    PsiMemoryFull,
    /// PSI io some avg10, %.
    PsiIoSome,
    /// PSI io full avg10, %.
    PsiIoFull,
}

impl Figure {
    /// Every figure, in catalog order (also the order of their stored ids).
    pub const ALL: [Figure; 32] = [
        Self::CpuUsage,
        Self::CpuMode,
        Self::CpuCore,
        Self::Load1,
        Self::Load5,
        Self::Load15,
        Self::MemoryUsage,
        Self::MemoryUsed,
        Self::MemoryAvailable,
        Self::MemoryCached,
        Self::MemoryBuffers,
        Self::SwapUsage,
        Self::SwapUsed,
        Self::FsUsage,
        Self::FsInodesUsage,
        Self::DiskReadRate,
        Self::DiskWriteRate,
        Self::DiskReadIops,
        Self::DiskWriteIops,
        Self::DiskUtil,
        Self::NetRxRate,
        Self::NetTxRate,
        Self::NetRxErrors,
        Self::NetTxErrors,
        Self::NetRxDrops,
        Self::NetTxDrops,
        Self::Temp,
        Self::PsiCpuSome,
        Self::PsiMemorySome,
        Self::PsiMemoryFull,
        Self::PsiIoSome,
        Self::PsiIoFull,
    ];

    /// The name the API uses (`disk.write_rate`).
    pub fn name(self) -> &'static str {
        match self {
            Self::CpuUsage => "cpu.usage",
            Self::CpuMode => "cpu.mode",
            Self::CpuCore => "cpu.core",
            Self::Load1 => "load.1",
            Self::Load5 => "load.5",
            Self::Load15 => "load.15",
            Self::MemoryUsage => "memory.usage",
            Self::MemoryUsed => "memory.used",
            Self::MemoryAvailable => "memory.available",
            Self::MemoryCached => "memory.cached",
            Self::MemoryBuffers => "memory.buffers",
            Self::SwapUsage => "swap.usage",
            Self::SwapUsed => "swap.used",
            Self::FsUsage => "fs.usage",
            Self::FsInodesUsage => "fs.inodes_usage",
            Self::DiskReadRate => "disk.read_rate",
            Self::DiskWriteRate => "disk.write_rate",
            Self::DiskReadIops => "disk.read_iops",
            Self::DiskWriteIops => "disk.write_iops",
            Self::DiskUtil => "disk.util",
            Self::NetRxRate => "net.rx_rate",
            Self::NetTxRate => "net.tx_rate",
            Self::NetRxErrors => "net.rx_errors",
            Self::NetTxErrors => "net.tx_errors",
            Self::NetRxDrops => "net.rx_drops",
            Self::NetTxDrops => "net.tx_drops",
            Self::Temp => "temp",
            Self::PsiCpuSome => "psi.cpu_some",
            Self::PsiMemorySome => "psi.memory_some",
            Self::PsiMemoryFull => "psi.memory_full",
            Self::PsiIoSome => "psi.io_some",
            Self::PsiIoFull => "psi.io_full",
        }
    }

    /// The figure named `name`, `None` for an unknown name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The unit the API reports: `%`, `B`, `B/s`, `ops/s`, `/s`, `°C`, or `""` (load).
    pub fn unit(self) -> &'static str {
        match self {
            Self::CpuUsage
            | Self::CpuMode
            | Self::CpuCore
            | Self::MemoryUsage
            | Self::SwapUsage
            | Self::FsUsage
            | Self::FsInodesUsage
            | Self::DiskUtil
            | Self::PsiCpuSome
            | Self::PsiMemorySome
            | Self::PsiMemoryFull
            | Self::PsiIoSome
            | Self::PsiIoFull => "%",
            Self::Load1 | Self::Load5 | Self::Load15 => "",
            Self::MemoryUsed | Self::MemoryAvailable | Self::MemoryCached | Self::MemoryBuffers => {
                "B"
            }
            Self::SwapUsed => "B",
            Self::DiskReadRate | Self::DiskWriteRate | Self::NetRxRate | Self::NetTxRate => "B/s",
            Self::DiskReadIops | Self::DiskWriteIops => "ops/s",
            Self::NetRxErrors | Self::NetTxErrors | Self::NetRxDrops | Self::NetTxDrops => "/s",
            Self::Temp => "°C",
        }
    }

    /// Whether the figure is kept per device (else one series, device `""`).
    pub fn per_device(self) -> bool {
        matches!(
            self,
            Self::CpuMode
                | Self::CpuCore
                | Self::FsUsage
                | Self::FsInodesUsage
                | Self::DiskReadRate
                | Self::DiskWriteRate
                | Self::DiskReadIops
                | Self::DiskWriteIops
                | Self::DiskUtil
                | Self::NetRxRate
                | Self::NetTxRate
                | Self::NetRxErrors
                | Self::NetTxErrors
                | Self::NetRxDrops
                | Self::NetTxDrops
                | Self::Temp
        )
    }

    /// The step values are stored at: what the source can tell apart (meminfo's figures are
    /// page counts, 4 KiB; a byte per second is below any disk's or link's noise; hwmon
    /// sensors resolve 1/8 to 1 degree; hundredths of a percent, a load point or an event per
    /// second).
    pub fn quantum(self) -> f64 {
        match self.unit() {
            "B" => 4096.0,
            "B/s" => 1.0,
            "°C" => 0.1,
            _ => 0.01,
        }
    }

    /// Whether a value can be below zero (temperatures); every other figure is stored at 0
    /// when a negative value comes in.
    pub fn can_be_negative(self) -> bool {
        self == Self::Temp
    }

    /// How many significant bits a value keeps beyond its quantum: `Some(10)` for rates
    /// (`B/s`, `ops/s`, `/s`: exact up to 1023 quanta, then within 1/1024 of the value, a
    /// tenth of a percent), `None` (exact quanta) for the rest.
    pub fn significant_bits(self) -> Option<u32> {
        matches!(self.unit(), "B/s" | "ops/s" | "/s").then_some(10)
    }

    /// The stored id.
    pub(crate) fn id(self) -> u8 {
        self as u8
    }

    /// The figure of a stored id.
    pub(crate) fn from_id(id: u8) -> Option<Self> {
        Self::ALL.get(usize::from(id)).copied()
    }
}

impl std::fmt::Display for Figure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One series of a node: a figure and its device (`""` for a node-level figure).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesKey {
    /// The figure.
    pub figure: Figure,
    /// Mount point, disk, interface, sensor, core or mode; `""` for node-level figures.
    pub device: String,
}

impl SeriesKey {
    /// A node-level series.
    pub fn node(figure: Figure) -> Self {
        Self {
            figure,
            device: String::new(),
        }
    }

    /// A series of one device.
    pub fn device(figure: Figure, device: impl Into<String>) -> Self {
        Self {
            figure,
            device: device.into(),
        }
    }
}

/// The device of one sample, borrowed from the snapshot (what a [`SeriesKey`]'s device string
/// is made of, without building it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device<'a> {
    /// A node-level figure (device `""`).
    Node,
    /// A mode, mount point, disk, interface or sensor label, as it is.
    Name(&'a str),
    /// Core `i`: `cpu{i}`.
    Core(usize),
    /// A sensor whose label another chip uses too: `{label} ({chip})`.
    Sensor {
        /// The label both chips use.
        label: &'a str,
        /// This sensor's chip.
        chip: &'a str,
    },
}

impl Device<'_> {
    /// Whether `stored` is this device's name.
    pub fn matches(&self, stored: &str) -> bool {
        match *self {
            Self::Node => stored.is_empty(),
            Self::Name(name) => stored == name,
            Self::Core(i) => stored.strip_prefix("cpu").is_some_and(|digits| {
                (digits.len() == 1 || !digits.starts_with('0'))
                    && digits.parse::<usize>().is_ok_and(|n| n == i)
            }),
            Self::Sensor { label, chip } => {
                stored
                    .strip_prefix(label)
                    .and_then(|rest| rest.strip_prefix(" ("))
                    .and_then(|rest| rest.strip_suffix(')'))
                    == Some(chip)
            }
        }
    }

    /// Whether two devices name the same series.
    fn same_as(&self, other: &Device<'_>) -> bool {
        match (self, other) {
            (Self::Name(name), d) => d.matches(name),
            (d, Device::Name(name)) => d.matches(name),
            (Self::Node, Device::Node) => true,
            (Self::Core(a), Device::Core(b)) => a == b,
            (
                Self::Sensor { label, chip },
                Device::Sensor {
                    label: other_label,
                    chip: other_chip,
                },
            ) => label == other_label && chip == other_chip,
            _ => false,
        }
    }
}

impl std::fmt::Display for Device<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Node => Ok(()),
            Self::Name(name) => f.write_str(name),
            Self::Core(i) => write!(f, "cpu{i}"),
            Self::Sensor { label, chip } => write!(f, "{label} ({chip})"),
        }
    }
}

/// Every figure one snapshot gives, one value per series, in the same order for snapshots of
/// the same layout; non-finite values are left out. Disks are taken by device once (several
/// mounts of one device report its IO once), mounts by mount point, sensors by label (the
/// chip's name is added when two chips use one label). Allocates nothing: lists are checked
/// for repeats by looking back (they are capped by the ingest bounds).
pub fn for_each_sample<'a>(s: &'a NodeMetricsSnapshot, mut f: impl FnMut(Figure, Device<'a>, f64)) {
    let mut emit = |figure: Figure, device: Device<'a>, v: f64| {
        if v.is_finite() {
            f(figure, device, v);
        }
    };
    let cpu = &s.cpu;
    emit(Figure::CpuUsage, Device::Node, cpu.usage_percent);
    for (mode, v) in [
        ("user", Some(cpu.user_percent)),
        ("system", Some(cpu.system_percent)),
        ("iowait", Some(cpu.iowait_percent)),
        ("steal", cpu.steal_percent),
        ("irq", cpu.irq_percent),
        ("softirq", cpu.softirq_percent),
        ("nice", cpu.nice_percent),
        ("idle", Some(cpu.idle_percent)),
    ] {
        if let Some(v) = v {
            emit(Figure::CpuMode, Device::Name(mode), v);
        }
    }
    for (i, v) in cpu.per_core.iter().enumerate() {
        emit(Figure::CpuCore, Device::Core(i), *v);
    }
    emit(Figure::Load1, Device::Node, cpu.load_1);
    emit(Figure::Load5, Device::Node, cpu.load_5);
    emit(Figure::Load15, Device::Node, cpu.load_15);

    let mem = &s.memory;
    emit(Figure::MemoryUsage, Device::Node, mem.usage_percent);
    emit(Figure::MemoryUsed, Device::Node, mem.used as f64);
    emit(Figure::MemoryAvailable, Device::Node, mem.available as f64);
    emit(Figure::MemoryCached, Device::Node, mem.cached as f64);
    emit(Figure::MemoryBuffers, Device::Node, mem.buffers as f64);
    emit(Figure::SwapUsage, Device::Node, mem.swap_percent);
    emit(Figure::SwapUsed, Device::Node, mem.swap_used as f64);

    for_each_first(
        &s.disks,
        |d| d.mount_point.as_str(),
        |d| {
            let mount = Device::Name(&d.mount_point);
            emit(Figure::FsUsage, mount, d.usage_percent);
            if let (Some(total), Some(used)) = (d.inodes_total, d.inodes_used)
                && total > 0
            {
                emit(
                    Figure::FsInodesUsage,
                    mount,
                    used as f64 / total as f64 * 100.0,
                );
            }
        },
    );
    for_each_first(
        &s.disks,
        |d| d.device.as_str(),
        |d| {
            let disk = Device::Name(&d.device);
            emit(Figure::DiskReadRate, disk, d.read_rate);
            emit(Figure::DiskWriteRate, disk, d.write_rate);
            emit(Figure::DiskReadIops, disk, d.read_iops);
            emit(Figure::DiskWriteIops, disk, d.write_iops);
            emit(Figure::DiskUtil, disk, d.io_util);
        },
    );
    for_each_first(
        &s.networks,
        |n| n.interface.as_str(),
        |n| {
            let iface = Device::Name(&n.interface);
            emit(Figure::NetRxRate, iface, n.rx_rate);
            emit(Figure::NetTxRate, iface, n.tx_rate);
            for (figure, v) in [
                (Figure::NetRxErrors, n.rx_errors_rate),
                (Figure::NetTxErrors, n.tx_errors_rate),
                (Figure::NetRxDrops, n.rx_dropped_rate),
                (Figure::NetTxDrops, n.tx_dropped_rate),
            ] {
                if let Some(v) = v {
                    emit(figure, iface, v);
                }
            }
        },
    );
    for_each_sensor(&s.temperature.sensors, |device, v| {
        emit(Figure::Temp, device, v);
    });

    if let Some(psi) = &s.psi {
        emit(Figure::PsiCpuSome, Device::Node, psi.cpu_some);
        emit(Figure::PsiMemorySome, Device::Node, psi.memory_some);
        emit(Figure::PsiMemoryFull, Device::Node, psi.memory_full);
        emit(Figure::PsiIoSome, Device::Node, psi.io_some);
        emit(Figure::PsiIoFull, Device::Node, psi.io_full);
    }
}

/// Lists up to this long are checked for repeats by looking back (no allocation); longer ones
/// (the ingest bounds allow thousands of interfaces) with a set.
const LOOK_BACK_MAX: usize = 64;

/// Calls `f` for each item whose non-empty `name` did not occur before it.
fn for_each_first<'a, T>(
    items: &'a [T],
    name: impl Fn(&'a T) -> &'a str,
    mut f: impl FnMut(&'a T),
) {
    if items.len() <= LOOK_BACK_MAX {
        for (i, item) in items.iter().enumerate() {
            let n = name(item);
            if !n.is_empty() && !items[..i].iter().any(|o| name(o) == n) {
                f(item);
            }
        }
    } else {
        let mut seen = HashSet::with_capacity(items.len());
        for item in items {
            let n = name(item);
            if !n.is_empty() && seen.insert(n) {
                f(item);
            }
        }
    }
}

fn label_of(r: &SensorReading) -> &str {
    if r.label.is_empty() {
        &r.name
    } else {
        &r.label
    }
}

/// A sensor's device: its label, with its chip when another chip uses the label too.
fn sensor_device(r: &SensorReading, label_shared: bool) -> Device<'_> {
    let label = label_of(r);
    if label_shared && !r.name.is_empty() && r.name != label {
        Device::Sensor {
            label,
            chip: &r.name,
        }
    } else {
        Device::Name(label)
    }
}

/// Calls `f` once per distinct sensor device (sensors without label or name left out).
fn for_each_sensor<'a>(sensors: &'a [SensorReading], mut f: impl FnMut(Device<'a>, f64)) {
    if sensors.len() <= LOOK_BACK_MAX {
        let mut shared = [false; LOOK_BACK_MAX];
        for (i, r) in sensors.iter().enumerate() {
            shared[i] = sensors
                .iter()
                .filter(|o| label_of(o) == label_of(r))
                .count()
                > 1;
        }
        let device_at = |i: usize| sensor_device(&sensors[i], shared[i]);
        for (i, r) in sensors.iter().enumerate() {
            if label_of(r).is_empty() {
                continue;
            }
            let device = device_at(i);
            let seen =
                (0..i).any(|j| !label_of(&sensors[j]).is_empty() && device_at(j).same_as(&device));
            if !seen {
                f(device, r.current);
            }
        }
    } else {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for r in sensors {
            *counts.entry(label_of(r)).or_default() += 1;
        }
        let mut seen = HashSet::with_capacity(sensors.len());
        for r in sensors {
            let label = label_of(r);
            if label.is_empty() {
                continue;
            }
            let device = sensor_device(r, counts[label] > 1);
            if seen.insert(device.to_string()) {
                f(device, r.current);
            }
        }
    }
}

/// Every figure one snapshot gives, one value per series ([`for_each_sample`] collected).
pub fn samples_of(s: &NodeMetricsSnapshot) -> Vec<(SeriesKey, f64)> {
    let mut out: Vec<(SeriesKey, f64)> = Vec::with_capacity(96);
    for_each_sample(s, |figure, device, v| {
        out.push((SeriesKey::device(figure, device.to_string()), v));
    });
    // A sensor labelled like another's "label (chip)" would give one key twice.
    let mut seen = HashSet::with_capacity(out.len());
    out.retain(|(k, _)| seen.insert(k.clone()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use atlhyper_model::DiskMetrics;

    #[test]
    fn names_round_trip_and_ids_are_dense() {
        for (i, f) in Figure::ALL.into_iter().enumerate() {
            assert_eq!(Figure::parse(f.name()), Some(f));
            assert_eq!(usize::from(f.id()), i);
            assert_eq!(Figure::from_id(f.id()), Some(f));
        }
        assert_eq!(Figure::parse("disk.nope"), None);
        assert_eq!(Figure::from_id(32), None);
    }

    #[test]
    fn a_snapshot_gives_one_sample_per_series() {
        let mut s = NodeMetricsSnapshot::default();
        s.cpu.per_core = vec![10.0, f64::NAN];
        s.disks = vec![
            DiskMetrics {
                device: "vda1".into(),
                mount_point: "/".into(),
                inodes_total: Some(200),
                inodes_used: Some(50),
                ..Default::default()
            },
            DiskMetrics {
                device: "vda1".into(),
                mount_point: "/var".into(),
                ..Default::default()
            },
        ];
        s.temperature.sensors = vec![
            SensorReading {
                name: "coretemp".into(),
                label: "temp1".into(),
                current: 40.0,
                ..Default::default()
            },
            SensorReading {
                name: "nvme".into(),
                label: "temp1".into(),
                current: 35.0,
                ..Default::default()
            },
        ];
        let got = samples_of(&s);
        let find = |f, d: &str| {
            got.iter()
                .filter(|(k, _)| k.figure == f && k.device == d)
                .map(|(_, v)| *v)
                .collect::<Vec<_>>()
        };
        assert_eq!(find(Figure::CpuCore, "cpu0"), [10.0]);
        assert!(find(Figure::CpuCore, "cpu1").is_empty(), "NaN left out");
        assert_eq!(find(Figure::FsInodesUsage, "/"), [25.0]);
        assert!(find(Figure::FsInodesUsage, "/var").is_empty());
        assert_eq!(find(Figure::DiskUtil, "vda1").len(), 1, "one device once");
        assert_eq!(find(Figure::Temp, "temp1 (coretemp)"), [40.0]);
        assert_eq!(find(Figure::Temp, "temp1 (nvme)"), [35.0]);
        assert!(find(Figure::PsiCpuSome, "").is_empty(), "no PSI, no series");
        assert!(find(Figure::CpuMode, "steal").is_empty());
        assert_eq!(find(Figure::CpuMode, "idle").len(), 1);
    }
}
