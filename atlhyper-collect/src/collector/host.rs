//! Host identity and uptime: host name, kernel and OS (read once and cached), `/proc/uptime`
//! (every collection).

use crate::etc;
use crate::proc::uptime::{self, Uptime};
use crate::sampler::{Base, Sampler};

/// Facts about the host that do not change while it runs; read once, dropped with the host root.
#[derive(Debug, Default)]
pub(super) struct HostFacts {
    /// `{proc}/sys/kernel/hostname`.
    pub(super) hostname: Option<String>,
    /// `{proc}/sys/kernel/osrelease`.
    pub(super) kernel: Option<String>,
    /// PRETTY_NAME (else NAME) of the host's os-release.
    pub(super) os: Option<String>,
    /// The whole os-release text (node_exporter's `node_os_info` labels).
    pub(super) os_release: Option<String>,
    /// `uname` as node_exporter labels it: (label, value) in label order; empty until read.
    pub(super) uname: Vec<(&'static str, String)>,
}

/// The part of a raw sample this module reads every collection.
#[derive(Debug, Default)]
pub(super) struct HostSample {
    /// `/proc/uptime`; also the clock for replayed trees and for processes started since the
    /// previous sample.
    pub(super) uptime: Option<Uptime>,
}

/// The host fields of a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct HostMetrics {
    pub(super) node_name: String,
    pub(super) hostname: String,
    pub(super) os: String,
    pub(super) kernel: String,
    /// Whole seconds since boot.
    pub(super) uptime_secs: u64,
}

/// Reads the uptime, and the host facts still missing. The first failure is reported; the rest is
/// still read.
pub(super) fn sample(
    s: &mut Sampler,
    facts: &mut HostFacts,
    cur: &mut HostSample,
) -> Result<(), String> {
    let mut first_err = None;
    cur.uptime = match s.read_text(Base::Proc, &[&"uptime"]) {
        Ok(t) => match uptime::parse(t) {
            Ok(u) => Some(u),
            Err(e) => {
                first_err.get_or_insert(format!(
                    "{}: {e}",
                    s.path_of(Base::Proc, &[&"uptime"]).display()
                ));
                None
            }
        },
        Err(e) => {
            first_err.get_or_insert(e.to_string());
            None
        }
    };
    if facts.hostname.is_none() {
        match s.read_text(Base::Proc, &[&"sys", &"kernel", &"hostname"]) {
            Ok(t) => facts.hostname = Some(t.trim().to_owned()),
            Err(e) => {
                first_err.get_or_insert(e.to_string());
            }
        }
    }
    if facts.kernel.is_none() {
        match s.read_text(Base::Proc, &[&"sys", &"kernel", &"osrelease"]) {
            Ok(t) => facts.kernel = Some(t.trim().to_owned()),
            Err(e) => {
                first_err.get_or_insert(e.to_string());
            }
        }
    }
    if facts.uname.is_empty() {
        facts.uname = read_uname(s);
    }
    if facts.os.is_none() {
        let r = s
            .read_text(Base::Root, &[&"etc", &"os-release"])
            .map(str::to_owned);
        let r = match r {
            Ok(v) => Ok(v),
            Err(_) => s
                .read_text(Base::Root, &[&"usr", &"lib", &"os-release"])
                .map(str::to_owned),
        };
        let r = r.map(|text| {
            let pretty = etc::os_release::pretty_name(&text).map(str::to_owned);
            facts.os_release = Some(text);
            pretty
        });
        match r {
            Ok(Some(v)) => facts.os = Some(v),
            Ok(None) => {
                first_err.get_or_insert("os-release has no PRETTY_NAME or NAME".to_owned());
            }
            Err(e) => {
                first_err.get_or_insert(e.to_string());
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// What `uname(2)` says, read from the host's `/proc/sys/kernel` (so a daemon in a container
/// reports the host; the `arch` file is Linux 6.1+, before it the architecture this binary was
/// built for). Unreadable fields are empty, as a missing domain name is.
fn read_uname(s: &mut Sampler) -> Vec<(&'static str, String)> {
    let mut read = |file: &str| {
        s.read_text(Base::Proc, &[&"sys", &"kernel", &file])
            .map(|t| t.trim_end_matches('\n').to_owned())
            .ok()
    };
    let machine = read("arch").unwrap_or_else(|| std::env::consts::ARCH.to_owned());
    vec![
        ("domainname", read("domainname").unwrap_or_default()),
        ("machine", machine),
        ("nodename", read("hostname").unwrap_or_default()),
        ("release", read("osrelease").unwrap_or_default()),
        ("sysname", read("ostype").unwrap_or_default()),
        ("version", read("version").unwrap_or_default()),
    ]
}

/// The host fields: `node_name` as configured, the host name when that is empty; unknown facts
/// are empty and an unknown uptime is 0.
pub(super) fn metrics(cur: &HostSample, facts: &HostFacts, node_name: &str) -> HostMetrics {
    let hostname = facts.hostname.clone().unwrap_or_default();
    HostMetrics {
        node_name: if node_name.is_empty() {
            hostname.clone()
        } else {
            node_name.to_owned()
        },
        hostname,
        os: facts.os.clone().unwrap_or_default(),
        kernel: facts.kernel.clone().unwrap_or_default(),
        // Truncated, as `uptime` and v2 show it.
        uptime_secs: cur.uptime.map_or(0, |u| u.uptime_secs as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> HostFacts {
        HostFacts {
            hostname: Some("box".into()),
            kernel: Some("6.8.0".into()),
            os: Some("Ubuntu 24.04".into()),
            ..HostFacts::default()
        }
    }

    #[test]
    fn node_name_falls_back_to_the_host_name() {
        let cur = HostSample {
            uptime: uptime::parse("3600.99 10.0\n").ok(),
        };
        let m = metrics(&cur, &facts(), "");
        assert_eq!(m.node_name, "box");
        assert_eq!(m.hostname, "box");
        assert_eq!(m.uptime_secs, 3600);
        assert_eq!(metrics(&cur, &facts(), "worker-1").node_name, "worker-1");
    }

    #[test]
    fn unknown_facts_are_empty() {
        let m = metrics(&HostSample::default(), &HostFacts::default(), "");
        assert_eq!(
            m,
            HostMetrics {
                node_name: String::new(),
                hostname: String::new(),
                os: String::new(),
                kernel: String::new(),
                uptime_secs: 0,
            }
        );
    }
}
