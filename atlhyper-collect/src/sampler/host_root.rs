//! [`HostRoot`]: where the host's `/proc`, `/sys` and `/` are, as an explicit value.

use std::path::PathBuf;

/// Where the host's `/proc`, `/sys` and `/` are mounted. In a container with the host mounted at
/// `/host` this is `{proc: /host/proc, sys: /host/sys, rootfs: /host}`; tests point it at a
/// fixture tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoot {
    /// The host's procfs (default `/proc`).
    pub proc: PathBuf,
    /// The host's sysfs (default `/sys`).
    pub sys: PathBuf,
    /// The host's root filesystem (default `/`): `/etc/passwd`, `/etc/os-release` and statfs of
    /// mount points are looked up under it.
    pub rootfs: PathBuf,
}

impl HostRoot {
    /// A host root from its three parts.
    pub fn new(
        proc: impl Into<PathBuf>,
        sys: impl Into<PathBuf>,
        rootfs: impl Into<PathBuf>,
    ) -> Self {
        Self {
            proc: proc.into(),
            sys: sys.into(),
            rootfs: rootfs.into(),
        }
    }

    /// From `METRICS_PROC_ROOT`, `METRICS_SYS_ROOT` and `METRICS_HOST_ROOT` (AtlHyper v2 names),
    /// each defaulting to `/proc`, `/sys` and `/`. Empty values count as unset.
    pub fn from_env() -> Self {
        let var = |name: &str, default: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map_or_else(|| PathBuf::from(default), PathBuf::from)
        };
        Self::new(
            var("METRICS_PROC_ROOT", "/proc"),
            var("METRICS_SYS_ROOT", "/sys"),
            var("METRICS_HOST_ROOT", "/"),
        )
    }

    /// A captured tree `dir` holding `proc/` and `sys/`, also serving as the root filesystem.
    pub fn under(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        Self::new(dir.join("proc"), dir.join("sys"), dir)
    }

    /// `rel` (an absolute host path such as a mount point) under the root filesystem.
    pub fn host_path(&self, rel: &str) -> PathBuf {
        self.rootfs.join(rel.trim_start_matches('/'))
    }
}

impl Default for HostRoot {
    fn default() -> Self {
        Self::new("/proc", "/sys", "/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_root_paths() {
        let r = HostRoot::under("/x");
        assert_eq!(r.proc, PathBuf::from("/x/proc"));
        assert_eq!(r.host_path("/var/lib"), PathBuf::from("/x/var/lib"));
        assert_eq!(HostRoot::default().host_path("/"), PathBuf::from("/"));
    }
}
