//! `jibri-sim`: a Jibri SIMULATOR for tests and demos (not a recorder: no browser, no
//! media, no files). It follows §7 of `tests/fixtures/protocol/jibri-jigasi.md`:
//!
//! - logs in (default `jibri@auth.meet.test`) and joins the Jibri brewery with a
//!   `<jibri-status>` presence carrying both children; `busy` while serving, `idle` after;
//! - answers `action="start"` (from the brewery only) with a result `status="pending"`
//!   (echoing `sipaddress`), or `status="off" failure_reason="busy" should_retry="true"`
//!   when busy; a non-blank `sipaddress` makes it a SIP session whatever the mode;
//! - then sends IQ sets to the start IQ's `from`: `on` after `--on-after-ms`; SIP ones
//!   carry `sipaddress`;
//! - answers `action="stop"` with a result `status="off"` and goes idle.
//!
//! Failure knobs (`--fault`): `busy` (always answers busy), `silent` (never answers a
//! start), `error` (an error IQ), `stay-pending` (never says `on`), `fail-after-on`
//! (`off` + `failure_reason="error"` + `should_retry` `--fault-after-ms` after `on`),
//! `leave-after-on` (leaves the brewery then; rejoins idle 5 s later).
//! `--trace` prints every stanza; stdout also gets `jibri-sim: joined <occupant>`.

mod common;

use std::time::{Duration, Instant};

use log::{info, warn};

use jicofo::jid::Jid;
use jicofo::net::{ConnId, Outbox, Router};
use jicofo::xml::Element;
use jicofo::xmpp::ns;
use jicofo::xmpp::jibri::{Action, FailureReason, JibriIq, JibriStatus, Status, NS};
use jicofo::xmpp::stanza::{iq_error, iq_result, ErrorCondition};

const NAME: &str = "jibri-sim";
const CONN: ConnId = ConnId(0);
const REJOIN_AFTER: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    Busy,
    Silent,
    Error,
    StayPending,
    FailAfterOn,
    LeaveAfterOn,
}

struct Settings {
    brewery: Jid,
    nick: String,
    fault: Fault,
    on_after: Duration,
    fault_after: Duration,
    retry: bool,
    trace: bool,
}

/// The session being served.
struct Serving {
    focus: String,
    session_id: Option<String>,
    sip: Option<String>,
    on_at: Option<Instant>,
    fault_at: Option<Instant>,
}

struct Sim {
    s: Settings,
    online: bool,
    in_brewery: bool,
    rejoin_at: Option<Instant>,
    serving: Option<Serving>,
    next_id: u64,
}

impl Sim {
    fn occupant(&self) -> String {
        self.s.brewery.with_resource(&self.s.nick).to_string()
    }

    fn send(&self, out: &mut Outbox, el: Element) {
        common::trace(self.s.trace, NAME, "->", &el);
        out.send(CONN, el);
    }

    fn presence(&self, out: &mut Outbox) {
        let status = JibriStatus { busy: self.serving.is_some(), healthy: true };
        let p = Element::new("presence", ns::CLIENT).attr("to", self.occupant()).child(Element::new("x", ns::MUC)).child(status.to_element());
        self.send(out, p);
    }

    fn status_iq(&mut self, out: &mut Outbox, j: JibriIq) {
        let Some(sv) = &self.serving else { return };
        self.next_id += 1;
        let mut j = j;
        j.sip_address = sv.sip.clone();
        let iq = Element::new("iq", ns::CLIENT).attr("type", "set").attr("id", format!("jibri-sim-{}", self.next_id)).attr("to", sv.focus.clone()).child(j.to_element());
        self.send(out, iq);
    }

    fn on_iq(&mut self, el: Element, now: Instant, out: &mut Outbox) {
        let typ = el.get_attr("type").unwrap_or("");
        if !matches!(typ, "set" | "get") {
            return; // answers to our status updates
        }
        let Some(j) = el.get_child("jibri", NS).and_then(|j| JibriIq::try_from(j).ok()) else {
            if el.get_child("ping", ns::PING).is_some() {
                self.send(out, iq_result(&el));
            } else {
                self.send(out, iq_error(&el, ErrorCondition::ServiceUnavailable, None));
            }
            return;
        };
        let from = el.get_attr("from").unwrap_or_default().to_string();
        if Jid::parse(&from).map(|f| f.bare()) != Ok(self.s.brewery.clone()) {
            warn!("a jibri IQ from {} (not the brewery) refused", from);
            self.send(out, iq_error(&el, ErrorCondition::Forbidden, None));
            return;
        }
        match j.action {
            Some(Action::Start) => {
                let busy_reply = || {
                    iq_result(&el).child(
                        JibriIq { status: Some(Status::Off), failure_reason: Some(FailureReason::Busy), should_retry: Some(true), ..Default::default() }
                            .to_element(),
                    )
                };
                if self.serving.is_some() || self.s.fault == Fault::Busy {
                    info!("start from {}: busy", from);
                    self.send(out, busy_reply());
                    return;
                }
                match self.s.fault {
                    Fault::Silent => {
                        info!("start from {}: not answering (--fault=silent)", from);
                        return;
                    }
                    Fault::Error => {
                        self.send(out, iq_error(&el, ErrorCondition::InternalServerError, Some("simulated failure")));
                        return;
                    }
                    _ => {}
                }
                info!("start from {}: session {:?} in {:?}, sip {:?}", from, j.session_id, j.room, j.sip_address);
                let on_at = (self.s.fault != Fault::StayPending).then(|| now + self.s.on_after);
                self.serving = Some(Serving { focus: from, session_id: j.session_id.clone(), sip: j.sip_address.clone(), on_at, fault_at: None });
                let reply = JibriIq { status: Some(Status::Pending), sip_address: j.sip_address.clone(), ..Default::default() };
                self.send(out, iq_result(&el).child(reply.to_element()));
                self.presence(out);
            }
            Some(Action::Stop) => {
                let sid = self.serving.as_ref().and_then(|s| s.session_id.clone());
                info!("stop from {} (serving {:?})", from, sid);
                self.serving = None;
                self.send(out, iq_result(&el).child(JibriIq { status: Some(Status::Off), ..Default::default() }.to_element()));
                self.presence(out);
            }
            None => self.send(out, iq_error(&el, ErrorCondition::BadRequest, Some("no action"))),
        }
    }
}

impl Router for Sim {
    fn connected(&mut self, _conn: ConnId, jid: &Jid, out: &mut Outbox) {
        info!("connected as {}; joining {}", jid, self.occupant());
        self.online = true;
        self.in_brewery = true;
        self.serving = None;
        self.presence(out);
        common::say(NAME, &format!("joined {}", self.occupant()));
    }

    fn disconnected(&mut self, _conn: ConnId, reason: &str, _out: &mut Outbox) {
        warn!("disconnected: {}", reason);
        self.online = false;
    }

    fn stanza(&mut self, _conn: ConnId, st: jicofo::xmpp::incoming::Incoming, out: &mut Outbox) {
        let el = st.into_element();
        common::trace(self.s.trace, NAME, "<-", &el);
        if el.name == "iq" {
            self.on_iq(el, Instant::now(), out);
        }
    }

    fn tick(&mut self, now: Instant, out: &mut Outbox) {
        if !self.online {
            return;
        }
        if self.rejoin_at.is_some_and(|t| now >= t) {
            self.rejoin_at = None;
            self.in_brewery = true;
            self.serving = None;
            self.presence(out);
            common::say(NAME, &format!("joined {}", self.occupant()));
        }
        let Some(sv) = self.serving.as_mut() else { return };
        if sv.on_at.is_some_and(|t| now >= t) {
            sv.on_at = None;
            if matches!(self.s.fault, Fault::FailAfterOn | Fault::LeaveAfterOn) {
                sv.fault_at = Some(now + self.s.fault_after);
            }
            self.status_iq(out, JibriIq { status: Some(Status::On), ..Default::default() });
            return;
        }
        let Some(sv) = self.serving.as_mut() else { return };
        if sv.fault_at.is_some_and(|t| now >= t) {
            sv.fault_at = None;
            if self.s.fault == Fault::FailAfterOn {
                info!("failing the session (--fault=fail-after-on, should_retry={})", self.s.retry);
                self.status_iq(
                    out,
                    JibriIq { status: Some(Status::Off), failure_reason: Some(FailureReason::Error), should_retry: Some(self.s.retry), ..Default::default() },
                );
                self.serving = None;
                self.presence(out);
            } else {
                info!("leaving the brewery (--fault=leave-after-on)");
                self.serving = None;
                self.in_brewery = false;
                let p = Element::new("presence", ns::CLIENT).attr("to", self.occupant()).attr("type", "unavailable");
                self.send(out, p);
                self.rejoin_at = Some(now + REJOIN_AFTER);
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let sv = self.serving.as_ref();
        [sv.and_then(|s| s.on_at), sv.and_then(|s| s.fault_at), self.rejoin_at].into_iter().flatten().min()
    }

    fn shutting_down(&mut self, out: &mut Outbox) {
        if self.online && self.in_brewery {
            let p = Element::new("presence", ns::CLIENT).attr("to", self.occupant()).attr("type", "unavailable");
            self.send(out, p);
        }
    }
}

fn main() {
    let mut o = getopts::Options::new();
    common::login_options(&mut o, "auth.meet.test", "jibri");
    o.optopt("", "brewery", "Jibri brewery MUC (default JibriBrewery@internal.auth.meet.test)", "JID");
    o.optopt("", "nick", "nickname in the brewery (default jibri-1)", "NICK");
    o.optopt("", "fault", "none|busy|silent|error|stay-pending|fail-after-on|leave-after-on (default none)", "FAULT");
    o.optopt("", "on-after-ms", "from accepting a start to saying on (default 1000)", "MS");
    o.optopt("", "fault-after-ms", "from on to the fail-after-on / leave-after-on fault (default 2000)", "MS");
    o.optflag("", "no-retry", "fail-after-on says should_retry=false");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = (|| -> Result<Option<(common::Login, Settings)>, String> {
        let m = o.parse(&args).map_err(|e| format!("{} (see --help)", e))?;
        if m.opt_present("help") {
            println!("{}", o.usage("jibri-sim: a Jibri SIMULATOR for tests and demos (no recording).\n\nUsage: jibri-sim [options]"));
            return Ok(None);
        }
        let nick = m.opt_str("nick").unwrap_or_else(|| "jibri-1".into());
        let brewery = m.opt_str("brewery").unwrap_or_else(|| "JibriBrewery@internal.auth.meet.test".into());
        let brewery = Jid::parse(&brewery).ok().filter(|j| j.is_bare() && j.local().is_some()).ok_or("--brewery: not a room JID")?;
        let fault = match m.opt_str("fault").as_deref().unwrap_or("none") {
            "none" => Fault::None,
            "busy" => Fault::Busy,
            "silent" => Fault::Silent,
            "error" => Fault::Error,
            "stay-pending" => Fault::StayPending,
            "fail-after-on" => Fault::FailAfterOn,
            "leave-after-on" => Fault::LeaveAfterOn,
            other => return Err(format!("--fault: unknown {:?}", other)),
        };
        let s = Settings {
            brewery,
            fault,
            on_after: Duration::from_millis(common::num(&m, "on-after-ms", 1000u64)?),
            fault_after: Duration::from_millis(common::num(&m, "fault-after-ms", 2000u64)?),
            retry: !m.opt_present("no-retry"),
            trace: m.opt_present("trace"),
            nick: nick.clone(),
        };
        Ok(Some((common::login(&m, "auth.meet.test", "jibri", &nick)?, s)))
    })();
    let Some((login, s)) = common::parsed_or_exit(NAME, parsed) else { return };
    info!("jibri-sim (a Jibri simulator, no recording) {}@{}, brewery {}/{}, fault {:?}", login.user, login.domain, s.brewery, s.nick, s.fault);
    let sim = Sim { s, online: false, in_brewery: false, rejoin_at: None, serving: None, next_id: 0 };
    std::process::exit(common::run(NAME, login, Box::new(sim)));
}
