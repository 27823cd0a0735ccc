//! Jibri in one conference: the moderator's `<jibri>` IQ checked and answered in the
//! order of §3.2 (`tests/fixtures/protocol/jibri-jigasi.md`), sessions run by
//! [`crate::jibri::session::Session`] (one recorder session, file or stream; SIP
//! gateway sessions keyed by address, at most [`MAX_SIP_SESSIONS`]), the start IQ to
//! the chosen Jibri tracked like every request of the conference, status updates from
//! the router ([`JibriNotice`]), and what the focus presence shows (§3.5, §4).
//!
//! The moderator's start is answered after the Jibri accepted (or the session failed),
//! as Jicofo does; meanwhile a second start is `unexpected-request`.

use std::time::Instant;

use log::{info, warn};

use crate::jibri::session::{Effect, Kind, Session, StartAnswer, START_TIMEOUT};
use crate::jid::Jid;
use crate::xml::Element;
use crate::xmpp::incoming::Incoming;
use crate::xmpp::ns;
use crate::xmpp::jibri::{Action, JibriIq, RecordingMode, RecordingStatus, SipCallState, Status};
use crate::xmpp::stanza::{iq_error, iq_result, ErrorCondition, ErrorReply};

use super::{Conference, Env, PendingIq};
use crate::messages::JibriNotice;

/// SIP gateway sessions one conference may run.
pub const MAX_SIP_SESSIONS: usize = 8;

/// The conference's Jibri sessions and what the focus presence shows of them.
#[derive(Debug, Default)]
pub(crate) struct Recording {
    recorder: Option<Session>,
    sip: Vec<Session>,
    /// The moderators' start IQs waiting for their answer, by session id.
    waiting: Vec<(String, Element)>,
    /// `<jibri-recording-status>` and `<jibri-sip-call-state>` of the focus presence.
    recording_status: Option<Element>,
    sip_state: Option<Element>,
}

impl Recording {
    fn session_mut(&mut self, id: &str) -> Option<&mut Session> {
        self.recorder.iter_mut().chain(self.sip.iter_mut()).find(|s| s.id == id)
    }

    /// The presence extensions to publish.
    pub(crate) fn presence_extensions(&self) -> impl Iterator<Item = &Element> {
        self.recording_status.iter().chain(self.sip_state.iter())
    }
}

/// A stanza-error answer with a text.
fn error(iq: &Element, c: ErrorCondition, text: &str) -> Element {
    ErrorReply::new(c).text(text).reply_to(iq)
}

impl<E: Env> Conference<E> {
    /// A `<jibri>` IQ from an occupant of the room (§3.2).
    pub(crate) fn on_jibri_request(&mut self, iq: &Element, el: &Element) {
        let reply = self.jibri_request(iq, el);
        if let Some(r) = reply {
            self.send(r);
        }
    }

    fn jibri_request(&mut self, iq: &Element, el: &Element) -> Option<Element> {
        let j = match JibriIq::try_from(el) {
            Ok(j) => j,
            Err(e) => return Some(iq_error(iq, ErrorCondition::BadRequest, Some(&e.to_string()))),
        };
        let sip = j.is_sip();
        if self.shared.jibri.brewery(sip).is_none() || !self.life.in_room() {
            return Some(iq_error(iq, ErrorCondition::ItemNotFound, None));
        }
        let from = iq.get_attr("from").and_then(|f| Jid::parse(f).ok());
        let nick = from.as_ref().filter(|f| f.bare() == self.room).and_then(|f| f.resource()).map(str::to_string);
        let Some(occupant) = nick.and_then(|n| self.occupants.iter().find(|o| o.nick == n)).cloned() else {
            return Some(iq_error(iq, ErrorCondition::Forbidden, None));
        };
        if !occupant.is_moderator() {
            return Some(iq_error(iq, ErrorCondition::NotAllowed, None));
        }
        let requester = self.room.with_resource(occupant.nick.as_str()).to_string();
        let Some(action) = j.action else {
            return Some(error(iq, ErrorCondition::BadRequest, "undefined action"));
        };
        let now = self.env.now();
        match action {
            Action::Stop => {
                let pool_conf = self.id;
                let jibris = self.shared.jibri.clone();
                let mut pool = jibris.pool(sip, pool_conf);
                let session = if sip {
                    let addr = j.sip_address.as_deref().unwrap_or_default();
                    self.recording.sip.iter_mut().find(|s| s.sip_address() == Some(addr))
                } else {
                    self.recording.recorder.as_mut()
                };
                let Some(s) = session else {
                    return Some(error(iq, ErrorCondition::ItemNotFound, "Unknown session"));
                };
                let id = s.id.clone();
                info!("conference {}: {} stops Jibri session {}", self.room, occupant.nick, id);
                let fx = s.stop(Some(requester), &mut pool);
                self.apply_jibri(&id, fx);
                Some(iq_result(iq))
            }
            Action::Start => {
                let busy = if sip {
                    let addr = j.sip_address.as_deref().unwrap_or_default();
                    self.recording.sip.iter().any(|s| s.sip_address() == Some(addr))
                } else {
                    self.recording.recorder.is_some()
                };
                if busy {
                    return Some(error(iq, ErrorCondition::UnexpectedRequest, "Recording or live streaming is already enabled"));
                }
                let kind = if sip {
                    if self.recording.sip.len() >= MAX_SIP_SESSIONS {
                        return Some(error(iq, ErrorCondition::ResourceConstraint, "too many SIP gateway sessions"));
                    }
                    Kind::Sip { address: j.sip_address.clone().unwrap_or_default(), display_name: j.display_name.clone() }
                } else {
                    match (j.recording_mode, &j.stream_id) {
                        (Some(RecordingMode::File), Some(_)) => {
                            return Some(error(iq, ErrorCondition::BadRequest, "Stream ID is provided for a FILE recording."))
                        }
                        (Some(RecordingMode::File), None) => Kind::Recorder {
                            mode: RecordingMode::File,
                            stream_id: None,
                            youtube_broadcast_id: None,
                            app_data: j.app_data.clone(),
                        },
                        (_, None) => return Some(error(iq, ErrorCondition::BadRequest, "Stream ID is empty or undefined")),
                        (_, Some(s)) => Kind::Recorder {
                            mode: RecordingMode::Stream,
                            stream_id: Some(s.clone()),
                            youtube_broadcast_id: j.youtube_broadcast_id.clone(),
                            app_data: j.app_data.clone(),
                        },
                    }
                };
                let id = self.env.new_uuid();
                let mut s = Session::new(id.clone(), kind, self.room.to_string(), requester, self.shared.jibri.session);
                info!("conference {}: {} starts Jibri session {} ({})", self.room, occupant.nick, id, if sip { "SIP gateway" } else { s.mode().as_str() });
                let jibris = self.shared.jibri.clone();
                jibris.counters(sip).active.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let fx = s.start(&mut jibris.pool(sip, self.id), now);
                if sip {
                    self.recording.sip.push(s);
                } else {
                    self.recording.recorder = Some(s);
                }
                self.recording.waiting.push((id.clone(), crate::xmpp::conference_iq::slim_request(iq)));
                self.apply_jibri(&id, fx);
                None
            }
        }
    }

    /// Carry out what session `id` asked for.
    fn apply_jibri(&mut self, id: &str, fx: Vec<Effect>) {
        let Some(s) = self.recording.session_mut(id) else { return };
        let sip = s.sip_address().is_some();
        let (mode, sip_address) = (s.mode(), s.sip_address().map(str::to_string));
        let counters = self.shared.jibri.clone();
        let counters = counters.counters(sip);
        let mut republish = false;
        for e in fx {
            match e {
                Effect::SendStart { to, jibri } => {
                    let deadline = self.env.now() + START_TIMEOUT;
                    let what = PendingIq::JibriStart { session: id.to_string() };
                    let Some(iq_id) = self.track(what, to.clone(), deadline) else {
                        // Not sent (too many requests out): as an error answer.
                        let jibris = self.shared.jibri.clone();
                        let mut pool = jibris.pool(sip, self.id);
                        let now = self.env.now();
                        let fx = match self.recording.session_mut(id) {
                            Some(s) => s.on_start_answer(StartAnswer::Failed { timed_out: false }, &mut pool, now),
                            None => Vec::new(),
                        };
                        return self.apply_jibri(id, fx);
                    };
                    info!("conference {}: asking Jibri {} to start session {}", self.room, to, id);
                    let iq = Element::new("iq", ns::CLIENT)
                        .attr("type", "set")
                        .attr("id", iq_id)
                        .attr("to", to.to_string())
                        .child(jibri.to_element());
                    self.send(iq);
                }
                Effect::SendStop { to, jibri } => {
                    let iq = Element::new("iq", ns::CLIENT)
                        .attr("type", "set")
                        .attr("id", self.new_id())
                        .attr("to", to.to_string())
                        .child(jibri.to_element());
                    self.send(iq);
                }
                Effect::Publish { status, failure, initiator } => {
                    info!("conference {}: Jibri session {} is {}", self.room, id, status.as_str());
                    if failure.is_some() {
                        crate::jibri::count(&counters.failed);
                    }
                    if let Some(addr) = &sip_address {
                        let st = SipCallState { state: status, sip_address: addr.clone(), session_id: id.to_string(), failure_reason: failure };
                        self.recording.sip_state = Some(st.to_element());
                    } else {
                        let st = RecordingStatus { status, mode, session_id: id.to_string(), initiator, failure_reason: failure };
                        self.recording.recording_status = Some(st.to_element());
                    }
                    republish = true;
                }
                Effect::Answer(r) => {
                    let Some(pos) = self.recording.waiting.iter().position(|(s, _)| s == id) else { continue };
                    let (_, iq) = self.recording.waiting.remove(pos);
                    let reply = match r {
                        Ok(()) => {
                            crate::jibri::count(&counters.started);
                            iq_result(&iq).child(Element::new("jibri", crate::xmpp::jibri::NS).attr("session_id", id))
                        }
                        Err((c, text)) => {
                            crate::jibri::count(&counters.failed);
                            warn!("conference {}: Jibri session {} not started: {}", self.room, id, text);
                            error(&iq, c, text)
                        }
                    };
                    self.send(reply);
                }
                Effect::Ended => {
                    counters.active.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                    if self.recording.recorder.as_ref().is_some_and(|s| s.id == id) {
                        self.recording.recorder = None;
                    }
                    self.recording.sip.retain(|s| s.id != id);
                    self.recording.waiting.retain(|(s, _)| s != id);
                }
            }
        }
        if republish {
            self.publish_presence();
        }
    }

    /// The answer to a start IQ (or `None` at its deadline).
    pub(crate) fn on_jibri_start_answer(&mut self, session: &str, answer: Option<&Incoming>) {
        let a = match answer {
            Some(st) if st.get_attr("type") == Some("result") => {
                match st.element().and_then(|el| el.get_child("jibri", crate::xmpp::jibri::NS)).and_then(|j| JibriIq::try_from(j).ok()) {
                    Some(j) => StartAnswer::Result(j),
                    None => StartAnswer::Failed { timed_out: false },
                }
            }
            Some(_) => StartAnswer::Failed { timed_out: false },
            None => StartAnswer::Failed { timed_out: true },
        };
        let now = self.env.now();
        let jibris = self.shared.jibri.clone();
        let Some(s) = self.recording.session_mut(session) else { return };
        let mut pool = jibris.pool(s.sip_address().is_some(), self.id);
        let fx = s.on_start_answer(a, &mut pool, now);
        self.apply_jibri(session, fx);
    }

    /// A notice from the router about one of our Jibris.
    pub(crate) fn on_jibri_notice(&mut self, n: JibriNotice) {
        let jid = match &n {
            JibriNotice::Status { from, .. } => from.clone(),
            JibriNotice::Left(j) => j.clone(),
        };
        let now = self.env.now();
        let jibris = self.shared.jibri.clone();
        let Some(s) = self.recording.recorder.iter_mut().chain(self.recording.sip.iter_mut()).find(|s| s.jibri.as_ref() == Some(&jid)) else {
            return;
        };
        let id = s.id.clone();
        let mut pool = jibris.pool(s.sip_address().is_some(), self.id);
        let fx = match n {
            JibriNotice::Status { jibri, .. } => {
                info!("conference {}: Jibri {} says {} for session {}", self.room, jid, jibri.status.map(Status::as_str).unwrap_or("nothing"), id);
                s.on_status(&jibri, &mut pool, now)
            }
            JibriNotice::Left(_) => {
                warn!("conference {}: Jibri {} of session {} left its brewery", self.room, jid, id);
                s.on_jibri_left(&mut pool, now)
            }
        };
        self.apply_jibri(&id, fx);
    }

    /// The earliest pending timer of the sessions.
    pub(crate) fn recording_deadline(&self) -> Option<Instant> {
        self.recording.recorder.iter().chain(self.recording.sip.iter()).filter_map(|s| s.deadline()).min()
    }

    /// Fire due pending timers.
    pub(crate) fn recording_timer(&mut self) {
        let now = self.env.now();
        let due: Vec<String> = self
            .recording
            .recorder
            .iter()
            .chain(self.recording.sip.iter())
            .filter(|s| s.deadline().is_some_and(|d| now >= d))
            .map(|s| s.id.clone())
            .collect();
        let jibris = self.shared.jibri.clone();
        for id in due {
            let Some(s) = self.recording.session_mut(&id) else { continue };
            warn!("conference {}: Jibri session {} still pending after the pending timeout; ending it", self.room, id);
            let mut pool = jibris.pool(s.sip_address().is_some(), self.id);
            let fx = s.on_timer(&mut pool, now);
            self.apply_jibri(&id, fx);
        }
    }

    /// The conference ends: stop every session (§3.6).
    pub(crate) fn recording_stop_all(&mut self) {
        let ids: Vec<String> = self.recording.recorder.iter().chain(self.recording.sip.iter()).map(|s| s.id.clone()).collect();
        let jibris = self.shared.jibri.clone();
        for id in ids {
            let Some(s) = self.recording.session_mut(&id) else { continue };
            let mut pool = jibris.pool(s.sip_address().is_some(), self.id);
            let fx = s.stop(None, &mut pool);
            self.apply_jibri(&id, fx);
        }
        jibris.unbind_conference(self.id);
    }
}
