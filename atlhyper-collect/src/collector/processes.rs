//! Processes. Every process is ranked from what is cheap for the kernel to produce: its on-CPU
//! time from its process CPU clock (nanoseconds, all threads; see [`crate::sampler`]) and its
//! resident pages from `/proc/<pid>/statm`, kept open between collections. `stat` is read once
//! when a process is first seen (its start time tells a reused pid, and a process born since the
//! previous sample, apart). `stat`, `status` and `cmdline` are read in a collection only for the
//! reported processes: the top N by CPU and the top N by resident memory. User names come from
//! the host's `/etc/passwd`.
//!
//! Which pids to scan comes from [`super::pid_set`]: `/proc` listed, or the previous scan's
//! processes plus the pids handed out since (the allocator's range), so `/proc` is not listed
//! every collection.
//!
//! A process whose CPU clock has not moved since the previous sample has not run, so its resident
//! size is carried over without reading `statm`, as long as nothing else can have changed it or
//! its pid: the node's reclaim counters stood still (reclaim is how a sleeping process loses
//! resident pages), and the kernel allocated no pid numbers that wrapped round to it (the last
//! allocated pid in `/proc/loadavg`, with `/proc/stat`'s fork count guarding a full wrap). A
//! rotating share of idle processes is re-read anyway, so what no counter shows (a file truncated
//! under a sleeping process's mapping, a peer punching a hole in shared memory, KSM) is at most
//! [`RSS_REREAD_CYCLES`] collections old.
//!
//! Where process CPU clocks do not describe the sampled proc root (a captured tree, a host procfs
//! seen from another pid namespace, a kernel without POSIX CPU clocks), `stat` of every process
//! gives CPU ticks and resident pages instead; which source is used is decided once per root.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use atlhyper_model::ProcessMetrics;

use super::pid_set::{self, NewPids, PidCursor, PidSet, Refresh};
use super::{Context, percent};
use crate::delta::{self, ProcessTimes};
use crate::etc;
use crate::proc::loadavg::LoadAvg;
use crate::proc::{pid_cmdline, pid_stat, pid_statm, pid_status};
use crate::sampler::{Base, Sampler};

/// How long a process's identity (uid, command line) is cached.
const IDENT_REFRESH: Duration = Duration::from_secs(60);

/// An idle process's resident size is re-read at least once in this many collections (one
/// twelfth of the idle processes each time).
const RSS_REREAD_CYCLES: u64 = 12;

/// Node-wide counters that tell which processes cannot have changed since the previous sample.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct NodeCounters {
    /// Where the pid allocator stood.
    pub(super) cursor: PidCursor,
    /// [`crate::proc::vmstat::reclaim_events`].
    reclaim: Option<u64>,
}

impl NodeCounters {
    /// The fork count of `/proc/stat`, the reclaim events of `/proc/vmstat` and `/proc/loadavg`,
    /// read earlier in the collection (before the process scan makes its set of pids).
    pub(super) fn new(forks: Option<u64>, reclaim: Option<u64>, load: Option<&LoadAvg>) -> Self {
        Self {
            cursor: PidCursor {
                forks,
                last_pid: load.map(|l| l.last_pid),
                tasks: load.map(|l| l.total),
            },
            reclaim,
        }
    }
}

/// What lets the scan carry a process over from the previous sample without reading it.
#[derive(Debug, Clone, Copy)]
struct Carry {
    /// A pid outside this range names the same process as in the previous sample.
    new_pids: NewPids,
    /// No page was reclaimed from any process since the previous sample.
    no_reclaim: bool,
    /// Which share of the idle processes is re-read this time (`pid % RSS_REREAD_CYCLES`).
    reread_turn: u64,
}

/// Where every process's CPU time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CpuSource {
    /// The process CPU clock (nanoseconds) and `statm` for the resident pages.
    Clock,
    /// `/proc/<pid>/stat`: utime + stime in clock ticks, and its rss.
    Stat,
}

/// What the scan learns about one process.
#[derive(Debug, Clone, Copy, Default)]
struct ProcSample {
    pid: u32,
    times: ProcessTimes,
    rss_pages: u64,
    /// `rss_pages` was carried over from the previous sample, not read now.
    carried: bool,
}

/// What is read only for a reported process.
#[derive(Debug, Clone, Default)]
struct ProcDetail {
    /// Index into [`ProcessesSample::procs`].
    idx: usize,
    comm: String,
    state: char,
    threads: u64,
    uid: u32,
    cmdline: String,
    /// VmRSS from `/proc/[pid]/status`, bytes (what top and ps show), where status is read every
    /// collection (CPU from `stat`: a captured tree); `None` for kernel threads.
    vm_rss: Option<u64>,
    /// Resident pages read from `statm` now, for a process whose scan figure was carried over.
    fresh_rss_pages: Option<u64>,
}

/// What `/proc/[pid]/status` and `cmdline` say about who a process is, cached per (pid, start
/// time).
#[derive(Debug, Clone, Default)]
struct Ident {
    starttime: u64,
    /// The name `stat` gave when this was read: an exec keeps the pid and the start time but
    /// renames the process, and then the command line and user are read again.
    comm: String,
    is_thread: bool,
    uid: u32,
    cmdline: String,
    read_at: Option<Instant>,
    /// What `stat` said when last read, reused while the process is idle (see [`detail`]).
    last_stat: Option<StatFields>,
}

/// State kept between collections: how many to report, the CPU source, cached identities and
/// user names, and reused scratch space.
#[derive(Debug, Default)]
pub(super) struct ProcessTable {
    /// N of "top N by CPU and top N by resident memory".
    top: usize,
    /// Decided at the first collection over a root.
    cpu_source: Option<CpuSource>,
    idents: HashMap<u32, Ident>,
    /// uid -> user name from the host's passwd.
    users: HashMap<u32, String>,
    /// The processes found by the previous scan, and this scan's candidates.
    pub(super) pid_set: PidSet,
    order: Vec<usize>,
    /// `/proc/sys/kernel/pid_max`, read once per host.
    pid_max: Option<Option<u64>>,
    /// Collections so far: whose turn it is to be re-read while idle.
    cycle: u64,
    /// Whether idle processes may be carried over unread ([`crate::CollectConfig::carry_idle_processes`]).
    carry_idle: bool,
    /// Whether the pid set may be extended instead of listing `/proc`
    /// ([`crate::CollectConfig::probe_new_pids`]).
    probe_new_pids: bool,
}

impl ProcessTable {
    /// Reports the `top` by CPU and the `top` by resident memory; `carry_idle` and
    /// `probe_new_pids`: see [`crate::CollectConfig`].
    pub(super) fn new(top: usize, carry_idle: bool, probe_new_pids: bool) -> Self {
        Self {
            top,
            carry_idle,
            probe_new_pids,
            ..Self::default()
        }
    }

    /// Drops what was learnt about the host (CPU source, identities, user names): the host root
    /// changed.
    pub(super) fn forget_host(&mut self) {
        self.cpu_source = None;
        self.pid_max = None;
        self.pid_set.forget();
        self.users.clear();
        self.idents.clear();
    }
}

/// The part of a raw sample this module reads.
#[derive(Debug, Default)]
pub(super) struct ProcessesSample {
    /// Every process, ascending pid; entries are reused between samples.
    procs: Vec<ProcSample>,
    /// What [`ProcessTimes::cpu`] counts per second: clock ticks or nanoseconds (0: no sample).
    cpu_units_per_sec: u64,
    /// CPU percent of each entry of `procs` (0 where there is no rate).
    cpu_percent: Vec<f64>,
    /// The reported processes.
    details: Vec<ProcDetail>,
    /// The host's uptime when this sample was taken, seconds: which processes started since.
    uptime_secs: Option<f64>,
    /// What tells, at the next sample, which processes cannot have changed since this one.
    pub(super) counters: NodeCounters,
}

/// One process of the scan, or why there is none.
enum Scanned {
    Process(ProcSample),
    /// Exited while it was read: not an error.
    Gone,
    Unreadable(String),
}

/// Scans every process (CPU time, resident pages, start time), computes CPU rates against
/// `prev`, and reads stat, status and cmdline of the top N by CPU and the top N by resident
/// memory (threads skipped). Unreadable processes are skipped and counted in the error;
/// processes that exited meanwhile are not errors.
pub(super) fn sample(
    s: &mut Sampler,
    table: &mut ProcessTable,
    prev: Option<&ProcessesSample>,
    cur: &mut ProcessesSample,
    uptime_secs: Option<f64>,
    counters: NodeCounters,
    ctx: Context,
) -> Result<(), String> {
    let source = *table.cpu_source.get_or_insert_with(|| {
        if s.process_clocks_usable() {
            CpuSource::Clock
        } else {
            CpuSource::Stat
        }
    });
    cur.uptime_secs = uptime_secs;
    cur.cpu_units_per_sec = match source {
        CpuSource::Clock => 1_000_000_000,
        CpuSource::Stat => ctx.clock_ticks_per_sec,
    };
    cur.details.clear();
    cur.procs.clear();
    cur.counters = counters;
    let mut carry = None;
    let mut how = Refresh::List;
    if source == CpuSource::Clock {
        let pid_max = *table.pid_max.get_or_insert_with(|| {
            s.read_text(Base::Proc, &[&"sys", &"kernel", &"pid_max"])
                .ok()
                .and_then(|t| crate::num::parse_u64(t.trim()))
        });
        table.cycle = table.cycle.wrapping_add(1);
        let new_pids = prev
            .filter(|p| p.cpu_units_per_sec == cur.cpu_units_per_sec)
            .and_then(|p| NewPids::between(&p.counters.cursor, &cur.counters.cursor, pid_max));
        if table.probe_new_pids {
            how = table.pid_set.refresh(new_pids);
        }
        carry = prev
            .filter(|_| table.carry_idle)
            .zip(new_pids)
            .map(|(p, new_pids)| Carry {
                new_pids,
                no_reclaim: p.counters.reclaim.is_some()
                    && p.counters.reclaim == cur.counters.reclaim,
                reread_turn: table.cycle % RSS_REREAD_CYCLES,
            });
    }
    // The calling thread's id is no candidate unless it is the process (see `pid_set`).
    let skip = match how {
        Refresh::Extend { .. } => pid_set::own_thread_if_not_leader(),
        Refresh::List => None,
    };
    let candidates = table
        .pid_set
        .take_candidates(how, skip, |out| s.list_pids(out))
        .map_err(|e| e.to_string())?;
    let prev_procs: &[ProcSample] = prev.map_or(&[], |p| &p.procs);
    let mut k = 0;
    let mut bad = 0usize;
    let mut first_bad = None;
    for &pid in &candidates {
        // Both lists ascend by pid: the previous sample's entry in one merge walk.
        while k < prev_procs.len() && prev_procs[k].pid < pid {
            k += 1;
        }
        let known = prev_procs.get(k).filter(|q| q.pid == pid);
        let scanned = match source {
            CpuSource::Clock => scan_clock(s, pid, known, carry.as_ref()),
            CpuSource::Stat => scan_stat(s, pid),
        };
        match scanned {
            Scanned::Process(p) => {
                table.pid_set.found(pid);
                cur.procs.push(p);
            }
            Scanned::Gone => {}
            Scanned::Unreadable(why) => {
                // It exists: a candidate next time too.
                table.pid_set.found(pid);
                bad += 1;
                first_bad.get_or_insert(why);
            }
        }
    }
    // Only a scan by CPU clock (this namespace's live procfs) is a set to extend.
    table.pid_set.settle(candidates, source == CpuSource::Clock);
    cpu_percents(prev, cur, ctx);
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

/// Text of a procfs file; the command name in `stat` may hold any bytes, repaired only when
/// needed.
fn text_of(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(t) => std::borrow::Cow::Borrowed(t),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// One process from its CPU clock and `statm`. `known`: the process with this pid in the previous
/// sample. With `carry`, a pid the kernel has not handed out since names the same process, and
/// if its clock has not moved either (and no reclaim ran, and it is not its turn to be re-read)
/// nothing is read: it has the same resident size. Otherwise its start time is trusted when
/// `statm` was read through a descriptor kept since the previous sample (a kept descriptor pins
/// the process, so it is the same one), else `stat` is read for it.
fn scan_clock(
    s: &mut Sampler,
    pid: u32,
    known: Option<&ProcSample>,
    carry: Option<&Carry>,
) -> Scanned {
    // The clock first: if the statm read below succeeds through a kept descriptor, the process
    // was alive and the same when the clock was read.
    let Ok(cpu_ns) = s.process_cpu_ns(pid) else {
        return Scanned::Gone;
    };
    let same_pid = carry.is_some_and(|c| !c.new_pids.contains(pid));
    if let (Some(q), Some(c)) = (known, carry)
        && same_pid
        && c.no_reclaim
        && q.times.cpu == cpu_ns
        && u64::from(pid) % RSS_REREAD_CYCLES != c.reread_turn
    {
        s.keep_scan_pid(pid);
        return Scanned::Process(ProcSample {
            pid,
            carried: true,
            ..*q
        });
    }
    let (rss_pages, kept_since) = match s.scan_pid(pid, "statm") {
        Ok(read) => match pid_statm::parse(&text_of(read.bytes)) {
            Ok(m) => (m.resident_pages, read.same_process),
            // An empty read means the process exited while it was read.
            Err(_) if read.bytes.is_empty() => return Scanned::Gone,
            Err(e) => {
                let root = s.root().proc.display();
                return Scanned::Unreadable(format!("{root}/{pid}/statm: {e}"));
            }
        },
        Err(e) if e.is_not_found() => return Scanned::Gone,
        Err(e) => return Scanned::Unreadable(e.to_string()),
    };
    let known_start = known
        .filter(|_| kept_since || same_pid)
        .map(|q| q.times.starttime);
    let starttime = match known_start {
        Some(t) => t,
        None => match read_stat(s, pid, false) {
            Ok(Some(st)) => st.starttime,
            Ok(None) => return Scanned::Gone,
            Err(why) => return Scanned::Unreadable(why),
        },
    };
    Scanned::Process(ProcSample {
        pid,
        times: ProcessTimes {
            starttime,
            cpu: cpu_ns,
        },
        rss_pages,
        carried: false,
    })
}

/// One process from its `stat` (kept open between collections).
fn scan_stat(s: &mut Sampler, pid: u32) -> Scanned {
    let read = match s.scan_pid(pid, "stat") {
        Ok(r) => r,
        Err(e) if e.is_not_found() => return Scanned::Gone,
        Err(e) => return Scanned::Unreadable(e.to_string()),
    };
    match pid_stat::parse(&text_of(read.bytes)) {
        Ok(ps) => Scanned::Process(ProcSample {
            pid,
            times: ProcessTimes {
                starttime: ps.starttime,
                cpu: ps.utime.saturating_add(ps.stime),
            },
            rss_pages: ps.rss_pages,
            carried: false,
        }),
        Err(_) if read.bytes.is_empty() => Scanned::Gone,
        Err(e) => Scanned::Unreadable(format!("{}/{pid}/stat: {e}", s.root().proc.display())),
    }
}

/// The fields of `stat` the report needs, owned.
#[derive(Debug, Clone, Default)]
struct StatFields {
    comm: String,
    state: char,
    threads: u64,
    starttime: u64,
}

/// Reads `/proc/<pid>/stat`: opened and closed, or kept open while the process is `reported`
/// (read every collection); `Ok(None)` when the process is gone.
fn read_stat(s: &mut Sampler, pid: u32, reported: bool) -> Result<Option<StatFields>, String> {
    let read = if reported {
        s.reported_pid_stat(pid)
    } else {
        s.read_pid(pid, "stat")
    };
    let bytes = match read {
        Ok(b) => b,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    match pid_stat::parse(&text_of(bytes)) {
        Ok(ps) => Ok(Some(StatFields {
            comm: ps.comm.to_owned(),
            state: ps.state,
            threads: ps.num_threads,
            starttime: ps.starttime,
        })),
        Err(_) if bytes.is_empty() => Ok(None),
        Err(e) => Err(format!("{}/{pid}/stat: {e}", s.root().proc.display())),
    }
}

/// Fills `cur.cpu_percent`: the CPU percent of every process in `cur` (100 = one core, as top
/// shows it) against the same process in `prev`; 0 where there is no rate (first sample, elapsed
/// time unknown, counters going down, CPU counted in other units, a process already running at
/// `prev` but missing from it).
fn cpu_percents(prev: Option<&ProcessesSample>, cur: &mut ProcessesSample, ctx: Context) {
    let ticks = ctx.clock_ticks_per_sec;
    let units = cur.cpu_units_per_sec;
    let prev = prev.filter(|p| p.cpu_units_per_sec == units);
    // `q`: the previous sample's process with the same pid, if any.
    let cpu_with = |p: &ProcSample, q: Option<&ProcSample>| -> Option<f64> {
        let prev = prev?;
        let elapsed = ctx.elapsed.known()?;
        match q.filter(|q| q.times.starttime == p.times.starttime) {
            Some(q) => delta::process_cpu(&q.times, &p.times, elapsed, units),
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
                    cpu: 0,
                };
                delta::process_cpu(&born, &p.times, elapsed, units)
            }
        }
    };
    let prev_procs: &[ProcSample] = prev.map_or(&[], |p| &p.procs);
    // Both samples are in ascending pid order: match them in one merge walk.
    let mut k = 0;
    let out = &mut cur.cpu_percent;
    out.clear();
    out.extend(cur.procs.iter().map(|p| {
        while k < prev_procs.len() && prev_procs[k].pid < p.pid {
            k += 1;
        }
        let q = prev_procs.get(k).filter(|q| q.pid == p.pid);
        cpu_with(p, q).unwrap_or(0.0)
    }));
}

/// Fills `cur.details` with the top N processes by CPU and the top N by resident memory, reading
/// stat, status (and cmdline, when the cached identity is stale) of each candidate. Threads and
/// processes that vanished (or whose pid now names another process) are passed over for the next
/// in rank.
fn choose_reported(s: &mut Sampler, table: &mut ProcessTable, cur: &mut ProcessesSample) {
    let top = table.top;
    let source = table.cpu_source.unwrap_or(CpuSource::Stat);
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
            match detail(s, &mut table.idents, &cur.procs[i], i, source) {
                Some(d) => {
                    cur.details.push(d);
                    chosen.push(i);
                    taken += 1;
                }
                None => rejected.push(i),
            }
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

/// What is reported of process `p` (entry `idx` of the scan): name, state and threads from
/// `stat`; uid and command line from the identity cache or read afresh (`status`, `cmdline`).
/// Resident memory is what top and ps show (VmRSS, the same counters `statm` sums): with CPU
/// from process clocks, the scan's `statm` figure (read again here if it was carried over), so
/// `status`, the costliest file of a process, is read only when the identity is; with CPU from
/// `stat`, `status`'s VmRSS every time (`stat`'s rss lags). `None` for a thread, a process that
/// exited, or a pid that now names a process started since the scan.
fn detail(
    s: &mut Sampler,
    idents: &mut HashMap<u32, Ident>,
    p: &ProcSample,
    idx: usize,
    source: CpuSource,
) -> Option<ProcDetail> {
    let (pid, starttime) = (p.pid, p.times.starttime);
    let ident = idents.get(&pid).filter(|id| {
        id.starttime == starttime && id.read_at.is_some_and(|t| t.elapsed() < IDENT_REFRESH)
    });
    if ident.is_some_and(|id| id.is_thread) {
        return None;
    }
    // A process carried over as idle (its CPU clock stood still and its pid was not handed out
    // again: see `Carry`) has not run since the previous collection, and the name, state and
    // thread count `stat` reports change only by the process running (an exec, a clone, an
    // exit, a stop or wake-up taken in its own context). So what `stat` said then is what it
    // says now; it is read again on the turn that re-reads an idle process's resident size.
    let carried = ident
        .filter(|_| p.carried)
        .and_then(|id| id.last_stat.clone());
    let stat = match carried {
        Some(st) => {
            s.keep_reported_pid_stat(pid);
            st
        }
        None => {
            let st = read_stat(s, pid, true).ok()??;
            if st.starttime != starttime {
                return None;
            }
            if let Some(id) = idents.get_mut(&pid) {
                id.last_stat = Some(st.clone());
            }
            st
        }
    };
    let ident = idents.get(&pid).filter(|id| {
        id.starttime == starttime && id.read_at.is_some_and(|t| t.elapsed() < IDENT_REFRESH)
    });
    // Renamed since (an exec): what the identity says of it is stale, as top would not show it.
    let cached = ident.filter(|id| id.comm == stat.comm);
    let status = if cached.is_none() || source == CpuSource::Stat {
        match s.read_pid(pid, "status") {
            Ok(b) => Some(std::str::from_utf8(b).ok().map(pid_status::parse)?.ok()?),
            Err(_) => return None,
        }
    } else {
        None
    };
    let fresh_rss_pages = if source == CpuSource::Clock && p.carried {
        match s.scan_pid(pid, "statm") {
            Ok(read) => pid_statm::parse(&text_of(read.bytes))
                .ok()
                .map(|m| m.resident_pages),
            Err(e) if e.is_not_found() => return None,
            Err(_) => None,
        }
    } else {
        None
    };
    let mut d = ProcDetail {
        idx,
        comm: stat.comm,
        state: stat.state,
        threads: stat.threads,
        uid: 0,
        cmdline: String::new(),
        vm_rss: status
            .as_ref()
            .filter(|_| source == CpuSource::Stat)
            .and_then(|st| st.vm_rss),
        fresh_rss_pages,
    };
    let Some(status) = status.filter(|_| cached.is_none()) else {
        let id = cached?;
        d.uid = id.uid;
        d.cmdline.clone_from(&id.cmdline);
        return Some(d);
    };
    d.uid = status.uid;
    // Threads are not processes.
    let is_thread = status.tgid != status.pid || status.pid != pid;
    if !is_thread {
        d.cmdline = match s.read_pid(pid, "cmdline") {
            Ok(b) => pid_cmdline::to_display(b),
            Err(e) if e.is_not_found() => return None,
            Err(_) => String::new(),
        };
    }
    let last_stat = StatFields {
        comm: d.comm.clone(),
        state: d.state,
        threads: d.threads,
        starttime,
    };
    idents.insert(
        pid,
        Ident {
            last_stat: Some(last_stat),
            starttime,
            comm: d.comm.clone(),
            is_thread,
            uid: status.uid,
            cmdline: d.cmdline.clone(),
            read_at: Some(Instant::now()),
        },
    );
    (!is_thread).then_some(d)
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
            // VmRSS as top and ps show it: status's where it is read every time, else statm's
            // (the same counters; kernel threads have none and read 0).
            let rss = d.vm_rss.unwrap_or_else(|| {
                d.fresh_rss_pages
                    .unwrap_or(p.rss_pages)
                    .saturating_mul(ctx.page_size)
            });
            let start = boot_time.map_or(0, |b| {
                let secs = p.times.starttime / ctx.clock_ticks_per_sec.max(1);
                i64::try_from(b.saturating_add(secs)).unwrap_or(i64::MAX)
            });
            ProcessMetrics {
                pid: p.pid,
                name: d.comm.clone(),
                cmdline: d.cmdline.clone(),
                user: table
                    .users
                    .get(&d.uid)
                    .cloned()
                    .unwrap_or_else(|| d.uid.to_string()),
                status: d.state.to_string(),
                cpu_percent: cur.cpu_percent[d.idx],
                mem_percent: percent(rss, mem_total),
                mem_rss: rss,
                threads: u32::try_from(d.threads).unwrap_or(u32::MAX),
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

    /// A process started `starttime` ticks after boot with `cpu_ticks` of CPU time.
    fn proc(pid: u32, starttime: u64, cpu_ticks: u64) -> ProcSample {
        ProcSample {
            pid,
            times: ProcessTimes {
                starttime,
                cpu: cpu_ticks,
            },
            rss_pages: 10,
            carried: false,
        }
    }

    /// A sample with CPU in clock ticks (100 per second, as `ctx` says).
    fn sample(uptime_secs: f64, procs: Vec<ProcSample>) -> ProcessesSample {
        ProcessesSample {
            cpu_percent: vec![0.0; procs.len()],
            procs,
            cpu_units_per_sec: 100,
            details: Vec::new(),
            uptime_secs: Some(uptime_secs),
            counters: NodeCounters::default(),
        }
    }

    /// `cur`'s CPU percents against `prev`.
    fn cpu_percents(
        prev: Option<&ProcessesSample>,
        cur: &ProcessesSample,
        ctx: Context,
    ) -> Vec<f64> {
        let mut cur = ProcessesSample {
            procs: cur.procs.clone(),
            cpu_units_per_sec: cur.cpu_units_per_sec,
            cpu_percent: Vec::new(),
            details: Vec::new(),
            uptime_secs: cur.uptime_secs,
            counters: NodeCounters::default(),
        };
        super::cpu_percents(prev, &mut cur, ctx);
        cur.cpu_percent
    }

    #[test]
    fn an_idle_reported_process_is_described_without_reading_stat_again() {
        let me = std::process::id();
        let mut s = Sampler::new(
            crate::sampler::HostRoot::default(),
            crate::sampler::Statfs::new(Duration::from_secs(1)),
        );
        let stat = read_stat(&mut s, me, true).unwrap().unwrap();
        let mut idents = HashMap::new();
        let scanned = ProcSample {
            pid: me,
            times: ProcessTimes {
                starttime: stat.starttime,
                cpu: 0,
            },
            rss_pages: 1,
            carried: false,
        };
        let stat_reads = |s: &mut Sampler| {
            s.take_trace()
                .iter()
                .filter(|a| matches!(a, crate::sampler::Access::File(p) if p.ends_with("stat")))
                .count()
        };
        let first = detail(&mut s, &mut idents, &scanned, 0, CpuSource::Clock).unwrap();
        s.sweep_kept(); // the end of that collection
        s.set_tracing(true);
        // Carried over as idle: what stat said is reused, and its kept descriptor stays open.
        let idle = ProcSample {
            carried: true,
            ..scanned
        };
        let again = detail(&mut s, &mut idents, &idle, 0, CpuSource::Clock).unwrap();
        let kept = s.kept_files();
        assert_eq!(stat_reads(&mut s), 0);
        assert_eq!(
            (&again.comm, again.state, again.threads),
            (&first.comm, first.state, first.threads)
        );
        s.sweep_kept();
        assert_eq!(s.kept_files(), kept, "the kept stat survives the sweep");
        // Scanned afresh (it ran, or its turn to be re-read): stat is read.
        detail(&mut s, &mut idents, &scanned, 0, CpuSource::Clock).unwrap();
        assert_eq!(stat_reads(&mut s), 1);
        // Without a cached reading (a first sight) an idle process is read too.
        idents.clear();
        detail(&mut s, &mut idents, &idle, 0, CpuSource::Clock).unwrap();
        assert_eq!(stat_reads(&mut s), 1);
    }

    #[test]
    fn status_is_read_with_the_identity_not_every_collection() {
        // With CPU from process clocks, a reported process's status (the costliest file) is read
        // when its identity is (first seen, or after IDENT_REFRESH), not every collection.
        let mut c = super::super::Collector::new(
            crate::sampler::HostRoot::default(),
            crate::CollectConfig {
                top_processes: 5,
                ..crate::CollectConfig::from_host()
            },
        );
        let first: Vec<u32> = c.collect().processes.iter().map(|p| p.pid).collect();
        assert!(!first.is_empty());
        c.sampler_mut().set_tracing(true);
        let second = c.collect();
        let status_reads: Vec<String> = c
            .sampler_mut()
            .take_trace()
            .into_iter()
            .filter_map(|a| match a {
                crate::sampler::Access::File(p) if p.ends_with("status") => {
                    Some(p.display().to_string())
                }
                _ => None,
            })
            .collect();
        for read in &status_reads {
            let pid: u32 = read.split('/').nth(2).unwrap().parse().unwrap();
            assert!(
                !first.contains(&pid),
                "status of {pid} read again: {status_reads:?}"
            );
        }
        // The resident size still comes out as VmRSS for this process, if reported.
        let me = std::process::id();
        if let Some(p) = second.processes.iter().find(|p| p.pid == me) {
            let st = std::fs::read_to_string(format!("/proc/{me}/status")).unwrap();
            let vm_rss = crate::proc::pid_status::parse(&st).unwrap().vm_rss.unwrap();
            assert!(
                p.mem_rss.abs_diff(vm_rss) < 4 << 20,
                "{} vs {vm_rss}",
                p.mem_rss
            );
        }
    }

    #[test]
    fn an_exec_refreshes_the_command_line_at_once() {
        // The identity (command line, user) is cached for IDENT_REFRESH, but an exec keeps the
        // pid and the start time: the new name in `stat` makes it read again, as top shows it.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 1; exec sleep 30"])
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut c = super::super::Collector::new(
            crate::sampler::HostRoot::default(),
            crate::CollectConfig {
                top_processes: 100_000,
                ..crate::CollectConfig::from_host()
            },
        );
        let before = c.collect();
        let first = before.processes.iter().find(|p| p.pid == pid);
        let comm = || std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(20);
        while comm().trim() != "sleep" {
            assert!(Instant::now() < deadline, "the child never ran its exec");
            std::thread::sleep(Duration::from_millis(20));
        }
        let after = c.collect();
        child.kill().unwrap();
        child.wait().unwrap();
        // The shell may already have exec'd at the first collection on a slow machine; then
        // both show sleep, which is right too.
        if let Some(first) = first.filter(|p| p.name == "sh") {
            assert!(first.cmdline.starts_with("sh -c"), "{}", first.cmdline);
        }
        let now = after
            .processes
            .iter()
            .find(|p| p.pid == pid)
            .expect("the child is reported");
        assert_eq!(now.name, "sleep");
        assert_eq!(now.cmdline, "sleep 30");
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
    fn cpu_in_nanoseconds_and_a_change_of_units() {
        let ns = |uptime, procs| ProcessesSample {
            cpu_units_per_sec: 1_000_000_000,
            ..sample(uptime, procs)
        };
        // 1.5 s of CPU over 2 s (two threads of one process can exceed 100 %).
        let prev = ns(100.0, vec![proc(1, 0, 4_000_000_000)]);
        let cur = ns(102.0, vec![proc(1, 0, 5_500_000_000)]);
        assert_eq!(cpu_percents(Some(&prev), &cur, ctx(TWO_SECONDS)), [75.0]);
        // Ticks before, nanoseconds now (another root): no rates rather than wrong ones.
        let ticks = sample(100.0, vec![proc(1, 0, 4)]);
        assert_eq!(cpu_percents(Some(&ticks), &cur, ctx(TWO_SECONDS)), [0.0]);
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
                comm: "systemd".into(),
                state: 'S',
                threads: 1,
                uid: 0,
                cmdline: "/sbin/init".into(),
                vm_rss: Some(8192),
                fresh_rss_pages: None,
            },
            ProcDetail {
                idx: 1,
                comm: "busy".into(),
                state: 'R',
                threads: 3,
                uid: 1000,
                cmdline: String::new(),
                vm_rss: None,
                fresh_rss_pages: None,
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
        assert_eq!((busy.name.as_str(), busy.status.as_str()), ("busy", "R"));
        assert_eq!(busy.threads, 3);
        assert_eq!(init.user, "root");
        assert_eq!(init.mem_rss, 8192);
        assert_eq!(init.mem_percent, 10.0);
        assert_eq!(init.status, "S");
        // Unknown boot time and memory size: start 0, no share.
        let m = metrics(&cur, &table, 0, None, ctx(TWO_SECONDS));
        assert_eq!((m[1].start_time, m[1].mem_percent), (0, 0.0));
    }
}
