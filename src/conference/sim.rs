//! A simulated [`Env`] for tests: scripted, timed inbox messages, a fake MUC service
//! that answers the focus's requests, and a clock that jumps to the next event.
//! No threads, sockets or sleeps: a conference runs to its end in microseconds.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::Env;
use crate::messages::Inbox;
use crate::jid::Jid;
use crate::net::ConnId;
use crate::xml::Element;
use crate::xmpp::ns;
use crate::xmpp::stanza::iq_result;

/// Answers a stanza the conference sent; returns the stanzas to deliver back.
pub type Responder = Box<dyn FnMut(&Element) -> Vec<Element> + Send>;

/// The simulated environment.
pub struct SimEnv {
    now: Instant,
    start: Instant,
    /// Scripted messages and when they arrive.
    script: Vec<(Instant, Inbox)>,
    /// Messages produced by the responder, delivered before the script's next item.
    replies: VecDeque<Inbox>,
    /// Everything the conference sent, with the time it was sent.
    pub sent: Vec<(Duration, ConnId, Element)>,
    responder: Responder,
    /// From then on the inbox is closed (its sender dropped): every `recv` says `Shutdown`.
    closed_at: Option<Instant>,
    /// `recv` calls after the close (a conference that keeps waiting would loop).
    after_close: u64,
    /// The backlog the conference reports (messages, bytes), and the largest it was.
    pub backlog: usize,
    pub max_backlog: usize,
    pub backlog_bytes: usize,
    pub max_backlog_bytes: usize,
}

impl SimEnv {
    pub fn new(responder: Responder) -> SimEnv {
        let now = Instant::now();
        SimEnv {
            now,
            start: now,
            script: Vec::new(),
            replies: VecDeque::new(),
            sent: Vec::new(),
            responder,
            closed_at: None,
            after_close: 0,
            backlog: 0,
            max_backlog: 0,
            backlog_bytes: 0,
            max_backlog_bytes: 0,
        }
    }

    /// Close the inbox at `at` after the start, as a dropped sender does for the real
    /// `Env`: from then on `recv` returns `Shutdown` at once, every time.
    pub fn close_at(&mut self, at: Duration) {
        self.closed_at = Some(self.start + at);
    }

    /// Deliver `msg` at `at` after the start.
    pub fn at(&mut self, at: Duration, msg: Inbox) {
        let t = self.start + at;
        let pos = self.script.iter().position(|(x, _)| *x > t).unwrap_or(self.script.len());
        self.script.insert(pos, (t, msg));
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Stanzas sent so far matching `f`.
    pub fn sent_matching<F: Fn(&Element) -> bool>(&self, f: F) -> Vec<&Element> {
        self.sent.iter().map(|(_, _, e)| e).filter(|e| f(e)).collect()
    }
}

impl Env for SimEnv {
    fn set_backlog(&mut self, n: usize, bytes: usize) {
        self.backlog = n;
        self.max_backlog = self.max_backlog.max(n);
        self.backlog_bytes = bytes;
        self.max_backlog_bytes = self.max_backlog_bytes.max(bytes);
    }

    fn send(&mut self, conn: ConnId, el: Element) {
        self.sent.push((self.now - self.start, conn, el.clone()));
        for r in (self.responder)(&el) {
            self.replies.push_back(Inbox::Stanza(r));
        }
    }

    fn now(&self) -> Instant {
        self.now
    }

    fn recv(&mut self, deadline: Option<Instant>) -> Option<Inbox> {
        if let Some(m) = self.replies.pop_front() {
            return Some(m);
        }
        if let Some(c) = self.closed_at {
            let before_close = self.script.first().is_some_and(|(t, _)| *t <= c);
            if !before_close && deadline.is_none_or(|d| d >= c) {
                self.now = self.now.max(c);
                self.after_close += 1;
                assert!(self.after_close < 100_000, "the conference keeps waiting on a closed inbox");
                return Some(Inbox::Shutdown);
            }
        }
        match (self.script.first().map(|(t, _)| *t), deadline) {
            (Some(t), Some(d)) if t > d => {
                self.now = self.now.max(d);
                None
            }
            (Some(_), _) => {
                let (t, m) = self.script.remove(0);
                self.now = self.now.max(t);
                Some(m)
            }
            (None, Some(d)) => {
                self.now = self.now.max(d);
                None
            }
            (None, None) => Some(Inbox::Shutdown),
        }
    }
}

/// A `Shared` for tests: focus `focus@auth.meet.test/focus` on `ConnId(1)`, these
/// bridges and sessions.
pub fn test_shared(bridges: crate::bridge::Bridges, sessions: Option<crate::auth::Sessions>) -> std::sync::Arc<super::Shared> {
    test_shared_with(bridges, sessions, crate::config::limits::Limits::default())
}

/// [`test_shared`] with these limits. Ids come from a generator with a fixed seed.
pub fn test_shared_with(
    bridges: crate::bridge::Bridges,
    sessions: Option<crate::auth::Sessions>,
    limits: crate::config::limits::Limits,
) -> std::sync::Arc<super::Shared> {
    use parking_lot::Mutex;
    use std::sync::Arc;
    Arc::new(super::Shared {
        client: ConnId(1),
        nick: "focus".into(),
        focus_jid: "focus@auth.meet.test".into(),
        sessions: sessions.map(|s| Arc::new(Mutex::new(s))),
        caps_cache: Mutex::new(crate::xmpp::caps::CapsCache::new()),
        bridges: Arc::new(Mutex::new(bridges)),
        metrics: Arc::new(crate::metrics::Metrics::new()),
        focus_full: Mutex::new(Some("focus@auth.meet.test/focus".into())),
        control: None,
        pending: Mutex::new(crate::messages::pending::PendingTable::seeded(11)),
        limits,
    })
}

/// A fake MUC service for room `room`: answers the focus's join (as owner), the
/// owner form, affiliation changes and participants' disco.
pub fn muc_responder(room: Jid, focus_real: Jid) -> Responder {
    Box::new(move |el: &Element| {
        let mut out = Vec::new();
        match el.name.as_str() {
            "presence" if el.get_child("x", ns::MUC).is_some() => {
                let to = el.get_attr("to").unwrap_or_default().to_string();
                out.push(
                    Element::new("presence", ns::CLIENT).attr("from", to).child(
                        Element::new("x", ns::MUC_USER)
                            .child(
                                Element::new("item", ns::MUC_USER)
                                    .attr("jid", focus_real.to_string())
                                    .attr("affiliation", "owner")
                                    .attr("role", "moderator"),
                            )
                            .child(Element::new("status", ns::MUC_USER).attr("code", "110"))
                            .child(Element::new("status", ns::MUC_USER).attr("code", "201")),
                    ),
                );
            }
            "iq" if el.get_attr("to") == Some(room.to_string().as_str()) => {
                let mut r = iq_result(el);
                r.set_attr("from", room.to_string());
                if el.get_attr("type") == Some("get") && el.get_child("query", ns::MUC_OWNER).is_some() {
                    r = r.child(Element::new("query", ns::MUC_OWNER).child(Element::new("x", ns::DATA).attr("type", "form")));
                }
                out.push(r);
            }
            "iq" if el.get_child("query", ns::DISCO_INFO).is_some() => {
                let mut q = Element::new("query", ns::DISCO_INFO);
                for f in ["urn:xmpp:jingle:apps:rtp:audio", "urn:xmpp:jingle:apps:rtp:video"] {
                    q = q.child(Element::new("feature", ns::DISCO_INFO).attr("var", f));
                }
                out.push(iq_result(el).child(q));
            }
            _ => {}
        }
        out
    })
}

/// The presence the MUC sends when `nick` (real JID `jid`) joins `room`.
pub fn occupant_presence(room: &Jid, nick: &str, jid: &str, affiliation: &str, role: &str) -> Element {
    Element::new("presence", ns::CLIENT).attr("from", room.with_resource(nick).to_string()).child(
        Element::new("x", ns::MUC_USER).child(
            Element::new("item", ns::MUC_USER).attr("jid", jid).attr("affiliation", affiliation).attr("role", role),
        ),
    )
}

/// The presence the MUC sends when `nick` leaves `room`.
pub fn occupant_leave(room: &Jid, nick: &str) -> Element {
    Element::new("presence", ns::CLIENT)
        .attr("from", room.with_resource(nick).to_string())
        .attr("type", "unavailable")
        .child(Element::new("x", ns::MUC_USER).child(Element::new("item", ns::MUC_USER).attr("affiliation", "none").attr("role", "none")))
}

/// A fake bridge `bridge` on top of `muc`: answers every `conference-modify` sent to it
/// like a bridge would (a transport for each created endpoint, feedback sources on
/// creates) and passes everything else to `muc` (which may be another fake bridge).
pub fn with_bridge(bridge: Jid, mut muc: Responder) -> Responder {
    let mut n = 0u32;
    Box::new(move |el: &Element| {
        let Some(cm) = el.get_child("conference-modify", ns::COLIBRI2) else { return muc(el) };
        if el.get_attr("to") != Some(bridge.to_string().as_str()) {
            return muc(el); // another bridge (or nobody) answers
        }
        let mut out = Element::new("conference-modified", ns::COLIBRI2);
        let mut created = cm.get_attr("create") == Some("true");
        for ep in cm.children_named("endpoint", ns::COLIBRI2) {
            let id = ep.get_attr("id").unwrap_or_default().to_string();
            let mut e = Element::new("endpoint", ns::COLIBRI2).attr("id", id.clone());
            if ep.get_attr("create") == Some("true") {
                created = true;
                n += 1;
                let ice = Element::new("transport", "urn:xmpp:jingle:transports:ice-udp:1")
                    .attr("ufrag", format!("{}-u{}", bridge.resource().unwrap_or("jvb"), n))
                    .attr("pwd", "pwdpwdpwdpwdpwdpwdpwdpwd")
                    .child(Element::new("rtcp-mux", "urn:xmpp:jingle:transports:ice-udp:1"))
                    .child(
                        Element::new("fingerprint", "urn:xmpp:jingle:apps:dtls:0")
                            .attr("hash", "sha-256")
                            .attr("setup", "actpass")
                            .text("AA:BB"),
                    );
                let mut t = Element::new("transport", ns::COLIBRI2).child(ice);
                if ep.get_child("transport", ns::COLIBRI2).is_some_and(|t| t.get_child("sctp", ns::COLIBRI2).is_some()) {
                    t = t.child(Element::new("sctp", ns::COLIBRI2).attr("port", "5000").attr("role", "server"));
                }
                e = e.child(t);
            }
            out = out.child(e);
        }
        if created {
            out = out.child(
                Element::new("sources", ns::COLIBRI2)
                    .child(
                        Element::new("media-source", ns::COLIBRI2).attr("type", "audio").attr("id", "jvb-a0").child(
                            Element::new("source", "urn:xmpp:jingle:apps:rtp:ssma:0").attr("ssrc", "111").attr("name", "jvb-a0"),
                        ),
                    )
                    .child(
                        Element::new("media-source", ns::COLIBRI2).attr("type", "video").attr("id", "jvb-v0").child(
                            Element::new("source", "urn:xmpp:jingle:apps:rtp:ssma:0").attr("ssrc", "222").attr("name", "jvb-v0"),
                        ),
                    ),
            );
        }
        let mut r = iq_result(el).child(out);
        r.set_attr("from", bridge.to_string());
        vec![r]
    })
}
