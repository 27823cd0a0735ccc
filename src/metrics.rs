//! Counters shared by the router, the conference threads and the HTTP API: atomics
//! and one small map of conference sizes. `ops::metrics` renders them, with the
//! bridges, as JSON (`/stats`) and in the Prometheus text format (`/metrics`).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::ids::ConferenceId;

/// What `/stats` lists about one running conference.
#[derive(Debug, Default, Clone)]
pub struct ConferenceInfo {
    /// The room JID.
    pub room: String,
    /// Participants in it.
    pub participants: usize,
    /// The bridge it uses.
    pub bridge: Option<String>,
}

/// Process-wide counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Client-only mode: there is no component connection (see [`crate::config::Mode`]).
    pub client_only: bool,
    /// The component connection (`focus.<domain>`) is negotiated and up.
    pub component_up: AtomicBool,
    /// The client connection (`focus@auth.<domain>`) is negotiated and up.
    pub client_up: AtomicBool,
    /// Conferences started since the process started.
    pub conferences_created: AtomicU64,
    /// Participants admitted to any conference since start (one over `--max_participants`
    /// counts when it gets a seat).
    pub participants_total: AtomicU64,
    /// Jingle IQs from participants answered with an error, and session-initiates a
    /// participant answered with an error.
    pub jingle_errors: AtomicU64,
    /// Colibri2 requests that failed: allocations the bridge answered with an error,
    /// unusably or not in time, and updates it answered with an error or unusably.
    pub colibri_errors: AtomicU64,
    /// Participants re-invited to a new bridge session because theirs failed (Jicofo's
    /// `participants_moved`).
    pub participants_moved: AtomicU64,
    /// Stanzas the focus sent, both connections together.
    pub stanzas_sent: AtomicU64,
    /// Established XMPP connections that were lost (Jicofo's `xmpp_disconnects`).
    pub xmpp_disconnects: AtomicU64,
    /// Conference requests received (XMPP and HTTP).
    pub conference_requests: AtomicU64,
    /// Conference requests received for a room that had no conference yet.
    pub conference_requests_new: AtomicU64,
    /// Successful re-connections of the component connection after a loss.
    pub component_reconnects: AtomicU64,
    /// Successful re-connections of the client connection after a loss.
    pub client_reconnects: AtomicU64,
    /// Refusals and drops caused by the limits against hostile input.
    pub limits: LimitCounters,
    /// IQ answers dropped because they did not come from the request's addressee.
    pub forged_answers: AtomicU64,
    /// Component messages (moderation.md §0) handed to a conference.
    pub component_messages: AtomicU64,
    /// Messages with a `<json-message>` ignored because they did not come from a
    /// discovered component address.
    pub component_messages_ignored: AtomicU64,
    /// Component messages from a discovered component refused as malformed.
    pub component_messages_invalid: AtomicU64,
    /// Component messages dropped because a full conference inbox already held
    /// as many component messages as it may (`messages::inbox::HELD_COMPONENT_MESSAGES`).
    pub component_messages_dropped: AtomicU64,
    /// Requests a conference did not send because it had too many outstanding.
    pub requests_refused_locally: AtomicU64,
    /// Participants past `--max_participants` (made to wait for a seat or not tracked).
    pub participants_over_limit: AtomicU64,
    /// Participants per live conference (by conference id).
    sizes: Mutex<HashMap<ConferenceId, ConferenceInfo>>,
    /// Focus-added time of the latest invites: from the bridge's allocation answer to the
    /// session-initiate handed to the event loop.
    focus_added: Mutex<Samples>,
    /// The Jibri and Jigasi breweries and their counters (set once by the router).
    gateways: Mutex<Option<GatewaySource>>,
}

/// Jibri and Jigasi figures for `/stats` and `/metrics`.
#[derive(Debug, Default, Clone, Copy)]
pub struct GatewayFigures {
    /// (instances, available) of the recorder and the SIP brewery.
    pub jibri: [(usize, usize); 2],
    /// (started, failed, active) of recording and SIP sessions.
    pub sessions: [(u64, u64, u64); 2],
    /// Jigasi instances: all, SIP-capable, transcription-capable.
    pub jigasi: (usize, usize, usize),
    /// Dials: forwarded, answered, failed.
    pub dials: (u64, u64, u64),
}

/// Reads the Jibri and Jigasi figures when they are shown (set by the router, which
/// owns the breweries; the counters do not know them).
pub struct GatewaySource(pub Box<dyn Fn() -> GatewayFigures + Send + Sync>);

impl std::fmt::Debug for GatewaySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GatewaySource")
    }
}

/// Why requests were refused or input dropped under the limits (issue #11).
#[derive(Debug, Default)]
pub struct LimitCounters {
    /// Conference requests refused: `--max_conferences` reached.
    pub max_conferences: AtomicU64,
    /// …: the requester created `--max_new_rooms_per_minute` rooms in the last minute.
    pub new_rooms_per_requester: AtomicU64,
    /// …: `--max_new_rooms_total_per_minute` rooms were created in the last minute.
    pub new_rooms_total: AtomicU64,
    /// …: the conference already keeps `--max_waiting_requests` requests.
    pub waiting_requests: AtomicU64,
    /// …: a room not on the conference MUC service, or an invalid room name.
    pub bad_room: AtomicU64,
    /// IQ requests and conference requests refused because a conference inbox was full.
    pub inbox_full: AtomicU64,
    /// Presences replaced by a later one of the same occupant while an inbox was full.
    pub presences_coalesced: AtomicU64,
    /// Presences dropped because an inbox and its overflow were both full.
    pub presences_dropped: AtomicU64,
    /// IQ requests refused or dropped: their sender was over `--max_iq_per_second`, or
    /// the router's own answers were over their global budget.
    pub iq_rate: AtomicU64,
    /// IQs dropped unanswered: their `id` was too long to echo in an answer.
    pub long_ids: AtomicU64,
    /// Occupant presence values ignored for their length (stats-id, region, caps).
    pub oversized_fields: AtomicU64,
}

impl LimitCounters {
    /// Every counter with its name in `/stats`.
    pub fn pairs(&self) -> [(&'static str, u64); 11] {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [
            ("max_conferences", l(&self.max_conferences)),
            ("new_rooms_per_requester", l(&self.new_rooms_per_requester)),
            ("new_rooms_total", l(&self.new_rooms_total)),
            ("waiting_requests", l(&self.waiting_requests)),
            ("bad_room", l(&self.bad_room)),
            ("inbox_full", l(&self.inbox_full)),
            ("presences_coalesced", l(&self.presences_coalesced)),
            ("presences_dropped", l(&self.presences_dropped)),
            ("iq_rate", l(&self.iq_rate)),
            ("long_ids", l(&self.long_ids)),
            ("oversized_fields", l(&self.oversized_fields)),
        ]
    }
}

/// The latest [`Samples::CAP`] durations (µs) and how many were recorded in all.
#[derive(Debug, Default)]
pub struct Samples {
    recent: VecDeque<u32>,
    count: u64,
}

impl Samples {
    /// Samples kept; older ones are dropped first (the count goes on).
    pub const CAP: usize = 8192;

    /// Record one duration (in µs, saturating at `u32::MAX`).
    pub fn record(&mut self, d: Duration) {
        if self.recent.len() == Self::CAP {
            self.recent.pop_front();
        }
        self.recent.push_back(d.as_micros().min(u32::MAX as u128) as u32);
        self.count += 1;
    }

    /// `{count, p50_us, p99_us, max_us}` over the recent samples (nearest rank).
    pub fn summary(&self) -> Value {
        let mut v: Vec<u32> = self.recent.iter().copied().collect();
        v.sort_unstable();
        let q = |p: f64| -> Option<u32> {
            if v.is_empty() {
                return None;
            }
            let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
            Some(v[rank - 1])
        };
        json!({ "count": self.count, "p50_us": q(0.5), "p99_us": q(0.99), "max_us": v.last() })
    }
}

impl Metrics {
    /// All counters at zero, component-and-client mode.
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Counters for a focus in `mode`.
    pub fn with_mode(mode: crate::config::Mode) -> Metrics {
        Metrics { client_only: mode == crate::config::Mode::ClientOnly, ..Metrics::default() }
    }

    /// A conference started.
    pub fn conference_started(&self, id: ConferenceId, room: &str) {
        self.conferences_created.fetch_add(1, Ordering::Relaxed);
        self.sizes.lock().insert(id, ConferenceInfo { room: room.to_string(), ..Default::default() });
    }

    /// A conference ended.
    pub fn conference_ended(&self, id: ConferenceId) {
        self.sizes.lock().remove(&id);
    }

    /// The participant count of conference `id` changed.
    pub fn set_size(&self, id: ConferenceId, n: usize) {
        if let Some(s) = self.sizes.lock().get_mut(&id) {
            s.participants = n;
        }
    }

    /// The bridge conference `id` uses changed.
    pub fn set_bridge(&self, id: ConferenceId, bridge: Option<String>) {
        if let Some(s) = self.sizes.lock().get_mut(&id) {
            s.bridge = bridge;
        }
    }

    /// One invite's focus-added time (bridge answer → session-initiate queued).
    pub fn focus_added(&self, d: Duration) {
        self.focus_added.lock().record(d);
    }

    /// A participant joined some conference.
    pub fn participant_joined(&self) {
        self.participants_total.fetch_add(1, Ordering::Relaxed);
    }

    /// Add one to `counter` (relaxed: counters order nothing).
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// `(conferences, participants, largest)` right now.
    pub fn current(&self) -> (usize, usize, usize) {
        let s = self.sizes.lock();
        (s.len(), s.values().map(|c| c.participants).sum(), s.values().map(|c| c.participants).max().unwrap_or(0))
    }

    /// The running conferences (unordered).
    pub fn conferences(&self) -> Vec<ConferenceInfo> {
        self.sizes.lock().values().cloned().collect()
    }

    /// The focus-added times recorded so far ([`Samples::summary`]).
    pub fn focus_added_summary(&self) -> Value {
        self.focus_added.lock().summary()
    }

    /// Where the Jibri and Jigasi figures come from.
    pub fn set_gateways(&self, source: GatewaySource) {
        *self.gateways.lock() = Some(source);
    }

    /// The Jibri and Jigasi figures now (all zero before [`Metrics::set_gateways`]).
    pub fn gateway_figures(&self) -> GatewayFigures {
        self.gateways.lock().as_ref().map(|f| (f.0)()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_percentiles_nearest_rank() {
        let mut s = Samples::default();
        assert_eq!(s.summary()["p50_us"], Value::Null);
        for us in 1..=100u64 {
            s.record(Duration::from_micros(us));
        }
        let v = s.summary();
        assert_eq!((v["count"].as_u64(), v["p50_us"].as_u64(), v["p99_us"].as_u64(), v["max_us"].as_u64()), (Some(100), Some(50), Some(99), Some(100)));
        for _ in 0..Samples::CAP {
            s.record(Duration::from_micros(7));
        }
        assert_eq!(s.summary()["max_us"].as_u64(), Some(7), "only the latest samples count");
        assert_eq!(s.summary()["count"].as_u64(), Some(100 + Samples::CAP as u64));
    }
}
