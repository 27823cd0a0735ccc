//! Jicofo's authentication authorities (moderation.md §5, focus.md): in-memory sessions.
//!
//! Two authorities share this session store ([`AuthorityKind`]):
//! - the secure domain (`--auth_domain`, Jicofo's `XMPPDomainAuthAuthority`): users
//!   authenticated on the domain are trusted; sessions live 24 h idle and outlive their
//!   conference (Jicofo's auto-login);
//! - Jicofo's JWT authority (`--jwt_auth_domain`, Jicofo's `ExternalJWTAuthority`, token
//!   setup C): the domain is the one Prosody checks tokens on; the focus never sees a
//!   token. Sessions live 1 minute idle and are dropped when the conference of the request
//!   that created them ends (no auto-login); only a JID bound to a live session counts
//!   as authenticated; `externalAuth` is true and `login-url` has no URL.
//!
//! A sender on the domain who asks for a conference with a `machine-uid` gets a session
//! (UUID `session-id`). Later requests presenting that `session-id` with the same
//! `machine-uid` (for example from an anonymous guest connection) count as
//! authenticated and bind the sender's full JID to the session; conferences make
//! authenticated JIDs owners.
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

pub use crate::config::features::{Authority, AuthorityKind};

/// Idle lifetime of a secure-domain session (Jicofo's `authentication-lifetime` default).
pub const SESSION_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Idle lifetime of a JWT authority session: long enough for the join that follows the
/// request (Jicofo's `ExternalJWTAuthority`).
pub const JWT_SESSION_LIFETIME: Duration = Duration::from_secs(60);
/// Sessions kept in all; beyond, the least recently used one is dropped.
pub const MAX_SESSIONS: usize = 10_000;
/// Sessions one identity (bare JID of the secure domain) may hold; a new one drops
/// that identity's least recently used session.
pub const MAX_SESSIONS_PER_USER: usize = 5;
/// Full JIDs bound to one session; a new one unbinds the oldest.
pub const MAX_BOUND_PER_SESSION: usize = 16;

// The session rules of each authority (the kinds are configuration: `config::features`).
impl AuthorityKind {
    /// How long a session lives without use.
    pub fn lifetime(self) -> Duration {
        match self {
            AuthorityKind::XmppDomain => SESSION_LIFETIME,
            AuthorityKind::ExternalJwt => JWT_SESSION_LIFETIME,
        }
    }

    /// The conference answer's `externalAuth`: the login happens outside the focus
    /// (the client has the token; `login-url` gives no URL).
    pub fn is_external(self) -> bool {
        self == AuthorityKind::ExternalJwt
    }

    /// Sessions outlive their conference (Jicofo's auto-login); without it a session
    /// is dropped when the conference of the request that created it ends.
    pub fn auto_login(self) -> bool {
        self == AuthorityKind::XmppDomain
    }
}

struct Session {
    /// SHA-1 of the `machine-uid`: fixed size whatever the client sent.
    machine_uid: [u8; 20],
    identity: Jid,
    /// The room of the request that created the session (without auto-login the
    /// session ends with that room's conference).
    room: Jid,
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
    /// Sender is on the authority's domain but sent no (or an empty) `machine-uid`.
    MissingMachineUid,
}

/// All sessions of one authority, bounded: at most [`MAX_SESSIONS`] in all,
/// [`MAX_SESSIONS_PER_USER`] per identity and [`MAX_BOUND_PER_SESSION`] bound JIDs per
/// session, least recently used dropped first. Session ids are bearer secrets:
/// `Debug` shows only counts.
pub struct Sessions {
    kind: AuthorityKind,
    domain: String,
    lifetime: Duration,
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

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("kind", &self.kind)
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

    /// Sessions of the secure domain with explicit bounds (each at least 1).
    pub fn with_limits(domain: &str, max_sessions: usize, max_per_user: usize) -> Sessions {
        Sessions::build(AuthorityKind::XmppDomain, domain, max_sessions, max_per_user)
    }

    /// Sessions of `authority` with the default bounds.
    pub fn for_authority(authority: &Authority) -> Sessions {
        Sessions::build(authority.kind, &authority.domain, MAX_SESSIONS, MAX_SESSIONS_PER_USER)
    }

    fn build(kind: AuthorityKind, domain: &str, max_sessions: usize, max_per_user: usize) -> Sessions {
        Sessions {
            kind,
            domain: domain.to_string(),
            lifetime: kind.lifetime(),
            max_sessions: max_sessions.max(1),
            max_per_user: max_per_user.max(1),
            sessions: HashMap::new(),
            bound: HashMap::new(),
            last_purge: None,
        }
    }

    /// The authority's domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Which authority these sessions belong to.
    pub fn kind(&self) -> AuthorityKind {
        self.kind
    }

    /// Number of live sessions (expired ones go at the next `authenticate`).
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// True when there are no sessions.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    fn expired(&self, s: &Session, now: Instant) -> bool {
        now.saturating_duration_since(s.last_used) >= self.lifetime
    }

    /// Authenticate a conference request for `room` from `sender` (its real full JID).
    pub fn authenticate(
        &mut self,
        sender: &Jid,
        session_id: Option<&str>,
        machine_uid: Option<&str>,
        room: &Jid,
        now: Instant,
    ) -> AuthResult {
        if self.last_purge.is_none_or(|t| now.saturating_duration_since(t) >= PURGE_INTERVAL) {
            self.purge(now);
        }
        if let Some(sid) = session_id {
            if self.sessions.get(sid).is_some_and(|s| self.expired(s, now)) {
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
        if !sender.domain().eq_ignore_ascii_case(&self.domain) {
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
            Session {
                machine_uid: uid_digest(m),
                identity: identity.clone(),
                room: room.clone(),
                bound: VecDeque::new(),
                last_used: now,
            },
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

    /// True when `jid` (a real full JID) is bound to a session that has not expired at
    /// `now`, or (secure domain only) is on the secure domain. Under the JWT authority
    /// a JID of the domain needs its session too (Jicofo looks the JID's session up).
    pub fn is_authenticated(&self, jid: &Jid, now: Instant) -> bool {
        if self.kind == AuthorityKind::XmppDomain && jid.domain().eq_ignore_ascii_case(&self.domain) {
            return true;
        }
        self.bound
            .get(&jid_key(jid))
            .and_then(|sid| self.sessions.get(sid))
            .is_some_and(|s| !self.expired(s, now))
    }

    /// Destroy a session (`logout`); false when it does not exist.
    pub fn logout(&mut self, session_id: &str) -> bool {
        self.remove(session_id)
    }

    /// The conference of `room` ended: without auto-login (the JWT authority) the
    /// sessions created by requests for that room go. Returns how many went.
    pub fn conference_ended(&mut self, room: &Jid) -> usize {
        if self.kind.auto_login() {
            return 0;
        }
        let gone: Vec<String> = self.sessions.iter().filter(|(_, s)| s.room == *room).map(|(k, _)| k.clone()).collect();
        for sid in &gone {
            self.remove(sid);
        }
        gone.len()
    }

    fn purge(&mut self, now: Instant) {
        self.last_purge = Some(now);
        let gone: Vec<String> =
            self.sessions.iter().filter(|(_, s)| self.expired(s, now)).map(|(k, _)| k.clone()).collect();
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

    fn room() -> Jid {
        j("room1@conference.meet.test")
    }

    #[test]
    fn session_flow() {
        let mut s = Sessions::new("meet.test");
        let t = Instant::now();
        assert_eq!(s.authenticate(&j("anon@guest.meet.test/r"), None, Some("m"), &room(), t), AuthResult::Guest);
        assert_eq!(s.authenticate(&j("user1@meet.test/r"), None, None, &room(), t), AuthResult::MissingMachineUid);
        let AuthResult::Authenticated { session_id, identity } = s.authenticate(&j("user1@meet.test/r"), None, Some("m"), &room(), t)
        else {
            panic!()
        };
        assert_eq!(identity.to_string(), "user1@meet.test");
        let guest = j("anon@guest.meet.test/x");
        assert_eq!(s.authenticate(&guest, Some(&session_id), Some("other"), &room(), t), AuthResult::MachineUidMismatch);
        assert!(matches!(s.authenticate(&guest, Some(&session_id), Some("m"), &room(), t), AuthResult::Authenticated { .. }));
        assert!(s.is_authenticated(&guest, t));
        assert!(s.logout(&session_id));
        assert_eq!(s.authenticate(&guest, Some(&session_id), Some("m"), &room(), t), AuthResult::InvalidSession);
        assert!(!s.is_authenticated(&guest, t));
    }

    fn login(s: &mut Sessions, jid: &str, uid: &str, t: Instant) -> String {
        match s.authenticate(&j(jid), None, Some(uid), &room(), t) {
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
        assert!(matches!(s.authenticate(&guest, Some(&ids[0]), Some("m"), &room(), later), AuthResult::Authenticated { .. }));
        let extra = login(&mut s, "u@meet.test/other", "m", later + Duration::from_secs(1));
        assert_eq!(s.len(), MAX_SESSIONS_PER_USER);
        assert_eq!(s.authenticate(&guest, Some(&ids[1]), Some("m"), &room(), later), AuthResult::InvalidSession);
        for id in ids.iter().skip(2).chain([&ids[0], &extra]) {
            assert!(matches!(s.authenticate(&guest, Some(id), Some("m"), &room(), later), AuthResult::Authenticated { .. }));
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
        assert!(matches!(s.authenticate(&bound, Some(&first), Some("m"), &room(), t), AuthResult::Authenticated { .. }));
        for i in 1..1000u64 {
            login(&mut s, &format!("user{i}@meet.test/r"), "m", t + Duration::from_millis(i));
            assert!(s.len() <= 100);
            assert!(s.bound.len() <= 2 * 100);
        }
        assert_eq!(s.len(), 100);
        assert_eq!(s.authenticate(&bound, Some(&first), Some("m"), &room(), t), AuthResult::InvalidSession);
        assert!(!s.is_authenticated(&bound, t), "an evicted session's JIDs are unbound");
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
        assert_eq!(s.authenticate(&g, Some(&old), Some("m"), &room(), now), AuthResult::InvalidSession);
        assert!(matches!(s.authenticate(&g, Some(&b), Some("m"), &room(), now), AuthResult::Authenticated { .. }));
        assert!(matches!(s.authenticate(&g, Some(&c), Some("m"), &room(), now), AuthResult::Authenticated { .. }));
    }

    #[test]
    fn bound_jids_per_session_are_bounded() {
        let mut s = Sessions::new("meet.test");
        let t = Instant::now();
        let sid = login(&mut s, "u@meet.test/r", "m", t);
        for i in 0..1000 {
            let g = j(&format!("g{i}@guest.meet.test/x"));
            assert!(matches!(s.authenticate(&g, Some(&sid), Some("m"), &room(), t), AuthResult::Authenticated { .. }));
        }
        assert_eq!(s.sessions[&sid].bound.len(), MAX_BOUND_PER_SESSION);
        assert_eq!(s.bound.len(), MAX_BOUND_PER_SESSION);
        assert!(s.is_authenticated(&j("g999@guest.meet.test/x"), t));
        assert!(!s.is_authenticated(&j("g0@guest.meet.test/x"), t), "the oldest binding went");
        // A JID moves to the session it last presented.
        let other = login(&mut s, "v@meet.test/r", "n", t);
        let g = j("g999@guest.meet.test/x");
        s.authenticate(&g, Some(&other), Some("n"), &room(), t);
        assert!(!s.sessions[&sid].bound.contains(&jid_key(&g)));
        assert!(s.logout(&other));
        assert!(!s.is_authenticated(&g, t));
    }

    #[test]
    fn machine_uids_are_kept_at_a_fixed_size_and_must_not_be_empty() {
        let mut s = Sessions::new("meet.test");
        let t = Instant::now();
        let huge = "x".repeat(200_000);
        let sid = login(&mut s, "u@meet.test/r", &huge, t);
        assert_eq!(std::mem::size_of_val(&s.sessions[&sid].machine_uid), 20);
        let g = j("g@guest.meet.test/1");
        assert!(matches!(s.authenticate(&g, Some(&sid), Some(&huge), &room(), t), AuthResult::Authenticated { .. }));
        assert_eq!(s.authenticate(&g, Some(&sid), Some(&huge[1..]), &room(), t), AuthResult::MachineUidMismatch);
        assert_eq!(s.authenticate(&j("u@meet.test/r"), None, Some(""), &room(), t), AuthResult::MissingMachineUid);
        let sid2 = login(&mut s, "w@meet.test/r", "m", t);
        assert_eq!(s.authenticate(&g, Some(&sid2), Some(""), &room(), t), AuthResult::MachineUidMismatch);
        // Debug shows no session id.
        let dbg = format!("{s:?}");
        assert!(!dbg.contains(&sid) && !dbg.contains(&sid2), "{dbg}");
    }

    #[test]
    fn sessions_expire() {
        let mut s = Sessions::new("meet.test");
        let t = Instant::now();
        let AuthResult::Authenticated { session_id, .. } = s.authenticate(&j("u@meet.test/r"), None, Some("m"), &room(), t) else {
            panic!()
        };
        let later = t + SESSION_LIFETIME + Duration::from_secs(1);
        assert_eq!(s.authenticate(&j("g@x/r"), Some(&session_id), Some("m"), &room(), later), AuthResult::InvalidSession);
        assert_eq!(new_uuid().len(), 36);
    }

    fn jwt() -> Sessions {
        Sessions::for_authority(&Authority { kind: AuthorityKind::ExternalJwt, domain: "meet.test".into() })
    }

    #[test]
    fn jwt_authority_sessions_follow_jicofos_external_jwt_rules() {
        let mut s = jwt();
        assert!(AuthorityKind::ExternalJwt.is_external() && !AuthorityKind::XmppDomain.is_external());
        let t = Instant::now();
        // A sender of the token domain must send machine-uid, then gets a session bound
        // to its JID; a sender elsewhere is a guest.
        assert_eq!(s.authenticate(&j("user1@meet.test/r"), None, None, &room(), t), AuthResult::MissingMachineUid);
        assert_eq!(s.authenticate(&j("anon@guest.meet.test/r"), None, Some("m"), &room(), t), AuthResult::Guest);
        let user = j("user1@meet.test/r");
        let AuthResult::Authenticated { identity, session_id } = s.authenticate(&user, None, Some("m"), &room(), t) else {
            panic!()
        };
        assert_eq!(identity.to_string(), "user1@meet.test");
        assert!(s.is_authenticated(&user, t));
        // Unlike the secure domain, being on the domain is not enough: only a session counts.
        assert!(!s.is_authenticated(&j("user2@meet.test/r"), t));
        assert!(Sessions::new("meet.test").is_authenticated(&j("user2@meet.test/r"), t));
        // A guest connection presenting the session is bound to it.
        let guest = j("anon@guest.meet.test/r");
        assert!(matches!(s.authenticate(&guest, Some(&session_id), Some("m"), &room(), t), AuthResult::Authenticated { .. }));
        assert!(s.is_authenticated(&guest, t));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn jwt_sessions_live_one_minute_idle() {
        let mut s = jwt();
        let t = Instant::now();
        let user = j("user1@meet.test/r");
        let AuthResult::Authenticated { session_id, .. } = s.authenticate(&user, None, Some("m"), &room(), t) else { panic!() };
        // Each use renews it.
        let t1 = t + Duration::from_secs(50);
        assert!(matches!(s.authenticate(&user, Some(&session_id), Some("m"), &room(), t1), AuthResult::Authenticated { .. }));
        assert!(s.is_authenticated(&user, t1 + Duration::from_secs(59)));
        // A minute without use: the JID is no longer authenticated and the session is invalid.
        let t2 = t1 + JWT_SESSION_LIFETIME;
        assert!(!s.is_authenticated(&user, t2));
        assert_eq!(s.authenticate(&user, Some(&session_id), Some("m"), &room(), t2), AuthResult::InvalidSession);
        assert!(s.is_empty());
        // The secure domain's sessions live a day.
        let mut x = Sessions::new("meet.test");
        let AuthResult::Authenticated { session_id, .. } = x.authenticate(&user, None, Some("m"), &room(), t) else { panic!() };
        assert!(matches!(x.authenticate(&user, Some(&session_id), Some("m"), &room(), t2), AuthResult::Authenticated { .. }));
    }

    #[test]
    fn jwt_sessions_end_with_the_conference_of_their_room_and_secure_domain_ones_do_not() {
        let t = Instant::now();
        let other = j("room2@conference.meet.test");
        for (mut s, dropped) in [(jwt(), true), (Sessions::new("meet.test"), false)] {
            let a = j("a@meet.test/r");
            let b = j("b@meet.test/r");
            let AuthResult::Authenticated { session_id, .. } = s.authenticate(&a, None, Some("m"), &room(), t) else { panic!() };
            assert!(matches!(s.authenticate(&b, None, Some("m"), &other, t), AuthResult::Authenticated { .. }));
            assert_eq!(s.conference_ended(&room()), usize::from(dropped));
            assert_eq!(s.authenticate(&a, Some(&session_id), Some("m"), &room(), t) == AuthResult::InvalidSession, dropped);
            // The other room's session stays either way.
            assert!(s.is_authenticated(&b, t));
            assert_eq!(s.len(), if dropped { 1 } else { 2 });
        }
    }

    #[test]
    fn jwt_sessions_keep_the_bounds() {
        let mut s = Sessions::build(AuthorityKind::ExternalJwt, "meet.test", 50, 2);
        let t = Instant::now();
        for i in 0..500u64 {
            let who = j(&format!("u{}@meet.test/r", i % 100));
            assert!(matches!(s.authenticate(&who, None, Some("m"), &room(), t + Duration::from_millis(i)), AuthResult::Authenticated { .. }));
            assert!(s.len() <= 50);
        }
        assert_eq!(s.len(), 50);
        assert!(s.conference_ended(&room()) == 50 && s.is_empty() && s.bound.is_empty());
    }
}
