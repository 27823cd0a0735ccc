//! The focus: the [`Router`] that runs on the event loop thread and the service-level
//! IQs it answers itself (disco, ping, the conference request, login-url, logout).
//!
//! Routing, never blocking:
//! - IQ answers whose id is `c<conf>-<n>` go to conference `<conf>`;
//! - stanzas from a room with a conference (presence, IQs from occupants) go to it;
//! - conference requests start a conference thread or are forwarded to the running one;
//! - an IQ request nobody handles gets `service-unavailable`.
//!
//! A conference's inbox holds at most `INBOX_CAPACITY` messages; when it is full the sender of an IQ gets
//! `resource-constraint` (type wait). The route of a conference is removed only when its
//! thread reports `Ended`; whatever is still in its inbox is then replayed: a conference
//! request that raced with the end starts a fresh conference.

pub mod auth;
pub mod disco;
pub mod request;

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{unbounded, Receiver, Sender, TryRecvError, TrySendError};
use log::{debug, info, warn};
use parking_lot::Mutex;

use crate::conference::env::{spawn as spawn_conference, Control, INBOX_CAPACITY};
use crate::conference::{Inbox, Params, PendingReply, Shared};
use crate::config::Config;
use crate::jid::Jid;
use crate::net::{ConnId, NetHandle, Outbox, Router};
use crate::xml::{ns, Element};
use crate::xmpp::stanza::{iq_error, iq_result, ErrorCondition, ErrorReply};

use crate::bridge::{BridgeEvent, Bridges};
use crate::conference::ReplyTarget;
use crate::metrics::Metrics;
use std::sync::atomic::Ordering;
use auth::{AuthResult, Sessions};
use request::{ConferenceReply, ConferenceRequest};

/// The component connection.
pub const COMPONENT: ConnId = ConnId(0);
/// The client connection.
pub const CLIENT: ConnId = ConnId(1);


struct Route {
    id: u64,
    tx: Sender<Inbox>,
    rx: Receiver<Inbox>,
    handle: Option<JoinHandle<()>>,
}

/// The focus router.
pub struct FocusRouter {
    cfg: Arc<Config>,
    net: NetHandle,
    shared: Arc<Shared>,
    component_jid: String,
    client_jid: Option<Jid>,
    client_up: bool,
    rooms: HashMap<Jid, Route>,
    by_id: HashMap<u64, Jid>,
    next_id: u64,
    control_rx: Receiver<Control>,
    control_tx: Sender<Control>,
    finished: Vec<JoinHandle<()>>,
    stopping: bool,
    health_seq: u64,
}

impl FocusRouter {
    /// A router for `cfg`; `net` is the handle of the loop it will run on.
    pub fn new(cfg: Arc<Config>, net: NetHandle) -> FocusRouter {
        // Unbounded: its senders are the conference threads (one `Ended` each), the HTTP
        // thread (one request at a time) and shutdown. (A bounded crossbeam channel
        // allocates and touches its whole capacity up front.)
        let (control_tx, control_rx) = unbounded();
        let sessions = cfg.auth_domain.as_deref().map(|d| Arc::new(Mutex::new(Sessions::new(d))));
        let shared = Arc::new(Shared {
            client: CLIENT,
            nick: cfg.user_name.clone(),
            focus_jid: cfg.focus_bare_jid(),
            sessions,
            caps_cache: Mutex::new(crate::xmpp::caps::CapsCache::new()),
            bridges: Arc::new(Mutex::new(Bridges::new())),
            metrics: Arc::new(Metrics::new()),
            focus_full: Mutex::new(None),
            control: Some(control_tx.clone()),
        });
        FocusRouter {
            component_jid: cfg.component_jid(),
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
            health_seq: 0,
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

    fn is_for_us(&self, to: Option<&str>) -> bool {
        let Some(to) = to else { return true };
        let Ok(j) = Jid::parse(to) else { return false };
        if j.to_string() == self.component_jid || j.domain() == self.component_jid && j.local().is_none() {
            return true;
        }
        j.bare().to_string() == self.shared.focus_jid
    }

    fn on_iq_request(&mut self, conn: ConnId, iq: Element, now: Instant, out: &mut Outbox) {
        // IQs from occupants of a room we manage go to that room's conference.
        if conn == CLIENT {
            if let Some(room) = iq.get_attr("from").and_then(|f| Jid::parse(f).ok()).map(|j| j.bare()) {
                if self.rooms.contains_key(&room) {
                    return self.forward(conn, &room, Inbox::Stanza(iq), out);
                }
            }
        }
        if !self.is_for_us(iq.get_attr("to")) {
            out.send(conn, iq_error(&iq, ErrorCondition::ServiceUnavailable, None));
            return;
        }
        let Some(payload) = iq.first_element().cloned() else {
            out.send(conn, iq_error(&iq, ErrorCondition::BadRequest, Some("empty IQ")));
            return;
        };
        let typ = iq.get_attr("type").unwrap_or("");
        match (typ, payload.name.as_str(), payload.ns.as_str()) {
            ("get", "query", ns::DISCO_INFO) => {
                out.send(conn, iq_result(&iq).child(disco::info_query(payload.get_attr("node"))));
            }
            ("get", "ping", ns::PING) => out.send(conn, iq_result(&iq)),
            ("set", "conference", ns::FOCUS) => {
                self.on_conference_request(ReplyTarget::Xmpp(conn), iq, &payload, now, out)
            }
            ("get", "login-url", ns::FOCUS) => self.on_login_url(conn, &iq, &payload, out),
            ("set", "logout", ns::FOCUS) => self.on_logout(conn, &iq, &payload, out),
            _ => out.send(conn, iq_error(&iq, ErrorCondition::ServiceUnavailable, None)),
        }
    }

    /// The real sender: the resource of `focus.<domain>/<full JID>` for client_proxy.
    fn real_sender(&self, iq: &Element) -> Option<Jid> {
        let from = Jid::parse(iq.get_attr("from")?).ok()?;
        if from.local().is_none() && from.domain() == self.component_jid {
            if let Some(inner) = from.resource().and_then(|r| Jid::parse(r).ok()) {
                return Some(inner);
            }
        }
        Some(from)
    }

    fn on_conference_request(&mut self, target: ReplyTarget, iq: Element, conf: &Element, now: Instant, out: &mut Outbox) {
        let req = match ConferenceRequest::parse(conf) {
            Ok(r) => r,
            Err(e) => {
                send_reply(&target, out, iq_error(&iq, ErrorCondition::BadRequest, Some(&e.to_string())));
                return;
            }
        };
        let exists = self.rooms.contains_key(&req.room);
        if self.stopping && !exists {
            let err = ErrorReply::new(ErrorCondition::ServiceUnavailable)
                .extra(Element::new("graceful-shutdown", ns::COLIBRI))
                .reply_to(&iq);
            send_reply(&target, out, err);
            return;
        }
        let sender = self.real_sender(&iq);
        let mut reply = ConferenceReply {
            room: req.room.to_string(),
            ready: false,
            focus_jid: self.shared.focus_jid.clone(),
            ..Default::default()
        };
        if let Some(sessions) = &self.shared.sessions {
            let Some(sender) = sender.clone() else {
                send_reply(&target, out, iq_error(&iq, ErrorCondition::BadRequest, Some("no sender")));
                return;
            };
            let res = sessions.lock().authenticate(&sender, req.session_id.as_deref(), req.machine_uid.as_deref(), now);
            match res {
                AuthResult::InvalidSession => {
                    let err = ErrorReply::new(ErrorCondition::NotAcceptable)
                        .text("invalid session")
                        .extra(Element::new("session-invalid", ns::FOCUS))
                        .reply_to(&iq);
                    send_reply(&target, out, err);
                    return;
                }
                AuthResult::MachineUidMismatch => {
                    send_reply(&target, out, iq_error(&iq, ErrorCondition::NotAcceptable, Some("machine UID mismatch or empty")));
                    return;
                }
                AuthResult::MissingMachineUid => {
                    let t = "Missing mandatory attribute 'machine-uid'";
                    send_reply(&target, out, iq_error(&iq, ErrorCondition::NotAcceptable, Some(t)));
                    return;
                }
                AuthResult::Guest => {
                    if !exists {
                        send_reply(&target, out, iq_error(&iq, ErrorCondition::NotAuthorized, Some("not authorized user domain")));
                        return;
                    }
                }
                AuthResult::Authenticated { identity, session_id } => {
                    reply.identity = Some(identity.to_string());
                    reply.session_id = Some(session_id);
                }
            }
            reply.properties.push(("authentication".into(), "true".into()));
            reply.properties.push(("externalAuth".into(), "false".into()));
        } else {
            reply.properties.push(("authentication".into(), "false".into()));
        }
        let pending = PendingReply { target: target.clone(), iq: iq.clone(), reply, requester: sender };
        if !exists {
            if let Err(e) = self.start_conference(&req, None) {
                warn!("cannot start a conference thread for {}: {}", req.room, e);
                send_reply(&target, out, iq_error(&iq, ErrorCondition::ResourceConstraint, Some("cannot start a conference")));
                return;
            }
        }
        self.forward(CLIENT, &req.room.clone(), Inbox::Request(pending), out);
    }

    fn start_conference(&mut self, req: &ConferenceRequest, previous: Option<JoinHandle<()>>) -> std::io::Result<()> {
        self.next_id += 1;
        let id = self.next_id;
        // Unbounded, so that memory follows what is queued; INBOX_CAPACITY is enforced in
        // `forward`. A bounded crossbeam channel allocates and initialises every slot up
        // front: 4096 × 248 bytes = 1 MB of RSS per conference, 200 MB for 200 rooms.
        let (tx, rx) = unbounded();
        let params = Params {
            id,
            room: req.room.clone(),
            shared: self.shared.clone(),
            start_audio_muted: req.int_property("startAudioMuted"),
            start_video_muted: req.int_property("startVideoMuted"),
        };
        let handle = spawn_conference(params, self.net.clone(), rx.clone(), self.control_tx.clone(), previous)?;
        if !self.client_up {
            let _ = tx.try_send(Inbox::Connection(false));
        }
        info!("conference {}: created (thread conf-{})", req.room, id);
        self.shared.metrics.conference_started(id, &req.room.to_string());
        self.rooms.insert(req.room.clone(), Route { id, tx, rx, handle: Some(handle) });
        self.by_id.insert(id, req.room.clone());
        Ok(())
    }

    /// Hand `msg` to the conference of `room` without blocking.
    fn forward(&mut self, conn: ConnId, room: &Jid, msg: Inbox, out: &mut Outbox) {
        let Some(route) = self.rooms.get(room) else { return };
        // The router is the only sender of an inbox: checking the length first is exact.
        let sent = if route.tx.len() >= INBOX_CAPACITY { Err(TrySendError::Full(msg)) } else { route.tx.try_send(msg) };
        match sent {
            Ok(()) => {}
            Err(TrySendError::Full(m)) | Err(TrySendError::Disconnected(m)) => {
                warn!("conference {}: inbox full, refusing a message", room);
                let busy = |iq: &Element| iq_error(iq, ErrorCondition::ResourceConstraint, Some("the conference is busy"));
                match m {
                    Inbox::Stanza(el) if el.name == "iq" && matches!(el.get_attr("type"), Some("get") | Some("set")) => {
                        out.send(conn, busy(&el))
                    }
                    Inbox::Request(p) => send_reply(&p.target, out, busy(&p.iq)),
                    _ => {}
                }
            }
        }
    }

    fn on_login_url(&mut self, conn: ConnId, iq: &Element, el: &Element, out: &mut Outbox) {
        if self.shared.sessions.is_none() {
            out.send(conn, iq_error(iq, ErrorCondition::ServiceUnavailable, None));
            return;
        }
        let Some(room) = el.get_attr("room").and_then(|r| request::parse_room(r).ok()) else {
            out.send(conn, iq_error(iq, ErrorCondition::NotAcceptable, Some("missing or invalid 'room'")));
            return;
        };
        if el.get_attr("machine-uid").is_none_or(|m| m.trim().is_empty()) {
            out.send(conn, iq_error(iq, ErrorCondition::BadRequest, Some("missing mandatory attribute 'machineUID'")));
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

    fn route_by_id(&self, id: &str) -> Option<Jid> {
        let rest = id.strip_prefix('c')?;
        let n: u64 = rest.split('-').next()?.parse().ok()?;
        self.by_id.get(&n).cloned()
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
                self.shared.metrics.conference_ended(id);
                let handle = route.handle.take();
                // Replay what raced with the end: a request starts a fresh conference.
                let mut leftovers = Vec::new();
                while let Ok(m) = route.rx.try_recv() {
                    leftovers.push(m);
                }
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
                                    if self.start_conference(&req, previous.take()).is_err() {
                                        send_reply(&p.target, out, iq_error(&p.iq, ErrorCondition::ResourceConstraint, None));
                                        continue;
                                    }
                                }
                            }
                            self.forward(CLIENT, &room, Inbox::Request(p), out);
                        }
                        Inbox::Stanza(el) if self.rooms.contains_key(&room) => {
                            self.forward(CLIENT, &room, Inbox::Stanza(el), out)
                        }
                        Inbox::Stanza(el) if el.name == "iq" && matches!(el.get_attr("type"), Some("get") | Some("set")) => {
                            out.send(CLIENT, iq_error(&el, ErrorCondition::ItemNotFound, Some("the conference has ended")));
                        }
                        _ => {}
                    }
                }
                if let Some(h) = previous {
                    self.finished.push(h);
                }
            }
            Control::BridgeEvents(events) => self.broadcast_bridge_events(events),
            Control::Http { iq, reply } => {
                let conf = iq.get_child("conference", ns::FOCUS).cloned().unwrap_or_else(|| Element::new("conference", ns::FOCUS));
                self.on_conference_request(ReplyTarget::Channel(reply), iq, &conf, Instant::now(), out);
            }
            Control::Shutdown => {
                self.stopping = true;
                for r in self.rooms.values() {
                    let _ = r.tx.try_send(Inbox::Shutdown);
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
                let _ = r.tx.try_send(Inbox::Bridge(ev.clone()));
            }
        }
    }

    fn brewery_join(&self) -> Element {
        Element::new("presence", ns::CLIENT)
            .attr("to", self.cfg.bridge_muc.with_resource(&self.shared.nick).to_string())
            .child(Element::new("x", ns::MUC))
    }

    /// The sender of control messages (main uses it to ask for a shutdown).
    pub fn control(&self) -> Sender<Control> {
        self.control_tx.clone()
    }
}

/// Send `el` where `target` says.
fn send_reply(target: &ReplyTarget, out: &mut Outbox, el: Element) {
    match target {
        ReplyTarget::Xmpp(conn) => out.send(*conn, el),
        ReplyTarget::Channel(tx) => {
            let _ = tx.try_send(el);
        }
    }
}

impl Router for FocusRouter {
    fn connected(&mut self, conn: ConnId, jid: &Jid, out: &mut Outbox) {
        if conn == CLIENT {
            info!("joining the bridge brewery {}", self.cfg.bridge_muc);
            out.send(CLIENT, self.brewery_join());
            self.client_jid = Some(jid.clone());
            *self.shared.focus_full.lock() = Some(jid.to_string());
            self.client_up = true;
            self.shared.metrics.client_up.store(true, Ordering::Relaxed);
            for r in self.rooms.values() {
                let _ = r.tx.try_send(Inbox::Connection(true));
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
        if conn == CLIENT {
            self.client_up = false;
            self.shared.metrics.client_up.store(false, Ordering::Relaxed);
            // The brewery is rejoined (and the bridge list rebuilt) after the reconnect;
            // conferences keep their bridge sessions meanwhile.
            let _ = self.shared.bridges.lock().clear();
            for r in self.rooms.values() {
                let _ = r.tx.try_send(Inbox::Connection(false));
            }
        } else {
            self.shared.metrics.component_up.store(false, Ordering::Relaxed);
        }
    }

    fn stanza(&mut self, conn: ConnId, el: Element, out: &mut Outbox) {
        let now = Instant::now();
        match el.name.as_str() {
            "iq" => match el.get_attr("type") {
                Some("get") | Some("set") => self.on_iq_request(conn, el, now, out),
                Some("result") | Some("error") => {
                    let id = el.get_attr("id").unwrap_or_default().to_string();
                    if conn == CLIENT && self.shared.bridges.lock().is_health_id(&id) {
                        let events = self.shared.bridges.lock().on_health_answer(&el, now);
                        self.broadcast_bridge_events(events);
                    } else if let Some(room) = self.route_by_id(&id) {
                        self.forward(conn, &room, Inbox::Stanza(el), out);
                    } else {
                        debug!("answer to an unknown request: {:?}", el.get_attr("id"));
                    }
                }
                _ => out.send(conn, iq_error(&el, ErrorCondition::BadRequest, Some("IQ without a valid type"))),
            },
            "presence" => {
                if let Some(room) = el.get_attr("from").and_then(|f| Jid::parse(f).ok()).map(|j| j.bare()) {
                    if conn == CLIENT && room == self.cfg.bridge_muc {
                        if el.get_attr("type") == Some("error") {
                            let cond = crate::xmpp::stanza::parse_error(&el).map(|e| e.condition_name);
                            warn!("cannot join the brewery {}: {}", room, cond.unwrap_or_default());
                            return;
                        }
                        let events = self.shared.bridges.lock().on_presence(&el, &self.shared.nick, now);
                        self.broadcast_bridge_events(events);
                    } else if self.rooms.contains_key(&room) {
                        self.forward(conn, &room, Inbox::Stanza(el), out);
                    }
                }
            }
            _ => {}
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        if self.client_up {
            self.shared.bridges.lock().next_deadline()
        } else {
            None
        }
    }

    fn tick(&mut self, now: Instant, out: &mut Outbox) {
        if self.client_up {
            let seq = &mut self.health_seq;
            let (checks, events) = self.shared.bridges.lock().tick(now, || {
                *seq += 1;
                format!("h{}", seq)
            });
            for c in checks {
                out.send(CLIENT, c);
            }
            self.broadcast_bridge_events(events);
        }
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
        }
        for r in self.rooms.values() {
            let _ = r.tx.try_send(Inbox::Shutdown);
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

    fn router(args: &[&str]) -> FocusRouter {
        let mut a: Vec<String> = vec!["--domain=meet.test".into(), "--secret=s".into()];
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

    #[test]
    fn client_proxy_requests_use_the_real_sender_and_answer_the_proxy() {
        let mut r = router(&["--auth_domain=meet.test"]);
        let mut out = Outbox::default();
        // A guest behind the proxy may not create a room; the error goes back to the proxy JID.
        let proxied = "focus.meet.test/guest@guest.meet.test/abc";
        r.stanza(CLIENT, request(proxied, "focus@auth.meet.test/focus", "r1@conference.meet.test"), &mut out);
        let sent = out.drain();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].1.get_attr("to"), Some(proxied));
        assert_eq!(parse_error(&sent[0].1).unwrap().condition_name, "not-authorized");
        // A user of the secure domain behind the proxy is authenticated from the resource.
        let user = "focus.meet.test/user1@meet.test/xyz";
        r.stanza(CLIENT, request(user, "focus@auth.meet.test/focus", "r1@conference.meet.test"), &mut out);
        assert!(out.drain().is_empty(), "handed to the new conference, no error");
        assert_eq!(r.conference_count(), 1);
        let sessions = r.shared.sessions.clone().unwrap();
        assert!(sessions.lock().is_authenticated(&Jid::parse("user1@meet.test/xyz").unwrap()));
    }

    #[test]
    fn bad_requests_and_unknown_iqs_are_answered_at_once() {
        let mut r = router(&[]);
        let mut out = Outbox::default();
        r.stanza(COMPONENT, request("u@meet.test/r", "focus.meet.test", "not-a-room"), &mut out);
        let e = out.drain().remove(0).1;
        assert_eq!(parse_error(&e).unwrap().condition_name, "bad-request");
        let mut no_room = request("u@meet.test/r", "focus.meet.test", "x@y");
        no_room.get_child_mut("conference", ns::FOCUS).unwrap().remove_attr("room");
        r.stanza(COMPONENT, no_room, &mut out);
        let e = out.drain().remove(0).1;
        assert_eq!(parse_error(&e).unwrap().text.as_deref(), Some("No 'room' specified."));
        let other = Element::new("iq", ns::COMPONENT)
            .attr("type", "get")
            .attr("id", "q")
            .attr("from", "u@meet.test/r")
            .attr("to", "focus.meet.test")
            .child(Element::new("query", "jabber:iq:nothing"));
        r.stanza(COMPONENT, other, &mut out);
        assert_eq!(parse_error(&out.drain()[0].1).unwrap().condition_name, "service-unavailable");
        // login-url without a secure domain: service-unavailable.
        let lu = Element::new("iq", ns::COMPONENT)
            .attr("type", "get")
            .attr("id", "l")
            .attr("from", "u@meet.test/r")
            .attr("to", "focus.meet.test")
            .child(Element::new("login-url", ns::FOCUS).attr("room", "r@c.meet.test").attr("machine-uid", "m"));
        r.stanza(COMPONENT, lu, &mut out);
        assert_eq!(parse_error(&out.drain()[0].1).unwrap().condition_name, "service-unavailable");
    }
}
