//! Media logic on simulated time with a fake MUC and a fake bridge.

use std::sync::Arc;
use std::time::{Duration, Instant};


use super::sim::{muc_responder, occupant_leave, occupant_presence, Behaviour, FakeBridge, Requests, Responder, SimEnv};
use super::*;
use crate::bridge::Bridges;
use crate::messages::ReplyTarget;
use crate::xmpp::conference_iq::ConferenceReply;

pub(super) const JINGLE: &str = "urn:xmpp:jingle:1";

pub(super) fn room() -> Jid {
    Jid::parse("room1@conference.meet.test").unwrap()
}

pub(super) fn bridge() -> Jid {
    Jid::parse("jvbbrewery@internal.auth.meet.test/jvb1").unwrap()
}

pub(super) fn add_bridge(b: &mut Bridges, jid: &Jid, stress: &str) {
    let stats = Element::new("stats", ns::COLIBRI)
        .child(Element::new("stat", ns::COLIBRI).attr("name", "stress_level").attr("value", stress))
        .child(Element::new("stat", ns::COLIBRI).attr("name", "drain").attr("value", "false"));
    let p = Element::new("presence", ns::CLIENT).attr("from", jid.to_string()).child(stats);
    b.on_presence(&p, "focus", Instant::now());
}

pub(super) fn shared() -> Arc<Shared> {
    let mut b = Bridges::new();
    add_bridge(&mut b, &bridge(), "0.1");
    super::sim::test_shared(b, None)
}

/// The fake MUC of [`room`].
pub(super) fn muc() -> Responder {
    muc_responder(room(), Jid::parse("focus@auth.meet.test/focus").unwrap())
}

/// The fake MUC and the fake bridge [`bridge`], answering everything.
pub(super) fn env() -> SimEnv {
    SimEnv::new(FakeBridge::new(bridge()).around(muc()))
}

pub(super) fn request() -> Inbox {
    let iq = Element::new("iq", ns::COMPONENT).attr("type", "set").attr("id", "req").attr("from", "x@meet.test/1");
    Inbox::Request(PendingReply { target: ReplyTarget::Xmpp(ConnId(0)), iq, reply: ConferenceReply::default(), requester: None })
}

pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(super) fn jingle_to(env: &SimEnv, nick: &str, action: &str) -> Vec<(Duration, Element)> {
    let to = room().with_resource(nick).to_string();
    env.sent
        .iter()
        .filter(|(_, _, e)| {
            e.get_attr("to") == Some(to.as_str()) && e.get_child("jingle", JINGLE).is_some_and(|j| j.get_attr("action") == Some(action))
        })
        .map(|(t, _, e)| (*t, e.clone()))
        .collect()
}

pub(super) fn colibri(env: &SimEnv) -> Vec<Element> {
    env.sent.iter().filter_map(|(_, _, e)| e.get_child("conference-modify", ns::COLIBRI2).cloned()).collect()
}

#[test]
fn second_participant_triggers_allocation_and_offers_with_the_bridge_transport() {
    let r = room();
    let mut e = env();
    e.at(ms(0), request());
    e.at(ms(10), Inbox::stanza(occupant_presence(&r, "a", "a@meet.test/1", "none", "participant")));
    e.at(ms(500), Inbox::stanza(occupant_presence(&r, "b", "b@meet.test/1", "none", "participant")));
    e.at(ms(1000), Inbox::Shutdown);
    let mut c = Conference::new(e, Params { id: ConferenceId(1), room: r, shared: shared(), start_audio_muted: Some(1), start_video_muted: None });
    c.run();
    let env = &c.env;
    let a = jingle_to(env, "a", "session-initiate");
    let b = jingle_to(env, "b", "session-initiate");
    assert_eq!(a.len(), 1);
    assert_eq!(b.len(), 1);
    // Nobody was invited while alone.
    assert!(a[0].0 >= ms(500));
    // The first allocation created the conference; the second did not.
    let reqs = colibri(env);
    assert_eq!(reqs[0].get_attr("create"), Some("true"));
    assert_eq!(reqs[1].get_attr("create"), None);
    // The offer carries the bridge transport and start-muted for the second joiner.
    let j = b[0].1.get_child("jingle", JINGLE).unwrap();
    let t = j.children_named("content", JINGLE).next().unwrap().get_child("transport", "urn:xmpp:jingle:transports:ice-udp:1").unwrap();
    assert_eq!(t.get_attr("ufrag"), Some("jvb1-u2"));
    let sm = j.get_child("startmuted", ns::START_MUTED).expect("start muted for the 2nd joiner");
    assert_eq!(sm.get_attr("audio"), Some("true"));
    assert!(a[0].1.get_child("jingle", JINGLE).unwrap().get_child("startmuted", ns::START_MUTED).is_none());
    // The shutdown expired the conference on the bridge.
    assert_eq!(reqs.last().unwrap().get_attr("expire"), Some("true"));
}

#[test]
fn a_lone_participant_session_ends_after_20_s() {
    let r = room();
    let mut e = env();
    e.at(ms(0), request());
    e.at(ms(10), Inbox::stanza(occupant_presence(&r, "a", "a@meet.test/1", "none", "participant")));
    e.at(ms(20), Inbox::stanza(occupant_presence(&r, "b", "b@meet.test/1", "none", "participant")));
    e.at(ms(1000), Inbox::stanza(occupant_leave(&r, "b")));
    e.at(ms(60_000), Inbox::Shutdown);
    let mut c = Conference::new(e, Params { id: ConferenceId(1), room: r, shared: shared(), start_audio_muted: None, start_video_muted: None });
    c.run();
    let t = jingle_to(&c.env, "a", "session-terminate");
    assert_eq!(t.len(), 1, "one session-terminate to the lone participant");
    assert_eq!(t[0].0, ms(21_000));
    let reason = t[0].1.get_child("jingle", JINGLE).unwrap().get_child("reason", JINGLE).unwrap();
    assert!(reason.get_child("expired", JINGLE).is_some());
    // b's endpoint was expired when b left, then the conference when a's session ended.
    let reqs = colibri(&c.env);
    assert!(reqs.iter().any(|r| r.children_named("endpoint", ns::COLIBRI2).any(|e| e.get_attr("id") == Some("b") && e.get_attr("expire") == Some("true"))));
    assert!(reqs.iter().any(|r| r.get_attr("expire") == Some("true")));
}

/// A client answer to a session-initiate: session-accept with one audio source.
pub(super) fn accept_for(si: &Element, ssrc: u32) -> Element {
    let j = si.get_child("jingle", JINGLE).unwrap();
    let to = si.get_attr("to").unwrap();
    let nick = Jid::parse(to).unwrap().resource().unwrap().to_string();
    Element::new("iq", ns::CLIENT)
        .attr("type", "set")
        .attr("id", format!("acc-{}", nick))
        .attr("from", to)
        .child(Element::new("jingle", JINGLE).attr("action", "session-accept").attr("sid", j.get_attr("sid").unwrap()).child(
            Element::new("content", JINGLE).attr("name", "audio").child(
                Element::new("description", ns::RTP).attr("media", "audio").child(
                    Element::new("source", ns::SSMA).attr("ssrc", ssrc.to_string()).child(
                        Element::new("parameter", ns::SSMA).attr("name", "msid").attr("value", format!("{}-audio-0 t", nick)),
                    ),
                ),
            ),
        ))
}

#[test]
fn a_burst_of_joins_costs_one_source_add_per_receiver() {
    let r = room();
    // Every client accepts its offer at once.
    let mut e = accepting_env();
    e.at(ms(0), request());
    let nicks = ["a", "b", "c", "d", "e", "f"];
    for (i, n) in nicks.iter().enumerate() {
        e.at(ms(10 + i as u64), Inbox::stanza(occupant_presence(&r, n, &format!("{}@meet.test/1", n), "none", "participant")));
    }
    e.at(ms(2000), Inbox::Shutdown);
    let mut c = Conference::new(e, Params { id: ConferenceId(1), room: r.clone(), shared: shared(), start_audio_muted: None, start_video_muted: None });
    c.run();
    let accepted = c
        .env
        .sent
        .iter()
        .filter(|(_, _, e)| e.get_attr("id").is_some_and(|i| i.starts_with("acc-")) && e.get_attr("type") == Some("result"))
        .count();
    assert_eq!(accepted, nicks.len(), "every accept answered");
    // Everyone ends up knowing the other five, in far fewer stanzas than one per source.
    let mut adds = 0;
    for n in nicks {
        let mut known = std::collections::BTreeSet::new();
        for (_, si) in jingle_to(&c.env, n, "session-initiate").iter().chain(jingle_to(&c.env, n, "source-add").iter()) {
            for ct in si.get_child("jingle", JINGLE).unwrap().children_named("content", JINGLE) {
                for d in ct.elements().filter(|d| d.name == "description") {
                    for src in d.elements().filter(|x| x.name == "source") {
                        known.insert(src.get_attr("ssrc").unwrap().to_string());
                    }
                }
            }
        }
        known.remove("111");
        known.remove("222");
        assert_eq!(known.len(), nicks.len() - 1, "{} knows the others' sources: {:?}", n, known);
        adds += jingle_to(&c.env, n, "source-add").len();
    }
    // One source each: 6 × 5 = 30 announcements would be sent one by one.
    assert!(adds <= nicks.len(), "{} source-adds for 6 receivers", adds);
}

#[test]
fn a_bridge_that_stops_answering_is_failed_and_everyone_moves() {
    let r = room();
    let jvb2 = Jid::parse("jvbbrewery@internal.auth.meet.test/jvb2").unwrap();
    // jvb1 never answers the allocation of "c".
    let jvb1 = FakeBridge::new(bridge()).on(Requests::Endpoint("c".into()), Behaviour::Silent);
    let mut e = SimEnv::new(jvb1.around(FakeBridge::new(jvb2.clone()).around(muc())));
    e.at(ms(0), request());
    for (i, n) in ["a", "b", "c"].iter().enumerate() {
        e.at(ms(10 + 100 * i as u64), Inbox::stanza(occupant_presence(&r, n, &format!("{}@meet.test/1", n), "none", "participant")));
    }
    e.at(ms(60_000), Inbox::Shutdown);
    let mut b = Bridges::new();
    add_bridge(&mut b, &bridge(), "0.1");
    add_bridge(&mut b, &jvb2, "0.5");
    let sh = crate::conference::sim::test_shared(b, None);
    let mut c = Conference::new(e, Params { id: ConferenceId(1), room: r, shared: sh.clone(), start_audio_muted: None, start_video_muted: None });
    c.run();
    let ufrag = |si: &Element| {
        let j = si.get_child("jingle", JINGLE).unwrap();
        let t = j.children_named("content", JINGLE).next().unwrap().get_child("transport", "urn:xmpp:jingle:transports:ice-udp:1").unwrap();
        t.get_attr("ufrag").unwrap().to_string()
    };
    for n in ["a", "b"] {
        let offers = jingle_to(&c.env, n, "session-initiate");
        assert_eq!(offers.len(), 2, "{} was invited twice", n);
        assert!(ufrag(&offers[0].1).starts_with("jvb1-"));
        assert!(ufrag(&offers[1].1).starts_with("jvb2-"), "{} moved to jvb2", n);
        let moved = jingle_to(&c.env, n, "session-terminate");
        assert_eq!(moved.len(), 1);
        // Moved right after the 15 s allocation timeout.
        assert!(moved[0].0 >= ms(15_000) && moved[0].0 < ms(16_000), "{:?}", moved[0].0);
    }
    let offers = jingle_to(&c.env, "c", "session-initiate");
    assert_eq!(offers.len(), 1);
    assert!(ufrag(&offers[0].1).starts_with("jvb2-"));
    assert!(!sh.bridges.lock().get(&bridge()).unwrap().is_operational(Instant::now()), "jvb1 is out of selection");
}

/// A session-accept for `si` carrying `sources` (`(ssrc, name)` audio sources, one msid each).
pub(super) fn accept_with(si: &Element, sources: &[(u32, &str)]) -> Element {
    let mut acc = accept_for(si, 1);
    let nick = Jid::parse(si.get_attr("to").unwrap()).unwrap().resource().unwrap().to_string();
    let d = acc
        .get_child_mut("jingle", JINGLE)
        .and_then(|j| j.get_child_mut("content", JINGLE))
        .and_then(|c| c.get_child_mut("description", ns::RTP))
        .unwrap();
    d.children.clear();
    for (ssrc, name) in sources {
        d.children.push(crate::xml::Node::Element(
            Element::new("source", ns::SSMA).attr("ssrc", ssrc.to_string()).attr("name", *name).child(
                Element::new("parameter", ns::SSMA).attr("name", "msid").attr("value", format!("{nick}-{ssrc} t")),
            ),
        ));
    }
    acc
}

#[test]
fn hostile_session_accepts_cost_their_sender_an_error_and_nothing_else() {
    let r = room();
    let mut inner = FakeBridge::new(bridge()).around(muc());
    let mut e = SimEnv::new(Box::new(move |el: &Element| {
        let mut out = inner(el);
        if el.get_child("jingle", JINGLE).is_some_and(|j| j.get_attr("action") == Some("session-initiate")) {
            let to = el.get_attr("to").unwrap_or_default();
            let many: Vec<(u32, String)> = (0..10_000).map(|i| (5000 + i, format!("flood-a{i}"))).collect();
            let many: Vec<(u32, &str)> = many.iter().map(|(s, n)| (*s, n.as_str())).collect();
            out.push(match Jid::parse(to).unwrap().resource().unwrap() {
                "a" => accept_with(el, &[(1001, "a-a0")]),
                "b" => accept_with(el, &[(1002, "b-a0")]),
                // Steals a's source name.
                "evil" => accept_with(el, &[(2001, "a-a0")]),
                // Takes a name b will use after a restart, without a's prefix rule…
                "squat" => accept_with(el, &[(3001, "b-a1")]),
                // …and 10 000 sources in one stanza.
                _ => accept_with(el, &many),
            });
        }
        out
    }));
    e.at(ms(0), request());
    for (i, n) in ["a", "b", "evil", "squat", "flood"].iter().enumerate() {
        e.at(ms(10 + 10 * i as u64), Inbox::stanza(occupant_presence(&r, n, &format!("{n}@meet.test/1"), "none", "participant")));
    }
    e.at(ms(2000), Inbox::Shutdown);
    let mut c = Conference::new(e, Params { id: ConferenceId(1), room: r, shared: shared(), start_audio_muted: None, start_video_muted: None });
    c.run();
    let answer = |nick: &str| {
        let id = format!("acc-{nick}");
        c.env.sent_matching(|e| e.get_attr("id") == Some(id.as_str())).first().map(|e| (*e).clone()).unwrap()
    };
    assert_eq!(answer("a").get_attr("type"), Some("result"));
    assert_eq!(answer("b").get_attr("type"), Some("result"));
    for (nick, text) in [
        ("evil", "Source name is already used: a-a0"),
        ("squat", "Source name must start with the endpoint id ('squat-'): b-a1"),
        ("flood", "Too many sources in one request (more than 128)"),
    ] {
        let err = crate::xmpp::stanza::parse_error(&answer(nick)).unwrap();
        assert_eq!(err.condition_name, "bad-request", "{nick}");
        assert_eq!(err.text.as_deref(), Some(text), "{nick}");
        assert!(c.media.sources.get(nick).is_none(), "{nick} has no sources");
    }
    assert_eq!(c.media.sources.get("a").unwrap().sources[0].ssrc, 1001);
    // Nobody was told about a refused source.
    let mut announced = std::collections::BTreeSet::new();
    for n in ["a", "b", "evil", "squat", "flood"] {
        for (_, si) in jingle_to(&c.env, n, "session-initiate").iter().chain(jingle_to(&c.env, n, "source-add").iter()) {
            for ct in si.get_child("jingle", JINGLE).unwrap().children_named("content", JINGLE) {
                for d in ct.elements().filter(|d| d.name == "description") {
                    for src in d.elements().filter(|x| x.name == "source") {
                        announced.insert(src.get_attr("ssrc").unwrap().parse::<u32>().unwrap());
                    }
                }
            }
        }
    }
    announced.remove(&111);
    announced.remove(&222);
    assert_eq!(announced.into_iter().collect::<Vec<_>>(), vec![1001, 1002]);
}

#[test]
fn a_forged_colibri_answer_from_a_participant_is_ignored_and_the_bridge_answer_used() {
    let r = room();
    let mallory = r.with_resource("a").to_string();
    let mut bridge_and_muc = FakeBridge::new(bridge()).around(muc());
    // Before the bridge answers b's allocation, participant "a" answers it (right id,
    // from its own occupant JID) with its own ICE credentials.
    let mut e = SimEnv::new(Box::new(move |el: &Element| {
        let for_b = el
            .get_child("conference-modify", ns::COLIBRI2)
            .is_some_and(|cm| cm.children_named("endpoint", ns::COLIBRI2).any(|e| e.get_attr("id") == Some("b")));
        let mut out = Vec::new();
        if for_b {
            let ice = Element::new("transport", "urn:xmpp:jingle:transports:ice-udp:1").attr("ufrag", "evil").attr("pwd", "evilevilevilevilevilevil");
            let forged = crate::xmpp::stanza::iq_result(el)
                .attr("from", mallory.clone())
                .child(Element::new("conference-modified", ns::COLIBRI2).child(
                    Element::new("endpoint", ns::COLIBRI2).attr("id", "b").child(Element::new("transport", ns::COLIBRI2).child(ice)),
                ));
            let mut forged = forged;
            forged.set_attr("from", mallory.clone());
            // And an error from a participant for good measure: it must not fail the bridge.
            let mut forged_error = crate::xmpp::stanza::iq_error(el, crate::xmpp::stanza::ErrorCondition::InternalServerError, None);
            forged_error.set_attr("from", mallory.clone());
            out.push(forged);
            out.push(forged_error);
        }
        out.extend(bridge_and_muc(el));
        out
    }));
    e.at(ms(0), request());
    e.at(ms(10), Inbox::stanza(occupant_presence(&r, "a", "a@meet.test/1", "none", "participant")));
    e.at(ms(500), Inbox::stanza(occupant_presence(&r, "b", "b@meet.test/1", "none", "participant")));
    e.at(ms(1000), Inbox::Shutdown);
    let sh = shared();
    let mut c = Conference::new(e, Params { id: ConferenceId(1), room: r, shared: sh.clone(), start_audio_muted: None, start_video_muted: None });
    c.run();
    let b = jingle_to(&c.env, "b", "session-initiate");
    assert_eq!(b.len(), 1, "b was invited once");
    let j = b[0].1.get_child("jingle", JINGLE).unwrap();
    let t = j.children_named("content", JINGLE).next().unwrap().get_child("transport", "urn:xmpp:jingle:transports:ice-udp:1").unwrap();
    assert!(t.get_attr("ufrag").unwrap().starts_with("jvb1-"), "the bridge's transport, not the forger's: {:?}", t.get_attr("ufrag"));
    assert_eq!(sh.metrics.forged_answers.load(std::sync::atomic::Ordering::Relaxed), 2);
    assert!(sh.bridges.lock().get(&bridge()).unwrap().is_operational(Instant::now()), "the forged error failed nothing");
    assert_eq!(sh.metrics.colibri_errors.load(std::sync::atomic::Ordering::Relaxed), 0);
    // Every request id is one of ours: 16 random hex digits, not a sequence.
    let ids: Vec<String> = c
        .env
        .sent
        .iter()
        .filter(|(_, _, e)| e.name == "iq" && matches!(e.get_attr("type"), Some("get") | Some("set")))
        .filter_map(|(_, _, e)| e.get_attr("id").map(str::to_string)).collect();
    assert!(ids.len() >= 6);
    for id in &ids {
        assert!(crate::messages::pending::IqId::parse(id).is_some(), "{}", id);
    }
    let nums: Vec<u64> = ids.iter().map(|i| u64::from_str_radix(i, 16).unwrap()).collect();
    assert!(nums.windows(2).all(|w| w[0].abs_diff(w[1]) > 1 << 20), "{:?}", ids);
    assert!(sh.pending.lock().is_empty(), "nothing left in the pending table");
}

/// A bridge that never answers allocations; everything else answered as usual.
pub(super) fn silent_bridge_env() -> SimEnv {
    SimEnv::new(FakeBridge::new(bridge()).on(Requests::AnyEndpoint, Behaviour::Silent).around(muc()))
}

fn wait_for_allocation_then(end: impl FnOnce(&mut SimEnv)) -> (Conference<SimEnv>, EndReason, Arc<Shared>) {
    let r = room();
    let mut e = silent_bridge_env();
    e.at(ms(0), request());
    e.at(ms(10), Inbox::stanza(occupant_presence(&r, "a", "a@meet.test/1", "none", "participant")));
    e.at(ms(20), Inbox::stanza(occupant_presence(&r, "b", "b@meet.test/1", "none", "participant")));
    end(&mut e);
    let sh = shared();
    let mut c = Conference::new(e, Params { id: ConferenceId(1), room: r, shared: sh.clone(), start_audio_muted: None, start_video_muted: None });
    let reason = c.run();
    (c, reason, sh)
}

#[test]
fn a_shutdown_during_a_pending_allocation_ends_the_conference_at_once() {
    let (c, reason, sh) = wait_for_allocation_then(|e| e.at(ms(1000), Inbox::Shutdown));
    assert_eq!(reason, EndReason::Shutdown);
    assert_eq!(c.env.elapsed(), ms(1000), "ended when the shutdown came, not after the 15 s allocation timeout");
    // The bridge did nothing wrong: not failed, no colibri error; the room was left.
    assert!(sh.bridges.lock().get(&bridge()).unwrap().is_operational(Instant::now()));
    assert_eq!(sh.metrics.colibri_errors.load(std::sync::atomic::Ordering::Relaxed), 0);
    assert_eq!(c.env.sent_matching(|e| e.name == "presence" && e.get_attr("type") == Some("unavailable")).len(), 1);
    assert!(jingle_to(&c.env, "a", "session-initiate").is_empty());
    assert!(sh.pending.lock().is_empty());
}

#[test]
fn a_closed_inbox_during_a_pending_allocation_ends_the_conference_at_once() {
    let (c, reason, sh) = wait_for_allocation_then(|e| e.close_at(ms(1000)));
    assert_eq!(reason, EndReason::Shutdown);
    assert_eq!(c.env.elapsed(), ms(1000));
    assert!(sh.bridges.lock().get(&bridge()).unwrap().is_operational(Instant::now()));
    assert!(sh.pending.lock().is_empty());
}

#[test]
fn what_arrives_during_a_blocking_wait_is_reported_as_backlog_and_replayed_in_order() {
    let r = room();
    let mut e = silent_bridge_env();
    e.at(ms(0), request());
    e.at(ms(10), Inbox::stanza(occupant_presence(&r, "a", "a@meet.test/1", "none", "participant")));
    e.at(ms(20), Inbox::stanza(occupant_presence(&r, "b", "b@meet.test/1", "none", "participant")));
    // While the allocation for a waits (15 s), 300 others join and 299 leave again.
    for i in 0..300u64 {
        e.at(ms(100 + i), Inbox::stanza(occupant_presence(&r, &format!("p{}", i), &format!("p{}@meet.test/1", i), "none", "participant")));
    }
    for i in 0..299u64 {
        e.at(ms(1000 + i), Inbox::stanza(occupant_leave(&r, &format!("p{}", i))));
    }
    e.at(ms(40_000), Inbox::Shutdown);
    let sh = shared();
    let mut c = Conference::new(e, Params { id: ConferenceId(1), room: r, shared: sh, start_audio_muted: None, start_video_muted: None });
    c.run();
    // 300 joins, 299 leaves and the answer to b's disco were kept aside and reported.
    assert_eq!(c.env.max_backlog, 600, "everything received during the wait was reported");
    assert_eq!(c.env.backlog, 0);
    // In bytes too: the weight of what was kept, back to zero once replayed.
    let one = Inbox::stanza(occupant_presence(&room(), "p1", "p1@meet.test/1", "none", "participant")).weight();
    assert!(c.env.max_backlog_bytes >= 300 * one, "{} bytes for 600 messages", c.env.max_backlog_bytes);
    assert_eq!(c.env.backlog_bytes, 0);
    // Replayed in order after the wait: only p299 stayed besides a and b.
    let mut nicks: Vec<&str> = c.occupants().iter().map(|o| o.nick.as_str()).collect();
    nicks.sort();
    assert_eq!(nicks, vec!["a", "b", "p299"]);
}

#[test]
fn participants_past_the_limit_get_nothing_until_a_seat_is_free() {
    let r = room();
    let mut e = env();
    e.at(ms(0), request());
    for (i, n) in ["a", "b", "c", "d", "e"].iter().enumerate() {
        e.at(ms(10 + 10 * i as u64), Inbox::stanza(occupant_presence(&r, n, &format!("{}@meet.test/1", n), "none", "participant")));
    }
    // An update from a waiting participant is kept (its latest presence is what it gets admitted with).
    let mut upd = occupant_presence(&r, "c", "c@meet.test/1", "none", "participant");
    upd = upd.child(Element::new("stats-id", ns::CLIENT).text("Carol-1"));
    e.at(ms(500), Inbox::stanza(upd));
    e.at(ms(1000), Inbox::stanza(occupant_leave(&r, "d"))); // leaves the queue
    e.at(ms(2000), Inbox::stanza(occupant_leave(&r, "a"))); // c gets a's seat
    e.at(ms(3000), Inbox::stanza(occupant_leave(&r, "b"))); // nobody waits: e was never tracked
    e.at(ms(4000), Inbox::Shutdown);
    let mut b = Bridges::new();
    add_bridge(&mut b, &bridge(), "0.1");
    let limits = crate::config::limits::Limits { max_participants: 2, ..Default::default() };
    let sh = crate::conference::sim::test_shared_with(b, None, limits);
    let mut c = Conference::new(e, Params { id: ConferenceId(1), room: r.clone(), shared: sh.clone(), start_audio_muted: None, start_video_muted: None });
    c.run();
    let disco_to = |n: &str| {
        let to = r.with_resource(n).to_string();
        c.env.sent.iter().filter(|(_, _, e)| e.get_attr("to") == Some(to.as_str()) && e.get_child("query", ns::DISCO_INFO).is_some()).map(|(t, _, _)| *t).collect::<Vec<_>>()
    };
    assert_eq!(disco_to("a").len(), 1);
    assert!(disco_to("d").is_empty() && disco_to("e").is_empty(), "past the limit: no disco");
    let offer_c = jingle_to(&c.env, "c", "session-initiate");
    assert_eq!(offer_c.len(), 1);
    assert_eq!(offer_c[0].0, ms(2000), "c was offered when a's seat became free");
    assert_eq!(disco_to("c"), vec![ms(2000)]);
    assert!(jingle_to(&c.env, "d", "session-initiate").is_empty() && jingle_to(&c.env, "e", "session-initiate").is_empty());
    // c was admitted with its latest presence.
    let colibri_c = colibri(&c.env)
        .into_iter()
        .flat_map(|cm| cm.children_named("endpoint", ns::COLIBRI2).cloned().collect::<Vec<_>>())
        .find(|ep| ep.get_attr("id") == Some("c") && ep.get_attr("create") == Some("true"))
        .expect("c allocated");
    assert_eq!(colibri_c.get_attr("stats-id"), Some("Carol-1"));
    assert_eq!(sh.metrics.participants_over_limit.load(std::sync::atomic::Ordering::Relaxed), 3);
    let nicks: Vec<&str> = c.occupants().iter().map(|o| o.nick.as_str()).collect();
    assert_eq!(nicks, vec!["c"]);
}

#[test]
fn a_forged_error_for_someone_elses_offer_does_not_end_their_session() {
    let r = room();
    let mallory = r.with_resource("a").to_string();
    let mut inner = FakeBridge::new(bridge()).around(muc());
    // When b is offered a session, a answers the offer with an error in b's place.
    let mut e = SimEnv::new(Box::new(move |el: &Element| {
        let mut out = inner(el);
        let to_b = el.get_attr("to").is_some_and(|t| t.ends_with("/b"));
        if to_b && el.get_child("jingle", JINGLE).is_some_and(|j| j.get_attr("action") == Some("session-initiate")) {
            let mut forged = crate::xmpp::stanza::iq_error(el, crate::xmpp::stanza::ErrorCondition::NotAcceptable, None);
            forged.set_attr("from", mallory.clone());
            out.push(forged);
        }
        out
    }));
    e.at(ms(0), request());
    e.at(ms(10), Inbox::stanza(occupant_presence(&r, "a", "a@meet.test/1", "none", "participant")));
    e.at(ms(20), Inbox::stanza(occupant_presence(&r, "b", "b@meet.test/1", "none", "participant")));
    e.at(ms(1000), Inbox::Shutdown);
    let sh = shared();
    let mut c = Conference::new(e, Params { id: ConferenceId(1), room: r, shared: sh.clone(), start_audio_muted: None, start_video_muted: None });
    c.run();
    assert_eq!(jingle_to(&c.env, "b", "session-initiate").len(), 1);
    assert!(jingle_to(&c.env, "b", "session-terminate").is_empty(), "b's session survived the forgery");
    assert!(!c.participant("b").unwrap().is_failed());
    assert_eq!(sh.metrics.forged_answers.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(sh.metrics.jingle_errors.load(std::sync::atomic::Ordering::Relaxed), 0);
}

#[test]
fn presence_values_copied_into_outgoing_stanzas_are_bounded() {
    let r = room();
    let mut e = env();
    e.at(ms(0), request());
    // a's stats-id would go into every Colibri2 request about a, six times larger escaped.
    let huge = "'".repeat(200_000);
    let a = occupant_presence(&r, "a", "a@meet.test/1", "none", "participant").child(Element::new("stats-id", ns::CLIENT).text(huge.clone()));
    e.at(ms(10), Inbox::stanza(a));
    e.at(ms(20), Inbox::stanza(occupant_presence(&r, "b", "b@meet.test/1", "none", "participant").child(Element::new("stats-id", ns::CLIENT).text("Bob-1"))));
    // A later update with a huge value keeps the earlier one.
    let b2 = occupant_presence(&r, "b", "b@meet.test/1", "none", "participant").child(Element::new("stats-id", ns::CLIENT).text(huge));
    e.at(ms(30), Inbox::stanza(b2));
    // A nick longer than an endpoint id may be is not served.
    let long_nick = "n".repeat(crate::xmpp::muc::MAX_NICK_LEN + 1);
    e.at(ms(40), Inbox::stanza(occupant_presence(&r, &long_nick, "l@meet.test/1", "none", "participant")));
    // A mute request quoting a huge JID: the answer does not grow with it.
    let mute = Element::new("iq", ns::CLIENT)
        .attr("type", "set")
        .attr("id", "m1")
        .attr("from", r.with_resource("a").to_string())
        .child(Element::new("mute", ns::AUDIO_MUTE).attr("jid", format!("{}/{}", r, "x".repeat(100_000))).text("true"));
    e.at(ms(50), Inbox::stanza(mute));
    e.at(ms(1000), Inbox::Shutdown);
    let sh = shared();
    let mut c = Conference::new(e, Params { id: ConferenceId(1), room: r.clone(), shared: sh.clone(), start_audio_muted: None, start_video_muted: None });
    c.run();
    let largest = c.env.sent.iter().map(|(_, _, e)| e.to_xml().len()).max().unwrap();
    assert!(largest < 8 * 1024, "the largest stanza the focus sent has {} bytes", largest);
    let eps: Vec<Element> = colibri(&c.env).into_iter().flat_map(|cm| cm.children_named("endpoint", ns::COLIBRI2).cloned().collect::<Vec<_>>()).collect();
    assert!(eps.iter().any(|ep| ep.get_attr("id") == Some("a") && ep.get_attr("create") == Some("true")), "a is served");
    assert!(eps.iter().filter(|ep| ep.get_attr("id") == Some("a")).all(|ep| ep.get_attr("stats-id").is_none()));
    assert!(eps.iter().filter(|ep| ep.get_attr("id") == Some("b")).all(|ep| ep.get_attr("stats-id") == Some("Bob-1")));
    let to_long = r.with_resource(&long_nick).to_string();
    assert!(c.env.sent.iter().all(|(_, _, e)| e.get_attr("to") != Some(to_long.as_str())), "no disco, no offer");
    assert!(c.occupants().iter().all(|o| o.nick != long_nick));
    assert_eq!(sh.metrics.limits.oversized_fields.load(std::sync::atomic::Ordering::Relaxed), 3);
    let answer = c.env.sent_matching(|e| e.get_attr("id") == Some("m1"));
    assert_eq!(answer.len(), 1);
}

/// An env whose clients accept every offer at once, each with one audio source
/// (SSRC 1001, 1002, … in the order offers go out).
pub(super) fn accepting_env() -> SimEnv {
    let mut inner = FakeBridge::new(bridge()).around(muc());
    let mut next_ssrc = 1000;
    SimEnv::new(Box::new(move |el: &Element| {
        let mut out = inner(el);
        if el.get_child("jingle", JINGLE).is_some_and(|j| j.get_attr("action") == Some("session-initiate")) {
            next_ssrc += 1;
            out.push(accept_for(el, next_ssrc));
        }
        out
    }))
}

/// SSRCs in the `<source>`s of a Jingle IQ.
pub(super) fn ssrcs_in(iq: &Element) -> Vec<String> {
    let mut out = Vec::new();
    for ct in iq.get_child("jingle", JINGLE).unwrap().children_named("content", JINGLE) {
        for d in ct.elements().filter(|d| d.name == "description") {
            out.extend(d.elements().filter(|x| x.name == "source").filter_map(|x| x.get_attr("ssrc").map(str::to_string)));
        }
    }
    out
}

#[test]
fn a_participant_gone_while_the_focus_was_away_leaves_no_ghost_session() {
    let r = room();
    let mut e = accepting_env();
    e.at(ms(0), request());
    e.at(ms(10), Inbox::stanza(occupant_presence(&r, "a", "a@meet.test/1", "none", "participant")));
    e.at(ms(20), Inbox::stanza(occupant_presence(&r, "b", "b@meet.test/1", "none", "participant")));
    e.at(ms(1000), Inbox::Connection(false));
    // b leaves while the focus is disconnected; after the reconnect the MUC lists only a.
    e.at(ms(30_000), Inbox::stanza(occupant_presence(&r, "a", "a@meet.test/1", "none", "participant")));
    e.at(ms(30_000), Inbox::Connection(true));
    // c joins later: its offer must not carry b's sources.
    e.at(ms(31_000), Inbox::stanza(occupant_presence(&r, "c", "c@meet.test/1", "none", "participant")));
    e.at(ms(32_000), Inbox::Shutdown);
    let mut c = Conference::new(e, Params { id: ConferenceId(1), room: r.clone(), shared: shared(), start_audio_muted: None, start_video_muted: None });
    c.run();
    // Offers went to a then b: b's source is 1002.
    let b_init = jingle_to(&c.env, "b", "session-initiate");
    assert_eq!(b_init.len(), 1);
    let b_ssrc = "1002";
    // b's endpoint was expired on the bridge after the rejoin…
    let expired_b: Vec<Duration> = c
        .env
        .sent
        .iter()
        .filter(|(_, _, e)| {
            e.get_child("conference-modify", ns::COLIBRI2)
                .is_some_and(|cm| cm.children_named("endpoint", ns::COLIBRI2).any(|ep| ep.get_attr("id") == Some("b") && ep.get_attr("expire") == Some("true")))
        })
        .map(|(t, _, _)| *t)
        .collect();
    assert_eq!(expired_b.len(), 1, "b's endpoint expired once");
    assert!(expired_b[0] >= ms(30_000));
    // …and a was told b's source is gone.
    let removes = jingle_to(&c.env, "a", "source-remove");
    assert_eq!(removes.len(), 1, "{:?}", removes.iter().map(|(_, e)| e.to_xml()).collect::<Vec<_>>());
    assert!(removes[0].0 >= ms(30_000));
    assert_eq!(ssrcs_in(&removes[0].1), vec![b_ssrc.to_string()]);
    // No Jingle went to b after it vanished, and c's offer does not know b.
    assert!(jingle_to(&c.env, "b", "session-terminate").is_empty());
    let c_init = jingle_to(&c.env, "c", "session-initiate");
    assert_eq!(c_init.len(), 1);
    assert!(!ssrcs_in(&c_init[0].1).contains(&b_ssrc.to_string()), "{:?}", ssrcs_in(&c_init[0].1));
    assert!(c.participant("b").is_none() && c.media.sources.get("b").is_none());
    assert!(!c.cleanup.lock().sessions.contains_key("b"), "nothing left for the panic cleanup either");
    let nicks: Vec<&str> = c.occupants().iter().map(|o| o.nick.as_str()).collect();
    assert_eq!(nicks, vec!["a", "c"]);
}

#[test]
fn when_everyone_vanished_while_the_focus_was_away_the_conference_ends() {
    let r = room();
    let mut e = accepting_env();
    e.at(ms(0), request());
    e.at(ms(10), Inbox::stanza(occupant_presence(&r, "a", "a@meet.test/1", "none", "participant")));
    e.at(ms(20), Inbox::stanza(occupant_presence(&r, "b", "b@meet.test/1", "none", "participant")));
    e.at(ms(1000), Inbox::Connection(false));
    e.at(ms(30_000), Inbox::Connection(true));
    e.at(ms(60_000), Inbox::Shutdown);
    let mut c = Conference::new(e, Params { id: ConferenceId(1), room: r, shared: shared(), start_audio_muted: None, start_video_muted: None });
    assert_eq!(c.run(), EndReason::RoomEmpty);
    assert_eq!(c.env.elapsed(), ms(30_000));
    // The bridge conference went with them.
    assert!(colibri(&c.env).iter().any(|cm| cm.get_attr("expire") == Some("true")));
}
