//! End to end through a private Prosody with bridge simulators and the real jicofo
//! binary: conferences, bridge selection, Jingle offers and answers, sources.

mod common;

use std::time::Duration;

use common::deploy::{Deployment, Participant, FEATURES_2021, T};
use jicofo::xml::Element;
use jicofo::xmpp::ns;

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

fn jingle_of(el: &Element) -> &Element {
    el.get_child("jingle", JINGLE).unwrap()
}

fn sid_of(el: &Element) -> String {
    jingle_of(el).get_attr("sid").unwrap().to_string()
}

fn bridge_session_of(si: &Element) -> String {
    jingle_of(si).get_child("bridge-session", ns::FOCUS).unwrap().get_attr("id").unwrap().to_string()
}

/// SSRCs a participant knows of other owners, from its offer and source-adds/removes.
#[derive(Default)]
struct Known {
    ssrcs: std::collections::BTreeMap<String, String>, // ssrc -> owner
    media: std::collections::BTreeMap<String, String>, // ssrc -> audio|video
}

impl Known {
    fn absorb(&mut self, el: &Element) {
        let j = jingle_of(el);
        let add = matches!(j.get_attr("action"), Some("session-initiate") | Some("source-add"));
        for c in j.children_named("content", JINGLE) {
            for d in c.elements().filter(|e| e.name == "description") {
                for s in d.elements().filter(|e| e.name == "source" && e.get_attr("ssrc").is_some()) {
                    let ssrc = s.get_attr("ssrc").unwrap().to_string();
                    let owner = s.elements().find(|x| x.name == "ssrc-info").and_then(|x| x.get_attr("owner")).unwrap_or("?").to_string();
                    if add {
                        self.media.insert(ssrc.clone(), d.get_attr("media").unwrap_or("?").to_string());
                        self.ssrcs.insert(ssrc, owner);
                    } else {
                        self.ssrcs.remove(&ssrc);
                    }
                }
            }
        }
    }

    fn owners(&self) -> std::collections::BTreeSet<String> {
        self.ssrcs.values().cloned().collect()
    }
}

/// Read Jingle from the focus (acknowledging it) for `dur`, folding sources into `k`.
fn pump(p: &mut Participant, k: &mut Known, dur: Duration) -> Vec<Element> {
    let deadline = std::time::Instant::now() + dur;
    let mut got = Vec::new();
    while let Some(el) = p.client.wait_for(deadline.saturating_duration_since(std::time::Instant::now()), |el| {
        el.name == "iq" && el.get_attr("type") == Some("set") && el.get_child("jingle", JINGLE).is_some()
    }) {
        p.client.send(&jicofo::xmpp::stanza::iq_result(&el));
        k.absorb(&el);
        got.push(el);
    }
    got
}

fn accept(p: &mut Participant, si: &Element) {
    let acc = p.session_accept(si, "lyno-session-accept.xml");
    let r = p.request(acc);
    assert_eq!(r.get_attr("type"), Some("result"), "{}", r);
}

fn owners(names: &[&str]) -> std::collections::BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn three_participants_sources_restart_and_validation() {
    let d = Deployment::start("e2e-three", &[("jvb1", &[])]);
    let r = room(&d, "three");
    let (mut a, _) = joined(&d, "a", "alice", &r);
    let (mut b, _) = joined(&d, "b", "bob", &r);
    let second_joined = std::time::Instant::now();
    let si_a = a.expect_jingle("session-initiate", Duration::from_secs(1)).expect("alice invited within 1 s");
    let si_b = b.expect_jingle("session-initiate", Duration::from_secs(1)).expect("bob invited within 1 s");
    eprintln!("both invited {:?} after the second join", second_joined.elapsed());
    let (mut ka, mut kb, mut kc) = (Known::default(), Known::default(), Known::default());
    ka.absorb(&si_a);
    kb.absorb(&si_b);
    accept(&mut a, &si_a);
    accept(&mut b, &si_b);
    let (mut c, _) = joined(&d, "c", "carol", &r);
    let si_c = c.expect_jingle("session-initiate", Duration::from_secs(1)).expect("carol invited within 1 s");
    kc.absorb(&si_c);
    accept(&mut c, &si_c);
    pump(&mut a, &mut ka, Duration::from_millis(600));
    pump(&mut b, &mut kb, Duration::from_millis(600));
    pump(&mut c, &mut kc, Duration::from_millis(600));
    // Everyone knows everyone else's sources (and the bridge's).
    assert_eq!(ka.owners(), owners(&["bob", "carol", "jvb"]));
    assert_eq!(kb.owners(), owners(&["alice", "carol", "jvb"]));
    assert_eq!(kc.owners(), owners(&["alice", "bob", "jvb"]));

    // Invalid sources are refused with an error and change nothing.
    let stolen = kb.ssrcs.iter().find(|(_, o)| o.as_str() == "alice").map(|(s, _)| s.clone()).unwrap();
    let bad = Element::new("iq", ns::CLIENT).attr("type", "set").attr("to", format!("{}/focus", r)).child(
        Element::new("jingle", JINGLE).attr("action", "source-add").attr("sid", sid_of(&si_b)).child(
            Element::new("content", JINGLE).attr("name", "audio").child(
                Element::new("description", "urn:xmpp:jingle:apps:rtp:1").attr("media", "audio").child(
                    Element::new("source", "urn:xmpp:jingle:apps:rtp:ssma:0").attr("ssrc", stolen.clone()).child(
                        Element::new("parameter", "urn:xmpp:jingle:apps:rtp:ssma:0").attr("name", "msid").attr("value", "bob-audio-9 x"),
                    ),
                ),
            ),
        ),
    );
    let ans = b.request(bad);
    let err = jicofo::xmpp::stanza::parse_error(&ans).expect("refused");
    assert_eq!(err.condition_name, "bad-request");
    assert!(err.text.unwrap_or_default().contains("SSRC is already used"));
    let got = pump(&mut c, &mut kc, Duration::from_millis(400));
    assert!(got.is_empty(), "nothing propagated after a refused source-add");

    // A source-remove reaches the others.
    let bob_audio = ka
        .ssrcs
        .iter()
        .find(|(s, o)| o.as_str() == "bob" && ka.media.get(*s).map(String::as_str) == Some("audio"))
        .map(|(s, _)| s.clone())
        .expect("alice knows bob's audio source");
    let rm = Element::new("iq", ns::CLIENT).attr("type", "set").attr("to", format!("{}/focus", r)).child(
        Element::new("jingle", JINGLE).attr("action", "source-remove").attr("sid", sid_of(&si_b)).child(
            Element::new("content", JINGLE).attr("name", "audio").child(
                Element::new("description", "urn:xmpp:jingle:apps:rtp:1")
                    .attr("media", "audio")
                    .child(Element::new("source", "urn:xmpp:jingle:apps:rtp:ssma:0").attr("ssrc", bob_audio.clone())),
            ),
        ),
    );
    assert_eq!(b.request(rm).get_attr("type"), Some("result"));
    pump(&mut a, &mut ka, Duration::from_millis(500));
    pump(&mut c, &mut kc, Duration::from_millis(500));
    assert!(!ka.ssrcs.contains_key(&bob_audio), "alice saw bob's source-remove");
    assert!(!kc.ssrcs.contains_key(&bob_audio), "carol saw bob's source-remove");

    // A restart request gets a fresh session.
    let term = Element::new("iq", ns::CLIENT).attr("type", "set").attr("to", format!("{}/focus", r)).child(
        Element::new("jingle", JINGLE)
            .attr("action", "session-terminate")
            .attr("sid", sid_of(&si_a))
            .child(Element::new("reason", JINGLE).child(Element::new("connectivity-error", JINGLE)))
            .child(Element::new("bridge-session", ns::FOCUS).attr("id", bridge_session_of(&si_a)).attr("restart", "true")),
    );
    assert_eq!(a.request(term).get_attr("type"), Some("result"));
    let si_a2 = a.expect_jingle("session-initiate", T).expect("a new offer after the restart");
    assert_ne!(sid_of(&si_a2), sid_of(&si_a));
    // A second restart right away is rate limited.
    let term2 = Element::new("iq", ns::CLIENT).attr("type", "set").attr("to", format!("{}/focus", r)).child(
        Element::new("jingle", JINGLE)
            .attr("action", "session-terminate")
            .attr("sid", sid_of(&si_a2))
            .child(Element::new("bridge-session", ns::FOCUS).attr("id", bridge_session_of(&si_a2)).attr("restart", "true")),
    );
    let ans = a.request(term2);
    assert_eq!(jicofo::xmpp::stanza::parse_error(&ans).map(|e| e.condition_name).as_deref(), Some("resource-constraint"));
}

#[test]
fn killing_a_bridge_moves_its_participants_to_the_other_within_15_s() {
    let mut d = Deployment::start("e2e-failover", &[("jvb1", &["--stress", "0.1"]), ("jvb2", &["--stress", "0.3"])]);
    let r = room(&d, "failover");
    let (mut a, _) = joined(&d, "a", "alice", &r);
    let (mut b, _) = joined(&d, "b", "bob", &r);
    // All invited within 1 s of the second join (and of the third).
    let si_a = a.expect_jingle("session-initiate", Duration::from_secs(1)).expect("alice invited within 1 s");
    let si_b = b.expect_jingle("session-initiate", Duration::from_secs(1)).expect("bob invited within 1 s");
    let (mut c, _) = joined(&d, "c", "carol", &r);
    let si_c = c.expect_jingle("session-initiate", Duration::from_secs(1)).expect("carol invited within 1 s");
    let mut known = [Known::default(), Known::default(), Known::default()];
    let mut parts = [&mut a, &mut b, &mut c];
    for (i, (p, si)) in parts.iter_mut().zip([&si_a, &si_b, &si_c]).enumerate() {
        assert_eq!(Some(offer_ufrag(si)), allocated_ufrag(&d, "jvb1", &p.nick), "on the least stressed bridge");
        known[i].absorb(si);
        accept(p, si);
    }
    for (i, p) in parts.iter_mut().enumerate() {
        pump(p, &mut known[i], Duration::from_millis(600));
    }
    assert_eq!(known[0].owners(), owners(&["bob", "carol", "jvb"]));
    assert_eq!(known[1].owners(), owners(&["alice", "carol", "jvb"]));
    assert_eq!(known[2].owners(), owners(&["alice", "bob", "jvb"]));

    d.sim("jvb1").command("crash");
    let t0 = std::time::Instant::now();
    for p in parts.iter_mut() {
        let si = p.expect_jingle("session-initiate", Duration::from_secs(15)).expect("a new session on the surviving bridge");
        assert_eq!(Some(offer_ufrag(&si)), allocated_ufrag(&d, "jvb2", &p.nick), "moved to jvb2");
    }
    let took = t0.elapsed();
    eprintln!("all participants moved after {:?}", took);
    assert!(took <= Duration::from_secs(15));
    assert!(d.stats()["bridge_failures"]["participants_moved"].as_u64().unwrap_or(0) >= 3);
}
