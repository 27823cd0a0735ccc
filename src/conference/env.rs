//! The real [`Env`] of a conference thread (the network handle, an inbox of limited length, the
//! system clock, the OS-seeded random generator) and the thread launcher that contains panics.
//! The text forms of the random ids a conference makes ([`uuid_text`], [`sid_text`]) are here
//! too: every `Env` turns its random bits into ids the same way.
//!
//! A panicking conference does not leave its bridge conference and its participants'
//! Jingle sessions behind: the conference keeps a small [`Cleanup`] record, shared with
//! the launcher and updated as sessions and the bridge conference change, and after a
//! panic the launcher expires the bridge conference (Colibri2 `expire`), sends
//! `session-terminate` to every participant with a session, and leaves the room.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use log::error;
use parking_lot::Mutex;

use super::{Conference, Env, Params};
use crate::xmpp::muc;
use crate::xmpp::colibri2::ConferenceModify;
use crate::messages::{Control, EndReason, Inbox, InboxLoad};
use crate::ids::{MeetingId, Nick, Sid};
use crate::jid::Jid;
use crate::net::{ConnId, NetHandle};
use crate::xml::{Element, Outgoing};

/// What a conference thread must undo if it panics, kept outside the conference's own
/// state (which a panic may leave half-updated).
#[derive(Debug, Default, Clone)]
pub struct Cleanup {
    /// The bridge conference, `(bridge, meeting id)`, once its `create` was sent.
    pub bridge: Option<(Jid, MeetingId)>,
    /// Jingle sessions: participant nick → sid.
    pub sessions: BTreeMap<Nick, Sid>,
}

impl Cleanup {
    /// The stanzas that undo it: expire the bridge conference, terminate every session
    /// (from `focus_full`), leave `room` as `nick`. `new_id` gives IQ ids.
    pub fn stanzas(&self, room: &Jid, nick: &str, focus_full: &str, mut new_id: impl FnMut() -> String) -> Vec<Element> {
        let mut out = Vec::new();
        if let Some((bridge, meeting_id)) = &self.bridge {
            let req = ConferenceModify { meeting_id: meeting_id.to_string(), expire: true, ..Default::default() };
            out.push(req.to_iq(bridge, &new_id()));
        }
        for (participant, sid) in &self.sessions {
            let to = room.with_resource(participant.as_str()).to_string();
            let text = Some("the conference ended after an internal error");
            out.push(crate::xmpp::jingle::stanzas::session_terminate(focus_full, &to, sid.as_str(), &new_id(), "general-error", text));
        }
        out.push(muc::leave_presence(room, nick));
        out
    }
}

/// A v4 UUID made of 128 random bits (`hi`, `lo`), in its usual text form.
pub fn uuid_text(hi: u64, lo: u64) -> String {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&hi.to_be_bytes());
    b[8..].copy_from_slice(&lo.to_be_bytes());
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// A Jingle session id: `n` in lower-case base 32 (as lib-jitsi-meet and Jicofo make them).
pub fn sid_text(mut n: u64) -> String {
    if n == 0 {
        return "0".into();
    }
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuv";
    let mut out = Vec::new();
    while n > 0 {
        out.push(DIGITS[(n % 32) as usize]);
        n /= 32;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// Stack size of a conference thread, chosen with [`crate::xml::MAX_DEPTH`]: the
/// recursive `Element` operations on the deepest stanza the parser accepts and
/// serde_json on the deepest JSON sources it accepts each fit in half of it, in
/// release and unoptimized builds (`src/stack_tests.rs`). Only touched pages cost memory.
pub const STACK_SIZE: usize = 512 * 1024;

/// The real environment: sends through the event loop, reads a channel, system time,
/// reports what it takes and keeps aside to the router ([`InboxLoad`]).
pub struct ThreadEnv {
    net: NetHandle,
    inbox: Receiver<Inbox>,
    load: Arc<InboxLoad>,
}

impl ThreadEnv {
    /// Sending through `net`, reading `inbox`, reporting to `load`.
    pub fn new(net: NetHandle, inbox: Receiver<Inbox>, load: Arc<InboxLoad>) -> ThreadEnv {
        ThreadEnv { net, inbox, load }
    }

    fn took(&self, m: Inbox) -> Inbox {
        self.load.taken(m.weight());
        m
    }
}

impl Env for ThreadEnv {
    fn send(&mut self, conn: ConnId, el: Outgoing) {
        if self.net.send(conn, el).is_err() {
            log::debug!("event loop gone; stanza dropped");
        }
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn wall_clock(&self) -> SystemTime {
        SystemTime::now()
    }

    fn random_u64(&mut self) -> u64 {
        rand::random()
    }

    fn stopwatch(&self) -> Instant {
        Instant::now()
    }

    /// The next message, waiting by parking the thread: the router unparks it after every
    /// message it sends (`messages::inbox::Route`) and when it closes the inbox. (A
    /// blocking channel receive spins and yields a while before it sleeps; with hundreds
    /// of conference threads waking tens of times a second that was several percent of
    /// the focus's CPU.) A wake-up without a message (another unpark) just waits again.
    fn recv(&mut self, deadline: Option<Instant>) -> Option<Inbox> {
        loop {
            match self.inbox.try_recv() {
                Ok(m) => return Some(self.took(m)),
                Err(TryRecvError::Disconnected) => return Some(Inbox::Shutdown),
                Err(TryRecvError::Empty) => {}
            }
            match deadline {
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return None;
                    }
                    std::thread::park_timeout(d - now);
                }
                None => std::thread::park(),
            }
        }
    }

    fn set_backlog(&mut self, n: usize, bytes: usize) {
        self.load.report_backlog(n, bytes);
    }
}

/// Start a conference thread reading `inbox` (and reporting what it takes and keeps
/// aside to `load`). `previous` (a thread of the same room that is ending) is joined
/// first, so its leave reaches the room before our join. The thread's last act is
/// `Control::Ended` on `control`, followed by a wake of the event loop.
pub fn spawn(
    params: Params,
    net: NetHandle,
    inbox: Receiver<Inbox>,
    load: Arc<InboxLoad>,
    control: Sender<Control>,
    previous: Option<JoinHandle<()>>,
) -> std::io::Result<JoinHandle<()>> {
    let env = ThreadEnv::new(net.clone(), inbox, load);
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
        let shared = params.shared.clone();
        let cleanup: Arc<Mutex<Cleanup>> = Arc::default();
        let record = cleanup.clone();
        let result = catch_unwind(AssertUnwindSafe(move || {
            let mut conf = Conference::with_cleanup(env, params, record);
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
                let undo = cleanup.lock().clone();
                error!(
                    "conference {}: internal error ({}); expiring its bridge conference, ending {} sessions, leaving the room",
                    room,
                    what,
                    undo.sessions.len()
                );
                let focus_full =
                    shared.focus_full.lock().clone().unwrap_or_else(|| format!("{}/{}", shared.focus_jid, shared.nick));
                for el in undo.stanzas(&room, &shared.nick, &focus_full, || shared.pending.lock().fresh_id().to_string()) {
                    send(shared.client, el);
                }
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
    use crate::conference::sim::{muc_responder, occupant_presence, FakeBridge, SimEnv};
    use crate::conference::Shared;
    use crate::ids::ConferenceId;
    use crate::messages::{PendingReply, ReplyTarget};
    use crate::xmpp::conference_iq::ConferenceReply;
    use crate::jid::Jid;
    use crate::xmpp::ns;
    use parking_lot::Mutex;
    use std::sync::Arc;
    use std::time::Duration;

    const BRIDGE: &str = "jvbbrewery@internal.auth.meet.test/jvb1";

    /// With one bridge, so that the participants get Jingle sessions.
    fn shared() -> Arc<Shared> {
        let mut b = crate::bridge::Bridges::new();
        let stats = Element::new("stats", ns::COLIBRI)
            .child(Element::new("stat", ns::COLIBRI).attr("name", "stress_level").attr("value", "0.1"))
            .child(Element::new("stat", ns::COLIBRI).attr("name", "drain").attr("value", "false"));
        b.on_presence(&Element::new("presence", ns::CLIENT).attr("from", BRIDGE).child(stats), "focus", std::time::Instant::now());
        crate::conference::sim::test_shared(b, None)
    }

    fn start(id: u64, room: &str, panic_on_mute: bool, sent: Arc<Mutex<Vec<Element>>>, control: Sender<Control>) -> JoinHandle<()> {
        let room = Jid::parse(room).unwrap();
        let mut inner =
            FakeBridge::new(Jid::parse(BRIDGE).unwrap()).around(muc_responder(room.clone(), Jid::parse("focus@auth.meet.test/focus").unwrap()));
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
        env.at(Duration::from_millis(1), Inbox::stanza(occupant_presence(&room, "m", "m@meet.test/1", "owner", "moderator")));
        env.at(Duration::from_millis(2), Inbox::stanza(occupant_presence(&room, "p", "p@meet.test/1", "none", "participant")));
        let mute = Element::new("iq", ns::CLIENT)
            .attr("type", "set")
            .attr("id", "m1")
            .attr("from", room.with_resource("m").to_string())
            .child(Element::new("mute", ns::AUDIO_MUTE).attr("jid", room.with_resource("p").to_string()).text("true"));
        env.at(Duration::from_millis(3), Inbox::stanza(mute));
        env.at(Duration::from_millis(4), Inbox::Shutdown);
        let params = Params { id: ConferenceId(id), room, shared: shared(), start_audio_muted: None, start_video_muted: None };
        let s2 = sent.clone();
        let send: Box<dyn Fn(ConnId, Element) + Send> = Box::new(move |_, el| s2.lock().push(el));
        spawn_with(params, env, send, Box::new(|| {}), control, None).unwrap()
    }

    #[test]
    fn ids_have_their_usual_text_forms() {
        let u = uuid_text(0, 0);
        assert_eq!(u, "00000000-0000-4000-8000-000000000000");
        let u = uuid_text(u64::MAX, u64::MAX);
        assert_eq!(u, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert_eq!(uuid_text(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210), "01234567-89ab-4def-bedc-ba9876543210");
        assert_eq!(sid_text(0), "0");
        assert_eq!(sid_text(31), "v");
        assert_eq!(sid_text(32), "10");
        assert_eq!(sid_text(u64::MAX), "fvvvvvvvvvvvv");
    }

    #[test]
    fn the_thread_env_takes_weight_off_the_inbox_and_adds_back_what_is_kept_aside() {
        let (_el, net) = crate::net::EventLoop::new().unwrap();
        let total: Arc<std::sync::atomic::AtomicUsize> = Arc::default();
        let load = Arc::new(InboxLoad::new(total.clone()));
        let (tx, rx) = crossbeam_channel::unbounded();
        let m = Inbox::stanza(Element::new("iq", ns::CLIENT).children((0..1000).map(|_| Element::new("a", ns::CLIENT))));
        let w = m.weight();
        load.sent(w);
        tx.send(m).unwrap();
        let mut env = ThreadEnv::new(net, rx, load.clone());
        let got = env.recv(Some(std::time::Instant::now() + Duration::from_secs(1))).unwrap();
        assert_eq!((load.bytes(), total.load(std::sync::atomic::Ordering::Relaxed)), (0, 0), "taken");
        env.set_backlog(1, got.weight());
        assert_eq!((load.backlog(), load.bytes()), (1, w), "kept aside: counts again");
        env.set_backlog(0, 0);
        assert_eq!((load.backlog(), load.bytes(), total.load(std::sync::atomic::Ordering::Relaxed)), (0, 0, 0));
        drop(tx);
        assert!(matches!(env.recv(None), Some(Inbox::Shutdown)));
    }

    #[test]
    fn a_panic_is_contained_the_bridge_conference_expired_sessions_ended_the_room_left_and_others_go_on() {
        let (tx, rx) = crossbeam_channel::bounded(8);
        let sent_bad = Arc::new(Mutex::new(Vec::new()));
        let sent_ok = Arc::new(Mutex::new(Vec::new()));
        let bad = start(1, "bad@conference.meet.test", true, sent_bad.clone(), tx.clone());
        let good = start(2, "good@conference.meet.test", false, sent_ok.clone(), tx);
        bad.join().expect("the panic does not escape the thread");
        good.join().unwrap();
        let mut ended: Vec<(ConferenceId, EndReason)> = rx
            .try_iter()
            .filter_map(|c| match c {
                Control::Ended { id, reason } => Some((id, reason)),
                _ => None,
            })
            .collect();
        ended.sort_by_key(|(id, _)| *id);
        assert_eq!(ended, vec![(ConferenceId(1), EndReason::Panicked), (ConferenceId(2), EndReason::Shutdown)]);
        let undone = sent_bad.lock();
        // The bridge conference is expired, both participants' sessions end, the room is left.
        assert_eq!(undone.len(), 4, "{:?}", undone.iter().map(|e| e.to_xml()).collect::<Vec<_>>());
        let cm = undone[0].get_child("conference-modify", ns::COLIBRI2).expect("a colibri2 request first");
        assert_eq!(undone[0].get_attr("to"), Some(BRIDGE));
        assert_eq!(cm.get_attr("expire"), Some("true"));
        let mut terminated = Vec::new();
        for st in &undone[1..3] {
            let j = st.get_child("jingle", ns::JINGLE).expect("session-terminate");
            assert_eq!(j.get_attr("action"), Some("session-terminate"));
            assert!(j.get_attr("sid").is_some_and(|s| !s.is_empty()));
            assert_eq!(st.get_attr("from"), Some("focus@auth.meet.test/focus"));
            terminated.push(st.get_attr("to").unwrap().to_string());
        }
        terminated.sort();
        assert_eq!(terminated, vec!["bad@conference.meet.test/m", "bad@conference.meet.test/p"]);
        assert_eq!(undone[3].get_attr("type"), Some("unavailable"));
        assert_eq!(undone[3].get_attr("to"), Some("bad@conference.meet.test/focus"));
        assert!(sent_ok.lock().is_empty(), "the healthy conference left through its own env");
    }
}
