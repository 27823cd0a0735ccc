//! One conference, run as plain blocking code on its own thread.
//!
//! The thread owns the room's state. It reads [`Inbox`] messages (stanzas for the
//! room, typed where they were parsed and dispatched here by variant: presences,
//! Jingle requests, pings, answers; forwarded conference requests, connection changes)
//! from its [`Env`] and sends stanzas through it. A request that needs an answer is sent with a deadline
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
//! Jibri sessions (`recording`: the moderator's `<jibri>` IQ, status in the focus presence)
//! and Jigasi dials (`dial`: the moderator's Rayo `<dial>`) are handled in their own files;
//! Jibri/Jigasi members are known by presence features from a trusted domain
//! ([`crate::xmpp::jigasi::Robot`]) and are never made owner.
//! Moderation (moderation.md): the router hands over the discovered components' messages as
//! [`Inbox::Component`] (AV moderation, room metadata); mute IQs, AV moderation transitions
//! and `session-info` are decided by [`crate::moderation`] and carried out here and in
//! `media`. A breakout conference registers its main room (read from the owner form) in
//! `Shared::breakouts`; a main conference stays while it has breakout conferences.
//!
//! Every IQ request whose answer matters is entered in the shared
//! [`PendingTable`](crate::messages::pending::PendingTable) before it is sent (random id,
//! the JID it went to); an answer counts only from that JID. Past the table's cap for
//! this conference a request fails here, without being sent.
//!
//! The conference is split by concern, each part its own state with its own tests:
//! - [`lifecycle`]: the room's life cycle (Joining, Running, Away, Ended; the state
//!   diagram is there), the start timeout and the requesters expected to join;
//! - [`participant`]: one value per participant (Discovering, Ready, Allocating, Offered,
//!   Active, Failed, Leaving; the state diagram is there) with its Jingle session, its
//!   restart budgets and its bridge force-mute state;
//! - [`owners`]: owners and roles (§3.3); [`mute`]: a participant's bridge force-mute
//!   state; [`signaling`]: a receiver's source-signaling queue;
//! - [`bridge_session`]: the Colibri2 session on the bridge (allocation, updates, expiry,
//!   force-mute requests, the reactions to the bridge's errors, failover);
//! - [`jingle`]: the participants' Jingle sessions (offers, their requests, restarts,
//!   ICE); [`media`]: the coordinator (who is invited when, timers, leaving, the end);
//! - the MUC stanzas are typed in [`crate::xmpp::muc`].
//!
//! Identifiers have types of their own ([`crate::ids`]): the conference's
//! [`ConferenceId`], a participant's [`Nick`] (its endpoint id), Jingle [`Sid`]s, the
//! [`MeetingId`] and the bridge session's id; sources are keyed by
//! [`crate::xmpp::jingle::sources::SourceOwner`], so the bridge is never a nick.
//!
//! Time and randomness come only through the [`Env`] (clock, wall clock, random bits),
//! so [`sim::SimEnv`] runs are deterministic for a seed (`sim_tests.rs` covers the rules
//! end to end on simulated time).

pub mod bridge_session;
pub mod dial;
pub mod env;
pub mod jingle;
pub mod lifecycle;
pub mod media;
pub mod mute;
pub mod owners;
pub mod participant;
pub mod recording;
pub mod signaling;
pub mod sim;
#[cfg(test)]
mod media_tests;
#[cfg(test)]
mod moderation_tests;
#[cfg(test)]
mod sim_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod recording_tests;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use log::{debug, info, warn};
use parking_lot::Mutex;

use crate::auth::Sessions;
use crate::config::limits::Limits;
use crate::messages::{ComponentMessage, ConferenceAnswer, EndReason, Inbox, PendingReply, Refusal};
use crate::log_throttle::{LogThrottle, LogThrottles};
use crate::messages::pending::{answer_is_from, Destination, IqId, PendingTable};
use crate::ids::{ConferenceId, MeetingId, Nick, Sid};
use crate::jid::Jid;
use crate::net::ConnId;
use crate::xml::{Element, Outgoing};
use crate::xmpp::ns;
use crate::xmpp::caps::{Caps, CapsCache, DiscoInfo};
use crate::xmpp::stanza::{iq_error, iq_result, ErrorCondition};

use crate::xmpp::incoming::Incoming;
use crate::xmpp::muc::{self, Affiliation, OccupantPresence};
use crate::xmpp::presence::Presence;
use crate::xmpp::stanza::IqType;
use participant::Participant;
use crate::xmpp::mute::{MuteRequest, BAD_MUTE};

/// No participant joined this long after creation: the conference ends.
pub const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Deadline of a request the conference waits for.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(15);
/// Deadline of a participant's disco#info.
pub const DISCO_TIMEOUT: Duration = Duration::from_secs(5);

/// Features assumed when a participant's disco fails (§4).
pub const DEFAULT_FEATURES: &[&str] =
    &["urn:xmpp:jingle:apps:rtp:audio", "urn:xmpp:jingle:apps:rtp:video", "urn:xmpp:jingle:transports:dtls-sctp:1"];

/// Is `st` an IQ answer (`result` or `error`) with id `id`?
fn is_answer(st: &Incoming, id: &str) -> bool {
    matches!(st.iq_type(), Some(IqType::Result | IqType::Error)) && st.get_attr("id") == Some(id)
}

/// The world as a conference thread sees it. Time and randomness come only from here, so
/// a simulated run ([`sim::SimEnv`]) is deterministic: the same script and seed give the
/// same stanzas at the same times.
pub trait Env: Send {
    /// Send a stanza on `conn` (a tree, or written ahead: [`crate::xml::RawElement`]).
    fn send(&mut self, conn: ConnId, el: Outgoing);
    /// The current time (deadlines, rate limits, timers).
    fn now(&self) -> Instant;
    /// Wall-clock time, for values clients show (`created-ms`).
    fn wall_clock(&self) -> SystemTime;
    /// 64 random bits (meeting ids, bridge-session ids, Jingle sids).
    fn random_u64(&mut self) -> u64;
    /// A reading to measure this thread's own work with (the focus-added metric): the
    /// real clock in production; the simulated clock by default.
    fn stopwatch(&self) -> Instant {
        self.now()
    }
    /// A random (v4) UUID in its usual text form.
    fn new_uuid(&mut self) -> String {
        env::uuid_text(self.random_u64(), self.random_u64())
    }
    /// A new Jingle session id: 64 random bits in lower-case base 32.
    fn new_sid(&mut self) -> Sid {
        Sid::from(env::sid_text(self.random_u64()))
    }
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
    /// Authentication sessions, when an authority is configured (`--auth_domain`,
    /// `--jwt_auth_domain`).
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
    /// Jibri breweries and which Jibri serves which conference.
    pub jibri: Arc<crate::jibri::Jibris>,
    /// The Jigasi brewery.
    pub jigasi: Arc<crate::jigasi::Jigasis>,
    /// Domains whose members are recognised as Jibri/Jigasi by presence features.
    pub trusted_domains: Vec<String>,
    /// `--enable_auto_owner`, `--enable_ice_restart`.
    pub moderation: crate::moderation::breakout::Settings,
    /// Main rooms with breakout conferences running (moderation.md §3).
    pub breakouts: Mutex<crate::moderation::breakout::BreakoutRegistry>,
}

/// How an occupant left the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Departure {
    /// The MUC said so (unavailable presence); everyone in the room saw it.
    Left,
    /// The MUC said so, with status 307.
    Kicked,
    /// The MUC said so, and the client said `<status>switch_room</status>`: it moves to
    /// a breakout room or back (moderation.md §3).
    SwitchedRoom,
    /// Not listed again when the focus rejoined after losing its connection: it left
    /// while the focus was away, and the focus cannot know who saw it leave.
    Vanished,
}

/// What a pending IQ of ours was for.
#[derive(Debug, Clone)]
enum PendingIq {
    Disco { nick: Nick, caps: Option<Caps> },
    Affiliation { nick: Nick },
    Initiate { nick: Nick, sid: Sid },
    ColibriUpdate { nick: Nick },
    /// A start IQ to a Jibri for this session.
    JibriStart { session: String },
    /// A dial forwarded to a Jigasi.
    Dial { key: u64 },
    /// An in-place ICE restart of `nick`'s endpoint (session `sid`).
    IceRestart { nick: Nick, sid: Sid },
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
    /// The conference's number (the router's).
    pub id: ConferenceId,
    /// The room.
    pub room: Jid,
    /// What all conferences share.
    pub shared: Arc<Shared>,
    /// `startAudioMuted` of the request: joiners from this index on start with audio muted.
    pub start_audio_muted: Option<i64>,
    /// `startVideoMuted` of the request: joiners from this index on start with video muted.
    pub start_video_muted: Option<i64>,
}

/// The conference state machine.
pub struct Conference<E: Env> {
    env: E,
    id: ConferenceId,
    room: Jid,
    shared: Arc<Shared>,
    deferred: VecDeque<Inbox>,
    /// The weight of `deferred` ([`Inbox::weight`]).
    deferred_bytes: usize,
    /// Joining, running, away, ended (and whether a shutdown aborts waits).
    life: lifecycle::Lifecycle,
    /// The served participants, in join order, each with its own state.
    occupants: Vec<Participant>,
    waiting: Vec<PendingReply>,
    /// The room's owner and the grants asked for.
    owners: owners::Owners,
    pending: BTreeMap<IqId, Tracked>,
    /// Forged answers (right id, wrong sender), logged once per interval.
    forged_log: LogThrottle,
    meeting_id: MeetingId,
    created_ms: u128,
    /// Joiners from this index on start with audio muted (`startAudioMuted`).
    pub start_audio_muted: Option<i64>,
    /// Joiners from this index on start with video muted (`startVideoMuted`).
    pub start_video_muted: Option<i64>,
    /// The bridge side and the participants' sources.
    pub(crate) media: media::MediaState,
    /// Requests not yet followed by a join, per requester: someone is about to come.
    expected: lifecycle::Expected,
    /// Occupants past `max_participants`, waiting for a seat (at most as many again).
    seat_queue: VecDeque<OccupantPresence>,
    /// Refusals under the limits, logged once per interval per kind.
    limit_log: LogThrottles,
    started: Instant,
    joins: usize,
    /// What to undo should this thread panic (shared with the thread's launcher).
    cleanup: Arc<Mutex<env::Cleanup>>,
    /// Jibri sessions (`recording`).
    recording: recording::Recording,
    /// Dials in flight (`dial`).
    dials: dial::Dials,
    /// AV moderation state (moderation.md §1), reset on every (re)join.
    pub(crate) av: crate::moderation::av::AvModeration,
    /// `startMuted` from the room metadata (§4): (audio, video).
    pub(crate) metadata_start_muted: (bool, bool),
    /// The main room, when this is a breakout room (read from the owner form).
    pub(crate) breakout_main: Option<Jid>,
}

impl<E: Env> Conference<E> {
    /// A conference of `p.room` in `env`; [`Conference::run`] runs it.
    pub fn new(env: E, p: Params) -> Conference<E> {
        Conference::with_cleanup(env, p, Arc::default())
    }

    /// A conference that keeps `cleanup` current (its sessions and bridge conference),
    /// for its launcher to undo them after a panic.
    pub fn with_cleanup(mut env: E, p: Params, cleanup: Arc<Mutex<env::Cleanup>>) -> Conference<E> {
        let now = env.now();
        let meeting_id = MeetingId::from(env.new_uuid());
        let created_ms = env.wall_clock().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        Conference {
            env,
            id: p.id,
            room: p.room,
            shared: p.shared,
            deferred: VecDeque::new(),
            deferred_bytes: 0,
            life: lifecycle::Lifecycle::new(now),
            occupants: Vec::new(),
            waiting: Vec::new(),
            owners: owners::Owners::default(),
            pending: BTreeMap::new(),
            forged_log: LogThrottle::default(),
            meeting_id,
            created_ms,
            start_audio_muted: p.start_audio_muted,
            start_video_muted: p.start_video_muted,
            media: media::MediaState::default(),
            expected: lifecycle::Expected::default(),
            seat_queue: VecDeque::new(),
            limit_log: LogThrottles::default(),
            started: now,
            joins: 0,
            cleanup,
            recording: Default::default(),
            dials: Default::default(),
            av: Default::default(),
            metadata_start_muted: (false, false),
            breakout_main: None,
        }
    }

    /// The room.
    pub fn room(&self) -> &Jid {
        &self.room
    }

    /// Participants in join order.
    pub fn occupants(&self) -> &[Participant] {
        &self.occupants
    }

    /// The participant `nick`, if it is served.
    pub fn participant(&self, nick: &str) -> Option<&Participant> {
        self.occupants.iter().find(|o| o.nick == nick)
    }

    fn participant_mut(&mut self, nick: &str) -> Option<&mut Participant> {
        self.occupants.iter_mut().find(|o| o.nick == nick)
    }

    /// Apply `f` to participant `nick`, if it is served.
    fn with_participant(&mut self, nick: &Nick, f: impl FnOnce(&mut Participant)) {
        if let Some(p) = self.participant_mut(nick.as_str()) {
            f(p);
        }
    }

    /// The meeting id (from the room form, else a random UUID).
    pub fn meeting_id(&self) -> &MeetingId {
        &self.meeting_id
    }

    /// A random id for an IQ whose answer is not awaited.
    fn new_id(&mut self) -> String {
        self.shared.pending.lock().fresh_id().to_string()
    }

    fn send(&mut self, el: impl Into<Outgoing>) {
        let c = self.shared.client;
        self.env.send(c, el.into());
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
    fn is_from_addressee(&self, to: Option<&Jid>, el: &Incoming) -> bool {
        let own = self.shared.focus_full.lock().as_deref().and_then(|s| Jid::parse(s).ok());
        let from = match el.get_attr("from").map(Jid::parse) {
            None => None,
            Some(Ok(j)) => Some(j),
            Some(Err(_)) => return false,
        };
        answer_is_from(to, from.as_ref(), own.as_ref())
    }

    /// A forged answer reached the conference: drop it (logged once per interval).
    fn forged(&mut self, el: &Incoming) {
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
        self.life.abort();
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
    pub(crate) fn request(&mut self, iq: impl Into<Outgoing>, timeout: Duration) -> Result<Incoming, RequestError> {
        let mut iq = iq.into();
        if self.life.is_aborted() {
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
        while self.life.ended().is_none() {
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
        let reason = self.life.ended().unwrap_or(EndReason::Shutdown);
        self.finish(reason);
        reason
    }

    fn next_deadline(&self) -> Option<Instant> {
        let mut d = self.life.start_deadline();
        if let Some(t) = self.media_deadline() {
            d = Some(d.map_or(t, |x| x.min(t)));
        }
        for t in self.pending.values() {
            d = Some(d.map_or(t.deadline, |x| x.min(t.deadline)));
        }
        if let Some(t) = self.recording_deadline() {
            d = Some(d.map_or(t, |x| x.min(t)));
        }
        d
    }

    fn end(&mut self, reason: EndReason) {
        self.life.end(reason);
    }

    /// Leave the room and answer whoever still waits.
    fn finish(&mut self, reason: EndReason) {
        self.recording_stop_all();
        self.dials_abort_all();
        if let Some(main) = self.breakout_main.take() {
            self.shared.breakouts.lock().remove(&main);
        }
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
        if self.life.leave() {
            let leave = muc::leave_presence(&self.room, &self.shared.nick);
            self.send(leave);
        }
        info!(
            "conference {}: ended ({:?}) after {} s; {} participants joined, {} at the end; bridge {}",
            self.room,
            reason,
            self.env.now().duration_since(self.started).as_secs(),
            self.joins,
            self.occupants.len(),
            self.media.bridging.last_bridge.as_ref().map(|b| b.to_string()).unwrap_or_else(|| "none".into())
        );
    }

    /// Answer a conference request with `resource-constraint` (type wait).
    fn refuse(&mut self, w: PendingReply, why: Refusal) {
        if let Some((conn, iq)) = w.target.answer(&w.iq, ConferenceAnswer::Refused(why)) {
            self.env.send(conn, iq.into());
        }
    }

    fn answer(&mut self, w: PendingReply, ready: bool) {
        let mut reply = w.reply.clone();
        reply.ready = ready;
        if let Some((conn, iq)) = w.target.answer(&w.iq, ConferenceAnswer::Reply(reply)) {
            self.env.send(conn, iq.into());
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
                Some(Inbox::Stanza(Incoming::Presence(p))) if p.from.as_deref() != Some(me.as_str()) => {
                    // Occupants the MUC lists before our own presence.
                    self.on_presence(*p);
                }
                Some(Inbox::Stanza(Incoming::Presence(p))) => {
                    if p.is_error() {
                        let cond = p.error.as_ref().map(|e| e.condition_name.clone());
                        warn!("conference {}: MUC join refused: {}", self.room, cond.unwrap_or_default());
                        return false;
                    }
                    match p.occupant {
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
        self.life.joined_room();
        // Prosody tells a joining focus nothing about AV moderation already on.
        self.av.reset();
        // Configure the room (also unlocks a new, locked room) and read its meeting id.
        if let Ok(form) = self.request(muc::owner_form_get(&self.room), REPLY_TIMEOUT) {
            if let Some(q) = form.element().and_then(|f| f.get_child("query", ns::MUC_OWNER)) {
                if let Some(mid) = muc::form_value(q, "muc#roominfo_meetingId").filter(|m| !m.is_empty()) {
                    self.meeting_id = MeetingId::from(mid);
                }
                if self.breakout_main.is_none() {
                    if let Some(main) = crate::xmpp::components::breakout_main_room(q) {
                        info!("conference {}: a breakout room of {}", self.room, main);
                        self.shared.breakouts.lock().add(&main);
                        self.breakout_main = Some(main);
                    }
                }
            }
        }
        match self.request(muc::owner_form_submit(&self.room), REPLY_TIMEOUT) {
            Ok(r) if r.get_attr("type") == Some("result") => {}
            Ok(r) => warn!("conference {}: room configuration refused: {:?}", self.room, r.into_element().to_xml()),
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
        let p = p.children(self.recording.presence_extensions().cloned());
        if self.life.in_room() {
            self.send(p);
        }
    }

    fn on_timer(&mut self) {
        let now = self.env.now();
        if self.life.start_timeout_fired(now) {
            if self.occupants.is_empty() {
                if self.life.anyone_came() && self.kept_for_breakouts() {
                    self.life.wait_until(now + START_TIMEOUT);
                } else {
                    info!("conference {}: nobody joined within {} s", self.room, START_TIMEOUT.as_secs());
                    self.end(EndReason::NobodyJoined);
                }
            }
        }
        let mut expired: Vec<(Instant, IqId)> =
            self.pending.iter().filter(|(_, t)| now >= t.deadline).map(|(k, t)| (t.deadline, *k)).collect();
        expired.sort();
        for (_, id) in expired {
            if let Some(t) = self.pending.remove(&id) {
                self.shared.pending.lock().cancel(id);
                self.pending_answered(t.what, None);
            }
        }
        self.media_timer();
        self.recording_timer();
    }

    fn handle(&mut self, m: Inbox) {
        match m {
            Inbox::Shutdown => self.abort(),
            Inbox::Bridge(ev) => self.media_bridge_event(ev),
            Inbox::Jibri(n) => self.on_jibri_notice(n),
            Inbox::Connection(false) => {
                info!("conference {}: XMPP connection lost; keeping the conference", self.room);
                self.life.connection_lost();
                // Whoever the MUC does not list again after the rejoin has left meanwhile.
                for o in &mut self.occupants {
                    o.stale = true;
                }
                // Those waiting for a seat are listed again too.
                self.seat_queue.clear();
            }
            Inbox::Connection(true) => {
                if self.life.connection_back() {
                    info!("conference {}: XMPP connection back; rejoining", self.room);
                    if !self.join() {
                        self.end(EndReason::JoinFailed);
                    }
                    if self.life.ended().is_none() {
                        // Whoever the MUC did not list again left while we were away.
                        let gone: Vec<Nick> = self.occupants.iter().filter(|o| o.stale).map(|o| o.nick.clone()).collect();
                        for nick in gone {
                            self.occupant_gone(nick.as_str(), Departure::Vanished);
                        }
                    }
                }
            }
            Inbox::Request(w) => {
                if !self.life.in_room() && self.waiting.len() >= self.shared.limits.max_waiting_requests {
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
                    // Expected to join; bounded by `max_participants` entries.
                    let now = self.env.now();
                    self.expected.expect(r.clone(), now, self.shared.limits.max_participants);
                }
                if self.shared.sessions.is_some() {
                    self.update_owners();
                }
                if self.occupants.is_empty() {
                    let t = self.env.now() + START_TIMEOUT;
                    self.life.wait_until(t);
                }
                if self.life.in_room() {
                    self.answer(w, true);
                } else {
                    self.waiting.push(w);
                }
            }
            Inbox::Component(m) => self.on_component(m),
            Inbox::Stanza(Incoming::Presence(p)) => self.on_presence(*p),
            Inbox::Stanza(st) if st.name() == "iq" => self.on_iq(st),
            Inbox::Stanza(_) => {}
        }
    }

    fn on_presence(&mut self, presence: Presence) {
        let switch_room = presence.switch_room;
        let Some(p) = presence.occupant else { return };
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
                    self.life.out_of_room(EndReason::RoomDestroyed);
                } else if self.life.is_connected() {
                    info!("conference {}: the focus was removed from the room", self.room);
                    self.life.out_of_room(EndReason::NotOwner);
                }
            } else if p.affiliation != Affiliation::Owner && p.is_self() {
                info!("conference {}: the focus lost ownership", self.room);
                self.end(EndReason::NotOwner);
            }
            return;
        }
        if !p.available {
            self.on_leave(&p, switch_room);
            return;
        }
        if let Some(o) = self.occupants.iter_mut().find(|o| o.nick == p.nick) {
            o.stale = false;
            o.affiliation = p.affiliation;
            o.role = p.role;
            if p.real_jid.is_some() {
                o.real_jid = p.real_jid.clone();
            }
            if !p.features.is_empty() {
                let domain = o.real_jid.as_ref().map(|j| j.domain().to_string());
                o.robot = crate::xmpp::jigasi::Robot::recognise(&p.features, domain.as_deref(), &self.shared.trusted_domains);
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
        let mut occupant = Participant::new(Nick::from(p.nick.as_str()), now);
        occupant.real_jid = p.real_jid.clone();
        occupant.affiliation = p.affiliation;
        occupant.role = p.role;
        occupant.stats_id = p.stats_id.clone();
        occupant.region = p.region.clone();
        occupant.audio_muted = p.audio_muted.unwrap_or(false);
        occupant.video_muted = p.video_muted.unwrap_or(false);
        occupant.robot = crate::xmpp::jigasi::Robot::recognise(&p.features, p.real_jid.as_ref().map(|j| j.domain()), &self.shared.trusted_domains);
        info!(
            "conference {}: {} joined ({})",
            self.room,
            p.nick,
            p.real_jid.as_ref().map(|j| j.to_string()).unwrap_or_else(|| "real JID hidden".into())
        );
        self.occupants.push(occupant);
        self.joins += 1;
        if let Some(j) = &p.real_jid {
            self.expected.arrived(j);
        }
        self.shared.metrics.participant_joined();
        self.shared.metrics.set_size(self.id, self.occupants.len());
        self.life.someone_joined();
        self.discover_features(&p);
        self.update_owners();
        self.maybe_invite();
    }

    fn on_leave(&mut self, p: &OccupantPresence, switch_room: bool) {
        let how = if p.statuses.contains(&307) {
            Departure::Kicked
        } else if switch_room {
            Departure::SwitchedRoom
        } else {
            Departure::Left
        };
        self.occupant_gone(&p.nick, how);
    }

    /// Does this conference stay while its room is empty, because breakout conferences
    /// of this (main) room run (moderation.md §3)?
    fn kept_for_breakouts(&self) -> bool {
        self.shared.breakouts.lock().has_breakouts(&self.room)
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
        let mut o = self.occupants.remove(pos);
        let released = o.leave();
        self.shared.metrics.set_size(self.id, self.occupants.len());
        let what = match how {
            Departure::Left => "left",
            Departure::SwitchedRoom => "left to switch rooms",
            Departure::Kicked => "was kicked",
            Departure::Vanished => "left while the focus was away",
        };
        info!("conference {}: {} {}", self.room, o.nick, what);
        self.owners.left(o.nick.as_str());
        self.media_participant_left(&o.nick, released, how == Departure::Vanished);
        self.fill_seats();
        if self.occupants.is_empty() {
            // Someone who asked for the room after the last join is about to come:
            // wait for them (the start timeout) instead of leaving under their feet.
            let now = self.env.now();
            match self.expected.wait_for_someone(now) {
                Some(t) => {
                    info!("conference {}: empty, but a participant is expected", self.room);
                    self.life.wait_until(t);
                }
                None if how == Departure::SwitchedRoom || self.kept_for_breakouts() => {
                    info!("conference {}: empty, kept while its breakout rooms run", self.room);
                    self.life.wait_until(now + START_TIMEOUT);
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
            let cached = self.shared.caps_cache.lock().get(caps);
            if let Some(f) = cached {
                if let Some(o) = self.participant_mut(&p.nick) {
                    o.discovered(f);
                }
                return;
            }
        }
        let node = p.caps.as_ref().map(Caps::query_node);
        let to = self.room.with_resource(&p.nick);
        let deadline = self.env.now() + DISCO_TIMEOUT;
        let what = PendingIq::Disco { nick: Nick::from(p.nick.as_str()), caps: p.caps.clone() };
        let Some(id) = self.track(what, to.clone(), deadline) else {
            // Not sent: the participant is taken to have the default features.
            if let Some(o) = self.participant_mut(&p.nick) {
                o.discovered(DEFAULT_FEATURES.iter().map(|s| s.to_string()).collect());
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
    fn pending_answered(&mut self, what: PendingIq, answer: Option<&Incoming>) {
        let ok = answer.is_some_and(|a| a.get_attr("type") == Some("result"));
        match what {
            PendingIq::Disco { nick, caps } => {
                let features: Vec<String> = match answer.filter(|_| ok).and_then(Incoming::element).and_then(|a| a.get_child("query", ns::DISCO_INFO)) {
                    Some(q) => {
                        // Bounded; cached only when it hashes to the advertised ver.
                        let info = DiscoInfo::parse(q);
                        if let Some(c) = &caps {
                            let who = self.room.with_resource(nick.as_str()).to_string();
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
                self.with_participant(&nick, |o| o.discovered(features));
                self.update_owners();
                self.maybe_invite();
            }
            PendingIq::Affiliation { nick } => {
                if !ok {
                    warn!("conference {}: granting owner to {} failed", self.room, nick);
                    self.owners.grant_failed(nick.as_str());
                }
            }
            PendingIq::Initiate { nick, sid } => self.on_initiate_answer(&nick, &sid, answer),
            PendingIq::ColibriUpdate { nick } => self.on_colibri_update_answer(&nick, answer),
            PendingIq::JibriStart { session } => self.on_jibri_start_answer(&session, answer),
            PendingIq::Dial { key } => self.on_dial_answer(key, answer),
            PendingIq::IceRestart { nick, sid } => self.on_ice_restart_answer(&nick, &sid, answer),
        }
    }

    /// Keep the room's owners as §3.3 says ([`owners`]).
    fn update_owners(&mut self) {
        let sessions = self.shared.sessions.clone();
        let now = self.env.now();
        let grants = {
            let s = sessions.as_ref().map(|s| s.lock());
            let candidates: Vec<owners::Candidate> = self
                .occupants
                .iter()
                .map(|o| owners::Candidate {
                    nick: &o.nick,
                    real_jid: o.real_jid.as_ref(),
                    is_owner: o.affiliation == Affiliation::Owner,
                    eligible: !o.is_jibri_or_jigasi(),
                    authenticated: match (&s, &o.real_jid) {
                        (Some(s), Some(j)) => s.is_authenticated(j, now),
                        _ => false,
                    },
                })
                .collect();
            let auto_owner = self.shared.moderation.auto_owner && self.breakout_main.is_none();
            self.owners.decide(s.is_some(), auto_owner, &candidates)
        };
        for (nick, jid) in grants {
            self.grant_owner(&nick, &jid);
        }
    }

    fn grant_owner(&mut self, nick: &Nick, jid: &Jid) {
        info!("conference {}: granting owner to {} ({})", self.room, nick, jid.bare());
        let deadline = self.env.now() + REPLY_TIMEOUT;
        let Some(id) = self.track(PendingIq::Affiliation { nick: nick.clone() }, self.room.clone(), deadline) else {
            self.pending_answered(PendingIq::Affiliation { nick: nick.clone() }, None);
            return;
        };
        let iq = muc::set_affiliation(&self.room, jid, "owner").attr("id", id);
        self.send(iq);
    }

    fn on_iq(&mut self, st: Incoming) {
        match st.iq_type() {
            Some(IqType::Result | IqType::Error) => {
                let Some(id) = st.get_attr("id").and_then(IqId::parse).filter(|id| self.pending.contains_key(id)) else {
                    debug!("conference {}: answer to unknown request {:?}", self.room, st.get_attr("id"));
                    return;
                };
                let to = self.pending.get(&id).map(|t| t.to.clone());
                if !self.is_from_addressee(to.as_ref(), &st) {
                    self.forged(&st);
                    return;
                }
                let Some(t) = self.pending.remove(&id) else { return };
                self.shared.pending.lock().cancel(id);
                self.pending_answered(t.what, Some(&st));
            }
            Some(IqType::Get | IqType::Set) => self.on_request(st),
            None => {}
        }
    }

    /// A request from an occupant, by kind: Jingle and ping typed; the rest (mute, Jibri,
    /// Rayo dial, disco) from its tree; anything else is `service-unavailable`.
    fn on_request(&mut self, st: Incoming) {
        let el = match st {
            Incoming::Jingle(j) => return self.on_jingle(&j),
            Incoming::Ping(head) => return self.send(iq_result(&head)),
            Incoming::Other(el) => el,
            other => {
                if let Some(env) = other.envelope() {
                    let r = iq_error(env, ErrorCondition::ServiceUnavailable, None);
                    self.send(r);
                }
                return;
            }
        };
        if let Some(m) = MuteRequest::parse(&el) {
            let reply = match m {
                Ok(m) => self.on_mute(&el, &m),
                Err(text) => iq_error(&el, ErrorCondition::BadRequest, Some(text)),
            };
            self.send(reply);
            return;
        }
        if el.get_child("jingle", ns::JINGLE).is_some() && el.get_attr("type") == Some("set") {
            // A Jingle IQ with more than the one child: read from its tree.
            if let Some(head) = crate::xmpp::stanza::IqHead::of(&el) {
                let request = crate::xmpp::jingle::stanzas::JingleRequest::parse(&el);
                self.on_jingle(&crate::xmpp::incoming::JingleIq { head, request });
            }
            return;
        }
        if let Some(j) = el.get_child("jibri", crate::xmpp::jibri::NS).filter(|_| el.get_attr("type") == Some("set")) {
            let j = j.clone();
            self.on_jibri_request(&el, &j);
            return;
        }
        if let Some(d) = el.get_child("dial", crate::xmpp::rayo::NS).filter(|_| el.get_attr("type") == Some("set")) {
            let d = d.clone();
            self.on_dial_request(&el, &d);
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

    /// Has `nick` a Participant object in Jicofo's sense (moderation.md §2): a served
    /// occupant the focus has invited or will invite now (the room has reached the
    /// participants needed), and whose invitation did not fail.
    fn is_participant(&self, nick: &str) -> bool {
        self.participant(nick)
            .is_some_and(|o| !o.is_failed() && (o.session().is_some() || self.occupants.len() >= media::MIN_PARTICIPANTS))
    }

    /// `nick` as a party to a mute request, if it has a Participant object.
    fn mute_member(&self, nick: &str) -> Option<crate::moderation::mute_rules::Member> {
        if !self.is_participant(nick) {
            return None;
        }
        let o = self.participant(nick)?;
        Some(crate::moderation::mute_rules::Member {
            occupant_jid: self.room.with_resource(nick).to_string(),
            moderator: o.is_moderator(),
            exempt: o.mute_exempt(),
        })
    }

    /// A mute request (moderation.md §2, rows 2–9 by `mute_rules::check`). Returns the
    /// answer for the requester.
    fn on_mute(&mut self, iq: &Element, m: &MuteRequest) -> Element {
        use crate::moderation::mute_rules::{check, BridgeFlag, MuteAsk};
        use crate::xmpp::av_moderation::MediaType;
        let Some(media) = MediaType::from_mute_ns(&m.ns) else { return iq_error(iq, ErrorCondition::BadRequest, Some(BAD_MUTE)) };
        let target_nick = m.target.as_ref().filter(|t| t.bare() == self.room).and_then(|t| t.resource().map(str::to_string));
        let requester = m.from_nick.as_deref().and_then(|n| self.mute_member(n));
        let target = target_nick.as_deref().and_then(|n| self.mute_member(n));
        let own = m.from_nick.is_some() && m.from_nick == target_nick;
        let ask = MuteAsk { conference: true, requester: requester.as_ref(), target: target.as_ref(), own, mute: m.mute, media };
        let outcome = match check(&ask, &self.av) {
            Ok(o) => o,
            Err(r) => {
                debug!("conference {}: mute request refused (row {}): {}", self.room, r.row(), r.text());
                return iq_error(iq, r.condition(), Some(r.text()));
            }
        };
        let (Some(requester_nick), Some(target_nick)) = (m.from_nick.clone(), target_nick.map(Nick::from)) else {
            return iq_error(iq, ErrorCondition::InternalServerError, None);
        };
        match outcome.bridge {
            BridgeFlag::Audio(v) => self.bridge_force_mute(&target_nick, "audio", v),
            BridgeFlag::Video(v) => self.bridge_force_mute(&target_nick, "video", v),
        }
        if outcome.notify_target {
            info!("conference {}: {} mutes {} ({})", self.room, requester_nick, target_nick, media.as_str());
            let actor = self.room.with_resource(&requester_nick).to_string();
            self.send_mute(target_nick.as_str(), media, Some(&actor));
        }
        iq_result(iq)
    }

    /// Send `<mute xmlns=T [actor]>true</mute>` to `nick`'s occupant JID; its answer is
    /// not awaited.
    fn send_mute(&mut self, nick: &str, media: crate::xmpp::av_moderation::MediaType, actor: Option<&str>) {
        let id = self.new_id();
        let iq = Element::new("iq", ns::CLIENT)
            .attr("type", "set")
            .attr("id", id)
            .attr("to", self.room.with_resource(nick).to_string())
            .child(Element::new("mute", media.mute_ns()).attr_opt("actor", actor).text("true"));
        self.send(iq);
    }

    /// A message from a discovered component.
    fn on_component(&mut self, m: ComponentMessage) {
        match m {
            ComponentMessage::AvModeration(m) => self.on_av_moderation(&m),
            ComponentMessage::RoomMetadata(md) => {
                if let Some(a) = md.start_muted_audio {
                    self.metadata_start_muted.0 = a;
                }
                if let Some(v) = md.start_muted_video {
                    self.metadata_start_muted.1 = v;
                }
                debug!("conference {}: room metadata: start muted {:?}, lobby {}", self.room, self.metadata_start_muted, md.lobby_enabled);
            }
        }
    }

    /// AV moderation (moderation.md §1.3): state, and on a false→true transition of a
    /// media type, every participant but the actor and the exempt is force-muted at the
    /// bridge as `bridge_flags` says and sent a mute IQ (moderators included).
    fn on_av_moderation(&mut self, m: &crate::xmpp::av_moderation::AvModerationMessage) {
        use crate::xmpp::av_moderation::MediaType;
        let Some(on) = self.av.apply(m) else { return };
        info!("conference {}: AV moderation of {} enabled by {:?}", self.room, on.media.as_str(), on.actor);
        let targets: Vec<Nick> = self
            .occupants
            .iter()
            .filter(|o| !o.mute_exempt())
            .map(|o| o.nick.clone())
            .filter(|n| self.is_participant(n.as_str()))
            .filter(|n| on.actor.as_deref() != Some(self.room.with_resource(n.as_str()).to_string().as_str()))
            .collect();
        for nick in targets {
            let (a, v) = self.av.bridge_flags(&self.room.with_resource(nick.as_str()).to_string());
            match on.media {
                MediaType::Audio => self.bridge_force_mute(&nick, "audio", a),
                MediaType::Video | MediaType::Desktop => self.bridge_force_mute(&nick, "video", v),
            }
            self.send_mute(nick.as_str(), on.media, None);
        }
    }
}
