//! The Jitsi Prosody components the focus talks to (moderation.md §0, §3): found by a
//! disco#info to the XMPP domain after login, whose `<identity category='component'
//! type='av_moderation|breakout_rooms|room_metadata' name='<address>'/>` entries give
//! their addresses. Messages claiming to come from a component are accepted only from
//! exactly the discovered address. Also the breakout fields of a room's owner form.

use crate::jid::Jid;
use crate::xml::Element;
use crate::xmpp::ns;

/// Addresses of the discovered components (`None`: that feature is off).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Components {
    /// Prosody's `av_moderation_component` (identity type `av_moderation`, e.g.
    /// `avmoderation.<domain>`): sends AV moderation state as JSON messages.
    pub av_moderation: Option<Jid>,
    /// The breakout rooms MUC (identity type `breakout_rooms`, e.g. `breakout.<domain>`):
    /// conference requests for rooms there need no authentication.
    pub breakout_rooms: Option<Jid>,
    /// Prosody's `room_metadata_component` (identity type `room_metadata`, e.g.
    /// `metadata.<domain>`): sends each room's metadata as JSON messages.
    pub room_metadata: Option<Jid>,
}

/// Which component a message came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ComponentKind {
    /// From the discovered AV moderation component.
    AvModeration,
    /// From the discovered room metadata component.
    RoomMetadata,
}

impl Components {
    /// The disco#info request to the domain.
    pub fn request(domain: &str) -> Element {
        Element::new("iq", ns::CLIENT).attr("type", "get").attr("to", domain).child(Element::new("query", ns::DISCO_INFO))
    }

    /// Read the identities of a disco#info result (anything else: nothing discovered).
    /// Names that are not bare domain JIDs are ignored.
    pub fn from_disco(answer: &Element) -> Components {
        let mut c = Components::default();
        if answer.get_attr("type") != Some("result") {
            return c;
        }
        let Some(q) = answer.get_child("query", ns::DISCO_INFO) else { return c };
        for id in q.children_named("identity", ns::DISCO_INFO).take(256) {
            if id.get_attr("category") != Some("component") {
                continue;
            }
            let Some(addr) = id.get_attr("name").and_then(|n| Jid::parse(n).ok()).filter(|j| j.is_bare() && j.local().is_none()) else {
                continue;
            };
            match id.get_attr("type") {
                Some("av_moderation") => c.av_moderation = Some(addr),
                Some("breakout_rooms") => c.breakout_rooms = Some(addr),
                Some("room_metadata") => c.room_metadata = Some(addr),
                _ => {}
            }
        }
        c
    }

    /// The component `from` is exactly, if any.
    pub fn kind_of(&self, from: &Jid) -> Option<ComponentKind> {
        if self.av_moderation.as_ref() == Some(from) {
            Some(ComponentKind::AvModeration)
        } else if self.room_metadata.as_ref() == Some(from) {
            Some(ComponentKind::RoomMetadata)
        } else {
            None
        }
    }
}

/// The main room of a breakout room, from its fetched owner form
/// (`muc#roominfo_isbreakout` = true and `muc#roominfo_breakout_main_room`).
pub fn breakout_main_room(owner_query: &Element) -> Option<Jid> {
    let field = |var: &str| {
        let x = owner_query.get_child("x", ns::DATA)?;
        let f = x.children_named("field", ns::DATA).find(|f| f.get_attr("var") == Some(var))?;
        f.get_child("value", ns::DATA).map(|v| v.text_content())
    };
    if field("muc#roominfo_isbreakout").as_deref() != Some("true") {
        return None;
    }
    field("muc#roominfo_breakout_main_room").and_then(|m| Jid::parse(m.trim()).ok()).filter(|j| j.is_bare() && j.local().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse::parse_fragment;

    #[test]
    fn identities_give_the_component_addresses() {
        let a = parse_fragment(
            "<iq xmlns='jabber:client' type='result' from='meet.test'><query xmlns='http://jabber.org/protocol/disco#info'>\
             <identity category='server' type='im' name='Prosody'/>\
             <identity category='component' type='av_moderation' name='avmoderation.meet.test'/>\
             <identity category='component' type='breakout_rooms' name='breakout.meet.test'/>\
             <identity category='component' type='room_metadata' name='metadata.meet.test'/>\
             <identity category='component' type='lobbyrooms' name='lobby.meet.test'/>\
             <identity category='component' type='room_metadata' name='x@bad/jid'/>\
             </query></iq>",
        )
        .unwrap();
        let c = Components::from_disco(&a);
        assert_eq!(c.av_moderation.as_ref().map(|j| j.to_string()).as_deref(), Some("avmoderation.meet.test"));
        assert_eq!(c.breakout_rooms.as_ref().map(|j| j.to_string()).as_deref(), Some("breakout.meet.test"));
        assert_eq!(c.room_metadata.as_ref().map(|j| j.to_string()).as_deref(), Some("metadata.meet.test"));
        assert_eq!(c.kind_of(&Jid::parse("avmoderation.meet.test").unwrap()), Some(ComponentKind::AvModeration));
        assert_eq!(c.kind_of(&Jid::parse("avmoderation.meet.test/x").unwrap()), None);
        assert_eq!(c.kind_of(&Jid::parse("r@conference.meet.test/p").unwrap()), None);
        let err = parse_fragment("<iq xmlns='jabber:client' type='error'/>").unwrap();
        assert_eq!(Components::from_disco(&err), Components::default());
    }

    #[test]
    fn the_breakout_main_room_comes_from_the_owner_form() {
        let form = |b: &str| {
            parse_fragment(&format!(
                "<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='form'>\
                 <field var='muc#roominfo_isbreakout'><value>{}</value></field>\
                 <field var='muc#roominfo_breakout_main_room'><value>main@conference.meet.test</value></field></x></query>",
                b
            ))
            .unwrap()
        };
        assert_eq!(breakout_main_room(&form("true")).map(|j| j.to_string()).as_deref(), Some("main@conference.meet.test"));
        assert_eq!(breakout_main_room(&form("false")), None);
    }
}
