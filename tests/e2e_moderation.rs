//! Moderation end to end (issue #14, tests/fixtures/protocol/moderation.md) through a private
//! Prosody whose test modules play Jitsi's AV moderation, room metadata and breakout rooms
//! plugins (scripts/prosody-modules/mod_jicofo_test_*.lua), a bridge simulator and the real
//! jicofo binary.

mod common;

use std::time::{Duration, Instant};

use common::deploy::{Deployment, Participant, FEATURES_2021, T};
use jicofo::xml::Element;
use jicofo::xmpp::ns;
use jicofo::xmpp::stanza::parse_error;

const JINGLE: &str = "urn:xmpp:jingle:1";
const ICE: &str = "urn:xmpp:jingle:transports:ice-udp:1";

fn room(d: &Deployment, name: &str) -> String {
    format!("{}@{}", name, d.prosody.muc_domain())
}

fn wait_discovery(d: &Deployment) {
    assert!(
        d.wait_log("components of meet.test: av_moderation avmoderation.meet.test, breakout_rooms breakout.meet.test, room_metadata metadata.meet.test", T),
        "the components were discovered; see {}",
        d.log.display()
    );
}

/// A participant that requested `r` and joined it.
fn joined(d: &Deployment, nick: &str, r: &str) -> Participant {
    let mut p = d.participant(nick, FEATURES_2021);
    p.request_conference(r);
    p.join();
    p
}

/// Wait for the offer and accept it (with the captured session-accept, which carries the
/// participant's ICE transport).
fn invited(p: &mut Participant) -> Element {
    let si = p.expect_jingle("session-initiate", T).expect("invited");
    let acc = p.session_accept(&si, "lyno-session-accept.xml");
    let r = p.request(acc);
    assert_eq!(r.get_attr("type"), Some("result"), "{}", r);
    si
}

/// Wait until `p`'s own presence in its room says `affiliation`.
fn wait_affiliation(p: &mut Participant, affiliation: &str, timeout: Duration) -> bool {
    let me = format!("{}/{}", p.room, p.nick);
    p.client
        .wait_for(timeout, |el| {
            el.name == "presence"
                && el.get_attr("from") == Some(me.as_str())
                && el
                    .get_child("x", ns::MUC_USER)
                    .and_then(|x| x.get_child("item", ns::MUC_USER))
                    .is_some_and(|i| i.get_attr("affiliation") == Some(affiliation))
        })
        .is_some()
}

/// The next mute IQ from the focus in namespace `mute_ns`, answered.
fn mute_from_focus(p: &mut Participant, mute_ns: &str, timeout: Duration) -> Option<Element> {
    let el = p.client.wait_for(timeout, |el| el.name == "iq" && el.get_attr("type") == Some("set") && el.get_child("mute", mute_ns).is_some())?;
    p.client.send(&jicofo::xmpp::stanza::iq_result(&el));
    Some(el)
}

fn mute_iq(p: &Participant, target: &str, mute_ns: &str, value: &str) -> Element {
    Element::new("iq", ns::CLIENT)
        .attr("type", "set")
        .attr("to", format!("{}/focus", p.room))
        .child(Element::new("mute", mute_ns).attr("jid", format!("{}/{}", p.room, target)).text(value))
}

/// `(audio, video)` of every `<force-mute>` the bridge received for endpoint `ep`, in order.
fn force_mutes(d: &Deployment, ep: &str) -> Vec<(bool, bool)> {
    d.colibri_received("jvb1")
        .iter()
        .flat_map(|cm| cm.children_named("endpoint", ns::COLIBRI2).cloned().collect::<Vec<_>>())
        .filter(|e| e.get_attr("id") == Some(ep))
        .filter_map(|e| e.get_child("force-mute", ns::COLIBRI2).cloned())
        .map(|f| (f.get_attr("audio") == Some("true"), f.get_attr("video") == Some("true")))
        .collect()
}

fn av_message(p: &mut Participant, attrs: &[(&str, &str)]) {
    let mut av = Element::new("av_moderation", ns::CLIENT);
    for (k, v) in attrs {
        av.set_attr(k, *v);
    }
    p.client.send(&Element::new("message", ns::CLIENT).attr("to", "avmoderation.meet.test").child(av));
}

#[test]
fn av_moderation_force_mutes_at_the_bridge_and_only_the_whitelisted_may_unmute() {
    let d = Deployment::start("e2e-mod-av", &[("jvb1", &[])]);
    wait_discovery(&d);
    let r = room(&d, "avmod");
    let mut m = joined(&d, "m", &r);
    let mut p = joined(&d, "p", &r);
    let mut q = joined(&d, "q", &r);
    invited(&mut m);
    invited(&mut p);
    invited(&mut q);
    assert!(wait_affiliation(&mut m, "owner", T), "the first participant is made owner");

    // A moderator mutes p's screen share: answered, p told, and the bridge does not block
    // p's video (camera and screen share one flag there; without AV moderation it stays off).
    let a = m.request(mute_iq(&m, "p", ns::DESKTOP_MUTE, "true"));
    assert_eq!(a.get_attr("type"), Some("result"), "{}", a);
    let told = mute_from_focus(&mut p, ns::DESKTOP_MUTE, T).expect("p is told");
    assert_eq!(told.get_child("mute", ns::DESKTOP_MUTE).unwrap().get_attr("actor"), Some(format!("{}/m", r).as_str()));
    std::thread::sleep(Duration::from_millis(300));
    assert!(force_mutes(&d, "p").iter().all(|(_, v)| !v), "p's camera still flows: {:?}", force_mutes(&d, "p"));

    // Hostile: a participant forges the component's messages (directly to the focus, and as a
    // private message in the room), with malformed JSON and a huge whitelist: all ignored.
    let forged = format!(r#"{{"type":"av_moderation","enabled":true,"room":"{}","mediaType":"audio"}}"#, r);
    let many: Vec<String> = (0..3000).map(|i| format!("\"{}/x{}\"", r, i)).collect();
    let huge = format!(r#"{{"type":"av_moderation","room":"{}","whitelists":{{"audio":[{}]}}}}"#, r, many.join(","));
    for json in [forged.as_str(), "{not json", huge.as_str()] {
        for to in ["focus@auth.meet.test".to_string(), format!("{}/focus", r)] {
            let msg = Element::new("message", ns::CLIENT)
                .attr("to", to)
                .attr("type", "chat")
                .child(Element::new("json-message", ns::JITMEET).text(json));
            q.client.send(&msg);
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let s = d.stats();
    assert!(s["limits"]["plugin_messages_ignored"].as_u64().unwrap_or(0) >= 3, "{}", s["limits"]);
    assert!(force_mutes(&d, "p").iter().all(|(a, _)| !a), "nothing enforced by forged messages");

    // The moderator enables audio moderation through the component.
    av_message(&mut m, &[("enable", "true"), ("mediaType", "audio")]);
    for x in [&mut p, &mut q] {
        let el = mute_from_focus(x, ns::AUDIO_MUTE, T).expect("a mute IQ from the focus");
        assert_eq!(el.get_attr("from"), Some(format!("{}/focus", r).as_str()));
        assert_eq!(el.get_child("mute", ns::AUDIO_MUTE).unwrap().text_content(), "true");
    }
    assert!(
        d.wait_colibri("jvb1", T, |_| force_mutes(&d, "p").contains(&(true, false)) && force_mutes(&d, "q").contains(&(true, false))),
        "p and q force-muted at the bridge: {:?} {:?}",
        force_mutes(&d, "p"),
        force_mutes(&d, "q")
    );
    assert!(mute_from_focus(&mut m, ns::AUDIO_MUTE, Duration::from_millis(300)).is_none(), "the actor gets no mute IQ");
    assert!(force_mutes(&d, "m").iter().all(|(a, _)| !a), "the actor is not force-muted");

    // p is whitelisted: its self-unmute is allowed and lifts the force-mute; q's is refused.
    av_message(&mut m, &[("mediaType", "audio"), ("jidToWhitelist", &format!("{}/p", r))]);
    let deadline = Instant::now() + T;
    let answer = loop {
        let a = p.request(mute_iq(&p, "p", ns::AUDIO_MUTE, "false"));
        if a.get_attr("type") == Some("result") || Instant::now() >= deadline {
            break a;
        }
        std::thread::sleep(Duration::from_millis(100)); // the whitelist is on its way
    };
    assert_eq!(answer.get_attr("type"), Some("result"), "{}", answer);
    assert!(d.wait_colibri("jvb1", T, |_| force_mutes(&d, "p").last() == Some(&(false, false))), "{:?}", force_mutes(&d, "p"));
    let refused = q.request(mute_iq(&q, "q", ns::AUDIO_MUTE, "false"));
    assert_eq!(parse_error(&refused).map(|e| e.condition_name).as_deref(), Some("not-allowed"), "{}", refused);
    assert_eq!(force_mutes(&d, "q").last(), Some(&(true, false)));
    // Nobody unmutes someone else, moderators included.
    let other = m.request(mute_iq(&m, "q", ns::AUDIO_MUTE, "false"));
    assert_eq!(parse_error(&other).map(|e| e.condition_name).as_deref(), Some("not-allowed"));
    assert!(d.stats()["component_messages"].is_null(), "exported as plugin_messages");
    assert!(d.stats()["plugin_messages"].as_u64().unwrap_or(0) >= 2);

    // A joiner while audio is moderated: force-muted at allocation and told to start muted.
    let mut j = joined(&d, "j", &r);
    let si = invited(&mut j);
    let sm = si.get_child("jingle", JINGLE).unwrap().get_child("startmuted", ns::START_MUTED).expect("startmuted");
    assert_eq!(sm.get_attr("audio"), Some("true"));
    assert_eq!(force_mutes(&d, "j").first(), Some(&(true, false)));
}

#[test]
fn room_metadata_start_muted_and_in_place_ice_restart() {
    let d = Deployment::start("e2e-mod-ice", &[("jvb1", &[])]);
    wait_discovery(&d);
    let r = room(&d, "ice");
    let mut a = joined(&d, "a", &r);
    let mut b = joined(&d, "b", &r);
    let si = invited(&mut a);
    invited(&mut b);
    let j = si.get_child("jingle", JINGLE).unwrap();
    let sid = j.get_attr("sid").unwrap().to_string();
    let bs = j.get_child("bridge-session", ns::FOCUS).unwrap().get_attr("id").unwrap().to_string();
    let ufrag0 = j.children_named("content", JINGLE).next().unwrap().get_child("transport", ICE).unwrap().get_attr("ufrag").unwrap().to_string();
    let session_info = |p: &Participant, child: Element| {
        Element::new("iq", ns::CLIENT)
            .attr("type", "set")
            .attr("to", format!("{}/focus", p.room))
            .child(Element::new("jingle", JINGLE).attr("action", "session-info").attr("sid", sid.clone()).child(child))
    };
    let restart = |id: &str| Element::new("bridge-session", ns::FOCUS).attr("id", id).attr("ice-restart", "true");

    // In-place ICE restart: result, then a transport-info with the bridge's new transport.
    let res = a.request(session_info(&a, restart(&bs)));
    assert_eq!(res.get_attr("type"), Some("result"), "{}", res);
    let ti = a.expect_jingle("transport-info", T).expect("transport-info after the in-place ICE restart");
    let t = ti.get_child("jingle", JINGLE).unwrap().get_child("content", JINGLE).unwrap().get_child("transport", ICE).expect("ICE transport");
    assert_eq!(t.get_attr("ice-generation"), Some("1"));
    assert_ne!(t.get_attr("ufrag"), Some(ufrag0.as_str()), "new credentials");
    // Too soon again: rate-limited; another bridge session: item-not-found.
    let again = a.request(session_info(&a, restart(&bs)));
    let e = parse_error(&again).expect("refused");
    assert_eq!((e.condition_name.as_str(), e.text.as_deref()), ("resource-constraint", Some("rate-limited")));
    assert!(a.expect_jingle("session-terminate", Duration::from_millis(300)).is_none(), "the session stays");

    // Room metadata: the moderator sets startMuted; the next joiner starts muted.
    assert!(wait_affiliation(&mut a, "owner", T));
    let md = Element::new("room_metadata", ns::JITMEET)
        .attr("room", r.clone())
        .text(r#"{"key":"startMuted","data":{"audio":false,"video":true}}"#);
    a.client.send(&Element::new("message", ns::CLIENT).attr("to", "metadata.meet.test").child(md));
    assert!(d.wait_log("room metadata: start muted (false, true)", T), "the metadata reached the conference");
    let mut c = joined(&d, "c", &r);
    let si_c = invited(&mut c);
    let sm = si_c.get_child("jingle", JINGLE).unwrap().get_child("startmuted", ns::START_MUTED).expect("startmuted");
    assert_eq!((sm.get_attr("audio"), sm.get_attr("video")), (Some("false"), Some("true")));
}

#[test]
fn with_auto_owner_off_nobody_is_made_owner() {
    let mut d = Deployment::prepare("e2e-mod-noowner", &[("jvb1", &[])]);
    d.start_jicofo(&["--enable_auto_owner=false"]);
    let r = room(&d, "noowner");
    let mut a = joined(&d, "a", &r);
    let mut b = joined(&d, "b", &r);
    invited(&mut a);
    invited(&mut b);
    assert!(!wait_affiliation(&mut a, "owner", Duration::from_secs(2)), "no owner granted");
    assert!(!d.jicofo_log().contains("granting owner"), "no muc#admin sent");
    // Without a moderator, a mute of someone else is refused.
    let e = a.request(mute_iq(&a, "b", ns::AUDIO_MUTE, "true"));
    assert_eq!(parse_error(&e).map(|e| e.condition_name).as_deref(), Some("not-allowed"));
}

#[test]
fn a_guest_enters_a_breakout_room_under_a_secure_domain_and_nobody_is_made_moderator_there() {
    let mut d = Deployment::prepare("e2e-mod-breakout", &[("jvb1", &[])]);
    d.start_jicofo(&["--auth_domain=auth.meet.test"]);
    wait_discovery(&d);
    let main = room(&d, "main");
    // An authenticated user creates the main room and is made owner there.
    let mut u = Participant { client: d.user("user1"), nick: "u1".into(), room: String::new(), focus: d.prosody.focus_component(), ssrc_base: 5_000_000 };
    u.client.disco_features = Some(FEATURES_2021.iter().map(|s| s.to_string()).collect());
    u.request_conference(&main);
    u.join();
    assert!(wait_affiliation(&mut u, "owner", T));
    // A guest joins the main room (it exists), then the moderator opens a breakout room.
    let mut g = joined(&d, "g", &main);
    u.client.send(
        &Element::new("message", ns::CLIENT)
            .attr("to", "breakout.meet.test")
            .child(Element::new("breakout_rooms", ns::CLIENT).attr("type", "features/breakout-rooms/add").attr("subject", "Room 1")),
    );
    let update = g
        .client
        .wait_for(T, |el| el.name == "message" && el.get_attr("from") == Some("breakout.meet.test"))
        .expect("the breakout rooms update");
    let json: serde_json::Value = serde_json::from_str(&update.get_child("json-message", ns::JITMEET).unwrap().text_content()).unwrap();
    let breakout = json["rooms"].as_object().unwrap().keys().next().expect("one room").clone();
    assert!(breakout.ends_with("@breakout.meet.test"), "{}", breakout);
    // A guest may not create a main room, but enters the breakout room: no authentication.
    let refused = g.ask_conference(&room(&d, "other"), T).expect("answered");
    assert_eq!(parse_error(&refused).map(|e| e.condition_name).as_deref(), Some("not-authorized"));
    g.client.send(
        &Element::new("presence", ns::CLIENT)
            .attr("to", format!("{}/g", main))
            .attr("type", "unavailable")
            .child(Element::new("status", ns::CLIENT).text("switch_room")),
    );
    g.request_conference(&breakout);
    g.join();
    let mut h = joined(&d, "h", &breakout);
    invited(&mut g);
    invited(&mut h);
    // Nobody is made owner in the breakout room (roles come from the main room).
    assert!(!wait_affiliation(&mut g, "owner", Duration::from_secs(2)));
    assert!(!wait_affiliation(&mut h, "owner", Duration::from_millis(200)));
    assert!(d.jicofo_log().contains(&format!("conference {}: a breakout room of {}", breakout, main)), "the main room read from the form");
    assert_eq!(d.stats()["conferences"], 2, "main and breakout conferences run");
}

/// Token setup C (moderation.md §5 C): Jicofo's JWT authority. Prosody would check the
/// tokens on the login domain; here a password user of `auth.meet.test` stands for a token
/// user (the focus never sees the token either way).
#[test]
fn jwt_authority_a_token_user_creates_the_room_and_owns_it_a_guest_joins() {
    let mut d = Deployment::prepare("e2e-mod-jwt", &[("jvb1", &[])]);
    d.start_jicofo(&["--jwt_auth_domain=auth.meet.test"]);
    let r = room(&d, "tokens");
    let conference = |c: &mut common::client::TestClient, uid: Option<&str>, sid: Option<&str>| {
        let mut conf = Element::new("conference", ns::FOCUS).attr("room", r.clone());
        if let Some(u) = uid {
            conf.set_attr("machine-uid", u);
        }
        if let Some(s) = sid {
            conf.set_attr("session-id", s);
        }
        c.iq(Element::new("iq", ns::CLIENT).attr("type", "set").attr("to", d.prosody.focus_component()).child(conf), T)
    };
    // A guest may not create the room.
    let mut g = d.participant("g", FEATURES_2021);
    let e = g.ask_conference(&r, T).expect("answered");
    let pe = parse_error(&e).expect("refused");
    assert_eq!((pe.condition_name.as_str(), pe.text.as_deref()), ("not-authorized", Some("not authorized user domain")), "{}", e);
    // The token user must send machine-uid; with it the room is created for it.
    let mut u = Participant { client: d.user("user1"), nick: "u1".into(), room: String::new(), focus: d.prosody.focus_component(), ssrc_base: 6_000_000 };
    u.client.disco_features = Some(FEATURES_2021.iter().map(|s| s.to_string()).collect());
    let e = conference(&mut u.client, None, None);
    let pe = parse_error(&e).expect("refused");
    assert_eq!((pe.condition_name.as_str(), pe.text.as_deref()), ("not-acceptable", Some("Missing mandatory attribute 'machine-uid'")), "{}", e);
    let conf = u.request_conference(&r);
    assert_eq!(conf.get_attr("identity"), Some("user1@auth.meet.test"), "{}", conf);
    let sid = conf.get_attr("session-id").expect("a session id").to_string();
    let prop = |name: &str| {
        conf.children_named("property", ns::FOCUS).find(|p| p.get_attr("name") == Some(name)).and_then(|p| p.get_attr("value")).map(str::to_string)
    };
    assert_eq!((prop("authentication").as_deref(), prop("externalAuth").as_deref()), (Some("true"), Some("true")), "{}", conf);
    u.join();
    assert!(wait_affiliation(&mut u, "owner", T), "the token user is made owner");
    // The guest joins the existing room and is not made owner.
    g.request_conference(&r);
    g.join();
    invited(&mut u);
    invited(&mut g);
    assert!(!wait_affiliation(&mut g, "owner", Duration::from_secs(2)), "no owner grant for the guest");
    // login-url is answered without a URL.
    let lu = u.client.iq(
        Element::new("iq", ns::CLIENT)
            .attr("type", "get")
            .attr("to", d.prosody.focus_component())
            .child(Element::new("login-url", ns::FOCUS).attr("room", r.clone()).attr("machine-uid", "m-u1")),
        T,
    );
    assert_eq!(lu.get_attr("type"), Some("result"), "{}", lu);
    assert_eq!(lu.get_child("login-url", ns::FOCUS).and_then(|l| l.get_attr("url")), None, "{}", lu);
    // Everyone leaves: the conference ends and its session with it (no auto-login).
    u.leave();
    g.leave();
    assert!(d.wait_log(&format!("conference {}: ended; 1 authentication session(s) made for it dropped", r), T), "see {}", d.log.display());
    let e = conference(&mut u.client, Some("m-u1"), Some(&sid));
    let pe = parse_error(&e).expect("refused");
    assert_eq!(pe.condition_name, "not-acceptable", "{}", e);
    assert!(pe.extra.iter().any(|x| x.name == "session-invalid"), "{}", e);
}
