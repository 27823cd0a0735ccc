//! The focus: the [`Router`] that runs on the event loop thread and the service-level
//! IQs it answers itself (disco, ping, the conference request, login-url, logout).
//!
//! Stanzas arrive classified (`xmpp::incoming::Incoming`, made where the network layer
//! parses them) and are routed by variant: presences by their room, IQ answers through
//! the pending table, IQ requests by sender and kind; only what is no hot kind
//! (`Incoming::Other`) is looked at as a tree. Routing, never blocking:
//! - IQ answers go where the [`PendingTable`](crate::messages::pending::PendingTable) says (a conference or the
//!   bridge registry), only when they come from the JID the request went to; forged
//!   ones are dropped (logged once per interval) and leave the entry for the real answer;
//! - stanzas from a room with a conference (presence, IQs from occupants) go to it;
//! - conference requests start a conference thread or are forwarded to the running one;
//!   only rooms on the conference MUC service are served ([`request::RoomServices`]), and
//!   new conferences are limited in number and per minute ([`limits`]): refusals get
//!   `resource-constraint` (type wait) and are logged once per interval per kind;
//! - presences from the Jibri and Jigasi breweries update their registries
//!   (`Shared::jibri`, `Shared::jigasi`); a Jibri leaving while serving a session is
//!   reported to that session's conference; a `<jibri>` status IQ is answered and passed
//!   to the conference whose session the sending Jibri serves, anything else gets
//!   `item-not-found`;
//! - conference requests are authenticated by the configured authority ([`auth`]: the
//!   secure domain or Jicofo's JWT authority), which also answers login-url and logout;
//!   when a conference ends without a successor, the JWT authority's sessions made for
//!   its room are dropped;
//! - an IQ request nobody handles gets `service-unavailable`;
//! - after every connect the domain is asked (disco#info) for the Jitsi components
//!   (moderation.md §0); their `<json-message>`s go to the conference they name, only from
//!   exactly the discovered addresses (others are ignored and counted); rooms on the
//!   discovered breakout service are admitted and need no authentication.
//!
//! In client-only mode (no component secret, [`crate::config::Mode::ClientOnly`]) there is
//! only the client connection: conference, login-url and logout IQs arrive on it through
//! the `client_proxy` (`from='<proxy>/<sender's full JID>'`), the real sender is taken from
//! that resource, answers go back to the proxy's JID, and a directed presence after every
//! (re)connect tells the proxy which resource to forward to.
//!
//! A conference's inbox holds at most `INBOX_CAPACITY` unprocessed messages and 8 MiB
//! of them, all inboxes together 256 MiB (see [`inbox`]); when it is full the sender of an IQ gets `resource-constraint` (type wait)
//! and presences are held, the latest per occupant, until there is room (never lost).
//! The route of a conference is removed only when its thread reports `Ended`; whatever
//! is still in its inbox is then replayed: a conference request that raced with the end
//! starts a fresh conference.

#[cfg(test)]
mod component_tests;
pub mod connections;
pub mod limits;

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{unbounded, Receiver, Sender, TryRecvError};
use log::{debug, info, warn};
use parking_lot::Mutex;

use crate::conference::env::spawn as spawn_conference;
use crate::conference::{Params, Shared};
use crate::messages::{BridgeEvent, ConferenceAnswer, Control, Inbox, PendingReply, Refusal, ReplyTarget};
use crate::config::{Config, Mode};
use crate::ids::ConferenceId;
use crate::jid::Jid;
use crate::net::{ConnId, NetHandle, Outbox, Router};
use crate::xml::Element;
use crate::xmpp::ns;
use crate::xmpp::incoming::Incoming;
use crate::xmpp::presence::Presence;
use crate::xmpp::stanza::{is_answerable, iq_error, iq_result, Envelope, ErrorCondition, ErrorReply, IqHead, IqType};

use crate::bridge::Bridges;
use crate::metrics::Metrics;
use std::sync::atomic::Ordering;
use crate::auth::{AuthResult, Sessions};
use crate::messages::inbox::{self, Held, Offered, Route};
use crate::log_throttle::{LogThrottle, LogThrottles};
use limits::{IqRateLimiter, IqVerdict, NewRoomLimiter, RoomRefusal};
use crate::messages::pending::{Answer, Destination, PendingTable};
use crate::xmpp::conference_iq::{self as request, ConferenceReply, ConferenceRequest, RequestError, RoomServices};

/// The client connection (always there; the first of [`connections::connection_specs`]).
pub const CLIENT: ConnId = ConnId(0);
/// The component connection (only with a component secret).
pub const COMPONENT: ConnId = ConnId(1);



/// The focus router.
pub struct FocusRouter {
    cfg: Arc<Config>,
    net: NetHandle,
    shared: Arc<Shared>,
    component_jid: String,
    client_jid: Option<Jid>,
    client_up: bool,
    rooms: HashMap<Jid, Route>,
    by_id: HashMap<ConferenceId, Jid>,
    next_id: u64,
    control_rx: Receiver<Control>,
    control_tx: Sender<Control>,
    finished: Vec<JoinHandle<()>>,
    stopping: bool,
    /// Forged IQ answers, logged once per interval.
    forged_log: LogThrottle,
    /// The MUC services conferences may be created on.
    room_services: RoomServices,
    /// New rooms per requester and in all.
    new_rooms: NewRoomLimiter,
    /// Refusals, logged once per interval per kind.
    refusal_logs: LogThrottles,
    iq_limiter: IqRateLimiter,
    /// Rooms whose conference has presences held back (delivered in `tick`).
    holding: std::collections::HashSet<Jid>,
    /// Bytes waiting in every conference inbox (see [`inbox::InboxLoad`]).
    inbox_total: Arc<std::sync::atomic::AtomicUsize>,
    /// The Jitsi Prosody components discovered on the domain (moderation.md §0).
    components: crate::xmpp::components::Components,
}

/// While presences are held for a full inbox, `tick` runs at least this often.
const HOLD_RETRY: std::time::Duration = std::time::Duration::from_millis(10);

/// Why a conference was not started.
#[derive(Debug)]
pub enum StartError {
    /// The room is not one the focus serves.
    Room(RequestError),
    /// `--max_conferences` conferences are running.
    TooManyConferences(usize),
    /// The thread could not be started.
    Thread(std::io::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Room(e) => write!(f, "{}", e),
            StartError::TooManyConferences(n) => write!(f, "{} conferences are running (--max_conferences)", n),
            StartError::Thread(e) => write!(f, "cannot start a conference thread: {}", e),
        }
    }
}

impl std::error::Error for StartError {}

impl StartError {
    /// The answer to the request that could not start a conference.
    fn answer(&self) -> ConferenceAnswer {
        match self {
            StartError::Room(e) => ConferenceAnswer::BadRequest(e.to_string()),
            StartError::TooManyConferences(_) => ConferenceAnswer::Refused(Refusal::TooManyConferences),
            StartError::Thread(_) => ConferenceAnswer::Refused(Refusal::CannotStart),
        }
    }
}

/// Entries of the pending table this long past their deadline are dropped by the router
/// (their requester normally gives up at the deadline and removes them itself).
const PENDING_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

impl FocusRouter {
    /// A router for `cfg`; `net` is the handle of the loop it will run on.
    pub fn new(cfg: Arc<Config>, net: NetHandle) -> FocusRouter {
        // Unbounded: its senders are the conference threads (one `Ended` each), the HTTP
        // thread (one request at a time) and shutdown. (A bounded crossbeam channel
        // allocates and touches its whole capacity up front.)
        let (control_tx, control_rx) = unbounded();
        let sessions = cfg.authority.as_ref().map(|a| Arc::new(Mutex::new(Sessions::for_authority(a))));
        let shared = Arc::new(Shared {
            client: CLIENT,
            nick: cfg.user_name.clone(),
            focus_jid: cfg.focus_bare_jid(),
            sessions,
            caps_cache: Mutex::new(crate::xmpp::caps::CapsCache::new()),
            bridges: Arc::new(Mutex::new(Bridges::new())),
            metrics: Arc::new(Metrics::with_mode(cfg.mode())),
            focus_full: Mutex::new(None),
            control: Some(control_tx.clone()),
            pending: Mutex::new(PendingTable::new()),
            limits: cfg.limits,
            jibri: Arc::new(crate::jibri::Jibris::new(cfg.jibri_muc.clone(), cfg.jibri_sip_muc.clone(), cfg.jibri_session)),
            jigasi: Arc::new(crate::jigasi::Jigasis::new(cfg.jigasi_muc.clone())),
            trusted_domains: cfg.trusted_domains.clone(),
            moderation: cfg.moderation,
            breakouts: Default::default(),
        });
        shared.metrics.set_gateways(gateway_source(shared.jibri.clone(), shared.jigasi.clone()));
        FocusRouter {
            component_jid: cfg.component_jid(),
            room_services: RoomServices::new(&cfg.conference_muc).except(&cfg.bridge_muc),
            new_rooms: NewRoomLimiter::new(&cfg.limits),
            iq_limiter: IqRateLimiter::new(&cfg.limits, Instant::now()),
            cfg,
            net,
            shared,
            client_jid: None,
            client_up: false,
            rooms: HashMap::new(),
            by_id: HashMap::new(),
            next_id: 0,
            control_rx,
            control_tx,
            finished: Vec::new(),
            stopping: false,
            forged_log: LogThrottle::default(),
            refusal_logs: LogThrottles::default(),

            holding: std::collections::HashSet::new(),
            inbox_total: Arc::default(),
            components: Default::default(),
        }
    }

    /// Shared counters.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.shared.metrics.clone()
    }

    /// Number of running conferences.
    pub fn conference_count(&self) -> usize {
        self.rooms.len()
    }

    /// Is `jid` the client_proxy component (its bare domain JID)?
    fn is_client_proxy(&self, jid: &Jid) -> bool {
        jid.local().is_none() && jid.domain().eq_ignore_ascii_case(&self.cfg.client_proxy)
    }

    fn is_for_us(&self, to: Option<&str>) -> bool {
        let Some(to) = to else { return true };
        let Ok(j) = Jid::parse(to) else { return false };
        if j.to_string() == self.component_jid || j.domain() == self.component_jid && j.local().is_none() {
            return true;
        }
        j.bare().to_string() == self.shared.focus_jid
    }

    fn on_iq_request(&mut self, conn: ConnId, st: Incoming, now: Instant, out: &mut Outbox) {
        // IQs from occupants of a room we manage go to that room's conference.
        if conn == CLIENT {
            if let Some(room) = st.get_attr("from").and_then(|f| Jid::parse(f).ok()).map(|j| j.bare()) {
                if self.rooms.contains_key(&room) {
                    return self.forward(conn, &room, Inbox::Stanza(st), out);
                }
            }
        }
        let st = match st {
            Incoming::Other(iq) if conn == CLIENT && iq.get_child("jibri", crate::xmpp::jibri::NS).is_some() => {
                return self.on_jibri_status(iq, now, out)
            }
            st => st,
        };
        let Some(env) = st.envelope() else { return };
        if !self.is_for_us(env.envelope_attr("to")) {
            if self.service_answer(now) {
                out.send(conn, iq_error(env, ErrorCondition::ServiceUnavailable, None));
            }
            return;
        }
        let iq = match &st {
            Incoming::Ping(head) => {
                if self.service_answer(now) {
                    out.send(conn, iq_result(head))
                }
                return;
            }
            Incoming::Conference(c) => return self.on_conference_request(ReplyTarget::Xmpp(conn), &c.head, &c.fields, now, out),
            Incoming::Other(iq) => iq,
            // A Jingle request not from an occupant: nothing the focus serves.
            other => {
                if let (true, Some(env)) = (self.service_answer(now), other.envelope()) {
                    out.send(conn, iq_error(env, ErrorCondition::ServiceUnavailable, None))
                }
                return;
            }
        };
        let Some(payload) = iq.first_element() else {
            if self.service_answer(now) {
                out.send(conn, iq_error(iq, ErrorCondition::BadRequest, Some("empty IQ")));
            }
            return;
        };
        let typ = iq.get_attr("type").unwrap_or("");
        match (typ, payload.name.as_str(), payload.ns.as_str()) {
            ("get", "query", ns::DISCO_INFO) => {
                if self.service_answer(now) {
                    out.send(conn, crate::xmpp::disco::info_answer(iq));
                }
            }
            ("get", "ping", ns::PING) => {
                if self.service_answer(now) {
                    out.send(conn, iq_result(iq))
                }
            }
            ("set", "conference", ns::FOCUS) => {
                let head = crate::xmpp::stanza::IqHead::of(iq);
                let fields = request::RequestFields::from_element(payload);
                if let Some(head) = head {
                    self.on_conference_request(ReplyTarget::Xmpp(conn), &head, &fields, now, out)
                }
            }
            ("get", "login-url", ns::FOCUS) => self.on_login_url(conn, iq, payload, out),
            ("set", "mute", n) if crate::xmpp::av_moderation::MediaType::from_mute_ns(n).is_some() => {
                // Not from a room with a conference (moderation.md §2 row 2; row 1 first).
                if self.service_answer(now) {
                    let r = match crate::xmpp::mute::MuteRequest::parse(iq) {
                        Some(Err(t)) => iq_error(iq, ErrorCondition::BadRequest, Some(t)),
                        _ => {
                            let why = crate::moderation::mute_rules::MuteRefusal::NoConference;
                            iq_error(iq, why.condition(), Some(why.text()))
                        }
                    };
                    out.send(conn, r);
                }
            }
            ("set", "logout", ns::FOCUS) => self.on_logout(conn, iq, payload, out),
            _ => {
                if self.service_answer(now) {
                    out.send(conn, iq_error(iq, ErrorCondition::ServiceUnavailable, None))
                }
            }
        }
    }

    /// Is this IQ request within its sender's rate (`--max_iq_per_second`)? When it is
    /// not, the sender gets a short `resource-constraint` (within the router's global
    /// answer budget), so a flood costs its sender and not everyone's stream. The server
    /// itself (no `from`, or a bare domain of ours) is never limited.
    fn iq_rate_admits(&mut self, conn: ConnId, iq: &dyn Envelope, now: Instant, out: &mut Outbox) -> bool {
        let Some(from) = iq.envelope_attr("from") else { return true };
        if self.own_jid(conn).is_some_and(|j| from == j.domain()) || from == self.cfg.domain {
            return true;
        }
        if self.iq_limiter.check(from, now) == IqVerdict::Admit {
            return true;
        }
        Metrics::inc(&self.shared.metrics.limits.iq_rate);
        if let Some(n) = self.refusal_logs.hit("iq_rate", now) {
            warn!("IQ requests from {:.128} over --max_iq_per_second; refusing ({} more since the last line)", from, n);
        }
        if self.iq_limiter.refusal_answer(now) {
            out.send(conn, iq_error(iq, ErrorCondition::ResourceConstraint, None));
        }
        false
    }

    /// May the router answer one more IQ itself? Past the global budget the request is
    /// dropped unanswered (and counted).
    fn service_answer(&mut self, now: Instant) -> bool {
        let ok = self.iq_limiter.service_answer(now);
        if !ok {
            Metrics::inc(&self.shared.metrics.limits.iq_rate);
        }
        ok
    }

    /// The real sender: the resource of `<client_proxy>/<full JID>` for a request a
    /// client_proxy forwarded (only Prosody's proxy component can send from its JID).
    fn real_sender(&self, iq: &dyn Envelope) -> Option<Jid> {
        let from = Jid::parse(iq.envelope_attr("from")?).ok()?;
        if from.local().is_none() && from.domain().eq_ignore_ascii_case(&self.cfg.client_proxy) {
            if let Some(inner) = from.resource().and_then(|r| Jid::parse(r).ok()) {
                return Some(inner);
            }
        }
        Some(from)
    }

    /// Count a refusal of `kind` and log it, at most once per interval per kind.
    fn refused(&mut self, kind: &'static str, counter: &std::sync::atomic::AtomicU64, detail: &dyn std::fmt::Display, now: Instant) {
        Metrics::inc(counter);
        if let Some(n) = self.refusal_logs.hit(kind, now) {
            warn!("refused a conference request ({}): {} ({} more refusals of this kind since the last line)", kind, detail, n);
        }
    }

    fn on_conference_request(&mut self, target: ReplyTarget, iq: &IqHead, fields: &request::RequestFields, now: Instant, out: &mut Outbox) {
        let metrics = self.shared.metrics.clone();
        Metrics::inc(&metrics.conference_requests);
        let req = match ConferenceRequest::from_fields(fields).and_then(|r| self.room_services.admit(&r.room).map(|_| r)) {
            Ok(r) => r,
            Err(e) => {
                if !matches!(e, RequestError::NoRoom) {
                    self.refused("bad room", &metrics.limits.bad_room, &e, now);
                }
                send_reply(&target, out, iq, ConferenceAnswer::BadRequest(e.to_string()));
                return;
            }
        };
        let exists = self.rooms.contains_key(&req.room);
        if !exists {
            Metrics::inc(&metrics.conference_requests_new);
        }
        if self.stopping && !exists {
            send_reply(&target, out, iq, ConferenceAnswer::ShuttingDown);
            return;
        }
        let sender = self.real_sender(iq);
        let mut reply = ConferenceReply {
            room: req.room.to_string(),
            ready: false,
            focus_jid: self.shared.focus_jid.clone(),
            ..Default::default()
        };
        // Breakout rooms, and main rooms people return to from them, need no
        // authentication (moderation.md §3).
        let auth_exempt = self.is_breakout_room(&req.room) || self.shared.breakouts.lock().has_breakouts(&req.room);
        let external = self.shared.sessions.as_ref().is_some_and(|s| s.lock().kind().is_external());
        if let (Some(_), true) = (&self.shared.sessions, auth_exempt) {
            reply.properties.push(("authentication".into(), "true".into()));
            reply.properties.push(("externalAuth".into(), external.to_string()));
        } else if let Some(sessions) = &self.shared.sessions {
            let Some(sender) = sender.clone() else {
                send_reply(&target, out, iq, ConferenceAnswer::BadRequest("no sender".into()));
                return;
            };
            let res = sessions.lock().authenticate(&sender, req.session_id.as_deref(), req.machine_uid.as_deref(), &req.room, now);
            match res {
                AuthResult::InvalidSession => {
                    send_reply(&target, out, iq, ConferenceAnswer::SessionInvalid);
                    return;
                }
                AuthResult::MachineUidMismatch => {
                    send_reply(&target, out, iq, ConferenceAnswer::NotAcceptable("machine UID mismatch or empty".into()));
                    return;
                }
                AuthResult::MissingMachineUid => {
                    let t = "Missing mandatory attribute 'machine-uid'";
                    send_reply(&target, out, iq, ConferenceAnswer::NotAcceptable(t.into()));
                    return;
                }
                AuthResult::Guest => {
                    if !exists {
                        send_reply(&target, out, iq, ConferenceAnswer::NotAuthorized("not authorized user domain".into()));
                        return;
                    }
                }
                AuthResult::Authenticated { identity, session_id } => {
                    reply.identity = Some(identity.to_string());
                    reply.session_id = Some(session_id);
                }
            }
            reply.properties.push(("authentication".into(), "true".into()));
            reply.properties.push(("externalAuth".into(), external.to_string()));
        } else {
            reply.properties.push(("authentication".into(), "false".into()));
        }
        if let Some(b) = &self.shared.jigasi.brewery {
            // Jicofo says true whenever a brewery is configured; we say whether a
            // SIP-capable Jigasi is there now, so clients do not offer a dead button.
            reply.properties.push(("sipGatewayEnabled".into(), b.lock().supports(false).to_string()));
        }
        if !exists {
            let limits = self.shared.limits;
            if self.rooms.len() >= limits.max_conferences {
                let e = StartError::TooManyConferences(self.rooms.len());
                self.refused("max_conferences", &metrics.limits.max_conferences, &e, now);
                send_reply(&target, out, iq, e.answer());
                return;
            }
            if let Err(why) = self.new_rooms.admit(sender.as_ref(), now) {
                let (kind, counter, text) = match why {
                    RoomRefusal::Requester => (
                        "max_new_rooms_per_minute",
                        &metrics.limits.new_rooms_per_requester,
                        format!("{} created {} rooms in the last minute", sender.as_ref().map(|j| j.bare().to_string()).unwrap_or_default(), limits.new_rooms_per_minute),
                    ),
                    RoomRefusal::Total => (
                        "max_new_rooms_total_per_minute",
                        &metrics.limits.new_rooms_total,
                        format!("{} rooms were created in the last minute", limits.new_rooms_total_per_minute),
                    ),
                };
                self.refused(kind, counter, &text, now);
                send_reply(&target, out, iq, ConferenceAnswer::Refused(Refusal::TooManyNewRooms));
                return;
            }
        }
        let pending = PendingReply { target: target.clone(), iq: fields.slim_iq(iq), reply, requester: sender };
        if !exists {
            if let Err(e) = self.start_conference(&req, None) {
                warn!("conference {}: not started: {}", req.room, e);
                send_reply(&target, out, iq, e.answer());
                return;
            }
        }
        self.forward(CLIENT, &req.room.clone(), Inbox::Request(pending), out);
    }

    /// Start the conference of `req.room`. Every conference starts here, so this is where
    /// the room's service and the number of conferences are checked, whatever the path.
    fn start_conference(&mut self, req: &ConferenceRequest, previous: Option<JoinHandle<()>>) -> Result<(), StartError> {
        self.room_services.admit(&req.room).map_err(StartError::Room)?;
        if self.rooms.len() >= self.shared.limits.max_conferences {
            return Err(StartError::TooManyConferences(self.rooms.len()));
        }
        self.next_id += 1;
        let id = ConferenceId(self.next_id);
        // Unbounded, so that memory follows what is queued; INBOX_CAPACITY is enforced in
        // `forward`. A bounded crossbeam channel allocates and initialises every slot up
        // front: 4096 × 248 bytes = 1 MB of RSS per conference, 200 MB for 200 rooms.
        let (tx, rx) = unbounded();
        let load = Arc::new(crate::messages::InboxLoad::new(self.inbox_total.clone()));
        let params = Params {
            id,
            room: req.room.clone(),
            shared: self.shared.clone(),
            start_audio_muted: req.int_property("startAudioMuted"),
            start_video_muted: req.int_property("startVideoMuted"),
        };
        let handle = spawn_conference(params, self.net.clone(), rx.clone(), load.clone(), self.control_tx.clone(), previous)
            .map_err(StartError::Thread)?;
        info!("conference {}: created (thread conf-{})", req.room, id);
        self.shared.metrics.conference_started(id, &req.room.to_string());
        let hold_cap = self.shared.limits.max_participants + inbox::HOLD_SLACK;
        let route = Route::new(id, tx, rx, Some(handle), load, hold_cap);
        if !self.client_up {
            route.push(Inbox::Connection(false));
        }
        self.rooms.insert(req.room.clone(), route);
        self.by_id.insert(id, req.room.clone());
        Ok(())
    }

    /// Hand `msg` to the conference of `room` without blocking, within its inbox's
    /// capacity: when full, presences are held and requests refused.
    fn forward(&mut self, conn: ConnId, room: &Jid, msg: Inbox, out: &mut Outbox) {
        let Some(route) = self.rooms.get_mut(room) else { return };
        let limits = &self.shared.metrics.limits;
        match route.offer(msg) {
            Offered::Delivered => {}
            Offered::Held(h) => {
                self.holding.insert(room.clone());
                match h {
                    Held::New => {}
                    Held::Coalesced(n) => {
                        limits.presences_coalesced.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Held::Dropped => {
                        Metrics::inc(&limits.presences_dropped);
                        if let Some(n) = route.busy_log.hit(Instant::now()) {
                            warn!("conference {}: inbox and held presences full; a presence update was dropped ({} more events)", room, n);
                        }
                    }
                }
            }
            Offered::HeldComponent(h) => {
                self.holding.insert(room.clone());
                if h == Held::Dropped {
                    Metrics::inc(&self.shared.metrics.component_messages_dropped);
                    if let Some(n) = route.busy_log.hit(Instant::now()) {
                        warn!("conference {}: inbox and held component messages full; the oldest was dropped ({} more events)", room, n);
                    }
                }
            }
            Offered::Refused(m) => {
                Metrics::inc(&limits.inbox_full);
                if let Some(n) = route.busy_log.hit(Instant::now()) {
                    warn!("conference {}: inbox full ({} queued), refusing requests ({} more since the last line)", room, route.queued(), n);
                }
                match m {
                    Inbox::Stanza(st) if st.is_iq_request() => {
                        if let Some(env) = st.envelope() {
                            out.send(conn, Refusal::ConferenceBusy.reply_to(env))
                        }
                    }
                    Inbox::Request(p) => send_reply(&p.target, out, &p.iq, ConferenceAnswer::Refused(Refusal::ConferenceBusy)),
                    _ => {}
                }
            }
        }
    }

    /// Deliver held presences to conferences whose inbox has room again.
    fn flush_held(&mut self) {
        let rooms = &mut self.rooms;
        self.holding.retain(|room| rooms.get_mut(room).is_some_and(|r| !r.flush()));
    }

    fn on_login_url(&mut self, conn: ConnId, iq: &Element, el: &Element, out: &mut Outbox) {
        let Some(kind) = self.shared.sessions.as_ref().map(|s| s.lock().kind()) else {
            out.send(conn, iq_error(iq, ErrorCondition::ServiceUnavailable, None));
            return;
        };
        let Some(room) = el.get_attr("room").and_then(|r| request::parse_room(r).ok()) else {
            out.send(conn, iq_error(iq, ErrorCondition::NotAcceptable, Some("missing or invalid 'room'")));
            return;
        };
        if let Err(e) = self.room_services.admit(&room) {
            out.send(conn, iq_error(iq, ErrorCondition::NotAcceptable, Some(&e.to_string())));
            return;
        }
        if el.get_attr("machine-uid").is_none_or(|m| m.trim().is_empty()) {
            out.send(conn, iq_error(iq, ErrorCondition::BadRequest, Some("missing mandatory attribute 'machineUID'")));
            return;
        }
        // Under the JWT authority the client makes its login URL itself (moderation.md §5 C).
        if kind.is_external() {
            out.send(conn, iq_result(iq).child(Element::new("login-url", ns::FOCUS)));
            return;
        }
        let url = format!("./{}?login=true", room.local().unwrap_or_default());
        let enc: String = url
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => (b as char).to_string(),
                b' ' => "+".to_string(),
                _ => format!("%{:02X}", b),
            })
            .collect();
        out.send(conn, iq_result(iq).child(Element::new("login-url", ns::FOCUS).attr("url", enc)));
    }

    fn on_logout(&mut self, conn: ConnId, iq: &Element, el: &Element, out: &mut Outbox) {
        let Some(sessions) = &self.shared.sessions else {
            out.send(conn, iq_error(iq, ErrorCondition::ServiceUnavailable, None));
            return;
        };
        let sid = el.get_attr("session-id").unwrap_or("");
        if sessions.lock().logout(sid) {
            out.send(conn, iq_result(iq).child(Element::new("logout", ns::FOCUS)));
        } else {
            let err = ErrorReply::new(ErrorCondition::NotAcceptable)
                .text("invalid session")
                .extra(Element::new("session-invalid", ns::FOCUS))
                .reply_to(iq);
            out.send(conn, err);
        }
    }

    /// Our own JID on `conn` (whom the server answers for).
    fn own_jid(&self, conn: ConnId) -> Option<Jid> {
        if conn == CLIENT {
            self.client_jid.clone()
        } else {
            Jid::parse(&self.component_jid).ok()
        }
    }

    /// An IQ `result` or `error`: to whoever the pending table says, if it is genuine.
    fn on_iq_answer(&mut self, conn: ConnId, st: Incoming, now: Instant) {
        let id = st.get_attr("id").unwrap_or_default();
        let from = match st.get_attr("from").map(Jid::parse) {
            None => None,
            Some(Ok(j)) => Some(j),
            Some(Err(_)) => {
                debug!("answer {:?} with an invalid 'from' dropped", id);
                return;
            }
        };
        let own = self.own_jid(conn);
        let verdict = self.shared.pending.lock().answer(conn, id, from.as_ref(), own.as_ref());
        match verdict {
            Answer::Deliver(Destination::Bridges) => {
                let events = self.shared.bridges.lock().on_health_reply(&st, now);
                self.broadcast_bridge_events(events);
            }
            Answer::Deliver(Destination::Router) => self.on_components(&st.into_element()),
            Answer::Deliver(Destination::Conference(cid)) => match self.by_id.get(&cid).cloned() {
                Some(room) => self.deliver_answer(&room, st),
                None => debug!("answer {} for a conference that has ended", id),
            },
            Answer::Forged { dest, expected } => {
                Metrics::inc(&self.shared.metrics.forged_answers);
                if let Some(n) = self.forged_log.hit(now) {
                    warn!(
                        "dropped a forged answer to our request {} ({:?}): from {:?}, sent to {:?} ({} more since the last line)",
                        id,
                        dest,
                        st.get_attr("from"),
                        expected.map(|j| j.to_string()),
                        n
                    );
                }
            }
            Answer::Unknown => debug!("answer to an unknown request: {:?}", st.get_attr("id")),
        }
    }

    /// Hand the answer to one of its requests to a conference. Answers are never refused
    /// for a full inbox: they are bounded by the conference's entries in the pending table.
    fn deliver_answer(&mut self, room: &Jid, st: Incoming) {
        if let Some(route) = self.rooms.get(room) {
            route.push(Inbox::Stanza(st));
        }
    }

    fn on_control(&mut self, c: Control, out: &mut Outbox) {
        match c {
            Control::Ended { id, reason } => {
                let Some(room) = self.by_id.remove(&id) else { return };
                let Some(mut route) = self.rooms.remove(&room) else { return };
                if route.id != id {
                    self.rooms.insert(room.clone(), route);
                    return;
                }
                debug!("conference {}: thread ended ({:?})", room, reason);
                self.shared.jibri.unbind_conference(id);
                self.shared.metrics.conference_ended(id);
                self.shared.pending.lock().remove_destination(Destination::Conference(id));
                let handle = route.handle.take();
                // Replay what raced with the end: a request starts a fresh conference.
                let mut leftovers = Vec::new();
                while let Ok(m) = route.rx.try_recv() {
                    leftovers.push(m);
                }
                // Held presences came after everything in the channel.
                leftovers.extend(route.held.drain().into_iter().map(|p| Inbox::Stanza(Incoming::Presence(Box::new(p)))));
                self.holding.remove(&room);
                // What the conference did not take leaves the byte budget (and the
                // leftovers count again where they go).
                route.load.release();
                drop(route);
                let mut previous = handle;
                for m in leftovers {
                    match m {
                        Inbox::Request(p) => {
                            if !self.rooms.contains_key(&room) && !self.stopping {
                                let conf = p.iq.get_child("conference", ns::FOCUS).cloned();
                                let req = conf.and_then(|c| ConferenceRequest::parse(&c).ok());
                                if let Some(req) = req {
                                    info!("conference {}: request arrived while ending; starting fresh", room);
                                    if let Err(e) = self.start_conference(&req, previous.take()) {
                                        warn!("conference {}: not started again: {}", room, e);
                                        send_reply(&p.target, out, &p.iq, e.answer());
                                        continue;
                                    }
                                }
                            }
                            self.forward(CLIENT, &room, Inbox::Request(p), out);
                        }
                        Inbox::Stanza(st) if self.rooms.contains_key(&room) => {
                            self.forward(CLIENT, &room, Inbox::Stanza(st), out)
                        }
                        Inbox::Stanza(st) if st.is_iq_request() => {
                            if let Some(env) = st.envelope() {
                                out.send(CLIENT, iq_error(env, ErrorCondition::ItemNotFound, Some("the conference has ended")));
                            }
                        }
                        _ => {}
                    }
                }
                if let Some(h) = previous {
                    self.finished.push(h);
                }
                // Without auto-login (the JWT authority) the sessions made for this room end
                // with its conference, unless a request that raced the end started it again.
                if !self.rooms.contains_key(&room) {
                    if let Some(sessions) = &self.shared.sessions {
                        let n = sessions.lock().conference_ended(&room);
                        if n > 0 {
                            info!("conference {}: ended; {} authentication session(s) made for it dropped", room, n);
                        }
                    }
                }
            }
            Control::BridgeEvents(events) => self.broadcast_bridge_events(events),
            Control::Http { request, reply } => {
                // Served as the XMPP request it stands for: the same checks, limits and replay.
                let head = IqHead { ns: ns::CLIENT.into(), typ: IqType::Set, id: Some("http".into()), from: None, to: None };
                self.on_conference_request(ReplyTarget::Channel(reply), &head, &request, Instant::now(), out);
            }
            Control::Shutdown => {
                self.stopping = true;
                for r in self.rooms.values() {
                    r.push(Inbox::Shutdown);
                }
            }
        }
    }

    fn reap(&mut self) {
        let mut i = 0;
        while i < self.finished.len() {
            if self.finished[i].is_finished() {
                let h = self.finished.swap_remove(i);
                let _ = h.join();
            } else {
                i += 1;
            }
        }
    }

    /// The bridges (shared with conferences and the operations API).
    pub fn bridges(&self) -> Arc<Mutex<Bridges>> {
        self.shared.bridges.clone()
    }

    fn broadcast_bridge_events(&mut self, events: Vec<BridgeEvent>) {
        for ev in events {
            for r in self.rooms.values() {
                r.push(Inbox::Bridge(ev.clone()));
            }
        }
    }

    fn brewery_join(&self) -> Element {
        Element::new("presence", ns::CLIENT)
            .attr("to", self.cfg.bridge_muc.with_resource(&self.shared.nick).to_string())
            .child(Element::new("x", ns::MUC))
    }

    /// The Jibri and Jigasi breweries configured.
    fn service_breweries(&self) -> Vec<Jid> {
        let j = &self.shared.jibri;
        let mut v: Vec<Jid> = [&j.recorder, &j.sip].into_iter().flatten().map(|b| b.lock().room().clone()).collect();
        v.extend(self.shared.jigasi.brewery.as_ref().map(|b| b.lock().room().clone()));
        v
    }

    /// A presence from a Jibri or Jigasi brewery (`false`: `room` is none of them). A
    /// Jibri that leaves while serving a session is reported to its conference.
    fn on_service_brewery_presence(&mut self, room: &Jid, el: &Presence, now: Instant, _out: &mut Outbox) -> bool {
        let refused = |el: &Presence| {
            if el.is_error() {
                let cond = el.error.as_ref().map(|e| e.condition_name.clone());
                warn!("cannot join the brewery {}: {}", room, cond.unwrap_or_default());
                true
            } else {
                false
            }
        };
        if let Some(sip) = self.shared.jibri.brewery_of(room) {
            if refused(el) {
                return true;
            }
            let Some(b) = self.shared.jibri.brewery(sip) else { return true };
            let change = b.lock().on_brewery_presence(el, &self.shared.nick, now);
            match change {
                crate::jibri::brewery::BreweryChange::Left(jid) => {
                    info!("Jibri {} left the brewery", jid);
                    if let Some(conf) = self.shared.jibri.bound_to(&jid) {
                        if let Some(r) = self.by_id.get(&conf).and_then(|room| self.rooms.get(room)) {
                            r.push(Inbox::Jibri(crate::messages::JibriNotice::Left(jid)));
                        }
                    }
                }
                crate::jibri::brewery::BreweryChange::Updated(jid) => debug!("Jibri {} status updated", jid),
                crate::jibri::brewery::BreweryChange::Ignored => {
                    if let Some(n) = self.refusal_logs.hit("jibri brewery full", now) {
                        warn!("brewery {}: more than {} Jibris; ignoring the rest ({} more)", room, crate::jibri::brewery::MAX_INSTANCES, n);
                    }
                }
                crate::jibri::brewery::BreweryChange::None => {}
            }
            return true;
        }
        if let Some(b) = self.shared.jigasi.brewery.as_ref().filter(|b| b.lock().room() == room) {
            if !refused(el) {
                b.lock().on_brewery_presence(el, &self.shared.nick);
            }
            return true;
        }
        false
    }

    /// A `<jibri>` IQ not from a conference room: a status update from a Jibri serving
    /// a session (answered with an empty result and passed to its conference), or
    /// `item-not-found` (an unknown Jibri, a session the focus did not start, a forged
    /// sender) (§3.4).
    fn on_jibri_status(&mut self, iq: Element, now: Instant, out: &mut Outbox) {
        let from = iq.get_attr("from").and_then(|f| Jid::parse(f).ok());
        let conf = from.as_ref().filter(|f| self.shared.jibri.brewery_of(&f.bare()).is_some()).and_then(|f| self.shared.jibri.bound_to(f));
        let parsed = iq.get_child("jibri", crate::xmpp::jibri::NS).and_then(|j| crate::xmpp::jibri::JibriIq::try_from(j).ok());
        let route = conf.and_then(|c| self.by_id.get(&c)).and_then(|room| self.rooms.get(room));
        match (iq.get_attr("type"), from, parsed, route) {
            (Some("set"), Some(from), Some(jibri), Some(route)) if jibri.action.is_none() => {
                route.push(Inbox::Jibri(crate::messages::JibriNotice::Status { from, jibri }));
                out.send(CLIENT, iq_result(&iq));
            }
            _ => {
                if let Some(n) = self.refusal_logs.hit("jibri status", now) {
                    warn!(
                        "a Jibri IQ from {:.128} matches no session the focus started: item-not-found ({} more since the last line)",
                        iq.get_attr("from").unwrap_or("?"),
                        n
                    );
                }
                if self.service_answer(now) {
                    out.send(CLIENT, iq_error(&iq, ErrorCondition::ItemNotFound, Some("no such Jibri session")));
                }
            }
        }
    }

    /// Ask the domain which Jitsi components it has (moderation.md §0); after every
    /// (re)connect, as components may have come or gone.
    fn discover_components(&mut self, out: &mut Outbox) {
        let Ok(domain) = Jid::parse(&self.cfg.domain) else { return };
        let deadline = Instant::now() + crate::conference::REPLY_TIMEOUT;
        let id = self.shared.pending.lock().insert(Destination::Router, CLIENT, Some(domain), deadline);
        match id {
            Ok(id) => out.send(CLIENT, crate::xmpp::components::Components::request(&self.cfg.domain).attr("id", id.to_string())),
            Err(e) => warn!("component discovery not sent: {}", e),
        }
    }

    /// The domain's disco#info answer: the component addresses, and the room services
    /// conferences may be created on (the conference MUC, and the breakout rooms' MUC
    /// when there is one).
    fn on_components(&mut self, el: &Element) {
        let c = crate::xmpp::components::Components::from_disco(el);
        let name = |j: &Option<Jid>| j.as_ref().map(|j| j.to_string()).unwrap_or_else(|| "none".into());
        info!(
            "components of {}: av_moderation {}, breakout_rooms {}, room_metadata {}",
            self.cfg.domain,
            name(&c.av_moderation),
            name(&c.breakout_rooms),
            name(&c.room_metadata)
        );
        let mut services = RoomServices::new(&self.cfg.conference_muc).except(&self.cfg.bridge_muc);
        if let Some(b) = &c.breakout_rooms {
            services = services.with(b.domain());
        }
        self.room_services = services;
        self.components = c;
    }

    /// Is `room` on the discovered breakout rooms service?
    fn is_breakout_room(&self, room: &Jid) -> bool {
        self.components.breakout_rooms.as_ref().is_some_and(|b| b.domain() == room.domain())
    }

    /// A `<message>`: from a discovered component (its exact address), its JSON goes to
    /// the conference it names; anything else carrying a `<json-message>` is ignored and
    /// counted (a participant forging a component, or a component not discovered).
    fn on_message(&mut self, el: Element, now: Instant, out: &mut Outbox) {
        use crate::messages::ComponentMessage;
        use crate::xmpp::components::ComponentKind;
        if el.get_attr("type") == Some("error") || el.get_child("json-message", ns::JITMEET).is_none() {
            return;
        }
        let from = el.get_attr("from").and_then(|f| Jid::parse(f).ok());
        let Some(kind) = from.as_ref().and_then(|f| self.components.kind_of(f)) else {
            Metrics::inc(&self.shared.metrics.component_messages_ignored);
            if let Some(n) = self.refusal_logs.hit("component message", now) {
                warn!(
                    "ignored a json-message from {:.128}: not a discovered component ({} more since the last line)",
                    el.get_attr("from").unwrap_or("nobody"),
                    n
                );
            }
            return;
        };
        let parsed = match kind {
            ComponentKind::AvModeration => crate::xmpp::av_moderation::AvModerationMessage::try_from(&el)
                .map(|m| (m.room.clone(), ComponentMessage::AvModeration(m))),
            ComponentKind::RoomMetadata => crate::xmpp::room_metadata::RoomMetadata::try_from(&el).and_then(|m| match m.room.clone() {
                Some(r) => Ok((r, ComponentMessage::RoomMetadata(m))),
                None => Err(crate::xmpp::json_message::ComponentMessageError::BadField("room")),
            }),
        };
        match parsed {
            Ok((room, msg)) => {
                if self.rooms.contains_key(&room) {
                    Metrics::inc(&self.shared.metrics.component_messages);
                    self.forward(CLIENT, &room, Inbox::Component(msg), out);
                }
            }
            Err(e) => {
                Metrics::inc(&self.shared.metrics.component_messages_invalid);
                if let Some(n) = self.refusal_logs.hit("invalid component message", now) {
                    warn!("ignored a message of {:?}: {} ({} more since the last line)", kind, e, n);
                }
            }
        }
    }

    /// An IQ of any kind: answers to the pending table, requests (within their sender's
    /// rate) to a conference or the focus's own services.
    fn on_iq(&mut self, conn: ConnId, st: Incoming, now: Instant, out: &mut Outbox) {
        let Some(env) = st.envelope() else { return };
        if !is_answerable(env) {
            // No answer can echo its id without growing with it; its sender alone waits.
            Metrics::inc(&self.shared.metrics.limits.long_ids);
            if let Some(n) = self.refusal_logs.hit("long id", now) {
                warn!(
                    "dropped an IQ from {:?} unanswered: its id is longer than {} bytes ({} more since the last line)",
                    env.envelope_attr("from").map(|f| crate::xmpp::stanza::clip(f, 100)),
                    crate::xmpp::stanza::MAX_ECHOED_ID,
                    n
                );
            }
            return;
        }
        match st.iq_type() {
            Some(IqType::Get | IqType::Set) => {
                if self.iq_rate_admits(conn, env, now, out) {
                    self.on_iq_request(conn, st, now, out)
                }
            }
            Some(IqType::Result | IqType::Error) => self.on_iq_answer(conn, st, now),
            None => out.send(conn, iq_error(env, ErrorCondition::BadRequest, Some("IQ without a valid type"))),
        }
    }

    /// A presence: from the client_proxy (its refusal), the bridge brewery, a Jibri or
    /// Jigasi brewery, or a room with a conference.
    fn on_presence(&mut self, conn: ConnId, p: Box<Presence>, now: Instant, out: &mut Outbox) {
        let Some(room) = p.from_jid().map(|j| j.bare()) else { return };
        if conn == CLIENT && self.is_client_proxy(&room) {
            if p.is_error() {
                let cond = p.error.as_ref().map(|e| e.condition_name.clone());
                warn!(
                    "the client_proxy {} refused our presence ({}): conference requests cannot reach this focus; \
                     is {} a client_proxy component with target_address = \"{}\" (or is a component secret missing)?",
                    self.cfg.client_proxy,
                    cond.unwrap_or_default(),
                    self.cfg.client_proxy,
                    self.shared.focus_jid
                );
            }
        } else if conn == CLIENT && room == self.cfg.bridge_muc {
            if p.is_error() {
                let cond = p.error.as_ref().map(|e| e.condition_name.clone());
                warn!("cannot join the brewery {}: {}", room, cond.unwrap_or_default());
                return;
            }
            let events = self.shared.bridges.lock().on_brewery_presence(&p, &self.shared.nick, now);
            self.broadcast_bridge_events(events);
        } else if conn == CLIENT && self.on_service_brewery_presence(&room, &p, now, out) {
        } else if conn == CLIENT && self.rooms.contains_key(&room) {
            // Rooms are joined on the client connection: only there can the MUC send
            // their presences.
            self.forward(conn, &room, Inbox::Stanza(Incoming::Presence(p)), out);
        }
    }

    /// The sender of control messages (main uses it to ask for a shutdown).
    pub fn control(&self) -> Sender<Control> {
        self.control_tx.clone()
    }
}

/// The Jibri and Jigasi figures for `/stats` and `/metrics`, read from the breweries.
fn gateway_source(jibri: Arc<crate::jibri::Jibris>, jigasi: Arc<crate::jigasi::Jigasis>) -> crate::metrics::GatewaySource {
    crate::metrics::GatewaySource(Box::new(move || {
        let l = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        let sessions = |c: &crate::jibri::Counters| (l(&c.started), l(&c.failed), l(&c.active));
        crate::metrics::GatewayFigures {
            jibri: jibri.instance_counts(),
            sessions: [sessions(&jibri.recording), sessions(&jibri.sip_calls)],
            jigasi: jigasi.counts(),
            dials: (l(&jigasi.dials), l(&jigasi.dials_answered), l(&jigasi.dials_failed)),
        }
    }))
}

/// A MUC join (`typ` None) or leave presence for `room` as `nick`.
fn muc_presence(room: &Jid, nick: &str, typ: Option<&str>) -> Element {
    let p = Element::new("presence", ns::CLIENT).attr("to", room.with_resource(nick).to_string()).attr_opt("type", typ);
    if typ.is_none() {
        p.child(Element::new("x", ns::MUC))
    } else {
        p
    }
}

/// Answer the conference request `iq` with `a` where `target` says.
fn send_reply<R: Envelope + ?Sized>(target: &ReplyTarget, out: &mut Outbox, iq: &R, a: ConferenceAnswer) {
    if let Some((conn, el)) = target.answer(iq, a) {
        out.send(conn, el);
    }
}

impl Router for FocusRouter {
    fn connected(&mut self, conn: ConnId, jid: &Jid, out: &mut Outbox) {
        if conn == CLIENT {
            if self.cfg.mode() == Mode::ClientOnly {
                // The client_proxy learns which resources of the focus user it may forward
                // to from presence sent to its bare JID. Installers also subscribe it to the
                // focus's presence (the initial broadcast then reaches it); a directed
                // presence works without that subscription. Sent after every (re)connect.
                info!("client-only mode: announcing {} to the client_proxy {}", jid, self.cfg.client_proxy);
                out.send(CLIENT, Element::new("presence", ns::CLIENT).attr("to", self.cfg.client_proxy.clone()));
            }
            info!("joining the bridge brewery {}", self.cfg.bridge_muc);
            out.send(CLIENT, self.brewery_join());
            for room in self.service_breweries() {
                info!("joining the brewery {}", room);
                out.send(CLIENT, muc_presence(&room, &self.shared.nick, None));
            }
            self.discover_components(out);
            self.client_jid = Some(jid.clone());
            *self.shared.focus_full.lock() = Some(jid.to_string());
            self.client_up = true;
            self.shared.metrics.client_up.store(true, Ordering::Relaxed);
            for r in self.rooms.values() {
                r.push(Inbox::Connection(true));
            }
        } else {
            self.shared.metrics.component_up.store(true, Ordering::Relaxed);
        }
    }

    fn reconnected(&mut self, conn: ConnId, _name: &str) {
        let m = &self.shared.metrics;
        Metrics::inc(if conn == CLIENT { &m.client_reconnects } else { &m.component_reconnects });
    }

    fn stanzas_sent(&mut self, n: u64) {
        self.shared.metrics.stanzas_sent.fetch_add(n, Ordering::Relaxed);
    }

    fn disconnected(&mut self, conn: ConnId, _reason: &str, _out: &mut Outbox) {
        let m = &self.shared.metrics;
        let was_up = if conn == CLIENT { self.client_up } else { m.component_up.load(Ordering::Relaxed) };
        if was_up {
            Metrics::inc(&m.xmpp_disconnects);
        }
        if conn == CLIENT {
            self.client_up = false;
            self.shared.metrics.client_up.store(false, Ordering::Relaxed);
            // The brewery is rejoined (and the bridge list rebuilt) after the reconnect;
            // conferences keep their bridge sessions meanwhile.
            let _ = self.shared.bridges.lock().clear();
            // Jibri/Jigasi instances are listed again after the rejoin; sessions keep
            // their Jibri meanwhile.
            for b in [&self.shared.jibri.recorder, &self.shared.jibri.sip].into_iter().flatten() {
                b.lock().clear();
            }
            if let Some(b) = &self.shared.jigasi.brewery {
                b.lock().clear();
            }
            for r in self.rooms.values() {
                r.push(Inbox::Connection(false));
            }
        } else {
            self.shared.metrics.component_up.store(false, Ordering::Relaxed);
        }
    }

    fn stanza(&mut self, conn: ConnId, st: Incoming, out: &mut Outbox) {
        let now = Instant::now();
        match st {
            Incoming::Presence(p) => self.on_presence(conn, p, now, out),
            Incoming::Other(el) if el.name == "message" => {
                if conn == CLIENT {
                    self.on_message(el, now, out)
                }
            }
            Incoming::Other(el) if el.name != "iq" => {}
            iq => self.on_iq(conn, iq, now, out),
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let bridges = if self.client_up { self.shared.bridges.lock().next_deadline() } else { None };
        if self.holding.is_empty() {
            bridges
        } else {
            let t = Instant::now() + HOLD_RETRY;
            Some(bridges.map_or(t, |b| b.min(t)))
        }
    }

    fn tick(&mut self, now: Instant, out: &mut Outbox) {
        if self.client_up {
            let pending = &self.shared.pending;
            let deadline = now + crate::bridge::HEALTH_TIMEOUT;
            let (checks, events) = self.shared.bridges.lock().tick(now, |to| {
                pending.lock().insert(Destination::Bridges, CLIENT, Some(to.clone()), deadline).ok().map(|id| id.to_string())
            });
            for c in checks {
                out.send(CLIENT, c);
            }
            self.broadcast_bridge_events(events);
        }
        if let Some(t) = now.checked_sub(PENDING_GRACE) {
            self.shared.pending.lock().expire(t);
        }
        self.flush_held();
        loop {
            match self.control_rx.try_recv() {
                Ok(c) => self.on_control(c, out),
                Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => break,
            }
        }
        self.reap();
    }

    fn shutting_down(&mut self, out: &mut Outbox) {
        self.stopping = true;
        if self.client_up {
            let leave = Element::new("presence", ns::CLIENT)
                .attr("to", self.cfg.bridge_muc.with_resource(&self.shared.nick).to_string())
                .attr("type", "unavailable");
            out.send(CLIENT, leave);
            for room in self.service_breweries() {
                out.send(CLIENT, muc_presence(&room, &self.shared.nick, Some("unavailable")));
            }
        }
        for r in self.rooms.values() {
            r.push(Inbox::Shutdown);
        }
    }
}

impl Drop for FocusRouter {
    fn drop(&mut self) {
        // Closing the inboxes ends every conference thread; then join them all.
        let mut handles: Vec<JoinHandle<()>> = self.rooms.drain().filter_map(|(_, mut r)| r.handle.take()).collect();
        handles.append(&mut self.finished);
        for h in handles {
            let _ = h.join();
        }
        let _ = &self.cfg;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xmpp::stanza::parse_error;

    /// A router with a component secret and `args` (also for `component_tests`).
    pub(super) fn router(args: &[&str]) -> FocusRouter {
        let mut a: Vec<String> = vec!["--secret=s".into()];
        a.extend(args.iter().map(|s| s.to_string()));
        client_only_router(&a.iter().map(|s| s.as_str()).collect::<Vec<_>>())
    }

    /// A router without a component secret unless `args` has one.
    fn client_only_router(args: &[&str]) -> FocusRouter {
        let mut a: Vec<String> = vec!["--domain=meet.test".into()];
        a.extend(args.iter().map(|s| s.to_string()));
        let cfg = match crate::config::parse(&a, |_| None).unwrap() {
            crate::config::Command::Run(c) => c,
            _ => unreachable!(),
        };
        let (_el, net) = crate::net::EventLoop::new().unwrap();
        FocusRouter::new(Arc::new(cfg), net)
    }

    fn request(from: &str, to: &str, room: &str) -> Element {
        Element::new("iq", ns::CLIENT)
            .attr("type", "set")
            .attr("id", "c1")
            .attr("from", from)
            .attr("to", to)
            .child(Element::new("conference", ns::FOCUS).attr("room", room).attr("machine-uid", "m"))
    }

    fn connected(r: &mut FocusRouter) {
        let mut out = Outbox::default();
        r.connected(CLIENT, &Jid::parse("focus@auth.meet.test/focus").unwrap(), &mut out);
        r.connected(COMPONENT, &Jid::parse("focus.meet.test").unwrap(), &mut out);
        // The domain answers the component discovery: no Jitsi components.
        for (_, e) in out.drain() {
            if e.get_attr("to") == Some("meet.test") && e.get_child("query", ns::DISCO_INFO).is_some() {
                let mut a = iq_result(&e).child(Element::new("query", ns::DISCO_INFO));
                a.set_attr("from", "meet.test");
                r.stanza(CLIENT, Incoming::from(a), &mut out);
            }
        }
    }

    /// A route for conference `id` of `room` with no thread behind it: the test reads its inbox.
    fn fake_route(r: &mut FocusRouter, id: u64, room: &str) -> Receiver<Inbox> {
        let id = ConferenceId(id);
        let room = Jid::parse(room).unwrap();
        let (tx, rx) = unbounded();
        let load = Arc::new(crate::messages::InboxLoad::new(r.inbox_total.clone()));
        r.rooms.insert(room.clone(), Route::new(id, tx, rx.clone(), None, load, 1000 + inbox::HOLD_SLACK));
        r.by_id.insert(id, room);
        rx
    }

    fn answer(id: &str, from: &str, ok: bool) -> Element {
        let iq = Element::new("iq", ns::CLIENT).attr("type", "get").attr("id", id).attr("to", from).attr("from", "focus@auth.meet.test/focus");
        let mut a = if ok { iq_result(&iq) } else { iq_error(&iq, ErrorCondition::InternalServerError, None) };
        a.set_attr("from", from);
        a
    }

    const JVB1: &str = "jvbbrewery@internal.auth.meet.test/jvb1";
    const MALLORY: &str = "room1@conference.meet.test/mallory";

    #[test]
    fn answers_are_routed_by_the_pending_table_and_only_from_the_addressee() {
        let mut r = router(&[]);
        connected(&mut r);
        let inbox = fake_route(&mut r, 5, "room1@conference.meet.test");
        let deadline = Instant::now() + std::time::Duration::from_secs(15);
        let id = r.shared.pending.lock().insert(Destination::Conference(ConferenceId(5)), CLIENT, Some(Jid::parse(JVB1).unwrap()), deadline).unwrap();
        let mut out = Outbox::default();
        // A participant forges the bridge's answer: dropped, counted, entry kept.
        r.stanza(CLIENT, Incoming::from(answer(&id.to_string(), MALLORY, true)), &mut out);
        // The same from the component connection, with the right sender: not it either.
        r.stanza(COMPONENT, Incoming::from(answer(&id.to_string(), JVB1, true)), &mut out);
        assert!(inbox.is_empty());
        assert_eq!(r.shared.metrics.forged_answers.load(Ordering::Relaxed), 2);
        assert_eq!(r.shared.pending.lock().outstanding(Destination::Conference(ConferenceId(5))), 1);
        // The bridge's answer reaches the conference.
        r.stanza(CLIENT, Incoming::from(answer(&id.to_string(), JVB1, true)), &mut out);
        match inbox.try_recv() {
            Ok(Inbox::Stanza(el)) => assert_eq!(el.get_attr("from"), Some(JVB1)),
            other => panic!("{:?}", other),
        }
        // Only once; ids of another shape (the old `c<n>-<m>`) route nowhere.
        r.stanza(CLIENT, Incoming::from(answer(&id.to_string(), JVB1, true)), &mut out);
        r.stanza(CLIENT, Incoming::from(answer("c5-1", JVB1, true)), &mut out);
        assert!(inbox.is_empty());
        assert!(out.drain().is_empty(), "answers are never answered");
    }

    #[test]
    fn a_conference_request_waits_as_a_slim_copy() {
        let mut r = router(&[]);
        connected(&mut r);
        let inbox = fake_route(&mut r, 8, "room1@conference.meet.test");
        let mut out = Outbox::default();
        let mut req = request("u@meet.test/r", "focus.meet.test", "room1@conference.meet.test");
        let conf = req.get_child_mut("conference", ns::FOCUS).unwrap();
        for i in 0..5000 {
            conf.children.push(crate::xml::Node::Element(Element::new("property", ns::FOCUS).attr("name", format!("p{i}")).attr("value", "v")));
        }
        assert!(req.weight() > 500_000);
        r.stanza(COMPONENT, Incoming::from(req), &mut out);
        match inbox.try_recv() {
            Ok(Inbox::Request(p)) => {
                assert!(p.iq.weight() < 4096, "{}", p.iq.weight());
                assert_eq!(p.iq.get_attr("id"), Some("c1"));
            }
            other => panic!("{:?}", other),
        }
    }

    #[test]
    fn room_presences_count_only_on_the_client_connection() {
        let mut r = router(&[]);
        connected(&mut r);
        let inbox = fake_route(&mut r, 6, "room1@conference.meet.test");
        let mut out = Outbox::default();
        let p = Element::new("presence", ns::CLIENT).attr("from", MALLORY).attr("type", "unavailable");
        r.stanza(COMPONENT, Incoming::from(p.clone()), &mut out);
        assert!(inbox.is_empty(), "not from the MUC: the focus is no occupant on the component connection");
        r.stanza(CLIENT, Incoming::from(p), &mut out);
        assert_eq!(inbox.len(), 1);
        assert!(out.drain().is_empty());
    }

    #[test]
    fn an_iq_whose_id_is_too_long_to_echo_is_dropped_unanswered() {
        let mut r = router(&[]);
        connected(&mut r);
        let inbox = fake_route(&mut r, 4, "room1@conference.meet.test");
        let mut out = Outbox::default();
        // Near the stanza cap, an answer echoing this id would be over Prosody's limit.
        let long = "'".repeat(40_000);
        let jingle = Element::new("iq", ns::CLIENT)
            .attr("type", "set")
            .attr("id", long.clone())
            .attr("from", MALLORY)
            .child(Element::new("jingle", ns::JINGLE));
        r.stanza(CLIENT, Incoming::from(jingle), &mut out);
        let mut to_focus = request("u@meet.test/r", "focus.meet.test", "r@conference.meet.test");
        to_focus.set_attr("id", long.clone());
        r.stanza(COMPONENT, Incoming::from(to_focus), &mut out);
        let mut no_type = request("u@meet.test/r", "focus.meet.test", "r@conference.meet.test");
        no_type.set_attr("id", long);
        no_type.remove_attr("type");
        r.stanza(COMPONENT, Incoming::from(no_type), &mut out);
        assert!(out.drain().is_empty(), "nothing answered");
        assert!(inbox.is_empty(), "nothing forwarded");
        assert_eq!(r.conference_count(), 1, "no conference started");
        assert_eq!(r.shared.metrics.limits.long_ids.load(Ordering::Relaxed), 3);
        // An id at the cap is answered as usual.
        let mut ok = request("u@meet.test/r", "focus.meet.test", "bad room");
        ok.set_attr("id", "i".repeat(crate::xmpp::stanza::MAX_ECHOED_ID));
        r.stanza(COMPONENT, Incoming::from(ok), &mut out);
        assert_eq!(out.drain().len(), 1);
    }

    #[test]
    fn a_forged_health_check_error_does_not_fail_the_bridge() {
        let mut r = router(&[]);
        connected(&mut r);
        let mut out = Outbox::default();
        let stats = Element::new("stats", ns::COLIBRI)
            .child(Element::new("stat", ns::COLIBRI).attr("name", "stress_level").attr("value", "0.1"))
            .child(Element::new("stat", ns::COLIBRI).attr("name", "drain").attr("value", "false"));
        r.stanza(CLIENT, Incoming::from(Element::new("presence", ns::CLIENT).attr("from", JVB1).child(stats)), &mut out);
        let now = Instant::now();
        r.tick(now, &mut out);
        let checks: Vec<Element> = out.drain().into_iter().map(|(_, e)| e).filter(|e| e.get_child("healthcheck", ns::HEALTHCHECK).is_some()).collect();
        assert_eq!(checks.len(), 1);
        let id = checks[0].get_attr("id").unwrap().to_string();
        assert!(crate::messages::pending::IqId::parse(&id).is_some(), "a random id: {}", id);
        // Errors from a participant, another brewery occupant and the server: ignored.
        for from in [MALLORY, "jvbbrewery@internal.auth.meet.test/jvb2", "auth.meet.test"] {
            r.stanza(CLIENT, Incoming::from(answer(&id, from, false)), &mut out);
        }
        let jvb1 = Jid::parse(JVB1).unwrap();
        assert!(r.shared.bridges.lock().get(&jvb1).unwrap().is_operational(now), "still in the pool");
        assert_eq!(r.shared.metrics.forged_answers.load(Ordering::Relaxed), 3);
        // The bridge's own error does fail it.
        r.stanza(CLIENT, Incoming::from(answer(&id, JVB1, false)), &mut out);
        assert!(!r.shared.bridges.lock().get(&jvb1).unwrap().is_operational(now));
        assert!(r.shared.pending.lock().is_empty());
    }

    #[test]
    fn an_answer_for_a_finished_conference_goes_nowhere() {
        let mut r = router(&[]);
        connected(&mut r);
        let inbox = fake_route(&mut r, 9, "room9@conference.meet.test");
        let to = Jid::parse("room9@conference.meet.test").unwrap();
        let deadline = Instant::now() + std::time::Duration::from_secs(15);
        let id = r.shared.pending.lock().insert(Destination::Conference(ConferenceId(9)), CLIENT, Some(to), deadline).unwrap();
        let mut out = Outbox::default();
        r.on_control(Control::Ended { id: ConferenceId(9), reason: crate::messages::EndReason::RoomEmpty }, &mut out);
        assert!(r.shared.pending.lock().is_empty(), "the conference's entries left with it");
        r.stanza(CLIENT, Incoming::from(answer(&id.to_string(), "room9@conference.meet.test", true)), &mut out);
        assert!(inbox.is_empty() && out.drain().is_empty());
        assert_eq!(r.conference_count(), 0);
    }

    fn error_of(el: &Element) -> (String, String) {
        let e = parse_error(el).unwrap_or_else(|| panic!("not an error: {}", el.to_xml()));
        (e.condition_name, el.get_child("error", &el.ns).and_then(|x| x.get_attr("type")).unwrap_or_default().to_string())
    }

    /// A conference request over HTTP: the typed answer.
    fn http_answer(r: &mut FocusRouter, room: &str) -> ConferenceAnswer {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let request = crate::xmpp::conference_iq::RequestFields { room: room.into(), ..Default::default() };
        r.on_control(Control::Http { request, reply: tx }, &mut Outbox::default());
        rx.try_recv().expect("answered at once")
    }

    /// The same, written as the IQ it stands for.
    fn http(r: &mut FocusRouter, room: &str) -> Element {
        let iq = crate::xmpp::conference_iq::RequestFields { room: room.into(), ..Default::default() }.to_iq();
        http_answer(r, room).to_iq(&iq)
    }

    #[test]
    fn rooms_on_other_services_or_with_bad_names_are_refused_on_every_path() {
        let mut r = router(&[]);
        let mut out = Outbox::default();
        let long = format!("{}@conference.meet.test", "x".repeat(request::MAX_ROOM_NAME + 1));
        for room in [
            "lobbyroom@lobby.meet.test",
            "jvbbrewery@internal.auth.meet.test",
            "room1@conference.evil.example",
            "room1@breakout.meet.test",
            long.as_str(),
        ] {
            r.stanza(COMPONENT, Incoming::from(request("u@meet.test/r", "focus.meet.test", room)), &mut out);
            let e = out.drain().remove(0).1;
            assert_eq!(error_of(&e).0, "bad-request", "{}", room);
            assert_eq!(error_of(&http(&mut r, room)).0, "bad-request", "HTTP {}", room);
        }
        assert_eq!(r.conference_count(), 0, "no room on another service was joined");
        assert_eq!(r.shared.metrics.limits.bad_room.load(Ordering::Relaxed), 10);
        // The one place every conference starts refuses them too (e.g. a replayed request).
        let req = ConferenceRequest::parse(&Element::new("conference", ns::FOCUS).attr("room", "x@lobby.meet.test")).unwrap();
        assert!(matches!(r.start_conference(&req, None), Err(StartError::Room(RequestError::ForeignService { .. }))));
        // The conference service itself is served, over XMPP and HTTP.
        r.stanza(COMPONENT, Incoming::from(request("u@meet.test/r", "focus.meet.test", "ok@conference.meet.test")), &mut out);
        assert!(out.drain().is_empty());
        assert_eq!(r.conference_count(), 1);
    }

    #[test]
    fn login_url_is_only_given_for_rooms_on_the_conference_service() {
        let mut r = router(&["--auth_domain=meet.test"]);
        let mut out = Outbox::default();
        let lu = |room: &str| {
            Element::new("iq", ns::COMPONENT)
                .attr("type", "get")
                .attr("id", "l")
                .attr("from", "u@meet.test/r")
                .attr("to", "focus.meet.test")
                .child(Element::new("login-url", ns::FOCUS).attr("room", room).attr("machine-uid", "m"))
        };
        r.stanza(COMPONENT, Incoming::from(lu("r@lobby.meet.test")), &mut out);
        assert_eq!(error_of(&out.drain()[0].1).0, "not-acceptable");
        r.stanza(COMPONENT, Incoming::from(lu("r@conference.meet.test")), &mut out);
        let ok = out.drain().remove(0).1;
        assert_eq!(ok.get_attr("type"), Some("result"));
    }

    /// Token setup C (moderation.md §5 C): the answers of Jicofo's JWT authority, and its
    /// sessions ending with the conference of their room.
    #[test]
    fn jwt_authority_answers_and_sessions_end_with_their_conference() {
        let mut r = router(&["--jwt_auth_domain=meet.test"]);
        let mut out = Outbox::default();
        let ask = |r: &mut FocusRouter, from: &str, room: &str, uid: Option<&str>, sid: Option<&str>, out: &mut Outbox| {
            let mut iq = request(from, "focus.meet.test", room);
            let conf = iq.get_child_mut("conference", ns::FOCUS).unwrap();
            conf.remove_attr("machine-uid");
            if let Some(u) = uid {
                conf.set_attr("machine-uid", u);
            }
            if let Some(s) = sid {
                conf.set_attr("session-id", s);
            }
            r.stanza(COMPONENT, Incoming::from(iq), out);
            out.drain().into_iter().next().map(|(_, e)| e)
        };
        // A sender without a session may not create a room.
        let e = ask(&mut r, "anon@guest.meet.test/x", "r1@conference.meet.test", Some("g"), None, &mut out).unwrap();
        let pe = parse_error(&e).unwrap();
        assert_eq!((pe.condition_name.as_str(), pe.text.as_deref()), ("not-authorized", Some("not authorized user domain")));
        // A sender of the token domain must send machine-uid.
        let e = ask(&mut r, "user1@meet.test/r", "r1@conference.meet.test", None, None, &mut out).unwrap();
        let pe = parse_error(&e).unwrap();
        assert_eq!((pe.condition_name.as_str(), pe.text.as_deref()), ("not-acceptable", Some("Missing mandatory attribute 'machine-uid'")));
        assert_eq!(r.conference_count(), 0);
        // With it: a session, and the room is created.
        assert!(ask(&mut r, "user1@meet.test/r", "r1@conference.meet.test", Some("m1"), None, &mut out).is_none());
        assert_eq!(r.conference_count(), 1);
        // The answer (for a room with a conference, read from its inbox): authentication and
        // externalAuth true, the identity and the session id.
        let inbox = fake_route(&mut r, 5, "r2@conference.meet.test");
        assert!(ask(&mut r, "user2@meet.test/r", "r2@conference.meet.test", Some("m2"), None, &mut out).is_none());
        let Ok(Inbox::Request(p)) = inbox.try_recv() else { panic!("the request reached the conference") };
        let props: Vec<(&str, &str)> = p.reply.properties.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert!(props.contains(&("authentication", "true")) && props.contains(&("externalAuth", "true")), "{props:?}");
        assert_eq!(p.reply.identity.as_deref(), Some("user2@meet.test"));
        let sid = p.reply.session_id.clone().expect("a session id");
        // A guest presenting the session (same machine-uid) is authenticated by it.
        assert!(ask(&mut r, "anon@guest.meet.test/y", "r2@conference.meet.test", Some("m2"), Some(&sid), &mut out).is_none());
        let Ok(Inbox::Request(p)) = inbox.try_recv() else { panic!() };
        assert_eq!(p.reply.identity.as_deref(), Some("user2@meet.test"));
        let sessions = r.shared.sessions.clone().unwrap();
        assert!(sessions.lock().is_authenticated(&Jid::parse("anon@guest.meet.test/y").unwrap(), Instant::now()));
        // login-url is answered without a URL (the client makes it).
        let lu = Element::new("iq", ns::COMPONENT)
            .attr("type", "get")
            .attr("id", "l")
            .attr("from", "u@meet.test/r")
            .attr("to", "focus.meet.test")
            .child(Element::new("login-url", ns::FOCUS).attr("room", "r2@conference.meet.test").attr("machine-uid", "m"));
        r.stanza(COMPONENT, Incoming::from(lu), &mut out);
        let a = out.drain().remove(0).1;
        assert_eq!(a.get_attr("type"), Some("result"));
        let el = a.get_child("login-url", ns::FOCUS).expect("login-url");
        assert_eq!(el.get_attr("url"), None, "{}", a);
        // The conference of r2 ends: no auto-login, its sessions go; r1's stays.
        r.on_control(Control::Ended { id: ConferenceId(5), reason: crate::messages::EndReason::RoomEmpty }, &mut out);
        assert!(!sessions.lock().is_authenticated(&Jid::parse("anon@guest.meet.test/y").unwrap(), Instant::now()));
        assert!(!sessions.lock().is_authenticated(&Jid::parse("user2@meet.test/r").unwrap(), Instant::now()));
        assert!(sessions.lock().is_authenticated(&Jid::parse("user1@meet.test/r").unwrap(), Instant::now()));
        let e = ask(&mut r, "user2@meet.test/r", "r1@conference.meet.test", Some("m2"), Some(&sid), &mut out).unwrap();
        let pe = parse_error(&e).unwrap();
        assert_eq!(pe.condition_name, "not-acceptable");
        assert!(pe.extra.iter().any(|x| x.name == "session-invalid"), "{}", e);
    }

    #[test]
    fn secure_domain_sessions_outlive_their_conference() {
        let mut r = router(&["--auth_domain=meet.test"]);
        let mut out = Outbox::default();
        let inbox = fake_route(&mut r, 6, "r2@conference.meet.test");
        r.stanza(COMPONENT, Incoming::from(request("user2@meet.test/r", "focus.meet.test", "r2@conference.meet.test")), &mut out);
        let Ok(Inbox::Request(p)) = inbox.try_recv() else { panic!() };
        assert!(p.reply.properties.contains(&("externalAuth".to_string(), "false".to_string())));
        let sid = p.reply.session_id.clone().unwrap();
        r.on_control(Control::Ended { id: ConferenceId(6), reason: crate::messages::EndReason::RoomEmpty }, &mut out);
        let sessions = r.shared.sessions.clone().unwrap();
        assert!(sessions.lock().logout(&sid), "the session is still there");
    }

    #[test]
    fn conferences_are_limited_in_number_and_new_rooms_per_minute() {
        let mut r = router(&["--max_conferences=3", "--max_new_rooms_per_minute=2", "--max_new_rooms_total_per_minute=100"]);
        let mut out = Outbox::default();
        let ask = |r: &mut FocusRouter, from: &str, room: &str, out: &mut Outbox| {
            r.stanza(COMPONENT, Incoming::from(request(from, "focus.meet.test", room)), out);
            out.drain().into_iter().next().map(|(_, e)| e)
        };
        // One requester (any resource of its bare JID): two new rooms a minute.
        assert!(ask(&mut r, "a@meet.test/1", "r1@conference.meet.test", &mut out).is_none());
        assert!(ask(&mut r, "a@meet.test/2", "r2@conference.meet.test", &mut out).is_none());
        let e = ask(&mut r, "a@meet.test/1", "r3@conference.meet.test", &mut out).unwrap();
        assert_eq!(error_of(&e), ("resource-constraint".to_string(), "wait".to_string()));
        // Joining existing rooms is not limited.
        assert!(ask(&mut r, "a@meet.test/1", "r1@conference.meet.test", &mut out).is_none());
        // Someone else may; then the total of 3 conferences is reached.
        assert!(ask(&mut r, "b@meet.test/1", "r3@conference.meet.test", &mut out).is_none());
        let e = ask(&mut r, "c@meet.test/1", "r4@conference.meet.test", &mut out).unwrap();
        assert_eq!(error_of(&e), ("resource-constraint".to_string(), "wait".to_string()));
        let refused = http_answer(&mut r, "r5@conference.meet.test");
        assert_eq!(error_of(&refused.to_iq(&Element::new("iq", ns::CLIENT))).0, "resource-constraint");
        // Over HTTP: a refusal (503 in `ops::api`), retry in a minute.
        assert_eq!(refused, ConferenceAnswer::Refused(Refusal::TooManyConferences));
        assert_eq!(Refusal::TooManyConferences.retry_after(), std::time::Duration::from_secs(60));
        assert!(ask(&mut r, "c@meet.test/1", "r2@conference.meet.test", &mut out).is_none(), "existing rooms still served");
        assert_eq!(r.conference_count(), 3);
        let l = &r.shared.metrics.limits;
        assert_eq!(l.new_rooms_per_requester.load(Ordering::Relaxed), 1);
        assert_eq!(l.max_conferences.load(Ordering::Relaxed), 2);
        let stats = r.shared.metrics.stats_json(&Bridges::new(), Instant::now());
        assert_eq!(stats["limits"]["refused"]["max_conferences"], 2);
    }

    #[test]
    fn a_spree_of_fresh_anonymous_jids_is_held_by_the_total_limit() {
        let mut r = router(&["--max_new_rooms_total_per_minute=5"]);
        let mut out = Outbox::default();
        let mut refused = 0;
        for i in 0..50 {
            r.stanza(COMPONENT, Incoming::from(request(&format!("anon{}@guest.meet.test/x", i), "focus.meet.test", &format!("spree{}@conference.meet.test", i))), &mut out);
            if let Some((_, e)) = out.drain().into_iter().next() {
                assert_eq!(error_of(&e).0, "resource-constraint");
                refused += 1;
            }
        }
        assert_eq!((r.conference_count(), refused), (5, 45));
        assert_eq!(r.shared.metrics.limits.new_rooms_total.load(Ordering::Relaxed), 45);
    }

    #[test]
    fn a_full_inbox_holds_presences_and_delivers_them_in_tick_never_losing_a_leave() {
        let mut r = router(&[]);
        connected(&mut r);
        let room = "room1@conference.meet.test";
        let inbox = fake_route(&mut r, 3, room);
        let roomj = Jid::parse(room).unwrap();
        // The conference is stuck in a blocking wait with its inbox's worth kept aside.
        r.rooms[&roomj].load.report_backlog(crate::messages::INBOX_CAPACITY, 0);
        let p = |nick: &str, n: u32, leave: bool| {
            let el = Element::new("presence", ns::CLIENT).attr("from", format!("{}/{}", room, nick)).attr("id", n.to_string());
            if leave {
                el.attr("type", "unavailable")
            } else {
                el
            }
        };
        let mut out = Outbox::default();
        r.stanza(CLIENT, Incoming::from(p("alice", 1, false)), &mut out);
        r.stanza(CLIENT, Incoming::from(p("bob", 2, false)), &mut out);
        for i in 0..10_000 {
            r.stanza(CLIENT, Incoming::from(p("mallory", 100 + i, false)), &mut out);
        }
        r.stanza(CLIENT, Incoming::from(p("bob", 3, true)), &mut out);
        // IQ requests are refused while full.
        let iq = Element::new("iq", ns::CLIENT).attr("type", "set").attr("id", "j1").attr("from", format!("{}/carol", room)).child(Element::new("jingle", ns::JINGLE));
        r.stanza(CLIENT, Incoming::from(iq), &mut out);
        let sent = out.drain();
        assert_eq!(sent.len(), 1);
        assert_eq!(error_of(&sent[0].1), ("resource-constraint".to_string(), "wait".to_string()));
        assert!(inbox.is_empty());
        assert!(r.next_deadline().is_some(), "the router comes back to deliver");
        // Still full: tick delivers nothing.
        r.tick(Instant::now(), &mut out);
        assert!(inbox.is_empty());
        // The conference catches up: tick delivers each occupant's latest presence, leaves kept.
        r.rooms[&roomj].load.report_backlog(0, 0);
        r.tick(Instant::now(), &mut out);
        let got: Vec<String> = inbox
            .try_iter()
            .map(|m| match m {
                Inbox::Stanza(e) => format!("{}:{}", e.get_attr("from").unwrap().rsplit('/').next().unwrap(), e.get_attr("id").unwrap()),
                other => panic!("{:?}", other),
            })
            .collect();
        assert_eq!(got, vec!["alice:1", "bob:3", "mallory:10099"]);
        let l = &r.shared.metrics.limits;
        assert_eq!(l.presences_coalesced.load(Ordering::Relaxed), 9_999 + 1);
        assert_eq!(l.presences_dropped.load(Ordering::Relaxed), 0);
        assert_eq!(l.inbox_full.load(Ordering::Relaxed), 1);
        assert!(r.holding.is_empty());
        // Then traffic flows directly again.
        r.stanza(CLIENT, Incoming::from(p("alice", 4, false)), &mut out);
        assert_eq!(inbox.len(), 1);
    }

    #[test]
    fn heavy_stanzas_fill_an_inbox_by_bytes_long_before_its_message_count() {
        let mut r = router(&[]);
        connected(&mut r);
        let room = "room1@conference.meet.test";
        let inbox = fake_route(&mut r, 3, room);
        let mut out = Outbox::default();
        // Stanzas at the parser's node cap, from one participant, to a conference that is busy.
        // (Kept as trees: the junk is in an IQ of no typed kind. The same junk inside a Jingle
        // IQ is not kept at all: see `junk_in_a_typed_stanza_is_not_kept` below.)
        let heavy = |i: usize| {
            Element::new("iq", ns::CLIENT)
                .attr("type", "set")
                .attr("id", format!("h{}", i))
                .attr("from", format!("{}/mallory", room))
                .child(Element::new("query", "urn:x:junk").children((0..8000).map(|_| Element::new("a", "urn:x:junk"))))
        };
        for i in 0..100 {
            r.stanza(CLIENT, Incoming::from(heavy(i)), &mut out);
        }
        let refused = out.drain();
        assert!(inbox.len() <= 8 && inbox.len() >= 5, "{} delivered", inbox.len());
        assert_eq!(refused.len() + inbox.len(), 100);
        assert!(refused.iter().all(|(_, e)| error_of(e) == ("resource-constraint".to_string(), "wait".to_string())));
        let load = r.rooms[&Jid::parse(room).unwrap()].load.clone();
        assert!(load.bytes() <= inbox::INBOX_BYTES);
        assert_eq!(r.inbox_total.load(Ordering::Relaxed), load.bytes());
        // When the conference ends, what it did not take leaves the total.
        r.on_control(Control::Ended { id: ConferenceId(3), reason: crate::messages::EndReason::RoomEmpty }, &mut out);
        assert_eq!(r.inbox_total.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn junk_in_a_typed_stanza_is_not_kept() {
        let mut r = router(&[]);
        connected(&mut r);
        let room = "room1@conference.meet.test";
        let inbox = fake_route(&mut r, 3, room);
        let mut out = Outbox::default();
        // A Jingle IQ padded to the node cap: typed where it is parsed, the junk is dropped,
        // so it weighs what a small Jingle IQ weighs and 100 of them fit.
        let padded = |i: usize| {
            Element::new("iq", ns::CLIENT)
                .attr("type", "set")
                .attr("id", format!("h{}", i))
                .attr("from", format!("{}/mallory", room))
                .child(Element::new("jingle", ns::JINGLE).children((0..8000).map(|_| Element::new("a", ns::JINGLE))))
        };
        assert!(padded(0).weight() > 1 << 20);
        let typed = Incoming::from(padded(0));
        assert!(matches!(typed, Incoming::Jingle(_)));
        assert!(typed.weight() < 2048, "{}", typed.weight());
        for i in 0..100 {
            r.stanza(CLIENT, Incoming::from(padded(i)), &mut out);
        }
        assert_eq!(inbox.len(), 100);
        assert!(out.drain().is_empty());
    }

    #[test]
    fn client_proxy_requests_use_the_real_sender_and_answer_the_proxy() {
        let mut r = router(&["--auth_domain=meet.test"]);
        let mut out = Outbox::default();
        // A guest behind the proxy may not create a room; the error goes back to the proxy JID.
        let proxied = "focus.meet.test/guest@guest.meet.test/abc";
        r.stanza(CLIENT, Incoming::from(request(proxied, "focus@auth.meet.test/focus", "r1@conference.meet.test")), &mut out);
        let sent = out.drain();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].1.get_attr("to"), Some(proxied));
        assert_eq!(parse_error(&sent[0].1).unwrap().condition_name, "not-authorized");
        // A user of the secure domain behind the proxy is authenticated from the resource.
        let user = "focus.meet.test/user1@meet.test/xyz";
        r.stanza(CLIENT, Incoming::from(request(user, "focus@auth.meet.test/focus", "r1@conference.meet.test")), &mut out);
        assert!(out.drain().is_empty(), "handed to the new conference, no error");
        assert_eq!(r.conference_count(), 1);
        let sessions = r.shared.sessions.clone().unwrap();
        assert!(sessions.lock().is_authenticated(&Jid::parse("user1@meet.test/xyz").unwrap(), Instant::now()));
    }

    #[test]
    fn a_flood_of_iq_requests_costs_its_sender_not_the_stream() {
        let mut r = router(&["--max_iq_per_second=10"]);
        let mut out = Outbox::default();
        let disco = |from: &str, id: usize| {
            Element::new("iq", ns::COMPONENT)
                .attr("type", "get")
                .attr("id", format!("d{id}"))
                .attr("from", from)
                .attr("to", "focus.meet.test")
                .child(Element::new("query", ns::DISCO_INFO))
        };
        for i in 0..1000 {
            r.stanza(COMPONENT, Incoming::from(disco("mallory@meet.test/x", i)), &mut out);
        }
        let sent = out.drain();
        let results = sent.iter().filter(|(_, e)| e.get_attr("type") == Some("result")).count();
        let errors = sent.iter().filter_map(|(_, e)| parse_error(e)).filter(|e| e.condition_name == "resource-constraint").count();
        assert_eq!(results, 50, "a burst of five seconds' worth is answered");
        assert_eq!(errors, 950, "the rest is refused with a short error, nothing left waiting");
        assert!(sent.iter().all(|(_, e)| e.get_attr("type") == Some("result") || e.to_xml().len() < 400));
        assert_eq!(r.shared.metrics.limits.iq_rate.load(Ordering::Relaxed), 950);
        // Someone else is served at once, and the server itself is never limited.
        r.stanza(COMPONENT, Incoming::from(disco("alice@meet.test/y", 0)), &mut out);
        for i in 0..200 {
            r.stanza(COMPONENT, Incoming::from(disco("meet.test", i)), &mut out);
        }
        let sent = out.drain();
        assert_eq!(sent.iter().filter(|(_, e)| e.get_attr("type") == Some("result")).count(), 201);
    }

    #[test]
    fn bad_requests_and_unknown_iqs_are_answered_at_once() {
        let mut r = router(&[]);
        let mut out = Outbox::default();
        r.stanza(COMPONENT, Incoming::from(request("u@meet.test/r", "focus.meet.test", "not-a-room")), &mut out);
        let e = out.drain().remove(0).1;
        assert_eq!(parse_error(&e).unwrap().condition_name, "bad-request");
        let mut no_room = request("u@meet.test/r", "focus.meet.test", "x@y");
        no_room.get_child_mut("conference", ns::FOCUS).unwrap().remove_attr("room");
        r.stanza(COMPONENT, Incoming::from(no_room), &mut out);
        let e = out.drain().remove(0).1;
        assert_eq!(parse_error(&e).unwrap().text.as_deref(), Some("No 'room' specified."));
        let other = Element::new("iq", ns::COMPONENT)
            .attr("type", "get")
            .attr("id", "q")
            .attr("from", "u@meet.test/r")
            .attr("to", "focus.meet.test")
            .child(Element::new("query", "jabber:iq:nothing"));
        r.stanza(COMPONENT, Incoming::from(other), &mut out);
        assert_eq!(parse_error(&out.drain()[0].1).unwrap().condition_name, "service-unavailable");
        // login-url without a secure domain: service-unavailable.
        let lu = Element::new("iq", ns::COMPONENT)
            .attr("type", "get")
            .attr("id", "l")
            .attr("from", "u@meet.test/r")
            .attr("to", "focus.meet.test")
            .child(Element::new("login-url", ns::FOCUS).attr("room", "r@c.meet.test").attr("machine-uid", "m"));
        r.stanza(COMPONENT, Incoming::from(lu), &mut out);
        assert_eq!(parse_error(&out.drain()[0].1).unwrap().condition_name, "service-unavailable");
    }

    #[test]
    fn client_only_mode_announces_itself_to_the_proxy_and_answers_through_it() {
        let mut r = client_only_router(&["--auth_domain=meet.test"]);
        assert!(r.shared.metrics.client_only);
        let mut out = Outbox::default();
        // Every (re)connect: a directed presence to the proxy, then the brewery join.
        for _ in 0..2 {
            r.connected(CLIENT, &Jid::parse("focus@auth.meet.test/focus").unwrap(), &mut out);
            let sent = out.drain();
            assert_eq!(sent[0].1.to_xml_in(ns::CLIENT), "<presence to='focus.meet.test'/>");
            assert!(sent.iter().all(|(c, _)| *c == CLIENT));
            assert!(sent[1].1.get_attr("to").unwrap().starts_with("jvbbrewery@"));
            r.disconnected(CLIENT, "test", &mut out);
        }
        // Losses of an established connection count (Jicofo's xmpp_disconnects); a failed
        // attempt while down does not.
        r.disconnected(CLIENT, "refused", &mut out);
        assert_eq!(r.shared.metrics.xmpp_disconnects.load(Ordering::Relaxed), 2);
        r.connected(CLIENT, &Jid::parse("focus@auth.meet.test/focus").unwrap(), &mut out);
        out.drain();
        // Healthy without a component (given a bridge): only the client counts.
        let problems = r.shared.metrics.health_problems(&r.shared.bridges.lock(), Instant::now());
        assert_eq!(problems, vec!["no operational bridge"]);
        // disco#info and login-url forwarded by the proxy: answered to the proxy's JID.
        let proxied = "focus.meet.test/user1@meet.test/web";
        let disco = Element::new("iq", ns::CLIENT)
            .attr("type", "get")
            .attr("id", "d1")
            .attr("from", proxied)
            .attr("to", "focus@auth.meet.test/focus")
            .child(Element::new("query", ns::DISCO_INFO));
        r.stanza(CLIENT, Incoming::from(disco), &mut out);
        let lu = Element::new("iq", ns::CLIENT)
            .attr("type", "get")
            .attr("id", "l1")
            .attr("from", proxied)
            .attr("to", "focus@auth.meet.test/focus")
            .child(Element::new("login-url", ns::FOCUS).attr("room", "r1@conference.meet.test").attr("machine-uid", "m"));
        r.stanza(CLIENT, Incoming::from(lu), &mut out);
        let sent = out.drain();
        assert_eq!(sent.len(), 2);
        for (conn, el) in &sent {
            assert_eq!((*conn, el.get_attr("type"), el.get_attr("to")), (CLIENT, Some("result"), Some(proxied)), "{}", el.to_xml());
        }
        // A conference request through the proxy: the real sender is authenticated.
        r.stanza(CLIENT, Incoming::from(request(proxied, "focus@auth.meet.test/focus", "r1@conference.meet.test")), &mut out);
        assert!(out.drain().is_empty());
        assert_eq!(r.conference_count(), 1);
        let sessions = r.shared.sessions.clone().unwrap();
        assert!(sessions.lock().is_authenticated(&Jid::parse("user1@meet.test/web").unwrap(), Instant::now()));
        assert_eq!(r.shared.metrics.conference_requests.load(Ordering::Relaxed), 1);
        assert_eq!(r.shared.metrics.conference_requests_new.load(Ordering::Relaxed), 1);
        // A client cannot pass itself off as the proxy's sender from another JID.
        r.stanza(CLIENT, Incoming::from(request("mallory@guest.meet.test/x", "focus@auth.meet.test/focus", "r2@conference.meet.test")), &mut out);
        assert_eq!(parse_error(&out.drain()[0].1).unwrap().condition_name, "not-authorized");
        let stats = r.shared.metrics.stats_json(&Bridges::new(), Instant::now());
        assert_eq!(stats["xmpp"]["mode"], "client_only");
        let text = r.shared.metrics.prometheus(&Bridges::new(), Instant::now());
        assert!(!text.contains("component"), "{}", text);
    }

    #[test]
    fn a_refused_presence_to_the_proxy_is_not_taken_for_a_room() {
        let mut r = client_only_router(&[]);
        let mut out = Outbox::default();
        r.connected(CLIENT, &Jid::parse("focus@auth.meet.test/focus").unwrap(), &mut out);
        out.drain();
        let err = Element::new("presence", ns::CLIENT).attr("type", "error").attr("from", "focus.meet.test").attr("to", "focus@auth.meet.test/focus");
        r.stanza(CLIENT, Incoming::from(err), &mut out);
        assert!(out.drain().is_empty());
        assert_eq!(r.conference_count(), 0);
    }
}
