//! Network: `/proc/net/dev` counters of the interfaces not excluded, their state from
//! `/sys/class/net`, and addresses (cached: `fib_trie` can be large on nodes with many routes).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use atlhyper_model::NetworkMetrics;

use super::Context;
use crate::delta::{self, NetCounters};
use crate::filter;
use crate::proc::{net_addr, net_dev};
use crate::sampler::{Base, Sampler};
use crate::sys::net_class;

/// How long interface addresses are reused (unless an interface appears).
const ADDRESS_REFRESH: Duration = Duration::from_secs(60);

/// Interface -> address, refreshed every [`ADDRESS_REFRESH`] or when an interface appears.
#[derive(Debug, Default)]
pub(super) struct AddressCache {
    addresses: HashMap<String, String>,
    read_at: Option<Instant>,
}

/// One interface.
#[derive(Debug, Clone, Default)]
pub(super) struct InterfaceSample {
    pub(super) name: String,
    pub(super) counters: NetCounters,
    /// operstate; "unknown" when unreadable.
    pub(super) status: String,
    /// Mbit/s; -1 when unknown (virtual NICs, link down).
    speed: i64,
    /// Mbit/s as the `speed` file says it (-1 included); `None` when unreadable.
    pub(super) link_speed: Option<i64>,
    pub(super) mac: String,
    /// The `broadcast`, `duplex` and `ifalias` attributes (empty when unreadable), for
    /// node_exporter's `node_network_info`.
    pub(super) broadcast: String,
    pub(super) duplex: String,
    pub(super) ifalias: String,
    /// `None` when unreadable.
    pub(super) mtu: Option<u32>,
    ip: String,
}

/// The part of a raw sample this module reads.
#[derive(Debug, Default)]
pub(super) struct NetworkSample {
    /// In `/proc/net/dev` order; entries are reused between samples.
    pub(super) interfaces: Vec<InterfaceSample>,
}

/// Reads the counters of every interface not matching `exclude`, then addresses (when due) and
/// each interface's sysfs attributes.
pub(super) fn sample(
    s: &mut Sampler,
    exclude: &[String],
    cache: &mut AddressCache,
    cur: &mut NetworkSample,
) -> Result<(), String> {
    let mut first_err: Option<String> = None;
    let mut n = 0;
    let t = s
        .read_text(Base::Proc, &[&"net", &"dev"])
        .map_err(|e| e.to_string())?;
    for d in net_dev::parse(t) {
        match d {
            Ok(d) => {
                if exclude.iter().any(|p| filter::interface_matches(p, d.name)) {
                    continue;
                }
                if n == cur.interfaces.len() {
                    cur.interfaces.push(InterfaceSample::default());
                }
                let slot = &mut cur.interfaces[n];
                slot.name.clear();
                slot.name.push_str(d.name);
                slot.counters = NetCounters::from(&d);
                n += 1;
            }
            Err(e) => {
                first_err.get_or_insert(e.to_string());
            }
        }
    }
    cur.interfaces.truncate(n);
    let stale = cache.read_at.is_none_or(|t| t.elapsed() >= ADDRESS_REFRESH)
        || cur
            .interfaces
            .iter()
            .any(|n| !cache.addresses.contains_key(&n.name));
    if stale {
        let mut read = |f: &str| {
            s.read_text(Base::Proc, &[&"net", &f])
                .map(str::to_owned)
                .unwrap_or_default()
        };
        let (fib, route, inet6) = (read("fib_trie"), read("route"), read("if_inet6"));
        cache.addresses.clear();
        for net in &cur.interfaces {
            let ip = net_addr::address_of(&net.name, &fib, &route, &inet6).unwrap_or_default();
            cache.addresses.insert(net.name.clone(), ip);
        }
        cache.read_at = Some(Instant::now());
    }
    for net in &mut cur.interfaces {
        net.ip.clear();
        if let Some(ip) = cache.addresses.get(&net.name) {
            net.ip.push_str(ip);
        }
    }
    for net in &mut cur.interfaces {
        let dir = ["class", "net", net.name.as_str()];
        net.status = match s.read_text(Base::Sys, &[&dir[0], &dir[1], &dir[2], &"operstate"]) {
            Ok(t) => net_class::parse_operstate(t).to_owned(),
            Err(_) => "unknown".to_owned(),
        };
        net.link_speed = s
            .read_text(Base::Sys, &[&dir[0], &dir[1], &dir[2], &"speed"])
            .ok()
            .and_then(|t| net_class::parse_speed(t).ok());
        // EINVAL (virtual NICs, link down) and a missing file both mean "unknown".
        net.speed = net.link_speed.unwrap_or(-1);
        for (attr, slot) in [
            ("broadcast", &mut net.broadcast),
            ("duplex", &mut net.duplex),
            ("ifalias", &mut net.ifalias),
        ] {
            slot.clear();
            if let Ok(t) = s.read_text(Base::Sys, &[&dir[0], &dir[1], &dir[2], &attr]) {
                slot.push_str(t.trim_end_matches('\n'));
            }
        }
        net.mac = match s.read_text(Base::Sys, &[&dir[0], &dir[1], &dir[2], &"address"]) {
            Ok(t) => net_class::parse_address(t).to_owned(),
            Err(_) => String::new(),
        };
        net.mtu = match s
            .read_text(Base::Sys, &[&dir[0], &dir[1], &dir[2], &"mtu"])
            .map(net_class::parse_mtu)
        {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                first_err.get_or_insert(e.to_string());
                None
            }
            Err(_) => None,
        };
    }
    first_err.map_or(Ok(()), Err)
}

/// One entry per interface: counters, and rates against the interface of the same name in
/// `prev`. Byte rates are 0 and the other rates `None` without a previous sample or elapsed time;
/// each rate is missing on its own when its counter went down.
pub(super) fn metrics(
    prev: Option<&NetworkSample>,
    cur: &NetworkSample,
    ctx: Context,
) -> Vec<NetworkMetrics> {
    let mut networks = Vec::with_capacity(cur.interfaces.len());
    for n in &cur.interfaces {
        let rates = prev
            .and_then(|p| p.interfaces.iter().find(|x| x.name == n.name))
            .zip(ctx.elapsed.known())
            .map(|(p, e)| delta::net(&p.counters, &n.counters, e));
        let c = &n.counters;
        let r = rates.unwrap_or_default();
        networks.push(NetworkMetrics {
            interface: n.name.clone(),
            ip_address: n.ip.clone(),
            mac_address: n.mac.clone(),
            status: n.status.clone(),
            speed: n.speed,
            mtu: n.mtu.unwrap_or(0),
            rx_bytes: c.rx_bytes,
            tx_bytes: c.tx_bytes,
            rx_packets: c.rx_packets,
            tx_packets: c.tx_packets,
            rx_rate: r.rx_bytes.unwrap_or(0.0),
            tx_rate: r.tx_bytes.unwrap_or(0.0),
            rx_errors: c.rx_errors,
            tx_errors: c.tx_errors,
            rx_dropped: c.rx_dropped,
            tx_dropped: c.tx_dropped,
            rx_packets_rate: r.rx_packets,
            tx_packets_rate: r.tx_packets,
            rx_errors_rate: r.rx_errors,
            tx_errors_rate: r.tx_errors,
            rx_dropped_rate: r.rx_dropped,
            tx_dropped_rate: r.tx_dropped,
        });
    }
    networks
}

#[cfg(test)]
mod tests {
    use super::super::Elapsed;
    use super::super::tests::ctx;
    use super::*;

    fn sample(name: &str, rx_bytes: u64, tx_bytes: u64) -> NetworkSample {
        NetworkSample {
            interfaces: vec![InterfaceSample {
                name: name.into(),
                counters: NetCounters {
                    rx_bytes,
                    tx_bytes,
                    rx_packets: rx_bytes / 100,
                    ..NetCounters::default()
                },
                status: "up".into(),
                speed: 1000,
                mac: "52:54:00:12:34:56".into(),
                mtu: Some(1500),
                ip: "10.0.0.5".into(),
                ..InterfaceSample::default()
            }],
        }
    }

    const TWO_SECONDS: Elapsed = Elapsed::Known(Duration::from_secs(2));

    #[test]
    fn first_sample_reports_counters_without_rates() {
        let n = &metrics(None, &sample("eth0", 1000, 500), ctx(TWO_SECONDS))[0];
        assert_eq!(
            (n.interface.as_str(), n.ip_address.as_str()),
            ("eth0", "10.0.0.5")
        );
        assert_eq!(
            (n.rx_bytes, n.tx_bytes, n.mtu, n.speed),
            (1000, 500, 1500, 1000)
        );
        assert_eq!((n.rx_rate, n.tx_rate), (0.0, 0.0));
        assert_eq!(n.rx_packets_rate, None);
    }

    #[test]
    fn rates_over_the_elapsed_time() {
        let prev = sample("eth0", 1000, 500);
        let n = &metrics(Some(&prev), &sample("eth0", 3000, 900), ctx(TWO_SECONDS))[0];
        assert_eq!((n.rx_rate, n.tx_rate), (1000.0, 200.0));
        assert_eq!(n.rx_packets_rate, Some(10.0));
        assert_eq!(n.rx_errors_rate, Some(0.0));
    }

    #[test]
    fn unknown_elapsed_time_gives_no_rates() {
        let prev = sample("eth0", 1000, 500);
        let n = &metrics(
            Some(&prev),
            &sample("eth0", 3000, 900),
            ctx(Elapsed::Unknown),
        )[0];
        assert_eq!((n.rx_rate, n.rx_packets_rate), (0.0, None));
    }

    #[test]
    fn a_counter_going_down_loses_only_its_own_rate() {
        let prev = sample("eth0", 3000, 500);
        let n = &metrics(Some(&prev), &sample("eth0", 1000, 900), ctx(TWO_SECONDS))[0];
        assert_eq!((n.rx_rate, n.tx_rate), (0.0, 200.0));
        assert_eq!(n.rx_packets_rate, None);
    }

    #[test]
    fn interfaces_are_matched_by_name() {
        let prev = sample("eth1", 0, 0);
        let n = &metrics(Some(&prev), &sample("eth0", 3000, 900), ctx(TWO_SECONDS))[0];
        assert_eq!(n.rx_rate, 0.0);
    }
}
