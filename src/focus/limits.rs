//! Limits against hostile input and the helpers that enforce them without growing
//! with it: [`Limits`] (the configured values), [`RateWindow`] (at most N events in a
//! sliding minute), [`NewRoomLimiter`] (new rooms per requester and in all) and
//! [`Refusal`] (what a refusal answers). Refusals are logged once per interval with
//! [`crate::log_throttle`].
//!
//! Time is always passed in, so everything here runs on simulated time in tests.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::jid::Jid;

/// Default of `--max_conferences`.
pub const DEFAULT_MAX_CONFERENCES: usize = 1000;
/// Default of `--max_new_rooms_per_minute` (per requester bare JID).
pub const DEFAULT_NEW_ROOMS_PER_MINUTE: usize = 20;
/// Default of `--max_new_rooms_total_per_minute` (all requesters together).
pub const DEFAULT_NEW_ROOMS_TOTAL_PER_MINUTE: usize = 600;
/// Default of `--max_participants` (per conference).
pub const DEFAULT_MAX_PARTICIPANTS: usize = 1000;
/// Default of `--max_waiting_requests` (per conference, while the focus is joining).
pub const DEFAULT_MAX_WAITING_REQUESTS: usize = 256;

/// The configured limits.
///
/// Jicofo has no participant limit for a main room (its `visitors.max-participants`
/// redirects clients that support visitors to visitor nodes, which this focus does not
/// have). Here a participant past `max_participants` stays in the MUC but the focus
/// serves it nothing (no disco, ownership or offer) until a seat frees; the focus
/// remembers at most as many waiting ones again and ignores the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Running conferences (each is a thread and a MUC room).
    pub max_conferences: usize,
    /// New rooms one requester (bare JID) may create per minute.
    pub new_rooms_per_minute: usize,
    /// New rooms all requesters together may create per minute.
    pub new_rooms_total_per_minute: usize,
    /// Participants a conference serves (offers, disco, ownership); later joiners wait.
    pub max_participants: usize,
    /// Conference requests a conference keeps while the focus is joining its room.
    pub max_waiting_requests: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_conferences: DEFAULT_MAX_CONFERENCES,
            new_rooms_per_minute: DEFAULT_NEW_ROOMS_PER_MINUTE,
            new_rooms_total_per_minute: DEFAULT_NEW_ROOMS_TOTAL_PER_MINUTE,
            max_participants: DEFAULT_MAX_PARTICIPANTS,
            max_waiting_requests: DEFAULT_MAX_WAITING_REQUESTS,
        }
    }
}

/// A request refused under a limit: answered `resource-constraint` (type wait) with
/// [`Refusal::text`]. The HTTP API answers it `503` with `Retry-After:`
/// [`Refusal::retry_after`], recognising the kind by its text ([`Refusal::from_text`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `--max_conferences` conferences are running.
    TooManyConferences,
    /// `--max_new_rooms_per_minute` or `--max_new_rooms_total_per_minute`.
    TooManyNewRooms,
    /// The conference's inbox is full (messages or bytes).
    ConferenceBusy,
    /// `--max_waiting_requests` wait for the focus to join the room.
    TooManyWaiting,
    /// No thread could be started for a new conference.
    CannotStart,
}

impl Refusal {
    pub const ALL: [Refusal; 5] =
        [Refusal::TooManyConferences, Refusal::TooManyNewRooms, Refusal::ConferenceBusy, Refusal::TooManyWaiting, Refusal::CannotStart];

    /// The text of the `resource-constraint` answer.
    pub fn text(self) -> &'static str {
        match self {
            Refusal::TooManyConferences => "too many conferences; try again later",
            Refusal::TooManyNewRooms => "too many new rooms; try again later",
            Refusal::ConferenceBusy => "the conference is busy",
            Refusal::TooManyWaiting => "too many requests for this conference; try again later",
            Refusal::CannotStart => "cannot start a conference",
        }
    }

    /// The refusal whose answer has this text.
    pub fn from_text(text: &str) -> Option<Refusal> {
        Refusal::ALL.into_iter().find(|r| r.text() == text)
    }

    /// When a retry may succeed: the room limits count per sliding minute and
    /// conferences last minutes; a busy inbox or a joining focus is a matter of seconds.
    pub fn retry_after(self) -> Duration {
        match self {
            Refusal::TooManyConferences | Refusal::TooManyNewRooms => Duration::from_secs(60),
            Refusal::ConferenceBusy | Refusal::TooManyWaiting | Refusal::CannotStart => Duration::from_secs(5),
        }
    }

    /// The answer to `iq`.
    pub fn reply_to(self, iq: &crate::xml::Element) -> crate::xml::Element {
        crate::xmpp::stanza::iq_error(iq, crate::xmpp::stanza::ErrorCondition::ResourceConstraint, Some(self.text()))
    }
}

/// At most `limit` events in any sliding `window`; memory is `limit` instants.
#[derive(Clone, Debug)]
pub struct RateWindow {
    limit: usize,
    window: Duration,
    events: VecDeque<Instant>,
}

impl RateWindow {
    pub fn new(limit: usize, window: Duration) -> RateWindow {
        RateWindow { limit, window, events: VecDeque::new() }
    }

    fn prune(&mut self, now: Instant) {
        while self.events.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
            self.events.pop_front();
        }
    }

    /// Would one more event at `now` fit?
    pub fn allows(&mut self, now: Instant) -> bool {
        self.prune(now);
        self.events.len() < self.limit
    }

    /// Count an event at `now` (call after `allows`).
    pub fn record(&mut self, now: Instant) {
        self.prune(now);
        if self.events.len() < self.limit {
            self.events.push_back(now);
        }
    }

    /// No event in the window any more.
    pub fn is_idle(&mut self, now: Instant) -> bool {
        self.prune(now);
        self.events.is_empty()
    }
}

/// Why a new room was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoomRefusal {
    /// This requester created its quota of rooms in the last minute.
    Requester,
    /// All requesters together did.
    Total,
}

/// New rooms per requester (bare JID) and in all, per sliding minute.
///
/// Anonymous users get a random JID per connection, so the per-requester limit only
/// holds back authenticated users and one connection's spree; the total limit caps a
/// spree spread over many connections (and HTTP requests, which carry no requester).
/// The map holds only requesters that created a room in the last minute, so it has at
/// most `new_rooms_total_per_minute` entries.
#[derive(Debug)]
pub struct NewRoomLimiter {
    per_requester: usize,
    total: RateWindow,
    by_requester: HashMap<Jid, RateWindow>,
}

const MINUTE: Duration = Duration::from_secs(60);

impl NewRoomLimiter {
    pub fn new(limits: &Limits) -> NewRoomLimiter {
        NewRoomLimiter {
            per_requester: limits.new_rooms_per_minute,
            total: RateWindow::new(limits.new_rooms_total_per_minute, MINUTE),
            by_requester: HashMap::new(),
        }
    }

    /// May `requester` (any JID; its bare JID counts) create a room at `now`? Counts it when so.
    pub fn admit(&mut self, requester: Option<&Jid>, now: Instant) -> Result<(), RoomRefusal> {
        let key = requester.map(Jid::bare);
        if let Some(k) = &key {
            if let Some(w) = self.by_requester.get_mut(k) {
                if !w.allows(now) {
                    return Err(RoomRefusal::Requester);
                }
            }
        }
        if !self.total.allows(now) {
            return Err(RoomRefusal::Total);
        }
        self.total.record(now);
        if let Some(k) = key {
            if self.by_requester.len() >= self.total.limit {
                self.by_requester.retain(|_, w| !w.is_idle(now));
            }
            self.by_requester.entry(k).or_insert_with(|| RateWindow::new(self.per_requester, MINUTE)).record(now);
        }
        Ok(())
    }

    /// Requesters currently remembered.
    pub fn tracked(&self) -> usize {
        self.by_requester.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(s: &str) -> Jid {
        Jid::parse(s).unwrap()
    }

    #[test]
    fn a_rate_window_slides() {
        let t0 = Instant::now();
        let mut w = RateWindow::new(2, MINUTE);
        assert!(w.allows(t0));
        w.record(t0);
        w.record(t0 + Duration::from_secs(30));
        assert!(!w.allows(t0 + Duration::from_secs(59)));
        assert!(w.allows(t0 + Duration::from_secs(60)), "the first left the window");
        assert!(!w.is_idle(t0 + Duration::from_secs(60)));
        assert!(w.is_idle(t0 + Duration::from_secs(90)));
    }

    #[test]
    fn new_rooms_per_requester_and_in_all() {
        let t0 = Instant::now();
        let limits = Limits { new_rooms_per_minute: 2, new_rooms_total_per_minute: 5, ..Limits::default() };
        let mut l = NewRoomLimiter::new(&limits);
        let a = j("a@meet.test/one");
        // The bare JID counts: another resource of `a` shares its quota.
        assert_eq!(l.admit(Some(&a), t0), Ok(()));
        assert_eq!(l.admit(Some(&j("a@meet.test/two")), t0), Ok(()));
        assert_eq!(l.admit(Some(&a), t0), Err(RoomRefusal::Requester));
        // Others still may, until the total is used up (no requester: HTTP).
        assert_eq!(l.admit(Some(&j("b@meet.test/x")), t0), Ok(()));
        assert_eq!(l.admit(None, t0), Ok(()));
        assert_eq!(l.admit(Some(&j("c@guest.meet.test/x")), t0), Ok(()));
        assert_eq!(l.admit(Some(&j("d@guest.meet.test/x")), t0), Err(RoomRefusal::Total));
        // A refusal does not count: a minute later everyone may again.
        let t1 = t0 + MINUTE;
        assert_eq!(l.admit(Some(&a), t1), Ok(()));
        assert_eq!(l.admit(Some(&j("d@guest.meet.test/x")), t1), Ok(()));
    }

    #[test]
    fn the_requester_map_stays_bounded_under_a_spree_of_fresh_jids() {
        let t0 = Instant::now();
        let limits = Limits { new_rooms_per_minute: 2, new_rooms_total_per_minute: 50, ..Limits::default() };
        let mut l = NewRoomLimiter::new(&limits);
        let mut admitted = 0;
        for i in 0..100_000u64 {
            let now = t0 + Duration::from_millis(i * 10);
            if l.admit(Some(&j(&format!("anon{}@guest.meet.test/r", i))), now).is_ok() {
                admitted += 1;
            }
            assert!(l.tracked() <= 51, "{} requesters remembered", l.tracked());
        }
        // 1000 s of spree: at most 50 a minute got through.
        assert!(admitted <= 50 * 17, "{}", admitted);
    }
}
