//! The media side of a conference, as a coordinator: who is invited when, the media
//! timers, and what ends with a participant or with the conference. Each participant's
//! state is its own ([`super::participant`]), the bridge session is in
//! [`super::bridge_session`], the Jingle sessions in [`super::jingle`].
//!
//! ```text
//!  ≥2 participants ──choose bridge──▶ allocate endpoint (wait ≤15 s) ──▶ session-initiate
//!        ▲                                   │ error: react (§1.9)           │
//!        │                                   ▼                               ▼
//!  bridge up / restart / move ◀──── session dropped              session-accept ──▶ Active
//!                                                                  (sources → bridge, others)
//! ```
//! Source changes reach the other participants in batches (the queues are in each
//! receiver's session, [`super::signaling`]): a burst of joins costs one source-add per
//! receiver, not one per source.

use std::time::{Duration, Instant};

use log::info;

use super::bridge_session::Bridging;
use super::participant::Released;
use super::{Conference, Env};
use crate::ids::Nick;
use crate::xmpp::colibri2::EndpointRequest;
use crate::xmpp::jingle::codecs::{offer_media, Features};
use crate::xmpp::jingle::sources::ConferenceSources;

/// Participants needed before anyone is invited.
pub const MIN_PARTICIPANTS: usize = 2;
/// A lone participant's session ends after this.
pub const SINGLE_PARTICIPANT_TIMEOUT: Duration = Duration::from_secs(20);

/// Media state of a conference that is not any one participant's.
#[derive(Debug, Default)]
pub(crate) struct MediaState {
    /// The bridge session and the bridge's availability.
    pub bridging: Bridging,
    /// Accepted sources of the participants (the bridge's are in its session's feedback).
    pub sources: ConferenceSources,
    /// When a lone participant's session ends.
    pub single_deadline: Option<Instant>,
}

impl<E: Env> Conference<E> {
    /// The next media timer.
    pub(crate) fn media_deadline(&self) -> Option<Instant> {
        let signals = self.occupants.iter().filter_map(|p| p.session().and_then(|s| s.signals.due())).min();
        match (self.media.single_deadline, signals) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Media timers: batched signaling and the single-participant timeout.
    pub(crate) fn media_timer(&mut self) {
        let now = self.env.now();
        let due: Vec<Nick> =
            self.occupants.iter().filter(|p| p.session().is_some_and(|s| s.signals.is_due(now))).map(|p| p.nick.clone()).collect();
        for nick in due {
            self.flush_signals(&nick);
        }
        if self.media.single_deadline.is_some_and(|t| now >= t) {
            self.media.single_deadline = None;
            if self.occupants.len() == 1 && self.occupants[0].session().is_some() {
                let nick = self.occupants[0].nick.clone();
                info!("conference {}: {} alone for {} s; ending its session", self.room, nick, SINGLE_PARTICIPANT_TIMEOUT.as_secs());
                self.terminate_session(nick.as_str(), Some(("expired", "Idle session timeout")), false);
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
        // everyone off a broken bridge session (counted in `moves`), so this ends.
        while self.life.ended().is_none() {
            let Some(nick) = self.occupants.iter().find(|o| o.is_ready()).map(|o| o.nick.clone()) else { break };
            if !self.invite(&nick) {
                break;
            }
        }
    }

    /// Allocate `nick` (`Ready`) on the bridge and send it an offer. False when no bridge
    /// can be used right now (the caller stops inviting).
    pub(super) fn invite(&mut self, nick: &Nick) -> bool {
        let Some(p) = self.participant(nick.as_str()) else { return true };
        let (region, stats_id) = (p.region.clone(), p.stats_id.clone());
        let features = Features::from_vars(p.features().unwrap_or(&[]));
        // AV moderation on: a non-moderator, non-exempt joiner is force-muted at
        // allocation and told to start muted (moderation.md §1.3).
        let av_join = if p.is_moderator() || p.mute_exempt() { (false, false) } else { self.av.join_flags() };
        if self.choose_bridge(region.as_deref()).is_none() {
            return false;
        }
        // Written ahead once per kind of participant (shared by every conference).
        let contents = offer_media(&features);
        let mut caps = vec!["source-names".to_string()];
        if features.ssrc_rewriting {
            caps.push("ssrc-rewriting".to_string());
        }
        let endpoint = EndpointRequest {
            id: nick.to_string(),
            create: true,
            stats_id,
            media: contents.colibri.clone(),
            sctp: contents.sctp,
            capabilities: caps,
            force_mute: (av_join.0 || av_join.1).then_some(av_join),
            ..Default::default()
        };
        let started = self.participant_mut(nick.as_str()).is_some_and(|p| {
            p.force_mute().created(av_join);
            p.allocating()
        });
        if !started {
            return false;
        }
        match self.allocate(nick, endpoint, contents.sctp) {
            Ok(allocated) => {
                self.offer(nick, allocated, features, contents, av_join);
                true
            }
            Err(go_on) => go_on,
        }
    }

    /// A participant is gone from the room (`released`: what it held, from
    /// [`super::participant::Participant::leave`]): its session ends locally (no Jingle to
    /// it) and its endpoint is expired. Whether its sources are signaled as removed to the
    /// others depends on `tell_others`: not for a participant the MUC saw leave (clients
    /// drop its sources on its unavailable presence, media.md §3.7), but for one that
    /// vanished while the focus was away (the focus cannot know who saw it leave; a
    /// source-remove for sources a client already dropped changes nothing).
    pub(crate) fn media_participant_left(&mut self, nick: &Nick, released: Released, tell_others: bool) {
        if let Some(s) = released.session {
            if tell_others {
                // Queued adds of its sources are netted against the removal.
                self.session_ended(nick, s, None, false);
            } else {
                self.note_session(nick, None);
                self.media.sources.remove_owner(nick);
                self.expire_endpoint(nick.as_str());
            }
        } else if released.endpoint {
            self.expire_endpoint(nick.as_str());
        }
        if !tell_others {
            for p in &mut self.occupants {
                if let Some(s) = p.session_mut() {
                    s.signals.forget_owner(nick);
                }
            }
        }
        if self.occupants.len() == 1 && self.occupants[0].session().is_some() {
            self.media.single_deadline = Some(self.env.now() + SINGLE_PARTICIPANT_TIMEOUT);
        }
    }

    /// End every session and the bridge conference (the conference is ending).
    pub(crate) fn media_stop(&mut self) {
        for p in &mut self.occupants {
            p.end_session();
        }
        self.cleanup.lock().sessions.clear();
        self.drop_bridge_session();
    }
}
