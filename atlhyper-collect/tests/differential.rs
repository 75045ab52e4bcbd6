//! Differential tests: our parsers agree with procfs-core on every fixture file (and on this
//! machine's live /proc) where both parse. A file only one side accepts is listed, so a silent
//! divergence cannot hide: the test fails if procfs-core accepts a file we reject.

use std::path::{Path, PathBuf};

use atlhyper_collect::proc::{
    cpuinfo, diskstats, loadavg, meminfo, mountinfo, net_dev, net_snmp, pid_stat, pid_status,
    pressure, stat, uptime, vmstat,
};
use procfs_core::{ExplicitSystemInfo, FromBufRead, FromRead, FromReadSI};

fn trees() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = [
        "vm/t0",
        "vm/t1",
        "synthetic/old-kernel/t0",
        "synthetic/old-kernel/t1",
    ]
    .iter()
    .map(|t| Path::new("tests/fixtures").join(t).join("proc"))
    .collect();
    v.push(PathBuf::from("/proc"));
    v
}

fn read(p: &Path) -> Option<String> {
    std::fs::read(p)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn si() -> ExplicitSystemInfo {
    ExplicitSystemInfo {
        boot_time_secs: 0,
        ticks_per_second: 100,
        page_size: 4096,
        is_little_endian: true,
    }
}

/// Counts of files compared, per kind, so the test can assert it compared something.
#[derive(Default)]
struct Count(usize);

#[test]
fn stat_agrees() {
    let mut n = Count::default();
    for t in trees() {
        let Some(text) = read(&t.join("stat")) else {
            continue;
        };
        let ours = stat::parse(&text);
        let theirs = procfs_core::KernelStats::from_read(text.as_bytes(), &si());
        let (Ok(ours), Ok(theirs)) = (ours, theirs) else {
            panic!("{}: only one parser accepted the file", t.display());
        };
        assert_eq!(ours.btime, theirs.btime);
        assert_eq!(ours.cpus.len(), theirs.cpu_time.len());
        for (a, b) in std::iter::once((&ours.cpu, &theirs.total))
            .chain(ours.cpus.iter().zip(&theirs.cpu_time))
        {
            assert_eq!(
                (a.user, a.nice, a.system, a.idle),
                (b.user, b.nice, b.system, b.idle)
            );
            assert_eq!(
                (Some(a.iowait), Some(a.irq), Some(a.softirq)),
                (b.iowait, b.irq, b.softirq)
            );
            assert_eq!(
                (a.steal, a.guest, a.guest_nice),
                (b.steal, b.guest, b.guest_nice)
            );
        }
        assert_eq!(ours.ctxt, Some(theirs.ctxt));
        assert_eq!(ours.procs_running, theirs.procs_running.map(u64::from));
        n.0 += 1;
    }
    assert!(n.0 >= 5);
}

#[test]
fn meminfo_agrees() {
    let mut n = 0;
    for t in trees() {
        let Some(text) = read(&t.join("meminfo")) else {
            continue;
        };
        let ours = meminfo::parse(&text).unwrap();
        // procfs-core requires fields our hand-written old-kernel tree does not have (Active, ...).
        let Ok(theirs) = procfs_core::Meminfo::from_read(text.as_bytes()) else {
            continue;
        };
        assert_eq!(ours.mem_total, theirs.mem_total);
        assert_eq!(ours.mem_free, theirs.mem_free);
        assert_eq!(ours.mem_available, theirs.mem_available);
        assert_eq!(ours.cached, theirs.cached);
        assert_eq!(ours.buffers, theirs.buffers);
        assert_eq!(ours.s_reclaimable, theirs.s_reclaimable);
        assert_eq!(ours.shmem, theirs.shmem);
        assert_eq!(
            (ours.swap_total, ours.swap_free),
            (theirs.swap_total, theirs.swap_free)
        );
        n += 1;
    }
    assert!(n >= 3);
}

#[test]
fn loadavg_and_uptime_agree() {
    let mut n = 0;
    for t in trees() {
        if let Some(text) = read(&t.join("loadavg")) {
            let ours = loadavg::parse(&text).unwrap();
            let theirs = procfs_core::LoadAverage::from_read(text.as_bytes()).unwrap();
            // procfs-core keeps f32; compare at its precision.
            assert_eq!(
                (ours.one as f32, ours.five as f32, ours.fifteen as f32),
                (theirs.one, theirs.five, theirs.fifteen)
            );
            assert_eq!(
                (ours.running, ours.total, ours.last_pid),
                (
                    u64::from(theirs.cur),
                    u64::from(theirs.max),
                    u64::from(theirs.latest_pid)
                )
            );
            n += 1;
        }
        if let Some(text) = read(&t.join("uptime")) {
            let ours = uptime::parse(&text).unwrap();
            let theirs = procfs_core::Uptime::from_read(text.as_bytes()).unwrap();
            assert_eq!(
                (ours.uptime_secs, ours.idle_secs),
                (theirs.uptime, theirs.idle)
            );
            n += 1;
        }
    }
    assert!(n >= 10);
}

#[test]
fn cpuinfo_agrees() {
    let mut n = 0;
    for t in trees() {
        let Some(text) = read(&t.join("cpuinfo")) else {
            continue;
        };
        let ours = cpuinfo::parse(&text).unwrap();
        let theirs = procfs_core::CpuInfo::from_read(text.as_bytes()).unwrap();
        assert_eq!(ours.logical as usize, theirs.num_cores());
        assert_eq!(Some(ours.model.as_str()), theirs.model_name(0));
        n += 1;
    }
    assert!(n >= 5);
}

#[test]
fn diskstats_agree() {
    let mut n = 0;
    for t in trees() {
        let Some(text) = read(&t.join("diskstats")) else {
            continue;
        };
        let ours: Vec<_> = diskstats::parse(&text).collect::<Result<_, _>>().unwrap();
        let theirs = procfs_core::DiskStats::from_read(text.as_bytes())
            .unwrap()
            .0;
        assert_eq!(ours.len(), theirs.len());
        for (a, b) in ours.iter().zip(&theirs) {
            assert_eq!(
                (a.major as i32, a.minor as i32, a.name),
                (b.major, b.minor, b.name.as_str())
            );
            assert_eq!(
                (a.reads, a.reads_merged, a.sectors_read, a.read_ms),
                (b.reads, b.merged, b.sectors_read, b.time_reading)
            );
            assert_eq!(
                (a.writes, a.writes_merged, a.sectors_written, a.write_ms),
                (b.writes, b.writes_merged, b.sectors_written, b.time_writing)
            );
            assert_eq!(
                (a.in_progress, a.io_ms, a.weighted_io_ms),
                (
                    b.in_progress,
                    b.time_in_progress,
                    b.weighted_time_in_progress
                )
            );
            assert_eq!(
                (
                    a.discards,
                    a.discards_merged,
                    a.sectors_discarded,
                    a.discard_ms
                ),
                (
                    b.discards,
                    b.discards_merged,
                    b.sectors_discarded,
                    b.time_discarding
                )
            );
            assert_eq!((a.flushes, a.flush_ms), (b.flushes, b.time_flushing));
            n += 1;
        }
    }
    assert!(n >= 20);
}

#[test]
fn net_dev_agrees() {
    let mut n = 0;
    for t in trees() {
        let Some(text) = read(&t.join("net/dev")) else {
            continue;
        };
        let ours: Vec<_> = net_dev::parse(&text).collect::<Result<_, _>>().unwrap();
        // procfs-core rejects a name abutting its counter (`eth0:1000000`); ours accepts it.
        let Ok(theirs) = procfs_core::net::InterfaceDeviceStatus::from_read(text.as_bytes()) else {
            assert!(text.lines().any(|l| {
                l.trim_start()
                    .split_once(':')
                    .is_some_and(|(_, r)| !r.starts_with(' '))
            }));
            continue;
        };
        let theirs = theirs.0;
        assert_eq!(ours.len(), theirs.len());
        for a in &ours {
            let b = &theirs[a.name];
            assert_eq!(
                (a.rx_bytes, a.rx_packets, a.rx_errors, a.rx_dropped),
                (b.recv_bytes, b.recv_packets, b.recv_errs, b.recv_drop)
            );
            assert_eq!(
                (a.rx_fifo, a.rx_frame, a.rx_compressed, a.rx_multicast),
                (
                    b.recv_fifo,
                    b.recv_frame,
                    b.recv_compressed,
                    b.recv_multicast
                )
            );
            assert_eq!(
                (a.tx_bytes, a.tx_packets, a.tx_errors, a.tx_dropped),
                (b.sent_bytes, b.sent_packets, b.sent_errs, b.sent_drop)
            );
            assert_eq!(
                (a.tx_fifo, a.tx_collisions, a.tx_carrier, a.tx_compressed),
                (b.sent_fifo, b.sent_colls, b.sent_carrier, b.sent_compressed)
            );
            n += 1;
        }
    }
    assert!(n >= 5);
}

#[test]
fn mountinfo_and_mounts_agree() {
    let mut n = 0;
    for t in trees() {
        for f in ["1/mountinfo", "self/mountinfo"] {
            let Some(text) = read(&t.join(f)) else {
                continue;
            };
            let ours: Vec<_> = mountinfo::parse_mountinfo(&text)
                .collect::<Result<_, _>>()
                .unwrap();
            let theirs = procfs_core::process::MountInfos::from_read(text.as_bytes())
                .unwrap()
                .0;
            assert_eq!(ours.len(), theirs.len());
            for (a, b) in ours.iter().zip(&theirs) {
                let (maj, min) = a.dev.unwrap();
                assert_eq!(format!("{maj}:{min}"), b.majmin);
                assert_eq!(a.mount_point.as_ref(), b.mount_point.to_str().unwrap());
                assert_eq!(a.fs_type, b.fs_type);
                assert_eq!(Some(a.source.as_ref()), b.mount_source.as_deref());
                assert_eq!(a.root.as_deref(), Some(b.root.as_str()));
                n += 1;
            }
        }
        if let Some(text) = read(&t.join("mounts")) {
            let ours: Vec<_> = mountinfo::parse_mounts(&text)
                .collect::<Result<_, _>>()
                .unwrap();
            let theirs: Vec<procfs_core::MountEntry> =
                FromRead::from_read(text.as_bytes()).unwrap();
            assert_eq!(ours.len(), theirs.len());
            for (a, b) in ours.iter().zip(&theirs) {
                assert_eq!(
                    (a.source.as_ref(), a.fs_type),
                    (b.fs_spec.as_str(), b.fs_vfstype.as_str())
                );
                // procfs-core leaves mounts paths escaped.
                assert_eq!(
                    a.mount_point.as_ref(),
                    mountinfo::unescape(&b.fs_file).as_ref()
                );
                n += 1;
            }
        }
    }
    assert!(n >= 30);
}

#[test]
fn pressure_agrees() {
    let mut n = 0;
    for t in trees() {
        let files = [("cpu", 0), ("memory", 1), ("io", 2)];
        for (f, kind) in files {
            let Some(text) = read(&t.join("pressure").join(f)) else {
                continue;
            };
            let ours = pressure::parse(&text).unwrap();
            let (some, full) = match kind {
                0 => match procfs_core::CpuPressure::from_read(text.as_bytes()) {
                    Ok(p) => (p.some, Some(p.full)),
                    // procfs-core requires a cpu `full` line (Linux 5.13+); ours accepts old kernels.
                    Err(_) => {
                        assert!(ours.full.is_none());
                        continue;
                    }
                },
                1 => {
                    let p = procfs_core::MemoryPressure::from_read(text.as_bytes()).unwrap();
                    (p.some, Some(p.full))
                }
                _ => {
                    let p = procfs_core::IoPressure::from_read(text.as_bytes()).unwrap();
                    (p.some, Some(p.full))
                }
            };
            assert_eq!(
                (
                    ours.some.avg10 as f32,
                    ours.some.avg60 as f32,
                    ours.some.avg300 as f32,
                    ours.some.total_us
                ),
                (some.avg10, some.avg60, some.avg300, some.total)
            );
            if let (Some(a), Some(b)) = (ours.full, full) {
                assert_eq!((a.avg10 as f32, a.total_us), (b.avg10, b.total));
            }
            n += 1;
        }
    }
    assert!(n >= 10);
}

#[test]
fn pid_stat_and_status_agree() {
    let mut n = 0;
    for t in trees() {
        let Ok(rd) = std::fs::read_dir(&t) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(bytes) = std::fs::read(t.join(pid.to_string()).join("stat")) else {
                continue;
            };
            let text = String::from_utf8_lossy(&bytes);
            let (Ok(a), Ok(b)) = (
                pid_stat::parse(&text),
                procfs_core::process::Stat::from_read(bytes.as_slice()),
            ) else {
                // A live process may have exited between listing and reading.
                continue;
            };
            assert_eq!(
                (a.pid as i32, a.comm, a.state, a.ppid as i32),
                (b.pid, b.comm.as_str(), b.state, b.ppid)
            );
            assert_eq!(
                (a.utime, a.stime, a.starttime, a.vsize, a.rss_pages),
                (b.utime, b.stime, b.starttime, b.vsize, b.rss)
            );
            assert_eq!((a.num_threads as i64, a.nice), (b.num_threads, b.nice));
            if let Ok(s) = std::fs::read(t.join(pid.to_string()).join("status")) {
                let text = String::from_utf8_lossy(&s);
                if let (Ok(a), Ok(b)) = (
                    pid_status::parse(&text),
                    procfs_core::process::Status::from_read(s.as_slice()),
                ) {
                    assert_eq!(
                        (a.tgid as i32, a.pid as i32, a.uid),
                        (b.tgid, b.pid, b.ruid)
                    );
                    assert_eq!(a.vm_rss.map(|v| v / 1024), b.vmrss);
                    assert_eq!(a.threads.map(u64::from), Some(b.threads));
                }
            }
            n += 1;
        }
    }
    assert!(n >= 60, "{n}");
}

#[test]
fn snmp_agrees() {
    let mut n = 0;
    for t in trees() {
        let Some(text) = read(&t.join("net/snmp")) else {
            continue;
        };
        // procfs-core requires the full Ip and Icmp sections, which the hand-written old-kernel
        // files leave out.
        let Ok(theirs) = procfs_core::net::Snmp::from_buf_read(text.as_bytes()) else {
            continue;
        };
        let ours = net_snmp::parse(&text)
            .unwrap_or_else(|e| panic!("{}: procfs-core accepted, we rejected: {e}", t.display()));
        let (tcp, udp) = (ours.tcp, ours.udp);
        assert_eq!(
            [
                tcp.active_opens,
                tcp.passive_opens,
                tcp.attempt_fails,
                tcp.estab_resets,
                tcp.curr_estab,
                tcp.in_segs,
                tcp.out_segs,
                tcp.retrans_segs,
            ],
            [
                theirs.tcp_active_opens,
                theirs.tcp_passive_opens,
                theirs.tcp_attempt_fails,
                theirs.tcp_estab_resets,
                theirs.tcp_curr_estab,
                theirs.tcp_in_segs,
                theirs.tcp_out_segs,
                theirs.tcp_retrans_segs,
            ],
            "{}",
            t.display()
        );
        assert_eq!(
            (tcp.in_errs, tcp.out_rsts),
            (Some(theirs.tcp_in_errs), Some(theirs.tcp_out_rsts))
        );
        assert_eq!(
            [
                udp.in_datagrams,
                udp.no_ports,
                udp.in_errors,
                udp.out_datagrams
            ],
            [
                theirs.udp_in_datagrams,
                theirs.udp_no_ports,
                theirs.udp_in_errors,
                theirs.udp_out_datagrams,
            ]
        );
        assert_eq!(
            (udp.rcvbuf_errors, udp.sndbuf_errors),
            (
                Some(theirs.udp_rcvbuf_errors),
                Some(theirs.udp_sndbuf_errors)
            )
        );
        n += 1;
    }
    assert!(n >= 3, "{n} files compared");
}

#[test]
fn vmstat_agrees() {
    let mut n = 0;
    for t in trees() {
        let Some(text) = read(&t.join("vmstat")) else {
            continue;
        };
        let theirs = procfs_core::VmStat::from_buf_read(text.as_bytes())
            .unwrap_or_else(|e| panic!("{}: {e:?}", t.display()));
        let ours: Vec<_> = vmstat::fields(&text)
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{}: {e}", t.display()));
        assert_eq!(ours.len(), theirs.0.len(), "{}", t.display());
        for f in &ours {
            assert_eq!(
                Some(f.value),
                theirs.0.get(f.key).and_then(|v| u64::try_from(*v).ok()),
                "{}: {}",
                t.display(),
                f.key
            );
        }
        let typed = vmstat::parse(&text).unwrap();
        assert_eq!(typed.pgfault, theirs.0.get("pgfault").map(|v| *v as u64));
        n += 1;
    }
    assert!(n >= 5, "{n} files compared");
}
