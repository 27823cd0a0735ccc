//! The API: routing and answers as values, then the running server (`net::http` with
//! this handler) on loopback with a router side that never answers, slow clients and a
//! connection cap.

use std::io::{Read, Write};
use std::net::TcpStream;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::net::http::{Limits, RestServer};
use crate::net::EventLoop;
use crate::xml::Element;
use crate::xmpp::conference_iq::ConferenceReply;
use crate::xmpp::ns;
use crate::messages::Refusal;
use crossbeam_channel::{unbounded, Receiver};

fn req(method: &str, path: &str, body: &[u8]) -> Request {
    Request { method: method.into(), path: path.into(), body: body.to_vec() }
}

#[test]
fn routes_and_conference_bodies() {
    let status = |r: Route<Ops, RequestFields>| match r {
        Route::Done(resp) => resp.status,
        other => panic!("{other:?}"),
    };
    assert_eq!(route(&req("GET", "/about/health", b"")), Route::Work(Ops::Health));
    assert_eq!(route(&req("GET", "/stats", b"")), Route::Work(Ops::Stats));
    assert_eq!(route(&req("GET", "/metrics", b"")), Route::Work(Ops::Metrics));
    assert_eq!(status(route(&req("GET", "/about/version", b""))), 200);
    assert_eq!(status(route(&req("OPTIONS", "/conference-request/v1", b""))), 200);
    assert_eq!(status(route(&req("DELETE", "/stats", b""))), 405);
    assert_eq!(status(route(&req("GET", "/conference-request/v1", b""))), 405);
    assert_eq!(status(route(&req("GET", "/nope", b""))), 404);
    assert_eq!(status(route(&req("POST", "/conference-request/v1", b"{nope"))), 400);
    assert_eq!(status(route(&req("POST", "/conference-request/v1", b"{}"))), 400);
    let body = br#"{"room":"r@conference.meet.test","sessionId":"s1","machineUid":"m","properties":{"startAudioMuted":"1","n":2}}"#;
    match route(&req("POST", "/conference-request/v1", body)) {
        Route::Wait(fields) => {
            assert_eq!(fields.room, "r@conference.meet.test");
            assert_eq!((fields.session_id.as_deref(), fields.machine_uid.as_deref()), (Some("s1"), Some("m")));
            let props: Vec<_> = fields.properties.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            assert_eq!(props, vec![("n", "2"), ("startAudioMuted", "1")]);
            // The router serves it as the `<conference>` IQ it stands for.
            let iq = fields.to_iq();
            let c = iq.get_child("conference", ns::FOCUS).unwrap();
            assert_eq!((c.get_attr("room"), c.get_attr("session-id"), c.get_attr("machine-uid")), (Some(fields.room.as_str()), Some("s1"), Some("m")));
            let props: Vec<_> = c.children_named("property", ns::FOCUS).map(|p| (p.get_attr("name").unwrap(), p.get_attr("value").unwrap())).collect();
            assert_eq!(props, vec![("n", "2"), ("startAudioMuted", "1")]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn conference_answers_render_as_before() {
    let ok = ConferenceAnswer::Reply(ConferenceReply {
        room: "r@c".into(),
        ready: true,
        focus_jid: "focus@auth.meet.test".into(),
        session_id: Some("s".into()),
        identity: None,
        properties: vec![("authentication".into(), "false".into())],
    });
    let r = conference_response(&ok);
    assert_eq!(r.status, 200);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v, json!({"room": "r@c", "ready": true, "focusJid": "focus@auth.meet.test", "sessionId": "s", "properties": {"authentication": "false"}}));
    assert_eq!(conference_response(&ConferenceAnswer::NotAuthorized("why".into())).status, 403);
    let r = conference_response(&ConferenceAnswer::SessionInvalid);
    assert_eq!((r.status, serde_json::from_slice::<Value>(&r.body).unwrap()["error"].clone()), (400, json!("invalid-session")));
    // Limits: 503 with when to retry.
    for (why, after) in [
        (Refusal::TooManyConferences, 60),
        (Refusal::TooManyNewRooms, 60),
        (Refusal::ConferenceBusy, 5),
        (Refusal::TooManyWaiting, 5),
        (Refusal::CannotStart, 5),
    ] {
        let r = conference_response(&ConferenceAnswer::Refused(why));
        assert_eq!((r.status, r.retry_after), (503, Some(after)), "{:?}", why);
        assert_eq!(serde_json::from_slice::<Value>(&r.body).unwrap()["error"], json!(why.text()));
        let wire = String::from_utf8(r.to_bytes()).unwrap();
        assert!(wire.starts_with("HTTP/1.1 503 Service Unavailable\r\n") && wire.contains(&format!("\r\nRetry-After: {}\r\n", after)), "{wire}");
    }
    // Other errors are 400 with their text, without Retry-After.
    for a in [ConferenceAnswer::BadRequest("why".into()), ConferenceAnswer::NotAcceptable("why".into())] {
        let r = conference_response(&a);
        assert_eq!((r.status, r.retry_after), (400, None));
        assert_eq!(serde_json::from_slice::<Value>(&r.body).unwrap()["error"], json!("why"));
        assert!(!String::from_utf8(r.to_bytes()).unwrap().contains("Retry-After"));
    }
    let r = conference_response(&ConferenceAnswer::ShuttingDown);
    assert_eq!((r.status, serde_json::from_slice::<Value>(&r.body).unwrap()["error"].clone()), (400, json!("service-unavailable")));
}

#[test]
fn typed_answers_are_written_as_the_stanzas_xmpp_requesters_got_before() {
    let iq = Element::new("iq", ns::CLIENT).attr("type", "set").attr("id", "q1").attr("from", "u@meet.test/r").attr("to", "focus.meet.test");
    let cond = |el: &Element| crate::xmpp::stanza::parse_error(el).map(|e| (e.condition_name, e.text));
    let c = |a: ConferenceAnswer| cond(&a.to_iq(&iq)).unwrap();
    assert_eq!(c(ConferenceAnswer::BadRequest("x".into())), ("bad-request".into(), Some("x".into())));
    assert_eq!(c(ConferenceAnswer::NotAcceptable("x".into())), ("not-acceptable".into(), Some("x".into())));
    assert_eq!(c(ConferenceAnswer::NotAuthorized("x".into())), ("not-authorized".into(), Some("x".into())));
    assert_eq!(c(ConferenceAnswer::Refused(Refusal::ConferenceBusy)), ("resource-constraint".into(), Some("the conference is busy".into())));
    let invalid = ConferenceAnswer::SessionInvalid.to_iq(&iq);
    assert_eq!(cond(&invalid).unwrap(), ("not-acceptable".into(), Some("invalid session".into())));
    assert!(invalid.get_child("error", ns::CLIENT).unwrap().get_child("session-invalid", ns::FOCUS).is_some());
    let down = ConferenceAnswer::ShuttingDown.to_iq(&iq);
    assert_eq!(cond(&down).unwrap().0, "service-unavailable");
    assert!(down.get_child("error", ns::CLIENT).unwrap().get_child("graceful-shutdown", ns::COLIBRI).is_some());
    let reply = ConferenceReply { room: "r@c".into(), ready: true, focus_jid: "f".into(), ..Default::default() };
    let ok = ConferenceAnswer::Reply(reply.clone()).to_iq(&iq);
    assert_eq!((ok.get_attr("type"), ok.get_attr("id"), ok.get_attr("to")), (Some("result"), Some("q1"), Some("u@meet.test/r")));
    assert_eq!(ok.get_child("conference", ns::FOCUS), Some(&reply.to_element()));
}

/// An API whose router side is `control` (keep the receiver to leave requests unanswered).
fn api() -> (Api, Receiver<Control>) {
    let (control, rx) = unbounded();
    let (_loop, net) = EventLoop::new().unwrap();
    let api = Api {
        metrics: Arc::new(Metrics::new()),
        bridges: Arc::new(Mutex::new(Bridges::default())),
        control,
        net,
    };
    (api, rx)
}

fn start(limits: Limits) -> (RestServer, Receiver<Control>) {
    let (api, rx) = api();
    (RestServer::start_with("127.0.0.1:0".parse().unwrap(), api, limits).unwrap(), rx)
}

/// One request, the whole answer: `(status, body)`.
fn http(addr: SocketAddr, raw: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(raw.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    parse_answer(&out)
}

fn parse_answer(out: &str) -> (u16, String) {
    let code = out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("no status in {out:?}"));
    (code, out.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("").to_string())
}

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    http(addr, &format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n"))
}

fn post_conference(addr: SocketAddr, room: &str) -> (u16, String) {
    let body = format!("{{\"room\":\"{room}\"}}");
    http(addr, &format!("POST /conference-request/v1 HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}", body.len()))
}

/// Threads of the server on `addr` (named `http<port>-…`), once their number is `expect`
/// (a new thread names itself shortly after it starts), or after a second.
fn server_threads_settled(addr: SocketAddr, expect: usize) -> usize {
    let t = Instant::now();
    loop {
        let n = server_threads(addr);
        if n == expect || t.elapsed() > Duration::from_secs(1) {
            return n;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Threads of the server on `addr` (named `http<port>-…`).
fn server_threads(addr: SocketAddr) -> usize {
    let tag = format!("http{}-", addr.port());
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(&tag))
        .count()
}

#[test]
fn health_answers_in_under_100_ms_while_20_conference_requests_wait() {
    let limits = Limits { max_waiting: 20, wait_timeout: Duration::from_secs(2), ..Limits::default() };
    let (server, control) = start(limits);
    let addr = server.addr;
    let waiting: Vec<_> = (0..20).map(|i| std::thread::spawn(move || post_conference(addr, &format!("r{i}@conference.meet.test")))).collect();
    // All 20 have reached the router side, which does not answer.
    let t = Instant::now();
    while control.len() < 20 {
        assert!(t.elapsed() < Duration::from_secs(5), "only {} requests reached the router", control.len());
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut worst = Duration::ZERO;
    for _ in 0..20 {
        let t = Instant::now();
        let (code, body) = get(addr, "/about/health");
        worst = worst.max(t.elapsed());
        // No connection, no bridge: unhealthy, but answered.
        assert_eq!(code, 500, "{body}");
        assert!(body.contains("no operational bridge"), "{body}");
        assert_eq!(get(addr, "/about/version").0, 200);
    }
    eprintln!("health: slowest of 20 answers {worst:?} with 20 conference requests waiting");
    assert!(worst < Duration::from_millis(100), "health took {worst:?}");
    // A 21st conference request is refused at once.
    let t = Instant::now();
    assert_eq!(post_conference(addr, "x@conference.meet.test").0, 503);
    assert!(t.elapsed() < Duration::from_millis(500));
    // The waiting ones get the old answer once their time is up.
    for w in waiting {
        let (code, body) = w.join().unwrap();
        assert_eq!(code, 500, "{body}");
        assert!(body.contains("no answer from the conference"), "{body}");
    }
    assert_eq!(server_threads_settled(addr, 2 + 2), 2 + 2);
    server.stop();
    assert_eq!(server_threads(addr), 0, "every thread joined");
    drop(control);
}

#[test]
fn conference_requests_reach_the_router_and_get_its_answer() {
    let (server, control) = start(Limits::default());
    let addr = server.addr;
    let router = std::thread::spawn(move || {
        for _ in 0..2 {
            match control.recv_timeout(Duration::from_secs(5)).unwrap() {
                Control::Http { request, reply } => {
                    let c = ConferenceReply { room: request.room, ready: true, focus_jid: "focus@auth.meet.test".into(), ..Default::default() };
                    let _ = reply.send(ConferenceAnswer::Reply(c));
                }
                _ => panic!("unexpected control"),
            }
        }
    });
    let (code, body) = post_conference(addr, "a@conference.meet.test");
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((v["room"].as_str(), v["ready"].as_bool(), v["focusJid"].as_str()), (Some("a@conference.meet.test"), Some(true), Some("focus@auth.meet.test")));
    // Expect: 100-continue (curl does it for larger bodies): the interim answer, then the real one.
    let body = "{\"room\":\"b@conference.meet.test\"}";
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "POST /conference-request/v1 HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n", body.len()).unwrap();
    let mut interim = [0u8; 25];
    s.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(body.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert_eq!(parse_answer(&out).0, 200, "{out}");
    // An oversized body is refused (413) without being read, and the answer still arrives.
    let big = format!("{{\"room\":\"{}\"}}", "x".repeat(70_000));
    let (code, _) = http(addr, &format!("POST /conference-request/v1 HTTP/1.0\r\nContent-Length: {}\r\n\r\n{big}", big.len()));
    assert_eq!(code, 413);
    router.join().unwrap();
    server.stop();
}

#[test]
fn slow_clients_hold_no_threads_and_cannot_lock_health_out() {
    let limits = Limits { max_connections: 32, request_timeout: Duration::from_millis(1500), ..Limits::default() };
    let (server, _control) = start(limits);
    let addr = server.addr;
    let threads = server_threads_settled(addr, 2 + 2);
    assert_eq!(threads, 2 + 2);
    // 100 slowloris connections, each dripping one byte of a request line every 100 ms.
    let mut slow: Vec<TcpStream> = (0..100).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let line = b"GET /about/health HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut worst = Duration::ZERO;
    for step in 0..20 {
        for s in &mut slow {
            let _ = s.write(&line[step % line.len()..step % line.len() + 1]);
        }
        let t = Instant::now();
        let (code, _) = get(addr, "/about/health");
        worst = worst.max(t.elapsed());
        assert_eq!(code, 500);
        assert_eq!(server_threads(addr), threads, "threads grew at step {step}");
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("health: slowest answer {worst:?} among 100 slow clients (cap 32)");
    assert!(worst < Duration::from_millis(100), "health took {worst:?}");
    // Every slow connection was dropped (evicted) or timed out with 408; none is served.
    for s in &mut slow {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out);
        assert!(text.is_empty() || text.starts_with("HTTP/1.1 408") || text.starts_with("HTTP/1.1 503"), "{text}");
    }
    server.stop();
    assert_eq!(server_threads(addr), 0);
}

#[test]
fn past_the_connection_cap_with_no_slow_client_to_drop_new_connections_get_503() {
    let limits = Limits { max_connections: 4, wait_timeout: Duration::from_secs(2), ..Limits::default() };
    let (server, control) = start(limits);
    let addr = server.addr;
    // Four connections waiting for their conference (not evictable).
    let waiting: Vec<_> = (0..4).map(|i| std::thread::spawn(move || post_conference(addr, &format!("r{i}@c")))).collect();
    let t = Instant::now();
    while control.len() < 4 {
        assert!(t.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(5));
    }
    let (code, body) = get(addr, "/about/health");
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("too many connections"));
    for w in waiting {
        assert_eq!(w.join().unwrap().0, 500);
    }
    // Room again.
    assert_eq!(get(addr, "/about/health").0, 500);
    server.stop();
}

#[test]
fn a_request_that_never_completes_gets_408() {
    let limits = Limits { request_timeout: Duration::from_millis(300), ..Limits::default() };
    let (server, _control) = start(limits);
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /stats HTTP/1.1\r\n").unwrap();
    let t = Instant::now();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert_eq!(parse_answer(&out).0, 408);
    assert!(t.elapsed() >= Duration::from_millis(250) && t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    server.stop();
}
