//! A conference's inbox as the router sees it ([`Route`]): the channel to its thread, the
//! backlog the thread reports, and the presences held back while the inbox is full
//! ([`HeldPresences`]).
//!
//! What counts against [`INBOX_CAPACITY`] is everything sent and not yet processed: the
//! channel's length plus the messages the conference keeps aside during a blocking wait
//! (it reports their number through its `Env`). So however long a wait lasts, the
//! conference never holds more than the capacity of participants' input.
//!
//! When the inbox is full:
//! - an IQ request or a conference request is refused (the caller answers
//!   `resource-constraint`);
//! - a presence is never refused: the latest presence per occupant (full `from` JID) is
//!   held, preceded by an `unavailable` one when the occupant left and came back meanwhile,
//!   so no leave is lost; held presences go to the conference as soon as there is room,
//!   in the order occupants were first held (each occupant's own presences stay in order).
//!   The holding is bounded (max participants + [`HOLD_SLACK`] occupants); past it an
//!   occupant whose held presences include no leave makes room.
//! - answers to the conference's own requests always go through: the pending table
//!   bounds them (256 per conference).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use super::limits::LogThrottle;
use crate::conference::env::INBOX_CAPACITY;
use crate::conference::Inbox;
use crate::xml::Element;

/// Occupants held beyond `--max_participants` (the focus, people leaving, nick changes).
pub const HOLD_SLACK: usize = 64;

/// What [`HeldPresences::hold`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    /// Held; nothing replaced.
    New,
    /// Held, replacing `n` older presences of the same occupant.
    Coalesced(usize),
    /// The holding was full: a presence was dropped (this one or another occupant's
    /// held update without a leave).
    Dropped,
}

#[derive(Debug, Default)]
struct Pending {
    leave: Option<Element>,
    latest: Option<Element>,
}

impl Pending {
    fn count(&self) -> usize {
        usize::from(self.leave.is_some()) + usize::from(self.latest.is_some())
    }
}

/// Presences held back per occupant while an inbox is full.
#[derive(Debug)]
pub struct HeldPresences {
    cap: usize,
    order: VecDeque<String>,
    by_from: HashMap<String, Pending>,
}

impl HeldPresences {
    /// Hold presences of at most `cap` occupants.
    pub fn new(cap: usize) -> HeldPresences {
        HeldPresences { cap: cap.max(1), order: VecDeque::new(), by_from: HashMap::new() }
    }

    /// Hold `p` (a presence).
    pub fn hold(&mut self, p: Element) -> Held {
        let from = p.get_attr("from").unwrap_or_default().to_string();
        let leave = p.get_attr("type") == Some("unavailable");
        if let Some(held) = self.by_from.get_mut(&from) {
            let before = held.count();
            if leave {
                // Leaving makes earlier updates (and an earlier leave) moot.
                *held = Pending { leave: Some(p), latest: None };
            } else {
                held.latest = Some(p);
            }
            return match before + 1 - held.count() {
                0 => Held::New,
                n => Held::Coalesced(n),
            };
        }
        let mut dropped = false;
        if self.by_from.len() >= self.cap {
            // Make room: the oldest occupant whose held presences include no leave.
            match self.order.iter().position(|f| self.by_from.get(f).is_some_and(|h| h.leave.is_none())) {
                Some(i) => {
                    let f = self.order.remove(i).expect("found above");
                    self.by_from.remove(&f);
                    dropped = true;
                }
                None => return Held::Dropped,
            }
        }
        let pending = if leave { Pending { leave: Some(p), latest: None } } else { Pending { leave: None, latest: Some(p) } };
        self.by_from.insert(from.clone(), pending);
        self.order.push_back(from);
        if dropped {
            Held::Dropped
        } else {
            Held::New
        }
    }

    /// The next presence to deliver.
    pub fn pop(&mut self) -> Option<Element> {
        let from = self.order.front()?.clone();
        let held = self.by_from.get_mut(&from).expect("order and map agree");
        if let Some(l) = held.leave.take() {
            if held.latest.is_none() {
                self.by_from.remove(&from);
                self.order.pop_front();
            }
            return Some(l);
        }
        let p = held.latest.take();
        self.by_from.remove(&from);
        self.order.pop_front();
        p
    }

    /// Presences held.
    pub fn len(&self) -> usize {
        self.by_from.values().map(Pending::count).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Everything held, in delivery order.
    pub fn drain(&mut self) -> Vec<Element> {
        std::iter::from_fn(|| self.pop()).collect()
    }
}

/// The router's side of one conference thread.
pub(crate) struct Route {
    pub id: u64,
    pub tx: Sender<Inbox>,
    pub rx: Receiver<Inbox>,
    pub handle: Option<JoinHandle<()>>,
    /// Messages the conference keeps aside during a blocking wait (it reports them).
    pub backlog: Arc<AtomicUsize>,
    pub held: HeldPresences,
    /// Refusals for a full inbox, logged once per interval.
    pub busy_log: LogThrottle,
}

/// What [`Route::offer`] did with a message.
#[derive(Debug)]
pub(crate) enum Offered {
    Delivered,
    Held(Held),
    /// Refused: the inbox is full (the caller answers the sender).
    Refused(Inbox),
}

impl Route {
    pub fn new(id: u64, tx: Sender<Inbox>, rx: Receiver<Inbox>, handle: Option<JoinHandle<()>>, backlog: Arc<AtomicUsize>, hold_cap: usize) -> Route {
        Route { id, tx, rx, handle, backlog, held: HeldPresences::new(hold_cap), busy_log: LogThrottle::default() }
    }

    /// Messages sent to the conference and not processed yet.
    pub fn queued(&self) -> usize {
        self.tx.len() + self.backlog.load(Ordering::Relaxed)
    }

    fn has_room(&self) -> bool {
        self.queued() < INBOX_CAPACITY
    }

    /// Send regardless of the capacity (answers to the conference's requests, and the
    /// router's own messages).
    pub fn push(&self, m: Inbox) {
        let _ = self.tx.try_send(m);
    }

    /// Move held presences to the conference while there is room; true when none is left.
    pub fn flush(&mut self) -> bool {
        while !self.held.is_empty() && self.has_room() {
            if let Some(p) = self.held.pop() {
                self.push(Inbox::Stanza(p));
            }
        }
        self.held.is_empty()
    }

    /// Send `m` within the capacity: presences are held when it is full, anything else
    /// is refused.
    pub fn offer(&mut self, m: Inbox) -> Offered {
        // Held presences go first, so each occupant's presences stay in order.
        if self.flush() && self.has_room() {
            self.push(m);
            return Offered::Delivered;
        }
        match m {
            Inbox::Stanza(p) if p.name == "presence" => Offered::Held(self.held.hold(p)),
            other => Offered::Refused(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::ns;

    fn presence(nick: &str, n: u32) -> Element {
        Element::new("presence", ns::CLIENT).attr("from", format!("r@conference.meet.test/{}", nick)).attr("id", n.to_string())
    }

    fn leave(nick: &str, n: u32) -> Element {
        presence(nick, n).attr("type", "unavailable")
    }

    fn ids(v: &[Element]) -> Vec<String> {
        v.iter().map(|e| format!("{}:{}", e.get_attr("from").unwrap().rsplit('/').next().unwrap(), e.get_attr("id").unwrap())).collect()
    }

    #[test]
    fn the_latest_presence_per_occupant_is_kept_and_no_leave_is_lost() {
        let mut h = HeldPresences::new(10);
        assert_eq!(h.hold(presence("a", 1)), Held::New);
        assert_eq!(h.hold(presence("b", 2)), Held::New);
        assert_eq!(h.hold(presence("a", 3)), Held::Coalesced(1));
        assert_eq!(h.hold(leave("b", 4)), Held::Coalesced(1));
        assert_eq!(h.hold(presence("b", 5)), Held::New, "kept after b's leave");
        assert_eq!(h.hold(presence("c", 6)), Held::New);
        assert_eq!(h.hold(leave("c", 7)), Held::Coalesced(1));
        assert_eq!(h.len(), 4);
        // Occupants in the order they were first held; b's leave before its return.
        assert_eq!(ids(&h.drain()), vec!["a:3", "b:4", "b:5", "c:7"]);
        assert!(h.is_empty());
    }

    #[test]
    fn a_flood_of_updates_from_one_occupant_is_one_presence() {
        let mut h = HeldPresences::new(10);
        h.hold(presence("victim", 0));
        for i in 1..100_000 {
            h.hold(presence("flooder", i));
        }
        h.hold(leave("victim", 100_000));
        assert_eq!(h.len(), 2);
        assert_eq!(ids(&h.drain()), vec!["victim:100000", "flooder:99999"]);
    }

    #[test]
    fn when_full_an_update_makes_room_never_a_leave() {
        let mut h = HeldPresences::new(3);
        h.hold(leave("a", 1));
        h.hold(presence("b", 2));
        h.hold(leave("c", 3));
        // A fourth occupant: b's update (no leave) makes room.
        assert_eq!(h.hold(leave("d", 4)), Held::Dropped);
        assert_eq!(ids(&h.drain()), vec!["a:1", "c:3", "d:4"]);
        // All leaves: the newcomer's presence is the one dropped.
        let mut h = HeldPresences::new(2);
        h.hold(leave("a", 1));
        h.hold(leave("b", 2));
        assert_eq!(h.hold(presence("c", 3)), Held::Dropped);
        assert_eq!(ids(&h.drain()), vec!["a:1", "b:2"]);
    }

    fn route(backlog: usize) -> (Route, Receiver<Inbox>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let r = Route::new(1, tx, rx.clone(), None, Arc::new(AtomicUsize::new(backlog)), 100);
        (r, rx)
    }

    fn iq_get(n: u32) -> Inbox {
        Inbox::Stanza(Element::new("iq", ns::CLIENT).attr("type", "get").attr("id", n.to_string()))
    }

    #[test]
    fn the_backlog_the_conference_reports_counts_against_the_capacity() {
        // The conference keeps INBOX_CAPACITY - 3 messages aside in a blocking wait.
        let (mut r, rx) = route(INBOX_CAPACITY - 3);
        for i in 0..3 {
            assert!(matches!(r.offer(Inbox::Stanza(presence(&format!("p{}", i), i))), Offered::Delivered));
        }
        assert!(matches!(r.offer(iq_get(1)), Offered::Refused(_)), "full: IQ requests are refused");
        assert!(matches!(r.offer(Inbox::Stanza(presence("late", 9))), Offered::Held(Held::New)), "presences are held");
        assert_eq!(rx.len(), 3);
        // The conference catches up: the held presence goes first, then new traffic.
        r.backlog.store(0, Ordering::Relaxed);
        assert!(matches!(r.offer(iq_get(2)), Offered::Delivered));
        let got: Vec<String> = rx
            .try_iter()
            .map(|m| match m {
                Inbox::Stanza(e) => e.get_attr("id").unwrap().to_string(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(got, vec!["0", "1", "2", "9", "2"]);
        // Answers are pushed regardless of the capacity.
        r.backlog.store(INBOX_CAPACITY, Ordering::Relaxed);
        r.push(iq_get(3));
        assert_eq!(r.queued(), INBOX_CAPACITY + 1);
    }
}
