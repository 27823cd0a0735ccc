//! Limits against hostile input and the helpers that enforce them without growing
//! with it (the configured values are [`Limits`], in `config::limits`): [`RateWindow`] (at most N events in a
//! sliding minute), [`NewRoomLimiter`] (new rooms per requester and in all),
//! [`IqRateLimiter`] (IQ requests per sender, and the router's own answers in all) and
//! [`Refusal`] (what a refusal answers). Refusals are logged once per interval with
//! [`crate::log_throttle`].
//!
//! Time is always passed in, so everything here runs on simulated time in tests.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use crate::config::limits::Limits;
use crate::jid::Jid;

/// IQ requests the router answers itself (disco, ping, errors for what nobody handles),
/// all senders together, per second (bursts of twice that).
pub const SERVICE_ANSWERS_PER_SECOND: f64 = 500.0;
/// Senders whose IQ rate is tracked one by one; past it new senders share one bucket.
pub const MAX_TRACKED_SENDERS: usize = 8192;

/// At most `limit` events in any sliding `window`; memory is `limit` instants.
#[derive(Clone, Debug)]
pub struct RateWindow {
    limit: usize,
    window: Duration,
    events: VecDeque<Instant>,
}

impl RateWindow {
    /// Empty: allows `limit` events in any `window`.
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
    /// No rooms created yet; quotas from `--max_new_rooms_per_minute` and
    /// `--max_new_rooms_total_per_minute`.
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

/// `burst` tokens at most, refilled at `rate` per second; each admitted event takes one.
#[derive(Clone, Copy, Debug)]
pub struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn full(burst: f64, now: Instant) -> TokenBucket {
        TokenBucket { tokens: burst, last: now }
    }

    fn refill(&mut self, now: Instant, rate: f64, burst: f64) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * rate).min(burst);
        self.last = now;
    }

    /// Take a token if there is one.
    pub fn take(&mut self, now: Instant, rate: f64, burst: f64) -> bool {
        self.refill(now, rate, burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Refilled to the brim: the sender has been quiet long enough to be forgotten.
    pub fn is_full(&mut self, now: Instant, rate: f64, burst: f64) -> bool {
        self.refill(now, rate, burst);
        self.tokens >= burst
    }
}

/// What to do with an IQ request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IqVerdict {
    /// Within the sender's rate: handle it.
    Admit,
    /// Over it: answer a short `resource-constraint` (no bigger than the request), if the
    /// router's global answer budget allows.
    Refuse,
}

/// IQ requests per sender, so that a flood costs its sender, not the focus's stream.
///
/// Every answer the focus writes queues on the same connection as everyone's Jingle,
/// Colibri2 and MUC traffic, and answers are bigger than what they answer (a disco#info
/// result is ~10× a request): without a bound, one participant's flood of cheap IQs
/// delays every conference. Over its rate a sender gets a short `resource-constraint`
/// per request (no bigger than what it sent, and only within the global budget below),
/// so a well-behaved client that bursts is told, not left waiting. Each sender (the `from` as it reaches the focus: an occupant
/// JID, a client's full JID, a client_proxy address) has a token bucket; the map holds
/// at most [`MAX_TRACKED_SENDERS`] senders (keyed by a salted hash, so its size does not
/// depend on JID lengths), quiet ones are forgotten, and past that bound new senders
/// share one bucket. The answers the router gives itself share a global budget
/// ([`SERVICE_ANSWERS_PER_SECOND`]), and its refusals another of the same size, which
/// bounds what many senders together can cost.
#[derive(Debug)]
pub struct IqRateLimiter {
    rate: f64,
    burst: f64,
    salt: RandomState,
    senders: HashMap<u64, TokenBucket>,
    /// When quiet senders were last swept out (at most once a second, so that a spray of
    /// fresh senders against a full map does not cost a scan per request).
    last_sweep: Option<Instant>,
    overflow: TokenBucket,
    service: TokenBucket,
    refusals: TokenBucket,
}

impl IqRateLimiter {
    /// No sender tracked yet; each sender's rate is `--max_iq_per_second` (bursts of five
    /// times that), the global budgets start full at `now`.
    pub fn new(limits: &Limits, now: Instant) -> IqRateLimiter {
        let rate = limits.iq_per_second as f64;
        let burst = rate * 5.0;
        IqRateLimiter {
            rate,
            burst,
            salt: RandomState::new(),
            senders: HashMap::new(),
            last_sweep: None,
            overflow: TokenBucket::full(burst, now),
            service: TokenBucket::full(SERVICE_ANSWERS_PER_SECOND * 2.0, now),
            refusals: TokenBucket::full(SERVICE_ANSWERS_PER_SECOND * 2.0, now),
        }
    }

    /// An IQ request from `from` at `now`.
    pub fn check(&mut self, from: &str, now: Instant) -> IqVerdict {
        let (rate, burst) = (self.rate, self.burst);
        let key = self.salt.hash_one(from);
        if !self.senders.contains_key(&key)
            && self.senders.len() >= MAX_TRACKED_SENDERS
            && self.last_sweep.is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1))
        {
            self.last_sweep = Some(now);
            self.senders.retain(|_, b| !b.is_full(now, rate, burst));
        }
        let bucket = if self.senders.len() < MAX_TRACKED_SENDERS || self.senders.contains_key(&key) {
            self.senders.entry(key).or_insert(TokenBucket::full(burst, now))
        } else {
            &mut self.overflow
        };
        if bucket.take(now, rate, burst) {
            IqVerdict::Admit
        } else {
            IqVerdict::Refuse
        }
    }

    /// May the router answer one more IQ itself (all senders together)?
    pub fn service_answer(&mut self, now: Instant) -> bool {
        self.service.take(now, SERVICE_ANSWERS_PER_SECOND, SERVICE_ANSWERS_PER_SECOND * 2.0)
    }

    /// May the router send one more rate refusal (all senders together)? A budget of its
    /// own, so that refusing a flood never uses up the answers others are owed.
    pub fn refusal_answer(&mut self, now: Instant) -> bool {
        self.refusals.take(now, SERVICE_ANSWERS_PER_SECOND, SERVICE_ANSWERS_PER_SECOND * 2.0)
    }

    /// Senders currently remembered.
    pub fn tracked(&self) -> usize {
        self.senders.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(s: &str) -> Jid {
        Jid::parse(s).unwrap()
    }

    #[test]
    fn iq_requests_are_limited_per_sender() {
        let t0 = Instant::now();
        let limits = Limits { iq_per_second: 10, ..Limits::default() };
        let mut l = IqRateLimiter::new(&limits, t0);
        let verdicts: Vec<IqVerdict> = (0..100).map(|_| l.check("room@conference.meet.test/mallory", t0)).collect();
        // A burst of five seconds' worth, then refusals.
        assert!(verdicts[..50].iter().all(|v| *v == IqVerdict::Admit));
        assert!(verdicts[50..].iter().all(|v| *v == IqVerdict::Refuse));
        // Others are not affected.
        assert_eq!(l.check("room@conference.meet.test/alice", t0), IqVerdict::Admit);
        // The rate refills: a second later ten more.
        let t1 = t0 + Duration::from_secs(1);
        let admitted = (0..30).filter(|_| l.check("room@conference.meet.test/mallory", t1) == IqVerdict::Admit).count();
        assert_eq!(admitted, 10);
    }

    #[test]
    fn the_sender_map_stays_bounded_under_fresh_jids() {
        let t0 = Instant::now();
        let mut l = IqRateLimiter::new(&Limits::default(), t0);
        for i in 0..(3 * MAX_TRACKED_SENDERS) {
            // Each fresh sender sends a few: the map fills, then they share the overflow bucket.
            for _ in 0..3 {
                l.check(&format!("anon{i}@meet.test/r"), t0);
            }
        }
        assert!(l.tracked() <= MAX_TRACKED_SENDERS);
        // Once they are quiet, their entries are forgotten and new senders get their own.
        let later = t0 + Duration::from_secs(60);
        assert_eq!(l.check("late@meet.test/r", later), IqVerdict::Admit);
        assert!(l.tracked() <= MAX_TRACKED_SENDERS);
        assert!(l.tracked() < 10, "quiet senders were forgotten ({})", l.tracked());
    }

    #[test]
    fn the_routers_own_answers_share_a_global_budget() {
        let t0 = Instant::now();
        let mut l = IqRateLimiter::new(&Limits::default(), t0);
        let n = (0..10_000).filter(|_| l.service_answer(t0)).count();
        assert_eq!(n as f64, SERVICE_ANSWERS_PER_SECOND * 2.0);
        assert!(l.service_answer(t0 + Duration::from_millis(10)));
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
