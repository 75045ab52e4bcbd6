//! The figures a node snapshot carries, as named series: their names, units and the device each
//! series is kept per, and the samples one snapshot gives.

use atlhyper_model::NodeMetricsSnapshot;

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

    /// The step values are stored at: what the source can tell apart (meminfo counts KiB; a
    /// byte per second is below any disk's or link's noise; hundredths of a percent, a degree,
    /// a load point or an event per second).
    pub fn quantum(self) -> f64 {
        match self.unit() {
            "B" => 1024.0,
            "B/s" => 1.0,
            _ => 0.01,
        }
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

/// Every figure one snapshot gives, one value per series; non-finite values are left out. Disks
/// are taken by device once (several mounts of one device report its IO once), mounts by mount
/// point, sensors by label (the chip's name is added when two chips use one label).
pub fn samples_of(s: &NodeMetricsSnapshot) -> Vec<(SeriesKey, f64)> {
    let mut out: Vec<(SeriesKey, f64)> = Vec::with_capacity(96);
    let node = |out: &mut Vec<(SeriesKey, f64)>, figure: Figure, v: f64| {
        out.push((SeriesKey::node(figure), v));
    };
    let cpu = &s.cpu;
    node(&mut out, Figure::CpuUsage, cpu.usage_percent);
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
            out.push((SeriesKey::device(Figure::CpuMode, mode), v));
        }
    }
    for (i, v) in cpu.per_core.iter().enumerate() {
        out.push((SeriesKey::device(Figure::CpuCore, format!("cpu{i}")), *v));
    }
    node(&mut out, Figure::Load1, cpu.load_1);
    node(&mut out, Figure::Load5, cpu.load_5);
    node(&mut out, Figure::Load15, cpu.load_15);

    let mem = &s.memory;
    node(&mut out, Figure::MemoryUsage, mem.usage_percent);
    node(&mut out, Figure::MemoryUsed, mem.used as f64);
    node(&mut out, Figure::MemoryAvailable, mem.available as f64);
    node(&mut out, Figure::MemoryCached, mem.cached as f64);
    node(&mut out, Figure::MemoryBuffers, mem.buffers as f64);
    node(&mut out, Figure::SwapUsage, mem.swap_percent);
    node(&mut out, Figure::SwapUsed, mem.swap_used as f64);

    let mut mounts: Vec<&str> = Vec::new();
    let mut devices: Vec<&str> = Vec::new();
    for d in &s.disks {
        if !d.mount_point.is_empty() && !mounts.contains(&d.mount_point.as_str()) {
            mounts.push(&d.mount_point);
            let mount = |f| SeriesKey::device(f, d.mount_point.as_str());
            out.push((mount(Figure::FsUsage), d.usage_percent));
            if let (Some(total), Some(used)) = (d.inodes_total, d.inodes_used)
                && total > 0
            {
                let pct = used as f64 / total as f64 * 100.0;
                out.push((mount(Figure::FsInodesUsage), pct));
            }
        }
        if !d.device.is_empty() && !devices.contains(&d.device.as_str()) {
            devices.push(&d.device);
            let disk = |f| SeriesKey::device(f, d.device.as_str());
            out.push((disk(Figure::DiskReadRate), d.read_rate));
            out.push((disk(Figure::DiskWriteRate), d.write_rate));
            out.push((disk(Figure::DiskReadIops), d.read_iops));
            out.push((disk(Figure::DiskWriteIops), d.write_iops));
            out.push((disk(Figure::DiskUtil), d.io_util));
        }
    }

    let mut interfaces: Vec<&str> = Vec::new();
    for n in &s.networks {
        if n.interface.is_empty() || interfaces.contains(&n.interface.as_str()) {
            continue;
        }
        interfaces.push(&n.interface);
        let iface = |f| SeriesKey::device(f, n.interface.as_str());
        out.push((iface(Figure::NetRxRate), n.rx_rate));
        out.push((iface(Figure::NetTxRate), n.tx_rate));
        for (figure, v) in [
            (Figure::NetRxErrors, n.rx_errors_rate),
            (Figure::NetTxErrors, n.tx_errors_rate),
            (Figure::NetRxDrops, n.rx_dropped_rate),
            (Figure::NetTxDrops, n.tx_dropped_rate),
        ] {
            if let Some(v) = v {
                out.push((iface(figure), v));
            }
        }
    }

    let sensors = &s.temperature.sensors;
    let mut labels: Vec<String> = Vec::with_capacity(sensors.len());
    for r in sensors {
        let label = if r.label.is_empty() {
            &r.name
        } else {
            &r.label
        };
        if label.is_empty() {
            continue;
        }
        let shared = sensors
            .iter()
            .filter(|o| {
                (if o.label.is_empty() {
                    &o.name
                } else {
                    &o.label
                }) == label
            })
            .count()
            > 1;
        let device = if shared && !r.name.is_empty() && r.name != *label {
            format!("{label} ({})", r.name)
        } else {
            label.clone()
        };
        if labels.contains(&device) {
            continue;
        }
        labels.push(device.clone());
        out.push((SeriesKey::device(Figure::Temp, device), r.current));
    }

    if let Some(psi) = &s.psi {
        node(&mut out, Figure::PsiCpuSome, psi.cpu_some);
        node(&mut out, Figure::PsiMemorySome, psi.memory_some);
        node(&mut out, Figure::PsiMemoryFull, psi.memory_full);
        node(&mut out, Figure::PsiIoSome, psi.io_some);
        node(&mut out, Figure::PsiIoFull, psi.io_full);
    }
    out.retain(|(_, v)| v.is_finite());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use atlhyper_model::{DiskMetrics, SensorReading};

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
