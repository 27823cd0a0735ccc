//! The conference request IQ (`<conference xmlns='http://jitsi.org/protocol/focus'>`),
//! `login-url` and `logout`: typed values parsed from elements, and their replies.

use std::fmt;

use crate::jid::Jid;
use crate::xml::{ns, Element};

/// A parsed `<conference>` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConferenceRequest {
    /// The room's bare JID.
    pub room: Jid,
    pub machine_uid: Option<String>,
    pub session_id: Option<String>,
    /// `<property name value>` pairs in order.
    pub properties: Vec<(String, String)>,
}

/// Why a request is refused before it reaches a conference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestError {
    NoRoom,
    BadRoom(String),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::NoRoom => write!(f, "No 'room' specified."),
            RequestError::BadRoom(r) => write!(f, "Invalid 'room': '{}' is not a room JID (name@service)", r),
        }
    }
}

impl ConferenceRequest {
    /// Parse the `<conference>` child of a request IQ.
    pub fn parse(conf: &Element) -> Result<ConferenceRequest, RequestError> {
        let room_text = match conf.get_attr("room") {
            Some(r) if !r.trim().is_empty() => r.trim(),
            _ => return Err(RequestError::NoRoom),
        };
        let room = parse_room(room_text)?;
        let properties = conf
            .children_named("property", ns::FOCUS)
            .filter_map(|p| Some((p.get_attr("name")?.to_string(), p.get_attr("value").unwrap_or("").to_string())))
            .collect();
        Ok(ConferenceRequest {
            room,
            machine_uid: conf.get_attr("machine-uid").filter(|s| !s.is_empty()).map(str::to_string),
            session_id: conf.get_attr("session-id").filter(|s| !s.is_empty()).map(str::to_string),
            properties,
        })
    }

    /// The value of property `name`.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// An integer property (startAudioMuted, startVideoMuted).
    pub fn int_property(&self, name: &str) -> Option<i64> {
        self.property(name).and_then(|v| v.trim().parse().ok())
    }
}

/// A room JID: `name@service`, no resource, split at the last `@`.
pub fn parse_room(text: &str) -> Result<Jid, RequestError> {
    match Jid::parse(text) {
        Ok(j) if j.local().is_some() && j.is_bare() => Ok(j),
        _ => Err(RequestError::BadRoom(text.to_string())),
    }
}

/// The `<conference>` payload of a reply.
#[derive(Clone, Debug, Default)]
pub struct ConferenceReply {
    pub room: String,
    pub ready: bool,
    pub focus_jid: String,
    pub session_id: Option<String>,
    pub identity: Option<String>,
    pub properties: Vec<(String, String)>,
}

impl ConferenceReply {
    /// The `<conference>` element.
    pub fn to_element(&self) -> Element {
        let mut el = Element::new("conference", ns::FOCUS)
            .attr("room", self.room.clone())
            .attr("ready", if self.ready { "true" } else { "false" })
            .attr("focusjid", self.focus_jid.clone())
            .attr_opt("session-id", self.session_id.clone())
            .attr_opt("identity", self.identity.clone());
        for (k, v) in &self.properties {
            el = el.child(Element::new("property", ns::FOCUS).attr("name", k.clone()).attr("value", v.clone()));
        }
        el
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_room_and_properties() {
        let conf = Element::new("conference", ns::FOCUS)
            .attr("room", "room1@conference.meet.test")
            .attr("machine-uid", "m1")
            .child(Element::new("property", ns::FOCUS).attr("name", "startAudioMuted").attr("value", "3"));
        let r = ConferenceRequest::parse(&conf).unwrap();
        assert_eq!(r.room.to_string(), "room1@conference.meet.test");
        assert_eq!(r.machine_uid.as_deref(), Some("m1"));
        assert_eq!(r.int_property("startAudioMuted"), Some(3));
    }

    #[test]
    fn rejects_missing_and_malformed_rooms() {
        let e = ConferenceRequest::parse(&Element::new("conference", ns::FOCUS)).unwrap_err();
        assert_eq!(e.to_string(), "No 'room' specified.");
        for bad in ["conference.meet.test", "a@b@", "room@conference.meet.test/nick", "@x"] {
            let conf = Element::new("conference", ns::FOCUS).attr("room", bad);
            assert!(matches!(ConferenceRequest::parse(&conf), Err(RequestError::BadRoom(_))), "{}", bad);
        }
    }
}
