//! TCP and sockets: `/proc/net/sockstat` (and `sockstat6`), `/proc/net/snmp` (and `netstat`).
//! The snapshot gets the TCP gauges; the texts are kept as read for node_exporter's
//! `node_sockstat_*` and `node_netstat_*` families. Gauges and counters the kernel keeps: no
//! previous sample.

use atlhyper_model::TcpMetrics;

use crate::proc::net_snmp::{self, Snmp};
use crate::proc::net_sockstat::{self, Sockstat};
use crate::sampler::{Base, Sampler};

/// The part of a raw sample this module reads.
#[derive(Debug, Default)]
pub(super) struct TcpSample {
    pub(super) sockstat: Option<Sockstat>,
    pub(super) snmp: Option<Snmp>,
    /// The texts as read (every line, for the node_exporter families); empty when unreadable or
    /// absent (`sockstat6` without IPv6).
    pub(super) sockstat_text: String,
    pub(super) sockstat6_text: String,
    pub(super) snmp_text: String,
    pub(super) netstat_text: String,
}

/// Reads the four files. `sockstat` and `snmp` are required; `sockstat6` (no IPv6) and
/// `netstat` may be absent.
pub(super) fn sample(s: &mut Sampler, cur: &mut TcpSample) -> Result<(), String> {
    cur.sockstat = None;
    cur.snmp = None;
    let mut first_err = None;
    let mut note = |e: String| {
        first_err.get_or_insert(e);
    };
    match read(s, "sockstat", &mut cur.sockstat_text, false) {
        Ok(()) => match net_sockstat::parse(&cur.sockstat_text) {
            Ok(p) => cur.sockstat = Some(p),
            Err(e) => note(e.to_string()),
        },
        Err(e) => note(e),
    }
    match read(s, "snmp", &mut cur.snmp_text, false) {
        Ok(()) => match net_snmp::parse(&cur.snmp_text) {
            Ok(p) => cur.snmp = Some(p),
            Err(e) => note(e.to_string()),
        },
        Err(e) => note(e),
    }
    if let Err(e) = read(s, "sockstat6", &mut cur.sockstat6_text, true) {
        note(e);
    }
    if let Err(e) = read(s, "netstat", &mut cur.netstat_text, true) {
        note(e);
    }
    first_err.map_or(Ok(()), Err)
}

/// Reads `/proc/net/<name>` into `text` (cleared first). A missing `optional` file leaves it
/// empty without an error.
fn read(s: &mut Sampler, name: &str, text: &mut String, optional: bool) -> Result<(), String> {
    text.clear();
    match s.read_text(Base::Proc, &[&"net", &name]) {
        Ok(t) => {
            text.push_str(t);
            Ok(())
        }
        Err(e) if optional && e.is_not_found() => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// The snapshot's TCP figures; `None` unless both `sockstat` and `snmp` parsed.
pub(super) fn metrics(cur: &TcpSample) -> Option<TcpMetrics> {
    let (sockstat, snmp) = (cur.sockstat?, cur.snmp?);
    Some(TcpMetrics {
        curr_estab: snmp.tcp.curr_estab,
        alloc: sockstat.tcp.alloc,
        in_use: sockstat.tcp.inuse,
        time_wait: sockstat.tcp.tw,
        orphan: sockstat.tcp.orphan,
        sockets_used: sockstat.sockets_used,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::sampler::{HostRoot, Statfs};

    const SOCKSTAT: &str =
        "sockets: used 18\nTCP: inuse 2 orphan 1 tw 3 alloc 4 mem 0\nUDP: inuse 0\n";
    const SNMP: &str = "Tcp: ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs\n\
        Tcp: 1 2 3 4 5 6 7 8\nUdp: InDatagrams NoPorts InErrors OutDatagrams\nUdp: 1 2 3 4\n";

    fn sample_of(files: &[(&str, &str)]) -> (TcpSample, Result<(), String>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc/net")).unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join("proc/net").join(name), text).unwrap();
        }
        let mut s = Sampler::new(
            HostRoot::under(dir.path()),
            Statfs::new(Duration::from_secs(1)),
        );
        let mut cur = TcpSample::default();
        let r = sample(&mut s, &mut cur);
        (cur, r)
    }

    #[test]
    fn ipv6_and_netstat_may_be_absent_sockstat_and_snmp_may_not() {
        let (cur, r) = sample_of(&[("sockstat", SOCKSTAT), ("snmp", SNMP)]);
        assert_eq!(r, Ok(()));
        assert!(cur.sockstat6_text.is_empty() && cur.netstat_text.is_empty());
        assert_eq!(metrics(&cur).map(|t| t.curr_estab), Some(5));

        let (cur, r) = sample_of(&[("sockstat", SOCKSTAT)]);
        assert!(r.is_err_and(|e| e.contains("snmp")));
        assert_eq!(metrics(&cur), None);
        assert_eq!(cur.sockstat.map(|s| s.sockets_used), Some(18));

        let (_, r) = sample_of(&[("sockstat", "sockets: used\n"), ("snmp", SNMP)]);
        assert!(r.is_err_and(|e| e.contains("/proc/net/sockstat:1")));
    }

    #[test]
    fn figures_from_sockstat_and_snmp() {
        let mut cur = TcpSample {
            sockstat: net_sockstat::parse(
                "sockets: used 18\nTCP: inuse 2 orphan 1 tw 3 alloc 4 mem 0\nUDP: inuse 0\n",
            )
            .ok(),
            snmp: net_snmp::parse(
                "Tcp: ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs\n\
                 Tcp: 1 2 3 4 5 6 7 8\nUdp: InDatagrams NoPorts InErrors OutDatagrams\nUdp: 1 2 3 4\n",
            )
            .ok(),
            ..TcpSample::default()
        };
        assert_eq!(
            metrics(&cur),
            Some(TcpMetrics {
                curr_estab: 5,
                alloc: 4,
                in_use: 2,
                time_wait: 3,
                orphan: 1,
                sockets_used: 18,
            })
        );
        cur.snmp = None;
        assert_eq!(metrics(&cur), None);
    }
}
