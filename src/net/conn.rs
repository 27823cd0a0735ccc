//! One XMPP connection owned by the event loop: socket, TLS, framer, negotiation,
//! write queue, keepalive and reconnect.
//!
//! ```text
//!            backoff elapsed                 TCP up            negotiator Ready
//!  ┌──────┐ ───────────────▶ ┌────────────┐ ───────▶ ┌───────────┐ ───────▶ ┌───────┐
//!  │ Idle │                  │ Connecting │          │Negotiating│          │ Ready │
//!  └──────┘ ◀─────────────── └────────────┘ ◀─────── └───────────┘ ◀─────── └───────┘
//!       ▲        any failure: close socket, tell the router, wait the backoff     │
//!       └─────────────────────────────────────────────────────────────────────────┘
//! ```
//! STARTTLS happens inside `Negotiating`: the plain socket is wrapped in a native-tls
//! stream (its handshake runs over the same non-blocking socket) and the stream restarts.
//!
//! When `Ready`, each stanza is parsed and classified in one go
//! ([`crate::xmpp::incoming::parse`], or into a tree for a connection that is not
//! `typed`) and handed to the router. A stanza the framer skipped (over the size cap or the depth limit) or
//! that does not parse is not a stream failure: an IQ request among them is answered
//! with an IQ error on this stream (`policy-violation` for a skipped one or one over
//! the parser's node cap, `bad-request` when unparsable; `id` and addresses from its
//! opening tag), anything else is dropped; one
//! log line per 10 s at most. Keepalive pings carry random 64-bit ids; an answer is
//! consumed only when it comes from the pinged address with an id still outstanding
//! (at most [`MAX_PINGS_OUTSTANDING`] are kept), else it goes to the router like any
//! stanza. Any bytes from the server count as a sign of life. Failures wait for the
//! [`super::Backoff`] schedule: fast while the server is unreachable, slow when it
//! refuses us (negotiation failures); a session shorter than [`STABLE`] does not reset it.

use std::io::{self, Read, Write};
use std::net::ToSocketAddrs;
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use native_tls::{HandshakeError, MidHandshakeTlsStream, TlsConnector, TlsStream};

use super::{tls, Backoff, ConnId, ConnSpec, LinkSecurity, Negotiation, Outbox, Router};
use crate::log_throttle::LogThrottle;
use crate::jid::Jid;
use crate::xml::framer::{opening_tag, Frame, Framer, StreamHeader};
use crate::xml::{parse, Element, Outgoing};
use crate::xmpp::ns;
use crate::xmpp::c2s::ClientNegotiator;
use crate::xmpp::component::ComponentNegotiator;
use crate::xmpp::incoming::{self, Incoming};
use crate::xmpp::stanza::{iq_error, refuse_unread, ErrorCondition, IqType};
use crate::xmpp::Action;

/// Past this many unsent bytes the peer is not reading: the connection is dropped.
const MAX_WRITE_QUEUE: usize = 64 * 1024 * 1024;
/// A serialization buffer larger than this is not kept for the next stanza.
const SCRATCH_KEEP: usize = 64 * 1024;
/// Keepalive pings awaiting an answer that are remembered (the peer is dead after three
/// silent intervals anyway); the oldest is forgotten past this.
const MAX_PINGS_OUTSTANDING: usize = 4;
/// At most one "still failing" line per this interval while reconnecting.
const RETRY_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// A session up this long counts as stable: its loss starts a fresh reconnect schedule.
const STABLE: Duration = Duration::from_secs(30);
/// At most one log line per this interval for stanzas dropped unread (oversized,
/// too deep, unparsable): a participant can send them at will.
const DROP_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Bytes read from one connection per loop turn. Past it the loop serves everything
/// else (the other connection, other threads' stanzas, timers, the router's tick, the
/// answers queued so far) before reading on, so a flood the server relays faster than
/// the focus parses cannot hold the loop, nor pile up answers, for as long as it lasts.
pub(crate) const READ_PER_TURN: usize = 1 << 20;

enum Sock {
    None,
    Plain(TcpStream),
    Handshake(MidHandshakeTlsStream<TcpStream>),
    Tls(TlsStream<TcpStream>),
}

impl Sock {
    fn tcp_mut(&mut self) -> Option<&mut TcpStream> {
        match self {
            Sock::None => None,
            Sock::Plain(s) => Some(s),
            Sock::Handshake(m) => Some(m.get_mut()),
            Sock::Tls(t) => Some(t.get_mut()),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Sock::Plain(s) => s.read(buf),
            Sock::Tls(t) => t.read(buf),
            _ => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sock::Plain(s) => s.write(buf),
            Sock::Tls(t) => t.write(buf),
            _ => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

enum Negotiator {
    Client(ClientNegotiator),
    Component(ComponentNegotiator),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    Connecting,
    Negotiating,
    Ready,
    Closed,
}

pub(crate) struct Conn {
    pub id: ConnId,
    spec: ConnSpec,
    token: Token,
    state: State,
    sock: Sock,
    framer: Framer,
    neg: Option<Negotiator>,
    stream_ns: &'static str,
    wbuf: Vec<u8>,
    /// Reused for serializing a stanza's tree or start tag.
    scratch: String,
    wpos: usize,
    backoff: Backoff,
    /// The next failure is the server refusing us (credentials, TLS, configuration),
    /// not an unreachable server: retry on the slow schedule.
    slow_retry: bool,
    /// Came up at this instant (the current session).
    ready_at: Option<Instant>,
    /// Has been ready before: the next ready is a reconnect.
    ever_ready: bool,
    attempt: u32,
    retry_at: Option<Instant>,
    last_rx: Instant,
    next_ping: Option<Instant>,
    /// Ids of the keepalive pings not answered yet (random, oldest first).
    pings: std::collections::VecDeque<String>,
    /// Where the pings go (the server's domain for this stream); only answers from there count.
    ping_to: Option<Jid>,
    jid: Option<Jid>,
    /// Log lines for stanzas dropped unread.
    drop_log: LogThrottle,
    /// "still failing" log lines while retrying.
    retry_log: LogThrottle,
    connector: Option<TlsConnector>,
    last_failure: Option<String>,
    /// Set once `shutdown` has written the stream end.
    closing: bool,
    /// Stanzas queued since the event loop last collected this count.
    pub sent: u64,
    /// The last read stopped at [`READ_PER_TURN`], not at `WouldBlock`: data may be waiting
    /// with no readiness event to come (mio is edge-triggered), so the loop reads on.
    read_more: bool,
}

impl Conn {
    pub fn new(id: ConnId, spec: ConnSpec, token: Token, now: Instant) -> Conn {
        let max_stanza = spec.max_stanza;
        let stream_ns = match spec.negotiation {
            Negotiation::Component { .. } => ns::COMPONENT,
            Negotiation::Client(_) => ns::CLIENT,
        };
        Conn {
            id,
            spec,
            token,
            state: State::Idle,
            sock: Sock::None,
            framer: Framer::new(max_stanza),
            neg: None,
            stream_ns,
            wbuf: Vec::new(),
            scratch: String::new(),
            wpos: 0,
            backoff: Backoff::new(),
            slow_retry: false,
            ready_at: None,
            ever_ready: false,
            attempt: 0,
            retry_at: Some(now),
            last_rx: now,
            next_ping: None,
            pings: std::collections::VecDeque::new(),
            ping_to: None,
            jid: None,
            drop_log: LogThrottle::new(DROP_LOG_INTERVAL),
            retry_log: LogThrottle::new(RETRY_LOG_INTERVAL),
            connector: None,
            last_failure: None,
            closing: false,
            sent: 0,
            read_more: false,
        }
    }

    /// True when the last read stopped at its budget: call [`Conn::on_ready`] again soon.
    pub fn wants_read(&self) -> bool {
        self.read_more
    }

    pub fn has_pending_output(&self) -> bool {
        self.wpos < self.wbuf.len()
    }

    /// Bytes queued but not yet written.
    pub fn pending_output(&self) -> usize {
        self.wbuf.len() - self.wpos
    }

    /// The earliest instant this connection needs a timer call.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.state {
            State::Idle => self.retry_at,
            State::Connecting | State::Negotiating => Some(self.last_rx + Duration::from_secs(15)),
            State::Ready => {
                let dead = self.last_rx + self.spec.keepalive * 3;
                Some(self.next_ping.map_or(dead, |p| p.min(dead)))
            }
            State::Closed => None,
        }
    }

    /// Timers: reconnect after the backoff, keepalive pings, dead-peer and stuck-negotiation detection.
    pub fn on_timer(&mut self, registry: &Registry, now: Instant, router: &mut dyn Router, out: &mut Outbox) {
        match self.state {
            State::Idle => {
                if self.retry_at.is_some_and(|t| t <= now) {
                    self.retry_at = None;
                    self.start_connect(registry, now, router, out);
                }
            }
            State::Connecting | State::Negotiating => {
                if now >= self.last_rx + Duration::from_secs(15) {
                    self.fail(registry, now, "no answer from the server for 15 s while connecting".into(), router, out);
                }
            }
            State::Ready => {
                if now >= self.last_rx + self.spec.keepalive * 3 {
                    let reason = format!("peer silent for {} s, keepalive pings unanswered", (self.spec.keepalive * 3).as_secs());
                    self.fail(registry, now, reason, router, out);
                    return;
                }
                if self.next_ping.is_some_and(|p| p <= now) {
                    let id = format!("{:016x}", rand::random::<u64>());
                    if self.pings.len() >= MAX_PINGS_OUTSTANDING {
                        self.pings.pop_front();
                    }
                    self.pings.push_back(id.clone());
                    let to = self.ping_to.as_ref().map(|j| j.to_string()).unwrap_or_default();
                    let ping = Element::new("iq", self.stream_ns)
                        .attr("type", "get")
                        .attr("id", id)
                        .attr("to", to)
                        .child(Element::new("ping", ns::PING));
                    self.queue_element(ping);
                    self.next_ping = Some(now + self.spec.keepalive);
                    self.flush(registry, now, router, out);
                }
            }
            State::Closed => {}
        }
    }

    fn start_connect(&mut self, registry: &Registry, now: Instant, router: &mut dyn Router, out: &mut Outbox) {
        self.attempt += 1;
        if self.attempt == 1 {
            info!("{}: connecting to {}:{}", self.spec.name, self.spec.host, self.spec.port);
        } else {
            debug!("{}: connecting to {}:{} (attempt {})", self.spec.name, self.spec.host, self.spec.port, self.attempt);
        }
        let addr = match (self.spec.host.as_str(), self.spec.port).to_socket_addrs() {
            Ok(mut it) => match it.next() {
                Some(a) => a,
                None => {
                    let r = format!("host {} has no address (check --host)", self.spec.host);
                    return self.fail_slow(registry, now, r, router, out);
                }
            },
            Err(e) => {
                let r = format!("cannot resolve host {}: {} (check --host)", self.spec.host, e);
                return self.fail_slow(registry, now, r, router, out);
            }
        };
        let mut stream = match TcpStream::connect(addr) {
            Ok(s) => s,
            Err(e) => return self.fail(registry, now, format!("connect to {} failed: {}", addr, e), router, out),
        };
        if let Err(e) = registry.register(&mut stream, self.token, Interest::READABLE | Interest::WRITABLE) {
            return self.fail(registry, now, format!("cannot register socket: {}", e), router, out);
        }
        let _ = stream.set_nodelay(true);
        self.sock = Sock::Plain(stream);
        self.state = State::Connecting;
        self.last_rx = now;
        self.framer = Framer::new(self.spec.max_stanza);
        self.wbuf.clear();
        self.wpos = 0;
    }

    /// Readiness on this connection's socket.
    pub fn on_ready(&mut self, registry: &Registry, now: Instant, router: &mut dyn Router, out: &mut Outbox) {
        if self.state == State::Connecting {
            let connected = match &mut self.sock {
                Sock::Plain(s) => match s.take_error() {
                    Ok(Some(e)) | Err(e) => Err(e),
                    Ok(None) => match s.peer_addr() {
                        Ok(_) => Ok(true),
                        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
                        Err(e) => Err(e),
                    },
                },
                _ => Ok(false),
            };
            match connected {
                Ok(true) => self.begin_negotiation(registry, now, router, out),
                Ok(false) => return,
                Err(e) => {
                    let r = format!("connect to {}:{} failed: {}", self.spec.host, self.spec.port, e);
                    return self.fail(registry, now, r, router, out);
                }
            }
        }
        if let Sock::Handshake(_) = self.sock {
            self.continue_tls(registry, now, router, out);
        }
        if matches!(self.state, State::Negotiating | State::Ready) {
            self.read_all(registry, now, router, out);
        }
        if matches!(self.state, State::Negotiating | State::Ready) {
            self.flush(registry, now, router, out);
        }
    }

    fn begin_negotiation(&mut self, registry: &Registry, now: Instant, router: &mut dyn Router, out: &mut Outbox) {
        self.state = State::Negotiating;
        self.last_rx = now;
        let (neg, actions) = match &self.spec.negotiation {
            Negotiation::Component { jid, secret } => {
                let mut n = ComponentNegotiator::new(jid.clone(), secret.clone());
                let a = n.start();
                (Negotiator::Component(n), a)
            }
            Negotiation::Client(cfg) => {
                let mut n = ClientNegotiator::new(cfg.clone());
                let a = n.start();
                (Negotiator::Client(n), a)
            }
        };
        self.neg = Some(neg);
        self.apply_actions(actions, registry, now, router, out);
    }

    fn apply_actions(&mut self, actions: Vec<Action>, registry: &Registry, now: Instant, router: &mut dyn Router, out: &mut Outbox) {
        for a in actions {
            if self.state == State::Idle {
                return;
            }
            match a {
                Action::Send(text) => {
                    debug!("{} -> (negotiation, {} bytes)", self.spec.name, text.len());
                    self.wbuf.extend_from_slice(text.as_bytes());
                }
                Action::ResetStream => self.framer.reset(),
                Action::StartTls => {
                    self.flush(registry, now, router, out);
                    self.start_tls(registry, now, router, out);
                }
                Action::Ready { jid } => {
                    let security = match (&self.sock, self.spec.tls.insecure) {
                        (Sock::Tls(_), false) => LinkSecurity::Verified,
                        (Sock::Tls(_), true) => LinkSecurity::Unverified,
                        _ => LinkSecurity::Plain,
                    };
                    info!("{}: connected as {} ({})", self.spec.name, jid, security);
                    self.state = State::Ready;
                    self.neg = None;
                    self.ready_at = Some(now);
                    self.attempt = 0;
                    self.last_failure = None;
                    self.next_ping = Some(now + self.spec.keepalive);
                    self.pings.clear();
                    self.ping_to = Jid::parse(jid.domain()).ok();
                    self.jid = Some(jid.clone());
                    if self.ever_ready {
                        router.reconnected(self.id, &self.spec.name);
                    }
                    self.ever_ready = true;
                    router.link_security(self.id, security);
                    router.connected(self.id, &jid, out);
                }
            }
        }
    }

    fn start_tls(&mut self, registry: &Registry, now: Instant, router: &mut dyn Router, out: &mut Outbox) {
        let connector = match &self.connector {
            Some(c) => c.clone(),
            None => match tls::connector(&self.spec.tls) {
                Ok(c) => {
                    self.connector = Some(c.clone());
                    c
                }
                Err(e) => return self.fail_slow(registry, now, e.to_string(), router, out),
            },
        };
        let domain = match &self.spec.negotiation {
            Negotiation::Client(c) => c.domain.clone(),
            Negotiation::Component { jid, .. } => jid.clone(),
        };
        let tcp = match std::mem::replace(&mut self.sock, Sock::None) {
            Sock::Plain(s) => s,
            other => {
                self.sock = other;
                return self.fail(registry, now, "STARTTLS on a stream that is not plain".into(), router, out);
            }
        };
        self.framer.reset();
        let res = connector.connect(&domain, tcp);
        self.on_handshake(res, registry, now, router, out);
    }

    fn continue_tls(&mut self, registry: &Registry, now: Instant, router: &mut dyn Router, out: &mut Outbox) {
        let mid = match std::mem::replace(&mut self.sock, Sock::None) {
            Sock::Handshake(m) => m,
            other => {
                self.sock = other;
                return;
            }
        };
        let res = mid.handshake();
        self.on_handshake(res, registry, now, router, out);
    }

    /// Where a TLS handshake step left us: done, waiting for the socket, or failed.
    fn on_handshake(
        &mut self,
        res: Result<TlsStream<TcpStream>, HandshakeError<TcpStream>>,
        registry: &Registry,
        now: Instant,
        router: &mut dyn Router,
        out: &mut Outbox,
    ) {
        match res {
            Ok(t) => {
                self.sock = Sock::Tls(t);
                self.tls_established(registry, now, router, out);
            }
            Err(HandshakeError::WouldBlock(mid)) => self.sock = Sock::Handshake(mid),
            Err(HandshakeError::Failure(e)) => {
                self.fail_slow(registry, now, tls::handshake_error(e.to_string()).to_string(), router, out)
            }
        }
    }

    fn tls_established(&mut self, registry: &Registry, now: Instant, router: &mut dyn Router, out: &mut Outbox) {
        debug!("{}: TLS established", self.spec.name);
        let actions = match &mut self.neg {
            Some(Negotiator::Client(n)) => n.on_tls_established(),
            _ => Vec::new(),
        };
        self.apply_actions(actions, registry, now, router, out);
        self.flush(registry, now, router, out);
    }

    fn read_all(&mut self, registry: &Registry, now: Instant, router: &mut dyn Router, out: &mut Outbox) {
        let mut buf = [0u8; 64 * 1024];
        let mut budget = READ_PER_TURN;
        self.read_more = false;
        loop {
            if !matches!(self.state, State::Negotiating | State::Ready) || matches!(self.sock, Sock::Handshake(_)) {
                return;
            }
            if budget == 0 {
                self.read_more = true;
                return;
            }
            match self.sock.read(&mut buf) {
                Ok(0) => return self.fail(registry, now, "the server closed the connection".into(), router, out),
                Ok(n) => {
                    budget = budget.saturating_sub(n);
                    self.last_rx = now;
                    self.framer.feed(&buf[..n]);
                    self.process_frames(registry, now, router, out);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return self.fail(registry, now, format!("read failed: {}", e), router, out),
            }
        }
    }

    fn process_frames(&mut self, registry: &Registry, now: Instant, router: &mut dyn Router, out: &mut Outbox) {
        loop {
            if !matches!(self.state, State::Negotiating | State::Ready) {
                return;
            }
            let frame = match self.framer.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => return,
                Err(e) => {
                    let cond = e.condition();
                    let text = crate::xmpp::stanza::stream_error(cond, Some(&e.to_string()));
                    self.wbuf.extend_from_slice(text.as_bytes());
                    self.flush(registry, now, router, out);
                    return self.fail(registry, now, format!("stream error sent ({}): {}", cond, e), router, out);
                }
            };
            match frame {
                Frame::StreamHeader(h) => {
                    let res = match &mut self.neg {
                        Some(Negotiator::Client(n)) => n.on_stream_header(&h).map_err(|e| e.to_string()),
                        Some(Negotiator::Component(n)) => n.on_stream_header(&h).map_err(|e| e.to_string()),
                        None => Ok(Vec::new()),
                    };
                    match res {
                        Ok(actions) => self.apply_actions(actions, registry, now, router, out),
                        Err(e) => return self.fail_slow(registry, now, e, router, out),
                    }
                }
                Frame::StreamEnd => {
                    return self.fail(registry, now, "the server closed the stream".into(), router, out);
                }
                Frame::Skipped(s) => {
                    if self.state == State::Negotiating {
                        let r = format!("the server sent <{}> during negotiation: {}", s.name, s.reason);
                        return self.fail_slow(registry, now, r, router, out);
                    }
                    let reason = format!("{} ({} bytes)", s.reason, s.len);
                    let reply = refuse_unread(&s.name, &s.attrs, self.stream_ns, ErrorCondition::PolicyViolation, &s.reason.to_string());
                    self.drop_unread(now, &s.name, &s.attrs, &reason, reply);
                }
                Frame::Stanza(text) => {
                    let no_header = StreamHeader::default();
                    let header = self.framer.header().unwrap_or(&no_header);
                    let parsed = if self.state == State::Ready && self.spec.typed {
                        incoming::parse(&text, header, self.spec.max_nodes)
                    } else {
                        parse::parse_stanza_with(&text, header, self.spec.max_nodes).map(Incoming::Other)
                    };
                    let st = match parsed {
                        Ok(st) => st,
                        Err(e) if self.state == State::Negotiating => {
                            let t = crate::xmpp::stanza::stream_error("not-well-formed", None);
                            self.wbuf.extend_from_slice(t.as_bytes());
                            self.flush(registry, now, router, out);
                            return self.fail(registry, now, format!("unparsable stanza: {}", e), router, out);
                        }
                        Err(e) => {
                            // Framed, so the stream is still in step: only this stanza is lost.
                            let (name, mut attrs) = opening_tag(&text);
                            attrs.retain(|(k, _)| matches!(k.as_str(), "from" | "to" | "id" | "type"));
                            // Over a parser limit (too many nodes): refused like a skipped stanza.
                            let (cond, why) = if e.condition() == "policy-violation" {
                                (ErrorCondition::PolicyViolation, e.to_string())
                            } else {
                                (ErrorCondition::BadRequest, "malformed stanza".to_string())
                            };
                            let reply = refuse_unread(&name, &attrs, self.stream_ns, cond, &why);
                            self.drop_unread(now, &name, &attrs, &format!("unparsable: {}", e), reply);
                            continue;
                        }
                    };
                    if self.state == State::Negotiating {
                        let Incoming::Other(el) = st else { continue };
                        debug!("{} <- <{}> (negotiation)", self.spec.name, el.name);
                        let res = match &mut self.neg {
                            Some(Negotiator::Client(n)) => n.on_element(&el).map_err(|e| e.to_string()),
                            Some(Negotiator::Component(n)) => n.on_element(&el).map_err(|e| e.to_string()),
                            None => Ok(Vec::new()),
                        };
                        match res {
                            Ok(actions) => self.apply_actions(actions, registry, now, router, out),
                            Err(e) => return self.fail_slow(registry, now, e, router, out),
                        }
                        continue;
                    }
                    if log::log_enabled!(log::Level::Debug) {
                        debug!("{} <- {}", self.spec.name, text);
                    }
                    if let Some(se) = st.element().and_then(crate::xmpp::stanza::parse_stream_error) {
                        let reason = format!(
                            "stream error from the server: {}{}",
                            se.condition,
                            se.text.map(|t| format!(" ({})", t)).unwrap_or_default()
                        );
                        return self.fail(registry, now, reason, router, out);
                    }
                    if self.is_keepalive_answer(&st) {
                        continue; // any reply, result or error, proves the peer alive
                    }
                    router.stanza(self.id, st, out);
                }
            }
        }
    }

    /// An answer to one of our outstanding keepalive pings, from the address it was
    /// sent to (on a client stream a missing `from` is the server itself, RFC 6120
    /// §8.1.2.1). Consumes the id.
    fn is_keepalive_answer(&mut self, st: &Incoming) -> bool {
        if !matches!(st.iq_type(), Some(IqType::Result | IqType::Error)) {
            return false;
        }
        let Some(pos) = st.get_attr("id").and_then(|id| self.pings.iter().position(|p| p == id)) else {
            return false;
        };
        let from_server = match st.get_attr("from") {
            Some(f) => Jid::parse(f).ok().is_some_and(|j| Some(&j) == self.ping_to.as_ref()),
            None => self.stream_ns == ns::CLIENT,
        };
        if from_server {
            self.pings.remove(pos);
        }
        from_server
    }

    /// A stanza that was not read (too large, too deep, unparsable): answer it when it
    /// is an IQ request, log it (rate-limited), and go on with the stream.
    fn drop_unread(&mut self, now: Instant, name: &str, attrs: &[(String, String)], reason: &str, reply: Option<Element>) {
        // Attacker-chosen text: escaped and cut short.
        let get = |k: &str| {
            let v = attrs.iter().find(|(n, _)| n == k).map_or("?", |(_, v)| v.as_str());
            v.chars().take(80).flat_map(char::escape_debug).collect::<String>()
        };
        let name: String = name.chars().take(40).flat_map(char::escape_debug).collect();
        if let Some(held) = self.drop_log.hit(now) {
            warn!(
                "{}: dropped <{}> from {} (id {}): {}{}{}",
                self.spec.name,
                name,
                get("from"),
                get("id"),
                reason.chars().take(200).flat_map(char::escape_debug).collect::<String>(),
                if reply.is_some() { "; answered with an error" } else { "" },
                if held > 0 { format!(" ({} more dropped since the last line)", held) } else { String::new() }
            );
        }
        if let Some(r) = reply {
            self.queue_element(r);
        }
    }

    /// Queue a stanza from above. While the connection is not ready, an IQ request is
    /// answered locally with an error so that its sender does not wait for nothing.
    pub fn send_stanza(&mut self, el: Outgoing, router: &mut dyn Router, out: &mut Outbox) {
        if self.state != State::Ready || self.closing {
            if el.name() == "iq" && matches!(el.get_attr("type"), Some("get") | Some("set")) {
                debug!("{}: not connected, failing IQ {:?}", self.spec.name, el.get_attr("id"));
                let mut err = iq_error(&el, ErrorCondition::ServiceUnavailable, Some("the focus is not connected to the XMPP server"));
                // The error comes "from" the addressee, back to the sender.
                err.set_attr("from", el.get_attr("to").unwrap_or_default().to_string());
                match el.get_attr("from") {
                    Some(f) => err.set_attr("to", f.to_string()),
                    None => {
                        err.remove_attr("to");
                    }
                }
                let st = if self.spec.typed { Incoming::from_element(err) } else { Incoming::Other(err) };
                router.stanza(self.id, st, out);
            } else {
                debug!("{}: not connected, dropping <{}>", self.spec.name, el.name());
            }
            return;
        }
        self.queue_element(el);
    }

    /// Serialize a stanza into the write queue: a tree is written, a stanza written
    /// ahead ([`crate::xml::RawElement`]) copied (its start tag and the cached body).
    fn queue_element(&mut self, el: impl Into<Outgoing>) {
        let mut el = el.into();
        if self.stream_ns == ns::COMPONENT && el.get_attr("from").is_none() {
            if let Some(j) = &self.jid {
                el.set_attr("from", j.to_string());
            }
        }
        let start = self.wbuf.len();
        el.write_bytes(&mut self.wbuf, self.stream_ns, &mut self.scratch);
        if self.scratch.capacity() > SCRATCH_KEEP {
            self.scratch = String::new();
        }
        self.sent += 1;
        if log::log_enabled!(log::Level::Debug) {
            debug!("{} -> {}", self.spec.name, String::from_utf8_lossy(&self.wbuf[start..]));
        }
    }

    /// Write as much of the queue as the socket takes.
    pub fn flush(&mut self, registry: &Registry, now: Instant, router: &mut dyn Router, out: &mut Outbox) {
        while self.wpos < self.wbuf.len() {
            if matches!(self.sock, Sock::Handshake(_) | Sock::None) || self.state == State::Connecting {
                break;
            }
            match self.sock.write(&self.wbuf[self.wpos..]) {
                Ok(0) => return self.fail(registry, now, "write returned 0".into(), router, out),
                Ok(n) => self.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return self.fail(registry, now, format!("write failed: {}", e), router, out),
            }
        }
        if self.wpos == self.wbuf.len() {
            self.wbuf.clear();
            self.wpos = 0;
        } else if self.wpos > 1 << 20 {
            self.wbuf.drain(..self.wpos);
            self.wpos = 0;
        }
        if self.wbuf.len() - self.wpos > MAX_WRITE_QUEUE {
            self.fail(registry, now, "the server is not reading (write queue over 64 MiB)".into(), router, out);
        }
    }

    fn close_socket(&mut self, registry: &Registry) {
        self.read_more = false;
        if let Some(tcp) = self.sock.tcp_mut() {
            let _ = registry.deregister(tcp);
            let _ = tcp.shutdown(std::net::Shutdown::Both);
        }
        self.sock = Sock::None;
        self.neg = None;
        self.wbuf.clear();
        self.wpos = 0;
    }

    /// [`Conn::fail`] for a server that answered but refused us: slow retries.
    fn fail_slow(&mut self, registry: &Registry, now: Instant, reason: String, router: &mut dyn Router, out: &mut Outbox) {
        self.slow_retry = true;
        self.fail(registry, now, reason, router, out)
    }

    fn fail(&mut self, registry: &Registry, now: Instant, reason: String, router: &mut dyn Router, out: &mut Outbox) {
        let was_ready = self.state == State::Ready;
        self.close_socket(registry);
        self.jid = None;
        self.next_ping = None;
        self.pings.clear();
        if self.closing {
            self.state = State::Closed;
            return;
        }
        self.state = State::Idle;
        // A session that stayed up starts a fresh schedule; one that keeps dropping
        // soon after coming up (flapping) continues the schedule of its first loss.
        if was_ready && self.ready_at.is_some_and(|t| now.saturating_duration_since(t) >= STABLE) {
            self.backoff.reset();
        }
        self.ready_at = None;
        let server_refused = std::mem::take(&mut self.slow_retry);
        let delay = self.backoff.next_delay(now, !server_refused);
        self.retry_at = Some(now + delay);
        if self.last_failure.as_deref() == Some(reason.as_str()) {
            if let Some(held) = self.retry_log.hit(now) {
                warn!(
                    "{}: still failing ({} attempts since the last line): {}; retrying in {:.1} s",
                    self.spec.name,
                    held + 1,
                    reason,
                    delay.as_secs_f64()
                );
            }
        } else {
            self.retry_log = LogThrottle::new(RETRY_LOG_INTERVAL);
            self.retry_log.hit(now);
            error!("{}: {}; retrying in {:.1} s", self.spec.name, reason, delay.as_secs_f64());
            self.last_failure = Some(reason.clone());
        }
        if was_ready || self.attempt == 1 {
            router.disconnected(self.id, &reason, out);
        }
    }

    /// Begin a clean close: stream end written, socket closed once flushed.
    pub fn shutdown(&mut self, registry: &Registry, now: Instant, router: &mut dyn Router, out: &mut Outbox) {
        self.closing = true;
        if self.state == State::Ready {
            self.wbuf.extend_from_slice(b"</stream:stream>");
            self.flush(registry, now, router, out);
        }
        if !self.has_pending_output() {
            self.close_socket(registry);
            self.state = State::Closed;
        }
    }

    /// True when closing has finished (or the connection was never up).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed || (self.closing && !matches!(self.state, State::Ready | State::Negotiating))
    }

    /// Close now, whatever is left unsent.
    pub fn force_close(&mut self, registry: &Registry) {
        self.close_socket(registry);
        self.state = State::Closed;
    }
}
