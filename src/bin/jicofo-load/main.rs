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
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, Sender};
use jicofo::jid::Jid;
use jicofo::net::{ConnId, ConnSpec, EventLoop, Negotiation, Outbox, Router, TlsOptions};
use jicofo::xml::{parse_fragment, Element};
use jicofo::xmpp::ns;
use jicofo::xmpp::c2s::{ClientConfig, TlsPolicy};
use jicofo::xmpp::stanza::{iq_error, iq_result, ErrorCondition};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// Features a 2021 lib-jitsi-meet advertises (no JSON sources, no ssrc-rewriting).
const FEATURES: &[&str] = jicofo::xmpp::jingle::codecs::LIB_JITSI_MEET_2021_FEATURES;
/// Compact JSON source signaling (newer lib-jitsi-meet), with --json-sources.
const FEATURE_JSON_SOURCES: &str = "http://jitsi.org/json-encoded-sources";
/// The caps `ver` of the captured lib-jitsi-meet join presence.
const CAPS_VER: &str = "/LxjVAUjW56LWSj9lRquSYt35Ho=";
/// Incoming stanzas can be large: an offer in a 500-participant room carries ~3500 sources.
const MAX_STANZA: usize = 64 * 1024 * 1024;
/// Most XML nodes in a stanza a participant accepts: an offer in a room of 500 holds
/// tens of thousands (the focus itself accepts `jicofo::xml::MAX_NODES`).
const MAX_NODES: usize = 1 << 20;
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
        session_accept(&self.template, i, &p.nick, p.jid.as_deref(), si, sid)
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
            "get" if el.get_child("query", ns::DISCO_INFO).is_some() => out.send(ConnId(i), disco_answer(&el, &self.features)),
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

/// The captured session-accept `template` for participant `i` (`nick`, bound as `jid`),
/// answering the offer `si` of session `sid`: SSRCs offset by 16·i, msids with the nick.
fn session_accept(template: &Element, i: usize, nick: &str, jid: Option<&str>, si: &Element, sid: &str) -> Element {
    let mut iq = template.clone();
    let focus = si.get_attr("from").unwrap_or_default().to_string();
    iq.set_attr("to", focus.clone());
    iq.set_attr("id", format!("acc-{}", i));
    if let Some(j) = iq.get_child_mut("jingle", ns::JINGLE) {
        j.set_attr("initiator", focus);
        j.set_attr("responder", jid.unwrap_or_default().to_string());
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
            Some(format!("{}-{} {}-{}", nick, kind, nick, track.rsplit('-').next().unwrap_or("1")))
        }
        // Source names are `<endpoint>-a0` / `-v0` (the focus refuses others' names).
        "name" if value.ends_with("-a0") || value.ends_with("-v0") => Some(format!("{}-{}", nick, &value[value.len() - 2..])),
        _ => None,
    });
    iq
}

/// The answer to a disco#info request: a web client with `features`.
fn disco_answer(req: &Element, features: &[&str]) -> Element {
    let node = req.get_child("query", ns::DISCO_INFO).and_then(|q| q.get_attr("node")).map(str::to_string);
    let mut q = Element::new("query", ns::DISCO_INFO).attr_opt("node", node);
    q = q.child(Element::new("identity", ns::DISCO_INFO).attr("category", "client").attr("type", "web").attr("name", "jicofo-load"));
    for f in features {
        q = q.child(Element::new("feature", ns::DISCO_INFO).attr("var", *f));
    }
    iq_result(req).child(q)
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

    fn stanza(&mut self, conn: ConnId, st: jicofo::xmpp::incoming::Incoming, out: &mut Outbox) {
        let el = st.into_element();
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
// churn: rooms that keep starting over, optionally next to a flooding attacker

/// A room's participants stay this long once all of them have their offers.
const CHURN_PAUSE: Duration = Duration::from_millis(300);
/// A cycle without every offer after this long is counted stuck and started over.
const CYCLE_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Default, Clone)]
struct ChurnPart {
    nick: String,
    room: usize,
    jid: Option<String>,
    t_req: Option<Instant>,
    t_ready: Option<Instant>,
    t_join: Option<Instant>,
    t_si: Option<Instant>,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Phase {
    /// Next cycle at this instant.
    Idle(Instant),
    /// Started at this instant; waiting for every offer.
    Running(Instant),
    /// Everyone has an offer; leave at this instant.
    Staying(Instant),
    /// The run is over for this room.
    Finished,
}

struct ChurnRoom {
    base: String,
    members: Vec<usize>,
    cycle: u32,
    jid: String,
    phase: Phase,
    /// Joins of the current cycle.
    joins: Vec<Instant>,
}

/// What a churn run measured.
#[derive(Default, Clone)]
struct ChurnResult {
    ready_ms: Vec<f64>,
    offer_ms: Vec<f64>,
    cycles_started: u64,
    cycles_done: u64,
    cycles_stuck: u64,
    refused: u64,
    terminated: u64,
    disconnects: u64,
    errors: Vec<String>,
    /// Start of the clock and end of the run.
    t0: Option<Instant>,
    end: Option<Instant>,
}

enum ChurnMsg {
    AllConnected,
    Done(ChurnResult),
}

struct ChurnRouter {
    parts: Vec<ChurnPart>,
    rooms: Vec<ChurnRoom>,
    focus: String,
    domain: String,
    template: Element,
    features: Vec<&'static str>,
    connected: usize,
    duration: Duration,
    stay: Duration,
    /// Conference requests to send again: (when, participant, cycle).
    retries: Vec<(Instant, usize, u32)>,
    r: ChurnResult,
    done: bool,
    to_main: Sender<ChurnMsg>,
    from_main: Receiver<()>,
}

impl ChurnRouter {
    fn error(&mut self, what: String) {
        if self.r.errors.len() < 20 {
            self.r.errors.push(what);
        }
    }

    fn request(&mut self, i: usize, now: Instant, out: &mut Outbox) {
        let p = &mut self.parts[i];
        if p.t_req.is_none() {
            p.t_req = Some(now);
        }
        let room = &self.rooms[p.room];
        let iq = Element::new("iq", ns::CLIENT)
            .attr("type", "set")
            .attr("id", format!("conf-{}-{}", i, room.cycle))
            .attr("to", self.focus.clone())
            .child(
                Element::new("conference", ns::FOCUS)
                    .attr("room", room.jid.clone())
                    .attr("machine-uid", format!("machine-{}", p.nick))
                    .child(Element::new("property", ns::FOCUS).attr("name", "disableRtx").attr("value", "false")),
            );
        out.send(ConnId(i), iq);
    }

    fn start_cycle(&mut self, r: usize, now: Instant, out: &mut Outbox) {
        let room = &mut self.rooms[r];
        room.cycle += 1;
        room.jid = format!("{}-c{}@conference.{}", room.base, room.cycle, self.domain);
        room.joins.clear();
        room.phase = Phase::Running(now);
        self.r.cycles_started += 1;
        for i in self.rooms[r].members.clone() {
            let p = &mut self.parts[i];
            *p = ChurnPart { nick: p.nick.clone(), room: r, jid: p.jid.clone(), ..Default::default() };
            self.request(i, now, out);
        }
    }

    fn leave_all(&mut self, r: usize, out: &mut Outbox) {
        let room = &self.rooms[r];
        for &i in &room.members {
            if self.parts[i].t_join.is_some() {
                let p = Element::new("presence", ns::CLIENT)
                    .attr("to", format!("{}/{}", room.jid, self.parts[i].nick))
                    .attr("type", "unavailable");
                out.send(ConnId(i), p);
            }
        }
    }

    fn on_iq(&mut self, i: usize, el: Element, now: Instant, out: &mut Outbox) {
        let ty = el.get_attr("type").unwrap_or("");
        let id = el.get_attr("id").unwrap_or("").to_string();
        let r = self.parts[i].room;
        match ty {
            "result" | "error" => {
                if id != format!("conf-{}-{}", i, self.rooms[r].cycle) || !matches!(self.rooms[r].phase, Phase::Running(_)) {
                    if ty == "error" && id.starts_with("acc-") {
                        self.error(format!("{}: session-accept refused: {}", self.parts[i].nick, el));
                    }
                    return;
                }
                let cycle = self.rooms[r].cycle;
                if ty == "error" {
                    self.r.refused += 1;
                    self.error(format!("{}: conference request refused: {}", self.parts[i].nick, el));
                    self.retries.push((now + Duration::from_secs(1), i, cycle));
                    return;
                }
                let ready = el.get_child("conference", ns::FOCUS).and_then(|c| c.get_attr("ready")) == Some("true");
                if !ready {
                    self.retries.push((now + NOT_READY_RETRY, i, cycle));
                    return;
                }
                if self.parts[i].t_ready.is_some() {
                    return;
                }
                self.parts[i].t_ready = Some(now);
                if let Some(t) = self.parts[i].t_req {
                    self.r.ready_ms.push(ms(t, now));
                }
                self.parts[i].t_join = Some(now);
                self.rooms[r].joins.push(now);
                let pres = Element::new("presence", ns::CLIENT)
                    .attr("to", format!("{}/{}", self.rooms[r].jid, self.parts[i].nick))
                    .child(Element::new("x", ns::MUC))
                    .child(Element::new("stats-id", ns::CLIENT).text(format!("{}-stats", self.parts[i].nick)))
                    .child(Element::new("c", ns::CAPS).attr("hash", "sha-1").attr("node", "https://jitsi.org/jitsi-meet").attr("ver", CAPS_VER));
                out.send(ConnId(i), pres);
            }
            "get" if el.get_child("ping", ns::PING).is_some() => out.send(ConnId(i), iq_result(&el)),
            "get" if el.get_child("query", ns::DISCO_INFO).is_some() => out.send(ConnId(i), disco_answer(&el, &self.features)),
            "set" if el.get_child("jingle", ns::JINGLE).is_some() => {
                out.send(ConnId(i), iq_result(&el));
                let j = el.get_child("jingle", ns::JINGLE).expect("checked");
                match j.get_attr("action") {
                    Some("session-initiate") => {
                        let in_room = el.get_attr("from").is_some_and(|f| f.starts_with(&format!("{}/", self.rooms[r].jid)));
                        if !in_room || !matches!(self.rooms[r].phase, Phase::Running(_)) || self.parts[i].t_si.is_some() {
                            return;
                        }
                        self.parts[i].t_si = Some(now);
                        let mut joins = self.rooms[r].joins.clone();
                        joins.sort();
                        if let (Some(own), Some(second)) = (self.parts[i].t_join, joins.get(1).copied()) {
                            self.r.offer_ms.push(ms(own.max(second), now));
                        }
                        let sid = j.get_attr("sid").unwrap_or_default().to_string();
                        let p = &self.parts[i];
                        out.send(ConnId(i), session_accept(&self.template, i, &p.nick, p.jid.as_deref(), &el, &sid));
                        if self.rooms[r].members.iter().all(|&k| self.parts[k].t_si.is_some()) {
                            self.rooms[r].phase = Phase::Staying(now + self.stay);
                        }
                    }
                    Some("session-terminate") => {
                        self.r.terminated += 1;
                        self.error(format!("{}: session terminated: {}", self.parts[i].nick, j));
                    }
                    _ => {}
                }
            }
            "get" | "set" => out.send(ConnId(i), iq_error(&el, ErrorCondition::FeatureNotImplemented, None)),
            _ => {}
        }
    }

    fn check_done(&mut self, now: Instant) {
        let Some(t0) = self.r.t0 else { return };
        if self.done {
            return;
        }
        let all = self.rooms.iter().all(|r| r.phase == Phase::Finished);
        if all || now >= t0 + self.duration + CYCLE_TIMEOUT + Duration::from_secs(5) {
            self.done = true;
            self.r.end = Some(now);
            let _ = self.to_main.send(ChurnMsg::Done(self.r.clone()));
        }
    }
}

impl Router for ChurnRouter {
    fn connected(&mut self, conn: ConnId, jid: &Jid, _out: &mut Outbox) {
        if let Some(p) = self.parts.get_mut(conn.0) {
            if p.jid.is_none() {
                self.connected += 1;
            }
            p.jid = Some(jid.to_string());
            if self.connected == self.parts.len() {
                let _ = self.to_main.send(ChurnMsg::AllConnected);
            }
        }
    }

    fn disconnected(&mut self, conn: ConnId, reason: &str, _out: &mut Outbox) {
        if !self.done && self.r.t0.is_some() {
            self.r.disconnects += 1;
            self.error(format!("p{}: disconnected: {}", conn.0, reason));
        }
    }

    fn stanza(&mut self, conn: ConnId, st: jicofo::xmpp::incoming::Incoming, out: &mut Outbox) {
        let el = st.into_element();
        let now = Instant::now();
        if conn.0 < self.parts.len() && el.name == "iq" {
            self.on_iq(conn.0, el, now, out);
        }
        self.check_done(now);
    }

    fn tick(&mut self, now: Instant, out: &mut Outbox) {
        let Some(t0) = self.r.t0 else {
            if self.from_main.try_recv().is_ok() {
                self.r.t0 = Some(now);
                // Rooms start 100 ms apart.
                for (k, r) in self.rooms.iter_mut().enumerate() {
                    r.phase = Phase::Idle(now + Duration::from_millis(100 * k as u64));
                }
                self.tick(now, out);
            }
            return;
        };
        let over = now >= t0 + self.duration;
        for r in 0..self.rooms.len() {
            match self.rooms[r].phase {
                Phase::Idle(t) if t <= now => {
                    if over {
                        self.rooms[r].phase = Phase::Finished;
                    } else {
                        self.start_cycle(r, now, out);
                    }
                }
                Phase::Running(started) if now >= started + CYCLE_TIMEOUT => {
                    self.r.cycles_stuck += 1;
                    let nick = self.parts[self.rooms[r].members[0]].nick.clone();
                    self.error(format!("{}: cycle {} of {} got no offers within {:?}", nick, self.rooms[r].cycle, self.rooms[r].jid, CYCLE_TIMEOUT));
                    self.leave_all(r, out);
                    self.rooms[r].phase = Phase::Idle(now + CHURN_PAUSE);
                }
                Phase::Staying(until) if until <= now => {
                    self.r.cycles_done += 1;
                    self.leave_all(r, out);
                    self.rooms[r].phase = Phase::Idle(now + CHURN_PAUSE);
                }
                _ => {}
            }
        }
        let due: Vec<(usize, u32)> = self.retries.iter().filter(|(t, _, _)| *t <= now).map(|(_, i, c)| (*i, *c)).collect();
        self.retries.retain(|(t, _, _)| *t > now);
        for (i, cycle) in due {
            let r = self.parts[i].room;
            if self.rooms[r].cycle == cycle && matches!(self.rooms[r].phase, Phase::Running(_)) && self.parts[i].t_ready.is_none() {
                self.request(i, now, out);
            }
        }
        self.check_done(now);
    }

    fn next_deadline(&self) -> Option<Instant> {
        let t0 = self.r.t0?;
        let mut d = t0 + self.duration + CYCLE_TIMEOUT + Duration::from_secs(5);
        for r in &self.rooms {
            let t = match r.phase {
                Phase::Idle(t) => t,
                Phase::Running(s) => s + CYCLE_TIMEOUT,
                Phase::Staying(t) => t,
                Phase::Finished => continue,
            };
            d = d.min(t);
        }
        for (t, _, _) in &self.retries {
            d = d.min(*t);
        }
        Some(d)
    }
}

/// What the attacker sends (`--flood` kinds).
#[derive(Clone, Copy, Debug, PartialEq)]
enum FloodKind {
    /// Presence updates in its own room.
    Presence,
    /// disco#info and ping IQs to the focus (both JIDs).
    Iq,
    /// Forged answers: Colibri2 results and errors, health-check errors, with guessed ids.
    Forged,
    /// IQs and directed presences of ~50 kB of `'`: ~300 kB once Prosody re-escapes them.
    Oversize,
    /// IQs and directed presences nested 300 deep.
    Deep,
}

fn parse_flood(s: &str) -> Vec<FloodKind> {
    let mut v = Vec::new();
    for k in s.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        match k {
            "all" => v.extend([FloodKind::Presence, FloodKind::Iq, FloodKind::Forged, FloodKind::Oversize, FloodKind::Deep]),
            "presence" => v.push(FloodKind::Presence),
            "iq" => v.push(FloodKind::Iq),
            "forged" => v.push(FloodKind::Forged),
            "oversize" => v.push(FloodKind::Oversize),
            "deep" => v.push(FloodKind::Deep),
            other => die(&format!("--flood: unknown kind {:?} (presence, iq, forged, oversize, deep, all)", other)),
        }
    }
    v.dedup();
    v
}

/// The attacker's flow control: a ping to its server after every `FLOOD_WINDOW_STANZAS`
/// stanzas or `FLOOD_WINDOW_BYTES` bytes, at most `FLOOD_WINDOW_PINGS` unanswered. Prosody
/// handles a client's stanzas in order, so this keeps Prosody busy with the attacker's
/// stanzas without queueing more than ~0.5 MB of them anywhere.
const FLOOD_WINDOW_STANZAS: u64 = 200;
const FLOOD_WINDOW_BYTES: usize = 256 * 1024;
const FLOOD_WINDOW_PINGS: u64 = 8;

/// Counters of the attacker, shared between its loop and its sending thread.
#[derive(Default)]
struct FloodStats {
    sent: std::sync::atomic::AtomicU64,
    /// Flow-control pings sent / the highest one answered.
    pings: std::sync::atomic::AtomicU64,
    acked: std::sync::atomic::AtomicU64,
    connected: std::sync::atomic::AtomicBool,
    received: std::sync::atomic::AtomicU64,
    /// Errors it got back, by condition.
    errors: parking_lot::Mutex<std::collections::BTreeMap<String, u64>>,
    disconnects: std::sync::atomic::AtomicU64,
    /// The highest conference number seen in the ids of IQs the focus sent it.
    conference_seen: std::sync::atomic::AtomicU64,
}

enum FloodMsg {
    InRoom,
    Failed(String),
}

/// The attacker's router: gets into its own room, answers what a client must, counts.
struct FloodRouter {
    room: String,
    nick: String,
    focus: String,
    stats: std::sync::Arc<FloodStats>,
    to_main: Sender<FloodMsg>,
    in_room: bool,
    /// The main thread was told (in its room, or failed).
    told: bool,
}

/// The focus's own id inside an id Prosody's MUC rewrote (base64 of `occupant NUL id NUL hmac`).
fn unwrap_muc_id(id: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(id)
        .ok()
        .and_then(|raw| raw.split(|b| *b == 0).nth(1).map(|p| String::from_utf8_lossy(p).to_string()))
        .filter(|inner| !inner.is_empty())
        .unwrap_or_else(|| id.to_string())
}

impl Router for FloodRouter {
    fn connected(&mut self, _conn: ConnId, _jid: &Jid, out: &mut Outbox) {
        // (Re)join its room; pings of an earlier connection will never be answered.
        self.in_room = false;
        self.stats.acked.store(self.stats.pings.load(Ordering::Relaxed), Ordering::Relaxed);
        let iq = Element::new("iq", ns::CLIENT)
            .attr("type", "set")
            .attr("id", "flood-conf")
            .attr("to", self.focus.clone())
            .child(Element::new("conference", ns::FOCUS).attr("room", self.room.clone()).attr("machine-uid", "machine-flood"));
        out.send(ConnId(0), iq);
    }

    fn disconnected(&mut self, _conn: ConnId, reason: &str, _out: &mut Outbox) {
        self.stats.connected.store(false, Ordering::Relaxed);
        self.stats.disconnects.fetch_add(1, Ordering::Relaxed);
        if !self.told {
            self.told = true;
            let _ = self.to_main.send(FloodMsg::Failed(reason.to_string()));
        }
    }

    fn stanza(&mut self, conn: ConnId, st: jicofo::xmpp::incoming::Incoming, out: &mut Outbox) {
        let el = st.into_element();
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        let ty = el.get_attr("type").unwrap_or("");
        if el.name == "iq" {
            let id = unwrap_muc_id(el.get_attr("id").unwrap_or(""));
            if let Some(n) = id.strip_prefix('c').and_then(|r| r.split('-').next()).and_then(|n| n.parse::<u64>().ok()) {
                self.stats.conference_seen.fetch_max(n, Ordering::Relaxed);
            }
            if ty == "result" {
                if let Some(seq) = el.get_attr("id").and_then(|i| i.strip_prefix("window-")).and_then(|n| n.parse::<u64>().ok()) {
                    self.stats.acked.fetch_max(seq, Ordering::Relaxed);
                    return;
                }
            }
            match ty {
                "error" => {
                    let cond = jicofo::xmpp::stanza::parse_error(&el).map(|e| e.condition_name).unwrap_or_else(|| "?".into());
                    *self.stats.errors.lock().entry(cond).or_insert(0) += 1;
                    if el.get_attr("id") == Some("flood-conf") && !self.told {
                        self.told = true;
                        let _ = self.to_main.send(FloodMsg::Failed(format!("conference request refused: {}", el)));
                    }
                }
                "result" if el.get_attr("id") == Some("flood-conf") && !self.in_room => {
                    if el.get_child("conference", ns::FOCUS).and_then(|c| c.get_attr("ready")) == Some("true") {
                        let p = Element::new("presence", ns::CLIENT).attr("to", format!("{}/{}", self.room, self.nick)).child(Element::new("x", ns::MUC));
                        out.send(conn, p);
                    } else if !self.told {
                        self.told = true;
                        let _ = self.to_main.send(FloodMsg::Failed("its room was not ready".into()));
                    }
                }
                "get" if el.get_child("query", ns::DISCO_INFO).is_some() => out.send(conn, disco_answer(&el, FEATURES)),
                "get" | "set" => out.send(conn, iq_result(&el)),
                _ => {}
            }
        } else if el.name == "presence" && !self.in_room && el.get_attr("from") == Some(format!("{}/{}", self.room, self.nick).as_str()) {
            self.in_room = true;
            self.stats.connected.store(true, Ordering::Relaxed);
            if !self.told {
                self.told = true;
                let _ = self.to_main.send(FloodMsg::InRoom);
            }
        }
    }
}

/// The stanzas of the flood, in rotation: 20 slots per round, the heavy ones (oversize,
/// deep) once every 10 rounds; disabled kinds are skipped.
struct FloodMix {
    kinds: Vec<FloodKind>,
    room: String,
    nick: String,
    component: String,
    focus_user: String,
    oversize_iq: Element,
    oversize_presence: Element,
    deep_iq: Element,
    deep_presence: Element,
    n: u64,
    rng: rand::rngs::StdRng,
    /// About how many bytes the last stanza `next` gave is.
    last_size: usize,
    oversize_len: usize,
    deep_len: usize,
}

fn nested(depth: usize) -> Element {
    let mut e = Element::new("d", "urn:example:hostile");
    for _ in 1..depth {
        e = Element::new("d", "urn:example:hostile").child(e);
    }
    e
}

impl FloodMix {
    fn new(kinds: Vec<FloodKind>, room: &str, nick: &str, domain: &str) -> FloodMix {
        let component = format!("focus.{}", domain);
        let focus_user = format!("focus@auth.{}/focus", domain);
        // `'` is not escaped in text by the writer: 50 000 bytes sent, ~300 000 after Prosody.
        let quotes = "'".repeat(50_000);
        FloodMix {
            oversize_iq: Element::new("iq", ns::CLIENT)
                .attr("type", "get")
                .attr("id", "big")
                .attr("to", component.clone())
                .child(Element::new("query", "urn:example:hostile").text(quotes.clone())),
            oversize_presence: Element::new("presence", ns::CLIENT)
                .attr("to", focus_user.clone())
                .child(Element::new("hostile", "urn:example:hostile").text(quotes)),
            deep_iq: Element::new("iq", ns::CLIENT).attr("type", "get").attr("id", "deep").attr("to", component.clone()).child(nested(299)),
            deep_presence: Element::new("presence", ns::CLIENT).attr("to", focus_user.clone()).child(nested(299)),
            kinds,
            room: room.to_string(),
            nick: nick.to_string(),
            component,
            focus_user,
            n: 0,
            rng: rand::rngs::StdRng::seed_from_u64(7),
            last_size: 0,
            oversize_len: 50_000,
            deep_len: nested(299).to_xml().len() + 100,
        }
    }

    fn has(&self, k: FloodKind) -> bool {
        self.kinds.contains(&k)
    }

    /// The next stanza to send (never None while some kind is enabled: 200 slots hold
    /// at least one heavy slot, so a flood of only oversize or deep stanzas sends nothing else).
    fn next(&mut self, conference_seen: u64) -> Option<Element> {
        for _ in 0..400 {
            self.n += 1;
            let slot = self.n % 20;
            let round = self.n / 20;
            let k = self.n;
            let el = match slot {
                0..=11 if self.has(FloodKind::Presence) => Some(
                    Element::new("presence", ns::CLIENT)
                        .attr("to", format!("{}/{}", self.room, self.nick))
                        .child(Element::new("stats-id", ns::CLIENT).text(format!("flood-{}", k)))
                        .child(Element::new("audiomuted", ns::AUDIO_MUTE).text(if k % 2 == 0 { "true" } else { "false" }))
                        .child(Element::new("videomuted", ns::VIDEO_MUTE).text(if k % 3 == 0 { "true" } else { "false" })),
                ),
                12 | 13 if self.has(FloodKind::Iq) => Some(
                    Element::new("iq", ns::CLIENT)
                        .attr("type", "get")
                        .attr("id", format!("q{}", k))
                        .attr("to", if slot == 12 { self.component.clone() } else { self.focus_user.clone() })
                        .child(Element::new("query", ns::DISCO_INFO)),
                ),
                14 if self.has(FloodKind::Iq) => Some(
                    Element::new("iq", ns::CLIENT).attr("type", "get").attr("id", format!("p{}", k)).attr("to", self.component.clone()).child(Element::new("ping", ns::PING)),
                ),
                15..=18 if self.has(FloodKind::Forged) => {
                    // Ids of conferences created after the attacker's own one, sequence 1..12.
                    let conf = conference_seen + self.rng.gen_range(0..300u64);
                    let id = format!("c{}-{}", conf, self.rng.gen_range(1..=12u32));
                    let to = self.focus_user.clone();
                    Some(match slot {
                        15 | 16 => Element::new("iq", ns::CLIENT).attr("type", "result").attr("id", id).attr("to", to).child(
                            Element::new("conference-modified", ns::COLIBRI2).child(
                                Element::new("endpoint", ns::COLIBRI2).attr("id", "p000000").child(
                                    Element::new("transport", ns::COLIBRI2)
                                        .child(Element::new("transport", ns::ICE_UDP).attr("ufrag", "forged").attr("pwd", "forgedforgedforgedforged")),
                                ),
                            ),
                        ),
                        17 => iq_error(&Element::new("iq", ns::CLIENT).attr("type", "get").attr("id", id).attr("from", to), ErrorCondition::InternalServerError, None),
                        _ => iq_error(
                            &Element::new("iq", ns::CLIENT).attr("type", "get").attr("id", format!("h{}", self.rng.gen_range(1..100u32))).attr("from", to),
                            ErrorCondition::InternalServerError,
                            None,
                        ),
                    })
                }
                19 if round % 10 == 0 => {
                    let heavy: Vec<&Element> = [
                        (FloodKind::Oversize, &self.oversize_iq),
                        (FloodKind::Oversize, &self.oversize_presence),
                        (FloodKind::Deep, &self.deep_iq),
                        (FloodKind::Deep, &self.deep_presence),
                    ]
                    .into_iter()
                    .filter(|(kind, _)| self.kinds.contains(kind))
                    .map(|(_, e)| e)
                    .collect();
                    (!heavy.is_empty()).then(|| heavy[(round / 10) as usize % heavy.len()].clone())
                }
                _ => None,
            };
            if let Some(e) = &el {
                self.last_size = match slot {
                    19 if e.elements().next().is_some_and(|c| c.name == "d") => self.deep_len,
                    19 => self.oversize_len,
                    _ => 300,
                };
                return el;
            }
        }
        None
    }
}

/// Connection attempts in jicofo's log (each connection logs `<name>: connecting to`).
fn connection_attempts(log: &Option<PathBuf>) -> Option<u64> {
    let text = std::fs::read_to_string(log.as_ref()?).ok()?;
    Some(text.lines().filter(|l| l.contains(": connecting to ")).count() as u64)
}

/// `xmpp.reconnects` of jicofo's /stats (a number or one per connection), when it has one.
fn stats_reconnects(s: &Option<Value>) -> Option<u64> {
    let r = &s.as_ref()?["xmpp"]["reconnects"];
    r.as_u64().or_else(|| r.as_object().map(|o| o.values().filter_map(Value::as_u64).sum()))
}

/// A churn run: `rooms` rooms of `per_room` that start over and over for `churn` seconds
/// (request → ready → join → offers → accept → stay → leave, a new room name each cycle),
/// with, when `flood` has kinds, one more participant flooding the focus meanwhile.
fn run_churn(o: &Opts) -> Value {
    let n = o.rooms * o.per_room;
    let started = Instant::now();
    let text = std::fs::read_to_string(&o.capture).unwrap_or_else(|e| die(&format!("{}: {}", o.capture.display(), e)));
    let template = parse_fragment(&text).unwrap_or_else(|e| die(&format!("{}: {}", o.capture.display(), e)));
    let run_id: u32 = rand::random::<u32>() % 100_000;
    let mut rooms: Vec<ChurnRoom> = (0..o.rooms)
        .map(|r| ChurnRoom { base: format!("churn{}-{}", run_id, r), members: Vec::new(), cycle: 0, jid: String::new(), phase: Phase::Finished, joins: Vec::new() })
        .collect();
    let parts: Vec<ChurnPart> = (0..n)
        .map(|i| {
            rooms[i % o.rooms].members.push(i);
            ChurnPart { nick: format!("p{:06}", i), room: i % o.rooms, ..Default::default() }
        })
        .collect();
    let spec = |name: String| ConnSpec {
        name,
        host: o.host.clone(),
        port: o.port,
        negotiation: Negotiation::Client(ClientConfig {
            domain: o.domain.clone(),
            username: None,
            password: None,
            resource: "load".into(),
            tls: TlsPolicy::Disabled,
        }),
        tls: TlsOptions::default(),
        keepalive: Duration::from_secs(3600),
        max_stanza: MAX_STANZA,
        max_nodes: MAX_NODES,
        typed: false,
    };
    let specs: Vec<ConnSpec> = (0..n).map(|i| spec(format!("p{}", i))).collect();
    let (to_main, from_loop) = unbounded();
    let (go_tx, go_rx) = unbounded();
    let duration = Duration::from_secs_f64(o.churn);
    let router = ChurnRouter {
        parts,
        rooms,
        focus: format!("focus.{}", o.domain),
        domain: o.domain.clone(),
        template,
        features: FEATURES.to_vec(),
        connected: 0,
        duration,
        stay: Duration::from_secs_f64(o.stay),
        retries: Vec::new(),
        r: ChurnResult::default(),
        done: false,
        to_main,
        from_main: go_rx,
    };
    let (el, net) = EventLoop::new().unwrap_or_else(|e| die(&format!("event loop: {}", e)));
    let join = el.spawn(specs, Box::new(router)).unwrap_or_else(|e| die(&format!("event loop: {}", e)));
    loop {
        match from_loop.recv_timeout(Duration::from_secs(60)) {
            Ok(ChurnMsg::AllConnected) => break,
            Ok(_) => {}
            Err(_) => die("participants did not all log in within 60 s"),
        }
    }
    // The attacker: its own event loop (its traffic is not the participants' thread's
    // work), in its own room before the clock starts.
    let flood_stats = std::sync::Arc::new(FloodStats::default());
    let mut flood_loop = None;
    if !o.flood.is_empty() {
        let (ftx, frx) = unbounded();
        let room = format!("flood{}@conference.{}", run_id, o.domain);
        let fr = FloodRouter { room: room.clone(), nick: "mallory".into(), focus: format!("focus.{}", o.domain), stats: flood_stats.clone(), to_main: ftx, in_room: false, told: false };
        let (fel, fnet) = EventLoop::new().unwrap_or_else(|e| die(&format!("event loop: {}", e)));
        let fjoin = fel.spawn(vec![spec("attacker".into())], Box::new(fr)).unwrap_or_else(|e| die(&format!("event loop: {}", e)));
        match frx.recv_timeout(Duration::from_secs(30)) {
            Ok(FloodMsg::InRoom) => {}
            Ok(FloodMsg::Failed(e)) => die(&format!("the attacker could not get into its room: {}", e)),
            Err(_) => die("the attacker did not get into its room within 30 s"),
        }
        flood_loop = Some((fnet, fjoin, room));
    }
    eprintln!(
        "jicofo-load {}: {} participants logged in ({:.1} s){}; churning for {:.0} s",
        o.name,
        n,
        started.elapsed().as_secs_f64(),
        if o.flood.is_empty() { String::new() } else { format!(", attacker in its room flooding with {:?}", o.flood) },
        o.churn
    );
    let stats0 = o.rest_port.and_then(http_stats);
    let cpu0 = cpu_all(o);
    let attempts0 = connection_attempts(&o.jicofo_log);
    let _ = go_tx.send(());
    net.wake();
    let t_go = Instant::now();
    let flood_thread = flood_loop.as_ref().map(|(fnet, _, room)| {
        let fnet = fnet.clone();
        let stats = flood_stats.clone();
        let mut mix = FloodMix::new(o.flood.clone(), room, "mallory", &o.domain);
        let server = o.domain.clone();
        std::thread::spawn(move || {
            let (mut since_ping, mut bytes) = (0, 0);
            while t_go.elapsed() < duration {
                // Wait while disconnected (until back in its room) or while the window is full.
                if !stats.connected.load(Ordering::Relaxed)
                    || stats.pings.load(Ordering::Relaxed) >= stats.acked.load(Ordering::Relaxed) + FLOOD_WINDOW_PINGS
                {
                    std::thread::sleep(Duration::from_micros(200));
                    continue;
                }
                let Some(el) = mix.next(stats.conference_seen.load(Ordering::Relaxed)) else { break };
                bytes += mix.last_size;
                if fnet.send(ConnId(0), el).is_err() {
                    break;
                }
                stats.sent.fetch_add(1, Ordering::Relaxed);
                since_ping += 1;
                if bytes >= FLOOD_WINDOW_BYTES || since_ping >= FLOOD_WINDOW_STANZAS {
                    (since_ping, bytes) = (0, 0);
                    let seq = stats.pings.fetch_add(1, Ordering::Relaxed) + 1;
                    let ping = Element::new("iq", ns::CLIENT)
                        .attr("type", "get")
                        .attr("id", format!("window-{}", seq))
                        .attr("to", server.clone())
                        .child(Element::new("ping", ns::PING));
                    if fnet.send(ConnId(0), ping).is_err() {
                        break;
                    }
                }
            }
        })
    });
    let mut threads_peak = 0u64;
    let result = loop {
        if let Some(t) = o.jicofo_pid.and_then(|p| status_field(p, "Threads")) {
            threads_peak = threads_peak.max(t);
        }
        match from_loop.recv_timeout(Duration::from_millis(50)) {
            Ok(ChurnMsg::Done(r)) => break r,
            Ok(_) => {}
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(_) => die("the event loop stopped"),
        }
    };
    let flood_secs = t_go.elapsed().min(duration).as_secs_f64();
    if let Some(t) = flood_thread {
        let _ = t.join();
    }
    let settle_until = Instant::now() + Duration::from_secs_f64(o.settle);
    while Instant::now() < settle_until {
        std::thread::sleep(Duration::from_millis(50));
    }
    let cpu1 = cpu_all(o);
    let stats1 = o.rest_port.and_then(http_stats);
    let attempts1 = connection_attempts(&o.jicofo_log);
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
    let flood = if o.flood.is_empty() {
        Value::Null
    } else {
        let sent = flood_stats.sent.load(Ordering::Relaxed);
        json!({
            "kinds": o.flood.iter().map(|k| format!("{:?}", k).to_lowercase()).collect::<Vec<_>>(),
            "sent": sent,
            "per_second": (sent as f64 / flood_secs.max(0.001)).round(),
            "received": flood_stats.received.load(Ordering::Relaxed),
            "errors_received": flood_stats.errors.lock().clone(),
            "attacker_disconnects": flood_stats.disconnects.load(Ordering::Relaxed),
        })
    };
    let reconnects = match (stats_reconnects(&stats0), stats_reconnects(&stats1)) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let t0 = result.t0.unwrap_or(t_go);
    let end = result.end.unwrap_or_else(Instant::now);
    let out = json!({
        "scenario": o.name,
        "churn": true,
        "mode": format!("churn {:.0} s, {} rooms x {}", o.churn, o.rooms, o.per_room),
        "rooms": o.rooms,
        "per_room": o.per_room,
        "participants": n,
        "flood": flood,
        "cycles": {
            "started": result.cycles_started,
            "done": result.cycles_done,
            "stuck": result.cycles_stuck,
        },
        "refused": result.refused,
        "terminated": result.terminated,
        "participant_disconnects": result.disconnects,
        "error_samples": result.errors,
        "duration_s": ((end - t0).as_secs_f64() * 100.0).round() / 100.0,
        "latency_ms": {
            "request_to_ready": dist(result.ready_ms.clone()),
            "join_to_offer": dist(result.offer_ms.clone()),
        },
        "cpu_s": cpu,
        "jicofo_cpu_pct_of_prosody": ratio,
        "jicofo_vmhwm_kb": hwm,
        "jicofo_threads_peak": threads_peak,
        "jicofo_connection_attempts": match (attempts0, attempts1) { (Some(a), Some(b)) => Some(b.saturating_sub(a)), _ => None },
        "jicofo_reconnects": reconnects,
        "jicofo_alive": o.jicofo_pid.map(|p| cpu_seconds(p).is_some()),
    });
    if let Some((fnet, fjoin, _)) = flood_loop {
        fnet.shutdown();
        let _ = fjoin.join();
    }
    net.shutdown();
    let _ = join.join();
    out
}

/// The table of churn runs, and for every flood run its ratios to the run without flood.
fn churn_table(rows: &[&Value]) {
    let f1 = |v: &Value| v.as_f64().map(|x| if x >= 100.0 { format!("{:.0}", x) } else { format!("{:.1}", x) }).unwrap_or_else(|| "-".into());
    let pair = |v: &Value| format!("{}/{} ({})", f1(&v["p50"]), f1(&v["p99"]), v["n"]);
    let head = [
        "scenario", "flood", "sent/s", "cycles ok/stuck", "ready ms (n)", "offer ms (n)", "refused", "terminated", "cpu jicofo", "cpu prosody", "jicofo/pros",
        "RSS MB", "thr", "reconnects",
    ];
    let mut lines: Vec<Vec<String>> = vec![head.iter().map(|s| s.to_string()).collect()];
    for v in rows {
        let lat = &v["latency_ms"];
        let fl = &v["flood"];
        lines.push(vec![
            v["scenario"].as_str().unwrap_or("?").to_string(),
            if fl.is_null() { "none".into() } else { fl["kinds"].as_array().map(|k| k.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")).unwrap_or_default() },
            if fl.is_null() { "-".into() } else { f1(&fl["per_second"]) },
            format!("{}/{}", v["cycles"]["done"], v["cycles"]["stuck"]),
            pair(&lat["request_to_ready"]),
            pair(&lat["join_to_offer"]),
            v["refused"].to_string(),
            v["terminated"].to_string(),
            format!("{:.2}", v["cpu_s"]["jicofo"].as_f64().unwrap_or(f64::NAN)),
            format!("{:.2}", v["cpu_s"]["prosody"].as_f64().unwrap_or(f64::NAN)),
            v["jicofo_cpu_pct_of_prosody"].as_f64().map(|x| format!("{:.1}%", x)).unwrap_or("-".into()),
            v["jicofo_vmhwm_kb"].as_f64().map(|x| format!("{:.1}", x / 1024.0)).unwrap_or("-".into()),
            v["jicofo_threads_peak"].to_string(),
            // The /stats counter when jicofo has one, else the connection attempts it logged.
            match (v["jicofo_reconnects"].as_u64(), v["jicofo_connection_attempts"].as_u64()) {
                (Some(r), _) => r.to_string(),
                (None, Some(a)) => format!("{} (log)", a),
                _ => "-".into(),
            },
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
        "churn: every room starts over with a new name (request → ready → join → offers → accept → stay → leave); ready: request → \
         ready; offer: the later of own join and the cycle's 2nd join → session-initiate; p50/p99 (samples) over all cycles. cycles stuck: no offers \
         within 15 s. reconnects: jicofo's xmpp.reconnects during the run (or, without that counter, connection attempts in its log). \
         RSS: jicofo VmHWM."
    );
    let Some(calm) = rows.iter().find(|v| v["flood"].is_null()) else { return };
    for v in rows.iter().filter(|v| !v["flood"].is_null()) {
        let ratio = |path: &[&str]| {
            let get = |x: &Value| path.iter().fold(x.clone(), |acc, k| acc[*k].clone()).as_f64();
            match (get(v), get(calm)) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
                _ => "-".into(),
            }
        };
        println!(
            "flood {} vs {}: ready p50 x{} p99 x{}; offer p50 x{} p99 x{}; RSS x{}; jicofo CPU x{}; Prosody CPU x{}",
            v["scenario"].as_str().unwrap_or("?"),
            calm["scenario"].as_str().unwrap_or("?"),
            ratio(&["latency_ms", "request_to_ready", "p50"]),
            ratio(&["latency_ms", "request_to_ready", "p99"]),
            ratio(&["latency_ms", "join_to_offer", "p50"]),
            ratio(&["latency_ms", "join_to_offer", "p99"]),
            ratio(&["jicofo_vmhwm_kb"]),
            ratio(&["cpu_s", "jicofo"]),
            ratio(&["cpu_s", "prosody"]),
        );
    }
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
    /// Churn mode for this many seconds (0: off).
    churn: f64,
    stay: f64,
    flood: Vec<FloodKind>,
    jicofo_log: Option<PathBuf>,
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
    o.optopt("", "churn", "churn mode: every room starts over (a new room name each cycle) for SECS; latencies over all cycles", "SECS");
    o.optopt("", "stay", "churn: how long a room stays once everyone has an offer (default 2)", "SECS");
    o.optopt("", "flood", "churn: one more participant floods the focus meanwhile with KINDS (presence,iq,forged,oversize,deep or all)", "KINDS");
    o.optopt("", "jicofo-log", "jicofo's log file: connection attempts during the run are counted", "FILE");
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
        churn: num("churn", 0.0),
        stay: num("stay", 2.0),
        flood: m.opt_str("flood").map(|f| parse_flood(&f)).unwrap_or_default(),
        jicofo_log: m.opt_str("jicofo-log").map(PathBuf::from),
    };
    if !opts.flood.is_empty() && opts.churn <= 0.0 {
        die("--flood needs --churn");
    }
    let result = if opts.churn > 0.0 { run_churn(&opts) } else { run(&opts) };
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
        max_nodes: MAX_NODES,
        typed: false,
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
    let churn: Vec<&Value> = rows.iter().filter(|v| v["churn"] == true).collect();
    if !churn.is_empty() {
        churn_table(&churn);
    }
    let all_rows = rows.clone();
    rows.retain(|v| v["churn"] != true);
    let targets = if rows.is_empty() { Vec::new() } else { load_table(&rows) };
    if let Some(p) = out {
        let all = json!({ "scenarios": all_rows, "targets": targets });
        if let Err(e) = std::fs::write(&p, format!("{}\n", serde_json::to_string_pretty(&all).unwrap())) {
            eprintln!("jicofo-load: {}: {}", p.display(), e);
            return 1;
        }
    }
    0
}

/// The table of the load scenarios with the checks of their targets; the targets as JSON.
fn load_table(rows: &[Value]) -> Vec<Value> {
    let f1 = |v: &Value| v.as_f64().map(|x| if x >= 100.0 { format!("{:.0}", x) } else { format!("{:.1}", x) }).unwrap_or_else(|| "-".into());
    let pair = |v: &Value| format!("{}/{}", f1(&v["p50"]), f1(&v["p99"]));
    let head = [
        "scenario", "mode", "n", "done", "src %", "ready ms", "offer ms", "all-src ms", "focus-add µs", "st/part", "cpu jicofo", "cpu prosody",
        "jicofo/pros", "RSS MB", "thr", "wall s",
    ];
    let mut lines: Vec<Vec<String>> = vec![head.iter().map(|s| s.to_string()).collect()];
    for v in rows {
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
    for v in rows {
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
    targets
}
