//! The bridge simulator against a real private Prosody: joins the brewery with stats,
//! answers a health check and a conference-modify, records them, and leaves (or
//! vanishes) so the focus sees the bridge go.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::client::TestClient;
use common::sim::{brewery, Sim};
use common::prosody::Prosody;
use jicofo::xml::{parse_fragment, Element};
use jicofo::xmpp::ns;

const T: Duration = Duration::from_secs(8);
const NS_ICE: &str = "urn:xmpp:jingle:transports:ice-udp:1";

fn record_path(p: &Prosody) -> PathBuf {
    p.dir.join("jvb-sim-record.jsonl")
}

/// Log in as the focus and join the brewery; returns the client and the bridge's
/// first stats presence.
fn focus_in_brewery(p: &Prosody, nick: &str) -> (TestClient, Element) {
    let mut c = TestClient::login(p.host(), p.c2s_port, &format!("auth.{}", p.domain), "focus", &p.focus_password, "focus", &p.ca_file);
    let join = Element::new("presence", ns::CLIENT)
        .attr("to", format!("{}/focus", brewery(p)))
        .child(Element::new("x", ns::MUC));
    c.send(&join);
    let bridge = format!("/{}", nick);
    let presence = c
        .wait_for(T, |el| {
            el.name == "presence"
                && el.get_attr("from").is_some_and(|f| f.ends_with(&bridge))
                && el.get_child("stats", ns::COLIBRI).is_some()
        })
        .expect("bridge stats presence in the brewery");
    (c, presence)
}

fn stat<'a>(presence: &'a Element, name: &str) -> Option<&'a str> {
    presence
        .get_child("stats", ns::COLIBRI)?
        .children_named("stat", ns::COLIBRI)
        .find(|s| s.get_attr("name") == Some(name))?
        .get_attr("value")
}

fn bridge_jid(p: &Prosody, nick: &str) -> String {
    format!("{}/{}", brewery(p), nick)
}

fn is_unavailable_from(el: &Element, nick: &str) -> bool {
    el.name == "presence"
        && el.get_attr("type") == Some("unavailable")
        && el.get_attr("from").is_some_and(|f| f.ends_with(&format!("/{}", nick)))
}

#[test]
fn bridge_joins_answers_and_leaves() {
    let p = Prosody::start("jvbsim_leave");
    let record = record_path(&p);
    let mut sim = Sim::start(&p, "jvb1", &record);
    let (mut focus, presence) = focus_in_brewery(&p, "jvb1");
    assert_eq!(stat(&presence, "healthy"), Some("true"));
    assert_eq!(stat(&presence, "drain"), Some("false"));
    assert_eq!(stat(&presence, "version"), Some("2.3.0-sim"));
    assert_eq!(stat(&presence, "relay_id"), Some("jvb1"));
    assert!(stat(&presence, "stress_level").is_some());

    // Health check.
    let health = Element::new("iq", ns::CLIENT)
        .attr("type", "get")
        .attr("to", bridge_jid(&p, "jvb1"))
        .child(Element::new("healthcheck", ns::HEALTHCHECK));
    let answer = focus.iq(health, T);
    assert_eq!(answer.get_attr("type"), Some("result"), "{}", answer);

    // Conference creation with one endpoint.
    let mid = "5b1c7a8e-2f4d-4c1e-9a3b-7d2e6f0a1b2c";
    let cm = parse_fragment(&format!(
        "<conference-modify xmlns='jitsi:colibri2' meeting-id='{mid}' name='room1@conference.{d}' create='true'>\
           <endpoint id='a1b2c3d4' create='true' stats-id='Alice-X1'>\
             <media type='audio'><payload-type xmlns='urn:xmpp:jingle:apps:rtp:1' id='111' name='opus' clockrate='48000' channels='2'/></media>\
             <transport ice-controlling='true'><sctp/></transport><sources/><capability name='source-names'/>\
           </endpoint></conference-modify>",
        d = p.domain
    ))
    .unwrap();
    let alloc = Element::new("iq", ns::CLIENT).attr("type", "get").attr("to", bridge_jid(&p, "jvb1")).child(cm);
    let answer = focus.iq(alloc, T);
    assert_eq!(answer.get_attr("type"), Some("result"), "{}", answer);
    let m = answer.get_child("conference-modified", ns::COLIBRI2).expect("conference-modified");
    let ep = m.get_child("endpoint", ns::COLIBRI2).expect("endpoint echo");
    assert_eq!(ep.get_attr("id"), Some("a1b2c3d4"));
    let outer = ep.get_child("transport", ns::COLIBRI2).expect("transport");
    let ice = outer.get_child("transport", NS_ICE).expect("ICE transport");
    assert!(ice.get_attr("ufrag").is_some() && ice.get_attr("pwd").is_some());
    assert!(ice.get_child("candidate", NS_ICE).is_some());
    assert_eq!(outer.get_child("sctp", ns::COLIBRI2).and_then(|s| s.get_attr("port")), Some("5000"));
    let sources = m.get_child("sources", ns::COLIBRI2).expect("feedback sources");
    let ids: Vec<&str> = sources.children_named("media-source", ns::COLIBRI2).filter_map(|s| s.get_attr("id")).collect();
    assert_eq!(ids, vec!["jvb-a0", "jvb-v0"]);

    // The next stats presence counts the conference (a control forces one at once).
    sim.command("stress 0.5");
    let p2 = focus
        .wait_for(T, |el| el.name == "presence" && stat(el, "stress_level") == Some("0.5"))
        .expect("stats presence after the stress control");
    assert_eq!(stat(&p2, "conferences"), Some("1"));
    assert_eq!(stat(&p2, "participants"), Some("1"));

    // Leave: unavailable presence, exit 0.
    sim.command("leave");
    focus.wait_for(T, |el| is_unavailable_from(el, "jvb1")).expect("unavailable presence of the bridge");
    let status = sim.wait_exit(T);
    assert!(status.success(), "exit status {:?}", status);

    // The recording: health in/out, colibri in/out, in order.
    let text = std::fs::read_to_string(&record).unwrap();
    let recs: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    let summary: Vec<(String, String)> =
        recs.iter().map(|r| (r["kind"].as_str().unwrap().to_string(), r["dir"].as_str().unwrap().to_string())).collect();
    let want: Vec<(String, String)> = [("health", "in"), ("health", "out"), ("colibri", "in"), ("colibri", "out")]
        .iter()
        .map(|(k, d)| (k.to_string(), d.to_string()))
        .collect();
    assert_eq!(summary, want);
    assert!(recs[0]["meeting_id"].is_null());
    assert_eq!(recs[2]["meeting_id"], mid);
    assert_eq!(recs[3]["meeting_id"], mid);
    assert!(recs[2]["xml"].as_str().unwrap().contains("conference-modify"));
    assert!(recs[3]["xml"].as_str().unwrap().contains("conference-modified"));
    assert!(recs.iter().all(|r| r["t_ms"].as_u64().is_some()));
    focus.close();
}

#[test]
fn bridge_crash_disappears_and_health_can_fail() {
    let p = Prosody::start("jvbsim_crash");
    let record = record_path(&p);
    let mut sim = Sim::start(&p, "jvb2", &record);
    let (mut focus, _) = focus_in_brewery(&p, "jvb2");

    // Failing health: internal-server-error, and healthy=false in presence.
    sim.command("health fail");
    let pr = focus
        .wait_for(T, |el| el.name == "presence" && stat(el, "healthy") == Some("false"))
        .expect("healthy=false presence");
    assert!(pr.get_child("x", ns::MUC).is_none());
    let health = Element::new("iq", ns::CLIENT)
        .attr("type", "get")
        .attr("to", bridge_jid(&p, "jvb2"))
        .child(Element::new("healthcheck", ns::HEALTHCHECK));
    let answer = focus.iq(health, T);
    let err = jicofo::xmpp::stanza::parse_error(&answer).expect("health error");
    assert_eq!(err.condition_name, "internal-server-error");

    // Crash: the process exits at once; the MUC service reports the occupant gone.
    sim.command("crash");
    let status = sim.wait_exit(T);
    assert_eq!(status.code(), Some(1));
    focus.wait_for(Duration::from_secs(15), |el| is_unavailable_from(el, "jvb2")).expect("bridge gone from the brewery");
    focus.close();
}

#[test]
fn bridge_leaves_on_sigterm() {
    let p = Prosody::start("jvbsim_sigterm");
    let record = record_path(&p);
    let mut sim = Sim::start(&p, "jvb3", &record);
    let (mut focus, _) = focus_in_brewery(&p, "jvb3");
    // Closing stdin does not stop the simulator.
    drop(sim.stdin.take());
    std::thread::sleep(Duration::from_millis(300));
    assert!(sim.child.try_wait().unwrap().is_none(), "jvb-sim exited on stdin EOF");
    let st = Command::new("kill").arg("-TERM").arg(sim.child.id().to_string()).status().unwrap();
    assert!(st.success());
    focus.wait_for(T, |el| is_unavailable_from(el, "jvb3")).expect("unavailable presence on SIGTERM");
    let status = sim.wait_exit(T);
    assert!(status.success(), "exit status {:?}", status);
    focus.close();
}
