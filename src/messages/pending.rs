//! Requests the focus is waiting for, keyed by a random [`IqId`].
//!
//! Every IQ request whose answer the focus acts on (a conference's MUC owner form,
//! affiliation change, disco, Jingle offer, Colibri2 allocation and update; the router's
//! bridge health checks) is entered here before it is sent, with the connection and the
//! JID it went to. When an IQ `result` or `error` arrives, the router asks the table
//! where it goes ([`PendingTable::answer`]): the id is a key, never parsed for a route.
//! An answer is accepted only on the connection the request went out on and only from
//! the JID it was sent to (for a request with no `to`, or to our own account or server,
//! the server answers on our behalf: no `from`, our bare JID or our domain, RFC 6120
//! §8.1.2.1 and §10.1). A forged answer (right id, wrong sender) leaves the entry in
//! place, so the real answer still gets through.
//!
//! Ids are 64 random bits from a seedable generator (tests seed it; the focus seeds it
//! from the OS), shown as 16 lower-case hex digits. IQs sent without tracking (their
//! answers change nothing: source signaling, expiries, mute forwards) take ids from the
//! same generator ([`PendingTable::fresh_id`]); their answers find no entry and are dropped.
//!
//! Entries leave on answer, at their deadline (the requester normally cancels its own
//! first; [`PendingTable::expire`] is the router's safety net) and when their destination
//! goes away ([`PendingTable::remove_destination`], a conference that ended). Each
//! destination has a cap on outstanding entries; past it [`PendingTable::insert`] fails
//! and the caller fails that request locally instead of growing the table.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

use crate::ids::ConferenceId;
use crate::jid::Jid;
use crate::net::ConnId;

/// Outstanding requests one conference may have.
pub const CONFERENCE_CAP: usize = 256;
/// Outstanding health checks (one per bridge, plus a retry each).
pub const BRIDGES_CAP: usize = 1024;
/// Outstanding requests of the router (one disco#info per connection).
pub const ROUTER_CAP: usize = 4;

/// The id of an IQ request of ours: 64 random bits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IqId(u64);

impl IqId {
    /// Length of the text form.
    pub const LEN: usize = 16;

    /// The id in an `id` attribute, when it has our form (16 lower-case hex digits).
    pub fn parse(s: &str) -> Option<IqId> {
        if s.len() != Self::LEN || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return None;
        }
        u64::from_str_radix(s, 16).ok().map(IqId)
    }
}

impl fmt::Display for IqId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for IqId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IqId({})", self)
    }
}

/// Who gets the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Destination {
    /// The conference with this id (its thread).
    Conference(ConferenceId),
    /// The bridge registry (health checks).
    Bridges,
    /// The router itself (component discovery).
    Router,
}

impl Destination {
    /// The cap on outstanding requests for this destination.
    pub fn cap(self) -> usize {
        match self {
            Destination::Conference(_) => CONFERENCE_CAP,
            Destination::Bridges => BRIDGES_CAP,
            Destination::Router => ROUTER_CAP,
        }
    }
}

/// Why a request could not be entered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PendingError {
    /// `dest` already has `cap` requests outstanding.
    Full {
        /// Who would have waited for the answer.
        dest: Destination,
        /// Its limit of outstanding requests.
        cap: usize,
    },
}

impl fmt::Display for PendingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PendingError::Full { dest, cap } => write!(f, "{:?} has {} requests outstanding already", dest, cap),
        }
    }
}

impl std::error::Error for PendingError {}

/// What to do with an IQ answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Ours, from the right sender: hand it to `Destination` (the entry is gone).
    Deliver(Destination),
    /// Our id but the wrong sender or connection: drop it (the entry stays).
    Forged {
        /// Who waits for the genuine answer.
        dest: Destination,
        /// The JID the request was sent to (`None`: our own server or account).
        expected: Option<Jid>,
    },
    /// No such request (never ours, already answered, expired, or its conference ended).
    Unknown,
}

#[derive(Clone, Debug)]
struct Entry {
    dest: Destination,
    conn: ConnId,
    to: Option<Jid>,
    deadline: Instant,
}

/// The table of outstanding requests.
pub struct PendingTable {
    rng: StdRng,
    entries: HashMap<IqId, Entry>,
    by_dest: HashMap<Destination, HashSet<IqId>>,
    by_deadline: BTreeSet<(Instant, IqId)>,
}

impl fmt::Debug for PendingTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingTable").field("outstanding", &self.entries.len()).finish()
    }
}

impl Default for PendingTable {
    fn default() -> Self {
        PendingTable::new()
    }
}

impl PendingTable {
    /// A table whose ids come from a generator seeded by the OS.
    pub fn new() -> PendingTable {
        PendingTable::with_rng(StdRng::from_entropy())
    }

    /// A table with a reproducible id sequence (tests).
    pub fn seeded(seed: u64) -> PendingTable {
        PendingTable::with_rng(StdRng::seed_from_u64(seed))
    }

    fn with_rng(rng: StdRng) -> PendingTable {
        PendingTable { rng, entries: HashMap::new(), by_dest: HashMap::new(), by_deadline: BTreeSet::new() }
    }

    /// A new random id, not entered (for requests whose answers are not awaited).
    pub fn fresh_id(&mut self) -> IqId {
        loop {
            let id = IqId(self.rng.next_u64());
            if !self.entries.contains_key(&id) {
                return id;
            }
        }
    }

    /// Enter a request for `dest` sent on `conn` to `to` (`None`: no `to` attribute),
    /// answered by `deadline`. Its id, or an error when `dest` is at its cap.
    pub fn insert(&mut self, dest: Destination, conn: ConnId, to: Option<Jid>, deadline: Instant) -> Result<IqId, PendingError> {
        if self.outstanding(dest) >= dest.cap() {
            return Err(PendingError::Full { dest, cap: dest.cap() });
        }
        let id = self.fresh_id();
        self.entries.insert(id, Entry { dest, conn, to, deadline });
        self.by_dest.entry(dest).or_default().insert(id);
        self.by_deadline.insert((deadline, id));
        Ok(id)
    }

    /// An IQ answer with `id` arrived on `conn` from `from`; `own` is our JID on that
    /// connection. Removes the entry only when the answer is genuine.
    pub fn answer(&mut self, conn: ConnId, id: &str, from: Option<&Jid>, own: Option<&Jid>) -> Answer {
        let Some(id) = IqId::parse(id) else { return Answer::Unknown };
        let Some(e) = self.entries.get(&id) else { return Answer::Unknown };
        if e.conn != conn || !answer_is_from(e.to.as_ref(), from, own) {
            return Answer::Forged { dest: e.dest, expected: e.to.clone() };
        }
        let dest = e.dest;
        self.remove(id);
        Answer::Deliver(dest)
    }

    /// Forget `id` (answered or given up by its requester); false when it was not there.
    pub fn cancel(&mut self, id: IqId) -> bool {
        self.remove(id).is_some()
    }

    fn remove(&mut self, id: IqId) -> Option<Entry> {
        let e = self.entries.remove(&id)?;
        if let Some(set) = self.by_dest.get_mut(&e.dest) {
            set.remove(&id);
            if set.is_empty() {
                self.by_dest.remove(&e.dest);
            }
        }
        self.by_deadline.remove(&(e.deadline, id));
        Some(e)
    }

    /// Forget every request of `dest` (a conference ended); how many there were.
    pub fn remove_destination(&mut self, dest: Destination) -> usize {
        let Some(ids) = self.by_dest.remove(&dest) else { return 0 };
        for id in &ids {
            if let Some(e) = self.entries.remove(id) {
                self.by_deadline.remove(&(e.deadline, *id));
            }
        }
        ids.len()
    }

    /// Remove the requests whose deadline is at or before `now`.
    pub fn expire(&mut self, now: Instant) -> Vec<(IqId, Destination)> {
        let mut out = Vec::new();
        while let Some(&(t, id)) = self.by_deadline.first() {
            if t > now {
                break;
            }
            if let Some(e) = self.remove(id) {
                out.push((id, e.dest));
            } else {
                self.by_deadline.remove(&(t, id));
            }
        }
        out
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.by_deadline.first().map(|(t, _)| *t)
    }

    /// Requests outstanding for `dest`.
    pub fn outstanding(&self, dest: Destination) -> usize {
        self.by_dest.get(&dest).map_or(0, HashSet::len)
    }

    /// Requests outstanding in all.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no request is outstanding.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True when `id` is outstanding.
    pub fn contains(&self, id: IqId) -> bool {
        self.entries.contains_key(&id)
    }
}

/// Is an answer from `from` one to a request sent to `sent_to`? `own` is our JID on
/// the connection. The sender must be exactly the JID the request went to; a request
/// with no `to`, or to our own bare JID or our server, is answered by the server on our
/// behalf, with no `from`, our bare JID or our domain (RFC 6120 §8.1.2.1, §10.1).
pub fn answer_is_from(sent_to: Option<&Jid>, from: Option<&Jid>, own: Option<&Jid>) -> bool {
    if let (Some(t), Some(f)) = (sent_to, from) {
        if t == f {
            return true;
        }
    }
    let Some(own) = own else { return false };
    let is_us = |j: &Jid| {
        j.is_bare() && (j.local().is_some() && *j == own.bare() || j.local().is_none() && j.domain() == own.domain())
    };
    sent_to.is_none_or(is_us) && from.is_none_or(is_us)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const CLIENT: ConnId = ConnId(1);

    fn j(s: &str) -> Jid {
        Jid::parse(s).unwrap()
    }

    fn own() -> Jid {
        j("focus@auth.meet.test/focus")
    }

    #[test]
    fn ids_are_64_random_bits_not_a_sequence() {
        let mut t = PendingTable::seeded(1);
        let now = Instant::now();
        // Two requests entered one after the other:
        let a = t.insert(Destination::Conference(ConferenceId(1)), CLIENT, Some(j("b@x/y")), now).unwrap();
        let b = t.insert(Destination::Conference(ConferenceId(1)), CLIENT, Some(j("b@x/y")), now).unwrap();
        assert!(a.0.abs_diff(b.0) > 1 << 32, "{} then {}", a, b);
        let ids: Vec<IqId> = (0..2000).map(|_| t.fresh_id()).collect();
        let unique: HashSet<IqId> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len());
        // Consecutive ids are not a sequence (no constant step, not increasing).
        let steps: HashSet<u64> = ids.windows(2).map(|w| w[1].0.wrapping_sub(w[0].0)).collect();
        assert!(steps.len() > ids.len() / 2, "{} distinct steps", steps.len());
        assert!(ids.windows(2).any(|w| w[1] < w[0]) && ids.windows(2).any(|w| w[1] > w[0]));
        // Every one of the 64 bits varies (set in roughly half of the ids).
        for bit in 0..64 {
            let ones = ids.iter().filter(|id| id.0 >> bit & 1 == 1).count();
            assert!((800..1200).contains(&ones), "bit {} set in {} of 2000", bit, ones);
        }
        // The text form round-trips and is 16 hex digits.
        for id in &ids[..10] {
            let s = id.to_string();
            assert_eq!(s.len(), 16);
            assert_eq!(IqId::parse(&s), Some(*id));
        }
        // Another generator gives other ids.
        let mut other = PendingTable::seeded(2);
        assert_ne!(other.fresh_id(), PendingTable::seeded(1).fresh_id());
        assert_eq!(PendingTable::seeded(5).fresh_id(), PendingTable::seeded(5).fresh_id(), "seeded: reproducible");
    }

    #[test]
    fn only_our_form_parses() {
        for bad in ["", "c1-2", "h3", "0123456789abcdeF", "0123456789abcde", "0123456789abcdef0", "+123456789abcdef"] {
            assert_eq!(IqId::parse(bad), None, "{:?}", bad);
        }
        assert_eq!(IqId::parse("00000000000000ff").map(|i| i.0), Some(255));
    }

    #[test]
    fn a_forged_answer_is_refused_and_leaves_the_entry_for_the_real_one() {
        let mut t = PendingTable::seeded(3);
        let now = Instant::now();
        let bridge = j("jvbbrewery@internal.auth.meet.test/jvb1");
        let id = t.insert(Destination::Conference(ConferenceId(7)), CLIENT, Some(bridge.clone()), now).unwrap();
        let sid = id.to_string();
        // A participant of the room, our own server, nobody, the bridge's bare room JID:
        let forgers = [Some(j("room1@conference.meet.test/mallory")), Some(j("auth.meet.test")), None, Some(bridge.bare())];
        for f in &forgers {
            assert_eq!(
                t.answer(CLIENT, &sid, f.as_ref(), Some(&own())),
                Answer::Forged { dest: Destination::Conference(ConferenceId(7)), expected: Some(bridge.clone()) },
                "{:?}",
                f
            );
        }
        // The right sender on the wrong connection is not it either.
        assert!(matches!(t.answer(ConnId(0), &sid, Some(&bridge), Some(&own())), Answer::Forged { .. }));
        assert_eq!(t.outstanding(Destination::Conference(ConferenceId(7))), 1);
        assert_eq!(t.answer(CLIENT, &sid, Some(&bridge), Some(&own())), Answer::Deliver(Destination::Conference(ConferenceId(7))));
        assert_eq!(t.answer(CLIENT, &sid, Some(&bridge), Some(&own())), Answer::Unknown, "answered once");
        assert!(t.is_empty());
    }

    #[test]
    fn requests_to_ourselves_or_our_server_are_answered_by_the_server() {
        let me = own();
        let server = j("auth.meet.test");
        // No `to`: no from, our bare JID or our domain.
        assert!(answer_is_from(None, None, Some(&me)));
        assert!(answer_is_from(None, Some(&me.bare()), Some(&me)));
        assert!(answer_is_from(None, Some(&server), Some(&me)));
        assert!(!answer_is_from(None, Some(&j("evil@auth.meet.test")), Some(&me)));
        assert!(!answer_is_from(None, Some(&j("other.meet.test")), Some(&me)));
        assert!(!answer_is_from(None, Some(&j("auth.meet.test/x")), Some(&me)));
        // To our server or our bare JID: the same.
        assert!(answer_is_from(Some(&server), None, Some(&me)));
        assert!(answer_is_from(Some(&me.bare()), Some(&server), Some(&me)));
        // To anyone else: exactly them, never the server speaking for them.
        let room = j("r@conference.meet.test");
        assert!(answer_is_from(Some(&room), Some(&j("R@Conference.meet.test")), Some(&me)), "JIDs compare normalized");
        assert!(!answer_is_from(Some(&room), None, Some(&me)));
        assert!(!answer_is_from(Some(&room), Some(&server), Some(&me)));
        assert!(!answer_is_from(Some(&room), Some(&room.with_resource("nick")), Some(&me)));
        let occupant = room.with_resource("Nick");
        assert!(!answer_is_from(Some(&occupant), Some(&room.with_resource("nick")), Some(&me)), "resources are exact");
    }

    #[test]
    fn entries_leave_on_cancel_deadline_and_destination_end_and_the_cap_holds() {
        let mut t = PendingTable::seeded(4);
        let t0 = Instant::now();
        let to = Some(j("r@conference.meet.test"));
        let a = t.insert(Destination::Conference(ConferenceId(1)), CLIENT, to.clone(), t0 + Duration::from_secs(1)).unwrap();
        let b = t.insert(Destination::Conference(ConferenceId(1)), CLIENT, to.clone(), t0 + Duration::from_secs(5)).unwrap();
        let c = t.insert(Destination::Conference(ConferenceId(2)), CLIENT, to.clone(), t0 + Duration::from_secs(2)).unwrap();
        assert_eq!(t.next_deadline(), Some(t0 + Duration::from_secs(1)));
        assert!(t.cancel(a));
        assert!(!t.cancel(a));
        assert_eq!(t.expire(t0 + Duration::from_secs(2)), vec![(c, Destination::Conference(ConferenceId(2)))]);
        assert_eq!(t.remove_destination(Destination::Conference(ConferenceId(1))), 1);
        assert!(!t.contains(b) && t.is_empty() && t.next_deadline().is_none());
        assert_eq!(t.answer(CLIENT, &b.to_string(), to.as_ref(), None), Answer::Unknown, "its conference ended");
        // The cap: the conference's own request fails; other destinations are unaffected.
        for _ in 0..CONFERENCE_CAP {
            t.insert(Destination::Conference(ConferenceId(3)), CLIENT, to.clone(), t0).unwrap();
        }
        assert_eq!(
            t.insert(Destination::Conference(ConferenceId(3)), CLIENT, to.clone(), t0),
            Err(PendingError::Full { dest: Destination::Conference(ConferenceId(3)), cap: CONFERENCE_CAP })
        );
        assert!(t.insert(Destination::Conference(ConferenceId(4)), CLIENT, to.clone(), t0).is_ok());
        assert_eq!(t.len(), CONFERENCE_CAP + 1);
        assert_eq!(t.expire(t0).len(), CONFERENCE_CAP + 1);
        assert!(t.is_empty());
    }
}
