//! Fixtures shared by the integration tests.
#![allow(dead_code)]

use atlhyper_model::{
    CommandRecord, CpuMetrics, DiskMetrics, MemoryMetrics, MetricsDataPoint, NetworkMetrics,
    NodeMetricsSnapshot, NodeTotals, ProcessMetrics, PsiMetrics, SoftnetMetrics, SystemMetrics,
    TcpMetrics, TemperatureMetrics, VmstatMetrics,
};
use atlhyper_store::{
    AgentRegistry, AlertStore, CommandQueue, MemoryStore, MetricsStore, NotifyStore, PgStore,
    SqliteOptions, SqliteStore, StoreError, Synchronous,
};
use chrono::{DateTime, TimeZone, Utc};

/// Every trait at once.
pub trait Store: MetricsStore + CommandQueue + AgentRegistry + AlertStore + NotifyStore {}
impl<T: MetricsStore + CommandQueue + AgentRegistry + AlertStore + NotifyStore> Store for T {}

/// An engine under test and what must live as long as it.
pub struct Engine<S> {
    pub store: S,
    pub dir: Option<tempfile::TempDir>,
}

pub fn memory() -> Engine<MemoryStore> {
    Engine {
        store: MemoryStore::new(),
        dir: None,
    }
}

/// The PostgreSQL engine over a fresh database of the shared test server (see
/// [`atlhyper_testkit::TestPostgres`]); `None` (the test skips) when there is no PostgreSQL here.
pub async fn postgres() -> Option<PgEngine> {
    let server = atlhyper_testkit::TestPostgres::shared()?;
    let url = server.fresh_database();
    let store = PgStore::connect(&url).await.expect("connect to PostgreSQL");
    Some(PgEngine {
        store,
        url,
        _server: server,
    })
}

/// The PostgreSQL engine under test, its database's URL and the server it lives on.
pub struct PgEngine {
    pub store: PgStore,
    pub url: String,
    _server: std::sync::Arc<atlhyper_testkit::TestPostgres>,
}

pub fn sqlite() -> Engine<SqliteStore> {
    sqlite_with(Synchronous::Full)
}

pub fn sqlite_with(synchronous: Synchronous) -> Engine<SqliteStore> {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = SqliteOptions {
        synchronous,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open_with(dir.path().join("store.db"), &options).expect("open");
    Engine {
        store,
        dir: Some(dir),
    }
}

/// 2024-01-20T00:00:00Z plus `secs` seconds.
pub fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 20, 0, 0, 0).unwrap() + chrono::TimeDelta::seconds(secs)
}

/// A realistic snapshot of `node` at `at` with CPU at `cpu` percent.
pub fn snapshot(node: &str, at: DateTime<Utc>, cpu: f64) -> NodeMetricsSnapshot {
    NodeMetricsSnapshot {
        node_name: node.to_owned(),
        timestamp: at,
        hostname: format!("{node}.example"),
        os: "Debian GNU/Linux 12 (bookworm)".to_owned(),
        kernel: "6.1.0-18-amd64".to_owned(),
        uptime: 123_456,
        cpu: CpuMetrics {
            usage_percent: cpu,
            user_percent: cpu * 0.7,
            system_percent: cpu * 0.3,
            idle_percent: 100.0 - cpu,
            per_core: vec![cpu, 0.1 + 0.2, 1.0 / 3.0, 99.99],
            load_1: 0.42,
            model: "AMD EPYC".to_owned(),
            cores: 4,
            threads: 8,
            ..CpuMetrics::default()
        },
        memory: MemoryMetrics {
            total: 16 << 30,
            used: 6 << 30,
            usage_percent: 37.5,
            ..MemoryMetrics::default()
        },
        disks: vec![DiskMetrics {
            device: "sda1".to_owned(),
            mount_point: "/".to_owned(),
            fs_type: "ext4".to_owned(),
            total: 100 << 30,
            used: 40 << 30,
            usage_percent: 40.0,
            read_rate: 1234.5678,
            inodes_total: Some(6_000_000),
            ..DiskMetrics::default()
        }],
        networks: vec![NetworkMetrics {
            interface: "eth0".to_owned(),
            rx_rate: 2.0e6 / 7.0,
            ..NetworkMetrics::default()
        }],
        temperature: TemperatureMetrics {
            cpu_temp: 51.25,
            ..TemperatureMetrics::default()
        },
        processes: vec![ProcessMetrics {
            pid: 1,
            name: "systemd".to_owned(),
            cpu_percent: 0.01,
            ..ProcessMetrics::default()
        }],
        psi: Some(PsiMetrics::default()),
        totals: Some(NodeTotals::default()),
        tcp: Some(TcpMetrics {
            curr_estab: 18,
            sockets_used: 109,
            ..TcpMetrics::default()
        }),
        // No conntrack module on this node: those figures stay absent through the store.
        system: Some(SystemMetrics {
            filefd_allocated: Some(2379),
            filefd_max: Some(2_466_170),
            ..SystemMetrics::default()
        }),
        vmstat: Some(VmstatMetrics {
            pgfault_rate: 145_633.0 / 4.9,
            ..VmstatMetrics::default()
        }),
        softnet: Some(SoftnetMetrics {
            dropped_rate: 1.0 / 3.0,
            squeezed_rate: 0.0,
        }),
        collectors: Vec::new(),
        clock_skew_seconds: None,
    }
}

/// A history point of `node` at `at` whose numbers all derive from `v`.
pub fn point(node: &str, at: DateTime<Utc>, v: f64) -> MetricsDataPoint {
    MetricsDataPoint {
        timestamp: at,
        node_name: node.to_owned(),
        cpu_usage: v,
        memory_usage: v / 2.0,
        disk_usage: 40.0,
        disk_io_read: v * 1000.0,
        disk_io_write: v * 3.0,
        network_rx: v * 7.0,
        network_tx: 0.1,
        cpu_temp: 50.0 + v / 10.0,
        load_1: v / 100.0,
        ..Default::default()
    }
}

/// A pending command of `cluster` created at `created` with a deadline `ttl` seconds later.
pub fn command(id: &str, cluster: &str, action: &str, created: i64, ttl: i64) -> CommandRecord {
    let mut params = serde_json::Map::new();
    params.insert("window".to_owned(), serde_json::json!("1h"));
    CommandRecord {
        command_id: id.to_owned(),
        cluster_id: cluster.to_owned(),
        action: action.to_owned(),
        target_kind: "Node".to_owned(),
        target_namespace: String::new(),
        target_name: "worker-1".to_owned(),
        params,
        created_at: t(created),
        deadline: t(created + ttl),
        ..CommandRecord::default()
    }
}

/// The variant of an error, for comparing engines.
pub fn kind(e: &StoreError) -> &'static str {
    match e {
        StoreError::NotFound(_) => "not_found",
        StoreError::Invalid(_) => "invalid",
        StoreError::Full(_) => "full",
        StoreError::Corrupt(_) => "corrupt",
        StoreError::Backend(_) => "backend",
    }
}
