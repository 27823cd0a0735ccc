//! The event loop and its connections against a fake XMPP server on loopback: a plain
//! `TcpListener` speaking just enough of XEP-0114 (or of a client stream) to get the
//! connection ready, then sending what a test needs. The router records what reaches it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, Sender};

use super::{spawn, ConnId, ConnSpec, LinkSecurity, NetHandle, Negotiation, Outbox, Router, TlsOptions};
use crate::jid::Jid;
use crate::xml::framer::{Frame, Framer};
use crate::xml::{parse_stanza, Element, RawElement, RawWriter};
use crate::xmpp::ns;
use crate::xmpp::stanza::parse_error;

/// What reached the router.
#[derive(Debug)]
pub(crate) enum Ev {
    /// Connected as this JID, over a link of this security.
    Connected(Jid, LinkSecurity),
    Reconnected(String),
    Disconnected(String),
    Stanza(Element),
}

pub(crate) struct TestRouter(pub Sender<Ev>, pub Option<LinkSecurity>);

impl Router for TestRouter {
    fn link_security(&mut self, _conn: ConnId, security: LinkSecurity) {
        self.1 = Some(security);
    }
    fn connected(&mut self, _conn: ConnId, jid: &Jid, _out: &mut Outbox) {
        let security = self.1.take().expect("link_security comes before connected");
        let _ = self.0.send(Ev::Connected(jid.clone(), security));
    }
    fn reconnected(&mut self, _conn: ConnId, name: &str) {
        let _ = self.0.send(Ev::Reconnected(name.to_string()));
    }
    fn disconnected(&mut self, _conn: ConnId, reason: &str, _out: &mut Outbox) {
        let _ = self.0.send(Ev::Disconnected(reason.to_string()));
    }
    fn stanza(&mut self, _conn: ConnId, st: crate::xmpp::incoming::Incoming, _out: &mut Outbox) {
        let el = st.into_element();
        let _ = self.0.send(Ev::Stanza(el));
    }
}

/// The server side of one accepted connection.
pub(crate) struct Peer {
    sock: TcpStream,
    framer: Framer,
}

pub(crate) const COMPONENT_JID: &str = "focus.test";

impl Peer {
    pub fn accept(listener: &TcpListener) -> Peer {
        let (sock, _) = listener.accept().unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        Peer { sock, framer: Framer::new(1 << 20) }
    }

    /// Accept a component connection and complete the handshake (the secret is not checked).
    pub fn accept_component(listener: &TcpListener) -> Peer {
        let mut p = Peer::accept(listener);
        assert!(matches!(p.frame(Duration::from_secs(5)), Some(Frame::StreamHeader(_))));
        p.send(&format!(
            "<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' \
             xmlns='jabber:component:accept' id='s1' from='{COMPONENT_JID}'>"
        ));
        let hs = p.next(Duration::from_secs(5)).expect("handshake");
        assert_eq!(hs.name, "handshake");
        p.send("<handshake/>");
        p
    }

    pub fn send(&mut self, text: &str) {
        self.sock.write_all(text.as_bytes()).unwrap();
    }

    /// The next frame within `timeout`; None on timeout or when the connection closed.
    pub fn frame(&mut self, timeout: Duration) -> Option<Frame> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 65536];
        loop {
            if let Some(f) = self.framer.next_frame().expect("the focus writes a well-formed stream") {
                return Some(f);
            }
            if Instant::now() >= deadline {
                return None;
            }
            match self.sock.read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => self.framer.feed(&buf[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => return None,
            }
        }
    }

    /// The next stanza within `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Option<Element> {
        match self.frame(timeout)? {
            Frame::Stanza(t) => Some(parse_stanza(&t, self.framer.header().unwrap()).unwrap()),
            other => panic!("fake server: unexpected {other:?}"),
        }
    }

    /// The next stanza that is not a keepalive ping.
    pub fn next_non_ping(&mut self, timeout: Duration) -> Option<Element> {
        let deadline = Instant::now() + timeout;
        loop {
            let el = self.next(deadline.saturating_duration_since(Instant::now()))?;
            if el.get_child("ping", ns::PING).is_none() {
                return Some(el);
            }
        }
    }
}

pub(crate) fn component_spec(port: u16, keepalive: Duration, max_stanza: usize) -> ConnSpec {
    ConnSpec {
        name: "component".into(),
        host: "127.0.0.1".into(),
        port,
        negotiation: Negotiation::Component { jid: COMPONENT_JID.into(), secret: "s3cret".into() },
        tls: TlsOptions::default(),
        keepalive,
        max_stanza,
        max_nodes: crate::xml::MAX_NODES,
        typed: false,
    }
}

pub(crate) struct Running {
    pub handle: NetHandle,
    pub events: Receiver<Ev>,
    join: Option<JoinHandle<()>>,
}

impl Running {
    pub fn start(specs: Vec<ConnSpec>) -> Running {
        let (tx, events) = unbounded();
        let (handle, join) = spawn(specs, Box::new(TestRouter(tx, None))).unwrap();
        Running { handle, events, join: Some(join) }
    }

    /// The next event within `timeout`.
    pub fn event(&self, timeout: Duration) -> Option<Ev> {
        self.events.recv_timeout(timeout).ok()
    }

    /// The next stanza that reached the router (other events must not come first).
    pub fn stanza(&self, timeout: Duration) -> Option<Element> {
        match self.event(timeout)? {
            Ev::Stanza(el) => Some(el),
            other => panic!("expected a stanza at the router, got {other:?}"),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

const T: Duration = Duration::from_secs(5);

fn connected(run: &Running) {
    match run.event(T) {
        Some(Ev::Connected(j, security)) => {
            assert_eq!(j.to_string(), COMPONENT_JID);
            assert_eq!(security, LinkSecurity::Plain);
        }
        other => panic!("expected connected, got {other:?}"),
    }
}

#[test]
fn oversized_too_deep_and_malformed_stanzas_cost_their_sender_an_error_and_the_stream_stays_up() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let cap = 4096;
    let run = Running::start(vec![component_spec(listener.local_addr().unwrap().port(), Duration::from_secs(30), cap)]);
    let mut p = Peer::accept_component(&listener);
    connected(&run);

    let from = "mallory@meet.test/r";
    let big = "&apos;".repeat(cap);
    p.send(&format!("<iq type='set' id='big1' from='{from}' to='{COMPONENT_JID}'><q xmlns='urn:q'>{big}</q></iq>"));
    let deep = format!("{}{}", "<a>".repeat(100), "</a>".repeat(100));
    p.send(&format!("<iq type='get' id='deep1' from='{from}' to='{COMPONENT_JID}/x'>{deep}</iq>"));
    // Framed but not namespace-well-formed: an undeclared prefix.
    p.send(&format!("<iq type='get' id='bad1' from='{from}' to='{COMPONENT_JID}'><q:x/></iq>"));
    // Not IQ requests: dropped without an answer.
    p.send(&format!("<message from='{from}' to='{COMPONENT_JID}' id='m1'><body>{big}</body></message>"));
    p.send(&format!("<iq type='result' id='r1' from='{from}' to='{COMPONENT_JID}'>{deep}</iq>"));
    p.send(&format!("<presence from='{from}' to='{COMPONENT_JID}'>{deep}</presence>"));
    p.send(&format!("<message from='{from}' to='{COMPONENT_JID}' id='after'><body>still here</body></message>"));

    for (id, to_from, cond) in [
        ("big1", COMPONENT_JID.to_string(), "policy-violation"),
        ("deep1", format!("{COMPONENT_JID}/x"), "policy-violation"),
        ("bad1", COMPONENT_JID.to_string(), "bad-request"),
    ] {
        let e = p.next_non_ping(T).unwrap_or_else(|| panic!("no answer to {id}"));
        assert_eq!((e.name.as_str(), e.get_attr("type"), e.get_attr("id")), ("iq", Some("error"), Some(id)), "{e}");
        assert_eq!(e.get_attr("to"), Some(from));
        // On the component stream the error comes from the address the IQ was sent to.
        assert_eq!(e.get_attr("from"), Some(to_from.as_str()));
        let err = parse_error(&e).unwrap();
        assert_eq!(err.condition.as_str(), cond);
        assert_eq!(err.error_type, "modify");
    }
    // The router saw only the well-formed message, and no disconnection.
    let el = run.stanza(T).expect("the stanza after the dropped ones");
    assert_eq!(el.get_attr("id"), Some("after"));
    assert!(run.event(Duration::from_millis(200)).is_none());
    // Nothing else was written (no second answer, no stream error).
    assert!(p.next_non_ping(Duration::from_millis(200)).is_none());
}

#[test]
fn a_stanza_over_the_parsers_node_cap_costs_its_sender_a_policy_violation_and_the_stream_stays_up() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let run = Running::start(vec![component_spec(listener.local_addr().unwrap().port(), Duration::from_secs(30), crate::xml::DEFAULT_MAX_STANZA)]);
    let mut p = Peer::accept_component(&listener);
    connected(&run);
    let from = "mallory@meet.test/r";
    // 80 KiB, under the size cap and one level deep, but 20 000 elements once parsed.
    let flat = "<a/>".repeat(20_000);
    p.send(&format!("<iq type='set' id='many1' from='{from}' to='{COMPONENT_JID}'><q xmlns='urn:q'>{flat}</q></iq>"));
    p.send(&format!("<presence from='{from}' to='{COMPONENT_JID}'>{flat}</presence>"));
    p.send(&format!("<message from='{from}' to='{COMPONENT_JID}' id='after'/>"));
    let e = p.next_non_ping(T).expect("an answer to many1");
    assert_eq!((e.get_attr("type"), e.get_attr("id"), e.get_attr("to")), (Some("error"), Some("many1"), Some(from)));
    let err = parse_error(&e).unwrap();
    assert_eq!(err.condition.as_str(), "policy-violation");
    assert!(err.text.unwrap().contains("nodes"));
    assert_eq!(run.stanza(T).expect("the stream goes on").get_attr("id"), Some("after"));
    assert!(run.event(Duration::from_millis(200)).is_none(), "no disconnection");
}

#[test]
fn keepalive_answers_count_only_from_the_pinged_address_with_an_outstanding_random_id() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let ka = Duration::from_millis(300);
    let run = Running::start(vec![component_spec(listener.local_addr().unwrap().port(), ka, 1 << 16)]);
    let mut p = Peer::accept_component(&listener);
    connected(&run);

    let ping = p.next(T).expect("a ping");
    let ping2 = p.next(T).expect("a second ping");
    for pg in [&ping, &ping2] {
        assert!(pg.get_child("ping", ns::PING).is_some() && pg.get_attr("type") == Some("get"));
        assert_eq!(pg.get_attr("to"), Some(COMPONENT_JID));
        let id = pg.get_attr("id").unwrap();
        assert!(id.len() >= 16 && u64::from_str_radix(id, 16).is_ok(), "id {id}: 64 random bits");
    }
    let (id, id2) = (ping.get_attr("id").unwrap(), ping2.get_attr("id").unwrap());
    assert_ne!(id, id2);

    let answer = |id: &str, from: &str| format!("<iq type='result' id='{id}' from='{from}' to='{COMPONENT_JID}'/>");
    // A forged answer (right id, another sender) is not taken as the keepalive answer:
    // it goes up like any stanza (where nothing waits for it).
    p.send(&answer(id, "mallory@meet.test/r"));
    assert_eq!(run.stanza(T).unwrap().get_attr("from"), Some("mallory@meet.test/r"));
    // Right sender, id never sent: goes up too.
    p.send(&answer("0123456789abcdef", COMPONENT_JID));
    assert_eq!(run.stanza(T).unwrap().get_attr("id"), Some("0123456789abcdef"));
    // The real answers (result or error) are consumed here.
    p.send(&answer(id, COMPONENT_JID));
    p.send(&format!(
        "<iq type='error' id='{id2}' from='{COMPONENT_JID}' to='{COMPONENT_JID}'><error type='cancel'>\
         <service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    ));
    // An answer replayed after its id was used goes up.
    p.send(&answer(id, COMPONENT_JID));
    let replay = run.stanza(T).unwrap();
    assert_eq!((replay.get_attr("id"), replay.get_attr("type")), (Some(id), Some("result")));

    // Unanswered pings are bounded: many intervals later, the connection is still up
    // (the server keeps talking), and at most a few ids are remembered.
    let until = Instant::now() + ka * 8;
    let mut seen = std::collections::HashSet::new();
    while Instant::now() < until {
        p.send(" ");
        if let Some(el) = p.next(Duration::from_millis(100)) {
            seen.insert(el.get_attr("id").unwrap().to_string());
        }
    }
    assert!(seen.len() >= 5, "{seen:?}");
    // The oldest of them is forgotten: its answer goes up; the newest is still consumed.
    let mut ids: Vec<String> = Vec::new();
    while let Some(el) = p.next(ka * 2) {
        ids.push(el.get_attr("id").unwrap().to_string());
        if ids.len() == 5 {
            break;
        }
        p.send(" ");
    }
    assert_eq!(ids.len(), 5);
    p.send(&answer(&ids[0], COMPONENT_JID));
    p.send(&answer(&ids[4], COMPONENT_JID));
    p.send(&format!("<message id='marker' from='{COMPONENT_JID}'/>"));
    assert_eq!(run.stanza(T).unwrap().get_attr("id"), Some(ids[0].as_str()));
    assert_eq!(run.stanza(T).unwrap().get_attr("id"), Some("marker"));
    assert!(!matches!(run.event(Duration::from_millis(100)), Some(Ev::Disconnected(_))));
}

/// Accept on a non-blocking listener within `timeout`.
fn accept_within(listener: &TcpListener, timeout: Duration) -> Option<Instant> {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match listener.accept() {
            Ok((s, _)) => {
                drop(s);
                return Some(Instant::now());
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("accept: {e}"),
        }
    }
    None
}

#[test]
fn a_lost_connection_is_back_within_a_second_and_reported_as_a_reconnect() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let run = Running::start(vec![component_spec(listener.local_addr().unwrap().port(), Duration::from_secs(30), 1 << 16)]);
    let p = Peer::accept_component(&listener);
    connected(&run);
    // The first connection is not a reconnect.
    drop(p);
    let lost = Instant::now();
    match run.event(T) {
        Some(Ev::Disconnected(r)) => assert!(r.contains("closed"), "{r}"),
        other => panic!("{other:?}"),
    }
    let _p = Peer::accept_component(&listener);
    let back = lost.elapsed();
    assert!(back < Duration::from_secs(1), "reconnected after {back:?}");
    match run.event(T) {
        Some(Ev::Reconnected(name)) => assert_eq!(name, "component"),
        other => panic!("expected the reconnect hook, got {other:?}"),
    }
    connected(&run);
}

#[test]
fn while_the_server_refuses_connections_it_is_retried_every_half_second() {
    // A port nobody listens on: connections are refused.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let run = Running::start(vec![component_spec(port, Duration::from_secs(30), 1 << 16)]);
    assert!(matches!(run.event(T), Some(Ev::Disconnected(_))));
    std::thread::sleep(Duration::from_millis(1700));
    // The server comes back: the next attempt is within 0.5 s (plus scheduling slack).
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let up = Instant::now();
    let at = accept_within(&listener, Duration::from_secs(3)).expect("no reconnect attempt within 3 s");
    assert!(at - up < Duration::from_millis(800), "attempt {:?} after the server came back", at - up);
    // Only the first failure was reported, not every refused attempt.
    assert!(run.event(Duration::from_millis(100)).is_none());
}

#[test]
fn a_client_connection_requiring_tls_fails_clearly_when_starttls_is_not_offered() {
    use crate::xmpp::c2s::{ClientConfig, TlsPolicy};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let spec = ConnSpec {
        name: "client".into(),
        host: "127.0.0.1".into(),
        port: listener.local_addr().unwrap().port(),
        negotiation: Negotiation::Client(ClientConfig {
            domain: "auth.test".into(),
            username: Some("focus".into()),
            password: Some("pw".into()),
            resource: "focus".into(),
            tls: TlsPolicy::Required,
        }),
        tls: TlsOptions::default(),
        keepalive: Duration::from_secs(30),
        max_stanza: 1 << 16,
        max_nodes: crate::xml::MAX_NODES,
        typed: false,
    };
    let run = Running::start(vec![spec]);
    let mut p = Peer::accept(&listener);
    assert!(matches!(p.frame(T), Some(Frame::StreamHeader(_))));
    // A server (or a man in the middle) offering SASL but no STARTTLS.
    p.send(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' \
         id='c1' from='auth.test' version='1.0'><stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
         <mechanism>PLAIN</mechanism><mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>",
    );
    match run.event(T) {
        Some(Ev::Disconnected(r)) => {
            assert!(r.contains("did not offer STARTTLS") && r.contains("--tls_insecure"), "{r}");
        }
        other => panic!("{other:?}"),
    }
    // Nothing was sent in the clear: the stream just closed.
    match p.frame(Duration::from_millis(300)) {
        None | Some(Frame::StreamEnd) => {}
        Some(other) => panic!("sent after the features: {other:?}"),
    }
    // A refusing server is retried on the slow schedule (about 1 s), not every 0.5 s.
    let t = Instant::now();
    let at = accept_within(&listener, Duration::from_secs(3)).expect("retried");
    assert!(at - t >= Duration::from_millis(600), "retried after {:?}", at - t);
}

#[test]
fn a_burst_of_large_stanzas_to_a_slow_reader_is_held_back_not_dropped() {
    // 300 stanzas of 256 KiB (75 MiB) queued at once while the server does not read:
    // past HIGH_WATER the loop stops taking them (per stanza, not per turn), so the
    // write queue never reaches the 64 MiB at which the connection is dropped.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let run = Running::start(vec![component_spec(listener.local_addr().unwrap().port(), Duration::from_secs(30), 1 << 20)]);
    let mut p = Peer::accept_component(&listener);
    connected(&run);
    let body = "x".repeat(256 * 1024);
    let body_len = body.len();
    let sender = run.handle.clone();
    // Every other one written ahead (raw): both kinds count against the same limits.
    let raw_body = {
        let mut w = crate::xml::RawWriter::new();
        w.start("body", ns::COMPONENT);
        w.text(&body);
        w.finish()
    };
    let burst = std::thread::spawn(move || {
        for i in 0..300 {
            if i % 2 == 1 {
                let m = RawElement::new("message", ns::COMPONENT, raw_body.clone()).attr("to", "a@meet.test").attr("id", format!("b{i}"));
                sender.send(ConnId(0), m).unwrap();
                continue;
            }
            let m = Element::new("message", ns::COMPONENT).attr("to", "a@meet.test").attr("id", format!("b{i}")).child(
                Element::new("body", ns::COMPONENT).text(body.clone()),
            );
            sender.send(ConnId(0), m).unwrap();
        }
    });
    std::thread::sleep(Duration::from_secs(1));
    let mut got = 0;
    while got < 300 {
        let el = p.next_non_ping(Duration::from_secs(20)).unwrap_or_else(|| panic!("only {got} of 300 arrived"));
        assert_eq!(el.get_attr("id"), Some(format!("b{got}").as_str()), "in order");
        assert_eq!(el.get_child("body", ns::COMPONENT).map(|b| b.text_content().len()), Some(body_len), "whole");
        got += 1;
    }
    burst.join().unwrap();
    while let Some(ev) = run.event(Duration::from_millis(100)) {
        assert!(!matches!(ev, Ev::Disconnected(_)), "the connection was dropped: {ev:?}");
    }
}

#[test]
fn a_client_connection_to_loopback_without_starttls_reports_that_it_is_plain() {
    use crate::xmpp::c2s::{ClientConfig, TlsPolicy};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let spec = ConnSpec {
        name: "client".into(),
        host: "127.0.0.1".into(),
        port: listener.local_addr().unwrap().port(),
        negotiation: Negotiation::Client(ClientConfig {
            domain: "auth.test".into(),
            username: None,
            password: None,
            resource: "focus".into(),
            tls: TlsPolicy::IfOffered,
        }),
        tls: TlsOptions::default(),
        keepalive: Duration::from_secs(30),
        max_stanza: 1 << 16,
        max_nodes: crate::xml::MAX_NODES,
        typed: false,
    };
    let run = Running::start(vec![spec]);
    let mut p = Peer::accept(&listener);
    let header = |id: &str| {
        format!(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' \
             id='{id}' from='auth.test' version='1.0'>"
        )
    };
    assert!(matches!(p.frame(T), Some(Frame::StreamHeader(_))));
    // A loopback Prosody without a certificate: no STARTTLS offered.
    p.send(&format!(
        "{}<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>ANONYMOUS</mechanism></mechanisms></stream:features>",
        header("c1")
    ));
    let auth = p.next(T).expect("auth");
    assert_eq!((auth.name.as_str(), auth.get_attr("mechanism")), ("auth", Some("ANONYMOUS")));
    p.send("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    p.framer.reset();
    assert!(matches!(p.frame(T), Some(Frame::StreamHeader(_))), "the stream restarts");
    p.send(&format!("{}<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>", header("c2")));
    let bind = p.next(T).expect("bind");
    let id = bind.get_attr("id").unwrap().to_string();
    p.send(&format!(
        "<iq type='result' id='{id}'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>x1@auth.test/focus</jid></bind></iq>"
    ));
    match run.event(T) {
        Some(Ev::Connected(j, security)) => {
            assert_eq!(j.to_string(), "x1@auth.test/focus");
            assert_eq!(security, LinkSecurity::Plain, "no TLS was used, and the router is told so");
        }
        other => panic!("{other:?}"),
    }
}

/// Counts the stanzas that reach it between two `tick`s (one loop turn).
struct TurnCounter {
    connected: Sender<()>,
    counts: std::sync::Arc<parking_lot::Mutex<(u64, u64, u64)>>,
}

impl Router for TurnCounter {
    fn connected(&mut self, _conn: ConnId, _jid: &Jid, _out: &mut Outbox) {
        let _ = self.connected.send(());
    }
    fn disconnected(&mut self, _conn: ConnId, _reason: &str, _out: &mut Outbox) {}
    fn stanza(&mut self, _conn: ConnId, _st: crate::xmpp::incoming::Incoming, out: &mut Outbox) {
        // Every stanza costs an answer, as a hostile IQ does.
        out.send(ConnId(0), Element::new("message", ns::COMPONENT).attr("to", "x@meet.test"));
        let mut c = self.counts.lock();
        c.0 += 1;
        c.2 += 1;
    }
    fn tick(&mut self, _now: Instant, _out: &mut Outbox) {
        let mut c = self.counts.lock();
        c.1 = c.1.max(c.0);
        c.0 = 0;
    }
}

#[test]
fn a_flood_from_the_server_is_read_a_megabyte_per_loop_turn() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let (tx, connected_rx) = unbounded();
    let counts = std::sync::Arc::new(parking_lot::Mutex::new((0u64, 0u64, 0u64)));
    let router = TurnCounter { connected: tx, counts: counts.clone() };
    let spec = component_spec(listener.local_addr().unwrap().port(), Duration::from_secs(30), 1 << 16);
    let (handle, join) = spawn(vec![spec], Box::new(router)).unwrap();
    let mut p = Peer::accept_component(&listener);
    connected_rx.recv_timeout(T).expect("connected");
    // 8 MiB of small stanzas at once: far faster than they can be parsed.
    let one = format!("<message from='mallory@meet.test/r' to='{COMPONENT_JID}' id='f'><body>flood</body></message>");
    let n = (8 << 20) / one.len();
    let writer = {
        let mut sock = p.sock.try_clone().unwrap();
        let data = one.repeat(n);
        std::thread::spawn(move || sock.write_all(data.as_bytes()).unwrap())
    };
    // Keep draining what the focus answers, so its writes never block the test.
    let deadline = Instant::now() + Duration::from_secs(60);
    while counts.lock().2 < n as u64 && Instant::now() < deadline {
        let _ = p.frame(Duration::from_millis(10));
    }
    writer.join().unwrap();
    let (_, max_per_turn, total) = *counts.lock();
    assert_eq!(total, n as u64, "every stanza arrived");
    // One turn reads at most READ_PER_TURN (plus the 64 KiB read that crosses it).
    let per_turn = (super::conn::READ_PER_TURN + 64 * 1024) / one.len() + 1;
    assert!(max_per_turn <= per_turn as u64, "{} stanzas in one turn (at most {} expected)", max_per_turn, per_turn);
    handle.shutdown();
    let _ = join.join();
}

/// A stanza written ahead ([`RawElement`]) is copied onto the stream as the same tree
/// would be written: the namespace declared as the stream needs, `from` added on a
/// component stream when missing, counted like any other; while the connection is not
/// ready an IQ request of that kind is answered locally with `service-unavailable`, from
/// its addressee, as a tree would be.
#[test]
fn stanzas_written_ahead_are_sent_like_trees() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let run = Running::start(vec![component_spec(listener.local_addr().unwrap().port(), Duration::from_secs(30), 1 << 20)]);
    let body = |hostile: &str| {
        let mut w = RawWriter::new();
        w.start("query", "urn:x:test");
        w.attr("v", hostile);
        w.text(hostile);
        w.finish()
    };
    let hostile = "a'b\"c<d>&e]]>";
    // Not connected yet (the server has not accepted): answered locally.
    let early = RawElement::new("iq", ns::CLIENT, body(hostile)).attr("type", "get").attr("id", "r1").attr("from", "focus@x/f").attr("to", "jvb@x/j");
    run.handle.send(ConnId(0), early).unwrap();
    let err = run.stanza(T).expect("a local error");
    assert_eq!((err.get_attr("type"), err.get_attr("id")), (Some("error"), Some("r1")));
    assert_eq!((err.get_attr("from"), err.get_attr("to")), (Some("jvb@x/j"), Some("focus@x/f")));
    assert_eq!(parse_error(&err).map(|e| e.condition_name), Some("service-unavailable".into()));

    let mut p = Peer::accept_component(&listener);
    connected(&run);
    for (i, raw) in [true, false].into_iter().enumerate() {
        let id = format!("q{i}");
        if raw {
            let st = RawElement::new("iq", ns::CLIENT, body(hostile)).attr("type", "set").attr("id", id.as_str()).attr("to", "jvb@x/j");
            run.handle.send(ConnId(0), st).unwrap();
        } else {
            let tree = Element::new("iq", ns::CLIENT).attr("type", "set").attr("id", id.as_str()).attr("to", "jvb@x/j").child(
                Element::new("query", "urn:x:test").attr("v", hostile).text(hostile),
            );
            run.handle.send(ConnId(0), tree).unwrap();
        }
        let got = p.next_non_ping(T).expect("sent");
        assert_eq!(got.ns, ns::CLIENT, "the namespace is declared on the component stream");
        assert_eq!(got.get_attr("from"), Some(COMPONENT_JID), "from added");
        assert_eq!(got.get_attr("id"), Some(id.as_str()));
        let q = got.get_child("query", "urn:x:test").expect("body");
        assert_eq!((q.get_attr("v"), q.text_content().as_str()), (Some(hostile), hostile));
    }
    // An empty body is an empty element.
    run.handle.send(ConnId(0), RawElement::new("presence", ns::COMPONENT, crate::xml::RawXml::default()).attr("to", "r@x")).unwrap();
    let got = p.next_non_ping(T).expect("sent");
    assert_eq!((got.name.as_str(), got.elements().count(), got.get_attr("to")), ("presence", 0, Some("r@x")));
}
