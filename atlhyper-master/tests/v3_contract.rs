//! The contract with the AtlHyper web (model_v3): every field its TypeScript types read, written
//! out below as data (`atlhyper_web/src/types/node-metrics.ts`, the cluster list of
//! `src/types/cluster.ts` and `src/api/cluster.ts`, the envelope of `src/api/observe-common.ts`,
//! the history of `src/api/node-metrics.ts`, the error of `src/api/request.ts`), checked
//! against the master's answers for a realistic node with every extension and for a node with
//! none. Then what the figures mean (units, rates, the primary IP), and that a silent agent
//! makes every v3 answer say offline.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use atlhyper_master::{Master, MasterConfig};
use atlhyper_model::{ClusterSnapshot, MetricsDataPoint, NodeMetricsSnapshot};
use atlhyper_store::MemoryStore;
use chrono::Utc;
use serde_json::Value;

use common::{get, node_with_every_extension, push, series_points, spawn_agent, spawn_agent_with};

/// A JSON type as the TypeScript types declare it.
#[derive(Debug)]
enum Ty {
    Num,
    Str,
    Bool,
    Obj(&'static [Field]),
    Arr(&'static Ty),
    /// `Record<string, T>` read at the given keys.
    Record(&'static [&'static str], &'static Ty),
}

/// One property of an interface: its name, its type, and whether it is optional (`name?:`).
#[derive(Debug)]
struct Field(&'static str, Ty, bool);

use Ty::{Arr, Bool, Num, Obj, Record, Str};

const REQ: bool = false;
const OPT: bool = true;

/// `NodeCPU`.
const NODE_CPU: &[Field] = &[
    Field("usagePct", Num, REQ),
    Field("userPct", Num, REQ),
    Field("systemPct", Num, REQ),
    Field("iowaitPct", Num, REQ),
    Field("load1", Num, REQ),
    Field("load5", Num, REQ),
    Field("load15", Num, REQ),
    Field("cores", Num, REQ),
    Field("freqHz", Arr(&Num), OPT),
];

/// `NodeMemory`.
const NODE_MEMORY: &[Field] = &[
    Field("totalBytes", Num, REQ),
    Field("availableBytes", Num, REQ),
    Field("freeBytes", Num, REQ),
    Field("cachedBytes", Num, REQ),
    Field("buffersBytes", Num, REQ),
    Field("usagePct", Num, REQ),
    Field("swapTotalBytes", Num, REQ),
    Field("swapFreeBytes", Num, REQ),
    Field("swapUsagePct", Num, REQ),
];

/// `NodeDisk`.
const NODE_DISK: &[Field] = &[
    Field("device", Str, REQ),
    Field("mountPoint", Str, REQ),
    Field("fsType", Str, REQ),
    Field("totalBytes", Num, REQ),
    Field("availBytes", Num, REQ),
    Field("usagePct", Num, REQ),
    Field("readBytesPerSec", Num, REQ),
    Field("writeBytesPerSec", Num, REQ),
    Field("readIOPS", Num, REQ),
    Field("writeIOPS", Num, REQ),
    Field("ioUtilPct", Num, REQ),
];

/// `NodeNetwork`.
const NODE_NETWORK: &[Field] = &[
    Field("interface", Str, REQ),
    Field("up", Bool, REQ),
    Field("speedBps", Num, REQ),
    Field("mtu", Num, REQ),
    Field("rxBytesPerSec", Num, REQ),
    Field("txBytesPerSec", Num, REQ),
    Field("rxPktPerSec", Num, REQ),
    Field("txPktPerSec", Num, REQ),
    Field("rxErrPerSec", Num, REQ),
    Field("txErrPerSec", Num, REQ),
    Field("rxDropPerSec", Num, REQ),
    Field("txDropPerSec", Num, REQ),
];

/// `TempSensor`.
const TEMP_SENSOR: &[Field] = &[
    Field("chip", Str, REQ),
    Field("sensor", Str, REQ),
    Field("currentC", Num, REQ),
    Field("maxC", Num, REQ),
    Field("critC", Num, REQ),
];

/// `NodeTemperature`.
const NODE_TEMPERATURE: &[Field] = &[
    Field("cpuTempC", Num, REQ),
    Field("cpuMaxC", Num, REQ),
    Field("cpuCritC", Num, REQ),
    Field("sensors", Arr(&Obj(TEMP_SENSOR)), REQ),
];

/// `NodePSI`.
const NODE_PSI: &[Field] = &[
    Field("cpuSomePct", Num, REQ),
    Field("memSomePct", Num, REQ),
    Field("memFullPct", Num, REQ),
    Field("ioSomePct", Num, REQ),
    Field("ioFullPct", Num, REQ),
];

/// `NodeTCP`.
const NODE_TCP: &[Field] = &[
    Field("currEstab", Num, REQ),
    Field("alloc", Num, REQ),
    Field("inUse", Num, REQ),
    Field("timeWait", Num, REQ),
    Field("socketsUsed", Num, REQ),
];

/// `NodeSystem`.
const NODE_SYSTEM: &[Field] = &[
    Field("conntrackEntries", Num, REQ),
    Field("conntrackLimit", Num, REQ),
    Field("filefdAllocated", Num, REQ),
    Field("filefdMax", Num, REQ),
    Field("entropyBits", Num, REQ),
];

/// `NodeVMStat`.
const NODE_VMSTAT: &[Field] = &[
    Field("pgFaultPerSec", Num, REQ),
    Field("pgMajFaultPerSec", Num, REQ),
    Field("pswpInPerSec", Num, REQ),
    Field("pswpOutPerSec", Num, REQ),
];

/// `NodeSoftnet`.
const NODE_SOFTNET: &[Field] = &[
    Field("droppedPerSec", Num, REQ),
    Field("squeezedPerSec", Num, REQ),
];

/// `NodeMetrics`.
const NODE_METRICS: &[Field] = &[
    Field("nodeName", Str, REQ),
    Field("nodeIP", Str, REQ),
    Field("timestamp", Str, REQ),
    Field("cpu", Obj(NODE_CPU), REQ),
    Field("memory", Obj(NODE_MEMORY), REQ),
    Field("disks", Arr(&Obj(NODE_DISK)), REQ),
    Field("networks", Arr(&Obj(NODE_NETWORK)), REQ),
    Field("temperature", Obj(NODE_TEMPERATURE), REQ),
    Field("psi", Obj(NODE_PSI), REQ),
    Field("tcp", Obj(NODE_TCP), REQ),
    Field("system", Obj(NODE_SYSTEM), REQ),
    Field("vmstat", Obj(NODE_VMSTAT), REQ),
    Field("softnet", Obj(NODE_SOFTNET), REQ),
    Field("kernel", Str, OPT),
    Field("uptime", Num, OPT),
];

/// `Summary`.
const SUMMARY: &[Field] = &[
    Field("totalNodes", Num, REQ),
    Field("onlineNodes", Num, REQ),
    Field("avgCpuPct", Num, REQ),
    Field("avgMemPct", Num, REQ),
    Field("maxCpuPct", Num, REQ),
    Field("maxMemPct", Num, REQ),
    Field("maxCpuTemp", Num, REQ),
];

/// `Point`.
const POINT: &[Field] = &[Field("timestamp", Str, REQ), Field("value", Num, REQ)];

/// `Series` (`labels?` is optional and never read by the pages).
const SERIES: &[Field] = &[
    Field("metric", Str, REQ),
    Field("points", Arr(&Obj(POINT)), REQ),
];

/// The history response `getNodeMetricsHistory` reads; its charts read these four keys.
const HISTORY: &[Field] = &[
    Field("nodeName", Str, REQ),
    Field("start", Str, REQ),
    Field("end", Str, REQ),
    Field(
        "data",
        Record(&["cpu", "memory", "disk", "temp"], &Arr(&Obj(POINT))),
        REQ,
    ),
];

/// `ClusterInfo` (types/cluster.ts).
const CLUSTER_INFO: &[Field] = &[
    Field("clusterId", Str, REQ),
    Field("status", Str, REQ),
    Field("lastSeen", Str, REQ),
    Field("nodeCount", Num, REQ),
    Field("podCount", Num, REQ),
    Field("otelAvailable", Bool, REQ),
];

/// `ClusterListResponse` (api/cluster.ts).
const CLUSTER_LIST: &[Field] = &[
    Field("clusters", Arr(&Obj(CLUSTER_INFO)), REQ),
    Field("total", Num, REQ),
];

/// `ObserveResponse<T>` (api/observe-common.ts) around `T`.
const fn envelope(data: &'static Ty) -> [Field; 2] {
    [Field("message", Str, REQ), Field("data", unref(data), REQ)]
}

/// `Ty` is not `Copy` (it holds slices of fields); rebuild the variant around the same statics.
const fn unref(t: &'static Ty) -> Ty {
    match t {
        Num => Num,
        Str => Str,
        Bool => Bool,
        Obj(f) => Obj(f),
        Arr(e) => Arr(e),
        Record(k, e) => Record(k, e),
    }
}

const OBSERVE_SUMMARY: &[Field] = &envelope(&Obj(SUMMARY));
const OBSERVE_NODES: &[Field] = &envelope(&Arr(&Obj(NODE_METRICS)));
const OBSERVE_NODE: &[Field] = &envelope(&Obj(NODE_METRICS));
const OBSERVE_SERIES: &[Field] = &envelope(&Obj(SERIES));

/// The error body request.ts shows.
const ERROR: &[Field] = &[Field("error", Str, REQ)];

/// Where a check found fault, and every path it saw (to prove optional fields were met).
#[derive(Default)]
struct Report {
    faults: Vec<String>,
    seen: BTreeSet<String>,
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn check_ty(v: &Value, ty: &Ty, path: &str, r: &mut Report) {
    r.seen.insert(path.to_owned());
    let want = match ty {
        Num => "number",
        Str => "string",
        Bool => "boolean",
        Obj(_) | Record(..) => "object",
        Arr(_) => "array",
    };
    if type_of(v) != want {
        r.faults.push(format!(
            "{path}: {} where the web reads a {want}",
            type_of(v)
        ));
        return;
    }
    match ty {
        Obj(fields) => check_fields(v, fields, path, r),
        Arr(elem) => {
            // Paths name the field, not the index, so "seen" covers every element's fields.
            for e in v.as_array().into_iter().flatten() {
                check_ty(e, elem, &format!("{path}[]"), r);
            }
        }
        Record(keys, elem) => {
            for k in *keys {
                match v.get(*k) {
                    Some(e) => check_ty(e, elem, &format!("{path}.{k}"), r),
                    None => r.faults.push(format!("{path}.{k}: missing")),
                }
            }
        }
        Num | Str | Bool => {}
    }
}

fn check_fields(v: &Value, fields: &[Field], path: &str, r: &mut Report) {
    for Field(name, ty, optional) in fields {
        let at = if path.is_empty() {
            (*name).to_owned()
        } else {
            format!("{path}.{name}")
        };
        match v.get(*name) {
            Some(value) => check_ty(value, ty, &at, r),
            None if *optional => {}
            None => r.faults.push(format!("{at}: missing")),
        }
    }
}

/// Every path a value of these fields can have (array elements as `[]`).
fn all_paths(fields: &[Field], path: &str, out: &mut BTreeSet<String>) {
    for Field(name, ty, _) in fields {
        let at = if path.is_empty() {
            (*name).to_owned()
        } else {
            format!("{path}.{name}")
        };
        ty_paths(ty, &at, out);
    }
}

fn ty_paths(ty: &Ty, at: &str, out: &mut BTreeSet<String>) {
    out.insert(at.to_owned());
    match ty {
        Obj(f) => all_paths(f, at, out),
        Arr(e) => ty_paths(e, &format!("{at}[]"), out),
        Record(keys, e) => {
            for k in *keys {
                ty_paths(e, &format!("{at}.{k}"), out);
            }
        }
        Num | Str | Bool => {}
    }
}

/// Checks an answer against the fields; with `complete`, also that every field of the contract
/// (optional ones and every array's elements included) was present.
fn assert_contract(what: &str, body: &[u8], fields: &[Field], complete: bool) {
    let v: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{what}: {e}: {}", String::from_utf8_lossy(body)));
    let mut r = Report::default();
    check_fields(&v, fields, "", &mut r);
    assert!(r.faults.is_empty(), "{what}: {:#?}\n{v:#}", r.faults);
    if complete {
        let mut every = BTreeSet::new();
        all_paths(fields, "", &mut every);
        let unseen: Vec<_> = every.difference(&r.seen).collect();
        assert!(unseen.is_empty(), "{what}: never present: {unseen:?}");
    }
}

fn master() -> Master {
    let store = Arc::new(MemoryStore::new());
    Master::new(MasterConfig::default(), store.clone(), store.clone(), store)
}

/// A node with nothing but its name and time: no extension, no list, no sensor.
fn bare_node(name: &str) -> NodeMetricsSnapshot {
    NodeMetricsSnapshot {
        node_name: name.to_owned(),
        timestamp: Utc::now(),
        ..Default::default()
    }
}

fn cluster_of(id: &str, nodes: Vec<NodeMetricsSnapshot>) -> ClusterSnapshot {
    ClusterSnapshot {
        cluster_id: id.to_owned(),
        timestamp: Utc::now(),
        seq: 1,
        agent_version: "test".to_owned(),
        node_metrics: nodes
            .into_iter()
            .map(|n| (n.node_name.clone(), n))
            .collect(),
        ..Default::default()
    }
}

async fn answer(m: &Master, path: &str, status: u16) -> Vec<u8> {
    let (got, body) = get(m, path).await;
    assert_eq!(
        got.as_u16(),
        status,
        "{path}: {}",
        String::from_utf8_lossy(&body)
    );
    body.to_vec()
}

/// The answers of one cluster whose only node is `node`, checked against the contract.
async fn check_cluster(cluster: &'static str, node: NodeMetricsSnapshot, complete: bool) {
    let m = master();
    let name = node.node_name.clone();
    push(&m, &cluster_of(cluster, vec![node.clone()])).await;
    let agent = spawn_agent(
        &m,
        cluster,
        BTreeMap::from([(name.clone(), node)]),
        Utc::now(),
        2,
    );
    let q = format!("cluster_id={cluster}");
    let cases: [(&str, String, &[Field]); 6] = [
        (
            "summary",
            format!("/api/v2/observe/metrics/summary?{q}"),
            OBSERVE_SUMMARY,
        ),
        (
            "nodes",
            format!("/api/v2/observe/metrics/nodes?{q}"),
            OBSERVE_NODES,
        ),
        (
            "node",
            format!("/api/v2/observe/metrics/nodes/{name}?{q}"),
            OBSERVE_NODE,
        ),
        (
            "series",
            format!("/api/v2/observe/metrics/nodes/{name}/series?{q}&metric=cpu_usage"),
            OBSERVE_SERIES,
        ),
        (
            "history",
            format!("/api/v2/node-metrics/{name}/history?{q}&hours=1"),
            HISTORY,
        ),
        ("clusters", "/api/v2/clusters".to_owned(), CLUSTER_LIST),
    ];
    for (what, path, fields) in cases {
        let body = answer(&m, &path, 200).await;
        assert_contract(&format!("{cluster} {what}"), &body, fields, complete);
    }
    agent.await.unwrap();
    for (path, status) in [
        ("/api/v2/observe/metrics/summary".to_owned(), 400),
        (format!("/api/v2/observe/metrics/nodes/nope?{q}"), 404),
        (
            format!("/api/v2/observe/metrics/nodes/{name}/series?{q}&metric=bogus"),
            400,
        ),
        (format!("/api/v2/node-metrics/{name}/history"), 400),
        (format!("/api/v2/node-metrics/nope/history?{q}"), 404),
    ] {
        let body = answer(&m, &path, status).await;
        assert_contract(&path, &body, ERROR, true);
    }
}

#[tokio::test]
async fn answers_for_a_node_with_every_extension_carry_every_field() {
    check_cluster(
        "full",
        node_with_every_extension("full-1", Utc::now(), 0.5),
        true,
    )
    .await;
}

#[tokio::test]
async fn answers_for_a_node_with_no_extension_carry_every_required_field() {
    check_cluster("bare", bare_node("bare-1"), false).await;
}

#[tokio::test]
async fn the_contract_lists_what_the_web_reads() {
    // The data above is the contract: guard it against losing a field in an edit.
    let mut every = BTreeSet::new();
    all_paths(NODE_METRICS, "", &mut every);
    assert_eq!(every.len(), 90, "{every:#?}");
    for irregular in [
        "nodeIP",
        "cpu.iowaitPct",
        "cpu.freqHz",
        "disks[].readIOPS",
        "disks[].writeIOPS",
        "disks[].availBytes",
        "networks[].speedBps",
        "networks[].up",
        "system.filefdMax",
        "system.entropyBits",
    ] {
        assert!(every.contains(irregular), "{irregular}");
    }
}

#[tokio::test]
async fn v3_figures_mean_what_v3_means() {
    let m = master();
    let now = Utc::now();
    let node = node_with_every_extension("full-1", now, 0.5);
    push(&m, &cluster_of("full", vec![node])).await;
    let body = answer(&m, "/api/v2/observe/metrics/nodes?cluster_id=full", 200).await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    let n = &v["data"][0];
    assert_eq!(n["nodeIP"], "10.0.3.17", "the first interface that is up");
    assert_eq!(n["cpu"]["freqHz"], serde_json::json!([2.2e9]), "MHz to Hz");
    assert_eq!(n["cpu"]["cores"], 4);
    assert_eq!(n["cpu"]["iowaitPct"], 0.5);
    let eth0 = &n["networks"][0];
    assert_eq!(eth0["up"], true);
    assert_eq!(eth0["speedBps"], 1_250_000_000i64, "10 Gbit/s in bytes/s");
    assert_eq!(eth0["rxErrPerSec"], 0.5, "the rate, not the counter");
    assert_eq!(eth0["txDropPerSec"], 0.125);
    assert_eq!(eth0["rxPktPerSec"], 100.0);
    let eth1 = &n["networks"][1];
    assert_eq!(
        (&eth1["up"], &eth1["speedBps"]),
        (&Value::from(false), &Value::from(0))
    );
    let t = &n["temperature"];
    assert_eq!(t["cpuTempC"], 55.0);
    assert_eq!(
        (&t["cpuMaxC"], &t["cpuCritC"]),
        (&Value::from(80.0), &Value::from(100.0))
    );
    assert_eq!(
        t["sensors"][3]["critC"], 89.85,
        "every sensor's own threshold"
    );
    assert_eq!(t["sensors"][4]["critC"], 0.0, "none: 0");
    let root = &n["disks"][0];
    assert_eq!(root["availBytes"], 60u64 << 30, "available, not free");
    assert_eq!(
        (&root["readIOPS"], &root["ioUtilPct"]),
        (&Value::from(10.0), &Value::from(5.0))
    );
    assert_eq!(n["psi"]["memFullPct"], 0.125);
    assert_eq!(n["tcp"]["currEstab"], 42);
    assert_eq!(n["tcp"]["socketsUsed"], 310);
    assert_eq!(n["system"]["filefdMax"], 9_223_372_036_854_775_807u64);
    assert_eq!(n["system"]["conntrackLimit"], 262_144);
    assert_eq!(n["vmstat"]["pgMajFaultPerSec"], 2.0);
    assert_eq!(n["softnet"]["squeezedPerSec"], 1.4);
    assert_eq!(n["uptime"], 86_400);

    let body = answer(&m, "/api/v2/observe/metrics/summary?cluster_id=full", 200).await;
    let s: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(s["message"], "ok");
    assert_eq!(s["data"]["avgCpuPct"], 50.0);
    assert_eq!(s["data"]["maxCpuTemp"], 55.0);
    assert_eq!(s["data"]["onlineNodes"], 1);

    let body = answer(&m, "/api/v2/clusters", 200).await;
    let c: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(c["total"], 1);
    assert_eq!(c["clusters"][0]["otelAvailable"], true);
    assert_eq!(c["clusters"][0]["nodeCount"], 1);
}

#[tokio::test]
async fn series_take_v3_names_and_refuse_unknown_ones() {
    let m = master();
    let now = Utc::now();
    let node = node_with_every_extension("full-1", now, 0.5);
    push(&m, &cluster_of("full", vec![node.clone()])).await;
    // The v3 names of the extension figures, in `MetricsDataPoint::extensions` order.
    let extension_names = [
        "cpu_user",
        "cpu_system",
        "cpu_iowait",
        "cpu_load5",
        "cpu_load15",
        "swap_usage",
        "psi_cpu",
        "psi_memory",
        "psi_io",
        "tcp_established",
        "sockets_used",
        "disk_io_util",
        "net_rx_pkt",
        "net_tx_pkt",
    ];
    let agent = spawn_agent(
        &m,
        "full",
        BTreeMap::from([("full-1".to_owned(), node)]),
        now,
        3 + extension_names.len(),
    );
    let series = "/api/v2/observe/metrics/nodes/full-1/series?cluster_id=full";
    // The fake agent's points: cpu 12, 11, 10 and load1 3, 2, 1, oldest first; extension
    // figure i is 100 (i + 1) + 2, + 1, + 0.
    let extensions = extension_names.iter().enumerate().map(|(i, name)| {
        let base = 100.0 * (i + 1) as f64;
        (*name, [base + 2.0, base + 1.0, base])
    });
    for (metric, values) in [
        ("cpu", [12.0, 11.0, 10.0]),
        ("cpu_load1", [3.0, 2.0, 1.0]),
        ("net_tx", [4002.0, 4001.0, 4000.0]),
    ]
    .into_iter()
    .chain(extensions)
    {
        let body = answer(&m, &format!("{series}&metric={metric}&minutes=5"), 200).await;
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["data"]["metric"], metric);
        let got: Vec<f64> = v["data"]["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["value"].as_f64().unwrap())
            .collect();
        assert_eq!(got, values, "{metric}");
    }
    agent.await.unwrap();

    // Refused before the agent is asked: nothing left to answer them.
    let error = |body: &[u8]| -> String {
        serde_json::from_slice::<Value>(body).unwrap()["error"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let body = answer(&m, &format!("{series}&metric=bogus"), 400).await;
    let e = error(&body);
    assert!(e.contains("unknown metric \"bogus\""), "{e}");
    assert!(
        e.contains("cpu_usage (cpu)") && e.contains("cpu_load1"),
        "{e}"
    );
    let e = error(&answer(&m, series, 400).await);
    assert!(e.contains("metric is required"), "{e}");
    let e = error(&answer(&m, &format!("{series}&metric=cpu&format=v4"), 400).await);
    assert!(e.contains("format must be v3"), "{e}");
    let pending = answer(&m, "/api/v2/commands?status=pending", 200).await;
    assert_eq!(pending, b"[]", "no refused request reached the agent");
}

/// Points of an agent from before the extension figures (nine figures each): the figures they
/// carry answer, an extension figure is a 404 that says why, never a series of zeros.
#[tokio::test]
async fn series_of_a_figure_no_point_carries_is_a_404() {
    let m = master();
    let now = Utc::now();
    let node = node_with_every_extension("old-1", now, 0.5);
    push(&m, &cluster_of("old", vec![node.clone()])).await;
    let agent = spawn_agent_with(
        &m,
        "old",
        BTreeMap::from([("old-1".to_owned(), node)]),
        2,
        move |name| {
            series_points(name, now, 3)
                .iter()
                .map(MetricsDataPoint::without_extensions)
                .collect()
        },
    );
    let series = "/api/v2/observe/metrics/nodes/old-1/series?cluster_id=old&minutes=5";
    let body = answer(&m, &format!("{series}&metric=cpu_load1"), 200).await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["data"]["points"].as_array().unwrap().len(), 3);
    let body = answer(&m, &format!("{series}&metric=psi_io"), 404).await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    let e = v["error"].as_str().unwrap();
    assert!(e.contains("carries psi_io"), "{e}");
    agent.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_silent_agent_makes_every_v3_answer_say_offline() {
    let m = master();
    let node = node_with_every_extension("full-1", Utc::now(), 0.5);
    push(&m, &cluster_of("full", vec![node])).await;
    tokio::time::advance(Duration::from_secs(61)).await;

    let summary: Value = serde_json::from_slice(
        &answer(&m, "/api/v2/observe/metrics/summary?cluster_id=full", 200).await,
    )
    .unwrap();
    assert_eq!(summary["data"]["totalNodes"], 1);
    assert_eq!(summary["data"]["onlineNodes"], 0);
    let nodes: Value = serde_json::from_slice(
        &answer(&m, "/api/v2/observe/metrics/nodes?cluster_id=full", 200).await,
    )
    .unwrap();
    assert_eq!(nodes["nodeStatus"]["full-1"]["state"], "offline");
    assert!(nodes["nodeStatus"]["full-1"]["lastSeen"].is_string());
    // The detail comes from memory, marked offline, without asking the silent agent.
    let node: Value = serde_json::from_slice(
        &answer(
            &m,
            "/api/v2/observe/metrics/nodes/full-1?cluster_id=full",
            200,
        )
        .await,
    )
    .unwrap();
    assert_eq!(node["status"]["state"], "offline");
    assert_eq!(node["data"]["nodeName"], "full-1");
    answer(
        &m,
        "/api/v2/observe/metrics/nodes/full-1/series?cluster_id=full&metric=cpu",
        503,
    )
    .await;
    let clusters: Value =
        serde_json::from_slice(&answer(&m, "/api/v2/clusters", 200).await).unwrap();
    assert_eq!(clusters["clusters"][0]["status"], "offline");
    // The stored history still answers.
    let history: Value = serde_json::from_slice(
        &answer(
            &m,
            "/api/v2/node-metrics/full-1/history?cluster_id=full&hours=1",
            200,
        )
        .await,
    )
    .unwrap();
    assert_eq!(history["nodeName"], "full-1");
    assert_eq!(history["data"]["cpu"].as_array().unwrap().len(), 1);
    assert_eq!(history["data"]["cpu"][0]["value"], 50.0);
}
