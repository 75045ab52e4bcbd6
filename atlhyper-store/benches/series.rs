//! Series store benches, SQLite (synchronous FULL) and memory, in one run:
//! - `series_write`: one tier 0 row per node for 100 nodes of a typical layout (8 cores, 2 disks,
//!   2 mounts, 3 interfaces, 4 sensors, PSI: 74 series), one batch, as the master writes an
//!   interval; reported per row (= per node per interval).
//! - `series_read_30d`: one series (`disk.write_rate` of `vda`) of one node over 30 days of tier
//!   0 rows (8640 rows): `*_one_series` decodes that series alone (the others are stepped
//!   over), `*_whole_rows` reads every series of the rows (what a one-series read cost when
//!   whole rows were decoded, as before).
//! - `series_accumulate`: one snapshot of a 32-core node with 8 disks, 8 interfaces, 8 sensors
//!   and PSI taken into the accumulator (5 s apart, so one in 60 ends an interval and builds
//!   its row); `samples_of` beside it for scale (the per-snapshot key list the accumulator built
//!   before, a `String` per series). A counting allocator prints allocations per snapshot.
//!
//! Before the criterion groups it writes 3 days of one row per node per 5 minutes for 20 such
//! nodes into one fresh file, and the nine-figure history (one point per node per 5 minutes,
//! the same signals) into another, vacuums both and prints the bytes per node per day of each
//! and their ratio.
//!
//! Run: `cargo bench -p atlhyper-store --bench series -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::path::Path;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use atlhyper_model::{MetricsDataPoint, NodeMetricsSnapshot, PsiMetrics, SensorReading};
use atlhyper_store::{
    Figure, MemoryStore, MetricsStore, SeriesAccumulator, SeriesKey, SeriesQuery, SeriesRow,
    SeriesStore, SqliteStore, Triple, samples_of,
};
use chrono::DateTime;
use criterion::{BatchSize, Criterion, Throughput};
use tokio::runtime::Runtime;

/// Counts allocations, to show what a snapshot allocates.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const FIVE_MIN_MS: i64 = 300_000;
const DAY_MS: i64 = 86_400_000;
const T0: i64 = 1_704_067_200_000; // 2024-01-01T00:00:00Z
/// Snapshots per interval (5 s apart over 5 minutes).
const SAMPLES: u32 = 60;

/// Every series of a typical node.
fn layout() -> Vec<SeriesKey> {
    let mut keys = vec![SeriesKey::node(Figure::CpuUsage)];
    for mode in [
        "user", "system", "iowait", "steal", "irq", "softirq", "nice", "idle",
    ] {
        keys.push(SeriesKey::device(Figure::CpuMode, mode));
    }
    for core in 0..8 {
        keys.push(SeriesKey::device(Figure::CpuCore, format!("cpu{core}")));
    }
    for f in [
        Figure::Load1,
        Figure::Load5,
        Figure::Load15,
        Figure::MemoryUsage,
        Figure::MemoryUsed,
        Figure::MemoryAvailable,
        Figure::MemoryCached,
        Figure::MemoryBuffers,
        Figure::SwapUsage,
        Figure::SwapUsed,
        Figure::PsiCpuSome,
        Figure::PsiMemorySome,
        Figure::PsiMemoryFull,
        Figure::PsiIoSome,
        Figure::PsiIoFull,
    ] {
        keys.push(SeriesKey::node(f));
    }
    for mount in ["/", "/var/lib/kubelet"] {
        keys.push(SeriesKey::device(Figure::FsUsage, mount));
        keys.push(SeriesKey::device(Figure::FsInodesUsage, mount));
    }
    for disk in ["vda", "vdb"] {
        for f in [
            Figure::DiskReadRate,
            Figure::DiskWriteRate,
            Figure::DiskReadIops,
            Figure::DiskWriteIops,
            Figure::DiskUtil,
        ] {
            keys.push(SeriesKey::device(f, disk));
        }
    }
    for iface in ["eth0", "eth1", "bond0"] {
        for f in [
            Figure::NetRxRate,
            Figure::NetTxRate,
            Figure::NetRxErrors,
            Figure::NetTxErrors,
            Figure::NetRxDrops,
            Figure::NetTxDrops,
        ] {
            keys.push(SeriesKey::device(f, iface));
        }
    }
    for sensor in ["Package id 0", "Core 0", "Core 1", "nvme Composite"] {
        keys.push(SeriesKey::device(Figure::Temp, sensor));
    }
    keys.sort();
    keys
}

/// One 5 s sample of a series: a level per series plus noise, as a busy-ish node moves.
fn sample(key: &SeriesKey, rng: &mut fastrand::Rng, level: f64) -> f64 {
    let noise = |rng: &mut fastrand::Rng, spread: f64| (rng.f64() - 0.5) * spread;
    match key.figure {
        Figure::CpuUsage | Figure::CpuCore => (level * 40.0 + noise(rng, 30.0)).clamp(0.0, 100.0),
        Figure::CpuMode => match key.device.as_str() {
            "user" => (level * 25.0 + noise(rng, 20.0)).max(0.0),
            "system" => (level * 10.0 + noise(rng, 8.0)).max(0.0),
            "idle" => (60.0 + noise(rng, 30.0)).max(0.0),
            "iowait" | "softirq" => (noise(rng, 2.0)).max(0.0),
            // Steal, irq and nice stay at zero on most nodes.
            _ => 0.0,
        },
        Figure::Load1 | Figure::Load5 | Figure::Load15 => level * 3.0 + noise(rng, 0.5).abs(),
        Figure::MemoryUsage => 55.0 + level * 10.0 + noise(rng, 0.4),
        Figure::MemoryUsed | Figure::MemoryAvailable => {
            8e9 + level * 1e9 + (noise(rng, 5e7) / 4096.0).round() * 4096.0
        }
        Figure::MemoryCached => 3e9 + (noise(rng, 2e7) / 4096.0).round() * 4096.0,
        Figure::MemoryBuffers => 2.5e8,
        Figure::SwapUsage | Figure::SwapUsed => 0.0,
        Figure::FsUsage => 40.0 + level,
        Figure::FsInodesUsage => 3.1,
        Figure::DiskReadRate | Figure::DiskWriteRate if key.device == "vdb" => 0.0,
        Figure::DiskReadRate | Figure::DiskWriteRate => (level * 2e6 + noise(rng, 2e6)).max(0.0),
        Figure::DiskReadIops | Figure::DiskWriteIops if key.device == "vdb" => 0.0,
        Figure::DiskReadIops | Figure::DiskWriteIops => (level * 50.0 + noise(rng, 40.0)).max(0.0),
        Figure::DiskUtil => (level * 5.0 + noise(rng, 4.0)).max(0.0),
        Figure::NetRxRate | Figure::NetTxRate if key.device == "eth1" => 0.0,
        Figure::NetRxRate | Figure::NetTxRate => (level * 1e6 + noise(rng, 8e5)).max(0.0),
        Figure::NetRxErrors | Figure::NetTxErrors | Figure::NetRxDrops | Figure::NetTxDrops => 0.0,
        Figure::Temp => (45.0 + level * 10.0 + noise(rng, 4.0)).round(),
        Figure::PsiCpuSome | Figure::PsiIoSome => (level * 2.0 + noise(rng, 1.0)).max(0.0),
        Figure::PsiMemorySome | Figure::PsiMemoryFull | Figure::PsiIoFull => 0.0,
    }
}

/// One interval of one node: 60 samples per series folded into (min, avg, max), and the
/// nine-figure history point the same interval gives today (its first sample).
fn interval(
    keys: &[SeriesKey],
    node: usize,
    start_ms: i64,
    rng: &mut fastrand::Rng,
) -> (SeriesRow, MetricsDataPoint) {
    let level = 0.5 + 0.4 * ((start_ms / FIVE_MIN_MS + node as i64) as f64 / 40.0).sin();
    let mut first = Vec::with_capacity(keys.len());
    let series = keys
        .iter()
        .map(|k| {
            let values: Vec<f64> = (0..SAMPLES).map(|_| sample(k, rng, level)).collect();
            first.push(values[0]);
            let min = values.iter().copied().fold(f64::INFINITY, f64::min);
            let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let avg = values.iter().sum::<f64>() / f64::from(SAMPLES);
            (k.clone(), Triple::new(min, avg, max))
        })
        .collect();
    let name = format!("node-{node:04}");
    let of = |f: Figure, d: &str| {
        keys.iter()
            .position(|k| k.figure == f && k.device == d)
            .map_or(0.0, |i| first[i])
    };
    let point = MetricsDataPoint {
        timestamp: DateTime::from_timestamp_millis(start_ms).unwrap(),
        node_name: name.clone(),
        cpu_usage: of(Figure::CpuUsage, ""),
        memory_usage: of(Figure::MemoryUsage, ""),
        disk_usage: of(Figure::FsUsage, "/"),
        disk_io_read: of(Figure::DiskReadRate, "vda"),
        disk_io_write: of(Figure::DiskWriteRate, "vda"),
        network_rx: of(Figure::NetRxRate, "eth0"),
        network_tx: of(Figure::NetTxRate, "eth0"),
        cpu_temp: of(Figure::Temp, "Package id 0"),
        load_1: of(Figure::Load1, ""),
        ..Default::default()
    };
    let row = SeriesRow {
        node_name: name,
        start_ms,
        samples: SAMPLES,
        series,
    };
    (row, point)
}

/// Bytes of a closed SQLite file once vacuumed.
fn vacuumed_bytes(path: &Path) -> u64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch("VACUUM").unwrap();
    let pages: i64 = conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    let size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    u64::try_from(pages * size).unwrap()
}

/// Writes `days` of 5-minute rows for `nodes` nodes into two fresh files (series, nine-figure
/// history) and prints the bytes per node per day of each.
fn report_bytes_per_day(rt: &Runtime, nodes: usize, days: i64) {
    let dir = tempfile::tempdir().unwrap();
    let keys = layout();
    let (empty, series_db, history_db) = (
        dir.path().join("empty.db"),
        dir.path().join("series.db"),
        dir.path().join("history.db"),
    );
    SqliteStore::open(&empty).unwrap().close().unwrap();
    let series = SqliteStore::open(&series_db).unwrap();
    let history = SqliteStore::open(&history_db).unwrap();
    let mut rng = fastrand::Rng::with_seed(7);
    rt.block_on(async {
        for i in 0..days * DAY_MS / FIVE_MIN_MS {
            let start = T0 + i * FIVE_MIN_MS;
            let (rows, points): (Vec<_>, Vec<_>) = (0..nodes)
                .map(|n| interval(&keys, n, start, &mut rng))
                .unzip();
            series.append_series("prod", 0, &rows).await.unwrap();
            history.append_history("prod", &points).await.unwrap();
        }
    });
    series.close().unwrap();
    history.close().unwrap();
    let base = vacuumed_bytes(&empty);
    let per = |path: &Path| (vacuumed_bytes(path) - base) as f64 / (nodes as f64 * days as f64);
    let (s, h) = (per(&series_db), per(&history_db));
    println!(
        "bytes per node per day (SQLite, vacuumed, {nodes} nodes x {days} days, {} series per \
         node): series {s:.0}, nine-figure history {h:.0}, ratio {:.2}",
        keys.len(),
        s / h
    );
}

fn benches(c: &mut Criterion, rt: &Runtime) {
    let keys = layout();
    let mut rng = fastrand::Rng::with_seed(11);
    let dir = tempfile::tempdir().unwrap();

    let mut group = c.benchmark_group("series_write");
    let nodes = 100;
    group.throughput(Throughput::Elements(nodes as u64));
    let sqlite = SqliteStore::open(dir.path().join("write.db")).unwrap();
    let memory = MemoryStore::new();
    let mut start = T0;
    let mut next_batch = || {
        start += FIVE_MIN_MS;
        (0..nodes)
            .map(|n| interval(&keys, n, start, &mut rng).0)
            .collect::<Vec<_>>()
    };
    group.bench_function("sqlite_100_nodes", |b| {
        b.iter_batched(
            &mut next_batch,
            |rows| rt.block_on(sqlite.append_series("prod", 0, &rows)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("memory_100_nodes", |b| {
        b.iter_batched(
            &mut next_batch,
            |rows| rt.block_on(memory.append_series("prod", 0, &rows)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();

    // 30 days of one node.
    let read = SqliteStore::open(dir.path().join("read.db")).unwrap();
    let memory = MemoryStore::new();
    rt.block_on(async {
        let rows: Vec<SeriesRow> = (0..30 * DAY_MS / FIVE_MIN_MS)
            .map(|i| interval(&keys, 0, T0 + i * FIVE_MIN_MS, &mut rng).0)
            .collect();
        for chunk in rows.chunks(500) {
            read.append_series("prod", 0, chunk).await.unwrap();
            memory.append_series("prod", 0, chunk).await.unwrap();
        }
    });
    let query = SeriesQuery {
        figure: Some(Figure::DiskWriteRate),
        device: Some("vda".to_owned()),
        ..SeriesQuery::node("prod", "node-0000", 0, T0, T0 + 30 * DAY_MS)
    };
    let whole = SeriesQuery {
        figure: None,
        device: None,
        ..query.clone()
    };
    let mut group = c.benchmark_group("series_read_30d");
    group.bench_function("sqlite_one_series", |b| {
        b.iter(|| {
            let rows = rt.block_on(read.read_series(&query)).unwrap();
            assert_eq!(rows.len(), 8640);
            black_box(rows)
        })
    });
    group.bench_function("sqlite_whole_rows", |b| {
        b.iter(|| black_box(rt.block_on(read.read_series(&whole)).unwrap()))
    });
    group.bench_function("memory_one_series", |b| {
        b.iter(|| black_box(rt.block_on(memory.read_series(&query)).unwrap()))
    });
    group.bench_function("memory_whole_rows", |b| {
        b.iter(|| black_box(rt.block_on(memory.read_series(&whole)).unwrap()))
    });
    group.finish();

    let mut node = big_node();
    let acc = SeriesAccumulator::default();
    let mut at = T0;
    let mut add = |node: &mut NodeMetricsSnapshot| {
        at += 5_000;
        node.timestamp = DateTime::from_timestamp_millis(at).unwrap();
        node.cpu.usage_percent = (at / 5_000 % 100) as f64;
        acc.add("prod", node, FIVE_MIN_MS)
    };
    // Allocations: 59 snapshots inside an interval, then the one that ends it.
    while add(&mut node).is_none() {}
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..59 {
        assert!(add(&mut node).is_none());
    }
    let inside = ALLOCATIONS.load(Ordering::Relaxed) - before;
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let row = add(&mut node).expect("the 60th snapshot ends the interval");
    let ending = ALLOCATIONS.load(Ordering::Relaxed) - before;
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    black_box(samples_of(&node));
    let listed = ALLOCATIONS.load(Ordering::Relaxed) - before;
    println!(
        "accumulator, node of {} series: {:.1} allocations per snapshot inside an interval \
         (59 snapshots: {inside}), {ending} for the snapshot that ends one (its row); \
         samples_of alone: {listed}",
        row.series.len(),
        inside as f64 / 59.0,
    );
    let mut group = c.benchmark_group("series_accumulate");
    group.bench_function("add_32_cores_8_disks_8_interfaces", |b| {
        b.iter(|| black_box(add(&mut node)))
    });
    group.bench_function("samples_of_same_node", |b| {
        b.iter(|| black_box(samples_of(&node)))
    });
    group.finish();
}

/// A big node: 32 cores, 8 disks (one mount each), 8 interfaces, 8 sensors, PSI.
fn big_node() -> NodeMetricsSnapshot {
    let mut node = NodeMetricsSnapshot {
        node_name: "big-0001".to_owned(),
        ..Default::default()
    };
    node.cpu.per_core = (0..32).map(|i| f64::from(i) * 3.0).collect();
    node.cpu.steal_percent = Some(0.0);
    node.cpu.irq_percent = Some(0.1);
    node.cpu.softirq_percent = Some(0.2);
    node.cpu.nice_percent = Some(0.0);
    node.disks = (0..8)
        .map(|i| atlhyper_model::DiskMetrics {
            device: format!("nvme{i}n1"),
            mount_point: format!("/data/{i}"),
            usage_percent: 40.0,
            inodes_total: Some(1_000_000),
            inodes_used: Some(30_000),
            read_rate: 1e6,
            write_rate: 2e6,
            read_iops: 50.0,
            write_iops: 80.0,
            io_util: 5.0,
            ..Default::default()
        })
        .collect();
    node.networks = (0..8)
        .map(|i| atlhyper_model::NetworkMetrics {
            interface: format!("ens{i}"),
            rx_rate: 1e6,
            tx_rate: 5e5,
            rx_errors_rate: Some(0.0),
            tx_errors_rate: Some(0.0),
            rx_dropped_rate: Some(0.0),
            tx_dropped_rate: Some(0.0),
            ..Default::default()
        })
        .collect();
    node.temperature.sensors = (0..8)
        .map(|i| SensorReading {
            name: "coretemp".to_owned(),
            label: format!("Core {i}"),
            current: 50.0,
            ..Default::default()
        })
        .collect();
    node.psi = Some(PsiMetrics::default());
    node
}

fn main() {
    let rt = Runtime::new().unwrap();
    report_bytes_per_day(&rt, 20, 3);
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c, &rt);
    c.final_summary();
}
