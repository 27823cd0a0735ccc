//! Drop-in on existing Jitsi hosts (issue #15): client-only mode behind a client_proxy
//! (Prosody laid out like a current Debian install, served by the project's test module),
//! and `--check` in both modes.

mod common;

use std::time::Duration;

use common::deploy::{Deployment, FEATURES_2021, T};
use common::prosody::Layout;
use jicofo::xml::Element;
use jicofo::xmpp::ns;

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

/// Two participants reach a conference (through focus.<domain>, proxy or component) with media offers.
fn two_participants_get_offers(d: &Deployment, room: &str) {
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
    assert!(out.contains("answered by this check's own resource"), "no focus runs yet: {}", out);
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
    two_participants_get_offers(&d, "proxied");

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
    two_participants_get_offers(&d, "first");
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
    two_participants_get_offers(&d, "second");
}

#[test]
fn check_in_both_modes_names_what_the_layout_needs() {
    // Seed layout (focus.<domain> an external component) with the secret: the seed's mode.
    let d = Deployment::prepare("dropin-check-seed", &[("jvb1", &[])]);
    let secret = d.prosody.focus_secret.clone();
    let (code, out) = check(&d, &secret, &[]);
    assert_eq!(code, 0, "{}", out);
    assert!(out.starts_with("ok    mode: component focus.meet.test + client focus@auth.meet.test"), "{}", out);
    // Jicofo's JWT authority (token setup C): named, and its login domain must be served.
    let (code, out) = check(&d, &secret, &["--jwt_auth_domain=auth.meet.test"]);
    assert_eq!(code, 0, "{}", out);
    assert!(out.contains("ok    authentication: Jicofo's JWT authority for auth.meet.test"), "{}", out);
    assert!(out.contains("ok    login domain auth.meet.test answers disco"), "{}", out);
    let (code, out) = check(&d, &secret, &["--jwt_auth_domain=tokens.nowhere.test"]);
    assert_eq!(code, 1, "{}", out);
    assert!(out.contains("FAIL  login domain tokens.nowhere.test") && out.contains("--jwt_auth_domain"), "{}", out);
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

/// A fixture of `tests/fixtures/config/` made to fit the private Prosody: the installer's
/// domain, password and secret replaced by the instance's, nothing else changed.
fn fixture_for(d: &Deployment, rel: &str) -> String {
    let text = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config").join(rel)).unwrap();
    let p = &d.prosody;
    text.replace("meet.example.com", &p.domain)
        .replace("Tz8kW3qLm5RvX2pN", &p.focus_password)
        .replace("W@9m#Lp4", &p.focus_password)
        .replace("k#7Rq@2x", &p.focus_secret)
        .replace("JICOFO_PORT=5347", &format!("JICOFO_PORT={}", p.component_port))
}

/// The flags a test host needs besides the files: Prosody's client port and test CA (a
/// Debian host has 5222 and imports Prosody's certificate), and a free REST port.
fn test_host_flags(d: &Deployment) -> Vec<String> {
    let p = &d.prosody;
    vec![format!("--user_port={}", p.c2s_port), format!("--tls_ca_file={}", p.ca_file.display()), format!("--rest_port={}", d.rest_port)]
}

fn check_with(args: &[String], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_jicofo"));
    for (k, _) in std::env::vars() {
        if k.starts_with("JICOFO_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd.args(args).arg("--check").envs(env.iter().copied()).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).to_string())
}

#[test]
fn a_jicofo_conf_written_like_the_debian_installer_on_a_client_proxy_host() {
    let mut d = Deployment::prepare_layout("dropin-conf", Layout::ClientProxy { subscribed: true }, &[("jvb1", &[])]);
    let file = d.prosody.dir.join("jicofo.conf");
    std::fs::write(&file, fixture_for(&d, "debian-current/jicofo.conf")).unwrap();
    // The installer's file says localhost; the private Prosody listens on 127.0.0.1 only.
    let mut args = vec![format!("--config={}", file.display()), "--host=127.0.0.1".to_string()];
    args.extend(test_host_flags(&d));
    let (code, out) = check_with(&args, &[]);
    assert_eq!(code, 0, "{}", out);
    assert!(out.starts_with("ok    mode: client-only"), "{}", out);
    assert!(out.contains(&format!("ok    configuration read from {}", file.display())), "{}", out);
    assert!(out.contains("note  ignored (no flag of this focus stands for them)") && out.contains("jicofo.xmpp.trusted-domains"), "{}", out);
    d.spawn_jicofo_raw(&args, &[]);
    d.wait_up(Duration::from_secs(15));
    assert!(d.jicofo_log().contains("configuration keys ignored (no flag of this focus stands for them)"), "{}", d.jicofo_log());
    assert_eq!(d.stats()["xmpp"]["mode"], "client_only");
    two_participants_get_offers(&d, "fromconf");
}

#[test]
fn a_2020_config_and_properties_from_the_default_directory_on_a_seed_host() {
    let mut d = Deployment::prepare("dropin-2020", &[("jvb1", &[])]);
    let dir = d.prosody.dir.join("etc-jitsi-jicofo");
    std::fs::create_dir_all(&dir).unwrap();
    let config = fixture_for(&d, "debian-2020/config").replace("JICOFO_HOST=localhost", "JICOFO_HOST=127.0.0.1");
    std::fs::write(dir.join("config"), config).unwrap();
    std::fs::write(dir.join("sip-communicator.properties"), fixture_for(&d, "debian-2020/sip-communicator.properties")).unwrap();
    let dir_env = dir.display().to_string();
    let env = [("JICOFO_CONFIG_DIR", dir_env.as_str())];
    let args = test_host_flags(&d);
    let (code, out) = check_with(&args, &env);
    assert_eq!(code, 0, "{}", out);
    assert!(out.starts_with("ok    mode: component focus.meet.test + client"), "{}", out);
    assert!(out.contains("ok    component focus.meet.test accepted (secret is right)"), "{}", out);
    d.spawn_jicofo_raw(&args, &env);
    d.wait_up(Duration::from_secs(15));
    assert_eq!(d.stats()["xmpp"]["component_connected"], true);
    two_participants_get_offers(&d, "from2020");
    // With the focus running, the component is taken: the check still sees the secret accepted.
    let (code, out) = check_with(&args, &env);
    assert_eq!(code, 0, "{}", out);
    assert!(out.contains("ok    component focus.meet.test accepted the secret; it is connected elsewhere (a running focus)"), "{}", out);
}
