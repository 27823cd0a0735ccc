//! Bridges through a real private Prosody with bridge simulators: selection,
//! draining, health failures, bridges leaving, and a late bridge serving a waiting
//! conference.

mod common;

use std::time::{Duration, Instant};

use common::deploy::{Deployment, Participant, FEATURES_2021, T};
use jicofo::xml::Element;
use jicofo::xmpp::ns;

const JINGLE: &str = "urn:xmpp:jingle:1";
const ICE: &str = "urn:xmpp:jingle:transports:ice-udp:1";

fn ufrag(si: &Element) -> String {
    let j = si.get_child("jingle", JINGLE).unwrap();
    let c = j.children_named("content", JINGLE).next().unwrap();
    c.get_child("transport", ICE).unwrap().get_attr("ufrag").unwrap().to_string()
}

fn bridge_of(d: &Deployment, si: &Element) -> Option<String> {
    let u = ufrag(si);
    for (nick, _) in &d.sims {
        let found = d.colibri_sent(nick).iter().any(|iq| {
            iq.get_child("conference-modified", ns::COLIBRI2).is_some_and(|cm| {
                cm.children_named("endpoint", ns::COLIBRI2).any(|e| {
                    e.get_child("transport", ns::COLIBRI2)
                        .and_then(|t| t.get_child("transport", ICE))
                        .and_then(|t| t.get_attr("ufrag"))
                        == Some(u.as_str())
                })
            })
        });
        if found {
            return Some(nick.clone());
        }
    }
    None
}

fn pair(d: &Deployment, room: &str) -> (Participant, Participant) {
    let r = format!("{}@{}", room, d.prosody.muc_domain());
    let mut a = d.participant("alice", FEATURES_2021);
    a.request_conference(&r);
    a.join();
    let mut b = d.participant("bob", FEATURES_2021);
    b.request_conference(&r);
    b.join();
    (a, b)
}

fn bridge_stat(d: &Deployment, nick: &str, key: &str) -> serde_json::Value {
    let s = d.stats();
    let list = s["bridge_selector"]["bridges"].as_array().cloned().unwrap_or_default();
    list.iter().find(|b| b["jid"].as_str().is_some_and(|j| j.ends_with(&format!("/{}", nick)))).map(|b| b[key].clone()).unwrap_or_default()
}

#[test]
fn a_draining_bridge_is_skipped() {
    let d = Deployment::start("br-drain", &[("jvb1", &["--drain", "--stress", "0.05"]), ("jvb2", &["--stress", "0.5"])]);
    let (mut a, mut b) = pair(&d, "drain");
    let si_a = a.expect_jingle("session-initiate", T).expect("offer");
    let si_b = b.expect_jingle("session-initiate", T).expect("offer");
    assert_eq!(bridge_of(&d, &si_a).as_deref(), Some("jvb2"));
    assert_eq!(bridge_of(&d, &si_b).as_deref(), Some("jvb2"));
    assert!(d.colibri_received("jvb1").is_empty());
}

#[test]
fn a_failed_health_check_is_noticed_within_15_s_and_a_leaving_bridge_is_dropped() {
    let mut d = Deployment::start("br-health", &[("jvb1", &[]), ("jvb2", &[])]);
    assert_eq!(bridge_stat(&d, "jvb1", "operational"), true);
    d.sim("jvb1").command("health fail");
    let t0 = Instant::now();
    while bridge_stat(&d, "jvb1", "operational") == true && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = t0.elapsed();
    assert_eq!(bridge_stat(&d, "jvb1", "operational"), false);
    assert!(took <= Duration::from_secs(15), "noticed after {:?}", took);
    eprintln!("health failure noticed after {:?}", took);
    // A bridge that leaves the brewery is gone.
    d.sim("jvb2").command("leave");
    let t0 = Instant::now();
    while d.stats()["bridge_selector"]["bridge_count"] != 1 && t0.elapsed() < T {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(d.stats()["bridge_selector"]["bridge_count"], 1);
}

#[test]
fn a_bridge_that_joins_later_serves_a_waiting_conference() {
    let mut d = Deployment::prepare("br-late", &[]);
    d.start_jicofo(&[]);
    let (mut a, mut b) = pair(&d, "late");
    // No bridge: nobody is invited, and the focus says so in its presence.
    assert!(a.expect_jingle("session-initiate", Duration::from_millis(1500)).is_none());
    let focus = format!("late@{}/focus", d.prosody.muc_domain());
    let p = a.client.wait_for(T, |el| {
        el.name == "presence" && el.get_attr("from") == Some(focus.as_str()) && el.get_child("bridgeNotAvailable", ns::FOCUS).is_some()
    });
    assert!(p.is_some(), "bridgeNotAvailable in the focus presence");
    d.add_sim("jvb1", &[]);
    let t0 = Instant::now();
    let si_a = a.expect_jingle("session-initiate", T).expect("alice invited once a bridge exists");
    let si_b = b.expect_jingle("session-initiate", T).expect("bob invited once a bridge exists");
    eprintln!("invited {:?} after the bridge appeared", t0.elapsed());
    assert_eq!(bridge_of(&d, &si_a).as_deref(), Some("jvb1"));
    assert_eq!(bridge_of(&d, &si_b).as_deref(), Some("jvb1"));
}
