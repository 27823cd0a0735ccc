//! The mio event loop thread: polls every connection's socket, the waker and timers.
//!
//! Each turn: poll (timeout = the nearest connection deadline), serve readiness,
//! drain the command channel (stanzas from other threads), run timers, then deliver
//! what the router queued. Stanzas the router queues are written before the next
//! poll, so an answer never waits for another event. A turn reads at most
//! `READ_PER_TURN` (1 MiB) from a connection and takes at most `COMMANDS_PER_TURN`
//! commands, so neither a flood from the server nor one from other threads holds the
//! rest of the loop.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, TryRecvError};
use log::{error, info};
use mio::{Events, Poll, Token, Waker};

use super::conn::Conn;
use super::{Cmd, ConnId, ConnSpec, NetHandle, Outbox, Router};

const WAKER: Token = Token(usize::MAX);
/// Capacity of the command channel from other threads.
pub const COMMAND_QUEUE: usize = 16 * 1024;
/// Past this many unsent bytes on any connection the loop stops taking stanzas from
/// other threads until the socket drains: senders then wait on the bounded command
/// queue, so a conference cannot outrun a slow server (backpressure).
pub const HIGH_WATER: usize = 4 * 1024 * 1024;
/// Commands taken from other threads per loop turn, so reads are not starved.
const COMMANDS_PER_TURN: usize = 8192;
/// How long a clean shutdown may take to flush the streams.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// An event loop that has its handle but no thread yet, so the router can be given
/// the handle before the first stanza arrives.
pub struct EventLoop {
    poll: Poll,
    rx: Receiver<Cmd>,
}

impl EventLoop {
    /// Create the poll, waker and command channel.
    pub fn new() -> std::io::Result<(EventLoop, NetHandle)> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        // Unbounded; NetHandle::send holds senders back past COMMAND_QUEUE commands.
        let (tx, rx) = unbounded();
        Ok((EventLoop { poll, rx }, NetHandle { tx, waker }))
    }

    /// Start the loop thread with these connections and this router.
    pub fn spawn(self, specs: Vec<ConnSpec>, router: Box<dyn Router>) -> std::io::Result<JoinHandle<()>> {
        let EventLoop { poll, rx } = self;
        std::thread::Builder::new().name("net".into()).spawn(move || run(poll, specs, router, rx))
    }
}

/// Start the event loop thread with these connections and this router.
pub fn spawn(specs: Vec<ConnSpec>, router: Box<dyn Router>) -> std::io::Result<(NetHandle, JoinHandle<()>)> {
    let (el, handle) = EventLoop::new()?;
    let join = el.spawn(specs, router)?;
    Ok((handle, join))
}

fn run(mut poll: Poll, specs: Vec<ConnSpec>, mut router: Box<dyn Router>, rx: Receiver<Cmd>) {
    let now = Instant::now();
    let mut conns: Vec<Conn> =
        specs.into_iter().enumerate().map(|(i, s)| Conn::new(ConnId(i), s, Token(i), now)).collect();
    let mut events = Events::with_capacity(256);
    let mut out = Outbox::default();
    let mut shutdown_at: Option<Instant> = None;
    let mut more_commands = false;

    loop {
        let now = Instant::now();
        let mut timeout = conns
            .iter()
            .filter_map(|c| c.next_deadline())
            .chain(router.next_deadline())
            .min()
            .map(|d| d.saturating_duration_since(now));
        if let Some(t) = shutdown_at {
            let left = (t + SHUTDOWN_GRACE).saturating_duration_since(now);
            timeout = Some(timeout.map_or(left, |x| x.min(left)));
        }
        if more_commands || !out.items.is_empty() || conns.iter().any(|c| c.wants_read()) {
            timeout = Some(Duration::ZERO);
        }
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                error!("event loop: poll failed: {}", e);
                return;
            }
        }
        let now = Instant::now();
        // Connections whose last read stopped at its per-turn budget read on (once per turn).
        let mut resume: Vec<bool> = conns.iter().map(|c| c.wants_read()).collect();
        for ev in events.iter() {
            if ev.token() == WAKER {
                continue;
            }
            if let Some(c) = conns.get_mut(ev.token().0) {
                resume[ev.token().0] = false;
                c.on_ready(poll.registry(), now, router.as_mut(), &mut out);
            }
        }
        for (c, _) in conns.iter_mut().zip(resume).filter(|(_, r)| *r) {
            c.on_ready(poll.registry(), now, router.as_mut(), &mut out);
        }
        // Commands from other threads, unless a connection is congested. Checked again
        // after every stanza taken, so one turn cannot pile more than HIGH_WATER plus one
        // stanza onto a connection however many commands are waiting.
        let mut congested = shutdown_at.is_none() && conns.iter().any(|c| c.pending_output() > HIGH_WATER);
        let mut budget = if congested { 0 } else { COMMANDS_PER_TURN };
        more_commands = false;
        loop {
            if budget == 0 {
                more_commands = !congested && !rx.is_empty();
                break;
            }
            budget -= 1;
            match rx.try_recv() {
                Ok(Cmd::Send(id, el)) => {
                    if let Some(c) = conns.get_mut(id.0) {
                        c.send_stanza(el, router.as_mut(), &mut out);
                        if shutdown_at.is_none() && c.pending_output() > HIGH_WATER {
                            c.flush(poll.registry(), now, router.as_mut(), &mut out);
                            if c.pending_output() > HIGH_WATER {
                                congested = true;
                                budget = 0;
                            }
                        }
                    }
                }
                Ok(Cmd::Shutdown) => {
                    if shutdown_at.is_none() {
                        info!("event loop: shutting down");
                        shutdown_at = Some(now);
                        router.shutting_down(&mut out);
                        deliver(&mut conns, &mut out, router.as_mut());
                        for c in conns.iter_mut() {
                            c.shutdown(poll.registry(), now, router.as_mut(), &mut out);
                        }
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    if shutdown_at.is_none() {
                        shutdown_at = Some(now);
                        for c in conns.iter_mut() {
                            c.shutdown(poll.registry(), now, router.as_mut(), &mut out);
                        }
                    }
                    break;
                }
            }
        }
        if shutdown_at.is_none() {
            for c in conns.iter_mut() {
                c.on_timer(poll.registry(), now, router.as_mut(), &mut out);
            }
            router.tick(now, &mut out);
        }
        // Deliver what the router queued (it may queue more while we deliver).
        for _ in 0..8 {
            if out.items.is_empty() {
                break;
            }
            deliver(&mut conns, &mut out, router.as_mut());
        }
        for c in conns.iter_mut() {
            if c.has_pending_output() {
                c.flush(poll.registry(), now, router.as_mut(), &mut out);
            }
        }
        let sent: u64 = conns.iter_mut().map(|c| std::mem::take(&mut c.sent)).sum();
        if sent > 0 {
            router.stanzas_sent(sent);
        }
        if let Some(t) = shutdown_at {
            for c in conns.iter_mut() {
                if !c.is_closed() && !c.has_pending_output() {
                    c.force_close(poll.registry());
                }
            }
            if conns.iter().all(|c| c.is_closed()) || now >= t + SHUTDOWN_GRACE {
                for c in conns.iter_mut() {
                    c.force_close(poll.registry());
                }
                info!("event loop: stopped");
                return;
            }
        }
    }
}

fn deliver(conns: &mut [Conn], out: &mut Outbox, router: &mut dyn Router) {
    let items = std::mem::take(&mut out.items);
    for (id, el) in items {
        if let Some(c) = conns.get_mut(id.0) {
            c.send_stanza(el.into(), router, out);
        }
    }
}
