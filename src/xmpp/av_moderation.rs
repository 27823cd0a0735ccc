//! AV moderation messages (moderation.md §1.2–§1.3): what the `av_moderation` Prosody
//! component tells the focus, as a typed value. `TryFrom<&Element>` refuses anything
//! Jicofo would drop (wrong `type`, unknown media type, wrong shapes) and anything over
//! our bounds (see [`crate::xmpp::json_message`], at most [`MAX_WHITELIST`] JIDs of at
//! most [`MAX_WHITELIST_JID`] bytes per media type); [`AvModerationMessage::to_element`]
//! writes the component's form (for test tools).

use serde_json::{json, Map, Value};

use crate::jid::Jid;
use crate::xml::Element;
use crate::xmpp::ns;
use crate::xmpp::json_message::{json_child, parse_object, ComponentMessageError};

/// Most JIDs in one media type's whitelist (a conference serves at most
/// `--max_participants`, 1000 by default; whitelists name occupants).
pub const MAX_WHITELIST: usize = 1024;
/// Longest whitelisted JID (a full JID is at most 3 × 1023 bytes).
pub const MAX_WHITELIST_JID: usize = 3071;

/// A moderated media type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MediaType {
    /// Microphone audio (`audio`; mute namespace `http://jitsi.org/jitmeet/audio`).
    Audio,
    /// Camera video (`video`; mute namespace `http://jitsi.org/jitmeet/video`).
    Video,
    /// Screen sharing (`desktop`; mute namespace `http://jitsi.org/jitmeet/desktop`).
    Desktop,
}

impl MediaType {
    /// Every media type, in [`MediaType::index`] order.
    pub const ALL: [MediaType; 3] = [MediaType::Audio, MediaType::Video, MediaType::Desktop];

    /// Case-insensitive `audio|video|desktop`.
    pub fn parse(s: &str) -> Option<MediaType> {
        if s.eq_ignore_ascii_case("audio") {
            Some(MediaType::Audio)
        } else if s.eq_ignore_ascii_case("video") {
            Some(MediaType::Video)
        } else if s.eq_ignore_ascii_case("desktop") {
            Some(MediaType::Desktop)
        } else {
            None
        }
    }

    /// The name used in AV moderation JSON (`mediaType`, whitelist keys): `audio`, `video`, `desktop`.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaType::Audio => "audio",
            MediaType::Video => "video",
            MediaType::Desktop => "desktop",
        }
    }

    /// The namespace of the mute IQ for this type.
    pub fn mute_ns(self) -> &'static str {
        match self {
            MediaType::Audio => ns::AUDIO_MUTE,
            MediaType::Video => ns::VIDEO_MUTE,
            MediaType::Desktop => ns::DESKTOP_MUTE,
        }
    }

    /// The media type of a mute IQ namespace.
    pub fn from_mute_ns(n: &str) -> Option<MediaType> {
        match n {
            ns::AUDIO_MUTE => Some(MediaType::Audio),
            ns::VIDEO_MUTE => Some(MediaType::Video),
            ns::DESKTOP_MUTE => Some(MediaType::Desktop),
            _ => None,
        }
    }

    /// A dense index (audio 0, video 1, desktop 2) for per-type arrays.
    pub fn index(self) -> usize {
        match self {
            MediaType::Audio => 0,
            MediaType::Video => 1,
            MediaType::Desktop => 2,
        }
    }
}

/// One `{"type":"av_moderation",…}` message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvModerationMessage {
    /// The conference room (`room`).
    pub room: Jid,
    /// `enabled`, when present.
    pub enabled: Option<bool>,
    /// `mediaType`, when present.
    pub media_type: Option<MediaType>,
    /// `actor`: the occupant JID of the moderator who enabled it.
    pub actor: Option<String>,
    /// `whitelists`: each present type's complete new list.
    pub whitelists: Vec<(MediaType, Vec<String>)>,
}

impl AvModerationMessage {
    /// Parse the JSON text of a `<json-message>`.
    pub fn from_json(text: &str) -> Result<AvModerationMessage, ComponentMessageError> {
        let map = parse_object(text, "av_moderation")?;
        let room = map
            .get("room")
            .and_then(Value::as_str)
            .and_then(|r| Jid::parse(r).ok())
            .filter(|j| j.is_bare() && j.local().is_some())
            .ok_or(ComponentMessageError::BadField("room"))?;
        let enabled = match map.get("enabled") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return Err(ComponentMessageError::BadField("enabled")),
        };
        let media_type = match map.get("mediaType") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(MediaType::parse(s).ok_or(ComponentMessageError::BadField("mediaType"))?),
            Some(_) => return Err(ComponentMessageError::BadField("mediaType")),
        };
        let actor = match map.get("actor") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.len() <= MAX_WHITELIST_JID => Some(s.clone()),
            Some(_) => return Err(ComponentMessageError::BadField("actor")),
        };
        let mut whitelists = Vec::new();
        match map.get("whitelists") {
            None | Some(Value::Null) => {}
            Some(Value::Object(w)) => {
                for (k, v) in w {
                    let t = MediaType::parse(k).ok_or(ComponentMessageError::BadField("whitelists"))?;
                    let Value::Array(list) = v else { return Err(ComponentMessageError::BadField("whitelists")) };
                    if list.len() > MAX_WHITELIST {
                        return Err(ComponentMessageError::TooMany("whitelists", MAX_WHITELIST));
                    }
                    let mut jids = Vec::with_capacity(list.len());
                    for j in list {
                        match j {
                            Value::String(s) if s.len() <= MAX_WHITELIST_JID => jids.push(s.clone()),
                            _ => return Err(ComponentMessageError::BadField("whitelists")),
                        }
                    }
                    whitelists.retain(|(x, _): &(MediaType, Vec<String>)| *x != t);
                    whitelists.push((t, jids));
                }
            }
            Some(_) => return Err(ComponentMessageError::BadField("whitelists")),
        }
        Ok(AvModerationMessage { room, enabled, media_type, actor, whitelists })
    }

    /// The JSON the component sends.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("type".into(), json!("av_moderation"));
        m.insert("room".into(), json!(self.room.to_string()));
        if let Some(e) = self.enabled {
            m.insert("enabled".into(), json!(e));
        }
        if let Some(t) = self.media_type {
            m.insert("mediaType".into(), json!(t.as_str()));
        }
        if let Some(a) = &self.actor {
            m.insert("actor".into(), json!(a));
        }
        if !self.whitelists.is_empty() {
            let w: Map<String, Value> = self.whitelists.iter().map(|(t, l)| (t.as_str().to_string(), json!(l))).collect();
            m.insert("whitelists".into(), Value::Object(w));
        }
        Value::Object(m)
    }

    /// The message as the component sends it from `from` to `to`.
    pub fn to_element(&self, from: &str, to: &str) -> Element {
        crate::xmpp::json_message::message(from, to, &self.to_json(), None)
    }
}

impl TryFrom<&Element> for AvModerationMessage {
    type Error = ComponentMessageError;

    fn try_from(msg: &Element) -> Result<Self, Self::Error> {
        AvModerationMessage::from_json(&json_child(msg)?.text_content())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<AvModerationMessage, ComponentMessageError> {
        let el = crate::xml::parse::parse_fragment(&format!(
            "<message xmlns='jabber:client' from='avmoderation.meet.test'><json-message xmlns='http://jitsi.org/jitmeet'>{}</json-message></message>",
            json.replace('&', "&amp;").replace('<', "&lt;")
        ))
        .unwrap();
        AvModerationMessage::try_from(&el)
    }

    #[test]
    fn enable_and_whitelist_messages_parse() {
        let m = parse(r#"{"type":"av_moderation","enabled":true,"room":"r@conference.meet.test","actor":"r@conference.meet.test/m","mediaType":"audio"}"#).unwrap();
        assert_eq!(m.enabled, Some(true));
        assert_eq!(m.media_type, Some(MediaType::Audio));
        assert_eq!(m.actor.as_deref(), Some("r@conference.meet.test/m"));
        assert_eq!(m.room.to_string(), "r@conference.meet.test");
        let w = parse(r#"{"type":"av_moderation","room":"r@conference.meet.test","whitelists":{"AUDIO":["r@conference.meet.test/m","r@conference.meet.test/p"]},"mediaType":"audio","extra":1}"#).unwrap();
        assert_eq!(w.enabled, None);
        assert_eq!(w.whitelists, vec![(MediaType::Audio, vec!["r@conference.meet.test/m".to_string(), "r@conference.meet.test/p".to_string()])]);
        // Written and read back.
        let back = AvModerationMessage::try_from(&w.to_element("avmoderation.meet.test", "focus@auth.meet.test/focus")).unwrap();
        assert_eq!(back, w);
    }

    #[test]
    fn what_jicofo_drops_is_refused() {
        assert!(matches!(parse(r#"{"type":"other","room":"r@c.meet.test"}"#), Err(ComponentMessageError::WrongType(_))));
        assert_eq!(parse(r#"{"type":"av_moderation"}"#), Err(ComponentMessageError::BadField("room")));
        assert_eq!(parse(r#"{"type":"av_moderation","room":"r@c.meet.test/x"}"#), Err(ComponentMessageError::BadField("room")));
        assert_eq!(
            parse(r#"{"type":"av_moderation","room":"r@c.meet.test","mediaType":"screen"}"#),
            Err(ComponentMessageError::BadField("mediaType"))
        );
        assert_eq!(
            parse(r#"{"type":"av_moderation","room":"r@c.meet.test","whitelists":{"screen":[]}}"#),
            Err(ComponentMessageError::BadField("whitelists"))
        );
        assert_eq!(
            parse(r#"{"type":"av_moderation","room":"r@c.meet.test","whitelists":{"audio":[1]}}"#),
            Err(ComponentMessageError::BadField("whitelists"))
        );
        assert_eq!(parse(r#"{"type":"av_moderation","room":"r@c.meet.test","enabled":"yes"}"#), Err(ComponentMessageError::BadField("enabled")));
        let el = crate::xml::parse::parse_fragment("<message xmlns='jabber:client'><body>hi</body></message>").unwrap();
        assert_eq!(AvModerationMessage::try_from(&el), Err(ComponentMessageError::NotJsonMessage));
    }

    #[test]
    fn huge_whitelists_are_refused() {
        let many: Vec<String> = (0..MAX_WHITELIST + 1).map(|i| format!("\"r@c/{}\"", i)).collect();
        let j = format!(r#"{{"type":"av_moderation","room":"r@c.meet.test","whitelists":{{"audio":[{}]}}}}"#, many.join(","));
        assert_eq!(parse(&j), Err(ComponentMessageError::TooMany("whitelists", MAX_WHITELIST)));
        let long = format!(r#"{{"type":"av_moderation","room":"r@c.meet.test","whitelists":{{"audio":["{}"]}}}}"#, "a".repeat(MAX_WHITELIST_JID + 1));
        assert_eq!(parse(&long), Err(ComponentMessageError::BadField("whitelists")));
        let big = format!(r#"{{"type":"av_moderation","room":"r@c.meet.test","pad":"{}"}}"#, "a".repeat(70_000));
        assert!(matches!(parse(&big), Err(ComponentMessageError::TooLarge(_))));
    }
}
