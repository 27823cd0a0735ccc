//! A small blocking XMPP client for integration tests: std `TcpStream`, native-tls for
//! STARTTLS, the crate's framer, stanza parser and client negotiator. Every failure
//! panics with a readable message (it is test code).
//!
//! ```ignore
//! let mut c = TestClient::login("127.0.0.1", port, "auth.meet.test", "focus", pw, "focus", &ca);
//! c.send(&presence);
//! let p = c.wait_for(Duration::from_secs(5), |el| el.name == "presence").expect("presence");
//! let answer = c.iq(request, Duration::from_secs(5));
//! ```
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use jicofo::jid::Jid;
use jicofo::xml::{parse_stanza, Element, Frame, Framer};
use jicofo::xmpp::ns;
use jicofo::xmpp::c2s::{ClientConfig, ClientNegotiator, TlsPolicy};
use jicofo::xmpp::Action;

enum Stream {
    Plain(TcpStream),
    Tls(native_tls::TlsStream<TcpStream>),
    Gone,
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => t.get_ref(),
            Stream::Gone => panic!("test client: stream already closed"),
        }
    }

    fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.write_all(b).and_then(|_| s.flush()),
            Stream::Tls(t) => t.write_all(b).and_then(|_| t.flush()),
            Stream::Gone => Err(ErrorKind::NotConnected.into()),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(t) => t.read(buf),
            Stream::Gone => Err(ErrorKind::NotConnected.into()),
        }
    }
}

/// A logged-in client.
pub struct TestClient {
    stream: Stream,
    framer: Framer,
    /// The bound full JID.
    pub jid: Jid,
    backlog: VecDeque<Element>,
    next_id: u64,
    /// When set, disco#info requests are answered with these features.
    pub disco_features: Option<Vec<String>>,
    pending_keep: VecDeque<Element>,
    /// Ids of the IQ requests (get/set) received so far (the last `SEEN_IDS_MAX`),
    /// including those answered automatically (pings, disco#info).
    pub seen_request_ids: VecDeque<String>,
    /// When set, a stanza that does not parse or that the framer skips (over the size cap or
    /// nested deeper than the limit) is counted in `unparsed` and dropped instead of failing
    /// the test.
    pub tolerant: bool,
    /// Stanzas skipped because they did not parse (with `tolerant`).
    pub unparsed: usize,
}

/// How many received request ids a client remembers.
pub const SEEN_IDS_MAX: usize = 1000;

/// Largest stanza a test client accepts: far above the focus's cap, so that a test can
/// receive back (e.g. reflected by the MUC) whatever it sent.
pub const TEST_MAX_STANZA: usize = 64 * 1024 * 1024;

impl TestClient {
    /// Connect, STARTTLS (trusting `ca_file`), SASL, bind `resource`; initial presence is sent.
    pub fn login(host: &str, port: u16, domain: &str, user: &str, password: &str, resource: &str, ca_file: &Path) -> TestClient {
        let tcp = TcpStream::connect((host, port)).unwrap_or_else(|e| panic!("test client: connect {}:{}: {}", host, port, e));
        let _ = tcp.set_nodelay(true);
        let mut c = TestClient {
            stream: Stream::Plain(tcp),
            framer: Framer::new(TEST_MAX_STANZA),
            jid: Jid::parse(domain).unwrap(),
            backlog: VecDeque::new(),
            next_id: 0,
            disco_features: None,
            pending_keep: VecDeque::new(),
            seen_request_ids: VecDeque::new(),
            tolerant: false,
            unparsed: 0,
        };
        let mut neg = ClientNegotiator::new(ClientConfig {
            domain: domain.to_string(),
            username: (!user.is_empty()).then(|| user.to_string()),
            password: (!password.is_empty()).then(|| password.to_string()),
            resource: resource.to_string(),
            tls: TlsPolicy::IfOffered,
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut actions: VecDeque<Action> = neg.start().into();
        loop {
            while let Some(a) = actions.pop_front() {
                match a {
                    Action::Send(text) => c.write_raw(&text),
                    Action::ResetStream => c.framer.reset(),
                    Action::StartTls => {
                        let pem = std::fs::read(ca_file).unwrap_or_else(|e| panic!("test client: {}: {}", ca_file.display(), e));
                        let cert = native_tls::Certificate::from_pem(&pem).expect("test client: CA is PEM");
                        let connector = native_tls::TlsConnector::builder().add_root_certificate(cert).build().unwrap();
                        let tcp = match std::mem::replace(&mut c.stream, Stream::Gone) {
                            Stream::Plain(t) => t,
                            _ => panic!("test client: STARTTLS twice"),
                        };
                        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                        let tls = connector.connect(domain, tcp).unwrap_or_else(|e| panic!("test client: TLS handshake: {}", e));
                        c.stream = Stream::Tls(tls);
                        actions.extend(neg.on_tls_established());
                    }
                    Action::Ready { jid } => {
                        c.jid = jid;
                        return c;
                    }
                }
            }
            let frame = c.read_frame(deadline).unwrap_or_else(|| panic!("test client: negotiation with {} timed out", domain));
            let res = match frame {
                Frame::StreamHeader(h) => neg.on_stream_header(&h),
                Frame::StreamEnd => panic!("test client: server closed the stream during negotiation"),
                Frame::Skipped(s) => panic!("test client: stanza skipped during negotiation: {s:?}"),
                Frame::Stanza(text) => {
                    let header = c.framer.header().cloned().unwrap_or_default();
                    let el = parse_stanza(&text, &header).expect("test client: parse");
                    neg.on_element(&el)
                }
            };
            actions.extend(res.unwrap_or_else(|e| panic!("test client: negotiation failed: {}", e)));
        }
    }

    /// An anonymous login (SASL ANONYMOUS) on `domain`.
    pub fn anonymous(host: &str, port: u16, domain: &str, ca_file: &Path) -> TestClient {
        TestClient::login(host, port, domain, "", "", "anon", ca_file)
    }

    fn write_raw(&mut self, text: &str) {
        self.stream.write_all(text.as_bytes()).unwrap_or_else(|e| panic!("test client: write: {}", e));
    }

    /// Send text as it is (e.g. markup the `Element` writer would not produce: deep
    /// nesting, unescaped `'` in text). It must be whole stanzas.
    pub fn send_raw(&mut self, text: &str) {
        self.write_raw(text);
    }

    /// Send a stanza (in the `jabber:client` stream namespace).
    pub fn send(&mut self, el: &Element) {
        let text = el.to_xml_in(ns::CLIENT);
        self.write_raw(&text);
    }

    /// A fresh IQ id.
    pub fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("t{}", self.next_id)
    }

    fn read_frame(&mut self, deadline: Instant) -> Option<Frame> {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match self.framer.next_frame() {
                Ok(Some(f)) => return Some(f),
                Ok(None) => {}
                Err(e) => panic!("test client: framing: {}", e),
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            let left = (deadline - now).max(Duration::from_millis(1));
            self.stream.tcp().set_read_timeout(Some(left)).unwrap();
            match self.stream.read(&mut buf) {
                Ok(0) => return Some(Frame::StreamEnd),
                Ok(n) => self.framer.feed(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
                Err(e) => panic!("test client: read: {}", e),
            }
        }
    }

    /// The next stanza within `timeout` (pings from the server are answered here).
    pub fn next(&mut self, timeout: Duration) -> Option<Element> {
        if let Some(el) = self.backlog.pop_front() {
            return Some(el);
        }

        let deadline = Instant::now() + timeout;
        loop {
            match self.read_frame(deadline)? {
                Frame::StreamHeader(_) => panic!("test client: unexpected stream header"),
                Frame::StreamEnd => panic!("test client: the server closed the stream"),
                Frame::Skipped(_) if self.tolerant => {
                    self.unparsed += 1;
                    continue;
                }
                Frame::Skipped(s) => panic!("test client: stanza skipped: {s:?}"),
                Frame::Stanza(text) => {
                    let header = self.framer.header().cloned().unwrap_or_default();
                    let el = match parse_stanza(&text, &header) {
                        Ok(el) => el,
                        Err(_) if self.tolerant => {
                            self.unparsed += 1;
                            continue;
                        }
                        Err(e) => panic!("test client: parse: {}", e),
                    };
                    if el.name == "iq" && matches!(el.get_attr("type"), Some("get") | Some("set")) {
                        if let Some(id) = el.get_attr("id") {
                            if self.seen_request_ids.len() >= SEEN_IDS_MAX {
                                self.seen_request_ids.pop_front();
                            }
                            self.seen_request_ids.push_back(id.to_string());
                        }
                    }
                    if el.name == "iq" && el.get_attr("type") == Some("get") && el.get_child("ping", ns::PING).is_some() {
                        let r = jicofo::xmpp::stanza::iq_result(&el);
                        self.send(&r);
                        continue;
                    }
                    if let Some(features) = &self.disco_features {
                        if el.name == "iq" && el.get_attr("type") == Some("get") && el.get_child("query", ns::DISCO_INFO).is_some() {
                            let mut q = Element::new("query", ns::DISCO_INFO);
                            for f in features {
                                q = q.child(Element::new("feature", ns::DISCO_INFO).attr("var", f.clone()));
                            }
                            let r = jicofo::xmpp::stanza::iq_result(&el).child(q);
                            self.send(&r);
                            continue;
                        }
                    }
                    return Some(el);
                }
            }
        }
    }

    /// Put a stanza back; `next` returns put-back stanzas (in order) before reading more.
    pub fn push_back(&mut self, el: Element) {
        self.backlog.push_back(el);
    }

    /// Wait for the first stanza matching `pred`, looking at kept stanzas first; the
    /// others are kept (in order) for later calls.
    pub fn wait_for(&mut self, timeout: Duration, mut pred: impl FnMut(&Element) -> bool) -> Option<Element> {
        if let Some(pos) = self.backlog.iter().position(|el| pred(el)) {
            return self.backlog.remove(pos);
        }
        let deadline = Instant::now() + timeout;
        let kept = std::mem::take(&mut self.backlog);
        let mut found = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left) {
                Some(el) if pred(&el) => {
                    found = Some(el);
                    break;
                }
                Some(el) => self.backlog.push_back(el),
                None => break,
            }
            // `next` must not return what we just kept: read only from the socket.
            if self.backlog.len() > 10_000 {
                self.backlog.pop_front();
            }
            if !self.backlog.is_empty() {
                let tail: Vec<Element> = self.backlog.drain(..).collect();
                self.pending_keep.extend(tail);
            }
        }
        let mut all: VecDeque<Element> = kept;
        all.extend(self.pending_keep.drain(..));
        all.extend(self.backlog.drain(..));
        self.backlog = all;
        found
    }

    /// Everything kept plus everything that arrives until nothing has come for `quiet`
    /// (pings and, with `disco_features`, disco#info are still answered).
    pub fn drain(&mut self, quiet: Duration) -> Vec<Element> {
        let mut all: Vec<Element> = self.backlog.drain(..).collect();
        while let Some(el) = self.next(quiet) {
            all.push(el);
        }
        all
    }

    /// Drop every kept stanza.
    pub fn clear_kept(&mut self) {
        self.backlog.clear();
    }

    /// Send an IQ request (an id is set if missing) and wait for its answer.
    pub fn iq(&mut self, mut req: Element, timeout: Duration) -> Element {
        let id = match req.get_attr("id") {
            Some(id) => id.to_string(),
            None => {
                let id = self.new_id();
                req.set_attr("id", id.clone());
                id
            }
        };
        self.send(&req);
        self.wait_for(timeout, |el| {
            el.name == "iq" && el.get_attr("id") == Some(id.as_str()) && matches!(el.get_attr("type"), Some("result") | Some("error"))
        })
        .unwrap_or_else(|| panic!("test client: no answer to IQ {} within {:?}", id, timeout))
    }

    /// Close the stream.
    pub fn close(mut self) {
        let _ = self.stream.write_all(b"</stream:stream>");
    }
}
