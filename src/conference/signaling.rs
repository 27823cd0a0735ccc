//! Source signaling to the participants, as values: per receiver, the source changes not
//! yet sent (adds netted against removes of the same SSRCs) and when they are due.
//!
//! A receiver's queue is due [`signaling_window`] after its first queued change while
//! its session is active (a pending receiver's queue waits for its session-accept, then
//! goes at once), so a burst of joins costs one source-add per receiver, not one per
//! source. The conference sends what [`Signaling::take`] returns: a source-remove, then a
//! source-add. The queues are bounded by the conference's sources: at most one entry per
//! receiver with a session, holding at most the sources the conference accepted.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use crate::xmpp::jingle::sources::{ConferenceSources, EndpointSources};

/// The batching window of source signaling for a conference of `size` participants.
pub fn signaling_window(size: usize) -> Duration {
    match size {
        0..=9 => Duration::from_millis(20),
        10..=49 => Duration::from_millis(100),
        _ => Duration::from_millis(300),
    }
}

/// Source changes waiting to be signaled to one receiver.
#[derive(Debug, Default)]
pub struct PendingSignal {
    pub add: ConferenceSources,
    pub remove: ConferenceSources,
    due: Option<Instant>,
}

fn remove_ssrcs(set: &mut EndpointSources, ssrcs: &HashSet<u32>) {
    set.sources.retain(|s| !ssrcs.contains(&s.ssrc));
    set.groups.retain(|g| !g.ssrcs.iter().any(|x| ssrcs.contains(x)));
}

impl PendingSignal {
    fn queue_add(&mut self, owner: &str, delta: &EndpointSources) {
        let ssrcs: HashSet<u32> = delta.sources.iter().map(|s| s.ssrc).collect();
        // A removal of the same sources not yet signaled cancels out.
        let mut rem = self.remove.get(owner).cloned().unwrap_or_default();
        let before = rem.sources.len();
        remove_ssrcs(&mut rem, &ssrcs);
        let cancelled = before - rem.sources.len();
        self.remove.insert(owner, rem);
        if cancelled < ssrcs.len() {
            self.add.merge(&ConferenceSources::single(owner, delta.clone()));
        }
    }

    fn queue_remove(&mut self, owner: &str, removed: &EndpointSources) {
        let ssrcs: HashSet<u32> = removed.sources.iter().map(|s| s.ssrc).collect();
        let mut add = self.add.get(owner).cloned().unwrap_or_default();
        let pending: HashSet<u32> = add.sources.iter().map(|s| s.ssrc).filter(|s| ssrcs.contains(s)).collect();
        remove_ssrcs(&mut add, &pending);
        self.add.insert(owner, add);
        let mut rest = removed.clone();
        remove_ssrcs(&mut rest, &pending);
        if !rest.sources.is_empty() {
            self.remove.merge(&ConferenceSources::single(owner, rest));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }
}

/// The queues of every receiver.
#[derive(Debug, Default)]
pub struct Signaling {
    queues: BTreeMap<String, PendingSignal>,
}

impl Signaling {
    /// Queue `owner`'s change (`add` or remove `delta`) for `receivers` (`(nick, active)`),
    /// due `window` after `now` for active receivers whose queue was not due yet.
    pub fn queue<'a>(
        &mut self,
        owner: &str,
        delta: &EndpointSources,
        add: bool,
        receivers: impl Iterator<Item = (&'a str, bool)>,
        now: Instant,
        window: Duration,
    ) {
        if delta.sources.is_empty() {
            return;
        }
        for (r, active) in receivers {
            let sig = self.queues.entry(r.to_string()).or_default();
            if add {
                sig.queue_add(owner, delta);
            } else {
                sig.queue_remove(owner, delta);
            }
            if active && sig.due.is_none() {
                sig.due = Some(now + window);
            }
        }
    }

    /// The earliest time a queue is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.queues.values().filter_map(|s| s.due).min()
    }

    /// Receivers whose queue is due at `now`, in nick order.
    pub fn due(&self, now: Instant) -> Vec<String> {
        self.queues.iter().filter(|(_, s)| s.due.is_some_and(|t| now >= t)).map(|(k, _)| k.clone()).collect()
    }

    /// `nick`'s queue is due at `now` (its session was just accepted).
    pub fn due_now(&mut self, nick: &str, now: Instant) {
        if let Some(s) = self.queues.get_mut(nick) {
            s.due = Some(now);
        }
    }

    /// `nick`'s session is not active: its queue waits (not due).
    pub fn hold(&mut self, nick: &str) {
        if let Some(s) = self.queues.get_mut(nick) {
            s.due = None;
        }
    }

    /// `nick`'s queue, to send now (or because its new offer carries everything).
    pub fn take(&mut self, nick: &str) -> Option<PendingSignal> {
        self.queues.remove(nick)
    }

    /// Forget `owner`'s sources in every queue (clients drop them on its leave).
    pub fn forget_owner(&mut self, owner: &str) {
        for sig in self.queues.values_mut() {
            sig.add.remove_owner(owner);
            sig.remove.remove_owner(owner);
        }
    }

    pub fn clear(&mut self) {
        self.queues.clear();
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

    #[test]
    fn changes_are_batched_per_receiver_and_due_after_the_window() {
        let t0 = Instant::now();
        let w = signaling_window(3);
        assert_eq!(w, Duration::from_millis(20));
        assert_eq!((signaling_window(10), signaling_window(50)), (Duration::from_millis(100), Duration::from_millis(300)));
        let mut s = Signaling::default();
        s.queue("a", &set(&[1]), true, [("b", true), ("c", false)].into_iter(), t0, w);
        s.queue("d", &set(&[4]), true, [("b", true), ("c", false)].into_iter(), t0 + w / 2, w);
        assert_eq!(s.next_due(), Some(t0 + w), "the first change sets the time");
        assert!(s.due(t0 + w / 2).is_empty());
        assert_eq!(s.due(t0 + w), vec!["b"], "c is pending: not due");
        let b = s.take("b").unwrap();
        assert_eq!((ssrcs(&b.add, "a"), ssrcs(&b.add, "d")), (vec![1], vec![4]), "one batch");
        // c's session is accepted: its queue goes at once.
        s.due_now("c", t0 + w * 3);
        assert_eq!(s.due(t0 + w * 3), vec!["c"]);
        s.hold("c");
        assert!(s.due(t0 + w * 4).is_empty());
        // Nothing to signal, nothing queued.
        s.queue("a", &EndpointSources::new(), true, [("e", true)].into_iter(), t0, w);
        assert!(s.take("e").is_none());
    }

    #[test]
    fn an_add_and_a_remove_of_the_same_sources_cancel_out() {
        let t0 = Instant::now();
        let w = signaling_window(2);
        let mut s = Signaling::default();
        s.queue("a", &set(&[1, 2]), true, [("b", true)].into_iter(), t0, w);
        s.queue("a", &set(&[1]), false, [("b", true)].into_iter(), t0, w);
        let b = s.take("b").unwrap();
        assert_eq!(ssrcs(&b.add, "a"), vec![2]);
        assert!(b.remove.is_empty(), "a source added and removed unseen is not signaled at all");
        // Remove then add back: the removal is cancelled.
        s.queue("a", &set(&[3]), false, [("b", true)].into_iter(), t0, w);
        s.queue("a", &set(&[3]), true, [("b", true)].into_iter(), t0, w);
        assert!(s.take("b").unwrap().is_empty());
        // An owner that left is forgotten in every queue.
        s.queue("a", &set(&[5]), true, [("b", true), ("c", true)].into_iter(), t0, w);
        s.forget_owner("a");
        assert!(s.take("b").unwrap().is_empty() && s.take("c").unwrap().is_empty());
    }
}
