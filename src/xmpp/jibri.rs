//! The Jibri protocol (`http://jitsi.org/protocol/jibri`), typed: the `<jibri>` IQ
//! element a moderator sends the focus and the focus and Jibri exchange, Jibri's
//! brewery presence (`<jibri-status>`), and the status elements the focus publishes in
//! its MUC presence (`<jibri-recording-status>`, `<jibri-sip-call-state>`).
//!
//! Parsers are `TryFrom<&Element>` and refuse bad input with a [`JibriError`]; writers
//! build elements. Attribute values copied from input are bounded ([`MAX_ATTR`]) so no
//! stanza the focus sends grows with a participant's input. Enum values are parsed
//! case-insensitively; unknown values are `None` (the caller decides), as Jicofo does.
//! Facts: `tests/fixtures/protocol/jibri-jigasi.md` §3–§4.

use std::fmt;

use crate::xml::Element;

/// Namespace of `<jibri>`, `<jibri-status>`, `<busy-status>`, `<jibri-recording-status>`.
pub const NS: &str = "http://jitsi.org/protocol/jibri";
/// Namespace of `<health-status>`.
pub const NS_HEALTH: &str = "http://jitsi.org/protocol/health";
/// Namespace of `<jibri-sip-call-state>`.
pub const NS_CALL_STATE: &str = "http://jitsi.org/protocol/jibri/call_state";
/// The longest attribute value taken from input (stream ids, SIP addresses, app data).
pub const MAX_ATTR: usize = 2048;

/// Why a Jibri element was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JibriError {
    /// Not a `<jibri>` (or `<jibri-status>`) element in the Jibri namespace.
    NotJibri,
    /// An attribute value is longer than [`MAX_ATTR`] bytes.
    TooLong(&'static str),
    /// A `<jibri-status>` without both children (`isAvailable` needs both).
    IncompleteStatus,
}

impl fmt::Display for JibriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JibriError::NotJibri => write!(f, "not a jibri element"),
            JibriError::TooLong(a) => write!(f, "attribute '{}' is longer than {} bytes", a, MAX_ATTR),
            JibriError::IncompleteStatus => write!(f, "jibri-status without busy-status and health-status"),
        }
    }
}

impl std::error::Error for JibriError {}

/// `action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `start`: begin a recording, live stream or SIP call (moderator → focus, focus → Jibri).
    Start,
    /// `stop`: end it.
    Stop,
}

/// `status` (of a session).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `on`: the Jibri is recording, streaming or in the SIP call.
    On,
    /// `off`: the session ended (finished, stopped or failed).
    Off,
    /// `pending`: the Jibri accepted the start and is still joining; Jibri answers a start with it.
    Pending,
}

impl Status {
    /// The attribute value: `on`, `off` or `pending`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::On => "on",
            Status::Off => "off",
            Status::Pending => "pending",
        }
    }
}

/// `recording_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingMode {
    /// `file`: record to a file (also what the focus sends for a SIP gateway start).
    File,
    /// `stream`: live stream to the RTMP URL or YouTube key in `streamid`.
    Stream,
}

impl RecordingMode {
    /// The attribute value: `file` or `stream`.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordingMode::File => "file",
            RecordingMode::Stream => "stream",
        }
    }
}

/// `failure_reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    /// `busy`: the Jibri refused the start because it is already busy.
    Busy,
    /// `error`: the session failed (or its Jibri left the brewery).
    Error,
}

impl FailureReason {
    /// The attribute value: `busy` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Busy => "busy",
            FailureReason::Error => "error",
        }
    }
}

fn lower_eq(s: &str, v: &str) -> bool {
    s.trim().eq_ignore_ascii_case(v)
}

fn parse_action(s: &str) -> Option<Action> {
    [("start", Action::Start), ("stop", Action::Stop)].into_iter().find(|(n, _)| lower_eq(s, n)).map(|(_, a)| a)
}

fn parse_status(s: &str) -> Option<Status> {
    [("on", Status::On), ("off", Status::Off), ("pending", Status::Pending)]
        .into_iter()
        .find(|(n, _)| lower_eq(s, n))
        .map(|(_, a)| a)
}

fn parse_mode(s: &str) -> Option<RecordingMode> {
    [("file", RecordingMode::File), ("stream", RecordingMode::Stream)]
        .into_iter()
        .find(|(n, _)| lower_eq(s, n))
        .map(|(_, a)| a)
}

fn parse_reason(s: &str) -> Option<FailureReason> {
    [("busy", FailureReason::Busy), ("error", FailureReason::Error)]
        .into_iter()
        .find(|(n, _)| lower_eq(s, n))
        .map(|(_, a)| a)
}

/// The `<jibri>` IQ element (always empty), every attribute optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JibriIq {
    /// `action`: start or stop (requests); unknown values are `None`.
    pub action: Option<Action>,
    /// `status`: the session's state (Jibri's answers and status updates).
    pub status: Option<Status>,
    /// `recording_mode`: file or stream.
    pub recording_mode: Option<RecordingMode>,
    /// `room`: the conference's bare room JID (focus → Jibri start).
    pub room: Option<String>,
    /// `streamid`: the RTMP URL or YouTube stream key of a live stream.
    pub stream_id: Option<String>,
    /// `you_tube_broadcast_id`: the YouTube broadcast a live stream goes to.
    pub youtube_broadcast_id: Option<String>,
    /// `displayname`: the name a SIP gateway call shows in the room.
    pub display_name: Option<String>,
    /// `sipaddress`: the SIP URI a SIP gateway session calls; it also keys SIP sessions.
    pub sip_address: Option<String>,
    /// `session_id`: the focus's id of the recording or SIP session.
    pub session_id: Option<String>,
    /// `failure_reason`: why a session went `off` (busy or error).
    pub failure_reason: Option<FailureReason>,
    /// `should_retry`: after a failure, whether another Jibri may be tried (absent: false).
    pub should_retry: Option<bool>,
    /// `app_data`: a JSON string the client passes to Jibri (e.g. file recording metadata).
    pub app_data: Option<String>,
    /// `rtcstats_enabled`: whether Jibri's browser reports rtcstats (conference property
    /// `rtcstatsEnabled`, default true).
    pub rtcstats_enabled: Option<bool>,
}

/// Non-blank value of attribute `name`, bounded.
fn text_attr(el: &Element, name: &'static str) -> Result<Option<String>, JibriError> {
    match el.get_attr(name) {
        None => Ok(None),
        Some(v) if v.len() > MAX_ATTR => Err(JibriError::TooLong(name)),
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) => Ok(Some(v.to_string())),
    }
}

impl TryFrom<&Element> for JibriIq {
    type Error = JibriError;

    fn try_from(el: &Element) -> Result<JibriIq, JibriError> {
        if !el.is("jibri", NS) {
            return Err(JibriError::NotJibri);
        }
        let bool_attr = |n: &str| el.get_attr(n).map(|v| v.trim().eq_ignore_ascii_case("true"));
        Ok(JibriIq {
            action: el.get_attr("action").and_then(parse_action),
            status: el.get_attr("status").and_then(parse_status),
            recording_mode: el.get_attr("recording_mode").and_then(parse_mode),
            room: text_attr(el, "room")?,
            stream_id: text_attr(el, "streamid")?,
            youtube_broadcast_id: text_attr(el, "you_tube_broadcast_id")?,
            display_name: text_attr(el, "displayname")?,
            sip_address: text_attr(el, "sipaddress")?,
            session_id: text_attr(el, "session_id")?,
            failure_reason: el.get_attr("failure_reason").and_then(parse_reason),
            should_retry: bool_attr("should_retry"),
            app_data: text_attr(el, "app_data")?,
            rtcstats_enabled: bool_attr("rtcstats_enabled"),
        })
    }
}

impl JibriIq {
    /// The `<jibri>` element with the attributes that are set.
    pub fn to_element(&self) -> Element {
        Element::new("jibri", NS)
            .attr_opt(
                "action",
                self.action.map(|a| match a {
                    Action::Start => "start",
                    Action::Stop => "stop",
                }),
            )
            .attr_opt("status", self.status.map(Status::as_str))
            .attr_opt("recording_mode", self.recording_mode.map(RecordingMode::as_str))
            .attr_opt("room", self.room.clone())
            .attr_opt("streamid", self.stream_id.clone())
            .attr_opt("you_tube_broadcast_id", self.youtube_broadcast_id.clone())
            .attr_opt("displayname", self.display_name.clone())
            .attr_opt("sipaddress", self.sip_address.clone())
            .attr_opt("session_id", self.session_id.clone())
            .attr_opt("failure_reason", self.failure_reason.map(FailureReason::as_str))
            .attr_opt("should_retry", self.should_retry.map(|b| b.to_string()))
            .attr_opt("app_data", self.app_data.clone())
            .attr_opt("rtcstats_enabled", self.rtcstats_enabled.map(|b| b.to_string()))
    }

    /// A request for the SIP video gateway (non-blank `sipaddress`), not the recorder.
    pub fn is_sip(&self) -> bool {
        self.sip_address.is_some()
    }
}

/// A Jibri's availability from its brewery presence (`<jibri-status>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JibriStatus {
    /// `<busy-status status>` is not `idle`: the Jibri has a session.
    pub busy: bool,
    /// `<health-status status>` is `healthy`.
    pub healthy: bool,
}

impl JibriStatus {
    /// Available ⇔ healthy ∧ idle.
    pub fn available(&self) -> bool {
        self.healthy && !self.busy
    }

    /// `<jibri-status>` with both children (what a Jibri, or the simulator, publishes).
    pub fn to_element(&self) -> Element {
        Element::new("jibri-status", NS)
            .child(Element::new("busy-status", NS).attr("status", if self.busy { "busy" } else { "idle" }))
            .child(Element::new("health-status", NS_HEALTH).attr("status", if self.healthy { "healthy" } else { "unhealthy" }))
    }
}

impl TryFrom<&Element> for JibriStatus {
    type Error = JibriError;

    /// From `<jibri-status>`; both children must be there. A status value other than
    /// `idle` is busy, other than `healthy` unhealthy (never selected).
    fn try_from(el: &Element) -> Result<JibriStatus, JibriError> {
        if !el.is("jibri-status", NS) {
            return Err(JibriError::NotJibri);
        }
        let busy = el.get_child("busy-status", NS).ok_or(JibriError::IncompleteStatus)?;
        let health = el.get_child("health-status", NS_HEALTH).ok_or(JibriError::IncompleteStatus)?;
        Ok(JibriStatus::from_statuses(busy.get_attr("status"), health.get_attr("status")))
    }
}

impl JibriStatus {
    /// From the `status` of `<busy-status>` and of `<health-status>` (both present).
    pub fn from_statuses(busy: Option<&str>, health: Option<&str>) -> JibriStatus {
        JibriStatus { busy: !busy.is_some_and(|s| lower_eq(s, "idle")), healthy: health.is_some_and(|s| lower_eq(s, "healthy")) }
    }
}

/// `<jibri-recording-status>` in the focus presence (§3.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingStatus {
    /// `status`: only `on` and `off` are published.
    pub status: Status,
    /// `recording_mode`: file recording or live stream.
    pub mode: RecordingMode,
    /// `session_id`: the session this status is about.
    pub session_id: String,
    /// `initiator`: the occupant JID of who started it (on) or stopped it (off); absent
    /// when Jibri or a timeout ended it.
    pub initiator: Option<String>,
    /// `failure_reason`: set on an `off` that is a failure.
    pub failure_reason: Option<FailureReason>,
}

impl RecordingStatus {
    /// The `<jibri-recording-status>` element.
    pub fn to_element(&self) -> Element {
        Element::new("jibri-recording-status", NS)
            .attr("status", self.status.as_str())
            .attr("recording_mode", self.mode.as_str())
            .attr("session_id", self.session_id.clone())
            .attr_opt("initiator", self.initiator.clone())
            .attr_opt("failure_reason", self.failure_reason.map(FailureReason::as_str))
    }
}

impl TryFrom<&Element> for RecordingStatus {
    type Error = JibriError;

    /// What a client reads (tests use it to follow the focus presence).
    fn try_from(el: &Element) -> Result<RecordingStatus, JibriError> {
        if !el.is("jibri-recording-status", NS) {
            return Err(JibriError::NotJibri);
        }
        Ok(RecordingStatus {
            status: el.get_attr("status").and_then(parse_status).ok_or(JibriError::NotJibri)?,
            mode: el.get_attr("recording_mode").and_then(parse_mode).unwrap_or(RecordingMode::File),
            session_id: text_attr(el, "session_id")?.unwrap_or_default(),
            initiator: text_attr(el, "initiator")?,
            failure_reason: el.get_attr("failure_reason").and_then(parse_reason),
        })
    }
}

/// `<jibri-sip-call-state>` in the focus presence (§4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipCallState {
    /// `state`: `on` or `off`.
    pub state: Status,
    /// `sipaddress`: the SIP URI of the call.
    pub sip_address: String,
    /// `session_id`: the SIP session this state is about.
    pub session_id: String,
    /// `failure_reason`: set on an `off` that is a failure.
    pub failure_reason: Option<FailureReason>,
}

impl SipCallState {
    /// The `<jibri-sip-call-state>` element.
    pub fn to_element(&self) -> Element {
        Element::new("jibri-sip-call-state", NS_CALL_STATE)
            .attr("state", self.state.as_str())
            .attr("sipaddress", self.sip_address.clone())
            .attr("session_id", self.session_id.clone())
            .attr_opt("failure_reason", self.failure_reason.map(FailureReason::as_str))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse::parse_fragment as parse_str;

    fn el(s: &str) -> Element {
        parse_str(s).unwrap()
    }

    #[test]
    fn parses_a_moderator_start_case_insensitively() {
        let j = JibriIq::try_from(&el(
            "<jibri xmlns='http://jitsi.org/protocol/jibri' action='START' recording_mode='Stream' streamid='key' app_data='{}'/>",
        ))
        .unwrap();
        assert_eq!(j.action, Some(Action::Start));
        assert_eq!(j.recording_mode, Some(RecordingMode::Stream));
        assert_eq!(j.stream_id.as_deref(), Some("key"));
        assert!(!j.is_sip());
        let j = JibriIq::try_from(&el("<jibri xmlns='http://jitsi.org/protocol/jibri' action='go' sipaddress=' '/>")).unwrap();
        assert_eq!(j.action, None, "unknown action is undefined");
        assert!(!j.is_sip(), "a blank sipaddress is the recorder");
    }

    #[test]
    fn refuses_other_elements_and_oversized_values() {
        assert_eq!(JibriIq::try_from(&el("<jibri xmlns='urn:other'/>")), Err(JibriError::NotJibri));
        let long = "x".repeat(MAX_ATTR + 1);
        let e = Element::new("jibri", NS).attr("action", "start").attr("streamid", long);
        assert_eq!(JibriIq::try_from(&e), Err(JibriError::TooLong("streamid")));
    }

    #[test]
    fn status_updates_and_writer_round_trip() {
        let j = JibriIq::try_from(&el(
            "<jibri xmlns='http://jitsi.org/protocol/jibri' status='off' failure_reason='error' should_retry='true'/>",
        ))
        .unwrap();
        assert_eq!((j.status, j.failure_reason, j.should_retry), (Some(Status::Off), Some(FailureReason::Error), Some(true)));
        assert_eq!(JibriIq::try_from(&j.to_element()).unwrap(), j);
    }

    #[test]
    fn brewery_status_needs_both_children() {
        let s = JibriStatus { busy: false, healthy: true };
        assert_eq!(JibriStatus::try_from(&s.to_element()).unwrap(), s);
        assert!(s.available());
        let half = el("<jibri-status xmlns='http://jitsi.org/protocol/jibri'><busy-status status='idle'/></jibri-status>");
        assert_eq!(JibriStatus::try_from(&half), Err(JibriError::IncompleteStatus));
        let odd = el("<jibri-status xmlns='http://jitsi.org/protocol/jibri'><busy-status status='weird'/><health-status xmlns='http://jitsi.org/protocol/health' status='healthy'/></jibri-status>");
        assert!(!JibriStatus::try_from(&odd).unwrap().available());
    }

    #[test]
    fn recording_status_as_clients_read_it() {
        let r = RecordingStatus {
            status: Status::On,
            mode: RecordingMode::File,
            session_id: "s1".into(),
            initiator: Some("r@c/m".into()),
            failure_reason: None,
        };
        let x = r.to_element().to_xml();
        assert!(x.contains("status='on'") && x.contains("recording_mode='file'") && x.contains("initiator='r@c/m'"), "{}", x);
        assert_eq!(RecordingStatus::try_from(&r.to_element()).unwrap(), r);
    }
}
