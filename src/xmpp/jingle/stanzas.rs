//! Jingle stanzas, sans-IO: parsing what clients send (§3) and building what jicofo
//! sends: the offer (session-initiate / transport-replace, §2.1–§2.4), source-add /
//! source-remove (§3.7), transport-info (§3.6) and session-terminate (§4.2, §4.3).
//!
//! Builders return complete `<iq type='set'>` stanzas in `jabber:client`. The offers
//! (session-initiate, transport-replace) and source-add / source-remove are not element
//! trees: they are written straight into a [`RawWriter`] ([`RawElement`]: the IQ's
//! attributes, and its `<jingle>` as raw XML), from the parts written ahead: the codec
//! contents per kind of participant (`super::codecs::offer_media`) and each owner's
//! cached sources (`super::encoded`), shared rather than copied; the event loop copies
//! the result into its write buffer. An offer in a room of 500 costs a copy, not 20 000
//! elements, and one in a room of 5 no tree at all. The [`tree`] module builds the same
//! stanzas as trees (the reference the tests and `benches/xml.rs` compare with; the
//! focus does not use it).
//!
//! What a client sends that the focus forwards is bounded here: an ICE `<transport>`
//! (copied into the Colibri2 request to the bridge) may serialize to at most
//! [`MAX_TRANSPORT_BYTES`], so that no participant can make the focus send a stanza
//! big enough for the server to drop the focus's connection (our serializer writes
//! `'` in attributes as six bytes).

use std::fmt;

use std::sync::Arc;

use crate::xml::{Element, Event, Node, RawElement, RawWriter, RawXml};
use crate::xmpp::collect::{Depth, Step, TextReader};
use crate::xmpp::ns;

use super::codecs::OfferMedia;
use super::encoded::SourceView;
use super::sources::{ConferenceSources, EndpointSources, JingleContent, JingleContentReader, MediaType, SourceError};
use super::transport::IceTransport;

/// Largest ICE `<transport>` accepted from a client, as the focus would write it.
/// Browsers send ufrag, pwd, a fingerprint and some candidates: 1–4 KB.
pub const MAX_TRANSPORT_BYTES: usize = 16 * 1024;

/// A Jingle action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JingleAction {
    /// `session-initiate`: the focus offers a session (sent by the focus, never accepted from a client).
    SessionInitiate,
    /// `session-accept`: the client answers the offer with its transport and sources.
    SessionAccept,
    /// `session-info`: in-session information (e.g. `<ice-state>failed</ice-state>`).
    SessionInfo,
    /// `session-terminate`: either side ends the session (a client may ask for a restart).
    SessionTerminate,
    /// `transport-info`: ICE candidates or transport updates for the session.
    TransportInfo,
    /// `transport-accept`: the client accepts a `transport-replace`.
    TransportAccept,
    /// `transport-reject`: the client rejects a `transport-replace`.
    TransportReject,
    /// `transport-replace`: the focus gives the session a new transport (the session is kept).
    TransportReplace,
    /// `source-add` (also the legacy `addsource`).
    SourceAdd,
    /// `source-remove` (also the legacy `removesource`).
    SourceRemove,
    /// Anything else (content-*, description-info, …): unsupported.
    Other(String),
}

impl JingleAction {
    /// Parse an `action` attribute value.
    pub fn parse(s: &str) -> JingleAction {
        match s {
            "session-initiate" => JingleAction::SessionInitiate,
            "session-accept" => JingleAction::SessionAccept,
            "session-info" => JingleAction::SessionInfo,
            "session-terminate" => JingleAction::SessionTerminate,
            "transport-info" => JingleAction::TransportInfo,
            "transport-accept" => JingleAction::TransportAccept,
            "transport-reject" => JingleAction::TransportReject,
            "transport-replace" => JingleAction::TransportReplace,
            "source-add" | "addsource" => JingleAction::SourceAdd,
            "source-remove" | "removesource" => JingleAction::SourceRemove,
            other => JingleAction::Other(other.to_string()),
        }
    }

    /// The canonical wire spelling.
    pub fn as_str(&self) -> &str {
        match self {
            JingleAction::SessionInitiate => "session-initiate",
            JingleAction::SessionAccept => "session-accept",
            JingleAction::SessionInfo => "session-info",
            JingleAction::SessionTerminate => "session-terminate",
            JingleAction::TransportInfo => "transport-info",
            JingleAction::TransportAccept => "transport-accept",
            JingleAction::TransportReject => "transport-reject",
            JingleAction::TransportReplace => "transport-replace",
            JingleAction::SourceAdd => "source-add",
            JingleAction::SourceRemove => "source-remove",
            JingleAction::Other(s) => s,
        }
    }
}

/// A malformed Jingle request; always answered with `bad-request` and this text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JingleError(pub String);

impl JingleError {
    /// The stanza error condition to answer with.
    pub fn condition(&self) -> &'static str {
        "bad-request"
    }
}

impl fmt::Display for JingleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for JingleError {}

/// `<bridge-session xmlns='http://jitsi.org/protocol/focus' id restart ice-restart>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeSession {
    /// The `id` attribute: the bridge session the client speaks of; must be its current one.
    pub id: Option<String>,
    /// `restart='true'` (in `session-terminate`): the client asks to be re-invited.
    pub restart: bool,
    /// `ice-restart='true'` (in `session-info`): the client asks for an in-place ICE restart.
    pub ice_restart: bool,
}

/// A Jingle IQ received from a client, typed: no part of it is kept as XML. Read by
/// [`JingleReader`] from the events below `<jingle>` (straight from the parser, or from a
/// tree replayed as events: [`JingleRequest::from_jingle`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JingleRequest {
    /// The `action` attribute.
    pub action: JingleAction,
    /// The `sid` attribute: the Jingle session id.
    pub sid: String,
    /// The `initiator` attribute (a full JID), when sent.
    pub initiator: Option<String>,
    /// The `responder` attribute (a full JID), when sent.
    pub responder: Option<String>,
    /// The `<content>` children, typed (their sources are checked by [`Self::sources`]).
    pub contents: Vec<JingleContent>,
    /// The text of `<json-message xmlns='http://jitsi.org/jitmeet'>`.
    pub json_sources: Option<String>,
    /// The focus-namespace `<bridge-session>` child (`session-terminate`, `session-info`).
    pub bridge_session: Option<BridgeSession>,
    /// `<reason>`: the condition element's name and the optional `<text>`.
    pub reason: Option<(String, Option<String>)>,
    /// `<ice-state xmlns='http://jitsi.org/protocol/focus'>` text.
    pub ice_state: Option<String>,
}

fn is_true(v: Option<&str>) -> bool {
    v.map(|v| v.eq_ignore_ascii_case("true")).unwrap_or(false)
}

impl JingleRequest {
    /// Parse an IQ holding `<jingle xmlns='urn:xmpp:jingle:1'>`.
    pub fn parse(iq: &Element) -> Result<JingleRequest, JingleError> {
        let jingle = iq.get_child("jingle", ns::JINGLE).ok_or_else(|| JingleError("Missing 'jingle'".into()))?;
        JingleRequest::from_jingle(jingle)
    }

    /// Parse the `<jingle>` element itself.
    pub fn from_jingle(jingle: &Element) -> Result<JingleRequest, JingleError> {
        let mut r = JingleReader::new(jingle.attrs.clone());
        let mut first = true;
        crate::xml::parse::walk(jingle, &mut |ev| {
            if !std::mem::take(&mut first) {
                r.event(ev);
            }
        });
        r.finish()
    }

    /// The sources the request carries: those in its contents, plus (if present) every
    /// owner's sources from a json-message merged in.
    pub fn sources(&self) -> Result<EndpointSources, SourceError> {
        let mut set = EndpointSources::from_contents(&self.contents)?;
        if let Some(j) = &self.json_sources {
            let conf = ConferenceSources::from_json(j)?;
            for (_, s) in conf.iter() {
                for x in &s.sources {
                    if !set.sources.contains(x) {
                        set.sources.push(x.clone());
                    }
                }
                for g in &s.groups {
                    if !set.groups.contains(g) {
                        set.groups.push(g.clone());
                    }
                }
            }
        }
        Ok(set)
    }

    /// Estimated heap memory held (see `Element::weight`).
    pub fn weight(&self) -> usize {
        let s = |v: &Option<String>| v.as_ref().map_or(0, |v| v.capacity() + 16);
        std::mem::size_of::<JingleRequest>()
            + self.sid.capacity()
            + s(&self.initiator)
            + s(&self.responder)
            + self.contents.iter().map(JingleContent::weight).sum::<usize>()
            + s(&self.json_sources)
            + self.bridge_session.as_ref().map_or(0, |b| 32 + s(&b.id))
            + self.reason.as_ref().map_or(0, |(c, t)| c.capacity() + s(t) + 32)
            + s(&self.ice_state)
    }
}

/// The child of `<jingle>` being read.
#[derive(Debug)]
enum JingleChild {
    Skip(Depth),
    Content(JingleContentReader),
    Json(TextReader),
    IceState(TextReader),
    Reason(ReasonReader),
}

/// Reads `<reason>`: the name of its first child other than `<text>` and the text of
/// its first `<text>` (any namespace, as the tree lookups did).
#[derive(Debug, Default)]
struct ReasonReader {
    cond: Option<String>,
    text: Option<String>,
    text_seen: bool,
    reading: Option<TextReader>,
    depth: Depth,
}

impl ReasonReader {
    fn event(&mut self, ev: Event) -> Step {
        if let Some(r) = &mut self.reading {
            if r.event(ev) == Step::Closed {
                self.text = self.reading.take().map(TextReader::finish);
            }
            return Step::Inside;
        }
        if let (Event::Start { name, .. }, 0) = (&ev, self.depth.0) {
            if name == "text" {
                if !self.text_seen {
                    self.text_seen = true;
                    self.reading = Some(TextReader::default());
                    return Step::Inside;
                }
            } else if self.cond.is_none() {
                self.cond = Some(name.clone());
            }
        }
        self.depth.follow(&ev)
    }
}

/// Reads a [`JingleRequest`] from the events below `<jingle>`: the first of each child a
/// tree lookup would find, every `<content>`, and the bound on transports.
#[derive(Debug)]
pub struct JingleReader {
    attrs: Vec<(String, String)>,
    contents: Vec<JingleContent>,
    json_sources: Option<String>,
    bridge_session: Option<BridgeSession>,
    reason: Option<(String, Option<String>)>,
    ice_state: Option<String>,
    seen: u8,
    child: Option<JingleChild>,
}

const SEEN_JSON: u8 = 1;
const SEEN_BRIDGE_SESSION: u8 = 2;
const SEEN_REASON: u8 = 4;
const SEEN_ICE_STATE: u8 = 8;

impl JingleReader {
    /// A `<jingle>` whose opening tag had `attrs`.
    pub fn new(attrs: Vec<(String, String)>) -> JingleReader {
        JingleReader { attrs, contents: Vec::new(), json_sources: None, bridge_session: None, reason: None, ice_state: None, seen: 0, child: None }
    }

    fn first(&mut self, bit: u8) -> bool {
        let first = self.seen & bit == 0;
        self.seen |= bit;
        first
    }

    /// The next event below `<jingle>`; [`Step::Closed`] at its end.
    pub fn event(&mut self, ev: Event) -> Step {
        let Some(child) = &mut self.child else {
            match ev {
                Event::Start { name, ns, attrs } => {
                    let c = match (name.as_str(), ns.as_str()) {
                        ("content", ns::JINGLE) => JingleChild::Content(JingleContent::reader(attrs)),
                        ("json-message", ns::JITMEET) if self.first(SEEN_JSON) => JingleChild::Json(TextReader::default()),
                        ("ice-state", ns::FOCUS) if self.first(SEEN_ICE_STATE) => JingleChild::IceState(TextReader::default()),
                        ("reason", ns::JINGLE) if self.first(SEEN_REASON) => JingleChild::Reason(ReasonReader::default()),
                        ("bridge-session", ns::FOCUS) if self.first(SEEN_BRIDGE_SESSION) => {
                            let a = |k: &str| crate::xmpp::collect::attr(&attrs, k);
                            self.bridge_session = Some(BridgeSession {
                                id: a("id").map(str::to_string),
                                restart: is_true(a("restart")),
                                ice_restart: is_true(a("ice-restart")),
                            });
                            JingleChild::Skip(Depth::default())
                        }
                        _ => JingleChild::Skip(Depth::default()),
                    };
                    self.child = Some(c);
                }
                Event::Text(_) => {}
                Event::End => return Step::Closed,
            }
            return Step::Inside;
        };
        let closed = match child {
            JingleChild::Skip(d) => d.follow(&ev),
            JingleChild::Content(r) => r.event(ev),
            JingleChild::Json(r) | JingleChild::IceState(r) => r.event(ev),
            JingleChild::Reason(r) => r.event(ev),
        };
        if closed == Step::Closed {
            match self.child.take() {
                Some(JingleChild::Content(r)) => self.contents.push(r.finish()),
                Some(JingleChild::Json(r)) => self.json_sources = Some(r.finish()),
                Some(JingleChild::IceState(r)) => self.ice_state = Some(r.finish().trim().to_string()),
                Some(JingleChild::Reason(r)) => self.reason = Some((r.cond.unwrap_or_default(), r.text)),
                _ => {}
            }
        }
        Step::Inside
    }

    /// The request read, or why it is malformed (`Missing 'action'`, `Missing 'sid'`, a
    /// transport over [`MAX_TRANSPORT_BYTES`], in that order).
    pub fn finish(mut self) -> Result<JingleRequest, JingleError> {
        use crate::xmpp::collect::take_attr;
        let action = take_attr(&mut self.attrs, "action").ok_or_else(|| JingleError("Missing 'action'".into()))?;
        let sid = take_attr(&mut self.attrs, "sid").ok_or_else(|| JingleError("Missing 'sid'".into()))?;
        if self.contents.iter().any(|c| c.largest_transport > MAX_TRANSPORT_BYTES) {
            return Err(JingleError(format!("transport too large (more than {MAX_TRANSPORT_BYTES} bytes)")));
        }
        Ok(JingleRequest {
            action: JingleAction::parse(&action),
            sid,
            initiator: take_attr(&mut self.attrs, "initiator"),
            responder: take_attr(&mut self.attrs, "responder"),
            contents: self.contents,
            json_sources: self.json_sources,
            bridge_session: self.bridge_session,
            reason: self.reason,
            ice_state: self.ice_state,
        })
    }
}

/// The first ICE-UDP `<transport>` among `contents`, with `<rtcp-mux/>` added if it was
/// missing (§1.5, §3.3).
pub fn first_ice_transport(contents: &[JingleContent]) -> Option<IceTransport> {
    contents.iter().find_map(|c| c.transport.clone()).map(IceTransport::with_rtcp_mux)
}

/// `<initial-last-n xmlns='jitsi:colibri2' value>` from a content (the video one in
/// practice); `None` if absent or not a number.
pub fn initial_last_n(contents: &[JingleContent]) -> Option<u32> {
    let is_video = |c: &&JingleContent| c.name.as_deref() == Some("video");
    let ordered = contents.iter().filter(is_video).chain(contents.iter().filter(|c| !is_video(c)));
    ordered
        .into_iter()
        .find_map(|c| c.initial_last_n.as_ref())
        .and_then(|v| v.as_deref())
        .and_then(|v| v.trim().parse::<u32>().ok())
}

/// An `<iq type='set'>` whose `<jingle>` was written ahead.
fn raw_iq_set(from: &str, to: &str, id: &str, jingle: RawXml) -> RawElement {
    RawElement::new("iq", ns::CLIENT, jingle).attr("type", "set").attr("id", id).attr("from", from).attr("to", to)
}

fn iq_set(from: &str, to: &str, id: &str, jingle: Element) -> Element {
    Element::new("iq", ns::CLIENT)
        .attr("type", "set")
        .attr("id", id)
        .attr("from", from)
        .attr("to", to)
        .child(jingle)
}

/// The offer for one participant, assembled after the colibri2 allocation (§2.1).
#[derive(Clone, Debug)]
pub struct Offer<'a> {
    /// The contents for the receiver's features ([`super::codecs::offer_media`]: trees
    /// and written ahead; no transport, no sources).
    pub contents: Arc<OfferMedia>,
    /// The ICE `<transport>` from the bridge's colibri2 answer.
    pub bridge_transport: Element,
    /// The bridge's SCTP port (the data content's sctpmap number).
    pub sctp_port: Option<u16>,
    /// The sources to announce, filtered for this receiver as they are written.
    pub sources: SourceView<'a>,
    /// The receiver takes JSON-encoded sources.
    pub json: bool,
    /// Start muted (audio, video).
    pub start_muted: (bool, bool),
    /// The Colibri2 session id (`<bridge-session id>`).
    pub bridge_session_id: String,
    /// The bridge's region (`<bridge-session region>`).
    pub region: Option<String>,
}

/// The sources of a stanza built as a tree ([`tree`]): a filtered copy of the sources.
struct Put(ConferenceSources);

impl Put {
    /// The description children for `media`: its sources, then its groups.
    fn media(&self, media: MediaType) -> Vec<Node> {
        self.0.jingle_elements(media).into_iter().map(Node::Element).collect()
    }

    fn has_media(&self, media: MediaType) -> bool {
        self.0.has_media(media)
    }

    /// `<json-message xmlns='http://jitsi.org/jitmeet'>` with the JSON encoding.
    fn json_message(&self) -> Element {
        Element::new("json-message", ns::JITMEET).text(self.0.to_json())
    }
}

impl Offer<'_> {
    /// The contents with transport, rtcp-mux and (non-JSON) sources, as trees. Non-JSON
    /// receivers get only the audio and video contents (the §2.4 quirk).
    fn contents_with(&self, put: &Put) -> Vec<Element> {
        let mut out = Vec::new();
        for c in &self.contents.trees {
            let name = c.get_attr("name").unwrap_or("").to_string();
            if !self.json && name != "audio" && name != "video" {
                continue;
            }
            let mut c = c.clone();
            if let Some(d) = c.get_child_mut("description", ns::RTP) {
                if d.get_child("rtcp-mux", ns::RTP).is_none() {
                    d.children.push(Node::Element(Element::new("rtcp-mux", ns::RTP)));
                }
                if !self.json {
                    let media = d.get_attr("media").and_then(MediaType::parse).or_else(|| MediaType::parse(&name));
                    if let Some(m) = media {
                        d.children.extend(put.media(m));
                    }
                }
            }
            c.remove_children("transport", ns::ICE_UDP);
            let mut t = self.bridge_transport.clone();
            if name == "data" {
                if let Some(port) = self.sctp_port {
                    let map = Element::new("sctpmap", ns::DTLS_SCTP)
                        .attr("number", port.to_string())
                        .attr("protocol", "webrtc-datachannel")
                        .attr("streams", "1024");
                    let pos = t
                        .children
                        .iter()
                        .position(|n| matches!(n, Node::Element(e) if e.name == "candidate"))
                        .unwrap_or(t.children.len());
                    t.children.insert(pos, Node::Element(map));
                }
            }
            c.children.push(Node::Element(t));
            out.push(c);
        }
        out
    }

    /// The `<jingle>` element for `action` (session-initiate or transport-replace).
    fn jingle(&self, action: &str, initiator: &str, sid: &str, put: &Put) -> Element {
        let contents = self.contents_with(put);
        let group = Element::new("group", ns::GROUPING).attr("semantics", "BUNDLE").children(
            contents
                .iter()
                .filter_map(|c| c.get_attr("name"))
                .map(|n| Element::new("content", ns::GROUPING).attr("name", n)),
        );
        let mut j = Element::new("jingle", ns::JINGLE)
            .attr("action", action)
            .attr("initiator", initiator)
            .attr("sid", sid)
            .children(contents)
            .child(group);
        let (audio, video) = self.start_muted;
        if audio || video {
            j = j.child(
                Element::new("startmuted", ns::START_MUTED)
                    .attr("audio", audio.to_string())
                    .attr("video", video.to_string()),
            );
        }
        j = j.child(
            Element::new("bridge-session", ns::FOCUS)
                .attr("id", self.bridge_session_id.as_str())
                .attr_opt("region", self.region.as_deref()),
        );
        if self.json {
            j = j.child(put.json_message());
        }
        j
    }

    /// The `<jingle>` for `action`, written straight from the parts written ahead: what
    /// [`Self::jingle`] builds as a tree, element for element.
    fn write_jingle(&self, action: &'static str, initiator: &str, sid: &str) -> RawXml {
        let mut w = RawWriter::with_capacity(1024);
        w.start("jingle", ns::JINGLE);
        w.attr("action", action);
        w.attr("initiator", initiator);
        w.attr("sid", sid);
        let mut transport = None;
        for c in self.contents.contents.iter().filter(|c| self.json || c.name == "audio" || c.name == "video") {
            w.resume(&c.open);
            if c.described {
                if let (false, Some(m)) = (self.json, c.source_media) {
                    if let Some(sources) = self.sources.jingle(m) {
                        w.share(&sources);
                    }
                }
                w.end();
            }
            match (c.name == "data", self.sctp_port) {
                (true, Some(port)) => write_transport_with_sctpmap(&mut w, &self.bridge_transport, port),
                _ => {
                    // Written once, shared by every content.
                    let t = transport.get_or_insert_with(|| {
                        let mut t = RawWriter::new();
                        t.element(&self.bridge_transport);
                        t.finish()
                    });
                    w.share(t);
                }
            }
            w.end();
        }
        w.share(self.contents.group(self.json));
        let (audio, video) = self.start_muted;
        if audio || video {
            w.start("startmuted", ns::START_MUTED);
            w.attr("audio", if audio { "true" } else { "false" });
            w.attr("video", if video { "true" } else { "false" });
            w.end();
        }
        w.start("bridge-session", ns::FOCUS);
        w.attr("id", &self.bridge_session_id);
        if let Some(r) = &self.region {
            w.attr("region", r);
        }
        w.end();
        if self.json {
            w.start("json-message", ns::JITMEET);
            w.share(&self.sources.json());
            w.end();
        }
        w.finish()
    }

    /// The session-initiate IQ (§2.2). `from` is jicofo's full JID (also the
    /// `initiator`), `to` the participant's occupant JID.
    pub fn session_initiate(&self, from: &str, to: &str, sid: &str, id: &str) -> RawElement {
        raw_iq_set(from, to, id, self.write_jingle("session-initiate", from, sid))
    }

    /// The transport-replace IQ (§4.2, ReplaceTransport): the same offer.
    pub fn transport_replace(&self, from: &str, to: &str, sid: &str, id: &str) -> RawElement {
        raw_iq_set(from, to, id, self.write_jingle("transport-replace", from, sid))
    }
}

/// The bridge's transport with `<sctpmap>` for `port` before its first candidate (the
/// data content), as [`Offer::jingle`] inserts it into a copy of the tree.
fn write_transport_with_sctpmap(w: &mut RawWriter, t: &Element, port: u16) {
    let sctpmap = |w: &mut RawWriter| {
        w.start("sctpmap", ns::DTLS_SCTP);
        w.attr("number", &port.to_string());
        w.attr("protocol", "webrtc-datachannel");
        w.attr("streams", "1024");
        w.end();
    };
    w.start_element(t);
    let at = t.children.iter().position(|n| matches!(n, Node::Element(e) if e.name == "candidate")).unwrap_or(t.children.len());
    for (i, n) in t.children.iter().enumerate() {
        if i == at {
            sctpmap(w);
        }
        match n {
            Node::Element(e) => w.element(e),
            Node::Text(x) => w.text(x),
            Node::Raw(r) => w.share(r),
        }
    }
    if at == t.children.len() {
        sctpmap(w);
    }
    w.end();
}

/// source-add / source-remove written straight from the owners' cached encodings (what
/// [`source_iq`] builds as a tree).
fn write_source_iq(action: &'static str, from: &str, to: &str, sid: &str, id: &str, view: SourceView, json: bool) -> RawElement {
    let mut w = RawWriter::with_capacity(256);
    w.start("jingle", ns::JINGLE);
    w.attr("action", action);
    w.attr("sid", sid);
    if json {
        w.start("json-message", ns::JITMEET);
        w.share(&view.json());
        w.end();
    } else {
        for m in [MediaType::Audio, MediaType::Video] {
            let Some(sources) = view.jingle(m) else { continue };
            w.start("content", ns::JINGLE);
            w.attr("name", m.as_str());
            w.start("description", ns::RTP);
            w.attr("media", m.as_str());
            w.share(&sources);
            w.end();
            w.end();
        }
    }
    raw_iq_set(from, to, id, w.finish())
}

/// source-add / source-remove body: `action` and `sid` only; JSON receivers get a
/// json-message, others one content per media type with a description (§3.7).
fn source_iq(action: &str, from: &str, to: &str, sid: &str, id: &str, put: &Put, json: bool) -> Element {
    let mut j = Element::new("jingle", ns::JINGLE).attr("action", action).attr("sid", sid);
    if json {
        j = j.child(put.json_message());
    } else {
        for m in [MediaType::Audio, MediaType::Video] {
            if !put.has_media(m) {
                continue;
            }
            let mut d = Element::new("description", ns::RTP).attr("media", m.as_str());
            d.children.extend(put.media(m));
            j = j.child(Element::new("content", ns::JINGLE).attr("name", m.as_str()).child(d));
        }
    }
    iq_set(from, to, id, j)
}

/// A source-add IQ to a receiver: `sources` as the receiver is to get them (a whole map
/// converts: every owner, audio and video, simulcast stripped).
pub fn source_add<'a>(from: &str, to: &str, sid: &str, id: &str, sources: impl Into<SourceView<'a>>, json: bool) -> RawElement {
    write_source_iq("source-add", from, to, sid, id, sources.into(), json)
}

/// A source-remove IQ to a receiver (see [`source_add`]).
pub fn source_remove<'a>(from: &str, to: &str, sid: &str, id: &str, sources: impl Into<SourceView<'a>>, json: bool) -> RawElement {
    write_source_iq("source-remove", from, to, sid, id, sources.into(), json)
}

/// The same stanzas built as element trees from a filtered copy of the sources, as the
/// focus built them before the per-owner cache: the reference the equivalence tests
/// compare the cached stanzas with, and the "tree" rows of `benches/xml.rs`. The focus
/// itself does not use these.
pub mod tree {
    use super::*;

    /// [`Offer::session_initiate`], built as a tree.
    pub fn session_initiate(offer: &Offer, from: &str, to: &str, sid: &str, id: &str) -> Element {
        iq_set(from, to, id, offer.jingle("session-initiate", from, sid, &Put(offer.sources.to_sources())))
    }

    /// [`Offer::transport_replace`], built as a tree.
    pub fn transport_replace(offer: &Offer, from: &str, to: &str, sid: &str, id: &str) -> Element {
        iq_set(from, to, id, offer.jingle("transport-replace", from, sid, &Put(offer.sources.to_sources())))
    }

    /// [`super::source_add`], built as a tree.
    pub fn source_add(from: &str, to: &str, sid: &str, id: &str, sources: SourceView, json: bool) -> Element {
        source_iq("source-add", from, to, sid, id, &Put(sources.to_sources()), json)
    }

    /// [`super::source_remove`], built as a tree.
    pub fn source_remove(from: &str, to: &str, sid: &str, id: &str, sources: SourceView, json: bool) -> Element {
        source_iq("source-remove", from, to, sid, id, &Put(sources.to_sources()), json)
    }
}

/// A transport-info IQ carrying a new bridge transport (in-place ICE restart, §3.6).
pub fn transport_info(from: &str, to: &str, sid: &str, id: &str, content_name: &str, transport: &Element) -> Element {
    let content = Element::new("content", ns::JINGLE)
        .attr("creator", "initiator")
        .attr("name", content_name)
        .child(transport.clone());
    iq_set(from, to, id, Element::new("jingle", ns::JINGLE).attr("action", "transport-info").attr("sid", sid).child(content))
}

/// A session-terminate IQ with `<reason><{reason}/><text>…</text></reason>` (§4.3).
pub fn session_terminate(from: &str, to: &str, sid: &str, id: &str, reason: &str, text: Option<&str>) -> Element {
    let mut r = Element::new("reason", ns::JINGLE).child(Element::new(reason, ns::JINGLE));
    if let Some(t) = text {
        r = r.child(Element::new("text", ns::JINGLE).text(t));
    }
    iq_set(
        from,
        to,
        id,
        Element::new("jingle", ns::JINGLE).attr("action", "session-terminate").attr("sid", sid).child(r),
    )
}
