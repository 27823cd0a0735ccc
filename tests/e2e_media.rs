//! End to end through a private Prosody with bridge simulators and the real jicofo
//! binary: conferences, bridge selection, Jingle offers and answers, sources.

mod common;

use std::time::Duration;

use common::deploy::{Deployment, Participant, FEATURES_2021, T};
use jicofo::xml::{ns, Element};

const JINGLE: &str = "urn:xmpp:jingle:1";
const ICE: &str = "urn:xmpp:jingle:transports:ice-udp:1";

fn room(d: &Deployment, name: &str) -> String {
    format!("{}@{}", name, d.prosody.muc_domain())
}

/// The ufrag of the transport in a session-initiate.
fn offer_ufrag(si: &Element) -> String {
    let j = si.get_child("jingle", JINGLE).unwrap();
    let c = j.children_named("content", JINGLE).next().expect("a content");
    c.get_child("transport", ICE).expect("ICE transport").get_attr("ufrag").unwrap().to_string()
}

/// The ufrag the simulator allocated for endpoint `ep`.
fn allocated_ufrag(d: &Deployment, bridge: &str, ep: &str) -> Option<String> {
    d.colibri_sent(bridge).iter().find_map(|iq| {
        let cm = iq.get_child("conference-modified", ns::COLIBRI2)?;
        let e = cm.children_named("endpoint", ns::COLIBRI2).find(|e| e.get_attr("id") == Some(ep))?;
        let t = e.get_child("transport", ns::COLIBRI2)?.get_child("transport", ICE)?;
        t.get_attr("ufrag").map(str::to_string)
    })
}

fn joined(d: &Deployment, name: &str, nick: &str, r: &str) -> (Participant, Vec<Element>) {
    let mut p = d.participant(nick, FEATURES_2021);
    let c = p.request_conference(r);
    assert_eq!(c.get_attr("focusjid"), Some("focus@auth.meet.test"));
    let presences = p.join();
    let _ = name;
    (p, presences)
}

/// SSRCs announced to a participant in source-add (non-JSON encoding).
fn announced_ssrcs(el: &Element) -> Vec<String> {
    let mut out = Vec::new();
    let j = el.get_child("jingle", JINGLE).unwrap();
    for c in j.children_named("content", JINGLE) {
        for d in c.elements().filter(|e| e.name == "description") {
            for s in d.elements().filter(|e| e.name == "source" && e.get_attr("ssrc").is_some()) {
                out.push(s.get_attr("ssrc").unwrap().to_string());
            }
        }
    }
    out
}

#[test]
fn two_participants_on_the_least_stressed_bridge() {
    let d = Deployment::start("e2e-two", &[("jvb1", &["--stress", "0.6"]), ("jvb2", &["--stress", "0.1"])]);
    let r = room(&d, "room1");
    let (mut a, presences) = joined(&d, "a", "alice", &r);
    // The focus is in the room as owner, with its real JID.
    let focus = presences
        .iter()
        .find(|p| p.get_attr("from") == Some(format!("{}/focus", r).as_str()))
        .expect("focus presence in the room");
    let item = focus.get_child("x", ns::MUC_USER).unwrap().get_child("item", ns::MUC_USER).unwrap();
    assert_eq!(item.get_attr("affiliation"), Some("owner"));
    assert_eq!(item.get_attr("jid"), Some("focus@auth.meet.test/focus"));
    // Alice is made owner (moderator).
    let me = format!("{}/alice", r);
    let owner = a.client.wait_for(T, |el| {
        el.name == "presence"
            && el.get_attr("from") == Some(me.as_str())
            && el.get_child("x", ns::MUC_USER).and_then(|x| x.get_child("item", ns::MUC_USER)).and_then(|i| i.get_attr("affiliation"))
                == Some("owner")
    });
    assert!(owner.is_some(), "the first participant becomes owner");

    let (mut b, _) = joined(&d, "b", "bob", &r);
    b.ssrc_base = 1000;
    let si_a = a.expect_jingle("session-initiate", Duration::from_secs(5)).expect("alice gets an offer");
    let si_b = b.expect_jingle("session-initiate", Duration::from_secs(5)).expect("bob gets an offer");
    // From the focus's room JID, with the transport the least stressed bridge allocated.
    assert_eq!(si_a.get_attr("from"), Some(format!("{}/focus", r).as_str()));
    assert_eq!(Some(offer_ufrag(&si_a)), allocated_ufrag(&d, "jvb2", "alice"));
    assert_eq!(Some(offer_ufrag(&si_b)), allocated_ufrag(&d, "jvb2", "bob"));
    assert!(d.colibri_received("jvb1").is_empty(), "nothing on the stressed bridge");
    let creates = d.colibri_received("jvb2");
    assert_eq!(creates.first().and_then(|c| c.get_attr("create")), Some("true"));

    // Both accept with the captured lib-jitsi-meet answer; each learns the other's sources.
    let acc_a = a.session_accept(&si_a, "lyno-session-accept.xml");
    assert_eq!(a.request(acc_a).get_attr("type"), Some("result"));
    let acc_b = b.session_accept(&si_b, "lyno-session-accept.xml");
    assert_eq!(b.request(acc_b).get_attr("type"), Some("result"));
    let add_a = a.expect_jingle("source-add", Duration::from_secs(5)).expect("alice learns bob's sources");
    let add_b = b.expect_jingle("source-add", Duration::from_secs(5)).expect("bob learns alice's sources");
    assert!(!announced_ssrcs(&add_a).is_empty() && !announced_ssrcs(&add_b).is_empty());
    // The bridge has both endpoints' transports and sources.
    assert!(d.wait_colibri("jvb2", T, |reqs| {
        reqs.iter().filter(|c| c.children_named("endpoint", ns::COLIBRI2).any(|e| e.get_child("sources", ns::COLIBRI2).is_some_and(|s| s.elements().next().is_some()))).count() >= 2
    }));

    // The focus counts what it sends: at least the two offers and two source-adds.
    assert!(d.stats()["xmpp"]["stanzas_sent"].as_u64().unwrap_or(0) >= 4);

    // Leaving expires the endpoint, then the conference.
    b.leave();
    assert!(d.wait_colibri("jvb2", T, |reqs| reqs.iter().any(|c| c
        .children_named("endpoint", ns::COLIBRI2)
        .any(|e| e.get_attr("id") == Some("bob") && e.get_attr("expire") == Some("true")))));
    a.leave();
    assert!(d.wait_colibri("jvb2", T, |reqs| reqs.iter().any(|c| c.get_attr("expire") == Some("true"))));
    let _ = Element::new("x", ns::CLIENT);
}
