//! The participants' Jingle sessions: their requests (session-accept, source-add and
//! -remove, transport-info, session-terminate and restarts, session-info and ICE restarts),
//! the answers to our offers, the end of a session and the batched source signaling.

use std::time::Duration;

use log::{debug, info, warn};

use super::signaling::signaling_window;
use super::{Conference, Env};
use crate::xmpp::colibri2::parse_answer;
use crate::jid::Jid;
use crate::xmpp::jingle::codecs::{offer_contents, Features};
use crate::xmpp::jingle::stanzas::{self as jingle, JingleAction, JingleRequest};
use crate::xmpp::jingle::sources::EndpointSources;
use crate::metrics::Metrics;
use crate::xml::Element;
use crate::xmpp::stanza::{iq_error, iq_result, ErrorCondition, ErrorReply};

/// Restart requests: at least this far apart…
pub const RESTART_MIN_INTERVAL: Duration = Duration::from_secs(5);
/// …and at most this many per minute.
pub const RESTART_MAX_PER_MINUTE: usize = 5;

/// A participant's Jingle session.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub sid: String,
    pub active: bool,
    pub bridge_session_id: String,
    pub features: Features,
}

impl<E: Env> Conference<E> {
    /// Record (or forget) `nick`'s Jingle session for the panic cleanup.
    pub(super) fn note_session(&self, nick: &str, sid: Option<&str>) {
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

    pub(super) fn focus_full(&self) -> String {
        self.shared.focus_full.lock().clone().unwrap_or_else(|| format!("{}/{}", self.shared.focus_jid, self.shared.nick))
    }

    pub(super) fn occupant_jid(&self, nick: &str) -> String {
        self.room.with_resource(nick).to_string()
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

    /// Queue a source change by `owner` for every other participant with a session.
    pub(super) fn queue_signal(&mut self, owner: &str, delta: &EndpointSources, add: bool) {
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
    pub(super) fn flush_signals(&mut self, nick: &str) {
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

    /// The answer to a session-initiate.
    pub(crate) fn on_initiate_answer(&mut self, nick: &str, sid: &str, answer: Option<&Element>) {
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

    /// A Jingle IQ from an occupant. Always answered.
    pub(crate) fn on_jingle(&mut self, iq: &Element) {
        if let Some(reply) = self.handle_jingle(iq) {
            if reply.get_attr("type") == Some("error") {
                Metrics::inc(&self.shared.metrics.jingle_errors);
            }
            self.send(reply);
        }
    }

    /// Handle a Jingle request; the answer, or `None` when it was already sent (it
    /// must precede a new offer).
    pub(super) fn handle_jingle(&mut self, iq: &Element) -> Option<Element> {
        let req = match JingleRequest::parse(iq) {
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
        let from_nick = iq.get_attr("from").and_then(|f| Jid::parse(f).ok()).and_then(|j| j.resource().map(str::to_string));
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
                    match self.media.sources.try_add(nick.as_str(), sources) {
                        Ok(d) => d,
                        Err(e) => return Some(iq_error(iq, ErrorCondition::BadRequest, Some(e.text()))),
                    }
                };
                let transport = jingle::first_ice_transport(&req.contents);
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
                    self.colibri_update(&nick, Some(t), false, None);
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
                match self.media.sources.try_add(nick.as_str(), sources) {
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
                match self.media.sources.try_remove(nick.as_str(), &sources) {
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
            JingleAction::SessionInfo => return self.on_session_info(iq, &nick, &req),
            JingleAction::TransportReject => iq_result(iq),
            _ => iq_error(iq, ErrorCondition::FeatureNotImplemented, Some("Unsupported 'action'")),
        })
    }

    /// A `session-info` from `nick` about its current session (moderation.md §7, decided
    /// by `moderation::ice`). The answer precedes whatever follows it.
    pub(super) fn on_session_info(&mut self, iq: &Element, nick: &str, req: &JingleRequest) -> Option<Element> {
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

    /// The bridge's answer to an in-place ICE restart: relay a new transport in a
    /// transport-info, relay nothing, or invite again (media.md §1.10, §3.6).
    pub(crate) fn on_ice_restart_answer(&mut self, nick: &str, sid: &str, answer: Option<&Element>) {
        use crate::moderation::ice::{on_restart_answer, RestartAnswer};
        let Some(session) = self.media.sessions.get(nick).filter(|s| s.sid == sid).cloned() else { return };
        let parsed = match parse_answer(answer, false) {
            Ok(a) => a,
            Err(e) => {
                // Handled (and counted) like any failed colibri update.
                warn!("conference {}: ICE restart of {} failed: {}", self.room, nick, e);
                self.on_colibri_update_answer(nick, answer);
                return;
            }
        };
        let ice = parsed.endpoint(nick).and_then(|e| e.transport.clone());
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
    pub(super) fn restart_allowed(&mut self, nick: &str) -> bool {
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
}
