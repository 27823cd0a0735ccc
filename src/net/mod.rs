//! The network layer: the only code that touches sockets.
//!
//! One mio event loop thread ([`event_loop`]) owns every XMPP connection: it connects,
//! negotiates (STARTTLS with native-tls, SASL, bind, or the XEP-0114 handshake),
//! frames and parses incoming stanzas, classifies each once as it parses it
//! ([`crate::xmpp::incoming::Incoming`]: the hot kinds typed without a tree, the rest as a
//! tree) and hands it to a [`Router`] on the loop thread. The router must never block: it answers by pushing stanzas into an
//! [`Outbox`], and forwards work to other threads over bounded channels. Other
//! threads send stanzas through a cloneable [`NetHandle`] (a channel of limited length + mio
//! `Waker`): element trees, which the loop serializes, or stanzas written ahead
//! ([`crate::xml::RawElement`], e.g. a conference's offers), which it only copies. Lost connections come back on the [`Backoff`] schedule (every 0.5 s for
//! 30 s, then doubling with jitter to 30 s); keepalive pings, with random ids and
//! answers accepted only from the pinged address, notice a dead peer. A stanza the
//! framer skips (over the size cap or the depth limit) or that does not parse costs its
//! sender an IQ error; the stream stays up.
//!
//! ```text
//!  conference threads ──NetHandle──▶ ┌────────────┐ ──bytes──▶ Prosody
//!                                    │ event loop │
//!  Router::stanza() ◀── Incoming ─── └────────────┘ ◀──bytes── Prosody
//! ```

mod conn;
pub mod event_loop;
pub mod http;
pub mod tls;

#[cfg(test)]
mod loop_tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use crate::jid::Jid;
use crate::xml::{Element, Outgoing};
use crate::xmpp::c2s::ClientConfig;
use crate::xmpp::incoming::Incoming;

pub use event_loop::{spawn, EventLoop};

/// Which connection of the loop (index into the specs given to [`spawn`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub usize);

/// How a connection authenticates. `Debug` never shows the secret.
#[derive(Clone)]
pub enum Negotiation {
    /// XEP-0114 external component.
    Component {
        /// The component's JID, `focus.<domain>` (`--subdomain`, `--domain`).
        jid: String,
        /// The shared secret Prosody's `component_secret` holds (`--secret`).
        secret: String,
    },
    /// RFC 6120 client.
    Client(ClientConfig),
}

impl std::fmt::Debug for Negotiation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Negotiation::Component { jid, .. } => {
                f.debug_struct("Component").field("jid", jid).field("secret", &"<redacted>").finish()
            }
            Negotiation::Client(c) => f.debug_tuple("Client").field(c).finish(),
        }
    }
}

/// TLS settings for a client connection.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// A PEM certificate (or CA) trusted besides the system store.
    pub ca_file: Option<PathBuf>,
    /// No certificate or host name verification at all.
    pub insecure: bool,
}

/// One connection the loop keeps up.
#[derive(Clone, Debug)]
pub struct ConnSpec {
    /// Name in log lines (`component`, `client`).
    pub name: String,
    /// Host name or address of the XMPP server (`--host`).
    pub host: String,
    /// TCP port: the client port (`--user_port`, 5222) or the component port (`--port`, 5347).
    pub port: u16,
    /// How the stream is negotiated and authenticated.
    pub negotiation: Negotiation,
    /// Certificate verification for STARTTLS (used only by client streams).
    pub tls: TlsOptions,
    /// Interval of keepalive pings; the peer is dead after three silent intervals.
    pub keepalive: Duration,
    /// Largest accepted incoming stanza in bytes ([`crate::xml::DEFAULT_MAX_STANZA`] for the
    /// focus); larger ones are skipped (an IQ request among them gets `policy-violation`).
    pub max_stanza: usize,
    /// Most XML nodes (elements, attributes, texts) in an incoming stanza
    /// ([`crate::xml::MAX_NODES`] for the focus); a stanza over it is refused like an
    /// unparsable one.
    pub max_nodes: usize,
    /// Classify stanzas into typed values as they are parsed, the hot kinds without a
    /// tree ([`crate::xmpp::incoming::parse`]; the focus). `false`: every stanza reaches
    /// the router as [`Incoming::Other`] with its whole tree (test tools that read
    /// everything).
    pub typed: bool,
}

/// Stanzas the router wants sent, collected while it runs on the loop thread.
#[derive(Debug, Default)]
pub struct Outbox {
    pub(crate) items: Vec<(ConnId, Element)>,
}

impl Outbox {
    /// Queue `el` on `conn`.
    pub fn send(&mut self, conn: ConnId, el: Element) {
        self.items.push((conn, el));
    }

    /// Take everything queued (tests use this).
    pub fn drain(&mut self) -> Vec<(ConnId, Element)> {
        std::mem::take(&mut self.items)
    }
}

/// How a connection's stream is protected, reported when it comes up
/// ([`Router::link_security`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkSecurity {
    /// No TLS: the component connection, or a client connection whose server offered no
    /// STARTTLS (allowed only to a loopback host or with `--tls_insecure`).
    Plain,
    /// TLS, the server's certificate verified (system store or `--tls_ca_file`).
    Verified,
    /// TLS without certificate verification (`--tls_insecure`).
    Unverified,
}

impl std::fmt::Display for LinkSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LinkSecurity::Plain => "no TLS",
            LinkSecurity::Verified => "TLS, certificate verified",
            LinkSecurity::Unverified => "TLS, certificate not verified",
        })
    }
}

/// The layer above the network, called on the event loop thread. Never blocks.
pub trait Router: Send {
    /// `conn` finished negotiation as `jid`.
    fn connected(&mut self, conn: ConnId, jid: &Jid, out: &mut Outbox);
    /// How `conn` is protected (called just before every `connected`).
    fn link_security(&mut self, _conn: ConnId, _security: LinkSecurity) {}
    /// `conn` came back after having been lost (called just before `connected`);
    /// `name` is the connection's name from its [`ConnSpec`].
    fn reconnected(&mut self, _conn: ConnId, _name: &str) {}
    /// `conn` was lost (or failed to come up); it will be retried.
    fn disconnected(&mut self, conn: ConnId, reason: &str, out: &mut Outbox);
    /// A stanza arrived on `conn`, classified as it was parsed.
    fn stanza(&mut self, conn: ConnId, st: Incoming, out: &mut Outbox);
    /// Called once per loop turn (after a wake-up or a stanza): lets the router serve
    /// its own control channel, e.g. threads that ended. Never blocks.
    fn tick(&mut self, _now: std::time::Instant, _out: &mut Outbox) {}
    /// The earliest instant the router wants `tick` called even without traffic.
    fn next_deadline(&self) -> Option<std::time::Instant> {
        None
    }
    /// `n` more stanzas were queued on the connections (counted once per loop turn,
    /// keepalive pings included).
    fn stanzas_sent(&mut self, _n: u64) {}
    /// The loop is about to stop (after [`NetHandle::shutdown`]); last stanzas may be queued.
    fn shutting_down(&mut self, _out: &mut Outbox) {}
}

pub(crate) enum Cmd {
    /// A stanza for a connection: a tree, or written ahead (the loop only copies it).
    Send(ConnId, Outgoing),
    Shutdown,
}

/// Why a stanza could not be handed to the loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The loop has stopped.
    Closed,
}

/// A cloneable handle other threads use to send stanzas.
#[derive(Clone)]
pub struct NetHandle {
    pub(crate) tx: Sender<Cmd>,
    pub(crate) waker: Arc<mio::Waker>,
}

impl NetHandle {
    /// Queue `el` (a tree or a [`crate::xml::RawElement`] written ahead) for `conn`;
    /// blocks only while the loop's command queue is full ([`event_loop::COMMAND_QUEUE`]
    /// commands).
    pub fn send(&self, conn: ConnId, el: impl Into<Outgoing>) -> Result<(), SendError> {
        let el = el.into();
        // The channel is unbounded (a bounded one allocates and touches all its slots up
        // front: 1.8 MB); past the limit the sender waits for the loop to catch up. When
        // the loop is gone the queue is discarded, so this cannot wait forever.
        while self.tx.len() >= event_loop::COMMAND_QUEUE {
            let _ = self.waker.wake();
            std::thread::sleep(Duration::from_millis(1));
        }
        if self.tx.send(Cmd::Send(conn, el)).is_err() {
            return Err(SendError::Closed);
        }
        let _ = self.waker.wake();
        Ok(())
    }

    /// Wake the loop so the router's `tick` runs soon.
    pub fn wake(&self) {
        let _ = self.waker.wake();
    }

    /// Ask the loop to close every stream cleanly and stop.
    pub fn shutdown(&self) {
        let _ = self.tx.send(Cmd::Shutdown);
        let _ = self.waker.wake();
    }
}

/// Resolve `host:port` to its first address.
pub fn resolve(host: &str, port: u16) -> std::io::Result<std::net::SocketAddr> {
    use std::net::ToSocketAddrs;
    (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, format!("{} has no address", host)))
}

/// Can a TCP connection to `addr` be opened within `timeout`? (Used by `--check`.)
pub fn probe_tcp(addr: std::net::SocketAddr, timeout: Duration) -> std::io::Result<()> {
    std::net::TcpStream::connect_timeout(&addr, timeout).map(|_| ())
}

/// The reconnect schedule. While the server cannot be reached (refused, closed,
/// silent): every [`Backoff::FAST`] for the first [`Backoff::FAST_FOR`] after the loss,
/// so a restarted Prosody is back in use within a second; then doubling from
/// [`Backoff::SLOW_START`] to [`Backoff::MAX`] with ±20 % jitter. A server that answers
/// but refuses us (credentials, TLS, configuration) gets the slow schedule at once.
/// The jitter comes from a small seeded generator, so tests can fix it.
#[derive(Clone, Debug)]
pub struct Backoff {
    /// When the current run of failures began.
    lost_at: Option<Instant>,
    /// The next slow delay before jitter.
    slow: Duration,
    rng: u64,
}

impl Backoff {
    /// Delay between attempts while the server is unreachable, right after a loss.
    pub const FAST: Duration = Duration::from_millis(500);
    /// How long after a loss the [`Backoff::FAST`] delay is used.
    pub const FAST_FOR: Duration = Duration::from_secs(30);
    /// The first slow delay (before jitter); it doubles after each further failure.
    pub const SLOW_START: Duration = Duration::from_secs(1);
    /// The longest delay, jitter included.
    pub const MAX: Duration = Duration::from_secs(30);
    /// Relative jitter of slow delays (±).
    pub const JITTER: f64 = 0.2;

    /// A fresh schedule with random jitter.
    pub fn new() -> Backoff {
        Backoff::with_seed(rand::random())
    }

    /// A schedule whose jitter is fixed by `seed`.
    pub fn with_seed(seed: u64) -> Backoff {
        Backoff { lost_at: None, slow: Self::SLOW_START, rng: seed | 1 }
    }

    /// The delay before the next attempt after a failure at `now`; `unreachable` when
    /// the server could not be reached (as opposed to refusing us).
    pub fn next_delay(&mut self, now: Instant, unreachable: bool) -> Duration {
        let lost = *self.lost_at.get_or_insert(now);
        if unreachable && now.saturating_duration_since(lost) < Self::FAST_FOR {
            return Self::FAST;
        }
        let nominal = self.slow;
        self.slow = (self.slow * 2).min(Self::MAX);
        let factor = 1.0 - Self::JITTER + 2.0 * Self::JITTER * self.unit();
        nominal.mul_f64(factor).min(Self::MAX)
    }

    /// The connection is healthy again: the next loss starts a fresh schedule.
    pub fn reset(&mut self) {
        self.lost_at = None;
        self.slow = Self::SLOW_START;
    }

    /// Uniform in [0, 1) (xorshift64*).
    fn unit(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_retries_every_half_second_for_30_s_then_doubles_with_jitter_to_30_s() {
        let t0 = Instant::now();
        let mut b = Backoff::with_seed(7);
        // Refused from t0 on: a failure right after every delay.
        let mut now = t0;
        let mut delays = Vec::new();
        while now < t0 + Duration::from_secs(400) {
            let d = b.next_delay(now, true);
            delays.push((now - t0, d));
            now += d;
        }
        let fast: Vec<_> = delays.iter().take_while(|(at, _)| *at < Backoff::FAST_FOR).collect();
        assert_eq!(fast.len(), 60);
        assert!(fast.iter().all(|(_, d)| *d == Duration::from_millis(500)));
        let slow: Vec<Duration> = delays[60..].iter().map(|(_, d)| *d).collect();
        let nominal = [1, 2, 4, 8, 16, 30, 30, 30, 30, 30];
        for (d, n) in slow.iter().zip(nominal) {
            let n = Duration::from_secs(n);
            assert!(*d >= n.mul_f64(0.8) && *d <= n.mul_f64(1.2).min(Backoff::MAX), "{d:?} for {n:?}");
        }
        assert!(slow.iter().all(|d| *d <= Backoff::MAX));
        // Jittered: not all the same, and the seed fixes them.
        assert!(slow[..5].windows(2).all(|w| w[0] != w[1]));
        let mut again = Backoff::with_seed(7);
        let mut other = Backoff::with_seed(8);
        let mut now = t0 + Duration::from_secs(31);
        again.next_delay(t0, true);
        other.next_delay(t0, true);
        let a: Vec<_> = (0..5).map(|_| again.next_delay(now, true)).collect();
        let o: Vec<_> = (0..5).map(|_| other.next_delay(now, true)).collect();
        assert_eq!(a, slow[..5].to_vec());
        assert_ne!(a, o);

        // A fresh loss after a reset is fast again.
        b.reset();
        now += Duration::from_secs(1000);
        assert_eq!(b.next_delay(now, true), Backoff::FAST);
        // A server refusing us (not unreachable) is on the slow schedule at once.
        let mut b = Backoff::with_seed(1);
        let d = b.next_delay(t0, false);
        assert!(d >= Duration::from_millis(800) && d <= Duration::from_millis(1200), "{d:?}");
        let d = b.next_delay(t0 + d, false);
        assert!(d >= Duration::from_millis(1600) && d <= Duration::from_millis(2400), "{d:?}");
        // Default seeds differ.
        let mut x = Backoff::new();
        let mut y = Backoff::new();
        let xs: Vec<_> = (0..4).map(|_| x.next_delay(t0, false)).collect();
        let ys: Vec<_> = (0..4).map(|_| y.next_delay(t0, false)).collect();
        assert_ne!(xs, ys);
    }
}
