//! Pure filter rules: which mounts and interfaces are reported, which block devices count in the
//! node totals.

/// Mount point pattern match. `pattern` ending in `/*` matches anything strictly below the prefix
/// (`/var/lib/docker/*` matches `/var/lib/docker/overlay2/x`, not `/var/lib/docker`); any other
/// pattern matches itself and anything below it (`/dev` matches `/dev` and `/dev/shm`, not
/// `/devices`).
pub fn mount_point_matches(pattern: &str, mount_point: &str) -> bool {
    if let Some(prefix) = pattern.strip_suffix("/*") {
        return mount_point
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.len() > 1 && rest.starts_with('/'));
    }
    match mount_point.strip_prefix(pattern) {
        Some(rest) => rest.is_empty() || rest.starts_with('/') || pattern.ends_with('/'),
        None => false,
    }
}

/// Interface pattern match: `veth*` is a prefix match, anything else an exact name.
pub fn interface_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pattern,
    }
}

/// Filesystem types that may block in statfs on a dead server, whatever their device number.
pub const NETWORK_FS_TYPES: &[&str] = &[
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "ceph",
    "glusterfs",
    "9p",
    "lustre",
    "afs",
    "ncpfs",
    "davfs",
    "sshfs",
    "gfs2",
    "ocfs2",
];

/// Whether statfs of this mount can run inline: a filesystem on a local block device (major device
/// number not 0, known from mountinfo) that is not a network or FUSE filesystem.
pub fn is_local_block_fs(dev: Option<(u32, u32)>, fs_type: &str) -> bool {
    matches!(dev, Some((major, _)) if major != 0)
        && !fs_type.starts_with("fuse")
        && !NETWORK_FS_TYPES.contains(&fs_type)
}

/// Whether a whole block device counts in the node disk totals: stacked and memory devices
/// (loop, ram, zram, dm-*, md*) would count the same IO twice or are not disks.
pub fn counts_in_totals(name: &str) -> bool {
    !["loop", "ram", "zram", "dm-", "md", "nbd", "sr"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// Recognises whole disks by name when `/sys/block` is unavailable: `sda`, `vdb`, `xvda`, `hda`
/// (letters only after the prefix), `nvme0n1` and `mmcblk0` (no `p<N>` partition suffix).
pub fn looks_like_whole_disk(name: &str) -> bool {
    for prefix in ["sd", "vd", "xvd", "hd"] {
        if let Some(rest) = name.strip_prefix(prefix) {
            return !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_lowercase());
        }
    }
    if name.starts_with("nvme") || name.starts_with("mmcblk") {
        return !name.contains('p');
    }
    false
}

/// node_exporter's default diskstats exclusion, `^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$`:
/// partitions of sd/vd/hd/xvd and NVMe disks, ram, loop and floppy devices.
pub fn node_exporter_ignores_disk(name: &str) -> bool {
    let prefix = name.trim_end_matches(|c: char| c.is_ascii_digit());
    if prefix.len() == name.len() {
        return false;
    }
    if matches!(prefix, "ram" | "loop" | "fd") {
        return true;
    }
    let lettered = |p: &str| {
        let b = p.as_bytes();
        b.len() == 3
            && matches!(b[0], b'h' | b's' | b'v')
            && b[1] == b'd'
            && b[2].is_ascii_lowercase()
    };
    if lettered(prefix) || prefix.strip_prefix('x').is_some_and(lettered) {
        return true;
    }
    // nvme<digits>n<digits>p
    let Some(rest) = prefix
        .strip_prefix("nvme")
        .and_then(|r| r.strip_suffix('p'))
    else {
        return false;
    };
    let Some((ctrl, ns)) = rest.split_once('n') else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(ctrl) && digits(ns)
}

/// node_exporter's default `--collector.netstat.fields` on `<protocol>_<name>`:
/// `^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|`
/// `TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)|`
/// `Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|`
/// `Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$`.
pub fn node_exporter_netstat_field(protocol: &str, name: &str) -> bool {
    if matches!(name, "InErrors" | "InErrs")
        || name.ends_with("_InErrors")
        || name.ends_with("_InErrs")
    {
        return true;
    }
    match protocol {
        "Ip" => name == "Forwarding",
        "Ip6" | "IpExt" => matches!(name, "InOctets" | "OutOctets"),
        "Icmp" | "Icmp6" => matches!(name, "InMsgs" | "OutMsgs"),
        "TcpExt" => {
            name.starts_with("Listen")
                || name.starts_with("Syncookies")
                || matches!(name, "TCPSynRetrans" | "TCPTimeouts")
        }
        "Tcp" => matches!(
            name,
            "ActiveOpens"
                | "InSegs"
                | "OutSegs"
                | "OutRsts"
                | "PassiveOpens"
                | "RetransSegs"
                | "CurrEstab"
        ),
        "Udp" | "Udp6" => matches!(
            name,
            "InDatagrams" | "OutDatagrams" | "NoPorts" | "RcvbufErrors" | "SndbufErrors"
        ),
        _ => false,
    }
}

/// node_exporter's default `--collector.vmstat.fields`, `^(oom_kill|pgpg|pswp|pg.*fault).*`:
/// the OOM kill count, paging, swapping and page fault counters.
pub fn node_exporter_vmstat_field(key: &str) -> bool {
    key.starts_with("oom_kill")
        || key.starts_with("pgpg")
        || key.starts_with("pswp")
        || key
            .strip_prefix("pg")
            .is_some_and(|rest| rest.contains("fault"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_exporter_disk_exclusion() {
        for ignored in [
            "sda1",
            "vda12",
            "xvdb3",
            "hdc1",
            "nvme0n1p2",
            "ram0",
            "loop7",
            "fd0",
        ] {
            assert!(node_exporter_ignores_disk(ignored), "{ignored}");
        }
        for kept in [
            "sda",
            "vda",
            "nvme0n1",
            "zram0",
            "dm-0",
            "md127",
            "mmcblk0p1",
            "sdaa1",
            "nvmen1p1",
            "loop",
        ] {
            assert!(!node_exporter_ignores_disk(kept), "{kept}");
        }
    }

    #[test]
    fn mount_points() {
        assert!(mount_point_matches("/dev", "/dev"));
        assert!(mount_point_matches("/dev", "/dev/shm"));
        assert!(!mount_point_matches("/dev", "/devices"));
        assert!(mount_point_matches(
            "/var/lib/docker/*",
            "/var/lib/docker/overlay2/abc/merged"
        ));
        assert!(!mount_point_matches("/var/lib/docker/*", "/var/lib/docker"));
        assert!(!mount_point_matches(
            "/var/lib/docker/*",
            "/var/lib/dockerx/a"
        ));
        assert!(mount_point_matches(
            "/var/lib/kubelet/pods/*",
            "/var/lib/kubelet/pods/uid/volumes/x"
        ));
        assert!(!mount_point_matches("/proc", "/"));
    }

    #[test]
    fn inline_statfs_only_for_local_block_devices() {
        assert!(is_local_block_fs(Some((8, 1)), "ext4"));
        assert!(is_local_block_fs(Some((253, 0)), "xfs"));
        assert!(
            !is_local_block_fs(Some((0, 52)), "nfs4"),
            "NFS has an anonymous device"
        );
        assert!(!is_local_block_fs(Some((8, 1)), "nfs"));
        assert!(!is_local_block_fs(Some((8, 1)), "fuse.sshfs"));
        assert!(
            !is_local_block_fs(None, "ext4"),
            "unknown device (mounts format)"
        );
    }

    #[test]
    fn interfaces_and_disks() {
        assert!(interface_matches("veth*", "veth1234"));
        assert!(interface_matches("lo", "lo"));
        assert!(!interface_matches("lo", "lo0"));
        assert!(!interface_matches("cali*", "eth0"));
        assert!(counts_in_totals("sda") && counts_in_totals("nvme0n1"));
        assert!(
            !counts_in_totals("dm-0") && !counts_in_totals("loop3") && !counts_in_totals("zram0")
        );
        assert!(
            looks_like_whole_disk("sda")
                && looks_like_whole_disk("nvme0n1")
                && looks_like_whole_disk("mmcblk0")
        );
        assert!(
            !looks_like_whole_disk("sda1")
                && !looks_like_whole_disk("nvme0n1p2")
                && !looks_like_whole_disk("loop0")
        );
    }

    #[test]
    fn node_exporter_netstat_defaults() {
        for (p, n) in [
            ("Tcp", "CurrEstab"),
            ("Tcp", "InErrs"),
            ("Tcp", "OutRsts"),
            ("Udp", "InErrors"),
            ("UdpLite", "InErrors"),
            ("Udp", "SndbufErrors"),
            ("Ip", "Forwarding"),
            ("IpExt", "InOctets"),
            ("Icmp", "OutMsgs"),
            ("TcpExt", "ListenDrops"),
            ("TcpExt", "SyncookiesSent"),
            ("TcpExt", "TCPTimeouts"),
        ] {
            assert!(node_exporter_netstat_field(p, n), "{p}_{n}");
        }
        for (p, n) in [
            ("Tcp", "MaxConn"),
            ("Tcp", "InCsumErrors"),
            ("Ip", "InHdrErrors"),
            ("Ip", "DefaultTTL"),
            ("UdpLite", "InDatagrams"),
            ("IcmpMsg", "InType3"),
            ("TcpExt", "TCPLostRetransmit"),
        ] {
            assert!(!node_exporter_netstat_field(p, n), "{p}_{n}");
        }
    }

    #[test]
    fn node_exporter_vmstat_defaults() {
        for k in [
            "oom_kill",
            "pgpgin",
            "pgpgout",
            "pswpin",
            "pswpout",
            "pgfault",
            "pgmajfault",
        ] {
            assert!(node_exporter_vmstat_field(k), "{k}");
        }
        for k in ["nr_free_pages", "pgfree", "pgsteal_kswapd", "faults", "pg"] {
            assert!(!node_exporter_vmstat_field(k), "{k}");
        }
    }
}
