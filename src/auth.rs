//! Secure domain (XMPP-domain authentication, `--auth_domain`): in-memory sessions.
//!
//! A user authenticated on the secure domain who asks for a conference with a
//! `machine-uid` gets a session (UUID `session-id`, 24 h idle lifetime). Later
//! requests presenting that `session-id` with the same `machine-uid` (for example
//! from an anonymous guest connection) count as authenticated and bind the sender's
//! full JID to the session; conferences make bound JIDs owners.
//!
//! Everything is bounded: [`MAX_SESSIONS`] sessions, [`MAX_SESSIONS_PER_USER`] per
//! identity, [`MAX_BOUND_PER_SESSION`] bound JIDs per session (least recently used or
//! oldest dropped first; expired sessions go first of all); a `machine-uid` and a
//! bound JID are kept as their SHA-1, whatever their length.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};

use crate::jid::Jid;

/// Idle lifetime of a session.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Sessions kept in all; beyond, the least recently used one is dropped.
pub const MAX_SESSIONS: usize = 10_000;
/// Sessions one identity (bare JID of the secure domain) may hold; a new one drops
/// that identity's least recently used session.
pub const MAX_SESSIONS_PER_USER: usize = 5;
/// Full JIDs bound to one session; a new one unbinds the oldest.
pub const MAX_BOUND_PER_SESSION: usize = 16;

struct Session {
    /// SHA-1 of the `machine-uid`: fixed size whatever the client sent.
    machine_uid: [u8; 20],
    identity: Jid,
    /// Bound full JIDs (as [`jid_key`]s), oldest first.
    bound: VecDeque<JidKey>,
    last_used: Instant,
}

fn uid_digest(machine_uid: &str) -> [u8; 20] {
    Sha1::digest(machine_uid.as_bytes()).into()
}

/// A bound JID as kept: its SHA-1, 20 bytes however long the JID (a resource may
/// have 1023 bytes).
type JidKey = [u8; 20];

fn jid_key(jid: &Jid) -> JidKey {
    Sha1::digest(jid.to_string().as_bytes()).into()
}

/// The outcome of authenticating a conference request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthResult {
    /// Authenticated as `identity` with `session_id`.
    Authenticated {
        /// The authenticated user: the bare JID it logged in with on the secure domain.
        identity: Jid,
        /// The session's id, returned as `session-id` for the client to present later.
        session_id: String,
    },
    /// Not authenticated (guest); may still join existing rooms.
    Guest,
    /// `session-id` unknown or expired.
    InvalidSession,
    /// Session found but `machine-uid` differs (or is empty).
    MachineUidMismatch,
    /// Sender is on the secure domain but sent no (or an empty) `machine-uid`.
    MissingMachineUid,
}

/// All sessions of the secure domain, bounded: at most [`MAX_SESSIONS`] in all,
/// [`MAX_SESSIONS_PER_USER`] per identity and [`MAX_BOUND_PER_SESSION`] bound JIDs per
/// session, least recently used dropped first. Session ids are bearer secrets:
/// `Debug` shows only counts.
pub struct Sessions {
    domain: String,
    max_sessions: usize,
    max_per_user: usize,
    sessions: HashMap<String, Session>,
    /// Bound full JID (its [`jid_key`]) → its session id (one session at a time).
    bound: HashMap<JidKey, String>,
    /// When expired sessions were last swept (at most every [`PURGE_INTERVAL`]).
    last_purge: Option<Instant>,
}

/// Expired sessions are swept at most this often (and whenever the map is full); a
/// lookup checks expiry itself.
const PURGE_INTERVAL: Duration = Duration::from_secs(60);

fn expired(s: &Session, now: Instant) -> bool {
    now.saturating_duration_since(s.last_used) >= SESSION_LIFETIME
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("domain", &self.domain)
            .field("sessions", &self.sessions.len())
            .field("bound", &self.bound.len())
            .finish()
    }
}

impl Sessions {
    /// Sessions of the secure domain `domain` with the default bounds.
    pub fn new(domain: &str) -> Sessions {
        Sessions::with_limits(domain, MAX_SESSIONS, MAX_SESSIONS_PER_USER)
    }

    /// Sessions with explicit bounds (each at least 1).
    pub fn with_limits(domain: &str, max_sessions: usize, max_per_user: usize) -> Sessions {
        Sessions {
            domain: domain.to_string(),
            max_sessions: max_sessions.max(1),
            max_per_user: max_per_user.max(1),
            sessions: HashMap::new(),
            bound: HashMap::new(),
            last_purge: None,
        }
    }

    /// The secure domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Number of live sessions (expired ones go at the next `authenticate`).
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// True when there are no sessions.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Authenticate a conference request from `sender` (its real full JID).
    pub fn authenticate(
        &mut self,
        sender: &Jid,
        session_id: Option<&str>,
        machine_uid: Option<&str>,
        now: Instant,
    ) -> AuthResult {
        if self.last_purge.is_none_or(|t| now.saturating_duration_since(t) >= PURGE_INTERVAL) {
            self.purge(now);
        }
        if let Some(sid) = session_id {
            if self.sessions.get(sid).is_some_and(|s| expired(s, now)) {
                self.remove(sid);
            }
            let Some(s) = self.sessions.get_mut(sid) else { return AuthResult::InvalidSession };
            match machine_uid {
                Some(m) if !m.is_empty() && uid_digest(m) == s.machine_uid => {}
                _ => return AuthResult::MachineUidMismatch,
            }
            s.last_used = now;
            let identity = s.identity.clone();
            self.bind(sid, sender);
            return AuthResult::Authenticated { identity, session_id: sid.to_string() };
        }
        if sender.domain() != self.domain {
            return AuthResult::Guest;
        }
        let Some(m) = machine_uid.filter(|m| !m.is_empty()) else { return AuthResult::MissingMachineUid };
        let identity = sender.bare();
        // Room for one more session of this identity, then for one more in all.
        loop {
            let mine = self.sessions.iter().filter(|(_, s)| s.identity == identity);
            if mine.clone().count() < self.max_per_user {
                break;
            }
            let Some(oldest) = mine.min_by_key(|(_, s)| s.last_used).map(|(k, _)| k.clone()) else { break };
            self.remove(&oldest);
        }
        if self.sessions.len() >= self.max_sessions {
            self.purge(now);
        }
        while self.sessions.len() >= self.max_sessions {
            let Some(oldest) = self.sessions.iter().min_by_key(|(_, s)| s.last_used).map(|(k, _)| k.clone()) else {
                break;
            };
            self.remove(&oldest);
        }
        let sid = new_uuid();
        self.sessions.insert(
            sid.clone(),
            Session { machine_uid: uid_digest(m), identity: identity.clone(), bound: VecDeque::new(), last_used: now },
        );
        self.bind(&sid, sender);
        AuthResult::Authenticated { identity, session_id: sid }
    }

    /// Bind `jid` to session `sid` (moving it from any other session), unbinding the
    /// session's oldest JID beyond [`MAX_BOUND_PER_SESSION`].
    fn bind(&mut self, sid: &str, jid: &Jid) {
        let key = jid_key(jid);
        if let Some(previous) = self.bound.get(&key) {
            if previous == sid {
                return;
            }
            if let Some(s) = self.sessions.get_mut(previous) {
                s.bound.retain(|j| *j != key);
            }
        }
        let Some(s) = self.sessions.get_mut(sid) else { return };
        s.bound.push_back(key);
        self.bound.insert(key, sid.to_string());
        while s.bound.len() > MAX_BOUND_PER_SESSION {
            if let Some(old) = s.bound.pop_front() {
                self.bound.remove(&old);
            }
        }
    }

    /// Drop a session and its bindings.
    fn remove(&mut self, sid: &str) -> bool {
        let Some(s) = self.sessions.remove(sid) else { return false };
        for j in s.bound {
            if self.bound.get(&j).is_some_and(|x| x == sid) {
                self.bound.remove(&j);
            }
        }
        true
    }

    /// True when `jid` (a real full JID) is on the secure domain or bound to a live session.
    pub fn is_authenticated(&self, jid: &Jid) -> bool {
        jid.domain() == self.domain || self.bound.contains_key(&jid_key(jid))
    }

    /// Destroy a session (`logout`); false when it does not exist.
    pub fn logout(&mut self, session_id: &str) -> bool {
        self.remove(session_id)
    }

    fn purge(&mut self, now: Instant) {
        self.last_purge = Some(now);
        let gone: Vec<String> = self.sessions.iter().filter(|(_, s)| expired(s, now)).map(|(k, _)| k.clone()).collect();
        for sid in gone {
            self.remove(&sid);
        }
    }
}

/// A random (v4) UUID in its usual text form.
pub fn new_uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(s: &str) -> Jid {
        Jid::parse(s).unwrap()
    }

    #[test]
    fn session_flow() {
        let mut s = Sessions::new("meet.test");
        let t = Instant::now();
        assert_eq!(s.authenticate(&j("anon@guest.meet.test/r"), None, Some("m"), t), AuthResult::Guest);
        assert_eq!(s.authenticate(&j("user1@meet.test/r"), None, None, t), AuthResult::MissingMachineUid);
        let AuthResult::Authenticated { session_id, identity } = s.authenticate(&j("user1@meet.test/r"), None, Some("m"), t)
        else {
            panic!()
        };
        assert_eq!(identity.to_string(), "user1@meet.test");
        let guest = j("anon@guest.meet.test/x");
        assert_eq!(s.authenticate(&guest, Some(&session_id), Some("other"), t), AuthResult::MachineUidMismatch);
        assert!(matches!(s.authenticate(&guest, Some(&session_id), Some("m"), t), AuthResult::Authenticated { .. }));
        assert!(s.is_authenticated(&guest));
        assert!(s.logout(&session_id));
        assert_eq!(s.authenticate(&guest, Some(&session_id), Some("m"), t), AuthResult::InvalidSession);
        assert!(!s.is_authenticated(&guest));
    }

    fn login(s: &mut Sessions, jid: &str, uid: &str, t: Instant) -> String {
        match s.authenticate(&j(jid), None, Some(uid), t) {
            AuthResult::Authenticated { session_id, .. } => session_id,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn one_user_holds_a_few_sessions_at_most() {
        let mut s = Sessions::new("meet.test");
        let t = Instant::now();
        let ids: Vec<String> =
            (0..MAX_SESSIONS_PER_USER as u64).map(|i| login(&mut s, "u@meet.test/r", "m", t + Duration::from_secs(i))).collect();
        // Using the first keeps it; the least recently used one (the second) goes for a new one.
        let guest = j("g@guest.meet.test/1");
        let later = t + Duration::from_secs(100);
        assert!(matches!(s.authenticate(&guest, Some(&ids[0]), Some("m"), later), AuthResult::Authenticated { .. }));
        let extra = login(&mut s, "u@meet.test/other", "m", later + Duration::from_secs(1));
        assert_eq!(s.len(), MAX_SESSIONS_PER_USER);
        assert_eq!(s.authenticate(&guest, Some(&ids[1]), Some("m"), later), AuthResult::InvalidSession);
        for id in ids.iter().skip(2).chain([&ids[0], &extra]) {
            assert!(matches!(s.authenticate(&guest, Some(id), Some("m"), later), AuthResult::Authenticated { .. }));
        }
        // Another user is not affected.
        login(&mut s, "v@meet.test/r", "m", later);
        assert_eq!(s.len(), MAX_SESSIONS_PER_USER + 1);
    }

    #[test]
    fn total_sessions_are_bounded_least_recently_used_first() {
        let mut s = Sessions::with_limits("meet.test", 100, 3);
        let t = Instant::now();
        let first = login(&mut s, "user0@meet.test/r", "m", t);
        let bound = j("g@guest.meet.test/1");
        assert!(matches!(s.authenticate(&bound, Some(&first), Some("m"), t), AuthResult::Authenticated { .. }));
        for i in 1..1000u64 {
            login(&mut s, &format!("user{i}@meet.test/r"), "m", t + Duration::from_millis(i));
            assert!(s.len() <= 100);
            assert!(s.bound.len() <= 2 * 100);
        }
        assert_eq!(s.len(), 100);
        assert_eq!(s.authenticate(&bound, Some(&first), Some("m"), t), AuthResult::InvalidSession);
        assert!(!s.is_authenticated(&bound), "an evicted session's JIDs are unbound");
        // Defaults: 10 000 in all.
        let mut s = Sessions::new("meet.test");
        for i in 0..MAX_SESSIONS as u64 + 500 {
            login(&mut s, &format!("u{i}@meet.test/r"), "m", t + Duration::from_millis(i));
        }
        assert_eq!(s.len(), MAX_SESSIONS);
    }

    #[test]
    fn a_full_map_drops_expired_sessions_before_live_ones() {
        let mut s = Sessions::with_limits("meet.test", 3, 3);
        let t = Instant::now();
        let old = login(&mut s, "a@meet.test/r", "m", t);
        let later = t + SESSION_LIFETIME - Duration::from_secs(10);
        let b = login(&mut s, "b@meet.test/r", "m", later);
        let c = login(&mut s, "c@meet.test/r", "m", later);
        // Within the purge interval of the last sweep, but the map is full: `old` has
        // expired and goes, b and c stay.
        let now = t + SESSION_LIFETIME;
        login(&mut s, "d@meet.test/r", "m", now);
        let g = j("g@guest.meet.test/1");
        assert_eq!(s.authenticate(&g, Some(&old), Some("m"), now), AuthResult::InvalidSession);
        assert!(matches!(s.authenticate(&g, Some(&b), Some("m"), now), AuthResult::Authenticated { .. }));
        assert!(matches!(s.authenticate(&g, Some(&c), Some("m"), now), AuthResult::Authenticated { .. }));
    }

    #[test]
    fn bound_jids_per_session_are_bounded() {
        let mut s = Sessions::new("meet.test");
        let t = Instant::now();
        let sid = login(&mut s, "u@meet.test/r", "m", t);
        for i in 0..1000 {
            let g = j(&format!("g{i}@guest.meet.test/x"));
            assert!(matches!(s.authenticate(&g, Some(&sid), Some("m"), t), AuthResult::Authenticated { .. }));
        }
        assert_eq!(s.sessions[&sid].bound.len(), MAX_BOUND_PER_SESSION);
        assert_eq!(s.bound.len(), MAX_BOUND_PER_SESSION);
        assert!(s.is_authenticated(&j("g999@guest.meet.test/x")));
        assert!(!s.is_authenticated(&j("g0@guest.meet.test/x")), "the oldest binding went");
        // A JID moves to the session it last presented.
        let other = login(&mut s, "v@meet.test/r", "n", t);
        let g = j("g999@guest.meet.test/x");
        s.authenticate(&g, Some(&other), Some("n"), t);
        assert!(!s.sessions[&sid].bound.contains(&jid_key(&g)));
        assert!(s.logout(&other));
        assert!(!s.is_authenticated(&g));
    }

    #[test]
    fn machine_uids_are_kept_at_a_fixed_size_and_must_not_be_empty() {
        let mut s = Sessions::new("meet.test");
        let t = Instant::now();
        let huge = "x".repeat(200_000);
        let sid = login(&mut s, "u@meet.test/r", &huge, t);
        assert_eq!(std::mem::size_of_val(&s.sessions[&sid].machine_uid), 20);
        let g = j("g@guest.meet.test/1");
        assert!(matches!(s.authenticate(&g, Some(&sid), Some(&huge), t), AuthResult::Authenticated { .. }));
        assert_eq!(s.authenticate(&g, Some(&sid), Some(&huge[1..]), t), AuthResult::MachineUidMismatch);
        assert_eq!(s.authenticate(&j("u@meet.test/r"), None, Some(""), t), AuthResult::MissingMachineUid);
        let sid2 = login(&mut s, "w@meet.test/r", "m", t);
        assert_eq!(s.authenticate(&g, Some(&sid2), Some(""), t), AuthResult::MachineUidMismatch);
        // Debug shows no session id.
        let dbg = format!("{s:?}");
        assert!(!dbg.contains(&sid) && !dbg.contains(&sid2), "{dbg}");
    }

    #[test]
    fn sessions_expire() {
        let mut s = Sessions::new("meet.test");
        let t = Instant::now();
        let AuthResult::Authenticated { session_id, .. } = s.authenticate(&j("u@meet.test/r"), None, Some("m"), t) else {
            panic!()
        };
        let later = t + SESSION_LIFETIME + Duration::from_secs(1);
        assert_eq!(s.authenticate(&j("g@x/r"), Some(&session_id), Some("m"), later), AuthResult::InvalidSession);
        assert_eq!(new_uuid().len(), 36);
    }
}
