//! `jicofo --check`: a deployment doctor. Runs the real connections once and prints
//! one line per step, each failure with what to fix; exit 0 when all pass, 1 otherwise.
//!
//! Steps: the host resolves; Prosody answers on both ports; the component secret is
//! accepted; the focus user logs in (certificate trusted); the conference MUC service
//! answers disco; the brewery can be joined and how many bridges are in it.

use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::app::connection_specs;
use crate::config::Config;
use crate::focus::{CLIENT, COMPONENT};
use crate::jid::Jid;
use crate::net::{ConnId, EventLoop, LinkSecurity, NetHandle, Outbox, Router};
use crate::xml::{ns, Element};

enum Ev {
    Up(ConnId, LinkSecurity),
    Down(ConnId, String),
    Stanza(Element),
}

struct CheckRouter {
    tx: Sender<Ev>,
    security: LinkSecurity,
}

impl Router for CheckRouter {
    fn link_security(&mut self, _conn: ConnId, security: LinkSecurity) {
        self.security = security;
    }
    fn connected(&mut self, conn: ConnId, _jid: &Jid, _out: &mut Outbox) {
        let _ = self.tx.try_send(Ev::Up(conn, self.security));
    }
    fn disconnected(&mut self, conn: ConnId, reason: &str, _out: &mut Outbox) {
        let _ = self.tx.try_send(Ev::Down(conn, reason.to_string()));
    }
    fn stanza(&mut self, _conn: ConnId, el: Element, _out: &mut Outbox) {
        let _ = self.tx.try_send(Ev::Stanza(el));
    }
}

struct Report {
    failed: bool,
}

impl Report {
    fn ok(&mut self, what: &str) {
        println!("ok    {}", what);
    }
    fn fail(&mut self, what: &str, fix: &str) {
        self.failed = true;
        println!("FAIL  {}: {}", what, fix);
    }
}

/// The line for a focus user that logged in as `account` with `how` (password or
/// ANONYMOUS) over a link of `security`, to `host`: what actually protects it.
pub fn login_line(account: &str, how: &str, security: LinkSecurity, host: &str) -> String {
    let link = match security {
        LinkSecurity::Verified => "TLS verified".to_string(),
        LinkSecurity::Unverified => "TLS, certificate not verified: --tls_insecure".to_string(),
        LinkSecurity::Plain if crate::app::is_loopback(host) => {
            format!("no TLS: the server offered no STARTTLS, allowed because {} is loopback", host)
        }
        LinkSecurity::Plain => "no TLS: the server offered no STARTTLS, allowed by --tls_insecure".to_string(),
    };
    format!("focus user {} logged in ({}, {})", account, how, link)
}

fn wait_conn(rx: &Receiver<Ev>, conn: ConnId, deadline: Instant, stash: &mut Vec<Ev>) -> Result<LinkSecurity, String> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Ev::Up(c, s)) if c == conn => return Ok(s),
            Ok(Ev::Down(c, r)) if c == conn => return Err(r),
            Ok(other) => stash.push(other),
            Err(_) => return Err("no answer within 5 s".into()),
        }
    }
}

fn request(net: &NetHandle, rx: &Receiver<Ev>, iq: Element, timeout: Duration) -> Option<Element> {
    let id = iq.get_attr("id").unwrap_or_default().to_string();
    net.send(CLIENT, iq).ok()?;
    let deadline = Instant::now() + timeout;
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Ev::Stanza(el)) if el.name == "iq" && el.get_attr("id") == Some(id.as_str()) => return Some(el),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

/// Run the checks; returns the exit status.
pub fn run(cfg: &Config) -> i32 {
    let mut r = Report { failed: false };
    match crate::net::resolve(&cfg.host, cfg.user_port) {
        Ok(a) => r.ok(&format!("host {} resolves to {}", cfg.host, a.ip())),
        Err(_) => {
            r.fail(&format!("host {} does not resolve", cfg.host), "check --host");
            return 1;
        }
    }
    for (what, port, flag) in [("component", cfg.component_port, "--port"), ("client", cfg.user_port, "--user_port")] {
        let addr = crate::net::resolve(&cfg.host, port).ok();
        match addr.map(|a| crate::net::probe_tcp(a, Duration::from_secs(3))) {
            Some(Ok(_)) => r.ok(&format!("Prosody answers on {}:{} ({})", cfg.host, port, what)),
            Some(Err(e)) => r.fail(
                &format!("nothing answers on {}:{} ({})", cfg.host, port, what),
                &format!("{}; is Prosody running, and is {} right?", e, flag),
            ),
            None => r.fail(&format!("cannot resolve {}", cfg.host), "check --host"),
        }
    }
    if r.failed {
        return 1;
    }
    let (tx, rx) = bounded(4096);
    let (el, net) = match EventLoop::new() {
        Ok(x) => x,
        Err(e) => {
            r.fail("event loop", &e.to_string());
            return 1;
        }
    };
    // Log in with a resource of our own so that a running focus is not kicked out.
    let mut specs = connection_specs(cfg);
    if let crate::net::Negotiation::Client(c) = &mut specs[CLIENT.0].negotiation {
        c.resource = format!("{}-check-{}", cfg.user_name, std::process::id());
    }
    let join = match el.spawn(specs, Box::new(CheckRouter { tx, security: LinkSecurity::Plain })) {
        Ok(j) => j,
        Err(e) => {
            r.fail("event loop", &e.to_string());
            return 1;
        }
    };
    let mut stash = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    match wait_conn(&rx, COMPONENT, deadline, &mut stash) {
        Ok(_) => r.ok(&format!("component {} accepted (secret is right)", cfg.component_jid())),
        Err(e) => r.fail(&format!("component {}", cfg.component_jid()), &e),
    }
    // Events of the client connection may have arrived meanwhile.
    let mut client = None;
    for ev in stash.drain(..) {
        match ev {
            Ev::Up(c, s) if c == CLIENT => client = Some(Ok(s)),
            Ev::Down(c, reason) if c == CLIENT => client = Some(Err(reason)),
            _ => {}
        }
    }
    let client = client.unwrap_or_else(|| wait_conn(&rx, CLIENT, Instant::now() + Duration::from_secs(5), &mut stash));
    let client_ok = match client {
        Ok(security) => {
            let how = if cfg.user_password.is_some() { "password" } else { "SASL ANONYMOUS" };
            r.ok(&login_line(&cfg.focus_bare_jid(), how, security, &cfg.host));
            true
        }
        Err(e) => {
            r.fail(&format!("focus user {} cannot log in", cfg.focus_bare_jid()), &e);
            false
        }
    };
    if client_ok {
        let disco = Element::new("iq", ns::CLIENT)
            .attr("type", "get")
            .attr("id", "check-muc")
            .attr("to", cfg.conference_muc.clone())
            .child(Element::new("query", ns::DISCO_INFO));
        match request(&net, &rx, disco, Duration::from_secs(3)) {
            Some(a) if a.get_attr("type") == Some("result") => {
                let is_muc = a
                    .get_child("query", ns::DISCO_INFO)
                    .is_some_and(|q| q.children_named("feature", ns::DISCO_INFO).any(|f| f.get_attr("var") == Some(ns::MUC)));
                if is_muc {
                    r.ok(&format!("MUC service {} answers disco", cfg.conference_muc))
                } else {
                    r.fail(&format!("{} is not a MUC service", cfg.conference_muc), "check --conference_muc and Prosody's Component \"conference.<domain>\" \"muc\"")
                }
            }
            Some(_) => r.fail(&format!("MUC service {} refused disco", cfg.conference_muc), "check --conference_muc and Prosody's Component \"conference.<domain>\" \"muc\""),
            None => r.fail(&format!("MUC service {} does not answer", cfg.conference_muc), "check --conference_muc"),
        }
        let nick = format!("focus-check-{}", std::process::id());
        let join = Element::new("presence", ns::CLIENT)
            .attr("to", cfg.bridge_muc.with_resource(&nick).to_string())
            .child(Element::new("x", ns::MUC));
        let _ = net.send(CLIENT, join);
        let mut joined = false;
        let mut bridges: Vec<(String, String)> = Vec::new();
        let until = Instant::now() + Duration::from_secs(2);
        while let Ok(ev) = rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            let Ev::Stanza(p) = ev else { continue };
            if p.name != "presence" {
                continue;
            }
            let Some(from) = p.get_attr("from").and_then(|f| Jid::parse(f).ok()) else { continue };
            if from.bare() != cfg.bridge_muc {
                continue;
            }
            if from.resource() == Some(nick.as_str()) {
                if p.get_attr("type") == Some("error") {
                    let c = crate::xmpp::stanza::parse_error(&p).map(|e| e.condition_name).unwrap_or_default();
                    r.fail(&format!("brewery {} cannot be joined ({})", cfg.bridge_muc, c), "check --bridge_muc and Prosody's internal MUC component");
                    break;
                }
                joined = true;
                continue;
            }
            if let Some(stats) = p.get_child("stats", ns::COLIBRI) {
                let stress = stats
                    .children_named("stat", ns::COLIBRI)
                    .find(|s| s.get_attr("name") == Some("stress_level"))
                    .and_then(|s| s.get_attr("value"))
                    .unwrap_or("?")
                    .to_string();
                bridges.push((from.resource().unwrap_or_default().to_string(), stress));
            }
        }
        if joined {
            let list: Vec<String> = bridges.iter().map(|(n, s)| format!("{} (stress {})", n, s)).collect();
            if bridges.is_empty() {
                r.fail(&format!("brewery {} joined, but no bridge is in it", cfg.bridge_muc), "start a videobridge that joins this brewery (or check --bridge_muc)");
            } else {
                r.ok(&format!("brewery {} joined: {} bridge(s): {}", cfg.bridge_muc, bridges.len(), list.join(", ")));
            }
            let leave = Element::new("presence", ns::CLIENT)
                .attr("to", cfg.bridge_muc.with_resource(&nick).to_string())
                .attr("type", "unavailable");
            let _ = net.send(CLIENT, leave);
        } else if !r.failed {
            r.fail(&format!("brewery {} did not answer the join", cfg.bridge_muc), "check --bridge_muc");
        }
    }
    net.shutdown();
    let _ = join.join();
    if r.failed {
        println!("some checks failed");
        1
    } else {
        println!("all checks passed");
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_line_says_what_protects_the_link() {
        let l = |s, host| login_line("focus@auth.meet.test", "password", s, host);
        assert_eq!(l(LinkSecurity::Verified, "meet.example.com"), "focus user focus@auth.meet.test logged in (password, TLS verified)");
        let insecure = l(LinkSecurity::Unverified, "meet.example.com");
        assert!(insecure.contains("not verified") && insecure.contains("--tls_insecure"), "{insecure}");
        for host in ["127.0.0.1", "localhost", "::1"] {
            let plain = l(LinkSecurity::Plain, host);
            assert!(plain.contains("no TLS") && plain.contains("loopback") && !plain.contains("verified"), "{plain}");
        }
        let plain = l(LinkSecurity::Plain, "meet.example.com");
        assert!(plain.contains("no TLS") && plain.contains("--tls_insecure"), "{plain}");
    }
}
