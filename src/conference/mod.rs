//! One conference, run as plain blocking code on its own thread.
//!
//! The thread owns the room's state. It reads [`Inbox`] messages (stanzas for the
//! room, forwarded conference requests, connection changes) from its [`Env`] and
//! sends stanzas through it. A request that needs an answer is sent with a deadline
//! and waited for; anything unrelated that arrives meanwhile is kept and replayed in
//! order afterwards. A shutdown (or a closed inbox) aborts any such wait at once.
//! Time comes from the `Env`, so tests run a whole conference on simulated time with
//! no sockets and no sleeps.
//!
//! Limits ([`Limits`] in `Shared`): at most `max_participants` occupants are served
//! (disco, ownership, offers); later joiners wait in a queue of the same length for a
//! seat (in join order, when someone leaves); beyond that, occupants are not tracked at
//! all. While the focus is not in the room (joining, reconnecting) at most
//! `max_waiting_requests` conference requests wait for their answer; more are refused
//! with `resource-constraint`. The map of requesters expected to join is bounded by
//! `max_participants` too.
//!
//! Occupants leave through one path (`occupant_gone`), whether the MUC says so or they
//! are missing from the room when the focus rejoins after a lost connection (then the
//! others are told their sources are gone: nobody knows who saw them leave). Presence
//! values copied into outgoing stanzas are bounded in `muc`.
//!
//! Every IQ request whose answer matters is entered in the shared
//! [`PendingTable`](crate::messages::pending::PendingTable) before it is sent (random id,
//! the JID it went to); an answer counts only from that JID. Past the table's cap for
//! this conference a request fails here, without being sent.
//!
//! ```text
//!   start ──join MUC──▶ Joining ──self presence, config form──▶ Running ──▶ Ended
//!                          │ (error / no answer)                   │ room empty, nobody
//!                          └──────────────────────────────▶ Ended ◀┘ came, destroyed,
//!                                                                    owner lost, shutdown
//! ```

pub mod env;
pub mod media;
pub mod sim;
#[cfg(test)]
mod media_tests;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use parking_lot::Mutex;

use crate::auth::Sessions;
use crate::config::limits::Limits;
use crate::messages::{ConferenceAnswer, EndReason, Inbox, PendingReply, Refusal};
use crate::log_throttle::{LogThrottle, LogThrottles};
use crate::messages::pending::{answer_is_from, Destination, IqId, PendingTable};
use crate::jid::Jid;
use crate::net::ConnId;
use crate::xml::Element;
use crate::xmpp::ns;
use crate::xmpp::caps::{Caps, CapsCache, DiscoInfo};
use crate::xmpp::stanza::{iq_error, iq_result, ErrorCondition};

use crate::xmpp::muc::{self, Affiliation, OccupantPresence, Role};
use crate::xmpp::mute;

/// No participant joined this long after creation: the conference ends.
pub const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Deadline of a request the conference waits for.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(15);
/// Deadline of a participant's disco#info.
pub const DISCO_TIMEOUT: Duration = Duration::from_secs(5);

/// Features assumed when a participant's disco fails (§4).
pub const DEFAULT_FEATURES: &[&str] =
    &["urn:xmpp:jingle:apps:rtp:audio", "urn:xmpp:jingle:apps:rtp:video", "urn:xmpp:jingle:transports:dtls-sctp:1"];

/// Is `el` an IQ answer (`result` or `error`) with id `id`?
fn is_answer(el: &Element, id: &str) -> bool {
    el.name == "iq" && matches!(el.get_attr("type"), Some("result") | Some("error")) && el.get_attr("id") == Some(id)
}

/// The world as a conference thread sees it.
pub trait Env: Send {
    /// Send a stanza on `conn`.
    fn send(&mut self, conn: ConnId, el: Element);
    /// The current time.
    fn now(&self) -> Instant;
    /// The next message, or `None` once `deadline` has passed with nothing received.
    fn recv(&mut self, deadline: Option<Instant>) -> Option<Inbox>;
    /// The conference now keeps `n` received messages of `bytes` bytes
    /// ([`Inbox::weight`]) aside, unprocessed (during a blocking wait); they count
    /// against its inbox's limits.
    fn set_backlog(&mut self, _n: usize, _bytes: usize) {}
}

/// What all conferences share (read-mostly).
pub struct Shared {
    /// The client connection.
    pub client: ConnId,
    /// MUC nick of the focus (its user name).
    pub nick: String,
    /// Bare JID of the focus user (`focus@auth.meet.test`).
    pub focus_jid: String,
    /// Secure-domain sessions, when `--auth_domain` is set.
    pub sessions: Option<Arc<Mutex<Sessions>>>,
    /// Verified disco#info features by XEP-0115 `ver` (bounded LRU).
    pub caps_cache: Mutex<CapsCache>,
    /// The bridges of the brewery.
    pub bridges: Arc<Mutex<crate::bridge::Bridges>>,
    /// Counters for the operations API.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The focus's full client JID once bound (`focus@auth.meet.test/focus`).
    pub focus_full: Mutex<Option<String>>,
    /// The router's control channel (bridge failures found by a conference go there).
    pub control: Option<crossbeam_channel::Sender<crate::messages::Control>>,
    /// Outstanding IQ requests of every conference and the router (ids come from here).
    pub pending: Mutex<PendingTable>,
    /// Limits against hostile input.
    pub limits: Limits,
}

/// How an occupant left the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Departure {
    /// The MUC said so (unavailable presence); everyone in the room saw it.
    Left,
    /// The MUC said so, with status 307.
    Kicked,
    /// Not listed again when the focus rejoined after losing its connection: it left
    /// while the focus was away, and the focus cannot know who saw it leave.
    Vanished,
}

/// A participant in the room (not the focus).
#[derive(Debug, Clone)]
pub struct Occupant {
    pub nick: String,
    pub real_jid: Option<Jid>,
    pub affiliation: Affiliation,
    pub role: Role,
    pub stats_id: Option<String>,
    pub region: Option<String>,
    pub audio_muted: bool,
    pub video_muted: bool,
    pub features: Option<Vec<String>>,
    pub joined_at: Instant,
    /// Not seen since the last rejoin (dropped when the rejoin completes).
    stale: bool,
    /// The focus asked the MUC to make this participant an owner.
    owner_requested: bool,
}

impl Occupant {
    /// Owner or moderator rights (§3.3 mapping).
    pub fn is_moderator(&self) -> bool {
        matches!(self.affiliation, Affiliation::Owner | Affiliation::Admin) || self.role == Role::Moderator
    }

    fn has_feature(&self, f: &str) -> bool {
        self.features.as_ref().is_some_and(|fs| fs.iter().any(|x| x == f))
    }

    /// Jibri and Jigasi are not eligible for ownership and are never muted.
    pub fn is_jibri_or_jigasi(&self) -> bool {
        self.has_feature("http://jitsi.org/protocol/jibri") || self.has_feature("http://jitsi.org/protocol/jigasi")
    }
}

/// What a pending IQ of ours was for.
#[derive(Debug, Clone)]
enum PendingIq {
    Disco { nick: String, caps: Option<Caps> },
    Affiliation { nick: String },
    Initiate { nick: String, sid: String },
    ColibriUpdate { nick: String },
}

/// A non-blocking request of ours waiting for its answer.
#[derive(Debug, Clone)]
struct Tracked {
    what: PendingIq,
    deadline: Instant,
    /// The JID it was sent to: only it may answer.
    to: Jid,
}

/// Why a blocking request has no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestError {
    /// Nothing came before the deadline.
    Timeout,
    /// Shutdown or a closed inbox: the conference is ending.
    Aborted,
    /// This conference has too many requests outstanding; nothing was sent.
    Full,
}

/// Parameters of a new conference.
pub struct Params {
    pub id: u64,
    pub room: Jid,
    pub shared: Arc<Shared>,
    pub start_audio_muted: Option<i64>,
    pub start_video_muted: Option<i64>,
}

/// The conference state machine.
pub struct Conference<E: Env> {
    env: E,
    id: u64,
    room: Jid,
    shared: Arc<Shared>,
    deferred: VecDeque<Inbox>,
    /// The weight of `deferred` ([`Inbox::weight`]).
    deferred_bytes: usize,
    /// A shutdown (or a closed inbox) was seen: no more waiting for anything.
    aborted: bool,
    joined: bool,
    connected: bool,
    occupants: Vec<Occupant>,
    waiting: Vec<PendingReply>,
    start_deadline: Option<Instant>,
    owner: Option<String>,
    pending: HashMap<IqId, Tracked>,
    /// Forged answers (right id, wrong sender), logged once per interval.
    forged_log: LogThrottle,
    meeting_id: String,
    created_ms: u128,
    pub start_audio_muted: Option<i64>,
    pub start_video_muted: Option<i64>,
    ended: Option<EndReason>,
    ever_joined: bool,
    pub(crate) media: media::MediaState,
    /// Requests not yet followed by a join, per requester: someone is about to come.
    expected: HashMap<Jid, (u32, Instant)>,
    /// Occupants past `max_participants`, waiting for a seat (at most as many again).
    seat_queue: VecDeque<OccupantPresence>,
    /// Refusals under the limits, logged once per interval per kind.
    limit_log: LogThrottles,
    started: Instant,
    joins: usize,
    /// What to undo should this thread panic (shared with the thread's launcher).
    cleanup: Arc<Mutex<env::Cleanup>>,
}

impl<E: Env> Conference<E> {
    pub fn new(env: E, p: Params) -> Conference<E> {
        Conference::with_cleanup(env, p, Arc::default())
    }

    /// A conference that keeps `cleanup` current (its sessions and bridge conference),
    /// for its launcher to undo them after a panic.
    pub fn with_cleanup(env: E, p: Params, cleanup: Arc<Mutex<env::Cleanup>>) -> Conference<E> {
        let now = env.now();
        Conference {
            env,
            id: p.id,
            room: p.room,
            shared: p.shared,
            deferred: VecDeque::new(),
            deferred_bytes: 0,
            aborted: false,
            joined: false,
            connected: true,
            occupants: Vec::new(),
            waiting: Vec::new(),
            start_deadline: Some(now + START_TIMEOUT),
            owner: None,
            pending: HashMap::new(),
            forged_log: LogThrottle::default(),
            meeting_id: crate::auth::new_uuid(),
            created_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0),
            start_audio_muted: p.start_audio_muted,
            start_video_muted: p.start_video_muted,
            ended: None,
            ever_joined: false,
            media: media::MediaState::default(),
            expected: HashMap::new(),
            seat_queue: VecDeque::new(),
            limit_log: LogThrottles::default(),
            started: now,
            joins: 0,
            cleanup,
        }
    }

    /// The room.
    pub fn room(&self) -> &Jid {
        &self.room
    }

    /// Participants in join order.
    pub fn occupants(&self) -> &[Occupant] {
        &self.occupants
    }

    /// The meeting id (from the room form, else a random UUID).
    pub fn meeting_id(&self) -> &str {
        &self.meeting_id
    }

    /// A random id for an IQ whose answer is not awaited.
    fn new_id(&mut self) -> String {
        self.shared.pending.lock().fresh_id().to_string()
    }

    fn send(&mut self, el: Element) {
        let c = self.shared.client;
        self.env.send(c, el);
    }

    /// Enter a request to `to` in the pending table; its id, or `None` (logged) when
    /// this conference is at its cap and the request must fail without being sent.
    fn enter_request(&mut self, to: Option<Jid>, deadline: Instant) -> Option<IqId> {
        let r = self.shared.pending.lock().insert(Destination::Conference(self.id), self.shared.client, to, deadline);
        match r {
            Ok(id) => Some(id),
            Err(e) => {
                crate::metrics::Metrics::inc(&self.shared.metrics.requests_refused_locally);
                if let Some(n) = self.limit_log.hit("pending", self.env.now()) {
                    warn!("conference {}: request not sent: {} ({} more since the last line)", self.room, e, n);
                }
                None
            }
        }
    }

    /// Track a request whose answer [`Self::pending_answered`] handles; `None` when it
    /// cannot be sent (see [`Self::enter_request`]).
    fn track(&mut self, what: PendingIq, to: Jid, deadline: Instant) -> Option<String> {
        let id = self.enter_request(Some(to.clone()), deadline)?;
        self.pending.insert(id, Tracked { what, deadline, to });
        Some(id.to_string())
    }

    /// Is `el` an answer from whoever the request went to (`to`)?
    fn is_from_addressee(&self, to: Option<&Jid>, el: &Element) -> bool {
        let own = self.shared.focus_full.lock().as_deref().and_then(|s| Jid::parse(s).ok());
        let from = match el.get_attr("from").map(Jid::parse) {
            None => None,
            Some(Ok(j)) => Some(j),
            Some(Err(_)) => return false,
        };
        answer_is_from(to, from.as_ref(), own.as_ref())
    }

    /// A forged answer reached the conference: drop it (logged once per interval).
    fn forged(&mut self, el: &Element) {
        crate::metrics::Metrics::inc(&self.shared.metrics.forged_answers);
        if let Some(n) = self.forged_log.hit(self.env.now()) {
            warn!(
                "conference {}: dropped an answer to our request {:?} from {:?}, not its addressee ({} more since the last line)",
                self.room,
                el.get_attr("id"),
                el.get_attr("from"),
                n
            );
        }
    }

    /// The conference is ending now (shutdown or a closed inbox): waits are over.
    fn abort(&mut self) {
        self.aborted = true;
        self.end(EndReason::Shutdown);
    }

    /// Keep `m` until the current wait is over. The router counts kept messages against
    /// the inbox's capacity, so this never holds more than that of participants' input.
    fn defer(&mut self, m: Inbox) {
        self.deferred_bytes += m.weight();
        self.deferred.push_back(m);
        self.env.set_backlog(self.deferred.len(), self.deferred_bytes);
    }

    /// Send an IQ and wait for its answer until `timeout`; other messages are kept.
    /// Only an answer from the IQ's addressee counts. A shutdown ends the wait at once.
    pub(crate) fn request(&mut self, mut iq: Element, timeout: Duration) -> Result<Element, RequestError> {
        if self.aborted {
            return Err(RequestError::Aborted);
        }
        let to = iq.get_attr("to").and_then(|t| Jid::parse(t).ok());
        let deadline = self.env.now() + timeout;
        let Some(id) = self.enter_request(to.clone(), deadline) else { return Err(RequestError::Full) };
        let text = id.to_string();
        iq.set_attr("id", text.clone());
        self.send(iq);
        let result = loop {
            match self.env.recv(Some(deadline)) {
                None => break Err(RequestError::Timeout),
                Some(Inbox::Stanza(el)) if is_answer(&el, &text) => {
                    if self.is_from_addressee(to.as_ref(), &el) {
                        break Ok(el);
                    }
                    self.forged(&el);
                }
                Some(Inbox::Shutdown) => {
                    self.abort();
                    break Err(RequestError::Aborted);
                }
                Some(other) => self.defer(other),
            }
        };
        self.shared.pending.lock().cancel(id);
        result
    }

    fn next_message(&mut self, deadline: Option<Instant>) -> Option<Inbox> {
        if let Some(m) = self.deferred.pop_front() {
            self.deferred_bytes = self.deferred_bytes.saturating_sub(m.weight());
            self.env.set_backlog(self.deferred.len(), self.deferred_bytes);
            return Some(m);
        }
        self.env.recv(deadline)
    }

    /// Run until the conference ends; the room is left before returning.
    pub fn run(&mut self) -> EndReason {
        info!("conference {}: starting", self.room);
        if !self.join() {
            self.end(EndReason::JoinFailed);
        }
        while self.ended.is_none() {
            let deadline = self.next_deadline();
            match self.next_message(deadline) {
                None => self.on_timer(),
                Some(m) => {
                    self.handle(m);
                    if deadline.is_some_and(|d| self.env.now() >= d) {
                        self.on_timer();
                    }
                }
            }
        }
        let reason = self.ended.unwrap_or(EndReason::Shutdown);
        self.finish(reason);
        reason
    }

    fn next_deadline(&self) -> Option<Instant> {
        let mut d = self.start_deadline;
        if let Some(t) = self.media_deadline() {
            d = Some(d.map_or(t, |x| x.min(t)));
        }
        for t in self.pending.values() {
            d = Some(d.map_or(t.deadline, |x| x.min(t.deadline)));
        }
        d
    }

    fn end(&mut self, reason: EndReason) {
        if self.ended.is_none() {
            self.ended = Some(reason);
        }
    }

    /// Leave the room and answer whoever still waits.
    fn finish(&mut self, reason: EndReason) {
        self.media_stop();
        // Answers to our requests have nowhere to go any more.
        self.pending.clear();
        self.shared.pending.lock().remove_destination(Destination::Conference(self.id));
        let mut waiting = std::mem::take(&mut self.waiting);
        for m in std::mem::take(&mut self.deferred) {
            if let Inbox::Request(w) = m {
                waiting.push(w);
            }
        }
        self.deferred_bytes = 0;
        self.env.set_backlog(0, 0);
        // Not ready: the client asks again and gets a fresh conference.
        for w in waiting {
            self.answer(w, false);
        }
        if self.joined && self.connected && reason != EndReason::RoomDestroyed {
            let leave = muc::leave_presence(&self.room, &self.shared.nick);
            self.send(leave);
        }
        self.joined = false;
        info!(
            "conference {}: ended ({:?}) after {} s; {} participants joined, {} at the end; bridge {}",
            self.room,
            reason,
            self.env.now().duration_since(self.started).as_secs(),
            self.joins,
            self.occupants.len(),
            self.media.last_bridge.as_ref().map(|b| b.to_string()).unwrap_or_else(|| "none".into())
        );
    }

    /// Answer a conference request with `resource-constraint` (type wait).
    fn refuse(&mut self, w: PendingReply, why: Refusal) {
        if let Some((conn, iq)) = w.target.answer(&w.iq, ConferenceAnswer::Refused(why)) {
            self.env.send(conn, iq);
        }
    }

    /// `requester` asked for the room at `now` and is expected to join. The map is
    /// bounded: past `max_participants` entries, expired ones go, then the oldest.
    fn expect(&mut self, requester: Jid, now: Instant) {
        let cap = self.shared.limits.max_participants;
        if self.expected.len() >= cap && !self.expected.contains_key(&requester) {
            self.expected.retain(|_, (n, t)| *n > 0 && now < *t + START_TIMEOUT);
            while self.expected.len() >= cap {
                let Some(oldest) = self.expected.iter().min_by_key(|(_, (_, t))| *t).map(|(j, _)| j.clone()) else { break };
                self.expected.remove(&oldest);
            }
        }
        let e = self.expected.entry(requester).or_insert((0, now));
        *e = (e.0 + 1, now);
    }

    fn answer(&mut self, w: PendingReply, ready: bool) {
        let mut reply = w.reply.clone();
        reply.ready = ready;
        if let Some((conn, iq)) = w.target.answer(&w.iq, ConferenceAnswer::Reply(reply)) {
            self.env.send(conn, iq);
        }
    }

    /// Join the room, configure it and check ownership. False when that failed.
    fn join(&mut self) -> bool {
        let nick = self.shared.nick.clone();
        let presence = muc::join_presence(&self.room, &nick);
        self.send(presence);
        let deadline = self.env.now() + REPLY_TIMEOUT;
        let me = self.room.with_resource(&nick).to_string();
        // Wait for our own presence (or an error about our join).
        let own = loop {
            match self.env.recv(Some(deadline)) {
                None => {
                    warn!("conference {}: no answer to the MUC join", self.room);
                    return false;
                }
                Some(Inbox::Stanza(el)) if el.name == "presence" && el.get_attr("from") != Some(me.as_str()) => {
                    // Occupants the MUC lists before our own presence.
                    self.on_presence(el);
                }
                Some(Inbox::Stanza(el)) if el.name == "presence" && el.get_attr("from") == Some(me.as_str()) => {
                    if el.get_attr("type") == Some("error") {
                        let cond = crate::xmpp::stanza::parse_error(&el).map(|e| e.condition_name);
                        warn!("conference {}: MUC join refused: {}", self.room, cond.unwrap_or_default());
                        return false;
                    }
                    match OccupantPresence::parse(&el) {
                        Some(p) if p.available => break p,
                        _ => continue,
                    }
                }
                Some(Inbox::Shutdown) => {
                    self.abort();
                    return false;
                }
                Some(other) => self.defer(other),
            }
        };
        self.joined = true;
        // Configure the room (also unlocks a new, locked room) and read its meeting id.
        if let Ok(form) = self.request(muc::owner_form_get(&self.room), REPLY_TIMEOUT) {
            if let Some(q) = form.get_child("query", ns::MUC_OWNER) {
                if let Some(mid) = muc::form_value(q, "muc#roominfo_meetingId").filter(|m| !m.is_empty()) {
                    self.meeting_id = mid;
                }
            }
        }
        match self.request(muc::owner_form_submit(&self.room), REPLY_TIMEOUT) {
            Ok(r) if r.get_attr("type") == Some("result") => {}
            Ok(r) => warn!("conference {}: room configuration refused: {:?}", self.room, r.to_xml()),
            Err(RequestError::Aborted) => return false,
            Err(e) => warn!("conference {}: room configuration not answered ({:?})", self.room, e),
        }
        if own.affiliation != Affiliation::Owner {
            warn!("conference {}: the focus is not owner ({:?}); make the focus user a Prosody admin", self.room, own.affiliation);
            self.end(EndReason::NotOwner);
            return true;
        }
        self.publish_presence();
        for w in std::mem::take(&mut self.waiting) {
            self.answer(w, true);
        }
        info!("conference {}: focus joined as owner (meeting id {})", self.room, self.meeting_id);
        self.maybe_invite();
        true
    }

    /// The focus's presence extensions (§3.2), sent as an update.
    pub(crate) fn publish_presence(&mut self) {
        let local = self.room.local().unwrap_or_default().to_string();
        let prop = |k: &str, v: String| Element::new("property", ns::FOCUS).attr("key", k).attr("value", v);
        let p = Element::new("presence", ns::CLIENT)
            .attr("to", self.room.with_resource(&self.shared.nick).to_string())
            .child(muc::focus_caps())
            .child(Element::new("etherpad", "http://jitsi.org/jitmeet/etherpad").text(local))
            .child(
                Element::new("conference-properties", ns::FOCUS)
                    .child(prop("created-ms", self.created_ms.to_string()))
                    .child(prop("support-terminate-restart", "true".into()))
                    .child(prop("bridge-count", self.bridge_count().to_string())),
            )
            .child(
                Element::new("versions", ns::JITMEET)
                    .child(Element::new("component", ns::JITMEET).attr("name", "focus").text(env!("CARGO_PKG_VERSION"))),
            );
        let p = match self.bridge_presence_extension() {
            Some(b) => p.child(b),
            None => p,
        };
        if self.joined {
            self.send(p);
        }
    }

    fn on_timer(&mut self) {
        let now = self.env.now();
        if self.start_deadline.is_some_and(|d| now >= d) {
            self.start_deadline = None;
            if self.occupants.is_empty() {
                info!("conference {}: nobody joined within {} s", self.room, START_TIMEOUT.as_secs());
                self.end(EndReason::NobodyJoined);
            }
        }
        let expired: Vec<IqId> = self.pending.iter().filter(|(_, t)| now >= t.deadline).map(|(k, _)| *k).collect();
        for id in expired {
            if let Some(t) = self.pending.remove(&id) {
                self.shared.pending.lock().cancel(id);
                self.pending_answered(t.what, None);
            }
        }
        self.media_timer();
    }

    fn handle(&mut self, m: Inbox) {
        match m {
            Inbox::Shutdown => self.abort(),
            Inbox::Bridge(ev) => self.media_bridge_event(ev),
            Inbox::Connection(false) => {
                info!("conference {}: XMPP connection lost; keeping the conference", self.room);
                self.connected = false;
                self.joined = false;
                // Whoever the MUC does not list again after the rejoin has left meanwhile.
                for o in &mut self.occupants {
                    o.stale = true;
                }
                // Those waiting for a seat are listed again too.
                self.seat_queue.clear();
            }
            Inbox::Connection(true) => {
                if !self.connected {
                    self.connected = true;
                    info!("conference {}: XMPP connection back; rejoining", self.room);
                    if !self.join() {
                        self.end(EndReason::JoinFailed);
                    }
                    if self.ended.is_none() {
                        // Whoever the MUC did not list again left while we were away.
                        let gone: Vec<String> = self.occupants.iter().filter(|o| o.stale).map(|o| o.nick.clone()).collect();
                        for nick in gone {
                            self.occupant_gone(&nick, Departure::Vanished);
                        }
                    }
                }
            }
            Inbox::Request(w) => {
                if !self.joined && self.waiting.len() >= self.shared.limits.max_waiting_requests {
                    crate::metrics::Metrics::inc(&self.shared.metrics.limits.waiting_requests);
                    if let Some(n) = self.limit_log.hit("waiting", self.env.now()) {
                        warn!(
                            "conference {}: {} requests already wait for the focus to join (--max_waiting_requests); refusing ({} more refusals since the last line)",
                            self.room,
                            self.waiting.len(),
                            n
                        );
                    }
                    self.refuse(w, Refusal::TooManyWaiting);
                    return;
                }
                if let Some(r) = &w.requester {
                    let now = self.env.now();
                    self.expect(r.clone(), now);
                }
                if self.shared.sessions.is_some() {
                    self.update_owners();
                }
                if self.occupants.is_empty() {
                    self.start_deadline = Some(self.env.now() + START_TIMEOUT);
                }
                if self.joined {
                    self.answer(w, true);
                } else {
                    self.waiting.push(w);
                }
            }
            Inbox::Stanza(el) => match el.name.as_str() {
                "presence" => self.on_presence(el),
                "iq" => self.on_iq(el),
                _ => {}
            },
        }
    }

    fn on_presence(&mut self, el: Element) {
        let Some(p) = OccupantPresence::parse(&el) else { return };
        if !p.oversized.is_empty() {
            crate::metrics::Metrics::inc(&self.shared.metrics.limits.oversized_fields);
            if let Some(n) = self.limit_log.hit("presence values", self.env.now()) {
                warn!(
                    "conference {}: ignored {} in the presence of {}: longer than allowed ({} more since the last line)",
                    self.room,
                    p.oversized.join(", "),
                    crate::xmpp::stanza::clip(&p.nick, muc::MAX_NICK_LEN),
                    n
                );
            }
        }
        if p.nick == self.shared.nick {
            if !p.available {
                if p.destroyed {
                    info!("conference {}: room destroyed", self.room);
                    self.joined = false;
                    self.end(EndReason::RoomDestroyed);
                } else if self.connected {
                    info!("conference {}: the focus was removed from the room", self.room);
                    self.joined = false;
                    self.end(EndReason::NotOwner);
                }
            } else if p.affiliation != Affiliation::Owner && p.is_self() {
                info!("conference {}: the focus lost ownership", self.room);
                self.end(EndReason::NotOwner);
            }
            return;
        }
        if !p.available {
            self.on_leave(&p);
            return;
        }
        if let Some(o) = self.occupants.iter_mut().find(|o| o.nick == p.nick) {
            o.stale = false;
            o.affiliation = p.affiliation;
            o.role = p.role;
            if p.real_jid.is_some() {
                o.real_jid = p.real_jid.clone();
            }
            o.stats_id = p.stats_id.clone().or(o.stats_id.take());
            o.region = p.region.clone().or(o.region.take());
            if let Some(a) = p.audio_muted {
                o.audio_muted = a;
            }
            if let Some(v) = p.video_muted {
                o.video_muted = v;
            }
            return;
        }
        if let Some(w) = self.seat_queue.iter_mut().find(|w| w.nick == p.nick) {
            *w = p;
            return;
        }
        if p.nick.len() > muc::MAX_NICK_LEN {
            // Its endpoint id would be copied into every source name and Colibri2 request.
            crate::metrics::Metrics::inc(&self.shared.metrics.limits.oversized_fields);
            if let Some(n) = self.limit_log.hit("long nick", self.env.now()) {
                warn!(
                    "conference {}: not serving an occupant whose nick is longer than {} bytes ({} more since the last line)",
                    self.room,
                    muc::MAX_NICK_LEN,
                    n
                );
            }
            return;
        }
        if self.occupants.len() >= self.shared.limits.max_participants {
            self.over_limit(p);
            return;
        }
        self.admit(p);
    }

    /// A new occupant while `max_participants` are served: it waits for a seat, or
    /// when as many wait already, it is not tracked at all (no disco, no offer).
    fn over_limit(&mut self, p: OccupantPresence) {
        crate::metrics::Metrics::inc(&self.shared.metrics.participants_over_limit);
        let max = self.shared.limits.max_participants;
        let queued = self.seat_queue.len() < max;
        let nick = p.nick.clone();
        if queued {
            self.seat_queue.push_back(p);
        }
        if let Some(n) = self.limit_log.hit("participants", self.env.now()) {
            warn!(
                "conference {}: {} participants served (--max_participants); {} {} ({} more events since the last line)",
                self.room,
                max,
                nick,
                if queued { "waits for a seat" } else { "is not served" },
                n
            );
        }
    }

    /// Give free seats to the occupants waiting for one, in join order.
    fn fill_seats(&mut self) {
        while self.occupants.len() < self.shared.limits.max_participants {
            let Some(p) = self.seat_queue.pop_front() else { break };
            info!("conference {}: a seat is free for {}", self.room, p.nick);
            self.admit(p);
        }
    }

    /// `p` becomes a served participant: disco, ownership, invitation.
    fn admit(&mut self, p: OccupantPresence) {
        let now = self.env.now();
        let occupant = Occupant {
            nick: p.nick.clone(),
            real_jid: p.real_jid.clone(),
            affiliation: p.affiliation,
            role: p.role,
            stats_id: p.stats_id.clone(),
            region: p.region.clone(),
            audio_muted: p.audio_muted.unwrap_or(false),
            video_muted: p.video_muted.unwrap_or(false),
            features: None,
            joined_at: now,
            stale: false,
            owner_requested: false,
        };
        info!(
            "conference {}: {} joined ({})",
            self.room,
            p.nick,
            p.real_jid.as_ref().map(|j| j.to_string()).unwrap_or_else(|| "real JID hidden".into())
        );
        self.occupants.push(occupant);
        self.joins += 1;
        if let Some(e) = p.real_jid.as_ref().and_then(|j| self.expected.get_mut(j)) {
            e.0 = e.0.saturating_sub(1);
        }
        self.shared.metrics.participant_joined();
        self.shared.metrics.set_size(self.id, self.occupants.len());
        self.ever_joined = true;
        self.start_deadline = None;
        self.discover_features(&p);
        self.update_owners();
        self.maybe_invite();
    }

    fn on_leave(&mut self, p: &OccupantPresence) {
        let how = if p.statuses.contains(&307) { Departure::Kicked } else { Departure::Left };
        self.occupant_gone(&p.nick, how);
    }

    /// `nick` is no longer in the room, however that came to be: the one path that forgets
    /// an occupant (its seat or waiting place, ownership, session, sources, endpoint), fills
    /// the seat and ends the conference when nobody is left and nobody is expected.
    fn occupant_gone(&mut self, nick: &str, how: Departure) {
        if let Some(i) = self.seat_queue.iter().position(|w| w.nick == nick) {
            self.seat_queue.remove(i);
            return;
        }
        let Some(pos) = self.occupants.iter().position(|o| o.nick == nick) else { return };
        let o = self.occupants.remove(pos);
        self.shared.metrics.set_size(self.id, self.occupants.len());
        let what = match how {
            Departure::Left => "left",
            Departure::Kicked => "was kicked",
            Departure::Vanished => "left while the focus was away",
        };
        info!("conference {}: {} {}", self.room, o.nick, what);
        if self.owner.as_deref() == Some(o.nick.as_str()) {
            self.owner = None;
        }
        self.media_participant_left(&o.nick, how == Departure::Vanished);
        self.fill_seats();
        if self.occupants.is_empty() {
            // Someone who asked for the room after the last join is about to come:
            // wait for them (the start timeout) instead of leaving under their feet.
            let now = self.env.now();
            self.expected.retain(|_, (n, t)| *n > 0 && now < *t + START_TIMEOUT);
            match self.expected.values().map(|(_, t)| *t).max() {
                Some(t) => {
                    info!("conference {}: empty, but a participant is expected", self.room);
                    self.start_deadline = Some(t + START_TIMEOUT);
                }
                None => self.end(EndReason::RoomEmpty),
            }
            return;
        }
        self.update_owners();
    }

    /// Disco the participant's features, from the caps cache when its verified `ver` is known.
    fn discover_features(&mut self, p: &OccupantPresence) {
        if let Some(caps) = &p.caps {
            if let Some(f) = self.shared.caps_cache.lock().get(caps) {
                if let Some(o) = self.occupants.iter_mut().find(|o| o.nick == p.nick) {
                    o.features = Some(f);
                }
                return;
            }
        }
        let node = p.caps.as_ref().map(Caps::query_node);
        let to = self.room.with_resource(&p.nick);
        let deadline = self.env.now() + DISCO_TIMEOUT;
        let what = PendingIq::Disco { nick: p.nick.clone(), caps: p.caps.clone() };
        let Some(id) = self.track(what, to.clone(), deadline) else {
            // Not sent: the participant is taken to have the default features.
            if let Some(o) = self.occupants.iter_mut().find(|o| o.nick == p.nick) {
                o.features = Some(DEFAULT_FEATURES.iter().map(|s| s.to_string()).collect());
            }
            return;
        };
        let iq = Element::new("iq", ns::CLIENT)
            .attr("type", "get")
            .attr("id", id)
            .attr("to", to.to_string())
            .child(Element::new("query", ns::DISCO_INFO).attr_opt("node", node));
        self.send(iq);
    }

    /// An answer (or, with `None`, the deadline) for one of our pending requests.
    fn pending_answered(&mut self, what: PendingIq, answer: Option<&Element>) {
        let ok = answer.is_some_and(|a| a.get_attr("type") == Some("result"));
        match what {
            PendingIq::Disco { nick, caps } => {
                let features: Vec<String> = match answer.filter(|_| ok).and_then(|a| a.get_child("query", ns::DISCO_INFO)) {
                    Some(q) => {
                        // Bounded; cached only when it hashes to the advertised ver.
                        let info = DiscoInfo::parse(q);
                        if let Some(c) = &caps {
                            let who = self.room.with_resource(&nick).to_string();
                            let now = self.env.now();
                            self.shared.caps_cache.lock().learn(c, &info, &who, now);
                        }
                        info.features
                    }
                    None => {
                        debug!("conference {}: disco of {} failed; default features", self.room, nick);
                        DEFAULT_FEATURES.iter().map(|s| s.to_string()).collect()
                    }
                };
                if let Some(o) = self.occupants.iter_mut().find(|o| o.nick == nick) {
                    o.features = Some(features);
                }
                self.update_owners();
                self.maybe_invite();
            }
            PendingIq::Affiliation { nick } => {
                if !ok {
                    warn!("conference {}: granting owner to {} failed", self.room, nick);
                    if let Some(o) = self.occupants.iter_mut().find(|o| o.nick == nick) {
                        o.owner_requested = false;
                    }
                    if self.owner.as_deref() == Some(nick.as_str()) {
                        self.owner = None;
                    }
                }
            }
            PendingIq::Initiate { nick, sid } => self.on_initiate_answer(&nick, &sid, answer),
            PendingIq::ColibriUpdate { nick } => self.on_colibri_update_answer(&nick, answer),
        }
    }

    /// Keep the room's owners as §3.3 says.
    fn update_owners(&mut self) {
        if let Some(sessions) = self.shared.sessions.clone() {
            // Secure domain: every authenticated participant is an owner.
            let grants: Vec<(String, Jid)> = {
                let s = sessions.lock();
                self.occupants
                    .iter()
                    .filter(|o| o.affiliation != Affiliation::Owner && !o.owner_requested)
                    .filter_map(|o| o.real_jid.clone().filter(|j| s.is_authenticated(j)).map(|j| (o.nick.clone(), j)))
                    .collect()
            };
            for (nick, jid) in grants {
                self.grant_owner(&nick, &jid);
            }
            return;
        }
        if self.owner.as_ref().is_some_and(|n| self.occupants.iter().any(|o| &o.nick == n)) {
            return;
        }
        if let Some(o) = self.occupants.iter().find(|o| o.affiliation == Affiliation::Owner && !o.is_jibri_or_jigasi()) {
            self.owner = Some(o.nick.clone());
            return;
        }
        let candidate = self
            .occupants
            .iter()
            .find(|o| !o.is_jibri_or_jigasi() && o.real_jid.is_some())
            .map(|o| (o.nick.clone(), o.real_jid.clone().unwrap()));
        if let Some((nick, jid)) = candidate {
            self.owner = Some(nick.clone());
            self.grant_owner(&nick, &jid);
        }
    }

    fn grant_owner(&mut self, nick: &str, jid: &Jid) {
        if let Some(o) = self.occupants.iter_mut().find(|o| o.nick == nick) {
            o.owner_requested = true;
        }
        info!("conference {}: granting owner to {} ({})", self.room, nick, jid.bare());
        let deadline = self.env.now() + REPLY_TIMEOUT;
        let Some(id) = self.track(PendingIq::Affiliation { nick: nick.to_string() }, self.room.clone(), deadline) else {
            self.pending_answered(PendingIq::Affiliation { nick: nick.to_string() }, None);
            return;
        };
        let iq = muc::set_affiliation(&self.room, jid, "owner").attr("id", id);
        self.send(iq);
    }

    fn on_iq(&mut self, el: Element) {
        match el.get_attr("type") {
            Some("result") | Some("error") => {
                let Some(id) = el.get_attr("id").and_then(IqId::parse).filter(|id| self.pending.contains_key(id)) else {
                    debug!("conference {}: answer to unknown request {:?}", self.room, el.get_attr("id"));
                    return;
                };
                let to = self.pending.get(&id).map(|t| t.to.clone());
                if !self.is_from_addressee(to.as_ref(), &el) {
                    self.forged(&el);
                    return;
                }
                let Some(t) = self.pending.remove(&id) else { return };
                self.shared.pending.lock().cancel(id);
                self.pending_answered(t.what, Some(&el));
            }
            Some("get") | Some("set") => self.on_request(el),
            _ => {}
        }
    }

    fn on_request(&mut self, el: Element) {
        if let Some(m) = mute::MuteRequest::parse(&el) {
            let reply = match m {
                Ok(m) => self.on_mute(&el, &m),
                Err(text) => iq_error(&el, ErrorCondition::BadRequest, Some(text)),
            };
            self.send(reply);
            return;
        }
        if el.get_child("jingle", ns::JINGLE).is_some() && el.get_attr("type") == Some("set") {
            self.on_jingle(&el);
            return;
        }
        if el.get_child("query", ns::DISCO_INFO).is_some() && el.get_attr("type") == Some("get") {
            let r = crate::xmpp::disco::info_answer(&el);
            self.send(r);
            return;
        }
        if el.get_child("ping", ns::PING).is_some() {
            let r = iq_result(&el);
            self.send(r);
            return;
        }
        let r = iq_error(&el, ErrorCondition::ServiceUnavailable, None);
        self.send(r);
    }

    /// A mute request (§6.1). Returns the answer for the requester.
    fn on_mute(&mut self, iq: &Element, m: &mute::MuteRequest) -> Element {
        let mute = m.mute;
        let Some(requester) = self.occupants.iter().find(|o| o.nick == m.from_nick).cloned() else {
            return iq_error(iq, ErrorCondition::Forbidden, Some("only participants may mute"));
        };
        let Some(target) = self.occupants.iter().find(|o| o.nick == m.target_nick).cloned() else {
            return iq_error(iq, ErrorCondition::ItemNotFound, Some("no such participant"));
        };
        let own = requester.nick == target.nick;
        if !own && !mute {
            return iq_error(iq, ErrorCondition::NotAllowed, Some("nobody may unmute someone else"));
        }
        if !own && !requester.is_moderator() {
            return iq_error(iq, ErrorCondition::Forbidden, Some("only moderators may mute others"));
        }
        if target.is_jibri_or_jigasi() && !own {
            return iq_error(iq, ErrorCondition::NotAllowed, Some("Jibri and Jigasi are never muted"));
        }
        if !own {
            let id = self.new_id();
            let fwd = Element::new("iq", ns::CLIENT)
                .attr("type", "set")
                .attr("id", id)
                .attr("to", self.room.with_resource(&target.nick).to_string())
                .child(
                    Element::new("mute", &m.ns)
                        .attr("actor", self.room.with_resource(&requester.nick).to_string())
                        .text(if mute { "true" } else { "false" }),
                );
            info!("conference {}: {} mutes {} ({})", self.room, requester.nick, target.nick, m.ns);
            self.send(fwd);
        }
        // The bridge enforces a moderator's mute and lifts it when the participant
        // unmutes itself (desktop sharing is video on the bridge).
        let media = if m.ns == ns::AUDIO_MUTE { "audio" } else { "video" };
        if !own || !mute {
            self.bridge_force_mute(&target.nick, media, mute);
        }
        iq_result(iq)
    }
}
