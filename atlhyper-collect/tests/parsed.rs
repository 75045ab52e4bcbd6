//! insta (YAML) snapshots of every parser's output on the fixture files.

use std::path::Path;

use atlhyper_collect::proc::{
    cpuinfo, diskstats, loadavg, meminfo, mountinfo, net_addr, net_dev, pid_stat, pid_status,
    pressure, stat, uptime,
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
