//! proptest: no parser panics on arbitrary input (random text, and real lines with random
//! mutations); rates are finite and non-negative; percentages stay within 0..=100.

use std::time::Duration;

use atlhyper_collect::delta::{self, DiskCounters, NetCounters, ProcessTimes};
use atlhyper_collect::etc::{os_release, passwd};
use atlhyper_collect::proc::net_softnet_stat::SoftnetCpu;
use atlhyper_collect::proc::stat::CpuTimes;
use atlhyper_collect::proc::vmstat::Vmstat;
use atlhyper_collect::proc::{
    cpuinfo, diskstats, loadavg, meminfo, mountinfo, net_addr, net_dev, net_snmp, net_sockstat,
    net_softnet_stat, pid_cmdline, pid_stat, pid_statm, pid_status, pressure, stat, sys_fs_file_nr,
    sys_kernel_random, sys_net_netfilter, uptime, vmstat, zoneinfo,
};
use atlhyper_collect::sys::{cpufreq, hwmon, net_class, thermal};
use proptest::prelude::*;

fn run_all(text: &str) {
    let _ = stat::parse(text);
    let _ = meminfo::parse(text);
    let _ = loadavg::parse(text);
    let _ = uptime::parse(text);
    let _ = cpuinfo::parse(text);
    diskstats::parse(text).for_each(drop);
    mountinfo::parse_mountinfo(text).for_each(drop);
    mountinfo::parse_mounts(text).for_each(drop);
    let _ = mountinfo::unescape(text);
    net_dev::parse(text).for_each(drop);
    let _ = pressure::parse(text);
    let _ = pid_stat::parse(text);
    let _ = pid_statm::parse(text);
    let _ = pid_status::parse(text);
    let _ = zoneinfo::low_watermark_pages(text);
    let _ = pid_cmdline::to_display(text.as_bytes());
    net_addr::fib_trie_local(text).for_each(drop);
    net_addr::routes(text).for_each(drop);
    net_addr::if_inet6(text).for_each(drop);
    let _ = net_addr::address_of("eth0", text, text, text);
    let _ = hwmon::temp_attr(text);
    let _ = hwmon::parse_millidegrees(text);
    let _ = hwmon::cpu_sensor_rank(text, text);
    let _ = thermal::parse_temp(text);
    let _ = thermal::is_cpu_zone(text);
    let _ = net_class::parse_speed(text);
    let _ = net_class::parse_mtu(text);
    let _ = cpufreq::parse_cur_freq_mhz(text);
    let _ = passwd::lookup(text, 0);
    let _ = os_release::pretty_name(text);
    let _ = net_sockstat::parse(text);
    net_sockstat::fields(text).for_each(drop);
    let _ = net_snmp::parse(text);
    net_snmp::fields(text).for_each(drop);
    let _ = vmstat::parse(text);
    vmstat::fields(text).for_each(drop);
    net_softnet_stat::parse(text).for_each(drop);
    let _ = sys_fs_file_nr::parse(text);
    let _ = sys_kernel_random::parse_bits(text);
    let _ = sys_net_netfilter::parse_entries(text);
}

const SEEDS: &[&str] = &[
    "cpu  33182 0 5405 37344 259 0 41 23 0 0\ncpu0 15245 0 2383 20381 86 0 5 8 0 0\nbtime 1700000000\n",
    "MemTotal:       49367316 kB\nMemFree: 1 kB\nBuffers: 1 kB\nCached: 1 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n",
    "0.52 0.58 0.59 2/345 12345\n",
    " 254 0 vda 13272 3866 2313442 8832 4935 29082 6321080 36023 0 4856 45686 5549 33 1212032 821 69 8\n",
    "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n",
    "  eth0:1000000 1000 0 0 0 0 0 0 500000 800 0 0 0 0 0 0\n",
    "some avg10=19.68 avg60=16.34 avg300=9.10 total=43693198\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
    "4242 (a) (b) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 1234 10485760 512 1 1 1 0 0\n",
    "12187 4460 1633 1330 0 10341 0\n",
    "Name:\tbash\nTgid:\t10\nPid:\t10\nUid:\t1000\t1000\t1000\t1000\nVmRSS:\t4096 kB\nThreads:\t2\n",
    "Node 0, zone      DMA\n  pages free     3975\n        min      5\n        low      6\n  pagesets\n              high:  0\n",
    "sockets: used 18\nTCP: inuse 2 orphan 0 tw 1 alloc 2 mem 0\nUDP: inuse 0 mem 0\nFRAG: inuse 0 memory 0\n",
    "Tcp: RtoAlgorithm MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs\nTcp: 1 -1 3 4 5 6 7 8 9 10\nUdp: InDatagrams NoPorts InErrors OutDatagrams\nUdp: 1 2 3 4\n",
    "00220c07 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000\n",
    "pgpgin 49498429\npswpin 0\npgfault 669444136\npgmajfault 160875\n",
    "607\t0\t2466170\n",
];

/// A real line with one byte replaced, one inserted and a cut.
fn mutated() -> impl Strategy<Value = String> {
    (
        0..SEEDS.len(),
        any::<usize>(),
        any::<u8>(),
        any::<usize>(),
        any::<usize>(),
    )
        .prop_map(|(i, at, byte, ins, cut)| {
            let mut b = SEEDS[i].as_bytes().to_vec();
            let n = b.len();
            b[at % n] = byte;
            b.insert(ins % (n + 1), byte.rotate_left(3));
            b.truncate(cut % (n + 2));
            String::from_utf8_lossy(&b).into_owned()
        })
}

fn cpu_times() -> impl Strategy<Value = CpuTimes> {
    (any::<[u32; 7]>(), proptest::option::of(any::<u32>())).prop_map(|(v, steal)| CpuTimes {
        user: u64::from(v[0]),
        nice: u64::from(v[1]),
        system: u64::from(v[2]),
        idle: u64::from(v[3]),
        iowait: u64::from(v[4]),
        irq: u64::from(v[5]),
        softirq: u64::from(v[6]),
        steal: steal.map(u64::from),
        guest: None,
        guest_nice: None,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parsers_never_panic_on_random_text(text in "\\PC{0,300}") {
        run_all(&text);
    }

    #[test]
    fn parsers_never_panic_on_mutated_lines(text in mutated()) {
        run_all(&text);
    }

    #[test]
    fn parsers_never_panic_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        run_all(&String::from_utf8_lossy(&bytes));
        let _ = pid_cmdline::to_display(&bytes);
    }

    #[test]
    fn sockstat_fields_round_trip(lines in proptest::collection::vec(
        ("[A-Z][A-Z0-9]{0,7}", proptest::collection::vec(("[a-z_]{1,9}", any::<u64>()), 1..6)),
        0..8,
    )) {
        let mut text = String::new();
        for (proto, pairs) in &lines {
            text.push_str(proto);
            text.push(':');
            for (k, v) in pairs {
                text.push_str(&format!(" {k} {v}"));
            }
            text.push('\n');
        }
        let got: Vec<_> = net_sockstat::fields(&text)
            .map(|f| f.map(|f| (f.protocol.to_owned(), f.key.to_owned(), f.value)))
            .collect::<Result<_, _>>()
            .unwrap();
        let want: Vec<_> = lines
            .iter()
            .flat_map(|(p, pairs)| pairs.iter().map(move |(k, v)| (p.clone(), k.clone(), *v)))
            .collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn snmp_fields_round_trip(pairs in proptest::collection::vec(
        ("[A-Z][A-Za-z0-9]{0,9}", proptest::collection::vec(("[A-Z][A-Za-z0-9]{0,12}", any::<i64>()), 1..10)),
        0..6,
    )) {
        let mut text = String::new();
        for (proto, counters) in &pairs {
            let names: Vec<&str> = counters.iter().map(|(n, _)| n.as_str()).collect();
            let values: Vec<String> = counters.iter().map(|(_, v)| v.to_string()).collect();
            text.push_str(&format!("{proto}: {}\n{proto}: {}\n", names.join(" "), values.join(" ")));
        }
        let got: Vec<_> = net_snmp::fields(&text)
            .map(|f| f.map(|f| (f.protocol.to_owned(), f.name.to_owned(), f.value)))
            .collect::<Result<_, _>>()
            .unwrap();
        let want: Vec<_> = pairs
            .iter()
            .flat_map(|(p, c)| c.iter().map(move |(n, v)| (p.clone(), n.clone(), *v)))
            .collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn statm_fields_round_trip(v in any::<[u64; 7]>(), fields in 3usize..=7) {
        let text: Vec<String> = v[..fields].iter().map(u64::to_string).collect();
        let m = pid_statm::parse(&format!("{}\n", text.join(" "))).unwrap();
        prop_assert_eq!((m.size_pages, m.resident_pages, m.shared_pages), (v[0], v[1], v[2]));
    }

    #[test]
    fn vmstat_fields_round_trip(lines in proptest::collection::vec(("[a-z][a-z0-9_]{0,20}", any::<u64>()), 0..30)) {
        let text: String = lines.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
        let got: Vec<_> = vmstat::fields(&text)
            .map(|f| f.map(|f| (f.key.to_owned(), f.value)))
            .collect::<Result<_, _>>()
            .unwrap();
        prop_assert_eq!(got, lines);
    }

    #[test]
    fn softnet_lines_round_trip(rows in proptest::collection::vec(
        (proptest::collection::vec(any::<u32>(), 3..=15), any::<u32>()), 0..8,
    )) {
        let mut text = String::new();
        for (i, (cols, cpu)) in rows.iter().enumerate() {
            let mut cols = cols.clone();
            if cols.len() > 12 {
                cols[12] = *cpu;
            }
            let line: Vec<String> = cols.iter().map(|c| format!("{c:08x}")).collect();
            text.push_str(&line.join(" "));
            text.push('\n');
            let got = net_softnet_stat::parse(&text).nth(i).unwrap().unwrap();
            prop_assert_eq!(
                (got.processed, got.dropped, got.time_squeeze),
                (u64::from(cols[0]), u64::from(cols[1]), u64::from(cols[2]))
            );
            prop_assert_eq!(got.received_rps, cols.get(9).map(|&c| u64::from(c)));
            let want_cpu = if cols.len() > 12 { *cpu } else { i as u32 };
            prop_assert_eq!(got.cpu, want_cpu);
        }
    }

    #[test]
    fn vmstat_and_softnet_rates_finite_nonnegative(
        a in any::<[Option<u64>; 6]>(),
        b in any::<[Option<u64>; 6]>(),
        s in proptest::collection::vec(any::<(u8, u32, u32, u32)>(), 0..6),
        t in proptest::collection::vec(any::<(u8, u32, u32, u32)>(), 0..6),
        ms in 0u64..100_000,
    ) {
        let vm = |v: [Option<u64>; 6]| Vmstat {
            pgfault: v[0], pgmajfault: v[1], pgpgin: v[2], pgpgout: v[3], pswpin: v[4], pswpout: v[5],
            oom_kill: None,
        };
        let elapsed = Duration::from_millis(ms);
        let r = delta::vmstat(&vm(a), &vm(b), elapsed);
        for x in [r.pgfault, r.pgmajfault, r.pgpgin, r.pgpgout, r.pswpin, r.pswpout].into_iter().flatten() {
            prop_assert!(x.is_finite() && x >= 0.0);
        }
        let cpus = |v: &[(u8, u32, u32, u32)]| -> Vec<SoftnetCpu> {
            v.iter().map(|&(cpu, p, d, q)| SoftnetCpu {
                cpu: u32::from(cpu % 4),
                processed: u64::from(p),
                dropped: u64::from(d),
                time_squeeze: u64::from(q),
                ..SoftnetCpu::default()
            }).collect()
        };
        let r = delta::softnet(&cpus(&s), &cpus(&t), elapsed);
        for x in [r.processed, r.dropped, r.time_squeeze].into_iter().flatten() {
            prop_assert!(x.is_finite() && x >= 0.0);
        }
    }

    #[test]
    fn cpu_shares_are_percentages(a in cpu_times(), b in cpu_times()) {
        // Arbitrary pairs (resets, columns going backwards): finite, in range, never a panic.
        if let Some(u) = delta::cpu(&a, &b) {
            for v in [u.usage, u.user, u.nice, u.system, u.irq, u.softirq, u.idle, u.iowait, u.steal.unwrap_or(0.0)] {
                prop_assert!(v.is_finite() && (0.0..=100.0).contains(&v), "{u:?}");
            }
        }
    }

    /// Counters that only go up, guest inside user and guest_nice inside nice as the kernel counts
    /// them: no clamp is ever needed, so each share must equal its column's delta over the total
    /// (computed here, unclamped) and the modes must add up to 100. A wrong split (guest counted
    /// twice, nice left in user, irq in system) fails here even though the function clamps.
    #[test]
    fn cpu_shares_are_exact_for_monotonic_counters(a in cpu_times(), d in any::<[u16; 10]>()) {
        let a = CpuTimes { guest: Some(a.user / 3), guest_nice: Some(a.nice / 4), ..a };
        let dd = |i: usize| u64::from(d[i]);
        // Guest deltas never exceed the user/nice deltas that contain them.
        let (dg, dgn) = (dd(8).min(dd(0)), dd(9).min(dd(1)));
        let b = CpuTimes {
            user: a.user + dd(0),
            nice: a.nice + dd(1),
            system: a.system + dd(2),
            idle: a.idle + dd(3),
            iowait: a.iowait + dd(4),
            irq: a.irq + dd(5),
            softirq: a.softirq + dd(6),
            steal: a.steal.map(|s| s + dd(7)),
            guest: a.guest.map(|g| g + dg),
            guest_nice: a.guest_nice.map(|g| g + dgn),
        };
        let total = (0..7).map(dd).sum::<u64>() + a.steal.map_or(0, |_| dd(7));
        match delta::cpu(&a, &b) {
            None => prop_assert_eq!(total, 0),
            Some(u) => {
                let pct = |ticks: u64| ticks as f64 / total as f64 * 100.0;
                let close = |x: f64, want: f64| (x - want).abs() < 1e-9;
                prop_assert!(close(u.user, pct(dd(0) - dg)), "{u:?}");
                prop_assert!(close(u.nice, pct(dd(1) - dgn)), "{u:?}");
                prop_assert!(close(u.system, pct(dd(2))) && close(u.idle, pct(dd(3))), "{u:?}");
                prop_assert!(close(u.iowait, pct(dd(4))) && close(u.irq, pct(dd(5))), "{u:?}");
                prop_assert!(close(u.softirq, pct(dd(6))), "{u:?}");
                prop_assert!(close(u.usage, 100.0 - pct(dd(3)) - pct(dd(4))), "{u:?}");
                let steal = u.steal.unwrap_or(0.0);
                let sum = u.user + u.nice + u.system + u.irq + u.softirq + u.idle + u.iowait + steal
                    + pct(dg) + pct(dgn);
                prop_assert!(close(sum, 100.0), "{sum} {u:?}");
            }
        }
    }

    #[test]
    fn disk_rates_finite_nonnegative(a in any::<[u64; 5]>(), b in any::<[u64; 5]>(), ms in 0u64..100_000, sector in prop_oneof![Just(512u64), 1u64..8192]) {
        let c = |v: [u64; 5]| DiskCounters { reads: v[0], writes: v[1], sectors_read: v[2], sectors_written: v[3], io_ms: v[4] };
        if let Some(r) = delta::disk(&c(a), &c(b), Duration::from_millis(ms), sector) {
            for v in [r.read_bytes_per_s, r.write_bytes_per_s, r.read_iops, r.write_iops] {
                prop_assert!(v.is_finite() && v >= 0.0);
            }
            prop_assert!((0.0..=100.0).contains(&r.util_percent));
        }
    }

    /// Busy time within the interval: `%util` is exactly busy / elapsed, no clamp involved.
    #[test]
    fn disk_util_is_exact_when_busy_fits_the_interval(io0 in any::<u32>(), ms in 1u64..100_000, busy_per_mille in 0u64..=1000) {
        let busy = ms * busy_per_mille / 1000;
        let a = DiskCounters { io_ms: u64::from(io0), ..Default::default() };
        let b = DiskCounters { io_ms: u64::from(io0) + busy, ..a };
        let r = delta::disk(&a, &b, Duration::from_millis(ms), 512).unwrap();
        let want = busy as f64 / ms as f64 * 100.0;
        prop_assert!((r.util_percent - want).abs() < 1e-9, "{} vs {want}", r.util_percent);
    }

    #[test]
    fn net_rates_finite_nonnegative(a in any::<[u64; 8]>(), b in any::<[u64; 8]>(), ms in 0u64..100_000) {
        let c = |v: [u64; 8]| NetCounters { rx_bytes: v[0], tx_bytes: v[1], rx_packets: v[2], tx_packets: v[3], rx_errors: v[4], tx_errors: v[5], rx_dropped: v[6], tx_dropped: v[7] };
        let r = delta::net(&c(a), &c(b), Duration::from_millis(ms));
        for v in [r.rx_bytes, r.tx_bytes, r.rx_packets, r.tx_packets, r.rx_errors, r.tx_errors, r.rx_dropped, r.tx_dropped].into_iter().flatten() {
            prop_assert!(v.is_finite() && v >= 0.0);
        }
        // A counter that went down never gives a rate.
        prop_assert_eq!(r.rx_bytes.is_some(), b[0] >= a[0] && ms > 0);
    }

    #[test]
    fn process_cpu_finite_nonnegative(a in any::<[u64; 3]>(), b in any::<[u64; 3]>(), ms in 0u64..100_000, hz in 0u64..10_000) {
        let p = |v: [u64; 3]| ProcessTimes { starttime: v[0] % 3, cpu: v[1] };
        if let Some(v) = delta::process_cpu(&p(a), &p(b), Duration::from_millis(ms), hz) {
            prop_assert!(v.is_finite() && v >= 0.0);
        }
    }

    #[test]
    fn meminfo_available_never_exceeds_total(total in any::<u32>(), free in any::<u32>(), cached in any::<u32>(), shmem in any::<u32>(), wmark in any::<u32>()) {
        let text = format!("MemTotal: {total} kB\nMemFree: {free} kB\nBuffers: 0 kB\nCached: {cached} kB\nShmem: {shmem} kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n");
        let m = meminfo::parse(&text).unwrap();
        prop_assert!(m.estimate_available(u64::from(wmark), 4096) <= m.mem_total);
    }
}
