//! Kernel tables (the snapshot's `system` part): connection tracking entries and limit
//! (`/proc/sys/net/netfilter/nf_conntrack_{count,max}`), file handles (`/proc/sys/fs/file-nr`),
//! entropy (`/proc/sys/kernel/random/{entropy_avail,poolsize}`). Gauges: no previous sample.

use atlhyper_model::SystemMetrics;

use crate::error::ParseResult;
use crate::proc::sys_fs_file_nr::{self, FileNr};
use crate::proc::{sys_kernel_random, sys_net_netfilter};
use crate::sampler::{Base, Sampler};

/// The part of a raw sample this module reads; `None` where a file was absent or unreadable.
#[derive(Debug, Default)]
pub(super) struct SystemSample {
    pub(super) conntrack_entries: Option<u64>,
    pub(super) conntrack_limit: Option<u64>,
    pub(super) file_nr: Option<FileNr>,
    pub(super) entropy_bits: Option<u64>,
    pub(super) entropy_pool_bits: Option<u64>,
}

/// Reads the five files. The conntrack files exist only while the `nf_conntrack` module is
/// loaded: their absence is no figure, not an error.
pub(super) fn sample(s: &mut Sampler, cur: &mut SystemSample) -> Result<(), String> {
    let mut first_err = None;
    let mut keep = |r: Result<Option<u64>, String>| {
        r.unwrap_or_else(|e| {
            first_err.get_or_insert(e);
            None
        })
    };
    let netfilter = |file| ["sys", "net", "netfilter", file];
    let random = |file| ["sys", "kernel", "random", file];
    let entries = sys_net_netfilter::parse_entries;
    cur.conntrack_entries = keep(number(s, netfilter("nf_conntrack_count"), true, entries));
    cur.conntrack_limit = keep(number(s, netfilter("nf_conntrack_max"), true, entries));
    let bits = sys_kernel_random::parse_bits;
    cur.entropy_bits = keep(number(s, random("entropy_avail"), false, bits));
    cur.entropy_pool_bits = keep(number(s, random("poolsize"), false, bits));
    let file_nr = s
        .read_text(Base::Proc, &[&"sys", &"fs", &"file-nr"])
        .map_err(|e| e.to_string())
        .and_then(|t| sys_fs_file_nr::parse(t).map_err(|e| e.to_string()));
    cur.file_nr = match file_nr {
        Ok(nr) => Some(nr),
        Err(e) => {
            first_err.get_or_insert(e);
            None
        }
    };
    first_err.map_or(Ok(()), Err)
}

/// One number from `/proc/<parts>`; `Ok(None)` when an `optional` file does not exist.
fn number(
    s: &mut Sampler,
    parts: [&str; 4],
    optional: bool,
    parse: fn(&str) -> ParseResult<u64>,
) -> Result<Option<u64>, String> {
    let [a, b, c, d] = parts;
    match s.read_text(Base::Proc, &[&a, &b, &c, &d]) {
        Ok(t) => parse(t).map(Some).map_err(|e| e.to_string()),
        Err(e) if optional && e.is_not_found() => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// The snapshot's figures; `None` when no file gave one.
pub(super) fn metrics(cur: &SystemSample) -> Option<SystemMetrics> {
    let m = SystemMetrics {
        conntrack_entries: cur.conntrack_entries,
        conntrack_limit: cur.conntrack_limit,
        filefd_allocated: cur.file_nr.map(|f| f.allocated),
        filefd_max: cur.file_nr.map(|f| f.maximum),
        entropy_bits: cur.entropy_bits,
        entropy_pool_bits: cur.entropy_pool_bits,
    };
    (m != SystemMetrics::default()).then_some(m)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::sampler::{HostRoot, Statfs};

    fn sample_of(files: &[(&str, &str)]) -> (SystemSample, Result<(), String>) {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = dir.path().join("proc").join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let mut s = Sampler::new(
            HostRoot::under(dir.path()),
            Statfs::new(Duration::from_secs(1)),
        );
        let mut cur = SystemSample::default();
        let r = sample(&mut s, &mut cur);
        (cur, r)
    }

    #[test]
    fn no_conntrack_module_is_no_figure_but_a_bad_file_is_an_error() {
        let base = [
            ("sys/fs/file-nr", "10\t0\t100\n"),
            ("sys/kernel/random/entropy_avail", "256\n"),
            ("sys/kernel/random/poolsize", "256\n"),
        ];
        let (cur, r) = sample_of(&base);
        assert_eq!(r, Ok(()));
        assert_eq!((cur.conntrack_entries, cur.conntrack_limit), (None, None));
        assert_eq!(cur.file_nr.map(|f| f.maximum), Some(100));

        let mut bad = base.to_vec();
        bad.push(("sys/net/netfilter/nf_conntrack_count", "lots\n"));
        bad.push(("sys/net/netfilter/nf_conntrack_max", "65536\n"));
        let (cur, r) = sample_of(&bad);
        assert!(r.is_err_and(|e| e.contains("nf_conntrack")));
        assert_eq!(
            (cur.conntrack_entries, cur.conntrack_limit),
            (None, Some(65_536))
        );
        assert_eq!(cur.entropy_bits, Some(256), "the other files still read");

        // Nor is file-nr.
        let (cur, r) = sample_of(&base[1..]);
        assert!(r.is_err_and(|e| e.contains("file-nr")));
        assert_eq!((cur.file_nr, cur.entropy_pool_bits), (None, Some(256)));

        // Entropy is not optional: its absence is reported.
        let (cur, r) = sample_of(&base[..1]);
        assert!(r.is_err_and(|e| e.contains("entropy_avail")));
        assert_eq!(cur.file_nr.map(|f| f.allocated), Some(10));
    }

    #[test]
    fn each_figure_on_its_own() {
        assert_eq!(metrics(&SystemSample::default()), None);
        let cur = SystemSample {
            file_nr: sys_fs_file_nr::parse("607 0 2466170").ok(),
            entropy_bits: Some(256),
            ..SystemSample::default()
        };
        assert_eq!(
            metrics(&cur),
            Some(SystemMetrics {
                conntrack_entries: None,
                conntrack_limit: None,
                filefd_allocated: Some(607),
                filefd_max: Some(2_466_170),
                entropy_bits: Some(256),
                entropy_pool_bits: None,
            })
        );
    }
}
