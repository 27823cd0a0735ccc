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

/// Stack size of a conference thread, chosen with [`crate::xml::MAX_DEPTH`]: the
/// recursive `Element` operations on the deepest stanza the parser accepts and
/// serde_json on the deepest JSON sources it accepts each fit in half of it, in
/// release and unoptimized builds (`src/stack_tests.rs`). Only touched pages cost memory.
pub const STACK_SIZE: usize = 512 * 1024;

/// Messages from conference threads to the router.
#[derive(Debug)]
pub enum Control {
    /// The conference thread `id` is about to return (its last message).
    Ended { id: u64, reason: EndReason },
    /// Stop taking conferences and end every running one (graceful shutdown).
    Shutdown,
    /// A conference found a bridge failed: tell every conference.
    BridgeEvents(Vec<crate::bridge::BridgeEvent>),
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
    let env = ThreadEnv::new(net.clone(), inbox);
    let n2 = net.clone();
    let send: Box<dyn Fn(ConnId, Element) + Send> = Box::new(move |c, el| {
        let _ = n2.send(c, el);
    });
    let wake: Box<dyn Fn() + Send> = Box::new(move || net.wake());
    spawn_with(params, env, send, wake, control, previous)
}

/// [`spawn`] with any [`Env`]; `send` is used to leave the room after a panic and
/// `wake` after the last message.
pub fn spawn_with<E: Env + 'static>(
    params: Params,
    env: E,
    send: Box<dyn Fn(ConnId, Element) + Send>,
    wake: Box<dyn Fn() + Send>,
    control: Sender<Control>,
    previous: Option<JoinHandle<()>>,
) -> std::io::Result<JoinHandle<()>> {
    let name = format!("conf-{}", params.id);
    std::thread::Builder::new().name(name).stack_size(STACK_SIZE).spawn(move || {
        if let Some(p) = previous {
            let _ = p.join();
        }
        let id = params.id;
        let room = params.room.clone();
        let nick = params.shared.nick.clone();
        let client = params.shared.client;
        let result = catch_unwind(AssertUnwindSafe(move || {
            let mut conf = Conference::new(env, params);
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
                send(client, muc::leave_presence(&room, &nick));
                EndReason::Panicked
            }
        };
        let _ = control.send(Control::Ended { id, reason });
        wake();
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conference::sim::{muc_responder, occupant_presence, SimEnv};
    use crate::conference::{PendingReply, ReplyTarget, Shared};
    use crate::focus::request::ConferenceReply;
    use crate::jid::Jid;
    use crate::xml::ns;
    use parking_lot::Mutex;
    use std::sync::Arc;
    use std::time::Duration;

    fn shared() -> Arc<Shared> {
            crate::conference::sim::test_shared(crate::bridge::Bridges::new(), None)
    }

    fn start(id: u64, room: &str, panic_on_mute: bool, sent: Arc<Mutex<Vec<Element>>>, control: Sender<Control>) -> JoinHandle<()> {
        let room = Jid::parse(room).unwrap();
        let mut inner = muc_responder(room.clone(), Jid::parse("focus@auth.meet.test/focus").unwrap());
        let mut env = SimEnv::new(Box::new(move |el: &Element| {
            if panic_on_mute && el.elements().any(|c| c.name == "mute") {
                panic!("simulated bug");
            }
            inner(el)
        }));
        let req = Element::new("iq", ns::CLIENT).attr("type", "set").attr("id", "r").attr("from", "a@meet.test/1");
        env.at(
            Duration::ZERO,
            Inbox::Request(PendingReply {
                target: ReplyTarget::Xmpp(ConnId(0)),
                iq: req,
                reply: ConferenceReply::default(),
                requester: None,
            }),
        );
        env.at(Duration::from_millis(1), Inbox::Stanza(occupant_presence(&room, "m", "m@meet.test/1", "owner", "moderator")));
        env.at(Duration::from_millis(2), Inbox::Stanza(occupant_presence(&room, "p", "p@meet.test/1", "none", "participant")));
        let mute = Element::new("iq", ns::CLIENT)
            .attr("type", "set")
            .attr("id", "m1")
            .attr("from", room.with_resource("m").to_string())
            .child(Element::new("mute", ns::AUDIO_MUTE).attr("jid", room.with_resource("p").to_string()).text("true"));
        env.at(Duration::from_millis(3), Inbox::Stanza(mute));
        env.at(Duration::from_millis(4), Inbox::Shutdown);
        let params = Params { id, room, shared: shared(), start_audio_muted: None, start_video_muted: None };
        let s2 = sent.clone();
        let send: Box<dyn Fn(ConnId, Element) + Send> = Box::new(move |_, el| s2.lock().push(el));
        spawn_with(params, env, send, Box::new(|| {}), control, None).unwrap()
    }

    #[test]
    fn a_panic_is_contained_the_room_is_left_and_others_go_on() {
        let (tx, rx) = crossbeam_channel::bounded(8);
        let sent_bad = Arc::new(Mutex::new(Vec::new()));
        let sent_ok = Arc::new(Mutex::new(Vec::new()));
        let bad = start(1, "bad@conference.meet.test", true, sent_bad.clone(), tx.clone());
        let good = start(2, "good@conference.meet.test", false, sent_ok.clone(), tx);
        bad.join().expect("the panic does not escape the thread");
        good.join().unwrap();
        let mut ended: Vec<(u64, EndReason)> = rx
            .try_iter()
            .filter_map(|c| match c {
                Control::Ended { id, reason } => Some((id, reason)),
                _ => None,
            })
            .collect();
        ended.sort_by_key(|(id, _)| *id);
        assert_eq!(ended, vec![(1, EndReason::Panicked), (2, EndReason::Shutdown)]);
        let left = sent_bad.lock();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].get_attr("type"), Some("unavailable"));
        assert_eq!(left[0].get_attr("to"), Some("bad@conference.meet.test/focus"));
        assert!(sent_ok.lock().is_empty(), "the healthy conference left through its own env");
    }
}
