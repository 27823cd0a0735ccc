//! One Jibri session (a recording, a live stream or a SIP video call) as a pure state
//! machine: events in (the start IQ's answer or its deadline, Jibri's status updates,
//! the Jibri leaving its brewery, the pending timer, a stop), [`Effect`]s out (IQs to
//! send, the status to publish in the focus presence, the answer to the moderator).
//! Selection goes through a [`Pool`] so the caller decides where instances come from.
//! Facts: `tests/fixtures/protocol/jibri-jigasi.md` §3.3–3.6, §4.
//!
//! ```text
//!            start: select ──none──▶ Ended (client: resource-constraint / service-unavailable)
//!              │ send start IQ (15 s)
//!              ▼
//!          Starting ──result pending──▶ Pending ──status on──▶ On
//!              │  ▲                        │  │                 │
//!  busy, error,│  │ retry on another      │  │ pending timer   │ off + error + should_retry
//!  no answer   │  │ Jibri (≤ num_retries) │  │ (90 s): stop,   │ (or the Jibri left the
//!              └──┘◀─────────────────────-┘  │ publish off     │  brewery): retry, still on
//!              │ retries exhausted            ▼                 │
//!              └────────────────────────▶ Ended ◀── off / stop ─┘
//! ```
//! The moderator's start is answered when the first Jibri accepts (`pending`) or when
//! the session fails before that. Only `on` and `off` are ever published.

use std::time::{Duration, Instant};

use crate::jid::Jid;
use crate::xmpp::jibri::{Action, FailureReason, JibriIq, RecordingMode, Status};
use crate::xmpp::stanza::ErrorCondition;

use super::brewery::NoJibri;

/// Deadline of the start IQ.
pub const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Where Jibris come from (a brewery, bound to one conference).
pub trait Pool {
    /// Select an instance not in `exclude`, and bind it to this session.
    fn select(&mut self, exclude: &[Jid], now: Instant) -> Result<Jid, NoJibri>;
    /// The instance failed a start.
    fn failed(&mut self, jid: &Jid, now: Instant);
    /// The session no longer uses `jid`.
    fn release(&mut self, jid: &Jid);
}

/// What the session is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// File recording or live stream.
    Recorder {
        /// File recording or live stream (`stream` exactly when there is a stream id).
        mode: RecordingMode,
        /// The RTMP URL or YouTube key of a live stream (`streamid`).
        stream_id: Option<String>,
        /// The YouTube broadcast of a live stream (`you_tube_broadcast_id`).
        youtube_broadcast_id: Option<String>,
        /// The client's JSON `app_data`, passed on to the Jibri.
        app_data: Option<String>,
    },
    /// The SIP video gateway.
    Sip {
        /// The SIP URI to call (`sipaddress`); one session per address.
        address: String,
        /// The name the call shows in the room (`displayname`).
        display_name: Option<String>,
    },
}

/// Settings (`--jibri_pending_timeout`, `--jibri_num_retries`), configured in `config`.
pub use crate::config::features::JibriSessionSettings as SessionConfig;

/// The session's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// A start IQ is out, not answered yet.
    Starting,
    /// The Jibri accepted; waiting for `on`.
    Pending,
    /// The Jibri reported `on`: recording, streaming or in the call.
    On,
    /// Over (stopped, finished, failed or never started); nothing more happens.
    Ended,
}

/// What the caller must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send this start to `to` and report its answer (or [`START_TIMEOUT`]) to
    /// [`Session::on_start_answer`].
    SendStart {
        /// The Jibri's occupant JID in its brewery.
        to: Jid,
        /// The `<jibri action='start'>` payload.
        jibri: JibriIq,
    },
    /// Send a stop to `to` (fire-and-forget).
    SendStop {
        /// The Jibri's occupant JID in its brewery.
        to: Jid,
        /// The `<jibri action='stop'>` payload, with the session id.
        jibri: JibriIq,
    },
    /// Publish this status in the focus presence.
    Publish {
        /// `on` or `off`.
        status: Status,
        /// Why an `off` is a failure; `None` for a normal end.
        failure: Option<FailureReason>,
        /// Occupant JID of who started (on) or stopped (off) it; `None` when Jibri or a timeout ended it.
        initiator: Option<String>,
    },
    /// Answer the moderator's start: a result with the session id, or an error.
    Answer(Result<(), (ErrorCondition, &'static str)>),
    /// The session is over: forget it.
    Ended,
}

/// What a start IQ got back.
#[derive(Debug, Clone, PartialEq)]
pub enum StartAnswer {
    /// A result with this `<jibri>` (its status, failure reason).
    Result(JibriIq),
    /// An error IQ, a result that is no Jibri answer, or nothing before the deadline
    /// (`timed_out`).
    Failed {
        /// No answer came within [`START_TIMEOUT`] (the Jibri is then sent a stop).
        timed_out: bool,
    },
}

/// One Jibri session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The session id (a UUID from the conference's `Env`), the `session_id` of every
    /// `<jibri>` sent and published; kept across retries on other Jibris.
    pub id: String,
    /// Recording/streaming or SIP gateway, with its parameters.
    pub kind: Kind,
    /// The bare room JID, sent to the Jibri.
    pub room: String,
    /// Occupant JID of the starter.
    pub initiator: String,
    /// Where the session is in its life (see the module diagram).
    pub state: State,
    /// The Jibri serving (or asked to serve) the session.
    pub jibri: Option<Jid>,
    cfg: SessionConfig,
    retries: u32,
    answered: bool,
    pending_deadline: Option<Instant>,
    /// Jibris tried for this session (not asked again).
    tried: Vec<Jid>,
    ever_on: bool,
}

impl Session {
    /// A new session (call [`Session::start`] next).
    pub fn new(id: String, kind: Kind, room: String, initiator: String, cfg: SessionConfig) -> Session {
        Session {
            id,
            kind,
            room,
            initiator,
            state: State::Starting,
            jibri: None,
            cfg,
            retries: 0,
            answered: false,
            pending_deadline: None,
            tried: Vec::new(),
            ever_on: false,
        }
    }

    /// The SIP address of a gateway session.
    pub fn sip_address(&self) -> Option<&str> {
        match &self.kind {
            Kind::Sip { address, .. } => Some(address),
            Kind::Recorder { .. } => None,
        }
    }

    /// The recording mode published for a recorder session.
    pub fn mode(&self) -> RecordingMode {
        match &self.kind {
            Kind::Recorder { mode, .. } => *mode,
            Kind::Sip { .. } => RecordingMode::File,
        }
    }

    /// The start IQ's `<jibri>` (§3.3).
    fn start_iq(&self) -> JibriIq {
        let mut j = JibriIq {
            action: Some(Action::Start),
            room: Some(self.room.clone()),
            session_id: Some(self.id.clone()),
            ..Default::default()
        };
        match &self.kind {
            Kind::Recorder { stream_id, youtube_broadcast_id, app_data, .. } => {
                j.recording_mode = Some(if stream_id.is_some() { RecordingMode::Stream } else { RecordingMode::File });
                j.stream_id = stream_id.clone();
                j.youtube_broadcast_id = youtube_broadcast_id.clone();
                j.app_data = app_data.clone();
                j.rtcstats_enabled = Some(true);
            }
            Kind::Sip { address, display_name } => {
                j.recording_mode = Some(RecordingMode::File);
                j.sip_address = Some(address.clone());
                j.display_name = display_name.clone();
            }
        }
        j
    }

    fn stop_iq(&self) -> JibriIq {
        JibriIq { action: Some(Action::Stop), session_id: Some(self.id.clone()), ..Default::default() }
    }

    /// When the pending timer fires.
    pub fn deadline(&self) -> Option<Instant> {
        self.pending_deadline
    }

    /// Start: select a Jibri and send it the start.
    pub fn start(&mut self, pool: &mut dyn Pool, now: Instant) -> Vec<Effect> {
        let mut fx = Vec::new();
        self.attempt(pool, now, &mut fx);
        fx
    }

    fn attempt(&mut self, pool: &mut dyn Pool, now: Instant, fx: &mut Vec<Effect>) {
        match pool.select(&self.tried, now) {
            Ok(j) => {
                self.tried.push(j.clone());
                self.jibri = Some(j.clone());
                self.state = State::Starting;
                self.pending_deadline = None;
                fx.push(Effect::SendStart { to: j, jibri: self.start_iq() });
            }
            Err(why) => {
                let err = match why {
                    NoJibri::AllBusy => (ErrorCondition::ResourceConstraint, "all Jibris are busy"),
                    NoJibri::NotAvailable => (ErrorCondition::ServiceUnavailable, "no Jibris available"),
                };
                self.fail(err, pool, fx);
            }
        }
    }

    /// Give up: the moderator gets `err` if not answered yet, clients see `off` with
    /// an error if they ever saw `on`.
    fn fail(&mut self, err: (ErrorCondition, &'static str), pool: &mut dyn Pool, fx: &mut Vec<Effect>) {
        if !self.answered {
            self.answered = true;
            fx.push(Effect::Answer(Err(err)));
        }
        if self.ever_on {
            fx.push(Effect::Publish { status: Status::Off, failure: Some(FailureReason::Error), initiator: None });
        }
        self.end(pool, fx);
    }

    fn end(&mut self, pool: &mut dyn Pool, fx: &mut Vec<Effect>) {
        if let Some(j) = self.jibri.take() {
            pool.release(&j);
        }
        self.state = State::Ended;
        self.pending_deadline = None;
        fx.push(Effect::Ended);
    }

    /// The current Jibri failed: another one, while retries are left.
    fn retry(&mut self, pool: &mut dyn Pool, now: Instant, fx: &mut Vec<Effect>) {
        if let Some(j) = self.jibri.take() {
            pool.failed(&j, now);
            pool.release(&j);
        }
        if self.cfg.num_retries.is_some_and(|n| self.retries >= n) {
            return self.fail((ErrorCondition::InternalServerError, "Jibri retries exhausted"), pool, fx);
        }
        self.retries += 1;
        self.attempt(pool, now, fx);
    }

    /// The answer to the start IQ (or its deadline).
    pub fn on_start_answer(&mut self, answer: StartAnswer, pool: &mut dyn Pool, now: Instant) -> Vec<Effect> {
        let mut fx = Vec::new();
        if self.state != State::Starting {
            return fx;
        }
        match answer {
            StartAnswer::Result(j) if matches!(j.status, Some(Status::Pending) | Some(Status::On)) => {
                self.state = State::Pending;
                self.pending_deadline = self.cfg.pending_timeout.map(|t| now + t);
                if !self.answered {
                    self.answered = true;
                    fx.push(Effect::Answer(Ok(())));
                }
                if j.status == Some(Status::On) {
                    self.turn_on(&mut fx);
                }
            }
            StartAnswer::Failed { timed_out: true } => {
                if let Some(to) = self.jibri.clone() {
                    fx.push(Effect::SendStop { to, jibri: self.stop_iq() });
                }
                self.retry(pool, now, &mut fx);
            }
            _ => self.retry(pool, now, &mut fx),
        }
        fx
    }

    fn turn_on(&mut self, fx: &mut Vec<Effect>) {
        self.state = State::On;
        self.pending_deadline = None;
        if !self.ever_on {
            self.ever_on = true;
            fx.push(Effect::Publish { status: Status::On, failure: None, initiator: Some(self.initiator.clone()) });
        }
    }

    /// A status update (IQ set) from the session's Jibri (§3.4).
    pub fn on_status(&mut self, j: &JibriIq, pool: &mut dyn Pool, now: Instant) -> Vec<Effect> {
        let mut fx = Vec::new();
        if self.state == State::Ended {
            return fx;
        }
        if let Some(reason) = j.failure_reason {
            let _ = reason;
            if j.should_retry == Some(true) && self.cfg.num_retries.is_none_or(|n| self.retries < n) {
                self.retry(pool, now, &mut fx);
            } else {
                if !self.answered {
                    self.answered = true;
                    fx.push(Effect::Answer(Err((ErrorCondition::InternalServerError, "Jibri failed"))));
                }
                fx.push(Effect::Publish { status: Status::Off, failure: j.failure_reason, initiator: None });
                self.end(pool, &mut fx);
            }
            return fx;
        }
        match j.status {
            Some(Status::On) => {
                if self.state == State::Starting && !self.answered {
                    self.answered = true;
                    fx.push(Effect::Answer(Ok(())));
                }
                self.turn_on(&mut fx);
            }
            Some(Status::Off) => {
                if !self.answered {
                    self.answered = true;
                    fx.push(Effect::Answer(Err((ErrorCondition::InternalServerError, "Jibri stopped"))));
                }
                fx.push(Effect::Publish { status: Status::Off, failure: None, initiator: None });
                self.end(pool, &mut fx);
            }
            Some(Status::Pending) | None => {}
        }
        fx
    }

    /// The session's Jibri left its brewery: as `off` + `error` + `should_retry`.
    pub fn on_jibri_left(&mut self, pool: &mut dyn Pool, now: Instant) -> Vec<Effect> {
        let j = JibriIq {
            status: Some(Status::Off),
            failure_reason: Some(FailureReason::Error),
            should_retry: Some(true),
            ..Default::default()
        };
        self.on_status(&j, pool, now)
    }

    /// The pending timer: stop the hung Jibri and end the session, publishing `off`
    /// without a failure reason (§3.4, as Jicofo does now).
    pub fn on_timer(&mut self, pool: &mut dyn Pool, now: Instant) -> Vec<Effect> {
        let mut fx = Vec::new();
        if self.state != State::Pending || self.pending_deadline.is_none_or(|d| now < d) {
            return fx;
        }
        if let Some(to) = self.jibri.clone() {
            pool.failed(&to, now);
            fx.push(Effect::SendStop { to, jibri: self.stop_iq() });
        }
        fx.push(Effect::Publish { status: Status::Off, failure: None, initiator: None });
        self.end(pool, &mut fx);
        fx
    }

    /// Stop on request (`initiator` = the stopper) or at the conference's end (`None`).
    pub fn stop(&mut self, initiator: Option<String>, pool: &mut dyn Pool) -> Vec<Effect> {
        let mut fx = Vec::new();
        if self.state == State::Ended {
            return fx;
        }
        if let Some(to) = self.jibri.clone() {
            fx.push(Effect::SendStop { to, jibri: self.stop_iq() });
        }
        if !self.answered {
            self.answered = true;
            fx.push(Effect::Answer(Err((ErrorCondition::InternalServerError, "stopped while starting"))));
        }
        fx.push(Effect::Publish { status: Status::Off, failure: None, initiator });
        self.end(pool, &mut fx);
        fx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jibri::brewery::JibriBrewery;
    use crate::xml::Element;
    use crate::xmpp::ns;
    use crate::xmpp::jibri::JibriStatus;

    /// A brewery as the pool, recording what is bound.
    struct TestPool {
        b: JibriBrewery,
        bound: Vec<Jid>,
    }

    impl Pool for TestPool {
        fn select(&mut self, exclude: &[Jid], now: Instant) -> Result<Jid, NoJibri> {
            let j = self.b.select(exclude, now)?;
            self.bound.push(j.clone());
            Ok(j)
        }
        fn failed(&mut self, jid: &Jid, now: Instant) {
            self.b.failed(jid, now)
        }
        fn release(&mut self, jid: &Jid) {
            self.bound.retain(|j| j != jid)
        }
    }

    fn room() -> Jid {
        Jid::parse("JibriBrewery@internal.auth.meet.test").unwrap()
    }

    fn pool(n: usize) -> TestPool {
        let mut b = JibriBrewery::new(room());
        for i in 1..=n {
            let p = Element::new("presence", ns::CLIENT)
                .attr("from", room().with_resource(&format!("jibri-{}", i)).to_string())
                .child(JibriStatus { busy: false, healthy: true }.to_element());
            b.on_presence(&p, "focus", Instant::now());
        }
        TestPool { b, bound: Vec::new() }
    }

    fn session(cfg: SessionConfig) -> Session {
        let kind = Kind::Recorder { mode: RecordingMode::File, stream_id: None, youtube_broadcast_id: None, app_data: None };
        Session::new("sid".into(), kind, "r@conference.meet.test".into(), "r@conference.meet.test/mod".into(), cfg)
    }

    fn status(s: Status) -> JibriIq {
        JibriIq { status: Some(s), ..Default::default() }
    }

    fn publishes(fx: &[Effect]) -> Vec<(Status, Option<FailureReason>)> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::Publish { status, failure, .. } => Some((*status, *failure)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn start_pending_on_stop() {
        let t = Instant::now();
        let mut p = pool(1);
        let mut s = session(SessionConfig::default());
        let fx = s.start(&mut p, t);
        let Effect::SendStart { to, jibri } = &fx[0] else { panic!("{:?}", fx) };
        assert_eq!(to, &room().with_resource("jibri-1"));
        assert_eq!(jibri.recording_mode, Some(RecordingMode::File));
        assert_eq!(jibri.room.as_deref(), Some("r@conference.meet.test"));
        let fx = s.on_start_answer(StartAnswer::Result(status(Status::Pending)), &mut p, t);
        assert_eq!(fx, vec![Effect::Answer(Ok(()))]);
        assert_eq!(s.deadline(), Some(t + Duration::from_secs(90)));
        let fx = s.on_status(&status(Status::On), &mut p, t);
        assert_eq!(publishes(&fx), vec![(Status::On, None)]);
        assert_eq!(s.deadline(), None);
        let fx = s.stop(Some("r@c/other".into()), &mut p);
        assert!(matches!(&fx[0], Effect::SendStop { .. }));
        assert!(fx.contains(&Effect::Publish { status: Status::Off, failure: None, initiator: Some("r@c/other".into()) }));
        assert_eq!(fx.last(), Some(&Effect::Ended));
        assert!(p.bound.is_empty());
    }

    #[test]
    fn busy_then_retry_on_the_next_then_exhausted() {
        let t = Instant::now();
        let mut p = pool(2);
        let mut s = session(SessionConfig { num_retries: Some(1), ..Default::default() });
        s.start(&mut p, t);
        let busy = JibriIq { status: Some(Status::Off), failure_reason: Some(FailureReason::Busy), should_retry: Some(true), ..Default::default() };
        let fx = s.on_start_answer(StartAnswer::Result(busy), &mut p, t);
        let Effect::SendStart { to, .. } = &fx[0] else { panic!("{:?}", fx) };
        assert_eq!(to, &room().with_resource("jibri-2"));
        let fx = s.on_start_answer(StartAnswer::Failed { timed_out: true }, &mut p, t + START_TIMEOUT);
        assert!(matches!(&fx[0], Effect::SendStop { to, .. } if to == &room().with_resource("jibri-2")));
        assert!(fx.contains(&Effect::Answer(Err((ErrorCondition::InternalServerError, "Jibri retries exhausted")))));
        assert_eq!(s.state, State::Ended);
    }

    #[test]
    fn nobody_left_to_select_is_resource_constraint() {
        let t = Instant::now();
        let mut p = pool(1);
        let mut s = session(SessionConfig::default());
        s.start(&mut p, t);
        let fx = s.on_start_answer(StartAnswer::Failed { timed_out: false }, &mut p, t);
        assert_eq!(fx[0], Effect::Answer(Err((ErrorCondition::ResourceConstraint, "all Jibris are busy"))));
        let mut s = session(SessionConfig::default());
        let fx = s.start(&mut pool(0), t);
        assert_eq!(fx[0], Effect::Answer(Err((ErrorCondition::ServiceUnavailable, "no Jibris available"))));
    }

    #[test]
    fn failure_after_on_moves_to_another_jibri_and_keeps_showing_on() {
        let t = Instant::now();
        let mut p = pool(2);
        let mut s = session(SessionConfig::default());
        s.start(&mut p, t);
        s.on_start_answer(StartAnswer::Result(status(Status::Pending)), &mut p, t);
        s.on_status(&status(Status::On), &mut p, t);
        let fail = JibriIq { status: Some(Status::Off), failure_reason: Some(FailureReason::Error), should_retry: Some(true), ..Default::default() };
        let fx = s.on_status(&fail, &mut p, t + Duration::from_secs(5));
        assert!(publishes(&fx).is_empty(), "{:?}", fx);
        assert!(matches!(&fx[0], Effect::SendStart { to, .. } if to == &room().with_resource("jibri-2")));
        assert_eq!(p.bound, vec![room().with_resource("jibri-2")]);
        s.on_start_answer(StartAnswer::Result(status(Status::Pending)), &mut p, t);
        // Already on for the clients: no second publication.
        assert!(publishes(&s.on_status(&status(Status::On), &mut p, t)).is_empty());
        // Without should_retry it ends with the error.
        let fail = JibriIq { status: Some(Status::Off), failure_reason: Some(FailureReason::Error), ..Default::default() };
        let fx = s.on_status(&fail, &mut p, t);
        assert_eq!(publishes(&fx), vec![(Status::Off, Some(FailureReason::Error))]);
        assert_eq!(s.state, State::Ended);
    }

    #[test]
    fn the_pending_timer_ends_the_session() {
        let t = Instant::now();
        let mut p = pool(2);
        let mut s = session(SessionConfig { pending_timeout: Some(Duration::from_secs(3)), ..Default::default() });
        s.start(&mut p, t);
        s.on_start_answer(StartAnswer::Result(status(Status::Pending)), &mut p, t);
        assert!(s.on_timer(&mut p, t + Duration::from_secs(2)).is_empty());
        let fx = s.on_timer(&mut p, t + Duration::from_secs(3));
        assert!(matches!(&fx[0], Effect::SendStop { .. }));
        assert_eq!(publishes(&fx), vec![(Status::Off, None)]);
        assert_eq!(s.state, State::Ended);
    }

    #[test]
    fn leaving_the_brewery_is_a_retryable_error() {
        let t = Instant::now();
        let mut p = pool(2);
        let mut s = session(SessionConfig::default());
        s.start(&mut p, t);
        s.on_start_answer(StartAnswer::Result(status(Status::Pending)), &mut p, t);
        let fx = s.on_jibri_left(&mut p, t);
        assert!(matches!(&fx[0], Effect::SendStart { to, .. } if to == &room().with_resource("jibri-2")));
    }
}
