//! Drop-in on existing Jitsi hosts (issue #15): client-only mode behind a client_proxy
//! (Prosody laid out like a current Debian install, served by the project's test module),
//! and `--check` in both modes.

mod common;

use std::time::Duration;

use common::deploy::{Deployment, FEATURES_2021, T};
use common::prosody::Layout;
use jicofo::xml::{ns, Element};

fn disco(to: &str) -> Element {
    Element::new("iq", ns::CLIENT).attr("type", "get").attr("to", to.to_string()).child(Element::new("query", ns::DISCO_INFO))
}

fn has_focus_feature(answer: &Element) -> bool {
    answer
        .get_child("query", ns::DISCO_INFO)
        .is_some_and(|q| q.children_named("feature", ns::DISCO_INFO).any(|f| f.get_attr("var") == Some(ns::FOCUS)))
}

/// `jicofo --check` with the flags of the deployment and `extra`; `(exit code, stdout)`.
fn check(d: &Deployment, secret: &str, extra: &[&str]) -> (i32, String) {
    let p = &d.prosody;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_jicofo"))
        .arg(format!("--domain={}", p.domain))
        .arg("--host=127.0.0.1")
        .arg(format!("--port={}", p.component_port))
        .arg(format!("--user_port={}", p.c2s_port))
        .arg(format!("--tls_ca_file={}", p.ca_file.display()))
        .args(extra)
        .arg("--check")
        .env("JICOFO_SECRET", secret)
        .env("JICOFO_AUTH_PASSWORD", &p.focus_password)
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).to_string())
}

/// Two participants through the proxy reach a conference with media offers.
fn conference_through_the_proxy(d: &Deployment, room: &str) {
    let room = format!("{}@{}", room, d.prosody.muc_domain());
    let mut a = d.participant("alice", FEATURES_2021);
    let answer = a.request_conference(&room);
    assert_eq!(answer.get_attr("focusjid"), Some("focus@auth.meet.test"));
    a.join();
    let mut b = d.participant("bob", FEATURES_2021);
    b.request_conference(&room);
    b.join();
    assert!(a.expect_jingle("session-initiate", T).is_some(), "alice gets an offer");
    assert!(b.expect_jingle("session-initiate", T).is_some(), "bob gets an offer");
}

#[test]
fn client_only_mode_serves_conferences_through_the_client_proxy() {
    let mut d = Deployment::prepare_layout("dropin-proxy", Layout::ClientProxy { subscribed: true }, &[("jvb1", &[])]);
    assert_eq!(d.prosody.focus_secret, "", "the client_proxy layout has no component secret");
    // Before jicofo runs, the proxy knows no focus: the check answers for it.
    let (code, out) = check(&d, "", &[]);
    assert_eq!(code, 0, "{}", out);
    assert!(out.starts_with("ok    mode: client-only (no component secret)"), "{}", out);
    assert!(out.contains("ok    focus.meet.test is a client_proxy for focus@auth.meet.test"), "{}", out);
    assert!(out.contains("answered by this check (no focus is running)"), "{}", out);
    assert!(!out.contains("component focus.meet.test accepted"), "{}", out);

    d.start_jicofo(&[]);
    let s = d.stats();
    assert_eq!(s["xmpp"]["mode"], "client_only", "{}", s);
    assert_eq!(s["xmpp"]["component_connected"], false);
    let (code, body) = d.http("GET", "/about/health", None).unwrap();
    assert_eq!(code, 200, "healthy without a component: {}", body);
    assert!(d.jicofo_log().contains("starting in client-only mode"), "{}", d.jicofo_log());

    // A participant's disco#info to focus.<domain> reaches the focus through the proxy.
    let mut u = d.participant("carol", FEATURES_2021);
    let answer = u.client.iq(disco(&d.prosody.focus_component()), T);
    assert_eq!(answer.get_attr("type"), Some("result"), "{}", answer);
    assert_eq!(answer.get_attr("from"), Some("focus.meet.test"));
    assert!(has_focus_feature(&answer), "{}", answer);
    conference_through_the_proxy(&d, "proxied");

    // With the focus running, --check sees its answer (either resource may be picked by
    // the proxy, so only the pass is asserted).
    let (code, out) = check(&d, "", &[]);
    assert_eq!(code, 0, "{}", out);
    assert!(out.contains("1 bridge(s): jvb1"), "{}", out);
    let (_, metrics) = d.http("GET", "/metrics", None).unwrap();
    assert!(!metrics.contains("component"), "no component metrics in client-only mode: {}", metrics);
}

#[test]
fn without_a_roster_subscription_the_directed_presence_reaches_the_proxy_again_after_a_restart() {
    let mut d = Deployment::prepare_layout("dropin-nosub", Layout::ClientProxy { subscribed: false }, &[("jvb1", &[])]);
    d.start_jicofo(&[]);
    conference_through_the_proxy(&d, "first");
    // Prosody restarts: the proxy forgets every resource; jicofo reconnects and announces
    // itself again, so new requests are served.
    d.prosody.restart();
    assert!(d.wait_log("announcing focus@auth.meet.test/focus to the client_proxy", T));
    let announced = d.jicofo_log().matches("announcing focus@auth.meet.test/focus to the client_proxy").count();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while d.jicofo_log().matches("announcing focus@auth.meet.test/focus to the client_proxy").count() < 2 {
        assert!(std::time::Instant::now() < deadline, "no announcement after the restart ({} so far)", announced);
        std::thread::sleep(Duration::from_millis(50));
    }
    d.wait_up(Duration::from_secs(15));
    conference_through_the_proxy(&d, "second");
}

#[test]
fn check_in_both_modes_names_what_the_layout_needs() {
    // Seed layout (focus.<domain> an external component) with the secret: the seed's mode.
    let d = Deployment::prepare("dropin-check-seed", &[("jvb1", &[])]);
    let secret = d.prosody.focus_secret.clone();
    let (code, out) = check(&d, &secret, &[]);
    assert_eq!(code, 0, "{}", out);
    assert!(out.starts_with("ok    mode: component focus.meet.test + client focus@auth.meet.test"), "{}", out);
    // The same host without the secret: client-only mode finds no client_proxy and says
    // what to do, naming the secret as the other way.
    let (code, out) = check(&d, "", &[]);
    assert_eq!(code, 1, "{}", out);
    assert!(out.contains("FAIL  focus.meet.test is not a client_proxy for focus@auth.meet.test"), "{}", out);
    assert!(out.contains("\"client_proxy\" with target_address = \"focus@auth.meet.test\"") && out.contains("JICOFO_SECRET"), "{}", out);
    // A client_proxy layout told of a proxy that is not there.
    let p = Deployment::prepare_layout("dropin-check-proxy", Layout::ClientProxy { subscribed: true }, &[("jvb1", &[])]);
    let (code, out) = check(&p, "", &["--client_proxy=nothing.meet.test"]);
    assert_eq!(code, 1, "{}", out);
    assert!(out.contains("FAIL  nothing.meet.test is not a client_proxy"), "{}", out);
}
