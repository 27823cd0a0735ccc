//! Every presence the focus receives, typed once where it is parsed ([`Presence`]): a
//! room occupant's presence ([`OccupantPresence`], what a conference reads), the colibri
//! `<stats>` of a bridge or a Jigasi in its brewery, a Jibri's `<jibri-status>`, a
//! stanza error (a refused join), and the `switch_room` status of a leave.
//!
//! [`PresenceReader`] reads it from the events below the `<presence>` (straight from the
//! parser, `xmpp::incoming`, or from a tree replayed as events,
//! [`Presence::from_element`]): one implementation for both, which keeps of each child
//! the first one a tree lookup (`get_child`) would find and skips the rest unread.
//! Everything kept is bounded as [`OccupantPresence`] documents (values ignored for
//! their length are named in `oversized`), or by the stanza's own size and node caps.

use crate::jid::Jid;
use crate::xml::{Element, Event};
use crate::xmpp::caps::{self, Caps};
use crate::xmpp::collect::{attr, take_attr, Depth, Step, TextReader};
use crate::xmpp::jibri::JibriStatus;
use crate::xmpp::muc::{Affiliation, OccupantPresence, Role, MAX_PRESENCE_VALUE};
use crate::xmpp::ns;
use crate::xmpp::stanza::{ErrorReader, StanzaError};

/// Namespace of `<region id>` in presence.
const NS_REGION: &str = "http://jitsi.org/jitsi-meet";

/// One `<stat name value>` of a colibri `<stats>` (either attribute may be missing).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    /// The `name` attribute (e.g. `stress_level`, `region`).
    pub name: Option<String>,
    /// The `value` attribute, unparsed.
    pub value: Option<String>,
}

/// A presence, typed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Presence {
    /// `from` as received.
    pub from: Option<String>,
    /// `id` as received.
    pub id: Option<String>,
    /// `type` as received (`None`: available).
    pub typ: Option<String>,
    /// What a room occupant's presence says (`None` when `from` is no `room/nick` JID, or
    /// the presence is an error).
    pub occupant: Option<OccupantPresence>,
    /// A `<status>switch_room</status>` (the occupant leaves for a breakout room).
    pub switch_room: bool,
    /// The `<error/>` of a presence of type `error`.
    pub error: Option<StanzaError>,
    /// The first colibri `<stats>`: its `<stat>` children in order (bridges, Jigasi).
    pub stats: Option<Vec<Stat>>,
    /// The first `<jibri-status>` when it is complete (a Jibri in its brewery).
    pub jibri_status: Option<JibriStatus>,
}

impl From<Element> for Presence {
    fn from(el: Element) -> Presence {
        Presence::from_element(&el)
    }
}

impl Presence {
    /// One of the presence's addressing attributes (`from`, `id`, `type`).
    pub fn get_attr(&self, name: &str) -> Option<&str> {
        match name {
            "from" => self.from.as_deref(),
            "id" => self.id.as_deref(),
            "type" => self.typ.as_deref(),
            _ => None,
        }
    }

    /// True for `type='unavailable'`.
    pub fn is_unavailable(&self) -> bool {
        self.typ.as_deref() == Some("unavailable")
    }

    /// True for `type='error'`.
    pub fn is_error(&self) -> bool {
        self.typ.as_deref() == Some("error")
    }

    /// `from` as a JID (`None` when absent or invalid).
    pub fn from_jid(&self) -> Option<Jid> {
        self.from.as_deref().and_then(|f| Jid::parse(f).ok())
    }

    /// Read a presence from a tree (the same reader as for the parser's events).
    pub fn from_element(el: &Element) -> Presence {
        let mut reader = None;
        crate::xml::parse::walk(el, &mut |ev| match &mut reader {
            None => {
                if let Event::Start { ns, attrs, .. } = ev {
                    reader = Some(PresenceReader::new(ns, attrs));
                }
            }
            Some(r) => {
                r.event(ev);
            }
        });
        reader.map(PresenceReader::finish).unwrap_or_default()
    }

    /// The presence reduced to what a conference reads from it, for holding while its
    /// inbox is full (`messages::inbox`): of the features only those that make a Jibri
    /// or Jigasi, at most 8 statuses, the error's text cut to 256 bytes, no stats or
    /// Jibri status. At most about 12 KB whatever was sent (`slim_presence` for trees).
    pub fn slim(&self) -> Presence {
        use crate::xmpp::jigasi::*;
        const JID_MAX: usize = 3 * 1023 + 2;
        let keep = [FEATURE_JIBRI, FEATURE_JIGASI, FEATURE_TRANSCRIBER, FEATURE_AUDIO_MUTE];
        let clip = |v: &Option<String>, max: usize| v.as_ref().map(|v| if v.len() <= max { v.clone() } else { "-".repeat(max + 1) });
        Presence {
            from: clip(&self.from, JID_MAX),
            id: self.id.clone().filter(|id| id.len() <= crate::xmpp::stanza::MAX_ECHOED_ID),
            typ: clip(&self.typ, JID_MAX),
            occupant: self.occupant.as_ref().map(|o| {
                let mut o = o.clone();
                o.features.retain(|f| keep.contains(&f.as_str()));
                o.statuses.truncate(8);
                o
            }),
            switch_room: self.switch_room,
            error: self.error.as_ref().map(|e| StanzaError {
                condition: e.condition,
                condition_name: crate::xmpp::stanza::clip(&e.condition_name, 64).to_string(),
                error_type: crate::xmpp::stanza::clip(&e.error_type, 16).to_string(),
                text: e.text.as_ref().map(|t| crate::xmpp::stanza::clip(t, crate::xmpp::stanza::MAX_ERROR_TEXT).to_string()),
                extra: Vec::new(),
            }),
            stats: None,
            jibri_status: None,
        }
    }

    /// Estimated heap memory held (see `Element::weight`).
    pub fn weight(&self) -> usize {
        let s = |v: &Option<String>| v.as_ref().map_or(0, |v| v.capacity() + 16);
        let occupant = self.occupant.as_ref().map_or(0, |o| {
            256 + o.nick.capacity()
                + o.real_jid.as_ref().map_or(0, |j| 2 * j.to_string().len())
                + o.statuses.capacity() * 2
                + s(&o.stats_id)
                + s(&o.region)
                + o.caps.as_ref().map_or(0, |c| c.node.capacity() + c.ver.capacity() + c.hash.as_ref().map_or(0, String::capacity) + 48)
                + o.features.iter().map(|f| f.capacity() + 40).sum::<usize>()
        });
        let stats = self.stats.as_ref().map_or(0, |v| v.iter().map(|st| 48 + s(&st.name) + s(&st.value)).sum::<usize>());
        std::mem::size_of::<Presence>() + s(&self.from) + s(&self.id) + s(&self.typ) + occupant + stats + self.error.as_ref().map_or(0, StanzaError::weight)
    }

    /// The presence as an element (what it says, in the usual form; children it was not
    /// read for are not there): for test tools and logs.
    pub fn to_element(&self, stanza_ns: &str) -> Element {
        let mut p = Element::new("presence", stanza_ns)
            .attr_opt("from", self.from.clone())
            .attr_opt("id", self.id.clone())
            .attr_opt("type", self.typ.clone());
        if let Some(o) = &self.occupant {
            let item = Element::new("item", ns::MUC_USER)
                .attr_opt("jid", o.real_jid.as_ref().map(|j| j.to_string()))
                .attr("affiliation", affiliation_name(o.affiliation))
                .attr("role", role_name(o.role));
            let mut x = Element::new("x", ns::MUC_USER).child(item);
            for c in &o.statuses {
                x = x.child(Element::new("status", ns::MUC_USER).attr("code", c.to_string()));
            }
            if o.destroyed {
                x = x.child(Element::new("destroy", ns::MUC_USER));
            }
            p = p.child(x);
            if let Some(v) = &o.stats_id {
                p = p.child(Element::new("stats-id", stanza_ns).text(v.clone()));
            }
            if let Some(v) = &o.region {
                p = p.child(Element::new("jitsi_participant_region", stanza_ns).text(v.clone()));
            }
            if let Some(a) = o.audio_muted {
                p = p.child(Element::new("audiomuted", ns::AUDIO_MUTE).text(a.to_string()));
            }
            if let Some(v) = o.video_muted {
                p = p.child(Element::new("videomuted", ns::VIDEO_MUTE).text(v.to_string()));
            }
            if let Some(c) = &o.caps {
                p = p.child(Element::new("c", ns::CAPS).attr_opt("hash", c.hash.clone()).attr("node", c.node.clone()).attr("ver", c.ver.clone()));
            }
            if !o.features.is_empty() {
                let vars: Vec<&str> = o.features.iter().map(String::as_str).collect();
                p = p.child(crate::xmpp::jigasi::features_element(&vars));
            }
        }
        if self.switch_room {
            p = p.child(Element::new("status", stanza_ns).text("switch_room"));
        }
        if let Some(stats) = &self.stats {
            p = p.child(Element::new("stats", ns::COLIBRI).children(
                stats.iter().map(|s| Element::new("stat", ns::COLIBRI).attr_opt("name", s.name.clone()).attr_opt("value", s.value.clone())),
            ));
        }
        if let Some(j) = &self.jibri_status {
            p = p.child(
                Element::new("jibri-status", crate::xmpp::jibri::NS)
                    .child(Element::new("busy-status", crate::xmpp::jibri::NS).attr("status", if j.busy { "busy" } else { "idle" }))
                    .child(
                        Element::new("health", crate::xmpp::jibri::NS).child(
                            Element::new("health-status", crate::xmpp::jibri::NS_HEALTH)
                                .attr("status", if j.healthy { "healthy" } else { "unhealthy" }),
                        ),
                    ),
            );
        }
        if let Some(e) = &self.error {
            let mut el = Element::new("error", stanza_ns).attr("type", e.error_type.clone());
            if !e.condition_name.is_empty() {
                el = el.child(Element::new(&e.condition_name, ns::STANZAS));
            }
            if let Some(t) = &e.text {
                el = el.child(Element::new("text", ns::STANZAS).text(t.clone()));
            }
            p = p.child(el.children(e.extra.iter().map(|a| a.to_element())));
        }
        p
    }
}

fn affiliation_name(a: Affiliation) -> &'static str {
    match a {
        Affiliation::Owner => "owner",
        Affiliation::Admin => "admin",
        Affiliation::Member => "member",
        Affiliation::Outcast => "outcast",
        Affiliation::None => "none",
    }
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Moderator => "moderator",
        Role::Participant => "participant",
        Role::Visitor => "visitor",
        Role::None => "none",
    }
}

/// The muc#user `<x>`: its first `<item>`'s attributes, the status codes, `<destroy/>`.
#[derive(Debug, Default)]
struct MucX {
    item: Option<Vec<(String, String)>>,
    statuses: Vec<u16>,
    destroyed: bool,
}

/// What a presence's children say, as read (the first of each kind).
#[derive(Debug, Default)]
struct Parts {
    x: Option<MucX>,
    audio_muted: Option<String>,
    audio_muted_client: Option<String>,
    video_muted: Option<String>,
    video_muted_client: Option<String>,
    region_text: Option<String>,
    /// The `<region>` element: its `id`.
    region_id: Option<Option<String>>,
    stats_id: Option<String>,
    /// The `<c>` element's attributes.
    caps: Option<Vec<(String, String)>>,
    features: Option<Vec<String>>,
    status: Option<String>,
    error: Option<StanzaError>,
    stats: Option<Vec<Stat>>,
    /// `<jibri-status>`: its first `<busy-status>`'s and `<health-status>`'s `status`
    /// (`Some(None)`: there without the attribute).
    jibri: Option<(Option<Option<String>>, Option<Option<String>>)>,
}

/// Which text child is being read.
#[derive(Debug, Clone, Copy)]
enum TextKind {
    AudioMuted,
    AudioMutedClient,
    VideoMuted,
    VideoMutedClient,
    Region,
    StatsId,
    Status,
}

/// The direct child of the presence being read.
#[derive(Debug)]
enum Child {
    Skip(Depth),
    Text(TextKind, TextReader),
    X(MucX, Depth),
    Features(Vec<String>, Depth),
    Stats(Vec<Stat>, Depth),
    Jibri { busy: Option<Option<String>>, health: Option<Option<String>>, depth: Depth },
    Error(ErrorReader),
}

/// Reads a [`Presence`] from the events below `<presence>` (see the module docs).
#[derive(Debug)]
pub struct PresenceReader {
    ns: String,
    from: Option<String>,
    id: Option<String>,
    typ: Option<String>,
    parts: Parts,
    /// Which first children have been seen (bit per kind), read or not.
    seen: u32,
    child: Option<Child>,
}

const SEEN_X: u32 = 1;
const SEEN_AUDIO: u32 = 1 << 1;
const SEEN_AUDIO_CLIENT: u32 = 1 << 2;
const SEEN_VIDEO: u32 = 1 << 3;
const SEEN_VIDEO_CLIENT: u32 = 1 << 4;
const SEEN_REGION_TEXT: u32 = 1 << 5;
const SEEN_REGION: u32 = 1 << 6;
const SEEN_STATS_ID: u32 = 1 << 7;
const SEEN_CAPS: u32 = 1 << 8;
const SEEN_FEATURES: u32 = 1 << 9;
const SEEN_STATUS: u32 = 1 << 10;
const SEEN_ERROR: u32 = 1 << 11;
const SEEN_STATS: u32 = 1 << 12;
const SEEN_JIBRI: u32 = 1 << 13;

impl PresenceReader {
    /// A presence in namespace `ns` whose opening tag had `attrs`.
    pub fn new(ns: String, mut attrs: Vec<(String, String)>) -> PresenceReader {
        PresenceReader {
            from: take_attr(&mut attrs, "from"),
            id: take_attr(&mut attrs, "id"),
            typ: take_attr(&mut attrs, "type"),
            ns,
            parts: Parts::default(),
            seen: 0,
            child: None,
        }
    }

    /// True the first time a child of this kind is seen.
    fn first(&mut self, bit: u32) -> bool {
        let first = self.seen & bit == 0;
        self.seen |= bit;
        first
    }

    /// A direct child opens: what to read from it.
    fn open(&mut self, name: String, ns: String, mut attrs: Vec<(String, String)>) -> Child {
        let text = |k| Child::Text(k, TextReader::default());
        match (name.as_str(), ns.as_str()) {
            ("x", ns::MUC_USER) if self.first(SEEN_X) => return Child::X(MucX::default(), Depth::default()),
            ("audiomuted", ns::AUDIO_MUTE) if self.first(SEEN_AUDIO) => return text(TextKind::AudioMuted),
            ("audiomuted", ns::CLIENT) if self.first(SEEN_AUDIO_CLIENT) => return text(TextKind::AudioMutedClient),
            ("videomuted", ns::VIDEO_MUTE) if self.first(SEEN_VIDEO) => return text(TextKind::VideoMuted),
            ("videomuted", ns::CLIENT) if self.first(SEEN_VIDEO_CLIENT) => return text(TextKind::VideoMutedClient),
            ("jitsi_participant_region", ns::CLIENT) if self.first(SEEN_REGION_TEXT) => return text(TextKind::Region),
            ("region", NS_REGION) if self.first(SEEN_REGION) => self.parts.region_id = Some(take_attr(&mut attrs, "id")),
            ("stats-id", ns::CLIENT) if self.first(SEEN_STATS_ID) => return text(TextKind::StatsId),
            ("c", ns::CAPS) if self.first(SEEN_CAPS) => self.parts.caps = Some(attrs),
            ("features", ns::CLIENT) if self.first(SEEN_FEATURES) => return Child::Features(Vec::new(), Depth::default()),
            ("status", ns::CLIENT) if self.first(SEEN_STATUS) => return text(TextKind::Status),
            ("stats", ns::COLIBRI) if self.first(SEEN_STATS) => return Child::Stats(Vec::new(), Depth::default()),
            ("jibri-status", crate::xmpp::jibri::NS) if self.first(SEEN_JIBRI) => {
                return Child::Jibri { busy: None, health: None, depth: Depth::default() }
            }
            ("error", n) if n == self.ns && self.typ.as_deref() == Some("error") && self.first(SEEN_ERROR) => {
                return Child::Error(ErrorReader::new(&attrs))
            }
            _ => {}
        }
        Child::Skip(Depth::default())
    }

    /// The next event below `<presence>`; [`Step::Closed`] at its end.
    pub fn event(&mut self, ev: Event) -> Step {
        let Some(child) = &mut self.child else {
            match ev {
                Event::Start { name, ns, attrs } => self.child = Some(self.open(name, ns, attrs)),
                Event::Text(_) => {}
                Event::End => return Step::Closed,
            }
            return Step::Inside;
        };
        let closed = match child {
            Child::Skip(d) => d.follow(&ev),
            Child::Text(_, r) => r.event(ev),
            Child::Error(r) => r.event(ev),
            Child::X(x, d) => {
                if let (Event::Start { name, ns, attrs }, 0) = (&ev, d.0) {
                    if ns == ns::MUC_USER {
                        match name.as_str() {
                            "item" if x.item.is_none() => x.item = Some(attrs.clone()),
                            "status" => {
                                if let Some(c) = attr(attrs, "code").and_then(|c| c.parse().ok()) {
                                    x.statuses.push(c);
                                }
                            }
                            "destroy" => x.destroyed = true,
                            _ => {}
                        }
                    }
                }
                d.follow(&ev)
            }
            Child::Features(f, d) => {
                if let (Event::Start { name, ns, attrs }, 0) = (&ev, d.0) {
                    if name == "feature" && ns == ns::CLIENT && f.len() < caps::MAX_FEATURES {
                        if let Some(v) = attr(attrs, "var").filter(|v| v.len() <= caps::MAX_FEATURE_LEN) {
                            f.push(v.to_string());
                        }
                    }
                }
                d.follow(&ev)
            }
            Child::Stats(s, d) => {
                if let (Event::Start { name, ns, attrs }, 0) = (&ev, d.0) {
                    if name == "stat" && ns == ns::COLIBRI {
                        s.push(Stat { name: attr(attrs, "name").map(str::to_string), value: attr(attrs, "value").map(str::to_string) });
                    }
                }
                d.follow(&ev)
            }
            Child::Jibri { busy, health, depth } => {
                if let (Event::Start { name, ns, attrs }, 0) = (&ev, depth.0) {
                    let status = || attr(attrs, "status").map(str::to_string);
                    match (name.as_str(), ns.as_str()) {
                        ("busy-status", crate::xmpp::jibri::NS) if busy.is_none() => *busy = Some(status()),
                        ("health-status", crate::xmpp::jibri::NS_HEALTH) if health.is_none() => *health = Some(status()),
                        _ => {}
                    }
                }
                depth.follow(&ev)
            }
        };
        if closed == Step::Closed {
            match self.child.take() {
                Some(Child::Text(kind, r)) => {
                    let t = Some(r.finish());
                    let p = &mut self.parts;
                    match kind {
                        TextKind::AudioMuted => p.audio_muted = t,
                        TextKind::AudioMutedClient => p.audio_muted_client = t,
                        TextKind::VideoMuted => p.video_muted = t,
                        TextKind::VideoMutedClient => p.video_muted_client = t,
                        TextKind::Region => p.region_text = t,
                        TextKind::StatsId => p.stats_id = t,
                        TextKind::Status => p.status = t,
                    }
                }
                Some(Child::X(x, _)) => self.parts.x = Some(x),
                Some(Child::Features(f, _)) => self.parts.features = Some(f),
                Some(Child::Stats(s, _)) => self.parts.stats = Some(s),
                Some(Child::Jibri { busy, health, .. }) => self.parts.jibri = Some((busy, health)),
                Some(Child::Error(r)) => self.parts.error = Some(r.finish()),
                Some(Child::Skip(_)) | None => {}
            }
        }
        Step::Inside
    }

    /// The presence read.
    pub fn finish(self) -> Presence {
        let p = self.parts;
        let occupant = occupant(self.from.as_deref(), self.typ.as_deref(), &p);
        let jibri_status = p.jibri.and_then(|(busy, health)| Some(JibriStatus::from_statuses(busy?.as_deref(), health?.as_deref())));
        Presence {
            switch_room: p.status.as_deref().is_some_and(|s| s.trim() == "switch_room"),
            error: p.error,
            stats: p.stats,
            jibri_status,
            occupant,
            from: self.from,
            id: self.id,
            typ: self.typ,
        }
    }
}

/// What a presence from `room/nick` says (`OccupantPresence::parse` on a tree).
fn occupant(from: Option<&str>, typ: Option<&str>, p: &Parts) -> Option<OccupantPresence> {
    let from = Jid::parse(from?).ok()?;
    let nick = from.resource()?.to_string();
    if typ == Some("error") {
        return None;
    }
    let bool_text = |t: &String| match t.trim() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    };
    let audio_muted = p.audio_muted.as_ref().or(p.audio_muted_client.as_ref()).and_then(bool_text);
    let video_muted = p.video_muted.as_ref().or(p.video_muted_client.as_ref()).and_then(bool_text);
    let mut oversized = Vec::new();
    let mut bounded = |what: &'static str, v: Option<String>| match v {
        Some(v) if v.len() > MAX_PRESENCE_VALUE => {
            oversized.push(what);
            None
        }
        v => v.filter(|v| !v.is_empty()),
    };
    let region = bounded("region", p.region_text.clone().or_else(|| p.region_id.clone().flatten()));
    let stats_id = bounded("stats-id", p.stats_id.clone());
    let caps = p.caps.as_deref().and_then(Caps::from_attrs);
    if caps.is_none() && p.caps.as_deref().is_some_and(|c| attr(c, "node").is_some() && attr(c, "ver").is_some()) {
        oversized.push("caps");
    }
    let item = p.x.as_ref().and_then(|x| x.item.as_deref());
    Some(OccupantPresence {
        nick,
        available: typ != Some("unavailable"),
        real_jid: item.and_then(|i| attr(i, "jid")).and_then(|j| Jid::parse(j).ok()),
        affiliation: item.and_then(|i| attr(i, "affiliation")).map(Affiliation::parse).unwrap_or(Affiliation::None),
        role: item.and_then(|i| attr(i, "role")).map(Role::parse).unwrap_or(Role::None),
        statuses: p.x.as_ref().map(|x| x.statuses.clone()).unwrap_or_default(),
        destroyed: p.x.as_ref().is_some_and(|x| x.destroyed),
        stats_id,
        region,
        audio_muted,
        video_muted,
        caps,
        features: p.features.clone().unwrap_or_default(),
        oversized,
    })
}
