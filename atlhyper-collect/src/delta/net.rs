//! Network rates from two `/proc/net/dev` readings of one interface.

use std::time::Duration;

use super::counter_rate;
use crate::proc::net_dev::NetDev;

/// The counters of one interface that rates are computed from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetCounters {
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Send errors.
    pub tx_errors: u64,
    /// Received packets dropped.
    pub rx_dropped: u64,
    /// Sent packets dropped.
    pub tx_dropped: u64,
}

impl From<&NetDev<'_>> for NetCounters {
    fn from(d: &NetDev<'_>) -> Self {
        Self {
            rx_bytes: d.rx_bytes,
            tx_bytes: d.tx_bytes,
            rx_packets: d.rx_packets,
            tx_packets: d.tx_packets,
            rx_errors: d.rx_errors,
            tx_errors: d.tx_errors,
            rx_dropped: d.rx_dropped,
            tx_dropped: d.tx_dropped,
        }
    }
}

/// Per-second rates of one interface. Each is `None` on its own when its counter went down (a
/// 32-bit counter wraps on its own schedule) or no time passed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NetRates {
    /// Bytes received per second.
    pub rx_bytes: Option<f64>,
    /// Bytes sent per second.
    pub tx_bytes: Option<f64>,
    /// Packets received per second.
    pub rx_packets: Option<f64>,
    /// Packets sent per second.
    pub tx_packets: Option<f64>,
    /// Receive errors per second.
    pub rx_errors: Option<f64>,
    /// Send errors per second.
    pub tx_errors: Option<f64>,
    /// Received drops per second.
    pub rx_dropped: Option<f64>,
    /// Sent drops per second.
    pub tx_dropped: Option<f64>,
}

/// Rates between two readings of one interface.
pub fn net(prev: &NetCounters, cur: &NetCounters, elapsed: Duration) -> NetRates {
    let r = |a, b| counter_rate(a, b, elapsed);
    NetRates {
        rx_bytes: r(prev.rx_bytes, cur.rx_bytes),
        tx_bytes: r(prev.tx_bytes, cur.tx_bytes),
        rx_packets: r(prev.rx_packets, cur.rx_packets),
        tx_packets: r(prev.tx_packets, cur.tx_packets),
        rx_errors: r(prev.rx_errors, cur.rx_errors),
        tx_errors: r(prev.tx_errors, cur.tx_errors),
        rx_dropped: r(prev.rx_dropped, cur.rx_dropped),
        tx_dropped: r(prev.tx_dropped, cur.tx_dropped),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_counter_on_its_own() {
        let a = NetCounters {
            rx_bytes: u64::from(u32::MAX) - 100,
            tx_bytes: 1000,
            rx_packets: 5,
            ..Default::default()
        };
        let b = NetCounters {
            rx_bytes: 50,
            tx_bytes: 3000,
            rx_packets: 9,
            ..Default::default()
        };
        let r = net(&a, &b, Duration::from_secs(2));
        assert_eq!(r.rx_bytes, None, "32-bit wrap gives no rate");
        assert_eq!(r.tx_bytes, Some(1000.0));
        assert_eq!(r.rx_packets, Some(2.0));
        assert_eq!(r.tx_errors, Some(0.0));
        assert_eq!(net(&a, &b, Duration::ZERO).tx_bytes, None);
    }
}
