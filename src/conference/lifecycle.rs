//! The room's life cycle: one state machine, values in and out (no `Env`, no stanzas).
//!
//! ```text
//!            join presence sent          own presence (owner), room configured
//!  start ──▶ Joining ─────────────────────────────────────────────▶ Running
//!              │  ▲                                                  │  │
//!              │  └──────── connection back: rejoin ◀── Away ◀───────┘  │ connection
//!              │                                         │              │ lost
//!              │ refused, no answer,                     │ shutdown     │ room empty and nobody
//!              │ shutdown                                ▼              │ expected, nobody came,
//!              └────────────────────────────────────▶ Ended ◀──────────┘ destroyed, not owner,
//!                                                   (reason, in room?)      shutdown
//! ```
//!
//! `Ended` remembers whether the focus is still in the room (then it sends its leave,
//! unless the room was destroyed). A shutdown or a closed inbox also *aborts*: no
//! blocking wait starts or goes on after it.
//!
//! The start timeout lives here too: a conference nobody joined within [`START_TIMEOUT`]
//! ends; so does an empty one, unless someone who asked for the room is still expected
//! ([`Expected`], bounded).

use std::collections::BTreeMap;
use std::time::Instant;

use super::{EndReason, START_TIMEOUT};
use crate::jid::Jid;

/// Where the conference is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The focus's join (first or after a reconnect) is under way; it is not in the room.
    Joining,
    /// The focus is in the room as its owner.
    Running,
    /// The client connection is down; the conference is kept and rejoins when it is back.
    Away,
    /// Over; `in_room`: the focus is still in the room (it leaves as the thread ends).
    Ended {
        /// Why it ended (the first reason given stays).
        reason: EndReason,
        /// The focus is still in the room.
        in_room: bool,
    },
}

/// The life-cycle state of one conference.
#[derive(Debug)]
pub struct Lifecycle {
    phase: Phase,
    /// A shutdown (or a closed inbox) was seen: no more waiting for anything.
    aborted: bool,
    /// When the conference ends for want of participants (`None`: someone is here).
    start_deadline: Option<Instant>,
    /// A participant has been here at some point.
    anyone_came: bool,
}

impl Lifecycle {
    /// A new conference, joining, created at `now`.
    pub fn new(now: Instant) -> Lifecycle {
        Lifecycle { phase: Phase::Joining, aborted: false, start_deadline: Some(now + START_TIMEOUT), anyone_came: false }
    }

    /// Where the conference is in its life.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The focus is in the room (running, or ended without having left yet).
    pub fn in_room(&self) -> bool {
        matches!(self.phase, Phase::Running | Phase::Ended { in_room: true, .. })
    }

    /// In the room and not ended: participants can be served.
    pub fn is_running(&self) -> bool {
        self.phase == Phase::Running
    }

    /// The client connection is up (as far as this conference knows).
    pub fn is_connected(&self) -> bool {
        self.phase != Phase::Away
    }

    /// Why the conference ended; `None` while it has not.
    pub fn ended(&self) -> Option<EndReason> {
        match self.phase {
            Phase::Ended { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// A shutdown was seen: waits are over.
    pub fn is_aborted(&self) -> bool {
        self.aborted
    }

    /// The focus's own presence came: it is in the room.
    pub fn joined_room(&mut self) {
        match &mut self.phase {
            Phase::Ended { in_room, .. } => *in_room = true,
            p => *p = Phase::Running,
        }
    }

    /// The focus is out of the room (destroyed, removed): the conference ends with `reason`
    /// (unless it ended already) and sends no leave.
    pub fn out_of_room(&mut self, reason: EndReason) {
        self.end(reason);
        if let Phase::Ended { in_room, .. } = &mut self.phase {
            *in_room = false;
        }
    }

    /// The client connection went down.
    pub fn connection_lost(&mut self) {
        match &mut self.phase {
            Phase::Ended { in_room, .. } => *in_room = false,
            p => *p = Phase::Away,
        }
    }

    /// The client connection is back: true when the conference must rejoin (it was away).
    pub fn connection_back(&mut self) -> bool {
        if self.phase == Phase::Away {
            self.phase = Phase::Joining;
            return true;
        }
        false
    }

    /// End with `reason` (the first reason stays).
    pub fn end(&mut self, reason: EndReason) {
        if self.ended().is_none() {
            self.phase = Phase::Ended { reason, in_room: self.in_room() };
        }
    }

    /// A shutdown or a closed inbox: end now, and wait for nothing more.
    pub fn abort(&mut self) {
        self.aborted = true;
        self.end(EndReason::Shutdown);
    }

    /// As the thread ends: whether the focus must send its leave (it is in a room that
    /// still exists); afterwards it is out of the room.
    pub fn leave(&mut self) -> bool {
        let leave = self.in_room() && self.ended() != Some(EndReason::RoomDestroyed);
        if let Phase::Ended { in_room, .. } = &mut self.phase {
            *in_room = false;
        }
        leave
    }

    /// When the start timeout fires, if it is set.
    pub fn start_deadline(&self) -> Option<Instant> {
        self.start_deadline
    }

    /// A participant is here: no start timeout.
    pub fn someone_joined(&mut self) {
        self.start_deadline = None;
        self.anyone_came = true;
    }

    /// Whether a participant has been here at some point.
    pub fn anyone_came(&self) -> bool {
        self.anyone_came
    }

    /// Wait for participants until `t`.
    pub fn wait_until(&mut self, t: Instant) {
        self.start_deadline = Some(t);
    }

    /// The start timeout at `now`: true when it fired (and is cleared).
    pub fn start_timeout_fired(&mut self, now: Instant) -> bool {
        if self.start_deadline.is_some_and(|d| now >= d) {
            self.start_deadline = None;
            return true;
        }
        false
    }
}

/// Requesters who asked for the room and have not joined yet, with how many requests
/// and when the latest came. Bounded by the cap given to [`Expected::expect`].
#[derive(Debug, Default)]
pub struct Expected {
    map: BTreeMap<Jid, (u32, Instant)>,
}

impl Expected {
    /// `requester` asked at `now`. Past `cap` entries, expired ones go, then the oldest.
    pub fn expect(&mut self, requester: Jid, now: Instant, cap: usize) {
        if self.map.len() >= cap && !self.map.contains_key(&requester) {
            self.forget_expired(now);
            while self.map.len() >= cap {
                let Some(oldest) = self.map.iter().min_by_key(|(_, (_, t))| *t).map(|(j, _)| j.clone()) else { break };
                self.map.remove(&oldest);
            }
        }
        let e = self.map.entry(requester).or_insert((0, now));
        *e = (e.0 + 1, now);
    }

    /// `jid` joined: one of its requests is fulfilled.
    pub fn arrived(&mut self, jid: &Jid) {
        if let Some(e) = self.map.get_mut(jid) {
            e.0 = e.0.saturating_sub(1);
        }
    }

    fn forget_expired(&mut self, now: Instant) {
        self.map.retain(|_, (n, t)| *n > 0 && now < *t + START_TIMEOUT);
    }

    /// The room is empty at `now`: until when to wait for someone still expected, if anyone.
    pub fn wait_for_someone(&mut self, now: Instant) -> Option<Instant> {
        self.forget_expired(now);
        self.map.values().map(|(_, t)| *t + START_TIMEOUT).max()
    }

    /// How many requesters are expected.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when nobody is expected.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn j(s: &str) -> Jid {
        Jid::parse(s).unwrap()
    }

    #[test]
    fn join_run_away_rejoin_end() {
        let t0 = Instant::now();
        let mut l = Lifecycle::new(t0);
        assert_eq!(l.phase(), Phase::Joining);
        assert!(!l.in_room() && !l.is_running() && l.is_connected());
        assert_eq!(l.start_deadline(), Some(t0 + START_TIMEOUT));
        l.joined_room();
        assert!(l.is_running() && l.in_room());
        l.connection_lost();
        assert_eq!(l.phase(), Phase::Away);
        assert!(!l.is_connected() && !l.in_room());
        assert!(l.connection_back(), "rejoin");
        assert_eq!(l.phase(), Phase::Joining);
        assert!(!l.connection_back(), "only once");
        l.joined_room();
        l.end(EndReason::RoomEmpty);
        l.end(EndReason::Shutdown);
        assert_eq!(l.phase(), Phase::Ended { reason: EndReason::RoomEmpty, in_room: true }, "the first reason stays");
        assert!(!l.is_running() && !l.is_aborted());
        assert!(l.leave(), "in the room: leave");
        assert!(!l.leave() && !l.in_room(), "left");
    }

    #[test]
    fn no_leave_from_a_room_the_focus_is_not_in() {
        // Destroyed: no leave.
        let mut l = Lifecycle::new(Instant::now());
        l.joined_room();
        l.out_of_room(EndReason::RoomDestroyed);
        assert_eq!(l.ended(), Some(EndReason::RoomDestroyed));
        assert!(!l.leave());
        // Ownership lost while in the room: leave.
        let mut l = Lifecycle::new(Instant::now());
        l.joined_room();
        l.end(EndReason::NotOwner);
        assert!(l.leave());
        // A join that never completed, or a shutdown while away: no leave.
        let mut l = Lifecycle::new(Instant::now());
        l.end(EndReason::JoinFailed);
        assert!(!l.leave());
        let mut l = Lifecycle::new(Instant::now());
        l.joined_room();
        l.connection_lost();
        l.abort();
        assert_eq!(l.ended(), Some(EndReason::Shutdown));
        assert!(l.is_aborted() && !l.leave());
        // The room destroyed while the focus is in it but after another end: still no leave.
        let mut l = Lifecycle::new(Instant::now());
        l.joined_room();
        l.end(EndReason::RoomEmpty);
        l.out_of_room(EndReason::RoomDestroyed);
        assert_eq!(l.ended(), Some(EndReason::RoomEmpty));
        assert!(!l.leave());
    }

    #[test]
    fn the_start_timeout_fires_once_unless_someone_joined() {
        let t0 = Instant::now();
        let mut l = Lifecycle::new(t0);
        assert!(!l.start_timeout_fired(t0 + START_TIMEOUT - Duration::from_millis(1)));
        assert!(l.start_timeout_fired(t0 + START_TIMEOUT));
        assert!(!l.start_timeout_fired(t0 + START_TIMEOUT * 2), "cleared");
        l.wait_until(t0 + START_TIMEOUT * 3);
        l.someone_joined();
        assert!(!l.start_timeout_fired(t0 + START_TIMEOUT * 4));
    }

    #[test]
    fn expected_requesters_are_bounded_and_expire() {
        let t0 = Instant::now();
        let mut e = Expected::default();
        for i in 0..100u64 {
            e.expect(j(&format!("u{i}@meet.test/r")), t0 + Duration::from_millis(i), 5);
        }
        assert_eq!(e.len(), 5, "the oldest made room");
        // The latest request counts: the room waits START_TIMEOUT after it.
        assert_eq!(e.wait_for_someone(t0 + Duration::from_secs(1)), Some(t0 + Duration::from_millis(99) + START_TIMEOUT));
        // Who arrived is no longer expected; who asked too long ago neither.
        for i in 95..100u64 {
            e.arrived(&j(&format!("u{i}@meet.test/r")));
        }
        assert_eq!(e.wait_for_someone(t0 + Duration::from_secs(1)), None);
        assert!(e.is_empty());
        e.expect(j("x@meet.test/r"), t0, 5);
        e.expect(j("x@meet.test/r"), t0 + Duration::from_secs(2), 5);
        e.arrived(&j("x@meet.test/r"));
        assert_eq!(e.wait_for_someone(t0 + Duration::from_secs(3)), Some(t0 + Duration::from_secs(2) + START_TIMEOUT), "asked twice, came once");
        assert_eq!(e.wait_for_someone(t0 + Duration::from_secs(2) + START_TIMEOUT), None, "expired");
    }
}
