//! Processes: `/proc/<pid>/stat` for every process (CPU rates and the ranking), `status` and
//! `cmdline` only for the reported ones (the top N by CPU and the top N by resident memory), user
//! names from the host's `/etc/passwd`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use atlhyper_model::ProcessMetrics;

use super::{Context, percent};
use crate::delta::{self, ProcessTimes};
use crate::etc;
use crate::proc::{pid_cmdline, pid_stat, pid_status};
use crate::sampler::{Base, Sampler};

/// How long a process's identity (uid, command line) is cached.
const IDENT_REFRESH: Duration = Duration::from_secs(60);

/// One process's `/proc/<pid>/stat`.
#[derive(Debug, Clone, Default)]
struct ProcSample {
    pid: u32,
    comm: String,
    state: char,
    times: ProcessTimes,
    rss_pages: u64,
    threads: u64,
}

/// What is read only for a reported process.
#[derive(Debug, Clone, Default)]
struct ProcDetail {
    /// Index into [`ProcessesSample::procs`].
    idx: usize,
    uid: u32,
    cmdline: String,
    /// VmRSS from `/proc/[pid]/status`, bytes (what top and ps show); `None` for kernel threads.
    vm_rss: Option<u64>,
}

/// What `/proc/[pid]/status` and `cmdline` say about a process, cached per (pid, start time).
#[derive(Debug, Clone, Default)]
struct Ident {
    starttime: u64,
    uid: u32,
    is_thread: bool,
    cmdline: String,
    read_at: Option<Instant>,
}

/// State kept between collections: how many to report, cached identities and user names, and
/// reused scratch space.
#[derive(Debug, Default)]
pub(super) struct ProcessTable {
    /// N of "top N by CPU and top N by resident memory".
    top: usize,
    idents: HashMap<u32, Ident>,
    /// uid -> user name from the host's passwd.
    users: HashMap<u32, String>,
    pids: Vec<u32>,
    order: Vec<usize>,
}

impl ProcessTable {
    /// Reports the `top` by CPU and the `top` by resident memory.
    pub(super) fn new(top: usize) -> Self {
        Self {
            top,
            ..Self::default()
        }
    }

    /// Drops what was learnt about the host (identities, user names): the host root changed.
    pub(super) fn forget_host(&mut self) {
        self.users.clear();
        self.idents.clear();
    }
}

/// The part of a raw sample this module reads.
#[derive(Debug, Default)]
pub(super) struct ProcessesSample {
    /// Every process, ascending pid; entries are reused between samples.
    procs: Vec<ProcSample>,
    /// CPU percent of each entry of `procs` (0 where there is no rate).
    cpu_percent: Vec<f64>,
    /// The reported processes.
    details: Vec<ProcDetail>,
    /// The host's uptime when this sample was taken, seconds: which processes started since.
    uptime_secs: Option<f64>,
}

/// Reads every process's stat, computes CPU rates against `prev`, and reads status and cmdline
/// of the top N by CPU and the top N by resident memory (threads skipped). Unreadable processes
/// are skipped and counted in the error; processes that exited meanwhile are not errors.
pub(super) fn sample(
    s: &mut Sampler,
    table: &mut ProcessTable,
    prev: Option<&ProcessesSample>,
    cur: &mut ProcessesSample,
    uptime_secs: Option<f64>,
    ctx: Context,
) -> Result<(), String> {
    cur.uptime_secs = uptime_secs;
    cur.details.clear();
    s.list_pids(&mut table.pids).map_err(|e| e.to_string())?;
    let mut n = 0;
    let mut bad = 0usize;
    let mut first_bad = None;
    for &pid in &table.pids {
        let bytes = match s.read_pid(pid, "stat") {
            Ok(b) => b,
            // Exited between listing and reading: not an error.
            Err(e) if e.is_not_found() => continue,
            Err(e) => {
                bad += 1;
                first_bad.get_or_insert(e.to_string());
                continue;
            }
        };
        // comm may hold any bytes; validate first (fast) and repair only when needed.
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => std::borrow::Cow::Borrowed(t),
            Err(_) => String::from_utf8_lossy(bytes),
        };
        let ps = match pid_stat::parse(&text) {
            Ok(p) => p,
            Err(e) => {
                // An empty read means the process exited while we read it.
                if !bytes.is_empty() {
                    bad += 1;
                    first_bad.get_or_insert(format!("{}/{pid}/stat: {e}", s.root().proc.display()));
                }
                continue;
            }
        };
        if n == cur.procs.len() {
            cur.procs.push(ProcSample::default());
        }
        let slot = &mut cur.procs[n];
        slot.pid = pid;
        slot.comm.clear();
        slot.comm.push_str(ps.comm);
        slot.state = ps.state;
        slot.times = ProcessTimes {
            starttime: ps.starttime,
            utime: ps.utime,
            stime: ps.stime,
        };
        slot.rss_pages = ps.rss_pages;
        slot.threads = ps.num_threads;
        n += 1;
    }
    cur.procs.truncate(n);
    cur.cpu_percent = cpu_percents(prev, cur, ctx);
    choose_reported(s, table, cur);

    // User names from the host's passwd, re-read when a uid is unknown.
    if cur
        .details
        .iter()
        .any(|d| !table.users.contains_key(&d.uid))
        && let Ok(t) = s.read_text(Base::Root, &[&"etc", &"passwd"])
    {
        table.users.clear();
        for (name, uid) in etc::passwd::entries(t) {
            table.users.entry(uid).or_insert_with(|| name.to_owned());
        }
    }
    if bad > 0 {
        return Err(format!(
            "skipped {bad} unreadable process(es); first: {}",
            first_bad.unwrap_or_default()
        ));
    }
    Ok(())
}

/// CPU percent of every process in `cur` (100 = one core, as top shows it) against the same
/// process in `prev`; 0 where there is no rate (first sample, elapsed time unknown, counters
/// going down, a process already running at `prev` but missing from it).
fn cpu_percents(prev: Option<&ProcessesSample>, cur: &ProcessesSample, ctx: Context) -> Vec<f64> {
    let ticks = ctx.clock_ticks_per_sec;
    // `q`: the previous sample's process with the same pid, if any.
    let cpu_with = |p: &ProcSample, q: Option<&ProcSample>| -> Option<f64> {
        let prev = prev?;
        let elapsed = ctx.elapsed.known()?;
        match q.filter(|q| q.times.starttime == p.times.starttime) {
            Some(q) => delta::process_cpu(&q.times, &p.times, elapsed, ticks),
            None => {
                // Started after the previous sample: all of its CPU time falls inside the
                // interval, and top counts it so. (A process already running then but missed by
                // the previous sample gets no rate.)
                let started_secs = p.times.starttime as f64 / ticks.max(1) as f64;
                if started_secs < prev.uptime_secs? {
                    return None;
                }
                let born = ProcessTimes {
                    starttime: p.times.starttime,
                    utime: 0,
                    stime: 0,
                };
                delta::process_cpu(&born, &p.times, elapsed, ticks)
            }
        }
    };
    let prev_procs: &[ProcSample] = prev.map_or(&[], |p| &p.procs);
    // Both samples are in ascending pid order: match them in one merge walk.
    let mut k = 0;
    cur.procs
        .iter()
        .map(|p| {
            while k < prev_procs.len() && prev_procs[k].pid < p.pid {
                k += 1;
            }
            let q = prev_procs.get(k).filter(|q| q.pid == p.pid);
            cpu_with(p, q).unwrap_or(0.0)
        })
        .collect()
}

/// Fills `cur.details` with the top N processes by CPU and the top N by resident memory, reading
/// status (and cmdline, when the cached identity is stale) of each candidate. Threads and
/// processes that vanished are passed over for the next in rank.
fn choose_reported(s: &mut Sampler, table: &mut ProcessTable, cur: &mut ProcessesSample) {
    let top = table.top;
    let order = &mut table.order;
    let cpu = &cur.cpu_percent;
    let mut chosen: Vec<usize> = Vec::with_capacity(top * 2);
    let mut rejected: Vec<usize> = Vec::new();
    for by_cpu in [true, false] {
        order.clear();
        order.extend(0..cur.procs.len());
        // A total order (ties broken by pid), so a partial sort gives the same ranking as a full
        // one.
        let cmp = |a: &usize, b: &usize| {
            let (a, b) = (*a, *b);
            let by = if by_cpu {
                cpu[b].total_cmp(&cpu[a])
            } else {
                cur.procs[b].rss_pages.cmp(&cur.procs[a].rss_pages)
            };
            by.then(cur.procs[a].pid.cmp(&cur.procs[b].pid))
        };
        // Only the head is ranked (threads and vanished processes may be skipped, so more than
        // `top`); the rest is sorted only if the loop runs past the head.
        let len = order.len();
        let mut sorted = top.saturating_mul(4).saturating_add(16).min(len);
        if sorted > 0 && sorted < len {
            order.select_nth_unstable_by(sorted - 1, cmp);
        }
        order[..sorted].sort_unstable_by(cmp);
        let mut taken = 0;
        let mut j = 0;
        while taken < top {
            if j == sorted {
                if sorted == len {
                    break;
                }
                order[sorted..].sort_unstable_by(cmp);
                sorted = len;
            }
            let i = order[j];
            j += 1;
            if chosen.contains(&i) {
                taken += 1;
                continue;
            }
            if rejected.contains(&i) {
                continue;
            }
            let pid = cur.procs[i].pid;
            let starttime = cur.procs[i].times.starttime;
            // Identity (uid, thread or not, command line) is read once per process and refreshed
            // every IDENT_REFRESH. status is read for every reported process in every
            // collection: its VmRSS is the resident size top and ps show (stat's rss, used for
            // the ranking above, runs a few percent below it on recent kernels).
            let cached = table.idents.get(&pid).filter(|id| {
                id.starttime == starttime && id.read_at.is_some_and(|t| t.elapsed() < IDENT_REFRESH)
            });
            if cached.is_some_and(|id| id.is_thread) {
                rejected.push(i);
                continue;
            }
            let status = match s.read_pid(pid, "status") {
                Ok(b) => match std::str::from_utf8(b).map(pid_status::parse) {
                    Ok(Ok(st)) => st,
                    _ => {
                        rejected.push(i);
                        continue;
                    }
                },
                Err(_) => {
                    rejected.push(i);
                    continue;
                }
            };
            if let Some(id) = cached {
                cur.details.push(ProcDetail {
                    idx: i,
                    uid: id.uid,
                    cmdline: id.cmdline.clone(),
                    vm_rss: status.vm_rss,
                });
                chosen.push(i);
                taken += 1;
                continue;
            }
            // Threads are not processes.
            if status.tgid != status.pid || status.pid != pid {
                table.idents.insert(
                    pid,
                    Ident {
                        starttime,
                        uid: status.uid,
                        is_thread: true,
                        cmdline: String::new(),
                        read_at: Some(Instant::now()),
                    },
                );
                rejected.push(i);
                continue;
            }
            let cmdline = match s.read_pid(pid, "cmdline") {
                Ok(b) => pid_cmdline::to_display(b),
                Err(e) if e.is_not_found() => {
                    rejected.push(i);
                    continue;
                }
                Err(_) => String::new(),
            };
            table.idents.insert(
                pid,
                Ident {
                    starttime,
                    uid: status.uid,
                    is_thread: false,
                    cmdline: cmdline.clone(),
                    read_at: Some(Instant::now()),
                },
            );
            cur.details.push(ProcDetail {
                idx: i,
                uid: status.uid,
                cmdline,
                vm_rss: status.vm_rss,
            });
            chosen.push(i);
            taken += 1;
        }
    }

    // Keep identities only of processes looked at this time.
    let procs = &cur.procs;
    table.idents.retain(|pid, _| {
        chosen
            .iter()
            .chain(rejected.iter())
            .any(|&i| procs[i].pid == *pid)
    });
}

/// The reported processes, busiest first (then largest, then lowest pid). `mem_total` (bytes) is
/// what `mem_percent` is a share of; `boot_time` (seconds since the epoch) turns start ticks into
/// a start time, 0 when unknown.
pub(super) fn metrics(
    cur: &ProcessesSample,
    table: &ProcessTable,
    mem_total: u64,
    boot_time: Option<u64>,
    ctx: Context,
) -> Vec<ProcessMetrics> {
    let mut processes: Vec<ProcessMetrics> = cur
        .details
        .iter()
        .map(|d| {
            let p = &cur.procs[d.idx];
            // VmRSS as top and ps show it; stat's rss only when status has none (kernel threads,
            // whose stat rss is 0 as well).
            let rss = d
                .vm_rss
                .unwrap_or_else(|| p.rss_pages.saturating_mul(ctx.page_size));
            let start = boot_time.map_or(0, |b| {
                let secs = p.times.starttime / ctx.clock_ticks_per_sec.max(1);
                i64::try_from(b.saturating_add(secs)).unwrap_or(i64::MAX)
            });
            ProcessMetrics {
                pid: p.pid,
                name: p.comm.clone(),
                cmdline: d.cmdline.clone(),
                user: table
                    .users
                    .get(&d.uid)
                    .cloned()
                    .unwrap_or_else(|| d.uid.to_string()),
                status: p.state.to_string(),
                cpu_percent: cur.cpu_percent[d.idx],
                mem_percent: percent(rss, mem_total),
                mem_rss: rss,
                threads: u32::try_from(p.threads).unwrap_or(u32::MAX),
                start_time: start,
            }
        })
        .collect();
    processes.sort_by(|a, b| {
        b.cpu_percent
            .total_cmp(&a.cpu_percent)
            .then(b.mem_rss.cmp(&a.mem_rss))
            .then(a.pid.cmp(&b.pid))
    });
    processes
}

#[cfg(test)]
mod tests {
    use super::super::Elapsed;
    use super::super::tests::ctx;
    use super::*;

    /// A process started `starttime` ticks after boot with `cpu_ticks` of user time.
    fn proc(pid: u32, starttime: u64, cpu_ticks: u64) -> ProcSample {
        ProcSample {
            pid,
            comm: format!("p{pid}"),
            state: 'S',
            times: ProcessTimes {
                starttime,
                utime: cpu_ticks,
                stime: 0,
            },
            rss_pages: 10,
            threads: 1,
        }
    }

    fn sample(uptime_secs: f64, procs: Vec<ProcSample>) -> ProcessesSample {
        ProcessesSample {
            cpu_percent: vec![0.0; procs.len()],
            procs,
            details: Vec::new(),
            uptime_secs: Some(uptime_secs),
        }
    }

    const TWO_SECONDS: Elapsed = Elapsed::Known(Duration::from_secs(2));

    #[test]
    fn first_sample_has_no_cpu_rates() {
        let cur = sample(100.0, vec![proc(1, 0, 500)]);
        assert_eq!(cpu_percents(None, &cur, ctx(TWO_SECONDS)), [0.0]);
    }

    #[test]
    fn cpu_percent_as_top_shows_it() {
        let prev = sample(100.0, vec![proc(1, 0, 500), proc(7, 50, 0)]);
        // pid 1 used one core for 2 s (200 ticks), pid 7 half a core.
        let cur = sample(102.0, vec![proc(1, 0, 700), proc(7, 50, 100)]);
        assert_eq!(
            cpu_percents(Some(&prev), &cur, ctx(TWO_SECONDS)),
            [100.0, 50.0]
        );
    }

    #[test]
    fn unknown_elapsed_time_gives_no_cpu_rates() {
        let prev = sample(100.0, vec![proc(1, 0, 500)]);
        let cur = sample(102.0, vec![proc(1, 0, 700)]);
        assert_eq!(
            cpu_percents(Some(&prev), &cur, ctx(Elapsed::Unknown)),
            [0.0]
        );
    }

    #[test]
    fn counters_going_down_or_a_reused_pid_give_no_rate() {
        let prev = sample(100.0, vec![proc(1, 0, 700), proc(9, 10, 300)]);
        // pid 1's counter went down; pid 9 is a new process (start 9999 ticks = 99.99 s, before
        // the previous sample's 100 s uptime, so it was missed rather than born since).
        let cur = sample(102.0, vec![proc(1, 0, 500), proc(9, 9999, 50)]);
        assert_eq!(
            cpu_percents(Some(&prev), &cur, ctx(TWO_SECONDS)),
            [0.0, 0.0]
        );
    }

    #[test]
    fn a_process_born_since_the_previous_sample_counts_all_its_time() {
        let prev = sample(100.0, vec![proc(1, 0, 500)]);
        // pid 5 started at 101 s (10100 ticks) and has used 100 ticks since.
        let cur = sample(102.0, vec![proc(1, 0, 500), proc(5, 10100, 100)]);
        assert_eq!(
            cpu_percents(Some(&prev), &cur, ctx(TWO_SECONDS)),
            [0.0, 50.0]
        );
        // Without the previous uptime it cannot tell, and gives no rate.
        let mut no_uptime = prev;
        no_uptime.uptime_secs = None;
        assert_eq!(
            cpu_percents(Some(&no_uptime), &cur, ctx(TWO_SECONDS)),
            [0.0, 0.0]
        );
    }

    #[test]
    fn metrics_of_the_reported_processes_busiest_first() {
        let mut cur = sample(102.0, vec![proc(1, 0, 700), proc(2, 200, 0)]);
        cur.cpu_percent = vec![5.0, 20.0];
        cur.details = vec![
            ProcDetail {
                idx: 0,
                uid: 0,
                cmdline: "/sbin/init".into(),
                vm_rss: Some(8192),
            },
            ProcDetail {
                idx: 1,
                uid: 1000,
                cmdline: String::new(),
                vm_rss: None,
            },
        ];
        let mut table = ProcessTable::default();
        table.users.insert(0, "root".into());
        let m = metrics(&cur, &table, 81920, Some(1_000_000), ctx(TWO_SECONDS));
        assert_eq!(m.iter().map(|p| p.pid).collect::<Vec<_>>(), [2, 1]);
        let (busy, init) = (&m[0], &m[1]);
        assert_eq!(busy.user, "1000", "unknown uid shown as a number");
        assert_eq!(busy.mem_rss, 10 * 4096, "stat's rss when status has none");
        assert_eq!(busy.start_time, 1_000_002);
        assert_eq!(busy.cpu_percent, 20.0);
        assert_eq!(init.user, "root");
        assert_eq!(init.mem_rss, 8192);
        assert_eq!(init.mem_percent, 10.0);
        assert_eq!(init.status, "S");
        // Unknown boot time and memory size: start 0, no share.
        let m = metrics(&cur, &table, 0, None, ctx(TWO_SECONDS));
        assert_eq!((m[1].start_time, m[1].mem_percent), (0, 0.0));
    }
}
