//! Operations against a running focus: the HTTP API, `--check`, and a clean SIGTERM
//! during live conferences.

mod common;

use std::time::{Duration, Instant};

use common::deploy::{Deployment, FEATURES_2021, T};
use jicofo::xmpp::ns;

#[test]
fn http_api_shapes_and_codes() {
    let d = Deployment::start("ops-http", &[("jvb1", &["--stress", "0.2"])]);
    let (code, body) = d.http("GET", "/about/version", None).unwrap();
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["name"], "JiCoFo");
    assert!(v["version"].is_string() && v["os"].is_string());
    let (code, body) = d.http("GET", "/about/health", None).unwrap();
    assert_eq!(code, 200, "{}", body);

    // A conference over HTTP, then a participant joins it.
    let room = format!("http@{}", d.prosody.muc_domain());
    let req = format!("{{\"room\":\"{}\",\"properties\":{{\"startAudioMuted\":\"1\"}}}}", room);
    let (code, body) = d.http("POST", "/conference-request/v1", Some(&req)).unwrap();
    assert_eq!(code, 200, "{}", body);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["ready"], true);
    assert_eq!(v["focusJid"], "focus@auth.meet.test");
    assert_eq!(v["properties"]["authentication"], "false");
    let mut a = d.participant("alice", FEATURES_2021);
    a.request_conference(&room);
    a.join();
    let mut b = d.participant("bob", FEATURES_2021);
    b.request_conference(&room);
    b.join();
    assert!(a.expect_jingle("session-initiate", T).is_some());

    let s = d.stats();
    assert_eq!(s["conferences"], 1, "{}", s);
    assert_eq!(s["participants"], 2);
    assert_eq!(s["largest_conference"], 2);
    assert_eq!(s["bridge_selector"]["bridge_count"], 1);
    // The conference is listed with its bridge.
    let conf = &s["conference_list"][0];
    assert_eq!(conf["room"], room.as_str());
    assert_eq!(conf["participants"], 2);
    assert!(conf["bridge"].as_str().unwrap().ends_with("/jvb1"), "{}", conf);
    let br = &s["bridge_selector"]["bridges"][0];
    assert!(br["jid"].as_str().unwrap().ends_with("/jvb1"));
    assert!(br["stress"].as_f64().unwrap() >= 0.2);
    assert_eq!(br["operational"], true);
    assert!(s["jingle"]["errors"].is_u64() && s["colibri"]["errors"].is_u64());

    let (code, text) = d.http("GET", "/metrics", None).unwrap();
    assert_eq!(code, 200);
    for l in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (name, value) = l.rsplit_once(' ').expect("name value");
        assert!(name.starts_with("jitsi_jicofo_"), "{}", l);
        assert!(value.parse::<f64>().is_ok(), "{}", l);
    }
    assert!(text.contains("jitsi_jicofo_conferences 1"), "{}", text);
    assert!(text.contains("# TYPE jitsi_jicofo_participants_total counter"));

    // Codes: bad JSON, missing room, unknown path, wrong method, too large.
    assert_eq!(d.http("POST", "/conference-request/v1", Some("{nope")).unwrap().0, 400);
    assert_eq!(d.http("POST", "/conference-request/v1", Some("{}")).unwrap().0, 400);
    assert_eq!(d.http("POST", "/conference-request/v1", Some("{\"room\":\"no-at-sign\"}")).unwrap().0, 400);
    assert_eq!(d.http("GET", "/nope", None).unwrap().0, 404);
    assert_eq!(d.http("DELETE", "/stats", None).unwrap().0, 405);
    let big = format!("{{\"room\":\"{}\"}}", "x".repeat(70_000));
    assert_eq!(d.http("POST", "/conference-request/v1", Some(&big)).unwrap().0, 413);
}

#[test]
fn health_fails_without_a_bridge() {
    let mut d = Deployment::prepare("ops-health", &[]);
    d.start_jicofo(&[]);
    let (code, body) = d.http("GET", "/about/health", None).unwrap();
    assert_eq!(code, 500);
    assert!(body.contains("no operational bridge"), "{}", body);
}

fn check(d: &Deployment, secret: &str, password: &str, ca: bool) -> (i32, String) {
    let p = &d.prosody;
    let mut cmd = d.check_command();
    cmd.env("JICOFO_SECRET", secret)
        .env("JICOFO_AUTH_PASSWORD", password);
    if ca {
        cmd.arg(format!("--tls_ca_file={}", p.ca_file.display()));
    }
    let t0 = Instant::now();
    let out = cmd.output().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(10), "--check took {:?}", t0.elapsed());
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).to_string())
}

#[test]
fn check_names_what_is_wrong() {
    let d = Deployment::prepare("ops-check", &[("jvb1", &["--stress", "0.3"])]);
    let p = &d.prosody;
    let (code, out) = check(&d, &p.focus_secret, &p.focus_password, true);
    assert_eq!(code, 0, "{}", out);
    assert!(out.contains("1 bridge(s): jvb1 (stress 0.3)"), "{}", out);
    // Prosody offers STARTTLS and its certificate is trusted through --tls_ca_file.
    assert!(out.contains("(password, TLS verified)"), "{}", out);
    assert!(out.lines().all(|l| l.starts_with("ok ") || l == "all checks passed"), "{}", out);
    let (code, out) = check(&d, "wrong", &p.focus_password, true);
    assert_eq!(code, 1);
    assert!(out.contains("FAIL  component") && out.contains("--secret"), "{}", out);
    let (code, out) = check(&d, &p.focus_secret, "wrong", true);
    assert_eq!(code, 1);
    assert!(out.contains("--user_password"), "{}", out);
    let (code, out) = check(&d, &p.focus_secret, &p.focus_password, false);
    assert_eq!(code, 1);
    assert!(out.contains("--tls_ca_file"), "{}", out);
}

#[test]
fn sigterm_during_conferences_leaves_the_rooms_and_exits_0() {
    let mut d = Deployment::start("ops-term", &[("jvb1", &[])]);
    let mut parts = Vec::new();
    for (i, room) in ["t1", "t2"].iter().enumerate() {
        let r = format!("{}@{}", room, d.prosody.muc_domain());
        for n in 0..2 {
            let mut p = d.participant(&format!("p{}{}", i, n), FEATURES_2021);
            p.request_conference(&r);
            p.join();
            parts.push(p);
        }
    }
    assert_eq!(d.stats()["conferences"], 2);
    let t0 = Instant::now();
    let status = d.stop_jicofo(Duration::from_secs(5)).expect("exited within 5 s");
    assert_eq!(status.code(), Some(0));
    eprintln!("stopped in {:?}", t0.elapsed());
    // Every room sees the focus leave.
    for p in parts.iter_mut() {
        let focus = format!("{}/focus", p.room);
        let left = p.client.wait_for(T, |el| {
            el.name == "presence" && el.get_attr("from") == Some(focus.as_str()) && el.get_attr("type") == Some("unavailable")
        });
        assert!(left.is_some(), "{} saw the focus leave", p.nick);
    }
    let log = d.jicofo_log();
    assert!(log.contains("ended (Shutdown)"), "{}", log);
    assert!(log.contains("event loop: stopped"));
    let _ = ns::CLIENT;
}
