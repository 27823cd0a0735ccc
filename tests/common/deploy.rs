//! A whole deployment for end-to-end tests: a private Prosody, bridge simulators and
//! the real `jicofo` binary, plus scripted participants (anonymous XMPP clients that
//! ask for a conference, join the room and answer Jingle like lib-jitsi-meet).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jicofo::xml::{parse_fragment, Element};

use jicofo::xmpp::ns;

use super::client::TestClient;
use super::prosody::{Layout, Prosody};
use super::sim::Sim;

pub const T: Duration = Duration::from_secs(10);

/// Features a 2021 lib-jitsi-meet advertises (no JSON sources).
pub const FEATURES_2021: &[&str] = jicofo::xmpp::jingle::codecs::LIB_JITSI_MEET_2021_FEATURES;

/// A deployment under test.
pub struct Deployment {
    pub prosody: Prosody,
    pub sims: Vec<(String, Sim)>,
    pub jicofo: Option<Child>,
    pub rest_port: u16,
    pub log: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Deployment {
    /// Prosody and the given simulators `(nick, extra args)`; jicofo not started yet.
    pub fn prepare(name: &str, bridges: &[(&str, &[&str])]) -> Deployment {
        Deployment::prepare_layout(name, Layout::Seed, bridges)
    }

    /// Like `prepare`, with `focus.<domain>` declared as `layout` says (for the client_proxy
    /// layout Prosody has no component secret, so jicofo runs in client-only mode).
    pub fn prepare_layout(name: &str, layout: Layout, bridges: &[(&str, &[&str])]) -> Deployment {
        let prosody = Prosody::start_layout(name, layout);
        let mut sims = Vec::new();
        for (nick, args) in bridges {
            let rec = prosody.dir.join(format!("jvb-{}.jsonl", nick));
            sims.push((nick.to_string(), Sim::start_with(&prosody, nick, &rec, args)));
        }
        let log = prosody.dir.join("jicofo.log");
        Deployment { prosody, sims, jicofo: None, rest_port: free_port(), log }
    }

    /// Prosody, simulators and jicofo, waiting until jicofo is healthy (when bridges exist).
    pub fn start(name: &str, bridges: &[(&str, &[&str])]) -> Deployment {
        let mut d = Deployment::prepare(name, bridges);
        d.start_jicofo(&[]);
        d
    }

    /// Start jicofo with extra flags and wait until both connections are up.
    pub fn start_jicofo(&mut self, extra: &[&str]) {
        self.spawn_jicofo(extra, &[]);
        self.wait_up(Duration::from_secs(15));
    }

    /// Start jicofo with extra flags and environment overrides; does not wait.
    pub fn spawn_jicofo(&mut self, extra: &[&str], env: &[(&str, &str)]) {
        let p = &self.prosody;
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_jicofo"))
            .arg(format!("--domain={}", p.domain))
            .arg("--host=127.0.0.1")
            .arg(format!("--port={}", p.component_port))
            .arg(format!("--user_port={}", p.c2s_port))
            .arg(format!("--tls_ca_file={}", p.ca_file.display()))
            .arg(format!("--rest_port={}", self.rest_port))
            .args(extra)
            .env("JICOFO_SECRET", &p.focus_secret)
            .env("JICOFO_AUTH_PASSWORD", &p.focus_password)
            .env("RUST_LOG", std::env::var("JICOFO_TEST_LOG").unwrap_or_else(|_| "debug".into()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .envs(env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .spawn()
            .expect("jicofo starts");
        self.jicofo = Some(child);
    }

    /// Start jicofo with exactly `args` and `env` (no deployment flags, no JICOFO_*
    /// variables of the deployment): for configuration files. Does not wait.
    pub fn spawn_jicofo_raw(&mut self, args: &[String], env: &[(&str, &str)]) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_jicofo"));
        for (k, _) in std::env::vars() {
            if k.starts_with("JICOFO_") {
                cmd.env_remove(k);
            }
        }
        let child = cmd
            .args(args)
            .env("RUST_LOG", std::env::var("JICOFO_TEST_LOG").unwrap_or_else(|_| "debug".into()))
            .envs(env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("jicofo starts");
        self.jicofo = Some(child);
    }

    /// Wait until both connections are up and every simulator is in the brewery.
    /// `jicofo --check` against this deployment's Prosody (domain, host, both ports);
    /// the caller adds the secrets and any further flags.
    pub fn check_command(&self) -> std::process::Command {
        let p = &self.prosody;
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_jicofo"));
        cmd.arg(format!("--domain={}", p.domain))
            .arg("--host=127.0.0.1")
            .arg(format!("--port={}", p.component_port))
            .arg(format!("--user_port={}", p.c2s_port))
            .arg("--check");
        cmd
    }

    pub fn wait_up(&self, timeout: Duration) {
        assert!(self.try_wait_up(timeout), "jicofo did not come up; see {}", self.log.display());
    }

    /// Like `wait_up`, false on timeout.
    pub fn try_wait_up(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((_, body)) = self.http("GET", "/stats", None) {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let component = v["xmpp"]["component_connected"] == true || v["xmpp"]["mode"] == "client_only";
                let up = v["xmpp"]["client_connected"] == true && component;
                let bridges = v["bridge_selector"]["bridge_count"].as_u64().unwrap_or(0) as usize;
                if up && bridges >= self.sims.len() {
                    return true;
                }
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait until the jicofo log contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.jicofo_log().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A password user of the auth domain (`user1`, `user2`, `focus`).
    pub fn user(&self, name: &str) -> TestClient {
        let p = &self.prosody;
        let pw = match name {
            "focus" => p.focus_password.clone(),
            "jvb" => p.jvb_password.clone(),
            other => p.user_passwords.iter().find(|(u, _)| u == other).map(|(_, pw)| pw.clone()).expect("known user"),
        };
        TestClient::login(p.host(), p.c2s_port, &p.auth_domain(), name, &pw, "test", &p.ca_file)
    }

    /// A plain HTTP/1.0 request to jicofo's API: `(status, body)`.
    pub fn http(&self, method: &str, path: &str, body: Option<&str>) -> Option<(u16, String)> {
        self.http_within(method, path, body, Duration::from_secs(30))
    }

    /// Like `http`, `None` when no complete answer came within `timeout`.
    pub fn http_within(&self, method: &str, path: &str, body: Option<&str>, timeout: Duration) -> Option<(u16, String)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.rest_port)).ok()?;
        s.set_read_timeout(Some(timeout)).ok()?;
        let body = body.unwrap_or("");
        let req = format!(
            "{} {} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
            method,
            path,
            body.len(),
            body
        );
        s.write_all(req.as_bytes()).ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        let code = out.split(' ').nth(1)?.parse().ok()?;
        let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        Some((code, body))
    }

    /// The `/stats` JSON.
    pub fn stats(&self) -> serde_json::Value {
        let (_, body) = self.http("GET", "/stats", None).expect("stats");
        serde_json::from_str(&body).expect("stats JSON")
    }

    /// jicofo's pid while it runs.
    pub fn jicofo_pid(&self) -> Option<u32> {
        self.jicofo.as_ref().map(|c| c.id())
    }

    /// True while the jicofo process has not exited.
    pub fn jicofo_running(&mut self) -> bool {
        self.jicofo.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Start another simulator after the fact.
    pub fn add_sim(&mut self, nick: &str, args: &[&str]) {
        let rec = self.prosody.dir.join(format!("jvb-{}.jsonl", nick));
        let sim = Sim::start_with(&self.prosody, nick, &rec, args);
        self.sims.push((nick.to_string(), sim));
    }

    /// The simulator `nick`.
    pub fn sim(&mut self, nick: &str) -> &mut Sim {
        &mut self.sims.iter_mut().find(|(n, _)| n == nick).expect("sim").1
    }

    /// The colibri requests simulator `nick` received so far (parsed `conference-modify`s).
    pub fn colibri_received(&self, nick: &str) -> Vec<Element> {
        let path = self.prosody.dir.join(format!("jvb-{}.jsonl", nick));
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["dir"] == "in" && v["kind"] == "colibri")
            .filter_map(|v| parse_fragment(v["xml"].as_str()?).ok())
            .filter_map(|iq| iq.get_child("conference-modify", ns::COLIBRI2).cloned())
            .collect()
    }

    /// The answers simulator `nick` sent.
    pub fn colibri_sent(&self, nick: &str) -> Vec<Element> {
        let path = self.prosody.dir.join(format!("jvb-{}.jsonl", nick));
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["dir"] == "out" && v["kind"] == "colibri")
            .filter_map(|v| parse_fragment(v["xml"].as_str()?).ok())
            .collect()
    }

    /// Wait until `f` holds for the simulator's received requests.
    pub fn wait_colibri(&self, nick: &str, timeout: Duration, f: impl Fn(&[Element]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if f(&self.colibri_received(nick)) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A new anonymous participant.
    pub fn participant(&self, nick: &str, features: &[&str]) -> Participant {
        let p = &self.prosody;
        let mut c = TestClient::anonymous(p.host(), p.c2s_port, &p.domain, &p.ca_file);
        c.disco_features = Some(features.iter().map(|s| s.to_string()).collect());
        // Distinct SSRCs per participant (the captured answer is reused by everyone).
        let ssrc_base = nick.bytes().fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32)) % 1_000_000 * 1000;
        Participant { client: c, nick: nick.to_string(), room: String::new(), focus: p.focus_component(), ssrc_base }
    }

    /// jicofo's log so far.
    pub fn jicofo_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Send SIGTERM to jicofo and wait for its exit status.
    pub fn stop_jicofo(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.jicofo.take()?;
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(s)) = child.try_wait() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if let Some(mut c) = self.jicofo.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- jicofo log ({}) ---", self.log.display());
            let log = self.jicofo_log();
            let tail: Vec<&str> = log.lines().rev().take(80).collect();
            for l in tail.into_iter().rev() {
                eprintln!("{}", l);
            }
        }
    }
}

/// `jicofo --help`: the flags this build knows (tests pass optional flags only when known).
pub fn jicofo_help() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_jicofo")).arg("--help").output().expect("jicofo --help runs");
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// A `/proc/<pid>/status` field in its unit (kB for memory, a count for `Threads`).
pub fn proc_status(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{}/status", pid)).ok()?;
    s.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(':')?.split_whitespace().next()?.parse().ok())
}

/// A scripted participant.
pub struct Participant {
    pub client: TestClient,
    pub nick: String,
    pub room: String,
    pub focus: String,
    pub ssrc_base: u32,
}

impl Participant {
    /// Ask the focus for `room` until `ready='true'` (the answer's `<conference>`).
    pub fn request_conference(&mut self, room: &str) -> Element {
        self.room = room.to_string();
        let deadline = Instant::now() + T;
        loop {
            let iq = Element::new("iq", ns::CLIENT).attr("type", "set").attr("to", self.focus.clone()).child(
                Element::new("conference", ns::FOCUS)
                    .attr("room", room)
                    .attr("machine-uid", format!("m-{}", self.nick))
                    .child(Element::new("property", ns::FOCUS).attr("name", "disableRtx").attr("value", "false")),
            );
            let answer = self.client.iq(iq, T);
            assert_eq!(answer.get_attr("type"), Some("result"), "conference request refused: {}", answer);
            let c = answer.get_child("conference", ns::FOCUS).expect("conference in the answer").clone();
            if c.get_attr("ready") == Some("true") {
                return c;
            }
            assert!(Instant::now() < deadline, "never ready");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// One conference request for `room`: the raw answer (result or error), `None` when
    /// nothing came within `timeout`.
    pub fn ask_conference(&mut self, room: &str, timeout: Duration) -> Option<Element> {
        let id = self.client.new_id();
        let iq = Element::new("iq", ns::CLIENT)
            .attr("type", "set")
            .attr("id", id.clone())
            .attr("to", self.focus.clone())
            .child(Element::new("conference", ns::FOCUS).attr("room", room).attr("machine-uid", format!("m-{}", self.nick)));
        self.client.send(&iq);
        self.client.wait_for(timeout, |el| {
            el.name == "iq" && el.get_attr("id") == Some(id.as_str()) && matches!(el.get_attr("type"), Some("result") | Some("error"))
        })
    }

    /// Join the room (after a ready answer); returns the presences the room sent
    /// up to and including our own.
    pub fn join(&mut self) -> Vec<Element> {
        let me = format!("{}/{}", self.room, self.nick);
        let p = Element::new("presence", ns::CLIENT)
            .attr("to", me.clone())
            .child(Element::new("x", ns::MUC))
            .child(Element::new("stats-id", ns::CLIENT).text(format!("{}-stats", self.nick)));
        self.client.send(&p);
        let mut seen = Vec::new();
        let mut other = Vec::new();
        let deadline = Instant::now() + T;
        loop {
            let el = self.client.next(deadline.saturating_duration_since(Instant::now())).expect("own presence back from the room");
            if el.name != "presence" {
                other.push(el);
                continue;
            }
            let mine = el.get_attr("from") == Some(me.as_str());
            seen.push(el);
            if mine {
                for o in other {
                    self.client.push_back(o);
                }
                return seen;
            }
        }
    }

    /// Leave the room.
    pub fn leave(&mut self) {
        let p = Element::new("presence", ns::CLIENT)
            .attr("to", format!("{}/{}", self.room, self.nick))
            .attr("type", "unavailable");
        self.client.send(&p);
    }

    /// The next Jingle IQ from the focus with `action` (others are dropped); the IQ is acknowledged.
    pub fn expect_jingle(&mut self, action: &str, timeout: Duration) -> Option<Element> {
        let el = self.client.wait_for(timeout, |el| {
            el.name == "iq" && el.get_child("jingle", "urn:xmpp:jingle:1").is_some_and(|j| j.get_attr("action") == Some(action))
        })?;
        let r = jicofo::xmpp::stanza::iq_result(&el);
        self.client.send(&r);
        Some(el)
    }

    /// The captured lib-jitsi-meet session-accept for `initiate`, with our own SSRCs/msids.
    pub fn session_accept(&mut self, initiate: &Element, capture: &str) -> Element {
        let text = std::fs::read_to_string(format!("{}/tests/fixtures/captures/{}", env!("CARGO_MANIFEST_DIR"), capture)).unwrap();
        let mut iq = parse_fragment(&text).expect("capture parses");
        let sid = initiate.get_child("jingle", "urn:xmpp:jingle:1").unwrap().get_attr("sid").unwrap().to_string();
        iq.set_attr("to", initiate.get_attr("from").unwrap().to_string());
        iq.set_attr("id", self.client.new_id());
        let base = self.ssrc_base;
        let nick = self.nick.clone();
        rewrite(&mut iq, &|name, value| match name {
            "ssrc" => value.parse::<u64>().ok().map(|v| (((v + base as u64) % 4_000_000_000) + 1).to_string()),
            "sid" => Some(sid.clone()),
            "value" if value.contains("-audio-") || value.contains("-video-") => {
                Some(format!("{}-{}", nick, value.split_once('-').map(|(_, r)| r).unwrap_or(value)))
            }
            "name" if value.ends_with("-a0") || value.ends_with("-v0") => {
                Some(format!("{}-{}", nick, &value[value.len() - 2..]))
            }
            _ => None,
        });
        iq
    }

    /// Send `iq` and wait for its answer.
    pub fn request(&mut self, iq: Element) -> Element {
        self.client.iq(iq, T)
    }
}

/// Apply `f(attr name, value)` to every attribute in the tree.
fn rewrite(el: &mut Element, f: &dyn Fn(&str, &str) -> Option<String>) {
    for (k, v) in el.attrs.iter_mut() {
        if let Some(n) = f(k, v) {
            *v = n;
        }
    }
    for c in el.elements_mut() {
        rewrite(c, f);
    }
}
