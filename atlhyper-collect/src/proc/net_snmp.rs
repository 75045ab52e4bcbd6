//! `/proc/net/snmp`: the IP, ICMP, TCP and UDP MIB counters, as pairs of lines with the same
//! protocol prefix, names first and values second:
//!
//! ```text
//! Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens ... CurrEstab InSegs ...
//! Tcp: 1 200 120000 -1 307383 294421 ... 2 4368735 ...
//! ```
//!
//! `/proc/net/netstat` (TcpExt, IpExt, ...) has the same layout, so [`fields`] reads it too.

use crate::error::{ParseError, ParseErrorKind, ParseResult};
use crate::num::{Words, parse_i64};

const FILE: &str = "/proc/net/snmp";

/// One counter: protocol, name and value, e.g. (`Tcp`, `CurrEstab`, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnmpField<'a> {
    /// The protocol prefix (`Ip`, `Icmp`, `IcmpMsg`, `Tcp`, `Udp`, `UdpLite`, `TcpExt`, ...).
    pub protocol: &'a str,
    /// The counter name (`ActiveOpens`, `CurrEstab`, `InDatagrams`, ...).
    pub name: &'a str,
    /// The value. Signed because `Tcp MaxConn` is -1 when the limit is dynamic; a value past
    /// `i64::MAX` (2^63 events: never reached) is reported as a bad number.
    pub value: i64,
    /// 1-based number of the value line (for messages).
    pub line: usize,
}

/// Every counter of every pair of lines, in file order, without allocating. A pair whose lines
/// disagree (another protocol, a different number of names and values, a value that is not a
/// number) ends with an error item carrying the value line's number; later pairs still parse.
pub fn fields(text: &str) -> Fields<'_> {
    Fields {
        lines: text.lines().enumerate(),
        pair: None,
    }
}

/// The iterator of [`fields`].
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    lines: std::iter::Enumerate<std::str::Lines<'a>>,
    pair: Option<Pair<'a>>,
}

/// A name line and its value line being walked in step.
#[derive(Debug, Clone)]
struct Pair<'a> {
    /// 1-based number of the value line.
    lineno: usize,
    protocol: &'a str,
    names: Words<'a>,
    values: Words<'a>,
}

impl<'a> Iterator for Fields<'a> {
    type Item = ParseResult<SnmpField<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(p) = &mut self.pair {
                let (lineno, protocol) = (p.lineno, p.protocol);
                let err = |k| Some(Err(ParseError::new(FILE, lineno, k)));
                match (p.names.word(), p.values.word()) {
                    (None, None) => self.pair = None,
                    (Some(name), Some(v)) => {
                        return match parse_i64(v) {
                            Some(value) => Some(Ok(SnmpField {
                                protocol,
                                name,
                                value,
                                line: lineno,
                            })),
                            None => {
                                self.pair = None;
                                err(ParseErrorKind::BadNumber("counter"))
                            }
                        };
                    }
                    _ => {
                        self.pair = None;
                        return err(ParseErrorKind::Malformed(
                            "names and values differ in count",
                        ));
                    }
                }
                continue;
            }
            let (idx, header) = self.lines.next()?;
            if header.trim().is_empty() {
                continue;
            }
            return match self.start_pair(header, idx + 1) {
                Ok(()) => continue,
                Err(e) => Some(Err(e)),
            };
        }
    }
}

impl<'a> Fields<'a> {
    /// Reads the value line after `header` and starts walking the pair.
    fn start_pair(&mut self, header: &'a str, header_no: usize) -> ParseResult<()> {
        let (protocol, names) = split_prefix(header).ok_or(ParseError::new(
            FILE,
            header_no,
            ParseErrorKind::Malformed("protocol prefix"),
        ))?;
        let Some((idx, line)) = self.lines.next() else {
            return Err(ParseError::new(
                FILE,
                header_no,
                ParseErrorKind::Missing("value line"),
            ));
        };
        match split_prefix(line) {
            Some((p, values)) if p == protocol => {
                self.pair = Some(Pair {
                    lineno: idx + 1,
                    protocol,
                    names: Words::new(names),
                    values: Words::new(values),
                });
                Ok(())
            }
            _ => Err(ParseError::new(
                FILE,
                idx + 1,
                ParseErrorKind::Malformed("value line of another protocol"),
            )),
        }
    }
}

/// `Proto: rest` -> (`Proto`, `rest`); `None` without a colon or with an empty or spaced prefix.
fn split_prefix(line: &str) -> Option<(&str, &str)> {
    let (p, rest) = line.split_once(':')?;
    (!p.is_empty() && !p.contains(|c: char| c.is_ascii_whitespace())).then_some((p, rest))
}

/// The TCP MIB counters (RFC 4022), since boot except `curr_estab`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TcpCounters {
    /// Connections opened actively (SYN sent).
    pub active_opens: u64,
    /// Connections opened passively (SYN received, accepted).
    pub passive_opens: u64,
    /// Failed connection attempts.
    pub attempt_fails: u64,
    /// Connections reset from ESTABLISHED or CLOSE-WAIT.
    pub estab_resets: u64,
    /// Connections in ESTABLISHED or CLOSE-WAIT now (a gauge).
    pub curr_estab: u64,
    /// Segments received.
    pub in_segs: u64,
    /// Segments sent (without retransmissions).
    pub out_segs: u64,
    /// Segments retransmitted.
    pub retrans_segs: u64,
    /// Segments received in error. Since Linux 2.6.
    pub in_errs: Option<u64>,
    /// Segments sent with RST. Since Linux 2.6.
    pub out_rsts: Option<u64>,
}

/// The UDP MIB counters, since boot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct UdpCounters {
    /// Datagrams delivered to sockets.
    pub in_datagrams: u64,
    /// Datagrams to a port nobody listened on.
    pub no_ports: u64,
    /// Datagrams not delivered for other reasons (buffer full, checksum).
    pub in_errors: u64,
    /// Datagrams sent.
    pub out_datagrams: u64,
    /// Datagrams dropped because the receive buffer was full. Since Linux 2.6.9.
    pub rcvbuf_errors: Option<u64>,
    /// Datagrams dropped because the send buffer was full. Since Linux 2.6.9.
    pub sndbuf_errors: Option<u64>,
}

/// What the collector uses of `/proc/net/snmp`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Snmp {
    /// The `Tcp` pair.
    pub tcp: TcpCounters,
    /// The `Udp` pair.
    pub udp: UdpCounters,
}

/// Parses `/proc/net/snmp`. The `Tcp` counters but `InErrs` and `OutRsts`, and the four basic
/// `Udp` counters, are required; a malformed pair anywhere is an error.
pub fn parse(text: &str) -> ParseResult<Snmp> {
    const REQUIRED: [&str; 12] = [
        "Tcp ActiveOpens",
        "Tcp PassiveOpens",
        "Tcp AttemptFails",
        "Tcp EstabResets",
        "Tcp CurrEstab",
        "Tcp InSegs",
        "Tcp OutSegs",
        "Tcp RetransSegs",
        "Udp InDatagrams",
        "Udp NoPorts",
        "Udp InErrors",
        "Udp OutDatagrams",
    ];
    let mut s = Snmp::default();
    let mut seen = 0u16;
    for field in fields(text) {
        let f = field?;
        let (t, u) = (&mut s.tcp, &mut s.udp);
        let (slot, bit): (&mut u64, u16) = match (f.protocol, f.name) {
            ("Tcp", "ActiveOpens") => (&mut t.active_opens, 0),
            ("Tcp", "PassiveOpens") => (&mut t.passive_opens, 1),
            ("Tcp", "AttemptFails") => (&mut t.attempt_fails, 2),
            ("Tcp", "EstabResets") => (&mut t.estab_resets, 3),
            ("Tcp", "CurrEstab") => (&mut t.curr_estab, 4),
            ("Tcp", "InSegs") => (&mut t.in_segs, 5),
            ("Tcp", "OutSegs") => (&mut t.out_segs, 6),
            ("Tcp", "RetransSegs") => (&mut t.retrans_segs, 7),
            ("Udp", "InDatagrams") => (&mut u.in_datagrams, 8),
            ("Udp", "NoPorts") => (&mut u.no_ports, 9),
            ("Udp", "InErrors") => (&mut u.in_errors, 10),
            ("Udp", "OutDatagrams") => (&mut u.out_datagrams, 11),
            ("Tcp", "InErrs")
            | ("Tcp", "OutRsts")
            | ("Udp", "RcvbufErrors")
            | ("Udp", "SndbufErrors") => {
                let v = Some(counter(f)?);
                match f.name {
                    "InErrs" => t.in_errs = v,
                    "OutRsts" => t.out_rsts = v,
                    "RcvbufErrors" => u.rcvbuf_errors = v,
                    _ => u.sndbuf_errors = v,
                }
                continue;
            }
            _ => continue,
        };
        *slot = counter(f)?;
        seen |= 1 << bit;
    }
    if let Some((_, missing)) = REQUIRED
        .iter()
        .enumerate()
        .find(|(i, _)| seen & (1 << i) == 0)
    {
        return Err(ParseError::new(FILE, 1, ParseErrorKind::Missing(missing)));
    }
    Ok(s)
}

/// The value of a counter that cannot be negative.
fn counter(f: SnmpField<'_>) -> ParseResult<u64> {
    u64::try_from(f.value)
        .map_err(|_| ParseError::new(FILE, f.line, ParseErrorKind::BadNumber("negative counter")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNMP: &str = "Ip: Forwarding DefaultTTL\nIp: 2 64\n\
        Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors\n\
        Tcp: 1 200 120000 -1 307383 294421 12893 1960 2 4368735 4360862 1100 0 15040 0\n\
        Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors\n\
        Udp: 4631 1 2 4668 3 4 0 0 0\n";

    #[test]
    fn parses_tcp_and_udp() {
        let s = parse(SNMP).unwrap();
        assert_eq!(s.tcp.active_opens, 307_383);
        assert_eq!(s.tcp.curr_estab, 2);
        assert_eq!(s.tcp.retrans_segs, 1100);
        assert_eq!(s.tcp.out_rsts, Some(15_040));
        assert_eq!(s.udp.in_datagrams, 4631);
        assert_eq!(s.udp.no_ports, 1);
        assert_eq!(s.udp.sndbuf_errors, Some(4));
    }

    #[test]
    fn fields_walk_names_and_values_in_step() {
        let f: Vec<_> = fields(SNMP).map(Result::unwrap).collect();
        assert_eq!(f.len(), 2 + 15 + 9);
        assert_eq!(
            f[5],
            SnmpField {
                protocol: "Tcp",
                name: "MaxConn",
                value: -1,
                line: 4
            }
        );
        assert_eq!((f[25].protocol, f[25].name), ("Udp", "MemErrors"));
    }

    #[test]
    fn old_kernels_without_optional_counters() {
        let s = parse(
            "Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs\n\
             Tcp: 1 200 120000 -1 5 6 7 8 9 10 11 12\n\
             Udp: InDatagrams NoPorts InErrors OutDatagrams\nUdp: 1 2 3 4\n",
        )
        .unwrap();
        assert_eq!(s.tcp.curr_estab, 9);
        assert_eq!((s.tcp.in_errs, s.tcp.out_rsts), (None, None));
        assert_eq!(s.udp.rcvbuf_errors, None);
    }

    #[test]
    fn rejects_malformed() {
        assert!(parse("").is_err());
        assert!(parse("Ip: Forwarding\nIp: 1\n").is_err(), "no Tcp");
        // Value line of another protocol.
        let e = fields("Tcp: A B\nUdp: 1 2\n").next().unwrap().unwrap_err();
        assert_eq!(e.line, 2);
        // Fewer values than names: the pairs before are reported, then the error.
        let f: Vec<_> = fields("Tcp: A B\nTcp: 1\nUdp: C\nUdp: 3\n").collect();
        assert_eq!(f.len(), 3);
        assert!(f[1].as_ref().is_err_and(|e| e.line == 2));
        assert_eq!(f[2].as_ref().unwrap().value, 3);
        // Header without a value line.
        let e = fields("Tcp: A B\n").next().unwrap().unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::Missing("value line"));
        // Not a number, no prefix.
        assert!(fields("Tcp: A\nTcp: x\n").next().unwrap().is_err());
        assert!(fields("no prefix\nTcp: 1\n").next().unwrap().is_err());
        assert!(fields(" Tcp: A\n Tcp: 1\n").next().unwrap().is_err());
        // A counter that must not be negative.
        let neg = SNMP.replace("307383", "-3");
        let e = parse(&neg).unwrap_err();
        assert_eq!(
            (e.line, e.kind),
            (4, ParseErrorKind::BadNumber("negative counter"))
        );
    }
}
