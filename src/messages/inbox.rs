//! A conference's inbox as the router sees it ([`Route`]): the channel to its thread, the
//! load the thread reports ([`InboxLoad`](crate::messages::InboxLoad)), and the presences held back while the inbox
//! is full ([`HeldPresences`]).
//!
//! What counts against the inbox's limits is everything sent and not yet processed: what
//! is in the channel plus the messages the conference keeps aside during a blocking wait
//! (it reports them through its `Env`). So however long a wait lasts, the conference never
//! holds more than that of participants' input. The limits are in messages
//! ([`INBOX_CAPACITY`](crate::messages::INBOX_CAPACITY)) and in bytes, because a message's size varies a thousandfold: a
//! parsed stanza may hold up to about 1.3 MB (8192 XML nodes, `xml::parse::MAX_NODES`),
//! so 4096 of them could hold 5 GB. The router weighs each message
//! (`Element::weight`, within a few percent of its heap) when it sends it and the
//! conference thread subtracts the weight when it takes it (adding back what it keeps
//! aside):
//! - one conference holds at most [`INBOX_BYTES`] (8 MiB: about 400 real stanzas of
//!   ~20 KB, or 6 at the node cap);
//! - all conferences together hold at most [`TOTAL_INBOX_BYTES`] (256 MiB), except that a
//!   conference below [`INBOX_FLOOR`] (256 KiB) always takes a message that keeps it
//!   below, so a flood in other rooms cannot starve a quiet conference.
//!
//! Worst case of queued input: 256 MiB + 256 KiB per conference (with the default 1000
//! conferences, 506 MiB), plus the held presences below (two slim presences of at most
//! 12 KB per occupant held) and answers to the conferences' own requests (at most 256
//! outstanding per conference, never refused, but weighed too). Over a byte limit counts
//! as a full inbox. (Conference requests the conference takes while the focus joins its
//! room wait outside the inbox, as slim copies: `xmpp::conference_iq::slim_request`.)
//!
//! When the inbox is full:
//! - an IQ request or a conference request is refused (the caller answers
//!   `resource-constraint`);
//! - a presence is never refused: the latest presence per occupant (full `from` JID) is
//!   held, preceded by an `unavailable` one when the occupant left and came back meanwhile,
//!   so no leave is lost; a held presence keeps only what the conference reads from it
//!   (`xmpp::presence::Presence::slim`: at most 12 KB, whatever was sent); held presences go to the
//!   conference as soon as there is room, in the order occupants were first held (each
//!   occupant's own presences stay in order).
//!   The holding is bounded (max participants + [`HOLD_SLACK`] occupants); past it an
//!   occupant whose held presences include no leave makes room.
//! - answers to the conference's own requests always go through: the pending table
//!   bounds them (256 per conference).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use crate::ids::ConferenceId;
use crate::messages::{ComponentMessage, Inbox, InboxLoad, INBOX_CAPACITY};
use crate::log_throttle::LogThrottle;
use crate::xmpp::incoming::Incoming;
use crate::xmpp::presence::Presence;

/// Occupants held beyond `--max_participants` (the focus, people leaving, nick changes).
pub const HOLD_SLACK: usize = 64;
/// Bytes (estimated) one conference's inbox holds at most.
pub const INBOX_BYTES: usize = 8 << 20;
/// Bytes (estimated) all conference inboxes together hold at most…
pub const TOTAL_INBOX_BYTES: usize = 256 << 20;
/// …except that a conference holding less than this always takes a message that keeps it below.
pub const INBOX_FLOOR: usize = 256 << 10;

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
    leave: Option<Presence>,
    latest: Option<Presence>,
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

    /// Hold `p` (a presence), slimmed to what the conference reads from it
    /// ([`Presence::slim`]).
    pub fn hold(&mut self, p: impl Into<Presence>) -> Held {
        let p = p.into().slim();
        let from = p.from.clone().unwrap_or_default();
        let leave = p.is_unavailable();
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

    /// The next presence to deliver, left in place.
    pub fn peek(&self) -> Option<&Presence> {
        let held = self.by_from.get(self.order.front()?)?;
        held.leave.as_ref().or(held.latest.as_ref())
    }

    /// The next presence to deliver.
    pub fn pop(&mut self) -> Option<Presence> {
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

    /// True when no presence is held.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Everything held, in delivery order.
    pub fn drain(&mut self) -> Vec<Presence> {
        std::iter::from_fn(|| self.pop()).collect()
    }
}

/// Component messages held at most per conference (after coalescing there are at most
/// a handful: one enable/disable per media type, the whitelists, the metadata).
pub const HELD_COMPONENT_MESSAGES: usize = 16;

/// Jitsi component messages (AV moderation, room metadata) held back while an inbox is
/// full, in order. Each states complete values, so a later one makes earlier ones moot:
/// an enable/disable of a media type replaces an earlier one of that type that said
/// nothing else, whitelists replace earlier whitelist-only messages of the same types,
/// room metadata replaces earlier metadata. Nothing that still matters is dropped unless
/// [`HELD_COMPONENT_MESSAGES`] distinct messages wait.
#[derive(Debug, Default)]
pub struct HeldComponents {
    msgs: VecDeque<ComponentMessage>,
}

impl HeldComponents {
    /// Hold `m`.
    pub fn hold(&mut self, m: ComponentMessage) -> Held {
        let before = self.msgs.len();
        self.msgs.retain(|old| !made_moot(old, &m));
        let coalesced = before - self.msgs.len();
        let dropped = self.msgs.len() >= HELD_COMPONENT_MESSAGES;
        if dropped {
            self.msgs.pop_front();
        }
        self.msgs.push_back(m);
        match (dropped, coalesced) {
            (true, _) => Held::Dropped,
            (false, 0) => Held::New,
            (false, n) => Held::Coalesced(n),
        }
    }

    /// The next message to deliver, left in place.
    pub fn peek(&self) -> Option<&ComponentMessage> {
        self.msgs.front()
    }

    /// The next message to deliver.
    pub fn pop(&mut self) -> Option<ComponentMessage> {
        self.msgs.pop_front()
    }

    /// Messages held.
    pub fn len(&self) -> usize {
        self.msgs.len()
    }

    /// Nothing held.
    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }
}

/// Does `new` make `old` moot (everything `old` says, `new` says again)?
fn made_moot(old: &ComponentMessage, new: &ComponentMessage) -> bool {
    match (old, new) {
        // Metadata is complete each time, except that an absent startMuted keeps the
        // value before.
        (ComponentMessage::RoomMetadata(o), ComponentMessage::RoomMetadata(n)) => {
            (o.start_muted_audio.is_none() || n.start_muted_audio.is_some()) && (o.start_muted_video.is_none() || n.start_muted_video.is_some())
        }
        (ComponentMessage::AvModeration(o), ComponentMessage::AvModeration(n)) => {
            let enable_only = |m: &crate::xmpp::av_moderation::AvModerationMessage| m.whitelists.is_empty() && m.enabled.is_some();
            let lists_only = |m: &crate::xmpp::av_moderation::AvModerationMessage| m.enabled.is_none() && !m.whitelists.is_empty();
            (enable_only(o) && n.enabled.is_some() && o.media_type == n.media_type)
                || (lists_only(o) && o.whitelists.iter().all(|(t, _)| n.whitelists.iter().any(|(u, _)| u == t)))
        }
        _ => false,
    }
}

/// The weight of a held presence once it is a message for the conference (what
/// [`Inbox::weight`] says of it).
fn held_weight(p: &Presence) -> usize {
    std::mem::size_of::<Inbox>() + std::mem::size_of::<Incoming>() + p.weight()
}

/// The byte limits of an inbox (the constants above; tests use smaller ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Budget {
    pub per_conference: usize,
    pub total: usize,
    pub floor: usize,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget { per_conference: INBOX_BYTES, total: TOTAL_INBOX_BYTES, floor: INBOX_FLOOR }
    }
}

/// The router's side of one conference thread.
pub(crate) struct Route {
    pub id: ConferenceId,
    pub tx: Sender<Inbox>,
    pub rx: Receiver<Inbox>,
    pub handle: Option<JoinHandle<()>>,
    /// What waits for the conference, in messages kept aside and in bytes.
    pub load: Arc<InboxLoad>,
    pub held: HeldPresences,
    /// Component messages held while the inbox is full.
    pub held_components: HeldComponents,
    /// Refusals for a full inbox, logged once per interval.
    pub busy_log: LogThrottle,
    pub budget: Budget,
    /// The conference's thread, woken (unparked) after every message sent to it: it
    /// waits for its inbox by parking (`conference::env::ThreadEnv`), which costs no
    /// spinning while it is empty.
    waker: Option<std::thread::Thread>,
}

impl Drop for Route {
    /// The inbox closes (its sender is dropped here, before the thread is woken to see it).
    fn drop(&mut self) {
        let (closed, _) = crossbeam_channel::unbounded();
        drop(std::mem::replace(&mut self.tx, closed));
        if let Some(t) = &self.waker {
            t.unpark();
        }
    }
}

/// What [`Route::offer`] did with a message.
#[derive(Debug)]
pub(crate) enum Offered {
    Delivered,
    Held(Held),
    /// A component message held (see [`HeldComponents`]).
    HeldComponent(Held),
    /// Refused: the inbox is full (the caller answers the sender).
    Refused(Inbox),
}

impl Route {
    pub fn new(id: ConferenceId, tx: Sender<Inbox>, rx: Receiver<Inbox>, handle: Option<JoinHandle<()>>, load: Arc<InboxLoad>, hold_cap: usize) -> Route {
        let waker = handle.as_ref().map(|h| h.thread().clone());
        Route {
            id,
            tx,
            rx,
            handle,
            load,
            held: HeldPresences::new(hold_cap),
            held_components: HeldComponents::default(),
            busy_log: LogThrottle::default(),
            budget: Budget::default(),
            waker,
        }
    }

    /// Messages sent to the conference and not processed yet.
    pub fn queued(&self) -> usize {
        self.tx.len() + self.load.backlog()
    }

    /// Is there room for one more message of `w` bytes? (See the module docs.)
    fn has_room(&self, w: usize) -> bool {
        if self.queued() >= INBOX_CAPACITY {
            return false;
        }
        let b = self.budget;
        let mine = self.load.bytes() + w;
        mine <= b.per_conference && (mine <= b.floor || self.load.total() + w <= b.total)
    }

    /// Send regardless of the limits (answers to the conference's requests, and the
    /// router's own messages); weighed all the same.
    pub fn push(&self, m: Inbox) {
        self.push_weighed(m.weight(), m);
    }

    fn push_weighed(&self, w: usize, m: Inbox) {
        self.load.sent(w);
        if self.tx.try_send(m).is_err() {
            self.load.taken(w);
        } else if let Some(t) = &self.waker {
            t.unpark();
        }
    }

    /// Move held presences, then held component messages, to the conference while there
    /// is room; true when nothing is left.
    pub fn flush(&mut self) -> bool {
        while let Some(w) = self.held.peek().map(held_weight) {
            if !self.has_room(w) {
                return false;
            }
            if let Some(p) = self.held.pop() {
                let m = Inbox::Stanza(Incoming::Presence(Box::new(p)));
                self.push_weighed(m.weight(), m);
            }
        }
        while let Some(w) = self.held_components.peek().map(|m| Inbox::Component(m.clone()).weight()) {
            if !self.has_room(w) {
                return false;
            }
            if let Some(m) = self.held_components.pop() {
                self.push_weighed(w, Inbox::Component(m));
            }
        }
        true
    }

    /// Send `m` within the limits: presences and component messages are held when it is
    /// full, anything else is refused.
    pub fn offer(&mut self, m: Inbox) -> Offered {
        let w = m.weight();
        // Held presences go first, so each occupant's presences stay in order.
        if self.flush() && self.has_room(w) {
            self.push_weighed(w, m);
            return Offered::Delivered;
        }
        match m {
            Inbox::Stanza(Incoming::Presence(p)) => Offered::Held(self.held.hold(*p)),
            Inbox::Component(c) => Offered::HeldComponent(self.held_components.hold(c)),
            other => Offered::Refused(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xmpp::av_moderation::{AvModerationMessage, MediaType};
    use crate::xml::Element;
    use crate::xmpp::ns;
    use crate::xmpp::room_metadata::RoomMetadata;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn presence(nick: &str, n: u32) -> Element {
        Element::new("presence", ns::CLIENT).attr("from", format!("r@conference.meet.test/{}", nick)).attr("id", n.to_string())
    }

    fn leave(nick: &str, n: u32) -> Element {
        presence(nick, n).attr("type", "unavailable")
    }

    fn ids(v: &[Presence]) -> Vec<String> {
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
        let load = Arc::new(InboxLoad::new(Arc::default()));
        load.report_backlog(backlog, 0);
        let r = Route::new(ConferenceId(1), tx, rx.clone(), None, load, 100);
        (r, rx)
    }

    fn iq_get(n: u32) -> Inbox {
        Inbox::stanza(Element::new("iq", ns::CLIENT).attr("type", "get").attr("id", n.to_string()))
    }

    /// An IQ from `nick` with `n` empty child elements (parsed, it weighs ~160 bytes each).
    fn heavy_iq(nick: &str, n: usize) -> Inbox {
        Inbox::stanza(
            Element::new("iq", ns::CLIENT)
                .attr("type", "set")
                .attr("id", format!("{}-{}", nick, n))
                .attr("from", format!("r@conference.meet.test/{}", nick))
                .children((0..n).map(|_| Element::new("a", ns::CLIENT))),
        )
    }

    #[test]
    fn a_few_heavy_stanzas_fill_an_inbox_by_bytes() {
        // Stanzas at the parser's node cap weigh ~1.3 MB: an 8 MiB inbox takes 6, not 4096.
        let (mut r, rx) = route(0);
        let heavy = heavy_iq("mallory", 8000);
        let w = heavy.weight();
        assert!(w > 1 << 20, "{w}");
        let mut delivered = 0;
        for _ in 0..50 {
            match r.offer(heavy_iq("mallory", 8000)) {
                Offered::Delivered => delivered += 1,
                Offered::Refused(_) => {}
                other => panic!("{:?}", other),
            }
        }
        assert_eq!(delivered, INBOX_BYTES / w);
        assert!(r.load.bytes() <= INBOX_BYTES && r.load.bytes() > INBOX_BYTES - w);
        assert_eq!(r.load.total(), r.load.bytes());
        // What is left takes lighter stanzas, until the bytes run out (far below 4096).
        let mut light = 0;
        while matches!(r.offer(heavy_iq("mallory", 100)), Offered::Delivered) {
            light += 1;
        }
        assert!(light > 0 && delivered + light < 200, "{light}");
        // Full by bytes counts as full: presences are held (slim), requests refused.
        let mut i = 0;
        while matches!(r.offer(Inbox::stanza(presence(&format!("p{i}"), i))), Offered::Delivered) {
            i += 1;
        }
        assert!(i < 100, "{i} presences still fitted");
        assert_eq!(r.held.len(), 1);
        assert!(matches!(r.offer(Inbox::stanza(presence("alice", 1))), Offered::Held(Held::New)));
        assert!(matches!(r.offer(iq_get(1)), Offered::Refused(_)));
        // The conference takes what is queued: room again, held presences first.
        for m in rx.try_iter().collect::<Vec<_>>() {
            r.load.taken(m.weight());
        }
        assert_eq!((r.load.bytes(), r.load.total()), (0, 0));
        assert!(matches!(r.offer(iq_get(2)), Offered::Delivered));
        let ids: Vec<String> = rx.try_iter().map(|m| match m {
            Inbox::Stanza(e) => e.get_attr("id").unwrap().to_string(),
            other => panic!("{:?}", other),
        }).collect();
        assert_eq!(ids, vec![i.to_string(), "1".to_string(), "2".to_string()]);
    }

    #[test]
    fn the_total_over_every_inbox_is_bounded_but_a_quiet_conference_is_not_starved() {
        let total: Arc<AtomicUsize> = Arc::default();
        let budget = Budget { per_conference: 8 << 20, total: 4 << 20, floor: 64 << 10 };
        let mk = |id: u64| {
            let (tx, rx) = crossbeam_channel::unbounded();
            let mut r = Route::new(ConferenceId(id), tx, rx.clone(), None, Arc::new(InboxLoad::new(total.clone())), 100);
            r.budget = budget;
            (r, rx)
        };
        let (mut flooded, _rx1) = mk(1);
        let (mut quiet, rx2) = mk(2);
        let heavy = heavy_iq("m", 2000).weight();
        let mut n = 0;
        while matches!(flooded.offer(heavy_iq("m", 2000)), Offered::Delivered) {
            n += 1;
        }
        assert_eq!(n, (4 << 20) / heavy, "stopped by the total, not by its own 8 MiB");
        assert!(total.load(Ordering::Relaxed) <= 4 << 20);
        // The quiet conference still takes ordinary traffic (below the floor)…
        for i in 0..10 {
            assert!(matches!(quiet.offer(iq_get(i)), Offered::Delivered));
        }
        // …but not a heavy stanza that would take it past the floor while the total is spent.
        assert!(matches!(quiet.offer(heavy_iq("q", 2000)), Offered::Refused(_)));
        assert_eq!(rx2.len(), 10);
        // A conference that ends gives its share back.
        flooded.load.release();
        assert_eq!(total.load(Ordering::Relaxed), quiet.load.bytes());
        assert!(matches!(quiet.offer(heavy_iq("q", 2000)), Offered::Delivered));
    }

    #[test]
    fn held_presences_are_slim() {
        let (mut r, _rx) = route(INBOX_CAPACITY);
        let fat = presence("fat", 1)
            .child(Element::new("stats-id", ns::CLIENT).text("Fat-1"))
            .child(Element::new("junk", "urn:junk").children((0..8000).map(|_| Element::new("a", "urn:junk"))));
        assert!(fat.weight() > 1 << 20);
        assert!(matches!(r.offer(Inbox::stanza(fat)), Offered::Held(Held::New)));
        let held = r.held.peek().unwrap();
        assert!(held.weight() < 2048, "{}", held.weight());
        assert_eq!(held.occupant.as_ref().unwrap().stats_id.as_deref(), Some("Fat-1"));
    }

    #[test]
    fn the_backlog_the_conference_reports_counts_against_the_capacity() {
        // The conference keeps INBOX_CAPACITY - 3 messages aside in a blocking wait.
        let (mut r, rx) = route(INBOX_CAPACITY - 3);
        for i in 0..3 {
            assert!(matches!(r.offer(Inbox::stanza(presence(&format!("p{}", i), i))), Offered::Delivered));
        }
        assert!(matches!(r.offer(iq_get(1)), Offered::Refused(_)), "full: IQ requests are refused");
        assert!(matches!(r.offer(Inbox::stanza(presence("late", 9))), Offered::Held(Held::New)), "presences are held");
        assert_eq!(rx.len(), 3);
        // The conference catches up: the held presence goes first, then new traffic.
        r.load.report_backlog(0, 0);
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
        r.load.report_backlog(INBOX_CAPACITY, 0);
        r.push(iq_get(3));
        assert_eq!(r.queued(), INBOX_CAPACITY + 1);
    }

    fn av(media: MediaType, enabled: Option<bool>, lists: &[MediaType]) -> ComponentMessage {
        ComponentMessage::AvModeration(AvModerationMessage {
            room: crate::jid::Jid::parse("r@conference.meet.test").unwrap(),
            enabled,
            media_type: enabled.map(|_| media),
            actor: None,
            whitelists: lists.iter().map(|t| (*t, vec!["x@meet.test".to_string()])).collect(),
        })
    }

    fn metadata(start_audio: Option<bool>) -> ComponentMessage {
        ComponentMessage::RoomMetadata(RoomMetadata { start_muted_audio: start_audio, ..Default::default() })
    }

    #[test]
    fn held_component_messages_keep_what_still_matters_in_order() {
        use MediaType::{Audio, Video};
        let mut h = HeldComponents::default();
        assert_eq!(h.hold(av(Audio, Some(true), &[])), Held::New);
        assert_eq!(h.hold(av(Video, Some(true), &[])), Held::New);
        assert_eq!(h.hold(av(Audio, None, &[Audio])), Held::New);
        // Disabling audio makes the earlier audio enable moot, not the video one or the list.
        assert_eq!(h.hold(av(Audio, Some(false), &[])), Held::Coalesced(1));
        // New lists for audio and video replace the earlier audio list.
        assert_eq!(h.hold(av(Audio, None, &[Audio, Video])), Held::Coalesced(1));
        // Metadata: startMuted set, then metadata without it: both are kept; with it, replaced.
        assert_eq!(h.hold(metadata(Some(true))), Held::New);
        assert_eq!(h.hold(metadata(None)), Held::New);
        assert_eq!(h.hold(metadata(Some(false))), Held::Coalesced(2));
        let kinds: Vec<String> = std::iter::from_fn(|| h.pop())
            .map(|m| match m {
                ComponentMessage::AvModeration(a) => format!("{:?}/{:?}/{}", a.media_type, a.enabled, a.whitelists.len()),
                ComponentMessage::RoomMetadata(md) => format!("md/{:?}", md.start_muted_audio),
            })
            .collect();
        assert_eq!(kinds, vec!["Some(Video)/Some(true)/0", "Some(Audio)/Some(false)/0", "None/None/2", "md/Some(false)"]);
    }

    #[test]
    fn held_component_messages_are_bounded() {
        // Messages that both switch a type and carry lists never make each other moot:
        // past the cap the oldest goes.
        let mut h = HeldComponents::default();
        for _ in 0..HELD_COMPONENT_MESSAGES {
            assert_eq!(h.hold(av(MediaType::Audio, Some(true), &[MediaType::Audio])), Held::New);
        }
        for _ in 0..100 {
            assert_eq!(h.hold(av(MediaType::Audio, Some(true), &[MediaType::Audio])), Held::Dropped);
        }
        assert_eq!(h.len(), HELD_COMPONENT_MESSAGES);
        // Messages of the usual kinds coalesce to a handful.
        let mut h = HeldComponents::default();
        for i in 0..1000 {
            let t = MediaType::ALL[i % 3];
            let _ = h.hold(av(t, Some(i % 2 == 0), &[]));
            let _ = h.hold(av(t, None, &[t]));
            let _ = h.hold(metadata(if i % 2 == 0 { Some(true) } else { None }));
        }
        assert!(h.len() <= 8, "{}", h.len());
    }

    #[test]
    fn a_full_inbox_holds_component_messages_and_delivers_them_when_there_is_room() {
        let (mut r, rx) = route(INBOX_CAPACITY);
        assert!(matches!(r.offer(Inbox::Component(av(MediaType::Audio, Some(true), &[]))), Offered::HeldComponent(Held::New)));
        assert!(matches!(r.offer(Inbox::Component(av(MediaType::Audio, Some(false), &[]))), Offered::HeldComponent(Held::Coalesced(1))));
        assert!(!r.flush(), "still full");
        r.load.report_backlog(0, 0);
        assert!(r.flush());
        let got: Vec<Option<bool>> = rx
            .try_iter()
            .map(|m| match m {
                Inbox::Component(ComponentMessage::AvModeration(a)) => a.enabled,
                other => panic!("{:?}", other),
            })
            .collect();
        assert_eq!(got, vec![Some(false)]);
    }
}
