//! `<json-message xmlns='http://jitsi.org/jitmeet'>` payloads of the messages Jitsi's
//! Prosody components send to the focus (moderation.md §0): the text is JSON, checked
//! against bounds before `serde_json` sees it (at most [`MAX_JSON_MESSAGE_BYTES`], nested
//! at most [`MAX_JSON_MESSAGE_DEPTH`] deep), so a forged or huge payload costs a
//! bounded scan and a typed error, never unbounded work.

use std::fmt;

use crate::xml::Element;
use crate::xmpp::ns;

/// Largest JSON text accepted in one component message.
pub const MAX_JSON_MESSAGE_BYTES: usize = 64 * 1024;
/// Deepest nesting accepted (the payloads nest 3 deep).
pub const MAX_JSON_MESSAGE_DEPTH: usize = 8;

/// Why a component message was refused (ignored and counted by the caller).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ComponentMessageError {
    /// Not a `<message>` with a `<json-message>` child.
    NotJsonMessage,
    /// The JSON text is longer than [`MAX_JSON_MESSAGE_BYTES`].
    TooLarge(usize),
    /// Nested deeper than [`MAX_JSON_MESSAGE_DEPTH`].
    TooDeep,
    /// Not JSON, or not an object.
    Invalid(String),
    /// The JSON `type` is not the one this parser reads.
    WrongType(String),
    /// A field has the wrong shape or value.
    BadField(&'static str),
    /// A list is longer than allowed.
    TooMany(&'static str, usize),
}

impl fmt::Display for ComponentMessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComponentMessageError::NotJsonMessage => write!(f, "not a json-message"),
            ComponentMessageError::TooLarge(n) => write!(f, "JSON of {} bytes (at most {})", n, MAX_JSON_MESSAGE_BYTES),
            ComponentMessageError::TooDeep => write!(f, "JSON nested deeper than {}", MAX_JSON_MESSAGE_DEPTH),
            ComponentMessageError::Invalid(e) => write!(f, "invalid JSON: {}", crate::xmpp::stanza::clip(e, 128)),
            ComponentMessageError::WrongType(t) => write!(f, "unexpected type {:?}", crate::xmpp::stanza::clip(t, 64)),
            ComponentMessageError::BadField(n) => write!(f, "bad field {:?}", n),
            ComponentMessageError::TooMany(n, max) => write!(f, "{:?} has more than {} entries", n, max),
        }
    }
}

impl std::error::Error for ComponentMessageError {}

/// The `<json-message>` child of `msg`.
pub fn json_child(msg: &Element) -> Result<&Element, ComponentMessageError> {
    if msg.name != "message" {
        return Err(ComponentMessageError::NotJsonMessage);
    }
    msg.get_child("json-message", ns::JITMEET).ok_or(ComponentMessageError::NotJsonMessage)
}

/// Is `text` nested at most `max` deep? A linear scan that skips strings, run before
/// parsing so that the parser never recurses deeper (also for JSON-encoded sources).
pub(crate) fn depth_within(text: &str, max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for b in text.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

/// Parse the JSON text of a `<json-message>` within the bounds, as an object whose
/// `type` is `expected`.
pub fn parse_object(text: &str, expected: &str) -> Result<serde_json::Map<String, serde_json::Value>, ComponentMessageError> {
    if text.len() > MAX_JSON_MESSAGE_BYTES {
        return Err(ComponentMessageError::TooLarge(text.len()));
    }
    if !depth_within(text, MAX_JSON_MESSAGE_DEPTH) {
        return Err(ComponentMessageError::TooDeep);
    }
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| ComponentMessageError::Invalid(e.to_string()))?;
    let serde_json::Value::Object(map) = v else {
        return Err(ComponentMessageError::Invalid("not an object".into()));
    };
    match map.get("type").and_then(|t| t.as_str()) {
        Some(t) if t == expected => Ok(map),
        Some(t) => Err(ComponentMessageError::WrongType(t.to_string())),
        None => Err(ComponentMessageError::BadField("type")),
    }
}

/// A `<message>` from `from` to `to` carrying `json` (how the components send it).
pub fn message(from: &str, to: &str, json: &serde_json::Value, room_attr: Option<&str>) -> Element {
    Element::new("message", ns::CLIENT)
        .attr("from", from)
        .attr("to", to)
        .child(Element::new("json-message", ns::JITMEET).attr_opt("room", room_attr).text(json.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_checked_before_parsing() {
        assert!(parse_object(r#"{"type":"x"}"#, "x").is_ok());
        let deep = format!(r#"{{"type":"x","a":{}1{}}}"#, "[".repeat(20), "]".repeat(20));
        assert_eq!(parse_object(&deep, "x"), Err(ComponentMessageError::TooDeep));
        // Brackets inside strings do not count.
        let s = format!(r#"{{"type":"x","a":"{}"}}"#, "[".repeat(100));
        assert!(parse_object(&s, "x").is_ok());
        let big = format!(r#"{{"type":"x","a":"{}"}}"#, "a".repeat(MAX_JSON_MESSAGE_BYTES));
        assert!(matches!(parse_object(&big, "x"), Err(ComponentMessageError::TooLarge(_))));
        assert!(matches!(parse_object("{not json", "x"), Err(ComponentMessageError::Invalid(_))));
        assert!(matches!(parse_object("[1]", "x"), Err(ComponentMessageError::Invalid(_))));
        assert_eq!(parse_object(r#"{"type":"y"}"#, "x"), Err(ComponentMessageError::WrongType("y".into())));
        assert_eq!(parse_object(r#"{"type":1}"#, "x"), Err(ComponentMessageError::BadField("type")));
    }
}
