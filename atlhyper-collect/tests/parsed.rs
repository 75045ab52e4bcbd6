//! insta (YAML) snapshots of every parser's output on the fixture files.

use std::path::Path;

use atlhyper_collect::proc::{
    cpuinfo, diskstats, loadavg, meminfo, mountinfo, net_addr, net_dev, net_snmp, net_sockstat,
    net_softnet_stat, pid_stat, pid_statm, pid_status, pressure, stat, sys_fs_file_nr,
    sys_kernel_random, uptime, vmstat,
};

fn text(tree: &str, file: &str) -> String {
    let p = Path::new("tests/fixtures").join(tree).join(file);
    String::from_utf8_lossy(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .into_owned()
}

fn snapshot_tree(tree: &str, key: &str) {
    let t = |f: &str| text(tree, f);
    insta::assert_yaml_snapshot!(format!("{key}_stat"), stat::parse(&t("proc/stat")).unwrap());
    insta::assert_yaml_snapshot!(
        format!("{key}_meminfo"),
        meminfo::parse(&t("proc/meminfo")).unwrap()
    );
    insta::assert_yaml_snapshot!(
        format!("{key}_loadavg"),
        loadavg::parse(&t("proc/loadavg")).unwrap()
    );
    insta::assert_yaml_snapshot!(
        format!("{key}_uptime"),
        uptime::parse(&t("proc/uptime")).unwrap()
    );
    insta::assert_yaml_snapshot!(
        format!("{key}_cpuinfo"),
        cpuinfo::parse(&t("proc/cpuinfo")).unwrap()
    );
    let d = t("proc/diskstats");
    let disks: Vec<_> = diskstats::parse(&d).collect::<Result<_, _>>().unwrap();
    insta::assert_yaml_snapshot!(format!("{key}_diskstats"), disks);
    let n = t("proc/net/dev");
    let nets: Vec<_> = net_dev::parse(&n).collect::<Result<_, _>>().unwrap();
    insta::assert_yaml_snapshot!(format!("{key}_net_dev"), nets);
    let m = t("proc/mounts");
    let mounts: Vec<_> = mountinfo::parse_mounts(&m)
        .collect::<Result<_, _>>()
        .unwrap();
    insta::assert_yaml_snapshot!(format!("{key}_mounts"), mounts);
    let psi: Vec<_> = ["cpu", "memory", "io"]
        .iter()
        .map(|f| pressure::parse(&text(tree, &format!("proc/pressure/{f}"))).unwrap())
        .collect();
    insta::assert_yaml_snapshot!(format!("{key}_pressure"), psi);
}

#[test]
fn vm_t0() {
    snapshot_tree("vm/t0", "vm_t0");
    let m = text("vm/t0", "proc/1/mountinfo");
    let mounts: Vec<_> = mountinfo::parse_mountinfo(&m)
        .collect::<Result<_, _>>()
        .unwrap();
    insta::assert_yaml_snapshot!("vm_t0_mountinfo", mounts);
    let s = text("vm/t0", "proc/1/stat");
    insta::assert_yaml_snapshot!("vm_t0_pid1_stat", pid_stat::parse(&s).unwrap());
    insta::assert_yaml_snapshot!(
        "vm_t0_pid1_status",
        pid_status::parse(&text("vm/t0", "proc/1/status")).unwrap()
    );
    let r = text("vm/t0", "proc/net/route");
    let routes: Vec<_> = net_addr::routes(&r).collect::<Result<_, _>>().unwrap();
    insta::assert_yaml_snapshot!("vm_t0_routes", routes);
    let i = text("vm/t0", "proc/net/if_inet6");
    let v6: Vec<_> = net_addr::if_inet6(&i).collect::<Result<_, _>>().unwrap();
    insta::assert_yaml_snapshot!("vm_t0_if_inet6", v6);
    let local: Vec<_> = net_addr::fib_trie_local(&text("vm/t0", "proc/net/fib_trie")).collect();
    insta::assert_yaml_snapshot!("vm_t0_fib_trie_local", local);
}

#[test]
fn old_kernel_t0() {
    snapshot_tree("synthetic/old-kernel/t0", "old_kernel_t0");
    let s = text("synthetic/old-kernel/t0", "proc/100/stat");
    let p = pid_stat::parse(&s).unwrap();
    assert_eq!(p.comm, "(sd-pam) x)");
    insta::assert_yaml_snapshot!("old_kernel_t0_pid100_stat", p);
}

/// The kernel table files of a tree (sockstat, snmp, vmstat, softnet_stat, file-nr, entropy), as
/// one YAML document per tree.
fn snapshot_kernel_tables(tree: &str, key: &str) {
    let t = |f: &str| text(tree, f);
    let softnet: Vec<_> = net_softnet_stat::parse(&t("proc/net/softnet_stat"))
        .collect::<Result<_, _>>()
        .unwrap();
    let tables = serde_json::json!({
        "sockstat": net_sockstat::parse(&t("proc/net/sockstat")).unwrap(),
        "snmp": net_snmp::parse(&t("proc/net/snmp")).unwrap(),
        "vmstat": vmstat::parse(&t("proc/vmstat")).unwrap(),
        "softnet_stat": softnet,
        "file_nr": sys_fs_file_nr::parse(&t("proc/sys/fs/file-nr")).unwrap(),
        "entropy_avail": sys_kernel_random::parse_bits(&t("proc/sys/kernel/random/entropy_avail")).unwrap(),
        "poolsize": sys_kernel_random::parse_bits(&t("proc/sys/kernel/random/poolsize")).unwrap(),
    });
    insta::assert_yaml_snapshot!(format!("{key}_kernel_tables"), tables);
}

#[test]
fn kernel_tables() {
    snapshot_kernel_tables("vm/t0", "vm_t0");
    snapshot_kernel_tables("synthetic/old-kernel/t0", "old_kernel_t0");
    // Every line of both sockstat files and of snmp + netstat parses (the families read them all).
    for f in ["proc/net/sockstat", "proc/net/sockstat6"] {
        assert!(
            net_sockstat::fields(&text("vm/t0", f)).all(|r| r.is_ok()),
            "{f}"
        );
    }
    for f in ["proc/net/snmp", "proc/net/netstat"] {
        let file = text("vm/t0", f);
        let counters: Vec<_> = net_snmp::fields(&file).collect::<Result<_, _>>().unwrap();
        let n = counters.len();
        assert!(n > 20, "{f}: {n} counters");
    }
    assert!(vmstat::fields(&text("vm/t0", "proc/vmstat")).all(|r| r.is_ok()));
}

#[test]
fn vm_statm() {
    // pid 1 (systemd) and pid 2 (kthreadd: a kernel thread, no memory map), with pid 1's status
    // RSS lines of the same moment: resident 4460 pages of 4 KiB = 17840 kB = VmRSS, shared
    // 1633 pages = 6532 kB = RssFile + RssShmem.
    let one = pid_statm::parse(&text("vm-statm", "proc/1/statm")).unwrap();
    assert_eq!(one.resident_pages * 4, 17840);
    assert_eq!(one.shared_pages * 4, 8 + 6524);
    insta::assert_yaml_snapshot!("vm_statm_pid1", one);
    insta::assert_yaml_snapshot!(
        "vm_statm_pid2",
        pid_statm::parse(&text("vm-statm", "proc/2/statm")).unwrap()
    );
}
