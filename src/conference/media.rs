//! The media side of a conference: who is invited when, and what ends with a participant
//! or the conference. The bridge session (Colibri2) is in [`super::bridge_session`], the
//! participants' Jingle sessions in [`super::jingle`].
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

use log::{info, warn};

use super::bridge_session::ColibriSession;
use super::jingle::Session;
use super::signaling::Signaling;
use super::{Conference, Env, PendingIq, RequestError};
use crate::xmpp::colibri2::{parse_answer, ConferenceModify, EndpointRequest, Reaction};
use crate::jid::Jid;
use crate::xmpp::jingle::codecs::{colibri_media, has_data_content, offer_contents, Features};
use crate::xmpp::jingle::stanzas::Offer;
use crate::xmpp::jingle::sources::{ConferenceSources, EndpointSources, SourceOwner};
use crate::metrics::Metrics;

/// Participants needed before anyone is invited.
pub const MIN_PARTICIPANTS: usize = 2;
/// A lone participant's session ends after this.
pub const SINGLE_PARTICIPANT_TIMEOUT: Duration = Duration::from_secs(20);

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

    /// Allocate `nick` on the bridge and send it an offer. False when no bridge can be
    /// used right now (the caller stops inviting).
    pub(super) fn invite(&mut self, nick: &str) -> bool {
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
        let answer = match parse_answer(answer.as_ref(), true) {
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
                colibri.feedback = EndpointSources::bridge_feedback(s).ok();
            }
        }
        let bridge_session_id = colibri.id.clone();
        let region = colibri.region.clone();
        let mut all = if features.ssrc_rewriting { ConferenceSources::new() } else { self.media.sources.without(nick) };
        if let Some(fb) = &colibri.feedback {
            all.insert(SourceOwner::Bridge, fb.clone());
        }
        let index = self.occupants.iter().position(|o| o.nick == nick).unwrap_or(0) as i64;
        let start_muted = (
            self.start_audio_muted.is_some_and(|n| index >= n) || self.metadata_start_muted.0 || av_join.0,
            self.start_video_muted.is_some_and(|n| index >= n) || self.metadata_start_muted.1 || av_join.1,
        );
        let offer = Offer {
            contents,
            bridge_transport: transport,
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

    /// End every session and the bridge conference (the conference is ending).
    pub(crate) fn media_stop(&mut self) {
        self.media.sessions.clear();
        self.cleanup.lock().sessions.clear();
        self.media.signaling.clear();
        self.drop_colibri();
    }
}
