//! Source signaling to the participants, as values: per receiver (in its Jingle
//! session, [`super::participant::Session`]), the source changes not yet sent (adds netted
//! against removes of the same SSRCs) and when they are due.
//!
//! A receiver's queue is due [`signaling_window`] after its first queued change while
//! its session is active (a pending receiver's queue waits for its session-accept, then
//! goes at once), so a burst of joins costs one source-add per receiver, not one per
//! source. The conference sends what [`PendingSignal::take`] returns: a source-remove, then a
//! source-add. The queues are bounded by the conference's sources: one per session,
//! holding at most the sources the conference accepted; a new session starts empty (its
//! offer carries everything known).
//!
//! A change queued for many receivers is one shared entry (with its cached wire
//! encodings, `xmpp::jingle::encoded`) in each queue that had nothing from that owner
//! yet, so a join in a room of 500 is encoded once, not once per receiver.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::ids::Nick;
use crate::xmpp::jingle::sources::{ConferenceSources, EndpointSources};

/// The batching window of source signaling for a conference of `size` participants.
pub fn signaling_window(size: usize) -> Duration {
    match size {
        0..=9 => Duration::from_millis(20),
        10..=49 => Duration::from_millis(100),
        _ => Duration::from_millis(300),
    }
}

/// Source changes waiting to be signaled to one receiver, and when they are due.
#[derive(Debug, Default, Clone)]
pub struct PendingSignal {
    /// Sources to announce (source-add).
    pub add: ConferenceSources,
    /// Sources to retract (source-remove).
    pub remove: ConferenceSources,
    due: Option<Instant>,
}

fn remove_ssrcs(set: &mut EndpointSources, ssrcs: &HashSet<u32>) {
    set.sources.retain(|s| !ssrcs.contains(&s.ssrc));
    set.groups.retain(|g| !g.ssrcs.iter().any(|x| ssrcs.contains(x)));
}

impl PendingSignal {
    /// Queue `owner`'s change (`add` or remove `delta`; `shared`: the same change as a map
    /// holding only it, one for all receivers so that it is encoded once), due `window`
    /// after `now` when the receiver's session is `active` and nothing was due yet.
    #[allow(clippy::too_many_arguments)]
    pub fn queue(&mut self, owner: &Nick, delta: &EndpointSources, shared: &ConferenceSources, add: bool, active: bool, now: Instant, window: Duration) {
        if delta.sources.is_empty() {
            return;
        }
        if add {
            self.queue_add(owner, delta, shared);
        } else {
            self.queue_remove(owner, delta, shared);
        }
        if active && self.due.is_none() {
            self.due = Some(now + window);
        }
    }

    fn queue_add(&mut self, owner: &Nick, delta: &EndpointSources, shared: &ConferenceSources) {
        let ssrcs: HashSet<u32> = delta.sources.iter().map(|s| s.ssrc).collect();
        // A removal of the same sources not yet signaled cancels out.
        let mut cancelled = 0;
        if let Some(mut rem) = self.remove.get(owner).cloned() {
            let before = rem.sources.len();
            remove_ssrcs(&mut rem, &ssrcs);
            cancelled = before - rem.sources.len();
            self.remove.insert(owner, rem);
        }
        if cancelled < ssrcs.len() {
            self.add.merge(shared);
        }
    }

    fn queue_remove(&mut self, owner: &Nick, removed: &EndpointSources, shared: &ConferenceSources) {
        let ssrcs: HashSet<u32> = removed.sources.iter().map(|s| s.ssrc).collect();
        let mut pending: HashSet<u32> = HashSet::new();
        if let Some(mut add) = self.add.get(owner).cloned() {
            pending = add.sources.iter().map(|s| s.ssrc).filter(|s| ssrcs.contains(s)).collect();
            if !pending.is_empty() {
                remove_ssrcs(&mut add, &pending);
                self.add.insert(owner, add);
            }
        }
        if pending.is_empty() {
            self.remove.merge(shared);
            return;
        }
        let mut rest = removed.clone();
        remove_ssrcs(&mut rest, &pending);
        if !rest.sources.is_empty() {
            self.remove.merge(&ConferenceSources::single(owner, rest));
        }
    }

    /// Nothing to signal.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }

    /// When the queue is due (`None`: nothing due, or the session is not active yet).
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// Is the queue due at `now`?
    pub fn is_due(&self, now: Instant) -> bool {
        self.due.is_some_and(|t| now >= t)
    }

    /// Everything queued, to send now; the queue is left empty and not due.
    pub fn take(&mut self) -> PendingSignal {
        std::mem::take(self)
    }

    /// Forget `owner`'s sources (clients drop them on its leave).
    pub fn forget_owner(&mut self, owner: &Nick) {
        self.add.remove_owner(owner);
        self.remove.remove_owner(owner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xmpp::jingle::sources::{MediaType, Source};

    fn set(ssrcs: &[u32]) -> EndpointSources {
        let mut s = EndpointSources::new();
        s.sources = ssrcs.iter().map(|x| Source::new(*x, MediaType::Audio)).collect();
        s
    }

    fn ssrcs(c: &ConferenceSources, owner: &str) -> Vec<u32> {
        c.get(owner).map(|s| s.sources.iter().map(|x| x.ssrc).collect()).unwrap_or_default()
    }

    fn n(s: &str) -> Nick {
        Nick::from(s)
    }

    /// Queue a change as the conference does: one shared map per change.
    fn queue(q: &mut PendingSignal, owner: &Nick, delta: &EndpointSources, add: bool, active: bool, now: Instant, w: Duration) {
        q.queue(owner, delta, &ConferenceSources::single(owner, delta.clone()), add, active, now, w);
    }

    /// A change queued for many receivers is one entry in all their queues (encoded once
    /// for all of them), unless a receiver's queue already had something of that owner.
    #[test]
    fn a_change_queued_for_many_receivers_is_one_shared_entry() {
        let t0 = Instant::now();
        let w = signaling_window(500);
        let a = n("a");
        let change = set(&[1, 2]);
        let shared = ConferenceSources::single(&a, change.clone());
        let mut queues: Vec<PendingSignal> = (0..500).map(|_| PendingSignal::default()).collect();
        let mut y = PendingSignal::default();
        queue(&mut y, &a, &set(&[7]), true, true, t0, w);
        for q in queues.iter_mut().chain(std::iter::once(&mut y)) {
            q.queue(&a, &change, &shared, true, true, t0, w);
        }
        let first = queues[0].take();
        for q in &mut queues[1..] {
            assert!(q.take().add.shares_entry(&first.add, &a));
        }
        // y had something of a's before: merged into an entry of its own.
        let y = y.take();
        assert_eq!(ssrcs(&y.add, "a"), vec![7, 1, 2]);
        assert!(!y.add.shares_entry(&first.add, &a));
        // A removal netted against a queued add is a receiver's own entry.
        let (mut x, mut v) = (PendingSignal::default(), PendingSignal::default());
        queue(&mut x, &a, &set(&[3]), true, true, t0, w);
        queue(&mut x, &a, &set(&[3]), false, true, t0, w);
        queue(&mut v, &a, &set(&[3]), false, true, t0, w);
        assert!(x.take().is_empty());
        assert_eq!(ssrcs(&v.take().remove, "a"), vec![3]);
    }

    #[test]
    fn changes_are_batched_per_receiver_and_due_after_the_window() {
        let t0 = Instant::now();
        let w = signaling_window(3);
        assert_eq!(w, Duration::from_millis(20));
        assert_eq!((signaling_window(10), signaling_window(50)), (Duration::from_millis(100), Duration::from_millis(300)));
        // b's session is active, c's is offered (pending).
        let (mut b, mut c) = (PendingSignal::default(), PendingSignal::default());
        for (q, active) in [(&mut b, true), (&mut c, false)] {
            queue(q, &n("a"), &set(&[1]), true, active, t0, w);
            queue(q, &n("d"), &set(&[4]), true, active, t0 + w / 2, w);
        }
        assert_eq!(b.due(), Some(t0 + w), "the first change sets the time");
        assert!(!b.is_due(t0 + w / 2));
        assert!(b.is_due(t0 + w));
        assert!(!c.is_due(t0 + w * 4), "c is pending: not due");
        let sent = b.take();
        assert_eq!((ssrcs(&sent.add, "a"), ssrcs(&sent.add, "d")), (vec![1], vec![4]), "one batch");
        assert!(b.is_empty() && b.due().is_none());
        // c's session is accepted: its queue goes at once, all of it.
        let sent = c.take();
        assert_eq!((ssrcs(&sent.add, "a"), ssrcs(&sent.add, "d")), (vec![1], vec![4]));
        // Nothing to signal, nothing queued.
        let mut e = PendingSignal::default();
        queue(&mut e, &n("a"), &EndpointSources::new(), true, true, t0, w);
        assert!(e.is_empty() && e.due().is_none());
    }

    #[test]
    fn an_add_and_a_remove_of_the_same_sources_cancel_out() {
        let t0 = Instant::now();
        let w = signaling_window(2);
        let mut b = PendingSignal::default();
        queue(&mut b, &n("a"), &set(&[1, 2]), true, true, t0, w);
        queue(&mut b, &n("a"), &set(&[1]), false, true, t0, w);
        let sent = b.take();
        assert_eq!(ssrcs(&sent.add, "a"), vec![2]);
        assert!(sent.remove.is_empty(), "a source added and removed unseen is not signaled at all");
        // Remove then add back: the removal is cancelled.
        queue(&mut b, &n("a"), &set(&[3]), false, true, t0, w);
        queue(&mut b, &n("a"), &set(&[3]), true, true, t0, w);
        assert!(b.take().is_empty());
        // An owner that left is forgotten.
        let mut c = PendingSignal::default();
        queue(&mut b, &n("a"), &set(&[5]), true, true, t0, w);
        queue(&mut c, &n("a"), &set(&[5]), true, true, t0, w);
        b.forget_owner(&n("a"));
        c.forget_owner(&n("a"));
        assert!(b.take().is_empty() && c.take().is_empty());
    }
}
