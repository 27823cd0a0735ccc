//! `jicofo-load`: a **load generator** (test tool) for the focus benchmark
//! (`scripts/bench.sh`). Not part of the focus.
//!
//! It opens one anonymous XMPP connection per participant to a private Prosody on
//! 127.0.0.1 (all of them in ONE mio event loop thread, through the crate's own
//! non-blocking client machinery, so the generator costs little CPU next to Prosody
//! and jicofo on a 2-core machine), waits until every one is logged in, then starts
//! the clock and lets each participant, at its scheduled time, behave like
//! lib-jitsi-meet: the conference request to the focus (until `ready='true'`), the
//! MUC join with caps, disco#info answers, and the Jingle `session-accept` captured
//! from lib-jitsi-meet (ICE, DTLS, simulcast + RTX sources) with unique SSRCs and
//! msids per participant, sent as soon as the `session-initiate` arrives. Every
//! Jingle IQ is acknowledged.
//!
//! Recorded per participant: conference request → `ready`; join → `session-initiate`
//! (from the later of its own join and the room's second join, since the focus
//! invites nobody before two are in); and when it knew the sources of every other
//! participant of its room (from the offer and source-adds), measured from the
//! room's last join. Around the run (from the first scheduled request until every
//! participant knows everyone, plus a settle time) it samples the CPU time of the
//! given processes (`/proc/<pid>/stat` utime+stime), jicofo's peak RSS (VmHWM) and
//! thread count, and jicofo's `/stats` (stanzas sent, focus-added time).
//!
//! ```text
//! jicofo-load --port C2S --rooms 200 --per-room 5 --window 10 \
//!             --jicofo-pid P --prosody-pid Q --rest-port 8888 --name storm --out storm.json
//! jicofo-load --table storm.json large.json idle.json [--out all.json]
//! ```

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, Sender};
use jicofo::jid::Jid;
use jicofo::net::{ConnId, ConnSpec, EventLoop, Negotiation, Outbox, Router, TlsOptions};
use jicofo::xml::{ns, parse_fragment, Element};
use jicofo::xmpp::c2s::{ClientConfig, TlsPolicy};
use jicofo::xmpp::stanza::{iq_error, iq_result, ErrorCondition};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// Features a 2021 lib-jitsi-meet advertises (no JSON sources, no ssrc-rewriting).
const FEATURES: &[&str] = jicofo::media::codecs::LIB_JITSI_MEET_2021_FEATURES;
/// Compact JSON source signaling (newer lib-jitsi-meet), with --json-sources.
const FEATURE_JSON_SOURCES: &str = "http://jitsi.org/json-encoded-sources";
/// The caps `ver` of the captured lib-jitsi-meet join presence.
const CAPS_VER: &str = "/LxjVAUjW56LWSj9lRquSYt35Ho=";
/// Incoming stanzas can be large: an offer in a 500-participant room carries ~3500 sources.
const MAX_STANZA: usize = 64 * 1024 * 1024;
/// Retry delay of a conference request answered `ready='false'`.
const NOT_READY_RETRY: Duration = Duration::from_millis(500);

#[derive(Default, Clone)]
struct Participant {
    nick: String,
    room: usize,
    /// Offset of the conference request from the start of the clock.
    start: Duration,
    jid: Option<String>,
    requested: bool,
    t_req: Option<Instant>,
    t_ready: Option<Instant>,
    t_join: Option<Instant>,
    /// Own presence back from the room.
    t_in_room: Option<Instant>,
    t_si: Option<Instant>,
    t_all: Option<Instant>,
    /// Indices of room-mates whose sources this participant has seen.
    known: HashSet<usize>,
    accepted: bool,
    errors: u32,
}

struct Room {
    jid: String,
    members: Vec<usize>,
}

enum ToMain {
    AllConnected,
    Done { parts: Vec<Participant>, t0: Instant, end: Instant, errors: Vec<String> },
}

struct LoadRouter {
    parts: Vec<Participant>,
    rooms: Vec<Room>,
    focus: String,
    template: Element,
    /// Participant indices in start order.
    order: Vec<usize>,
    next: usize,
    retries: Vec<(Instant, usize)>,
    connected: usize,
    t0: Option<Instant>,
    deadline: Option<Instant>,
    complete: usize,
    done: bool,
    to_main: Sender<ToMain>,
    from_main: Receiver<()>,
    errors: Vec<String>,
    /// Start each participant once the previous one is in the room (no schedule).
    closed_loop: bool,
    features: Vec<&'static str>,
}

fn nick_index(nick: &str) -> Option<usize> {
    nick.strip_prefix('p')?.parse().ok()
}

impl LoadRouter {
    fn error(&mut self, i: usize, what: String) {
        self.parts[i].errors += 1;
        if self.errors.len() < 20 {
            self.errors.push(format!("{}: {}", self.parts[i].nick, what));
        }
    }

    fn request(&mut self, i: usize, now: Instant, out: &mut Outbox) {
        let p = &mut self.parts[i];
        p.requested = true;
        if p.t_req.is_none() {
            p.t_req = Some(now);
        }
        let room = &self.rooms[p.room].jid;
        let iq = Element::new("iq", ns::CLIENT)
            .attr("type", "set")
            .attr("id", format!("conf-{}", i))
            .attr("to", self.focus.clone())
            .child(
                Element::new("conference", ns::FOCUS)
                    .attr("room", room.clone())
                    .attr("machine-uid", format!("machine-{}", p.nick))
                    .child(Element::new("property", ns::FOCUS).attr("name", "disableRtx").attr("value", "false"))
                    .child(Element::new("property", ns::FOCUS).attr("name", "rtcstatsEnabled").attr("value", "false"))
                    .child(Element::new("property", ns::FOCUS).attr("name", "callstatsEnabled").attr("value", "false")),
            );
        out.send(ConnId(i), iq);
    }

    fn join(&mut self, i: usize, now: Instant, out: &mut Outbox) {
        let p = &mut self.parts[i];
        p.t_join = Some(now);
        let pres = Element::new("presence", ns::CLIENT)
            .attr("to", format!("{}/{}", self.rooms[p.room].jid, p.nick))
            .child(Element::new("x", ns::MUC))
            .child(Element::new("stats-id", ns::CLIENT).text(format!("{}-stats", p.nick)))
            .child(
                Element::new("c", ns::CAPS)
                    .attr("hash", "sha-1")
                    .attr("node", "https://jitsi.org/jitsi-meet")
                    .attr("ver", CAPS_VER),
            )
            .child(Element::new("jitsi_participant_codecType", ns::CLIENT).text("vp8"));
        out.send(ConnId(i), pres);
    }

    /// Owners of the sources in a Jingle element (`ssrc-info owner` or the keys of a
    /// `json-message`: endpoint ids).
    fn learn(&mut self, i: usize, jingle: &Element, now: Instant) {
        let room = self.parts[i].room;
        if let Some(j) = jingle.get_child("json-message", ns::JITMEET) {
            let v: Value = serde_json::from_str(&j.text_content()).unwrap_or_default();
            if let Some(owners) = v["sources"].as_object() {
                for owner in owners.keys() {
                    if let Some(k) = nick_index(owner.rsplit('/').next().unwrap_or(owner)) {
                        if k != i && k < self.parts.len() && self.parts[k].room == room {
                            self.parts[i].known.insert(k);
                        }
                    }
                }
            }
        }
        for c in jingle.elements().filter(|c| c.name == "content") {
            for d in c.elements().filter(|d| d.name == "description") {
                for s in d.elements().filter(|s| s.name == "source") {
                    let Some(owner) = s.get_child("ssrc-info", ns::JITMEET).and_then(|x| x.get_attr("owner")) else {
                        continue;
                    };
                    let nick = owner.rsplit('/').next().unwrap_or(owner);
                    if let Some(j) = nick_index(nick) {
                        if j != i && j < self.parts.len() && self.parts[j].room == room {
                            self.parts[i].known.insert(j);
                        }
                    }
                }
            }
        }
        let p = &mut self.parts[i];
        if p.t_all.is_none() && p.t_si.is_some() && p.known.len() + 1 >= self.rooms[room].members.len() {
            p.t_all = Some(now);
            self.complete += 1;
        }
    }

    /// The captured session-accept with this participant's SSRCs, msids, sid and JIDs.
    fn session_accept(&self, i: usize, si: &Element, sid: &str) -> Element {
        let p = &self.parts[i];
        let mut iq = self.template.clone();
        let focus = si.get_attr("from").unwrap_or_default().to_string();
        iq.set_attr("to", focus.clone());
        iq.set_attr("id", format!("acc-{}", i));
        if let Some(j) = iq.get_child_mut("jingle", ns::JINGLE) {
            j.set_attr("initiator", focus);
            j.set_attr("responder", p.jid.clone().unwrap_or_default());
        }
        // The capture's 7 SSRCs are ≥13 M apart: offsets of 16·i keep every one unique.
        let offset = (i as u64) * 16;
        rewrite(&mut iq, &|name, value| match name {
            "ssrc" => value.parse::<u64>().ok().map(|v| (((v + offset) % 4_000_000_000) + 1).to_string()),
            "sid" => Some(sid.to_string()),
            "value" if value.contains("-audio-") || value.contains("-video-") => {
                // "<stream>-video-1 <track>": stream and track ids unique per participant.
                let (stream, track) = value.split_once(' ').unwrap_or((value, ""));
                let kind = stream.split_once('-').map(|(_, r)| r).unwrap_or(stream);
                Some(format!("{}-{} {}-{}", p.nick, kind, p.nick, track.rsplit('-').next().unwrap_or("1")))
            }
            // Source names are `<endpoint>-a0` / `-v0` (the focus refuses others' names).
            "name" if value.ends_with("-a0") || value.ends_with("-v0") => {
                Some(format!("{}-{}", p.nick, &value[value.len() - 2..]))
            }
            _ => None,
        });
        iq
    }

    fn on_iq(&mut self, i: usize, el: Element, now: Instant, out: &mut Outbox) {
        let ty = el.get_attr("type").unwrap_or("");
        let id = el.get_attr("id").unwrap_or("").to_string();
        match ty {
            "result" | "error" => {
                if id == format!("conf-{}", i) {
                    if ty == "error" {
                        self.error(i, format!("conference request refused: {}", el));
                        self.retries.push((now + Duration::from_secs(1), i));
                        return;
                    }
                    let ready = el.get_child("conference", ns::FOCUS).and_then(|c| c.get_attr("ready")) == Some("true");
                    if ready {
                        if self.parts[i].t_ready.is_none() {
                            self.parts[i].t_ready = Some(now);
                            self.join(i, now, out);
                        }
                    } else {
                        self.retries.push((now + NOT_READY_RETRY, i));
                    }
                } else if id.starts_with("acc-") {
                    if ty == "error" {
                        self.error(i, format!("session-accept refused: {}", el));
                    } else {
                        self.parts[i].accepted = true;
                    }
                }
            }
            "get" if el.get_child("ping", ns::PING).is_some() => out.send(ConnId(i), iq_result(&el)),
            "get" if el.get_child("query", ns::DISCO_INFO).is_some() => {
                let node = el.get_child("query", ns::DISCO_INFO).and_then(|q| q.get_attr("node")).map(str::to_string);
                let mut q = Element::new("query", ns::DISCO_INFO).attr_opt("node", node);
                q = q.child(Element::new("identity", ns::DISCO_INFO).attr("category", "client").attr("type", "web").attr("name", "jicofo-load"));
                for f in &self.features {
                    q = q.child(Element::new("feature", ns::DISCO_INFO).attr("var", *f));
                }
                out.send(ConnId(i), iq_result(&el).child(q));
            }
            "set" if el.get_child("jingle", ns::JINGLE).is_some() => {
                out.send(ConnId(i), iq_result(&el));
                let j = el.get_child("jingle", ns::JINGLE).expect("checked");
                match j.get_attr("action") {
                    Some("session-initiate") => {
                        let sid = j.get_attr("sid").unwrap_or_default().to_string();
                        if self.parts[i].t_si.is_none() {
                            self.parts[i].t_si = Some(now);
                        }
                        self.learn(i, j, now);
                        let acc = self.session_accept(i, &el, &sid);
                        out.send(ConnId(i), acc);
                    }
                    Some("source-add") => self.learn(i, j, now),
                    Some("session-terminate") => self.error(i, format!("session terminated: {}", j)),
                    _ => {}
                }
            }
            "get" | "set" => out.send(ConnId(i), iq_error(&el, ErrorCondition::FeatureNotImplemented, None)),
            _ => {}
        }
    }

    fn check_done(&mut self, now: Instant) {
        if self.done {
            return;
        }
        let all = self.complete == self.parts.len();
        if all || self.deadline.is_some_and(|d| now >= d) {
            self.done = true;
            let _ = self.to_main.send(ToMain::Done {
                parts: self.parts.clone(),
                t0: self.t0.unwrap_or(now),
                end: now,
                errors: std::mem::take(&mut self.errors),
            });
        }
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

impl Router for LoadRouter {
    fn connected(&mut self, conn: ConnId, jid: &Jid, _out: &mut Outbox) {
        if let Some(p) = self.parts.get_mut(conn.0) {
            if p.jid.is_none() {
                self.connected += 1;
            }
            p.jid = Some(jid.to_string());
            if self.connected == self.parts.len() {
                let _ = self.to_main.send(ToMain::AllConnected);
            }
        }
    }

    fn disconnected(&mut self, conn: ConnId, reason: &str, _out: &mut Outbox) {
        if !self.done {
            self.error(conn.0, format!("disconnected: {}", reason));
        }
    }

    fn stanza(&mut self, conn: ConnId, el: Element, out: &mut Outbox) {
        let now = Instant::now();
        let i = conn.0;
        if i >= self.parts.len() {
            return;
        }
        if el.name == "iq" {
            self.on_iq(i, el, now, out);
        } else if el.name == "presence" && self.parts[i].t_in_room.is_none() && el.get_attr("type").is_none() {
            let me = format!("{}/{}", self.rooms[self.parts[i].room].jid, self.parts[i].nick);
            if el.get_attr("from") == Some(me.as_str()) {
                self.parts[i].t_in_room = Some(now);
                if self.closed_loop && self.next < self.order.len() && self.order[self.next - 1] == i {
                    let j = self.order[self.next];
                    self.next += 1;
                    self.request(j, now, out);
                }
            }
        }
        self.check_done(now);
    }

    fn tick(&mut self, now: Instant, out: &mut Outbox) {
        if self.t0.is_none() {
            if self.from_main.try_recv().is_ok() {
                self.t0 = Some(now);
                let last = if self.closed_loop { Duration::ZERO } else { self.order.last().map(|&i| self.parts[i].start).unwrap_or_default() };
                self.deadline = Some(now + last + timeout_after_last());
            } else {
                return;
            }
        }
        let t0 = self.t0.expect("set");
        if self.closed_loop {
            if self.next == 0 && !self.order.is_empty() {
                self.next = 1;
                self.request(self.order[0], now, out);
            }
        }
        while !self.closed_loop && self.next < self.order.len() && t0 + self.parts[self.order[self.next]].start <= now {
            let i = self.order[self.next];
            self.next += 1;
            self.request(i, now, out);
        }
        let due: Vec<usize> = self.retries.iter().filter(|(t, _)| *t <= now).map(|(_, i)| *i).collect();
        self.retries.retain(|(t, _)| *t > now);
        for i in due {
            self.request(i, now, out);
        }
        self.check_done(now);
    }

    fn next_deadline(&self) -> Option<Instant> {
        let t0 = self.t0?;
        let mut d = self.deadline;
        if self.closed_loop {
            return d;
        }
        if let Some(&i) = self.order.get(self.next) {
            let t = t0 + self.parts[i].start;
            d = Some(d.map_or(t, |x| x.min(t)));
        }
        for (t, _) in &self.retries {
            d = Some(d.map_or(*t, |x| x.min(*t)));
        }
        d
    }
}

static TIMEOUT_AFTER_LAST: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
fn timeout_after_last() -> Duration {
    *TIMEOUT_AFTER_LAST.get().unwrap_or(&Duration::from_secs(60))
}

// ------------------------------------------------------------------------------------
// process and HTTP sampling

/// utime+stime of `pid` in seconds (USER_HZ = 100 on Linux).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{}/stat", pid)).ok()?;
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ")": state is field 3, utime 14, stime 15 (1-based in proc(5)).
    let ut: f64 = f.get(11)?.parse().ok()?;
    let st: f64 = f.get(12)?.parse().ok()?;
    Some((ut + st) / 100.0)
}

/// A `/proc/<pid>/status` field in its unit (kB for memory).
fn status_field(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{}/status", pid)).ok()?;
    s.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(':')?.split_whitespace().next()?.parse().ok())
}

fn http_stats(port: u16) -> Option<Value> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(b"GET /stats HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    serde_json::from_str(out.split("\r\n\r\n").nth(1)?).ok()
}

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn dist(mut v: Vec<f64>) -> Value {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let r = |x: Option<f64>| x.map(|x| (x * 10.0).round() / 10.0);
    json!({ "n": v.len(), "p50": r(percentile(&v, 0.5)), "p99": r(percentile(&v, 0.99)), "max": r(v.last().copied()) })
}

fn ms(a: Instant, b: Instant) -> f64 {
    b.saturating_duration_since(a).as_secs_f64() * 1000.0
}

// ------------------------------------------------------------------------------------
// command line

struct Opts {
    name: String,
    host: String,
    port: u16,
    domain: String,
    rooms: usize,
    per_room: usize,
    window: f64,
    rate: f64,
    hold: f64,
    settle: f64,
    capture: PathBuf,
    pids: Vec<(String, u32)>,
    jicofo_pid: Option<u32>,
    rest_port: Option<u16>,
    out: Option<PathBuf>,
    seed: u64,
    closed_loop: bool,
    json_sources: bool,
}

fn usage(o: &getopts::Options) -> String {
    o.usage("Usage: jicofo-load [options]   (a load generator: test tool)\n       jicofo-load --table A.json B.json ... [--out ALL.json]")
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut o = getopts::Options::new();
    o.optopt("", "name", "scenario name", "NAME");
    o.optopt("", "host", "Prosody address (loopback only)", "127.0.0.1");
    o.optopt("", "port", "Prosody c2s port", "PORT");
    o.optopt("", "domain", "anonymous XMPP domain", "meet.test");
    o.optopt("", "rooms", "rooms", "N");
    o.optopt("", "per-room", "participants per room", "M");
    o.optopt("", "window", "conference requests spread uniformly at random over SECS", "SECS");
    o.optopt("", "rate", "conference requests one after another at R per second", "R");
    o.optflag("", "closed-loop", "start each participant as soon as the previous one is in the room (as fast as Prosody lets them in); --timeout then counts from the start");
    o.optflag("", "json-sources", "also advertise http://jitsi.org/json-encoded-sources (a newer lib-jitsi-meet): sources arrive as JSON");
    o.optopt("", "hold", "with --rooms 0: measure the idle focus for SECS", "SECS");
    o.optopt("", "settle", "keep answering this long after completion before the last sample (default 1)", "SECS");
    o.optopt("", "timeout", "give up this long after the last scheduled request (default 60)", "SECS");
    o.optopt("", "capture", "session-accept to answer with", "FILE");
    o.optmulti("", "pid", "a process to measure (CPU)", "NAME=PID");
    o.optopt("", "jicofo-pid", "jicofo's pid (CPU, VmHWM, threads)", "PID");
    o.optopt("", "rest-port", "jicofo's HTTP API port (/stats)", "PORT");
    o.optopt("", "out", "write the JSON result here", "FILE");
    o.optopt("", "seed", "random seed of the schedule", "N");
    o.optflag("", "table", "print the table of result files given as arguments");
    o.optflag("h", "help", "this help");
    let m = match o.parse(&args) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("jicofo-load: {}\n{}", e, usage(&o));
            std::process::exit(2);
        }
    };
    if m.opt_present("h") {
        println!("{}", usage(&o));
        return;
    }
    if m.opt_present("table") {
        std::process::exit(table(&m.free, m.opt_str("out").map(PathBuf::from)));
    }
    let num = |k: &str, d: f64| -> f64 {
        m.opt_str(k).map(|v| v.parse().unwrap_or_else(|_| die(&format!("--{}: not a number: {}", k, v)))).unwrap_or(d)
    };
    let host = m.opt_str("host").unwrap_or_else(|| "127.0.0.1".into());
    match host.parse::<IpAddr>() {
        Ok(ip) if ip.is_loopback() => {}
        _ => die("--host must be a loopback address (this tool only loads a private local Prosody)"),
    }
    let mut pids = Vec::new();
    for p in m.opt_strs("pid") {
        let (k, v) = p.split_once('=').unwrap_or_else(|| die("--pid NAME=PID"));
        pids.push((k.to_string(), v.parse().unwrap_or_else(|_| die("--pid NAME=PID"))));
    }
    let _ = TIMEOUT_AFTER_LAST.set(Duration::from_secs_f64(num("timeout", 60.0)));
    let opts = Opts {
        name: m.opt_str("name").unwrap_or_else(|| "run".into()),
        host,
        port: m.opt_str("port").and_then(|p| p.parse().ok()).unwrap_or_else(|| die("--port is required")),
        domain: m.opt_str("domain").unwrap_or_else(|| "meet.test".into()),
        rooms: num("rooms", 1.0) as usize,
        per_room: num("per-room", 2.0) as usize,
        window: num("window", 0.0),
        rate: num("rate", 0.0),
        hold: num("hold", 10.0),
        settle: num("settle", 1.0),
        capture: m
            .opt_str("capture")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/captures/lyno-session-accept.xml"))),
        pids,
        jicofo_pid: m.opt_str("jicofo-pid").and_then(|p| p.parse().ok()),
        rest_port: m.opt_str("rest-port").and_then(|p| p.parse().ok()),
        out: m.opt_str("out").map(PathBuf::from),
        seed: num("seed", 1.0) as u64,
        closed_loop: m.opt_present("closed-loop"),
        json_sources: m.opt_present("json-sources"),
    };
    let result = run(&opts);
    let text = serde_json::to_string_pretty(&result).unwrap();
    if let Some(p) = &opts.out {
        std::fs::write(p, format!("{}\n", text)).unwrap_or_else(|e| die(&format!("{}: {}", p.display(), e)));
    } else {
        println!("{}", text);
    }
}

fn die(msg: &str) -> ! {
    eprintln!("jicofo-load: {}", msg);
    std::process::exit(2);
}

/// CPU seconds of every measured process (jicofo, the --pid ones, ourselves).
fn cpu_all(o: &Opts) -> Vec<(String, Option<f64>)> {
    let mut v = Vec::new();
    if let Some(p) = o.jicofo_pid {
        v.push(("jicofo".to_string(), cpu_seconds(p)));
    }
    for (n, p) in &o.pids {
        v.push((n.clone(), cpu_seconds(*p)));
    }
    v.push(("load".to_string(), cpu_seconds(std::process::id())));
    v
}

fn run(o: &Opts) -> Value {
    let n = o.rooms * o.per_room;
    let started = Instant::now();
    let mut threads_peak = 0u64;
    let sample = |threads_peak: &mut u64| {
        if let Some(t) = o.jicofo_pid.and_then(|p| status_field(p, "Threads")) {
            *threads_peak = (*threads_peak).max(t);
        }
    };
    if n == 0 {
        // Idle: nothing but the focus, its bridge and Prosody.
        let stats0 = o.rest_port.and_then(http_stats);
        let cpu0 = cpu_all(o);
        let t0 = Instant::now();
        while t0.elapsed().as_secs_f64() < o.hold {
            sample(&mut threads_peak);
            std::thread::sleep(Duration::from_millis(100));
        }
        return finish(o, &[], &[], t0, Instant::now(), stats0, cpu0, threads_peak, Vec::new());
    }
    let text = std::fs::read_to_string(&o.capture).unwrap_or_else(|e| die(&format!("{}: {}", o.capture.display(), e)));
    let template = parse_fragment(&text).unwrap_or_else(|e| die(&format!("{}: {}", o.capture.display(), e)));
    let run_id: u32 = rand::random::<u32>() % 100_000;
    let mut rm: Vec<Room> = (0..o.rooms)
        .map(|r| Room { jid: format!("load{}-{}@conference.{}", run_id, r, o.domain), members: Vec::new() })
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(o.seed);
    let ps: Vec<Participant> = (0..n)
        .map(|i| {
            let room = i % o.rooms;
            rm[room].members.push(i);
            let start = if o.rate > 0.0 {
                Duration::from_secs_f64(i as f64 / o.rate)
            } else if o.window > 0.0 {
                Duration::from_secs_f64(rng.gen_range(0.0..o.window))
            } else {
                Duration::ZERO
            };
            Participant { nick: format!("p{:06}", i), room, start, ..Default::default() }
        })
        .collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| ps[i].start);
    let specs: Vec<ConnSpec> = (0..n)
        .map(|i| ConnSpec {
            name: format!("p{}", i),
            host: o.host.clone(),
            port: o.port,
            negotiation: Negotiation::Client(ClientConfig {
                domain: o.domain.clone(),
                username: None,
                password: None,
                resource: "load".into(),
                // As behind nginx: Prosody itself does no client TLS in a Jitsi deployment.
                tls: TlsPolicy::Disabled,
            }),
            tls: TlsOptions::default(),
            keepalive: Duration::from_secs(3600),
            max_stanza: MAX_STANZA,
        })
        .collect();
    let (to_main, from_loop) = unbounded();
    let (go_tx, go_rx) = unbounded();
    let rooms: Vec<Vec<usize>> = rm.iter().map(|r| r.members.clone()).collect();
    let router = LoadRouter {
        parts: ps,
        rooms: rm,
        focus: format!("focus.{}", o.domain),
        template,
        order,
        next: 0,
        retries: Vec::new(),
        connected: 0,
        t0: None,
        deadline: None,
        complete: 0,
        done: false,
        to_main,
        from_main: go_rx,
        errors: Vec::new(),
        closed_loop: o.closed_loop,
        features: {
            let mut f = FEATURES.to_vec();
            if o.json_sources {
                f.push(FEATURE_JSON_SOURCES);
            }
            f
        },
    };
    let (el, net) = EventLoop::new().unwrap_or_else(|e| die(&format!("event loop: {}", e)));
    let join = el.spawn(specs, Box::new(router)).unwrap_or_else(|e| die(&format!("event loop: {}", e)));
    // Log everyone in first (not measured).
    loop {
        match from_loop.recv_timeout(Duration::from_secs(60)) {
            Ok(ToMain::AllConnected) => break,
            Ok(_) => {}
            Err(_) => die("participants did not all log in within 60 s"),
        }
    }
    eprintln!("jicofo-load {}: {} participants logged in ({:.1} s); starting", o.name, n, started.elapsed().as_secs_f64());
    let stats0 = o.rest_port.and_then(http_stats);
    let cpu0 = cpu_all(o);
    let _ = go_tx.send(());
    net.wake();
    let (parts, t0, end, errors) = loop {
        sample(&mut threads_peak);
        match from_loop.recv_timeout(Duration::from_millis(50)) {
            Ok(ToMain::Done { parts, t0, end, errors }) => break (parts, t0, end, errors),
            Ok(_) => {}
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(_) => die("the event loop stopped"),
        }
    };
    // Trailing work (acks, colibri updates) belongs to the run.
    let settle_until = Instant::now() + Duration::from_secs_f64(o.settle);
    while Instant::now() < settle_until {
        sample(&mut threads_peak);
        std::thread::sleep(Duration::from_millis(50));
    }
    // Measure before closing the streams (the leaves are not part of the run).
    let r = finish(o, &parts, &rooms, t0, end, stats0, cpu0, threads_peak, errors);
    net.shutdown();
    let _ = join.join();
    r
}

#[allow(clippy::too_many_arguments)]
fn finish(
    o: &Opts,
    parts: &[Participant],
    rooms: &[Vec<usize>],
    t0: Instant,
    end: Instant,
    stats0: Option<Value>,
    cpu0: Vec<(String, Option<f64>)>,
    mut threads_peak: u64,
    errors: Vec<String>,
) -> Value {
    let cpu1 = cpu_all(o);
    let stats1 = o.rest_port.and_then(http_stats);
    let (hwm, threads_now) = match o.jicofo_pid {
        Some(p) => (status_field(p, "VmHWM"), status_field(p, "Threads")),
        None => (None, None),
    };
    threads_peak = threads_peak.max(threads_now.unwrap_or(0));
    let mut cpu = serde_json::Map::new();
    for ((name, a), (_, b)) in cpu0.iter().zip(cpu1.iter()) {
        if let (Some(a), Some(b)) = (a, b) {
            cpu.insert(name.clone(), json!(((b - a) * 100.0).round() / 100.0));
        }
    }
    let ratio = match (cpu.get("jicofo").and_then(Value::as_f64), cpu.get("prosody").and_then(Value::as_f64)) {
        (Some(j), Some(p)) if p > 0.0 => Some((j / p * 1000.0).round() / 10.0),
        _ => None,
    };
    let sent = |s: &Option<Value>| s.as_ref().and_then(|v| v["xmpp"]["stanzas_sent"].as_u64());
    let stanzas = match (sent(&stats0), sent(&stats1)) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let n = parts.len();
    // Latencies.
    let mut ready = Vec::new();
    let mut offer = Vec::new();
    let mut all = Vec::new();
    for members in rooms {
        let mut joins: Vec<Instant> = members.iter().filter_map(|&i| parts[i].t_join).collect();
        joins.sort();
        let second = joins.get(1).copied();
        let last = joins.last().copied();
        for &i in members {
            let p = &parts[i];
            if let (Some(a), Some(b)) = (p.t_req, p.t_ready) {
                ready.push(ms(a, b));
            }
            if let (Some(j), Some(s), Some(second)) = (p.t_join, p.t_si, second) {
                offer.push(ms(j.max(second), s));
            }
            if let (Some(t), Some(last)) = (p.t_all, last) {
                if joins.len() == members.len() {
                    all.push(ms(last, t));
                }
            }
        }
    }
    let complete = parts.iter().filter(|p| p.t_all.is_some()).count();
    let expected: usize = rooms.iter().map(|m| m.len() * m.len().saturating_sub(1)).sum();
    let known: usize = parts.iter().map(|p| p.known.len()).sum();
    let in_room = parts.iter().filter(|p| p.t_in_room.is_some()).count();
    let offered = parts.iter().filter(|p| p.t_si.is_some()).count();
    let last_join = parts.iter().filter_map(|p| p.t_join).max();
    let mut mode = if o.closed_loop {
        "closed loop".to_string()
    } else if o.rate > 0.0 {
        format!("{}/s", o.rate)
    } else if o.window > 0.0 {
        format!("within {} s", o.window)
    } else if n == 0 {
        format!("idle {} s", o.hold)
    } else {
        "all at once".to_string()
    };
    if o.json_sources {
        mode.push_str(", JSON sources");
    }
    json!({
        "scenario": o.name,
        "mode": mode,
        "rooms": if n == 0 { 0 } else { o.rooms },
        "per_room": if n == 0 { 0 } else { o.per_room },
        "participants": n,
        "complete": complete,
        "in_room": in_room,
        "offered": offered,
        "sources_known_pct": if expected > 0 { Some((known as f64 * 1000.0 / expected as f64).round() / 10.0) } else { None },
        "participant_errors": parts.iter().map(|p| p.errors as u64).sum::<u64>(),
        "error_samples": errors,
        "duration_s": ((end - t0).as_secs_f64() * 100.0).round() / 100.0,
        "joins_span_s": last_join.map(|l| ((l.saturating_duration_since(t0)).as_secs_f64() * 100.0).round() / 100.0),
        "settle_s": o.settle,
        "latency_ms": {
            "request_to_ready": dist(ready),
            "join_to_offer": dist(offer),
            "all_sources_after_last_join": dist(all),
        },
        "focus_added_us": stats1.as_ref().map(|s| s["jingle"]["focus_added"].clone()),
        "stanzas_sent": stanzas,
        "stanzas_per_participant": stanzas.filter(|_| n > 0).map(|s| ((s as f64 / n as f64) * 10.0).round() / 10.0),
        "cpu_s": cpu,
        "jicofo_cpu_pct_of_prosody": ratio,
        "jicofo_vmhwm_kb": hwm,
        "jicofo_threads_peak": threads_peak,
        "jicofo_stats_end": stats1.as_ref().map(|s| json!({"conferences": s["conferences"], "participants": s["participants"]})),
    })
}

// ------------------------------------------------------------------------------------
// the table

fn table(files: &[String], out: Option<PathBuf>) -> i32 {
    let mut rows = Vec::new();
    for f in files {
        match std::fs::read_to_string(f).ok().and_then(|t| serde_json::from_str::<Value>(&t).ok()) {
            Some(v) => rows.push(v),
            None => {
                eprintln!("jicofo-load: cannot read {}", f);
                return 1;
            }
        }
    }
    let f1 = |v: &Value| v.as_f64().map(|x| if x >= 100.0 { format!("{:.0}", x) } else { format!("{:.1}", x) }).unwrap_or_else(|| "-".into());
    let pair = |v: &Value| format!("{}/{}", f1(&v["p50"]), f1(&v["p99"]));
    let head = [
        "scenario", "mode", "n", "done", "src %", "ready ms", "offer ms", "all-src ms", "focus-add µs", "st/part", "cpu jicofo", "cpu prosody",
        "jicofo/pros", "RSS MB", "thr", "wall s",
    ];
    let mut lines: Vec<Vec<String>> = vec![head.iter().map(|s| s.to_string()).collect()];
    for v in &rows {
        let lat = &v["latency_ms"];
        let fa = &v["focus_added_us"];
        lines.push(vec![
            v["scenario"].as_str().unwrap_or("?").to_string(),
            v["mode"].as_str().unwrap_or("").to_string(),
            v["participants"].to_string(),
            v["complete"].to_string(),
            f1(&v["sources_known_pct"]),
            pair(&lat["request_to_ready"]),
            pair(&lat["join_to_offer"]),
            pair(&lat["all_sources_after_last_join"]),
            format!("{}/{}", fa["p50_us"].as_u64().map(|x| x.to_string()).unwrap_or("-".into()), fa["p99_us"].as_u64().map(|x| x.to_string()).unwrap_or("-".into())),
            f1(&v["stanzas_per_participant"]),
            format!("{:.2}", v["cpu_s"]["jicofo"].as_f64().unwrap_or(f64::NAN)),
            format!("{:.2}", v["cpu_s"]["prosody"].as_f64().unwrap_or(f64::NAN)),
            v["jicofo_cpu_pct_of_prosody"].as_f64().map(|x| format!("{:.1}%", x)).unwrap_or("-".into()),
            v["jicofo_vmhwm_kb"].as_f64().map(|x| format!("{:.1}", x / 1024.0)).unwrap_or("-".into()),
            v["jicofo_threads_peak"].to_string(),
            f1(&v["duration_s"]),
        ]);
    }
    let widths: Vec<usize> = (0..head.len()).map(|c| lines.iter().map(|l| l[c].chars().count()).max().unwrap_or(0)).collect();
    for (k, l) in lines.iter().enumerate() {
        let cells: Vec<String> = l.iter().zip(&widths).map(|(s, w)| format!("{:<w$}", s, w = *w)).collect();
        println!("{}", cells.join("  ").trim_end());
        if k == 0 {
            println!("{}", widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("  "));
        }
    }
    println!(
        "ready: conference request → ready; offer: join (or the room's 2nd join) → session-initiate; all-src: room's last join → \
         knows every other participant's sources (done: participants who did; src %: of all the \
         room-mate sources to learn, how many were learned); focus-add: bridge answer → session-initiate queued (inside jicofo); \
         p50/p99. st/part: stanzas sent by jicofo per participant. cpu: seconds over the run. RSS: jicofo VmHWM."
    );
    // The targets of the benchmark issue.
    let mut targets = Vec::new();
    for v in &rows {
        let name = v["scenario"].as_str().unwrap_or("?");
        let mut check = |what: &str, got: Option<f64>, limit: f64, unit: &str| {
            let verdict = match got {
                Some(g) if g <= limit => "met",
                Some(_) => "MISSED",
                None => "n/a",
            };
            let shown = got.map(|g| format!("{:.1}{}", g, unit)).unwrap_or_else(|| "-".into());
            println!("target {:<10} {:<44} {:>10} (limit {}{}): {}", name, what, shown, limit, unit, verdict);
            targets.push(json!({"scenario": name, "target": what, "value": got, "limit": limit, "verdict": verdict}));
        };
        let ratio = v["jicofo_cpu_pct_of_prosody"].as_f64();
        let rss = v["jicofo_vmhwm_kb"].as_f64().map(|k| k / 1024.0);
        match name {
            "idle" => check("jicofo RSS", rss, 10.0, " MB"),
            "storm" => {
                check("jicofo CPU / Prosody CPU", ratio, 5.0, " %");
                check("focus-added p99 (bridge answer -> offer)", v["focus_added_us"]["p99_us"].as_f64().map(|u| u / 1000.0), 2.0, " ms");
                check("jicofo RSS", rss, 40.0, " MB");
            }
            n if n.starts_with("large") => {
                check("jicofo CPU / Prosody CPU", ratio, 5.0, " %");
                check("focus-added p99 (bridge answer -> offer)", v["focus_added_us"]["p99_us"].as_f64().map(|u| u / 1000.0), 2.0, " ms");
                // Every participant, so the maximum; not everyone done counts as missed.
                let all_done = v["complete"] == v["participants"];
                let max = v["latency_ms"]["all_sources_after_last_join"]["max"].as_f64().map(|m| m / 1000.0);
                check("all sources known: max after the last join", if all_done { max } else { Some(f64::INFINITY) }, 2.0, " s");
            }
            _ => {}
        }
    }
    if let Some(p) = out {
        let all = json!({ "scenarios": rows, "targets": targets });
        if let Err(e) = std::fs::write(&p, format!("{}\n", serde_json::to_string_pretty(&all).unwrap())) {
            eprintln!("jicofo-load: {}: {}", p.display(), e);
            return 1;
        }
    }
    0
}
