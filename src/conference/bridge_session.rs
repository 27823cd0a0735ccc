//! The conference's session on its bridge (Colibri2): one bridge conference, named by the
//! meeting id, with one endpoint per invited participant ([`BridgeSession`], a value that
//! writes the requests), and the conference's side of it ([`Bridging`]: the session, whether
//! a bridge is available, the failover count). The conference thread sends the requests,
//! waits for an allocation's answer and reacts to the bridge's errors (media.md §1.9):
//!
//! | answer | reaction |
//! |---|---|
//! | allocation refused (`bad-request`, `item-not-found`), or no transport | that invitation fails (`Failed`) |
//! | allocation not answered (15 s), any other error | the bridge is marked failed (others are told), everyone moves |
//! | `service-unavailable` + `graceful_shutdown` | the bridge takes nothing new; everyone moves |
//! | `conflict`, `conference_not_found` | the session is dropped; everyone moves |
//! | update: `unknown_endpoint` | that participant is invited again |
//! | update: any other error | everyone moves |
//!
//! "Everyone moves": the bridge conference is expired, every session ends with
//! `success`/"moving" and everyone is invited again on a new bridge session (a new
//! `<bridge-session id>`), on this bridge or another. After [`MAX_MOVES`] such rounds
//! without a bridge event the conference stops trying until a bridge comes up or goes down.
//! Force-mute requests state the endpoint's complete state (media.md §1.7); health comes
//! from the bridge registry (`crate::bridge`), which this conference marks failed or in
//! graceful shutdown from the answers above.

use std::collections::BTreeSet;
use std::time::Instant;

use log::{debug, info, warn};

use super::{Conference, Env, PendingIq, RequestError};
use crate::ids::{BridgeSessionId, MeetingId, Nick};
use crate::jid::Jid;
use crate::messages::BridgeEvent;
use crate::metrics::Metrics;
use crate::xml::Element;
use crate::xmpp::colibri2::{ConferenceModify, EndpointRequest, Reaction};
use crate::xmpp::incoming::{colibri2_outcome, Incoming};
use crate::xmpp::jingle::ColibriSources;
use crate::xmpp::jingle::sources::EndpointSources;
use crate::xmpp::ns;

/// Rounds of "everyone moves" after which the conference waits for a bridge event.
pub const MAX_MOVES: u32 = 5;

/// The conference's session on one bridge: the bridge conference and its endpoints.
#[derive(Debug, Clone)]
pub struct BridgeSession {
    /// The bridge.
    pub bridge: Jid,
    /// Signaled to clients as `<bridge-session id>`.
    pub id: BridgeSessionId,
    /// The bridge's region, signaled with the id.
    pub region: Option<String>,
    /// A `create` was sent: the bridge may hold the conference.
    created: bool,
    /// Endpoints the bridge created.
    endpoints: BTreeSet<Nick>,
    /// The bridge's feedback sources, from its first answer that carried them.
    feedback: Option<EndpointSources>,
}

/// What expiring one endpoint takes ([`BridgeSession::expire_endpoint`]).
#[derive(Debug)]
pub enum EndpointExpiry {
    /// The endpoint is not on this session: nothing to do.
    NotThere,
    /// Send this request.
    Endpoint(ConferenceModify),
    /// It was the last one: expire the whole conference ([`BridgeSession::expire`]).
    Last,
}

/// What a Colibri2 update of one endpoint carries ([`BridgeSession::update`]).
#[derive(Debug, Default)]
pub struct EndpointUpdate {
    /// The participant's stats id.
    pub stats_id: Option<String>,
    /// Its ICE transport (session-accept, transport-info).
    pub transport: Option<Element>,
    /// Its sources (the complete set), when they changed.
    pub sources: Option<EndpointSources>,
    /// Its initial last-n.
    pub last_n: Option<u32>,
}

impl BridgeSession {
    /// A new session on `bridge` (nothing sent yet).
    pub fn new(bridge: Jid, id: BridgeSessionId, region: Option<String>) -> BridgeSession {
        BridgeSession { bridge, id, region, created: false, endpoints: BTreeSet::new(), feedback: None }
    }

    /// A `create` was sent: the bridge may hold the conference (and it must be expired).
    pub fn is_created(&self) -> bool {
        self.created
    }

    /// The request that allocates `endpoint` in conference `meeting` of `room`; the first
    /// one creates the conference.
    pub fn allocate(&mut self, meeting: &MeetingId, room: &Jid, endpoint: EndpointRequest) -> ConferenceModify {
        let create = !self.created;
        self.created = true;
        ConferenceModify {
            meeting_id: meeting.to_string(),
            name: Some(room.to_string()),
            create,
            rtcstats_enabled: None,
            expire: false,
            endpoints: vec![endpoint],
        }
    }

    /// The allocation `req` was never sent: if it was to create the conference, the bridge
    /// holds none.
    pub fn not_sent(&mut self, req: &ConferenceModify) {
        if req.create {
            self.created = false;
        }
    }

    /// The bridge created `nick`'s endpoint; `sources` are the feedback sources its answer
    /// carried (kept from the first answer that has them).
    pub fn allocated(&mut self, nick: &Nick, sources: Option<&ColibriSources>) {
        self.endpoints.insert(nick.clone());
        if self.feedback.is_none() {
            if let Some(s) = sources {
                self.feedback = s.bridge_feedback().ok();
            }
        }
    }

    /// Has the bridge an endpoint for `nick`?
    pub fn has_endpoint(&self, nick: &str) -> bool {
        self.endpoints.contains(nick)
    }

    /// How many endpoints the bridge has.
    pub fn endpoint_count(&self) -> usize {
        self.endpoints.len()
    }

    /// The bridge's feedback sources.
    pub fn feedback(&self) -> Option<&EndpointSources> {
        self.feedback.as_ref()
    }

    /// The bridge no longer knows `nick`'s endpoint (it said so): forget it, sending nothing.
    pub fn forget_endpoint(&mut self, nick: &str) -> bool {
        self.endpoints.remove(nick)
    }

    /// Expire `nick`'s endpoint.
    pub fn expire_endpoint(&mut self, nick: &str, meeting: &MeetingId) -> EndpointExpiry {
        if !self.endpoints.remove(nick) {
            return EndpointExpiry::NotThere;
        }
        if self.endpoints.is_empty() {
            return EndpointExpiry::Last;
        }
        EndpointExpiry::Endpoint(ConferenceModify {
            meeting_id: meeting.to_string(),
            endpoints: vec![EndpointRequest { id: nick.to_string(), expire: true, ..Default::default() }],
            ..Default::default()
        })
    }

    /// The request that expires the conference on the bridge; `None` when none was created.
    pub fn expire(&self, meeting: &MeetingId) -> Option<ConferenceModify> {
        self.created.then(|| ConferenceModify { meeting_id: meeting.to_string(), expire: true, ..Default::default() })
    }

    /// An update of `nick`'s endpoint; `None` when it has none or there is nothing to say.
    pub fn update(&self, nick: &Nick, meeting: &MeetingId, u: EndpointUpdate) -> Option<ConferenceModify> {
        if !self.has_endpoint(nick.as_str()) || (u.transport.is_none() && u.sources.is_none() && u.last_n.is_none()) {
            return None;
        }
        Some(ConferenceModify {
            meeting_id: meeting.to_string(),
            endpoints: vec![EndpointRequest {
                id: nick.to_string(),
                stats_id: u.stats_id,
                transport: u.transport,
                sources: u.sources.map(|s| s.to_colibri2(nick.as_str())),
                initial_last_n: u.last_n,
                ..Default::default()
            }],
            ..Default::default()
        })
    }

    /// An in-place ICE restart of `nick`'s endpoint (media.md §1.10); `None` without one.
    pub fn ice_restart(&self, nick: &Nick, meeting: &MeetingId, stats_id: Option<String>) -> Option<ConferenceModify> {
        self.has_endpoint(nick.as_str()).then(|| ConferenceModify {
            meeting_id: meeting.to_string(),
            endpoints: vec![EndpointRequest { id: nick.to_string(), stats_id, ice_restart: true, ..Default::default() }],
            ..Default::default()
        })
    }

    /// The force-mute `state` (audio, video) of `nick`'s endpoint; `None` without one.
    pub fn force_mute(&self, nick: &Nick, meeting: &MeetingId, state: (bool, bool)) -> Option<ConferenceModify> {
        self.has_endpoint(nick.as_str()).then(|| ConferenceModify {
            meeting_id: meeting.to_string(),
            endpoints: vec![EndpointRequest { id: nick.to_string(), force_mute: Some(state), ..Default::default() }],
            ..Default::default()
        })
    }
}

/// The conference's bridge side.
#[derive(Debug, Default)]
pub struct Bridging {
    /// The current session, if any.
    pub session: Option<BridgeSession>,
    /// No bridge could be selected: participants wait (`<bridgeNotAvailable/>`).
    pub not_available: bool,
    /// Rounds of "everyone moves" since the last bridge event, to stop a failing loop.
    pub moves: u32,
    /// The last bridge used (for the end-of-conference log line).
    pub last_bridge: Option<Jid>,
}

/// An endpoint the bridge created: what the offer needs from its answer.
#[derive(Debug)]
pub(super) struct Allocated {
    /// The bridge's ICE transport for the participant.
    pub transport: Element,
    /// The bridge's SCTP port, when a data channel was asked for.
    pub sctp_port: Option<u16>,
    /// When the answer was read (the focus-added metric starts there).
    pub answered: Instant,
}

/// The Colibri2 request `req` to `bridge`, written directly (no tree). In tests every
/// request is also built as the reference tree ([`ConferenceModify::to_iq`]) and must
/// parse to the same stanza, so the simulated conferences check it all the time.
fn colibri_stanza(req: &ConferenceModify, bridge: &Jid, id: &str) -> crate::xml::RawElement {
    let st = req.to_stanza(bridge, id);
    #[cfg(test)]
    assert_eq!(st.reparsed().expect("well-formed"), req.to_iq(bridge, id).reparsed().expect("well-formed"), "direct vs tree");
    st
}

impl<E: Env> Conference<E> {
    /// Record (or forget) the bridge conference `(bridge, meeting id)` for the panic cleanup.
    pub(super) fn note_bridge(&self, bridge: Option<(Jid, MeetingId)>) {
        self.cleanup.lock().bridge = bridge;
    }

    pub(super) fn set_bridge_not_available(&mut self, v: bool) {
        if self.media.bridging.not_available != v {
            self.media.bridging.not_available = v;
            if v {
                warn!("conference {}: no bridge available; participants wait", self.room);
            }
            self.publish_presence();
        }
    }

    /// The bridge to invite a participant of `region` on: the current one while it can be
    /// used, else a new bridge session on the one the registry selects (everyone on the old
    /// one moves). `None` when no bridge is available (participants wait).
    pub(super) fn choose_bridge(&mut self, region: Option<&str>) -> Option<Jid> {
        let now = self.env.now();
        let current = self.media.bridging.session.as_ref().map(|c| c.bridge.clone());
        let selected = self.shared.bridges.lock().select(now, current.as_ref(), region, &[]);
        let Some(bridge) = selected else {
            self.set_bridge_not_available(true);
            return None;
        };
        self.set_bridge_not_available(false);
        if current.as_ref() != Some(&bridge) {
            if current.is_some() {
                // The conference's bridge is no longer usable: everyone moves with us.
                self.move_all();
            }
            let region = self.shared.bridges.lock().get(&bridge).and_then(|b| b.region.clone());
            info!("conference {}: using bridge {}", self.room, bridge);
            self.media.bridging.last_bridge = Some(bridge.clone());
            self.shared.metrics.set_bridge(self.id, Some(bridge.to_string()));
            let id = BridgeSessionId::from(self.env.new_uuid());
            self.media.bridging.session = Some(BridgeSession::new(bridge.clone(), id, region));
            self.publish_presence();
        }
        Some(bridge)
    }

    /// Allocate `nick`'s `endpoint` on the current bridge session and wait for the answer
    /// (`sctp`: a data channel was asked for). `Err(go_on)` when there is no endpoint: the
    /// participant failed or everyone moved; `go_on` says whether to invite the others now.
    pub(super) fn allocate(&mut self, nick: &Nick, endpoint: EndpointRequest, sctp: bool) -> Result<Allocated, bool> {
        let now = self.env.now();
        let (meeting, room) = (self.meeting_id.clone(), self.room.clone());
        let Some(session) = self.media.bridging.session.as_mut() else {
            self.with_participant(nick, |p| p.allocation_failed(true));
            return Err(false);
        };
        let bridge = session.bridge.clone();
        let req = session.allocate(&meeting, &room, endpoint);
        if req.create {
            // From now on the bridge may hold a conference to expire, even after a panic.
            self.note_bridge(Some((bridge.clone(), meeting.clone())));
        }
        // The id is set by `request`.
        let answer = match self.request(colibri_stanza(&req, &bridge, ""), super::REPLY_TIMEOUT) {
            Ok(a) => Some(a),
            Err(RequestError::Timeout) => None,
            // Ending: no reaction (the bridge did nothing wrong).
            Err(RequestError::Aborted) => {
                self.with_participant(nick, |p| p.allocation_failed(true));
                return Err(false);
            }
            Err(RequestError::Full) => {
                if req.create {
                    if let Some(s) = self.media.bridging.session.as_mut() {
                        s.not_sent(&req);
                    }
                    self.note_bridge(None);
                }
                self.with_participant(nick, |p| p.allocation_failed(false));
                return Err(true);
            }
        };
        // The focus-added metric measures this thread's work (real time in production).
        let answered = self.env.stopwatch();
        let answer = match colibri2_outcome(answer.as_ref(), true) {
            Ok(a) => a,
            Err(e) => {
                Metrics::inc(&self.shared.metrics.colibri_errors);
                warn!("conference {}: allocating {} on {} failed: {}", self.room, nick, bridge, e);
                match e.reaction {
                    Reaction::FailInvite | Reaction::UnknownEndpoint(_) => {
                        self.with_participant(nick, |p| p.allocation_failed(false));
                        return Err(true);
                    }
                    // No conference selects the bridge again, and those using it move.
                    Reaction::BridgeFailed => {
                        let events = self.shared.bridges.lock().mark_failed(&bridge, now);
                        if let (Some(c), false) = (&self.shared.control, events.is_empty()) {
                            let _ = c.try_send(crate::messages::Control::BridgeEvents(events));
                        }
                    }
                    Reaction::GracefulShutdown => self.shared.bridges.lock().mark_graceful(&bridge),
                    Reaction::RemoveSession => {}
                }
                self.move_all();
                // Try again (the caller's loop re-selects), unless sessions keep failing.
                return Err(self.media.bridging.moves <= MAX_MOVES);
            }
        };
        let Some(ep) = answer.endpoint(nick.as_str()).cloned() else {
            self.with_participant(nick, |p| p.allocation_failed(false));
            return Err(true);
        };
        let (Some(transport), true) = (ep.transport.clone(), !sctp || ep.sctp_port.is_some()) else {
            warn!("conference {}: bridge answer for {} lacks a transport", self.room, nick);
            self.with_participant(nick, |p| p.allocation_failed(false));
            return Err(true);
        };
        self.shared.bridges.lock().endpoint_added(&bridge, now);
        if let Some(s) = self.media.bridging.session.as_mut() {
            s.allocated(nick, answer.sources.as_ref());
        }
        Ok(Allocated { transport: transport.to_element(), sctp_port: ep.sctp_port, answered })
    }

    /// Drop the bridge session, expiring it on the bridge.
    pub(super) fn drop_bridge_session(&mut self) {
        if let Some(c) = self.media.bridging.session.take() {
            self.note_bridge(None);
            self.shared.metrics.set_bridge(self.id, None);
            if let Some(req) = c.expire(&self.meeting_id) {
                let id = self.new_id();
                self.send(colibri_stanza(&req, &c.bridge, &id));
            }
        }
    }

    /// The session on the bridge is unusable: expire it (harmless when the bridge is
    /// gone) and end every participant's session with "moving"; the caller re-invites.
    pub(super) fn move_all(&mut self) {
        self.media.bridging.moves += 1;
        self.drop_bridge_session();
        let mut moved = Vec::new();
        for p in &mut self.occupants {
            if let Some(s) = p.bridge_lost() {
                moved.push((p.nick.clone(), s));
            }
        }
        if !moved.is_empty() {
            info!("conference {}: moving {} participants to a new bridge session", self.room, moved.len());
        }
        for (nick, s) in moved {
            self.session_ended(&nick, s, Some(("success", "moving")), true);
            Metrics::inc(&self.shared.metrics.participants_moved);
        }
        if self.media.bridging.moves > MAX_MOVES {
            warn!("conference {}: bridge sessions keep failing; waiting for a bridge event", self.room);
        }
    }

    /// Expire `nick`'s endpoint; the conference itself when it was the last one.
    pub(super) fn expire_endpoint(&mut self, nick: &str) {
        let meeting = self.meeting_id.clone();
        let Some(c) = self.media.bridging.session.as_mut() else { return };
        match c.expire_endpoint(nick, &meeting) {
            EndpointExpiry::NotThere => {}
            EndpointExpiry::Last => {
                debug!("conference {}: last endpoint gone; expiring the bridge conference", self.room);
                self.drop_bridge_session();
            }
            EndpointExpiry::Endpoint(req) => {
                let bridge = c.bridge.clone();
                let id = self.new_id();
                self.send(colibri_stanza(&req, &bridge, &id));
            }
        }
    }

    /// Tell the bridge about `nick`'s transport, sources (`sources`: its current set) and
    /// last-n; the answer is handled by [`Self::on_colibri_update_answer`].
    pub(super) fn colibri_update(&mut self, nick: &Nick, transport: Option<Element>, sources: bool, last_n: Option<u32>) {
        let Some(c) = self.media.bridging.session.as_ref() else { return };
        let stats_id = self.participant(nick.as_str()).and_then(|o| o.stats_id.clone());
        let sources = sources.then(|| self.media.sources.get(nick).cloned().unwrap_or_default());
        let update = EndpointUpdate { stats_id, transport, sources, last_n };
        let Some(req) = c.update(nick, &self.meeting_id, update) else { return };
        let bridge = c.bridge.clone();
        let deadline = self.env.now() + super::REPLY_TIMEOUT;
        let Some(id) = self.track(PendingIq::ColibriUpdate { nick: nick.clone() }, bridge.clone(), deadline) else {
            return;
        };
        self.send(colibri_stanza(&req, &bridge, &id));
    }

    /// The answer to a fire-and-forget colibri update.
    pub(crate) fn on_colibri_update_answer(&mut self, nick: &Nick, answer: Option<&Incoming>) {
        let Some(answer) = answer else {
            debug!("conference {}: colibri update for {} unanswered", self.room, nick);
            return;
        };
        if let Err(e) = colibri2_outcome(Some(answer), false) {
            Metrics::inc(&self.shared.metrics.colibri_errors);
            warn!("conference {}: colibri update for {} failed: {}", self.room, nick, e);
            match e.reaction {
                Reaction::UnknownEndpoint(id) => {
                    if let Some(c) = self.media.bridging.session.as_mut() {
                        c.forget_endpoint(&id);
                    }
                    self.terminate_session(&id, Some(("success", "moving")), false);
                    self.maybe_invite();
                }
                _ => {
                    self.move_all();
                    self.maybe_invite();
                }
            }
        }
    }

    /// A bridge came up or went down.
    pub(crate) fn media_bridge_event(&mut self, ev: BridgeEvent) {
        match ev {
            BridgeEvent::Down(jid) => {
                if self.media.bridging.session.as_ref().is_some_and(|c| c.bridge == jid) {
                    info!("conference {}: bridge {} is gone", self.room, jid);
                    self.media.bridging.moves = 0;
                    // Expire anyway: a bridge that is only slow (failed health checks)
                    // would otherwise still hold this meeting id when we come back to it.
                    self.move_all();
                    self.maybe_invite();
                }
            }
            BridgeEvent::Up(_) => {
                self.media.bridging.moves = 0;
                if self.media.bridging.not_available || self.media.bridging.session.is_none() {
                    self.maybe_invite();
                }
            }
        }
    }

    /// Ask the bridge for an in-place ICE restart of `nick`'s endpoint (media.md §1.10).
    pub(super) fn ice_restart(&mut self, nick: &Nick) {
        let Some(p) = self.participant(nick.as_str()) else { return };
        let Some(sid) = p.session().map(|s| s.sid.clone()) else { return };
        let stats_id = p.stats_id.clone();
        let Some(c) = self.media.bridging.session.as_ref() else { return };
        let Some(req) = c.ice_restart(nick, &self.meeting_id, stats_id) else { return };
        let bridge = c.bridge.clone();
        let deadline = self.env.now() + super::REPLY_TIMEOUT;
        let Some(id) = self.track(PendingIq::IceRestart { nick: nick.clone(), sid }, bridge.clone(), deadline) else { return };
        info!("conference {}: in-place ICE restart of {}", self.room, nick);
        self.send(colibri_stanza(&req, &bridge, &id));
    }

    /// Bridge force-mute of `nick` for `media` ("audio"/"video"): on for a moderator
    /// mute, off when the participant unmutes itself. Every request states the
    /// endpoint's complete state (media.md §1.7).
    pub(crate) fn bridge_force_mute(&mut self, nick: &Nick, media: &str, muted: bool) {
        let Some(c) = self.media.bridging.session.as_ref() else { return };
        if !c.has_endpoint(nick.as_str()) {
            return;
        }
        let bridge = c.bridge.clone();
        let Some(st) = self.participant_mut(nick.as_str()).and_then(|p| p.force_mute().set(media, muted)) else { return };
        let Some(req) = self.media.bridging.session.as_ref().and_then(|c| c.force_mute(nick, &self.meeting_id, st)) else { return };
        let id = self.new_id();
        self.send(colibri_stanza(&req, &bridge, &id));
    }

    /// The `<bridgeNotAvailable/>` extension when it applies.
    pub(crate) fn bridge_presence_extension(&self) -> Option<Element> {
        self.media.bridging.not_available.then(|| Element::new("bridgeNotAvailable", ns::FOCUS))
    }

    /// Bridges in use (for `bridge-count`).
    pub(crate) fn bridge_count(&self) -> usize {
        usize::from(self.media.bridging.session.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jvb() -> Jid {
        Jid::parse("jvbbrewery@internal.auth.meet.test/jvb1").unwrap()
    }

    fn room() -> Jid {
        Jid::parse("room1@conference.meet.test").unwrap()
    }

    fn m() -> MeetingId {
        MeetingId::from("meeting-1")
    }

    fn n(s: &str) -> Nick {
        Nick::from(s)
    }

    fn ep(id: &str) -> EndpointRequest {
        EndpointRequest { id: id.into(), create: true, ..Default::default() }
    }

    fn feedback() -> ColibriSources {
        ColibriSources::from_element(&feedback_element())
    }

    fn feedback_element() -> Element {
        let src = |media: &str, ssrc: &str, name: &str| {
            Element::new("media-source", ns::COLIBRI2)
                .attr("type", media)
                .attr("id", name)
                .child(Element::new("source", ns::SSMA).attr("ssrc", ssrc).attr("name", name))
        };
        Element::new("sources", ns::COLIBRI2).child(src("audio", "111", "jvb-a0")).child(src("video", "222", "jvb-v0"))
    }

    #[test]
    fn the_first_allocation_creates_the_conference_and_an_unsent_one_does_not() {
        let mut s = BridgeSession::new(jvb(), BridgeSessionId::from("bs"), Some("eu".into()));
        assert!(!s.is_created() && s.expire(&m()).is_none(), "nothing to expire before a create");
        let first = s.allocate(&m(), &room(), ep("a"));
        assert!(first.create && s.is_created());
        assert_eq!((first.meeting_id.as_str(), first.name.as_deref()), ("meeting-1", Some("room1@conference.meet.test")));
        // It could not be sent (too many requests outstanding): the next one creates.
        s.not_sent(&first);
        assert!(!s.is_created());
        assert!(s.allocate(&m(), &room(), ep("a")).create);
        let second = s.allocate(&m(), &room(), ep("b"));
        assert!(!second.create);
        s.not_sent(&second);
        assert!(s.is_created(), "an unsent allocation that did not create changes nothing");
        let expire = s.expire(&m()).unwrap();
        assert!(expire.expire && expire.endpoints.is_empty());
    }

    #[test]
    fn endpoints_are_expired_one_by_one_and_the_last_expires_the_conference() {
        let mut s = BridgeSession::new(jvb(), BridgeSessionId::from("bs"), None);
        s.allocate(&m(), &room(), ep("a"));
        s.allocated(&n("a"), Some(&feedback()));
        s.allocated(&n("b"), None);
        assert!(s.has_endpoint("a") && s.has_endpoint("b") && !s.has_endpoint("c"));
        assert_eq!(s.endpoint_count(), 2);
        assert_eq!(s.feedback().unwrap().sources.iter().map(|x| x.ssrc).collect::<Vec<_>>(), vec![111, 222]);
        assert!(matches!(s.expire_endpoint("c", &m()), EndpointExpiry::NotThere));
        match s.expire_endpoint("a", &m()) {
            EndpointExpiry::Endpoint(req) => {
                assert_eq!(req.endpoints.len(), 1);
                assert!(req.endpoints[0].expire && req.endpoints[0].id == "a");
                assert!(!req.expire, "only the endpoint");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(s.expire_endpoint("a", &m()), EndpointExpiry::NotThere), "once");
        assert!(matches!(s.expire_endpoint("b", &m()), EndpointExpiry::Last));
        // The bridge forgot an endpoint: it is dropped without a request.
        s.allocated(&n("c"), None);
        assert!(s.forget_endpoint("c") && !s.has_endpoint("c"));
    }

    #[test]
    fn updates_restarts_and_force_mutes_go_only_to_existing_endpoints() {
        let mut s = BridgeSession::new(jvb(), BridgeSessionId::from("bs"), None);
        let none = || EndpointUpdate::default();
        assert!(s.update(&n("a"), &m(), EndpointUpdate { last_n: Some(3), ..none() }).is_none(), "no endpoint yet");
        assert!(s.ice_restart(&n("a"), &m(), None).is_none());
        assert!(s.force_mute(&n("a"), &m(), (true, false)).is_none());
        s.allocated(&n("a"), None);
        assert!(s.update(&n("a"), &m(), none()).is_none(), "nothing to say");
        let u = s.update(&n("a"), &m(), EndpointUpdate { stats_id: Some("Alice".into()), sources: Some(EndpointSources::new()), ..none() }).unwrap();
        let e = &u.endpoints[0];
        assert_eq!((e.id.as_str(), e.stats_id.as_deref()), ("a", Some("Alice")));
        assert!(e.sources.is_some(), "an empty set is said too: the endpoint has no sources now");
        let r = s.ice_restart(&n("a"), &m(), Some("Alice".into())).unwrap();
        assert!(r.endpoints[0].ice_restart);
        let f = s.force_mute(&n("a"), &m(), (true, false)).unwrap();
        assert_eq!(f.endpoints[0].force_mute, Some((true, false)));
    }

    #[test]
    fn only_the_first_feedback_sources_are_kept() {
        let mut s = BridgeSession::new(jvb(), BridgeSessionId::from("bs"), None);
        s.allocated(&n("a"), None);
        assert!(s.feedback().is_none());
        s.allocated(&n("b"), Some(&feedback()));
        let other = ColibriSources::from_element(&Element::new("sources", ns::COLIBRI2));
        s.allocated(&n("c"), Some(&other));
        assert_eq!(s.feedback().unwrap().sources.len(), 2);
    }
}

/// The reactions to the bridge's answers in a whole conference on simulated time, with
/// the fake bridge ([`crate::conference::sim::FakeBridge`]).
#[cfg(test)]
mod on_simulated_time {
    use std::sync::atomic::Ordering::Relaxed;
    use std::time::Duration;

    use super::MAX_MOVES;
    use crate::conference::media_tests::{accept_for, bridge, colibri, jingle_to, ms, muc, request, room, shared, JINGLE};
    use crate::conference::sim::{occupant_presence, Behaviour, FakeBridge, Requests, SimEnv};
    use crate::conference::{Conference, Params};
    use crate::ids::ConferenceId;
    use crate::messages::{BridgeEvent, Inbox};
    use crate::xml::Element;
    use crate::xmpp::ns;
    use crate::xmpp::stanza::ErrorCondition;

    fn join(e: &mut SimEnv, at: u64, nick: &str) {
        e.at(ms(at), Inbox::stanza(occupant_presence(&room(), nick, &format!("{nick}@meet.test/1"), "none", "participant")));
    }

    fn run(e: SimEnv) -> Conference<SimEnv> {
        let mut c = Conference::new(e, Params { id: ConferenceId(1), room: room(), shared: shared(), start_audio_muted: None, start_video_muted: None });
        c.run();
        c
    }

    /// Colibri2 endpoint requests that create `nick`'s endpoint, with their times.
    fn allocations(e: &SimEnv, nick: &str) -> Vec<Duration> {
        e.sent
            .iter()
            .filter(|(_, _, x)| {
                x.get_child("conference-modify", ns::COLIBRI2).is_some_and(|cm| {
                    cm.children_named("endpoint", ns::COLIBRI2).any(|ep| ep.get_attr("id") == Some(nick) && ep.get_attr("create") == Some("true"))
                })
            })
            .map(|(t, _, _)| *t)
            .collect()
    }

    fn bridge_session_of(si: &Element) -> String {
        let j = si.get_child("jingle", JINGLE).unwrap();
        j.get_child("bridge-session", ns::FOCUS).and_then(|b| b.get_attr("id")).unwrap().to_string()
    }

    #[test]
    fn an_allocation_refused_as_a_bad_request_fails_that_participant_only() {
        let jvb = FakeBridge::new(bridge()).on(Requests::Allocation("c".into()), Behaviour::Error(ErrorCondition::BadRequest, None));
        let mut e = SimEnv::new(jvb.around(muc()));
        e.at(ms(0), request());
        for (i, n) in ["a", "b", "c"].iter().enumerate() {
            join(&mut e, 10 + 10 * i as u64, n);
        }
        e.at(ms(1000), Inbox::Shutdown);
        let c = run(e);
        assert!(c.participant("c").unwrap().is_failed());
        assert_eq!(allocations(&c.env, "c"), vec![ms(30)], "not tried again");
        assert!(jingle_to(&c.env, "c", "session-initiate").is_empty());
        for n in ["a", "b"] {
            assert_eq!(jingle_to(&c.env, n, "session-initiate").len(), 1, "{n}");
            assert!(jingle_to(&c.env, n, "session-terminate").is_empty(), "{n} keeps its session");
        }
        let sh = &c.shared;
        assert!(sh.bridges.lock().get(&bridge()).unwrap().is_operational(std::time::Instant::now()), "the bridge is fine");
        assert_eq!((sh.metrics.colibri_errors.load(Relaxed), sh.metrics.participants_moved.load(Relaxed)), (1, 0));
    }

    #[test]
    fn a_lost_bridge_conference_moves_everyone_and_after_five_rounds_the_conference_waits_for_a_bridge_event() {
        // The bridge keeps saying it has no such conference when c is allocated.
        let lost = Behaviour::Error(ErrorCondition::ItemNotFound, Some("conference_not_found"));
        let mut e = SimEnv::new(FakeBridge::new(bridge()).on(Requests::Allocation("c".into()), lost).around(muc()));
        e.at(ms(0), request());
        for (i, n) in ["a", "b", "c"].iter().enumerate() {
            join(&mut e, 10 + 10 * i as u64, n);
        }
        e.at(ms(5000), Inbox::Bridge(BridgeEvent::Up(bridge())));
        e.at(ms(10_000), Inbox::Shutdown);
        let c = run(e);
        let rounds = MAX_MOVES as usize + 1;
        let tries = allocations(&c.env, "c");
        assert_eq!(tries.iter().filter(|t| **t < ms(5000)).count(), rounds, "{tries:?}");
        assert_eq!(tries.iter().filter(|t| **t >= ms(5000)).count(), rounds, "a bridge event: as many rounds again");
        // Between the rounds the bridge hears nothing.
        assert!(colibri(&c.env).len() > 2 * rounds);
        assert!(c.env.sent.iter().filter(|(t, _, _)| *t > ms(30) && *t < ms(5000)).all(|(_, _, x)| x.get_child("conference-modify", ns::COLIBRI2).is_none()));
        for n in ["a", "b"] {
            let offers = jingle_to(&c.env, n, "session-initiate");
            assert_eq!(offers.len(), 2 * rounds, "{n}: offered once a round");
            let ids: std::collections::BTreeSet<String> = offers.iter().map(|(_, o)| bridge_session_of(o)).collect();
            assert_eq!(ids.len(), offers.len(), "{n}: a new bridge session each round");
            assert_eq!(jingle_to(&c.env, n, "session-terminate").len(), 2 * rounds, "{n}: moved each round");
        }
        let sh = &c.shared;
        assert!(sh.bridges.lock().get(&bridge()).unwrap().is_operational(std::time::Instant::now()), "not the bridge's fault");
        assert_eq!(sh.metrics.colibri_errors.load(Relaxed), 2 * rounds as u64);
        assert_eq!(sh.metrics.participants_moved.load(Relaxed), 4 * rounds as u64);
    }

    #[test]
    fn an_update_for_an_endpoint_the_bridge_forgot_invites_that_participant_again() {
        let forgot = Behaviour::Error(ErrorCondition::ItemNotFound, Some("unknown_endpoint"));
        let mut inner = FakeBridge::new(bridge()).on_times(Requests::Update("b".into()), forgot, 1).around(muc());
        let mut ssrc = 1000;
        let mut e = SimEnv::new(Box::new(move |el: &Element| {
            let mut out = inner(el);
            if el.get_child("jingle", JINGLE).is_some_and(|j| j.get_attr("action") == Some("session-initiate")) {
                ssrc += 1;
                out.push(accept_for(el, ssrc));
            }
            out
        }));
        e.at(ms(0), request());
        join(&mut e, 10, "a");
        join(&mut e, 20, "b");
        e.at(ms(1000), Inbox::Shutdown);
        let c = run(e);
        let offers = jingle_to(&c.env, "b", "session-initiate");
        assert_eq!(offers.len(), 2, "b is invited again");
        assert_eq!(bridge_session_of(&offers[0].1), bridge_session_of(&offers[1].1), "on the same bridge session");
        let t = jingle_to(&c.env, "b", "session-terminate");
        assert_eq!(t.len(), 1);
        let reason = t[0].1.get_child("jingle", JINGLE).unwrap().get_child("reason", JINGLE).unwrap();
        assert_eq!(reason.get_child("text", JINGLE).map(|t| t.text_content()).as_deref(), Some("moving"));
        assert_eq!(allocations(&c.env, "b").len(), 2, "its endpoint is created again");
        // The bridge said it has no such endpoint: it is not asked to expire it.
        let expires_b = colibri(&c.env)
            .iter()
            .filter(|cm| cm.children_named("endpoint", ns::COLIBRI2).any(|ep| ep.get_attr("id") == Some("b") && ep.get_attr("expire") == Some("true")))
            .count();
        assert_eq!(expires_b, 0);
        assert_eq!(jingle_to(&c.env, "a", "session-initiate").len(), 1, "a is left alone");
        assert!(jingle_to(&c.env, "a", "session-terminate").is_empty());
        assert_eq!(c.shared.metrics.colibri_errors.load(Relaxed), 1);
        assert!(c.participant("b").unwrap().session().is_none(), "ended by the shutdown");
    }
}
