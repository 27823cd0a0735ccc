//! `jicofo --check`: a deployment doctor. Runs the real connections once and prints
//! one line per step, each failure with what to fix; exit 0 when all pass, 1 otherwise.
//!
//! The first line says which mode the configuration selects ([`Mode`]) and why, then
//! which configuration files were read and which of their keys are ignored. Then:
//! the host resolves; Prosody answers on the ports that mode needs; in the seed's mode
//! the component secret is accepted; the focus user logs in (certificate trusted); in
//! client-only mode the `client_proxy` component answers for the focus user (an IQ
//! result sent through it comes back from it, which only a client_proxy whose
//! `target_address` is the focus user does) and forwards requests to it (a disco#info
//! round trip from an anonymous user of the domain, answered by a running focus or,
//! when none runs, by the check itself; skipped when the domain has no anonymous
//! login); the authentication authority's login domain, when one is configured, answers
//! disco; the conference MUC service answers disco; the brewery can be joined and how
//! many bridges are in it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::focus::connections::{client_tls_policy, connection_specs, is_loopback, KEEPALIVE};
use crate::config::{Config, Mode};
use crate::focus::{CLIENT, COMPONENT};
use crate::xmpp::disco;
use crate::jid::Jid;
use crate::net::{ConnId, ConnSpec, EventLoop, LinkSecurity, NetHandle, Negotiation, Outbox, Router};
use crate::xml::Element;
use crate::xmpp::ns;
use crate::xmpp::c2s::ClientConfig;
use crate::xmpp::stanza::{iq_error, iq_result, ErrorCondition};

enum Ev {
    Up(ConnId, Jid, LinkSecurity),
    Down(ConnId, String),
    Stanza(ConnId, Element),
}

struct CheckRouter {
    tx: Sender<Ev>,
    /// In client-only mode, the client_proxy whose forwarded IQs the check answers.
    proxy: Option<String>,
    /// Forwarded IQs the check answered itself (no running focus took them).
    answered: Arc<AtomicUsize>,
    /// What protects the link that comes up next (reported just before `connected`).
    security: LinkSecurity,
}

impl Router for CheckRouter {
    fn link_security(&mut self, _conn: ConnId, security: LinkSecurity) {
        self.security = security;
    }
    fn connected(&mut self, conn: ConnId, jid: &Jid, _out: &mut Outbox) {
        let _ = self.tx.try_send(Ev::Up(conn, jid.clone(), self.security));
    }
    fn disconnected(&mut self, conn: ConnId, reason: &str, _out: &mut Outbox) {
        let _ = self.tx.try_send(Ev::Down(conn, reason.to_string()));
    }
    fn stanza(&mut self, conn: ConnId, st: crate::xmpp::incoming::Incoming, out: &mut Outbox) {
        let el = st.into_element();
        // A request the proxy forwarded to the check's own resource: the disco probe is
        // answered as the focus would; anything else (a participant's request that the
        // proxy happened to route here) gets service-unavailable, which clients retry.
        if let (Some(proxy), true) = (&self.proxy, conn == CLIENT && el.name == "iq") {
            let from_proxy = el
                .get_attr("from")
                .and_then(|f| Jid::parse(f).ok())
                .is_some_and(|j| j.local().is_none() && j.resource().is_some() && j.domain().eq_ignore_ascii_case(proxy));
            if from_proxy && matches!(el.get_attr("type"), Some("get") | Some("set")) {
                self.answered.fetch_add(1, Ordering::Relaxed);
                let is_disco = el.get_attr("type") == Some("get") && el.get_child("query", ns::DISCO_INFO).is_some();
                let answer = if is_disco {
                    iq_result(&el).child(disco::info_query(None))
                } else {
                    iq_error(&el, ErrorCondition::ServiceUnavailable, Some("jicofo --check is running"))
                };
                out.send(conn, answer);
                return;
            }
        }
        let _ = self.tx.try_send(Ev::Stanza(conn, el));
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
    fn note(&mut self, what: &str) {
        println!("note  {}", what);
    }
    fn skip(&mut self, what: &str) {
        println!("skip  {}", what);
    }
}

/// The line for a focus user that logged in as `account` with `how` (password or
/// ANONYMOUS) over a link of `security`, to `host`: what actually protects it.
pub fn login_line(account: &str, how: &str, security: LinkSecurity, host: &str) -> String {
    let link = match security {
        LinkSecurity::Verified => "TLS verified".to_string(),
        LinkSecurity::Unverified => "TLS, certificate not verified: --tls_insecure".to_string(),
        LinkSecurity::Plain if is_loopback(host) => {
            format!("no TLS: the server offered no STARTTLS, allowed because {} is loopback", host)
        }
        LinkSecurity::Plain => "no TLS: the server offered no STARTTLS, allowed by --tls_insecure".to_string(),
    };
    format!("focus user {} logged in ({}, {})", account, how, link)
}

/// Connection events and stanzas of the check's event loop, with what arrived out of
/// the order the check asks for kept aside.
struct Events {
    rx: Receiver<Ev>,
    stash: Vec<Ev>,
}

impl Events {
    /// Wait until `conn` is up (its JID and link security) or failed (the reason).
    fn conn(&mut self, conn: ConnId, deadline: Instant) -> Result<(Jid, LinkSecurity), String> {
        if let Some(i) = self.stash.iter().position(|e| matches!(e, Ev::Up(c, _, _) | Ev::Down(c, _) if *c == conn)) {
            return match self.stash.remove(i) {
                Ev::Down(_, r) => Err(r),
                Ev::Up(_, j, s) => Ok((j, s)),
                Ev::Stanza(..) => unreachable!(),
            };
        }
        loop {
            match self.rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(Ev::Up(c, j, s)) if c == conn => return Ok((j, s)),
                Ok(Ev::Down(c, r)) if c == conn => return Err(r),
                Ok(Ev::Stanza(..)) => {}
                Ok(other) => self.stash.push(other),
                Err(_) => return Err("no answer within 5 s".into()),
            }
        }
    }

    /// The next stanza on `conn` that `want` accepts, within `timeout`.
    fn stanza(&mut self, conn: ConnId, timeout: Duration, want: impl Fn(&Element) -> bool) -> Option<Element> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(Ev::Stanza(c, el)) if c == conn && want(&el) => return Some(el),
                Ok(Ev::Stanza(..)) => {}
                Ok(other) => self.stash.push(other),
                Err(_) => return None,
            }
        }
    }

    /// Send `iq` on `conn` and wait for the answer with its id.
    fn request(&mut self, net: &NetHandle, conn: ConnId, iq: Element, timeout: Duration) -> Option<Element> {
        let id = iq.get_attr("id").unwrap_or_default().to_string();
        net.send(conn, iq).ok()?;
        self.stanza(conn, timeout, |el| el.name == "iq" && el.get_attr("id") == Some(id.as_str()))
    }
}

fn random_id(prefix: &str) -> String {
    format!("{}-{:016x}", prefix, rand::random::<u64>())
}

/// Run the checks; returns the exit status.
pub fn run(cfg: &Config) -> i32 {
    let mut r = Report { failed: false };
    match cfg.mode() {
        Mode::ComponentAndClient => r.ok(&format!(
            "mode: component {} + client {} (a component secret is set)",
            cfg.component_jid(),
            cfg.focus_bare_jid()
        )),
        Mode::ClientOnly => r.ok(&format!(
            "mode: client-only (no component secret): client {}, conference requests through the client_proxy {}",
            cfg.focus_bare_jid(),
            cfg.client_proxy
        )),
    }
    if !cfg.sources.files.is_empty() {
        let files: Vec<String> = cfg.sources.files.iter().map(|p| p.display().to_string()).collect();
        r.ok(&format!("configuration read from {}", files.join(", ")));
    }
    if !cfg.sources.ignored.is_empty() {
        r.note(&format!("ignored (no flag of this focus stands for them): {}", cfg.sources.ignored.join(", ")));
    }
    if let Some(a) = &cfg.authority {
        r.ok(&format!("authentication: {}", a));
    }
    match crate::net::resolve(&cfg.host, cfg.user_port) {
        Ok(a) => r.ok(&format!("host {} resolves to {}", cfg.host, a.ip())),
        Err(_) => {
            r.fail(&format!("host {} does not resolve", cfg.host), "check --host");
            return 1;
        }
    }
    let mut ports = vec![("client", cfg.user_port, "--user_port")];
    if cfg.mode() == Mode::ComponentAndClient {
        ports.insert(0, ("component", cfg.component_port, "--port"));
    }
    for (what, port, flag) in ports {
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
    if let Negotiation::Client(c) = &mut specs[CLIENT.0].negotiation {
        c.resource = format!("{}-check-{}", cfg.user_name, std::process::id());
    }
    // Client-only mode: an anonymous user of the domain, to send a request through the proxy.
    let anon = (cfg.mode() == Mode::ClientOnly).then(|| {
        specs.push(anonymous_spec(cfg));
        ConnId(specs.len() - 1)
    });
    let answered = Arc::new(AtomicUsize::new(0));
    let router = CheckRouter {
        tx,
        proxy: (cfg.mode() == Mode::ClientOnly).then(|| cfg.client_proxy.clone()),
        answered: answered.clone(),
        security: LinkSecurity::Plain,
    };
    let join = match el.spawn(specs, Box::new(router)) {
        Ok(j) => j,
        Err(e) => {
            r.fail("event loop", &e.to_string());
            return 1;
        }
    };
    let mut ev = Events { rx, stash: Vec::new() };
    if cfg.mode() == Mode::ComponentAndClient {
        match ev.conn(COMPONENT, Instant::now() + Duration::from_secs(5)) {
            Ok(_) => r.ok(&format!("component {} accepted (secret is right)", cfg.component_jid())),
            // Prosody checks the secret before refusing a second connection of the component.
            Err(e) if e.contains("Component already connected") => r.ok(&format!(
                "component {} accepted the secret; it is connected elsewhere (a running focus)",
                cfg.component_jid()
            )),
            Err(e) => r.fail(&format!("component {}", cfg.component_jid()), &e),
        }
    }
    let client = match ev.conn(CLIENT, Instant::now() + Duration::from_secs(5)) {
        Ok((jid, security)) => {
            let how = if cfg.user_password.is_some() { "password" } else { "SASL ANONYMOUS" };
            r.ok(&login_line(&cfg.focus_bare_jid(), how, security, &cfg.host));
            Some(jid)
        }
        Err(e) => {
            r.fail(&format!("focus user {} cannot log in", cfg.focus_bare_jid()), &e);
            None
        }
    };
    if let Some(own) = client {
        if let Some(anon) = anon {
            check_client_proxy(cfg, &net, &mut ev, &own, anon, &answered, &mut r);
        }
        if let Some(a) = &cfg.authority {
            check_login_domain(a, &net, &mut ev, &mut r);
        }
        check_muc_and_brewery(cfg, &net, &mut ev, &mut r);
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

/// An anonymous client of the main domain, as a web participant logs in.
fn anonymous_spec(cfg: &Config) -> ConnSpec {
    ConnSpec {
        name: "anonymous".into(),
        host: cfg.host.clone(),
        port: cfg.user_port,
        negotiation: Negotiation::Client(ClientConfig {
            domain: cfg.domain.clone(),
            username: None,
            password: None,
            resource: format!("jicofo-check-{}", std::process::id()),
            tls: client_tls_policy(&cfg.host, cfg.tls_insecure),
        }),
        tls: crate::net::TlsOptions { ca_file: cfg.tls_ca_file.clone(), insecure: cfg.tls_insecure },
        keepalive: KEEPALIVE,
        max_stanza: crate::xml::DEFAULT_MAX_STANZA,
        max_nodes: crate::xml::MAX_NODES,
        typed: false,
    }
}

/// Client-only mode: is `--client_proxy` a client_proxy for the focus user, and does it
/// forward a participant's request to it?
fn check_client_proxy(cfg: &Config, net: &NetHandle, ev: &mut Events, own: &Jid, anon: ConnId, answered: &AtomicUsize, r: &mut Report) {
    let proxy = &cfg.client_proxy;
    let fix = format!(
        "Prosody needs Component \"{}\" \"client_proxy\" with target_address = \"{}\" \
         (if {} is an external component with a secret instead, set JICOFO_SECRET)",
        proxy,
        cfg.focus_bare_jid(),
        proxy
    );
    // 1. An IQ result from the focus user to <proxy>/<anyone> is passed on by a client_proxy
    //    targeting the focus user, from its own JID: addressed to ourselves, it comes back.
    let id = random_id("check-proxy");
    let probe = Element::new("iq", ns::CLIENT).attr("type", "result").attr("id", id.clone()).attr("to", format!("{}/{}", proxy, own));
    let _ = net.send(CLIENT, probe);
    let back = ev.stanza(CLIENT, Duration::from_secs(3), |el| el.name == "iq" && el.get_attr("id") == Some(id.as_str()));
    match back {
        Some(el) if el.get_attr("type") == Some("result") && el.get_attr("from").is_some_and(|f| f.eq_ignore_ascii_case(proxy)) => {
            r.ok(&format!("{} is a client_proxy for {}", proxy, cfg.focus_bare_jid()))
        }
        Some(el) => {
            let cond = crate::xmpp::stanza::parse_error(&el).map(|e| e.condition_name).unwrap_or_else(|| "an unexpected answer".into());
            r.fail(&format!("{} is not a client_proxy for {} ({})", proxy, cfg.focus_bare_jid(), cond), &fix);
            return;
        }
        None => {
            r.fail(&format!("{} is not a client_proxy for {} (nothing came back)", proxy, cfg.focus_bare_jid()), &fix);
            return;
        }
    }
    // 2. A disco#info from an anonymous participant, through the proxy.
    if let Err(e) = ev.conn(anon, Instant::now() + Duration::from_secs(5)) {
        r.skip(&format!(
            "forwarding through {} not checked: no anonymous login on {} ({})",
            proxy,
            cfg.domain,
            e.lines().next().unwrap_or_default()
        ));
        return;
    }
    let disco = |id: &str| {
        Element::new("iq", ns::CLIENT).attr("type", "get").attr("id", id.to_string()).attr("to", proxy.clone()).child(Element::new("query", ns::DISCO_INFO))
    };
    let mut announced = false;
    for attempt in 0..2 {
        let id = random_id("check-forward");
        let answer = ev.request(net, anon, disco(&id), Duration::from_secs(3));
        let is_focus = |a: &Element| {
            a.get_child("query", ns::DISCO_INFO)
                .is_some_and(|q| q.children_named("feature", ns::DISCO_INFO).any(|f| f.get_attr("var") == Some(ns::FOCUS)))
        };
        match answer {
            Some(a) if a.get_attr("type") == Some("result") && is_focus(&a) => {
                // The proxy picks one of the resources it knows at random: the check's own
                // (it announces itself, and an installer's roster subscription does too) or a
                // running focus's.
                let by = if answered.load(Ordering::Relaxed) > 0 { "this check's own resource" } else { "the running focus" };
                r.ok(&format!("{} forwards a participant's request to {} (answered by {})", proxy, cfg.focus_bare_jid(), by));
                break;
            }
            Some(a) if attempt == 0 && crate::xmpp::stanza::parse_error(&a).is_some_and(|e| e.condition_name == "service-unavailable") => {
                // The proxy knows no resource of the focus user: no focus runs, and no roster
                // subscription brought it the check's presence. Announce the check's resource
                // as the focus does, and ask again.
                let _ = net.send(CLIENT, Element::new("presence", ns::CLIENT).attr("to", proxy.clone()));
                announced = true;
            }
            other => {
                let what = match &other {
                    Some(a) => crate::xmpp::stanza::parse_error(a).map(|e| e.condition_name).unwrap_or_else(|| "not the focus's answer".into()),
                    None => "no answer within 3 s".into(),
                };
                r.fail(&format!("{} does not forward requests to {} ({})", proxy, cfg.focus_bare_jid(), what), &fix);
                break;
            }
        }
    }
    if announced {
        let _ = net.send(CLIENT, Element::new("presence", ns::CLIENT).attr("to", proxy.clone()).attr("type", "unavailable"));
    }
}
/// Note a brewery member's presence in `bridges` (name, stress): a bridge sends a new
/// presence with each stats update, so the latest one counts, and one that leaves is gone.
fn note_bridge(bridges: &mut Vec<(String, String)>, from: &Jid, p: &Element) {
    let name = from.resource().unwrap_or_default().to_string();
    bridges.retain(|(n, _)| *n != name);
    if p.get_attr("type") == Some("unavailable") {
        return;
    }
    if let Some(stats) = p.get_child("stats", ns::COLIBRI) {
        let stress = stats
            .children_named("stat", ns::COLIBRI)
            .find(|s| s.get_attr("name") == Some("stress_level"))
            .and_then(|s| s.get_attr("value"))
            .unwrap_or("?")
            .to_string();
        bridges.push((name, stress));
    }
}


/// The authentication authority's domain is served by Prosody (a disco#info to it is
/// answered): users must be able to log in there (with a token under the JWT authority).
fn check_login_domain(a: &crate::auth::Authority, net: &NetHandle, ev: &mut Events, r: &mut Report) {
    let disco = Element::new("iq", ns::CLIENT)
        .attr("type", "get")
        .attr("id", random_id("check-auth"))
        .attr("to", a.domain.clone())
        .child(Element::new("query", ns::DISCO_INFO));
    let fix = if a.kind.is_external() {
        "check --jwt_auth_domain (login-url): it must be the VirtualHost where Prosody checks tokens"
    } else {
        "check --auth_domain (login-url): it must be a VirtualHost of Prosody where users log in"
    };
    match ev.request(net, CLIENT, disco, Duration::from_secs(3)) {
        Some(ans) if ans.get_attr("type") == Some("result") => r.ok(&format!("login domain {} answers disco", a.domain)),
        Some(_) => r.fail(&format!("login domain {} refused disco", a.domain), fix),
        None => r.fail(&format!("login domain {} does not answer", a.domain), fix),
    }
}

/// The conference MUC service answers disco; the brewery can be joined; its bridges.
fn check_muc_and_brewery(cfg: &Config, net: &NetHandle, ev: &mut Events, r: &mut Report) {
    let disco = Element::new("iq", ns::CLIENT)
        .attr("type", "get")
        .attr("id", "check-muc")
        .attr("to", cfg.conference_muc.clone())
        .child(Element::new("query", ns::DISCO_INFO));
    let muc_fix = "check --conference_muc and Prosody's Component \"conference.<domain>\" \"muc\"";
    match ev.request(net, CLIENT, disco, Duration::from_secs(3)) {
        Some(a) if a.get_attr("type") == Some("result") => {
            let is_muc = a
                .get_child("query", ns::DISCO_INFO)
                .is_some_and(|q| q.children_named("feature", ns::DISCO_INFO).any(|f| f.get_attr("var") == Some(ns::MUC)));
            if is_muc {
                r.ok(&format!("MUC service {} answers disco", cfg.conference_muc))
            } else {
                r.fail(&format!("{} is not a MUC service", cfg.conference_muc), muc_fix)
            }
        }
        Some(_) => r.fail(&format!("MUC service {} refused disco", cfg.conference_muc), muc_fix),
        None => r.fail(&format!("MUC service {} does not answer", cfg.conference_muc), "check --conference_muc"),
    }
    let nick = format!("focus-check-{}", std::process::id());
    let join = Element::new("presence", ns::CLIENT)
        .attr("to", cfg.bridge_muc.with_resource(&nick).to_string())
        .child(Element::new("x", ns::MUC));
    let _ = net.send(CLIENT, join);
    let mut joined = false;
    let mut refused = false;
    let mut bridges: Vec<(String, String)> = Vec::new();
    let until = Instant::now() + Duration::from_secs(2);
    while let Some(p) = ev.stanza(CLIENT, until.saturating_duration_since(Instant::now()), |el| el.name == "presence") {
        let Some(from) = p.get_attr("from").and_then(|f| Jid::parse(f).ok()) else { continue };
        if from.bare() != cfg.bridge_muc {
            continue;
        }
        if from.resource() == Some(nick.as_str()) {
            if p.get_attr("type") == Some("error") {
                let c = crate::xmpp::stanza::parse_error(&p).map(|e| e.condition_name).unwrap_or_default();
                r.fail(&format!("brewery {} cannot be joined ({})", cfg.bridge_muc, c), "check --bridge_muc and Prosody's internal MUC component");
                refused = true;
                break;
            }
            joined = true;
            continue;
        }
        note_bridge(&mut bridges, &from, &p);
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
    } else if !refused {
        r.fail(&format!("brewery {} did not answer the join", cfg.bridge_muc), "check --bridge_muc");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (Moved from the net loop test of a plain loopback client connection, which checks
    /// that the event loop reports `LinkSecurity::Plain`.)
    #[test]
    fn the_login_line_of_a_plain_loopback_link_says_so() {
        let line = login_line("focus@auth.test", "SASL ANONYMOUS", LinkSecurity::Plain, "127.0.0.1");
        assert!(line.contains("no TLS") && line.contains("loopback") && !line.contains("verified"), "{line}");
    }

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

    #[test]
    fn a_bridge_counts_once_with_its_latest_stats_and_not_after_it_left() {
        let jid = Jid::parse("jvbbrewery@internal.auth.meet.test/jvb1").unwrap();
        let presence = |stress: &str| {
            Element::new("presence", ns::CLIENT).attr("from", jid.to_string()).child(
                Element::new("stats", ns::COLIBRI).child(Element::new("stat", ns::COLIBRI).attr("name", "stress_level").attr("value", stress)),
            )
        };
        let mut bridges = Vec::new();
        note_bridge(&mut bridges, &jid, &presence("0.1"));
        note_bridge(&mut bridges, &jid, &presence("0.3"));
        assert_eq!(bridges, vec![("jvb1".to_string(), "0.3".to_string())]);
        note_bridge(&mut bridges, &jid, &Element::new("presence", ns::CLIENT).attr("type", "unavailable"));
        assert!(bridges.is_empty());
    }
}
