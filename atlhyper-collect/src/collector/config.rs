//! How the collector samples: [`CollectConfig`], the host constants it needs and the default
//! exclusion lists.

use std::time::Duration;

/// Filesystem types left out by default: pseudo and container filesystems (node_exporter's
/// defaults plus tmpfs/ramfs and FUSE helpers).
pub const DEFAULT_EXCLUDE_FS_TYPES: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fusectl",
    "fuse.lxcfs",
    "fuse.gvfsd-fuse",
    "fuse.portal",
    "hugetlbfs",
    "iso9660",
    "mqueue",
    "nsfs",
    "overlay",
    "proc",
    "procfs",
    "pstore",
    "ramfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "erofs",
    "sysfs",
    "tmpfs",
    "tracefs",
    "shm",
];

/// Mount point patterns left out by default (see [`crate::filter::mount_point_matches`]): system
/// trees and kubelet/container runtime mounts.
pub const DEFAULT_EXCLUDE_MOUNT_POINTS: &[&str] = &[
    "/dev",
    "/proc",
    "/sys",
    "/run/credentials/*",
    "/var/lib/docker/*",
    "/var/lib/containers/storage/*",
    "/var/lib/kubelet/pods/*",
    "/var/lib/kubelet/plugins/*",
    "/run/containerd/*",
    "/var/run/containerd/*",
    "/run/k3s/*",
    "/var/lib/rancher/k3s/agent/containerd/*",
    "/run/netns/*",
    "/var/run/netns/*",
    "/run/docker/*",
    "/var/lib/containerd/*",
    "/snap/*",
];

/// node_exporter's default `--collector.filesystem.fs-types-exclude`, for
/// [`CollectConfig::with_node_exporter_filters`].
pub const NODE_EXPORTER_EXCLUDE_FS_TYPES: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "fusectl",
    "hugetlbfs",
    "iso9660",
    "mqueue",
    "nsfs",
    "overlay",
    "proc",
    "procfs",
    "pstore",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tracefs",
];

/// node_exporter's default `--collector.filesystem.mount-points-exclude`
/// (`^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)`).
pub const NODE_EXPORTER_EXCLUDE_MOUNT_POINTS: &[&str] = &[
    "/dev",
    "/proc",
    "/run/credentials/*",
    "/sys",
    "/var/lib/docker/*",
    "/var/lib/containers/storage/*",
];

/// Interface patterns left out by default (virtual interfaces; `*` at the end is a prefix match).
pub const DEFAULT_EXCLUDE_INTERFACES: &[&str] = &[
    "lo",
    "veth*",
    "cali*",
    "flannel*",
    "cni*",
    "docker*",
    "br-*",
    "virbr*",
    "vnet*",
    "tunl*",
    "kube-ipvs*",
    "cilium*",
    "vxlan*",
    "ifb*",
    "dummy*",
    "lxc*",
    "nodelocaldns",
    "kube-bridge",
    "weave",
    "genev_sys_*",
];

/// Constants of the sampled host that turn kernel counters into units. Passed in rather than read
/// where they are used, so a tree captured on another machine is read the same way everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostConstants {
    /// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
    pub clock_ticks_per_sec: u64,
    /// Page size, bytes (`sysconf(_SC_PAGESIZE)`).
    pub page_size: u64,
}

impl HostConstants {
    /// This machine's constants from `sysconf`; 100 ticks and 4096-byte pages where it fails.
    pub fn of_this_machine() -> Self {
        // SAFETY: sysconf has no preconditions.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        // SAFETY: as above.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        Self {
            clock_ticks_per_sec: u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100),
            page_size: u64::try_from(page).ok().filter(|&p| p > 0).unwrap_or(4096),
        }
    }
}

/// How the collector samples.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectConfig {
    /// Kubernetes node name; when empty the host name (`{proc}/sys/kernel/hostname`) is used.
    /// [`CollectConfig::from_host`] takes it from `NODE_NAME`.
    pub node_name: String,
    /// N of "top N by CPU and top N by resident memory" (default 10).
    pub top_processes: usize,
    /// Time limit of one statfs call (default 2 s).
    pub statfs_timeout: Duration,
    /// Run statfs inline (no worker thread, no timeout) for filesystems on a local block device
    /// (major device number not 0, type not a network filesystem); default true. Network, FUSE
    /// and other anonymous-device filesystems (NFS, CIFS, Ceph, FUSE, btrfs, ...) always go
    /// through the worker with [`CollectConfig::statfs_timeout`]. Set false to route every
    /// mount through the worker.
    pub statfs_inline_block_devices: bool,
    /// Filesystem types left out (exact names).
    pub exclude_fs_types: Vec<String>,
    /// Mount point patterns left out: `/dev` matches `/dev` and anything below it, `/var/lib/docker/*`
    /// only what is below.
    pub exclude_mount_points: Vec<String>,
    /// Interfaces left out of `networks` and the totals: exact names, or prefixes ending in `*`.
    pub exclude_interfaces: Vec<String>,
    /// Clock ticks per second of the sampled host (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
    pub clock_ticks_per_sec: u64,
    /// Page size of the sampled host, bytes (`sysconf(_SC_PAGESIZE)`).
    pub page_size: u64,
    /// Sector size of `/proc/diskstats`, bytes (always 512 on Linux).
    pub sector_size: u64,
    /// Keep procfs/sysfs files (one `/proc/<pid>/statm` or `stat` per process, plus the host-wide
    /// files)
    /// open between collections and re-read them with `pread` at offset 0: one syscall per file
    /// instead of open, read and close. Costs one file descriptor and a little kernel memory per
    /// kept file, at most `min(RLIMIT_NOFILE soft / 2, 8192)` of them; files past the limit are
    /// opened and closed each time. Default true. See [`crate::sampler`].
    pub keep_files_open: bool,
    /// Carry an idle process's resident size over from the previous collection instead of
    /// reading its `statm`, when its CPU clock, the node's reclaim counters and the pid
    /// allocator show it cannot have changed (see [`crate::collector`]'s process scan). Default
    /// true; false reads every process every time (the worst case, for measuring).
    pub carry_idle_processes: bool,
    /// Find the processes created since the previous collection from the range of pids the
    /// kernel handed out since, instead of listing `/proc` every time (listed anyway when the
    /// range is large or wrapped, and every few collections; see [`crate::collector`]'s pid
    /// set). Default true; false lists `/proc` every collection (for measuring).
    pub probe_new_pids: bool,
}

impl CollectConfig {
    /// The defaults for node `node_name` (empty: the host name) on a host with `host`'s
    /// constants. Reads nothing from the environment.
    pub fn new(node_name: impl Into<String>, host: HostConstants) -> Self {
        let owned = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect();
        Self {
            node_name: node_name.into(),
            top_processes: 10,
            statfs_timeout: Duration::from_secs(2),
            statfs_inline_block_devices: true,
            keep_files_open: true,
            carry_idle_processes: true,
            probe_new_pids: true,
            exclude_fs_types: owned(DEFAULT_EXCLUDE_FS_TYPES),
            exclude_mount_points: owned(DEFAULT_EXCLUDE_MOUNT_POINTS),
            exclude_interfaces: owned(DEFAULT_EXCLUDE_INTERFACES),
            clock_ticks_per_sec: host.clock_ticks_per_sec,
            page_size: host.page_size,
            sector_size: 512,
        }
    }

    /// node_exporter's default exclusions instead of atlhyper's: every interface (virtual ones
    /// included), tmpfs and kubelet/container mounts kept. With it the node_exporter families
    /// list the same interfaces and filesystems node_exporter does (bind mounts of one
    /// filesystem are still reported once).
    pub fn with_node_exporter_filters(mut self) -> Self {
        let owned = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect();
        self.exclude_fs_types = owned(NODE_EXPORTER_EXCLUDE_FS_TYPES);
        self.exclude_mount_points = owned(NODE_EXPORTER_EXCLUDE_MOUNT_POINTS);
        self.exclude_interfaces = Vec::new();
        self
    }

    /// The defaults with the node name from `NODE_NAME` (empty when unset) and this machine's
    /// [`HostConstants::of_this_machine`].
    pub fn from_host() -> Self {
        Self::new(
            std::env::var("NODE_NAME").unwrap_or_default(),
            HostConstants::of_this_machine(),
        )
    }

    /// The host constants this configuration carries.
    pub fn host_constants(&self) -> HostConstants {
        HostConstants {
            clock_ticks_per_sec: self.clock_ticks_per_sec,
            page_size: self.page_size,
        }
    }
}

/// The same as [`CollectConfig::from_host`] (reads `NODE_NAME` and calls `sysconf`); kept because
/// atlhyper-agent's daemon, the root package's example and the benches build on it.
impl Default for CollectConfig {
    fn default() -> Self {
        Self::from_host()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_reads_nothing_from_the_host() {
        let host = HostConstants {
            clock_ticks_per_sec: 250,
            page_size: 16384,
        };
        let c = CollectConfig::new("n1", host);
        assert_eq!(c.node_name, "n1");
        assert_eq!(c.host_constants(), host);
        assert_eq!(c.sector_size, 512);
        assert_eq!(c.top_processes, 10);
        assert!(c.exclude_interfaces.iter().any(|i| i == "veth*"));
    }

    #[test]
    fn this_machine_has_positive_constants() {
        let h = HostConstants::of_this_machine();
        assert!(h.clock_ticks_per_sec > 0 && h.page_size > 0);
    }
}
