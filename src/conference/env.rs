//! The real [`Env`] of a conference thread (the network handle, an inbox of limited length, the
//! system clock) and the thread launcher that contains panics.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use log::error;

use super::{muc, Conference, EndReason, Env, Inbox, Params};
use crate::net::{ConnId, NetHandle};
use crate::xml::Element;

/// Capacity of a conference inbox.
pub const INBOX_CAPACITY: usize = 4096;

/// Messages from conference threads to the router.
#[derive(Debug)]
pub enum Control {
    /// The conference thread `id` is about to return (its last message).
    Ended { id: u64, reason: EndReason },
    /// Stop taking conferences and end every running one (graceful shutdown).
    Shutdown,
    /// A conference request from the HTTP API; the answer IQ goes to `reply`.
    Http { iq: Element, reply: Sender<Element> },
}

/// The real environment: sends through the event loop, reads a channel, system time.
pub struct ThreadEnv {
    net: NetHandle,
    inbox: Receiver<Inbox>,
}

impl ThreadEnv {
    pub fn new(net: NetHandle, inbox: Receiver<Inbox>) -> ThreadEnv {
        ThreadEnv { net, inbox }
    }
}

impl Env for ThreadEnv {
    fn send(&mut self, conn: ConnId, el: Element) {
        if self.net.send(conn, el).is_err() {
            log::debug!("event loop gone; stanza dropped");
        }
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn recv(&mut self, deadline: Option<Instant>) -> Option<Inbox> {
        match deadline {
            Some(d) => match self.inbox.recv_deadline(d) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => Some(Inbox::Shutdown),
            },
            None => Some(self.inbox.recv().unwrap_or(Inbox::Shutdown)),
        }
    }
}

/// Start a conference thread. `previous` (a thread of the same room that is ending)
/// is joined first, so its leave reaches the room before our join. The thread's last
/// act is `Control::Ended` on `control`, followed by a wake of the event loop.
pub fn spawn(
    params: Params,
    net: NetHandle,
    inbox: Receiver<Inbox>,
    control: Sender<Control>,
    previous: Option<JoinHandle<()>>,
) -> std::io::Result<JoinHandle<()>> {
    let name = format!("conf-{}", params.id);
    std::thread::Builder::new().name(name).stack_size(256 * 1024).spawn(move || {
        if let Some(p) = previous {
            let _ = p.join();
        }
        let id = params.id;
        let room = params.room.clone();
        let nick = params.shared.nick.clone();
        let client = params.shared.client;
        let net2 = net.clone();
        let result = catch_unwind(AssertUnwindSafe(move || {
            let mut conf = Conference::new(ThreadEnv::new(net, inbox), params);
            conf.run()
        }));
        let reason = match result {
            Ok(r) => r,
            Err(e) => {
                let what = e
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| e.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                error!("conference {}: internal error ({}); leaving the room", room, what);
                let _ = net2.send(client, muc::leave_presence(&room, &nick));
                EndReason::Shutdown
            }
        };
        let _ = control.send(Control::Ended { id, reason });
        net2.wake();
    })
}
