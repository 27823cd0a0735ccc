//! Conferences through a real private Prosody: roles, mute rules, secure domain,
//! lifetimes, and many rooms at once (each a thread, all ended and joined).

mod common;

use std::time::{Duration, Instant};

use common::client::TestClient;
use common::deploy::{Deployment, FEATURES_2021, T};
use jicofo::xml::Element;
use jicofo::xmpp::ns;
use jicofo::xmpp::stanza::parse_error;

fn affiliation_of(p: &Element) -> Option<&str> {
    p.get_child("x", ns::MUC_USER)?.get_child("item", ns::MUC_USER)?.get_attr("affiliation")
}

fn wait_stats(d: &Deployment, timeout: Duration, f: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + timeout;
    loop {
        let s = d.stats();
        if f(&s) || Instant::now() >= deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn threads_of(pid: u32) -> usize {
    let s = std::fs::read_to_string(format!("/proc/{}/status", pid)).unwrap_or_default();
    s.lines().find_map(|l| l.strip_prefix("Threads:")).map(|v| v.trim().parse().unwrap_or(0)).unwrap_or(0)
}

#[test]
fn moderator_passes_on_and_mute_rules_hold() {
    let d = Deployment::start("conf-roles", &[("jvb1", &[])]);
    let room = format!("roles@{}", d.prosody.muc_domain());
    let mut a = d.participant("alice", FEATURES_2021);
    a.request_conference(&room);
    a.join();
    let alice = format!("{}/alice", room);
    let bob = format!("{}/bob", room);
    assert!(a
        .client
        .wait_for(T, |el| el.name == "presence" && el.get_attr("from") == Some(alice.as_str()) && affiliation_of(el) == Some("owner"))
        .is_some(), "the first participant is made owner");
    let mut b = d.participant("bob", FEATURES_2021);
    b.request_conference(&room);
    let seen = b.join();
    assert!(seen.iter().any(|el| el.get_attr("from") == Some(alice.as_str()) && affiliation_of(el) == Some("owner")));
    let mut c = d.participant("carol", FEATURES_2021);
    c.request_conference(&room);
    c.join();

    // A non-moderator may not mute someone else (moderation.md §2 row 4: not-allowed).
    let mute = |target: &str, v: &str| {
        Element::new("iq", ns::CLIENT)
            .attr("type", "set")
            .attr("to", format!("{}/focus", room))
            .child(Element::new("mute", ns::AUDIO_MUTE).attr("jid", target.to_string()).text(v))
    };
    let r = b.request(mute(&alice, "true"));
    assert_eq!(parse_error(&r).map(|e| e.condition_name).as_deref(), Some("not-allowed"), "{}", r);
    // The moderator may; the target is told who muted it.
    let r = a.request(mute(&bob, "true"));
    assert_eq!(r.get_attr("type"), Some("result"), "{}", r);
    let m = b.client.wait_for(T, |el| el.name == "iq" && el.get_child("mute", ns::AUDIO_MUTE).is_some()).expect("bob is told");
    assert_eq!(m.get_child("mute", ns::AUDIO_MUTE).unwrap().get_attr("actor"), Some(alice.as_str()));
    // Nobody may unmute someone else.
    let r = a.request(mute(&bob, "false"));
    assert_eq!(parse_error(&r).map(|e| e.condition_name).as_deref(), Some("not-allowed"), "{}", r);

    // The owner leaves: the next participant in join order becomes owner.
    a.leave();
    assert!(c
        .client
        .wait_for(T, |el| el.name == "presence" && el.get_attr("from") == Some(bob.as_str()) && affiliation_of(el) == Some("owner"))
        .is_some(), "bob inherits ownership");

    // The room empties: the conference ends, its thread is joined.
    b.leave();
    c.leave();
    let s = wait_stats(&d, T, |s| s["conferences"] == 0);
    assert_eq!(s["conferences"], 0, "{}", s);
    assert!(d.wait_log("conference roles@conference.meet.test: ended (RoomEmpty)", T));
}

#[test]
fn secure_domain_refuses_anonymous_creators_and_accepts_authenticated_ones() {
    let mut d = Deployment::prepare("conf-secure", &[("jvb1", &[])]);
    d.start_jicofo(&["--auth_domain=auth.meet.test"]);
    let room = format!("secure@{}", d.prosody.muc_domain());
    let request = |c: &mut TestClient, sid: Option<&str>| {
        let mut conf = Element::new("conference", ns::FOCUS).attr("room", room.clone()).attr("machine-uid", "machine-1");
        if let Some(s) = sid {
            conf.set_attr("session-id", s);
        }
        c.iq(Element::new("iq", ns::CLIENT).attr("type", "set").attr("to", "focus.meet.test").child(conf), T)
    };
    let mut guest = d.participant("guest", FEATURES_2021).client;
    let r = request(&mut guest, None);
    let e = parse_error(&r).expect("refused");
    assert_eq!(e.condition_name, "not-authorized", "{}", r);
    assert_eq!(e.text.as_deref(), Some("not authorized user domain"));
    // A bogus session id is an invalid session.
    let r = request(&mut guest, Some("no-such-session"));
    let e = parse_error(&r).expect("refused");
    assert_eq!(e.condition_name, "not-acceptable");
    assert!(e.extra.iter().any(|x| x.name == "session-invalid"), "{}", r);

    // A user of the secure domain creates the room and gets a session.
    let mut user = d.user("user1");
    let r = request(&mut user, None);
    let conf = r.get_child("conference", ns::FOCUS).expect("accepted");
    assert_eq!(conf.get_attr("ready"), Some("true"), "{}", r);
    assert_eq!(conf.get_attr("identity"), Some("user1@auth.meet.test"));
    let sid = conf.get_attr("session-id").expect("session id").to_string();
    let auth = conf.children_named("property", ns::FOCUS).find(|p| p.get_attr("name") == Some("authentication"));
    assert_eq!(auth.and_then(|p| p.get_attr("value")), Some("true"));
    // Now a guest may join the existing room, and the session works from the guest connection.
    let r = request(&mut guest, None);
    assert_eq!(r.get_child("conference", ns::FOCUS).and_then(|c| c.get_attr("ready")), Some("true"), "{}", r);
    let r = request(&mut guest, Some(&sid));
    assert_eq!(r.get_child("conference", ns::FOCUS).and_then(|c| c.get_attr("identity")), Some("user1@auth.meet.test"));
    // logout destroys the session.
    let lo = Element::new("iq", ns::CLIENT)
        .attr("type", "set")
        .attr("to", "focus.meet.test")
        .child(Element::new("logout", ns::FOCUS).attr("session-id", sid.clone()));
    assert_eq!(user.iq(lo.clone(), T).get_attr("type"), Some("result"));
    assert_eq!(parse_error(&user.iq(lo, T)).map(|e| e.condition_name).as_deref(), Some("not-acceptable"));
}

#[test]
fn two_hundred_rooms_each_get_a_thread_and_all_end_and_are_joined() {
    // One client creates all 200 rooms at once: above the default per-requester room
    // limit and IQ rate (a burst of 5 x 20 requests), so both are raised here.
    let mut d = Deployment::prepare("conf-many", &[("jvb1", &[])]);
    d.start_jicofo(&["--max_new_rooms_per_minute=200", "--max_iq_per_second=100"]);
    let pid = d.jicofo.as_ref().unwrap().id();
    let base_threads = threads_of(pid);
    let mut c = d.participant("many", FEATURES_2021).client;
    const N: usize = 200;
    let rooms: Vec<String> = (0..N).map(|i| format!("many{}@{}", i, d.prosody.muc_domain())).collect();
    // All requests at once.
    let mut ids = Vec::new();
    for r in &rooms {
        let id = c.new_id();
        let iq = Element::new("iq", ns::CLIENT)
            .attr("type", "set")
            .attr("id", id.clone())
            .attr("to", "focus.meet.test")
            .child(Element::new("conference", ns::FOCUS).attr("room", r.clone()));
        c.send(&iq);
        ids.push(id);
    }
    let mut ready = 0;
    for id in &ids {
        let a = c
            .wait_for(Duration::from_secs(30), |el| el.name == "iq" && el.get_attr("id") == Some(id.as_str()))
            .expect("every request is answered");
        if a.get_child("conference", ns::FOCUS).and_then(|x| x.get_attr("ready")) == Some("true") {
            ready += 1;
        }
    }
    assert_eq!(ready, N, "every room is ready");
    let s = d.stats();
    assert_eq!(s["conferences"], N, "{}", s);
    assert!(threads_of(pid) >= base_threads + N, "one thread per conference: {} threads", threads_of(pid));
    // Join every room, then leave them all: every conference ends and its thread is joined.
    for r in &rooms {
        c.send(&Element::new("presence", ns::CLIENT).attr("to", format!("{}/many", r)).child(Element::new("x", ns::MUC)));
    }
    let s = wait_stats(&d, Duration::from_secs(10), |s| s["participants"] == N);
    assert_eq!(s["participants"], N, "{}", s);
    for r in &rooms {
        c.send(&Element::new("presence", ns::CLIENT).attr("to", format!("{}/many", r)).attr("type", "unavailable"));
    }
    let s = wait_stats(&d, Duration::from_secs(10), |s| s["conferences"] == 0);
    assert_eq!(s["conferences"], 0, "{}", s);
    let deadline = Instant::now() + Duration::from_secs(5);
    while threads_of(pid) > base_threads && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(threads_of(pid) <= base_threads, "threads joined: {} > {}", threads_of(pid), base_threads);
    assert_eq!(d.stats()["total_conferences_created"], N);
}

#[test]
fn a_request_while_the_conference_is_ending_starts_a_fresh_one() {
    let d = Deployment::start("conf-race", &[("jvb1", &[])]);
    let room = format!("race@{}", d.prosody.muc_domain());
    let mut a = d.participant("alice", FEATURES_2021);
    a.request_conference(&room);
    a.join();
    // Leave and immediately ask again: the new request must not be lost.
    a.leave();
    let conf = a.request_conference(&room);
    assert_eq!(conf.get_attr("ready"), Some("true"));
    a.join();
    let s = wait_stats(&d, T, |s| s["conferences"] == 1 && s["participants"] == 1);
    assert_eq!(s["participants"], 1, "{}", s);
}
