//! Conference logic on simulated time: no sockets, no threads, no sleeps.

use std::sync::Arc;
use std::time::Duration;


use super::sim::{muc_responder, occupant_leave, occupant_presence, SimEnv};
use super::*;
use crate::messages::ReplyTarget;
use crate::xmpp::conference_iq::ConferenceReply;
use crate::xmpp::stanza::parse_error;

const COMPONENT: ConnId = ConnId(0);

fn room() -> Jid {
    Jid::parse("room1@conference.meet.test").unwrap()
}

fn shared(sessions: Option<Sessions>) -> Arc<Shared> {
    super::sim::test_shared(crate::bridge::Bridges::new(), sessions)
}

fn conference(env: SimEnv, sessions: Option<Sessions>) -> Conference<SimEnv> {
    Conference::new(
        env,
        Params { id: ConferenceId(7), room: room(), shared: shared(sessions), start_audio_muted: None, start_video_muted: None },
    )
}

fn env() -> SimEnv {
    SimEnv::new(muc_responder(room(), Jid::parse("focus@auth.meet.test/focus").unwrap()))
}

fn request() -> Inbox {
    let iq = Element::new("iq", ns::COMPONENT)
        .attr("type", "set")
        .attr("id", "req1")
        .attr("from", "a@meet.test/1")
        .attr("to", "focus.meet.test")
        .child(Element::new("conference", ns::FOCUS).attr("room", room().to_string()));
    Inbox::Request(PendingReply {
        target: ReplyTarget::Xmpp(COMPONENT),
        iq,
        reply: ConferenceReply { room: room().to_string(), focus_jid: "focus@auth.meet.test".into(), ..Default::default() },
        requester: Some(Jid::parse("a@meet.test/1").unwrap()),
    })
}

fn affiliation_grants(env: &SimEnv) -> Vec<String> {
    env.sent_matching(|e| e.get_child("query", ns::MUC_ADMIN).is_some())
        .iter()
        .map(|e| {
            let item = e.get_child("query", ns::MUC_ADMIN).unwrap().get_child("item", ns::MUC_ADMIN).unwrap();
            item.get_attr("jid").unwrap().to_string()
        })
        .collect()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn replies_ready_after_joining_as_owner_then_ends_when_nobody_comes() {
    let mut e = env();
    e.at(ms(0), request());
    let mut c = conference(e, None);
    assert_eq!(c.run(), EndReason::NobodyJoined);
    let env = &c.env;
    // Join presence, owner form get + submit (whois=anyone), presence update, reply.
    let join = env.sent_matching(|e| e.name == "presence" && e.get_child("x", ns::MUC).is_some());
    assert_eq!(join.len(), 1);
    assert_eq!(join[0].get_attr("to"), Some("room1@conference.meet.test/focus"));
    // No room history is replayed at the focus.
    let history = join[0].get_child("x", ns::MUC).and_then(|x| x.get_child("history", ns::MUC));
    assert_eq!(history.and_then(|h| h.get_attr("maxstanzas")), Some("0"));
    let submit = env.sent_matching(|e| e.get_attr("type") == Some("set") && e.get_child("query", ns::MUC_OWNER).is_some());
    assert_eq!(submit.len(), 1);
    let q = submit[0].get_child("query", ns::MUC_OWNER).unwrap();
    assert_eq!(muc::form_value(q, "muc#roomconfig_whois").as_deref(), Some("anyone"));
    let replies = env.sent_matching(|e| e.get_attr("id") == Some("req1"));
    assert_eq!(replies.len(), 1);
    let conf = replies[0].get_child("conference", ns::FOCUS).unwrap();
    assert_eq!(conf.get_attr("ready"), Some("true"));
    assert_eq!(conf.get_attr("focusjid"), Some("focus@auth.meet.test"));
    assert_eq!(replies[0].get_attr("to"), Some("a@meet.test/1"));
    // Ended after the 15 s start timeout and left the room.
    assert!(env.elapsed() >= START_TIMEOUT && env.elapsed() < START_TIMEOUT + ms(100));
    let leave = env.sent_matching(|e| e.name == "presence" && e.get_attr("type") == Some("unavailable"));
    assert_eq!(leave.len(), 1);
}

#[test]
fn first_participant_is_made_owner_and_the_next_inherits() {
    let r = room();
    let mut e = env();
    e.at(ms(0), request());
    e.at(ms(100), Inbox::stanza(occupant_presence(&r, "alice", "a@meet.test/1", "none", "participant")));
    e.at(ms(200), Inbox::stanza(occupant_presence(&r, "bob", "b@meet.test/1", "none", "participant")));
    e.at(ms(300), Inbox::stanza(occupant_presence(&r, "carol", "c@meet.test/1", "none", "participant")));
    e.at(ms(1000), Inbox::stanza(occupant_leave(&r, "alice")));
    e.at(ms(2000), Inbox::stanza(occupant_leave(&r, "bob")));
    e.at(ms(3000), Inbox::stanza(occupant_leave(&r, "carol")));
    let mut c = conference(e, None);
    assert_eq!(c.run(), EndReason::RoomEmpty);
    assert_eq!(affiliation_grants(&c.env), vec!["a@meet.test", "b@meet.test", "c@meet.test"]);
    assert_eq!(c.env.elapsed(), ms(3000));
}

#[test]
fn an_existing_owner_is_remembered_not_replaced() {
    let r = room();
    let mut e = env();
    e.at(ms(0), request());
    e.at(ms(100), Inbox::stanza(occupant_presence(&r, "alice", "a@meet.test/1", "owner", "moderator")));
    e.at(ms(200), Inbox::stanza(occupant_presence(&r, "bob", "b@meet.test/1", "none", "participant")));
    e.at(ms(300), Inbox::Shutdown);
    let mut c = conference(e, None);
    assert_eq!(c.run(), EndReason::Shutdown);
    assert!(affiliation_grants(&c.env).is_empty());
}

#[test]
fn secure_domain_makes_every_authenticated_participant_owner() {
    let r = room();
    let mut e = env();
    e.at(ms(0), request());
    e.at(ms(100), Inbox::stanza(occupant_presence(&r, "u1", "user1@meet.test/x", "none", "participant")));
    e.at(ms(200), Inbox::stanza(occupant_presence(&r, "g1", "anon@guest.meet.test/x", "none", "participant")));
    e.at(ms(300), Inbox::stanza(occupant_presence(&r, "u2", "user2@meet.test/y", "none", "participant")));
    e.at(ms(400), Inbox::Shutdown);
    let mut c = conference(e, Some(Sessions::new("meet.test")));
    c.run();
    assert_eq!(affiliation_grants(&c.env), vec!["user1@meet.test", "user2@meet.test"]);
}

/// Token setup C (moderation.md §5 C): under Jicofo's JWT authority a participant is made
/// owner only while its JID is bound to a live session (one minute idle); being on the
/// token domain is not enough.
#[test]
fn jwt_authority_makes_only_live_session_holders_owners() {
    use crate::auth::{AuthResult, Authority, AuthorityKind, JWT_SESSION_LIFETIME};
    let r = room();
    let mut e = env();
    let t0 = e.now();
    let mut sessions = Sessions::for_authority(&Authority { kind: AuthorityKind::ExternalJwt, domain: "meet.test".into() });
    for who in ["user1@meet.test/x", "user3@meet.test/z"] {
        let res = sessions.authenticate(&Jid::parse(who).unwrap(), None, Some("m"), &r, t0);
        assert!(matches!(res, AuthResult::Authenticated { .. }), "{res:?}");
    }
    e.at(ms(0), request());
    e.at(ms(100), Inbox::stanza(occupant_presence(&r, "u1", "user1@meet.test/x", "none", "participant")));
    // On the token domain, but no session (it sent no conference request).
    e.at(ms(200), Inbox::stanza(occupant_presence(&r, "u2", "user2@meet.test/y", "none", "participant")));
    // Its session was made a minute ago and not used since: expired.
    let late = JWT_SESSION_LIFETIME + ms(1000);
    e.at(late, Inbox::stanza(occupant_presence(&r, "u3", "user3@meet.test/z", "none", "participant")));
    e.at(late + ms(500), Inbox::Shutdown);
    let mut c = conference(e, Some(sessions));
    c.run();
    assert_eq!(affiliation_grants(&c.env), vec!["user1@meet.test"]);
}

fn mute_iq(from: &str, target: &str, value: &str) -> Inbox {
    Inbox::stanza(
        Element::new("iq", ns::CLIENT)
            .attr("type", "set")
            .attr("id", format!("m-{}-{}", from, value))
            .attr("from", room().with_resource(from).to_string())
            .attr("to", room().with_resource("focus").to_string())
            .child(Element::new("mute", ns::AUDIO_MUTE).attr("jid", room().with_resource(target).to_string()).text(value)),
    )
}

#[test]
fn mute_rules() {
    let r = room();
    let mut e = env();
    e.at(ms(0), request());
    e.at(ms(10), Inbox::stanza(occupant_presence(&r, "mod", "m@meet.test/1", "owner", "moderator")));
    e.at(ms(20), Inbox::stanza(occupant_presence(&r, "p", "p@meet.test/1", "none", "participant")));
    e.at(ms(30), mute_iq("p", "mod", "true")); // non-moderator mutes another: not-allowed (§2 row 4)
    e.at(ms(40), mute_iq("mod", "p", "true")); // moderator mutes: ok, forwarded with actor
    e.at(ms(50), mute_iq("mod", "p", "false")); // unmuting someone else: never
    e.at(ms(60), mute_iq("p", "p", "false")); // self: ok
    e.at(ms(70), Inbox::Shutdown);
    let mut c = conference(e, None);
    c.run();
    let answer = |id: &str| c.env.sent_matching(|e| e.get_attr("id") == Some(id)).first().map(|e| (*e).clone()).unwrap();
    let forbidden = answer("m-p-true");
    assert_eq!(parse_error(&forbidden).unwrap().condition_name, "not-allowed");
    assert_eq!(answer("m-mod-true").get_attr("type"), Some("result"));
    assert_eq!(parse_error(&answer("m-mod-false")).unwrap().condition_name, "not-allowed");
    assert_eq!(answer("m-p-false").get_attr("type"), Some("result"));
    let fwd = c.env.sent_matching(|e| e.get_child("mute", ns::AUDIO_MUTE).is_some() && e.get_attr("to") == Some("room1@conference.meet.test/p"));
    assert_eq!(fwd.len(), 1);
    assert_eq!(fwd[0].get_child("mute", ns::AUDIO_MUTE).unwrap().get_attr("actor"), Some("room1@conference.meet.test/mod"));
}

#[test]
fn a_lost_connection_keeps_the_conference_and_rejoins() {
    let r = room();
    let mut e = env();
    e.at(ms(0), request());
    e.at(ms(10), Inbox::stanza(occupant_presence(&r, "a", "a@meet.test/1", "none", "participant")));
    e.at(ms(20), Inbox::stanza(occupant_presence(&r, "b", "b@meet.test/1", "none", "participant")));
    e.at(ms(1000), Inbox::Connection(false));
    // While down nothing ends the conference; after the reconnect the MUC replays occupants.
    // The MUC lists the occupants still there (only "a": "b" left meanwhile) before our own presence.
    e.at(ms(30_000), Inbox::stanza(occupant_presence(&r, "a", "a@meet.test/1", "owner", "moderator")));
    e.at(ms(30_000), Inbox::Connection(true));
    e.at(ms(31_000), Inbox::stanza(occupant_leave(&r, "a")));
    e.at(ms(32_000), Inbox::Shutdown);
    let mut c = conference(e, None);
    assert_eq!(c.run(), EndReason::RoomEmpty);
    assert_eq!(c.env.elapsed(), ms(31_000));
    let joins = c.env.sent_matching(|e| e.name == "presence" && e.get_child("x", ns::MUC).is_some());
    assert_eq!(joins.len(), 2, "rejoined after the reconnect");
}

#[test]
fn requests_wait_while_joining_and_are_all_answered() {
    let mut e = SimEnv::new(Box::new(|_| Vec::new())); // a MUC that never answers
    e.at(ms(0), request());
    let mut c = conference(e, None);
    assert_eq!(c.run(), EndReason::JoinFailed);
    let replies = c.env.sent_matching(|e| e.get_attr("id") == Some("req1"));
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].get_child("conference", ns::FOCUS).unwrap().get_attr("ready"), Some("false"));
}

#[test]
fn an_empty_room_waits_for_someone_who_asked_and_has_not_joined_yet() {
    let r = room();
    let mut e = env();
    e.at(ms(0), request());
    e.at(ms(100), Inbox::stanza(occupant_presence(&r, "alice", "a@meet.test/1", "none", "participant")));
    // Alice asks again (e.g. she is reloading) before her leave is seen...
    e.at(ms(150), request());
    e.at(ms(200), Inbox::stanza(occupant_leave(&r, "alice")));
    // ...and comes back.
    e.at(ms(900), Inbox::stanza(occupant_presence(&r, "alice", "a@meet.test/1", "none", "participant")));
    e.at(ms(1000), Inbox::stanza(occupant_leave(&r, "alice")));
    let mut c = conference(e, None);
    assert_eq!(c.run(), EndReason::RoomEmpty);
    assert_eq!(c.env.elapsed(), ms(1000), "ended when she left for good");
}

/// The features of the captured lib-jitsi-meet client, whose presence advertises
/// `ver='/LxjVAUjW56LWSj9lRquSYt35Ho='` (see `xmpp::caps` tests).
const LJM_FEATURES: &[&str] = &[
    "http://jabber.org/protocol/caps",
    "urn:xmpp:jingle:1",
    "urn:xmpp:jingle:apps:rtp:1",
    "urn:xmpp:jingle:transports:ice-udp:1",
    "urn:xmpp:jingle:apps:dtls:0",
    "urn:xmpp:jingle:transports:dtls-sctp:1",
    "urn:xmpp:jingle:apps:rtp:audio",
    "urn:xmpp:jingle:apps:rtp:video",
    "http://jitsi.org/json-encoded-sources",
    "urn:ietf:rfc:4588",
    "http://jitsi.org/remb",
    "http://jitsi.org/tcc",
    "urn:ietf:rfc:5761",
    "urn:ietf:rfc:5888",
    "urn:xmpp:rayo:client:1",
];

fn with_caps(p: Element) -> Element {
    p.child(
        Element::new("c", ns::CAPS)
            .attr("hash", "sha-1")
            .attr("node", "https://jitsi.org/jitsi-meet")
            .attr("ver", "/LxjVAUjW56LWSj9lRquSYt35Ho="),
    )
}

#[test]
fn a_participant_lying_about_its_caps_cannot_poison_the_cache() {
    let r = room();
    let mut muc = muc_responder(r.clone(), Jid::parse("focus@auth.meet.test/focus").unwrap());
    // "liar" advertises the ver of real clients and answers as Jibri; the others tell the truth.
    let responder: super::sim::Responder = Box::new(move |el: &Element| {
        if el.name == "iq" && el.get_child("query", ns::DISCO_INFO).is_some() {
            let mut features = LJM_FEATURES.to_vec();
            if el.get_attr("to").is_some_and(|t| t.ends_with("/liar")) {
                features.push("http://jitsi.org/protocol/jibri");
            }
            let q = Element::new("query", ns::DISCO_INFO)
                .children(features.iter().map(|f| Element::new("feature", ns::DISCO_INFO).attr("var", *f)));
            return vec![iq_result(el).child(q)];
        }
        muc(el)
    });
    let mut e = SimEnv::new(responder);
    e.at(ms(0), request());
    e.at(ms(100), Inbox::stanza(with_caps(occupant_presence(&r, "liar", "l@meet.test/1", "none", "participant"))));
    e.at(ms(200), Inbox::stanza(with_caps(occupant_presence(&r, "honest", "h@meet.test/1", "none", "participant"))));
    e.at(ms(300), Inbox::stanza(with_caps(occupant_presence(&r, "third", "t@meet.test/1", "none", "participant"))));
    e.at(ms(400), Inbox::Shutdown);
    let mut c = conference(e, None);
    c.run();
    let discos_to = |nick: &str| {
        let to = r.with_resource(nick).to_string();
        c.env.sent_matching(|e| e.get_child("query", ns::DISCO_INFO).is_some() && e.get_attr("to") == Some(to.as_str())).len()
    };
    // The lie was not cached: the next client with that ver was asked itself…
    assert_eq!(discos_to("liar"), 1);
    assert_eq!(discos_to("honest"), 1);
    // …and its truthful answer was, so the third one was not asked.
    assert_eq!(discos_to("third"), 0);
    let occ = |nick: &str| c.occupants().iter().find(|o| o.nick == nick).unwrap().clone();
    let says_jibri = |nick: &str| occ(nick).features().unwrap().iter().any(|f| f == "http://jitsi.org/protocol/jibri");
    assert!(says_jibri("liar"), "the lie applies to the liar only");
    assert!(!says_jibri("honest"));
    assert!(!says_jibri("third"));
    // Features alone (disco or presence) never make a Jibri: only from a trusted domain (issue #13).
    assert!(!occ("liar").is_jibri_or_jigasi());
    assert_eq!(occ("third").features().unwrap().len(), LJM_FEATURES.len());
    assert!(c.shared.caps_cache.lock().contains("/LxjVAUjW56LWSj9lRquSYt35Ho="));
}

fn request_from(id: &str, from: &str) -> Inbox {
    let iq = Element::new("iq", ns::COMPONENT)
        .attr("type", "set")
        .attr("id", id)
        .attr("from", from)
        .attr("to", "focus.meet.test")
        .child(Element::new("conference", ns::FOCUS).attr("room", room().to_string()));
    Inbox::Request(PendingReply {
        target: ReplyTarget::Xmpp(COMPONENT),
        iq,
        reply: ConferenceReply { room: room().to_string(), focus_jid: "focus@auth.meet.test".into(), ..Default::default() },
        requester: Some(Jid::parse(from).unwrap()),
    })
}

fn limited(env: SimEnv, limits: crate::config::limits::Limits) -> Conference<SimEnv> {
    let sh = super::sim::test_shared_with(crate::bridge::Bridges::new(), None, limits);
    Conference::new(env, Params { id: ConferenceId(7), room: room(), shared: sh, start_audio_muted: None, start_video_muted: None })
}

#[test]
fn requests_waiting_for_the_focus_to_rejoin_are_bounded() {
    let r = room();
    let mut e = env();
    e.at(ms(0), request());
    e.at(ms(10), Inbox::stanza(occupant_presence(&r, "a", "a@meet.test/1", "none", "participant")));
    e.at(ms(100), Inbox::Connection(false));
    for i in 0..5 {
        e.at(ms(200 + i), request_from(&format!("w{}", i), &format!("u{}@meet.test/1", i)));
    }
    e.at(ms(30_000), Inbox::stanza(occupant_presence(&r, "a", "a@meet.test/1", "owner", "moderator")));
    e.at(ms(30_000), Inbox::Connection(true));
    e.at(ms(31_000), Inbox::Shutdown);
    let mut c = limited(e, crate::config::limits::Limits { max_waiting_requests: 2, ..Default::default() });
    c.run();
    let answer = |id: &str| c.env.sent.iter().find(|(_, _, e)| e.get_attr("id") == Some(id)).map(|(t, _, e)| (*t, e.clone())).unwrap();
    for id in ["w0", "w1"] {
        let (t, a) = answer(id);
        assert_eq!(t, ms(30_000), "answered after the rejoin");
        assert_eq!(a.get_child("conference", ns::FOCUS).unwrap().get_attr("ready"), Some("true"));
    }
    for (i, id) in ["w2", "w3", "w4"].iter().enumerate() {
        let (t, a) = answer(id);
        assert_eq!(t, ms(202 + i as u64), "refused at once");
        let err = parse_error(&a).unwrap();
        assert_eq!(err.condition_name, "resource-constraint");
        assert_eq!(a.get_child("error", ns::COMPONENT).unwrap().get_attr("type"), Some("wait"));
    }
    assert_eq!(c.shared.metrics.limits.waiting_requests.load(std::sync::atomic::Ordering::Relaxed), 3);
}

#[test]
fn the_map_of_expected_requesters_is_bounded() {
    let r = room();
    let mut e = env();
    e.at(ms(0), request());
    e.at(ms(10), Inbox::stanza(occupant_presence(&r, "a", "a@meet.test/1", "none", "participant")));
    // Requests from 1000 fresh JIDs that never join.
    for i in 0..1000 {
        e.at(ms(100 + i), request_from(&format!("x{}", i), &format!("anon{}@guest.meet.test/r", i)));
    }
    // The latest requester still counts as expected when the room empties.
    e.at(ms(2000), Inbox::stanza(occupant_leave(&r, "a")));
    let mut c = limited(e, crate::config::limits::Limits { max_participants: 5, ..Default::default() });
    assert_eq!(c.run(), EndReason::NobodyJoined);
    assert!(c.expected.len() <= 5, "{} requesters remembered", c.expected.len());
    // It waited for the latest requester (asked at 1.099 s) for the start timeout.
    assert_eq!(c.env.elapsed(), ms(1099) + START_TIMEOUT);
}
