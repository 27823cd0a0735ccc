//! Hostile participants (issue #11), end to end through a real private Prosody with a
//! bridge simulator and the real jicofo binary.
//!
//! Every test is one class of hostile input, sent by anonymous participants ("attackers")
//! in their own room, while a *witness* conference (two participants with accepted
//! offers, in another room) runs on the same focus. Each test ends with the same checks:
//!
//! - jicofo's process is still running;
//! - a new pair of participants in a new room gets `ready='true'` and both offers in
//!   normal time (printed with the witness's own set-up time for comparison);
//! - the reconnect counter (`xmpp.reconnects` in `/stats`) did not move, and jicofo's
//!   log shows no new connection attempt;
//! - the witnesses saw no unavailable presence from the focus's nick and no
//!   `session-terminate`, and their conference is still listed with both of them.
//!
//! Where the attacker itself should get an error (`policy-violation` for a skipped
//! oversized/too-deep IQ, `bad-request` for a room outside the conference MUC service,
//! `resource-constraint` past a limit, an error for refused sources) that is asserted too.
//! Every check is reported on stderr as `[class] ok|FAIL what: detail` and a test fails
//! at the end with the list of its failed checks (so one run shows all of them; run with
//! `--nocapture` to see the report).

mod common;

use std::fmt::Display;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::client::TestClient;
use common::deploy::{jicofo_help, proc_status, Deployment, Participant, FEATURES_2021, T};
use jicofo::xml::{Element, MAX_DEPTH};
use jicofo::xmpp::ns;
use jicofo::xmpp::stanza::{iq_result, parse_error};
use serde_json::Value;

/// How long an attacker waits for an answer it should get.
const ANSWER: Duration = Duration::from_secs(5);
/// "Normal time" for a new room: request → ready, and the second join → both offers.
const NORMAL: Duration = Duration::from_secs(3);
/// Prosody's default `c2s_stanza_size_limit` (mod_c2s, Prosody 0.12: 256 KiB; Jitsi's
/// Prosody configuration does not change it). Hostile client stanzas stay below it, so
/// that they would pass a production Prosody too (the test Prosody allows 10 MiB).
const PROSODY_C2S_LIMIT: usize = 256 * 1024;
/// The focus's stanza cap (`jicofo::xml::DEFAULT_MAX_STANZA`).
const FOCUS_CAP: usize = jicofo::xml::DEFAULT_MAX_STANZA;
/// The ICE ufrag of forged Colibri2 answers.
const FORGED_UFRAG: &str = "forgedufrag";
/// The meeting id of forged MUC owner forms.
const FORGED_MEETING_ID: &str = "forged-meeting-id";

// ------------------------------------------------------------------------------------
// reporting

/// Named checks of one class: each is printed; the test fails at the end if any failed.
struct Checks {
    class: &'static str,
    failed: Vec<String>,
    passed: usize,
}

impl Checks {
    fn check(&mut self, what: &str, ok: bool, detail: impl Display) -> bool {
        eprintln!("[{}] {} {}: {}", self.class, if ok { "ok  " } else { "FAIL" }, what, detail);
        if ok {
            self.passed += 1;
        } else {
            self.failed.push(format!("{}: {}", what, detail));
        }
        ok
    }

    fn note(&self, what: impl Display) {
        eprintln!("[{}] .... {}", self.class, what);
    }

    fn finish(self) {
        eprintln!("[{}] {} checks passed, {} failed", self.class, self.passed, self.failed.len());
        if !self.failed.is_empty() {
            panic!("[{}] {} failed check(s):\n  {}", self.class, self.failed.len(), self.failed.join("\n  "));
        }
    }
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

/// The condition of an IQ error answer, or what came instead.
fn condition(answer: &Option<Element>) -> Option<String> {
    answer.as_ref().filter(|a| a.get_attr("type") == Some("error")).and_then(parse_error).map(|e| e.condition_name)
}

fn describe(answer: &Option<Element>) -> String {
    match answer {
        None => "no answer".into(),
        Some(a) => {
            let t = a.to_xml();
            if t.len() > 300 {
                format!("{}… ({} bytes)", &t[..300], t.len())
            } else {
                t
            }
        }
    }
}

// ------------------------------------------------------------------------------------
// participants

/// Two participants of one room, both with an offer.
struct Pair {
    a: Participant,
    b: Participant,
    /// The first conference request → `ready='true'`.
    ready: Duration,
    /// The second join → both `session-initiate`s received.
    offer: Duration,
    si_a: Element,
    si_b: Element,
}

/// Ask for `room` until `ready='true'`; the time it took.
fn request_ready(p: &mut Participant, room: &str, timeout: Duration) -> Result<Duration, String> {
    p.room = room.to_string();
    let t0 = Instant::now();
    loop {
        let left = timeout.saturating_sub(t0.elapsed());
        match p.ask_conference(room, left) {
            None => return Err(format!("{}: no answer to the conference request within {:?}", p.nick, timeout)),
            Some(a) if a.get_attr("type") == Some("error") => {
                return Err(format!("{}: conference request refused: {}", p.nick, describe(&Some(a))))
            }
            Some(a) => {
                if a.get_child("conference", ns::FOCUS).and_then(|c| c.get_attr("ready")) == Some("true") {
                    return Ok(t0.elapsed());
                }
            }
        }
        if t0.elapsed() >= timeout {
            return Err(format!("{}: never ready within {:?}", p.nick, timeout));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `nicks[0]` and `nicks[1]` request `room`, join it and receive their offers (acked);
/// with `capture`, both accept with that captured session-accept.
fn pair(d: &Deployment, room: &str, nicks: [&str; 2], tolerant: bool, capture: Option<&str>) -> Result<Pair, String> {
    let mut a = d.participant(nicks[0], FEATURES_2021);
    let mut b = d.participant(nicks[1], FEATURES_2021);
    a.client.tolerant = tolerant;
    b.client.tolerant = tolerant;
    let ready = request_ready(&mut a, room, T)?;
    a.join();
    request_ready(&mut b, room, T)?;
    b.join();
    let t_join = Instant::now();
    let si_a = a.expect_jingle("session-initiate", T).ok_or_else(|| format!("{}: no session-initiate within {:?}", nicks[0], T))?;
    let si_b = b.expect_jingle("session-initiate", T).ok_or_else(|| format!("{}: no session-initiate within {:?}", nicks[1], T))?;
    let offer = t_join.elapsed();
    if let Some(cap) = capture {
        for (p, si) in [(&mut a, &si_a), (&mut b, &si_b)] {
            let acc = p.session_accept(si, cap);
            let r = p.client.iq(acc, T);
            if r.get_attr("type") != Some("result") {
                return Err(format!("{}: session-accept refused: {}", p.nick, describe(&Some(r))));
            }
        }
    }
    Ok(Pair { a, b, ready, offer, si_a, si_b })
}

/// Wait for the answer (result or error) to the IQ `id`.
fn answer_to(c: &mut TestClient, id: &str, timeout: Duration) -> Option<Element> {
    c.wait_for(timeout, |el| el.name == "iq" && el.get_attr("id") == Some(id) && matches!(el.get_attr("type"), Some("result") | Some("error")))
}

fn jingle_of(el: &Element) -> Option<&Element> {
    el.get_child("jingle", ns::JINGLE)
}

fn sid_of(si: &Element) -> String {
    jingle_of(si).and_then(|j| j.get_attr("sid")).unwrap_or_default().to_string()
}

fn has_content(si: &Element, name: &str) -> bool {
    jingle_of(si).is_some_and(|j| j.children_named("content", ns::JINGLE).any(|c| c.get_attr("name") == Some(name)))
}

/// The ICE ufrag of an offer.
fn offer_ufrag(si: &Element) -> Option<String> {
    let j = jingle_of(si)?;
    j.children_named("content", ns::JINGLE)
        .find_map(|c| c.get_child("transport", ns::ICE_UDP))
        .and_then(|t| t.get_attr("ufrag"))
        .map(str::to_string)
}

/// The longest attribute value or text anywhere in `el`.
fn longest_value(el: &Element) -> usize {
    let own = el.attrs.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
    let text = el.text_content().len().min(if el.elements().next().is_none() { usize::MAX } else { 0 });
    el.elements().map(longest_value).fold(own.max(text), usize::max)
}

// ------------------------------------------------------------------------------------
// jicofo's state

fn stats_of(d: &Deployment) -> Option<Value> {
    let (_, body) = d.http_within("GET", "/stats", None, Duration::from_secs(5))?;
    serde_json::from_str(&body).ok()
}

/// `xmpp.reconnects` (a number, or one number per connection).
fn reconnects(stats: &Value) -> Option<u64> {
    let r = &stats["xmpp"]["reconnects"];
    r.as_u64().or_else(|| r.as_object().map(|o| o.values().filter_map(Value::as_u64).sum()))
}

/// Connection attempts jicofo logged (both connections log `<name>: connecting to`).
fn connection_attempts(log: &str) -> usize {
    log.lines().filter(|l| l.contains(": connecting to ")).count()
}

fn conference_entry(stats: &Value, room: &str) -> Option<Value> {
    stats["conference_list"].as_array()?.iter().find(|c| c["room"] == room).cloned()
}

fn bridge_operational(stats: &Value) -> bool {
    stats["bridge_selector"]["bridges"].as_array().is_some_and(|b| b.iter().any(|b| b["operational"] == true))
}

// ------------------------------------------------------------------------------------
// the scene: jicofo with one bridge and a witness conference

struct Scene {
    d: Deployment,
    c: Checks,
    witness: Vec<Participant>,
    witness_room: String,
    reconnects0: Option<u64>,
    attempts0: usize,
}

impl Scene {
    /// Prosody, one simulated bridge `jvb1`, jicofo with those of `flags` this build knows,
    /// and the witness conference.
    fn start(class: &'static str, flags: &[&str]) -> Scene {
        Scene::start_logging(class, flags, None)
    }

    /// `start` with jicofo's `RUST_LOG` set to `log` (unless `JICOFO_TEST_LOG` says otherwise):
    /// floods are run at `info`, as debug logging of every stanza would dominate the CPU.
    fn start_logging(class: &'static str, flags: &[&str], log: Option<&str>) -> Scene {
        let mut d = Deployment::prepare(&format!("hostile-{}", class), &[("jvb1", &[])]);
        let c = Checks { class, failed: Vec::new(), passed: 0 };
        let help = jicofo_help();
        let (known, unknown): (Vec<&str>, Vec<&str>) =
            flags.iter().copied().partition(|f| help.contains(f.split('=').next().unwrap_or(f)));
        if !unknown.is_empty() {
            c.note(format!("this jicofo has no {:?}: started without", unknown));
        }
        match log.filter(|_| std::env::var("JICOFO_TEST_LOG").is_err()) {
            Some(level) => {
                d.spawn_jicofo(&known, &[("RUST_LOG", level)]);
                d.wait_up(Duration::from_secs(15));
            }
            None => d.start_jicofo(&known),
        }
        // (`/stats` lists at most 100 conferences, sorted by room: this one comes first.)
        let witness_room = format!("a-witness@{}", d.prosody.muc_domain());
        let w = pair(&d, &witness_room, ["alice", "bob"], false, Some("lyno-session-accept.xml"))
            .unwrap_or_else(|e| panic!("[{}] the witness conference did not start: {}", class, e));
        c.note(format!("witness set-up: ready {}, offers {} after the second join", ms(w.ready), ms(w.offer)));
        let s = stats_of(&d).expect("stats");
        let reconnects0 = reconnects(&s);
        let attempts0 = connection_attempts(&d.jicofo_log());
        Scene { d, c, witness: vec![w.a, w.b], witness_room, reconnects0, attempts0 }
    }

    fn muc(&self) -> String {
        self.d.prosody.muc_domain()
    }

    /// Two attackers (tolerant clients) in `room`, offers received; with `capture`, accepted.
    fn attackers(&self, room: &str, nicks: [&str; 2], capture: Option<&str>) -> Pair {
        let r = format!("{}@{}", room, self.muc());
        pair(&self.d, &r, nicks, true, capture).unwrap_or_else(|e| panic!("[{}] attackers could not set up: {}", self.c.class, e))
    }

    /// A new pair in a new room: timings, or what went wrong.
    fn probe(&self, label: &str) -> Result<Pair, String> {
        let room = format!("probe-{}@{}", label, self.muc());
        pair(&self.d, &room, [&format!("{}-1", label), &format!("{}-2", label)], false, None)
    }

    /// The checks every class ends with.
    fn finish(mut self) {
        let alive = self.d.jicofo_running();
        self.c.check("jicofo's process is still running", alive, if alive { "running" } else { "exited" });
        match self.probe("final") {
            Ok(p) => {
                self.c.note(format!("new room after the attack: ready {}, offers {} after the second join", ms(p.ready), ms(p.offer)));
                self.c.check("a new room is ready in normal time", p.ready <= NORMAL, format!("{} (limit {})", ms(p.ready), ms(NORMAL)));
                self.c.check("its participants get offers in normal time", p.offer <= NORMAL, format!("{} (limit {})", ms(p.offer), ms(NORMAL)));
            }
            Err(e) => {
                self.c.check("a new participant in a new room gets ready and an offer", false, e);
            }
        }
        let stats = stats_of(&self.d);
        let now = stats.as_ref().and_then(reconnects);
        match (self.reconnects0, now) {
            (Some(a), Some(b)) => self.c.check("xmpp.reconnects in /stats did not move", a == b, format!("{} → {}", a, b)),
            _ => self.c.check("xmpp.reconnects in /stats did not move", false, "/stats has no xmpp.reconnects"),
        };
        let attempts = connection_attempts(&self.d.jicofo_log());
        self.c.check(
            "no new connection attempt in jicofo's log",
            attempts == self.attempts0,
            format!("{} → {} 'connecting to' lines", self.attempts0, attempts),
        );
        let focus = format!("{}/{}", self.witness_room, "focus");
        for w in &mut self.witness {
            let seen = w.client.drain(Duration::from_millis(300));
            let left = seen
                .iter()
                .filter(|el| el.name == "presence" && el.get_attr("from") == Some(focus.as_str()) && el.get_attr("type") == Some("unavailable"))
                .count();
            let focus_presences = seen.iter().filter(|el| el.name == "presence" && el.get_attr("from") == Some(focus.as_str())).count();
            let terminated = seen
                .iter()
                .filter(|el| jingle_of(el).is_some_and(|j| j.get_attr("action") == Some("session-terminate")))
                .count();
            self.c.check(
                &format!("witness {} saw no focus leave or rejoin", w.nick),
                left == 0,
                format!("{} unavailable presence(s) of the focus, {} focus presence(s) in all", left, focus_presences),
            );
            self.c.check(&format!("witness {} got no session-terminate", w.nick), terminated == 0, format!("{}", terminated));
        }
        let entry = stats.as_ref().and_then(|s| conference_entry(s, &self.witness_room));
        self.c.check(
            "the witness conference is still listed with both participants",
            entry.as_ref().is_some_and(|e| e["participants"] == 2),
            entry.map(|e| e.to_string()).unwrap_or_else(|| "not listed".into()),
        );
        self.c.finish();
    }
}

// ------------------------------------------------------------------------------------
// hostile markup

/// `<presence to>` with an extension nested so that the stanza is `depth` elements deep.
fn deep_presence(to: &str, depth: usize) -> String {
    let chain = depth - 2;
    format!("<presence to='{}'><hostile xmlns='urn:example:hostile'>{}{}</hostile></presence>", to, "<d>".repeat(chain), "</d>".repeat(chain))
}

/// An IQ get to `to`, `depth` elements deep.
fn deep_iq(to: &str, id: &str, depth: usize) -> String {
    let chain = depth - 2;
    format!(
        "<iq type='get' id='{}' to='{}'><hostile xmlns='urn:example:hostile'>{}{}</hostile></iq>",
        id,
        to,
        "<d>".repeat(chain),
        "</d>".repeat(chain)
    )
}

/// A Jingle source-add whose `<source>` holds a chain making the stanza `depth` deep.
fn deep_source_add(to: &str, id: &str, sid: &str, ssrc: u32, depth: usize) -> String {
    let chain = depth - 5;
    format!(
        "<iq type='set' id='{id}' to='{to}'><jingle xmlns='{}' action='source-add' sid='{sid}'><content name='audio'>\
         <description xmlns='{}' media='audio'><source xmlns='{}' ssrc='{ssrc}'>{}{}</source></description></content></jingle></iq>",
        ns::JINGLE,
        ns::RTP,
        ns::SSMA,
        "<d>".repeat(chain),
        "</d>".repeat(chain)
    )
}

/// How many bytes `raw` becomes when Prosody re-serialises it (`'` and `"` → 6 bytes).
fn reescaped_len(raw: &str) -> usize {
    raw.len() + raw.bytes().filter(|b| *b == b'\'' || *b == b'"').count() * 5
}

fn xml_of(el: Element) -> String {
    el.to_xml_in(ns::CLIENT)
}

// ------------------------------------------------------------------------------------
// forged answers

fn forged_colibri_result(id: &str, to: &str, endpoints: &[&str]) -> String {
    let ep = |e: &str| {
        Element::new("endpoint", ns::COLIBRI2).attr("id", e).child(
            Element::new("transport", ns::COLIBRI2)
                .child(
                    Element::new("transport", ns::ICE_UDP)
                        .attr("ufrag", FORGED_UFRAG)
                        .attr("pwd", "forgedpasswordforgedpassword")
                        .child(
                            Element::new("fingerprint", ns::DTLS)
                                .attr("hash", "sha-256")
                                .attr("setup", "actpass")
                                .text("66:66:66:66:66:66:66:66:66:66:66:66:66:66:66:66:66:66:66:66:66:66:66:66:66:66:66:66:66:66:66:66"),
                        )
                        .child(
                            Element::new("candidate", ns::ICE_UDP)
                                .attr("component", "1")
                                .attr("foundation", "1")
                                .attr("generation", "0")
                                .attr("id", "forged1")
                                .attr("network", "0")
                                .attr("priority", "2130706431")
                                .attr("protocol", "udp")
                                .attr("type", "host")
                                .attr("ip", "192.0.2.66")
                                .attr("port", "10000"),
                        ),
                )
                .child(Element::new("sctp", ns::COLIBRI2).attr("port", "5000").attr("role", "server")),
        )
    };
    xml_of(
        Element::new("iq", ns::CLIENT)
            .attr("type", "result")
            .attr("id", id)
            .attr("to", to)
            .child(Element::new("conference-modified", ns::COLIBRI2).attr("meeting-id", "forged").children(endpoints.iter().map(|e| ep(e)))),
    )
}

fn forged_error(id: &str, to: &str, cond: &str) -> String {
    xml_of(
        Element::new("iq", ns::CLIENT).attr("type", "error").attr("id", id).attr("to", to).child(
            Element::new("error", ns::CLIENT).attr("type", "cancel").child(Element::new(cond, ns::STANZAS)),
        ),
    )
}

fn forged_disco(id: &str, to: &str) -> String {
    // Audio only: a victim believed to have no video gets an offer without video.
    xml_of(
        Element::new("iq", ns::CLIENT).attr("type", "result").attr("id", id).attr("to", to).child(
            Element::new("query", ns::DISCO_INFO)
                .child(Element::new("feature", ns::DISCO_INFO).attr("var", "urn:xmpp:jingle:apps:rtp:audio"))
                .child(Element::new("feature", ns::DISCO_INFO).attr("var", "urn:xmpp:jingle:1")),
        ),
    )
}

fn forged_owner_form(id: &str, to: &str) -> String {
    let field = |var: &str, v: &str| Element::new("field", ns::DATA).attr("var", var).child(Element::new("value", ns::DATA).text(v));
    xml_of(
        Element::new("iq", ns::CLIENT).attr("type", "result").attr("id", id).attr("to", to).child(
            Element::new("query", ns::MUC_OWNER).child(
                Element::new("x", ns::DATA)
                    .attr("type", "form")
                    .child(field("FORM_TYPE", "http://jabber.org/protocol/muc#roomconfig"))
                    .child(field("muc#roominfo_meetingId", FORGED_MEETING_ID)),
            ),
        ),
    )
}

/// Ids the focus could be using in conference number `conference` with the old
/// sequential scheme `c<conference>-<n>`.
fn guessed_conference_ids(conference: u64) -> Vec<String> {
    (1..=20).map(|n| format!("c{}-{}", conference, n)).collect()
}

/// The number the next conference gets. An attacker learns the numbers from the ids of
/// the IQs the focus sends it (see `unwrap_muc_id`) and can count rooms it creates; the
/// test, which cannot know about other rooms, reads the count from /stats.
fn next_conference(d: &Deployment) -> u64 {
    stats_of(d).and_then(|s| s["total_conferences_created"].as_u64()).unwrap_or(0) + 1
}

/// The focus's own id inside an id Prosody's MUC rewrote when it relayed an IQ from the
/// focus's room JID to an occupant: base64 of `<occupant JID> NUL <original id> NUL <hmac>`.
/// Occupants see it; ids that were not rewritten are returned as they are.
fn unwrap_muc_id(id: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(id)
        .ok()
        .and_then(|raw| raw.split(|b| *b == 0).nth(1).map(|p| String::from_utf8_lossy(p).to_string()))
        .filter(|inner| !inner.is_empty())
        .unwrap_or_else(|| id.to_string())
}

/// A ping to each focus JID from `c`, answered: everything `c` sent before has been
/// through Prosody and jicofo's event loop (so the steps of a test do not overlap).
fn flush(c: &mut TestClient, focus_jids: &[String]) {
    for (i, to) in focus_jids.iter().enumerate() {
        let id = format!("flush-{}-{}", i, c.new_id());
        c.send(&Element::new("iq", ns::CLIENT).attr("type", "get").attr("id", id.clone()).attr("to", to.clone()).child(Element::new("ping", ns::PING)));
        let _ = answer_to(c, &id, T);
    }
    c.clear_kept();
}

/// Send forged answers for every id in `ids` built by `make(id, to)`, to both focus JIDs.
fn spray(c: &mut TestClient, focus_jids: &[String], ids: &[String], make: &dyn Fn(&str, &str) -> String) -> usize {
    let mut text = String::new();
    let mut n = 0;
    for id in ids {
        for to in focus_jids {
            text.push_str(&make(id, to));
            n += 1;
        }
    }
    c.send_raw(&text);
    n
}

/// `f` on a spraying thread until `stop` is set, while `body` runs on this one.
fn spraying<R>(c: &mut TestClient, every: Duration, f: &(dyn Fn(&mut TestClient) -> usize + Sync), body: impl FnOnce() -> R) -> (R, usize) {
    let stop = AtomicBool::new(false);
    std::thread::scope(|sc| {
        let h = sc.spawn(|| {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += f(c);
                std::thread::sleep(every);
            }
            n
        });
        let r = body();
        stop.store(true, Ordering::Relaxed);
        (r, h.join().expect("spraying thread"))
    })
}

// ------------------------------------------------------------------------------------
// the classes

#[test]
fn too_deep_stanzas_cost_the_sender_an_error_only() {
    let mut s = Scene::start("deep", &[]);
    let mut m = s.attackers("deep", ["mallory", "trudy"], Some("lyno-session-accept.xml"));
    let room = format!("deep@{}", s.muc());
    let me = format!("{}/mallory", room);
    let component = s.d.prosody.focus_component();
    let focus_user = format!("focus@{}/focus", s.d.prosody.auth_domain());
    s.c.note(format!("the parser's limit (jicofo::xml::MAX_DEPTH) is {}", MAX_DEPTH));

    // Past the limit in a MUC presence extension: Prosody broadcasts it to the focus.
    for depth in [MAX_DEPTH + 1, 300, 2000] {
        m.a.client.send_raw(&deep_presence(&me, depth));
    }
    // Past the limit in IQs to the focus, on both connections: policy-violation.
    for to in [&component, &focus_user] {
        for depth in [MAX_DEPTH + 1, 300] {
            let id = format!("deep-{}", depth);
            m.a.client.send_raw(&deep_iq(to, &id, depth));
            let a = answer_to(&mut m.a.client, &id, ANSWER);
            s.c.check(
                &format!("an IQ {} deep to {} gets policy-violation", depth, to),
                condition(&a).as_deref() == Some("policy-violation"),
                describe(&a),
            );
        }
    }
    // At the limit: accepted by the parser, handled on the loop and on the conference
    // thread (source parsing, cloning, dropping) without harm.
    m.a.client.send_raw(&deep_presence(&me, MAX_DEPTH));
    m.a.client.send_raw(&deep_iq(&component, "deep-limit-component", MAX_DEPTH));
    let a = answer_to(&mut m.a.client, "deep-limit-component", ANSWER);
    s.c.check(&format!("an IQ exactly {} deep to the component is answered", MAX_DEPTH), a.is_some(), describe(&a));
    let sid = sid_of(&m.si_a);
    m.a.client.send_raw(&deep_source_add(&format!("{}/focus", room), "deep-limit-jingle", &sid, 1_234_567, MAX_DEPTH));
    let a = answer_to(&mut m.a.client, "deep-limit-jingle", ANSWER);
    s.c.check(&format!("a source-add exactly {} deep is answered by the conference", MAX_DEPTH), a.is_some(), describe(&a));
    // JSON nested far past serde_json's recursion limit, where JSON sources travel.
    m.a.client.send_raw(&format!(
        "<presence to='{}'><SourceInfo xmlns='jabber:client'>{{\"a\":{}</SourceInfo></presence>",
        me,
        "[".repeat(100_000)
    ));
    // The attacker's own conference is still there and answers.
    std::thread::sleep(Duration::from_millis(500));
    let entry = stats_of(&s.d).and_then(|st| conference_entry(&st, &room));
    s.c.check("the attacker's conference is still running", entry.is_some(), entry.map(|e| e.to_string()).unwrap_or_default());
    s.c.note(format!("stanzas the attackers' own client could not parse (reflected by the MUC): {}", m.a.client.unparsed + m.b.client.unparsed));
    drop(m);
    s.finish();
}

#[test]
fn stanzas_grown_past_the_cap_by_prosody_cost_the_sender_an_error_only() {
    let mut s = Scene::start("large", &[]);
    let m = s.attackers("large", ["mallory", "trudy"], None);
    let mut a = m.a;
    let room = format!("large@{}", s.muc());
    let me = format!("{}/mallory", room);
    let component = s.d.prosody.focus_component();
    let focus_user = format!("focus@{}/focus", s.d.prosody.auth_domain());

    let mut sent = Vec::new();
    // A presence full of ' in text, and one full of " in an attribute.
    sent.push((
        "presence, ' in text",
        format!("<presence to='{}'><hostile xmlns='urn:example:hostile'>{}</hostile></presence>", me, "'".repeat(200_000)),
    ));
    sent.push((
        "presence, \" in an attribute",
        format!("<presence to='{}'><hostile xmlns='urn:example:hostile' v='{}'/></presence>", me, "\"".repeat(200_000)),
    ));
    // A groupchat message (the focus is an occupant; Prosody also keeps it in the history).
    sent.push((
        "groupchat message",
        format!("<message to='{}' type='groupchat'><body>{}</body></message>", room, "'".repeat(200_000)),
    ));
    for (what, text) in &sent {
        assert!(text.len() < PROSODY_C2S_LIMIT, "{} must pass Prosody's default limit", what);
        assert!(reescaped_len(text) > FOCUS_CAP, "{} must outgrow the focus's cap", what);
        s.c.note(format!("{}: {} bytes sent, ~{} bytes after Prosody re-escapes it", what, text.len(), reescaped_len(text)));
        a.client.send_raw(text);
    }
    for to in [&component, &focus_user] {
        let id = "large-iq";
        let text = format!("<iq type='get' id='{}' to='{}'><query xmlns='urn:example:hostile'>{}</query></iq>", id, to, "'".repeat(60_000));
        assert!(text.len() < PROSODY_C2S_LIMIT && reescaped_len(&text) > FOCUS_CAP);
        s.c.note(format!("IQ to {}: {} bytes sent, ~{} after re-escaping", to, text.len(), reescaped_len(&text)));
        a.client.send_raw(&text);
        let ans = answer_to(&mut a.client, id, ANSWER);
        s.c.check(&format!("an IQ re-escaped past the cap, to {}, gets policy-violation", to), condition(&ans).as_deref() == Some("policy-violation"), describe(&ans));
    }
    drop((a, m.b));
    s.finish();
}

#[test]
fn forged_iq_answers_change_nobody_elses_conference() {
    let mut s = Scene::start("forged", &[]);
    let mut m = s.attackers("forge", ["mallory", "trudy"], Some("lyno-session-accept.xml"));
    let focus_jids = vec![format!("focus@{}/focus", s.d.prosody.auth_domain()), s.d.prosody.focus_component()];
    // Ids the attackers saw in IQs the focus sent them (disco, Jingle), with Prosody's MUC
    // rewriting undone: replayed as they are.
    let observed: Vec<String> =
        m.a.client.seen_request_ids.iter().chain(m.b.client.seen_request_ids.iter()).map(|id| unwrap_muc_id(id)).collect();
    s.c.note(format!("ids observed by the attackers (MUC rewriting undone): {:?}", observed));
    let muc = s.muc();
    let with_observed = |mut v: Vec<String>| {
        v.extend(observed.iter().cloned());
        v
    };

    // 1. A forged Colibri2 allocation answer while the bridge is slow to answer.
    s.d.sim("jvb1").command("delay 1500");
    std::thread::sleep(Duration::from_millis(100));
    let room = format!("victim-colibri@{}", muc);
    let ids = with_observed(guessed_conference_ids(next_conference(&s.d)));
    let endpoints = ["vc-1", "vc-2"];
    let make = |id: &str, to: &str| forged_colibri_result(id, to, &endpoints);
    let (victims, n) = spraying(&mut m.a.client, Duration::from_millis(100), &|c| spray(c, &focus_jids, &ids, &make), || {
        pair(&s.d, &room, endpoints, false, None)
    });
    s.d.sim("jvb1").command("delay 0");
    flush(&mut m.a.client, &focus_jids);
    s.c.note(format!("{} forged conference-modified answers sent", n));
    match victims {
        Ok(v) => {
            for (nick, si) in [(endpoints[0], &v.si_a), (endpoints[1], &v.si_b)] {
                let got = offer_ufrag(si);
                let allocated_now = || {
                    s.d.colibri_sent("jvb1").iter().find_map(|iq| {
                        let cm = iq.get_child("conference-modified", ns::COLIBRI2)?;
                        let e = cm.children_named("endpoint", ns::COLIBRI2).find(|e| e.get_attr("id") == Some(nick))?;
                        e.get_child("transport", ns::COLIBRI2)?.get_child("transport", ns::ICE_UDP)?.get_attr("ufrag").map(str::to_string)
                    })
                };
                // (The slowed bridge may answer after a forged answer was taken.)
                let deadline = Instant::now() + Duration::from_secs(3);
                let mut allocated = allocated_now();
                while allocated.is_none() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(100));
                    allocated = allocated_now();
                }
                s.c.check(
                    &format!("{}'s offer carries the transport the bridge allocated", nick),
                    got.is_some() && got == allocated && got.as_deref() != Some(FORGED_UFRAG),
                    format!("offer ufrag {:?}, bridge allocated {:?}", got, allocated),
                );
            }
        }
        Err(e) => {
            s.c.check("victims of forged colibri answers get offers", false, e);
        }
    }

    // 2. A forged disco#info answer while the victim has not answered its own yet.
    let room = format!("victim-disco@{}", muc);
    let ids = with_observed(guessed_conference_ids(next_conference(&s.d)));
    let mut v1 = s.d.participant("vd-1", FEATURES_2021);
    v1.client.disco_features = None; // holds its disco#info answer
    let r = request_ready(&mut v1, &room, T);
    s.c.check("the disco victim's room is ready", r.is_ok(), format!("{:?}", r));
    v1.join();
    let disco = v1.client.wait_for(T, |el| el.name == "iq" && el.get_attr("type") == Some("get") && el.get_child("query", ns::DISCO_INFO).is_some());
    s.c.check("the focus asks the disco victim for its features", disco.is_some(), describe(&disco));
    let n = spray(&mut m.a.client, &focus_jids, &ids, &forged_disco);
    flush(&mut m.a.client, &focus_jids);
    let real = disco.as_ref().and_then(|d| d.get_attr("id")).map(unwrap_muc_id).unwrap_or_default();
    s.c.note(format!("{} forged disco#info answers sent (the focus's id {:?} is {}among them)", n, real, if ids.contains(&real) { "" } else { "not " }));
    std::thread::sleep(Duration::from_millis(200));
    if let Some(q) = disco {
        let mut answer = Element::new("query", ns::DISCO_INFO);
        for f in FEATURES_2021 {
            answer = answer.child(Element::new("feature", ns::DISCO_INFO).attr("var", *f));
        }
        v1.client.send(&iq_result(&q).child(answer));
    }
    v1.client.disco_features = Some(FEATURES_2021.iter().map(|f| f.to_string()).collect());
    let mut v2 = s.d.participant("vd-2", FEATURES_2021);
    let r = request_ready(&mut v2, &room, T);
    s.c.check("the disco victim's room-mate is ready", r.is_ok(), format!("{:?}", r));
    v2.join();
    let si = v1.expect_jingle("session-initiate", T);
    s.c.check(
        "the disco victim's offer follows its own features (video included)",
        si.as_ref().is_some_and(|si| has_content(si, "video") && has_content(si, "audio")),
        si.as_ref().map(|si| format!("contents: {:?}", jingle_of(si).map(|j| j.children_named("content", ns::JINGLE).filter_map(|c| c.get_attr("name")).collect::<Vec<_>>()))).unwrap_or_else(|| "no offer".into()),
    );
    drop((v1, v2));

    // 3. Forged MUC owner forms (a meeting id of the attacker's choice) while the victim's
    //    conference configures its room.
    let room = format!("victim-form@{}", muc);
    let ids: Vec<String> = guessed_conference_ids(next_conference(&s.d)).into_iter().take(2).collect();
    let (victims, n) = spraying(&mut m.a.client, Duration::from_millis(2), &|c| spray(c, &focus_jids, &ids, &forged_owner_form), || {
        std::thread::sleep(Duration::from_millis(200));
        pair(&s.d, &room, ["vf-1", "vf-2"], false, None)
    });
    flush(&mut m.a.client, &focus_jids);
    s.c.note(format!("{} forged owner forms sent", n));
    s.c.check("the form victims get offers", victims.is_ok(), victims.as_ref().err().cloned().unwrap_or_default());
    let created: Vec<String> = s
        .d
        .colibri_received("jvb1")
        .iter()
        .filter(|cm| cm.get_attr("name") == Some(room.as_str()))
        .filter_map(|cm| cm.get_attr("meeting-id").map(str::to_string))
        .collect();
    s.c.check(
        "the form victims' bridge conference has the focus's own meeting id",
        !created.is_empty() && created.iter().all(|m| m != FORGED_MEETING_ID),
        format!("meeting ids sent to the bridge: {:?}", created),
    );
    drop(victims);

    // 4. A forged error to a victim's session-initiate while the victim has not acked it.
    let room = format!("victim-jingle@{}", muc);
    let ids = with_observed(guessed_conference_ids(next_conference(&s.d)));
    let mut v1 = s.d.participant("vj-1", FEATURES_2021);
    let mut v2 = s.d.participant("vj-2", FEATURES_2021);
    let ok = request_ready(&mut v1, &room, T).and_then(|_| request_ready(&mut v2, &room, T));
    s.c.check("the Jingle victims' room is ready", ok.is_ok(), format!("{:?}", ok));
    v1.join();
    v2.join();
    let si = v1.client.wait_for(T, |el| jingle_of(el).is_some_and(|j| j.get_attr("action") == Some("session-initiate")));
    let make = |id: &str, to: &str| forged_error(id, to, "bad-request");
    let n = spray(&mut m.a.client, &focus_jids, &ids, &make);
    flush(&mut m.a.client, &focus_jids);
    let real = si.as_ref().and_then(|d| d.get_attr("id")).map(unwrap_muc_id).unwrap_or_default();
    s.c.note(format!("{} forged errors to the pending session-initiate sent (the focus's id {:?} is {}among them)", n, real, if ids.contains(&real) { "" } else { "not " }));
    std::thread::sleep(Duration::from_millis(200));
    match si {
        Some(si) => {
            v1.client.send(&iq_result(&si));
            let acc = v1.session_accept(&si, "lyno-session-accept.xml");
            let r = v1.client.iq(acc, T);
            s.c.check("the Jingle victim's session-accept is accepted", r.get_attr("type") == Some("result"), describe(&Some(r)));
            let seen = v1.client.drain(Duration::from_millis(500));
            let terminated = seen.iter().any(|el| jingle_of(el).is_some_and(|j| j.get_attr("action") == Some("session-terminate")));
            s.c.check("the Jingle victim's session was not terminated", !terminated, format!("{} stanzas seen", seen.len()));
        }
        None => {
            s.c.check("the Jingle victim gets an offer", false, "no session-initiate");
        }
    }
    drop((v1, v2));

    // 5. Forged Colibri2 errors (internal-server-error: "the bridge failed") while the
    //    bridge is slow to answer a victim's allocation.
    s.d.sim("jvb1").command("delay 1500");
    std::thread::sleep(Duration::from_millis(100));
    let room = format!("victim-colibri-error@{}", muc);
    let ids = with_observed(guessed_conference_ids(next_conference(&s.d)));
    let make = |id: &str, to: &str| forged_error(id, to, "internal-server-error");
    let (victims, n) = spraying(&mut m.a.client, Duration::from_millis(100), &|c| spray(c, &focus_jids, &ids, &make), || {
        pair(&s.d, &room, ["ve-1", "ve-2"], false, None)
    });
    s.d.sim("jvb1").command("delay 0");
    flush(&mut m.a.client, &focus_jids);
    s.c.note(format!("{} forged colibri errors sent", n));
    s.c.check("victims of forged colibri errors get offers", victims.is_ok(), victims.as_ref().err().cloned().unwrap_or_default());
    let st = stats_of(&s.d).unwrap_or_default();
    s.c.check("the bridge is still operational after forged colibri errors", bridge_operational(&st), st["bridge_selector"].to_string());
    drop(victims);

    // 6. Forged health-check errors while a health check is pending: the bridge simulator
    //    is paused around the next check (one every 10 s) so that the check waits.
    let record = s.d.prosody.dir.join("jvb-jvb1.jsonl");
    let last_check_ms = std::fs::read_to_string(&record)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["kind"] == "health" && v["dir"] == "in")
        .filter_map(|v| v["t_ms"].as_u64())
        .max();
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    let pause_at = match last_check_ms {
        Some(t) => {
            let mut next = t + 10_000;
            while next < now_ms + 300 {
                next += 10_000;
            }
            next - 700
        }
        None => now_ms,
    };
    std::thread::sleep(Duration::from_millis(pause_at.saturating_sub(now_ms)));
    let sim_pid = s.d.sim("jvb1").child.id().to_string();
    let _ = std::process::Command::new("kill").args(["-STOP", &sim_pid]).status();
    let mut ids: Vec<String> = (1..=60).map(|n| format!("h{}", n)).collect();
    ids.extend((1..=30).map(|n| format!("ka-{}", n)));
    ids.extend(observed.iter().cloned());
    let make = |id: &str, to: &str| forged_error(id, to, "internal-server-error");
    let mut n = 0;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(2000) {
        n += spray(&mut m.a.client, &focus_jids, &ids, &make);
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::process::Command::new("kill").args(["-CONT", &sim_pid]).status();
    flush(&mut m.a.client, &focus_jids);
    s.c.note(format!("{} forged health-check/keepalive errors sent while the bridge was paused (last check seen at {:?})", n, last_check_ms));
    std::thread::sleep(Duration::from_millis(300));
    let st = stats_of(&s.d).unwrap_or_default();
    s.c.check("the bridge is still operational after forged health errors", bridge_operational(&st), st["bridge_selector"].to_string());
    let health = s.d.http_within("GET", "/about/health", None, Duration::from_secs(5));
    s.c.check("/about/health is 200", health.as_ref().is_some_and(|h| h.0 == 200), format!("{:?}", health));
    let log = s.d.jicofo_log();
    let failed = log.lines().filter(|l| l.contains("health check failed")).count();
    s.c.check("jicofo logged no failed health check", failed == 0, format!("{} line(s)", failed));
    drop(m);
    s.finish();
}

#[test]
fn rooms_outside_the_conference_service_are_refused() {
    let mut s = Scene::start("foreign", &[]);
    let d = &s.d.prosody.domain.clone();
    let mut m = s.d.participant("mallory", FEATURES_2021);
    m.client.tolerant = true;
    let rooms = vec![
        format!("x@internal.auth.{}", d),
        format!("jvbbrewery@internal.auth.{}", d),
        format!("x@auth.{}", d),
        format!("x@{}", d),
        format!("x@focus.{}", d),
        "x@evil.example".to_string(),
        "x@conference.evil.example".to_string(),
        format!("{}@conference.{}", "n".repeat(900), d),
        format!("x@conference.{}/resource", d),
        format!("a'b@conference.{}", d),
        format!("@conference.{}", d),
    ];
    let before = stats_of(&s.d).and_then(|st| st["total_conferences_created"].as_u64()).unwrap_or(0);
    for r in &rooms {
        let shown = if r.len() > 60 { format!("{}…({} bytes)", &r[..40], r.len()) } else { r.clone() };
        let a = m.ask_conference(r, ANSWER);
        s.c.check(&format!("XMPP request for {} gets bad-request", shown), condition(&a).as_deref() == Some("bad-request"), describe(&a));
        let body = serde_json::json!({ "room": r }).to_string();
        let h = s.d.http_within("POST", "/conference-request/v1", Some(&body), ANSWER);
        s.c.check(&format!("HTTP request for {} gets 400", shown), h.as_ref().is_some_and(|h| h.0 == 400), format!("{:?}", h));
    }
    // A control character in the node (only possible through JSON).
    let h = s.d.http_within("POST", "/conference-request/v1", Some(&format!("{{\"room\":\"a\\u0001b@conference.{}\"}}", d)), ANSWER);
    s.c.check("HTTP request for a node with a control character gets 400", h.as_ref().is_some_and(|h| h.0 == 400), format!("{:?}", h));
    let after = stats_of(&s.d).and_then(|st| st["total_conferences_created"].as_u64()).unwrap_or(0);
    s.c.check("no conference was created for them", after == before, format!("{} created", after - before));
    // A conference the focus started in a foreign room would end after the start timeout
    // (nobody joins) and leave that room: for the brewery, that is leaving the bridges.
    std::thread::sleep(jicofo::conference::START_TIMEOUT + Duration::from_secs(1));
    let st = stats_of(&s.d).unwrap_or_default();
    s.c.check("the bridge is still known and operational", bridge_operational(&st), st["bridge_selector"].to_string());
    drop(m);
    s.finish();
}

#[test]
fn a_room_creation_spree_is_limited_per_requester() {
    const PER_MINUTE: u64 = 20;
    let limit = format!("--max_new_rooms_per_minute={}", PER_MINUTE);
    let mut s = Scene::start_logging("spree", &[&limit], Some("info"));
    let pid = s.d.jicofo_pid().expect("running");
    let threads0 = proc_status(pid, "Threads").unwrap_or(0);
    let mut m = s.d.participant("mallory", FEATURES_2021);
    m.client.tolerant = true;
    const N: usize = 300;
    let t0 = Instant::now();
    let mut ids = Vec::new();
    let mut text = String::new();
    for i in 0..N {
        let id = format!("spree-{}", i);
        text.push_str(&xml_of(
            Element::new("iq", ns::CLIENT).attr("type", "set").attr("id", id.clone()).attr("to", m.focus.clone()).child(
                Element::new("conference", ns::FOCUS).attr("room", format!("spree{}@{}", i, s.muc())).attr("machine-uid", "m-mallory"),
            ),
        ));
        ids.push(id);
    }
    m.client.send_raw(&text);
    let (mut ready, mut not_ready, mut constraint, mut other, mut missing) = (0u64, 0u64, 0u64, 0u64, 0u64);
    for id in &ids {
        match answer_to(&mut m.client, id, Duration::from_secs(20)) {
            None => missing += 1,
            Some(a) if a.get_attr("type") == Some("error") => {
                if condition(&Some(a)).as_deref() == Some("resource-constraint") {
                    constraint += 1
                } else {
                    other += 1
                }
            }
            Some(a) => {
                if a.get_child("conference", ns::FOCUS).and_then(|c| c.get_attr("ready")) == Some("true") {
                    ready += 1
                } else {
                    not_ready += 1
                }
            }
        }
    }
    let threads = proc_status(pid, "Threads").unwrap_or(0);
    s.c.note(format!(
        "{} requests in {}: {} ready, {} not ready, {} resource-constraint, {} other errors, {} unanswered; jicofo threads {} → {}",
        N,
        ms(t0.elapsed()),
        ready,
        not_ready,
        constraint,
        other,
        missing,
        threads0,
        threads
    ));
    s.c.check("the spree is refused with resource-constraint past the limit", constraint > 0 && constraint + ready + not_ready == N as u64, format!("{} refused", constraint));
    s.c.check(&format!("at most {} of its rooms are created", PER_MINUTE), ready + not_ready <= PER_MINUTE, format!("{}", ready + not_ready));
    s.c.check(
        "jicofo's threads stay bounded",
        threads <= threads0 + PER_MINUTE + 5,
        format!("{} → {} (limit +{})", threads0, threads, PER_MINUTE + 5),
    );
    drop(m);
    // The final probe runs while the spree's rooms still exist (they end after 15 s).
    s.finish();
}

#[test]
fn a_presence_flood_in_the_attackers_room_disturbs_nobody() {
    let mut s = Scene::start_logging("flood", &[], Some("info"));
    let m = s.attackers("flood", ["mallory", "trudy"], Some("lyno-session-accept.xml"));
    let (mut a, b) = (m.a, m.b);
    let room = format!("flood@{}", s.muc());
    let me = format!("{}/mallory", room);
    let pid = s.d.jicofo_pid().expect("running");
    const FLOOD: Duration = Duration::from_secs(8);
    let mut batch = String::new();
    for i in 0..100 {
        batch.push_str(&format!(
            "<presence to='{}'><stats-id>flood-{}</stats-id><audiomuted xmlns='{}'>{}</audiomuted>\
             <videomuted xmlns='{}'>{}</videomuted><nick xmlns='http://jabber.org/protocol/nick'>m{}</nick></presence>",
            me,
            i,
            ns::AUDIO_MUTE,
            i % 2 == 0,
            ns::VIDEO_MUTE,
            i % 3 == 0,
            i
        ));
    }
    let flood = |c: &mut TestClient| -> usize {
        let t0 = Instant::now();
        let mut n = 0;
        while t0.elapsed() < FLOOD {
            c.send_raw(&batch);
            n += 100;
        }
        n
    };
    let ((during, ghost_ok), sent) = std::thread::scope(|sc| {
        let h = sc.spawn(|| flood(&mut a.client));
        // While the room's conference is inside a slow bridge request, a third participant
        // joins and leaves again: its leave must not be lost behind the flood.
        std::thread::sleep(Duration::from_millis(500));
        s.d.sim("jvb1").command("delay 3000");
        let mut g = s.d.participant("ghost", FEATURES_2021);
        let ghost_ok = request_ready(&mut g, &room, T).map(|_| g.join());
        std::thread::sleep(Duration::from_millis(1000));
        g.leave();
        std::thread::sleep(Duration::from_millis(2500));
        s.d.sim("jvb1").command("delay 0");
        let during = s.probe("during");
        drop(g);
        (
            (during.map(|p| (p.ready, p.offer)), ghost_ok.map(|_| ())),
            h.join().expect("flood thread"),
        )
    });
    s.c.note(format!("{} presences sent in {:?} ({} per second)", sent, FLOOD, sent as u64 / FLOOD.as_secs()));
    match &during {
        Ok((r, o)) => s.c.note(format!("a new room during the flood: ready {}, offers {}", ms(*r), ms(*o))),
        Err(e) => s.c.note(format!("a new room during the flood failed: {}", e)),
    }
    s.c.check("the ghost could join the flooded room", ghost_ok.is_ok(), format!("{:?}", ghost_ok));
    // Let the focus work through what is queued, then look at the flooded room.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut entry = None;
    while Instant::now() < deadline {
        entry = stats_of(&s.d).and_then(|st| conference_entry(&st, &room));
        if entry.as_ref().is_some_and(|e| e["participants"] == 2) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    s.c.check(
        "the flooded room counts exactly its two remaining participants (no ghost)",
        entry.as_ref().is_some_and(|e| e["participants"] == 2),
        entry.map(|e| e.to_string()).unwrap_or_else(|| "not listed".into()),
    );
    let hwm = proc_status(pid, "VmHWM").unwrap_or(0);
    s.c.check("jicofo's peak RSS stays bounded", hwm < 200 * 1024, format!("{:.1} MB (limit 200 MB)", hwm as f64 / 1024.0));
    drop((a, b));
    s.finish();
}

#[test]
fn oversized_or_conflicting_sources_are_refused_and_not_forwarded() {
    let mut s = Scene::start("sources", &[]);
    let capture = "lyno-session-accept-source-names.xml";
    let mut m = s.attackers("sources", ["mallory", "trudy"], Some(capture));
    let room = format!("sources@{}", s.muc());
    let focus = format!("{}/focus", room);
    let sid = sid_of(&m.si_a);
    const BIG: usize = 20_000;
    let source = |ssrc: u32, name: &str, video_type: Option<&str>, msid: &str| {
        Element::new("source", ns::SSMA)
            .attr("ssrc", ssrc.to_string())
            .attr("name", name)
            .attr_opt("videoType", video_type)
            .child(Element::new("parameter", ns::SSMA).attr("name", "msid").attr("value", msid))
    };
    let source_add = |id: &str, sources: Vec<Element>, groups: Vec<Element>| {
        Element::new("iq", ns::CLIENT).attr("type", "set").attr("id", id).attr("to", focus.clone()).child(
            Element::new("jingle", ns::JINGLE).attr("action", "source-add").attr("sid", sid.clone()).child(
                Element::new("content", ns::JINGLE)
                    .attr("name", "video")
                    .child(Element::new("description", ns::RTP).attr("media", "video").children(sources).children(groups)),
            ),
        )
    };
    let group = |semantics: &str, ssrcs: &[u32]| {
        Element::new("ssrc-group", ns::SSMA)
            .attr("semantics", semantics)
            .children(ssrcs.iter().map(|s| Element::new("source", ns::SSMA).attr("ssrc", s.to_string())))
    };
    let trudy_name = "trudy-v0";
    let cases: Vec<(&str, Element)> = vec![
        ("a source name of 20 kB", source_add("src-name", vec![source(91_000_001, &"n".repeat(BIG), None, "mallory-x t-1")], vec![])),
        ("an msid of 20 kB", source_add("src-msid", vec![source(91_000_002, "mallory-v7", None, &"m".repeat(BIG))], vec![])),
        ("a videoType of 20 kB", source_add("src-vt", vec![source(91_000_003, "mallory-v8", Some(&"v".repeat(BIG)), "mallory-y t-2")], vec![])),
        (
            "a SIM group repeating one SSRC",
            source_add("src-sim", vec![source(91_000_004, "mallory-v9", None, "mallory-z t-3")], vec![group("SIM", &[91_000_004, 91_000_004, 91_000_004])]),
        ),
        ("a source name another participant owns", source_add("src-steal", vec![source(91_000_005, trudy_name, None, "mallory-w t-4")], vec![])),
    ];
    for (what, iq) in cases {
        let id = iq.get_attr("id").unwrap().to_string();
        m.a.client.send(&iq);
        let ans = answer_to(&mut m.a.client, &id, ANSWER);
        s.c.check(&format!("source-add with {} is refused", what), ans.as_ref().is_some_and(|a| a.get_attr("type") == Some("error")), describe(&ans));
    }
    // An oversized name in a session-accept (a third attacker).
    let mut c3 = s.d.participant("oscar", FEATURES_2021);
    c3.client.tolerant = true;
    let r = request_ready(&mut c3, &room, T);
    s.c.check("the third attacker is in", r.is_ok(), format!("{:?}", r));
    c3.join();
    match c3.expect_jingle("session-initiate", T) {
        Some(si) => {
            let mut acc = c3.session_accept(&si, capture);
            if let Some(src) = acc
                .get_child_mut("jingle", ns::JINGLE)
                .and_then(|j| j.elements_mut().find(|c| c.name == "content" && c.get_attr("name") == Some("video")))
                .and_then(|c| c.elements_mut().find(|d| d.name == "description"))
                .and_then(|d| d.elements_mut().find(|s| s.name == "source"))
            {
                src.set_attr("name", "o".repeat(BIG));
            }
            let id = c3.client.new_id();
            acc.set_attr("id", id.clone());
            c3.client.send(&acc);
            let ans = answer_to(&mut c3.client, &id, ANSWER);
            s.c.check("a session-accept with a source name of 20 kB is refused", ans.as_ref().is_some_and(|a| a.get_attr("type") == Some("error")), describe(&ans));
        }
        None => {
            s.c.check("the third attacker gets an offer", false, "no session-initiate");
        }
    }
    std::thread::sleep(Duration::from_millis(1000));
    // Nothing oversized reached the room-mate or the bridge.
    let seen = m.b.client.drain(Duration::from_millis(300));
    let biggest = seen.iter().filter(|el| jingle_of(el).is_some()).map(longest_value).max().unwrap_or(0);
    s.c.check("the room-mate received no oversized source attribute", biggest < 1024, format!("longest value {} bytes", biggest));
    let biggest = s.d.colibri_received("jvb1").iter().map(longest_value).max().unwrap_or(0);
    s.c.check("the bridge received no oversized source attribute", biggest < 1024, format!("longest value {} bytes", biggest));
    let stolen = seen.iter().filter(|el| jingle_of(el).is_some_and(|j| j.get_attr("action") == Some("source-add"))).any(|el| {
        el.to_xml().contains(&format!("name='{}'", trudy_name))
    });
    s.c.check("the room-mate was not told its own source name belongs to someone else", !stolen, "");
    drop((m, c3));
    s.finish();
}
