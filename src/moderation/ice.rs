//! ICE recovery requests (moderation.md §7, media.md §1.10/§3.6): what a Jingle
//! `session-info` asks for and the answer it gets, in Jicofo's order, and what to do
//! with the bridge's answer to an in-place ICE restart.
//!
//! 1. not the participant's current session → `item-not-found` "jingle session no longer active";
//! 2. `<bridge-session id='B' ice-restart='true'/>`: disabled → `feature-not-implemented`;
//!    over its own budget ([`RateBudget`]: ≥ 5 s apart, ≤ 5 a minute, separate from full
//!    restarts) → `resource-constraint` "rate-limited"; `B` not the current bridge session →
//!    `item-not-found`; else `result` and restart the bridge transport;
//! 3. `<ice-state>failed</ice-state>`: always `result`; re-invite (not rate limited) when the
//!    id equals the current bridge session (a missing id matches only a session without one);
//! 4. anything else: `result`, ignored.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::xmpp::jingle::stanzas::JingleRequest;
use crate::xml::Element;
use crate::xmpp::ns;
use crate::xmpp::stanza::ErrorCondition;

/// Requests at least this far apart…
pub const MIN_INTERVAL: Duration = Duration::from_secs(5);
/// …and at most this many per minute.
pub const MAX_PER_MINUTE: usize = 5;

/// What a `session-info` carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionInfo {
    /// An in-place ICE restart request (`<bridge-session ice-restart='true'>`).
    IceRestart {
        /// The `<bridge-session id>` the client means, if given.
        bridge_session: Option<String>,
    },
    /// A legacy client's ICE failure report (`<ice-state>failed</ice-state>`).
    IceFailed {
        /// The `<bridge-session id>` it came with, if any.
        bridge_session: Option<String>,
    },
    /// Any other `session-info`: answered `result`, ignored.
    Other,
}

impl SessionInfo {
    /// Classify a parsed `session-info` (an ICE restart request wins over an `ice-state`).
    pub fn of(req: &JingleRequest) -> SessionInfo {
        let id = req.bridge_session.as_ref().and_then(|b| b.id.clone());
        if req.bridge_session.as_ref().is_some_and(|b| b.ice_restart) {
            SessionInfo::IceRestart { bridge_session: id }
        } else if req.ice_state.as_deref() == Some("failed") {
            SessionInfo::IceFailed { bridge_session: id }
        } else {
            SessionInfo::Other
        }
    }
}

/// A request budget: at least [`MIN_INTERVAL`] apart, at most [`MAX_PER_MINUTE`] per
/// sliding minute. Holds at most `MAX_PER_MINUTE` instants.
#[derive(Clone, Debug, Default)]
pub struct RateBudget {
    times: VecDeque<Instant>,
}

impl RateBudget {
    /// Count a request at `now`; false (not counted) when over the budget.
    pub fn allow(&mut self, now: Instant) -> bool {
        while self.times.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60)) {
            self.times.pop_front();
        }
        if self.times.back().is_some_and(|t| now.duration_since(*t) < MIN_INTERVAL) || self.times.len() >= MAX_PER_MINUTE {
            return false;
        }
        self.times.push_back(now);
        true
    }
}

/// The answer to a `session-info` and what follows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IceDecision {
    /// Answer with this error; nothing else.
    Refuse(ErrorCondition, String),
    /// `result`, then ask the bridge for an in-place ICE restart of the endpoint.
    RestartTransport,
    /// `result`, then end the session ("success"/"moving") and invite again.
    ReInvite,
    /// `result`; nothing else.
    Ignore,
}

/// What the participant's state says about a `session-info`.
#[derive(Clone, Copy, Debug)]
pub struct SessionState<'a> {
    /// The request's sid is the participant's current Jingle session.
    pub current: bool,
    /// `--enable_ice_restart`.
    pub ice_restart_enabled: bool,
    /// The bridge session id of the participant's session, if it has one.
    pub bridge_session: Option<&'a str>,
}

/// Decide about `info` (consumes in-place restart budget from `budget` when it gets that far).
pub fn decide(info: &SessionInfo, st: SessionState<'_>, budget: &mut RateBudget, now: Instant) -> IceDecision {
    if !st.current {
        return IceDecision::Refuse(ErrorCondition::ItemNotFound, "jingle session no longer active".into());
    }
    match info {
        SessionInfo::IceRestart { bridge_session } => {
            if !st.ice_restart_enabled {
                return IceDecision::Refuse(ErrorCondition::FeatureNotImplemented, "in-place ICE restart is disabled".into());
            }
            if !budget.allow(now) {
                return IceDecision::Refuse(ErrorCondition::ResourceConstraint, "rate-limited".into());
            }
            if bridge_session.as_deref() != st.bridge_session || bridge_session.is_none() {
                let b = crate::xmpp::stanza::clip(bridge_session.as_deref().unwrap_or(""), 64);
                return IceDecision::Refuse(ErrorCondition::ItemNotFound, format!("{} is not a currently active session", b));
            }
            IceDecision::RestartTransport
        }
        SessionInfo::IceFailed { bridge_session } => {
            if bridge_session.as_deref() == st.bridge_session {
                IceDecision::ReInvite
            } else {
                IceDecision::Ignore
            }
        }
        SessionInfo::Other => IceDecision::Ignore,
    }
}

/// What to do with the bridge's answer to an in-place ICE restart (media.md §1.10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestartAnswer {
    /// Relay this ICE transport (generation `1`) to the participant in a transport-info.
    Relay(Element, u32),
    /// ICE was not established yet (no `ice-generation`) or not newer: relay nothing.
    Nothing,
    /// The bridge could not restart (no transport): full re-invite.
    ReInvite,
}

/// Decide on the inner ICE `<transport>` of the bridge's answer, given the generation
/// last relayed to this participant.
pub fn on_restart_answer(ice: Option<&Element>, last_relayed: Option<u32>) -> RestartAnswer {
    let Some(t) = ice.filter(|t| t.is("transport", ns::ICE_UDP)) else { return RestartAnswer::ReInvite };
    match t.get_attr("ice-generation").and_then(|g| g.parse::<u32>().ok()) {
        Some(g) if last_relayed.is_none_or(|l| g > l) => RestartAnswer::Relay(t.clone(), g),
        _ => RestartAnswer::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: &str = "0c9f3b1e";

    fn st(current: bool, enabled: bool, bs: Option<&str>) -> SessionState<'_> {
        SessionState { current, ice_restart_enabled: enabled, bridge_session: bs }
    }

    fn restart(id: Option<&str>) -> SessionInfo {
        SessionInfo::IceRestart { bridge_session: id.map(String::from) }
    }

    fn failed(id: Option<&str>) -> SessionInfo {
        SessionInfo::IceFailed { bridge_session: id.map(String::from) }
    }

    #[test]
    fn every_case_in_order() {
        let t0 = Instant::now();
        let mut b = RateBudget::default();
        // 1. Not the current session, whatever it carries.
        for info in [restart(Some(B)), failed(Some(B)), SessionInfo::Other] {
            assert_eq!(
                decide(&info, st(false, true, Some(B)), &mut b, t0),
                IceDecision::Refuse(ErrorCondition::ItemNotFound, "jingle session no longer active".into())
            );
        }
        // 2a. Disabled.
        assert_eq!(
            decide(&restart(Some(B)), st(true, false, Some(B)), &mut b, t0),
            IceDecision::Refuse(ErrorCondition::FeatureNotImplemented, "in-place ICE restart is disabled".into())
        );
        // 2d. Accepted.
        assert_eq!(decide(&restart(Some(B)), st(true, true, Some(B)), &mut b, t0), IceDecision::RestartTransport);
        // 2b. Too soon: rate-limited (before the id is even looked at).
        assert_eq!(
            decide(&restart(Some("other")), st(true, true, Some(B)), &mut b, t0 + Duration::from_secs(1)),
            IceDecision::Refuse(ErrorCondition::ResourceConstraint, "rate-limited".into())
        );
        // 2c. Another bridge session.
        assert_eq!(
            decide(&restart(Some("other")), st(true, true, Some(B)), &mut b, t0 + Duration::from_secs(6)),
            IceDecision::Refuse(ErrorCondition::ItemNotFound, "other is not a currently active session".into())
        );
        // 3. ice-state failed: matching id re-invites, never rate limited.
        for i in 0..10 {
            assert_eq!(decide(&failed(Some(B)), st(true, true, Some(B)), &mut b, t0 + Duration::from_millis(i)), IceDecision::ReInvite);
        }
        assert_eq!(decide(&failed(Some("x")), st(true, true, Some(B)), &mut b, t0), IceDecision::Ignore);
        // A missing id matches only a session without one.
        assert_eq!(decide(&failed(None), st(true, true, Some(B)), &mut b, t0), IceDecision::Ignore);
        assert_eq!(decide(&failed(None), st(true, true, None), &mut b, t0), IceDecision::ReInvite);
        // 4. Anything else.
        assert_eq!(decide(&SessionInfo::Other, st(true, true, Some(B)), &mut b, t0), IceDecision::Ignore);
    }

    #[test]
    fn the_budget_is_five_seconds_apart_and_five_a_minute() {
        let t0 = Instant::now();
        let mut b = RateBudget::default();
        for i in 0..5 {
            assert!(b.allow(t0 + Duration::from_secs(6 * i)), "request {}", i);
        }
        assert!(!b.allow(t0 + Duration::from_secs(36)), "sixth within the minute");
        assert!(!b.allow(t0 + Duration::from_secs(26)));
        assert!(b.allow(t0 + Duration::from_secs(61)), "the first has aged out");
        assert!(b.times.len() <= MAX_PER_MINUTE);
    }

    #[test]
    fn the_bridge_answer_decides_relay_nothing_or_reinvite() {
        let t = |g: Option<&str>| {
            let mut e = Element::new("transport", ns::ICE_UDP).attr("ufrag", "u").attr("pwd", "p");
            if let Some(g) = g {
                e.set_attr("ice-generation", g);
            }
            e
        };
        assert_eq!(on_restart_answer(Some(&t(Some("1"))), None), RestartAnswer::Relay(t(Some("1")), 1));
        assert_eq!(on_restart_answer(Some(&t(Some("2"))), Some(1)), RestartAnswer::Relay(t(Some("2")), 2));
        assert_eq!(on_restart_answer(Some(&t(Some("1"))), Some(1)), RestartAnswer::Nothing);
        assert_eq!(on_restart_answer(Some(&t(None)), None), RestartAnswer::Nothing);
        assert_eq!(on_restart_answer(None, None), RestartAnswer::ReInvite);
    }
}
