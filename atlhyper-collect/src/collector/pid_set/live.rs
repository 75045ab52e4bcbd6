//! The pid set against the kernel: sets made by extension equal a full listing of `/proc` while
//! processes, zombies and threads come and go.

use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::super::{CollectConfig, Collector};
use crate::sampler::{HostRoot, Sampler, Statfs};

/// The processes /proc lists now.
fn listed() -> Vec<u32> {
    let mut out: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    out.sort_unstable();
    out
}

/// The last pid handed out, now.
fn cursor() -> u64 {
    let t = std::fs::read_to_string("/proc/loadavg").unwrap();
    crate::proc::loadavg::parse(&t).unwrap().last_pid
}

/// Whether `pid` names a process now (its CPU clock answers).
fn alive(pid: u32) -> bool {
    let mut s = Sampler::new(HostRoot::default(), Statfs::new(Duration::from_secs(1)));
    s.process_cpu_ns(pid).is_ok()
}

/// Whether `pid` lies in the cyclic range (`after`, `upto`].
fn handed_out(pid: u32, after: u64, upto: u64) -> bool {
    let p = u64::from(pid);
    if after <= upto {
        after < p && p <= upto
    } else {
        p > after || p <= upto
    }
}

fn own_tid() -> u32 {
    // SAFETY: gettid has no preconditions.
    u32::try_from(unsafe { libc::gettid() }).unwrap()
}

fn sleeper() -> Child {
    Command::new("sleep").arg("60").spawn().expect("sleep")
}

#[test]
fn extended_sets_equal_a_full_listing_while_processes_and_threads_come_and_go() {
    let mut c = Collector::new(
        HostRoot::default(),
        CollectConfig {
            top_processes: 3,
            ..CollectConfig::from_host()
        },
    );
    c.collect();
    let stop = Arc::new(AtomicBool::new(false));
    let mut children: Vec<Child> = Vec::new();
    let mut zombies: Vec<Child> = Vec::new();
    let mut threads = Vec::new();
    let mut thread_ids: Vec<u32> = Vec::new();
    let mut collector_ids: Vec<u32> = Vec::new();
    let (mut rounds, mut extended) = (0u32, 0u64);
    let deadline = Instant::now() + Duration::from_secs(120);
    while (rounds < 60 || extended < 30) && Instant::now() < deadline {
        rounds += 1;
        // Change the world: new processes, some killed (reaped now or left as zombies for a
        // round), threads of this process started and ended.
        for z in zombies.drain(..) {
            let mut z = z;
            z.wait().unwrap();
        }
        match rounds % 4 {
            0 => children.push(sleeper()),
            1 => {
                children.push(sleeper());
                children.push(sleeper());
            }
            2 if !children.is_empty() => {
                let mut k = children.remove(0);
                k.kill().unwrap();
                k.wait().unwrap();
            }
            _ if !children.is_empty() => {
                let mut k = children.remove(0);
                k.kill().unwrap();
                zombies.push(k);
            }
            _ => {}
        }
        if rounds % 3 == 0 {
            let (tx, rx) = std::sync::mpsc::channel();
            let stop = Arc::clone(&stop);
            threads.push(std::thread::spawn(move || {
                tx.send(own_tid()).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    std::thread::park_timeout(Duration::from_millis(50));
                }
            }));
            thread_ids.push(rx.recv().unwrap());
        }
        // Each collection on a new thread: its own id is in the range probed.
        let before = c.processes.pid_set.stats();
        let tid = std::thread::scope(|sc| {
            sc.spawn(|| {
                c.collect();
                own_tid()
            })
            .join()
            .unwrap()
        });
        collector_ids.push(tid);
        extended += c.processes.pid_set.stats().extensions - before.extensions;
        let then = c
            .prev
            .as_ref()
            .unwrap()
            .processes
            .counters
            .cursor
            .last_pid
            .unwrap();
        let got = c.processes.pid_set.known.clone().expect("a set");
        let list = listed();
        let now = cursor();
        for p in &list {
            assert!(
                got.binary_search(p).is_ok() || handed_out(*p, then, now),
                "round {rounds}: process {p} listed but not in the set"
            );
        }
        for p in &got {
            assert!(
                list.binary_search(p).is_ok() || !alive(*p) || handed_out(*p, then, now),
                "round {rounds}: {p} in the set but no process"
            );
        }
        for ch in &children {
            assert!(
                got.binary_search(&ch.id()).is_ok(),
                "child {} missing",
                ch.id()
            );
        }
        for t in thread_ids.iter().chain(&collector_ids) {
            assert!(
                got.binary_search(t).is_err(),
                "thread {t} taken for a process"
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    for mut ch in children.into_iter().chain(zombies) {
        let _ = ch.kill();
        let _ = ch.wait();
    }
    let stats = c.processes.pid_set.stats();
    eprintln!("{rounds} rounds: {stats:?}");
    assert!(
        extended >= 30,
        "only {extended} of {rounds} collections extended the set"
    );
}
