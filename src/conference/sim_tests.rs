//! Whole conferences on simulated time for the rules the other test files leave out:
//! determinism, source-remove, transport-info, the restart rate limit, force-mute, no
//! bridge, a bridge in graceful shutdown, a full inbox, and what is replayed after the
//! conference ended. Each test asserts the stanzas sent, to whom and with what.

use std::time::Duration;

use super::media_tests::{accept_for, accepting_env, add_bridge, bridge, jingle_to, ms, request, room, shared, ssrcs_in, JINGLE};
use super::sim::{muc_responder, occupant_leave, occupant_presence, Behaviour, FakeBridge, Requests, SimEnv, SIM_EPOCH_SECS};
use super::*;
use crate::bridge::Bridges;
use crate::messages::ReplyTarget;

fn focus_real() -> Jid {
    Jid::parse("focus@auth.meet.test/focus").unwrap()
}

fn join(e: &mut SimEnv, at: u64, nick: &str) {
    e.at(ms(at), Inbox::stanza(occupant_presence(&room(), nick, &format!("{nick}@meet.test/1"), "none", "participant")));
}

fn run_with(e: SimEnv, sh: Arc<Shared>) -> (Conference<SimEnv>, EndReason) {
    let mut c = Conference::new(e, Params { id: ConferenceId(1), room: room(), shared: sh, start_audio_muted: None, start_video_muted: None });
    let r = c.run();
    (c, r)
}

/// Everything sent, as text with its time.
fn transcript(e: &SimEnv) -> Vec<(Duration, String)> {
    e.sent.iter().map(|(t, _, el)| (*t, el.to_xml())).collect()
}

/// A conference with bridge failover, source signaling and restarts, on seed `seed`.
fn eventful(seed: u64) -> Vec<(Duration, String)> {
    let jvb2 = Jid::parse("jvbbrewery@internal.auth.meet.test/jvb2").unwrap();
    // jvb1 never answers the allocation of "d": everyone moves to jvb2.
    let jvb1 = FakeBridge::new(bridge()).on(Requests::Endpoint("d".into()), Behaviour::Silent);
    let mut both = jvb1.around(FakeBridge::new(jvb2.clone()).around(muc_responder(room(), focus_real())));
    let mut next_ssrc = 1000;
    let mut e = SimEnv::with_seed(
        Box::new(move |el: &Element| {
            let mut out = both(el);
            if el.get_child("jingle", JINGLE).is_some_and(|j| j.get_attr("action") == Some("session-initiate")) {
                next_ssrc += 1;
                out.push(accept_for(el, next_ssrc));
            }
            out
        }),
        seed,
    );
    e.at(ms(0), request());
    for (i, n) in ["a", "b", "c", "d"].iter().enumerate() {
        join(&mut e, 10 + 10 * i as u64, n);
    }
    e.at(ms(40_000), Inbox::stanza(occupant_leave(&room(), "b")));
    e.at(ms(60_000), Inbox::Shutdown);
    let mut b = Bridges::new();
    add_bridge(&mut b, &bridge(), "0.1");
    add_bridge(&mut b, &jvb2, "0.5");
    let (c, _) = run_with(e, super::sim::test_shared(b, None));
    transcript(&c.env)
}

#[test]
fn a_simulated_run_is_deterministic_for_its_seed() {
    let one = eventful(7);
    assert!(one.len() > 30, "an eventful run: {} stanzas", one.len());
    assert!(one.iter().filter(|(_, x)| x.contains("session-terminate")).count() >= 3, "with moves");
    assert_eq!(one, eventful(7), "same seed, same stanzas at the same times");
    // Meeting id, bridge session and sids come from the seed.
    let other = eventful(8);
    assert_eq!(one.len(), other.len());
    assert_ne!(one, other);
    // The wall clock starts at the simulated epoch: created-ms says so.
    let created = format!("key=\"created-ms\" value=\"{}\"", SIM_EPOCH_SECS * 1000);
    let presence = one.iter().find(|(_, x)| x.contains("created-ms")).map(|(_, x)| x.clone()).unwrap();
    assert!(presence.contains(&created) || presence.contains(&created.replace('"', "'")), "{presence}");
}

type Sent = [(Duration, ConnId, Element)];

/// The sid and bridge-session id of the latest offer to `nick`.
fn offer_of(sent: &Sent, nick: &str) -> (String, String) {
    let to = room().with_resource(nick).to_string();
    let si = sent
        .iter()
        .rev()
        .map(|(_, _, e)| e)
        .find(|e| e.get_attr("to") == Some(to.as_str()) && e.get_child("jingle", JINGLE).is_some_and(|j| j.get_attr("action") == Some("session-initiate")))
        .unwrap_or_else(|| panic!("no offer to {nick}"));
    let j = si.get_child("jingle", JINGLE).unwrap();
    let bs = j.get_child("bridge-session", ns::FOCUS).and_then(|b| b.get_attr("id")).unwrap();
    (j.get_attr("sid").unwrap().to_string(), bs.to_string())
}

/// A Jingle IQ `id` from `nick` in `sid` with these children of `<jingle>`.
fn jingle_iq(id: &str, nick: &str, action: &str, sid: &str, children: Vec<Element>) -> Element {
    Element::new("iq", ns::CLIENT)
        .attr("type", "set")
        .attr("id", id)
        .attr("from", room().with_resource(nick).to_string())
        .attr("to", "focus@auth.meet.test/focus")
        .child(Element::new("jingle", JINGLE).attr("action", action).attr("sid", sid).children(children))
}

/// An audio content with `nick`'s sources `ssrcs`, as `accept_for` announces them.
fn audio(nick: &str, ssrcs: &[u32]) -> Element {
    Element::new("content", JINGLE).attr("name", "audio").child(
        Element::new("description", ns::RTP).attr("media", "audio").children(ssrcs.iter().map(|s| {
            Element::new("source", ns::SSMA)
                .attr("ssrc", s.to_string())
                .child(Element::new("parameter", ns::SSMA).attr("name", "msid").attr("value", format!("{nick}-audio-0 t")))
        })),
    )
}

/// At `at`, `from` sends a Jingle `action` in the session of `owner` (usually itself).
fn jingle_at(e: &mut SimEnv, at: u64, id: &'static str, from: &'static str, owner: &'static str, action: &'static str, children: Vec<Element>) {
    e.at_with(ms(at), move |sent| {
        let (sid, _) = offer_of(sent, owner);
        Inbox::stanza(jingle_iq(id, from, action, &sid, children))
    });
}

/// The answer to `id` (the one stanza sent with that id).
fn answer(e: &SimEnv, id: &str) -> (Duration, Element) {
    let all: Vec<_> = e.sent.iter().filter(|(_, _, x)| x.get_attr("id") == Some(id)).map(|(t, _, x)| (*t, x.clone())).collect();
    assert_eq!(all.len(), 1, "one answer to {id}");
    all.into_iter().next().unwrap()
}

fn error_of(e: &Element) -> (String, Option<String>) {
    let err = crate::xmpp::stanza::parse_error(e).unwrap_or_else(|| panic!("not an error: {}", e.to_xml()));
    (err.condition_name, err.text)
}

/// Colibri2 endpoint requests about `nick` sent at or after `from`.
fn endpoint_requests(e: &SimEnv, nick: &str, from: Duration) -> Vec<(Duration, Element)> {
    e.sent
        .iter()
        .filter(|(t, _, _)| *t >= from)
        .filter_map(|(t, _, x)| x.get_child("conference-modify", ns::COLIBRI2).map(|cm| (*t, x.get_attr("to"), cm)))
        .flat_map(|(t, to, cm)| {
            assert_eq!(to, Some(bridge().to_string().as_str()), "Colibri2 goes to the bridge");
            cm.children_named("endpoint", ns::COLIBRI2).filter(|ep| ep.get_attr("id") == Some(nick)).map(move |ep| (t, ep.clone())).collect::<Vec<_>>()
        })
        .collect()
}

fn three_accepting() -> SimEnv {
    let mut e = accepting_env();
    e.at(ms(0), request());
    for (i, n) in ["a", "b", "c"].iter().enumerate() {
        join(&mut e, 10 + 10 * i as u64, n);
    }
    e
}

#[test]
fn a_source_remove_reaches_the_bridge_and_the_others_and_only_the_owner_may_remove() {
    let mut e = three_accepting();
    // Offers go to a, b, c in order: their sources are 1001, 1002, 1003.
    jingle_at(&mut e, 1000, "rm-a", "a", "a", "source-remove", vec![audio("a", &[1001])]);
    // b removes c's source; c uses a's session.
    jingle_at(&mut e, 2000, "rm-b", "b", "b", "source-remove", vec![audio("c", &[1003])]);
    jingle_at(&mut e, 3000, "rm-c", "c", "a", "source-remove", vec![audio("c", &[1003])]);
    e.at(ms(4000), Inbox::Shutdown);
    let (c, _) = run_with(e, shared());
    assert_eq!(answer(&c.env, "rm-a").1.get_attr("type"), Some("result"));
    // b and c learn it once, after the 20 ms batching window, in their own sessions.
    for n in ["b", "c"] {
        let removes = jingle_to(&c.env, n, "source-remove");
        assert_eq!(removes.len(), 1, "{n}");
        assert_eq!(removes[0].0, ms(1020), "{n}");
        assert_eq!(ssrcs_in(&removes[0].1), vec!["1001"], "{n}");
        assert_eq!(removes[0].1.get_child("jingle", JINGLE).unwrap().get_attr("sid"), Some(offer_of(&c.env.sent, n).0.as_str()));
        assert_eq!(removes[0].1.get_attr("from"), Some("focus@auth.meet.test/focus"));
    }
    assert!(jingle_to(&c.env, "a", "source-remove").is_empty(), "not told about its own source");
    // The bridge is told a's sources are now none.
    let to_bridge = endpoint_requests(&c.env, "a", ms(1000));
    assert_eq!(to_bridge.len(), 1, "one update (the shutdown expires the whole conference)");
    assert_eq!(to_bridge[0].0, ms(1000));
    let srcs = to_bridge[0].1.get_child("sources", ns::COLIBRI2).expect("a's sources");
    assert_eq!(srcs.to_xml().matches("ssrc=").count(), 0, "{}", srcs.to_xml());
    assert!(c.media.sources.get("a").is_none());
    // Someone else's source: refused, nothing signaled, nothing changed.
    let (cond, text) = error_of(&answer(&c.env, "rm-b").1);
    assert_eq!(cond, "bad-request");
    assert_eq!(text.as_deref(), Some("Source does not exist or is not owned by endpoint: 1003"));
    assert_eq!(error_of(&answer(&c.env, "rm-c").1), ("forbidden".into(), Some("not your Jingle session".into())));
    assert_eq!(c.media.sources.get("c").unwrap().sources[0].ssrc, 1003);
    assert!(endpoint_requests(&c.env, "b", ms(2000)).is_empty() && endpoint_requests(&c.env, "c", ms(2000)).is_empty());
    assert!(c.env.sent.iter().filter(|(t, _, _)| *t >= ms(2000) && *t < ms(4000)).all(|(_, _, x)| x.get_attr("id").is_some_and(|i| i.starts_with("rm-"))));
}

fn ice(ufrag: &str) -> Element {
    Element::new("transport", "urn:xmpp:jingle:transports:ice-udp:1")
        .attr("ufrag", ufrag)
        .attr("pwd", "0123456789012345678901")
        .child(
            Element::new("candidate", "urn:xmpp:jingle:transports:ice-udp:1")
                .attr("foundation", "1")
                .attr("component", "1")
                .attr("protocol", "udp")
                .attr("priority", "1")
                .attr("ip", "192.0.2.1")
                .attr("port", "10000")
                .attr("type", "host")
                .attr("generation", "0")
                .attr("id", "c1"),
        )
}

#[test]
fn a_transport_info_goes_to_the_bridge_for_the_senders_endpoint() {
    let mut e = three_accepting();
    let with_ice = |u: &str| vec![Element::new("content", JINGLE).attr("name", "audio").child(ice(u))];
    jingle_at(&mut e, 1000, "ti-a", "a", "a", "transport-info", with_ice("a-new"));
    jingle_at(&mut e, 2000, "ti-empty", "a", "a", "transport-info", vec![Element::new("content", JINGLE).attr("name", "audio")]);
    jingle_at(&mut e, 3000, "ti-b", "b", "a", "transport-info", with_ice("b-evil"));
    e.at(ms(4000), Inbox::Shutdown);
    let (c, _) = run_with(e, shared());
    assert_eq!(answer(&c.env, "ti-a").1.get_attr("type"), Some("result"));
    let reqs = endpoint_requests(&c.env, "a", ms(1000));
    assert_eq!(reqs[0].0, ms(1000));
    let t = reqs[0].1.get_child("transport", ns::COLIBRI2).expect("a transport").get_child("transport", "urn:xmpp:jingle:transports:ice-udp:1").unwrap();
    assert_eq!(t.get_attr("ufrag"), Some("a-new"));
    assert!(t.get_child("candidate", "urn:xmpp:jingle:transports:ice-udp:1").is_some_and(|c| c.get_attr("ip") == Some("192.0.2.1")));
    assert!(reqs[0].1.get_child("sources", ns::COLIBRI2).is_none(), "a transport update only");
    assert_eq!(error_of(&answer(&c.env, "ti-empty").1), ("bad-request".into(), Some("missing transport".into())));
    assert_eq!(error_of(&answer(&c.env, "ti-b").1), ("forbidden".into(), Some("not your Jingle session".into())));
    // Nothing else reached the bridge: no other transport for a, none for b, no Jingle to the others.
    assert_eq!(reqs.len(), 1, "one update");
    assert!(endpoint_requests(&c.env, "b", ms(1000)).is_empty());
    assert!(!c.env.sent.iter().any(|(_, _, x)| x.to_xml().contains("b-evil")));
    assert!(jingle_to(&c.env, "b", "transport-info").is_empty() && jingle_to(&c.env, "c", "transport-info").is_empty());
}

/// At `at`, `nick` asks for a restart of its current session (session-terminate with
/// `<bridge-session restart='true'>`).
fn restart_at(e: &mut SimEnv, at: u64, id: &'static str, nick: &'static str) {
    e.at_with(ms(at), move |sent| {
        let (sid, bs) = offer_of(sent, nick);
        let b = Element::new("bridge-session", ns::FOCUS).attr("id", bs).attr("restart", "true");
        Inbox::stanza(jingle_iq(id, nick, "session-terminate", &sid, vec![b]))
    });
}

#[test]
fn restarts_are_rate_limited_5_s_apart_and_5_a_minute() {
    let mut e = three_accepting();
    // a: five restarts 6 s apart (all allowed), the sixth within the minute is refused.
    let ids = ["r1", "r2", "r3", "r4", "r5", "r6"];
    for (i, id) in ids.iter().enumerate() {
        restart_at(&mut e, 1000 + 6000 * i as u64, id, "a");
    }
    // b: two restarts 2 s apart: the second is refused.
    restart_at(&mut e, 1500, "rb1", "b");
    restart_at(&mut e, 3500, "rb2", "b");
    e.at(ms(40_000), Inbox::Shutdown);
    let (c, _) = run_with(e, shared());
    let offers_a = jingle_to(&c.env, "a", "session-initiate");
    for (i, id) in ids[..5].iter().enumerate() {
        let (t, a) = answer(&c.env, id);
        assert_eq!((t, a.get_attr("type")), (ms(1000 + 6000 * i as u64), Some("result")), "{id}");
        // Re-offered right after the result, with a new sid.
        assert_eq!(offers_a[i + 1].0, t, "{id}");
        let sid = |o: &Element| o.get_child("jingle", JINGLE).unwrap().get_attr("sid").unwrap().to_string();
        assert_ne!(sid(&offers_a[i + 1].1), sid(&offers_a[i].1));
        let pos = |x: &Element| c.env.sent.iter().position(|(_, _, s)| s == x).unwrap();
        assert!(pos(&a) < pos(&offers_a[i + 1].1), "the result precedes the new offer");
    }
    let (t, refused) = answer(&c.env, "r6");
    assert_eq!(t, ms(31_000));
    assert_eq!(error_of(&refused), ("resource-constraint".into(), Some("rate-limited".into())));
    assert_eq!(offers_a.len(), 6, "no offer after the refused restart");
    assert!(c.participant("a").unwrap().session().is_none(), "the terminated session stays ended");
    assert_eq!(answer(&c.env, "rb1").1.get_attr("type"), Some("result"));
    assert_eq!(error_of(&answer(&c.env, "rb2").1), ("resource-constraint".into(), Some("rate-limited".into())));
    // b is offered again after its allowed restart, not after the refused one (only when
    // a's next restart re-invites everyone without a session).
    let offers_b: Vec<Duration> = jingle_to(&c.env, "b", "session-initiate").iter().map(|(t, _)| *t).collect();
    assert_eq!(offers_b[1..], [ms(1500), ms(7000)]);
    // b's endpoint was expired when its refused restart ended the session.
    assert!(endpoint_requests(&c.env, "b", ms(3500)).iter().any(|(t, ep)| *t == ms(3500) && ep.get_attr("expire") == Some("true")));
}

fn mute_iq(id: &str, from: &str, target: &str, media_ns: &str, value: &str) -> Inbox {
    Inbox::stanza(
        Element::new("iq", ns::CLIENT)
            .attr("type", "set")
            .attr("id", id)
            .attr("from", room().with_resource(from).to_string())
            .attr("to", room().with_resource("focus").to_string())
            .child(Element::new("mute", media_ns).attr("jid", room().with_resource(target).to_string()).text(value)),
    )
}

#[test]
fn a_moderator_mute_is_forwarded_and_the_bridge_left_alone_without_av_moderation() {
    let r = room();
    let mut e = accepting_env();
    e.at(ms(0), request());
    e.at(ms(10), Inbox::stanza(occupant_presence(&r, "mod", "m@meet.test/1", "owner", "moderator")));
    join(&mut e, 20, "p");
    join(&mut e, 30, "q");
    e.at(ms(1000), mute_iq("m1", "mod", "p", ns::AUDIO_MUTE, "true"));
    e.at(ms(2000), mute_iq("m2", "mod", "p", ns::AUDIO_MUTE, "true"));
    e.at(ms(3000), mute_iq("m3", "mod", "p", ns::VIDEO_MUTE, "true"));
    e.at(ms(4000), mute_iq("m4", "p", "p", ns::AUDIO_MUTE, "false")); // p unmutes itself
    e.at(ms(5000), mute_iq("m5", "p", "p", ns::AUDIO_MUTE, "true")); // self-mute: not forced
    e.at(ms(6000), mute_iq("m6", "q", "p", ns::VIDEO_MUTE, "false")); // not allowed: nothing
    e.at(ms(7000), Inbox::Shutdown);
    let (c, _) = run_with(e, shared());
    for id in ["m1", "m2", "m3", "m4", "m5"] {
        assert_eq!(answer(&c.env, id).1.get_attr("type"), Some("result"), "{id}");
    }
    assert_eq!(error_of(&answer(&c.env, "m6").1).0, "not-allowed");
    // The bridge's force-mute follows "not allowed to unmute" only (moderation.md §2):
    // without AV moderation, a moderator's mute sets nothing there.
    let forced: Vec<(Duration, Option<String>, Option<String>)> = endpoint_requests(&c.env, "p", ms(1000))
        .into_iter()
        .filter_map(|(t, ep)| {
            ep.get_child("force-mute", ns::COLIBRI2)
                .map(|f| (t, f.get_attr("audio").map(str::to_string), f.get_attr("video").map(str::to_string)))
        })
        .collect();
    assert_eq!(forced, vec![]);
    assert!(endpoint_requests(&c.env, "mod", ms(1000)).is_empty() && endpoint_requests(&c.env, "q", ms(1000)).is_empty());
    // The moderator's mutes are forwarded to p with the actor; p's own are not forwarded.
    let to_p: Vec<Duration> = c
        .env
        .sent
        .iter()
        .filter(|(_, _, x)| x.get_attr("to") == Some(r.with_resource("p").to_string().as_str()) && crate::xmpp::mute::MuteRequest::mute_child(x).is_some())
        .map(|(t, _, x)| {
            assert_eq!(crate::xmpp::mute::MuteRequest::mute_child(x).unwrap().get_attr("actor"), Some(r.with_resource("mod").to_string().as_str()));
            *t
        })
        .collect();
    assert_eq!(to_p, vec![ms(1000), ms(2000), ms(3000)]);
}

fn bridge_presence(jid: &Jid) -> Element {
    let stats = Element::new("stats", ns::COLIBRI)
        .child(Element::new("stat", ns::COLIBRI).attr("name", "stress_level").attr("value", "0.1"))
        .child(Element::new("stat", ns::COLIBRI).attr("name", "drain").attr("value", "false"));
    Element::new("presence", ns::CLIENT).attr("from", jid.to_string()).child(stats)
}

/// Focus presence updates (not the join) with the time each was sent.
fn focus_presences(e: &SimEnv) -> Vec<(Duration, Element)> {
    e.sent
        .iter()
        .filter(|(_, _, x)| x.name == "presence" && x.get_child("conference-properties", ns::FOCUS).is_some())
        .map(|(t, _, x)| (*t, x.clone()))
        .collect()
}

#[test]
fn without_a_bridge_participants_wait_and_are_told_until_one_comes() {
    let mut e = env_with_muc_and_bridge();
    e.at(ms(0), request());
    join(&mut e, 10, "a");
    join(&mut e, 20, "b");
    let sh = super::sim::test_shared(Bridges::new(), None);
    let bridges = sh.bridges.clone();
    e.at_with(ms(5000), move |_| {
        bridges.lock().on_presence(&bridge_presence(&bridge()), "focus", std::time::Instant::now());
        Inbox::Bridge(crate::messages::BridgeEvent::Up(bridge()))
    });
    e.at(ms(6000), Inbox::Shutdown);
    let (c, _) = run_with(e, sh);
    let presences = focus_presences(&c.env);
    let flagged: Vec<Duration> =
        presences.iter().filter(|(_, p)| p.get_child("bridgeNotAvailable", ns::FOCUS).is_some()).map(|(t, _)| *t).collect();
    assert_eq!(flagged, vec![ms(20)], "told once, when the second participant could not be invited");
    // When the bridge came: the flag is cleared, then the bridge is in use.
    let later: Vec<&(Duration, Element)> = presences.iter().filter(|(t, _)| *t > ms(20)).collect();
    assert!(!later.is_empty() && later.iter().all(|(t, p)| *t == ms(5000) && p.get_child("bridgeNotAvailable", ns::FOCUS).is_none()));
    let count = |p: &Element| {
        let props = p.get_child("conference-properties", ns::FOCUS).unwrap();
        let bc = props.children_named("property", ns::FOCUS).find(|p| p.get_attr("key") == Some("bridge-count")).unwrap();
        bc.get_attr("value").unwrap().to_string()
    };
    assert_eq!(count(&later.last().unwrap().1), "1");
    assert!(presences.iter().filter(|(t, _)| *t <= ms(20)).all(|(_, p)| count(p) == "0"));
    // Nothing was allocated or offered before the bridge came; then both were.
    let first_colibri = c.env.sent.iter().find(|(_, _, x)| x.get_child("conference-modify", ns::COLIBRI2).is_some()).unwrap();
    assert_eq!(first_colibri.0, ms(5000));
    assert_eq!(first_colibri.2.get_attr("to"), Some(bridge().to_string().as_str()));
    for n in ["a", "b"] {
        let offers = jingle_to(&c.env, n, "session-initiate");
        assert_eq!(offers.iter().map(|(t, _)| *t).collect::<Vec<_>>(), vec![ms(5000)], "{n}");
    }
}

fn env_with_muc_and_bridge() -> SimEnv {
    SimEnv::new(FakeBridge::new(bridge()).around(muc_responder(room(), focus_real())))
}

#[test]
fn a_bridge_in_graceful_shutdown_takes_nothing_new_and_everyone_moves() {
    let jvb2 = Jid::parse("jvbbrewery@internal.auth.meet.test/jvb2").unwrap();
    // jvb1 refuses c's endpoint: it is shutting down.
    let jvb1 = FakeBridge::new(bridge()).on(Requests::Endpoint("c".into()), Behaviour::graceful_shutdown());
    let mut e = SimEnv::new(jvb1.around(FakeBridge::new(jvb2.clone()).around(muc_responder(room(), focus_real()))));
    e.at(ms(0), request());
    for (i, n) in ["a", "b", "c"].iter().enumerate() {
        join(&mut e, 10 + 10 * i as u64, n);
    }
    e.at(ms(1000), Inbox::Shutdown);
    let mut b = Bridges::new();
    add_bridge(&mut b, &bridge(), "0.1");
    add_bridge(&mut b, &jvb2, "0.5");
    let sh = super::sim::test_shared(b, None);
    let (c, _) = run_with(e, sh.clone());
    let ufrag = |si: &Element| {
        let j = si.get_child("jingle", JINGLE).unwrap();
        let t = j.children_named("content", JINGLE).next().unwrap().get_child("transport", "urn:xmpp:jingle:transports:ice-udp:1").unwrap();
        t.get_attr("ufrag").unwrap().to_string()
    };
    for n in ["a", "b"] {
        let offers = jingle_to(&c.env, n, "session-initiate");
        assert_eq!(offers.len(), 2, "{n}");
        assert!(ufrag(&offers[0].1).starts_with("jvb1-") && ufrag(&offers[1].1).starts_with("jvb2-"), "{n} moved to jvb2");
        let moved = jingle_to(&c.env, n, "session-terminate");
        assert_eq!(moved.len(), 1, "{n}");
        assert_eq!(moved[0].0, ms(30));
        let reason = moved[0].1.get_child("jingle", JINGLE).unwrap().get_child("reason", JINGLE).unwrap();
        assert!(reason.get_child("success", JINGLE).is_some());
        assert_eq!(reason.get_child("text", JINGLE).map(|t| t.text_content()).as_deref(), Some("moving"));
    }
    let offers_c = jingle_to(&c.env, "c", "session-initiate");
    assert_eq!(offers_c.len(), 1);
    assert!(ufrag(&offers_c[0].1).starts_with("jvb2-"));
    // The conference on jvb1 was expired; jvb1 is kept out of selection but not failed.
    let expired_jvb1 = c.env.sent.iter().any(|(t, _, x)| {
        *t == ms(30) && x.get_attr("to") == Some(bridge().to_string().as_str()) && x.get_child("conference-modify", ns::COLIBRI2).is_some_and(|cm| cm.get_attr("expire") == Some("true"))
    });
    assert!(expired_jvb1);
    let now = std::time::Instant::now();
    let reg = sh.bridges.lock();
    let b1 = reg.get(&bridge()).unwrap();
    assert!(b1.graceful_shutdown && b1.is_operational(now), "in graceful shutdown, not failed");
    assert_eq!(reg.select(now, None, None, &[]), Some(jvb2), "jvb1 takes nothing new");
    assert_eq!(sh.metrics.participants_moved.load(std::sync::atomic::Ordering::Relaxed), 2);
    assert_eq!(sh.metrics.colibri_errors.load(std::sync::atomic::Ordering::Relaxed), 1);
}

fn ping(id: &str, from: &str) -> Inbox {
    Inbox::stanza(
        Element::new("iq", ns::CLIENT)
            .attr("type", "get")
            .attr("id", id)
            .attr("from", room().with_resource(from).to_string())
            .attr("to", "focus@auth.meet.test/focus")
            .child(Element::new("ping", ns::PING)),
    )
}

fn disco_times(e: &SimEnv, nick: &str) -> Vec<Duration> {
    let to = room().with_resource(nick).to_string();
    e.sent.iter().filter(|(_, _, x)| x.get_attr("to") == Some(to.as_str()) && x.get_child("query", ns::DISCO_INFO).is_some()).map(|(t, _, _)| *t).collect()
}

#[test]
fn a_full_inbox_during_a_blocking_wait_refuses_requests_and_holds_presences_for_later() {
    use crate::messages::inbox::Route;
    use crate::messages::InboxLoad;
    let r = room();
    let mut e = super::media_tests::silent_bridge_env();
    e.at(ms(0), request());
    join(&mut e, 10, "a");
    join(&mut e, 20, "b");
    // The allocation for a waits 15 s. Meanwhile: three pings, 40 joins, five more pings and
    // a conference request.
    for i in 0..3 {
        e.at(ms(100 + i), ping(&format!("early{i}"), "a"));
    }
    for i in 0..40u64 {
        join(&mut e, 200 + i, Box::leak(format!("p{i}").into_boxed_str()));
    }
    for i in 0..5 {
        e.at(ms(300 + i), ping(&format!("late{i}"), "b"));
    }
    e.at(ms(400), request());
    e.at(ms(20_000), Inbox::Shutdown);
    // An inbox of 20 presences' weight (the real one: 4096 messages, 8 MiB).
    let one = Inbox::stanza(occupant_presence(&r, "p10", "p10@meet.test/1", "none", "participant")).weight();
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut route = Route::new(ConferenceId(1), tx, rx, None, Arc::new(InboxLoad::new(Arc::default())), 1000 + crate::messages::inbox::HOLD_SLACK);
    route.budget.per_conference = 20 * one;
    route.budget.floor = 0;
    let load = route.load.clone();
    e.through_inbox(route);
    let (c, _) = run_with(e, shared());
    let inbox = c.env.inbox.as_ref().unwrap();
    // What the conference kept aside counted: the inbox filled at its byte budget…
    assert!(c.env.max_backlog_bytes <= 20 * one, "{} bytes kept aside", c.env.max_backlog_bytes);
    assert!(c.env.max_backlog_bytes > 15 * one);
    // …then every later request was refused (for the router to answer resource-constraint)…
    let refused: Vec<String> = inbox
        .refused
        .iter()
        .map(|(t, m)| {
            assert!(*t >= ms(200) && *t < ms(15_020), "refused during the wait: {t:?}");
            match m {
                Inbox::Stanza(el) => el.get_attr("id").unwrap().to_string(),
                Inbox::Request(p) => format!("request {}", p.iq.get_attr("id").unwrap()),
                other => panic!("refused {other:?}"),
            }
        })
        .collect();
    assert_eq!(refused, vec!["late0", "late1", "late2", "late3", "late4", "request req"]);
    // …and no presence was: those that did not fit were held and delivered after the wait.
    assert!(inbox.held > 0);
    for i in 0..40 {
        let d = disco_times(&c.env, &format!("p{i}"));
        assert_eq!(d.len(), 1, "p{i} was served");
        assert!(d[0] >= ms(15_020), "after the wait: {:?}", d[0]);
    }
    assert_eq!(c.occupants().len(), 42);
    // The pings that fitted were kept and answered after the wait, in order.
    let early: Vec<Duration> = (0..3).map(|i| answer(&c.env, &format!("early{i}")).0).collect();
    assert!(early.iter().all(|t| *t >= ms(15_020)));
    for i in 0..5 {
        assert!(c.env.sent.iter().all(|(_, _, x)| x.get_attr("id") != Some(format!("late{i}").as_str())), "the conference never saw late{i}");
    }
    assert_eq!((c.env.backlog, c.env.backlog_bytes, load.backlog()), (0, 0, 0));
}

#[test]
fn what_is_kept_aside_is_not_replayed_after_the_conference_ended_and_waiting_requests_get_not_ready() {
    let r = room();
    let mut e = super::media_tests::silent_bridge_env();
    e.at(ms(0), request());
    join(&mut e, 10, "a");
    join(&mut e, 20, "b");
    // During the 15 s allocation wait everyone leaves, then someone asks for the room
    // and a newcomer's presence arrives.
    e.at(ms(1000), Inbox::stanza(occupant_leave(&r, "a")));
    e.at(ms(1100), Inbox::stanza(occupant_leave(&r, "b")));
    let late = Element::new("iq", ns::COMPONENT).attr("type", "set").attr("id", "late").attr("from", "z@meet.test/1");
    e.at(
        ms(1200),
        Inbox::Request(PendingReply {
            target: ReplyTarget::Xmpp(ConnId(0)),
            iq: late,
            reply: crate::xmpp::conference_iq::ConferenceReply::default(),
            requester: Some(Jid::parse("z@meet.test/1").unwrap()),
        }),
    );
    join(&mut e, 1300, "c");
    e.at(ms(60_000), Inbox::Shutdown);
    let sh = shared();
    let (c, reason) = run_with(e, sh.clone());
    // The replay of the two leaves ended the conference when the wait was over…
    assert_eq!(reason, EndReason::RoomEmpty);
    let end = c.env.elapsed();
    assert_eq!(end, ms(20) + REPLY_TIMEOUT, "ended when the wait was over");
    // …and nothing kept aside after them was acted on: no disco or offer to c.
    let to_c = r.with_resource("c").to_string();
    assert!(c.env.sent.iter().all(|(_, _, x)| x.get_attr("to") != Some(to_c.as_str())));
    // The request kept aside is answered, not ready: the client asks again and gets a new conference.
    let (t, a) = answer(&c.env, "late");
    assert_eq!(t, end);
    assert_eq!(a.get_child("conference", ns::FOCUS).unwrap().get_attr("ready"), Some("false"));
    // The room was left once, after the answer; nothing is kept or pending any more.
    let leaves: Vec<Duration> = c.env.sent.iter().filter(|(_, _, x)| x.name == "presence" && x.get_attr("type") == Some("unavailable")).map(|(t, _, _)| *t).collect();
    assert_eq!(leaves, vec![end]);
    assert_eq!((c.env.backlog, c.env.backlog_bytes), (0, 0));
    assert!(sh.pending.lock().is_empty());
}
