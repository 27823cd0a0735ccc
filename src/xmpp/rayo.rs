//! Rayo (`urn:xmpp:rayo:1`) as Jitsi uses it for Jigasi, typed: the moderator's
//! `<dial>` (phone dial-out or the transcriber), the `<ref>` answer and `<hangup>`.
//!
//! [`Dial::try_from`] refuses what the focus must not forward: no `to`, a `to` that is
//! neither a phone number, a SIP URI nor the transcriber's name ([`DialTarget`]), more
//! than [`MAX_HEADERS`] headers, values over [`MAX_VALUE`] bytes. The focus copies a
//! dial it accepted onto a new IQ ([`Dial::to_element`]), so what it forwards is bounded.
//! Facts: `tests/fixtures/protocol/jibri-jigasi.md` §5.

use std::fmt;

use crate::xml::Element;

/// The Rayo namespace.
pub const NS: &str = "urn:xmpp:rayo:1";
/// The dial `to` that asks for the transcriber (§5.3).
pub const TRANSCRIBER: &str = "jitsi_meet_transcribe";
/// Header naming the conference room (Jigasi needs it).
pub const ROOM_NAME_HEADER: &str = "JvbRoomName";
/// Header with the room password.
pub const ROOM_PASSWORD_HEADER: &str = "JvbRoomPassword";
/// Headers one dial may carry.
pub const MAX_HEADERS: usize = 16;
/// The longest `to`/`from`/header value taken.
pub const MAX_VALUE: usize = 256;

/// Why a Rayo element was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RayoError {
    /// Not the expected element (`<dial>`, `<ref>`) in the Rayo namespace.
    NotRayo,
    /// `<dial>` without `to` (or `<ref>` without `uri`).
    NoDestination,
    /// `to` is neither a phone number, a `sip:` URI nor the transcriber.
    MalformedDestination,
    /// More than [`MAX_HEADERS`] `<header>` children.
    TooManyHeaders,
    /// The named value (`to`, `from`, `header`, `uri`) is longer than [`MAX_VALUE`] bytes
    /// (a `uri` may have 8 more, for its `xmpp:` prefix).
    TooLong(&'static str),
    /// A `<header>` without a name.
    BadHeader,
}

impl fmt::Display for RayoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RayoError::NotRayo => write!(f, "not a rayo element"),
            RayoError::NoDestination => write!(f, "dial without 'to'"),
            RayoError::MalformedDestination => {
                write!(f, "malformed number: 'to' must be a phone number (digits, + * # and separators), a sip: URI or {}", TRANSCRIBER)
            }
            RayoError::TooManyHeaders => write!(f, "more than {} headers", MAX_HEADERS),
            RayoError::TooLong(w) => write!(f, "{} longer than {} bytes", w, MAX_VALUE),
            RayoError::BadHeader => write!(f, "header without a name"),
        }
    }
}

impl std::error::Error for RayoError {}

/// What a dial asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialTarget {
    /// A phone number (as written; at least 2 digits; `+`, `*`, `#`, spaces, `-`, `.`, `(`, `)`).
    Phone(String),
    /// A `sip:` URI with a user and a host and no whitespace or control characters.
    Sip(String),
    /// The transcriber (`jitsi_meet_transcribe`).
    Transcriber,
}

impl DialTarget {
    /// Classify a dial's `to`.
    pub fn parse(to: &str) -> Result<DialTarget, RayoError> {
        if to.len() > MAX_VALUE {
            return Err(RayoError::TooLong("to"));
        }
        if to == TRANSCRIBER {
            return Ok(DialTarget::Transcriber);
        }
        if let Some(rest) = to.strip_prefix("sip:").or_else(|| to.strip_prefix("sips:")) {
            let ok = rest.split_once('@').is_some_and(|(u, h)| !u.is_empty() && !h.is_empty() && !h.contains('@'))
                && !rest.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>' || c == '"');
            return if ok { Ok(DialTarget::Sip(to.to_string())) } else { Err(RayoError::MalformedDestination) };
        }
        let allowed = |c: char| c.is_ascii_digit() || matches!(c, '+' | '*' | '#' | ' ' | '-' | '.' | '(' | ')');
        let digits = to.chars().filter(|c| c.is_ascii_digit()).count();
        let plus_ok = to.char_indices().all(|(i, c)| c != '+' || i == 0);
        if to.chars().all(allowed) && digits >= 2 && digits <= 32 && plus_ok {
            Ok(DialTarget::Phone(to.to_string()))
        } else {
            Err(RayoError::MalformedDestination)
        }
    }
}

/// `<dial to=… from=…><header name=… value=…/>…</dial>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dial {
    /// `to` as sent (trimmed): the number, SIP URI or transcriber name to dial.
    pub to: String,
    /// What `to` is.
    pub target: DialTarget,
    /// `from`: the caller id the client asks Jigasi to present.
    pub from: Option<String>,
    /// `<header name value>` children in order (e.g. [`ROOM_NAME_HEADER`]); the others are passed on to SIP.
    pub headers: Vec<(String, String)>,
}

impl Dial {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The `<dial>` element (what the focus forwards to a Jigasi).
    pub fn to_element(&self) -> Element {
        Element::new("dial", NS).attr("to", self.to.clone()).attr_opt("from", self.from.clone()).children(
            self.headers.iter().map(|(n, v)| Element::new("header", NS).attr("name", n.clone()).attr("value", v.clone())),
        )
    }
}

impl TryFrom<&Element> for Dial {
    type Error = RayoError;

    fn try_from(el: &Element) -> Result<Dial, RayoError> {
        if !el.is("dial", NS) {
            return Err(RayoError::NotRayo);
        }
        let to = el.get_attr("to").map(str::trim).filter(|t| !t.is_empty()).ok_or(RayoError::NoDestination)?;
        let target = DialTarget::parse(to)?;
        let from = match el.get_attr("from") {
            Some(f) if f.len() > MAX_VALUE => return Err(RayoError::TooLong("from")),
            f => f.map(str::to_string),
        };
        let mut headers = Vec::new();
        for h in el.children_named("header", NS) {
            if headers.len() == MAX_HEADERS {
                return Err(RayoError::TooManyHeaders);
            }
            let name = h.get_attr("name").filter(|n| !n.trim().is_empty()).ok_or(RayoError::BadHeader)?;
            let value = h.get_attr("value").unwrap_or("");
            if name.len() > MAX_VALUE || value.len() > MAX_VALUE {
                return Err(RayoError::TooLong("header"));
            }
            headers.push((name.to_string(), value.to_string()));
        }
        Ok(Dial { to: to.to_string(), target, from, headers })
    }
}

/// `<ref uri=…/>`: Jigasi's answer to a dial (`xmpp:<its occupant JID>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ref {
    /// `uri`: `xmpp:` and Jigasi's occupant JID in the conference.
    pub uri: String,
}

impl Ref {
    /// The `<ref>` element.
    pub fn to_element(&self) -> Element {
        Element::new("ref", NS).attr("uri", self.uri.clone())
    }
}

impl TryFrom<&Element> for Ref {
    type Error = RayoError;

    fn try_from(el: &Element) -> Result<Ref, RayoError> {
        if !el.is("ref", NS) {
            return Err(RayoError::NotRayo);
        }
        let uri = el.get_attr("uri").ok_or(RayoError::NoDestination)?;
        if uri.len() > MAX_VALUE + 8 {
            return Err(RayoError::TooLong("uri"));
        }
        Ok(Ref { uri: uri.to_string() })
    }
}

/// `<hangup/>`.
pub fn hangup() -> Element {
    Element::new("hangup", NS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse::parse_fragment;

    #[test]
    fn dial_targets() {
        assert_eq!(DialTarget::parse("+1 (555) 123-4567"), Ok(DialTarget::Phone("+1 (555) 123-4567".into())));
        assert_eq!(DialTarget::parse("*99#12"), Ok(DialTarget::Phone("*99#12".into())));
        assert_eq!(DialTarget::parse("sip:room@pbx.example"), Ok(DialTarget::Sip("sip:room@pbx.example".into())));
        assert_eq!(DialTarget::parse(TRANSCRIBER), Ok(DialTarget::Transcriber));
        for bad in ["abc", "1", "+1+2", "12;rm", "sip:nohost", "sip:a@b c", "sip:@h", "555\n123", &"1".repeat(300)] {
            assert!(DialTarget::parse(bad).is_err(), "{:?}", bad);
        }
    }

    #[test]
    fn parses_and_writes_a_dial() {
        let el = parse_fragment(
            "<dial xmlns='urn:xmpp:rayo:1' to='+15551234567' from='fromnumber'><header name='JvbRoomName' value='r@c.example'/></dial>",
        )
        .unwrap();
        let d = Dial::try_from(&el).unwrap();
        assert_eq!(d.header(ROOM_NAME_HEADER), Some("r@c.example"));
        assert_eq!(Dial::try_from(&d.to_element()).unwrap(), d);
        let none = parse_fragment("<dial xmlns='urn:xmpp:rayo:1'/>").unwrap();
        assert_eq!(Dial::try_from(&none), Err(RayoError::NoDestination));
        let bad = parse_fragment("<dial xmlns='urn:xmpp:rayo:1' to='call me'/>").unwrap();
        assert_eq!(Dial::try_from(&bad), Err(RayoError::MalformedDestination));
        let mut many = Element::new("dial", NS).attr("to", "+1555");
        for i in 0..=MAX_HEADERS {
            many = many.child(Element::new("header", NS).attr("name", format!("h{}", i)).attr("value", "v"));
        }
        assert_eq!(Dial::try_from(&many), Err(RayoError::TooManyHeaders));
    }

    #[test]
    fn ref_round_trip() {
        let r = Ref { uri: "xmpp:r@c/jg".into() };
        assert_eq!(Ref::try_from(&r.to_element()).unwrap(), r);
    }
}
