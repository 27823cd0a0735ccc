//! `jigasi-sim`: a Jigasi SIMULATOR for tests and demos (no SIP, no media, no
//! transcription). It follows §7 of `tests/fixtures/protocol/jibri-jigasi.md`:
//!
//! - logs in (default `jigasi@recorder.meet.test`, a trusted domain of the test Prosody)
//!   and joins the Jigasi brewery with colibri `<stats>` (`supports_sip`,
//!   `supports_transcription`, `graceful_shutdown`, `participants`, `region`), re-sent
//!   when the number of calls changes;
//! - accepts a `<dial>` only from the brewery's bare JID and only with `JvbRoomName`
//!   (honouring `JvbRoomPassword`); `to="jitsi_meet_transcribe"` makes it the
//!   transcriber;
//! - joins the room as `<nick>-<n>` with the `jigasi` feature (plus `transcriber`) and,
//!   once in, answers `<ref uri="xmpp:<occupant JID>"/>`; `<hangup/>` on that occupant:
//!   result and leave;
//! - accepts the focus's Jingle offer as an audio-only endpoint (`--transport-first`
//!   sends a `transport-info` before the `session-accept`), answers disco with
//!   audio-only features.
//!
//! Knobs: `--fault=timeout|error`, `--graceful-shutdown`, `--no-sip`, `--transcription`,
//! `--dial-in=ROOM` (ask the focus for ROOM and join it unprompted, as a phone caller
//! coming in). `--trace` prints every stanza; stdout also gets `jigasi-sim: joined <occupant>`
//! and `jigasi-sim: in <room> as <occupant>` per call.

#[path = "../jibri-sim/common.rs"]
mod common;

use std::time::{Duration, Instant};

use log::{info, warn};

use jicofo::jid::Jid;
use jicofo::net::{ConnId, Outbox, Router};
use jicofo::xml::Element;
use jicofo::xmpp::ns;
use jicofo::xmpp::jigasi::{features_element, JigasiStats, FEATURE_AUDIO_MUTE, FEATURE_JIGASI, FEATURE_TRANSCRIBER};
use jicofo::xmpp::rayo::{Dial, DialTarget, Ref, NS as RAYO, ROOM_NAME_HEADER, ROOM_PASSWORD_HEADER};
use jicofo::xmpp::stanza::{iq_error, iq_result, ErrorCondition};

const NAME: &str = "jigasi-sim";
const CONN: ConnId = ConnId(0);
/// Jigasi waits this long for the room join before failing the dial (MUC_JOIN_TIMEOUT).
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    Timeout,
    Error,
}

struct Settings {
    brewery: Jid,
    nick: String,
    sip: bool,
    transcription: bool,
    graceful: bool,
    region: Option<String>,
    fault: Fault,
    transport_first: bool,
    dial_in: Option<Jid>,
    focus: String,
    trace: bool,
}

/// One call: our occupant in a conference room.
struct Call {
    occupant: Jid,
    /// The dial to answer once in the room (none for a dial-in).
    dial: Option<(Element, Instant)>,
    joined: bool,
    transcriber: bool,
}

struct Sim {
    s: Settings,
    online: bool,
    calls: Vec<Call>,
    n: u64,
    ssrc: u32,
}

impl Sim {
    fn occupant(&self) -> String {
        self.s.brewery.with_resource(&self.s.nick).to_string()
    }

    fn send(&self, out: &mut Outbox, el: Element) {
        common::trace(self.s.trace, NAME, "->", &el);
        out.send(CONN, el);
    }

    fn id(&mut self) -> String {
        self.n += 1;
        format!("jigasi-sim-{}", self.n)
    }

    fn stats(&self, out: &mut Outbox) {
        let s = JigasiStats {
            supports_sip: self.s.sip,
            supports_transcription: self.s.transcription,
            graceful_shutdown: self.s.graceful,
            participants: self.calls.len() as u32,
            region: self.s.region.clone(),
        };
        let p = Element::new("presence", ns::CLIENT).attr("to", self.occupant()).child(Element::new("x", ns::MUC)).child(s.to_element());
        self.send(out, p);
    }

    fn join_room(&mut self, room: &Jid, password: Option<&str>, transcriber: bool, dial: Option<Element>, out: &mut Outbox) {
        self.n += 1;
        let occupant = room.with_resource(&format!("{}-{}", self.s.nick, self.n));
        let mut x = Element::new("x", ns::MUC);
        if let Some(pw) = password {
            x = x.child(Element::new("password", ns::MUC).text(pw));
        }
        let mut features = vec![FEATURE_JIGASI, FEATURE_AUDIO_MUTE];
        if transcriber {
            features.push(FEATURE_TRANSCRIBER);
        }
        let p = Element::new("presence", ns::CLIENT).attr("to", occupant.to_string()).child(x).child(features_element(&features));
        self.send(out, p);
        self.calls.push(Call { occupant, dial: dial.map(|d| (d, Instant::now() + JOIN_TIMEOUT)), joined: false, transcriber });
        self.stats(out);
    }

    fn on_dial(&mut self, el: &Element, out: &mut Outbox) {
        let from = el.get_attr("from").and_then(|f| Jid::parse(f).ok());
        if from.map(|f| f.bare()) != Some(self.s.brewery.clone()) {
            warn!("a dial from {:?} (not the brewery) refused", el.get_attr("from"));
            return self.send(out, iq_error(el, ErrorCondition::Forbidden, None));
        }
        let dial = match el.get_child("dial", RAYO).map(Dial::try_from) {
            Some(Ok(d)) => d,
            _ => return self.send(out, iq_error(el, ErrorCondition::BadRequest, None)),
        };
        let Some(room) = dial.header(ROOM_NAME_HEADER).and_then(|r| Jid::parse(r).ok()) else {
            return self.send(out, iq_error(el, ErrorCondition::BadRequest, Some("JvbRoomName header missing")));
        };
        match self.s.fault {
            Fault::Timeout => return info!("dial to {}: not answering (--fault=timeout)", dial.to),
            Fault::Error => return self.send(out, iq_error(el, ErrorCondition::InternalServerError, Some("simulated failure"))),
            Fault::None => {}
        }
        let transcriber = dial.target == DialTarget::Transcriber;
        let needed = if transcriber { self.s.transcription } else { self.s.sip };
        if !needed {
            // Jigasi's quirk: a result with uri="not-acceptable".
            return self.send(out, iq_result(el).child(Ref { uri: "not-acceptable".into() }.to_element()));
        }
        info!("dial to {} for {}", dial.to, room);
        let pw = dial.header(ROOM_PASSWORD_HEADER).map(str::to_string);
        self.join_room(&room, pw.as_deref(), transcriber, Some(el.clone()), out);
    }

    /// The call a presence is about (`from` is our occupant JID).
    fn call_of(&self, from: Option<&str>) -> Option<usize> {
        let from = Jid::parse(from?).ok()?;
        self.calls.iter().position(|c| c.occupant == from)
    }

    /// The call an IQ from a room is for: the MUC delivers IQs for our occupant to our
    /// real JID, so the room is known by the sender (`room/<someone>`); with several
    /// calls in one room the latest one that is not the transcriber (a simulator's
    /// simplification).
    fn call_in_room_of(&self, from: Option<&str>) -> Option<usize> {
        let room = Jid::parse(from?).ok()?.bare();
        let mut mine = self.calls.iter().enumerate().filter(|(_, c)| c.occupant.bare() == room);
        let all: Vec<(usize, &Call)> = mine.by_ref().collect();
        all.iter().rev().find(|(_, c)| !c.transcriber).or(all.last()).map(|(i, _)| *i)
    }

    fn on_presence(&mut self, el: &Element, out: &mut Outbox) {
        let Some(i) = self.call_of(el.get_attr("from")) else { return };
        if el.get_attr("type") == Some("error") {
            let c = self.calls.remove(i);
            warn!("cannot join {}", c.occupant);
            if let Some((d, _)) = c.dial {
                self.send(out, iq_error(&d, ErrorCondition::ServiceUnavailable, Some("cannot join the room")));
            }
            return self.stats(out);
        }
        if el.get_attr("type") == Some("unavailable") {
            self.calls.remove(i);
            return self.stats(out);
        }
        let c = &mut self.calls[i];
        if c.joined {
            return;
        }
        c.joined = true;
        let occupant = c.occupant.clone();
        common::say(NAME, &format!("in {} as {}", occupant.bare(), occupant));
        if let Some((d, _)) = c.dial.take() {
            let r = iq_result(&d).child(Ref { uri: format!("xmpp:{}", occupant) }.to_element());
            self.send(out, r);
        }
    }

    fn on_iq(&mut self, el: Element, out: &mut Outbox) {
        if !matches!(el.get_attr("type"), Some("get") | Some("set")) {
            return;
        }
        if el.get_child("dial", RAYO).is_some() {
            return self.on_dial(&el, out);
        }
        if el.get_child("ping", ns::PING).is_some() {
            return self.send(out, iq_result(&el));
        }
        let Some(i) = self.call_in_room_of(el.get_attr("from")) else {
            return self.send(out, iq_error(&el, ErrorCondition::ServiceUnavailable, None));
        };
        if el.get_child("hangup", RAYO).is_some() {
            let c = self.calls.remove(i);
            info!("hangup of {}", c.occupant);
            self.send(out, iq_result(&el));
            let p = Element::new("presence", ns::CLIENT).attr("to", c.occupant.to_string()).attr("type", "unavailable");
            self.send(out, p);
            return self.stats(out);
        }
        if el.get_child("query", ns::DISCO_INFO).is_some() {
            let mut q = Element::new("query", ns::DISCO_INFO);
            let mut f = vec!["urn:xmpp:jingle:1", "urn:xmpp:jingle:apps:rtp:1", "urn:xmpp:jingle:apps:rtp:audio", ns::ICE_UDP, ns::DTLS, FEATURE_JIGASI, FEATURE_AUDIO_MUTE];
            if self.calls[i].transcriber {
                f.push(FEATURE_TRANSCRIBER);
            }
            for v in f {
                q = q.child(Element::new("feature", ns::DISCO_INFO).attr("var", v));
            }
            return self.send(out, iq_result(&el).child(q));
        }
        if let Some(j) = el.get_child("jingle", ns::JINGLE) {
            self.send(out, iq_result(&el));
            if j.get_attr("action") == Some("session-initiate") {
                let sid = j.get_attr("sid").unwrap_or_default().to_string();
                let focus = el.get_attr("from").unwrap_or_default().to_string();
                let me = self.calls[i].occupant.clone();
                if self.s.transport_first {
                    let ti = self.jingle(&focus, &sid, &me, "transport-info", false);
                    self.send(out, ti);
                }
                let sa = self.jingle(&focus, &sid, &me, "session-accept", true);
                self.send(out, sa);
            }
            return;
        }
        self.send(out, iq_error(&el, ErrorCondition::ServiceUnavailable, None));
    }

    /// An audio-only Jingle answer (or transport-info without description).
    fn jingle(&mut self, to: &str, sid: &str, me: &Jid, action: &str, with_description: bool) -> Element {
        let endpoint = me.resource().unwrap_or_default().to_string();
        self.ssrc = self.ssrc.wrapping_add(1);
        let ssrc = 1_000_000 + self.ssrc;
        let transport = Element::new("transport", ns::ICE_UDP).attr("ufrag", "jgsim").attr("pwd", "jigasisimulatorpassword00").child(
            Element::new("fingerprint", ns::DTLS)
                .attr("hash", "sha-256")
                .attr("setup", "active")
                .text("AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99"),
        );
        let mut content = Element::new("content", ns::JINGLE).attr("creator", "initiator").attr("name", "audio").attr("senders", "both");
        if with_description {
            content = content.child(
                Element::new("description", ns::RTP)
                    .attr("media", "audio")
                    .child(Element::new("payload-type", ns::RTP).attr("id", "111").attr("name", "opus").attr("clockrate", "48000").attr("channels", "2"))
                    .child(
                        Element::new("source", ns::SSMA)
                            .attr("ssrc", ssrc.to_string())
                            .attr("name", format!("{}-a0", endpoint))
                            .child(Element::new("parameter", ns::SSMA).attr("name", "msid").attr("value", format!("{}-audio-0 {}-audio-0-track", endpoint, endpoint))),
                    ),
            );
        }
        let mut jingle = Element::new("jingle", ns::JINGLE).attr("action", action).attr("sid", sid).attr("responder", me.to_string()).child(content.child(transport));
        if with_description {
            jingle = jingle.child(Element::new("group", ns::GROUPING).attr("semantics", "BUNDLE").child(Element::new("content", ns::GROUPING).attr("name", "audio")));
        }
        Element::new("iq", ns::CLIENT).attr("type", "set").attr("id", self.id()).attr("to", to).child(jingle)
    }
}

impl Router for Sim {
    fn connected(&mut self, _conn: ConnId, jid: &Jid, out: &mut Outbox) {
        info!("connected as {}; joining {}", jid, self.occupant());
        self.online = true;
        self.calls.clear();
        self.stats(out);
        common::say(NAME, &format!("joined {}", self.occupant()));
        if let Some(room) = self.s.dial_in.clone() {
            // A phone caller comes in: the conference is asked for, then joined.
            let id = self.id();
            let req = Element::new("iq", ns::CLIENT)
                .attr("type", "set")
                .attr("id", id)
                .attr("to", self.s.focus.clone())
                .child(Element::new("conference", ns::FOCUS).attr("room", room.to_string()).attr("machine-uid", "jigasi-sim"));
            self.send(out, req);
            self.join_room(&room, None, false, None, out);
        }
    }

    fn disconnected(&mut self, _conn: ConnId, reason: &str, _out: &mut Outbox) {
        warn!("disconnected: {}", reason);
        self.online = false;
    }

    fn stanza(&mut self, _conn: ConnId, st: jicofo::xmpp::incoming::Incoming, out: &mut Outbox) {
        let el = st.into_element();
        common::trace(self.s.trace, NAME, "<-", &el);
        match el.name.as_str() {
            "iq" => self.on_iq(el, out),
            "presence" => self.on_presence(&el, out),
            _ => {}
        }
    }

    fn tick(&mut self, now: Instant, out: &mut Outbox) {
        let late: Vec<usize> = self.calls.iter().enumerate().filter(|(_, c)| c.dial.as_ref().is_some_and(|(_, t)| now >= *t)).map(|(i, _)| i).collect();
        for i in late.into_iter().rev() {
            let c = self.calls.remove(i);
            if let Some((d, _)) = c.dial {
                self.send(out, iq_error(&d, ErrorCondition::RemoteServerTimeout, Some("room join timed out")));
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.calls.iter().filter_map(|c| c.dial.as_ref().map(|(_, t)| *t)).min()
    }

    fn shutting_down(&mut self, out: &mut Outbox) {
        if !self.online {
            return;
        }
        for c in &self.calls {
            let p = Element::new("presence", ns::CLIENT).attr("to", c.occupant.to_string()).attr("type", "unavailable");
            self.send(out, p);
        }
        let p = Element::new("presence", ns::CLIENT).attr("to", self.occupant()).attr("type", "unavailable");
        self.send(out, p);
    }
}

fn main() {
    let mut o = getopts::Options::new();
    common::login_options(&mut o, "recorder.meet.test", "jigasi");
    o.optopt("", "brewery", "Jigasi brewery MUC (default JigasiBrewery@internal.auth.meet.test)", "JID");
    o.optopt("", "nick", "nickname in the brewery (default jg-1)", "NICK");
    o.optopt("", "region", "region stat", "REGION");
    o.optopt("", "fault", "none|timeout|error (default none)", "FAULT");
    o.optflag("", "no-sip", "supports_sip=false");
    o.optflag("", "transcription", "supports_transcription=true");
    o.optflag("", "graceful-shutdown", "graceful_shutdown=true");
    o.optflag("", "transport-first", "send a transport-info before the session-accept");
    o.optopt("", "dial-in", "join this conference room unprompted (a call coming in)", "ROOM");
    o.optopt("", "focus", "where to ask for the dial-in room (default focus.meet.test)", "JID");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = (|| -> Result<Option<(common::Login, Settings)>, String> {
        let m = o.parse(&args).map_err(|e| format!("{} (see --help)", e))?;
        if m.opt_present("help") {
            println!("{}", o.usage("jigasi-sim: a Jigasi SIMULATOR for tests and demos (no SIP, no media).\n\nUsage: jigasi-sim [options]"));
            return Ok(None);
        }
        let nick = m.opt_str("nick").unwrap_or_else(|| "jg-1".into());
        let room = |s: String, what: &str| Jid::parse(&s).ok().filter(|j| j.is_bare() && j.local().is_some()).ok_or(format!("{}: not a room JID", what));
        let s = Settings {
            brewery: room(m.opt_str("brewery").unwrap_or_else(|| "JigasiBrewery@internal.auth.meet.test".into()), "--brewery")?,
            sip: !m.opt_present("no-sip"),
            transcription: m.opt_present("transcription"),
            graceful: m.opt_present("graceful-shutdown"),
            region: m.opt_str("region"),
            fault: match m.opt_str("fault").as_deref().unwrap_or("none") {
                "none" => Fault::None,
                "timeout" => Fault::Timeout,
                "error" => Fault::Error,
                other => return Err(format!("--fault: unknown {:?}", other)),
            },
            transport_first: m.opt_present("transport-first"),
            dial_in: m.opt_str("dial-in").map(|r| room(r, "--dial-in")).transpose()?,
            focus: m.opt_str("focus").unwrap_or_else(|| "focus.meet.test".into()),
            trace: m.opt_present("trace"),
            nick: nick.clone(),
        };
        Ok(Some((common::login(&m, "recorder.meet.test", "jigasi", &nick)?, s)))
    })();
    let Some((login, s)) = common::parsed_or_exit(NAME, parsed) else { return };
    info!("jigasi-sim (a Jigasi simulator, no SIP) {}@{}, brewery {}/{}", login.user, login.domain, s.brewery, s.nick);
    let sim = Sim { s, online: false, calls: Vec::new(), n: 0, ssrc: 0 };
    std::process::exit(common::run(NAME, login, Box::new(sim)));
}
