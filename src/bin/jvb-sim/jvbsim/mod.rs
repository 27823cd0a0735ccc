//! A **bridge simulator** for tests and demos: it is *not* a Jitsi Videobridge and
//! handles no media at all.
//!
//! It logs into Prosody as an ordinary XMPP client, joins the bridge brewery MUC with
//! a `<stats/>` presence (re-sent every 5 s), and answers Colibri2
//! `conference-modify` requests and health checks the way a real JVB does (same
//! state machine, same error conditions, texts and colibri2 reasons; see
//! [`colibri`]). The ICE/DTLS/web-socket parameters it hands out are random and
//! point nowhere. Behaviour can be changed at run time ([`Command`]): failing health
//! checks, stress, drain, graceful shutdown, shutting down, delayed or missing
//! answers, leaving the brewery or vanishing like a killed process.
//!
//! [`SimRouter`] is a [`Router`] on the network event loop thread: it never blocks;
//! delayed answers wait in a queue released from [`Router::tick`]. Every received
//! conference-modify / health check and every answer can be recorded as one JSON
//! line per stanza ([`Recorder`]), so tests can assert on what the focus sent.

pub mod colibri;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, Write};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};
use log::{debug, error, info, warn};

use jicofo::jid::Jid;
use jicofo::net::{ConnId, NetHandle, Outbox, Router};
use jicofo::xml::Element;
use jicofo::xmpp::ns;
use jicofo::xmpp::stanza::{iq_error, iq_result, ErrorCondition, IqType};
pub use colibri::{Bridge, BridgeConfig};

/// Interval of the stats presence.
pub const PRESENCE_INTERVAL: Duration = Duration::from_secs(5);
/// The only connection of the simulator.
pub const CONN: ConnId = ConnId(0);

/// What the simulator is, as configured on the command line.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Bare JID of the brewery MUC.
    pub brewery: String,
    /// Nickname in the brewery (the bridge's identity for the focus).
    pub nick: String,
    pub region: Option<String>,
    pub stress: f64,
    pub version: String,
    /// Domain used in web-socket URLs.
    pub ws_domain: String,
    /// Delay of every colibri answer.
    pub delay: Duration,
    pub fail_health: bool,
    pub drain: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            brewery: "JvbBrewery@internal.auth.meet.test".into(),
            nick: "jvb1".into(),
            region: None,
            stress: 0.1,
            version: "2.3.0-sim".into(),
            ws_domain: "meet.test".into(),
            delay: Duration::ZERO,
            fail_health: false,
            drain: false,
        }
    }
}

/// A run-time control, one per stdin line.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// `health ok|fail`
    Health(bool),
    /// `stress <float>`
    Stress(f64),
    /// `drain true|false`
    Drain(bool),
    /// `graceful true|false`
    Graceful(bool),
    /// `shutting-down true|false`
    ShuttingDown(bool),
    /// `delay <ms>`: delay every colibri answer.
    Delay(Duration),
    /// `silent true|false`: answer neither colibri nor health checks.
    Silent(bool),
    /// `leave`: unavailable presence to the brewery, then exit 0.
    Leave,
    /// `crash`: exit at once without any presence.
    Crash,
}

/// The help text for the stdin commands.
pub const COMMANDS_HELP: &str = "\
stdin commands (one per line):
  health ok|fail          health checks answer result / internal-server-error
  stress <float>          stress_level stat
  drain true|false        drain stat
  graceful true|false     graceful_shutdown stat; conference creation refused
  shutting-down true|false  shutting_down stat
  delay <ms>              delay every colibri answer
  silent true|false       do not answer colibri or health checks at all
  leave                   unavailable presence to the brewery, then exit 0
  crash                   exit at once (status 1) without any presence";

fn parse_bool(s: Option<&str>) -> Result<bool, String> {
    match s {
        Some("true") | Some("on") | Some("yes") => Ok(true),
        Some("false") | Some("off") | Some("no") => Ok(false),
        other => Err(format!("expected true|false, got {:?}", other.unwrap_or(""))),
    }
}

impl Command {
    /// Parse one line; `Ok(None)` for a blank line or a `#` comment.
    pub fn parse(line: &str) -> Result<Option<Command>, String> {
        let mut words = line.split_whitespace();
        let Some(cmd) = words.next() else { return Ok(None) };
        if cmd.starts_with('#') {
            return Ok(None);
        }
        let arg = words.next();
        if matches!(cmd, "leave" | "crash") && arg.is_some() {
            return Err(format!("{}: takes no argument", cmd));
        }
        let c = match cmd {
            "health" => match arg {
                Some("ok") => Command::Health(true),
                Some("fail") => Command::Health(false),
                other => return Err(format!("health: expected ok|fail, got {:?}", other.unwrap_or(""))),
            },
            "stress" => {
                let v = arg.and_then(|a| a.parse::<f64>().ok()).filter(|v| v.is_finite() && *v >= 0.0);
                Command::Stress(v.ok_or_else(|| "stress: expected a non-negative number".to_string())?)
            }
            "drain" => Command::Drain(parse_bool(arg).map_err(|e| format!("drain: {}", e))?),
            "graceful" => Command::Graceful(parse_bool(arg).map_err(|e| format!("graceful: {}", e))?),
            "shutting-down" => Command::ShuttingDown(parse_bool(arg).map_err(|e| format!("shutting-down: {}", e))?),
            "delay" => {
                let ms = arg.and_then(|a| a.parse::<u64>().ok()).ok_or_else(|| "delay: expected milliseconds".to_string())?;
                Command::Delay(Duration::from_millis(ms))
            }
            "silent" => Command::Silent(parse_bool(arg).map_err(|e| format!("silent: {}", e))?),
            "leave" => Command::Leave,
            "crash" => Command::Crash,
            other => return Err(format!("unknown command {:?}\n{}", other, COMMANDS_HELP)),
        };
        if words.next().is_some() {
            return Err(format!("{}: too many arguments", cmd));
        }
        Ok(Some(c))
    }
}

/// What the simulator tells the thread that runs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Our own presence came back from the brewery: joined as this occupant JID.
    Joined(String),
    /// `leave` was asked: shut the event loop down (the router sends the unavailable presence).
    Leave,
    /// `crash` was asked: exit now.
    Crash,
}

/// The recording file: one JSON object per line, flushed per line.
pub struct Recorder {
    file: File,
}

impl Recorder {
    /// Open `path` for appending (created if missing).
    pub fn create(path: &Path) -> std::io::Result<Recorder> {
        Ok(Recorder { file: std::fs::OpenOptions::new().create(true).append(true).open(path)? })
    }

    /// Append one record.
    pub fn record(&mut self, dir: &str, kind: &str, meeting_id: Option<&str>, el: &Element) {
        let line = record_line(unix_ms(), dir, kind, meeting_id, el);
        if let Err(e) = self.file.write_all(line.as_bytes()).and_then(|_| self.file.flush()) {
            warn!("recording failed: {}", e);
        }
    }
}

/// One recording line (with its newline).
pub fn record_line(t_ms: u64, dir: &str, kind: &str, meeting_id: Option<&str>, el: &Element) -> String {
    let v = serde_json::json!({
        "t_ms": t_ms,
        "dir": dir,
        "kind": kind,
        "meeting_id": meeting_id,
        "xml": el.to_xml_in(ns::CLIENT),
    });
    format!("{}\n", v)
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// `YYYY-MM-DD hh:mm:ss.mmm` in UTC, the form of the JVB's `current_timestamp` stat.
pub fn utc_timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}",
        year,
        month,
        day,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Which kind of request an answer belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Colibri,
    Health,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Colibri => "colibri",
            Kind::Health => "health",
        }
    }
}

struct Pending {
    due: Instant,
    kind: Kind,
    meeting_id: Option<String>,
    reply: Element,
}

/// The simulator as a network [`Router`].
pub struct SimRouter {
    settings: Settings,
    bridge: Bridge,
    commands: Receiver<Command>,
    events: Sender<Event>,
    recorder: Option<Recorder>,
    /// The stream is up.
    online: bool,
    /// Our own presence came back from the brewery.
    joined: bool,
    /// `leave` was asked: the unavailable presence has been or will be sent.
    left: bool,
    next_presence: Option<Instant>,
    shutting_down: bool,
    silent: bool,
    /// Answers waiting for their due time (non-decreasing due times, so answers keep
    /// their order even when the delay changes).
    delayed: VecDeque<Pending>,
}

impl SimRouter {
    pub fn new(settings: Settings, commands: Receiver<Command>, events: Sender<Event>, recorder: Option<Recorder>) -> SimRouter {
        let cfg = BridgeConfig { server_id: settings.nick.clone(), ws_domain: settings.ws_domain.clone(), ..BridgeConfig::default() };
        let mut bridge = Bridge::new(cfg);
        if settings.fail_health {
            bridge.health_failure = Some(colibri::HEALTH_FAILURE_TEXT.to_string());
        }
        SimRouter {
            settings,
            bridge,
            commands,
            events,
            recorder,
            online: false,
            joined: false,
            left: false,
            next_presence: None,
            shutting_down: false,
            silent: false,
            delayed: VecDeque::new(),
        }
    }

    fn occupant(&self) -> String {
        format!("{}/{}", self.settings.brewery, self.settings.nick)
    }

    /// The `<stats/>` element of the brewery presence.
    pub fn stats(&self) -> Element {
        let s = &self.settings;
        let mut stats: Vec<(&str, String)> = vec![
            ("stress_level", format!("{}", s.stress)),
            ("average_participant_stress", "0.01".into()),
            ("drain", s.drain.to_string()),
            ("graceful_shutdown", self.bridge.graceful_shutdown.to_string()),
            ("shutting_down", self.shutting_down.to_string()),
            ("healthy", self.bridge.health_failure.is_none().to_string()),
            ("version", s.version.clone()),
        ];
        if let Some(r) = &s.region {
            stats.push(("region", r.clone()));
        }
        stats.push(("relay_id", s.nick.clone()));
        stats.push(("conferences", self.bridge.conferences.len().to_string()));
        stats.push(("participants", self.bridge.participants().to_string()));
        stats.push(("current_timestamp", utc_timestamp(SystemTime::now())));
        Element::new("stats", ns::COLIBRI).children(
            stats.into_iter().map(|(n, v)| Element::new("stat", ns::COLIBRI).attr("name", n).attr("value", v)),
        )
    }

    fn presence(&self, join: bool) -> Element {
        let mut p = Element::new("presence", ns::CLIENT).attr("to", self.occupant());
        if join {
            p = p.child(Element::new("x", ns::MUC));
        }
        p.child(self.stats())
    }

    fn send_stats(&mut self, now: Instant, out: &mut Outbox) {
        if self.online && !self.left {
            out.send(CONN, self.presence(false));
            self.next_presence = Some(now + PRESENCE_INTERVAL);
        }
    }

    fn record(&mut self, dir: &str, kind: Kind, meeting_id: Option<&str>, el: &Element) {
        if let Some(r) = &mut self.recorder {
            r.record(dir, kind.as_str(), meeting_id, el);
        }
    }

    fn send_answer(&mut self, kind: Kind, meeting_id: Option<String>, reply: Element, out: &mut Outbox) {
        self.record("out", kind, meeting_id.as_deref(), &reply);
        out.send(CONN, reply);
    }

    fn control(&mut self, cmd: Command, now: Instant, out: &mut Outbox) {
        info!("control: {:?}", cmd);
        match cmd {
            Command::Health(ok) => {
                self.bridge.health_failure = if ok { None } else { Some(colibri::HEALTH_FAILURE_TEXT.to_string()) };
                self.send_stats(now, out);
            }
            Command::Stress(v) => {
                self.settings.stress = v;
                self.send_stats(now, out);
            }
            Command::Drain(b) => {
                self.settings.drain = b;
                self.send_stats(now, out);
            }
            Command::Graceful(b) => {
                self.bridge.graceful_shutdown = b;
                self.send_stats(now, out);
            }
            Command::ShuttingDown(b) => {
                self.shutting_down = b;
                self.send_stats(now, out);
            }
            Command::Delay(d) => self.settings.delay = d,
            Command::Silent(b) => self.silent = b,
            Command::Leave => {
                let _ = self.events.try_send(Event::Leave);
            }
            Command::Crash => {
                let _ = self.events.try_send(Event::Crash);
            }
        }
    }

    fn on_iq(&mut self, iq: Element, now: Instant, out: &mut Outbox) {
        let Some(ty) = IqType::of(&iq) else { return };
        if !ty.is_request() {
            if ty == IqType::Error {
                debug!("IQ error received: {}", iq.to_xml_in(ns::CLIENT));
            }
            return;
        }
        let Some(payload) = iq.first_element() else {
            out.send(CONN, iq_error(&iq, ErrorCondition::BadRequest, Some("IQ without payload")));
            return;
        };
        if payload.is("conference-modify", ns::COLIBRI2) {
            let mid = payload.get_attr("meeting-id").map(str::to_string);
            self.record("in", Kind::Colibri, mid.as_deref(), &iq);
            let reply = self.bridge.colibri_iq(&iq, now);
            debug!("colibri {:?}: {}", mid, reply.to_xml_in(ns::CLIENT));
            if self.silent {
                info!("silent: not answering conference-modify {:?}", iq.get_attr("id"));
                return;
            }
            let delay = self.settings.delay;
            if delay.is_zero() && self.delayed.is_empty() {
                self.send_answer(Kind::Colibri, mid, reply, out);
            } else {
                let due = (now + delay).max(self.delayed.back().map_or(now, |p| p.due));
                self.delayed.push_back(Pending { due, kind: Kind::Colibri, meeting_id: mid, reply });
            }
        } else if payload.is("healthcheck", ns::HEALTHCHECK) {
            self.record("in", Kind::Health, None, &iq);
            if self.silent {
                info!("silent: not answering health check {:?}", iq.get_attr("id"));
                return;
            }
            let reply = self.bridge.health_iq(&iq);
            self.send_answer(Kind::Health, None, reply, out);
        } else if payload.is("query", ns::DISCO_INFO) && ty == IqType::Get {
            let features = [ns::HEALTHCHECK, colibri::NS_DTLS, colibri::NS_ICE, ns::VERSION, ns::DISCO_INFO];
            let q = Element::new("query", ns::DISCO_INFO).children(
                features.iter().map(|f| Element::new("feature", ns::DISCO_INFO).attr("var", *f)),
            );
            out.send(CONN, iq_result(&iq).child(q));
        } else if payload.is("query", ns::VERSION) && ty == IqType::Get {
            let q = Element::new("query", ns::VERSION)
                .child(Element::new("name", ns::VERSION).text("jvb-sim (bridge simulator, no media)"))
                .child(Element::new("version", ns::VERSION).text(self.settings.version.clone()));
            out.send(CONN, iq_result(&iq).child(q));
        } else if payload.is("ping", ns::PING) {
            out.send(CONN, iq_result(&iq));
        } else {
            let text = format!("Unsupported IQ request {}", payload.name);
            out.send(CONN, iq_error(&iq, ErrorCondition::ServiceUnavailable, Some(&text)));
        }
    }

    fn on_presence(&mut self, p: Element, out: &mut Outbox) {
        let Some(from) = p.get_attr("from").and_then(|f| Jid::parse(f).ok()) else { return };
        let ours = from.resource() == Some(self.settings.nick.as_str())
            && from.bare().to_string().eq_ignore_ascii_case(&self.settings.brewery);
        if !ours {
            return;
        }
        match p.get_attr("type") {
            Some("error") => {
                let why = jicofo::xmpp::stanza::parse_error(&p).map(|e| e.to_string()).unwrap_or_default();
                error!("cannot join the brewery {} as {}: {}", self.settings.brewery, self.settings.nick, why);
            }
            Some("unavailable") => {
                if !self.left {
                    warn!("removed from the brewery {}", self.settings.brewery);
                }
                self.joined = false;
            }
            None => {
                if !self.joined {
                    self.joined = true;
                    info!("joined the brewery as {}", self.occupant());
                    let statuses: Vec<&str> = p
                        .children_named("x", ns::MUC_USER)
                        .flat_map(|x| x.children_named("status", ns::MUC_USER))
                        .filter_map(|s| s.get_attr("code"))
                        .collect();
                    if statuses.contains(&"201") {
                        // We created the room: unlock it as an instant room.
                        let form = Element::new("x", ns::DATA).attr("type", "submit");
                        let iq = Element::new("iq", ns::CLIENT)
                            .attr("type", "set")
                            .attr("id", "brewery-config")
                            .attr("to", self.settings.brewery.clone())
                            .child(Element::new("query", ns::MUC_OWNER).child(form));
                        out.send(CONN, iq);
                    }
                    let _ = self.events.try_send(Event::Joined(self.occupant()));
                }
            }
            Some(_) => {}
        }
    }
}

impl Router for SimRouter {
    fn connected(&mut self, _conn: ConnId, jid: &Jid, out: &mut Outbox) {
        info!("connected as {}; joining {}", jid, self.occupant());
        self.online = true;
        self.joined = false;
        if self.left {
            return;
        }
        out.send(CONN, self.presence(true));
        self.next_presence = Some(Instant::now() + PRESENCE_INTERVAL);
    }

    fn disconnected(&mut self, _conn: ConnId, reason: &str, _out: &mut Outbox) {
        warn!("disconnected: {}", reason);
        self.online = false;
        self.joined = false;
        self.next_presence = None;
    }

    fn stanza(&mut self, _conn: ConnId, st: jicofo::xmpp::incoming::Incoming, out: &mut Outbox) {
        let el = st.into_element();
        let now = Instant::now();
        match el.name.as_str() {
            "iq" => self.on_iq(el, now, out),
            "presence" => self.on_presence(el, out),
            _ => {}
        }
    }

    fn tick(&mut self, now: Instant, out: &mut Outbox) {
        while let Ok(cmd) = self.commands.try_recv() {
            self.control(cmd, now, out);
        }
        while self.delayed.front().is_some_and(|p| p.due <= now) {
            let p = self.delayed.pop_front().expect("front exists");
            self.send_answer(p.kind, p.meeting_id, p.reply, out);
        }
        if self.next_presence.is_some_and(|t| t <= now) {
            self.send_stats(now, out);
        }
        for mid in self.bridge.expire_idle(now) {
            info!("conference {} expired: no endpoints for {} s", mid, colibri::EMPTY_CONFERENCE_TIMEOUT.as_secs());
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        [self.next_presence, self.delayed.front().map(|p| p.due), self.bridge.next_expiry()]
            .into_iter()
            .flatten()
            .min()
    }

    fn shutting_down(&mut self, out: &mut Outbox) {
        if self.online && !self.left {
            info!("leaving the brewery {}", self.settings.brewery);
            out.send(CONN, Element::new("presence", ns::CLIENT).attr("type", "unavailable").attr("to", self.occupant()));
        }
        self.left = true;
        self.next_presence = None;
    }
}

/// Read commands from stdin on a thread of its own and hand them to the router
/// (bounded channel, then a wake-up of the event loop). At EOF the thread ends and
/// the simulator keeps running.
pub fn spawn_stdin_reader(tx: Sender<Command>, net: NetHandle) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("stdin".into()).spawn(move || {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let line = match line {
                Ok(l) => l,
                Err(e) => {
                    warn!("stdin: {}", e);
                    break;
                }
            };
            match Command::parse(&line) {
                Ok(Some(cmd)) => {
                    if tx.send(cmd).is_err() {
                        return;
                    }
                    net.wake();
                }
                Ok(None) => {}
                Err(e) => eprintln!("jvb-sim: {}", e),
            }
        }
        debug!("stdin closed; commands no longer read");
    })
}
