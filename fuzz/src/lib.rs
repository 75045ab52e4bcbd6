//! The checks behind every fuzz target, one function per target: each must return (never
//! panic) on any input, and asserts the invariants its target documents. The cargo-fuzz binaries
//! in `fuzz_targets/` call these; the workspace test `tests/fuzz_corpus.rs` replays the committed
//! corpus (`corpus/<target>/`) through the same functions on every `cargo test --workspace`, so
//! an input that once crashed stays a regression test.

use std::io::Read;

use atlhyper_agent::validate_node_name;
use atlhyper_agent::{GunzipError, gunzip_limited};
use atlhyper_collect::etc;
use atlhyper_collect::proc;
use atlhyper_collect::sys;
use atlhyper_master::{parse_agent_tokens, parse_token_list};
use atlhyper_model::ClusterSnapshot;
use atlhyper_model::CommandPoll;
use atlhyper_model::CommandResult;
use atlhyper_model::CreateCommand;
use atlhyper_model::Heartbeat;
use atlhyper_model::NodeMetricsSnapshot;
use atlhyper_model::{parse_duration, parse_listen_addr};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The agent's decompressed body limit for `POST /metrics/node`.
const GZIP_LIMIT: usize = 1 << 20;

/// What every JSON target checks: decoding never panics, and what decodes survives a round trip
/// (encode, decode, encode gives the same JSON), so nothing accepted on ingest is lost or altered
/// when stored and served back.
fn round_trip<T: Serialize + DeserializeOwned>(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<T>(data) else {
        return;
    };
    let first = serde_json::to_string(&value).expect("a decoded value encodes");
    let again: T = serde_json::from_str(&first).expect("what we encode decodes");
    let second = serde_json::to_string(&again).expect("encodes");
    assert_eq!(first, second, "round trip is stable");
}

/// One target's check: returns on any input, panics only when an invariant breaks.
pub type Check = fn(&[u8]);

/// Every target by name (the name of its binary and of its corpus directory).
pub const TARGETS: &[(&str, Check)] = &[
    ("agent_gzip_body", agent_gzip_body),
    ("config_values", config_values),
    ("etc_files", etc_files),
    ("json_cluster_snapshot", json_cluster_snapshot),
    ("json_command_poll", json_command_poll),
    ("json_command_result", json_command_result),
    ("json_create_command", json_create_command),
    ("json_heartbeat", json_heartbeat),
    ("json_node_snapshot", json_node_snapshot),
    ("proc_cpuinfo", proc_cpuinfo),
    ("proc_diskstats", proc_diskstats),
    ("proc_kernel_tables", proc_kernel_tables),
    ("proc_loadavg", proc_loadavg),
    ("proc_meminfo", proc_meminfo),
    ("proc_mountinfo", proc_mountinfo),
    ("proc_net_dev", proc_net_dev),
    ("proc_pid_cmdline", proc_pid_cmdline),
    ("proc_pid_stat", proc_pid_stat),
    ("proc_pid_status", proc_pid_status),
    ("proc_pressure", proc_pressure),
    ("proc_stat", proc_stat),
    ("proc_uptime", proc_uptime),
    ("sys_files", sys_files),
];

/// The agent's body decoding of `POST /metrics/node` with `Content-Encoding: gzip`:
/// gunzip within the 1 MiB limit, then the NodeMetricsSnapshot decoder. Never panics, never
/// returns more than the limit, and a body that is not too large inflates to the same bytes a
/// reference decoder gives.
pub fn agent_gzip_body(data: &[u8]) {
    match gunzip_limited(data, GZIP_LIMIT) {
        Ok(json) => {
            assert!(json.len() <= GZIP_LIMIT, "output over the limit");
            // Reference: flate2's own multi-member decoder, bounded the same way.
            let mut reference = Vec::new();
            let ok = flate2::read::MultiGzDecoder::new(data)
                .take(GZIP_LIMIT as u64 + 1)
                .read_to_end(&mut reference)
                .is_ok();
            assert!(
                ok && reference == json,
                "differs from the reference decoder"
            );
            let _ = serde_json::from_slice::<NodeMetricsSnapshot>(&json);
        }
        Err(GunzipError::TooLarge { limit }) => assert_eq!(limit, GZIP_LIMIT),
        Err(GunzipError::Invalid(_)) => {}
    }
}

/// the parsers of configuration text (environment variables and flags): the one
/// duration grammar, listen addresses, the master's agent-token map and token lists, and the
/// DNS-1123 node-name rule the agent applies to every pushed snapshot.
pub fn config_values(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(duration) = parse_duration(text) {
        assert!(
            !text.trim().starts_with(['-', '+']),
            "signed duration accepted"
        );
        let nanos = format!("{}ns", duration.as_nanos());
        assert_eq!(parse_duration(&nanos), Ok(duration), "{text:?} as {nanos}");
    }
    let _ = parse_listen_addr(text, |_| Ok(vec![std::net::IpAddr::from([127, 0, 0, 1])]));
    if let Ok(tokens) = parse_agent_tokens(text) {
        for (token, cluster) in &tokens {
            assert!(
                !token.is_empty() && !cluster.is_empty(),
                "empty token or cluster accepted"
            );
        }
    }
    for token in parse_token_list(text) {
        assert!(!token.is_empty(), "empty token in the list");
        assert_eq!(token.trim(), token, "token keeps surrounding whitespace");
    }
    if validate_node_name(text).is_ok() {
        assert!(!text.is_empty() && text.len() <= 253, "bad length accepted");
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'),
            "character outside DNS-1123 accepted"
        );
    }
}

/// `/etc/os-release` and `/etc/passwd`: must never panic on any input.
pub fn etc_files(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = etc::os_release::pretty_name(text);
        let mut last_uid = None;
        for (name, uid) in etc::passwd::entries(text) {
            let _ = name;
            last_uid = Some(uid);
        }
        if let Some(uid) = last_uid {
            let _ = etc::passwd::lookup(text, uid);
        }
        let _ = etc::passwd::lookup(text, 0);
    }
}

/// serde_json decoding of `ClusterSnapshot`, the POST /agent/snapshot body (master ingest).
///
/// Decoding must never panic, and what decodes must survive a round trip: encode, decode again,
/// encode again gives the same JSON (so nothing accepted on ingest is lost or altered when stored
/// and served back).
pub fn json_cluster_snapshot(data: &[u8]) {
    round_trip::<ClusterSnapshot>(data);
}

/// serde_json decoding of `CommandResult`, the POST /agent/result body (master ingest).
///
/// Decoding must never panic, and what decodes must survive a round trip: encode, decode again,
/// encode again gives the same JSON (so nothing accepted on ingest is lost or altered when stored
/// and served back).
pub fn json_command_result(data: &[u8]) {
    round_trip::<CommandResult>(data);
}

/// serde_json decoding of `CommandPoll`, the master's answer to the agent's long poll
/// (`GET /agent/commands`, agent side). Decoding must never panic, and what decodes must survive
/// a round trip.
pub fn json_command_poll(data: &[u8]) {
    round_trip::<CommandPoll>(data);
}

/// serde_json decoding of `CreateCommand`, the POST /api/v2/commands body (master API).
///
/// Decoding must never panic, and what decodes must survive a round trip: encode, decode again,
/// encode again gives the same JSON (so nothing accepted on ingest is lost or altered when stored
/// and served back).
pub fn json_create_command(data: &[u8]) {
    round_trip::<CreateCommand>(data);
}

/// serde_json decoding of `Heartbeat`, the POST /agent/heartbeat body (master ingest).
///
/// Decoding must never panic, and what decodes must survive a round trip: encode, decode again,
/// encode again gives the same JSON (so nothing accepted on ingest is lost or altered when stored
/// and served back).
pub fn json_heartbeat(data: &[u8]) {
    round_trip::<Heartbeat>(data);
}

/// serde_json decoding of `NodeMetricsSnapshot`, the POST /metrics/node body (agent ingest).
///
/// Decoding must never panic, and what decodes must survive a round trip: encode, decode again,
/// encode again gives the same JSON (so nothing accepted on ingest is lost or altered when stored
/// and served back).
pub fn json_node_snapshot(data: &[u8]) {
    round_trip::<NodeMetricsSnapshot>(data);
}

/// `/proc/cpuinfo`: must never panic on any input.
pub fn proc_cpuinfo(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = proc::cpuinfo::parse(text);
    }
}

/// `/proc/diskstats`, whole file and line by line: must never panic on any input.
pub fn proc_diskstats(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        for disk in proc::diskstats::parse(text) {
            let _ = disk;
        }
        for (i, line) in text.lines().enumerate() {
            let _ = proc::diskstats::parse_line(line, i + 1);
        }
    }
}

/// `/proc/loadavg`: must never panic on any input.
pub fn proc_loadavg(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = proc::loadavg::parse(text);
    }
}

/// `/proc/meminfo`: must never panic on any input.
pub fn proc_meminfo(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(m) = proc::meminfo::parse(text)
    {
        let _ = m.available();
        let _ = m.page_cache();
    }
}

/// `/proc/[pid]/mountinfo` and `/proc/mounts` (with octal unescaping): must never panic on any input.
pub fn proc_mountinfo(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        for m in proc::mountinfo::parse_mountinfo(text) {
            let _ = m;
        }
        for m in proc::mountinfo::parse_mounts(text) {
            let _ = m;
        }
        let _ = proc::mountinfo::unescape(text);
    }
}

/// `/proc/net/dev`, whole file and line by line: must never panic on any input.
pub fn proc_net_dev(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        for dev in proc::net_dev::parse(text) {
            let _ = dev;
        }
        for (i, line) in text.lines().enumerate() {
            let _ = proc::net_dev::parse_line(line, i + 1);
        }
    }
}

/// `/proc/[pid]/cmdline`: must never panic on any input.
pub fn proc_pid_cmdline(data: &[u8]) {
    for arg in proc::pid_cmdline::args(data) {
        let _ = arg;
    }
    let shown = proc::pid_cmdline::to_display(data);
    let mut appended = String::new();
    proc::pid_cmdline::append_display(data, &mut appended);
    assert_eq!(shown, appended, "to_display and append_display agree");
}

/// `/proc/[pid]/stat`: must never panic on any input.
pub fn proc_pid_stat(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = proc::pid_stat::parse(text);
    }
}

/// `/proc/[pid]/status`: must never panic on any input.
pub fn proc_pid_status(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = proc::pid_status::parse(text);
    }
}

/// `/proc/pressure/*`: must never panic on any input.
pub fn proc_pressure(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = proc::pressure::parse(text);
    }
}

/// The kernel table files: `/proc/net/sockstat`, `/proc/net/snmp` (and `netstat`),
/// `/proc/vmstat`, `/proc/net/softnet_stat`, `file-nr`, entropy and conntrack counts. Never
/// panics; a file the typed parser accepts has no malformed line for the families' field
/// iterators either, and both read the same values; a softnet line written back with its first
/// three counters parses to the same counters.
pub fn proc_kernel_tables(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(s) = proc::net_sockstat::parse(text) {
        let fields: Vec<_> = proc::net_sockstat::fields(text)
            .collect::<Result<_, _>>()
            .expect("parse accepted it, so every pair is well formed");
        let used = fields
            .iter()
            .rev()
            .find(|f| (f.protocol, f.key) == ("sockets", "used"))
            .map(|f| f.value);
        assert_eq!(used, Some(s.sockets_used), "sockets used differs");
    } else {
        proc::net_sockstat::fields(text).for_each(drop);
    }
    if let Ok(s) = proc::net_snmp::parse(text) {
        let fields: Vec<_> = proc::net_snmp::fields(text)
            .collect::<Result<_, _>>()
            .expect("parse accepted it, so every pair is well formed");
        let estab = fields
            .iter()
            .rev()
            .find(|f| (f.protocol, f.name) == ("Tcp", "CurrEstab"))
            .map(|f| f.value);
        assert_eq!(
            estab,
            i64::try_from(s.tcp.curr_estab).ok(),
            "CurrEstab differs"
        );
    } else {
        proc::net_snmp::fields(text).for_each(drop);
    }
    if let Ok(v) = proc::vmstat::parse(text) {
        let fields: Vec<_> = proc::vmstat::fields(text)
            .collect::<Result<_, _>>()
            .expect("parse accepted it, so every line is well formed");
        let pgfault = fields
            .iter()
            .rev()
            .find(|f| f.key == "pgfault")
            .map(|f| f.value);
        assert_eq!(pgfault, v.pgfault, "pgfault differs");
    }
    for cpu in proc::net_softnet_stat::parse(text).flatten() {
        let line = format!(
            "{:08x} {:08x} {:08x}",
            cpu.processed, cpu.dropped, cpu.time_squeeze
        );
        let again = proc::net_softnet_stat::parse(&line)
            .next()
            .expect("one line")
            .expect("written back, it parses");
        assert_eq!(
            (again.processed, again.dropped, again.time_squeeze),
            (cpu.processed, cpu.dropped, cpu.time_squeeze)
        );
    }
    let _ = proc::sys_fs_file_nr::parse(text);
    let _ = proc::sys_kernel_random::parse_bits(text);
    let _ = proc::sys_net_netfilter::parse_entries(text);
}

/// `/proc/stat`: must never panic on any input, and parsing into a reused buffer
/// (what the sampler does every cycle) must give the same result as a fresh parse.
pub fn proc_stat(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let fresh = proc::stat::parse(text);
    if let Ok(stat) = &fresh {
        let _ = stat.cpu.total();
        for core in &stat.cpus {
            let _ = core.total();
        }
    }
    // A buffer that held a different sample before, as in the sampler's loop.
    let mut reused = proc::stat::Stat::default();
    let _ = proc::stat::parse_into(
        "cpu 1 2 3 4 5 6 7 8 9 10\ncpu0 1 2 3 4 5 6 7 8\nbtime 5\n",
        &mut reused,
    );
    let again = proc::stat::parse_into(text, &mut reused);
    if let Ok(stat) = fresh {
        assert!(again.is_ok(), "parse_into fails where parse succeeds");
        assert_eq!(
            stat, reused,
            "parse_into into a reused buffer differs from parse"
        );
    }
}

/// `/proc/uptime`: must never panic on any input.
pub fn proc_uptime(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = proc::uptime::parse(text);
    }
}

/// The one-value `/sys` files (cpufreq, hwmon, net class, thermal): must never panic on any input.
pub fn sys_files(data: &[u8]) {
    // The one-value /sys files and the hwmon name rules.
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = sys::cpufreq::parse_cur_freq_mhz(text);
        let _ = sys::hwmon::temp_attr(text);
        if let Ok(c) = sys::hwmon::parse_millidegrees(text) {
            let _ = sys::hwmon::plausible(c);
        }
        let (chip, label) = text.split_once('\n').unwrap_or((text, ""));
        let _ = sys::hwmon::cpu_sensor_rank(chip, label);
        let _ = sys::net_class::parse_operstate(text);
        let _ = sys::net_class::parse_speed(text);
        let _ = sys::net_class::parse_address(text);
        let _ = sys::net_class::parse_mtu(text);
        let _ = sys::thermal::parse_temp(text);
        let _ = sys::thermal::is_cpu_zone(text);
    }
}
