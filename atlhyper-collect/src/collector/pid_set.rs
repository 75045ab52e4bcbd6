//! Which processes exist, without listing `/proc` every collection.
//!
//! Listing `/proc` costs the kernel about as much per process as reading that process's CPU
//! clock, so a scan that lists and then reads every clock pays for each process twice. But the
//! kernel hands out pid numbers from one cyclic cursor per pid namespace (`idr_alloc_cyclic`:
//! upwards from the last number handed out, back to the bottom past `pid_max`); `/proc/loadavg`'s
//! last field is that last number, in the reader's namespace, and a task of a nested namespace
//! takes a number in every namespace above it. So between two collections a live process keeps
//! its number, which names it until it exits and the cursor comes round to it again, and a
//! process created since has a number in the cyclic range (previous cursor, current cursor].
//!
//! The rule, used when the process CPU clocks describe the sampled procfs (it is this process's
//! own namespace's live procfs, see [`crate::sampler`]):
//!
//! - The cursor is where it was (and `/proc/stat`'s fork count shows it cannot have gone all the
//!   way round): nothing was created, and the processes are the previous set minus those whose
//!   CPU clock now fails (`EINVAL`: no such process).
//! - It moved forward by at most [`probe_limit`] numbers without wrapping: the previous set plus
//!   the numbers of that range whose clock answers. The scan reads every candidate's clock
//!   anyway, so a number that names nothing costs one failed `clock_gettime`. The kernel answers
//!   a process clock only for a thread-group leader: a thread's id gives `EINVAL`, as a number
//!   that names nothing does. The one exception (Linux 5.7 and later): the calling thread's own
//!   id gives its process's clock, so that number is never a candidate unless it is the process.
//! - Otherwise (the cursor unknown, wrapped or moved far, no previous set, or every
//!   [`LIST_EVERY`] collections as a safety net for what moves no cursor: a pid picked with
//!   `clone3`'s `set_tid` or a write to `ns_last_pid`, both for checkpoint/restore and needing
//!   `CAP_CHECKPOINT_RESTORE`), `/proc` is listed in full.
//!
//! The cursor is read before the set is made, so a process created meanwhile may be missed this
//! time but lies in the next collection's range. A number found twice (listed after the cursor
//! was read, then in the next range) is a candidate once.

/// A full listing at least once in this many collections.
pub(super) const LIST_EVERY: u64 = 12;

/// Probing a range of this many numbers is always preferred to a listing.
const PROBE_FLOOR: u64 = 256;

/// The largest range of new numbers probed instead of listing `/proc` when `known` processes
/// exist: a failed clock read costs less than a listed entry, so up to one number per process
/// (at least [`PROBE_FLOOR`]).
pub(super) fn probe_limit(known: usize) -> u64 {
    u64::try_from(known).unwrap_or(u64::MAX).max(PROBE_FLOOR)
}

/// Where the kernel's pid allocation stood at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct PidCursor {
    /// Processes and threads created since boot, in every namespace (`/proc/stat`'s
    /// `processes`).
    pub(super) forks: Option<u64>,
    /// The pid most recently handed out in this namespace (`/proc/loadavg`'s last field).
    pub(super) last_pid: Option<u64>,
    /// Tasks (processes and threads) that exist, in every namespace (`/proc/loadavg`'s
    /// `running/total`).
    pub(super) tasks: Option<u64>,
}

/// The numbers below which the kernel's cursor never hands out again once it has wrapped
/// (`RESERVED_PIDS`; a nested namespace may use them, which only makes the cycle longer).
const RESERVED_PIDS: u64 = 300;

/// Pid numbers the kernel may have handed out between two samples: the cyclic range
/// (`after`, `upto`] of its allocation cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct NewPids {
    after: u64,
    upto: u64,
}

impl NewPids {
    /// The range allocated from between `prev` and `cur`; `None` when it is unknown or the
    /// allocator may have gone all the way round (`pid_max`: the highest pid plus one).
    pub(super) fn between(prev: &PidCursor, cur: &PidCursor, pid_max: Option<u64>) -> Option<Self> {
        let forks = cur.forks?.checked_sub(prev.forks?)?;
        let pid_max = pid_max?;
        // To come all the way round the cursor passes every number of its cycle
        // [RESERVED_PIDS, pid_max): a free one is handed out (a fork), a taken one belongs to a
        // task that existed at `prev` or was forked since. So it cannot have while twice the forks
        // plus those tasks fall short of the cycle; a sixteenth of the cycle is margin for the
        // fork count and the cursor being read a moment apart.
        let cycle = pid_max.saturating_sub(RESERVED_PIDS);
        let passable = forks
            .saturating_mul(2)
            .saturating_add(prev.tasks?)
            .saturating_add(pid_max / 16);
        if passable >= cycle {
            return None;
        }
        Some(Self {
            after: prev.last_pid?,
            upto: cur.last_pid?,
        })
    }

    /// Whether `pid` may have been handed out in this range.
    pub(super) fn contains(&self, pid: u32) -> bool {
        let p = u64::from(pid);
        if self.after <= self.upto {
            self.after < p && p <= self.upto
        } else {
            p > self.after || p <= self.upto
        }
    }

    /// The numbers of a range that did not wrap, or `None` when it wrapped.
    fn forward(&self) -> Option<std::ops::RangeInclusive<u64>> {
        (self.after <= self.upto).then(|| self.after + 1..=self.upto)
    }
}

/// How this collection's candidate pids are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refresh {
    /// List `/proc`.
    List,
    /// The previous set, plus these numbers (an empty range: nothing was created).
    Extend { after: u64, upto: u64 },
}

/// How the candidates are found, from the range handed out since the previous set was made
/// (`None`: unknown), the size of that set (`None`: there is none) and the collections since the
/// last listing.
fn plan(new: Option<NewPids>, known: Option<usize>, since_listing: u64) -> Refresh {
    let (Some(new), Some(known)) = (new, known) else {
        return Refresh::List;
    };
    if since_listing + 1 >= LIST_EVERY {
        return Refresh::List;
    }
    match new.forward() {
        Some(_) if new.upto - new.after <= probe_limit(known) => Refresh::Extend {
            after: new.after,
            upto: new.upto,
        },
        _ => Refresh::List,
    }
}

/// How the candidate pids were found, counted over the collector's life.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PidSetStats {
    /// Collections that listed `/proc`.
    pub listings: u64,
    /// Collections that extended the previous set instead.
    pub extensions: u64,
    /// Numbers probed by those extensions.
    pub probed: u64,
}

/// The processes found at the previous collection, and this collection's candidates.
#[derive(Debug, Default)]
pub(super) struct PidSet {
    /// The pids the previous scan found to be processes, ascending; `None` when there is no such
    /// scan to build on.
    known: Option<Vec<u32>>,
    /// This collection's candidates, ascending.
    candidates: Vec<u32>,
    /// The pids this collection's scan found to be processes so far.
    found: Vec<u32>,
    since_listing: u64,
    stats: PidSetStats,
}

impl PidSet {
    /// Forgets the previous set: the next collection lists.
    pub(super) fn forget(&mut self) {
        self.known = None;
    }

    /// How this collection's candidates are to be found, given the range of numbers handed out
    /// since the previous set was made (`None`: unknown).
    pub(super) fn refresh(&self, new: Option<NewPids>) -> Refresh {
        plan(new, self.known(), self.since_listing)
    }

    /// The size of the previous set, if there is one.
    pub(super) fn known(&self) -> Option<usize> {
        self.known.as_ref().map(Vec::len)
    }

    /// This collection's candidates, ascending, as `how` says: `list` fills them (listing
    /// `/proc`), or the previous set is extended by a range of numbers, without `skip` (the
    /// calling thread's id when it is not the process: [`own_thread_if_not_leader`]). They are
    /// taken out; give them back with [`PidSet::settle`].
    pub(super) fn take_candidates<E>(
        &mut self,
        how: Refresh,
        skip: Option<u32>,
        list: impl FnOnce(&mut Vec<u32>) -> Result<(), E>,
    ) -> Result<Vec<u32>, E> {
        let mut out = std::mem::take(&mut self.candidates);
        out.clear();
        self.found.clear();
        match (how, self.known.as_deref()) {
            (Refresh::Extend { after, upto }, Some(known)) => {
                extend(known, after, upto, skip, &mut out);
                self.since_listing += 1;
                self.stats.extensions += 1;
                self.stats.probed += upto - after;
            }
            _ => {
                self.known = None;
                if let Err(e) = list(&mut out) {
                    self.candidates = out;
                    return Err(e);
                }
                self.since_listing = 0;
                self.stats.listings += 1;
            }
        }
        Ok(out)
    }

    /// Records `pid` (a candidate, in ascending order) as a process.
    pub(super) fn found(&mut self, pid: u32) {
        self.found.push(pid);
    }

    /// Ends the collection: the processes found are the next collection's previous set (when
    /// `complete`: every candidate was looked at), and the candidates' buffer is given back.
    pub(super) fn settle(&mut self, candidates: Vec<u32>, complete: bool) {
        self.candidates = candidates;
        let next = std::mem::take(&mut self.found);
        self.found = self.known.take().unwrap_or_default();
        self.known = complete.then_some(next);
    }

    /// How candidates were found so far.
    pub(super) fn stats(&self) -> PidSetStats {
        self.stats
    }
}

/// `known` (ascending) merged with the numbers `after + 1 ..= upto`, without `skip`, into `out`
/// ascending, each number once.
fn extend(known: &[u32], after: u64, upto: u64, skip: Option<u32>, out: &mut Vec<u32>) {
    let lo = u32::try_from(after.saturating_add(1)).unwrap_or(u32::MAX);
    let hi = u32::try_from(upto).unwrap_or(u32::MAX);
    let fresh = (lo..=hi).filter(|&p| u64::from(p) > after && Some(p) != skip);
    let mut known = known.iter().copied().peekable();
    let mut fresh = fresh.peekable();
    loop {
        let next = match (known.peek(), fresh.peek()) {
            (Some(&a), Some(&b)) if a < b => known.next(),
            (Some(&a), Some(&b)) if a == b => {
                fresh.next();
                known.next()
            }
            (Some(_), Some(_)) | (None, Some(_)) => fresh.next(),
            (Some(_), None) => known.next(),
            (None, None) => None,
        };
        match next {
            Some(p) => out.push(p),
            None => break,
        }
    }
}

/// The calling thread's id when it is not this process's main thread: the one thread id whose
/// process CPU clock the kernel answers (with this process's time).
pub(super) fn own_thread_if_not_leader() -> Option<u32> {
    // SAFETY: gettid and getpid have no preconditions and cannot fail.
    let (tid, pid) = unsafe { (libc::gettid(), libc::getpid()) };
    (tid != pid).then(|| u32::try_from(tid).ok()).flatten()
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;

    use super::*;

    fn at(forks: u64, last_pid: u64) -> PidCursor {
        PidCursor {
            forks: Some(forks),
            last_pid: Some(last_pid),
            tasks: Some(500),
        }
    }

    #[test]
    fn new_pids_between_two_samples() {
        let r = NewPids::between(&at(100, 500), &at(103, 520), Some(32768)).unwrap();
        assert!(!r.contains(500) && r.contains(501) && r.contains(520) && !r.contains(521));
        assert!(!r.contains(1) && !r.contains(32767));
        // The cursor wrapped round past pid_max back to the low numbers.
        let r = NewPids::between(&at(100, 32700), &at(200, 310), Some(32768)).unwrap();
        assert!(r.contains(32701) && r.contains(32767) && r.contains(300) && r.contains(310));
        assert!(!r.contains(311) && !r.contains(32700) && !r.contains(20000));
        // Nothing allocated: no pid is new.
        let r = NewPids::between(&at(7, 900), &at(7, 900), Some(32768)).unwrap();
        assert!(!r.contains(900) && !r.contains(901) && !r.contains(1));
        // Enough forks to have gone all the way round (twice the forks, the tasks at the
        // previous sample and a sixteenth of the space make the cycle of 32,468 numbers),
        // counters going down, or anything unknown: no answer.
        assert!(NewPids::between(&at(0, 900), &at(14_959, 950), Some(32768)).is_some());
        assert_eq!(
            NewPids::between(&at(0, 900), &at(14_960, 950), Some(32768)),
            None
        );
        let crowded = PidCursor {
            tasks: Some(30_500),
            ..at(0, 900)
        };
        assert_eq!(NewPids::between(&crowded, &at(1, 950), Some(32768)), None);
        assert_eq!(
            NewPids::between(&at(9, 900), &at(8, 950), Some(32768)),
            None
        );
        assert_eq!(NewPids::between(&at(1, 900), &at(2, 950), None), None);
        let unknown = PidCursor {
            last_pid: None,
            ..at(2, 950)
        };
        assert_eq!(NewPids::between(&at(1, 900), &unknown, Some(32768)), None);
        let unknown = PidCursor {
            tasks: None,
            ..at(1, 900)
        };
        assert_eq!(NewPids::between(&unknown, &at(2, 950), Some(32768)), None);
    }

    #[test]
    fn list_unless_a_small_forward_range_extends_a_known_set() {
        let range = |a, b| NewPids::between(&at(0, a), &at(b - a, b), Some(1 << 22));
        let extend = |after, upto| Refresh::Extend { after, upto };
        assert_eq!(plan(range(500, 500), Some(10), 0), extend(500, 500));
        assert_eq!(plan(range(500, 510), Some(10), 3), extend(500, 510));
        // Up to one number per known process, at least PROBE_FLOOR.
        assert_eq!(plan(range(500, 756), Some(10), 0), extend(500, 756));
        assert_eq!(plan(range(500, 757), Some(10), 0), Refresh::List);
        assert_eq!(plan(range(500, 2500), Some(2000), 0), extend(500, 2500));
        assert_eq!(plan(range(500, 2501), Some(2000), 0), Refresh::List);
        // No previous set, an unknown range, a wrapped one, or the safety net.
        assert_eq!(plan(range(500, 510), None, 0), Refresh::List);
        assert_eq!(plan(None, Some(10), 0), Refresh::List);
        let wrapped = NewPids::between(&at(0, 32760), &at(20, 305), Some(32768));
        assert_eq!(plan(wrapped, Some(10), 0), Refresh::List);
        assert_eq!(
            plan(range(500, 510), Some(10), LIST_EVERY - 1),
            Refresh::List
        );
    }

    #[test]
    fn extended_sets_ascend_without_repeats() {
        let mut out = Vec::new();
        extend(&[3, 9, 12, 40], 8, 13, None, &mut out);
        assert_eq!(out, [3, 9, 10, 11, 12, 13, 40]);
        out.clear();
        extend(&[3, 9], 9, 9, None, &mut out);
        assert_eq!(out, [3, 9], "an empty range");
        out.clear();
        extend(&[], 5, 8, Some(7), &mut out);
        assert_eq!(out, [6, 8], "the skipped number");
        out.clear();
        extend(
            &[1],
            u64::from(u32::MAX) - 1,
            u64::from(u32::MAX) + 5,
            None,
            &mut out,
        );
        assert_eq!(out, [1, u32::MAX], "numbers past u32 are no pids");
    }

    #[test]
    fn a_failed_listing_leaves_no_set_to_extend() {
        let mut set = PidSet::default();
        let c = set
            .take_candidates(Refresh::List, None, |out| {
                out.extend([1, 5]);
                Ok::<_, ()>(())
            })
            .unwrap();
        for &p in &c {
            set.found(p);
        }
        set.settle(c, true);
        assert_eq!(set.known(), Some(2));
        let how = Refresh::Extend { after: 5, upto: 6 };
        assert!(
            set.take_candidates(how, None, |_| Err(())).is_ok(),
            "no listing"
        );
        let c = set.take_candidates(Refresh::List, None, |_| Err(()));
        assert!(c.is_err());
        assert_eq!(set.known(), None);
        set.forget();
        assert_eq!(set.stats().listings, 1);
        assert_eq!(set.stats().extensions, 1);
    }

    /// A pid namespace: numbers handed out cyclically from a cursor, as the kernel does.
    #[derive(Debug)]
    struct Kernel {
        pid_max: u32,
        /// The last number handed out.
        cursor: u32,
        forks: u64,
        /// Task id -> its thread group (process) id.
        tasks: BTreeMap<u32, u32>,
    }

    /// The lowest number handed out after wrapping, as in the kernel.
    const RESERVED: u32 = 300;

    impl Kernel {
        fn new(pid_max: u32) -> Self {
            let mut k = Self {
                pid_max,
                cursor: 0,
                forks: 0,
                tasks: BTreeMap::new(),
            };
            k.alloc(None);
            k
        }

        /// A new task: a process, or a thread of process `of`. `None` when the space is full.
        fn alloc(&mut self, of: Option<u32>) -> Option<u32> {
            let span = self.pid_max - RESERVED;
            for step in 1..=self.pid_max {
                let mut p = self.cursor + step;
                if p >= self.pid_max {
                    p = RESERVED + (p - self.pid_max) % span;
                }
                if p == 0 || self.tasks.contains_key(&p) {
                    continue;
                }
                self.cursor = p;
                self.forks += 1;
                self.tasks.insert(p, of.unwrap_or(p));
                return Some(p);
            }
            None
        }

        fn processes(&self) -> Vec<u32> {
            self.tasks
                .iter()
                .filter(|(t, g)| t == g)
                .map(|(t, _)| *t)
                .collect()
        }

        fn nth_process(&self, n: usize) -> Option<u32> {
            let p = self.processes();
            (!p.is_empty()).then(|| p[n % p.len()])
        }

        fn apply(&mut self, op: &Op) -> Option<u32> {
            match *op {
                Op::Spawn => self.alloc(None),
                Op::Thread(n) => {
                    let g = self.nth_process(n)?;
                    self.alloc(Some(g))
                }
                Op::Exit(n) => {
                    let g = self.nth_process(n)?;
                    self.tasks.retain(|_, tg| *tg != g);
                    None
                }
                Op::ExitThread(n) => {
                    let threads: Vec<u32> = self
                        .tasks
                        .iter()
                        .filter(|(t, g)| t != g)
                        .map(|(t, _)| *t)
                        .collect();
                    if !threads.is_empty() {
                        self.tasks.remove(&threads[n % threads.len()]);
                    }
                    None
                }
            }
        }

        fn cursor(&self) -> PidCursor {
            PidCursor {
                forks: Some(self.forks),
                last_pid: Some(u64::from(self.cursor)),
                tasks: Some(self.tasks.len() as u64),
            }
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Spawn,
        Thread(usize),
        Exit(usize),
        ExitThread(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => Just(Op::Spawn),
            3 => any::<usize>().prop_map(Op::Thread),
            3 => any::<usize>().prop_map(Op::Exit),
            2 => any::<usize>().prop_map(Op::ExitThread),
        ]
    }

    /// Between two collections: tasks come and go, the cursor is read, more come and go while
    /// the rest of the collection runs, then the set is made.
    #[derive(Debug, Clone)]
    struct Interval {
        before: Vec<Op>,
        during: Vec<Op>,
    }

    fn interval() -> impl Strategy<Value = Interval> {
        (
            prop::collection::vec(op(), 0..40),
            prop::collection::vec(op(), 0..4),
        )
            .prop_map(|(before, during)| Interval { before, during })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// The set each collection makes holds exactly the processes that exist, except those
        /// created after its cursor was read; those are in the next collection's set (if they
        /// live). Threads are never in it.
        #[test]
        fn extended_sets_equal_a_full_listing(
            pid_max in 340u32..800,
            intervals in prop::collection::vec(interval(), 1..40),
        ) {
            let mut k = Kernel::new(pid_max);
            let mut set = PidSet::default();
            let mut prev: Option<PidCursor> = None;
            for iv in &intervals {
                for op in &iv.before {
                    k.apply(op);
                }
                let cur = k.cursor();
                let mut late = BTreeSet::new();
                for op in &iv.during {
                    late.extend(k.apply(op));
                }
                let new = prev.and_then(|p| NewPids::between(&p, &cur, Some(u64::from(pid_max))));
                let how = set.refresh(new);
                let truth = k.processes();
                let cands = set
                    .take_candidates(how, None, |out| {
                        out.extend(&truth);
                        Ok::<_, ()>(())
                    })
                    .unwrap();
                prop_assert!(cands.is_sorted());
                for &p in &cands {
                    if k.tasks.get(&p) == Some(&p) {
                        set.found(p);
                    }
                }
                let got = set.found.clone();
                set.settle(cands, true);
                for p in &truth {
                    prop_assert!(
                        got.contains(p) || late.contains(p),
                        "process {} missing ({:?}; {:?})", p, how, k
                    );
                }
                for p in &got {
                    prop_assert!(truth.contains(p), "{} is no process", p);
                }
                prev = Some(cur);
            }
            prop_assert!(set.stats().listings >= 1);
        }
    }
}

/// Against the kernel: sets made by extension equal a full listing of `/proc`.
#[cfg(test)]
mod live;
