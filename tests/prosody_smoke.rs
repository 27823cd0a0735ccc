//! Smoke test for the private test Prosody (`scripts/prosody.sh`, `tests/common/prosody.rs`).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::prosody::Prosody;

/// Sends `header` and reads until `until` appears (or the peer closes / 10 s pass).
fn exchange(port: u16, header: &str, until: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(header.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let n = match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        got.extend_from_slice(&buf[..n]);
        if String::from_utf8_lossy(&got).contains(until) {
            break;
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

fn attr<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    for q in ['\'', '"'] {
        let pat = format!(" {name}={q}");
        if let Some(i) = text.find(&pat) {
            let rest = &text[i + pat.len()..];
            return rest.find(q).map(|j| &rest[..j]);
        }
    }
    None
}

#[test]
fn prosody_starts_answers_and_stops() {
    let p = Prosody::start("prosody_smoke");
    assert_eq!(p.domain, "meet.test");
    assert!(
        p.ca_file.is_file(),
        "CA file {} missing",
        p.ca_file.display()
    );
    assert!(
        !p.focus_secret.is_empty() && !p.focus_password.is_empty() && !p.jvb_password.is_empty()
    );
    assert_eq!(p.user_passwords.len(), 2);
    let pid = p.pid().expect("prosody runs after start");

    // XEP-0114: the component port answers a stream header with an id.
    let comp = exchange(
        p.component_port,
        &format!(
            "<stream:stream xmlns='jabber:component:accept' \
             xmlns:stream='http://etherx.jabber.org/streams' to='{}'>",
            p.focus_component()
        ),
        ">",
    );
    let id = attr(&comp, "id").unwrap_or_else(|| panic!("no stream id in {comp:?}"));
    assert!(!id.is_empty());

    // c2s on auth.<domain> offers STARTTLS (required).
    let c2s = exchange(
        p.c2s_port,
        &format!(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
             xmlns:stream='http://etherx.jabber.org/streams' to='{}' version='1.0'>",
            p.auth_domain()
        ),
        "</stream:features>",
    );
    assert!(c2s.contains("<starttls"), "no starttls in {c2s:?}");
    assert!(
        c2s.contains("<required"),
        "starttls not required on auth domain: {c2s:?}"
    );

    // restart keeps the ports
    let ports = (p.c2s_port, p.component_port, p.http_port);
    p.restart();
    let pid2 = p.pid().expect("prosody runs after restart");
    assert_ne!(pid, pid2);
    assert_eq!(ports, (p.c2s_port, p.component_port, p.http_port));
    let comp = exchange(
        p.component_port,
        "<stream:stream xmlns='jabber:component:accept' \
         xmlns:stream='http://etherx.jabber.org/streams' to='focus.meet.test'>",
        ">",
    );
    assert!(
        attr(&comp, "id").is_some(),
        "no stream id after restart: {comp:?}"
    );

    p.stop();
    assert!(p.pid().is_none(), "pid file still names a live process");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid2}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid2}/stat"))
                .map(|s| s.contains(") Z"))
                .unwrap_or(true),
        "prosody pid {pid2} still running after stop"
    );
    assert!(!p.dir.join("prosody.pid").exists(), "pid file not removed");
    assert!(
        TcpStream::connect(("127.0.0.1", p.c2s_port)).is_err(),
        "c2s port still open"
    );
}
