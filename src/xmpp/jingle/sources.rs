//! Media sources: the per-endpoint source sets, the conference source map with
//! jicofo's validation rules, per-receiver filtering and the three wire encodings.
//!
//! - Parsing: Jingle contents (session-accept, source-add, source-remove; §3.2, §3.4),
//!   the JSON `json-message` encoding (§2.4) and colibri2 `<sources>` (§1.3, §1.5).
//! - Validation: [`ConferenceSources::try_add`] / [`ConferenceSources::try_remove`]
//!   implement §3.5 all-or-nothing (the map is untouched on failure).
//! - Filtering: [`ConferenceSources::filtered`] drops media types a receiver lacks and
//!   strips simulcast (§2.4).
//! - Encoding: Jingle ssma elements for descriptions, the JSON object, and colibri2
//!   `<sources>` with one `<media-source>` per source name. Each owner's set in a
//!   [`ConferenceSources`] keeps its Jingle and JSON encodings for receivers once they are
//!   built (`super::encoded`): offers and source signaling copy those.
//!
//! Nothing here panics on hostile input: malformed SSRCs, unknown media or semantics
//! and missing attributes become [`SourceError`]s.
//!
//! Bounds on what a participant may send (every refusal is a [`SourceError`], answered
//! `bad-request` with its text; values echoed in texts are cut to [`MAX_ECHO`] bytes):
//!
//! | what | bound | why |
//! |---|---|---|
//! | source `name` | 1..=[`MAX_SOURCE_NAME_LEN`] (64) bytes | lib-jitsi-meet sends `<endpoint>-a0` / `-v0` (≈12 bytes) |
//! | `msid` | ≤ [`MAX_MSID_LEN`] (256) bytes | WebRTC sends `<stream id> <track id>`, two UUIDs (≈80 bytes) |
//! | `videoType` | `camera`, `desktop`, `desktop_high_fps`, `disabled`, `none` (any case) | the bridge's `VideoType` values |
//! | `<source>`s in one stanza | ≤ [`MAX_PARSED_SOURCES`] (128) | 20 may be kept per endpoint |
//! | `<ssrc-group>`s in one stanza | ≤ [`MAX_PARSED_GROUPS`] (128) | 20 may be kept per endpoint |
//! | SSRCs in one group | ≤ [`MAX_GROUP_SSRCS`] (32), none repeated | SIM has 3, FID 2 |
//! | JSON sources text | ≤ [`MAX_JSON_BYTES`] (64 KiB), nesting ≤ [`MAX_JSON_DEPTH`] (8) | the encoding nests 5 deep |
//!
//! The conference map is keyed by [`SourceOwner`]: a participant (by its endpoint id) or
//! the bridge (its feedback sources), two key spaces, so no nick can stand for the bridge.
//! Only the wire encodings name the bridge [`BRIDGE_OWNER`] (`jvb`).
//!
//! Beyond §3.5, [`ConferenceSources::try_add`] refuses a source name another endpoint
//! already uses ("Source name is already used: …"), one name for both audio and video,
//! and a group listing one SSRC twice.

use std::cmp::Ordering;
use std::collections::{btree_map, BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::ids::Nick;
use crate::xml::{Element, Event};
use crate::xmpp::collect::{attr, take_attr, Depth, Step};
use crate::xmpp::ns;

use super::encoded::Cached;
use super::transport::{IceTransport, TransportReader};

/// The bridge's name as a source owner on the wire (`<ssrc-info owner>`, the JSON key);
/// reserved: a participant with this endpoint id may not have sources.
pub const BRIDGE_OWNER: &str = "jvb";

/// Whose sources a set is: a participant's (by its nick, which is its endpoint id) or the
/// bridge's feedback sources. The two never share a key: a participant whose nick is
/// `jvb` is still a participant (and [`ConferenceSources::try_add`] refuses its sources,
/// since clients could not tell them from the bridge's).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SourceOwner {
    /// A participant, by its endpoint id.
    Participant(Nick),
    /// The bridge (its feedback sources).
    Bridge,
}

impl SourceOwner {
    /// The owner's name on the wire: the endpoint id, or [`BRIDGE_OWNER`] for the bridge.
    pub fn wire_name(&self) -> &str {
        match self {
            SourceOwner::Participant(n) => n.as_str(),
            SourceOwner::Bridge => BRIDGE_OWNER,
        }
    }

    /// The owner of a wire name: [`BRIDGE_OWNER`] is the bridge, anything else a participant
    /// (for decoding what the focus or a bridge wrote; a participant's own sources are
    /// keyed by its nick, never by what it wrote).
    pub fn from_wire(name: &str) -> SourceOwner {
        if name == BRIDGE_OWNER {
            SourceOwner::Bridge
        } else {
            SourceOwner::Participant(Nick::from(name))
        }
    }
}

/// Owners sort by their wire names (so encodings list them as before the two key spaces
/// were split), the bridge first on a tie.
impl Ord for SourceOwner {
    fn cmp(&self, other: &SourceOwner) -> Ordering {
        let rank = |o: &SourceOwner| matches!(o, SourceOwner::Participant(_));
        self.wire_name().cmp(other.wire_name()).then_with(|| rank(self).cmp(&rank(other)))
    }
}

impl PartialOrd for SourceOwner {
    fn partial_cmp(&self, other: &SourceOwner) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for SourceOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.wire_name())
    }
}

/// A participant.
impl From<Nick> for SourceOwner {
    fn from(n: Nick) -> SourceOwner {
        SourceOwner::Participant(n)
    }
}

/// A participant.
impl From<&Nick> for SourceOwner {
    fn from(n: &Nick) -> SourceOwner {
        SourceOwner::Participant(n.clone())
    }
}

/// A participant, whatever the text (the bridge is only ever [`SourceOwner::Bridge`]).
impl From<&str> for SourceOwner {
    fn from(n: &str) -> SourceOwner {
        SourceOwner::Participant(Nick::from(n))
    }
}
/// The msid jicofo gives the bridge's audio feedback source.
pub const BRIDGE_AUDIO_MSID: &str = "mixedmslabel mixedlabelaudio0";
/// The msid jicofo gives the bridge's video feedback source.
pub const BRIDGE_VIDEO_MSID: &str = "mixedmslabel mixedlabelvideo0";
/// `jicofo.conference.max-ssrcs-per-user` default.
pub const DEFAULT_MAX_SSRCS: usize = 20;
/// `jicofo.conference.max-ssrc-groups-per-user` default.
pub const DEFAULT_MAX_GROUPS: usize = 20;
/// Longest source name accepted (bytes).
pub const MAX_SOURCE_NAME_LEN: usize = 64;
/// Longest msid accepted (bytes).
pub const MAX_MSID_LEN: usize = 256;
/// `videoType` values accepted (compared case-insensitively).
pub const VIDEO_TYPES: &[&str] = &["camera", "desktop", "desktop_high_fps", "disabled", "none"];
/// Most `<source>`s (or JSON sources) one stanza may carry.
pub const MAX_PARSED_SOURCES: usize = 128;
/// Most `<ssrc-group>`s (or JSON groups) one stanza may carry.
pub const MAX_PARSED_GROUPS: usize = 128;
/// Most SSRCs one group may list.
pub const MAX_GROUP_SSRCS: usize = 32;
/// Longest JSON sources text accepted (bytes).
pub const MAX_JSON_BYTES: usize = 64 * 1024;
/// Deepest JSON nesting accepted (objects and arrays).
pub const MAX_JSON_DEPTH: usize = 8;
/// Input echoed in an error text is cut to this many bytes.
pub const MAX_ECHO: usize = 64;

/// `v` for an error text: cut to [`MAX_ECHO`] bytes (on a character boundary).
fn shown(v: &str) -> String {
    let cut = crate::xmpp::stanza::clip(v, MAX_ECHO);
    if cut.len() == v.len() {
        v.to_string()
    } else {
        format!("{}…", cut)
    }
}

/// The media type of a source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MediaType {
    /// An `m=audio` source (Jingle content / colibri2 media-source `type='audio'`).
    Audio,
    /// An `m=video` source (camera or screen share; `type='video'`).
    Video,
}

impl MediaType {
    /// `audio` / `video`.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaType::Audio => "audio",
            MediaType::Video => "video",
        }
    }

    /// Parse `audio` / `video` (case-insensitive).
    pub fn parse(s: &str) -> Option<MediaType> {
        if s.eq_ignore_ascii_case("audio") {
            Some(MediaType::Audio)
        } else if s.eq_ignore_ascii_case("video") {
            Some(MediaType::Video)
        } else {
            None
        }
    }

    /// The letter used in default source names (`<endpoint>-a0`, `<endpoint>-v0`).
    fn letter(self) -> char {
        match self {
            MediaType::Audio => 'a',
            MediaType::Video => 'v',
        }
    }
}

/// One RTP source (SSRC) with the attributes jicofo keeps.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Source {
    /// The RTP SSRC (ssma `<source ssrc>`), 32 bits.
    pub ssrc: u32,
    /// Whether the SSRC belongs to the audio or the video content.
    pub media: MediaType,
    /// The source name (`<source name>`, e.g. `<endpoint>-v0`), when sent.
    pub name: Option<String>,
    /// The WebRTC msid (`<stream id> <track id>`), from `<parameter name='msid' value>`.
    pub msid: Option<String>,
    /// `camera` or `desktop` when known.
    pub video_type: Option<String>,
}

impl Source {
    /// A source with only an SSRC and a media type.
    pub fn new(ssrc: u32, media: MediaType) -> Source {
        Source { ssrc, media, name: None, msid: None, video_type: None }
    }

    /// Builder: set the source name.
    pub fn with_name(mut self, name: &str) -> Source {
        self.name = Some(name.to_string());
        self
    }

    /// Builder: set the msid.
    pub fn with_msid(mut self, msid: &str) -> Source {
        self.msid = Some(msid.to_string());
        self
    }

    /// Builder: set the video type.
    pub fn with_video_type(mut self, video_type: &str) -> Source {
        self.video_type = Some(video_type.to_string());
        self
    }

    /// The Jingle ssma encoding with owner and msid (§2.4).
    pub fn to_jingle(&self, owner: &str) -> Element {
        let mut e = Element::new("source", ns::SSMA)
            .attr("ssrc", self.ssrc.to_string())
            .attr_opt("name", self.name.as_deref())
            .attr_opt("videoType", self.video_type.as_deref())
            .child(Element::new("ssrc-info", ns::JITMEET).attr("owner", owner));
        if let Some(msid) = &self.msid {
            e = e.child(Element::new("parameter", ns::RTP).attr("name", "msid").attr("value", msid.as_str()));
        }
        e
    }

    /// The colibri2 encoding: ssrc, name, videoType; no msid, no owner (§1.5).
    pub fn to_colibri2(&self) -> Element {
        Element::new("source", ns::SSMA)
            .attr("ssrc", self.ssrc.to_string())
            .attr_opt("name", self.name.as_deref())
            .attr_opt("videoType", self.video_type.as_deref())
    }
}

/// The semantics of an ssrc-group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Semantics {
    /// Simulcast.
    Sim,
    /// Flow identification (RTX pairing).
    Fid,
}

impl Semantics {
    /// `SIM` / `FID`.
    pub fn as_str(self) -> &'static str {
        match self {
            Semantics::Sim => "SIM",
            Semantics::Fid => "FID",
        }
    }

    /// Parse case-insensitively; anything else is unsupported.
    pub fn parse(s: &str) -> Option<Semantics> {
        if s.eq_ignore_ascii_case("sim") {
            Some(Semantics::Sim)
        } else if s.eq_ignore_ascii_case("fid") {
            Some(Semantics::Fid)
        } else {
            None
        }
    }

    fn json_letter(self) -> &'static str {
        match self {
            Semantics::Sim => "s",
            Semantics::Fid => "f",
        }
    }
}

/// An ssrc-group (SIM or FID) of one media type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SsrcGroup {
    /// `SIM` (simulcast layers) or `FID` (a primary SSRC and its RTX SSRC).
    pub semantics: Semantics,
    /// The media type of the content the group is in.
    pub media: MediaType,
    /// The member SSRCs in wire order (for FID: primary first, then RTX).
    pub ssrcs: Vec<u32>,
}

impl SsrcGroup {
    /// A group.
    pub fn new(semantics: Semantics, media: MediaType, ssrcs: Vec<u32>) -> SsrcGroup {
        SsrcGroup { semantics, media, ssrcs }
    }

    /// The ssma `<ssrc-group semantics>` element.
    pub fn to_element(&self) -> Element {
        Element::new("ssrc-group", ns::SSMA)
            .attr("semantics", self.semantics.as_str())
            .children(self.ssrcs.iter().map(|s| Element::new("source", ns::SSMA).attr("ssrc", s.to_string())))
    }
}

/// Why sources could not be parsed, added or removed. `Display` gives the text for
/// the `bad-request` error reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceError {
    /// Malformed input (parse stage).
    Parse(String),
    /// A validation rule of §3.5 failed.
    Invalid(String),
}

impl SourceError {
    fn parse(s: impl Into<String>) -> SourceError {
        SourceError::Parse(s.into())
    }
    fn invalid(s: impl Into<String>) -> SourceError {
        SourceError::Invalid(s.into())
    }
    /// The message text.
    pub fn text(&self) -> &str {
        match self {
            SourceError::Parse(s) | SourceError::Invalid(s) => s,
        }
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

impl std::error::Error for SourceError {}

/// The sources and groups of one endpoint (or of the bridge).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointSources {
    /// Its RTP sources, one per SSRC.
    pub sources: Vec<Source>,
    /// Its ssrc-groups (SIM / FID) over those SSRCs.
    pub groups: Vec<SsrcGroup>,
}

/// Parse an SSRC attribute value: a decimal number fitting 32 bits.
fn parse_ssrc(v: Option<&str>) -> Result<u32, SourceError> {
    let v = v.ok_or_else(|| SourceError::parse("Missing 'ssrc'"))?;
    let t = v.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SourceError::parse(format!("Invalid SSRC: {}", shown(v))));
    }
    t.parse::<u32>().map_err(|_| SourceError::parse(format!("Invalid SSRC: {}", shown(v))))
}

/// A source name within bounds: non-empty, at most [`MAX_SOURCE_NAME_LEN`] bytes, no
/// control characters (JSON can carry any; they end up in XML sent to others).
fn check_name(name: Option<&str>) -> Result<Option<String>, SourceError> {
    match name {
        None => Ok(None),
        Some("") => Err(SourceError::parse("Empty source name")),
        Some(n) if n.len() > MAX_SOURCE_NAME_LEN => Err(SourceError::parse(format!(
            "Source name too long (more than {MAX_SOURCE_NAME_LEN} bytes): {}",
            shown(n)
        ))),
        Some(n) if n.chars().any(char::is_control) => {
            Err(SourceError::parse(format!("Source name with a control character: {}", shown(n))))
        }
        Some(n) => Ok(Some(n.to_string())),
    }
}

/// An msid within bounds: at most [`MAX_MSID_LEN`] bytes, no control characters.
fn check_msid(msid: Option<&str>) -> Result<Option<String>, SourceError> {
    match msid {
        Some(m) if m.len() > MAX_MSID_LEN => {
            Err(SourceError::parse(format!("msid too long (more than {MAX_MSID_LEN} bytes): {}", shown(m))))
        }
        Some(m) if m.chars().any(char::is_control) => {
            Err(SourceError::parse(format!("msid with a control character: {}", shown(m))))
        }
        m => Ok(m.map(str::to_string)),
    }
}

/// A `videoType` from [`VIDEO_TYPES`] (any case), kept as sent.
fn check_video_type(v: Option<&str>) -> Result<Option<String>, SourceError> {
    match v {
        None => Ok(None),
        Some(t) if VIDEO_TYPES.iter().any(|k| k.eq_ignore_ascii_case(t)) => Ok(Some(t.to_string())),
        Some(t) => Err(SourceError::parse(format!("Invalid videoType: {}", shown(t)))),
    }
}

/// An ssma `<source>` as read, before its values are checked: its `ssrc`, `name` and
/// `videoType`, and the `value` of its first `<parameter name='msid'>` (ssma or rtp
/// namespace). Read by [`SourceItem::reader`] from events or from a tree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceItem {
    /// The `ssrc` attribute, unparsed.
    pub ssrc: Option<String>,
    /// The `name` attribute (the source name).
    pub name: Option<String>,
    /// The `videoType` attribute (`camera` / `desktop`, any case).
    pub video_type: Option<String>,
    /// The `value` of the first `<parameter name='msid'>` child.
    pub msid: Option<String>,
}

/// Reads a [`SourceItem`] from the events below `<source>`.
#[derive(Debug)]
pub struct SourceItemReader {
    item: SourceItem,
    msid_seen: bool,
    depth: Depth,
}

impl SourceItem {
    /// A reader for the `<source>` whose opening tag had `attrs`.
    pub fn reader(mut attrs: Vec<(String, String)>) -> SourceItemReader {
        let item = SourceItem {
            ssrc: take_attr(&mut attrs, "ssrc"),
            name: take_attr(&mut attrs, "name"),
            video_type: take_attr(&mut attrs, "videoType"),
            msid: None,
        };
        SourceItemReader { item, msid_seen: false, depth: Depth::default() }
    }

    /// Read from a `<source>` element.
    pub fn from_element(el: &Element) -> SourceItem {
        let mut r = SourceItem::reader(el.attrs.clone());
        read_below(el, |ev| r.event(ev));
        r.finish()
    }

    /// Estimated heap memory held.
    pub fn weight(&self) -> usize {
        let s = |v: &Option<String>| v.as_ref().map_or(0, |v| v.capacity() + 16);
        96 + s(&self.ssrc) + s(&self.name) + s(&self.video_type) + s(&self.msid)
    }
}

impl SourceItemReader {
    /// The next event below `<source>`; [`Step::Closed`] at its end.
    pub fn event(&mut self, ev: Event) -> Step {
        if let (Event::Start { name, ns, attrs }, 0, false) = (&ev, self.depth.0, self.msid_seen) {
            if name == "parameter" && (ns == ns::SSMA || ns == ns::RTP) && attr(attrs, "name") == Some("msid") {
                self.msid_seen = true;
                self.item.msid = attr(attrs, "value").map(str::to_string);
            }
        }
        self.depth.follow(&ev)
    }

    /// The `<source>` as read.
    pub fn finish(self) -> SourceItem {
        self.item
    }
}

/// An `<ssrc-group>` as read, before its values are checked: its `semantics` and the
/// `ssrc` of each `<source>` child (any namespace), of at most [`MAX_GROUP_SSRCS`] + 1
/// (one more is already too many).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupItem {
    /// The `semantics` attribute, unparsed (`SIM` / `FID` expected).
    pub semantics: Option<String>,
    /// The `ssrc` of each `<source>` child in order (`None` where it was absent).
    pub ssrcs: Vec<Option<String>>,
}

/// Reads a [`GroupItem`] from the events below `<ssrc-group>`.
#[derive(Debug)]
pub struct GroupItemReader {
    item: GroupItem,
    depth: Depth,
}

impl GroupItem {
    /// A reader for the group whose opening tag had `attrs`.
    pub fn reader(mut attrs: Vec<(String, String)>) -> GroupItemReader {
        GroupItemReader { item: GroupItem { semantics: take_attr(&mut attrs, "semantics"), ssrcs: Vec::new() }, depth: Depth::default() }
    }

    /// Read from an `<ssrc-group>` element.
    pub fn from_element(el: &Element) -> GroupItem {
        let mut r = GroupItem::reader(el.attrs.clone());
        read_below(el, |ev| r.event(ev));
        r.finish()
    }

    /// Estimated heap memory held.
    pub fn weight(&self) -> usize {
        64 + self.semantics.as_ref().map_or(0, String::capacity) + self.ssrcs.iter().map(|s| 32 + s.as_ref().map_or(0, String::capacity)).sum::<usize>()
    }
}

impl GroupItemReader {
    /// The next event below `<ssrc-group>`; [`Step::Closed`] at its end.
    pub fn event(&mut self, ev: Event) -> Step {
        if let (Event::Start { name, attrs, .. }, 0) = (&ev, self.depth.0) {
            if name == "source" && self.item.ssrcs.len() <= MAX_GROUP_SSRCS {
                self.item.ssrcs.push(attr(attrs, "ssrc").map(str::to_string));
            }
        }
        self.depth.follow(&ev)
    }

    /// The `<ssrc-group>` as read.
    pub fn finish(self) -> GroupItem {
        self.item
    }
}

/// Give `f` the events below `el` (not its own start and end).
fn read_below(el: &Element, mut f: impl FnMut(Event) -> Step) {
    let mut first = true;
    crate::xml::parse::walk(el, &mut |ev| {
        if !std::mem::take(&mut first) {
            f(ev);
        }
    });
}

/// Check one `<source>` (ssma) of media `media`.
fn parse_source(src: &SourceItem, media: MediaType) -> Result<Source, SourceError> {
    Ok(Source {
        ssrc: parse_ssrc(src.ssrc.as_deref())?,
        media,
        name: check_name(src.name.as_deref())?,
        msid: check_msid(src.msid.as_deref())?,
        video_type: check_video_type(src.video_type.as_deref())?,
    })
}

/// Check one `<ssrc-group>`.
fn parse_group(g: &GroupItem, media: MediaType) -> Result<SsrcGroup, SourceError> {
    let sem = g.semantics.as_deref().ok_or_else(|| SourceError::parse("Missing ssrc-group 'semantics'"))?;
    let semantics = Semantics::parse(sem)
        .ok_or_else(|| SourceError::parse(format!("Unsupported ssrc-group semantics: {}", shown(sem))))?;
    let mut ssrcs = Vec::new();
    for s in &g.ssrcs {
        if ssrcs.len() >= MAX_GROUP_SSRCS {
            return Err(group_too_large());
        }
        ssrcs.push(parse_ssrc(s.as_deref())?);
    }
    Ok(SsrcGroup { semantics, media, ssrcs })
}

/// A `<media-source type>` of a colibri2 `<sources>`, as read: its ssma sources and groups.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MediaSourceItem {
    /// The `type` attribute (`audio` / `video` expected).
    pub media_type: Option<String>,
    /// Its ssma `<source>` children, in order.
    pub sources: Vec<SourceItem>,
    /// Its `<ssrc-group>` children, in order.
    pub groups: Vec<GroupItem>,
}

/// A colibri2 `<sources>` as read (the bridge's feedback sources in a
/// `conference-modified`), before its values are checked: every `<media-source>` child
/// (any namespace) in order. [`ColibriSources::endpoint_sources`] checks it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ColibriSources {
    /// Every `<media-source>` child, in order.
    pub media_sources: Vec<MediaSourceItem>,
}

/// The child of `<sources>` (or of a `<media-source>`) being read.
#[derive(Debug)]
enum ColibriChild {
    Skip(Depth),
    /// A `<media-source>` and, inside it, the source or group being read.
    Media(MediaSourceItem, Option<MediaChild>),
}

#[derive(Debug)]
enum MediaChild {
    Skip(Depth),
    Source(SourceItemReader),
    Group(GroupItemReader),
}

/// Reads [`ColibriSources`] from the events below `<sources>`.
#[derive(Debug, Default)]
pub struct ColibriSourcesReader {
    out: ColibriSources,
    child: Option<ColibriChild>,
}

impl ColibriSources {
    /// Read from a `<sources>` element.
    pub fn from_element(el: &Element) -> ColibriSources {
        let mut r = ColibriSourcesReader::default();
        read_below(el, |ev| r.event(ev));
        r.finish()
    }

    /// The sources, checked and bounded as [`EndpointSources::from_colibri2`] says.
    pub fn endpoint_sources(&self) -> Result<EndpointSources, SourceError> {
        let mut out = EndpointSources::new();
        let (mut n_sources, mut n_groups) = (0usize, 0usize);
        for ms in &self.media_sources {
            let t = ms.media_type.as_deref().ok_or_else(|| SourceError::parse("Missing media-source 'type'"))?;
            let media =
                MediaType::parse(t).ok_or_else(|| SourceError::parse(format!("Unknown media type: {}", shown(t))))?;
            n_sources += ms.sources.len();
            n_groups += ms.groups.len();
            if n_sources > MAX_PARSED_SOURCES {
                return Err(too_many_sources());
            }
            if n_groups > MAX_PARSED_GROUPS {
                return Err(too_many_groups());
            }
            for s in &ms.sources {
                let s = parse_source(s, media)?;
                if !out.sources.contains(&s) {
                    out.sources.push(s);
                }
            }
            for g in &ms.groups {
                let g = parse_group(g, media)?;
                if !out.groups.contains(&g) {
                    out.groups.push(g);
                }
            }
        }
        Ok(out)
    }

    /// The bridge's feedback sources with jicofo's fixed msids (§1.3); see
    /// [`EndpointSources::bridge_feedback`].
    pub fn bridge_feedback(&self) -> Result<EndpointSources, SourceError> {
        let mut set = self.endpoint_sources()?;
        for s in &mut set.sources {
            s.msid = Some(
                match s.media {
                    MediaType::Audio => BRIDGE_AUDIO_MSID,
                    MediaType::Video => BRIDGE_VIDEO_MSID,
                }
                .to_string(),
            );
        }
        Ok(set)
    }

    /// Estimated heap memory held.
    pub fn weight(&self) -> usize {
        self.media_sources
            .iter()
            .map(|m| {
                64 + m.media_type.as_ref().map_or(0, String::capacity)
                    + m.sources.iter().map(SourceItem::weight).sum::<usize>()
                    + m.groups.iter().map(GroupItem::weight).sum::<usize>()
            })
            .sum()
    }
}

impl ColibriSourcesReader {
    /// The next event below `<sources>`; [`Step::Closed`] at its end.
    pub fn event(&mut self, ev: Event) -> Step {
        let Some(child) = &mut self.child else {
            match ev {
                Event::Start { name, mut attrs, .. } => {
                    self.child = Some(if name == "media-source" {
                        ColibriChild::Media(MediaSourceItem { media_type: take_attr(&mut attrs, "type"), ..Default::default() }, None)
                    } else {
                        ColibriChild::Skip(Depth::default())
                    });
                }
                Event::Text(_) => {}
                Event::End => return Step::Closed,
            }
            return Step::Inside;
        };
        let closed = match child {
            ColibriChild::Skip(d) => d.follow(&ev),
            ColibriChild::Media(item, inner) => match inner {
                None => match ev {
                    Event::Start { name, ns, attrs } => {
                        *inner = Some(match (name.as_str(), ns.as_str()) {
                            ("source", ns::SSMA) => MediaChild::Source(SourceItem::reader(attrs)),
                            ("ssrc-group", ns::SSMA) => MediaChild::Group(GroupItem::reader(attrs)),
                            _ => MediaChild::Skip(Depth::default()),
                        });
                        Step::Inside
                    }
                    Event::Text(_) => Step::Inside,
                    Event::End => Step::Closed,
                },
                Some(m) => {
                    let closed = match m {
                        MediaChild::Skip(d) => d.follow(&ev),
                        MediaChild::Source(r) => r.event(ev),
                        MediaChild::Group(r) => r.event(ev),
                    };
                    if closed == Step::Closed {
                        match inner.take() {
                            Some(MediaChild::Source(r)) => item.sources.push(r.finish()),
                            Some(MediaChild::Group(r)) => item.groups.push(r.finish()),
                            _ => {}
                        }
                    }
                    Step::Inside
                }
            },
        };
        if closed == Step::Closed {
            if let Some(ColibriChild::Media(item, _)) = self.child.take() {
                self.out.media_sources.push(item);
            }
        }
        Step::Inside
    }

    /// The `<sources>` as read.
    pub fn finish(self) -> ColibriSources {
        self.out
    }
}

/// One `<content>` of a Jingle request, typed: what the focus reads from it (its
/// sources, its first ICE transport, `initial-last-n`), before the sources are checked
/// ([`EndpointSources::from_contents`]). Read by [`JingleContent::reader`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JingleContent {
    /// The content's `name`.
    pub name: Option<String>,
    /// The first `<description xmlns='urn:xmpp:jingle:apps:rtp:1'>`: its `media`
    /// (`Some(None)`: a description without one).
    pub description_media: Option<Option<String>>,
    /// The content's own ssma `<source>` children.
    pub content_sources: Vec<SourceItem>,
    /// The description's ssma `<source>` children.
    pub description_sources: Vec<SourceItem>,
    /// The description's ssma `<ssrc-group>` children.
    pub groups: Vec<GroupItem>,
    /// The first ICE-UDP `<transport>`.
    pub transport: Option<IceTransport>,
    /// The largest ICE-UDP transport as the focus would write it (bytes; 0 without one).
    pub largest_transport: usize,
    /// The first `<initial-last-n xmlns='jitsi:colibri2'>`: its `value`.
    pub initial_last_n: Option<Option<String>>,
}

/// The child of `<content>` (or of its description) being read.
#[derive(Debug)]
enum ContentChild {
    Skip(Depth),
    Source(SourceItemReader),
    Transport(TransportReader),
    /// The first RTP description, and inside it the source or group being read.
    Description(Option<DescriptionChild>),
}

#[derive(Debug)]
enum DescriptionChild {
    Skip(Depth),
    Source(SourceItemReader),
    Group(GroupItemReader),
}

/// Reads a [`JingleContent`] from the events below `<content>`.
#[derive(Debug)]
pub struct JingleContentReader {
    c: JingleContent,
    child: Option<ContentChild>,
    description_seen: bool,
}

impl JingleContent {
    /// A reader for the `<content>` whose opening tag had `attrs`.
    pub fn reader(mut attrs: Vec<(String, String)>) -> JingleContentReader {
        JingleContentReader { c: JingleContent { name: take_attr(&mut attrs, "name"), ..Default::default() }, child: None, description_seen: false }
    }

    /// Read from a `<content>` element.
    pub fn from_element(el: &Element) -> JingleContent {
        let mut r = JingleContent::reader(el.attrs.clone());
        read_below(el, |ev| r.event(ev));
        r.finish()
    }

    /// Estimated heap memory held.
    pub fn weight(&self) -> usize {
        let s = |v: &Option<String>| v.as_ref().map_or(0, |v| v.capacity() + 16);
        128 + s(&self.name)
            + self.description_media.as_ref().map_or(0, s)
            + self.content_sources.iter().chain(&self.description_sources).map(SourceItem::weight).sum::<usize>()
            + self.groups.iter().map(GroupItem::weight).sum::<usize>()
            + self.transport.as_ref().map_or(0, IceTransport::weight)
            + self.initial_last_n.as_ref().map_or(0, s)
    }
}

impl JingleContentReader {
    /// The next event below `<content>`; [`Step::Closed`] at its end.
    pub fn event(&mut self, ev: Event) -> Step {
        let Some(child) = &mut self.child else {
            match ev {
                Event::Start { name, ns, mut attrs } => {
                    self.child = Some(match (name.as_str(), ns.as_str()) {
                        ("source", ns::SSMA) => ContentChild::Source(SourceItem::reader(attrs)),
                        ("transport", ns::ICE_UDP) => ContentChild::Transport(TransportReader::new(attrs)),
                        ("description", ns::RTP) if !self.description_seen => {
                            self.description_seen = true;
                            self.c.description_media = Some(take_attr(&mut attrs, "media"));
                            ContentChild::Description(None)
                        }
                        ("initial-last-n", ns::COLIBRI2) if self.c.initial_last_n.is_none() => {
                            self.c.initial_last_n = Some(take_attr(&mut attrs, "value"));
                            ContentChild::Skip(Depth::default())
                        }
                        _ => ContentChild::Skip(Depth::default()),
                    });
                }
                Event::Text(_) => {}
                Event::End => return Step::Closed,
            }
            return Step::Inside;
        };
        let closed = match child {
            ContentChild::Skip(d) => d.follow(&ev),
            ContentChild::Source(r) => r.event(ev),
            ContentChild::Transport(r) => r.event(ev),
            ContentChild::Description(inner) => match inner {
                None => match ev {
                    Event::Start { name, ns, attrs } => {
                        *inner = Some(match (name.as_str(), ns.as_str()) {
                            ("source", ns::SSMA) => DescriptionChild::Source(SourceItem::reader(attrs)),
                            ("ssrc-group", ns::SSMA) => DescriptionChild::Group(GroupItem::reader(attrs)),
                            _ => DescriptionChild::Skip(Depth::default()),
                        });
                        Step::Inside
                    }
                    Event::Text(_) => Step::Inside,
                    Event::End => Step::Closed,
                },
                Some(d) => {
                    let closed = match d {
                        DescriptionChild::Skip(x) => x.follow(&ev),
                        DescriptionChild::Source(r) => r.event(ev),
                        DescriptionChild::Group(r) => r.event(ev),
                    };
                    if closed == Step::Closed {
                        match inner.take() {
                            Some(DescriptionChild::Source(r)) => self.c.description_sources.push(r.finish()),
                            Some(DescriptionChild::Group(r)) => self.c.groups.push(r.finish()),
                            _ => {}
                        }
                    }
                    Step::Inside
                }
            },
        };
        if closed == Step::Closed {
            match self.child.take() {
                Some(ContentChild::Source(r)) => self.c.content_sources.push(r.finish()),
                Some(ContentChild::Transport(r)) => {
                    let t = r.finish();
                    self.c.largest_transport = self.c.largest_transport.max(t.written_len());
                    if self.c.transport.is_none() {
                        self.c.transport = Some(t);
                    }
                }
                _ => {}
            }
        }
        Step::Inside
    }

    /// The `<content>` as read.
    pub fn finish(self) -> JingleContent {
        self.c
    }
}

fn too_many_sources() -> SourceError {
    SourceError::parse(format!("Too many sources in one request (more than {MAX_PARSED_SOURCES})"))
}

fn too_many_groups() -> SourceError {
    SourceError::parse(format!("Too many SSRC groups in one request (more than {MAX_PARSED_GROUPS})"))
}

fn group_too_large() -> SourceError {
    SourceError::parse(format!("SSRC group too large (more than {MAX_GROUP_SSRCS} SSRCs)"))
}

impl EndpointSources {
    /// An empty set.
    pub fn new() -> EndpointSources {
        EndpointSources::default()
    }

    /// True when there are neither sources nor groups.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty() && self.groups.is_empty()
    }

    /// Parse the sources of Jingle contents (session-accept, transport-accept,
    /// source-add, source-remove; §3.2 step 2). Media type = the description's
    /// `media` or the content name; `<source>`s are taken from the description and
    /// from the content itself, groups from the description. Contents without
    /// sources/groups, and `data`/`application` contents, are skipped.
    ///
    /// At most [`MAX_PARSED_SOURCES`] `<source>`s and [`MAX_PARSED_GROUPS`] groups in
    /// all (duplicates counted), checked before anything is parsed.
    pub fn from_jingle_contents(contents: &[Element]) -> Result<EndpointSources, SourceError> {
        let typed: Vec<JingleContent> = contents.iter().map(JingleContent::from_element).collect();
        EndpointSources::from_contents(&typed)
    }

    /// [`EndpointSources::from_jingle_contents`] on typed contents.
    pub fn from_contents(contents: &[JingleContent]) -> Result<EndpointSources, SourceError> {
        let mut out = EndpointSources::new();
        let (mut n_sources, mut n_groups) = (0usize, 0usize);
        for c in contents {
            let srcs: Vec<&SourceItem> = c.content_sources.iter().chain(&c.description_sources).collect();
            let groups = &c.groups;
            if srcs.is_empty() && groups.is_empty() {
                continue;
            }
            let media_name = c.description_media.as_ref().and_then(|m| m.as_deref()).or(c.name.as_deref()).unwrap_or("");
            if media_name == "data" || media_name == "application" {
                continue;
            }
            n_sources += srcs.len();
            n_groups += groups.len();
            if n_sources > MAX_PARSED_SOURCES {
                return Err(too_many_sources());
            }
            if n_groups > MAX_PARSED_GROUPS {
                return Err(too_many_groups());
            }
            let media = MediaType::parse(media_name)
                .ok_or_else(|| SourceError::parse(format!("Unknown media type: {}", shown(media_name))))?;
            for s in srcs {
                let s = parse_source(s, media)?;
                if !out.sources.contains(&s) {
                    out.sources.push(s);
                }
            }
            for g in groups {
                let g = parse_group(g, media)?;
                if !out.groups.contains(&g) {
                    out.groups.push(g);
                }
            }
        }
        Ok(out)
    }

    /// Parse a colibri2 `<sources>` element: `<media-source type>` children holding
    /// ssma `<source>`s and `<ssrc-group>`s (no msids on this wire).
    /// Bounded like [`EndpointSources::from_jingle_contents`].
    pub fn from_colibri2(sources: &Element) -> Result<EndpointSources, SourceError> {
        ColibriSources::from_element(sources).endpoint_sources()
    }

    /// The bridge's feedback sources from a `conference-modified` `<sources>`, with
    /// jicofo's fixed msids (§1.3). Store them under [`SourceOwner::Bridge`].
    pub fn bridge_feedback(sources: &Element) -> Result<EndpointSources, SourceError> {
        ColibriSources::from_element(sources).bridge_feedback()
    }

    /// The source with SSRC `ssrc`.
    pub fn source(&self, ssrc: u32) -> Option<&Source> {
        self.sources.iter().find(|s| s.ssrc == ssrc)
    }

    /// Only the sources and groups of the given media types.
    pub fn filter_media(&self, audio: bool, video: bool) -> EndpointSources {
        let keep = |m: MediaType| match m {
            MediaType::Audio => audio,
            MediaType::Video => video,
        };
        EndpointSources {
            sources: self.sources.iter().filter(|s| keep(s.media)).cloned().collect(),
            groups: self.groups.iter().filter(|g| keep(g.media)).cloned().collect(),
        }
    }

    /// Simulcast stripped (§2.4): every SIM group is removed, its first SSRC (and that
    /// SSRC's FID partner) kept, the other layers and their FID groups dropped.
    pub fn strip_simulcast(&self) -> EndpointSources {
        let mut dropped: HashSet<u32> = HashSet::new();
        for g in self.groups.iter().filter(|g| g.semantics == Semantics::Sim) {
            dropped.extend(g.ssrcs.iter().skip(1));
        }
        // FID partners of dropped layers go too.
        let mut partners = Vec::new();
        for g in self.groups.iter().filter(|g| g.semantics == Semantics::Fid) {
            if g.ssrcs.iter().any(|s| dropped.contains(s)) {
                partners.extend(g.ssrcs.iter().copied());
            }
        }
        dropped.extend(partners);
        EndpointSources {
            sources: self.sources.iter().filter(|s| !dropped.contains(&s.ssrc)).cloned().collect(),
            groups: self
                .groups
                .iter()
                .filter(|g| g.semantics != Semantics::Sim && !g.ssrcs.iter().any(|s| dropped.contains(s)))
                .cloned()
                .collect(),
        }
    }

    /// The ssma `<source>`s then `<ssrc-group>`s of media `media`, for a Jingle
    /// `<description>` (§2.4), tagged with `owner`.
    pub fn jingle_elements(&self, owner: &str, media: MediaType) -> Vec<Element> {
        let mut out: Vec<Element> =
            self.sources.iter().filter(|s| s.media == media).map(|s| s.to_jingle(owner)).collect();
        out.extend(self.groups.iter().filter(|g| g.media == media).map(SsrcGroup::to_element));
        out
    }

    /// The JSON per-owner array `[VIDEO_SOURCES, VIDEO_GROUPS, AUDIO_SOURCES, AUDIO_GROUPS?]`.
    pub fn to_json_value(&self) -> Value {
        let sources = |m: MediaType| {
            Value::Array(
                self.sources
                    .iter()
                    .filter(|s| s.media == m)
                    .map(|s| {
                        let mut o = Map::new();
                        o.insert("s".into(), json!(s.ssrc));
                        if let Some(n) = &s.name {
                            o.insert("n".into(), json!(n));
                        }
                        if let Some(msid) = &s.msid {
                            o.insert("m".into(), json!(msid));
                        }
                        // videoType is kept as sent, in any case.
                        if s.video_type.as_deref().is_some_and(|v| v.eq_ignore_ascii_case("desktop")) {
                            o.insert("v".into(), json!("d"));
                        }
                        Value::Object(o)
                    })
                    .collect(),
            )
        };
        let groups = |m: MediaType| -> Vec<Value> {
            self.groups
                .iter()
                .filter(|g| g.media == m)
                .map(|g| {
                    let mut a = vec![json!(g.semantics.json_letter())];
                    a.extend(g.ssrcs.iter().map(|s| json!(s)));
                    Value::Array(a)
                })
                .collect()
        };
        let mut arr = vec![sources(MediaType::Video), Value::Array(groups(MediaType::Video)), sources(MediaType::Audio)];
        let ag = groups(MediaType::Audio);
        if !ag.is_empty() {
            arr.push(Value::Array(ag));
        }
        Value::Array(arr)
    }

    /// Parse the JSON per-owner array (see [`EndpointSources::to_json_value`]), at most
    /// [`MAX_PARSED_SOURCES`] sources and [`MAX_PARSED_GROUPS`] groups.
    pub fn from_json_value(v: &Value) -> Result<EndpointSources, SourceError> {
        EndpointSources::from_json_bounded(v, &mut JsonBudget { sources: MAX_PARSED_SOURCES, groups: MAX_PARSED_GROUPS })
    }

    fn from_json_bounded(v: &Value, budget: &mut JsonBudget) -> Result<EndpointSources, SourceError> {
        let arr = v.as_array().ok_or_else(|| SourceError::parse("Invalid JSON sources: owner entry is not an array"))?;
        let mut out = EndpointSources::new();
        let layout = [(0, MediaType::Video, false), (1, MediaType::Video, true), (2, MediaType::Audio, false), (3, MediaType::Audio, true)];
        for (idx, media, is_group) in layout {
            let Some(item) = arr.get(idx) else { continue };
            let list = item.as_array().ok_or_else(|| SourceError::parse("Invalid JSON sources: expected an array"))?;
            if is_group {
                budget.groups = budget.groups.checked_sub(list.len()).ok_or_else(too_many_groups)?;
            } else {
                budget.sources = budget.sources.checked_sub(list.len()).ok_or_else(too_many_sources)?;
            }
            for e in list {
                if is_group {
                    out.groups.push(json_group(e, media)?);
                } else {
                    out.sources.push(json_source(e, media)?);
                }
            }
        }
        Ok(out)
    }

    /// The colibri2 `<sources>` for endpoint `endpoint_id` (§1.5): one `<media-source
    /// type id>` per source name (default `<endpoint>-a0` / `-v0`), sources without
    /// msid, each group in the media-source of its first SSRC's source.
    pub fn to_colibri2(&self, endpoint_id: &str) -> Element {
        // (media, id) in order of first appearance.
        let mut keys: Vec<(MediaType, String)> = Vec::new();
        let key_of = |s: &Source| {
            (s.media, s.name.clone().unwrap_or_else(|| format!("{endpoint_id}-{}0", s.media.letter())))
        };
        for s in &self.sources {
            let k = key_of(s);
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        let mut media_sources: Vec<Element> = keys
            .iter()
            .map(|(m, id)| Element::new("media-source", ns::COLIBRI2).attr("type", m.as_str()).attr("id", id.as_str()))
            .collect();
        for s in &self.sources {
            let k = key_of(s);
            if let Some(i) = keys.iter().position(|x| *x == k) {
                media_sources[i].children.push(crate::xml::Node::Element(s.to_colibri2()));
            }
        }
        for g in &self.groups {
            let owner = g.ssrcs.first().and_then(|f| self.source(*f)).map(key_of);
            if let Some(i) = owner.and_then(|k| keys.iter().position(|x| *x == k)) {
                media_sources[i].children.push(crate::xml::Node::Element(g.to_element()));
            }
        }
        Element::new("sources", ns::COLIBRI2).children(media_sources)
    }

    /// Check the internal consistency rules of §3.5 (FID size, msid presence and
    /// agreement in groups, one msid per extended group within a media type), and that
    /// no group lists an SSRC twice.
    pub fn validate(&self) -> Result<(), SourceError> {
        let by_ssrc: HashMap<u32, &Source> = self.sources.iter().map(|s| (s.ssrc, s)).collect();
        for g in &self.groups {
            let mut seen = HashSet::new();
            if !g.ssrcs.iter().all(|s| seen.insert(*s)) {
                return Err(SourceError::invalid(format!(
                    "SSRC group contains a repeated SSRC: {} {:?}",
                    g.semantics.as_str(),
                    g.ssrcs
                )));
            }
            if g.semantics == Semantics::Fid && g.ssrcs.len() != 2 {
                return Err(SourceError::invalid(format!(
                    "Invalid FID group. A FID group must contain exactly 2 SSRCs: {:?}",
                    g.ssrcs
                )));
            }
            let mut group_msid: Option<&str> = None;
            for ssrc in &g.ssrcs {
                let src = by_ssrc.get(ssrc).ok_or_else(|| {
                    SourceError::invalid(format!(
                        "An SSRC group contains an SSRC which has not been signaled as a source: {ssrc}"
                    ))
                })?;
                let msid = src.msid.as_deref().ok_or_else(|| {
                    SourceError::invalid(format!("Required source parameter 'msid' is not present for SSRC {ssrc}"))
                })?;
                match group_msid {
                    None => group_msid = Some(msid),
                    Some(m) if m != msid => {
                        return Err(SourceError::invalid(format!(
                            "SSRC group contains sources with different MSIDs: {:?}",
                            g.ssrcs
                        )))
                    }
                    _ => {}
                }
            }
        }
        // Extended groups per media type: SIM + FID partners, lone FID, ungrouped sources.
        for media in [MediaType::Audio, MediaType::Video] {
            let groups: Vec<&SsrcGroup> = self.groups.iter().filter(|g| g.media == media).collect();
            let mut covered: HashSet<u32> = HashSet::new();
            let mut units: Vec<u32> = Vec::new(); // a representative SSRC per extended group
            for g in groups.iter().filter(|g| g.semantics == Semantics::Sim) {
                if let Some(f) = g.ssrcs.first() {
                    if covered.contains(f) {
                        continue;
                    }
                    units.push(*f);
                }
                covered.extend(g.ssrcs.iter().copied());
                for fid in groups.iter().filter(|x| x.semantics == Semantics::Fid) {
                    if fid.ssrcs.iter().any(|s| g.ssrcs.contains(s)) {
                        covered.extend(fid.ssrcs.iter().copied());
                    }
                }
            }
            for g in groups.iter().filter(|g| g.semantics == Semantics::Fid) {
                if g.ssrcs.iter().any(|s| covered.contains(s)) {
                    continue;
                }
                if let Some(f) = g.ssrcs.first() {
                    units.push(*f);
                }
                covered.extend(g.ssrcs.iter().copied());
            }
            for s in self.sources.iter().filter(|s| s.media == media) {
                if !covered.contains(&s.ssrc) && s.msid.is_some() {
                    units.push(s.ssrc);
                }
            }
            let mut seen: HashSet<&str> = HashSet::new();
            for u in units {
                if let Some(msid) = by_ssrc.get(&u).and_then(|s| s.msid.as_deref()) {
                    if !seen.insert(msid) {
                        return Err(SourceError::invalid(format!(
                            "MSID {msid} is used by more than one source group of the endpoint"
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

fn json_source(v: &Value, media: MediaType) -> Result<Source, SourceError> {
    let o = v.as_object().ok_or_else(|| SourceError::parse("Invalid JSON source: not an object"))?;
    let ssrc = o
        .get("s")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| SourceError::parse("Invalid SSRC in JSON source"))?;
    let text = |k: &str| o.get(k).and_then(Value::as_str);
    Ok(Source {
        ssrc,
        media,
        name: check_name(text("n"))?,
        msid: check_msid(text("m"))?,
        // Only desktop is marked; receivers assume camera for other video sources.
        video_type: match (media, o.get("v").and_then(Value::as_str)) {
            (MediaType::Video, Some("d")) => Some("desktop".to_string()),
            (MediaType::Video, _) => Some("camera".to_string()),
            _ => None,
        },
    })
}

fn json_group(v: &Value, media: MediaType) -> Result<SsrcGroup, SourceError> {
    let a = v.as_array().ok_or_else(|| SourceError::parse("Invalid JSON group: not an array"))?;
    let sem = a.first().and_then(Value::as_str).ok_or_else(|| SourceError::parse("Invalid JSON group semantics"))?;
    let semantics = match sem {
        "s" => Semantics::Sim,
        "f" => Semantics::Fid,
        other => Semantics::parse(other)
            .ok_or_else(|| SourceError::parse(format!("Unsupported ssrc-group semantics: {}", shown(other))))?,
    };
    if a.len() - 1 > MAX_GROUP_SSRCS {
        return Err(group_too_large());
    }
    let mut ssrcs = Vec::new();
    for x in &a[1..] {
        ssrcs.push(
            x.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| SourceError::parse("Invalid SSRC in JSON group"))?,
        );
    }
    Ok(SsrcGroup { semantics, media, ssrcs })
}

/// How many sources and groups a JSON parse may still produce.
struct JsonBudget {
    sources: usize,
    groups: usize,
}

/// Per-endpoint limits of the validating map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceLimits {
    /// Most SSRCs one endpoint may own (`max-ssrcs-per-user`, default [`DEFAULT_MAX_SSRCS`]); a source-add past it is rejected.
    pub max_ssrcs: usize,
    /// Most ssrc-groups one endpoint may own (`max-ssrc-groups-per-user`, default [`DEFAULT_MAX_GROUPS`]).
    pub max_groups: usize,
}

impl Default for SourceLimits {
    fn default() -> SourceLimits {
        SourceLimits { max_ssrcs: DEFAULT_MAX_SSRCS, max_groups: DEFAULT_MAX_GROUPS }
    }
}

/// The conference's sources: owner (a participant or the bridge) → its set.
/// Owners with an empty set are not kept.
///
/// Each set is stored with its wire encodings, built on first use
/// ([`super::encoded::SourceView`] writes them); a set is never changed in place, so a
/// change makes a new entry with nothing encoded. Clones share the entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConferenceSources {
    owners: BTreeMap<SourceOwner, Arc<Cached>>,
    limits: SourceLimits,
}

impl ConferenceSources {
    /// An empty map with the default limits (20 SSRCs, 20 groups per endpoint).
    pub fn new() -> ConferenceSources {
        ConferenceSources::default()
    }

    /// An empty map with explicit limits.
    pub fn with_limits(limits: SourceLimits) -> ConferenceSources {
        ConferenceSources { owners: BTreeMap::new(), limits }
    }

    /// A map holding exactly one owner's set (no validation).
    pub fn single(owner: impl Into<SourceOwner>, set: EndpointSources) -> ConferenceSources {
        let mut m = ConferenceSources::new();
        m.insert(owner, set);
        m
    }

    /// Replace `owner`'s set without validation (bridge feedback sources, deltas).
    pub fn insert(&mut self, owner: impl Into<SourceOwner>, set: EndpointSources) {
        let owner = owner.into();
        if set.is_empty() {
            self.owners.remove(&owner);
        } else {
            self.owners.insert(owner, Cached::new(set));
        }
    }

    /// `owner`'s set.
    pub fn get(&self, owner: impl Into<SourceOwner>) -> Option<&EndpointSources> {
        self.owners.get(&owner.into()).map(|c| &c.set)
    }

    /// Owners (by their wire names) and sets, ordered by owner.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &EndpointSources)> {
        self.owners.iter().map(|(k, v)| (k.wire_name(), &v.set))
    }

    /// Owners and sets, ordered by owner.
    pub fn owners(&self) -> impl Iterator<Item = (&SourceOwner, &EndpointSources)> {
        self.owners.iter().map(|(k, v)| (k, &v.set))
    }

    /// Owners and their entries (set and encodings), ordered by owner.
    pub(crate) fn entries(&self) -> btree_map::Iter<'_, SourceOwner, Arc<Cached>> {
        self.owners.iter()
    }

    /// True when `owner`'s entry is the very one `other` holds (shared, not a copy).
    #[cfg(test)]
    pub(crate) fn shares_entry(&self, other: &ConferenceSources, owner: impl Into<SourceOwner>) -> bool {
        let owner = owner.into();
        matches!((self.owners.get(&owner), other.owners.get(&owner)), (Some(a), Some(b)) if Arc::ptr_eq(a, b))
    }

    /// How many encodings `owner`'s entry has built (tests).
    #[cfg(test)]
    pub(crate) fn encoded_count(&self, owner: impl Into<SourceOwner>) -> usize {
        self.owners.get(&owner.into()).map_or(0, |c| c.encoded_count())
    }

    /// True when no owner has sources.
    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }

    /// Remove an owner entirely, returning its set (no validation).
    pub fn remove_owner(&mut self, owner: impl Into<SourceOwner>) -> Option<EndpointSources> {
        let c = self.owners.remove(&owner.into())?;
        Some(Arc::try_unwrap(c).map_or_else(|c| c.set.clone(), |c| c.set))
    }

    /// A copy without `owner` (a receiver never gets its own sources).
    pub fn without(&self, owner: impl Into<SourceOwner>) -> ConferenceSources {
        let mut c = self.clone();
        c.owners.remove(&owner.into());
        c
    }

    /// Merge `other` into this map without validation (set union per owner). An owner
    /// this map does not have yet gets `other`'s entry itself (shared with its encodings).
    pub fn merge(&mut self, other: &ConferenceSources) {
        for (owner, theirs) in &other.owners {
            let Some(mine) = self.owners.get(owner) else {
                if !theirs.set.is_empty() {
                    self.owners.insert(owner.clone(), theirs.clone());
                }
                continue;
            };
            let mut e = mine.set.clone();
            for s in &theirs.set.sources {
                if !e.sources.contains(s) {
                    e.sources.push(s.clone());
                }
            }
            for g in &theirs.set.groups {
                if !e.groups.contains(g) {
                    e.groups.push(g.clone());
                }
            }
            if e != mine.set {
                self.insert(owner.clone(), e);
            }
        }
    }

    /// Filtered for a receiver (§2.4): only the media types it supports, simulcast
    /// stripped when `strip_simulcast`; owners left empty are dropped.
    pub fn filtered(&self, audio: bool, video: bool, strip_simulcast: bool) -> ConferenceSources {
        let mut out = ConferenceSources::with_limits(self.limits);
        for (owner, set) in self.owners() {
            let mut s = set.filter_media(audio, video);
            if strip_simulcast {
                s = s.strip_simulcast();
            }
            out.insert(owner.clone(), s);
        }
        out
    }

    /// Validate and add `add` for `owner` (§3.5), all-or-nothing. Returns the
    /// accepted delta (sources plus the groups that were not empty or duplicates).
    ///
    /// Only a participant adds sources this way (the bridge's are [`Self::insert`]ed).
    /// Besides §3.5: its endpoint id may not be [`BRIDGE_OWNER`]; a source name must start with
    /// `<owner>-` (as lib-jitsi-meet's `<endpoint>-a0` / `-v0` do, so one endpoint cannot
    /// take the names another will use), may not be used by another owner, and one
    /// name may not cover both audio and video.
    pub fn try_add(&mut self, participant: impl Into<Nick>, add: EndpointSources) -> Result<EndpointSources, SourceError> {
        let participant = participant.into();
        let owner = participant.as_str();
        if owner == BRIDGE_OWNER {
            return Err(SourceError::invalid(format!("Endpoint id '{BRIDGE_OWNER}' is reserved for the bridge")));
        }
        let key = SourceOwner::Participant(participant.clone());
        let limits = self.limits;
        let existing = self.owners.get(&key).map(|c| c.set.clone()).unwrap_or_default();
        let mut used: HashSet<u32> = self.owners.values().flat_map(|c| c.set.sources.iter().map(|s| s.ssrc)).collect();
        let others = || self.owners.iter().filter(|(o, _)| **o != key).flat_map(|(_, c)| c.set.sources.iter());
        let foreign_msids: HashSet<&str> = others().filter_map(|s| s.msid.as_deref()).collect();
        let foreign_names: HashSet<&str> = others().filter_map(|s| s.name.as_deref()).collect();
        let mut name_media: HashMap<&str, MediaType> =
            existing.sources.iter().filter_map(|s| Some((s.name.as_deref()?, s.media))).collect();
        let mut accepted = EndpointSources::new();
        for s in &add.sources {
            if s.ssrc == 0 {
                return Err(SourceError::invalid(format!("Invalid SSRC: {}", s.ssrc)));
            }
            if accepted.sources.contains(s) {
                continue;
            }
            if !used.insert(s.ssrc) {
                return Err(SourceError::invalid(format!("SSRC is already used: {}", s.ssrc)));
            }
            if let Some(m) = s.msid.as_deref() {
                if foreign_msids.contains(m) {
                    return Err(SourceError::invalid(format!("MSID is already used: {}", shown(m))));
                }
            }
            if let Some(n) = s.name.as_deref() {
                if foreign_names.contains(n) {
                    return Err(SourceError::invalid(format!("Source name is already used: {}", shown(n))));
                }
                if n.len() <= owner.len() + 1 || !n.starts_with(owner) || n.as_bytes()[owner.len()] != b'-' {
                    return Err(SourceError::invalid(format!(
                        "Source name must start with the endpoint id ('{}-'): {}",
                        shown(owner),
                        shown(n)
                    )));
                }
                if *name_media.entry(n).or_insert(s.media) != s.media {
                    return Err(SourceError::invalid(format!("Source name is used for audio and video: {}", shown(n))));
                }
            }
            accepted.sources.push(s.clone());
        }
        if existing.sources.len() + accepted.sources.len() > limits.max_ssrcs {
            return Err(SourceError::invalid(format!("SSRC limit ({}) exceeded", limits.max_ssrcs)));
        }
        let all_ssrcs: HashSet<u32> =
            existing.sources.iter().chain(accepted.sources.iter()).map(|s| s.ssrc).collect();
        for g in &add.groups {
            if g.ssrcs.is_empty() || existing.groups.contains(g) || accepted.groups.contains(g) {
                continue;
            }
            if let Some(bad) = g.ssrcs.iter().find(|s| !all_ssrcs.contains(s)) {
                return Err(SourceError::invalid(format!(
                    "An SSRC group contains an SSRC which has not been signaled as a source: {bad}"
                )));
            }
            accepted.groups.push(g.clone());
        }
        if existing.groups.len() + accepted.groups.len() > limits.max_groups {
            return Err(SourceError::invalid(format!("ssrc-group limit ({}) exceeded", limits.max_groups)));
        }
        let mut result = existing;
        result.sources.extend(accepted.sources.iter().cloned());
        result.groups.extend(accepted.groups.iter().cloned());
        result.validate()?;
        self.insert(key, result);
        Ok(accepted)
    }

    /// Validate and remove `remove` from `owner` (§3.5), all-or-nothing. Sources are
    /// matched by SSRC only; groups touching a removed SSRC go too. Returns what was
    /// actually removed (the stored sources and every removed group).
    pub fn try_remove(&mut self, participant: impl Into<Nick>, remove: &EndpointSources) -> Result<EndpointSources, SourceError> {
        if remove.is_empty() {
            return Ok(EndpointSources::new());
        }
        let participant = participant.into();
        let owner = participant.as_str();
        let key = SourceOwner::Participant(participant.clone());
        let existing = self
            .owners
            .get(&key)
            .map(|c| &c.set)
            .ok_or_else(|| SourceError::invalid(format!("No sources exist for endpoint {}", shown(owner))))?;
        let mut removed = EndpointSources::new();
        let mut gone: BTreeSet<u32> = BTreeSet::new();
        for s in &remove.sources {
            let stored = existing.source(s.ssrc).ok_or_else(|| {
                SourceError::invalid(format!("Source does not exist or is not owned by endpoint: {}", s.ssrc))
            })?;
            if gone.insert(s.ssrc) {
                removed.sources.push(stored.clone());
            }
        }
        for g in &remove.groups {
            if g.ssrcs.is_empty() {
                continue;
            }
            if !existing.groups.iter().any(|x| x.semantics == g.semantics && x.ssrcs == g.ssrcs) {
                return Err(SourceError::invalid(format!(
                    "Source group does not exist or is not owned by endpoint: {} {:?}",
                    g.semantics.as_str(),
                    g.ssrcs
                )));
            }
        }
        let mut remaining = EndpointSources::new();
        remaining.sources = existing.sources.iter().filter(|s| !gone.contains(&s.ssrc)).cloned().collect();
        for x in &existing.groups {
            let listed = remove.groups.iter().any(|g| g.semantics == x.semantics && g.ssrcs == x.ssrcs);
            if listed || x.ssrcs.iter().any(|s| gone.contains(s)) {
                removed.groups.push(x.clone());
            } else {
                remaining.groups.push(x.clone());
            }
        }
        remaining.validate()?;
        self.insert(key, remaining);
        Ok(removed)
    }

    /// The JSON encoding `{"sources":{owner:[…]}}` (§2.4).
    pub fn to_json(&self) -> String {
        let mut m = Map::new();
        for (owner, c) in &self.owners {
            let set = &c.set;
            m.insert(owner.wire_name().to_string(), set.to_json_value());
        }
        let mut top = Map::new();
        top.insert("sources".into(), Value::Object(m));
        Value::Object(top).to_string()
    }

    /// Parse the JSON encoding (§2.4) as a participant sends it: at most
    /// [`MAX_JSON_BYTES`] of text nested at most [`MAX_JSON_DEPTH`] deep, with at most
    /// [`MAX_PARSED_SOURCES`] sources and [`MAX_PARSED_GROUPS`] groups over all owners.
    pub fn from_json(text: &str) -> Result<ConferenceSources, SourceError> {
        if text.len() > MAX_JSON_BYTES {
            return Err(SourceError::parse(format!("JSON sources too large (more than {MAX_JSON_BYTES} bytes)")));
        }
        if !crate::xmpp::json_message::depth_within(text, MAX_JSON_DEPTH) {
            return Err(SourceError::parse(format!("JSON sources nested too deep (more than {MAX_JSON_DEPTH})")));
        }
        let v: Value = serde_json::from_str(text).map_err(|e| SourceError::parse(format!("Invalid JSON: {e}")))?;
        let sources = v
            .get("sources")
            .and_then(Value::as_object)
            .ok_or_else(|| SourceError::parse("Invalid JSON sources: no 'sources' object"))?;
        let mut out = ConferenceSources::new();
        let mut budget = JsonBudget { sources: MAX_PARSED_SOURCES, groups: MAX_PARSED_GROUPS };
        for (owner, arr) in sources {
            out.insert(SourceOwner::from_wire(owner), EndpointSources::from_json_bounded(arr, &mut budget)?);
        }
        Ok(out)
    }

    /// The ssma `<source>`/`<ssrc-group>` elements of all owners for one media type,
    /// for a Jingle `<description>`.
    /// All owners' sources come first, then all groups.
    pub fn jingle_elements(&self, media: MediaType) -> Vec<Element> {
        let mut out: Vec<Element> = Vec::new();
        for (owner, c) in &self.owners {
            let set = &c.set;
            out.extend(set.sources.iter().filter(|s| s.media == media).map(|s| s.to_jingle(owner.wire_name())));
        }
        for (_, set) in self.iter() {
            out.extend(set.groups.iter().filter(|g| g.media == media).map(SsrcGroup::to_element));
        }
        out
    }

    /// True when some owner has sources or groups of `media`.
    pub fn has_media(&self, media: MediaType) -> bool {
        self.iter().any(|(_, e)| e.sources.iter().any(|s| s.media == media) || e.groups.iter().any(|g| g.media == media))
    }
}
