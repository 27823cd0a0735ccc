//! MUC stanzas a conference reads and writes: occupant presence (typed as
//! [`OccupantPresence`], read with every presence by `xmpp::presence`), the focus's own
//! join and update presence, the owner configuration form and the affiliation change.
//!
//! Values a participant puts in its presence are bounded before the focus keeps them:
//! `stats-id` (copied into every Colibri2 request about the participant) and the region
//! are at most [`MAX_PRESENCE_VALUE`] bytes, caps attributes at most
//! [`caps::MAX_CAPS_NODE`] / [`caps::MAX_CAPS_VER`]; a longer value is ignored as if
//! absent and named in [`OccupantPresence::oversized`] (the conference counts and logs
//! it). The nick (the endpoint id in Colibri2 and source names) is bounded by Prosody
//! (1023 bytes, checked again by [`Jid::parse`]); the conference serves only nicks of
//! at most [`MAX_NICK_LEN`] bytes.

use crate::jid::Jid;
use crate::xml::Element;
use crate::xmpp::ns;
use crate::xmpp::caps::{self, Caps};

/// Longest `stats-id` or region kept from a presence (bytes). lib-jitsi-meet's stats-id
/// is a name and three letters (`Kiara-tRL`); regions are short names (`eu-west-1`).
pub const MAX_PRESENCE_VALUE: usize = 64;
/// Longest nick the conference serves (bytes): the endpoint id, which every source name
/// of the participant must start with (source names are at most 64 bytes). Clients use
/// 8 hex digits; Jibri and Jigasi short prefixed names.
pub const MAX_NICK_LEN: usize = 64;

/// Affiliation of an occupant (XEP-0045).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Affiliation {
    /// `owner`: full control of the room (may configure and destroy it).
    Owner,
    /// `admin`: may ban and grant membership and moderator roles.
    Admin,
    /// `member`: on the room's member list.
    Member,
    /// `outcast`: banned from the room.
    Outcast,
    /// `none`: no affiliation (also any value not known).
    None,
}

impl Affiliation {
    /// Parse the `affiliation` attribute; an unknown value reads as [`Affiliation::None`].
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
    /// `moderator`: may kick, mute and grant voice; Jitsi moderators.
    Moderator,
    /// `participant`: an ordinary occupant with voice.
    Participant,
    /// `visitor`: present without voice.
    Visitor,
    /// `none`: no role (the occupant left; also any value not known).
    None,
}

impl Role {
    /// Parse the `role` attribute; an unknown value reads as [`Role::None`].
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
    /// The occupant's nick: the resource of `room/nick`, the endpoint id.
    pub nick: String,
    /// False for `type='unavailable'` (the occupant left).
    pub available: bool,
    /// The occupant's real JID (muc#user `<item jid>`), when the room discloses it.
    pub real_jid: Option<Jid>,
    /// The muc#user `<item affiliation>`.
    pub affiliation: Affiliation,
    /// The muc#user `<item role>`.
    pub role: Role,
    /// The muc#user `<status code>` values (e.g. 110 self-presence, 307 kicked).
    pub statuses: Vec<u16>,
    /// `<destroy/>` inside the muc#user element (room destroyed).
    pub destroyed: bool,
    /// The `<stats-id>` text (at most [`MAX_PRESENCE_VALUE`] bytes).
    pub stats_id: Option<String>,
    /// The `<region id>` attribute (at most [`MAX_PRESENCE_VALUE`] bytes).
    pub region: Option<String>,
    /// The `<audiomuted>` text: `Some(true)` when the client says it is muted.
    pub audio_muted: Option<bool>,
    /// The `<videomuted>` text: `Some(true)` when the client says it is muted.
    pub video_muted: Option<bool>,
    /// The XEP-0115 caps (`node`, `ver`, `hash`).
    pub caps: Option<Caps>,
    /// Features advertised in presence (`<features><feature var/></features>`), bounded
    /// like a disco answer's.
    pub features: Vec<String>,
    /// Values ignored for their length (`"stats-id"`, `"region"`, `"caps"`).
    pub oversized: Vec<&'static str>,
}

impl OccupantPresence {
    /// Parse a presence from `room/nick`; `None` when it is not an occupant presence.
    /// (The reader of every presence, `xmpp::presence::PresenceReader`, on the tree.)
    pub fn parse(p: &Element) -> Option<OccupantPresence> {
        crate::xmpp::presence::Presence::from_element(p).occupant
    }

    /// True for the presence the MUC sends about ourselves (status 110).
    pub fn is_self(&self) -> bool {
        self.statuses.contains(&110)
    }
}

/// `v` when at most `max` bytes, else a stand-in just over `max`, refused the same way.
fn bounded_value(v: &str, max: usize) -> String {
    if v.len() <= max {
        v.to_string()
    } else {
        "-".repeat(max + 1)
    }
}

/// `p` reduced to what a conference reads from a presence ([`OccupantPresence::parse`],
/// and the `<error/>` of a refused join), each value bounded: at most 12 KB whatever was
/// sent (a real join about 3 KB). Used for presences held back while a conference's
/// inbox is full (`messages::inbox`). `parse(slim_presence(p))` equals `parse(p)` except
/// for `features` (only the four that make a Jibri or Jigasi are kept) and statuses beyond the first 8 (the
/// MUC sends a few).
pub fn slim_presence(p: &Element) -> Element {
    const JID_MAX: usize = 3 * 1023 + 2;
    let mut out = Element::new("presence", &p.ns);
    for k in ["from", "to", "type"] {
        if let Some(v) = p.get_attr(k) {
            out.set_attr(k, bounded_value(v, JID_MAX));
        }
    }
    if let Some(id) = p.get_attr("id").filter(|id| id.len() <= crate::xmpp::stanza::MAX_ECHOED_ID) {
        out.set_attr("id", id);
    }
    let text = |e: &Element, max: usize| Element::new(&e.name, &e.ns).text(bounded_value(&e.text_content(), max));
    if let Some(x) = p.get_child("x", ns::MUC_USER) {
        let mut nx = Element::new("x", ns::MUC_USER);
        if let Some(item) = x.get_child("item", ns::MUC_USER) {
            let mut ni = Element::new("item", ns::MUC_USER);
            for k in ["jid", "affiliation", "role"] {
                if let Some(v) = item.get_attr(k) {
                    ni.set_attr(k, bounded_value(v, JID_MAX));
                }
            }
            nx = nx.child(ni);
        }
        let codes = x.children_named("status", ns::MUC_USER).filter_map(|s| s.get_attr("code")?.parse::<u16>().ok()).take(8);
        for c in codes {
            nx = nx.child(Element::new("status", ns::MUC_USER).attr("code", c.to_string()));
        }
        if x.get_child("destroy", ns::MUC_USER).is_some() {
            nx = nx.child(Element::new("destroy", ns::MUC_USER));
        }
        out = out.child(nx);
    }
    for (name, nss, max) in [
        ("audiomuted", [ns::AUDIO_MUTE, ns::CLIENT], 16),
        ("videomuted", [ns::VIDEO_MUTE, ns::CLIENT], 16),
        ("jitsi_participant_region", [ns::CLIENT, ns::CLIENT], MAX_PRESENCE_VALUE),
        ("stats-id", [ns::CLIENT, ns::CLIENT], MAX_PRESENCE_VALUE),
    ] {
        for n in if nss[0] == nss[1] { &nss[..1] } else { &nss[..] } {
            if let Some(e) = p.get_child(name, n) {
                out = out.child(text(e, max));
            }
        }
    }
    if let Some(r) = p.get_child("region", "http://jitsi.org/jitsi-meet") {
        out = out.child(Element::new("region", "http://jitsi.org/jitsi-meet").attr_opt("id", r.get_attr("id").map(|v| bounded_value(v, MAX_PRESENCE_VALUE))));
    }
    if let Some(c) = p.get_child("c", ns::CAPS) {
        let mut nc = Element::new("c", ns::CAPS);
        for (k, max) in [("hash", caps::MAX_CAPS_HASH), ("node", caps::MAX_CAPS_NODE), ("ver", caps::MAX_CAPS_VER)] {
            if let Some(v) = c.get_attr(k) {
                nc.set_attr(k, bounded_value(v, max));
            }
        }
        out = out.child(nc);
    }
    // Of the presence features only those that make a Jibri/Jigasi (§5.5).
    if let Some(f) = p.get_child("features", ns::CLIENT) {
        use crate::xmpp::jigasi::*;
        let keep = [FEATURE_JIBRI, FEATURE_JIGASI, FEATURE_TRANSCRIBER, FEATURE_AUDIO_MUTE];
        let vars: Vec<&str> = keep.into_iter().filter(|k| f.children_named("feature", ns::CLIENT).any(|x| x.get_attr("var") == Some(*k))).collect();
        if !vars.is_empty() {
            out = out.child(features_element(&vars));
        }
    }
    if let Some(e) = p.get_child("error", &p.ns) {
        let mut ne = Element::new("error", &p.ns).attr_opt("type", e.get_attr("type").map(|t| bounded_value(t, 16)));
        if let Some(cond) = e.elements().find(|c| c.ns == ns::STANZAS && c.name != "text") {
            ne = ne.child(Element::new(crate::xmpp::stanza::clip(&cond.name, 64), ns::STANZAS));
        }
        if let Some(t) = e.get_child("text", ns::STANZAS) {
            ne = ne.child(Element::new("text", ns::STANZAS).text(crate::xmpp::stanza::clip(&t.text_content(), crate::xmpp::stanza::MAX_ERROR_TEXT)));
        }
        out = out.child(ne);
    }
    out
}

/// The caps element the focus advertises.
pub fn focus_caps() -> Element {
    Element::new("c", ns::CAPS)
        .attr("hash", "sha-1")
        .attr("node", "http://jitsi.org/jicofo")
        .attr("ver", crate::xmpp::disco::caps_ver())
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
    fn long_presence_values_are_ignored_and_named() {
        let room = Jid::parse("r@conference.meet.test").unwrap();
        let big = "'".repeat(200_000);
        let p = |stats: &str, region: &str, node: &str| {
            Element::new("presence", ns::CLIENT)
                .attr("from", room.with_resource("p1").to_string())
                .child(Element::new("stats-id", ns::CLIENT).text(stats))
                .child(Element::new("jitsi_participant_region", ns::CLIENT).text(region))
                .child(Element::new("c", ns::CAPS).attr("hash", "sha-1").attr("node", node).attr("ver", "/LxjVAUjW56LWSj9lRquSYt35Ho="))
        };
        let o = OccupantPresence::parse(&p(&big, &big, &big)).unwrap();
        assert_eq!((o.stats_id, o.region, o.caps), (None, None, None));
        assert_eq!(o.oversized, vec!["region", "stats-id", "caps"]);
        // At the caps, kept.
        let at = "s".repeat(MAX_PRESENCE_VALUE);
        let node = "n".repeat(caps::MAX_CAPS_NODE);
        let o = OccupantPresence::parse(&p(&at, "eu-west-1", &node)).unwrap();
        assert_eq!(o.stats_id.as_deref(), Some(at.as_str()));
        assert_eq!(o.region.as_deref(), Some("eu-west-1"));
        assert_eq!(o.caps.unwrap().node, node);
        assert!(o.oversized.is_empty());
        // A long ver or hash is refused like a long node.
        let c = |ver: &str, hash: &str| Element::new("c", ns::CAPS).attr("node", "n").attr("ver", ver).attr("hash", hash);
        assert!(Caps::parse(&c(&"v".repeat(caps::MAX_CAPS_VER + 1), "sha-1")).is_none());
        assert!(Caps::parse(&c("v", &"h".repeat(caps::MAX_CAPS_HASH + 1))).is_none());
        assert!(Caps::parse(&c(&"v".repeat(caps::MAX_CAPS_VER), "sha-1")).is_some());
    }

    #[test]
    fn a_slim_presence_says_what_the_presence_says_in_a_few_kb() {
        let mut join = capture("lyno-muc-join-presence.xml");
        join.set_attr("from", "room1@conference.meet.test/19c373a4");
        join = join.child(
            Element::new("x", ns::MUC_USER)
                .child(Element::new("item", ns::MUC_USER).attr("jid", "abc@meet.test/xyz").attr("affiliation", "owner").attr("role", "moderator"))
                .child(Element::new("status", ns::MUC_USER).attr("code", "110"))
                .child(Element::new("status", ns::MUC_USER).attr("code", "not a code")),
        );
        let big = "'".repeat(100_000);
        let hostile = Element::new("presence", ns::CLIENT)
            .attr("from", "room1@conference.meet.test/m")
            .attr("id", big.clone())
            .child(Element::new("stats-id", ns::CLIENT).text(big.clone()))
            .child(Element::new("jitsi_participant_region", ns::CLIENT).text(big.clone()))
            .child(Element::new("region", "http://jitsi.org/jitsi-meet").attr("id", big.clone()))
            .child(Element::new("audiomuted", ns::AUDIO_MUTE).text(big.clone()))
            .child(Element::new("videomuted", ns::CLIENT).text("true"))
            .child(Element::new("c", ns::CAPS).attr("hash", "sha-1").attr("node", big.clone()).attr("ver", "v"))
            .child(Element::new("features", ns::CLIENT).children((0..4000).map(|i| Element::new("feature", ns::CLIENT).attr("var", format!("urn:f:{i}")))))
            .child(Element::new("x", ns::MUC_USER).children((0..4000).map(|_| Element::new("status", ns::MUC_USER).attr("code", "100"))))
            .child(Element::new("junk", "urn:junk").text(big.clone()));
        let refused = Element::new("presence", ns::CLIENT)
            .attr("from", "room1@conference.meet.test/focus")
            .attr("type", "error")
            .child(
                Element::new("error", ns::CLIENT)
                    .attr("type", "cancel")
                    .child(Element::new("not-allowed", ns::STANZAS))
                    .child(Element::new("text", ns::STANZAS).text(big.clone())),
            );
        for p in [join, hostile.clone(), refused.clone()] {
            let slim = slim_presence(&p);
            assert!(slim.weight() < 12 << 10, "{} bytes: {}", slim.weight(), crate::xmpp::stanza::clip(&slim.to_xml(), 2000));
            println!("slim presence: {} bytes", slim.weight());
            let (a, b) = (OccupantPresence::parse(&slim), OccupantPresence::parse(&p));
            let strip = |o: Option<OccupantPresence>| {
                o.map(|mut o| {
                    o.features.clear();
                    o.statuses.truncate(8);
                    o
                })
            };
            assert_eq!(strip(a), strip(b));
        }
        let o = OccupantPresence::parse(&slim_presence(&hostile)).unwrap();
        assert_eq!(o.oversized, vec!["region", "stats-id", "caps"], "oversized values still show as such");
        assert_eq!(o.video_muted, Some(true));
        let e = crate::xmpp::stanza::parse_error(&slim_presence(&refused)).unwrap();
        assert_eq!((e.condition_name.as_str(), e.error_type.as_str()), ("not-allowed", "cancel"));
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
