//! One participant of a conference, one value each ([`Participant`]): what its presence
//! says (nick, which is its endpoint id, real JID, role, stats id, region, mute flags,
//! Jibri/Jigasi), its features, where it stands with the media ([`State`]) together with
//! what belongs to that state (its Jingle [`Session`] with the source signaling not yet
//! sent to it), and what lives as long as it is in the room: its budgets of full and
//! in-place ICE restarts, the last ICE generation relayed to it and its bridge force-mute
//! state.
//!
//! ```text
//!                join
//!                 │
//!                 ▼
//!          ┌─────────────┐
//!          │ Discovering │  disco#info outstanding
//!          └─────────────┘
//!                 │ features known: disco answered or timed out, or the caps cache
//!                 ▼
//!          ┌─────────────┐ ◀───────────────────────────────────────────────┐
//!          │    Ready    │ ◀─────────────────┐                             │
//!          └─────────────┘                   │ allocation not answered,    │
//!                 │ invited (two in the      │ bridge failed or moving     │
//!                 │ room, a bridge to use)   │                             │
//!                 ▼                          │                             │
//!          ┌─────────────┐ ──────────────────┘                             │
//!          │ Allocating  │ ── refused by the bridge ──┐                    │
//!          └─────────────┘                            ▼                    │
//!                 │ endpoint created,          ┌─────────────┐             │
//!                 │ session-initiate sent      │   Failed    │             │
//!                 ▼                            └─────────────┘             │
//!          ┌─────────────┐ ── offer refused ──────────▲                    │
//!          │   Offered   │ ───────────────────────────┼────────────────────┤
//!          └─────────────┘                            │                    │
//!                 │ session-accept                    │                    │
//!                 ▼                                   │                    │
//!          ┌─────────────┐ ── offer refused ──────────┘                    │
//!          │   Active    │ ────────────────────────────────────────────────┘
//!          └─────────────┘   session ended: restart, move to a new bridge session,
//!                            ICE re-invite, bridge failure, alone too long
//!
//!   every state ── leaves the room (or vanished while the focus was away) ──▶ Leaving
//! ```
//!
//! `Leaving` is where a participant ends: [`Participant::leave`] hands back what its state
//! held (the session to end, whether an endpoint may exist on the bridge), and every later
//! event is ignored. `Failed` is kept until the participant leaves (an invitation that
//! failed for a reason retrying will not fix). A bridge failure ([`Participant::bridge_lost`])
//! sends everyone with an endpoint back to `Ready`, to be invited again on another bridge
//! session.
//!
//! These are values: the conference thread makes the transitions as stanzas and timers
//! arrive, and sends what they return. Allocation is a blocking request on the conference
//! thread, so nothing else happens to the conference while a participant is `Allocating`;
//! a leave that arrives meanwhile is handled after the answer.

use std::time::Instant;

use super::mute::ForceMute;
use super::signaling::PendingSignal;
use crate::ids::{BridgeSessionId, Nick, Sid};
use crate::jid::Jid;
use crate::moderation::ice::RateBudget;
use crate::xmpp::jigasi::Robot;
use crate::xmpp::jingle::codecs::Features;
use crate::xmpp::muc::{Affiliation, Role};

/// A participant's Jingle session: offered, then active.
#[derive(Debug, Clone)]
pub struct Session {
    /// The Jingle session id of the offer.
    pub sid: Sid,
    /// The bridge session the offer was made on (`<bridge-session id>`).
    pub bridge_session: BridgeSessionId,
    /// What the participant supports (from its features).
    pub features: Features,
    /// Source changes of the others not yet signaled to it in this session.
    pub signals: PendingSignal,
}

impl Session {
    /// A new session: nothing queued (the offer carries everything known so far).
    pub fn new(sid: Sid, bridge_session: BridgeSessionId, features: Features) -> Session {
        Session { sid, bridge_session, features, signals: PendingSignal::default() }
    }
}

/// Where a participant stands with the media (see the diagram in the module doc).
#[derive(Debug, Clone)]
pub enum State {
    /// Its features are being discovered (disco#info outstanding).
    Discovering,
    /// Features known, no session: waits to be invited.
    Ready,
    /// Its endpoint is being created on the bridge.
    Allocating,
    /// `session-initiate` sent; waiting for `session-accept`.
    Offered(Session),
    /// The session is accepted.
    Active(Session),
    /// Its invitation failed for a reason retrying will not fix; not invited again.
    Failed,
    /// It left the room: what it held is being released.
    Leaving,
}

impl State {
    /// The state's name, for logs and tests.
    pub fn name(&self) -> &'static str {
        match self {
            State::Discovering => "discovering",
            State::Ready => "ready",
            State::Allocating => "allocating",
            State::Offered(_) => "offered",
            State::Active(_) => "active",
            State::Failed => "failed",
            State::Leaving => "leaving",
        }
    }
}

/// What a participant held when it left ([`Participant::leave`]).
#[derive(Debug)]
pub struct Released {
    /// Its session, if it had one: to end, and its sources to drop.
    pub session: Option<Session>,
    /// It may have an endpoint on the bridge (it was allocating or had a session).
    pub endpoint: bool,
}

/// One participant: presence, features, media state and per-participant budgets.
#[derive(Debug, Clone)]
pub struct Participant {
    /// Its MUC nick, which is also its endpoint id on the bridge.
    pub nick: Nick,
    /// Its real JID, when the room shows it.
    pub real_jid: Option<Jid>,
    /// Its affiliation in the room.
    pub affiliation: Affiliation,
    /// Its role in the room.
    pub role: Role,
    /// The stats id its presence gives (passed to the bridge).
    pub stats_id: Option<String>,
    /// The region its presence gives (bridge selection).
    pub region: Option<String>,
    /// Its presence says its audio is muted.
    pub audio_muted: bool,
    /// Its presence says its video is muted.
    pub video_muted: bool,
    /// Jibri, Jigasi or the transcriber: presence features from a trusted domain (§5.5).
    pub robot: Option<Robot>,
    /// When it was admitted.
    pub joined_at: Instant,
    /// Not seen since the last rejoin (dropped when the rejoin completes).
    pub(crate) stale: bool,
    /// Its disco#info features (empty until discovered).
    features: Vec<String>,
    state: State,
    /// Full restarts (session-terminate with restart), ≥ 5 s apart and ≤ 5 a minute.
    restarts: RateBudget,
    /// In-place ICE restarts, a budget of their own.
    ice_restarts: RateBudget,
    /// The last ICE generation relayed to it.
    ice_generation: Option<u32>,
    /// What the bridge was last told to force-mute.
    force_mute: ForceMute,
}

impl Participant {
    /// A participant that just joined: its features are being discovered.
    pub fn new(nick: Nick, now: Instant) -> Participant {
        Participant {
            nick,
            real_jid: None,
            affiliation: Affiliation::None,
            role: Role::Participant,
            stats_id: None,
            region: None,
            audio_muted: false,
            video_muted: false,
            robot: None,
            joined_at: now,
            stale: false,
            features: Vec::new(),
            state: State::Discovering,
            restarts: RateBudget::default(),
            ice_restarts: RateBudget::default(),
            ice_generation: None,
            force_mute: ForceMute::default(),
        }
    }

    /// Owner or moderator rights (§3.3 mapping).
    pub fn is_moderator(&self) -> bool {
        matches!(self.affiliation, Affiliation::Owner | Affiliation::Admin) || self.role == Role::Moderator
    }

    /// Jibri and Jigasi (recognised by presence features from a trusted domain) are not
    /// eligible for ownership and are muted only as [`Robot::may_be_muted`] says.
    pub fn is_jibri_or_jigasi(&self) -> bool {
        self.robot.is_some()
    }

    /// Never muted, by anyone (moderation.md §1.3, §2 row 8): Jibri, and Jigasi without
    /// the audio-mute feature (there are no visitors here).
    /// Recognised only from a trusted domain (`robot`), never from features alone.
    pub fn mute_exempt(&self) -> bool {
        self.robot.is_some_and(|r| !matches!(r, Robot::Jigasi { audio_mute: true }))
    }

    /// Where it stands.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Its features, once discovered.
    pub fn features(&self) -> Option<&[String]> {
        match self.state {
            State::Discovering | State::Leaving => None,
            _ => Some(&self.features),
        }
    }

    /// Its session, offered or active.
    pub fn session(&self) -> Option<&Session> {
        match &self.state {
            State::Offered(s) | State::Active(s) => Some(s),
            _ => None,
        }
    }

    /// Its session, offered or active, to change.
    pub fn session_mut(&mut self) -> Option<&mut Session> {
        match &mut self.state {
            State::Offered(s) | State::Active(s) => Some(s),
            _ => None,
        }
    }

    /// Its session, when it is the one with `sid`.
    pub fn session_with(&self, sid: &str) -> Option<&Session> {
        self.session().filter(|s| s.sid == sid)
    }

    /// Its session is accepted.
    pub fn is_active(&self) -> bool {
        matches!(self.state, State::Active(_))
    }

    /// Its invitation failed for good.
    pub fn is_failed(&self) -> bool {
        matches!(self.state, State::Failed)
    }

    /// Features known and no session: it can be invited now.
    pub fn is_ready(&self) -> bool {
        matches!(self.state, State::Ready)
    }

    /// Its features are known (disco answered or failed, or the caps cache knew them):
    /// `Discovering` → `Ready`. Ignored in any other state (the first answer counts).
    pub fn discovered(&mut self, features: Vec<String>) {
        if matches!(self.state, State::Discovering) {
            self.features = features;
            self.state = State::Ready;
        }
    }

    /// Its endpoint is being created on the bridge: `Ready` → `Allocating`. False (and
    /// nothing changes) in any other state.
    pub fn allocating(&mut self) -> bool {
        if !self.is_ready() {
            return false;
        }
        self.state = State::Allocating;
        true
    }

    /// The allocation did not give it a session: back to `Ready` to be invited again
    /// (`retry`: not answered, the bridge failed, everyone moves) or `Failed` (refused for
    /// a reason retrying will not fix). Ignored unless `Allocating`.
    pub fn allocation_failed(&mut self, retry: bool) {
        if matches!(self.state, State::Allocating) {
            self.state = if retry { State::Ready } else { State::Failed };
        }
    }

    /// Its endpoint exists and the offer is sent: `Allocating` → `Offered(session)`.
    /// Ignored in any other state.
    pub fn offered(&mut self, session: Session) {
        if matches!(self.state, State::Allocating) {
            self.state = State::Offered(session);
        }
    }

    /// It accepted the session: `Offered` → `Active`. True when the session is (now) active.
    pub fn accepted(&mut self) -> bool {
        let state = std::mem::replace(&mut self.state, State::Leaving);
        self.state = match state {
            State::Offered(s) | State::Active(s) => State::Active(s),
            other => other,
        };
        self.is_active()
    }

    /// Its session ends (restart, re-invite, alone too long, moving): `Offered`/`Active` →
    /// `Ready`, returning the session for the conference to end. `None` in any other state.
    pub fn end_session(&mut self) -> Option<Session> {
        self.take_session(State::Ready)
    }

    /// It answered the offer `sid` with an error: the session ends and the participant is
    /// not invited again (`Failed`). `None` (nothing changes) unless `sid` is its session.
    pub fn offer_refused(&mut self, sid: &str) -> Option<Session> {
        self.session_with(sid)?;
        self.take_session(State::Failed)
    }

    /// The bridge session is gone (bridge failed, graceful shutdown, session removed):
    /// whoever had an endpoint goes back to `Ready` to be invited on a new one; the session
    /// to end is returned. Other states do not change.
    pub fn bridge_lost(&mut self) -> Option<Session> {
        if matches!(self.state, State::Allocating) {
            self.state = State::Ready;
            return None;
        }
        self.take_session(State::Ready)
    }

    /// It left the room: → `Leaving`, with what its state held.
    pub fn leave(&mut self) -> Released {
        let state = std::mem::replace(&mut self.state, State::Leaving);
        match state {
            State::Offered(s) | State::Active(s) => Released { session: Some(s), endpoint: true },
            State::Allocating => Released { session: None, endpoint: true },
            _ => Released { session: None, endpoint: false },
        }
    }

    fn take_session(&mut self, next: State) -> Option<Session> {
        if self.session().is_none() {
            return None;
        }
        match std::mem::replace(&mut self.state, next) {
            State::Offered(s) | State::Active(s) => Some(s),
            _ => None,
        }
    }

    /// Count a full restart request at `now`; false when over its budget (≥ 5 s apart,
    /// ≤ 5 a minute).
    pub fn restart_allowed(&mut self, now: Instant) -> bool {
        self.restarts.allow(now)
    }

    /// Its budget of in-place ICE restarts (separate from full restarts).
    pub fn ice_budget(&mut self) -> &mut RateBudget {
        &mut self.ice_restarts
    }

    /// The last ICE generation relayed to it.
    pub fn ice_generation(&self) -> Option<u32> {
        self.ice_generation
    }

    /// `generation` was relayed to it.
    pub fn relayed_ice_generation(&mut self, generation: u32) {
        self.ice_generation = Some(generation);
    }

    /// What the bridge was last told to force-mute for it.
    pub fn force_mute(&mut self) -> &mut ForceMute {
        &mut self.force_mute
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn session(sid: &str) -> Session {
        Session::new(Sid::from(sid), BridgeSessionId::from("bs1"), Features::default())
    }

    fn features() -> Vec<String> {
        vec!["urn:xmpp:jingle:apps:rtp:audio".into()]
    }

    /// A participant driven into `state` (by name) through the transitions.
    fn in_state(name: &str, t0: Instant) -> Participant {
        let mut p = Participant::new(Nick::from("p"), t0);
        let path: &[&str] = match name {
            "discovering" => &[],
            "ready" => &["discovered"],
            "allocating" => &["discovered", "allocating"],
            "offered" => &["discovered", "allocating", "offered"],
            "active" => &["discovered", "allocating", "offered", "accepted"],
            "failed" => &["discovered", "allocating", "refused"],
            "leaving" => &["leave"],
            _ => unreachable!(),
        };
        for step in path {
            match *step {
                "discovered" => p.discovered(features()),
                "allocating" => assert!(p.allocating()),
                "offered" => p.offered(session("s1")),
                "accepted" => assert!(p.accepted()),
                "refused" => p.allocation_failed(false),
                "leave" => {
                    p.leave();
                }
                _ => unreachable!(),
            }
        }
        assert_eq!(p.state().name(), name);
        p
    }

    const ALL: [&str; 7] = ["discovering", "ready", "allocating", "offered", "active", "failed", "leaving"];

    #[test]
    fn a_participant_goes_from_discovery_to_an_active_session() {
        let t0 = Instant::now();
        let mut p = Participant::new(Nick::from("p"), t0);
        assert_eq!(p.state().name(), "discovering");
        assert!(p.features().is_none() && !p.allocating(), "not invited while discovering");
        p.discovered(features());
        assert_eq!(p.features(), Some(&features()[..]));
        p.discovered(vec!["later".into()]);
        assert_eq!(p.features(), Some(&features()[..]), "the first answer counts");
        assert!(p.is_ready() && p.allocating());
        assert!(!p.allocating(), "allocated once");
        assert!(p.session().is_none());
        p.offered(session("s1"));
        assert_eq!(p.state().name(), "offered");
        assert!(p.session_with("s1").is_some() && p.session_with("s2").is_none());
        assert!(p.accepted());
        assert!(p.is_active());
        assert!(p.accepted(), "a second accept (transport-accept) keeps it active");
        assert_eq!(p.session().unwrap().sid, "s1");
    }

    #[test]
    fn an_ended_session_makes_the_participant_ready_for_a_new_invitation() {
        let t0 = Instant::now();
        for name in ["offered", "active"] {
            let mut p = in_state(name, t0);
            let s = p.end_session().expect("the session to end");
            assert_eq!(s.sid, "s1");
            assert!(p.is_ready(), "{name}: invited again later");
            assert!(p.end_session().is_none(), "ended once");
        }
        for name in ["discovering", "ready", "allocating", "failed", "leaving"] {
            let mut p = in_state(name, t0);
            assert!(p.end_session().is_none(), "{name}");
            assert_eq!(p.state().name(), name, "{name}: unchanged");
        }
    }

    #[test]
    fn an_allocation_that_fails_retries_or_fails_for_good() {
        let t0 = Instant::now();
        let mut p = in_state("allocating", t0);
        p.allocation_failed(true);
        assert!(p.is_ready(), "not answered: invited again");
        let mut p = in_state("allocating", t0);
        p.allocation_failed(false);
        assert!(p.is_failed());
        assert!(!p.allocating(), "a failed participant is not invited again");
        // Outside Allocating it means nothing.
        let mut p = in_state("active", t0);
        p.allocation_failed(false);
        assert!(p.is_active());
    }

    #[test]
    fn a_refused_offer_fails_the_participant_only_for_its_own_session() {
        let t0 = Instant::now();
        for name in ["offered", "active"] {
            let mut p = in_state(name, t0);
            assert!(p.offer_refused("other").is_none(), "{name}: an answer about another session");
            assert_eq!(p.state().name(), name);
            assert_eq!(p.offer_refused("s1").unwrap().sid, "s1");
            assert!(p.is_failed(), "{name}");
        }
        for name in ["discovering", "ready", "allocating", "failed", "leaving"] {
            let mut p = in_state(name, t0);
            assert!(p.offer_refused("s1").is_none());
            assert_eq!(p.state().name(), name);
        }
    }

    #[test]
    fn a_leave_in_every_state_releases_what_that_state_holds() {
        let t0 = Instant::now();
        for name in ALL {
            let mut p = in_state(name, t0);
            let r = p.leave();
            assert_eq!(p.state().name(), "leaving", "{name}");
            let (had_session, endpoint) = match name {
                "offered" | "active" => (true, true),
                "allocating" => (false, true),
                _ => (false, false),
            };
            assert_eq!((r.session.is_some(), r.endpoint), (had_session, endpoint), "{name}");
            if let Some(s) = r.session {
                assert_eq!(s.sid, "s1");
            }
            // Whatever arrives later changes nothing.
            p.discovered(features());
            p.offered(session("s2"));
            assert!(!p.allocating() && !p.accepted() && p.end_session().is_none() && p.bridge_lost().is_none());
            assert!(p.features().is_none() && p.session().is_none());
            assert_eq!(p.state().name(), "leaving", "{name}");
        }
    }

    #[test]
    fn a_bridge_failure_in_every_state_sends_those_with_an_endpoint_back_to_ready() {
        let t0 = Instant::now();
        for name in ALL {
            let mut p = in_state(name, t0);
            let ended = p.bridge_lost();
            let after = match name {
                "allocating" | "offered" | "active" => "ready",
                other => other,
            };
            assert_eq!(p.state().name(), after, "{name}");
            assert_eq!(ended.is_some(), matches!(name, "offered" | "active"), "{name}: the session to end");
            // Its features stay: it can be invited again at once.
            assert_eq!(p.features().is_some(), !matches!(name, "discovering" | "leaving"), "{name}");
        }
    }

    #[test]
    fn restarts_and_ice_restarts_have_budgets_of_their_own_over_time() {
        let t0 = Instant::now();
        let mut p = in_state("active", t0);
        let s = |n: u64| t0 + Duration::from_secs(n);
        assert!(p.restart_allowed(s(0)));
        assert!(!p.restart_allowed(s(2)), "5 s apart");
        for n in [6, 12, 18, 24] {
            assert!(p.restart_allowed(s(n)), "{n}");
        }
        assert!(!p.restart_allowed(s(30)), "at most five a minute");
        assert!(p.restart_allowed(s(61)), "the first one is a minute old");
        // The ICE restart budget was not touched by the full restarts.
        assert!(p.ice_budget().allow(s(61)));
        assert!(!p.ice_budget().allow(s(62)));
        assert_eq!(p.ice_generation(), None);
        p.relayed_ice_generation(2);
        assert_eq!(p.ice_generation(), Some(2));
        // They outlive a session: a re-invite does not reset them.
        p.end_session();
        assert!(!p.restart_allowed(s(63)));
        assert_eq!(p.ice_generation(), Some(2));
    }

    #[test]
    fn roles_and_robots_decide_moderation_and_mute_exemption() {
        let t0 = Instant::now();
        let mut p = Participant::new(Nick::from("p"), t0);
        assert!(!p.is_moderator() && !p.is_jibri_or_jigasi() && !p.mute_exempt());
        p.role = Role::Moderator;
        assert!(p.is_moderator());
        p.role = Role::Participant;
        p.affiliation = Affiliation::Owner;
        assert!(p.is_moderator());
        p.robot = Some(Robot::Jibri);
        assert!(p.is_jibri_or_jigasi() && p.mute_exempt());
        p.robot = Some(Robot::Jigasi { audio_mute: true });
        assert!(!p.mute_exempt(), "a Jigasi that can mute its audio is muted like anyone");
    }
}

/// Participants' states in a whole conference on simulated time, and what a leave in each
/// state releases there.
#[cfg(test)]
mod in_a_conference {
    use std::time::Duration;

    use crate::conference::media_tests::{accept_for, bridge, colibri, jingle_to, ms, muc, request, room, shared, JINGLE};
    use crate::conference::sim::{occupant_leave, occupant_presence, FakeBridge, SimEnv};
    use crate::conference::{Conference, Env, Params, DISCO_TIMEOUT};
    use crate::ids::ConferenceId;
    use crate::messages::Inbox;
    use crate::xml::Element;
    use crate::xmpp::ns;

    /// Handle messages and timers as `run` does, until `at` (simulated time since the start).
    fn run_until(c: &mut Conference<SimEnv>, at: Duration) {
        let limit = c.env.now() + at.saturating_sub(c.env.elapsed());
        while c.life.ended().is_none() && c.env.now() < limit {
            let next = c.next_deadline();
            let wait = next.map_or(limit, |d| d.min(limit));
            match c.next_message(Some(wait)) {
                None => {
                    if next.is_some_and(|d| d <= wait) {
                        c.on_timer();
                    }
                }
                Some(m) => {
                    c.handle(m);
                    if next.is_some_and(|d| c.env.now() >= d) {
                        c.on_timer();
                    }
                }
            }
        }
    }

    fn states(c: &Conference<SimEnv>) -> Vec<(String, &'static str)> {
        c.occupants().iter().map(|p| (p.nick.to_string(), p.state().name())).collect()
    }

    fn expired(c: &Conference<SimEnv>, nick: &str) -> usize {
        colibri(&c.env)
            .iter()
            .filter(|cm| cm.children_named("endpoint", ns::COLIBRI2).any(|ep| ep.get_attr("id") == Some(nick) && ep.get_attr("expire") == Some("true")))
            .count()
    }

    #[test]
    fn states_follow_the_conference_and_a_leave_releases_what_each_state_holds() {
        // "slow" and "gone" never answer their disco; only "a" accepts its offer.
        let mut inner = FakeBridge::new(bridge()).around(muc());
        let e = SimEnv::new(Box::new(move |el: &Element| {
            let to = el.get_attr("to").unwrap_or_default();
            let to_nick = |n: &str| to == room().with_resource(n).to_string();
            if el.get_child("query", ns::DISCO_INFO).is_some() && (to_nick("slow") || to_nick("gone")) {
                return Vec::new();
            }
            let mut out = inner(el);
            if to_nick("a") && el.get_child("jingle", JINGLE).is_some_and(|j| j.get_attr("action") == Some("session-initiate")) {
                out.push(accept_for(el, 1001));
            }
            out
        }));
        let mut e = e;
        e.at(ms(0), request());
        for (at, n) in [(10, "a"), (20, "b"), (30, "slow"), (40, "gone")] {
            e.at(ms(at), Inbox::stanza(occupant_presence(&room(), n, &format!("{n}@meet.test/1"), "none", "participant")));
        }
        e.at(ms(1000), Inbox::stanza(occupant_leave(&room(), "gone")));
        e.at(ms(2000), Inbox::stanza(occupant_leave(&room(), "b")));
        e.at(ms(7000), Inbox::stanza(occupant_leave(&room(), "a")));
        e.at(ms(8000), Inbox::Shutdown);
        let params = Params { id: ConferenceId(1), room: room(), shared: shared(), start_audio_muted: None, start_video_muted: None };
        let mut c = Conference::new(e, params);
        assert!(c.join());
        run_until(&mut c, ms(500));
        let s = |n: &str, st: &'static str| (n.to_string(), st);
        assert_eq!(states(&c), vec![s("a", "active"), s("b", "offered"), s("slow", "discovering"), s("gone", "discovering")]);
        // Left while discovering: it had nothing on the bridge and no session.
        run_until(&mut c, ms(1500));
        assert_eq!(states(&c).len(), 3);
        assert_eq!(expired(&c, "gone"), 0);
        assert!(colibri(&c.env).iter().all(|cm| cm.children_named("endpoint", ns::COLIBRI2).all(|ep| ep.get_attr("id") != Some("gone"))));
        assert!(jingle_to(&c.env, "gone", "session-initiate").is_empty());
        // Left while offered: its endpoint is expired; no Jingle goes to it.
        run_until(&mut c, ms(2500));
        assert_eq!(states(&c), vec![s("a", "active"), s("slow", "discovering")]);
        assert_eq!(expired(&c, "b"), 1);
        assert!(jingle_to(&c.env, "b", "session-terminate").is_empty());
        // Its disco timed out: invited with the default features.
        run_until(&mut c, ms(6000));
        assert_eq!(states(&c), vec![s("a", "active"), s("slow", "offered")]);
        let offer = jingle_to(&c.env, "slow", "session-initiate");
        assert_eq!(offer.len(), 1);
        assert!(offer[0].0 >= ms(30) + DISCO_TIMEOUT);
        // Left while active: its endpoint is expired; the others saw it leave in the MUC,
        // so they get no source-remove.
        run_until(&mut c, ms(7500));
        assert_eq!(states(&c), vec![s("slow", "offered")]);
        assert_eq!(expired(&c, "a"), 1);
        assert!(jingle_to(&c.env, "a", "session-terminate").is_empty());
        assert!(jingle_to(&c.env, "slow", "source-remove").is_empty());
        assert!(!c.cleanup.lock().sessions.contains_key("a") && !c.cleanup.lock().sessions.contains_key("b"));
        assert!(c.cleanup.lock().sessions.contains_key("slow"));
    }
}
