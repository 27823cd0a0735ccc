//! Moderation on simulated time (moderation.md §1–§5, §7): AV moderation, mute IQs at
//! the bridge, room metadata, auto-owner off, breakout rooms, ICE recovery.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::sim::{muc_responder, occupant_leave, occupant_presence, FakeBridge, Responder, SimEnv};
use super::*;
use crate::bridge::Bridges;
use crate::messages::ReplyTarget;
use crate::xmpp::conference_iq::ConferenceReply;
use crate::xmpp::av_moderation::{AvModerationMessage, MediaType};
use crate::xmpp::room_metadata::RoomMetadata;
use crate::xmpp::stanza::parse_error;

const JINGLE: &str = "urn:xmpp:jingle:1";

fn room() -> Jid {
    Jid::parse("room1@conference.meet.test").unwrap()
}

fn bridge() -> Jid {
    Jid::parse("jvbbrewery@internal.auth.meet.test/jvb1").unwrap()
}

fn shared_with(settings: crate::moderation::breakout::Settings) -> Arc<Shared> {
    let mut b = Bridges::new();
    let stats = Element::new("stats", ns::COLIBRI)
        .child(Element::new("stat", ns::COLIBRI).attr("name", "stress_level").attr("value", "0.1"))
        .child(Element::new("stat", ns::COLIBRI).attr("name", "drain").attr("value", "false"));
    b.on_presence(&Element::new("presence", ns::CLIENT).attr("from", bridge().to_string()).child(stats), "focus", Instant::now());
    let sh = super::sim::test_shared(b, None);
    let mut sh = Arc::try_unwrap(sh).ok().expect("fresh");
    sh.moderation = settings;
    Arc::new(sh)
}

fn shared() -> Arc<Shared> {
    shared_with(Default::default())
}

fn focus() -> Jid {
    Jid::parse("focus@auth.meet.test/focus").unwrap()
}

/// The fake MUC of `room` and the fake bridge (which answers in-place ICE restarts with
/// a new transport of generation 1, 2, …).
fn responder(room: Jid) -> Responder {
    FakeBridge::new(bridge()).around(muc_responder(room, focus()))
}

fn env() -> SimEnv {
    SimEnv::new(responder(room()))
}

fn request() -> Inbox {
    let iq = Element::new("iq", ns::COMPONENT).attr("type", "set").attr("id", "req").attr("from", "x@meet.test/1");
    Inbox::Request(PendingReply { target: ReplyTarget::Xmpp(ConnId(0)), iq, reply: ConferenceReply::default(), requester: None })
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn conference(e: SimEnv, sh: Arc<Shared>) -> Conference<SimEnv> {
    Conference::new(e, Params { id: ConferenceId(1), room: room(), shared: sh, start_audio_muted: None, start_video_muted: None })
}

fn occ(nick: &str) -> String {
    room().with_resource(nick).to_string()
}

fn av(enabled: Option<bool>, t: Option<MediaType>, actor: Option<&str>, wl: Vec<(MediaType, Vec<&str>)>) -> Inbox {
    Inbox::Component(ComponentMessage::AvModeration(AvModerationMessage {
        room: room(),
        enabled,
        media_type: t,
        actor: actor.map(occ),
        whitelists: wl.into_iter().map(|(t, l)| (t, l.into_iter().map(occ).collect())).collect(),
    }))
}

fn mute_iq(id: &str, from: &str, target: &str, ns_: &str, value: &str) -> Inbox {
    Inbox::stanza(
        Element::new("iq", ns::CLIENT)
            .attr("type", "set")
            .attr("id", id)
            .attr("from", occ(from))
            .attr("to", occ("focus"))
            .child(Element::new("mute", ns_).attr("jid", occ(target)).text(value)),
    )
}

/// Every `<force-mute>` sent to the bridge for `nick`, as (audio, video), in order
/// (`None` where an endpoint create carried none).
fn force_mutes(env: &SimEnv, nick: &str) -> Vec<(bool, bool)> {
    env.sent
        .iter()
        .filter_map(|(_, _, e)| e.get_child("conference-modify", ns::COLIBRI2).cloned())
        .flat_map(|cm| cm.children_named("endpoint", ns::COLIBRI2).cloned().collect::<Vec<_>>())
        .filter(|e| e.get_attr("id") == Some(nick))
        .filter_map(|e| e.get_child("force-mute", ns::COLIBRI2).cloned())
        .map(|f| (f.get_attr("audio") == Some("true"), f.get_attr("video") == Some("true")))
        .collect()
}

/// Mute IQs the focus sent to `nick`: (namespace, actor).
fn mutes_to(env: &SimEnv, nick: &str) -> Vec<(String, Option<String>)> {
    let to = occ(nick);
    env.sent
        .iter()
        .filter(|(_, _, e)| e.get_attr("to") == Some(to.as_str()) && e.get_attr("type") == Some("set"))
        .filter_map(|(_, _, e)| crate::xmpp::mute::MuteRequest::mute_child(e).map(|m| (m.ns.clone(), m.get_attr("actor").map(str::to_string))))
        .collect()
}

fn answer(env: &SimEnv, id: &str) -> Element {
    env.sent_matching(|e| e.get_attr("id") == Some(id) && e.name == "iq").first().map(|e| (*e).clone()).expect("answered")
}

fn condition(el: &Element) -> String {
    parse_error(el).map(|e| e.condition_name).unwrap_or_else(|| el.get_attr("type").unwrap_or_default().to_string())
}

fn jingle_to(env: &SimEnv, nick: &str, action: &str) -> Vec<Element> {
    let to = occ(nick);
    env.sent_matching(|e| e.get_attr("to") == Some(to.as_str()) && e.get_child("jingle", JINGLE).is_some_and(|j| j.get_attr("action") == Some(action)))
        .into_iter()
        .cloned()
        .collect()
}

/// A moderator and two participants, all invited.
fn three(e: &mut SimEnv) {
    let r = room();
    e.at(ms(0), request());
    e.at(ms(10), Inbox::stanza(occupant_presence(&r, "m", "m@meet.test/1", "owner", "moderator")));
    e.at(ms(20), Inbox::stanza(occupant_presence(&r, "p", "p@meet.test/1", "none", "participant")));
    e.at(ms(30), Inbox::stanza(occupant_presence(&r, "q", "q@meet.test/1", "none", "participant")));
}

#[test]
fn av_moderation_enable_force_mutes_everyone_but_the_actor_and_sends_mute_iqs() {
    let mut e = env();
    three(&mut e);
    e.at(ms(100), av(Some(true), Some(MediaType::Audio), Some("m"), vec![]));
    e.at(ms(110), av(None, Some(MediaType::Audio), None, vec![(MediaType::Audio, vec!["m"])]));
    // Repeated enable and whitelist changes: state only.
    e.at(ms(120), av(Some(true), Some(MediaType::Audio), Some("m"), vec![]));
    e.at(ms(200), Inbox::Shutdown);
    let mut c = conference(e, shared());
    c.run();
    assert_eq!(force_mutes(&c.env, "p"), vec![(true, false)]);
    assert_eq!(force_mutes(&c.env, "q"), vec![(true, false)]);
    assert!(force_mutes(&c.env, "m").is_empty(), "the actor is not force-muted");
    assert_eq!(mutes_to(&c.env, "p"), vec![(ns::AUDIO_MUTE.to_string(), None)]);
    assert_eq!(mutes_to(&c.env, "q"), vec![(ns::AUDIO_MUTE.to_string(), None)]);
    assert!(mutes_to(&c.env, "m").is_empty());
}

#[test]
fn under_av_moderation_only_whitelisted_and_moderators_may_unmute_themselves() {
    let mut e = env();
    three(&mut e);
    e.at(ms(100), av(Some(true), Some(MediaType::Audio), Some("m"), vec![]));
    e.at(ms(110), av(None, None, None, vec![(MediaType::Audio, vec!["m", "p"])]));
    e.at(ms(120), mute_iq("p-un", "p", "p", ns::AUDIO_MUTE, "false"));
    e.at(ms(130), mute_iq("q-un", "q", "q", ns::AUDIO_MUTE, "false"));
    e.at(ms(140), mute_iq("m-un", "m", "m", ns::AUDIO_MUTE, "false"));
    // Disabled: q may unmute, and that clears its force-mute.
    e.at(ms(150), av(Some(false), Some(MediaType::Audio), Some("m"), vec![]));
    e.at(ms(160), mute_iq("q-un2", "q", "q", ns::AUDIO_MUTE, "false"));
    e.at(ms(200), Inbox::Shutdown);
    let mut c = conference(e, shared());
    c.run();
    assert_eq!(condition(&answer(&c.env, "p-un")), "result");
    assert_eq!(condition(&answer(&c.env, "q-un")), "not-allowed");
    assert_eq!(condition(&answer(&c.env, "m-un")), "result");
    assert_eq!(condition(&answer(&c.env, "q-un2")), "result");
    assert_eq!(force_mutes(&c.env, "p"), vec![(true, false), (false, false)]);
    assert_eq!(force_mutes(&c.env, "q"), vec![(true, false), (false, false)]);
}

#[test]
fn a_moderator_muting_a_screen_share_leaves_the_camera_flowing() {
    let mut e = env();
    three(&mut e);
    e.at(ms(100), mute_iq("d", "m", "p", ns::DESKTOP_MUTE, "true"));
    e.at(ms(110), mute_iq("a", "m", "q", ns::AUDIO_MUTE, "true"));
    e.at(ms(200), Inbox::Shutdown);
    let mut c = conference(e, shared());
    c.run();
    assert_eq!(condition(&answer(&c.env, "d")), "result");
    assert_eq!(condition(&answer(&c.env, "a")), "result");
    // Without AV moderation a moderator's mute is the client's to enforce: no force-mute.
    assert!(force_mutes(&c.env, "p").is_empty());
    assert!(force_mutes(&c.env, "q").is_empty());
    assert_eq!(mutes_to(&c.env, "p"), vec![(ns::DESKTOP_MUTE.to_string(), Some(occ("m")))]);
}

#[test]
fn joiners_while_moderated_are_force_muted_at_allocation_and_start_muted() {
    let r = room();
    let mut e = env();
    e.at(ms(0), request());
    e.at(ms(10), Inbox::stanza(occupant_presence(&r, "m", "m@meet.test/1", "owner", "moderator")));
    e.at(ms(20), av(Some(true), Some(MediaType::Video), Some("m"), vec![]));
    e.at(ms(30), Inbox::stanza(occupant_presence(&r, "p", "p@meet.test/1", "none", "participant")));
    e.at(ms(200), Inbox::Shutdown);
    let mut c = conference(e, shared());
    c.run();
    assert_eq!(force_mutes(&c.env, "p"), vec![(false, true)], "in the endpoint create");
    assert!(force_mutes(&c.env, "m").is_empty(), "moderators join unmuted");
    let si = jingle_to(&c.env, "p", "session-initiate");
    let sm = si[0].get_child("jingle", JINGLE).unwrap().get_child("startmuted", ns::START_MUTED).expect("startmuted");
    assert_eq!(sm.get_attr("video"), Some("true"));
    assert!(jingle_to(&c.env, "m", "session-initiate")[0].get_child("jingle", JINGLE).unwrap().get_child("startmuted", ns::START_MUTED).is_none());
}

#[test]
fn mute_rows_participant_objects_and_exemptions() {
    let r = room();
    let mut e = env();
    e.at(ms(0), request());
    e.at(ms(10), Inbox::stanza(occupant_presence(&r, "m", "m@meet.test/1", "owner", "moderator")));
    // Alone below min-participants: no Participant object (row 3).
    e.at(ms(20), mute_iq("alone", "m", "m", ns::AUDIO_MUTE, "true"));
    e.at(ms(30), Inbox::stanza(occupant_presence(&r, "p", "p@meet.test/1", "none", "participant")));
    // Row 5: a target that is no participant.
    e.at(ms(40), mute_iq("ghost", "m", "ghost", ns::AUDIO_MUTE, "true"));
    // Row 1: no text.
    e.at(ms(50), mute_iq("empty", "m", "p", ns::AUDIO_MUTE, ""));
    e.at(ms(200), Inbox::Shutdown);
    let mut c = conference(e, shared());
    c.run();
    assert_eq!(condition(&answer(&c.env, "alone")), "internal-server-error");
    assert_eq!(condition(&answer(&c.env, "ghost")), "internal-server-error");
    assert_eq!(condition(&answer(&c.env, "empty")), "bad-request");
}

#[test]
fn room_metadata_start_muted_reaches_new_joiners() {
    let r = room();
    let mut e = env();
    e.at(ms(0), request());
    let md = RoomMetadata { room: Some(room()), start_muted_audio: Some(true), start_muted_video: None, ..Default::default() };
    e.at(ms(5), Inbox::Component(ComponentMessage::RoomMetadata(md)));
    e.at(ms(10), Inbox::stanza(occupant_presence(&r, "a", "a@meet.test/1", "owner", "moderator")));
    e.at(ms(20), Inbox::stanza(occupant_presence(&r, "b", "b@meet.test/1", "none", "participant")));
    e.at(ms(200), Inbox::Shutdown);
    let mut c = conference(e, shared());
    c.run();
    for nick in ["a", "b"] {
        let si = jingle_to(&c.env, nick, "session-initiate");
        let sm = si[0].get_child("jingle", JINGLE).unwrap().get_child("startmuted", ns::START_MUTED).expect("startmuted");
        assert_eq!((sm.get_attr("audio"), sm.get_attr("video")), (Some("true"), Some("false")), "{}", nick);
    }
}

fn grants(env: &SimEnv) -> usize {
    env.sent_matching(|e| e.get_child("query", ns::MUC_ADMIN).is_some()).len()
}

#[test]
fn with_auto_owner_off_the_focus_grants_nothing_and_follows_the_muc() {
    let r = room();
    let mut e = env();
    e.at(ms(0), request());
    e.at(ms(10), Inbox::stanza(occupant_presence(&r, "a", "a@meet.test/1", "none", "participant")));
    e.at(ms(20), Inbox::stanza(occupant_presence(&r, "b", "b@meet.test/1", "none", "participant")));
    // Prosody makes b an owner itself; b may now mute a.
    e.at(ms(30), Inbox::stanza(occupant_presence(&r, "b", "b@meet.test/1", "owner", "moderator")));
    e.at(ms(40), mute_iq("b-mutes-a", "b", "a", ns::AUDIO_MUTE, "true"));
    e.at(ms(200), Inbox::Shutdown);
    let mut c = conference(e, shared_with(crate::moderation::breakout::Settings { auto_owner: false, ice_restart: true }));
    c.run();
    assert_eq!(grants(&c.env), 0);
    assert_eq!(condition(&answer(&c.env, "b-mutes-a")), "result");
    // With it on (the default) the first participant is made owner.
    let mut e = env();
    e.at(ms(0), request());
    e.at(ms(10), Inbox::stanza(occupant_presence(&r, "a", "a@meet.test/1", "none", "participant")));
    e.at(ms(200), Inbox::Shutdown);
    let mut c = conference(e, shared());
    c.run();
    assert_eq!(grants(&c.env), 1);
}

/// The MUC of a breakout room of `main`: its owner form says so.
fn breakout_env(r: Jid, main: &str) -> SimEnv {
    let mut inner = responder(r.clone());
    let main = main.to_string();
    SimEnv::new(Box::new(move |el: &Element| {
        let mut out = inner(el);
        if el.get_attr("type") == Some("get") && el.get_child("query", ns::MUC_OWNER).is_some() {
            for o in &mut out {
                if let Some(q) = o.get_child_mut("query", ns::MUC_OWNER) {
                    let field = |var: &str, v: &str| Element::new("field", ns::DATA).attr("var", var).child(Element::new("value", ns::DATA).text(v));
                    *q = Element::new("query", ns::MUC_OWNER).child(
                        Element::new("x", ns::DATA)
                            .attr("type", "form")
                            .child(field("muc#roominfo_isbreakout", "true"))
                            .child(field("muc#roominfo_breakout_main_room", &main)),
                    );
                }
            }
        }
        out
    }))
}

#[test]
fn a_breakout_room_has_no_auto_owner_and_keeps_its_main_conference_alive() {
    let main = room();
    let br = Jid::parse("3f9c@breakout.meet.test").unwrap();
    let sh = shared();
    // The breakout conference: registers its main room while it runs, grants no owner.
    let mut e = breakout_env(br.clone(), &main.to_string());
    e.at(ms(0), request());
    e.at(ms(10), Inbox::stanza(occupant_presence(&br, "g", "g@guest.meet.test/1", "none", "participant")));
    e.at(ms(20), Inbox::stanza(occupant_presence(&br, "h", "h@guest.meet.test/1", "none", "participant")));
    e.at(ms(500), Inbox::Shutdown);
    let mut b = Conference::new(e, Params { id: ConferenceId(2), room: br, shared: sh.clone(), start_audio_muted: None, start_video_muted: None });
    // The main conference, while a breakout conference of it is registered (as the
    // breakout conference does when it joins; see the next test).
    let mut e2 = env();
    e2.at(ms(0), request());
    e2.at(ms(10), Inbox::stanza(occupant_presence(&main, "a", "a@meet.test/1", "owner", "moderator")));
    // a moves to the breakout room: the main room is empty.
    let mut leave = occupant_leave(&main, "a");
    leave = leave.child(Element::new("status", ns::CLIENT).text("switch_room"));
    e2.at(ms(1000), Inbox::stanza(leave));
    e2.at(ms(60_000), Inbox::Shutdown);
    sh.breakouts.lock().add(&main);
    let mut m = conference(e2, sh.clone());
    let reason = m.run();
    assert_eq!(reason, EndReason::Shutdown, "kept while its breakout runs, past the 15 s start timeout");
    sh.breakouts.lock().remove(&main);
    assert_eq!(b.run(), EndReason::Shutdown);
    assert_eq!(grants(&b.env), 0, "no auto-owner in breakout rooms");
    assert!(!sh.breakouts.lock().has_breakouts(&main), "unregistered at its end");
    assert_eq!(b.breakout_main, None);
    // Without breakouts the same main room ends 15 s after the switch_room leave.
    let mut e3 = env();
    e3.at(ms(0), request());
    e3.at(ms(10), Inbox::stanza(occupant_presence(&main, "a", "a@meet.test/1", "owner", "moderator")));
    e3.at(ms(1000), Inbox::stanza(occupant_leave(&main, "a").child(Element::new("status", ns::CLIENT).text("switch_room"))));
    e3.at(ms(60_000), Inbox::Shutdown);
    let mut m3 = conference(e3, shared());
    assert_eq!(m3.run(), EndReason::NobodyJoined);
    assert_eq!(m3.env.elapsed(), ms(16_000));
}

#[test]
fn a_breakout_conference_registers_its_main_room_while_it_runs() {
    let main = room();
    let br = Jid::parse("3f9c@breakout.meet.test").unwrap();
    let sh = shared();
    let mut e = breakout_env(br.clone(), &main.to_string());
    e.at(ms(0), request());
    e.at(ms(10), Inbox::stanza(occupant_presence(&br, "g", "g@guest.meet.test/1", "none", "participant")));
    e.at(ms(500), Inbox::Shutdown);
    let mut b = Conference::new(e, Params { id: ConferenceId(2), room: br, shared: sh.clone(), start_audio_muted: None, start_video_muted: None });
    // Step: join only (run() would also end it).
    assert!(b.join());
    assert!(sh.breakouts.lock().has_breakouts(&main));
    assert_eq!(b.breakout_main.as_ref(), Some(&main));
    b.finish(EndReason::Shutdown);
    assert!(!sh.breakouts.lock().has_breakouts(&main));
}

fn session_info(nick: &str, id: &str, sid: &str, child: Element) -> Inbox {
    Inbox::stanza(
        Element::new("iq", ns::CLIENT)
            .attr("type", "set")
            .attr("id", id)
            .attr("from", occ(nick))
            .attr("to", "focus@auth.meet.test/focus")
            .child(Element::new("jingle", JINGLE).attr("action", "session-info").attr("sid", sid).child(child)),
    )
}

/// Join and handle scripted messages until `p` and `q` are invited.
fn until_invited(c: &mut Conference<SimEnv>) {
    assert!(c.join());
    for _ in 0..10 {
        let has_session = |n: &str| c.participant(n).is_some_and(|p| p.session().is_some());
        if has_session("p") && has_session("q") {
            return;
        }
        let m = c.next_message(Some(c.env.now() + ms(100))).expect("scripted");
        c.handle(m);
    }
    panic!("p and q were not invited");
}

/// The rest of `run` after [`until_invited`]: until the conference ends.
fn run_rest(c: &mut Conference<SimEnv>) {
    while c.life.ended().is_none() {
        let deadline = c.next_deadline();
        match c.next_message(deadline) {
            None => c.on_timer(),
            Some(m) => {
                c.handle(m);
                if deadline.is_some_and(|d| c.env.now() >= d) {
                    c.on_timer();
                }
            }
        }
    }
    c.finish(EndReason::Shutdown);
}

#[test]
fn an_in_place_ice_restart_is_answered_with_transport_info_and_the_refusals_of_section_7() {
    let restart = |id: &str| Element::new("bridge-session", ns::FOCUS).attr("id", id).attr("ice-restart", "true");
    let mut e = env();
    three(&mut e);
    let mut c = conference(e, shared());
    until_invited(&mut c);
    let s = c.participant("p").and_then(|p| p.session()).unwrap().clone();
    let (sid, bs) = (s.sid.to_string(), s.bridge_session.to_string());
    c.env.at(ms(100), session_info("p", "ok", &sid, restart(&bs)));
    c.env.at(ms(200), session_info("p", "soon", &sid, restart(&bs)));
    c.env.at(ms(6_000), session_info("p", "other", &sid, restart("nope")));
    c.env.at(ms(12_000), session_info("p", "stale", "not-a-session", restart(&bs)));
    c.env.at(ms(12_100), session_info("p", "else", &sid, Element::new("whatever", "urn:x")));
    c.env.at(ms(13_000), Inbox::Shutdown);
    run_rest(&mut c);
    assert_eq!(condition(&answer(&c.env, "ok")), "result");
    let restarts: Vec<Element> = c
        .env
        .sent_matching(|e| {
            e.get_child("conference-modify", ns::COLIBRI2).is_some_and(|cm| {
                cm.children_named("endpoint", ns::COLIBRI2).any(|ep| ep.get_child("transport", ns::COLIBRI2).is_some_and(|t| t.get_attr("ice-restart") == Some("true")))
            })
        })
        .into_iter()
        .cloned()
        .collect();
    assert_eq!(restarts.len(), 1, "one colibri2 restart request");
    let ti = jingle_to(&c.env, "p", "transport-info");
    assert_eq!(ti.len(), 1);
    let t = ti[0].get_child("jingle", JINGLE).unwrap().get_child("content", JINGLE).unwrap().get_child("transport", ns::ICE_UDP).unwrap();
    assert_eq!((t.get_attr("ufrag"), t.get_attr("ice-generation")), (Some("new1"), Some("1")));
    let soon = answer(&c.env, "soon");
    assert_eq!(condition(&soon), "resource-constraint");
    assert_eq!(parse_error(&soon).unwrap().text.as_deref(), Some("rate-limited"));
    let other = answer(&c.env, "other");
    assert_eq!(condition(&other), "item-not-found");
    assert_eq!(parse_error(&other).unwrap().text.as_deref(), Some("nope is not a currently active session"));
    let stale = answer(&c.env, "stale");
    assert_eq!(parse_error(&stale).unwrap().text.as_deref(), Some("jingle session no longer active"));
    assert_eq!(condition(&answer(&c.env, "else")), "result");
    // The session was never torn down.
    assert!(jingle_to(&c.env, "p", "session-terminate").is_empty());

    // Disabled by --enable_ice_restart=false.
    let mut e = env();
    three(&mut e);
    let mut c = conference(e, shared_with(crate::moderation::breakout::Settings { auto_owner: true, ice_restart: false }));
    until_invited(&mut c);
    let s = c.participant("p").and_then(|p| p.session()).unwrap().clone();
    c.env.at(ms(100), session_info("p", "off", s.sid.as_str(), restart(s.bridge_session.as_str())));
    c.env.at(ms(200), Inbox::Shutdown);
    run_rest(&mut c);
    let off = answer(&c.env, "off");
    assert_eq!(condition(&off), "feature-not-implemented");
    assert_eq!(parse_error(&off).unwrap().text.as_deref(), Some("in-place ICE restart is disabled"));
}

#[test]
fn legacy_ice_failed_reinvites_are_not_rate_limited() {
    let mut e = env();
    three(&mut e);
    e.at(ms(200), Inbox::Shutdown);
    let mut c = conference(e, shared());
    until_invited(&mut c);
    // Three reports at once (each re-invite has a new sid; the bridge session stays).
    for i in 0..3 {
        let s = c.participant("p").and_then(|p| p.session()).expect("p has a session").clone();
        let jingle = Element::new("jingle", JINGLE)
            .attr("action", "session-info")
            .attr("sid", s.sid.as_str())
            .child(Element::new("ice-state", ns::FOCUS).text("failed"))
            .child(Element::new("bridge-session", ns::FOCUS).attr("id", s.bridge_session.as_str()));
        let iq = Element::new("iq", ns::CLIENT).attr("type", "set").attr("id", format!("f{}", i)).attr("from", occ("p")).child(jingle);
        c.handle(Inbox::stanza(iq));
    }
    for i in 0..3 {
        assert_eq!(condition(&answer(&c.env, &format!("f{}", i))), "result");
    }
    assert_eq!(jingle_to(&c.env, "p", "session-terminate").len(), 3, "three re-invites within a second");
    assert_eq!(jingle_to(&c.env, "p", "session-initiate").len(), 4);
}

#[test]
fn an_errored_session_initiate_ends_that_participants_session_only() {
    let r = room();
    let mut inner = responder(room());
    let e = SimEnv::new(Box::new(move |el: &Element| {
        let mut out = inner(el);
        if el.get_attr("to") == Some(occ("p").as_str())
            && el.get_child("jingle", JINGLE).is_some_and(|j| j.get_attr("action") == Some("session-initiate"))
        {
            let mut err = crate::xmpp::stanza::iq_error(el, ErrorCondition::BadRequest, None);
            err.set_attr("from", occ("p"));
            out.push(err);
        }
        out
    }));
    let mut e = e;
    e.at(ms(0), request());
    e.at(ms(10), Inbox::stanza(occupant_presence(&r, "m", "m@meet.test/1", "owner", "moderator")));
    e.at(ms(20), Inbox::stanza(occupant_presence(&r, "p", "p@meet.test/1", "none", "participant")));
    e.at(ms(30), Inbox::stanza(occupant_presence(&r, "q", "q@meet.test/1", "none", "participant")));
    e.at(ms(5_000), Inbox::Shutdown);
    let mut c = conference(e, shared());
    c.run();
    let t = jingle_to(&c.env, "p", "session-terminate");
    assert_eq!(t.len(), 1);
    let reason = t[0].get_child("jingle", JINGLE).unwrap().get_child("reason", JINGLE).unwrap();
    assert!(reason.get_child("general-error", JINGLE).is_some());
    assert_eq!(reason.get_child("text", JINGLE).unwrap().text_content(), "jingle session failed");
    assert_eq!(jingle_to(&c.env, "p", "session-initiate").len(), 1, "not invited again");
    // Its endpoint was expired; the others keep theirs.
    let expired: Vec<String> = c
        .env
        .sent
        .iter()
        .filter_map(|(_, _, e)| e.get_child("conference-modify", ns::COLIBRI2).cloned())
        .flat_map(|cm| cm.children_named("endpoint", ns::COLIBRI2).cloned().collect::<Vec<_>>())
        .filter(|e| e.get_attr("expire") == Some("true"))
        .map(|e| e.get_attr("id").unwrap().to_string())
        .collect();
    assert_eq!(expired, vec!["p".to_string()]);
    assert!(jingle_to(&c.env, "m", "session-terminate").is_empty());
}

#[test]
fn the_room_configuration_stays_lobby_compatible() {
    // Only whois is submitted (moderation.md §4.3): never membersonly, which the lobby owns.
    let form = muc::owner_form_submit(&room());
    let x = form.get_child("query", ns::MUC_OWNER).unwrap().get_child("x", ns::DATA).unwrap();
    let vars: Vec<&str> = x.children_named("field", ns::DATA).filter_map(|f| f.get_attr("var")).collect();
    assert_eq!(vars, vec!["FORM_TYPE", "muc#roomconfig_whois"]);
}
