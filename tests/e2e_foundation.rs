//! The foundation against a real private Prosody: both connections, disco on both
//! JIDs, unhandled IQs, operator-facing errors, and reconnect after a Prosody restart.

mod common;

use std::time::{Duration, Instant};

use common::deploy::{Deployment, T};
use jicofo::xml::Element;
use jicofo::xmpp::ns;

fn disco(to: &str) -> Element {
    Element::new("iq", ns::CLIENT).attr("type", "get").attr("to", to).child(Element::new("query", ns::DISCO_INFO))
}

fn has_feature(answer: &Element, var: &str) -> bool {
    answer
        .get_child("query", ns::DISCO_INFO)
        .is_some_and(|q| q.children_named("feature", ns::DISCO_INFO).any(|f| f.get_attr("var") == Some(var)))
}

#[test]
fn both_jids_answer_disco_with_the_focus_feature_and_unknown_iqs_get_an_error() {
    let mut d = Deployment::prepare("found-disco", &[]);
    d.start_jicofo(&[]);
    let mut c = d.user("user1");
    let a = c.iq(disco("focus.meet.test"), T);
    assert_eq!(a.get_attr("type"), Some("result"), "{}", a);
    assert!(has_feature(&a, "http://jitsi.org/protocol/focus"), "component: {}", a);
    let ident = a.get_child("query", ns::DISCO_INFO).unwrap().get_child("identity", ns::DISCO_INFO).unwrap();
    assert_eq!(ident.get_attr("name"), Some("Jitsi Meet Focus"));
    let a = c.iq(disco("focus@auth.meet.test/focus"), T);
    assert_eq!(a.get_attr("type"), Some("result"), "{}", a);
    assert!(has_feature(&a, "http://jitsi.org/protocol/focus"), "client JID: {}", a);
    // An IQ nobody handles is answered with service-unavailable, on both JIDs.
    for to in ["focus.meet.test", "focus@auth.meet.test/focus"] {
        let q = Element::new("iq", ns::CLIENT).attr("type", "get").attr("to", to).child(Element::new("query", "urn:example:nothing"));
        let a = c.iq(q, T);
        assert_eq!(a.get_attr("type"), Some("error"));
        let cond = jicofo::xmpp::stanza::parse_error(&a).unwrap().condition_name;
        assert_eq!(cond, "service-unavailable", "{}", a);
    }
    // Ping on the component.
    let ping = Element::new("iq", ns::CLIENT).attr("type", "get").attr("to", "focus.meet.test").child(Element::new("ping", ns::PING));
    assert_eq!(c.iq(ping, T).get_attr("type"), Some("result"));
}

#[test]
fn both_connections_come_back_after_prosody_restarts() {
    let mut d = Deployment::prepare("found-restart", &[]);
    d.start_jicofo(&[]);
    d.prosody.restart();
    let t0 = Instant::now();
    // Wait until the restart has been noticed and both connections are back.
    assert!(d.wait_log("connecting to", Duration::from_secs(5)));
    let back = d.try_wait_up(Duration::from_secs(10));
    let log = d.jicofo_log();
    assert!(back, "connections not back after the restart:\n{}", log);
    let took = t0.elapsed();
    // restart() returns once Prosody listens again; retries every 0.5 s meanwhile.
    eprintln!("both connections back {:?} after Prosody was back", took);
    assert!(took < Duration::from_secs(1), "took {:?}", took);
    // Each connection logged its reconnect attempts.
    let attempts = log.lines().filter(|l| l.contains("client: connecting to")).count();
    assert!(attempts >= 2, "{}", log);
    // Each connection counted one reconnect.
    let x = &d.stats()["xmpp"];
    assert_eq!((x["component_reconnects"].as_u64(), x["client_reconnects"].as_u64()), (Some(1), Some(1)), "{}", x);
    assert_eq!(x["reconnects"], 2);
    // Still answering.
    let mut c = d.user("user1");
    assert_eq!(c.iq(disco("focus.meet.test"), T).get_attr("type"), Some("result"));
}

#[test]
fn a_wrong_secret_and_a_wrong_password_name_the_flag_to_fix() {
    let mut d = Deployment::prepare("found-wrong", &[]);
    d.spawn_jicofo(&[], &[("JICOFO_SECRET", "not-the-secret"), ("JICOFO_AUTH_PASSWORD", "not-the-password")]);
    assert!(
        d.wait_log("wrong secret (check --secret / JICOFO_SECRET", T),
        "no secret hint:\n{}",
        d.jicofo_log()
    );
    assert!(d.wait_log("--user_password / JICOFO_AUTH_PASSWORD", T), "no password hint:\n{}", d.jicofo_log());
    // An untrusted certificate names --tls_ca_file. And --tls_ca_file is the only trust:
    // with Prosody's CA as the process's system store (SSL_CERT_FILE), the certificate is
    // trusted without the flag, and not trusted when the flag names another CA.
    let _ = d.stop_jicofo(Duration::from_secs(5));
    let p = &d.prosody;
    let check = |system_store: Option<&std::path::Path>, ca_flag: Option<&str>| {
        let mut cmd = d.check_command();
        cmd.env("JICOFO_SECRET", &p.focus_secret)
            .env("JICOFO_AUTH_PASSWORD", &p.focus_password);
        match system_store {
            Some(f) => cmd.env("SSL_CERT_FILE", f),
            None => cmd.env_remove("SSL_CERT_FILE"),
        };
        if let Some(f) = ca_flag {
            cmd.arg(format!("--tls_ca_file={}", f));
        }
        cmd.output().unwrap()
    };
    let out = check(None, None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(text.contains("--tls_ca_file"), "{}", text);
    let system = String::from_utf8_lossy(&check(Some(&p.ca_file), None).stdout).into_owned();
    assert!(!system.contains("not trusted"), "{}", system);
    let unrelated = check(Some(&p.ca_file), Some(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/unrelated-ca.pem")));
    let unrelated = String::from_utf8_lossy(&unrelated.stdout);
    assert!(unrelated.contains("not trusted") && unrelated.contains("--tls_ca_file"), "{}", unrelated);
}

#[test]
fn bad_command_lines_exit_2_with_one_line() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_jicofo")).args(["--domain=meet.test", "--user_port=99999"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{}", err);
    assert!(err.contains("--user_port"));
    // No component secret is not a mistake but client-only mode (issue #15), which
    // --check names first; nothing listens on port 1, so the check fails there.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_jicofo"))
        .args(["--domain=meet.test", "--host=127.0.0.1", "--user_port=1", "--check"])
        .env_remove("JICOFO_SECRET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("ok    mode: client-only (no component secret)"), "{}", text);
    assert!(text.contains("FAIL  nothing answers on 127.0.0.1:1 (client)") && !text.contains("component)"), "{}", text);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_jicofo")).arg("--port=x").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_jicofo")).arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--tls_ca_file"));
}
