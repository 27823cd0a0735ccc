//! Room metadata messages (moderation.md §4.1–§4.2) from the `room_metadata` Prosody
//! component: `<json-message room='…'>{"type":"room_metadata","metadata":{…}}`. The room
//! comes from the `room` *attribute*. Only the fields that take effect in this focus are
//! kept (no visitors here, so `visitors`, `visitorsEnabled` and `participantsSoftLimit`
//! are read but only `lobbyEnabled` and `startMuted` change anything; see README). Lists
//! are bounded by [`MAX_IDS`].

use serde_json::{json, Map, Value};

use crate::jid::Jid;
use crate::xml::Element;
use crate::xmpp::json_message::{json_child, parse_object, ComponentMessageError};

/// Most ids in `moderators` / `participants`.
pub const MAX_IDS: usize = 1024;

/// The metadata of one room, as far as the focus uses it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoomMetadata {
    /// The room the metadata is about (the `<json-message>`'s `room` attribute; `None` when absent).
    pub room: Option<Jid>,
    /// `startMuted.audio`, only when present: new joiners start with audio muted.
    pub start_muted_audio: Option<bool>,
    /// `startMuted.video`, only when present: new joiners start with video muted.
    pub start_muted_video: Option<bool>,
    /// `lobbyEnabled` (absent → false).
    pub lobby_enabled: bool,
    /// `visitors.live` (absent → false).
    pub visitors_live: bool,
    /// `moderators` (absent → empty).
    pub moderators: Vec<String>,
    /// `participants` (absent → `None`: the room is open).
    pub participants: Option<Vec<String>>,
}

fn ids(v: Option<&Value>, name: &'static str) -> Result<Option<Vec<String>>, ComponentMessageError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => {
            if a.len() > MAX_IDS {
                return Err(ComponentMessageError::TooMany(name, MAX_IDS));
            }
            a.iter()
                .map(|x| x.as_str().filter(|s| s.len() <= 1024).map(str::to_string).ok_or(ComponentMessageError::BadField(name)))
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        }
        Some(_) => Err(ComponentMessageError::BadField(name)),
    }
}

impl RoomMetadata {
    /// Parse the JSON text; `room` is the `room` attribute.
    pub fn from_json(room: Option<&str>, text: &str) -> Result<RoomMetadata, ComponentMessageError> {
        let room = match room {
            Some(r) => Some(Jid::parse(r).ok().filter(|j| j.is_bare() && j.local().is_some()).ok_or(ComponentMessageError::BadField("room"))?),
            None => None,
        };
        let map = parse_object(text, "room_metadata")?;
        let Some(Value::Object(md)) = map.get("metadata") else { return Err(ComponentMessageError::BadField("metadata")) };
        let opt_bool = |v: Option<&Value>, name| match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ComponentMessageError::BadField(name)),
        };
        let (a, v) = match md.get("startMuted") {
            None | Some(Value::Null) => (None, None),
            Some(Value::Object(s)) => (opt_bool(s.get("audio"), "startMuted")?, opt_bool(s.get("video"), "startMuted")?),
            Some(_) => return Err(ComponentMessageError::BadField("startMuted")),
        };
        let visitors_live = match md.get("visitors") {
            None | Some(Value::Null) => false,
            Some(Value::Object(o)) => opt_bool(o.get("live"), "visitors")?.unwrap_or(false),
            Some(_) => return Err(ComponentMessageError::BadField("visitors")),
        };
        Ok(RoomMetadata {
            room,
            start_muted_audio: a,
            start_muted_video: v,
            lobby_enabled: opt_bool(md.get("lobbyEnabled"), "lobbyEnabled")?.unwrap_or(false),
            visitors_live,
            moderators: ids(md.get("moderators"), "moderators")?.unwrap_or_default(),
            participants: ids(md.get("participants"), "participants")?,
        })
    }

    /// The JSON the component sends.
    pub fn to_json(&self) -> Value {
        let mut md = Map::new();
        let mut sm = Map::new();
        if let Some(a) = self.start_muted_audio {
            sm.insert("audio".into(), json!(a));
        }
        if let Some(v) = self.start_muted_video {
            sm.insert("video".into(), json!(v));
        }
        if !sm.is_empty() {
            md.insert("startMuted".into(), Value::Object(sm));
        }
        md.insert("lobbyEnabled".into(), json!(self.lobby_enabled));
        md.insert("visitors".into(), json!({ "live": self.visitors_live }));
        md.insert("moderators".into(), json!(self.moderators));
        if let Some(p) = &self.participants {
            md.insert("participants".into(), json!(p));
        }
        json!({ "type": "room_metadata", "metadata": Value::Object(md) })
    }

    /// The message as the component sends it.
    pub fn to_element(&self, from: &str, to: &str) -> Element {
        let room = self.room.as_ref().map(|r| r.to_string());
        crate::xmpp::json_message::message(from, to, &self.to_json(), room.as_deref())
    }
}

impl TryFrom<&Element> for RoomMetadata {
    type Error = ComponentMessageError;

    fn try_from(msg: &Element) -> Result<Self, Self::Error> {
        let j = json_child(msg)?;
        RoomMetadata::from_json(j.get_attr("room"), &j.text_content())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_parses_writes_and_refuses_bad_shapes() {
        let el = crate::xml::parse::parse_fragment(
            "<message xmlns='jabber:client' from='metadata.meet.test'><json-message xmlns='http://jitsi.org/jitmeet' room='r@conference.meet.test'>\
             {\"type\":\"room_metadata\",\"metadata\":{\"startMuted\":{\"audio\":true,\"video\":false},\"lobbyEnabled\":false,\"visitors\":{\"live\":false},\"moderators\":[]}}\
             </json-message></message>",
        )
        .unwrap();
        let m = RoomMetadata::try_from(&el).unwrap();
        assert_eq!(m.room.as_ref().map(|r| r.to_string()).as_deref(), Some("r@conference.meet.test"));
        assert_eq!((m.start_muted_audio, m.start_muted_video), (Some(true), Some(false)));
        assert_eq!(m.participants, None);
        assert_eq!(RoomMetadata::try_from(&m.to_element("metadata.meet.test", "f@a/f")).unwrap(), m);
        // Absent startMuted stays absent (the conference keeps its value).
        let n = RoomMetadata::from_json(Some("r@c.meet.test"), r#"{"type":"room_metadata","metadata":{}}"#).unwrap();
        assert_eq!((n.start_muted_audio, n.lobby_enabled), (None, false));
        assert_eq!(RoomMetadata::from_json(None, r#"{"type":"room_metadata"}"#), Err(ComponentMessageError::BadField("metadata")));
        assert_eq!(
            RoomMetadata::from_json(None, r#"{"type":"room_metadata","metadata":{"startMuted":true}}"#),
            Err(ComponentMessageError::BadField("startMuted"))
        );
        assert_eq!(RoomMetadata::from_json(Some("not a jid@@"), r#"{"type":"room_metadata","metadata":{}}"#), Err(ComponentMessageError::BadField("room")));
        let many: Vec<String> = (0..MAX_IDS + 1).map(|i| format!("\"{}\"", i)).collect();
        let j = format!(r#"{{"type":"room_metadata","metadata":{{"moderators":[{}]}}}}"#, many.join(","));
        assert_eq!(RoomMetadata::from_json(None, &j), Err(ComponentMessageError::TooMany("moderators", MAX_IDS)));
    }
}
