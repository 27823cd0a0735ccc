//! A simulated [`Env`] for tests: scripted, timed inbox messages, a fake MUC service
//! that answers the focus's requests, and a clock that jumps to the next event.
//! No threads, sockets or sleeps: a conference runs to its end in microseconds.
//! Randomness comes from a generator with a fixed seed ([`SimEnv::with_seed`]) and the
//! wall clock starts at a fixed date, so the same script gives the same stanzas.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

use super::Env;
use crate::messages::inbox::{Offered, Route};
use crate::messages::Inbox;
use crate::jid::Jid;
use crate::net::ConnId;
use crate::xml::Element;
use crate::xmpp::ns;
use crate::xmpp::stanza::iq_result;

/// Answers a stanza the conference sent; returns the stanzas to deliver back.
pub type Responder = Box<dyn FnMut(&Element) -> Vec<Element> + Send>;

/// Builds a scripted message when it is due, from what the conference sent so far
/// (e.g. a Jingle request that needs the sid of the latest offer).
pub type Later = Box<dyn FnOnce(&[(Duration, ConnId, Element)]) -> Inbox + Send>;

/// A scripted message: given, or built when it is due.
enum Scripted {
    Now(Inbox),
    Later(Later),
}

/// The router's side of the conference's inbox (`messages::inbox::Route`): in this mode scripted
/// messages are offered to it as the router offers what arrives (full: IQs refused,
/// presences held), and the conference takes them from its channel; what it keeps
/// aside is reported to the route's load, as the real `Env` does.
pub struct SimInbox {
    pub(crate) route: Route,
    /// Messages the route refused, with the time.
    pub refused: Vec<(Duration, Inbox)>,
    /// Presences the route held at least once.
    pub held: usize,
}

/// The simulated environment.
pub struct SimEnv {
    now: Instant,
    start: Instant,
    /// Scripted messages and when they arrive.
    script: Vec<(Instant, Scripted)>,
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
    rng: StdRng,
    /// The router's inbox, when messages go through one (`SimEnv::through_inbox`, tests).
    pub inbox: Option<SimInbox>,
}

/// The simulated wall clock at the start: 2026-01-01T00:00:00Z.
pub const SIM_EPOCH_SECS: u64 = 1_767_225_600;

impl SimEnv {
    /// With the random generator seeded by 0.
    pub fn new(responder: Responder) -> SimEnv {
        SimEnv::with_seed(responder, 0)
    }

    /// With the random generator (ids, sids) seeded by `seed`.
    pub fn with_seed(responder: Responder, seed: u64) -> SimEnv {
        let now = Instant::now();
        SimEnv {
            rng: StdRng::seed_from_u64(seed),
            inbox: None,
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
        self.schedule(at, Scripted::Now(msg));
    }

    /// Deliver at `at` the message `f` builds then from what was sent so far.
    pub fn at_with(&mut self, at: Duration, f: impl FnOnce(&[(Duration, ConnId, Element)]) -> Inbox + Send + 'static) {
        self.schedule(at, Scripted::Later(Box::new(f)));
    }

    fn schedule(&mut self, at: Duration, msg: Scripted) {
        let t = self.start + at;
        let pos = self.script.iter().position(|(x, _)| *x > t).unwrap_or(self.script.len());
        self.script.insert(pos, (t, msg));
    }

    /// Scripted messages go through `route` as through the router (see [`SimInbox`]).
    #[cfg(test)]
    pub(crate) fn through_inbox(&mut self, route: Route) {
        self.inbox = Some(SimInbox { route, refused: Vec::new(), held: 0 });
    }

    /// The next scripted message due by `deadline` (advancing the clock to it), built now.
    fn next_scripted(&mut self, deadline: Option<Instant>) -> Option<Inbox> {
        match (self.script.first().map(|(t, _)| *t), deadline) {
            (Some(t), Some(d)) if t > d => None,
            (Some(_), _) => {
                let (t, m) = self.script.remove(0);
                self.now = self.now.max(t);
                Some(match m {
                    Scripted::Now(m) => m,
                    Scripted::Later(f) => f(&self.sent),
                })
            }
            (None, _) => None,
        }
    }

    /// `recv` through the router's inbox: offer what is due until the channel has something.
    fn recv_through_inbox(&mut self, deadline: Option<Instant>) -> Option<Inbox> {
        loop {
            let inbox = self.inbox.as_mut().expect("inbox mode");
            inbox.route.flush();
            if let Ok(m) = inbox.route.rx.try_recv() {
                inbox.route.load.taken(m.weight());
                return Some(m);
            }
            let Some(m) = self.next_scripted(deadline) else {
                if self.script.is_empty() && deadline.is_none() && self.inbox.as_ref().is_some_and(|i| i.route.held.is_empty()) {
                    return Some(Inbox::Shutdown);
                }
                if let Some(d) = deadline {
                    self.now = self.now.max(d);
                }
                return None;
            };
            let at = self.now - self.start;
            let inbox = self.inbox.as_mut().expect("inbox mode");
            match inbox.route.offer(m) {
                Offered::Delivered => {}
                Offered::Held(_) | Offered::HeldComponent(_) => inbox.held += 1,
                Offered::Refused(m) => inbox.refused.push((at, m)),
            }
        }
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
        if let Some(i) = &self.inbox {
            i.route.load.report_backlog(n, bytes);
        }
        self.backlog = n;
        self.max_backlog = self.max_backlog.max(n);
        self.backlog_bytes = bytes;
        self.max_backlog_bytes = self.max_backlog_bytes.max(bytes);
    }

    fn send(&mut self, conn: ConnId, el: Element) {
        // As the receiver sees it: cached source encodings (raw XML) parsed into elements.
        let el = if el.contains_raw() { el.reparsed().expect("the focus writes well-formed XML") } else { el };
        self.sent.push((self.now - self.start, conn, el.clone()));
        for r in (self.responder)(&el) {
            self.replies.push_back(Inbox::Stanza(r));
        }
    }

    fn now(&self) -> Instant {
        self.now
    }

    fn wall_clock(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(SIM_EPOCH_SECS) + (self.now - self.start)
    }

    fn random_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    fn recv(&mut self, deadline: Option<Instant>) -> Option<Inbox> {
        if let Some(m) = self.replies.pop_front() {
            return Some(m);
        }
        if self.inbox.is_some() {
            return self.recv_through_inbox(deadline);
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
        if let Some(m) = self.next_scripted(deadline) {
            return Some(m);
        }
        match deadline {
            Some(d) => {
                self.now = self.now.max(d);
                None
            }
            None => Some(Inbox::Shutdown),
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
        jibri: Arc::new(crate::jibri::Jibris::new(
            Some(Jid::parse("JibriBrewery@internal.auth.meet.test").unwrap()),
            Some(Jid::parse("SipBrewery@internal.auth.meet.test").unwrap()),
            crate::jibri::SessionConfig::default(),
        )),
        jigasi: Arc::new(crate::jigasi::Jigasis::new(Some(Jid::parse("JigasiBrewery@internal.auth.meet.test").unwrap()))),
        trusted_domains: vec!["recorder.meet.test".into()],
        moderation: Default::default(),
        breakouts: Default::default(),
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
