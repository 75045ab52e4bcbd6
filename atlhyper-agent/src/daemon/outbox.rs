//! The outbox: what is queued for delivery to the agent, and the bound that keeps it from
//! growing while the agent is away.

use std::collections::VecDeque;

use axum::body::Bytes;

/// Snapshots waiting to be delivered: the newest, and a bounded queue of older ones for backfill.
#[derive(Debug)]
pub(crate) struct Outbox {
    latest: Option<Pending>,
    history: VecDeque<Pending>,
    capacity: usize,
    next_id: u64,
    dropped: u64,
}

#[derive(Debug, Clone)]
struct Pending {
    id: u64,
    body: Bytes,
}

impl Outbox {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            latest: None,
            history: VecDeque::with_capacity(capacity.min(1024)),
            capacity,
            next_id: 0,
            dropped: 0,
        }
    }

    /// Adds the newest snapshot; an undelivered previous one moves to the history queue, whose
    /// oldest entry is dropped (and counted) when it is full.
    pub(crate) fn push(&mut self, body: Bytes) {
        self.next_id += 1;
        let new = Pending {
            id: self.next_id,
            body,
        };
        if let Some(old) = self.latest.replace(new) {
            if self.capacity == 0 {
                self.dropped += 1;
                return;
            }
            if self.history.len() >= self.capacity {
                self.history.pop_front();
                self.dropped += 1;
            }
            self.history.push_back(old);
        }
    }

    /// What to send next: the newest first, then the history oldest first.
    pub(crate) fn next(&self) -> Option<(u64, Bytes)> {
        self.latest
            .as_ref()
            .or_else(|| self.history.front())
            .map(|p| (p.id, p.body.clone()))
    }

    /// Entry `id` was delivered (or refused for good): forget it wherever it is now.
    pub(crate) fn ack(&mut self, id: u64) {
        if self.latest.as_ref().is_some_and(|p| p.id == id) {
            self.latest = None;
        } else if let Some(pos) = self.history.iter().position(|p| p.id == id) {
            self.history.remove(pos);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.history.len() + usize::from(self.latest.is_some())
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(n: u8) -> Bytes {
        Bytes::from(vec![n])
    }

    #[test]
    fn outbox_keeps_newest_first_and_bounds_history() {
        let mut o = Outbox::new(3);
        for n in 1..=6 {
            o.push(body(n));
        }
        // Newest is 6; history keeps 3, 4, 5 (1 and 2 dropped).
        assert_eq!(o.len(), 4);
        assert_eq!(o.dropped(), 2);
        let order: Vec<u8> = std::iter::from_fn(|| {
            let (id, b) = o.next()?;
            o.ack(id);
            Some(b[0])
        })
        .collect();
        assert_eq!(order, [6, 3, 4, 5]);
    }

    #[test]
    fn ack_of_a_moved_entry_removes_it_from_history() {
        let mut o = Outbox::new(10);
        o.push(body(1));
        let (id, _) = o.next().unwrap();
        o.push(body(2)); // 1 moves to history while in flight
        o.ack(id);
        assert_eq!(o.len(), 1);
        assert_eq!(o.next().unwrap().1[0], 2);
    }

    #[test]
    fn empty_outbox_has_nothing_to_send() {
        let mut o = Outbox::new(3);
        assert!(o.next().is_none());
        o.ack(1); // nothing to forget
        assert_eq!((o.len(), o.dropped()), (0, 0));
    }

    #[test]
    fn ack_of_an_unknown_or_repeated_id_changes_nothing() {
        let mut o = Outbox::new(3);
        o.push(body(1));
        o.push(body(2));
        let (id, _) = o.next().unwrap();
        o.ack(id);
        o.ack(id);
        o.ack(99);
        assert_eq!(o.len(), 1);
        assert_eq!(o.next().unwrap().1[0], 1);
    }

    #[test]
    fn zero_capacity_keeps_only_the_newest() {
        let mut o = Outbox::new(0);
        o.push(body(1));
        o.push(body(2));
        assert_eq!(o.len(), 1);
        assert_eq!(o.dropped(), 1);
    }
}
