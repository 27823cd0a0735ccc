//! The participants' Jingle sessions (each kept in its [`super::participant::Participant`]):
//! the offer once the bridge created the endpoint, the participants' requests
//! (session-accept, source-add and -remove, transport-info, session-terminate and
//! restarts, session-info and ICE restarts), the answers to our offers, the end of a
//! session and the batched source signaling ([`super::signaling`]).

use log::{debug, info, warn};

use super::bridge_session::Allocated;
use super::participant::Session;
use super::signaling::signaling_window;
use super::{Conference, Env, PendingIq};
use crate::ids::{BridgeSessionId, Nick, Sid};
use crate::jid::Jid;
use crate::metrics::Metrics;
use crate::xml::Element;
use crate::xmpp::incoming::{colibri2_outcome, Incoming, JingleIq};
use crate::xmpp::jingle::codecs::{offer_media, Features, OfferMedia};
use crate::xmpp::jingle::sources::{ConferenceSources, EndpointSources, SourceOwner};
use crate::xmpp::jingle::stanzas::{self as jingle, JingleAction, JingleError, JingleRequest, Offer};
use crate::xmpp::jingle::SourceView;
use crate::xmpp::stanza::{iq_error, iq_result, ErrorCondition, ErrorReply, IqHead};

/// A stanza written directly parses to the one its reference tree builder makes (the
/// simulated conferences check every offer and source-add / source-remove this way).
#[cfg(test)]
fn same_as_tree(direct: &crate::xml::RawElement, tree: Element) {
    assert_eq!(direct.reparsed().expect("well-formed"), tree.reparsed().expect("well-formed"), "direct vs tree");
}

impl<E: Env> Conference<E> {
    /// Record (or forget) `nick`'s Jingle session for the panic cleanup.
    pub(super) fn note_session(&self, nick: &Nick, sid: Option<&Sid>) {
        let mut c = self.cleanup.lock();
        match sid {
            Some(sid) => {
                c.sessions.insert(nick.clone(), sid.clone());
            }
            None => {
                c.sessions.remove(nick);
            }
        }
    }

    pub(super) fn focus_full(&self) -> String {
        self.shared.focus_full.lock().clone().unwrap_or_else(|| format!("{}/{}", self.shared.focus_jid, self.shared.nick))
    }

    pub(super) fn occupant_jid(&self, nick: &str) -> String {
        self.room.with_resource(nick).to_string()
    }

    /// Send `nick` (`Allocating`, its endpoint `allocated` on the bridge) its offer: the
    /// bridge's transport, everyone's sources, start-muted; it becomes `Offered`.
    /// `av_join`: AV moderation force-mutes it at the start (audio, video).
    pub(super) fn offer(&mut self, nick: &Nick, allocated: Allocated, features: Features, contents: std::sync::Arc<OfferMedia>, av_join: (bool, bool)) {
        let Some(c) = self.media.bridging.session.as_ref() else {
            self.with_participant(nick, |p| p.allocation_failed(true));
            return;
        };
        let bridge = c.bridge.clone();
        let bridge_session = c.id.clone();
        let region = c.region.clone();
        // Everyone else's sources and the bridge's, read in place (each owner's encoding is cached).
        let bridge_sources = c.feedback().map(|fb| ConferenceSources::single(SourceOwner::Bridge, fb.clone()));
        let index = self.occupants.iter().position(|o| o.nick == *nick).unwrap_or(0) as i64;
        let start_muted = (
            self.start_audio_muted.is_some_and(|n| index >= n) || self.metadata_start_muted.0 || av_join.0,
            self.start_video_muted.is_some_and(|n| index >= n) || self.metadata_start_muted.1 || av_join.1,
        );
        let sid = self.env.new_sid();
        let deadline = self.env.now() + super::REPLY_TIMEOUT;
        let what = PendingIq::Initiate { nick: nick.clone(), sid: sid.clone() };
        let Some(id) = self.track(what, self.room.with_resource(nick.as_str()), deadline) else {
            // No offer can be sent: give the endpoint back.
            self.with_participant(nick, |p| p.allocation_failed(false));
            self.expire_endpoint(nick.as_str());
            return;
        };
        let others = if features.ssrc_rewriting { SourceView::none() } else { SourceView::new(&self.media.sources).except(nick.as_str()) };
        let sources = bridge_sources.as_ref().map_or(others, |b| others.plus(b));
        let offer = Offer {
            contents,
            bridge_transport: allocated.transport,
            sctp_port: allocated.sctp_port,
            sources: sources.media(features.audio, features.video),
            json: features.json_sources,
            start_muted,
            bridge_session_id: bridge_session.to_string(),
            region,
        };
        let (from, to) = (self.focus_full(), self.occupant_jid(nick.as_str()));
        let si = offer.session_initiate(&from, &to, sid.as_str(), &id);
        // In tests every offer is also built as the reference tree and must parse the same.
        #[cfg(test)]
        same_as_tree(&si, jingle::tree::session_initiate(&offer, &from, &to, sid.as_str(), &id));
        self.send(si);
        let work = self.env.stopwatch().saturating_duration_since(allocated.answered);
        self.shared.metrics.focus_added(work);
        info!("conference {}: invited {} (bridge {}, sid {})", self.room, nick, bridge, sid);
        self.note_session(nick, Some(&sid));
        // A new session: whatever was queued for an earlier one is in the offer.
        self.with_participant(nick, |p| p.offered(Session::new(sid, bridge_session, features)));
    }

    /// End `nick`'s session, if it has one (it becomes `Ready`), as [`Self::session_ended`] says.
    pub(crate) fn terminate_session(&mut self, nick: &str, reason: Option<(&str, &str)>, moving_all: bool) {
        let Some(p) = self.participant_mut(nick) else { return };
        let Some(s) = p.end_session() else { return };
        let nick = p.nick.clone();
        self.session_ended(&nick, s, reason, moving_all);
    }

    /// `nick`'s session `s` has ended: Jingle `reason` (if any) to the client, its sources
    /// removed and signaled to the others and its endpoint expired (unless the whole
    /// bridge session is being replaced, `moving_all`).
    pub(super) fn session_ended(&mut self, nick: &Nick, s: Session, reason: Option<(&str, &str)>, moving_all: bool) {
        self.note_session(nick, None);
        if let Some((r, text)) = reason {
            let id = self.new_id();
            let st = jingle::session_terminate(&self.focus_full(), &self.occupant_jid(nick.as_str()), s.sid.as_str(), &id, r, Some(text));
            self.send(st);
        }
        if let Some(removed) = self.media.sources.remove_owner(nick) {
            if !moving_all {
                self.queue_signal(nick, &removed, false);
            }
        }
        if !moving_all {
            self.expire_endpoint(nick.as_str());
        }
    }

    /// Queue a source change by `owner` for every other participant with a session.
    pub(super) fn queue_signal(&mut self, owner: &Nick, delta: &EndpointSources, add: bool) {
        let window = signaling_window(self.occupants.len());
        let now = self.env.now();
        // One entry for every receiver: encoded once when the first queue is sent.
        let shared = ConferenceSources::single(owner, delta.clone());
        for p in self.occupants.iter_mut().filter(|p| p.nick != *owner) {
            let active = p.is_active();
            if let Some(s) = p.session_mut().filter(|s| !s.features.ssrc_rewriting) {
                s.signals.queue(owner, delta, &shared, add, active, now, window);
            }
        }
    }

    /// Send `nick` its queued source-remove then source-add (once its session is active;
    /// until then they wait).
    pub(super) fn flush_signals(&mut self, nick: &Nick) {
        let Some(p) = self.participant_mut(nick.as_str()) else { return };
        if !p.is_active() {
            return;
        }
        let Some(session) = p.session_mut() else { return };
        let sig = session.signals.take();
        if sig.is_empty() {
            return;
        }
        let (f, sid) = (session.features, session.sid.clone());
        let from = self.focus_full();
        let to = self.occupant_jid(nick.as_str());
        let remove = SourceView::new(&sig.remove).media(f.audio, f.video);
        if !remove.is_empty() {
            let id = self.new_id();
            let st = jingle::source_remove(&from, &to, sid.as_str(), &id, remove, f.json_sources);
            #[cfg(test)]
            same_as_tree(&st, jingle::tree::source_remove(&from, &to, sid.as_str(), &id, remove, f.json_sources));
            self.send(st);
        }
        let add = SourceView::new(&sig.add).media(f.audio, f.video);
        if !add.is_empty() {
            let id = self.new_id();
            let st = jingle::source_add(&from, &to, sid.as_str(), &id, add, f.json_sources);
            #[cfg(test)]
            same_as_tree(&st, jingle::tree::source_add(&from, &to, sid.as_str(), &id, add, f.json_sources));
            self.send(st);
        }
    }

    /// The answer to a session-initiate.
    pub(crate) fn on_initiate_answer(&mut self, nick: &Nick, sid: &Sid, answer: Option<&Incoming>) {
        if answer.is_none_or(|a| a.get_attr("type") == Some("result")) {
            return; // a timeout counts as success: the session stays pending
        }
        let Some(s) = self.participant_mut(nick.as_str()).and_then(|p| p.offer_refused(sid.as_str())) else { return };
        Metrics::inc(&self.shared.metrics.jingle_errors);
        warn!("conference {}: {} refused the offer", self.room, nick);
        self.session_ended(nick, s, Some(("general-error", "jingle session failed")), false);
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
    pub(super) fn handle_jingle(&mut self, iq: &IqHead, req: &Result<JingleRequest, JingleError>) -> Option<Element> {
        let req = match req {
            Ok(r) => r,
            Err(e) => return Some(iq_error(iq, ErrorCondition::BadRequest, Some(&e.to_string()))),
        };
        let Some(nick) = self.occupants.iter().find(|p| p.session_with(&req.sid).is_some()).map(|p| p.nick.clone()) else {
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
                self.with_participant(&nick, |p| {
                    p.accepted();
                });
                let sources = match req.sources() {
                    Ok(s) => s,
                    Err(e) => return Some(iq_error(iq, ErrorCondition::BadRequest, Some(e.text()))),
                };
                let accepted = if sources.is_empty() {
                    EndpointSources::default()
                } else {
                    match self.media.sources.try_add(nick.clone(), sources) {
                        Ok(d) => d,
                        Err(e) => return Some(iq_error(iq, ErrorCondition::BadRequest, Some(e.text()))),
                    }
                };
                let transport = jingle::first_ice_transport(&req.contents);
                let last_n = jingle::initial_last_n(&req.contents);
                self.colibri_update(&nick, transport.map(|t| t.to_element()), true, last_n);
                self.queue_signal(&nick, &accepted, true);
                // What was queued for this participant while it was pending goes now.
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
                match self.media.sources.try_add(nick.clone(), sources) {
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
                match self.media.sources.try_remove(nick.clone(), &sources) {
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
                let current = self.participant(nick.as_str()).and_then(|p| p.session()).map(|s| s.bridge_session.clone());
                let bs = req.bridge_session.clone();
                let given = bs.as_ref().and_then(|b| b.id.clone()).map(BridgeSessionId::from);
                if given != current {
                    return Some(iq_error(iq, ErrorCondition::ItemNotFound, Some("bridge session id does not match")));
                }
                let restart = bs.is_some_and(|b| b.restart);
                let now = self.env.now();
                let allowed = restart && self.participant_mut(nick.as_str()).is_some_and(|p| p.restart_allowed(now));
                info!("conference {}: {} terminated its session (restart: {})", self.room, nick, restart);
                self.terminate_session(nick.as_str(), None, false);
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
    pub(super) fn on_session_info(&mut self, iq: &IqHead, nick: &Nick, req: &JingleRequest) -> Option<Element> {
        use crate::moderation::ice::{decide, IceDecision, SessionInfo, SessionState};
        let info = SessionInfo::of(req);
        let now = self.env.now();
        let ice_restart_enabled = self.shared.moderation.ice_restart;
        let Some(p) = self.participant_mut(nick.as_str()) else { return Some(iq_result(iq)) };
        let bs = p.session().map(|s| s.bridge_session.to_string());
        let st = SessionState { current: true, ice_restart_enabled, bridge_session: bs.as_deref() };
        match decide(&info, st, p.ice_budget(), now) {
            IceDecision::Refuse(cond, text) => Some(ErrorReply::new(cond).text(&text).reply_to(iq)),
            IceDecision::Ignore => Some(iq_result(iq)),
            IceDecision::ReInvite => {
                info!("conference {}: {} reports ICE failed; inviting again", self.room, nick);
                self.send(iq_result(iq));
                self.terminate_session(nick.as_str(), Some(("success", "moving")), false);
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

    /// The bridge's answer to an in-place ICE restart: relay a new transport in a
    /// transport-info, relay nothing, or invite again (media.md §1.10, §3.6).
    pub(crate) fn on_ice_restart_answer(&mut self, nick: &Nick, sid: &Sid, answer: Option<&Incoming>) {
        use crate::moderation::ice::{on_restart_answer, RestartAnswer};
        let Some(p) = self.participant(nick.as_str()) else { return };
        let Some(features) = p.session_with(sid.as_str()).map(|s| s.features) else { return };
        let last_generation = p.ice_generation();
        let parsed = match colibri2_outcome(answer, false) {
            Ok(a) => a,
            Err(e) => {
                // Handled (and counted) like any failed colibri update.
                warn!("conference {}: ICE restart of {} failed: {}", self.room, nick, e);
                self.on_colibri_update_answer(nick, answer);
                return;
            }
        };
        let ice = parsed.endpoint(nick.as_str()).and_then(|e| e.transport.as_ref()).map(|t| t.to_element());
        match on_restart_answer(ice.as_ref(), last_generation) {
            RestartAnswer::Relay(t, generation) => {
                self.with_participant(nick, |p| p.relayed_ice_generation(generation));
                let content = offer_media(&features).contents.first().map(|c| c.name.clone());
                let id = self.new_id();
                let to = self.occupant_jid(nick.as_str());
                let ti = jingle::transport_info(&self.focus_full(), &to, sid.as_str(), &id, content.as_deref().unwrap_or("audio"), &t);
                info!("conference {}: new bridge transport (generation {}) sent to {}", self.room, generation, nick);
                self.send(ti);
            }
            RestartAnswer::Nothing => debug!("conference {}: ICE restart of {}: nothing to relay", self.room, nick),
            RestartAnswer::ReInvite => {
                info!("conference {}: the bridge cannot restart ICE for {}; inviting again", self.room, nick);
                self.terminate_session(nick.as_str(), Some(("success", "moving")), false);
                self.maybe_invite();
            }
        }
    }
}
