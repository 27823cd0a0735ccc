//! The conference's session on its bridge (Colibri2): the bridge conference and its
//! endpoints, updates, force-mute, expiry, the reactions to the bridge's errors (§1.9) and
//! bridge failover (every participant moves to a new bridge session).

use std::collections::HashSet;

use log::{debug, info, warn};

use super::{Conference, Env, PendingIq};
use crate::messages::BridgeEvent;
use crate::xmpp::colibri2::{parse_answer, ConferenceModify, EndpointRequest, Reaction};
use crate::jid::Jid;
use crate::xmpp::jingle::sources::EndpointSources;
use crate::metrics::Metrics;
use crate::xml::Element;
use crate::xmpp::ns;

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

impl<E: Env> Conference<E> {
    /// Record (or forget) the bridge conference `(bridge, meeting id)` for the panic cleanup.
    pub(super) fn note_bridge(&self, bridge: Option<(Jid, String)>) {
        self.cleanup.lock().bridge = bridge;
    }

    pub(super) fn set_bridge_not_available(&mut self, v: bool) {
        if self.media.bridge_not_available != v {
            self.media.bridge_not_available = v;
            if v {
                warn!("conference {}: no bridge available; participants wait", self.room);
            }
            self.publish_presence();
        }
    }

    /// Drop the colibri session, expiring it on the bridge.
    pub(super) fn drop_colibri(&mut self) {
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
    pub(super) fn move_all(&mut self) {
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

    /// Expire `nick`'s endpoint; the conference itself when it was the last one.
    pub(super) fn expire_endpoint(&mut self, nick: &str) {
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

    pub(super) fn colibri_update(&mut self, nick: &str, transport: Option<Element>, sources: bool, last_n: Option<u32>) {
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
    pub(crate) fn on_colibri_update_answer(&mut self, nick: &str, answer: Option<&Element>) {
        let Some(answer) = answer else {
            debug!("conference {}: colibri update for {} unanswered", self.room, nick);
            return;
        };
        if let Err(e) = parse_answer(Some(answer), false) {
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

    /// Ask the bridge for an in-place ICE restart of `nick`'s endpoint (media.md §1.10).
    pub(super) fn ice_restart(&mut self, nick: &str) {
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
