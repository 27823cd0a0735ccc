//! A simulated [`Env`] for tests: scripted, timed inbox messages, a fake MUC service
//! that answers the focus's requests ([`muc_responder`]), the one fake bridge of the unit
//! tests ([`FakeBridge`]: answers, silence, errors, graceful shutdown, per request kind),
//! and a clock that jumps to the next event.
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
use crate::xml::{Element, Node};
use crate::xmpp::ns;
use crate::xmpp::stanza::{iq_error, iq_result, ErrorCondition};

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
    /// The backlog the conference reports: messages kept aside now…
    pub backlog: usize,
    /// …the most it kept at once…
    pub max_backlog: usize,
    /// …their weight in bytes now…
    pub backlog_bytes: usize,
    /// …and the largest weight.
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

    fn send(&mut self, conn: ConnId, el: crate::xml::Outgoing) {
        // As the receiver sees it: what was written ahead (raw XML) parsed into elements.
        let el = el.into_tree().expect("the focus writes well-formed XML");
        self.sent.push((self.now - self.start, conn, el.clone()));
        for r in (self.responder)(&el) {
            self.replies.push_back(Inbox::stanza(r));
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

/// Which Colibri2 requests a [`FakeBridge`] rule applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requests {
    /// Every request (the conference's expiry too).
    All,
    /// Every request that names an endpoint (allocations, updates, endpoint expiries).
    AnyEndpoint,
    /// Requests that name this endpoint.
    Endpoint(String),
    /// Requests that create this endpoint (its allocation).
    Allocation(String),
    /// Requests that update this endpoint (neither create nor expire it).
    Update(String),
}

/// What a [`FakeBridge`] does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// Answers as a bridge does: a transport (ICE, DTLS, SCTP when asked) for every
    /// created endpoint, the bridge's feedback sources on a create, and a new transport of
    /// the next ICE generation for an in-place ICE restart.
    Answer,
    /// Never answers.
    Silent,
    /// An error with this condition and, when given, a Colibri2 `reason`
    /// (`<error xmlns='jitsi:colibri2' reason=…>`; with `unknown_endpoint`, the endpoint is named).
    Error(ErrorCondition, Option<&'static str>),
}

impl Behaviour {
    /// The error of a bridge in graceful shutdown (`service-unavailable`, `graceful_shutdown`).
    pub fn graceful_shutdown() -> Behaviour {
        Behaviour::Error(ErrorCondition::ServiceUnavailable, Some("graceful_shutdown"))
    }
}

/// The one fake bridge of the unit tests: it answers the Colibri2 requests sent to its
/// JID as a bridge does ([`Behaviour::Answer`]), except those a rule ([`FakeBridge::on`])
/// gives another behaviour: silence, an error, a graceful shutdown. The first matching
/// rule wins. Combined with the fake MUC (or another fake bridge) by [`FakeBridge::around`].
/// The bridge simulator for the integration tests is a separate tool (`src/bin/jvb-sim`).
#[derive(Debug, Clone)]
pub struct FakeBridge {
    jid: Jid,
    /// (requests, behaviour, how many more times; `None`: always).
    rules: Vec<(Requests, Behaviour, Option<u32>)>,
    /// Endpoints created so far (their ICE ufrags are `<resource>-u<n>`).
    created: u32,
    /// The last ICE generation given in an in-place ICE restart.
    ice_generation: u32,
}

impl FakeBridge {
    /// A bridge at `jid` that answers everything.
    pub fn new(jid: Jid) -> FakeBridge {
        FakeBridge { jid, rules: Vec::new(), created: 0, ice_generation: 0 }
    }

    /// From now on, `requests` get `behaviour` (unless an earlier rule matches them).
    pub fn on(mut self, requests: Requests, behaviour: Behaviour) -> FakeBridge {
        self.rules.push((requests, behaviour, None));
        self
    }

    /// The next `times` of `requests` get `behaviour` (unless an earlier rule matches them);
    /// later ones are answered by the next rule that matches, or as a bridge does.
    pub fn on_times(mut self, requests: Requests, behaviour: Behaviour, times: u32) -> FakeBridge {
        self.rules.push((requests, behaviour, Some(times)));
        self
    }

    /// This bridge in front of `next`: Colibri2 requests to this bridge are answered here,
    /// everything else goes to `next` (the fake MUC, or another fake bridge).
    pub fn around(mut self, mut next: Responder) -> Responder {
        Box::new(move |el: &Element| self.answer(el).unwrap_or_else(|| next(el)))
    }

    /// The answer to `el` when it is a Colibri2 request to this bridge (possibly none at
    /// all), `None` when it is not for this bridge.
    pub fn answer(&mut self, el: &Element) -> Option<Vec<Element>> {
        let cm = el.get_child("conference-modify", ns::COLIBRI2)?;
        if el.get_attr("to") != Some(self.jid.to_string().as_str()) {
            return None;
        }
        let endpoints: Vec<&Element> = cm.children_named("endpoint", ns::COLIBRI2).collect();
        let named: Vec<&str> = endpoints.iter().filter_map(|e| e.get_attr("id")).collect();
        let names = |id: &str, create: bool| {
            endpoints.iter().any(|e| {
                let (c, x) = (e.get_attr("create") == Some("true"), e.get_attr("expire") == Some("true"));
                e.get_attr("id") == Some(id) && if create { c } else { !c && !x }
            })
        };
        let rule = self.rules.iter_mut().find(|(r, _, left)| {
            *left != Some(0)
                && match r {
                    Requests::All => true,
                    Requests::AnyEndpoint => !named.is_empty(),
                    Requests::Endpoint(id) => named.contains(&id.as_str()),
                    Requests::Allocation(id) => names(id, true),
                    Requests::Update(id) => names(id, false),
                }
        });
        let behaviour = match rule {
            Some((_, b, left)) => {
                if let Some(n) = left {
                    *n -= 1;
                }
                b.clone()
            }
            None => Behaviour::Answer,
        };
        Some(match behaviour {
            Behaviour::Answer => vec![self.modified(el, cm)],
            Behaviour::Silent => Vec::new(),
            Behaviour::Error(condition, reason) => {
                let mut err = iq_error(el, condition, None);
                err.set_attr("from", self.jid.to_string());
                if let Some(x) = err.get_child_mut("error", ns::CLIENT) {
                    if let Some(r) = reason {
                        x.children.push(Node::Element(Element::new("error", ns::COLIBRI2).attr("reason", r)));
                    }
                    if reason == Some("unknown_endpoint") {
                        if let Some(id) = named.first() {
                            x.children.push(Node::Element(Element::new("endpoint", ns::COLIBRI2).attr("id", *id)));
                        }
                    }
                }
                vec![err]
            }
        })
    }

    /// The `conference-modified` answer to `cm`.
    fn modified(&mut self, el: &Element, cm: &Element) -> Element {
        let mut out = Element::new("conference-modified", ns::COLIBRI2);
        let mut created = cm.get_attr("create") == Some("true");
        for ep in cm.children_named("endpoint", ns::COLIBRI2) {
            let id = ep.get_attr("id").unwrap_or_default().to_string();
            let mut e = Element::new("endpoint", ns::COLIBRI2).attr("id", id.clone());
            let asked = ep.get_child("transport", ns::COLIBRI2);
            if ep.get_attr("create") == Some("true") {
                created = true;
                self.created += 1;
                let ice = Element::new("transport", ns::ICE_UDP)
                    .attr("ufrag", format!("{}-u{}", self.jid.resource().unwrap_or("jvb"), self.created))
                    .attr("pwd", "pwdpwdpwdpwdpwdpwdpwdpwd")
                    .child(Element::new("rtcp-mux", ns::ICE_UDP))
                    .child(
                        Element::new("fingerprint", "urn:xmpp:jingle:apps:dtls:0")
                            .attr("hash", "sha-256")
                            .attr("setup", "actpass")
                            .text("AA:BB"),
                    );
                let mut t = Element::new("transport", ns::COLIBRI2).child(ice);
                if asked.is_some_and(|t| t.get_child("sctp", ns::COLIBRI2).is_some()) {
                    t = t.child(Element::new("sctp", ns::COLIBRI2).attr("port", "5000").attr("role", "server"));
                }
                e = e.child(t);
            } else if asked.is_some_and(|t| t.get_attr("ice-restart") == Some("true")) {
                self.ice_generation += 1;
                let g = self.ice_generation;
                let ice = Element::new("transport", ns::ICE_UDP)
                    .attr("ufrag", format!("new{g}"))
                    .attr("pwd", "newpwdnewpwdnewpwdnewpwd")
                    .attr("ice-generation", g.to_string());
                e = e.child(Element::new("transport", ns::COLIBRI2).child(ice));
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
        r.set_attr("from", self.jid.to_string());
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xmpp::colibri2::{parse_answer, ConferenceModify, EndpointRequest, Reaction};

    fn jvb() -> Jid {
        Jid::parse("jvbbrewery@internal.auth.meet.test/jvb1").unwrap()
    }

    fn req(endpoint: &str, create: bool) -> Element {
        let ep = EndpointRequest { id: endpoint.into(), create, ..Default::default() };
        ConferenceModify { meeting_id: "m".into(), create, endpoints: vec![ep], ..Default::default() }.to_iq(&jvb(), "id1")
    }

    #[test]
    fn the_fake_bridge_answers_allocations_restarts_and_only_its_own_requests() {
        let mut b = FakeBridge::new(jvb());
        let a = b.answer(&req("a", true)).unwrap();
        let m = parse_answer(a.first(), true).unwrap();
        assert_eq!(a[0].get_attr("from"), Some(jvb().to_string().as_str()));
        assert_eq!(m.endpoint("a").and_then(|e| e.transport.as_ref()).and_then(|t| t.get_attr("ufrag")), Some("jvb1-u1"));
        assert!(m.sources.is_some(), "feedback sources on a create");
        let restart = EndpointRequest { id: "a".into(), ice_restart: true, ..Default::default() };
        let r = ConferenceModify { meeting_id: "m".into(), endpoints: vec![restart], ..Default::default() }.to_iq(&jvb(), "id2");
        let m = parse_answer(b.answer(&r).unwrap().first(), false).unwrap();
        let t = m.endpoint("a").and_then(|e| e.transport.clone()).unwrap();
        assert_eq!((t.get_attr("ufrag"), t.get_attr("ice-generation")), (Some("new1"), Some("1")));
        let mut other = req("a", true);
        other.set_attr("to", "jvbbrewery@internal.auth.meet.test/jvb2");
        assert!(b.answer(&other).is_none(), "another bridge's request");
        assert!(b.answer(&Element::new("iq", ns::CLIENT)).is_none(), "not Colibri2");
    }

    #[test]
    fn the_fake_bridge_is_silent_errs_or_shuts_down_as_configured() {
        let mut b = FakeBridge::new(jvb())
            .on(Requests::Endpoint("quiet".into()), Behaviour::Silent)
            .on(Requests::Endpoint("gone".into()), Behaviour::Error(ErrorCondition::ItemNotFound, Some("unknown_endpoint")))
            .on(Requests::Endpoint("bad".into()), Behaviour::Error(ErrorCondition::BadRequest, None))
            .on(Requests::AnyEndpoint, Behaviour::graceful_shutdown());
        assert_eq!(b.answer(&req("quiet", true)), Some(Vec::new()));
        let e = b.answer(&req("gone", false)).unwrap();
        assert_eq!(parse_answer(e.first(), false).unwrap_err().reaction, Reaction::UnknownEndpoint("gone".into()));
        assert_eq!(parse_answer(b.answer(&req("bad", true)).unwrap().first(), true).unwrap_err().reaction, Reaction::FailInvite);
        let e = b.answer(&req("x", true)).unwrap();
        assert_eq!(e[0].get_attr("from"), Some(jvb().to_string().as_str()));
        assert_eq!(parse_answer(e.first(), true).unwrap_err().reaction, Reaction::GracefulShutdown);
        // The conference's expiry names no endpoint: answered.
        let expire = ConferenceModify { meeting_id: "m".into(), expire: true, ..Default::default() }.to_iq(&jvb(), "id3");
        assert!(parse_answer(b.answer(&expire).unwrap().first(), false).is_ok());
        let mut all = FakeBridge::new(jvb()).on(Requests::All, Behaviour::Silent);
        assert_eq!(all.answer(&expire), Some(Vec::new()));
    }

    #[test]
    fn the_fake_bridge_tells_allocations_from_updates_and_counts_limited_rules() {
        let mut b = FakeBridge::new(jvb())
            .on(Requests::Update("a".into()), Behaviour::Error(ErrorCondition::ItemNotFound, Some("unknown_endpoint")))
            .on_times(Requests::Allocation("a".into()), Behaviour::Silent, 2);
        assert_eq!(b.answer(&req("a", true)), Some(Vec::new()));
        assert_eq!(b.answer(&req("a", true)), Some(Vec::new()));
        assert!(parse_answer(b.answer(&req("a", true)).unwrap().first(), true).is_ok(), "twice only");
        let e = b.answer(&req("a", false)).unwrap();
        assert_eq!(parse_answer(e.first(), false).unwrap_err().reaction, Reaction::UnknownEndpoint("a".into()));
        // An endpoint's expiry is neither.
        let ep = EndpointRequest { id: "a".into(), expire: true, ..Default::default() };
        let x = ConferenceModify { meeting_id: "m".into(), endpoints: vec![ep], ..Default::default() }.to_iq(&jvb(), "id4");
        assert!(parse_answer(b.answer(&x).unwrap().first(), false).is_ok());
    }
}
