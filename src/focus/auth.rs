//! Secure domain (XMPP-domain authentication, `--auth_domain`): in-memory sessions.
//!
//! A user authenticated on the secure domain who asks for a conference with a
//! `machine-uid` gets a session (UUID `session-id`, 24 h idle lifetime). Later
//! requests presenting that `session-id` with the same `machine-uid` (for example
//! from an anonymous guest connection) count as authenticated and bind the sender's
//! full JID to the session; conferences make bound JIDs owners.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::jid::Jid;

/// Idle lifetime of a session.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(24 * 3600);

#[derive(Clone, Debug)]
struct Session {
    machine_uid: String,
    identity: Jid,
    bound: Vec<Jid>,
    last_used: Instant,
}

/// The outcome of authenticating a conference request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthResult {
    /// Authenticated as `identity` with `session_id`.
    Authenticated { identity: Jid, session_id: String },
    /// Not authenticated (guest); may still join existing rooms.
    Guest,
    /// `session-id` unknown or expired.
    InvalidSession,
    /// Session found but `machine-uid` differs (or is empty).
    MachineUidMismatch,
    /// Sender is on the secure domain but sent no `machine-uid`.
    MissingMachineUid,
}

/// All sessions of the secure domain.
#[derive(Debug)]
pub struct Sessions {
    domain: String,
    sessions: HashMap<String, Session>,
}

impl Sessions {
    pub fn new(domain: &str) -> Sessions {
        Sessions { domain: domain.to_string(), sessions: HashMap::new() }
    }

    /// The secure domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Authenticate a conference request from `sender` (its real full JID).
    pub fn authenticate(
        &mut self,
        sender: &Jid,
        session_id: Option<&str>,
        machine_uid: Option<&str>,
        now: Instant,
    ) -> AuthResult {
        self.purge(now);
        if let Some(sid) = session_id {
            let Some(s) = self.sessions.get_mut(sid) else { return AuthResult::InvalidSession };
            match machine_uid {
                Some(m) if m == s.machine_uid => {}
                _ => return AuthResult::MachineUidMismatch,
            }
            s.last_used = now;
            if !s.bound.contains(sender) {
                s.bound.push(sender.clone());
            }
            return AuthResult::Authenticated { identity: s.identity.clone(), session_id: sid.to_string() };
        }
        if sender.domain() != self.domain {
            return AuthResult::Guest;
        }
        let Some(m) = machine_uid else { return AuthResult::MissingMachineUid };
        let sid = new_uuid();
        self.sessions.insert(
            sid.clone(),
            Session { machine_uid: m.to_string(), identity: sender.bare(), bound: vec![sender.clone()], last_used: now },
        );
        AuthResult::Authenticated { identity: sender.bare(), session_id: sid }
    }

    /// True when `jid` (a real full JID) is on the secure domain or bound to a live session.
    pub fn is_authenticated(&self, jid: &Jid) -> bool {
        jid.domain() == self.domain || self.sessions.values().any(|s| s.bound.contains(jid))
    }

    /// Destroy a session (`logout`); false when it does not exist.
    pub fn logout(&mut self, session_id: &str) -> bool {
        self.sessions.remove(session_id).is_some()
    }

    fn purge(&mut self, now: Instant) {
        self.sessions.retain(|_, s| now.duration_since(s.last_used) < SESSION_LIFETIME);
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
