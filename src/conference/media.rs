//! The media side of a conference: bridge allocation (Colibri2), Jingle sessions with
//! the participants, source signaling, restarts and bridge failover.
//!
//! ```text
//!  ≥2 participants ──select bridge──▶ allocate endpoint (wait ≤15 s) ──▶ session-initiate
//!        ▲                                   │ error: react (§1.9)           │
//!        │                                   ▼                               ▼
//!  bridge up / restart / move ◀──── session dropped              session-accept ──▶ Active
//!                                                                  (sources → bridge, others)
//! ```
//! Source changes reach the other participants in batches (the queues are in
//! [`super::signaling`]): a burst of joins costs one source-add per receiver, not one per source.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use super::signaling::{signaling_window, Signaling};
use super::{Conference, Env, PendingIq, RequestError};
use crate::messages::BridgeEvent;
use crate::xmpp::colibri2::{ConferenceModify, EndpointRequest, Reaction};
use crate::xmpp::incoming::{colibri2_outcome, Incoming, JingleIq};
use crate::xmpp::stanza::IqHead;
use crate::jid::Jid;
use crate::xmpp::jingle::codecs::{colibri_media, has_data_content, offer_contents, Features};
use crate::xmpp::jingle::stanzas::{self as jingle, JingleAction, JingleError, JingleRequest, Offer};
use crate::xmpp::jingle::sources::{ConferenceSources, EndpointSources, BRIDGE_OWNER};
use crate::metrics::Metrics;
use crate::xml::Element;
use crate::xmpp::ns;
use crate::xmpp::stanza::{iq_error, iq_result, ErrorCondition, ErrorReply};

/// Participants needed before anyone is invited.
pub const MIN_PARTICIPANTS: usize = 2;
/// A lone participant's session ends after this.
pub const SINGLE_PARTICIPANT_TIMEOUT: Duration = Duration::from_secs(20);
/// Restart requests: at least this far apart…
pub const RESTART_MIN_INTERVAL: Duration = Duration::from_secs(5);
/// …and at most this many per minute.
pub const RESTART_MAX_PER_MINUTE: usize = 5;

/// The conference's session on its bridge.
#[derive(Debug, Clone)]
pub(crate) struct ColibriSession {
    pub bridge: Jid,
    /// Signaled to clients as `<bridge-session id>`.
    pub id: String,
    /// `create` was sent.
    pub created: bool,
    pub endpoints: HashSet<String>,
    pub feedback: Option<EndpointSources>,
    pub region: Option<String>,
}

/// A participant's Jingle session.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub sid: String,
    pub active: bool,
    pub bridge_session_id: String,
    pub features: Features,
}

/// Media state of a conference.
#[derive(Debug, Default)]
pub(crate) struct MediaState {
    pub colibri: Option<ColibriSession>,
    /// Accepted sources of the participants (the bridge's are in `colibri.feedback`).
    pub sources: ConferenceSources,
    pub sessions: BTreeMap<String, Session>,
    /// Source changes not yet sent, per receiver.
    pub signaling: Signaling,
    pub restarts: HashMap<String, VecDeque<Instant>>,
    /// Invites that failed for a reason retrying will not fix.
    pub failed: HashSet<String>,
    pub single_deadline: Option<Instant>,
    pub bridge_not_available: bool,
    /// Re-invite rounds caused by session removals, to stop a failing loop.
    pub removals: u32,
    /// Bridge force-mute state per participant.
    pub force_mute: super::mute::ForceMute,
    /// In-place ICE restart budgets per participant (separate from full restarts).
    pub ice_restarts: HashMap<String, crate::moderation::ice::RateBudget>,
    /// The last ICE generation relayed to each participant.
    pub ice_generations: HashMap<String, u32>,
    /// The last bridge used (for the end-of-conference log line).
    pub last_bridge: Option<Jid>,
}

impl<E: Env> Conference<E> {
    /// Record (or forget) `nick`'s Jingle session for the panic cleanup.
    fn note_session(&self, nick: &str, sid: Option<&str>) {
        let mut c = self.cleanup.lock();
        match sid {
            Some(sid) => {
                c.sessions.insert(nick.to_string(), sid.to_string());
            }
            None => {
                c.sessions.remove(nick);
            }
        }
    }

    /// Record (or forget) the bridge conference `(bridge, meeting id)` for the panic cleanup.
    fn note_bridge(&self, bridge: Option<(Jid, String)>) {
        self.cleanup.lock().bridge = bridge;
    }

    fn focus_full(&self) -> String {
        self.shared.focus_full.lock().clone().unwrap_or_else(|| format!("{}/{}", self.shared.focus_jid, self.shared.nick))
    }

    fn occupant_jid(&self, nick: &str) -> String {
        self.room.with_resource(nick).to_string()
    }

    /// The next media timer.
    pub(crate) fn media_deadline(&self) -> Option<Instant> {
        match (self.media.single_deadline, self.media.signaling.next_due()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Media timers: batched signaling and the single-participant timeout.
    pub(crate) fn media_timer(&mut self) {
        let now = self.env.now();
        for nick in self.media.signaling.due(now) {
            self.flush_signals(&nick);
        }
        if self.media.single_deadline.is_some_and(|t| now >= t) {
            self.media.single_deadline = None;
            if self.occupants.len() == 1 {
                let nick = self.occupants[0].nick.clone();
                if self.media.sessions.contains_key(&nick) {
                    info!("conference {}: {} alone for {} s; ending its session", self.room, nick, SINGLE_PARTICIPANT_TIMEOUT.as_secs());
                    self.terminate_session(&nick, Some(("expired", "Idle session timeout")), false);
                }
            }
        }
    }

    /// Invite everyone who can be invited now.
    pub(crate) fn maybe_invite(&mut self) {
        if !self.life.is_running() || self.occupants.len() < MIN_PARTICIPANTS {
            return;
        }
        self.media.single_deadline = None;
        // Each round either gives someone a session, marks them failed, or moves
        // everyone off a broken bridge session (counted in `removals`), so this ends.
        while self.life.ended().is_none() {
            let next = self
                .occupants
                .iter()
                .find(|o| o.features.is_some() && !self.media.sessions.contains_key(&o.nick) && !self.media.failed.contains(&o.nick))
                .map(|o| o.nick.clone());
            let Some(nick) = next else { break };
            if !self.invite(&nick) {
                break;
            }
        }
    }

    fn set_bridge_not_available(&mut self, v: bool) {
        if self.media.bridge_not_available != v {
            self.media.bridge_not_available = v;
            if v {
                warn!("conference {}: no bridge available; participants wait", self.room);
            }
            self.publish_presence();
        }
    }

    /// Allocate `nick` on the bridge and send it an offer. False when no bridge can be
    /// used right now (the caller stops inviting).
    fn invite(&mut self, nick: &str) -> bool {
        let now = self.env.now();
        let Some(occ) = self.occupants.iter().find(|o| o.nick == nick).cloned() else { return true };
        let current = self.media.colibri.as_ref().map(|c| c.bridge.clone());
        let selected = self.shared.bridges.lock().select(now, current.as_ref(), occ.region.as_deref(), &[]);
        let Some(bridge) = selected else {
            self.set_bridge_not_available(true);
            return false;
        };
        self.set_bridge_not_available(false);
        if current.as_ref() != Some(&bridge) {
            if current.is_some() {
                // The conference's bridge is no longer usable: everyone moves with us.
                self.move_all();
            }
            let region = self.shared.bridges.lock().get(&bridge).and_then(|b| b.region.clone());
            info!("conference {}: using bridge {}", self.room, bridge);
            self.media.last_bridge = Some(bridge.clone());
            self.shared.metrics.set_bridge(self.id, Some(bridge.to_string()));
            self.media.colibri = Some(ColibriSession {
                bridge: bridge.clone(),
                id: self.env.new_uuid(),
                created: false,
                endpoints: HashSet::new(),
                feedback: None,
                region,
            });
            self.publish_presence();
        }
        let features = Features::from_vars(occ.features.as_deref().unwrap_or(&[]));
        let contents = offer_contents(&features);
        let mut caps = vec!["source-names".to_string()];
        if features.ssrc_rewriting {
            caps.push("ssrc-rewriting".to_string());
        }
        // AV moderation on: a non-moderator, non-exempt joiner is force-muted at
        // allocation and told to start muted (moderation.md §1.3).
        let av_join = if occ.is_moderator() || occ.mute_exempt() { (false, false) } else { self.av.join_flags() };
        let colibri = self.media.colibri.as_mut().expect("set above");
        let create = !colibri.created;
        colibri.created = true;
        if create {
            // From now on the bridge may hold a conference to expire, even after a panic.
            self.note_bridge(Some((bridge.clone(), self.meeting_id.clone())));
        }
        let req = ConferenceModify {
            meeting_id: self.meeting_id.clone(),
            name: Some(self.room.to_string()),
            create,
            rtcstats_enabled: None,
            expire: false,
            endpoints: vec![EndpointRequest {
                id: nick.to_string(),
                create: true,
                stats_id: occ.stats_id.clone(),
                media: colibri_media(&contents),
                sctp: has_data_content(&contents),
                capabilities: caps,
                force_mute: (av_join.0 || av_join.1).then_some(av_join),
                ..Default::default()
            }],
        };
        self.media.force_mute.created(nick, av_join);
        // The id is set by `request`.
        let answer = match self.request(req.to_iq(&bridge, ""), super::REPLY_TIMEOUT) {
            Ok(a) => Some(a),
            Err(RequestError::Timeout) => None,
            // Ending: no reaction (the bridge did nothing wrong).
            Err(RequestError::Aborted) => return false,
            Err(RequestError::Full) => {
                if create {
                    if let Some(c) = self.media.colibri.as_mut() {
                        c.created = false;
                    }
                    self.note_bridge(None);
                }
                self.media.failed.insert(nick.to_string());
                return true;
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
                        self.media.failed.insert(nick.to_string());
                        return true;
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
                return self.media.removals <= 5;
            }
        };
        let Some(ep) = answer.endpoint(nick).cloned() else {
            self.media.failed.insert(nick.to_string());
            return true;
        };
        let (Some(transport), true) = (ep.transport.clone(), !has_data_content(&contents) || ep.sctp_port.is_some()) else {
            warn!("conference {}: bridge answer for {} lacks a transport", self.room, nick);
            self.media.failed.insert(nick.to_string());
            return true;
        };
        self.shared.bridges.lock().endpoint_added(&bridge, now);
        let colibri = self.media.colibri.as_mut().expect("set above");
        colibri.endpoints.insert(nick.to_string());
        if colibri.feedback.is_none() {
            if let Some(s) = &answer.sources {
                colibri.feedback = s.bridge_feedback().ok();
            }
        }
        let bridge_session_id = colibri.id.clone();
        let region = colibri.region.clone();
        let mut all = if features.ssrc_rewriting { ConferenceSources::new() } else { self.media.sources.without(nick) };
        if let Some(fb) = &colibri.feedback {
            all.insert(BRIDGE_OWNER, fb.clone());
        }
        let index = self.occupants.iter().position(|o| o.nick == nick).unwrap_or(0) as i64;
        let start_muted = (
            self.start_audio_muted.is_some_and(|n| index >= n) || self.metadata_start_muted.0 || av_join.0,
            self.start_video_muted.is_some_and(|n| index >= n) || self.metadata_start_muted.1 || av_join.1,
        );
        let offer = Offer {
            contents,
            bridge_transport: transport.to_element(),
            sctp_port: ep.sctp_port,
            sources: all.filtered(features.audio, features.video, true),
            json: features.json_sources,
            start_muted,
            bridge_session_id: bridge_session_id.clone(),
            region,
        };
        let sid = self.env.new_sid();
        let deadline = self.env.now() + super::REPLY_TIMEOUT;
        let what = PendingIq::Initiate { nick: nick.to_string(), sid: sid.clone() };
        let Some(id) = self.track(what, self.room.with_resource(nick), deadline) else {
            // No offer can be sent: give the endpoint back.
            self.media.failed.insert(nick.to_string());
            self.expire_endpoint(nick);
            return true;
        };
        let si = offer.session_initiate(&self.focus_full(), &self.occupant_jid(nick), &sid, &id);
        self.send(si);
        let work = self.env.stopwatch().saturating_duration_since(answered);
        self.shared.metrics.focus_added(work);
        info!("conference {}: invited {} (bridge {}, sid {})", self.room, nick, bridge, sid);
        self.note_session(nick, Some(&sid));
        self.media.sessions.insert(nick.to_string(), Session { sid, active: false, bridge_session_id, features });
        // Whatever was queued for an earlier session of this receiver is in the offer.
        self.media.signaling.take(nick);
        true
    }

    /// Drop the colibri session, expiring it on the bridge.
    fn drop_colibri(&mut self) {
        if let Some(c) = self.media.colibri.take() {
            self.note_bridge(None);
            self.shared.metrics.set_bridge(self.id, None);
            if c.created {
                let req = ConferenceModify { meeting_id: self.meeting_id.clone(), expire: true, ..Default::default() };
                let id = self.new_id();
                self.send(req.to_iq(&c.bridge, &id));
            }
        }
    }

    /// The session on the bridge is unusable: expire it (harmless when the bridge is
    /// gone) and end every participant's session with "moving"; the caller re-invites.
    fn move_all(&mut self) {
        self.media.removals += 1;
        self.drop_colibri();
        let nicks: Vec<String> = self.media.sessions.keys().cloned().collect();
        if !nicks.is_empty() {
            info!("conference {}: moving {} participants to a new bridge session", self.room, nicks.len());
        }
        for nick in &nicks {
            self.terminate_session(nick, Some(("success", "moving")), true);
            Metrics::inc(&self.shared.metrics.participants_moved);
        }
        if self.media.removals > 5 {
            warn!("conference {}: bridge sessions keep failing; waiting for a bridge event", self.room);
        }
    }

    /// End `nick`'s session: Jingle `reason` (if any) to the client, sources removed
    /// and signaled to the others (unless the whole bridge is being replaced),
    /// endpoint expired.
    pub(crate) fn terminate_session(&mut self, nick: &str, reason: Option<(&str, &str)>, moving_all: bool) {
        let Some(s) = self.media.sessions.remove(nick) else { return };
        self.note_session(nick, None);
        if let Some((r, text)) = reason {
            let id = self.new_id();
            let st = jingle::session_terminate(&self.focus_full(), &self.occupant_jid(nick), &s.sid, &id, r, Some(text));
            self.send(st);
        }
        self.media.signaling.take(nick);
        if let Some(removed) = self.media.sources.remove_owner(nick) {
            if !moving_all {
                self.queue_signal(nick, &removed, false);
            }
        }
        if !moving_all {
            self.expire_endpoint(nick);
        }
    }

    /// Expire `nick`'s endpoint; the conference itself when it was the last one.
    fn expire_endpoint(&mut self, nick: &str) {
        let Some(c) = self.media.colibri.as_mut() else { return };
        if !c.endpoints.remove(nick) {
            return;
        }
        if c.endpoints.is_empty() {
            debug!("conference {}: last endpoint gone; expiring the bridge conference", self.room);
            self.drop_colibri();
            return;
        }
        let bridge = c.bridge.clone();
        let req = ConferenceModify {
            meeting_id: self.meeting_id.clone(),
            endpoints: vec![EndpointRequest { id: nick.to_string(), expire: true, ..Default::default() }],
            ..Default::default()
        };
        let id = self.new_id();
        self.send(req.to_iq(&bridge, &id));
    }

    /// A participant is gone from the room: its session ends locally (no Jingle to it) and
    /// its endpoint is expired. Whether its sources are signaled as removed to the others
    /// depends on `tell_others`: not for a participant the MUC saw leave (clients drop its
    /// sources on its unavailable presence, media.md §3.7), but for one that vanished while
    /// the focus was away (the focus cannot know who saw it leave; a source-remove for
    /// sources a client already dropped changes nothing).
    pub(crate) fn media_participant_left(&mut self, nick: &str, tell_others: bool) {
        self.media.failed.remove(nick);
        self.media.restarts.remove(nick);
        self.media.force_mute.forget(nick);
        self.media.ice_restarts.remove(nick);
        self.media.ice_generations.remove(nick);
        if tell_others {
            // Queued adds of its sources are netted against the removal.
            self.terminate_session(nick, None, false);
        } else {
            self.media.signaling.forget_owner(nick);
            if self.media.sessions.remove(nick).is_some() {
                self.note_session(nick, None);
                self.media.sources.remove_owner(nick);
                self.media.signaling.take(nick);
                self.expire_endpoint(nick);
            }
        }
        if self.occupants.len() == 1 && self.media.sessions.contains_key(&self.occupants[0].nick) {
            self.media.single_deadline = Some(self.env.now() + SINGLE_PARTICIPANT_TIMEOUT);
        }
    }

    /// Queue a source change by `owner` for every other participant with a session.
    fn queue_signal(&mut self, owner: &str, delta: &EndpointSources, add: bool) {
        let window = signaling_window(self.occupants.len());
        let now = self.env.now();
        let receivers = self
            .media
            .sessions
            .iter()
            .filter(|(n, s)| n.as_str() != owner && !s.features.ssrc_rewriting)
            .map(|(n, s)| (n.as_str(), s.active));
        self.media.signaling.queue(owner, delta, add, receivers, now, window);
    }

    /// Send `nick` its queued source-remove then source-add.
    fn flush_signals(&mut self, nick: &str) {
        let Some(session) = self.media.sessions.get(nick).cloned() else {
            self.media.signaling.take(nick);
            return;
        };
        if !session.active {
            self.media.signaling.hold(nick);
            return;
        }
        let Some(sig) = self.media.signaling.take(nick) else { return };
        if sig.is_empty() {
            return;
        }
        let f = session.features;
        let from = self.focus_full();
        let to = self.occupant_jid(nick);
        let remove = sig.remove.filtered(f.audio, f.video, true);
        if !remove.is_empty() {
            let id = self.new_id();
            self.send(jingle::source_remove(&from, &to, &session.sid, &id, &remove, f.json_sources));
        }
        let add = sig.add.filtered(f.audio, f.video, true);
        if !add.is_empty() {
            let id = self.new_id();
            self.send(jingle::source_add(&from, &to, &session.sid, &id, &add, f.json_sources));
        }
    }

    fn colibri_update(&mut self, nick: &str, transport: Option<Element>, sources: bool, last_n: Option<u32>) {
        let Some(c) = self.media.colibri.as_ref() else { return };
        if !c.endpoints.contains(nick) {
            return;
        }
        let bridge = c.bridge.clone();
        let stats_id = self.occupants.iter().find(|o| o.nick == nick).and_then(|o| o.stats_id.clone());
        let srcs = if sources {
            Some(self.media.sources.get(nick).cloned().unwrap_or_default().to_colibri2(nick))
        } else {
            None
        };
        if transport.is_none() && srcs.is_none() && last_n.is_none() {
            return;
        }
        let req = ConferenceModify {
            meeting_id: self.meeting_id.clone(),
            endpoints: vec![EndpointRequest {
                id: nick.to_string(),
                stats_id,
                transport,
                sources: srcs,
                initial_last_n: last_n,
                ..Default::default()
            }],
            ..Default::default()
        };
        let deadline = self.env.now() + super::REPLY_TIMEOUT;
        let Some(id) = self.track(PendingIq::ColibriUpdate { nick: nick.to_string() }, bridge.clone(), deadline) else {
            return;
        };
        self.send(req.to_iq(&bridge, &id));
    }

    /// The answer to a fire-and-forget colibri update.
    pub(crate) fn on_colibri_update_answer(&mut self, nick: &str, answer: Option<&Incoming>) {
        let Some(answer) = answer else {
            debug!("conference {}: colibri update for {} unanswered", self.room, nick);
            return;
        };
        if let Err(e) = colibri2_outcome(Some(answer), false) {
            Metrics::inc(&self.shared.metrics.colibri_errors);
            warn!("conference {}: colibri update for {} failed: {}", self.room, nick, e);
            match e.reaction {
                Reaction::UnknownEndpoint(id) => {
                    if let Some(c) = self.media.colibri.as_mut() {
                        c.endpoints.remove(&id);
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

    /// The answer to a session-initiate.
    pub(crate) fn on_initiate_answer(&mut self, nick: &str, sid: &str, answer: Option<&Incoming>) {
        if answer.is_none_or(|a| a.get_attr("type") == Some("result")) {
            return; // a timeout counts as success: the session stays pending
        }
        if self.media.sessions.get(nick).is_none_or(|s| s.sid != sid) {
            return;
        }
        Metrics::inc(&self.shared.metrics.jingle_errors);
        warn!("conference {}: {} refused the offer", self.room, nick);
        self.terminate_session(nick, Some(("general-error", "jingle session failed")), false);
        self.media.failed.insert(nick.to_string());
    }

    /// A bridge came up or went down.
    pub(crate) fn media_bridge_event(&mut self, ev: BridgeEvent) {
        match ev {
            BridgeEvent::Down(jid) => {
                if self.media.colibri.as_ref().is_some_and(|c| c.bridge == jid) {
                    info!("conference {}: bridge {} is gone", self.room, jid);
                    self.media.removals = 0;
                    // Expire anyway: a bridge that is only slow (failed health checks)
                    // would otherwise still hold this meeting id when we come back to it.
                    self.move_all();
                    self.maybe_invite();
                }
            }
            BridgeEvent::Up(_) => {
                self.media.removals = 0;
                if self.media.bridge_not_available || self.media.colibri.is_none() {
                    self.maybe_invite();
                }
            }
        }
    }

    /// A Jingle IQ from an occupant (typed where it was parsed). Always answered.
    pub(crate) fn on_jingle(&mut self, j: &JingleIq) {
        if let Some(reply) = self.handle_jingle(&j.head, &j.request) {
            if reply.get_attr("type") == Some("error") {
                Metrics::inc(&self.shared.metrics.jingle_errors);
            }
            self.send(reply);
        }
    }

    /// Handle a Jingle request; the answer, or `None` when it was already sent (it
    /// must precede a new offer).
    fn handle_jingle(&mut self, iq: &IqHead, req: &Result<JingleRequest, JingleError>) -> Option<Element> {
        let req = match req {
            Ok(r) => r,
            Err(e) => return Some(iq_error(iq, ErrorCondition::BadRequest, Some(&e.to_string()))),
        };
        let Some(nick) = self.media.sessions.iter().find(|(_, s)| s.sid == req.sid).map(|(n, _)| n.clone()) else {
            if req.action == JingleAction::SessionInfo {
                // moderation.md §7 case 1.
                return Some(iq_error(iq, ErrorCondition::ItemNotFound, Some("jingle session no longer active")));
            }
            return Some(iq_error(iq, ErrorCondition::BadRequest, Some("unknown Jingle session")));
        };
        let from_nick = iq.from.as_deref().and_then(|f| Jid::parse(f).ok()).and_then(|j| j.resource().map(str::to_string));
        if from_nick.as_deref() != Some(nick.as_str()) {
            return Some(iq_error(iq, ErrorCondition::Forbidden, Some("not your Jingle session")));
        }
        Some(match req.action {
            JingleAction::SessionAccept | JingleAction::TransportAccept => {
                if let Some(s) = self.media.sessions.get_mut(&nick) {
                    s.active = true;
                }
                let sources = match req.sources() {
                    Ok(s) => s,
                    Err(e) => return Some(iq_error(iq, ErrorCondition::BadRequest, Some(e.text()))),
                };
                let accepted = if sources.is_empty() {
                    EndpointSources::default()
                } else {
                    match self.media.sources.try_add(&nick, sources) {
                        Ok(d) => d,
                        Err(e) => return Some(iq_error(iq, ErrorCondition::BadRequest, Some(e.text()))),
                    }
                };
                let transport = jingle::first_ice_transport(&req.contents).map(|t| t.to_element());
                let last_n = jingle::initial_last_n(&req.contents);
                self.colibri_update(&nick, transport, true, last_n);
                self.queue_signal(&nick, &accepted, true);
                // What was queued for this participant while it was pending goes now.
                let now = self.env.now();
                self.media.signaling.due_now(&nick, now);
                self.flush_signals(&nick);
                info!("conference {}: {} accepted ({} sources)", self.room, nick, accepted.sources.len());
                iq_result(iq)
            }
            JingleAction::TransportInfo => match jingle::first_ice_transport(&req.contents) {
                Some(t) => {
                    self.colibri_update(&nick, Some(t.to_element()), false, None);
                    iq_result(iq)
                }
                None => iq_error(iq, ErrorCondition::BadRequest, Some("missing transport")),
            },
            JingleAction::SourceAdd => {
                let sources = match req.sources() {
                    Ok(s) => s,
                    Err(e) => return Some(iq_error(iq, ErrorCondition::BadRequest, Some(e.text()))),
                };
                if sources.is_empty() {
                    return Some(iq_result(iq));
                }
                match self.media.sources.try_add(&nick, sources) {
                    Ok(delta) => {
                        self.colibri_update(&nick, None, true, None);
                        self.queue_signal(&nick, &delta, true);
                        iq_result(iq)
                    }
                    Err(e) => iq_error(iq, ErrorCondition::BadRequest, Some(e.text())),
                }
            }
            JingleAction::SourceRemove => {
                let sources = match req.sources() {
                    Ok(s) => s,
                    Err(e) => return Some(iq_error(iq, ErrorCondition::BadRequest, Some(e.text()))),
                };
                if sources.is_empty() {
                    return Some(iq_result(iq));
                }
                match self.media.sources.try_remove(&nick, &sources) {
                    Ok(removed) => {
                        if !removed.is_empty() {
                            self.colibri_update(&nick, None, true, None);
                            self.queue_signal(&nick, &removed, false);
                        }
                        iq_result(iq)
                    }
                    Err(e) => iq_error(iq, ErrorCondition::BadRequest, Some(e.text())),
                }
            }
            JingleAction::SessionTerminate => {
                let current = self.media.sessions.get(&nick).map(|s| s.bridge_session_id.clone());
                let bs = req.bridge_session.clone();
                let given = bs.as_ref().and_then(|b| b.id.clone());
                if given != current {
                    return Some(iq_error(iq, ErrorCondition::ItemNotFound, Some("bridge session id does not match")));
                }
                let restart = bs.is_some_and(|b| b.restart);
                let allowed = restart && self.restart_allowed(&nick);
                info!("conference {}: {} terminated its session (restart: {})", self.room, nick, restart);
                self.terminate_session(&nick, None, false);
                if restart && !allowed {
                    return Some(ErrorReply::new(ErrorCondition::ResourceConstraint).text("rate-limited").reply_to(iq));
                }
                if allowed {
                    self.send(iq_result(iq));
                    self.maybe_invite();
                    // The result was sent before the new offer.
                    return None;
                }
                iq_result(iq)
            }
            JingleAction::SessionInfo => return self.on_session_info(iq, &nick, req),
            JingleAction::TransportReject => iq_result(iq),
            _ => iq_error(iq, ErrorCondition::FeatureNotImplemented, Some("Unsupported 'action'")),
        })
    }

    /// A `session-info` from `nick` about its current session (moderation.md §7, decided
    /// by `moderation::ice`). The answer precedes whatever follows it.
    fn on_session_info(&mut self, iq: &IqHead, nick: &str, req: &JingleRequest) -> Option<Element> {
        use crate::moderation::ice::{decide, IceDecision, SessionInfo, SessionState};
        let info = SessionInfo::of(req);
        let now = self.env.now();
        let bs = self.media.sessions.get(nick).map(|s| s.bridge_session_id.clone());
        let st = SessionState { current: true, ice_restart_enabled: self.shared.moderation.ice_restart, bridge_session: bs.as_deref() };
        let budget = self.media.ice_restarts.entry(nick.to_string()).or_default();
        match decide(&info, st, budget, now) {
            IceDecision::Refuse(cond, text) => Some(ErrorReply::new(cond).text(&text).reply_to(iq)),
            IceDecision::Ignore => Some(iq_result(iq)),
            IceDecision::ReInvite => {
                info!("conference {}: {} reports ICE failed; inviting again", self.room, nick);
                self.send(iq_result(iq));
                self.terminate_session(nick, Some(("success", "moving")), false);
                self.maybe_invite();
                None
            }
            IceDecision::RestartTransport => {
                self.send(iq_result(iq));
                self.ice_restart(nick);
                None
            }
        }
    }

    /// Ask the bridge for an in-place ICE restart of `nick`'s endpoint (media.md §1.10).
    fn ice_restart(&mut self, nick: &str) {
        let Some(c) = self.media.colibri.as_ref().filter(|c| c.endpoints.contains(nick)) else { return };
        let Some(sid) = self.media.sessions.get(nick).map(|s| s.sid.clone()) else { return };
        let bridge = c.bridge.clone();
        let stats_id = self.occupants.iter().find(|o| o.nick == nick).and_then(|o| o.stats_id.clone());
        let req = ConferenceModify {
            meeting_id: self.meeting_id.clone(),
            endpoints: vec![EndpointRequest { id: nick.to_string(), stats_id, ice_restart: true, ..Default::default() }],
            ..Default::default()
        };
        let deadline = self.env.now() + super::REPLY_TIMEOUT;
        let Some(id) = self.track(PendingIq::IceRestart { nick: nick.to_string(), sid }, bridge.clone(), deadline) else { return };
        info!("conference {}: in-place ICE restart of {}", self.room, nick);
        self.send(req.to_iq(&bridge, &id));
    }

    /// The bridge's answer to an in-place ICE restart: relay a new transport in a
    /// transport-info, relay nothing, or invite again (media.md §1.10, §3.6).
    pub(crate) fn on_ice_restart_answer(&mut self, nick: &str, sid: &str, answer: Option<&Incoming>) {
        use crate::moderation::ice::{on_restart_answer, RestartAnswer};
        let Some(session) = self.media.sessions.get(nick).filter(|s| s.sid == sid).cloned() else { return };
        let parsed = match colibri2_outcome(answer, false) {
            Ok(a) => a,
            Err(e) => {
                // Handled (and counted) like any failed colibri update.
                warn!("conference {}: ICE restart of {} failed: {}", self.room, nick, e);
                self.on_colibri_update_answer(nick, answer);
                return;
            }
        };
        let ice = parsed.endpoint(nick).and_then(|e| e.transport.as_ref()).map(|t| t.to_element());
        match on_restart_answer(ice.as_ref(), self.media.ice_generations.get(nick).copied()) {
            RestartAnswer::Relay(t, generation) => {
                self.media.ice_generations.insert(nick.to_string(), generation);
                let content = offer_contents(&session.features).first().and_then(|c| c.get_attr("name").map(str::to_string));
                let id = self.new_id();
                let ti = jingle::transport_info(&self.focus_full(), &self.occupant_jid(nick), &sid, &id, content.as_deref().unwrap_or("audio"), &t);
                info!("conference {}: new bridge transport (generation {}) sent to {}", self.room, generation, nick);
                self.send(ti);
            }
            RestartAnswer::Nothing => debug!("conference {}: ICE restart of {}: nothing to relay", self.room, nick),
            RestartAnswer::ReInvite => {
                info!("conference {}: the bridge cannot restart ICE for {}; inviting again", self.room, nick);
                self.terminate_session(nick, Some(("success", "moving")), false);
                self.maybe_invite();
            }
        }
    }

    /// Count a restart request against the rate limit; false when over it.
    fn restart_allowed(&mut self, nick: &str) -> bool {
        let now = self.env.now();
        let q = self.media.restarts.entry(nick.to_string()).or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60)) {
            q.pop_front();
        }
        if q.back().is_some_and(|t| now.duration_since(*t) < RESTART_MIN_INTERVAL) || q.len() >= RESTART_MAX_PER_MINUTE {
            return false;
        }
        q.push_back(now);
        true
    }

    /// End every session and the bridge conference (the conference is ending).
    pub(crate) fn media_stop(&mut self) {
        self.media.sessions.clear();
        self.cleanup.lock().sessions.clear();
        self.media.signaling.clear();
        self.drop_colibri();
    }

    /// Bridge force-mute of `nick` for `media` ("audio"/"video"): on for a moderator
    /// mute, off when the participant unmutes itself. Every request states the
    /// endpoint's complete state (media.md §1.7).
    pub(crate) fn bridge_force_mute(&mut self, nick: &str, media: &str, muted: bool) {
        let Some(c) = self.media.colibri.as_ref() else { return };
        if !c.endpoints.contains(nick) {
            return;
        }
        let bridge = c.bridge.clone();
        let Some(st) = self.media.force_mute.set(nick, media, muted) else { return };
        let req = ConferenceModify {
            meeting_id: self.meeting_id.clone(),
            endpoints: vec![EndpointRequest { id: nick.to_string(), force_mute: Some(st), ..Default::default() }],
            ..Default::default()
        };
        let id = self.new_id();
        self.send(req.to_iq(&bridge, &id));
    }

    /// The `<bridgeNotAvailable/>` extension when it applies.
    pub(crate) fn bridge_presence_extension(&self) -> Option<Element> {
        self.media.bridge_not_available.then(|| Element::new("bridgeNotAvailable", ns::FOCUS))
    }

    /// Bridges in use (for `bridge-count`).
    pub(crate) fn bridge_count(&self) -> usize {
        usize::from(self.media.colibri.is_some())
    }
}
