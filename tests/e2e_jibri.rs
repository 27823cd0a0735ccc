//! Jibri and Jigasi through a real private Prosody, the real `jicofo` binary, the bridge
//! simulator and the Jibri/Jigasi simulators (`jibri-sim`, `jigasi-sim`: test tools):
//! recording and live streaming with clients reading the status from the focus presence
//! (§3.5), retries, refusals, pending timeout, dial-out with ref and hang-up,
//! transcription, a dial-in participant, and hostile input. Run with `--nocapture` for
//! the exchanged stanzas and the measured timings.

mod common;

use std::time::{Duration, Instant};

use common::deploy::{Deployment, Participant, FEATURES_2021, T};
use common::gateways::Gateway;
use jicofo::xml::Element;
use jicofo::xmpp::ns;
use jicofo::xmpp::jibri::{RecordingStatus, Status, NS as JNS};
use jicofo::xmpp::rayo::NS as RAYO;
use jicofo::xmpp::stanza::parse_error;

fn affiliation_of(p: &Element) -> Option<&str> {
    p.get_child("x", ns::MUC_USER)?.get_child("item", ns::MUC_USER)?.get_attr("affiliation")
}

fn cond(r: &Element) -> String {
    if r.get_attr("type") == Some("result") {
        "result".into()
    } else {
        parse_error(r).map(|e| e.condition_name).unwrap_or_default()
    }
}

fn wait_stats(d: &Deployment, f: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + T;
    loop {
        let s = d.stats();
        if f(&s) || Instant::now() >= deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A room with a moderator (owner) and a guest, both joined.
fn room_with_two(d: &Deployment, name: &str) -> (String, Participant, Participant) {
    let room = format!("{}@{}", name, d.prosody.muc_domain());
    let mut m = d.participant("mod", FEATURES_2021);
    m.request_conference(&room);
    m.join();
    let me = format!("{}/mod", room);
    assert!(
        m.client.wait_for(T, |el| el.name == "presence" && el.get_attr("from") == Some(me.as_str()) && affiliation_of(el) == Some("owner")).is_some(),
        "the moderator is made owner"
    );
    let mut g = d.participant("guest", FEATURES_2021);
    g.request_conference(&room);
    g.join();
    (room, m, g)
}

fn jibri_iq(room: &str, attrs: &[(&str, &str)]) -> Element {
    let mut j = Element::new("jibri", JNS);
    for (k, v) in attrs {
        j = j.attr(k, *v);
    }
    Element::new("iq", ns::CLIENT).attr("type", "set").attr("to", format!("{}/focus", room)).child(j)
}

/// The next recording status (different from `last`) in the focus presence as `p` sees it.
fn next_status(p: &mut Participant, room: &str, last: Option<&RecordingStatus>, timeout: Duration) -> Option<RecordingStatus> {
    let focus = format!("{}/focus", room);
    let mut found = None;
    p.client.wait_for(timeout, |el| {
        if el.name != "presence" || el.get_attr("from") != Some(focus.as_str()) {
            return false;
        }
        let s = el.get_child("jibri-recording-status", JNS).and_then(|s| RecordingStatus::try_from(s).ok());
        if s.is_some() && s.as_ref() != last {
            found = s;
            return true;
        }
        false
    })?;
    found
}

fn deployment(name: &str, jicofo_flags: &[&str]) -> Deployment {
    let mut d = Deployment::prepare(name, &[("jvb1", &[])]);
    d.start_jicofo(jicofo_flags);
    d
}

#[test]
fn recording_start_and_stop_with_the_status_in_the_focus_presence() {
    let d = deployment("jibri-record", &[]);
    let jibri = Gateway::jibri(&d.prosody, "jibri-1", &["--on-after-ms", "500"]);
    wait_stats(&d, |s| s["jibri_detector"]["available"] == 1);
    let (room, mut m, mut g) = room_with_two(&d, "rec");

    let t0 = Instant::now();
    let r = m.request(jibri_iq(&room, &[("action", "start"), ("recording_mode", "file"), ("app_data", "{\"file_recording_metadata\":{\"share\":true}}")]));
    let t_result = t0.elapsed();
    assert_eq!(cond(&r), "result", "{}", r);
    let sid = r.get_child("jibri", JNS).and_then(|j| j.get_attr("session_id")).expect("session id").to_string();
    let on = next_status(&mut g, &room, None, T).expect("the guest sees the status");
    let t_on = t0.elapsed();
    assert_eq!((on.status, on.session_id.as_str()), (Status::On, sid.as_str()));
    assert_eq!(on.initiator.as_deref(), Some(format!("{}/mod", room).as_str()));
    // The Jibri got the start from the focus's brewery occupant with the room and mode.
    assert!(jibri.wait_line(T, |l| l.contains(": <- ") && l.contains("action='start'")));
    let starts = jibri.received("action='start'");
    assert_eq!(starts.len(), 1, "{:?}", starts);
    assert!(starts[0].contains(&format!("room='{}'", room)) && starts[0].contains("recording_mode='file'") && starts[0].contains(&sid), "{}", starts[0]);
    let s = wait_stats(&d, |s| s["jibri_detector"]["available"] == 0);
    assert_eq!(s["jibri"]["recording_sessions"]["active"], 1);

    let t1 = Instant::now();
    let r = m.request(jibri_iq(&room, &[("action", "stop"), ("recording_mode", "file")]));
    assert_eq!(cond(&r), "result", "{}", r);
    let off = next_status(&mut g, &room, Some(&on), T).expect("the guest sees off");
    let t_off = t1.elapsed();
    assert_eq!((off.status, off.failure_reason), (Status::Off, None));
    assert!(jibri.wait_line(T, |l| l.contains("<- ") && l.contains("action='stop'")));
    let s = wait_stats(&d, |s| s["jibri_detector"]["available"] == 1);
    assert_eq!(s["jibri"]["recording_sessions"]["started"], 1);
    assert_eq!(s["jibri"]["recording_sessions"]["active"], 0);
    let metrics = d.http("GET", "/metrics", None).unwrap().1;
    assert!(metrics.contains("jitsi_jicofo_jibri_instances 1\n") && metrics.contains("jitsi_jicofo_jibri_sessions_started_total 1\n"), "{}", metrics);

    println!("timings: start -> result {:?}, start -> on seen by a client {:?} (jibri-sim says on 500 ms after accepting), stop -> off seen {:?}", t_result, t_on, t_off);
    println!("stanzas at the Jibri (jibri-sim --trace):");
    for l in jibri.lines().iter().filter(|l| l.contains("jibri")) {
        println!("  {}", l);
    }
    println!("focus presence: on {:?}\n                off {:?}", on, off);
}

#[test]
fn a_live_stream_moves_to_the_second_jibri_when_the_first_fails_after_on() {
    let d = deployment("jibri-stream", &[]);
    let j1 = Gateway::jibri(&d.prosody, "jibri-1", &["--on-after-ms", "300", "--fault", "fail-after-on", "--fault-after-ms", "1000"]);
    wait_stats(&d, |s| s["jibri_detector"]["count"] == 1);
    let (room, mut m, mut g) = room_with_two(&d, "stream");
    // Only one Jibri when the start comes: it is jibri-1; the second arrives later.
    let r = m.request(jibri_iq(&room, &[("action", "start"), ("recording_mode", "stream"), ("streamid", "rtmp://a.example/live/key-123")]));
    assert_eq!(cond(&r), "result", "{}", r);
    let j2 = Gateway::jibri(&d.prosody, "jibri-2", &["--on-after-ms", "300"]);
    let on = next_status(&mut g, &room, None, T).expect("on");
    assert_eq!((on.status, on.mode), (Status::On, jicofo::xmpp::jibri::RecordingMode::Stream));
    // jibri-1 fails with should_retry: jibri-2 gets the same session and stream key.
    assert!(j2.wait_line(T, |l| l.contains("<- ") && l.contains("action='start'")), "jibri-2 was asked to start");
    let s2 = j2.received("action='start'");
    assert!(s2[0].contains("streamid='rtmp://a.example/live/key-123'") && s2[0].contains(&on.session_id), "{}", s2[0]);
    assert!(j1.received("action='start'").len() == 1);
    // Clients never saw the move.
    assert!(next_status(&mut g, &room, Some(&on), Duration::from_secs(2)).is_none(), "no off while moving");
    let r = m.request(jibri_iq(&room, &[("action", "stop"), ("recording_mode", "stream")]));
    assert_eq!(cond(&r), "result");
    assert!(j2.wait_line(T, |l| l.contains("<- ") && l.contains("action='stop'")));
}

#[test]
fn no_jibri_a_busy_jibri_and_a_pending_timeout() {
    let d = deployment("jibri-refusals", &["--jibri_pending_timeout=3"]);
    let (room, mut m, mut g) = room_with_two(&d, "refuse");
    let start = || jibri_iq(&room, &[("action", "start"), ("recording_mode", "file")]);
    let r = m.request(start());
    assert_eq!(cond(&r), "service-unavailable", "{}", r);
    let busy = Gateway::jibri(&d.prosody, "jibri-1", &["--fault", "busy"]);
    wait_stats(&d, |s| s["jibri_detector"]["count"] == 1);
    let r = m.request(start());
    assert_eq!(cond(&r), "resource-constraint", "{}", r);
    assert!(busy.wait_line(T, |l| l.contains(": <- ") && l.contains("action='start'")));
    assert_eq!(busy.received("action='start'").len(), 1);
    drop(busy);
    wait_stats(&d, |s| s["jibri_detector"]["count"] == 0);
    let _stuck = Gateway::jibri(&d.prosody, "jibri-2", &["--fault", "stay-pending"]);
    wait_stats(&d, |s| s["jibri_detector"]["available"] == 1);
    let t0 = Instant::now();
    let r = m.request(start());
    assert_eq!(cond(&r), "result", "{}", r);
    let off = next_status(&mut g, &room, None, Duration::from_secs(10)).expect("off after the pending timeout");
    assert_eq!((off.status, off.failure_reason), (Status::Off, None));
    let t = t0.elapsed();
    assert!(t >= Duration::from_secs(3) && t < Duration::from_secs(6), "{:?}", t);
    let s = d.stats();
    assert!(s["jibri"]["recording_sessions"]["failed"].as_u64().unwrap() >= 2, "{}", s["jibri"]);
}

#[test]
fn hostile_jibri_input_is_refused_with_the_documented_errors() {
    let d = deployment("jibri-hostile", &[]);
    let jibri = Gateway::jibri(&d.prosody, "jibri-1", &["--fault", "stay-pending"]);
    wait_stats(&d, |s| s["jibri_detector"]["available"] == 1);
    let (room, mut m, mut g) = room_with_two(&d, "hostile");
    // A non-moderator.
    let r = g.request(jibri_iq(&room, &[("action", "start"), ("recording_mode", "file")]));
    assert_eq!(cond(&r), "not-allowed", "{}", r);
    // A flood of starts from the moderator: one session, the rest refused.
    let mut ids = Vec::new();
    for _ in 0..20 {
        let id = m.client.new_id();
        m.client.send(&jibri_iq(&room, &[("action", "start"), ("recording_mode", "file")]).attr("id", id.clone()));
        ids.push(id);
    }
    let mut answers = Vec::new();
    for id in &ids {
        let a = m
            .client
            .wait_for(T, |el| el.name == "iq" && el.get_attr("id") == Some(id.as_str()) && matches!(el.get_attr("type"), Some("result") | Some("error")))
            .expect("every start is answered");
        answers.push(cond(&a));
    }
    assert_eq!(answers.iter().filter(|a| *a == "result").count(), 1, "{:?}", answers);
    assert_eq!(answers.iter().filter(|a| *a == "unexpected-request").count(), 19, "{:?}", answers);
    // The simulator's stdout is read by another thread: wait for its line before counting.
    assert!(jibri.wait_line(T, |l| l.contains(": <- ") && l.contains("action='start'")), "the Jibri never got the start");
    assert_eq!(jibri.received("action='start'").len(), 1);
    // A forged status from a participant's JID straight to the focus user.
    let mut u = d.user("user1");
    let forged = Element::new("iq", ns::CLIENT)
        .attr("type", "set")
        .attr("to", format!("focus@auth.{}/focus", d.prosody.domain))
        .child(Element::new("jibri", JNS).attr("status", "on"));
    let r = u.iq(forged, T);
    assert_eq!(cond(&r), "item-not-found", "{}", r);
    // A Jibri in the brewery sends a status for a session the focus did not start.
    let brewery = format!("JibriBrewery@internal.auth.{}", d.prosody.domain);
    u.send(
        &Element::new("presence", ns::CLIENT)
            .attr("to", format!("{}/impostor", brewery))
            .child(Element::new("x", ns::MUC))
            .child(jicofo::xmpp::jibri::JibriStatus { busy: false, healthy: true }.to_element()),
    );
    wait_stats(&d, |s| s["jibri_detector"]["count"] == 2);
    let r = u.iq(
        Element::new("iq", ns::CLIENT).attr("type", "set").attr("to", format!("{}/focus", brewery)).child(Element::new("jibri", JNS).attr("status", "on")),
        T,
    );
    assert_eq!(cond(&r), "item-not-found", "{}", r);
    // Nobody saw a recording turn on.
    assert!(next_status(&mut g, &room, None, Duration::from_secs(1)).is_none());
}

fn dial(room: &str, to: &str) -> Element {
    Element::new("iq", ns::CLIENT).attr("type", "set").attr("to", format!("{}/focus", room)).child(
        Element::new("dial", RAYO)
            .attr("to", to)
            .attr("from", "fromnumber")
            .child(Element::new("header", RAYO).attr("name", "JvbRoomName").attr("value", room)),
    )
}

#[test]
fn dial_out_answered_with_a_ref_then_hung_up_and_transcription() {
    let d = deployment("jigasi-dial", &[]);
    let jg = Gateway::jigasi(&d.prosody, "jg-1", &["--transcription"]);
    wait_stats(&d, |s| s["jigasi_detector"]["count"] == 1);
    let (room, mut m, mut g) = room_with_two(&d, "dial");
    // The conference request announced the gateway.
    let c = g.request_conference(&room);
    assert!(c.children_named("property", ns::FOCUS).any(|p| p.get_attr("name") == Some("sipGatewayEnabled") && p.get_attr("value") == Some("true")), "{}", c);
    // Hostile first: a guest, a malformed number.
    assert_eq!(cond(&g.request(dial(&room, "+15551234567"))), "forbidden");
    assert_eq!(cond(&m.request(dial(&room, "555; DROP TABLE"))), "bad-request");
    let t0 = Instant::now();
    let r = m.request(dial(&room, "+15551234567"));
    let t_ref = t0.elapsed();
    assert_eq!(cond(&r), "result", "{}", r);
    let uri = r.get_child("ref", RAYO).and_then(|x| x.get_attr("uri")).expect("a ref").to_string();
    let occupant = uri.strip_prefix("xmpp:").unwrap().to_string();
    assert!(occupant.starts_with(&format!("{}/jg-1-", room)), "{}", uri);
    // Jigasi is in the room; the focus invites it audio-only and does not make it owner.
    assert!(jg.wait_line(T, |l| l.contains("<- ") && l.contains("session-initiate")), "the focus invites the Jigasi");
    let init = jg.received("session-initiate");
    assert!(init[0].contains("media='audio'") && !init[0].contains("media='video'"), "{}", init[0]);
    // Hang-up goes straight to the Jigasi.
    let r = m.request(Element::new("iq", ns::CLIENT).attr("type", "set").attr("to", occupant.clone()).child(Element::new("hangup", RAYO)));
    assert_eq!(cond(&r), "result");
    assert!(g.client.wait_for(T, |el| el.name == "presence" && el.get_attr("from") == Some(occupant.as_str()) && el.get_attr("type") == Some("unavailable")).is_some());
    // Transcription: the transcriber joins; a second one is a conflict.
    let r = m.request(dial(&room, "jitsi_meet_transcribe"));
    assert_eq!(cond(&r), "result", "{}", r);
    let tr = r.get_child("ref", RAYO).and_then(|x| x.get_attr("uri")).unwrap().trim_start_matches("xmpp:").to_string();
    assert!(g.client.wait_for(T, |el| el.name == "presence" && el.get_attr("from") == Some(tr.as_str())
        && el.get_child("features", ns::CLIENT).is_some_and(|f| f.elements().any(|x| x.get_attr("var") == Some("http://jitsi.org/protocol/transcriber")))).is_some());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(cond(&m.request(dial(&room, "jitsi_meet_transcribe"))), "conflict");
    let s = d.stats();
    assert_eq!(s["jigasi"]["dials_answered"], 2, "{}", s["jigasi"]);
    println!("timings: dial -> ref {:?}", t_ref);
}

#[test]
fn a_jigasi_dial_in_participant_is_served_audio_only_never_owner() {
    let d = deployment("jigasi-dialin", &[]);
    let room = format!("dialin@{}", d.prosody.muc_domain());
    let mut a = d.participant("alice", FEATURES_2021);
    a.request_conference(&room);
    a.join();
    let jg = Gateway::jigasi(&d.prosody, "jg-1", &["--dial-in", &room, "--transport-first"]);
    assert!(jg.wait_line(T, |l| l.contains("<- ") && l.contains("session-initiate")), "the focus invites the dial-in Jigasi");
    let init = jg.received("session-initiate");
    assert!(!init[0].contains("media='video'"), "{}", init[0]);
    // With two in the room alice is invited too; the Jigasi's audio reaches her (in her
    // offer or as a source-add); it is not owner.
    let si = a.expect_jingle("session-initiate", T).expect("alice is invited");
    let acc = a.session_accept(&si, "lyno-session-accept.xml");
    assert_eq!(a.client.iq(acc, T).get_attr("type"), Some("result"));
    let in_offer = si.to_xml().contains("jg-1-");
    assert!(
        in_offer || a.client.wait_for(T, |el| el.get_child("jingle", ns::JINGLE).is_some_and(|j| j.get_attr("action") == Some("source-add")) && el.to_xml().contains("jg-1-")).is_some(),
        "alice gets the Jigasi's audio"
    );
    let affs: Vec<String> = jg.received("<presence").into_iter().filter(|l| l.contains("jg-1-") && l.contains("affiliation='owner'")).collect();
    assert!(affs.is_empty(), "{:?}", affs);
    // Moderators may mute its audio (it says audio-mute).
    let me = format!("{}/alice", room);
    assert!(a.client.wait_for(T, |el| el.name == "presence" && el.get_attr("from") == Some(me.as_str()) && affiliation_of(el) == Some("owner")).is_some());
}
