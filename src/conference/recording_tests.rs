//! Jibri and Jigasi in a conference on simulated time: the moderator's `<jibri>` and
//! `<dial>` IQs, the IQs the focus sends to the (fake) Jibri and Jigasi instances,
//! their answers, status updates, timers, and what the focus presence shows.

use std::sync::Arc;
use std::time::Duration;

use crate::messages::{JibriNotice, ReplyTarget};
use super::sim::{muc_responder, occupant_presence, test_shared, Responder, SimEnv};
use super::*;
use crate::xmpp::conference_iq::ConferenceReply;
use crate::xmpp::ns;
use crate::xmpp::jibri::{FailureReason, JibriIq, JibriStatus, RecordingStatus, Status, NS as JNS};
use crate::xmpp::jigasi::{features_element, JigasiStats, FEATURE_JIBRI};
use crate::xmpp::rayo::NS as RAYO;

fn room() -> Jid {
    Jid::parse("room1@conference.meet.test").unwrap()
}

fn brewery() -> Jid {
    Jid::parse("JibriBrewery@internal.auth.meet.test").unwrap()
}

fn jigasi_brewery() -> Jid {
    Jid::parse("JigasiBrewery@internal.auth.meet.test").unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn request() -> Inbox {
    let iq = Element::new("iq", ns::COMPONENT)
        .attr("type", "set")
        .attr("id", "req1")
        .attr("from", "m@meet.test/1")
        .attr("to", "focus.meet.test")
        .child(Element::new("conference", ns::FOCUS).attr("room", room().to_string()));
    Inbox::Request(PendingReply {
        target: ReplyTarget::Xmpp(ConnId(2)),
        iq,
        reply: ConferenceReply { room: room().to_string(), focus_jid: "focus@auth.meet.test".into(), ..Default::default() },
        requester: Some(Jid::parse("m@meet.test/1").unwrap()),
    })
}

/// How a fake Jibri answers a start.
#[derive(Clone, Copy, PartialEq)]
enum Answer {
    Pending,
    Busy,
    Error,
    Silent,
}

/// The MUC plus fake Jibris (`jibri-N` answers as `answers[N-1]`, stops get `off`)
/// and fake Jigasis (`jg-N`: `ok[N-1]` true → a ref, false → an error; absent: silent).
fn responder(answers: Vec<Answer>, jigasi_ok: Vec<Option<bool>>) -> Responder {
    let mut muc = muc_responder(room(), Jid::parse("focus@auth.meet.test/focus").unwrap());
    Box::new(move |el: &Element| {
        let to = el.get_attr("to").unwrap_or_default().to_string();
        if let Some(j) = el.get_child("jibri", JNS) {
            let n: usize = to.rsplit("jibri-").next().and_then(|n| n.parse().ok()).unwrap_or(0);
            let mut r = iq_result(el);
            r.set_attr("from", to.clone());
            if j.get_attr("action") == Some("stop") {
                return vec![r.child(JibriIq { status: Some(Status::Off), ..Default::default() }.to_element())];
            }
            return match answers.get(n.wrapping_sub(1)).copied().unwrap_or(Answer::Silent) {
                Answer::Pending => vec![r.child(JibriIq { status: Some(Status::Pending), ..Default::default() }.to_element())],
                Answer::Busy => vec![r.child(
                    JibriIq { status: Some(Status::Off), failure_reason: Some(FailureReason::Busy), should_retry: Some(true), ..Default::default() }
                        .to_element(),
                )],
                Answer::Error => {
                    let mut e = iq_error(el, ErrorCondition::InternalServerError, None);
                    e.set_attr("from", to);
                    vec![e]
                }
                Answer::Silent => vec![],
            };
        }
        if el.get_child("dial", RAYO).is_some() {
            let n: usize = to.rsplit("jg-").next().and_then(|n| n.parse().ok()).unwrap_or(0);
            return match jigasi_ok.get(n.wrapping_sub(1)).copied().flatten() {
                Some(true) => {
                    let mut r = iq_result(el).child(Element::new("ref", RAYO).attr("uri", format!("xmpp:{}/jg-call", room())));
                    r.set_attr("from", to);
                    vec![r]
                }
                Some(false) => {
                    let mut e = iq_error(el, ErrorCondition::ServiceUnavailable, None);
                    e.set_attr("from", to);
                    vec![e]
                }
                None => vec![],
            };
        }
        muc(el)
    })
}

/// A conference with `jibris` idle Jibris and `jigasis` SIP Jigasis in the breweries.
fn conference(env: SimEnv, jibris: usize, jigasis: usize) -> Conference<SimEnv> {
    let shared = test_shared(crate::bridge::Bridges::new(), None);
    let now = env.now();
    for i in 1..=jibris {
        let p = Element::new("presence", ns::CLIENT)
            .attr("from", brewery().with_resource(&format!("jibri-{}", i)).to_string())
            .child(JibriStatus { busy: false, healthy: true }.to_element());
        shared.jibri.recorder.as_ref().unwrap().lock().on_presence(&p, "focus", now);
    }
    for i in 1..=jigasis {
        let s = JigasiStats { supports_sip: true, participants: i as u32, ..Default::default() };
        let p = Element::new("presence", ns::CLIENT)
            .attr("from", jigasi_brewery().with_resource(&format!("jg-{}", i)).to_string())
            .child(s.to_element());
        shared.jigasi.brewery.as_ref().unwrap().lock().on_presence(&p, "focus");
    }
    Conference::new(env, Params { id: ConferenceId(7), room: room(), shared, start_audio_muted: None, start_video_muted: None })
}

fn join(e: &mut SimEnv) {
    e.at(ms(0), request());
    e.at(ms(10), Inbox::stanza(occupant_presence(&room(), "mod", "m@meet.test/1", "owner", "moderator")));
    e.at(ms(20), Inbox::stanza(occupant_presence(&room(), "guest", "g@meet.test/1", "none", "participant")));
}

fn jibri_iq(id: &str, from_nick: &str, attrs: &[(&str, &str)]) -> Inbox {
    let mut j = Element::new("jibri", JNS);
    for (k, v) in attrs {
        j = j.attr(k, *v);
    }
    Inbox::stanza(
        Element::new("iq", ns::CLIENT)
            .attr("type", "set")
            .attr("id", id)
            .attr("from", room().with_resource(from_nick).to_string())
            .attr("to", room().with_resource("focus").to_string())
            .child(j),
    )
}

fn status(from: &str, s: Status, failure: Option<FailureReason>, retry: Option<bool>) -> Inbox {
    Inbox::Jibri(JibriNotice::Status {
        from: brewery().with_resource(from),
        jibri: JibriIq { status: Some(s), failure_reason: failure, should_retry: retry, ..Default::default() },
    })
}

/// The answer sent to request `id`: `result` or the error condition.
fn answer(c: &Conference<SimEnv>, id: &str) -> Vec<String> {
    c.env
        .sent_matching(|e| e.get_attr("id") == Some(id) && matches!(e.get_attr("type"), Some("result") | Some("error")))
        .iter()
        .map(|e| match e.get_attr("type") {
            Some("error") => crate::xmpp::stanza::parse_error(e).map(|x| x.condition_name).unwrap_or_default(),
            _ => "result".to_string(),
        })
        .collect()
}

/// The recording statuses the focus presence showed, in order (each change once).
fn shown(c: &Conference<SimEnv>) -> Vec<RecordingStatus> {
    let mut out: Vec<RecordingStatus> = Vec::new();
    for p in c.env.sent_matching(|e| e.name == "presence") {
        if let Some(s) = p.get_child("jibri-recording-status", JNS).and_then(|s| RecordingStatus::try_from(s).ok()) {
            if out.last() != Some(&s) {
                out.push(s);
            }
        }
    }
    out
}

fn starts_to(c: &Conference<SimEnv>) -> Vec<String> {
    c.env
        .sent_matching(|e| e.get_child("jibri", JNS).is_some_and(|j| j.get_attr("action") == Some("start")))
        .iter()
        .map(|e| e.get_attr("to").unwrap().rsplit('/').next().unwrap().to_string())
        .collect()
}

#[test]
fn a_moderator_records_and_stops_and_clients_see_on_then_off() {
    let mut e = SimEnv::new(responder(vec![Answer::Pending], vec![]));
    join(&mut e);
    e.at(ms(100), jibri_iq("rec1", "mod", &[("action", "start"), ("recording_mode", "file"), ("app_data", "{}")]));
    e.at(ms(3000), status("jibri-1", Status::On, None, None));
    e.at(ms(5000), jibri_iq("stop-guest", "guest", &[("action", "stop"), ("recording_mode", "file")]));
    e.at(ms(6000), jibri_iq("stop1", "mod", &[("action", "stop"), ("recording_mode", "file")]));
    e.at(ms(7000), Inbox::Shutdown);
    let mut c = conference(e, 1, 0);
    c.run();
    let start = c.env.sent_matching(|e| e.get_child("jibri", JNS).is_some_and(|j| j.get_attr("action") == Some("start")));
    assert_eq!(start.len(), 1);
    let j = JibriIq::try_from(start[0].get_child("jibri", JNS).unwrap()).unwrap();
    assert_eq!(start[0].get_attr("to"), Some("jibribrewery@internal.auth.meet.test/jibri-1"));
    assert_eq!(j.room.as_deref(), Some("room1@conference.meet.test"));
    assert_eq!(j.recording_mode, Some(crate::xmpp::jibri::RecordingMode::File));
    assert_eq!(j.app_data.as_deref(), Some("{}"));
    let sid = j.session_id.clone().unwrap();
    // The moderator's result carries the session id.
    let res = c.env.sent_matching(|e| e.get_attr("id") == Some("rec1"));
    assert_eq!(res[0].get_child("jibri", JNS).and_then(|j| j.get_attr("session_id")), Some(sid.as_str()));
    assert_eq!(answer(&c, "stop-guest"), vec!["not-allowed"]);
    assert_eq!(answer(&c, "stop1"), vec!["result"]);
    let s = shown(&c);
    assert_eq!(s.len(), 2, "{:?}", s);
    assert_eq!((s[0].status, s[0].session_id.as_str(), s[0].initiator.as_deref()), (Status::On, sid.as_str(), Some("room1@conference.meet.test/mod")));
    assert_eq!((s[1].status, s[1].failure_reason), (Status::Off, None));
    assert_eq!(s[1].initiator.as_deref(), Some("room1@conference.meet.test/mod"));
    let stops = c.env.sent_matching(|e| e.get_child("jibri", JNS).is_some_and(|j| j.get_attr("action") == Some("stop")));
    assert_eq!(stops.len(), 1);
    assert_eq!(stops[0].get_child("jibri", JNS).unwrap().get_attr("session_id"), Some(sid.as_str()));
    assert_eq!(c.shared.jibri.recording.started.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(c.shared.jibri.bound_to(&brewery().with_resource("jibri-1")), None, "released");
}

#[test]
fn the_checks_come_in_jicofos_order_with_its_errors() {
    let mut e = SimEnv::new(responder(vec![Answer::Pending], vec![]));
    join(&mut e);
    e.at(ms(100), jibri_iq("stranger", "nobody", &[("action", "start"), ("recording_mode", "file")]));
    e.at(ms(110), jibri_iq("guest", "guest", &[("action", "start"), ("recording_mode", "file")]));
    e.at(ms(120), jibri_iq("noaction", "mod", &[("recording_mode", "file")]));
    e.at(ms(125), jibri_iq("forged-status", "mod", &[("status", "on")]));
    e.at(ms(130), jibri_iq("nostream", "mod", &[("action", "start"), ("recording_mode", "stream")]));
    e.at(ms(135), jibri_iq("nomode", "mod", &[("action", "start")]));
    e.at(ms(140), jibri_iq("filestream", "mod", &[("action", "start"), ("recording_mode", "file"), ("streamid", "k")]));
    e.at(ms(150), jibri_iq("nostop", "mod", &[("action", "stop")]));
    e.at(ms(160), jibri_iq("ok", "mod", &[("action", "start"), ("recording_mode", "stream"), ("streamid", "rtmp://x/live/key")]));
    e.at(ms(170), jibri_iq("second", "mod", &[("action", "start"), ("recording_mode", "file")]));
    e.at(ms(1000), Inbox::Shutdown);
    let mut c = conference(e, 1, 0);
    c.run();
    for (id, cond) in [
        ("stranger", "forbidden"),
        ("guest", "not-allowed"),
        ("noaction", "bad-request"),
        ("forged-status", "bad-request"),
        ("nostream", "bad-request"),
        ("nomode", "bad-request"),
        ("filestream", "bad-request"),
        ("nostop", "item-not-found"),
        ("ok", "result"),
        ("second", "unexpected-request"),
    ] {
        assert_eq!(answer(&c, id), vec![cond.to_string()], "{}", id);
    }
    let texts: Vec<String> = ["nostream", "filestream", "second"]
        .iter()
        .map(|id| {
            let e = c.env.sent_matching(|e| e.get_attr("id") == Some(*id))[0].clone();
            crate::xmpp::stanza::parse_error(&e).and_then(|x| x.text).unwrap_or_default()
        })
        .collect();
    assert_eq!(texts, ["Stream ID is empty or undefined", "Stream ID is provided for a FILE recording.", "Recording or live streaming is already enabled"]);
    // The stream start carried the key and mode stream; the forged status changed nothing.
    let start = c.env.sent_matching(|e| e.get_child("jibri", JNS).is_some_and(|j| j.get_attr("action") == Some("start")));
    assert_eq!(start.len(), 1);
    let j = JibriIq::try_from(start[0].get_child("jibri", JNS).unwrap()).unwrap();
    assert_eq!((j.recording_mode, j.stream_id.as_deref()), (Some(crate::xmpp::jibri::RecordingMode::Stream), Some("rtmp://x/live/key")));
    // Shutdown stops the pending session; clients never saw on, so off is what they see.
    assert_eq!(shown(&c).iter().map(|s| s.status).collect::<Vec<_>>(), vec![Status::Off]);
}

#[test]
fn no_jibri_busy_jibris_and_retries() {
    // None in the brewery.
    let mut e = SimEnv::new(responder(vec![], vec![]));
    join(&mut e);
    e.at(ms(100), jibri_iq("r", "mod", &[("action", "start"), ("recording_mode", "file")]));
    let mut c = conference(e, 0, 0);
    c.run();
    assert_eq!(answer(&c, "r"), vec!["service-unavailable"]);
    // Two, both busy: the second is tried, then nobody is left.
    let mut e = SimEnv::new(responder(vec![Answer::Busy, Answer::Busy], vec![]));
    join(&mut e);
    e.at(ms(100), jibri_iq("r", "mod", &[("action", "start"), ("recording_mode", "file")]));
    e.at(ms(200), jibri_iq("r2", "mod", &[("action", "start"), ("recording_mode", "file")]));
    let mut c = conference(e, 2, 0);
    c.run();
    assert_eq!(starts_to(&c), vec!["jibri-1", "jibri-2"]);
    assert_eq!(answer(&c, "r"), vec!["resource-constraint"]);
    assert_eq!(answer(&c, "r2"), vec!["resource-constraint"], "both failed less than a minute ago");
    // Busy, then an error, then silence: three Jibris tried, then one accepts.
    let mut e = SimEnv::new(responder(vec![Answer::Busy, Answer::Error, Answer::Silent, Answer::Pending], vec![]));
    join(&mut e);
    e.at(ms(100), jibri_iq("r", "mod", &[("action", "start"), ("recording_mode", "file")]));
    e.at(ms(30_000), Inbox::Shutdown);
    let mut c = conference(e, 4, 0);
    c.run();
    assert_eq!(starts_to(&c), vec!["jibri-1", "jibri-2", "jibri-3", "jibri-4"]);
    assert_eq!(answer(&c, "r"), vec!["result"]);
    // The silent one was told to stop after the 15 s start timeout.
    let stopped = c.env.sent_matching(|e| {
        e.get_attr("to") == Some("jibribrewery@internal.auth.meet.test/jibri-3") && e.get_child("jibri", JNS).is_some_and(|j| j.get_attr("action") == Some("stop"))
    });
    assert_eq!(stopped.len(), 1);
}

#[test]
fn a_jibri_failing_after_on_is_replaced_and_clients_keep_seeing_on() {
    let mut e = SimEnv::new(responder(vec![Answer::Pending, Answer::Pending], vec![]));
    join(&mut e);
    e.at(ms(100), jibri_iq("r", "mod", &[("action", "start"), ("recording_mode", "file")]));
    e.at(ms(2000), status("jibri-1", Status::On, None, None));
    e.at(ms(9000), status("jibri-1", Status::Off, Some(FailureReason::Error), Some(true)));
    e.at(ms(9500), status("jibri-1", Status::On, None, None)); // the old one no longer counts
    e.at(ms(12_000), status("jibri-2", Status::On, None, None));
    e.at(ms(20_000), Inbox::Jibri(JibriNotice::Left(brewery().with_resource("jibri-2"))));
    e.at(ms(30_000), Inbox::Shutdown);
    let mut c = conference(e, 2, 0);
    c.run();
    assert_eq!(starts_to(&c), vec!["jibri-1", "jibri-2"]);
    let s = shown(&c);
    // On once; the move is invisible; jibri-2 leaving with nobody left to take over ends it with an error.
    assert_eq!(s.iter().map(|s| (s.status, s.failure_reason)).collect::<Vec<_>>(), vec![(Status::On, None), (Status::Off, Some(FailureReason::Error))]);
    assert_eq!(answer(&c, "r"), vec!["result"]);
}

#[test]
fn a_session_still_pending_after_the_timeout_ends() {
    let mut e = SimEnv::new(responder(vec![Answer::Pending], vec![]));
    join(&mut e);
    e.at(ms(100), jibri_iq("r", "mod", &[("action", "start"), ("recording_mode", "file")]));
    e.at(ms(200_000), Inbox::Shutdown);
    let mut c = conference(e, 1, 0);
    c.run();
    let s = shown(&c);
    assert_eq!(s.len(), 1);
    assert_eq!((s[0].status, s[0].failure_reason, s[0].initiator.as_deref()), (Status::Off, None, None));
    let t = c.env.sent.iter().find(|(_, _, e)| e.get_child("jibri-recording-status", JNS).is_some()).map(|(t, _, _)| *t).unwrap();
    assert!(t >= Duration::from_millis(90_100) && t < Duration::from_millis(90_200), "{:?}", t);
}

#[test]
fn the_end_of_the_conference_stops_the_recording() {
    let mut e = SimEnv::new(responder(vec![Answer::Pending], vec![]));
    join(&mut e);
    e.at(ms(100), jibri_iq("r", "mod", &[("action", "start"), ("recording_mode", "file")]));
    e.at(ms(1000), status("jibri-1", Status::On, None, None));
    e.at(ms(2000), Inbox::stanza(super::sim::occupant_leave(&room(), "guest")));
    e.at(ms(2100), Inbox::stanza(super::sim::occupant_leave(&room(), "mod")));
    let mut c = conference(e, 1, 0);
    assert_eq!(c.run(), EndReason::RoomEmpty);
    let stops = c.env.sent_matching(|e| e.get_child("jibri", JNS).is_some_and(|j| j.get_attr("action") == Some("stop")));
    assert_eq!(stops.len(), 1);
    assert_eq!(c.shared.jibri.recording.active.load(std::sync::atomic::Ordering::Relaxed), 0);
}

#[test]
fn a_jibri_member_is_recognised_only_from_a_trusted_domain() {
    let mut e = SimEnv::new(responder(vec![], vec![]));
    e.at(ms(0), request());
    let with = |p: Element| p.child(features_element(&[FEATURE_JIBRI]));
    // An impostor with the feature joins first, then the real recorder, then a person.
    e.at(ms(10), Inbox::stanza(with(occupant_presence(&room(), "fake", "x@meet.test/1", "none", "participant"))));
    e.at(ms(20), Inbox::stanza(with(occupant_presence(&room(), "rec", "recorder@recorder.meet.test/r", "none", "participant"))));
    e.at(ms(1000), Inbox::Shutdown);
    let mut c = conference(e, 0, 0);
    c.run();
    let robot = |n: &str| c.occupants().iter().find(|o| o.nick == n).unwrap().is_jibri_or_jigasi();
    assert!(!robot("fake"));
    assert!(robot("rec"));
}

fn dial(id: &str, from_nick: &str, to: &str, room_header: Option<&str>) -> Inbox {
    let mut d = Element::new("dial", RAYO).attr("to", to).attr("from", "fromnumber");
    if let Some(r) = room_header {
        d = d.child(Element::new("header", RAYO).attr("name", "JvbRoomName").attr("value", r));
    }
    Inbox::stanza(
        Element::new("iq", ns::CLIENT)
            .attr("type", "set")
            .attr("id", id)
            .attr("from", room().with_resource(from_nick).to_string())
            .attr("to", room().with_resource("focus").to_string())
            .child(d),
    )
}

#[test]
fn a_dial_is_forwarded_and_its_ref_relayed() {
    let r = room().to_string();
    let mut e = SimEnv::new(responder(vec![], vec![Some(true), Some(true)]));
    join(&mut e);
    e.at(ms(100), dial("d1", "mod", "+15551234567", Some(&r)));
    e.at(ms(110), dial("guest", "guest", "+15551234567", Some(&r)));
    e.at(ms(120), dial("bad", "mod", "call me; rm -rf", Some(&r)));
    e.at(ms(130), dial("other", "mod", "+15551234567", Some("else@conference.meet.test")));
    e.at(ms(1000), Inbox::Shutdown);
    let mut c = conference(e, 0, 2);
    c.run();
    // jg-1 has the fewest participants.
    let fwd = c.env.sent_matching(|e| e.get_child("dial", RAYO).is_some());
    assert_eq!(fwd.len(), 1);
    assert_eq!(fwd[0].get_attr("to"), Some("jigasibrewery@internal.auth.meet.test/jg-1"));
    assert_ne!(fwd[0].get_attr("id"), Some("d1"));
    let d = fwd[0].get_child("dial", RAYO).unwrap();
    assert_eq!((d.get_attr("to"), d.get_attr("from")), (Some("+15551234567"), Some("fromnumber")));
    let res = c.env.sent_matching(|e| e.get_attr("id") == Some("d1"))[0].clone();
    assert_eq!(res.get_attr("type"), Some("result"));
    assert_eq!(res.get_attr("to"), Some("room1@conference.meet.test/mod"));
    assert_eq!(res.get_child("ref", RAYO).and_then(|x| x.get_attr("uri")), Some("xmpp:room1@conference.meet.test/jg-call"));
    assert_eq!(answer(&c, "guest"), vec!["forbidden"]);
    assert_eq!(answer(&c, "bad"), vec!["bad-request"]);
    assert_eq!(answer(&c, "other"), vec!["forbidden"]);
}

#[test]
fn dial_failures_are_retried_then_answered() {
    let r = room().to_string();
    // Errors from all three: undefined-condition after three attempts.
    let mut e = SimEnv::new(responder(vec![], vec![Some(false), Some(false), Some(false), Some(false)]));
    join(&mut e);
    e.at(ms(100), dial("d1", "mod", "+15551234567", Some(&r)));
    e.at(ms(1000), Inbox::Shutdown);
    let mut c = conference(e, 0, 4);
    c.run();
    assert_eq!(c.env.sent_matching(|e| e.get_child("dial", RAYO).is_some()).len(), 3);
    assert_eq!(answer(&c, "d1"), vec!["undefined-condition"]);
    // Silence: remote-server-timeout after 3 × 15 s.
    let mut e = SimEnv::new(responder(vec![], vec![]));
    join(&mut e);
    e.at(ms(100), dial("d1", "mod", "+15551234567", Some(&r)));
    e.at(ms(100_000), Inbox::Shutdown);
    let mut c = conference(e, 0, 3);
    c.run();
    assert_eq!(answer(&c, "d1"), vec!["remote-server-timeout"]);
    // No Jigasi at all; and a flood: at most 4 dials in flight, the rest refused.
    let mut e = SimEnv::new(responder(vec![], vec![]));
    join(&mut e);
    for i in 0..10 {
        e.at(ms(100 + i), dial(&format!("f{}", i), "mod", "+15551234567", Some(&r)));
    }
    e.at(ms(1000), Inbox::Shutdown);
    let mut c = conference(e, 0, 1);
    c.run();
    let refused = (0..10).filter(|i| answer(&c, &format!("f{}", i)) == vec!["resource-constraint"]).count();
    assert_eq!(refused, 6);
    let mut e = SimEnv::new(responder(vec![], vec![]));
    join(&mut e);
    e.at(ms(100), dial("d1", "mod", "+15551234567", None));
    let mut c = conference(e, 0, 0);
    c.run();
    assert_eq!(answer(&c, "d1"), vec!["service-unavailable"]);
}

#[test]
fn a_flood_of_start_requests_starts_one_session() {
    let mut e = SimEnv::new(responder(vec![Answer::Silent, Answer::Pending], vec![]));
    join(&mut e);
    for i in 0..50 {
        e.at(ms(100 + i), jibri_iq(&format!("s{}", i), "mod", &[("action", "start"), ("recording_mode", "file")]));
    }
    e.at(ms(60_000), Inbox::Shutdown);
    let mut c = conference(e, 2, 0);
    c.run();
    assert_eq!(answer(&c, "s0"), vec!["result"]);
    for i in 1..50 {
        assert_eq!(answer(&c, &format!("s{}", i)), vec!["unexpected-request"]);
    }
    assert_eq!(starts_to(&c), vec!["jibri-1", "jibri-2"]);
    let _ = Arc::strong_count(&c.shared);
}

#[test]
fn sip_gateway_sessions_are_keyed_by_address_and_shown_as_call_state() {
    let sip = Jid::parse("SipBrewery@internal.auth.meet.test").unwrap();
    let mut muc = responder(vec![], vec![]);
    let r: Responder = Box::new(move |el: &Element| {
        if el.get_child("jibri", JNS).is_some() && el.get_attr("to").is_some_and(|t| t.starts_with("sipbrewery@")) {
            let mut r = iq_result(el).child(JibriIq { status: Some(Status::Pending), ..Default::default() }.to_element());
            r.set_attr("from", el.get_attr("to").unwrap());
            return vec![r];
        }
        muc(el)
    });
    let mut e = SimEnv::new(r);
    join(&mut e);
    let call = [("action", "start"), ("sipaddress", "sip:board@pbx.example"), ("displayname", "Board room")];
    e.at(ms(100), jibri_iq("s1", "mod", &call));
    e.at(ms(150), jibri_iq("s2", "mod", &call));
    e.at(
        ms(1000),
        Inbox::Jibri(JibriNotice::Status {
            from: sip.with_resource("gw-1"),
            jibri: JibriIq { status: Some(Status::On), sip_address: Some("sip:board@pbx.example".into()), ..Default::default() },
        }),
    );
    e.at(ms(2000), jibri_iq("stop-other", "mod", &[("action", "stop"), ("sipaddress", "sip:other@pbx.example")]));
    e.at(ms(2100), jibri_iq("stop", "mod", &[("action", "stop"), ("sipaddress", "sip:board@pbx.example")]));
    e.at(ms(3000), Inbox::Shutdown);
    let mut c = conference(e, 0, 0);
    let p = Element::new("presence", ns::CLIENT)
        .attr("from", sip.with_resource("gw-1").to_string())
        .child(JibriStatus { busy: false, healthy: true }.to_element());
    c.shared.jibri.sip.as_ref().unwrap().lock().on_presence(&p, "focus", c.env.now());
    c.run();
    assert_eq!(answer(&c, "s1"), vec!["result"]);
    assert_eq!(answer(&c, "s2"), vec!["unexpected-request"]);
    assert_eq!(answer(&c, "stop-other"), vec!["item-not-found"]);
    assert_eq!(answer(&c, "stop"), vec!["result"]);
    let start = c.env.sent_matching(|e| e.get_child("jibri", JNS).is_some_and(|j| j.get_attr("action") == Some("start")))[0].clone();
    let j = JibriIq::try_from(start.get_child("jibri", JNS).unwrap()).unwrap();
    assert_eq!((j.sip_address.as_deref(), j.display_name.as_deref()), (Some("sip:board@pbx.example"), Some("Board room")));
    assert_eq!(j.recording_mode, Some(crate::xmpp::jibri::RecordingMode::File), "still file for SIP");
    let states: Vec<String> = c
        .env
        .sent_matching(|e| e.name == "presence")
        .iter()
        .filter_map(|p| p.get_child("jibri-sip-call-state", crate::xmpp::jibri::NS_CALL_STATE))
        .map(|s| format!("{}:{}", s.get_attr("state").unwrap(), s.get_attr("sipaddress").unwrap()))
        .collect();
    assert_eq!(states.first().map(String::as_str), Some("on:sip:board@pbx.example"));
    assert_eq!(states.last().map(String::as_str), Some("off:sip:board@pbx.example"));
    assert!(shown(&c).is_empty(), "no recording status for a SIP call");
}

#[test]
fn a_recognised_jibri_or_jigasi_is_never_made_owner() {
    let mut e = SimEnv::new(responder(vec![], vec![]));
    e.at(ms(0), request());
    let feat = |p: Element, f: &str| p.child(features_element(&[f]));
    // The recorder and a Jigasi (trusted domain) come first, then a person.
    e.at(ms(10), Inbox::stanza(feat(occupant_presence(&room(), "rec", "recorder@recorder.meet.test/r", "none", "participant"), FEATURE_JIBRI)));
    e.at(ms(20), Inbox::stanza(feat(occupant_presence(&room(), "jg", "jigasi@recorder.meet.test/j", "none", "participant"), crate::xmpp::jigasi::FEATURE_JIGASI)));
    e.at(ms(30), Inbox::stanza(occupant_presence(&room(), "person", "p@meet.test/1", "none", "participant")));
    e.at(ms(1000), Inbox::Shutdown);
    let mut c = conference(e, 0, 0);
    c.run();
    let grants: Vec<String> = c
        .env
        .sent_matching(|e| e.get_child("query", ns::MUC_ADMIN).is_some())
        .iter()
        .filter_map(|e| e.get_child("query", ns::MUC_ADMIN)?.get_child("item", ns::MUC_ADMIN)?.get_attr("jid").map(str::to_string))
        .collect();
    assert_eq!(grants, vec!["p@meet.test".to_string()]);
}
