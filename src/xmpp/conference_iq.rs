//! The conference request IQ (`<conference xmlns='http://jitsi.org/protocol/focus'>`),
//! `login-url` and `logout`: typed values parsed from elements, and their replies; and
//! which rooms the focus serves at all ([`RoomServices`]).
//!
//! Rooms are admitted only on the conference MUC service (`--conference_muc`), so no
//! request makes the focus join or configure a room on another service (lobby,
//! breakout, internal, a remote domain). Room names (the local part) are at most
//! [`MAX_ROOM_NAME`] bytes, not empty, and free of the characters XEP-0106 escapes and
//! nodeprep prohibits (`"&'/:<>@`, whitespace, control characters).

use std::fmt;

use crate::jid::Jid;
use crate::xml::{Element, Event};
use crate::xmpp::collect::{attr, take_attr, Depth, Step};
use crate::xmpp::ns;

/// A parsed `<conference>` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConferenceRequest {
    /// The room's bare JID.
    pub room: Jid,
    /// The `machine-uid` attribute: the client's stable per-browser id, which an
    /// authentication session is bound to (focus.md §2.6).
    pub machine_uid: Option<String>,
    /// The `session-id` attribute: an authentication session id the focus gave out earlier.
    pub session_id: Option<String>,
    /// `<property name value>` pairs in order.
    pub properties: Vec<(String, String)>,
}

/// Longest room name (the local part of the room JID) accepted, in bytes. Jitsi Meet
/// room names come from URLs and are short; XMPP allows 1023, which only an attacker needs.
pub const MAX_ROOM_NAME: usize = 256;

/// Why a request is refused before it reaches a conference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// The `<conference>` has no `room` attribute (`bad-request` "No 'room' specified.").
    NoRoom,
    /// The `room` (given here as sent) is not a bare JID with a local part.
    BadRoom(String),
    /// The room name is empty, too long or has a prohibited character.
    BadRoomName(String),
    /// The room is on a service conferences are not created on.
    ForeignService {
        /// The room JID as sent.
        room: String,
        /// The MUC services conferences are created on.
        services: Vec<String>,
    },
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::NoRoom => write!(f, "No 'room' specified."),
            RequestError::BadRoom(r) => write!(f, "Invalid 'room': '{}' is not a room JID (name@service)", r),
            RequestError::BadRoomName(why) => write!(f, "Invalid 'room': {}", why),
            RequestError::ForeignService { room, services } => {
                write!(f, "Invalid 'room': {} is not on {}", room, services.join(" or "))
            }
        }
    }
}

/// The MUC services the focus creates conferences on: the conference MUC service;
/// a later breakout-rooms feature adds `breakout.<domain>` with [`RoomServices::with`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomServices {
    services: Vec<String>,
    /// Rooms on those services that are never conferences (the bridge brewery, should
    /// it be configured there).
    reserved: Vec<Jid>,
}

impl RoomServices {
    /// Only `conference_muc` (a domain, as `Config::conference_muc`).
    pub fn new(conference_muc: &str) -> RoomServices {
        RoomServices { services: vec![conference_muc.to_ascii_lowercase()], reserved: Vec::new() }
    }

    /// Never admit `room` (e.g. the bridge brewery).
    pub fn except(mut self, room: &Jid) -> RoomServices {
        self.reserved.push(room.bare());
        self
    }

    /// Also admit rooms on `service`.
    pub fn with(mut self, service: &str) -> RoomServices {
        self.services.push(service.to_ascii_lowercase());
        self
    }

    /// May the focus run a conference in `room` (a bare room JID)?
    pub fn admit(&self, room: &Jid) -> Result<(), RequestError> {
        let Some(name) = room.local().filter(|_| room.is_bare()) else {
            return Err(RequestError::BadRoom(room.to_string()));
        };
        check_room_name(name)?;
        if !self.services.iter().any(|s| s == room.domain()) {
            return Err(RequestError::ForeignService { room: room.to_string(), services: self.services.clone() });
        }
        if self.reserved.contains(room) {
            return Err(RequestError::BadRoomName(format!("{} is not a conference room", room)));
        }
        Ok(())
    }
}

/// A room name (local part) the focus accepts: not empty, at most [`MAX_ROOM_NAME`]
/// bytes, none of `"&'/:<>@`, no whitespace, no control characters.
pub fn check_room_name(name: &str) -> Result<(), RequestError> {
    if name.is_empty() {
        return Err(RequestError::BadRoomName("empty room name".into()));
    }
    if name.len() > MAX_ROOM_NAME {
        return Err(RequestError::BadRoomName(format!("the room name is longer than {} bytes", MAX_ROOM_NAME)));
    }
    if let Some(c) = name
        .chars()
        .find(|c| matches!(c, '"' | '&' | '\'' | '/' | ':' | '<' | '>' | '@') || c.is_whitespace() || c.is_control())
    {
        return Err(RequestError::BadRoomName(format!("character {:?} is not allowed in a room name", c)));
    }
    Ok(())
}

impl ConferenceRequest {
    /// Parse the `<conference>` child of a request IQ.
    pub fn parse(conf: &Element) -> Result<ConferenceRequest, RequestError> {
        ConferenceRequest::from_fields(&RequestFields::from_element(conf))
    }

    /// Check the fields of a request as it came (XMPP or HTTP).
    pub fn from_fields(f: &RequestFields) -> Result<ConferenceRequest, RequestError> {
        let room_text = match f.room.trim() {
            "" => return Err(RequestError::NoRoom),
            r => r,
        };
        let room = parse_room(room_text)?;
        Ok(ConferenceRequest {
            room,
            machine_uid: f.machine_uid.clone().filter(|s| !s.is_empty()),
            session_id: f.session_id.clone().filter(|s| !s.is_empty()),
            properties: f.properties.clone(),
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

/// Properties of a conference request the focus reads ([`ConferenceRequest::int_property`]).
pub const READ_PROPERTIES: &[&str] = &["startAudioMuted", "startVideoMuted"];

/// The request `iq` reduced to what answering it and replaying it (a request that raced
/// with the end of its conference starts a fresh one) need: its `id`, `type`, `from`
/// and `to`, and its `<conference>` with the `room` and the properties the focus reads
/// ([`READ_PROPERTIES`]; authentication happened before). Requests wait for the focus
/// to join their room (up to `--max_waiting_requests` per conference) as this copy, a
/// couple of KB whatever was sent (a request may carry thousands of properties).
pub fn slim_request(iq: &Element) -> Element {
    let mut out = Element::new(&iq.name, &iq.ns);
    for k in ["type", "id", "from", "to"] {
        if let Some(v) = iq.get_attr(k) {
            out.set_attr(k, v);
        }
    }
    if let Some(c) = iq.get_child("conference", ns::FOCUS) {
        let mut conf = Element::new("conference", ns::FOCUS).attr_opt("room", c.get_attr("room"));
        for name in READ_PROPERTIES {
            if let Some(p) = c.children_named("property", ns::FOCUS).find(|p| p.get_attr("name") == Some(name)) {
                conf = conf.child(p.clone());
            }
        }
        out = out.child(conf);
    }
    out
}

/// A room JID: `name@service`, no resource, split at the last `@`.
pub fn parse_room(text: &str) -> Result<Jid, RequestError> {
    match Jid::parse(text) {
        Ok(j) if j.local().is_some() && j.is_bare() => Ok(j),
        _ => Err(RequestError::BadRoom(text.to_string())),
    }
}

/// A conference request as it came, before the focus checks it: what the HTTP API reads
/// from its JSON body (`room`, `sessionId`, `machineUid`, `properties`). The router
/// serves it exactly like the XMPP request it stands for ([`RequestFields::to_iq`]), so
/// both paths share one check ([`ConferenceRequest::parse`]) and one set of limits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestFields {
    /// The room as given (not checked yet; "" when there was none).
    pub room: String,
    /// The authentication session id (`sessionId`), sent as `session-id`.
    pub session_id: Option<String>,
    /// The client's per-browser id (`machineUid`), sent as `machine-uid`.
    pub machine_uid: Option<String>,
    /// `name → value` in the order given.
    pub properties: Vec<(String, String)>,
}

impl RequestFields {
    /// The fields of a `<conference>` element (the same reader as for the parser's events).
    pub fn from_element(conf: &Element) -> RequestFields {
        let mut r = ConferenceReader::new(conf.attrs.clone());
        let mut first = true;
        crate::xml::parse::walk(conf, &mut |ev| {
            if !std::mem::take(&mut first) {
                r.event(ev);
            }
        });
        r.finish()
    }

    /// Estimated heap memory held (see `Element::weight`).
    pub fn weight(&self) -> usize {
        let s = |v: &Option<String>| v.as_ref().map_or(0, |v| v.capacity() + 16);
        64 + self.room.capacity() + s(&self.session_id) + s(&self.machine_uid) + self.properties.iter().map(|(k, v)| k.capacity() + v.capacity() + 64).sum::<usize>()
    }

    /// The request IQ `head` carried these fields reduced to what answering and replaying
    /// it need, as [`slim_request`] makes it from a tree.
    pub fn slim_iq(&self, head: &crate::xmpp::stanza::IqHead) -> Element {
        let mut conf = Element::new("conference", ns::FOCUS).attr("room", self.room.clone());
        for name in READ_PROPERTIES {
            if let Some((k, v)) = self.properties.iter().find(|(k, _)| k == name) {
                conf = conf.child(Element::new("property", ns::FOCUS).attr("name", k.clone()).attr("value", v.clone()));
            }
        }
        Element::new("iq", &head.ns)
            .attr("type", head.typ.as_str())
            .attr_opt("id", head.id.clone())
            .attr_opt("from", head.from.clone())
            .attr_opt("to", head.to.clone())
            .child(conf)
    }

    /// The `<conference>` element of these fields.
    pub fn to_element(&self) -> Element {
        let mut conf = Element::new("conference", ns::FOCUS).attr("room", self.room.clone());
        if let Some(s) = &self.session_id {
            conf.set_attr("session-id", s);
        }
        if let Some(m) = &self.machine_uid {
            conf.set_attr("machine-uid", m);
        }
        for (k, v) in &self.properties {
            conf = conf.child(Element::new("property", ns::FOCUS).attr("name", k.clone()).attr("value", v.clone()));
        }
        conf
    }

    /// The request IQ these fields stand for (no sender: it came over HTTP).
    pub fn to_iq(&self) -> Element {
        Element::new("iq", ns::CLIENT).attr("type", "set").attr("id", "http").child(self.to_element())
    }
}

/// Reads [`RequestFields`] from the events below `<conference>`: its `room`,
/// `session-id`, `machine-uid` and every `<property name value>` with a name.
#[derive(Debug)]
pub struct ConferenceReader {
    fields: RequestFields,
    depth: Depth,
}

impl ConferenceReader {
    /// A `<conference>` whose opening tag had `attrs`.
    pub fn new(mut attrs: Vec<(String, String)>) -> ConferenceReader {
        let fields = RequestFields {
            room: take_attr(&mut attrs, "room").unwrap_or_default(),
            session_id: take_attr(&mut attrs, "session-id"),
            machine_uid: take_attr(&mut attrs, "machine-uid"),
            properties: Vec::new(),
        };
        ConferenceReader { fields, depth: Depth::default() }
    }

    /// The next event below `<conference>`; [`Step::Closed`] at its end.
    pub fn event(&mut self, ev: Event) -> Step {
        if let (Event::Start { name, ns, attrs }, 0) = (&ev, self.depth.0) {
            if name == "property" && ns == ns::FOCUS {
                if let Some(n) = attr(attrs, "name") {
                    self.fields.properties.push((n.to_string(), attr(attrs, "value").unwrap_or("").to_string()));
                }
            }
        }
        self.depth.follow(&ev)
    }

    /// The `<conference>` request's fields as read.
    pub fn finish(self) -> RequestFields {
        self.fields
    }
}

/// The `<conference>` payload of a reply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConferenceReply {
    /// The room's bare JID (`room`).
    pub room: String,
    /// `ready`: the focus is in the room and the client may join; `false`: ask again later.
    pub ready: bool,
    /// `focusjid`: the focus user's bare JID, by which clients recognise the focus occupant.
    pub focus_jid: String,
    /// `session-id`: the sender's authentication session, when it is authenticated.
    pub session_id: Option<String>,
    /// `identity`: the sender's authenticated identity (its bare JID for XMPP authentication).
    pub identity: Option<String>,
    /// `<property name value>` children in order: `authentication`, `externalAuth`,
    /// `sipGatewayEnabled` (focus.md §2.4).
    pub properties: Vec<(String, String)>,
}

impl ConferenceReply {
    /// Estimated memory its strings hold (for the inbox byte budget).
    pub fn weight(&self) -> usize {
        let props: usize = self.properties.iter().map(|(k, v)| k.capacity() + v.capacity() + 2 * 32).sum();
        self.room.capacity()
            + self.focus_jid.capacity()
            + self.session_id.as_ref().map_or(0, String::capacity)
            + self.identity.as_ref().map_or(0, String::capacity)
            + props
            + 4 * 32
    }

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
    fn a_waiting_request_keeps_only_what_answering_and_replaying_need() {
        let mut conf = Element::new("conference", ns::FOCUS)
            .attr("room", "r1@conference.meet.test")
            .attr("machine-uid", "m".repeat(100_000))
            .child(Element::new("property", ns::FOCUS).attr("name", "startVideoMuted").attr("value", "2"));
        for i in 0..5000 {
            conf = conf.child(Element::new("property", ns::FOCUS).attr("name", format!("p{i}")).attr("value", "x".repeat(20)));
        }
        let iq = Element::new("iq", ns::CLIENT)
            .attr("type", "set")
            .attr("id", "c1")
            .attr("from", "u@meet.test/r")
            .attr("to", "focus.meet.test")
            .attr("junk", "j".repeat(100_000))
            .child(conf);
        let slim = slim_request(&iq);
        assert!(slim.weight() < 4096, "{}", slim.weight());
        assert!(iq.weight() > 1 << 20);
        // The answer is the same…
        assert_eq!(crate::xmpp::stanza::iq_result(&slim), crate::xmpp::stanza::iq_result(&iq));
        // …and so is the request, replayed.
        let again = ConferenceRequest::parse(slim.get_child("conference", ns::FOCUS).unwrap()).unwrap();
        let first = ConferenceRequest::parse(iq.get_child("conference", ns::FOCUS).unwrap()).unwrap();
        assert_eq!(again.room, first.room);
        assert_eq!(again.int_property("startVideoMuted"), Some(2));
        assert_eq!(again.int_property("startAudioMuted"), first.int_property("startAudioMuted"));
    }

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
    fn only_rooms_on_the_conference_service_with_valid_names_are_admitted() {
        let s = RoomServices::new("conference.meet.test");
        let ok = |r: &str| s.admit(&Jid::parse(r).unwrap());
        assert_eq!(ok("room1@conference.meet.test"), Ok(()));
        assert_eq!(ok("Room1@Conference.Meet.Test"), Ok(()), "JIDs compare case-insensitively");
        assert_eq!(ok("été-2026\\20plan@conference.meet.test"), Ok(()), "non-ASCII and XEP-0106 escapes are fine");
        assert_eq!(ok(&format!("{}@conference.meet.test", "a".repeat(MAX_ROOM_NAME))), Ok(()));
        for foreign in [
            "room1@lobby.meet.test",
            "room1@breakout.meet.test",
            "jvbbrewery@internal.auth.meet.test",
            "room1@conference.evil.example",
            "room1@meet.test",
            "room1@conference.meet.test.evil.example",
        ] {
            let e = ok(foreign).unwrap_err();
            assert!(matches!(e, RequestError::ForeignService { .. }), "{}: {:?}", foreign, e);
            assert!(e.to_string().contains("conference.meet.test"), "{}", e);
        }
        let long = format!("{}@conference.meet.test", "a".repeat(MAX_ROOM_NAME + 1));
        assert!(matches!(ok(&long), Err(RequestError::BadRoomName(_))));
        assert!(matches!(ok("room1@conference.meet.test/nick"), Err(RequestError::BadRoom(_))));
        assert!(matches!(ok("conference.meet.test"), Err(RequestError::BadRoom(_))));
        for name in ["a b", "a\u{7f}b", "a\u{2003}b", "", "a:b", "a<b", "a'b", "a\"b", "a&b"] {
            assert!(matches!(check_room_name(name), Err(RequestError::BadRoomName(_))), "{:?}", name);
        }
        // A reserved room on the service (the brewery, if configured there) is refused.
        let r = RoomServices::new("conference.meet.test").except(&Jid::parse("jvbbrewery@conference.meet.test").unwrap());
        assert!(matches!(r.admit(&Jid::parse("JvbBrewery@conference.meet.test").unwrap()), Err(RequestError::BadRoomName(_))));
        assert_eq!(r.admit(&Jid::parse("room1@conference.meet.test").unwrap()), Ok(()));
        // The breakout service, once a feature, extends the same check.
        let b = s.clone().with("breakout.meet.test");
        assert_eq!(b.admit(&Jid::parse("x@breakout.meet.test").unwrap()), Ok(()));
        assert!(b.admit(&Jid::parse("x@lobby.meet.test").unwrap()).is_err());
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
