//! A small HTTP/1.1 server (it lives in `net` because it owns sockets), generic over
//! what it serves: a [`Handler`] decides what each request is and answers it. It knows
//! nothing of conferences, bridges or metrics; `ops::api` is the handler of the focus's
//! API (health, version, stats, metrics, the conference request).
//!
//! ```text
//!  clients ──▶ io thread (mio: accept, read, write; no blocking call) ──┬─▶ workers (2):
//!                 ▲   cap on connections, deadlines per request       │   Handler::work
//!                 │                                                   └─▶ waiter (1): Handler::begin,
//!                 └──────────── responses (channel + mio Waker) ◀────────  up to 32 requests at
//!                                                                          once, 30 s each
//! ```
//!
//! One io thread owns every socket, non-blocking: a slow client (slowloris) holds a
//! connection slot, never a thread. Connections are capped ([`Limits::max_connections`]):
//! when all slots are taken, the oldest connection still sending its request is
//! dropped to make room (so slow senders cannot lock anyone out); if none is, the new
//! connection gets `503`. A request must arrive whole within
//! [`Limits::request_timeout`] (else `408`), with headers of at most [`MAX_HEAD`] and a
//! `Content-Length` body of at most [`MAX_BODY`] (`431`/`413`); a response must be
//! taken within [`Limits::write_timeout`]. Every connection is closed after its
//! response (`Connection: close`, with a short lingering read so that an unread body
//! does not reset the response).
//!
//! Complete requests ([`Handler::route`], on the io thread) are answered at once or go
//! to one of two bounded stages, so that requests which wait for another thread (the
//! API's conference requests wait up to 30 s for the conference) cannot starve quick
//! ones (health checks): [`Route::Work`] to a small worker pool with a bounded queue
//! ([`Handler::work`]), [`Route::Wait`] to one thread that hands each on
//! ([`Handler::begin`]) and waits for all of their answers at once
//! ([`Handler::finish`]), at most [`Limits::max_waiting`] in flight. A full stage answers
//! `503`. [`RestServer::stop`] joins every thread.
//!
//! Parsing ([`parse_request`]: the request head by `httparse`, the server's rules on
//! top) is a pure function over bytes; routing and rendering are the handler's.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Receiver, Select, Sender, TrySendError};
use log::{info, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use serde_json::{json, Value};


/// Largest accepted request body.
pub const MAX_BODY: usize = 64 * 1024;
/// Largest accepted request line plus headers.
pub const MAX_HEAD: usize = 8 * 1024;

/// How long a closed-for-writing connection is read (and discarded) before it is dropped.
const LINGER: Duration = Duration::from_secs(2);

/// Capacities and timeouts of the server.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Open connections at most.
    pub max_connections: usize,
    /// A request must arrive whole within this time of the connection being accepted.
    pub request_timeout: Duration,
    /// A response must be taken by the client within this time.
    pub write_timeout: Duration,
    /// Threads answering [`Route::Work`] (health, stats and metrics in the API).
    pub workers: usize,
    /// Requests waiting for those threads at most.
    pub work_queue: usize,
    /// [`Route::Wait`] requests (conference requests in the API) in flight at most.
    pub max_waiting: usize,
    /// How long such a request waits for its answer.
    pub wait_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 256,
            request_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            workers: 2,
            work_queue: 64,
            max_waiting: 32,
            wait_timeout: Duration::from_secs(30),
        }
    }
}

/// A complete request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The request method as sent, e.g. `GET`, `POST`.
    pub method: String,
    /// The target without its query string.
    pub path: String,
    /// The body (its `Content-Length` bytes, at most [`MAX_BODY`]; empty without one).
    pub body: Vec<u8>,
}

/// Where reading a request stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes are needed; `expects_continue` once the head is complete and asks
    /// for `100 Continue` before sending the body.
    Incomplete {
        /// The client sent `Expect: 100-continue` and waits for `100 Continue`.
        expects_continue: bool,
    },
    /// The whole request (head and body) is there.
    Complete(Request),
}

/// A response; every one closes its connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The `Content-Type` header.
    pub content_type: &'static str,
    /// The body, sent with its `Content-Length`.
    pub body: Vec<u8>,
    /// `Retry-After` in seconds (with a `503` for a limit).
    pub retry_after: Option<u64>,
}

impl Response {
    /// `v` as `application/json` with `status`.
    pub fn json(status: u16, v: &Value) -> Response {
        Response { status, content_type: "application/json", body: v.to_string().into_bytes(), retry_after: None }
    }

    /// `text` as a body of `content_type` with `status`.
    pub fn text(status: u16, text: &str, content_type: &'static str) -> Response {
        Response { status, content_type, body: text.as_bytes().to_vec(), retry_after: None }
    }

    /// `{"error": msg}` with `status`.
    pub fn error(status: u16, msg: &str) -> Response {
        Response::json(status, &json!({ "error": msg }))
    }

    /// The same with a `Retry-After` of `after` (whole seconds).
    pub fn retry_after(mut self, after: Duration) -> Response {
        self.retry_after = Some(after.as_secs());
        self
    }

    /// The bytes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let retry = self.retry_after.map(|s| format!("Retry-After: {}\r\n", s)).unwrap_or_default();
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len(),
            retry
        )
        .into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Headers accepted in one request at most (more is answered `431`).
pub const MAX_HEADERS: usize = 64;

/// Parse the bytes a client sent so far. An error is the response to send (then close).
///
/// The request line and headers are parsed by `httparse` within the first [`MAX_HEAD`]
/// bytes; this adds the server's rules on top: the target is an absolute path, the
/// head is UTF-8, a body comes only with one (or several equal) `Content-Length` of at
/// most [`MAX_BODY`], no `Transfer-Encoding`, and `Expect` only as `100-continue`.
/// Bytes past the body (pipelining) are ignored. The answer for a buffer never
/// changes once it is final: a longer buffer with the same prefix gets the same one.
pub fn parse_request(buf: &[u8]) -> Result<Parsed, Response> {
    let window = &buf[..buf.len().min(MAX_HEAD)];
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() >= MAX_HEAD {
                return Err(Response::error(431, "request head too large"));
            }
            return Ok(Parsed::Incomplete { expects_continue: false });
        }
        Err(httparse::Error::TooManyHeaders) => return Err(Response::error(431, "too many headers")),
        Err(httparse::Error::Version) => return Err(Response::error(505, "HTTP/1.0 or HTTP/1.1 only")),
        Err(httparse::Error::HeaderName | httparse::Error::HeaderValue) => {
            return Err(Response::error(400, "malformed header"))
        }
        Err(_) => return Err(Response::error(400, "malformed request line")),
    };
    if std::str::from_utf8(&window[..head_len]).is_err() {
        return Err(Response::error(400, "request head is not UTF-8"));
    }
    // Complete: httparse has filled in the method, the path and the version.
    let (Some(method), Some(target)) = (req.method, req.path) else {
        return Err(Response::error(400, "malformed request line"));
    };
    if !target.starts_with('/') {
        return Err(Response::error(400, "malformed request line"));
    }
    let mut length: Option<usize> = None;
    let mut expects_continue = false;
    for h in req.headers.iter() {
        // UTF-8 checked above for the whole head.
        let value = std::str::from_utf8(h.value).unwrap_or_default().trim_matches([' ', '\t']);
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = value
                .parse::<u64>()
                .ok()
                .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| Response::error(400, "bad Content-Length"))?;
            if length.is_some_and(|l| l as u64 != n) {
                return Err(Response::error(400, "conflicting Content-Length"));
            }
            if n > MAX_BODY as u64 {
                return Err(Response::error(413, "body too large"));
            }
            length = Some(n as usize);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Response::error(411, "send the body with Content-Length"));
        } else if h.name.eq_ignore_ascii_case("expect") {
            if !value.eq_ignore_ascii_case("100-continue") {
                return Err(Response::error(400, "unsupported Expect"));
            }
            expects_continue = true;
        }
    }
    let len = length.unwrap_or(0);
    if buf.len() < head_len + len {
        return Ok(Parsed::Incomplete { expects_continue });
    }
    let path = target.split('?').next().unwrap_or_default().to_string();
    Ok(Parsed::Complete(Request { method: method.to_string(), path, body: buf[head_len..head_len + len].to_vec() }))
}

/// What to do with a complete request.
#[derive(Clone, Debug, PartialEq)]
pub enum Route<W, A> {
    /// The answer, known at once.
    Done(Response),
    /// Answer it on a worker ([`Handler::work`]).
    Work(W),
    /// Hand it on and wait for its answer ([`Handler::begin`], [`Handler::finish`]).
    Wait(A),
}

/// What a server serves. Every method runs on a thread of the server: `route` on the io
/// thread (it must not block), `work` on a worker, `begin` and `finish` on the waiter.
pub trait Handler: Send + Sync + 'static {
    /// A request for the worker pool.
    type Work: Send + 'static;
    /// A request that waits for an answer from another thread.
    type Wait: Send + 'static;
    /// What such a request waits for.
    type Answer: Send + 'static;
    /// Decide what a request is.
    fn route(&self, req: &Request) -> Route<Self::Work, Self::Wait>;
    /// Answer a [`Route::Work`] request.
    fn work(&self, work: Self::Work) -> Response;
    /// Hand a [`Route::Wait`] request on: its answer will come on the returned channel;
    /// an error is the response to send at once.
    fn begin(&self, wait: Self::Wait) -> Result<Receiver<Self::Answer>, Response>;
    /// The response to a waiting request: its answer, or `None` when none came in time
    /// (or the other side dropped it).
    fn finish(&self, answer: Option<Self::Answer>) -> Response;
    /// The response when [`Limits::max_waiting`] requests wait already.
    fn too_many_waiting(&self) -> Response {
        Response::error(503, "too many requests waiting, try again")
    }
}

// ---------------------------------------------------------------------------------
// The threads.

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX);

/// A finished response for connection `conn`.
type Done = (usize, Response);

struct WorkJob<W> {
    conn: usize,
    work: W,
}

struct WaitJob<A> {
    conn: usize,
    wait: A,
}

enum Phase {
    /// Reading the request; `continued` once `100 Continue` was sent.
    Reading { continued: bool },
    /// Handed to a worker.
    Waiting,
    /// Writing `out[pos..]`.
    Writing { out: Vec<u8>, pos: usize },
    /// Response sent and the write side shut: reading and discarding until EOF.
    Lingering,
}

struct Conn {
    sock: TcpStream,
    buf: Vec<u8>,
    phase: Phase,
    /// When the current phase must be over.
    deadline: Instant,
    accepted: Instant,
}

/// A running HTTP server.
pub struct RestServer {
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    threads: Vec<JoinHandle<()>>,
    /// The address it listens on (with the actual port when bound to port 0).
    pub addr: SocketAddr,
}

impl RestServer {
    /// Bind `addr` and serve `handler` with the default [`Limits`].
    pub fn start<H: Handler>(addr: SocketAddr, handler: H) -> Result<RestServer, String> {
        RestServer::start_with(addr, handler, Limits::default())
    }

    /// Bind `addr` and serve `handler` with `limits`.
    pub fn start_with<H: Handler>(addr: SocketAddr, handler: H, limits: Limits) -> Result<RestServer, String> {
        let handler = Arc::new(handler);
        let cant = |e: io::Error| format!("cannot listen on {} (--rest_port/--rest_bind): {}", addr, e);
        let std_listener = std::net::TcpListener::bind(addr).map_err(cant)?;
        std_listener.set_nonblocking(true).map_err(cant)?;
        let bound = std_listener.local_addr().map_err(cant)?;
        let mut listener = TcpListener::from_std(std_listener);
        let poll = Poll::new().map_err(|e| e.to_string())?;
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE).map_err(|e| e.to_string())?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(|e| e.to_string())?);
        let stop = Arc::new(AtomicBool::new(false));
        info!("HTTP API on http://{}", bound);

        // Each connection has at most one response on its way, so this stays small.
        let (done_tx, done_rx) = unbounded::<Done>();
        let (work_tx, work_rx) = bounded::<WorkJob<H::Work>>(limits.work_queue.max(1));
        let (wait_tx, wait_rx) = bounded::<WaitJob<H::Wait>>(limits.max_waiting.max(1));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let tag = format!("http{}", bound.port());
        let mut threads = Vec::new();
        let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new().name(name).spawn(f).map_err(|e| e.to_string())
        };
        for i in 0..limits.workers.max(1) {
            let (rx, tx, h, waker) = (work_rx.clone(), done_tx.clone(), handler.clone(), waker.clone());
            threads.push(spawn(format!("{tag}-w{i}"), Box::new(move || worker(rx, tx, h, waker)))?);
        }
        drop(work_rx);
        {
            let (tx, h, waker, in_flight, timeout) =
                (done_tx.clone(), handler.clone(), waker.clone(), in_flight.clone(), limits.wait_timeout);
            threads.push(spawn(format!("{tag}-cf"), Box::new(move || waiter(wait_rx, tx, h, waker, in_flight, timeout)))?);
        }
        drop(done_tx);
        let io = Io {
            poll,
            listener,
            conns: HashMap::new(),
            next_id: 0,
            limits,
            handler,
            work_tx,
            wait_tx,
            in_flight,
            done_rx,
            stop: stop.clone(),
            busy_log: crate::log_throttle::LogThrottle::new(Duration::from_secs(10)),
        };
        threads.push(spawn(format!("{tag}-io"), Box::new(move || io.run()))?);
        Ok(RestServer { stop, waker, threads, addr: bound })
    }

    /// Stop serving, close every connection and join every thread.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn worker<H: Handler>(rx: Receiver<WorkJob<H::Work>>, tx: Sender<Done>, handler: Arc<H>, waker: Arc<Waker>) {
    while let Ok(job) = rx.recv() {
        let resp = handler.work(job.work);
        if tx.send((job.conn, resp)).is_err() {
            return;
        }
        let _ = waker.wake();
    }
}

struct Pending<T> {
    conn: usize,
    reply: Receiver<T>,
    deadline: Instant,
}

/// Hands waiting requests on ([`Handler::begin`]) and waits for all their answers at once.
fn waiter<H: Handler>(
    jobs: Receiver<WaitJob<H::Wait>>,
    tx: Sender<Done>,
    handler: Arc<H>,
    waker: Arc<Waker>,
    in_flight: Arc<AtomicUsize>,
    timeout: Duration,
) {
    let mut pending: Vec<Pending<H::Answer>> = Vec::new();
    let answer = |conn: usize, r: Response| {
        in_flight.fetch_sub(1, Ordering::SeqCst);
        let _ = tx.send((conn, r));
        let _ = waker.wake();
    };
    loop {
        let now = Instant::now();
        pending.retain(|p| {
            if now >= p.deadline {
                answer(p.conn, handler.finish(None));
                return false;
            }
            true
        });
        enum Got<W, T> {
            Job(Result<WaitJob<W>, crossbeam_channel::RecvError>),
            Answer(usize, Result<T, crossbeam_channel::RecvError>),
            Timeout,
        }
        let got: Got<H::Wait, H::Answer> = {
            let mut sel = Select::new();
            sel.recv(&jobs);
            for p in &pending {
                sel.recv(&p.reply);
            }
            let wait = pending.iter().map(|p| p.deadline).min().map(|d| d.saturating_duration_since(now));
            let op = match wait {
                Some(w) => sel.select_timeout(w).ok(),
                None => Some(sel.select()),
            };
            match op {
                None => Got::Timeout,
                Some(op) if op.index() == 0 => Got::Job(op.recv(&jobs)),
                Some(op) => {
                    let i = op.index() - 1;
                    Got::Answer(i, op.recv(&pending[i].reply))
                }
            }
        };
        match got {
            Got::Timeout => {}
            // The io thread has stopped: pending requests have nobody to answer to.
            Got::Job(Err(_)) => return,
            Got::Job(Ok(job)) => match handler.begin(job.wait) {
                Ok(rx) => pending.push(Pending { conn: job.conn, reply: rx, deadline: Instant::now() + timeout }),
                Err(r) => answer(job.conn, r),
            },
            Got::Answer(i, res) => {
                let p = pending.swap_remove(i);
                answer(p.conn, handler.finish(res.ok()));
            }
        }
    }
}

/// The io thread: every socket, non-blocking.
struct Io<H: Handler> {
    poll: Poll,
    listener: TcpListener,
    conns: HashMap<usize, Conn>,
    next_id: usize,
    limits: Limits,
    handler: Arc<H>,
    work_tx: Sender<WorkJob<H::Work>>,
    wait_tx: Sender<WaitJob<H::Wait>>,
    in_flight: Arc<AtomicUsize>,
    done_rx: Receiver<Done>,
    stop: Arc<AtomicBool>,
    busy_log: crate::log_throttle::LogThrottle,
}

impl<H: Handler> Io<H> {
    fn run(mut self) {
        let mut events = Events::with_capacity(256);
        loop {
            let now = Instant::now();
            let timeout = self.conns.values().map(|c| c.deadline).min().map(|d| d.saturating_duration_since(now));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    warn!("HTTP: poll failed: {}", e);
                    return;
                }
            }
            if self.stop.load(Ordering::SeqCst) {
                // Dropping the senders ends the workers; dropping the sockets closes them.
                return;
            }
            let now = Instant::now();
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept(now),
                    WAKER => {}
                    Token(id) => self.serve(id, now),
                }
            }
            while let Ok((id, resp)) = self.done_rx.try_recv() {
                if let Some(c) = self.conns.get_mut(&id) {
                    if matches!(c.phase, Phase::Waiting) {
                        self.respond(id, resp, now);
                    }
                }
            }
            self.expire(now);
        }
    }

    fn accept(&mut self, now: Instant) {
        loop {
            let (mut sock, _) = match self.listener.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of descriptors and the like: try again on the next event.
                    warn!("HTTP: accept failed: {}", e);
                    return;
                }
            };
            if self.conns.len() >= self.limits.max_connections && !self.evict_slowest() {
                if let Some(held) = self.busy_log.hit(now) {
                    warn!("HTTP: {} connections open, refusing more ({} refused since the last line)", self.conns.len(), held);
                }
                let _ = sock.write(&Response::error(503, "too many connections").to_bytes());
                let _ = sock.shutdown(std::net::Shutdown::Both);
                continue;
            }
            let id = self.next_id;
            self.next_id = (self.next_id + 1) % (usize::MAX - 2);
            let _ = sock.set_nodelay(true);
            if self.poll.registry().register(&mut sock, Token(id), Interest::READABLE | Interest::WRITABLE).is_err() {
                continue;
            }
            self.conns.insert(
                id,
                Conn {
                    sock,
                    buf: Vec::new(),
                    phase: Phase::Reading { continued: false },
                    deadline: now + self.limits.request_timeout,
                    accepted: now,
                },
            );
            // Data may already be there (edge-triggered: no event would tell).
            self.serve(id, now);
        }
    }

    /// Make room by dropping the connection that has been sending its request longest.
    fn evict_slowest(&mut self) -> bool {
        // Finished connections first, then the oldest one still sending.
        let victim = self
            .conns
            .iter()
            .filter(|(_, c)| matches!(c.phase, Phase::Reading { .. } | Phase::Lingering))
            .min_by_key(|(_, c)| (matches!(c.phase, Phase::Reading { .. }), c.accepted))
            .map(|(id, _)| *id);
        match victim {
            Some(id) => {
                self.close(id);
                true
            }
            None => false,
        }
    }

    fn close(&mut self, id: usize) {
        if let Some(mut c) = self.conns.remove(&id) {
            let _ = self.poll.registry().deregister(&mut c.sock);
        }
    }

    /// Readiness on connection `id`.
    fn serve(&mut self, id: usize, now: Instant) {
        let Some(c) = self.conns.get_mut(&id) else { return };
        match c.phase {
            Phase::Reading { continued } => {
                let mut chunk = [0u8; 16 * 1024];
                let eof = loop {
                    // Never hold more than a whole request could be.
                    if c.buf.len() > MAX_HEAD + MAX_BODY {
                        break false;
                    }
                    match c.sock.read(&mut chunk) {
                        Ok(0) => break true,
                        Ok(n) => c.buf.extend_from_slice(&chunk[..n]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break false,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(_) => break true,
                    }
                };
                match parse_request(&c.buf) {
                    Ok(Parsed::Complete(req)) => {
                        c.buf = Vec::new();
                        self.dispatch(id, req, now);
                    }
                    Ok(Parsed::Incomplete { .. }) if eof => self.close(id),
                    Ok(Parsed::Incomplete { expects_continue }) => {
                        if expects_continue && !continued {
                            c.phase = Phase::Reading { continued: true };
                            // Small: fits the empty socket buffer.
                            let _ = c.sock.write(b"HTTP/1.1 100 Continue\r\n\r\n");
                        }
                    }
                    Err(resp) => self.respond(id, resp, now),
                }
            }
            Phase::Waiting => {}
            Phase::Writing { .. } => self.write(id, now),
            Phase::Lingering => {
                let mut chunk = [0u8; 16 * 1024];
                loop {
                    match c.sock.read(&mut chunk) {
                        Ok(0) => return self.close(id),
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => return self.close(id),
                    }
                }
            }
        }
    }

    fn dispatch(&mut self, id: usize, req: Request, now: Instant) {
        let resp = match self.handler.route(&req) {
            Route::Done(r) => r,
            Route::Work(work) => match self.work_tx.try_send(WorkJob { conn: id, work }) {
                Ok(()) => return self.wait(id, now),
                Err(TrySendError::Full(_)) => Response::error(503, "busy, try again"),
                Err(TrySendError::Disconnected(_)) => Response::error(503, "shutting down"),
            },
            Route::Wait(wait) => {
                if self.in_flight.load(Ordering::SeqCst) >= self.limits.max_waiting {
                    self.handler.too_many_waiting()
                } else {
                    self.in_flight.fetch_add(1, Ordering::SeqCst);
                    match self.wait_tx.try_send(WaitJob { conn: id, wait }) {
                        Ok(()) => return self.wait(id, now),
                        Err(_) => {
                            self.in_flight.fetch_sub(1, Ordering::SeqCst);
                            Response::error(503, "busy, try again")
                        }
                    }
                }
            }
        };
        self.respond(id, resp, now);
    }

    fn wait(&mut self, id: usize, now: Instant) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.phase = Phase::Waiting;
            // The stages always answer; this only guards against a lost answer.
            c.deadline = now + self.limits.wait_timeout + Duration::from_secs(5);
        }
    }

    fn respond(&mut self, id: usize, resp: Response, now: Instant) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.phase = Phase::Writing { out: resp.to_bytes(), pos: 0 };
            c.deadline = now + self.limits.write_timeout;
            self.write(id, now);
        }
    }

    fn write(&mut self, id: usize, now: Instant) {
        let Some(c) = self.conns.get_mut(&id) else { return };
        let Phase::Writing { out, pos } = &mut c.phase else { return };
        while *pos < out.len() {
            match c.sock.write(&out[*pos..]) {
                Ok(0) => return self.close(id),
                Ok(n) => *pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.close(id),
            }
        }
        // All written: close our side, read what the client may still send, then drop.
        let _ = c.sock.shutdown(std::net::Shutdown::Write);
        c.phase = Phase::Lingering;
        c.deadline = now + LINGER;
        self.serve(id, now);
    }

    /// Deadlines: a request not complete in time gets 408; anything else is dropped.
    fn expire(&mut self, now: Instant) {
        let late: Vec<usize> = self.conns.iter().filter(|(_, c)| c.deadline <= now).map(|(id, _)| *id).collect();
        for id in late {
            let reading = self.conns.get(&id).is_some_and(|c| matches!(c.phase, Phase::Reading { .. }));
            if reading {
                self.respond(id, Response::error(408, "request not received in time"), now);
            } else {
                self.close(id);
            }
        }
    }
}

#[cfg(test)]
mod tests;
