//! MUC stanzas a conference reads and writes: occupant presence (parsed into
//! [`OccupantPresence`]), the focus's own join and update presence, the owner
//! configuration form and the affiliation change.

use crate::jid::Jid;
use crate::xml::{ns, Element};
use crate::xmpp::caps::{self, Caps};

/// Affiliation of an occupant (XEP-0045).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Affiliation {
    Owner,
    Admin,
    Member,
    Outcast,
    None,
}

impl Affiliation {
    pub fn parse(s: &str) -> Affiliation {
        match s {
            "owner" => Affiliation::Owner,
            "admin" => Affiliation::Admin,
            "member" => Affiliation::Member,
            "outcast" => Affiliation::Outcast,
            _ => Affiliation::None,
        }
    }
}

/// Role of an occupant (XEP-0045).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Moderator,
    Participant,
    Visitor,
    None,
}

impl Role {
    pub fn parse(s: &str) -> Role {
        match s {
            "moderator" => Role::Moderator,
            "participant" => Role::Participant,
            "visitor" => Role::Visitor,
            _ => Role::None,
        }
    }
}

/// What an occupant's presence says.
#[derive(Clone, Debug, PartialEq)]
pub struct OccupantPresence {
    pub nick: String,
    pub available: bool,
    pub real_jid: Option<Jid>,
    pub affiliation: Affiliation,
    pub role: Role,
    pub statuses: Vec<u16>,
    /// `<destroy/>` inside the muc#user element (room destroyed).
    pub destroyed: bool,
    pub stats_id: Option<String>,
    pub region: Option<String>,
    pub audio_muted: Option<bool>,
    pub video_muted: Option<bool>,
    /// The XEP-0115 caps (`node`, `ver`, `hash`).
    pub caps: Option<Caps>,
    /// Features advertised in presence (`<features><feature var/></features>`), bounded
    /// like a disco answer's.
    pub features: Vec<String>,
}

impl OccupantPresence {
    /// Parse a presence from `room/nick`; `None` when it is not an occupant presence.
    pub fn parse(p: &Element) -> Option<OccupantPresence> {
        let from = Jid::parse(p.get_attr("from")?).ok()?;
        let nick = from.resource()?.to_string();
        let typ = p.get_attr("type");
        if typ == Some("error") {
            return None;
        }
        let available = typ != Some("unavailable");
        let x = p.get_child("x", ns::MUC_USER);
        let item = x.and_then(|x| x.get_child("item", ns::MUC_USER));
        let statuses = x
            .map(|x| x.children_named("status", ns::MUC_USER).filter_map(|s| s.get_attr("code")?.parse().ok()).collect())
            .unwrap_or_default();
        let bool_text = |e: &Element| match e.text_content().trim() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        };
        let audio_muted = p
            .get_child("audiomuted", ns::AUDIO_MUTE)
            .or_else(|| p.get_child("audiomuted", ns::CLIENT))
            .and_then(bool_text);
        let video_muted = p
            .get_child("videomuted", "http://jitsi.org/jitmeet/video")
            .or_else(|| p.get_child("videomuted", ns::CLIENT))
            .and_then(bool_text);
        let region = p
            .get_child("jitsi_participant_region", ns::CLIENT)
            .map(|e| e.text_content())
            .or_else(|| p.get_child("region", "http://jitsi.org/jitsi-meet").and_then(|r| r.get_attr("id").map(str::to_string)))
            .filter(|r| !r.is_empty());
        Some(OccupantPresence {
            nick,
            available,
            real_jid: item.and_then(|i| i.get_attr("jid")).and_then(|j| Jid::parse(j).ok()),
            affiliation: item.and_then(|i| i.get_attr("affiliation")).map(Affiliation::parse).unwrap_or(Affiliation::None),
            role: item.and_then(|i| i.get_attr("role")).map(Role::parse).unwrap_or(Role::None),
            statuses,
            destroyed: x.is_some_and(|x| x.get_child("destroy", ns::MUC_USER).is_some()),
            stats_id: p.get_child("stats-id", ns::CLIENT).map(|e| e.text_content()).filter(|s| !s.is_empty()),
            region,
            audio_muted,
            video_muted,
            caps: Caps::from_presence(p),
            features: p
                .get_child("features", ns::CLIENT)
                .map(|f| {
                    f.children_named("feature", ns::CLIENT)
                        .filter_map(|x| x.get_attr("var").filter(|v| v.len() <= caps::MAX_FEATURE_LEN).map(str::to_string))
                        .take(caps::MAX_FEATURES)
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// True for the presence the MUC sends about ourselves (status 110).
    pub fn is_self(&self) -> bool {
        self.statuses.contains(&110)
    }
}

/// The caps element the focus advertises.
pub fn focus_caps() -> Element {
    Element::new("c", ns::CAPS)
        .attr("hash", "sha-1")
        .attr("node", "http://jitsi.org/jicofo")
        .attr("ver", crate::focus::disco::caps_ver())
}

/// The join presence to `room/nick`. It asks for no discussion history (XEP-0045
/// §7.2.14): nothing stored in a room is replayed at the focus when it (re)joins.
pub fn join_presence(room: &Jid, nick: &str) -> Element {
    Element::new("presence", ns::CLIENT)
        .attr("to", room.with_resource(nick).to_string())
        .child(Element::new("x", ns::MUC).child(Element::new("history", ns::MUC).attr("maxstanzas", "0")))
        .child(focus_caps())
}

/// The unavailable presence that leaves the room.
pub fn leave_presence(room: &Jid, nick: &str) -> Element {
    Element::new("presence", ns::CLIENT).attr("to", room.with_resource(nick).to_string()).attr("type", "unavailable")
}

/// `muc#owner` form request.
pub fn owner_form_get(room: &Jid) -> Element {
    Element::new("iq", ns::CLIENT)
        .attr("type", "get")
        .attr("to", room.to_string())
        .child(Element::new("query", ns::MUC_OWNER))
}

/// The configuration form the focus submits: a non-anonymous room.
pub fn owner_form_submit(room: &Jid) -> Element {
    let field = |var: &str, value: &str| {
        Element::new("field", ns::DATA).attr("var", var).child(Element::new("value", ns::DATA).text(value))
    };
    Element::new("iq", ns::CLIENT).attr("type", "set").attr("to", room.to_string()).child(
        Element::new("query", ns::MUC_OWNER).child(
            Element::new("x", ns::DATA)
                .attr("type", "submit")
                .child(field("FORM_TYPE", "http://jabber.org/protocol/muc#roomconfig"))
                .child(field("muc#roomconfig_whois", "anyone")),
        ),
    )
}

/// The value of `var` in a data form inside `query`.
pub fn form_value(query: &Element, var: &str) -> Option<String> {
    let x = query.get_child("x", ns::DATA)?;
    let f = x.children_named("field", ns::DATA).find(|f| f.get_attr("var") == Some(var))?;
    f.get_child("value", ns::DATA).map(|v| v.text_content())
}

/// `muc#admin` request granting `affiliation` to the bare `jid`.
pub fn set_affiliation(room: &Jid, jid: &Jid, affiliation: &str) -> Element {
    Element::new("iq", ns::CLIENT).attr("type", "set").attr("to", room.to_string()).child(
        Element::new("query", ns::MUC_ADMIN)
            .child(Element::new("item", ns::MUC_ADMIN).attr("affiliation", affiliation).attr("jid", jid.bare().to_string())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse::parse_fragment;

    fn capture(name: &str) -> Element {
        let text = std::fs::read_to_string(format!("{}/tests/fixtures/captures/{}", env!("CARGO_MANIFEST_DIR"), name)).unwrap();
        let start = text.find("-->").map(|i| i + 3).unwrap_or(0);
        parse_fragment(text[start..].trim()).unwrap()
    }

    #[test]
    fn parses_a_captured_join_presence_as_the_muc_reflects_it() {
        let mut p = capture("lyno-muc-join-presence.xml");
        // The MUC reflects it from the occupant JID with the muc#user item.
        p.set_attr("from", "room1@conference.meet.test/19c373a4");
        p.children.retain(|n| !matches!(n, crate::xml::Node::Element(e) if e.ns == ns::MUC));
        p = p.child(
            Element::new("x", ns::MUC_USER).child(
                Element::new("item", ns::MUC_USER)
                    .attr("jid", "abc@meet.test/xyz")
                    .attr("affiliation", "none")
                    .attr("role", "participant"),
            ),
        );
        let o = OccupantPresence::parse(&p).unwrap();
        assert_eq!(o.nick, "19c373a4");
        assert!(o.available);
        assert_eq!(o.stats_id.as_deref(), Some("Alessandro-JrU"));
        assert_eq!(o.real_jid.unwrap().to_string(), "abc@meet.test/xyz");
        assert_eq!(o.role, Role::Participant);
        let caps = o.caps.unwrap();
        assert_eq!(caps.node, "https://jitsi.org/jitsi-meet");
        assert_eq!(caps.hash.as_deref(), Some("sha-1"));
    }

    #[test]
    fn the_join_asks_for_no_history() {
        let room = Jid::parse("r@conference.meet.test").unwrap();
        let p = join_presence(&room, "focus");
        assert_eq!(p.get_attr("to"), Some("r@conference.meet.test/focus"));
        let x = p.get_child("x", ns::MUC).expect("a MUC join");
        let h = x.get_child("history", ns::MUC).expect("a history element");
        assert_eq!(h.get_attr("maxstanzas"), Some("0"));
        // Serialized as XEP-0045 shows it.
        assert!(p.to_xml().contains("<history maxstanzas=\"0\"/>") || p.to_xml().contains("<history maxstanzas='0'/>"), "{}", p.to_xml());
    }

    #[test]
    fn config_form_asks_for_a_non_anonymous_room() {
        let room = Jid::parse("r@conference.meet.test").unwrap();
        let q = owner_form_submit(&room);
        let query = q.get_child("query", ns::MUC_OWNER).unwrap();
        assert_eq!(form_value(query, "muc#roomconfig_whois").as_deref(), Some("anyone"));
    }
}
