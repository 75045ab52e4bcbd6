//! End-to-end: the Collector over captured and hand-written fixture trees, checked against the
//! right answers in tests/fixtures/README.md, and golden insta snapshots (timestamps and
//! durations redacted).

mod common;

use atlhyper_collect::HostRoot;
use atlhyper_model::{
    NodeMetricsSnapshot, SoftnetMetrics, SystemMetrics, TcpMetrics, VmstatMetrics,
};
use common::{collector, fixture, replay};

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

fn status<'a>(s: &'a NodeMetricsSnapshot, name: &str) -> &'a atlhyper_model::CollectorStatus {
    s.collectors
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no collector status {name}"))
}

fn assert_golden(name: &str, s: &NodeMetricsSnapshot) {
    insta::assert_yaml_snapshot!(name, s, {
        ".timestamp" => "[timestamp]",
        ".collectors[].duration_us" => "[duration]",
    });
}

#[test]
fn old_kernel_pair_gives_the_documented_answers() {
    let s = replay(
        &fixture("synthetic/old-kernel/t0"),
        &fixture("synthetic/old-kernel/t1"),
        10,
    );
    assert_eq!(s.node_name, "fixture-node");
    assert_eq!(s.hostname, "oldbox");
    assert_eq!(s.kernel, "4.19.0-27-amd64");
    assert_eq!(s.os, "Debian GNU/Linux 10 (buster)");
    assert_eq!(s.uptime, 102);

    let c = &s.cpu;
    // Modes as mpstat splits them: user without nice, system without irq and softirq.
    assert!(close(c.user_percent, 14.0, 1e-9) && close(c.system_percent, 6.0, 1e-9));
    assert_eq!(
        (c.nice_percent, c.irq_percent, c.softirq_percent),
        (Some(4.0), Some(2.0), Some(4.0))
    );
    assert!(close(c.idle_percent, 60.0, 1e-9) && close(c.iowait_percent, 10.0, 1e-9));
    assert!(close(c.usage_percent, 30.0, 1e-9));
    assert_eq!(c.steal_percent, Some(0.0));
    assert!(close(c.per_core[0], 50.0, 1e-9) && close(c.per_core[1], 100.0 / 6.0, 1e-9));
    assert_eq!((c.cores, c.threads), (2, 2));
    assert_eq!(c.frequency, 3100.0);
    assert_eq!(c.model, "Intel(R) Core(TM) i5-6500 CPU @ 3.20GHz");
    assert_eq!((c.load_1, c.load_5, c.load_15), (0.5, 0.4, 0.3));

    let m = &s.memory;
    assert_eq!(m.total, 1_000_000 * 1024);
    // No MemAvailable: the kernel's estimate with the zones' low watermarks (2500 pages = 10000 kB):
    // 200000 - 10000 + 320000 - 10000 + 50000 - 10000 kB.
    assert_eq!(m.available, 540_000 * 1024);
    assert_eq!(m.used, 460_000 * 1024);
    assert_eq!(m.usage_percent, 46.0);
    assert_eq!(m.cached, 350_000 * 1024);
    assert_eq!((m.swap_used, m.swap_percent), (100_000 * 1024, 20.0));

    assert_eq!(s.disks.len(), 2, "{:?}", s.disks);
    let root = s.primary_disk().unwrap();
    assert_eq!(
        (
            root.device.as_str(),
            root.mount_point.as_str(),
            root.fs_type.as_str()
        ),
        ("sda1", "/", "ext4")
    );
    assert_eq!((root.read_iops, root.write_iops), (100.0, 100.0));
    assert_eq!(
        (root.read_rate, root.write_rate),
        (1_024_000.0, 1_024_000.0)
    );
    assert_eq!(root.io_util, 50.0);
    assert_eq!(
        (root.total, root.used, root.available),
        (4_096_000, 2_457_600, 1_228_800)
    );
    assert!(close(root.usage_percent, 200.0 / 3.0, 1e-9));
    assert_eq!((root.inodes_total, root.inodes_used), (Some(100), Some(60)));
    let data = &s.disks[1];
    assert_eq!(
        (data.device.as_str(), data.mount_point.as_str()),
        ("sdb", "/data")
    );
    assert_eq!(
        (data.read_rate, data.write_rate, data.io_util),
        (0.0, 0.0, 0.0),
        "counters went down"
    );
    assert_eq!(
        (data.inodes_total, data.inodes_used),
        (None, None),
        "btrfs reports no inodes"
    );

    let t = s.totals.as_ref().unwrap();
    assert_eq!(
        (t.disk_read_rate, t.disk_write_rate),
        (1_024_000.0, 1_024_000.0)
    );
    assert_eq!((t.disk_read_iops, t.disk_write_iops), (100.0, 100.0));

    let names: Vec<_> = s.networks.iter().map(|n| n.interface.as_str()).collect();
    assert_eq!(names, ["eth0", "wlan0"]);
    let eth = &s.networks[0];
    assert_eq!((eth.rx_rate, eth.tx_rate), (1_000_000.0, 200_000.0));
    assert_eq!(eth.rx_packets_rate, Some(1000.0));
    assert_eq!(eth.rx_dropped_rate, Some(2.0));
    assert_eq!(eth.tx_errors_rate, Some(1.0));
    assert_eq!(
        (eth.speed, eth.mtu, eth.status.as_str()),
        (1000, 1500, "up")
    );
    assert_eq!(eth.mac_address, "52:54:00:aa:bb:cc");
    let wlan = &s.networks[1];
    assert_eq!(wlan.rx_rate, 0.0, "32-bit wrap gives no rate");
    assert_eq!(wlan.rx_packets_rate, Some(100.0));
    assert_eq!(wlan.speed, -1, "no speed file");
    assert_eq!(t.network_rx_rate, 1_000_000.0);

    let pids: Vec<_> = s.processes.iter().map(|p| p.pid).collect();
    assert!(!pids.contains(&101), "a thread is not a process: {pids:?}");
    // pid 300 has a stat (the largest RSS, so a candidate) but no status or cmdline: it exited
    // between the stat scan and the status read. Not reported, and not an error (checked below).
    assert!(!pids.contains(&300), "{pids:?}");
    assert_eq!(pids.len(), 3, "100, 200 and the kernel thread 2: {pids:?}");
    let p100 = s.processes.iter().find(|p| p.pid == 100).unwrap();
    assert_eq!(p100.name, "(sd-pam) x)");
    assert_eq!(p100.cpu_percent, 100.0);
    assert_eq!(p100.user, "alice");
    assert_eq!(p100.cmdline, "/usr/lib/systemd/systemd --user");
    assert_eq!(p100.start_time, 1_600_000_000 + 50);
    // VmRSS from status (8400 kB), not stat's rss (2000 pages = 8000 kB): top and ps show VmRSS.
    assert_eq!(p100.mem_rss, 8400 * 1024);
    assert!(close(p100.mem_percent, 0.84, 1e-9), "{}", p100.mem_percent);
    let nginx = s.processes.iter().find(|p| p.pid == 200).unwrap();
    assert_eq!(nginx.cpu_percent, 0.0, "pid reused: no rate");
    assert_eq!((nginx.user.as_str(), nginx.threads), ("www-data", 2));
    assert_eq!(nginx.cmdline, "nginx: worker process");
    assert_eq!(s.processes[0].pid, 100, "sorted by CPU");
    let kthread = s.processes.iter().find(|p| p.pid == 2).unwrap();
    assert_eq!((kthread.cmdline.as_str(), kthread.mem_rss), ("", 0));

    let psi = s.psi.as_ref().unwrap();
    assert_eq!(
        (
            psi.cpu_some,
            psi.memory_some,
            psi.memory_full,
            psi.io_some,
            psi.io_full
        ),
        (4.0, 1.5, 0.5, 2.0, 1.0)
    );

    for part in [
        "host",
        "cpu",
        "memory",
        "load",
        "disks",
        "network",
        "psi",
        "processes",
    ] {
        let st = status(&s, part);
        assert!(st.ok && st.error.is_none(), "{part}: {st:?}");
    }
    let temp = status(&s, "temperature");
    assert!(
        !temp.ok
            && temp
                .error
                .as_deref()
                .unwrap()
                .contains("no temperature sensors")
    );
    assert_golden("old_kernel_t0_t1", &s);
}

#[test]
fn first_collection_has_no_rates() {
    let mut c = collector(&fixture("synthetic/old-kernel/t1"), 10);
    let s = c.collect();
    assert_eq!(s.cpu.usage_percent, 0.0);
    assert!(s.cpu.per_core.iter().all(|&v| v == 0.0));
    assert_eq!(s.cpu.steal_percent, None);
    assert_eq!(
        (s.cpu.nice_percent, s.cpu.irq_percent, s.cpu.softirq_percent),
        (None, None, None)
    );
    assert!(
        s.disks
            .iter()
            .all(|d| d.read_rate == 0.0 && d.io_util == 0.0)
    );
    assert!(
        s.networks
            .iter()
            .all(|n| n.rx_rate == 0.0 && n.rx_packets_rate.is_none())
    );
    assert!(s.processes.iter().all(|p| p.cpu_percent == 0.0));
    // Counters since boot are there from the start.
    assert_eq!(s.disks[0].read_bytes, 6000 * 512);
    assert_eq!(s.networks[0].rx_bytes, 3_000_000);
}

#[test]
fn btime_change_resets_state() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture("synthetic/old-kernel/t1"), dir.path());
    let stat = dir.path().join("proc/stat");
    let text = std::fs::read_to_string(&stat)
        .unwrap()
        .replace("btime 1600000000", "btime 1600000500");
    std::fs::write(&stat, text).unwrap();

    let mut c = collector(&fixture("synthetic/old-kernel/t0"), 10);
    c.collect();
    c.set_root(HostRoot::under(dir.path()));
    *c.statfs_mut() = atlhyper_collect::Statfs::with_fn(
        std::time::Duration::from_secs(1),
        common::statfs_of(dir.path()),
    );
    let s = c.collect_over(None);
    assert_eq!(s.cpu.usage_percent, 0.0, "rebooted: no CPU rate");
    assert_eq!(s.disks[0].read_rate, 0.0);
    assert_eq!(s.networks[0].rx_rate, 0.0);
    assert!(s.processes.iter().all(|p| p.cpu_percent == 0.0));
    // Without the btime change the same pair gives rates (the control).
    let control = replay(
        &fixture("synthetic/old-kernel/t0"),
        &fixture("synthetic/old-kernel/t1"),
        10,
    );
    assert!(control.cpu.usage_percent > 0.0);
}

#[test]
fn process_with_unreadable_stat_is_skipped_not_an_error_but_garbage_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture("synthetic/old-kernel/t1"), dir.path());
    // Garbage in a pid's stat: reported in `collectors`, the rest still complete.
    std::fs::create_dir_all(dir.path().join("proc/400")).unwrap();
    std::fs::write(dir.path().join("proc/400/stat"), "400 (x) S 1 2").unwrap();
    let mut c = collector(dir.path(), 10);
    let s = c.collect();
    let st = status(&s, "processes");
    assert!(!st.ok);
    assert!(st.error.as_deref().unwrap().contains("/400/stat"), "{st:?}");
    assert!(s.processes.iter().any(|p| p.pid == 100));
    assert!(!s.processes.iter().any(|p| p.pid == 400 || p.pid == 300));
}

#[test]
fn missing_everything_degrades_per_part() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = collector(dir.path(), 10);
    let s = c.collect();
    assert_eq!(s.collectors.len(), 13);
    assert!(
        s.collectors.iter().all(|c| !c.ok && c.error.is_some()),
        "{:?}",
        s.collectors
    );
    assert!(s.disks.is_empty() && s.networks.is_empty() && s.processes.is_empty());
}

#[test]
fn hwmon_intel_with_legacy_layout() {
    let mut c = collector(&fixture("synthetic/hwmon-intel"), 10);
    let s = c.collect();
    let t = &s.temperature;
    assert_eq!((t.cpu_temp, t.cpu_temp_max), (55.0, 84.0));
    let got: Vec<_> = t
        .sensors
        .iter()
        .map(|r| (r.name.as_str(), r.label.as_str(), r.current))
        .collect();
    assert_eq!(
        got,
        [
            ("coretemp", "Package id 0", 55.0),
            ("coretemp", "Core 0", 53.0),
            ("coretemp", "Core 1", 57.0),
            ("nvme", "Composite", 38.85),
            ("it8728", "temp2", 33.0),
            ("acpitz", "temp1", 27.8),
        ]
    );
    assert_eq!(t.sensors[5].critical, 119.0);
    assert!(status(&s, "temperature").ok);
    insta::assert_yaml_snapshot!("hwmon_intel_temperature", s.temperature);
}

#[test]
fn hwmon_amd_tctl() {
    let s = collector(&fixture("synthetic/hwmon-amd"), 10).collect();
    assert_eq!(
        (s.temperature.cpu_temp, s.temperature.cpu_temp_max),
        (67.125, 0.0)
    );
    assert_eq!(s.temperature.sensors.len(), 3);
}

#[test]
fn thermal_zones_only_as_fallback() {
    let s = collector(&fixture("synthetic/thermal-only"), 10).collect();
    assert_eq!(s.temperature.cpu_temp, 61.5);
    let got: Vec<_> = s
        .temperature
        .sensors
        .iter()
        .map(|r| (r.name.as_str(), r.current))
        .collect();
    assert_eq!(got, [("acpitz", 40.0), ("cpu-thermal", 61.5)]);
}

/// MemAvailable removed from a capture of this machine's meminfo (see the fixture README): the
/// estimate is the kernel's formula with the zones' low watermarks, exactly, and lands within
/// 0.5 % of MemTotal of what the kernel itself reported at that moment.
#[test]
fn memavailable_missing_is_estimated_with_the_low_watermarks() {
    let dir = fixture("vm-no-memavailable");
    let s = collector(&dir, 10).collect();
    let m = &s.memory;
    // MemFree 14851360 - wmark_low (21148 pages = 84592 kB) + Active(file) + Inactive(file)
    // 8995752 - 84592 + SReclaimable 495300 - 84592 kB.
    assert_eq!(m.available, 24_088_636 * 1024);
    assert_eq!(m.used, m.total - m.available);
    assert!(status(&s, "memory").ok, "{:?}", status(&s, "memory"));
    let kernel_kb: u64 = std::fs::read_to_string(dir.join("MEMAVAILABLE_KB.txt"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let off = m.available.abs_diff(kernel_kb * 1024) as f64 / m.total as f64 * 100.0;
    assert!(
        off < 0.5,
        "{off} % of MemTotal from the kernel's MemAvailable"
    );

    // Without zoneinfo the estimate leaves the watermarks out, and the memory part says so.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("proc")).unwrap();
    std::fs::copy(dir.join("proc/meminfo"), tmp.path().join("proc/meminfo")).unwrap();
    let s = collector(tmp.path(), 10).collect();
    assert_eq!(s.memory.available, (24_088_636 + 3 * 84_592) * 1024);
    let st = status(&s, "memory");
    assert!(
        !st.ok && st.error.as_deref().unwrap().contains("zoneinfo"),
        "{st:?}"
    );
}

/// Each zone type that is the CPU on its own counts as the CPU reading when hwmon has sensors but
/// none of them is the CPU (here nvme), even with a hotter non-CPU zone (acpitz 70 C) beside it.
#[test]
fn cpu_thermal_zone_types_count_as_the_cpu_without_a_hwmon_cpu_sensor() {
    for ty in [
        "bcm2835_thermal",
        "cpu-thermal",
        "soc_thermal",
        "x86_pkg_temp",
    ] {
        let s = collector(&fixture(&format!("synthetic/thermal-cpu/{ty}")), 10).collect();
        let t = &s.temperature;
        assert_eq!((t.cpu_temp, t.cpu_temp_max), (52.3, 0.0), "{ty}");
        // hwmon had sensors: the zones only give the CPU reading, the list stays hwmon's.
        let got: Vec<_> = t
            .sensors
            .iter()
            .map(|r| (r.name.as_str(), r.current))
            .collect();
        assert_eq!(got, [("nvme", 38.85)], "{ty}");
    }
}

/// The kernel figures of the old-kernel pair (hand-written, see the fixture README): sockstat
/// without UDP mem or UDPLITE, no sockstat6, no netstat and no conntrack module (no figure, not
/// an error), 11-column softnet_stat with CPU 1's processed counter wrapping.
#[test]
fn old_kernel_pair_kernel_figures() {
    let s = replay(
        &fixture("synthetic/old-kernel/t0"),
        &fixture("synthetic/old-kernel/t1"),
        10,
    );
    for part in ["tcp", "system", "vmstat", "softnet"] {
        assert!(status(&s, part).ok, "{:?}", status(&s, part));
    }
    assert_eq!(
        s.tcp,
        Some(TcpMetrics {
            curr_estab: 9,
            alloc: 17,
            in_use: 14,
            time_wait: 25,
            orphan: 2,
            sockets_used: 95,
        })
    );
    assert_eq!(
        s.system,
        Some(SystemMetrics {
            conntrack_entries: None,
            conntrack_limit: None,
            filefd_allocated: Some(1056),
            filefd_max: Some(100_000),
            entropy_bits: Some(3100),
            entropy_pool_bits: Some(4096),
        })
    );
    // Over 2 s: pgfault +20000, pgmajfault +10, pswpin +200, pswpout +400, pgpgin +2000 KiB,
    // pgpgout +4000 KiB.
    assert_eq!(
        s.vmstat,
        Some(VmstatMetrics {
            pgfault_rate: 10_000.0,
            pgmajfault_rate: 5.0,
            pswpin_rate: 100.0,
            pswpout_rate: 200.0,
            pgpgin_rate: 1000.0,
            pgpgout_rate: 2000.0,
        })
    );
    // Drops +10 on CPU 0; squeezes +2 on each CPU. CPU 1's processed counter wrapped, which
    // touches neither.
    assert_eq!(
        s.softnet,
        Some(SoftnetMetrics {
            dropped_rate: 5.0,
            squeezed_rate: 2.0,
        })
    );
    // The first collection has the gauges but no rates yet.
    let first = collector(&fixture("synthetic/old-kernel/t0"), 10).collect();
    assert_eq!(first.tcp.map(|t| t.curr_estab), Some(7));
    assert_eq!((first.vmstat, first.softnet), (None, None));
}

/// The kernel figures of the captured pair, from the files as captured (see the fixture
/// README), over the pair's 4.90 s.
#[test]
fn captured_pair_kernel_figures() {
    let s = replay(&fixture("vm/t0"), &fixture("vm/t1"), 10);
    assert_eq!(
        s.tcp,
        Some(TcpMetrics {
            curr_estab: 18,
            alloc: 25,
            in_use: 25,
            time_wait: 16,
            orphan: 0,
            sockets_used: 109,
        })
    );
    assert_eq!(
        s.system,
        Some(SystemMetrics {
            conntrack_entries: Some(0),
            conntrack_limit: Some(262_144),
            filefd_allocated: Some(2379),
            filefd_max: Some(2_466_170),
            entropy_bits: Some(256),
            entropy_pool_bits: Some(256),
        })
    );
    let v = s.vmstat.unwrap();
    assert!(close(v.pgfault_rate, 145_633.0 / 4.9, 1e-6), "{v:?}");
    assert!(close(v.pgmajfault_rate, 22.0 / 4.9, 1e-9), "{v:?}");
    assert!(close(v.pgpgin_rate, 516.0 / 4.9, 1e-9), "{v:?}");
    assert!(close(v.pgpgout_rate, 133_636.0 / 4.9, 1e-6), "{v:?}");
    assert_eq!((v.pswpin_rate, v.pswpout_rate), (0.0, 0.0), "no swap");
    assert_eq!(
        s.softnet,
        Some(SoftnetMetrics {
            dropped_rate: 0.0,
            squeezed_rate: 0.0,
        })
    );
}

#[test]
fn captured_pair_shows_the_known_load() {
    let load = std::fs::read_to_string(fixture("vm/LOAD.txt")).unwrap();
    let pid_of = |k: &str| -> u32 {
        load.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    let s = replay(&fixture("vm/t0"), &fixture("vm/t1"), 10);
    assert!(
        s.collectors
            .iter()
            .filter(|c| c.name != "temperature")
            .all(|c| c.ok),
        "{:?}",
        s.collectors
    );

    let busy = s
        .processes
        .iter()
        .find(|p| p.pid == pid_of("busy"))
        .expect("busy loop reported");
    assert!(
        (90.0..=110.0).contains(&busy.cpu_percent),
        "busy loop at {}",
        busy.cpu_percent
    );
    assert!(
        !s.processes.iter().any(|p| p.pid == pid_of("thread_of_1")),
        "thread reported as process"
    );
    assert!(
        s.cpu.per_core[1] > 95.0,
        "CPU 1 carries the busy loop: {:?}",
        s.cpu.per_core
    );

    // /proc/stat deltas t0 -> t1: user 460, nice 423 (the builds ran niced), system 90,
    // softirq 5, nothing else: 978 ticks. Old code folded nice into user (90.3 %).
    let c = &s.cpu;
    assert!(close(c.user_percent, 46_000.0 / 978.0, 1e-9), "{c:?}");
    assert!(close(c.nice_percent.unwrap(), 42_300.0 / 978.0, 1e-9));
    assert!(close(c.system_percent, 9_000.0 / 978.0, 1e-9));
    assert!(close(c.softirq_percent.unwrap(), 500.0 / 978.0, 1e-9));
    assert_eq!((c.irq_percent, c.steal_percent), (Some(0.0), Some(0.0)));

    let root = s.primary_disk().unwrap();
    assert_eq!(
        (root.device.as_str(), root.mount_point.as_str()),
        ("vda", "/")
    );
    assert!(root.write_rate > 50e6, "dd O_DIRECT: {}", root.write_rate);
    assert!(root.write_iops > 40.0);

    let atl0 = s
        .networks
        .iter()
        .find(|n| n.interface == "atl0")
        .expect("veth into the netns");
    let pps = atl0.tx_packets_rate.unwrap();
    assert!((1600.0..=2200.0).contains(&pps), "{pps} packets/s");
    assert!(
        close(atl0.tx_rate / pps, 1442.0, 1.0),
        "bytes per frame {}",
        atl0.tx_rate / pps
    );
    assert!(
        !s.networks
            .iter()
            .any(|n| n.interface == "lo" || n.interface.starts_with("ifb"))
    );
    assert_eq!(atl0.ip_address, "10.77.0.1");
    let eth0 = s.networks.iter().find(|n| n.interface == "eth0").unwrap();
    assert_eq!(
        (eth0.ip_address.as_str(), eth0.mtu, eth0.speed),
        ("192.0.2.2", 1400, -1)
    );
    assert_eq!(s.os, "Debian GNU/Linux 12 (bookworm)");
    assert_golden("vm_t0_t1", &s);
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dst).unwrap();
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

#[test]
fn process_started_during_the_interval_counts_all_its_time() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture("synthetic/old-kernel/t1"), dir.path());
    let p = dir.path().join("proc/500");
    std::fs::create_dir_all(&p).unwrap();
    // Started at 101 s (t0 was sampled at uptime 100 s), 50 ticks of CPU since: 25 % over 2 s.
    let stat = "500 (new) R 1 500 500 0 -1 4194560 100 0 0 0 40 10 0 0 20 0 1 0 10100 1000 10 1 1 1 0 0 0 0 0 0";
    std::fs::write(p.join("stat"), stat).unwrap();
    std::fs::write(
        p.join("status"),
        "Tgid:\t500\nPid:\t500\nUid:\t0\t0\t0\t0\nThreads:\t1\n",
    )
    .unwrap();
    std::fs::write(p.join("cmdline"), "new\0").unwrap();
    let mut c = collector(&fixture("synthetic/old-kernel/t0"), 10);
    c.collect();
    c.set_root(HostRoot::under(dir.path()));
    let s = c.collect_over(None);
    let new = s
        .processes
        .iter()
        .find(|p| p.pid == 500)
        .expect("new process reported");
    assert_eq!(new.cpu_percent, 25.0);
}

#[test]
fn dev_root_and_device_mapper_get_their_io_by_major_minor() {
    let s = collector(&fixture("synthetic/mapper"), 10).collect();
    let got: Vec<_> = s
        .disks
        .iter()
        .map(|d| (d.device.as_str(), d.mount_point.as_str(), d.read_bytes))
        .collect();
    // /dev/root is 8:2 (sda2); /dev/mapper/vg-data is 253:0 (dm-0), its bind mount is reported once.
    assert_eq!(
        got,
        [("sda2", "/", 1000 * 512), ("dm-0", "/data", 500 * 512)]
    );
}

#[test]
fn collector_is_send_and_static() {
    fn assert_send_static<T: Send + 'static>() {}
    assert_send_static::<atlhyper_collect::Collector>();
}

#[test]
fn status_and_cmdline_are_read_once_per_process_and_only_for_reported_ones() {
    let mut c = collector(&fixture("synthetic/old-kernel/t1"), 1);
    c.sampler_mut().set_tracing(true);
    let first = c.collect();
    let trace = c.sampler_mut().take_trace();
    let reads = |suffix: &str, t: &[atlhyper_collect::Access]| {
        t.iter()
            .filter(|a| matches!(a, atlhyper_collect::Access::File(p) if p.ends_with(suffix)))
            .count()
    };
    // Every stat (a captured tree has no process clocks: stat is the CPU source), and again
    // with status for each candidate (top 1 by CPU, top 1 by RSS, and the thread that was
    // skipped), never for all four processes.
    // /proc/stat and the five pid directories (300 has only its stat: it exited mid-scan).
    let candidates = reads("status", &trace);
    assert!(candidates < 4, "{trace:?}");
    assert_eq!(reads("stat", &trace), 6 + candidates, "{trace:?}");
    // pid 300 (largest stat rss, status gone) was the top candidate by memory and was tried.
    assert_eq!(reads("300/status", &trace), 1, "{trace:?}");
    assert!(first.processes.iter().all(|p| p.pid != 300));
    let second = c.collect();
    let trace = c.sampler_mut().take_trace();
    assert_eq!(reads("cmdline", &trace), 0, "cached: {trace:?}");
    // status again only for the reported processes (their VmRSS), not for the cached thread;
    // and for pid 300, whose stat is still in the tree (nothing is cached for a process whose
    // status could not be read).
    assert_eq!(
        reads("status", &trace),
        second.processes.len() + 1,
        "{trace:?}"
    );
    assert_eq!(reads("300/status", &trace), 1, "{trace:?}");
    assert_eq!(first.processes, second.processes);
    assert!(second.processes.iter().all(|p| !p.user.is_empty()));
}

/// A hung NFS server: statfs of the NFS mount blocks (an injected statfs function that waits,
/// since mounting a real dead NFS export needs privileges and a server). The collection still
/// finishes within the timeout, reports the mount's failure in `collectors`, and keeps the local
/// disk; the next collection does not wait again.
#[test]
fn hung_nfs_mount_never_stalls_a_collection() {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    std::fs::create_dir_all(root.join("proc/1")).unwrap();
    std::fs::write(
        root.join("proc/1/mountinfo"),
        "20 1 8:1 / / rw - ext4 /dev/sda1 rw\n30 20 0:52 / /mnt/nfs rw - nfs4 server:/export rw\n",
    )
    .unwrap();
    std::fs::write(
        root.join("proc/diskstats"),
        "   8 1 sda1 1 0 8 0 1 0 8 0 0 1 0\n",
    )
    .unwrap();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = std::sync::Mutex::new(release_rx);
    let nfs = root.join("mnt/nfs");
    let func: atlhyper_collect::sampler::StatfsFn = Arc::new(move |p: &std::path::Path| {
        if p == nfs {
            // Blocks until the test ends (bounded, so the thread never outlives the test run).
            let _ = release_rx
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(20));
        }
        Ok(atlhyper_collect::FsSpace {
            total: 1000,
            free: 500,
            available: 400,
            files: 0,
            files_free: 0,
        })
    });
    let mut c = atlhyper_collect::Collector::with_statfs(
        HostRoot::under(&root),
        common::config(10),
        atlhyper_collect::Statfs::with_fn(Duration::from_millis(200), func),
    );
    let t = Instant::now();
    let s = c.collect();
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    let disks = status(&s, "disks");
    assert!(
        !disks.ok && disks.error.as_deref().unwrap().contains("timed out"),
        "{disks:?}"
    );
    let local = s.disks.iter().find(|d| d.mount_point == "/").unwrap();
    assert_eq!((local.device.as_str(), local.total), ("sda1", 1000));
    let nfs_disk = s
        .disks
        .iter()
        .find(|d| d.mount_point == "/mnt/nfs")
        .unwrap();
    assert_eq!(nfs_disk.total, 0, "no space figures for the hung mount");

    // "still blocked" is answered without waiting for the timeout again.
    let s = c.collect();
    assert!(
        status(&s, "disks")
            .error
            .as_deref()
            .unwrap()
            .contains("still blocked")
    );
    drop(release_tx);
}

#[test]
fn sensors_are_looked_for_once_and_only_their_inputs_read_until_one_goes_away() {
    use atlhyper_collect::sampler::Access;
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture("synthetic/hwmon-amd"), dir.path());
    let mut c = collector(dir.path(), 10);
    let temps = |s: &NodeMetricsSnapshot| -> Vec<(String, f64)> {
        let t = &s.temperature;
        t.sensors
            .iter()
            .map(|r| (format!("{}/{}", r.name, r.label), r.current))
            .collect()
    };
    let first = c.collect();
    assert!(first.temperature.sensors.len() >= 3, "{:?}", temps(&first));
    c.sampler_mut().set_tracing(true);
    // A reading changes: the next collection shows it, reading only the inputs under hwmon.
    let hwmon = dir.path().join("sys/class/hwmon");
    std::fs::write(hwmon.join("hwmon0/temp1_input"), "71250\n").unwrap();
    let second = c.collect();
    let trace = c.sampler_mut().take_trace();
    let sysfs: Vec<String> = trace
        .iter()
        .filter_map(|a| match a {
            Access::File(p) | Access::Dir(p) if p.to_string_lossy().contains("/class/hwmon") => {
                Some(p.to_string_lossy().into_owned())
            }
            _ => None,
        })
        .collect();
    assert!(
        !sysfs.is_empty() && sysfs.iter().all(|p| p.ends_with("_input")),
        "{sysfs:?}"
    );
    assert!(
        !trace
            .iter()
            .any(|a| matches!(a, Access::Dir(p) if p.to_string_lossy().contains("thermal"))),
        "{trace:?}"
    );
    assert!(
        temps(&second).iter().any(|(_, v)| *v == 71.25),
        "{:?}",
        temps(&second)
    );
    assert_eq!(
        first.temperature.sensors.len(),
        second.temperature.sensors.len()
    );
    // A chip goes away: its inputs fail, and the next collection looks for the sensors again
    // and reports what is left, as a fresh collector over the same tree does.
    std::fs::remove_dir_all(hwmon.join("hwmon1")).unwrap();
    c.collect();
    let third = c.collect();
    let trace = c.sampler_mut().take_trace();
    assert!(
        trace
            .iter()
            .any(|a| matches!(a, Access::Dir(p) if p.ends_with("class/hwmon"))),
        "not looked for again: {trace:?}"
    );
    let fresh = collector(dir.path(), 10).collect();
    assert_eq!(temps(&third), temps(&fresh));
    assert!(temps(&third).len() < temps(&second).len());
    // A sensor that appears shows within the rediscovery period, without any failure.
    std::fs::create_dir(hwmon.join("hwmon1")).unwrap();
    copy_tree(
        &fixture("synthetic/hwmon-amd/sys/class/hwmon/hwmon1"),
        &hwmon.join("hwmon1"),
    );
    let mut shown = false;
    for _ in 0..12 {
        if temps(&c.collect()).len() == temps(&second).len() {
            shown = true;
            break;
        }
    }
    assert!(shown, "the new chip never showed in 12 collections");
}
