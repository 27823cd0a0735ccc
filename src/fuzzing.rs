//! Fuzz harnesses (not part of the focus): one function per fuzz target, shared by the
//! coverage-guided targets in `fuzz/` (thin `libfuzzer-sys` wrappers, nightly) and by
//! `tests/fuzz_corpus.rs`, which replays every committed corpus file under stable.
//!
//! Each harness takes arbitrary bytes, drives one sans-IO part of the focus with them
//! and panics only when a property fails: no panic inside the product, and the
//! target's own invariants (the framer's frames do not depend on read boundaries, a
//! parsed stanza serializes and parses back to itself, parsers stay within their
//! bounds, the HTTP parser's answer never changes once final, the pending table and
//! the held presences behave as simple models of them do, a conference fed any
//! sequence of stanzas ends on shutdown, answers each request at most once, never acts
//! on a forged answer, sends only well-formed stanzas and leaves nothing pending, …).
//! [`run`] dispatches by target name; [`TARGETS`] lists them; [`seeds`] gives each
//! target's seed inputs (from `tests/fixtures/captures` and the unit tests' stanzas).
//!
//! Input conventions: XML targets read the bytes as UTF-8 stanza text parsed with a
//! `jabber:client` stream's namespaces in scope (other bytes are rejected early, so
//! the fuzzer learns to stay in text); multi-stanza targets read concatenated stanzas
//! through the framer; the structured targets (framer, negotiation, conference, HTTP)
//! take their parameters from the first bytes (see each function).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::bridge::Bridges;
use crate::messages::{BridgeEvent, Inbox, PendingReply, ReplyTarget};
use crate::xmpp::colibri2::parse_answer;
use crate::xmpp::muc::OccupantPresence;
use crate::xmpp::mute::MuteRequest;
use crate::conference::sim::{occupant_leave, occupant_presence, FakeBridge, Responder};
use crate::conference::{Conference, Env, Params};
use crate::messages::inbox::HeldPresences;
use crate::messages::pending::{answer_is_from, Answer, Destination, IqId, PendingTable};
use crate::xmpp::conference_iq::{check_room_name, parse_room, ConferenceReply, ConferenceRequest, RoomServices};
use crate::ids::ConferenceId;
use crate::jid::Jid;
use crate::xmpp::jingle::stanzas::{first_ice_transport, initial_last_n, source_add, tree, JingleRequest};
use crate::xmpp::jingle::SourceView;
use crate::xmpp::jingle::sources::{ConferenceSources, EndpointSources, MediaType};
use crate::net::ConnId;
use crate::xml::framer::opening_tag;
use crate::xml::write::is_xml_char;
use crate::xml::{parse_fragment, parse_stanza, Element, Frame, Framer, FramerError, Node, StreamHeader, MAX_DEPTH};
use crate::xmpp::ns;
use crate::xmpp::caps::{verify, Caps, CapsCache, DiscoInfo, Verdict};
use crate::xmpp::stanza::{iq_error, parse_error, parse_stream_error, refuse_unread, ErrorCondition, ErrorReply};

/// Every fuzz target, by name (the `fuzz/fuzz_targets/<name>.rs` files and the
/// `fuzz/corpus/<name>/` directories).
pub const TARGETS: &[&str] = &[
    "framer",
    "stanza",
    "jid",
    "conference_request",
    "muc_presence",
    "jingle",
    "colibri2_sources",
    "json_sources",
    "colibri2_answer",
    "caps",
    "mute",
    "gateways",
    "brewery",
    "pending",
    "held_presences",
    "stanza_errors",
    "negotiation",
    "http",
    "conference",
    "components",
    "incoming",
];

/// Run target `name` on `data`; false for an unknown name.
pub fn run(name: &str, data: &[u8]) -> bool {
    match name {
        "framer" => framer(data),
        "stanza" => stanza(data),
        "jid" => jid(data),
        "conference_request" => conference_request(data),
        "muc_presence" => muc_presence(data),
        "jingle" => jingle(data),
        "colibri2_sources" => colibri2_sources(data),
        "json_sources" => json_sources(data),
        "colibri2_answer" => colibri2_answer(data),
        "caps" => caps(data),
        "mute" => mute(data),
        "gateways" => gateways(data),
        "brewery" => brewery(data),
        "pending" => pending(data),
        "held_presences" => held_presences(data),
        "stanza_errors" => stanza_errors(data),
        "negotiation" => negotiation(data),
        "http" => http(data),
        "conference" => conference(data),
        "components" => components(data),
        "incoming" => incoming(data),
        _ => return false,
    }
    true
}

// ---------------------------------------------------------------------------------
// Input helpers.

/// A cursor over the fuzzer's bytes; reads past the end give zeros / empty slices.
struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    fn new(data: &'a [u8]) -> Input<'a> {
        Input { data, pos: 0 }
    }

    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        let end = start.saturating_add(n).min(self.data.len());
        self.pos = end;
        &self.data[start..end]
    }

    fn rest(&mut self) -> &'a [u8] {
        let n = self.data.len().saturating_sub(self.pos);
        self.take(n)
    }
}

/// The header of a client stream (`jabber:client`, `stream` prefix).
pub fn client_header() -> StreamHeader {
    StreamHeader {
        attrs: vec![("id".into(), "fuzz".into()), ("version".into(), "1.0".into())],
        default_ns: ns::CLIENT.into(),
        prefixes: vec![("stream".into(), ns::STREAM.into())],
    }
}

/// The bytes as one stanza of a client stream, if they are one.
fn element(data: &[u8]) -> Option<Element> {
    let text = std::str::from_utf8(data).ok()?;
    parse_stanza(text, &client_header()).ok()
}

/// The bytes as a sequence of stanzas of a client stream (at most `max`).
fn elements(data: &[u8], max: usize) -> Vec<Element> {
    let mut f = Framer::new(64 * 1024);
    let header = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='f' version='1.0'>";
    f.feed(header.as_bytes());
    f.feed(data);
    let mut out = Vec::new();
    while out.len() < max {
        match f.next_frame() {
            Ok(Some(Frame::Stanza(t))) => {
                if let Ok(el) = parse_stanza(&t, &client_header()) {
                    out.push(el);
                }
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    out
}

/// The depth of an element tree (the element itself is level 1).
fn depth(el: &Element) -> usize {
    1 + el.elements().map(depth).max().unwrap_or(0)
}

/// `el` with the characters XML cannot carry replaced as the serializer does.
fn as_written(el: &Element) -> Element {
    let fix = |s: &str| s.chars().map(|c| if is_xml_char(c) { c } else { char::REPLACEMENT_CHARACTER }).collect::<String>();
    let mut out = el.clone();
    for (_, v) in &mut out.attrs {
        *v = fix(v);
    }
    out.children = el
        .children
        .iter()
        .map(|c| match c {
            Node::Element(e) => Node::Element(as_written(e)),
            Node::Text(t) => Node::Text(fix(t)),
            Node::Raw(r) => Node::Raw(r.clone()),
        })
        .collect();
    out
}

/// An element serializes to well-formed text that parses back to the same element
/// (characters XML cannot carry written as U+FFFD).
fn assert_round_trip(el: &Element, what: &str) {
    let text = el.to_xml();
    match parse_fragment(&text) {
        Ok(back) => assert!(back == as_written(el), "{what}: serialized form parses differently:\n{text}\n{el:?}\n{back:?}"),
        Err(e) => panic!("{what}: serialized form does not parse ({e}):\n{text}"),
    }
}

// ---------------------------------------------------------------------------------
// The XML layer.

/// Feed `chunks` to `f`, draining frames after each; stops at the first error.
/// Checks that no more than the cap is held between reads.
fn frames(f: &mut Framer, max: usize, chunks: &[&[u8]]) -> (Vec<Frame>, Option<FramerError>) {
    let mut out = Vec::new();
    for c in chunks {
        f.feed(c);
        loop {
            match f.next_frame() {
                Ok(Some(fr)) => out.push(fr),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
        // Between frames the framer holds at most the cap (plus an incomplete character).
        assert!(f.buffered() <= max + 4, "framer holds {} bytes with a cap of {}", f.buffered(), max);
    }
    (out, None)
}

/// The framer: any bytes, any read boundaries, default or small limits.
///
/// Byte 0: limits (bit 0: a small cap `16 + 4·byte1`, bit 1: a small depth
/// `1 + byte2 % 8`); byte 3: number of split points (`% 16`), then that many u16 split
/// offsets; the rest is the stream. Fed whole and fed in pieces, the frames and the
/// error must be the same; every stanza frame is within the cap, every skipped one
/// over a limit; stanzas are handled as the connection does (parsed, or refused by
/// their opening tag).
pub fn framer(data: &[u8]) {
    let mut inp = Input::new(data);
    let (mode, b1, b2) = (inp.byte(), inp.byte(), inp.byte());
    let cap = if mode & 1 != 0 { 16 + 4 * b1 as usize } else { crate::xml::DEFAULT_MAX_STANZA };
    let depth_limit = if mode & 2 != 0 { 1 + (b2 % 8) as usize } else { MAX_DEPTH };
    let n = (inp.byte() % 16) as usize;
    let mut splits: Vec<usize> = (0..n).map(|_| inp.u16() as usize).collect();
    let stream = inp.rest();
    splits.retain(|&s| s <= stream.len());
    splits.sort_unstable();
    splits.dedup();
    let mut chunks: Vec<&[u8]> = Vec::new();
    let mut last = 0;
    for s in splits {
        chunks.push(&stream[last..s]);
        last = s;
    }
    chunks.push(&stream[last..]);
    let whole = frames(&mut Framer::with_limits(cap, depth_limit), cap, &[stream]);
    let split = frames(&mut Framer::with_limits(cap, depth_limit), cap, &chunks);
    assert_eq!(whole, split, "frames depend on read boundaries");
    // One byte at a time, for short streams.
    if stream.len() <= 512 {
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        let single = frames(&mut Framer::with_limits(cap, depth_limit), cap, &bytes);
        assert_eq!(whole, single, "frames differ when fed byte by byte");
    }
    let mut header: Option<StreamHeader> = None;
    // The stanza target fuzzes parsing; here the first few stanzas go the connection's
    // way (parse, or refuse by the opening tag), the rest only get the frame checks.
    let mut parse_budget = 3;
    for fr in &whole.0 {
        match fr {
            Frame::StreamHeader(h) => header = Some(h.clone()),
            Frame::Stanza(text) => {
                assert!(text.len() <= cap, "a stanza frame of {} bytes with a cap of {}", text.len(), cap);
                if parse_budget == 0 {
                    continue;
                }
                parse_budget -= 1;
                let h = header.clone().unwrap_or_default();
                match parse_stanza(text, &h) {
                    Ok(el) => assert!(depth(&el) <= depth_limit.min(MAX_DEPTH), "a stanza deeper than the limit"),
                    Err(_) => {
                        let (name, mut attrs) = opening_tag(text);
                        attrs.retain(|(k, _)| matches!(k.as_str(), "from" | "to" | "id" | "type"));
                        if let Some(r) = refuse_unread(&name, &attrs, ns::CLIENT, ErrorCondition::BadRequest, "malformed") {
                            assert_round_trip(&r, "refusal of an unparsable stanza");
                        }
                    }
                }
            }
            Frame::Skipped(s) => {
                match s.reason {
                    crate::xml::framer::SkipReason::TooLarge { max } => assert!(s.len > max && max == cap),
                    crate::xml::framer::SkipReason::TooDeep { max } => assert_eq!(max, depth_limit),
                }
                if let Some(r) = refuse_unread(&s.name, &s.attrs, ns::CLIENT, ErrorCondition::PolicyViolation, "skipped") {
                    assert_round_trip(&r, "refusal of a skipped stanza");
                }
            }
            Frame::StreamEnd => {}
        }
    }
}

/// Stanza parsing. Byte 0 picks the parser: `parse_stanza` in a client stream, in a
/// component stream, or `parse_fragment`; the rest is the text. A parsed element is
/// within the depth limit and serializes to text that parses back to itself.
pub fn stanza(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let parsed = match mode % 3 {
        0 => parse_stanza(text, &client_header()),
        1 => {
            let mut h = client_header();
            h.default_ns = ns::COMPONENT.into();
            parse_stanza(text, &h)
        }
        _ => parse_fragment(text),
    };
    if let Ok(el) = parsed {
        assert!(depth(&el) <= MAX_DEPTH, "parsed a stanza deeper than MAX_DEPTH");
        assert_round_trip(&el, "stanza");
        let _ = el.to_xml_in(ns::CLIENT);
        let _ = el.text_content();
    }
}

/// JID parsing: a parsed JID prints as text that parses back to itself, and its bare
/// and full forms are consistent.
pub fn jid(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(j) = Jid::parse(text) {
        let printed = j.to_string();
        let back = Jid::parse(&printed).unwrap_or_else(|e| panic!("{printed:?} (from {text:?}) does not parse: {e}"));
        assert_eq!(back, j, "JID round trip");
        assert!(j.bare().is_bare());
        assert_eq!(j.bare().domain(), j.domain());
        if let Some(r) = j.resource() {
            assert_eq!(j.bare().with_resource(r), j);
        }
    }
    if let Ok(room) = parse_room(text) {
        if RoomServices::new("conference.meet.test").admit(&room).is_ok() {
            assert!(check_room_name(room.local().unwrap_or_default()).is_ok());
            assert_eq!(room.domain(), "conference.meet.test");
        }
    }
}

// ---------------------------------------------------------------------------------
// Typed parsers.

/// The conference request: `<conference>` anywhere in the stanza (or the stanza itself).
pub fn conference_request(data: &[u8]) {
    let Some(el) = element(data) else { return };
    let conf = el.get_child("conference", ns::FOCUS).unwrap_or(&el);
    if let Ok(r) = ConferenceRequest::parse(conf) {
        assert!(r.room.is_bare() && r.room.local().is_some(), "a room that is not name@service");
        let services = RoomServices::new("conference.meet.test").with("breakout.meet.test").except(&Jid::parse("jvbbrewery@conference.meet.test").expect("valid"));
        if services.admit(&r.room).is_ok() {
            // An admitted room is on our services, with a name that addresses well.
            let name = r.room.local().unwrap_or_default();
            assert!(check_room_name(name).is_ok());
            assert!(["conference.meet.test", "breakout.meet.test"].contains(&r.room.domain()));
            assert!(!name.contains(['@', '/', '<', '&', '\'', '"']), "room name {name:?} admitted");
            let occupant = r.room.with_resource("focus");
            assert_eq!(Jid::parse(&occupant.to_string()).ok(), Some(occupant.clone()), "the focus's occupant JID does not parse back");
            assert_eq!(occupant.bare(), r.room);
        }
        for (k, _) in r.properties.clone() {
            let _ = r.int_property(&k);
        }
        let reply = ConferenceReply { room: r.room.to_string(), ..Default::default() };
        assert_round_trip(&reply.to_element(), "conference reply");
    }
}

/// MUC occupant presence.
pub fn muc_presence(data: &[u8]) {
    let Some(el) = element(data) else { return };
    if let Some(p) = OccupantPresence::parse(&el) {
        assert!(p.features.len() <= crate::xmpp::caps::MAX_FEATURES);
        assert!(p.features.iter().all(|f| f.len() <= crate::xmpp::caps::MAX_FEATURE_LEN));
        let _ = p.is_self();
    }
}

/// Jingle requests and their sources: parsed, validated, added to a conference that
/// already has sources, removed again; a valid set survives the JSON encoding, and its
/// cached encodings write the same source-add as the element trees.
pub fn jingle(data: &[u8]) {
    let Some(el) = element(data) else { return };
    let req = match JingleRequest::parse(&el) {
        Ok(r) => r,
        Err(e) => {
            let _ = e.condition();
            return;
        }
    };
    let _ = first_ice_transport(&req.contents);
    let _ = initial_last_n(&req.contents);
    let Ok(set) = req.sources() else { return };
    assert!(set.sources.len() <= 2 * crate::xmpp::jingle::sources::MAX_PARSED_SOURCES);
    let mut conf = ConferenceSources::new();
    let mut other = EndpointSources::new();
    other.sources.push(crate::xmpp::jingle::sources::Source::new(1, MediaType::Audio).with_name("other-a0"));
    conf.insert("other", other);
    if let Ok(added) = conf.try_add("p", set.clone()) {
        // What was accepted is valid, and travels through JSON and Jingle unchanged.
        let json = conf.to_json();
        let back = ConferenceSources::from_json(&json).unwrap_or_else(|e| panic!("our own JSON does not parse: {e}\n{json}"));
        assert_eq!(back.get("p").map(json_view), conf.get("p").map(json_view), "sources change through JSON");
        for m in [MediaType::Audio, MediaType::Video] {
            for e in conf.jingle_elements(m) {
                assert_round_trip(&e, "jingle source element");
            }
        }
        // The cached encodings write what the element trees write, and it parses.
        for (audio, video) in [(true, true), (true, false), (false, true)] {
            let view = SourceView::new(&conf).except("other").media(audio, video);
            for json in [false, true] {
                let cached = source_add("f@d/r", "r@m.d/p", "s", "i", view, json);
                let tree = tree::source_add("f@d/r", "r@m.d/p", "s", "i", view, json);
                assert_eq!(cached.to_xml(), tree.to_xml(), "cached and tree source-add differ");
                assert!(cached.reparsed().is_ok(), "cached source-add does not parse: {}", cached.to_xml());
            }
        }
        let _ = conf.try_remove("p", &added);
        let _ = conf.try_remove("other", &added);
    }
    let _ = set.validate();
    let _ = set.strip_simulcast();
}

/// What the JSON encoding keeps of a set: sources in (media, document) order, with
/// only `desktop` marked (receivers assume camera for other video sources).
fn json_view(set: &EndpointSources) -> EndpointSources {
    let mut out = set.clone();
    out.sources.sort_by_key(|s| s.media != MediaType::Video);
    out.groups.sort_by_key(|g| g.media != MediaType::Video);
    for s in &mut out.sources {
        s.video_type = s.video_type.as_deref().filter(|v| v.eq_ignore_ascii_case("desktop")).map(|_| "desktop".to_string());
    }
    out
}

/// Every stanza as the focus classifies it where it parses it (`xmpp::incoming`), a
/// differential target: on any text, the typed fast path (no tree for the hot kinds) and
/// the tree path (parse into an `Element`, classify the tree) give the same verdict —
/// the same parse error, or the same typed value — on a client and a component stream,
/// with the focus's node cap and with a small one (so the cap is hit often). Then what
/// the handlers do with a typed value does not panic (the reply envelope, the Colibri2
/// outcome, the sources and the transport of a Jingle request, the occupant presence,
/// writing it back), and a held presence stays slim.
pub fn incoming(data: &[u8]) {
    use crate::xmpp::incoming::{colibri2_outcome, parse as parse_incoming, Incoming};
    let Ok(text) = std::str::from_utf8(data) else { return };
    let component = StreamHeader { default_ns: ns::COMPONENT.into(), ..client_header() };
    for header in [client_header(), component] {
        for max_nodes in [crate::xml::MAX_NODES, 24] {
            let fast = parse_incoming(text, &header, max_nodes);
            let tree = crate::xml::parse_stanza_with(text, &header, max_nodes);
            let st = match (fast, tree) {
                (Ok(f), Ok(t)) => {
                    let from_tree = Incoming::from_element(t);
                    assert_eq!(f, from_tree, "the fast path and the tree path disagree");
                    f
                }
                (Err(a), Err(b)) => {
                    assert_eq!(a, b, "the two paths refuse with different errors");
                    continue;
                }
                (a, b) => panic!("verdicts differ: fast {:?}, tree {:?}", a.map(|_| "ok"), b.map(|_| "ok")),
            };
            let _ = st.weight();
            if let Some(env) = st.envelope() {
                let _ = iq_error(env, ErrorCondition::BadRequest, Some("x")).to_xml();
            }
            let _ = st.stanza_error().map(|e| e.to_string());
            for allocation in [true, false] {
                let _ = colibri2_outcome(Some(&st), allocation);
            }
            match &st {
                Incoming::Jingle(j) => {
                    if let Ok(r) = &j.request {
                        let _ = r.sources();
                        if let Some(t) = first_ice_transport(&r.contents) {
                            assert!(t.written_len() <= crate::xmpp::jingle::stanzas::MAX_TRANSPORT_BYTES + 32, "an oversized transport got through");
                        }
                        let _ = initial_last_n(&r.contents);
                    }
                }
                Incoming::Presence(p) => {
                    let slim = p.slim();
                    assert!(slim.weight() < 16 << 10, "a held presence of {} bytes", slim.weight());
                    if let (Some(a), Some(b)) = (&p.occupant, &slim.occupant) {
                        assert_eq!((&a.nick, a.available, a.affiliation, a.role), (&b.nick, b.available, b.affiliation, b.role));
                    }
                }
                _ => {}
            }
            let _ = st.into_element().to_xml();
        }
    }
}

/// Colibri2 `<sources>` (the bridge's feedback and endpoints' sources).
pub fn colibri2_sources(data: &[u8]) {
    let Some(el) = element(data) else { return };
    let s = el.get_child("sources", ns::COLIBRI2).unwrap_or(&el);
    if let Ok(set) = EndpointSources::from_colibri2(s) {
        assert_round_trip(&set.to_colibri2("ep"), "colibri2 endpoint sources");
    }
    let _ = EndpointSources::bridge_feedback(s);
}

/// JSON sources as participants send them: a set that parses re-encodes to the same set.
pub fn json_sources(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(c) = ConferenceSources::from_json(text) {
        let json = c.to_json();
        let back = ConferenceSources::from_json(&json).unwrap_or_else(|e| panic!("our own JSON does not parse: {e}\n{json}"));
        assert_eq!(back.to_json(), json, "JSON sources change through a round trip");
    }
}

/// Colibri2 answers (allocation and update tables).
pub fn colibri2_answer(data: &[u8]) {
    let Some(el) = element(data) else { return };
    for allocation in [true, false] {
        if let Ok(a) = parse_answer(Some(&el), allocation) {
            for ep in &a.endpoints {
                let _ = a.endpoint(&ep.id);
            }
            if let Some(s) = &a.sources {
                let _ = s.bridge_feedback();
            }
        } else if let Err(e) = parse_answer(Some(&el), allocation) {
            let _ = e.to_string();
        }
    }
}

/// Disco answers and caps: parsed within bounds; an answer whose hash is advertised
/// verifies; the cache stays within its entry and byte bounds.
pub fn caps(data: &[u8]) {
    let els = elements(data, 16);
    let mut cache = CapsCache::with_bounds(4, 4096);
    let now = Instant::now();
    for el in &els {
        let advertised = Caps::from_presence(el);
        let Some(q) = el.get_child("query", ns::DISCO_INFO).or_else(|| el.is("query", ns::DISCO_INFO).then_some(el)) else {
            if let Some(c) = &advertised {
                let _ = cache.get(c);
            }
            continue;
        };
        let info = DiscoInfo::parse(q);
        assert!(info.features.len() <= crate::xmpp::caps::MAX_FEATURES);
        let _ = info.verification_string();
        let ver = info.sha1_ver();
        let honest = Caps { node: "n".into(), ver: ver.clone(), hash: Some("sha-1".into()) };
        let v = cache.learn(&honest, &info, "fuzz", now);
        if !info.truncated && !info.ill_formed {
            assert_eq!(v, Verdict::Verified, "an answer does not verify against its own hash");
            if cache.contains(&ver) {
                assert_eq!(cache.get(&honest), Some(info.features.clone()));
            }
        } else {
            assert_ne!(v, Verdict::Verified, "a truncated or ill-formed answer verified");
        }
        if let Some(c) = &advertised {
            let _ = verify(c, &info);
            let _ = cache.learn(c, &info, "fuzz", now);
        }
        assert!(cache.len() <= 4 && cache.bytes() <= 4096, "caps cache over its bounds");
    }
}

/// Mute requests.
pub fn mute(data: &[u8]) {
    let Some(el) = element(data) else { return };
    if let Some(Ok(m)) = MuteRequest::parse(&el) {
        assert!(m.from_nick.as_deref().is_none_or(|n| !n.is_empty()) || el.get_attr("from").is_some());
        assert!([ns::AUDIO_MUTE, ns::VIDEO_MUTE, ns::DESKTOP_MUTE].contains(&m.ns.as_str()));
    }
}

/// The Jitsi component messages (moderation.md §0, §1, §4): each stanza's
/// `<json-message>` read as AV moderation and as room metadata, and as a disco#info
/// answer listing components. What parses writes back to JSON that parses to the same
/// value and stays within its bounds; the parsed messages are held as a full inbox holds
/// them, which stays within its cap.
pub fn components(data: &[u8]) {
    use crate::messages::inbox::{HeldComponents, HELD_COMPONENT_MESSAGES};
    use crate::messages::ComponentMessage;
    use crate::xmpp::av_moderation::{AvModerationMessage, MAX_WHITELIST};
    use crate::xmpp::components::Components;
    use crate::xmpp::room_metadata::RoomMetadata;
    let mut held = HeldComponents::default();
    for el in elements(data, 32) {
        let c = Components::from_disco(&el);
        for a in [&c.av_moderation, &c.breakout_rooms, &c.room_metadata].into_iter().flatten() {
            assert!(a.is_bare() && a.local().is_none());
        }
        // As the router reads them (`TryFrom<&Element>`), then written back and read again.
        if let Ok(m) = AvModerationMessage::try_from(&el) {
            assert!(m.whitelists.iter().all(|(_, l)| l.len() <= MAX_WHITELIST));
            let again = AvModerationMessage::try_from(&m.to_element("avmoderation.meet.test", "focus@auth.meet.test/focus"));
            assert_eq!(again.as_ref(), Ok(&m), "written AV moderation parses back");
            let _ = held.hold(ComponentMessage::AvModeration(m));
        }
        if let Ok(m) = RoomMetadata::try_from(&el) {
            let again = RoomMetadata::try_from(&m.to_element("metadata.meet.test", "focus@auth.meet.test/focus"));
            assert_eq!(again.as_ref(), Ok(&m), "written metadata parses back");
            let _ = held.hold(ComponentMessage::RoomMetadata(m));
        }
        assert!(held.len() <= HELD_COMPONENT_MESSAGES);
    }
}

/// The Jibri/Jigasi typed parsers (`xmpp::jibri`, `xmpp::rayo`, `xmpp::jigasi`) on any
/// element of a stanza: what parses writes back to an element that parses to the same
/// value, values stay within their bounds; stanzas also go to a Jibri and a Jigasi
/// brewery, whose instances stay within their cap and whose selection picks instances.
pub fn gateways(data: &[u8]) {
    use crate::xmpp::{jibri, jigasi, rayo};
    let start = Instant::now();
    let room = Jid::parse("JibriBrewery@internal.auth.meet.test").expect("room");
    let mut jb = crate::jibri::brewery::JibriBrewery::new(room.clone());
    let mut gb = crate::jigasi::JigasiBrewery::new(Jid::parse("JigasiBrewery@internal.auth.meet.test").expect("room"));
    for (i, el) in elements(data, 32).into_iter().enumerate() {
        let now = start + Duration::from_millis(100 * i as u64);
        let mut todo = vec![&el];
        while let Some(e) = todo.pop() {
            todo.extend(e.elements());
            if let Ok(j) = jibri::JibriIq::try_from(e) {
                assert_eq!(jibri::JibriIq::try_from(&j.to_element()).as_ref(), Ok(&j));
                for v in [&j.stream_id, &j.sip_address, &j.app_data, &j.session_id].into_iter().flatten() {
                    assert!(v.len() <= jibri::MAX_ATTR);
                }
            }
            if let Ok(st) = jibri::JibriStatus::try_from(e) {
                assert_eq!(jibri::JibriStatus::try_from(&st.to_element()), Ok(st));
            }
            if let Ok(d) = rayo::Dial::try_from(e) {
                assert_eq!(rayo::Dial::try_from(&d.to_element()).as_ref(), Ok(&d));
                assert!(d.headers.len() <= rayo::MAX_HEADERS && d.to.len() <= rayo::MAX_VALUE);
            }
            if let Ok(r) = rayo::Ref::try_from(e) {
                assert_eq!(rayo::Ref::try_from(&r.to_element()).as_ref(), Ok(&r));
            }
            if let Ok(st) = jigasi::JigasiStats::try_from(e) {
                assert!(st.region.as_ref().is_none_or(|r| r.len() <= jigasi::MAX_REGION));
            }
        }
        assert!(jigasi::presence_features(&el).len() <= jigasi::MAX_FEATURES);
        if el.name == "presence" {
            jb.on_presence(&el, "focus", now);
            gb.on_presence(&el, "focus");
        }
        assert!(jb.count() <= crate::jibri::brewery::MAX_INSTANCES && gb.count() <= crate::jigasi::MAX_INSTANCES);
        if let Ok(j) = jb.select(&[], now) {
            assert!(jb.contains(&j) && j.bare() == room);
            jb.failed(&j, now);
        }
        let _ = gb.select(&[], i % 2 == 0, &[], None);
    }
}

/// The bridge registry fed brewery presences and health answers, with time passing,
/// selecting bridges and running health checks entered in the pending table as the
/// router does: an answer reaches the registry only from the bridge it was sent to.
pub fn brewery(data: &[u8]) {
    let mut bridges = Bridges::new();
    let mut table = PendingTable::seeded(1);
    let start = Instant::now();
    let mut ids: Vec<String> = Vec::new();
    let own = Jid::parse(FOCUS_FULL).ok();
    for (i, el) in elements(data, 64).into_iter().enumerate() {
        let now = start + Duration::from_secs(3 * i as u64);
        if el.name == "presence" {
            let _ = bridges.on_presence(&el, "focus", now);
        } else if el.name == "iq" {
            // Answer the most recent health check with this IQ's type, sender and payload.
            let mut a = el.clone();
            if let Some(id) = ids.pop() {
                a.set_attr("id", id);
            }
            let from = a.get_attr("from").and_then(|f| Jid::parse(f).ok());
            match table.answer(ConnId(1), a.get_attr("id").unwrap_or_default(), from.as_ref(), own.as_ref()) {
                Answer::Deliver(Destination::Bridges) => {
                    let _ = bridges.on_health_answer(&a, now);
                }
                Answer::Deliver(d) => panic!("a health check answer for {d:?}"),
                Answer::Forged { .. } | Answer::Unknown => {}
            }
        }
        let _ = table.expire(now);
        let (checks, _) = bridges.tick(now, |to| {
            table.insert(Destination::Bridges, ConnId(1), Some(to.clone()), now + crate::bridge::HEALTH_TIMEOUT).ok().map(|id| id.to_string())
        });
        for c in &checks {
            let id = c.get_attr("id").expect("a health check has an id");
            assert!(IqId::parse(id).is_some_and(|x| table.contains(x)), "a health check not in the pending table");
            ids.push(id.to_string());
        }
        assert!(table.outstanding(Destination::Bridges) <= crate::messages::pending::BRIDGES_CAP);
        let exclude: Vec<Jid> = bridges.all().take(1).map(|b| b.jid.clone()).collect();
        if let Some(b) = bridges.select(now, None, Some("r1"), &exclude) {
            assert!(bridges.get(&b).is_some_and(|x| x.is_operational(now)), "selected a bridge that is not operational");
            bridges.endpoint_added(&b, now);
        }
        let _ = bridges.next_deadline();
    }
}

/// The pending table against a model: ids are unique, an answer is delivered exactly
/// when it comes on the request's connection from its addressee (or the server for a
/// request to ourselves), a forged one leaves the entry, caps hold, deadlines expire
/// in order, a destination's removal takes all its entries.
///
/// Ops, one byte each plus arguments: insert (destination, connection, addressee),
/// answer an entry (connection, sender, id kept or mangled), cancel, expire after a
/// time step, remove a destination, answer a made-up id.
pub fn pending(data: &[u8]) {
    let mut inp = Input::new(data);
    let mut table = PendingTable::seeded(u64::from(inp.byte()));
    let start = Instant::now();
    let mut now = start;
    let own = Jid::parse(FOCUS_FULL).expect("valid");
    let jids: Vec<Option<Jid>> = [
        None,
        Some("focus@auth.meet.test"),
        Some("auth.meet.test"),
        Some(BRIDGES[0]),
        Some(BRIDGES[1]),
        Some("fuzz@conference.meet.test/p0"),
        Some("fuzz@conference.meet.test/p1"),
        Some("fuzz@conference.meet.test"),
        Some(FOCUS_FULL),
    ]
    .iter()
    .map(|j| j.map(|j| Jid::parse(j).expect("valid")))
    .collect();
    struct Model {
        dest: Destination,
        conn: ConnId,
        to: Option<Jid>,
        deadline: Instant,
    }
    let mut model: Vec<(IqId, Model)> = Vec::new();
    let dest_of = |b: u8| if b % 5 == 4 { Destination::Bridges } else { Destination::Conference(ConferenceId(u64::from(b % 5))) };
    for _ in 0..2048 {
        if inp.pos >= data.len() {
            break;
        }
        match inp.byte() % 7 {
            0 | 1 => {
                let dest = dest_of(inp.byte());
                let conn = ConnId(usize::from(inp.byte() & 1));
                let to = jids[inp.byte() as usize % jids.len()].clone();
                let deadline = now + Duration::from_millis(u64::from(inp.byte()) * 100);
                let full = model.iter().filter(|(_, m)| m.dest == dest).count() >= dest.cap();
                match table.insert(dest, conn, to.clone(), deadline) {
                    Ok(id) => {
                        assert!(!full, "insert past the cap of {dest:?}");
                        assert!(model.iter().all(|(x, _)| *x != id), "an id given twice");
                        assert_eq!(id.to_string().len(), IqId::LEN);
                        assert_eq!(IqId::parse(&id.to_string()), Some(id));
                        model.push((id, Model { dest, conn, to, deadline }));
                    }
                    Err(_) => assert!(full, "insert refused below the cap"),
                }
            }
            2 => {
                if model.is_empty() {
                    continue;
                }
                let k = inp.byte() as usize % model.len();
                let conn = ConnId(usize::from(inp.byte() & 1));
                let from = jids[inp.byte() as usize % jids.len()].clone();
                let (id, m) = &model[k];
                let text = match inp.byte() % 4 {
                    0 => id.to_string().to_uppercase(),
                    1 => format!(" {id}"),
                    _ => id.to_string(),
                };
                let exact = text == id.to_string();
                let genuine = exact && m.conn == conn && answer_is_from(m.to.as_ref(), from.as_ref(), Some(&own));
                let dest = m.dest;
                match table.answer(conn, &text, from.as_ref(), Some(&own)) {
                    Answer::Deliver(d) => {
                        assert!(genuine && d == dest, "delivered an answer that is not genuine");
                        model.remove(k);
                    }
                    Answer::Forged { dest: d, .. } => assert!(exact && !genuine && d == dest, "a genuine answer taken as forged"),
                    Answer::Unknown => assert!(!exact, "our own id unknown"),
                }
            }
            3 => {
                if model.is_empty() {
                    continue;
                }
                let k = inp.byte() as usize % model.len();
                let (id, _) = model.remove(k);
                assert!(table.cancel(id));
                assert!(!table.cancel(id));
            }
            4 => {
                now += Duration::from_millis(u64::from(inp.byte()) * 50);
                let expired = table.expire(now);
                let mut want: Vec<IqId> = model.iter().filter(|(_, m)| m.deadline <= now).map(|(id, _)| *id).collect();
                let mut got: Vec<IqId> = expired.iter().map(|(id, _)| *id).collect();
                want.sort();
                got.sort();
                assert_eq!(got, want, "expired entries");
                model.retain(|(_, m)| m.deadline > now);
            }
            5 => {
                let dest = dest_of(inp.byte());
                let n = table.remove_destination(dest);
                let before = model.len();
                model.retain(|(_, m)| m.dest != dest);
                assert_eq!(n, before - model.len(), "entries removed with their destination");
            }
            _ => {
                let text = String::from_utf8_lossy(inp.take(16)).into_owned();
                let from = jids[inp.byte() as usize % jids.len()].clone();
                let known = model.iter().any(|(id, _)| id.to_string() == text);
                if !known {
                    assert_eq!(table.answer(ConnId(0), &text, from.as_ref(), Some(&own)), Answer::Unknown);
                }
            }
        }
        assert_eq!(table.len(), model.len(), "table and model disagree");
        assert_eq!(table.next_deadline(), model.iter().map(|(_, m)| m.deadline).min());
        for d in [Destination::Bridges, Destination::Conference(ConferenceId(0)), Destination::Conference(ConferenceId(3))] {
            assert_eq!(table.outstanding(d), model.iter().filter(|(_, m)| m.dest == d).count());
        }
    }
}

/// Presences held for a full inbox, against the promise: per occupant, presences come
/// out in order; with nothing dropped, each occupant's last presence comes out last and
/// a leave held is never lost; the holding stays within its bound.
///
/// Byte 0: the cap (1–8 occupants). Then ops: hold a presence of occupant `b % 8`
/// (a leave when bit 3 is set), or (bit 4) pop one.
pub fn held_presences(data: &[u8]) {
    let mut inp = Input::new(data);
    let cap = 1 + (inp.byte() % 8) as usize;
    let mut held = HeldPresences::new(cap);
    let mut version = 0u32;
    let mut dropped = false;
    let mut sent: HashMap<String, Vec<(u32, bool)>> = HashMap::new();
    let mut got: HashMap<String, Vec<(u32, bool)>> = HashMap::new();
    let take = |p: crate::xmpp::presence::Presence, got: &mut HashMap<String, Vec<(u32, bool)>>| {
        let from = p.get_attr("from").unwrap_or_default().to_string();
        let v: u32 = p.get_attr("id").and_then(|v| v.parse().ok()).expect("our version");
        let list = got.entry(from).or_default();
        assert!(list.last().is_none_or(|(last, _)| *last < v), "an occupant's presences out of order");
        list.push((v, p.get_attr("type") == Some("unavailable")));
    };
    while inp.pos < data.len() {
        let b = inp.byte();
        if b & 16 != 0 {
            if let Some(p) = held.pop() {
                take(p, &mut got);
            }
            continue;
        }
        version += 1;
        let from = occupant((b % 8) as usize);
        let leave = b & 8 != 0;
        let mut p = Element::new("presence", ns::CLIENT).attr("from", from.clone()).attr("id", version.to_string());
        if leave {
            p.set_attr("type", "unavailable");
        }
        if held.hold(p) == crate::messages::inbox::Held::Dropped {
            dropped = true;
        }
        sent.entry(from).or_default().push((version, leave));
        assert!(held.len() <= 2 * cap, "{} presences held with a cap of {cap} occupants", held.len());
    }
    for p in held.drain() {
        take(p, &mut got);
    }
    assert!(held.is_empty() && held.len() == 0);
    if dropped {
        return;
    }
    for (from, s) in &sent {
        let g = got.get(from).expect("an occupant's presences all lost");
        assert_eq!(g.last().map(|x| x.0), s.last().map(|x| x.0), "the latest presence of {from} is not the last delivered");
        if let Some((v, _)) = s.iter().rev().find(|(_, leave)| *leave) {
            assert!(g.iter().any(|(w, leave)| *leave && w >= v), "a leave of {from} was lost");
        }
    }
}

/// Stanza and stream error parsing, and the error replies built for a request.
pub fn stanza_errors(data: &[u8]) {
    let Some(el) = element(data) else { return };
    if let Some(e) = parse_error(&el) {
        let _ = e.to_string();
    }
    if let Some(e) = parse_stream_error(&el) {
        let _ = e.to_string();
    }
    let r = iq_error(&el, ErrorCondition::BadRequest, Some("fuzz"));
    assert_round_trip(&r, "iq error");
    let back = parse_error(&r).expect("our own error parses");
    assert_eq!(back.condition, ErrorCondition::BadRequest);
    let r = ErrorReply::new(ErrorCondition::ResourceConstraint).text("t").reply_to(&el);
    assert_round_trip(&r, "error reply");
}

/// Stream negotiation on server input. Byte 0: the negotiator (component; client with
/// SASL ANONYMOUS, PLAIN or SCRAM-SHA-1; TLS required, if offered or disabled). The
/// rest are server segments separated by NUL bytes, each fed to the framer (a stream
/// reset asked by the negotiator drops what is left of the segment): stream headers
/// and elements go to the negotiator, STARTTLS "succeeds" at once. SCRAM challenges
/// asking for more than 4096 iterations are skipped (costly by design, bounded by
/// `sasl::MAX_ITERATIONS`).
pub fn negotiation(data: &[u8]) {
    use crate::xmpp::c2s::{ClientConfig, ClientNegotiator, TlsPolicy};
    use crate::xmpp::component::ComponentNegotiator;
    use crate::xmpp::Action;
    let Some((&mode, rest)) = data.split_first() else { return };
    enum Neg {
        Component(ComponentNegotiator),
        Client(ClientNegotiator),
    }
    let mut neg = if mode % 4 == 0 {
        Neg::Component(ComponentNegotiator::new("focus.meet.test".into(), "s3cret".into()))
    } else {
        let (username, password) = match mode % 4 {
            1 => (None, None),
            _ => (Some("focus".to_string()), Some("pw".to_string())),
        };
        let tls = match (mode / 4) % 3 {
            0 => TlsPolicy::Required,
            1 => TlsPolicy::IfOffered,
            _ => TlsPolicy::Disabled,
        };
        Neg::Client(ClientNegotiator::new(ClientConfig {
            domain: "auth.meet.test".into(),
            username,
            password,
            resource: "focus".into(),
            tls,
        }))
    };
    let _ = match &mut neg {
        Neg::Component(n) => n.start(),
        Neg::Client(n) => n.start(),
    };
    let mut framer = Framer::new(64 * 1024);
    'segments: for seg in rest.split(|&b| b == 0).take(32) {
        framer.feed(seg);
        loop {
            let frame = match framer.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(_) => break 'segments,
            };
            let res = match frame {
                Frame::StreamHeader(h) => match &mut neg {
                    Neg::Component(n) => n.on_stream_header(&h),
                    Neg::Client(n) => n.on_stream_header(&h),
                },
                Frame::Stanza(t) => {
                    let h = framer.header().cloned().unwrap_or_default();
                    let Ok(el) = parse_stanza(&t, &h) else { break 'segments };
                    if costly_scram(&el) {
                        continue;
                    }
                    match &mut neg {
                        Neg::Component(n) => n.on_element(&el),
                        Neg::Client(n) => n.on_element(&el),
                    }
                }
                Frame::Skipped(_) | Frame::StreamEnd => break 'segments,
            };
            let Ok(mut actions) = res else {
                if let Err(e) = res {
                    let _ = (e.to_string(), e.is_auth_failure());
                }
                break 'segments;
            };
            let mut i = 0;
            while i < actions.len() {
                match actions[i].clone() {
                    Action::StartTls => {
                        if let Neg::Client(n) = &mut neg {
                            actions.extend(n.on_tls_established());
                        }
                    }
                    Action::ResetStream => {
                        framer.reset();
                        continue 'segments;
                    }
                    Action::Send(text) => {
                        // What we send is well-formed XML (or a stream header).
                        if !text.starts_with("<?xml") && !text.starts_with("<stream:stream") {
                            parse_fragment(&text).unwrap_or_else(|e| panic!("we sent unparsable XML ({e}): {text}"));
                        }
                    }
                    Action::Ready { jid } => assert!(!jid.domain().is_empty()),
                }
                i += 1;
            }
        }
    }
}

/// A SASL challenge asking for a SCRAM iteration count over 4096.
fn costly_scram(el: &Element) -> bool {
    use base64::Engine;
    if el.name != "challenge" {
        return false;
    }
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(el.text_content().trim()) else { return false };
    let text = String::from_utf8_lossy(&raw);
    text.split(',').any(|kv| kv.strip_prefix("i=").is_some_and(|n| n.trim().parse::<u64>().map_or(true, |n| n > 4096)))
}

/// The HTTP request parser and router. Byte 0: number of split points (`% 8`), then
/// u16 offsets; the rest is what a client sends. Parsing every prefix the server
/// might see: once an answer is final (a request or an error status) it stays the
/// same for every longer prefix; a complete request is routed (and a conference body
/// turned into an IQ) without a panic.
pub fn http(data: &[u8]) {
    use crate::net::http::{parse_request, Parsed, Route, MAX_BODY};
    use crate::ops::api::route;
    let mut inp = Input::new(data);
    let n = (inp.byte() % 8) as usize;
    let mut splits: Vec<usize> = (0..n).map(|_| inp.u16() as usize).collect();
    let bytes = inp.rest();
    splits.retain(|&s| s <= bytes.len());
    splits.push(bytes.len());
    splits.sort_unstable();
    splits.dedup();
    let mut final_answer: Option<Result<Parsed, u16>> = None;
    let mut continued = false;
    for s in splits {
        let r = parse_request(&bytes[..s]).map_err(|resp| resp.status);
        if let Some(f) = &final_answer {
            assert_eq!(&r, f, "the answer to a request changed as more bytes came");
            continue;
        }
        match &r {
            Ok(Parsed::Incomplete { expects_continue }) => {
                assert!(!continued || *expects_continue, "100-continue was asked, then no longer");
                continued = *expects_continue;
            }
            Ok(Parsed::Complete(req)) => {
                assert!(req.body.len() <= MAX_BODY && req.path.starts_with('/'));
                if let Route::Wait(fields) = route(req) {
                    assert_round_trip(&fields.to_iq(), "conference IQ from HTTP");
                }
                final_answer = Some(r.clone());
            }
            Err(status) => {
                assert!([400, 411, 413, 431, 505].contains(status), "unexpected status {status}");
                final_answer = Some(r.clone());
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// A whole conference on simulated time.

const ROOM: &str = "fuzz@conference.meet.test";
const FOCUS_FULL: &str = "focus@auth.meet.test/focus";
const BRIDGES: [&str; 2] = ["jvbbrewery@internal.auth.meet.test/jvb1", "jvbbrewery@internal.auth.meet.test/jvb2"];
/// Participants the interpreter plays.
const PARTICIPANTS: usize = 4;
/// Ops read at most from one input (each costs at least one byte anyway).
const MAX_OPS: usize = 512;
/// `recv` calls after the input ran out before the conference must have ended.
const MAX_CALLS_AFTER_END: usize = 1000;

const SESSION_ACCEPT: &str = include_str!("../tests/fixtures/captures/lyno-session-accept.xml");
const SESSION_ACCEPT_NAMES: &str = include_str!("../tests/fixtures/captures/lyno-session-accept-source-names.xml");
const TRANSPORT_INFO: &str = include_str!("../tests/fixtures/captures/lyno-transport-info.xml");
const PRESENCE_NAMES: &str = include_str!("../tests/fixtures/captures/lyno-muc-presence-source-names.xml");

const FEATURES: &[&str] = &[
    "urn:xmpp:jingle:apps:rtp:audio",
    "urn:xmpp:jingle:apps:rtp:video",
    "urn:xmpp:jingle:transports:dtls-sctp:1",
    "http://jitsi.org/json-encoded-sources",
    "http://jitsi.org/source-name",
    "http://jitsi.org/ssrc-rewriting-1",
    "urn:ietf:rfc:4588",
    "http://jitsi.org/tcc",
    "http://jitsi.org/protocol/jibri",
];

const CONDITIONS: &[&str] =
    &["item-not-found", "internal-server-error", "service-unavailable", "bad-request", "conflict", "not-allowed", "forbidden"];

fn room() -> Jid {
    Jid::parse(ROOM).expect("valid")
}

fn nick(i: usize) -> String {
    format!("p{i}")
}

fn occupant(i: usize) -> String {
    format!("{ROOM}/p{i}")
}

/// A captured stanza (parsed once per process).
fn fixture(text: &'static str) -> Element {
    use std::sync::OnceLock;
    static PARSED: OnceLock<Mutex<HashMap<usize, Element>>> = OnceLock::new();
    let map = PARSED.get_or_init(Default::default);
    let key = text.as_ptr() as usize;
    map.lock().entry(key).or_insert_with(|| parse_fragment(text).expect("fixture parses")).clone()
}

/// What the interpreter saw the conference do, shared with the harness.
#[derive(Default)]
struct Seen {
    /// Stanzas sent.
    sent: usize,
    /// Ids of the participants' requests answered, per participant (at most once each).
    answered: HashSet<(String, String)>,
    ops: usize,
    /// Messages delivered, and the most the conference kept aside at once.
    delivered: usize,
    max_backlog: usize,
}

/// The simulated world around one conference, driven by the fuzzer's bytes.
struct FuzzEnv {
    input: Vec<u8>,
    pos: usize,
    start: Instant,
    now: Instant,
    /// Delivered before the next op is read.
    queue: VecDeque<Inbox>,
    /// Requests (IQ get/set) of the conference not answered yet (the newest last).
    pending: Vec<Element>,
    /// The last session-initiate's sid per participant.
    sids: HashMap<usize, String>,
    /// SSRCs a participant has announced (for removals).
    ssrcs: HashMap<usize, Vec<(u32, bool)>>,
    /// Participant requests sent, by (from, id), so that answers can be checked.
    asked: HashSet<(String, String)>,
    bridge: Responder,
    refuse_join: bool,
    ended_input: usize,
    calls: usize,
    seen: Arc<Mutex<Seen>>,
    next_req: u32,
    /// The bridge registry the conference shares with the router.
    bridges: Arc<Mutex<Bridges>>,
    shared: Arc<crate::conference::Shared>,
    /// State of the id generator (deterministic).
    rng: u64,
}

impl FuzzEnv {
    fn byte(&mut self) -> u8 {
        let b = self.input.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    fn chunk(&mut self) -> Vec<u8> {
        let n = (self.byte() as usize) | ((self.byte() as usize & 0x0f) << 8);
        let start = self.pos.min(self.input.len());
        let end = (start + n).min(self.input.len());
        self.pos = end;
        self.input[start..end].to_vec()
    }

    fn participant(&mut self) -> usize {
        self.byte() as usize % PARTICIPANTS
    }

    /// An IQ from participant `i` (the interpreter remembers it was asked).
    fn from_participant(&mut self, i: usize, mut el: Element) -> Inbox {
        el.set_attr("from", occupant(i));
        el.set_attr("to", FOCUS_FULL);
        if el.name == "iq" && matches!(el.get_attr("type"), Some("get" | "set")) {
            self.next_req += 1;
            let id = format!("q{}", self.next_req);
            el.set_attr("id", id.clone());
            self.asked.insert((occupant(i), id));
        }
        Inbox::stanza(el)
    }

    /// Sources of participant `i` from the bytes: `n` SSRCs (audio or video), with or
    /// without names, maybe a simulcast group.
    fn sources(&mut self, i: usize) -> Vec<Element> {
        let n = self.byte() % 5;
        let mut audio = Element::new("description", ns::RTP).attr("media", "audio");
        let mut video = Element::new("description", ns::RTP).attr("media", "video");
        let mut video_ssrcs = Vec::new();
        for k in 0..n {
            let b = self.byte();
            let ssrc = ((i as u32 + 1) << 24) | ((b as u32) << 8) | k as u32;
            let is_video = b & 1 == 1;
            let media = if is_video { "v" } else { "a" };
            let mut s = Element::new("source", ns::SSMA).attr("ssrc", ssrc.to_string());
            if b & 2 == 0 {
                s.set_attr("name", format!("{}-{}{}", nick(i), media, k));
            }
            s = s.child(Element::new("parameter", ns::SSMA).attr("name", "msid").attr("value", format!("{}-{} t{}", nick(i), media, k)));
            if is_video {
                if b & 4 != 0 {
                    s.set_attr("videoType", "camera");
                }
                video_ssrcs.push(ssrc);
                video = video.child(s);
            } else {
                audio = audio.child(s);
            }
            self.ssrcs.entry(i).or_default().push((ssrc, is_video));
        }
        if video_ssrcs.len() >= 2 && self.byte() & 1 == 1 {
            let mut g = Element::new("ssrc-group", ns::SSMA).attr("semantics", "SIM");
            for s in &video_ssrcs {
                g = g.child(Element::new("source", ns::SSMA).attr("ssrc", s.to_string()));
            }
            video = video.child(g);
        }
        let content = |name: &str, d: Element| Element::new("content", ns::JINGLE).attr("name", name).child(d);
        vec![content("audio", audio), content("video", video)]
    }

    fn jingle(&mut self, i: usize, action: &str, contents: Vec<Element>) -> Element {
        let sid = match self.byte() % 8 {
            0 => "bogus".to_string(),
            _ => self.sids.get(&i).cloned().unwrap_or_else(|| "none".into()),
        };
        Element::new("iq", ns::CLIENT).attr("type", "set").child(
            Element::new("jingle", ns::JINGLE)
                .attr("action", action)
                .attr("sid", sid)
                .attr("initiator", FOCUS_FULL)
                .children(contents),
        )
    }

    /// A captured Jingle IQ, re-addressed to participant `i`'s session.
    fn captured(&mut self, i: usize, text: &'static str) -> Element {
        let mut el = fixture(text);
        let sid = self.sids.get(&i).cloned().unwrap_or_else(|| "none".into());
        if let Some(j) = el.get_child_mut("jingle", ns::JINGLE) {
            j.set_attr("sid", sid);
        }
        el
    }

    /// A good answer to pending request `req` from whoever it was sent to.
    fn proper_answer(&mut self, req: &Element) -> Vec<Element> {
        if req.get_child("conference-modify", ns::COLIBRI2).is_some() {
            return (self.bridge)(req);
        }
        let mut r = crate::xmpp::stanza::iq_result(req);
        if req.get_child("query", ns::DISCO_INFO).is_some() {
            let mask = self.byte();
            let mut q = Element::new("query", ns::DISCO_INFO);
            for (k, f) in FEATURES.iter().enumerate() {
                if mask & (1 << (k % 8)) != 0 || k < 2 {
                    q = q.child(Element::new("feature", ns::DISCO_INFO).attr("var", *f));
                }
            }
            r = r.child(q);
        }
        vec![r]
    }

    fn error_answer(&mut self, req: &Element) -> Element {
        let cond = CONDITIONS[self.byte() as usize % CONDITIONS.len()];
        let mut err = Element::new("error", ns::CLIENT).attr("type", "cancel").child(Element::new(cond, ns::STANZAS));
        match self.byte() % 4 {
            1 => err = err.child(Element::new("error", ns::COLIBRI2).attr("reason", "graceful_shutdown")),
            2 => err = err.child(Element::new("error", ns::COLIBRI2).attr("reason", "conference_not_found")),
            3 => {
                err = err
                    .child(Element::new("error", ns::COLIBRI2).attr("reason", "unknown_endpoint"))
                    .child(Element::new("endpoint", ns::COLIBRI2).attr("id", nick(self.byte() as usize % PARTICIPANTS)))
            }
            _ => {}
        }
        let mut r = crate::xmpp::stanza::iq_result(req).child(err);
        r.set_attr("type", "error");
        r
    }

    /// Take pending request number `k` (modulo), if any.
    fn take_pending(&mut self) -> Option<Element> {
        if self.pending.is_empty() {
            let _ = self.byte();
            return None;
        }
        let k = self.byte() as usize % self.pending.len();
        Some(self.pending.remove(k))
    }

    /// Read and perform one op; `Some` is the message for the conference.
    fn op(&mut self, deadline: Option<Instant>) -> Option<Option<Inbox>> {
        let op = self.byte() % 16;
        self.seen.lock().ops += 1;
        let r = room();
        let msg = match op {
            0 => {
                let i = self.participant();
                let flags = self.byte();
                let aff = ["none", "member", "owner", "admin"][(flags & 3) as usize];
                let role = if flags & 4 != 0 { "moderator" } else { "participant" };
                let mut p = occupant_presence(&r, &nick(i), &format!("u{i}@meet.test/r{i}"), aff, role);
                if flags & 8 != 0 {
                    // The captured presence's extensions (caps, source info, stats id, …).
                    p.children.extend(fixture(PRESENCE_NAMES).children.into_iter().filter(|c| match c {
                        Node::Element(e) => e.name != "x",
                        _ => false,
                    }));
                }
                if flags & 16 != 0 {
                    p = p.child(Element::new("audiomuted", ns::AUDIO_MUTE).text("true"));
                }
                Some(Inbox::stanza(p))
            }
            1 => {
                let i = self.participant();
                Some(Inbox::stanza(occupant_leave(&r, &nick(i))))
            }
            2 => {
                let i = self.participant();
                let c = self.chunk();
                let mut p = occupant_presence(&r, &nick(i), &format!("u{i}@meet.test/r{i}"), "none", "participant");
                if let Ok(x) = std::str::from_utf8(&c).map_err(|_| ()).and_then(|t| parse_stanza(t, &client_header()).map_err(|_| ())) {
                    p = p.child(x);
                }
                Some(Inbox::stanza(p))
            }
            3 => {
                let i = self.participant();
                let c = self.chunk();
                let keep_from = self.byte() & 1 == 1;
                let Some(mut el) = element(&c) else { return Some(None) };
                if keep_from {
                    Some(Inbox::stanza(el))
                } else {
                    el.set_attr("from", occupant(i));
                    Some(Inbox::stanza(el))
                }
            }
            4 => {
                let i = self.participant();
                let how = self.byte();
                let el = match how % 3 {
                    0 => {
                        let c = self.sources(i);
                        self.jingle(i, "session-accept", c)
                    }
                    1 => self.captured(i, SESSION_ACCEPT),
                    _ => self.captured(i, SESSION_ACCEPT_NAMES),
                };
                Some(self.from_participant(i, el))
            }
            5 => {
                let i = self.participant();
                let c = self.sources(i);
                let el = self.jingle(i, "source-add", c);
                Some(self.from_participant(i, el))
            }
            6 => {
                let i = self.participant();
                let known = self.ssrcs.get(&i).cloned().unwrap_or_default();
                let n = self.byte() as usize % (known.len() + 1);
                let mut audio = Element::new("description", ns::RTP).attr("media", "audio");
                let mut video = Element::new("description", ns::RTP).attr("media", "video");
                for (ssrc, is_video) in known.iter().take(n) {
                    let s = Element::new("source", ns::SSMA).attr("ssrc", ssrc.to_string());
                    if *is_video {
                        video = video.child(s);
                    } else {
                        audio = audio.child(s);
                    }
                }
                let contents = vec![
                    Element::new("content", ns::JINGLE).attr("name", "audio").child(audio),
                    Element::new("content", ns::JINGLE).attr("name", "video").child(video),
                ];
                let el = self.jingle(i, "source-remove", contents);
                Some(self.from_participant(i, el))
            }
            7 => {
                let i = self.participant();
                let el = self.captured(i, TRANSPORT_INFO);
                Some(self.from_participant(i, el))
            }
            8 => {
                let i = self.participant();
                let reason = ["success", "general-error", "connectivity-error", "busy"][self.byte() as usize % 4];
                let mut el = self.jingle(i, "session-terminate", vec![]);
                if let Some(j) = el.get_child_mut("jingle", ns::JINGLE) {
                    j.children.push(Node::Element(
                        Element::new("reason", ns::JINGLE).child(Element::new(reason, ns::JINGLE)),
                    ));
                    if reason == "connectivity-error" {
                        j.children.push(Node::Element(
                            Element::new("bridge-session", ns::FOCUS).attr("restart", "true"),
                        ));
                    }
                }
                Some(self.from_participant(i, el))
            }
            9 => {
                let i = self.participant();
                let t = self.participant();
                let b = self.byte();
                let mns = [ns::AUDIO_MUTE, ns::VIDEO_MUTE, ns::DESKTOP_MUTE][b as usize % 3];
                let el = Element::new("iq", ns::CLIENT).attr("type", "set").child(
                    Element::new("mute", mns).attr("jid", occupant(t)).text(if b & 4 != 0 { "true" } else { "false" }),
                );
                Some(self.from_participant(i, el))
            }
            10 => {
                let Some(req) = self.take_pending() else { return Some(None) };
                let answers = self.proper_answer(&req);
                let mut it = answers.into_iter();
                let first = it.next();
                self.queue.extend(it.map(Inbox::stanza));
                first.map(Inbox::stanza)
            }
            11 => {
                let Some(req) = self.take_pending() else { return Some(None) };
                Some(Inbox::stanza(self.error_answer(&req)))
            }
            12 => {
                let Some(req) = self.take_pending() else { return Some(None) };
                let c = self.chunk();
                let Some(mut el) = element(&c) else { return Some(None) };
                el.name = "iq".into();
                el.set_attr("id", req.get_attr("id").unwrap_or_default());
                el.set_attr("from", req.get_attr("to").unwrap_or_default());
                if !matches!(el.get_attr("type"), Some("result" | "error")) {
                    el.set_attr("type", "result");
                }
                Some(Inbox::stanza(el))
            }
            13 => {
                // A forged answer: the right id, from a participant (the request stays pending).
                let i = self.participant();
                if self.pending.is_empty() {
                    return Some(None);
                }
                let k = self.byte() as usize % self.pending.len();
                let req = self.pending[k].clone();
                let mut answers = self.proper_answer(&req);
                let Some(mut el) = answers.drain(..).next() else { return Some(None) };
                el.set_attr("from", occupant(i));
                mark_forged(&mut el);
                Some(Inbox::stanza(el))
            }
            14 => {
                let b = self.byte();
                let step = if b & 0x80 != 0 { Duration::from_secs((b & 0x7f) as u64) } else { Duration::from_millis(b as u64 * 10) };
                self.now += step;
                if deadline.is_some_and(|d| self.now >= d) {
                    return None;
                }
                return Some(None);
            }
            _ => {
                let b = self.byte();
                let which = BRIDGES[(b as usize >> 4) % 2];
                let bridge = Jid::parse(which).expect("valid");
                match b % 9 {
                    6 | 7 => {
                        // The brewery changes: stress, drain, shutdown (the router's registry).
                        let p = bridge_presence(which, if b & 0x20 != 0 { "0.9" } else { "0.2" }, b % 9 == 7, b & 0x40 != 0);
                        let now = self.now;
                        let events = self.bridges.lock().on_presence(&p, "focus", now);
                        events.into_iter().next().map(Inbox::Bridge)
                    }
                    8 => {
                        let now = self.now;
                        let events = self.bridges.lock().mark_failed(&bridge, now);
                        events.into_iter().next().map(Inbox::Bridge)
                    }
                    0 => Some(Inbox::Connection(false)),
                    1 => Some(Inbox::Connection(true)),
                    2 => Some(Inbox::Bridge(BridgeEvent::Up(bridge))),
                    3 => Some(Inbox::Bridge(BridgeEvent::Down(bridge))),
                    4 => {
                        let i = self.participant();
                        Some(request(Some(i)))
                    }
                    _ => Some(Inbox::Shutdown),
                }
            }
        };
        Some(msg)
    }
}

/// A brewery presence of bridge `jid`.
fn bridge_presence(jid: &str, stress: &str, drain: bool, shutting_down: bool) -> Element {
    let stat = |n: &str, v: &str| Element::new("stat", ns::COLIBRI).attr("name", n).attr("value", v);
    let stats = Element::new("stats", ns::COLIBRI)
        .child(stat("stress_level", stress))
        .child(stat("drain", if drain { "true" } else { "false" }))
        .child(stat("shutting_down", if shutting_down { "true" } else { "false" }));
    Element::new("presence", ns::CLIENT).attr("from", jid).child(stats)
}

/// Mark every ICE transport of a forged answer, so that its use shows.
fn mark_forged(el: &mut Element) {
    if el.is("transport", ns::ICE_UDP) {
        el.set_attr("ufrag", FORGED);
    }
    for c in el.elements_mut() {
        mark_forged(c);
    }
}

/// The ICE ufrag of forged bridge answers.
const FORGED: &str = "FORGED-ufrag";

/// Does `el` carry a transport from a forged answer?
fn carries_forged(el: &Element) -> bool {
    (el.is("transport", ns::ICE_UDP) && el.get_attr("ufrag") == Some(FORGED)) || el.elements().any(carries_forged)
}

fn request(requester: Option<usize>) -> Inbox {
    let from = requester.map(|i| format!("u{i}@meet.test/r{i}")).unwrap_or_else(|| "x@meet.test/1".into());
    let iq = Element::new("iq", ns::COMPONENT).attr("type", "set").attr("id", "req").attr("from", from.clone());
    Inbox::Request(PendingReply {
        target: ReplyTarget::Xmpp(ConnId(0)),
        iq,
        reply: ConferenceReply { room: ROOM.into(), ..Default::default() },
        requester: requester.map(|_| Jid::parse(&from).expect("valid")),
    })
}

impl Env for FuzzEnv {
    fn send(&mut self, _conn: ConnId, el: crate::xml::Outgoing) {
        // What was written ahead (raw XML) must parse: the checks below look into it.
        let el = match el {
            crate::xml::Outgoing::Tree(e) if !e.contains_raw() => e,
            other => {
                let text = other.to_xml_in("");
                other.into_tree().unwrap_or_else(|e| panic!("the conference wrote malformed XML ({e}): {text}"))
            }
        };
        let outstanding = self.shared.pending.lock().outstanding(Destination::Conference(ConferenceId(1)));
        assert!(outstanding <= crate::messages::pending::CONFERENCE_CAP, "{outstanding} requests pending");
        {
            let mut seen = self.seen.lock();
            seen.sent += 1;
            // Answers to participants' requests: at most one each.
            if el.name == "iq" && matches!(el.get_attr("type"), Some("result" | "error")) {
                if let (Some(to), Some(id)) = (el.get_attr("to"), el.get_attr("id")) {
                    let key = (to.to_string(), id.to_string());
                    if self.asked.contains(&key) {
                        assert!(seen.answered.insert(key), "a request was answered twice: {}", el.to_xml());
                    }
                }
            }
        }
        // Whatever the focus sends is well-formed and means the same after serialization.
        // Offers are mostly the static codec list: there, only the parts that carry
        // outside data (sources, transports, JSON) are checked, to keep the target fast.
        let offer = el
            .get_child("jingle", ns::JINGLE)
            .is_some_and(|j| matches!(j.get_attr("action"), Some("session-initiate" | "transport-replace")));
        if offer {
            let j = el.get_child("jingle", ns::JINGLE).expect("checked");
            for part in j.elements().filter(|c| c.name != "content") {
                assert_round_trip(part, "an offer's extension");
            }
            for c in j.children_named("content", ns::JINGLE) {
                for part in c.elements().flat_map(|d| std::iter::once(d).chain(d.elements())) {
                    if matches!(part.name.as_str(), "transport" | "source" | "ssrc-group") {
                        assert_round_trip(part, "an offer's sources or transport");
                    }
                }
            }
        } else {
            assert_round_trip(&el, "a stanza the conference sent");
        }
        // A forged answer (right id, wrong sender) is never acted on: its transport
        // never reaches a participant's offer.
        if el.get_child("jingle", ns::JINGLE).is_some() {
            assert!(!carries_forged(&el), "a forged bridge answer reached a participant: {}", el.to_xml());
        }
        // Requests carry ids from the pending table (64 random bits), never sequential ones.
        if el.name == "iq" && matches!(el.get_attr("type"), Some("get" | "set")) {
            let id = el.get_attr("id").unwrap_or_default();
            assert!(IqId::parse(id).is_some(), "a request with id {id:?}");
        }
        let to = el.get_attr("to").unwrap_or_default().to_string();
        // The MUC service: the join and the room configuration.
        if el.name == "presence" && el.get_child("x", ns::MUC).is_some() {
            let mut p = Element::new("presence", ns::CLIENT).attr("from", to.clone());
            if self.refuse_join {
                p.set_attr("type", "error");
                p = p.child(Element::new("error", ns::CLIENT).attr("type", "cancel").child(Element::new("forbidden", ns::STANZAS)));
            } else {
                p = p.child(
                    Element::new("x", ns::MUC_USER)
                        .child(Element::new("item", ns::MUC_USER).attr("jid", FOCUS_FULL).attr("affiliation", "owner").attr("role", "moderator"))
                        .child(Element::new("status", ns::MUC_USER).attr("code", "110")),
                );
            }
            self.queue.push_back(Inbox::stanza(p));
            return;
        }
        if el.name == "iq" && to == ROOM && el.get_child("query", ns::MUC_OWNER).is_some() {
            let mut r = crate::xmpp::stanza::iq_result(&el);
            r.set_attr("from", ROOM);
            if el.get_attr("type") == Some("get") {
                r = r.child(Element::new("query", ns::MUC_OWNER).child(Element::new("x", ns::DATA).attr("type", "form")));
            }
            self.queue.push_back(Inbox::stanza(r));
            return;
        }
        if el.name == "iq" && matches!(el.get_attr("type"), Some("get" | "set")) {
            if let Some(j) = el.get_child("jingle", ns::JINGLE) {
                if j.get_attr("action") == Some("session-initiate") || j.get_attr("action") == Some("transport-replace") {
                    if let (Ok(t), Some(sid)) = (Jid::parse(&to), j.get_attr("sid")) {
                        if let Some(i) = t.resource().and_then(|r| r.strip_prefix('p')).and_then(|n| n.parse::<usize>().ok()) {
                            self.sids.insert(i, sid.to_string());
                        }
                    }
                }
            }
            self.pending.push(el);
            if self.pending.len() > 64 {
                self.pending.remove(0);
            }
        }
    }

    fn now(&self) -> Instant {
        self.now
    }

    fn wall_clock(&self) -> std::time::SystemTime {
        std::time::UNIX_EPOCH + (self.now - self.start)
    }

    fn random_u64(&mut self) -> u64 {
        // splitmix64: reproducible ids for a reproducible run.
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn set_backlog(&mut self, n: usize, _bytes: usize) {
        let mut seen = self.seen.lock();
        seen.max_backlog = seen.max_backlog.max(n);
        assert!(n <= seen.delivered, "a backlog of {n} after {} messages", seen.delivered);
    }

    fn recv(&mut self, deadline: Option<Instant>) -> Option<Inbox> {
        let r = self.recv_inner(deadline);
        if r.is_some() {
            self.seen.lock().delivered += 1;
        }
        r
    }
}

impl FuzzEnv {
    fn recv_inner(&mut self, deadline: Option<Instant>) -> Option<Inbox> {
        self.calls += 1;
        assert!(self.calls < 100_000, "the conference keeps calling recv");
        if let Some(m) = self.queue.pop_front() {
            return Some(m);
        }
        loop {
            if self.pos >= self.input.len() || self.seen.lock().ops >= MAX_OPS {
                self.ended_input += 1;
                assert!(self.ended_input < MAX_CALLS_AFTER_END, "the conference does not end after shutdown");
                if self.ended_input == 1 {
                    return Some(Inbox::Shutdown);
                }
                return match deadline {
                    Some(d) => {
                        self.now = self.now.max(d);
                        None
                    }
                    None => Some(Inbox::Shutdown),
                };
            }
            match self.op(deadline) {
                None => return None,
                Some(Some(m)) => return Some(m),
                Some(None) => {
                    if deadline.is_some_and(|d| self.now >= d) {
                        return None;
                    }
                }
            }
        }
    }
}

/// A whole conference on simulated time, fed by an interpreter of the input bytes.
///
/// Byte 0: setup flags (bit 0: the MUC refuses the join; bit 1: a second bridge;
/// bit 2: start-audio-muted after the first participant). Then ops, one byte each
/// plus arguments: participants 0–3 join (with captured presence extensions),
/// leave, update their presence with arbitrary extensions, send arbitrary stanzas,
/// session-accept (generated sources or the captured ones), source-add,
/// source-remove, transport-info (captured), session-terminate, mute requests; the
/// pending requests of the conference (Colibri2 to the bridge, disco, session-initiate,
/// affiliation) are answered properly, with an error, with arbitrary content, or
/// forged from a participant; time advances; connections and bridges go down and
/// come back; more conference requests come. When the input ends, the conference is
/// shut down and must end; each participant request is answered at most once, and
/// every stanza it sends serializes and parses back to itself. It runs on a thread
/// with a conference thread's stack size ([`crate::conference::env::STACK_SIZE`]).
pub fn conference(data: &[u8]) {
    // On a thread with a conference thread's stack, as in production.
    let data = data.to_vec();
    let t = std::thread::Builder::new()
        .name("fuzz-conference".into())
        .stack_size(crate::conference::env::STACK_SIZE)
        .spawn(move || conference_on_this_thread(&data))
        .expect("thread");
    if let Err(e) = t.join() {
        std::panic::resume_unwind(e);
    }
}

fn conference_on_this_thread(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else { return };
    let mut bridges = Bridges::new();
    let now = Instant::now();
    let n_bridges = if flags & 2 != 0 { 2 } else { 1 };
    for b in BRIDGES.iter().take(n_bridges) {
        bridges.on_presence(&bridge_presence(b, "0.1", false, false), "focus", now);
    }
    // Small limits on some inputs, so that the refusals are exercised too.
    let mut limits = crate::config::limits::Limits::default();
    if flags & 8 != 0 {
        limits.max_participants = 2;
        limits.max_waiting_requests = 1;
    }
    let shared = crate::conference::sim::test_shared_with(bridges, None, limits);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let bridge: Responder = {
        let b2 = FakeBridge::new(Jid::parse(BRIDGES[1]).expect("valid")).around(Box::new(|_: &Element| Vec::new()));
        FakeBridge::new(Jid::parse(BRIDGES[0]).expect("valid")).around(b2)
    };
    let mut env = FuzzEnv {
        input: rest.to_vec(),
        pos: 0,
        start: now,
        now,
        queue: VecDeque::new(),
        pending: Vec::new(),
        sids: HashMap::new(),
        ssrcs: HashMap::new(),
        asked: HashSet::new(),
        bridge,
        refuse_join: flags & 1 != 0,
        ended_input: 0,
        calls: 0,
        seen: seen.clone(),
        next_req: 0,
        bridges: shared.bridges.clone(),
        shared: shared.clone(),
        rng: 0,
    };
    env.queue.push_back(request(None));
    let params = Params {
        id: ConferenceId(1),
        room: room(),
        shared: shared.clone(),
        start_audio_muted: (flags & 4 != 0).then_some(1),
        start_video_muted: None,
    };
    let mut conf = Conference::new(env, params);
    let _reason = conf.run();
    assert!(conf.occupants().len() <= PARTICIPANTS);
    // Nothing of the ended conference stays in the pending table.
    assert_eq!(shared.pending.lock().outstanding(Destination::Conference(ConferenceId(1))), 0, "requests of an ended conference still pending");
    let s = seen.lock();
    // Bounded work: a handful of stanzas per op at most.
    assert!(s.sent <= 16 + 24 * s.ops, "{} stanzas sent for {} ops", s.sent, s.ops);
}

// ---------------------------------------------------------------------------------
// Seeds.

/// The captured stanzas (comment stripped), by file name.
pub fn captures() -> Vec<(&'static str, &'static str)> {
    vec![
        ("dist-conference-iq", include_str!("../tests/fixtures/captures/dist-conference-iq.xml")),
        ("dist-muc-join-presence", include_str!("../tests/fixtures/captures/dist-muc-join-presence.xml")),
        ("lyno-conference-iq", include_str!("../tests/fixtures/captures/lyno-conference-iq.xml")),
        ("lyno-muc-join-presence", include_str!("../tests/fixtures/captures/lyno-muc-join-presence.xml")),
        ("lyno-muc-presence-source-names", PRESENCE_NAMES),
        ("lyno-room-config-submit", include_str!("../tests/fixtures/captures/lyno-room-config-submit.xml")),
        ("lyno-session-accept-source-names", SESSION_ACCEPT_NAMES),
        ("lyno-session-accept", SESSION_ACCEPT),
        ("lyno-transport-info", TRANSPORT_INFO),
    ]
}

/// A captured stanza's text without its leading comment.
fn capture_body(text: &str) -> &str {
    match text.find("-->") {
        Some(i) if text.trim_start().starts_with("<!--") => text[i + 3..].trim(),
        _ => text.trim(),
    }
}

/// Seed inputs for `target` (name, bytes).
pub fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let caps: Vec<(String, String)> = captures().into_iter().map(|(n, t)| (n.to_string(), capture_body(t).to_string())).collect();
    let stanzas = |names: &[&str]| -> Vec<(String, Vec<u8>)> {
        caps.iter().filter(|(n, _)| names.is_empty() || names.iter().any(|x| n.contains(x))).map(|(n, t)| (n.clone(), t.clone().into_bytes())).collect()
    };
    let extra = |v: &[(&str, &str)]| -> Vec<(String, Vec<u8>)> { v.iter().map(|(n, t)| (n.to_string(), t.as_bytes().to_vec())).collect() };
    let header = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='abc' from='meet.test' version='1.0'>";
    match target {
        "framer" => {
            let mut out = Vec::new();
            let all: String = caps.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>().join("\n ");
            for (mode, extra) in [(0u8, [0u8, 0]), (1, [40, 0]), (2, [0, 2]), (3, [200, 5])] {
                let mut v = vec![mode, extra[0], extra[1], 3];
                for s in [17u16, 300, 1000] {
                    v.extend_from_slice(&s.to_le_bytes());
                }
                v.extend_from_slice(header.as_bytes());
                v.extend_from_slice(all.as_bytes());
                v.extend_from_slice(b"<iq type='get' id='d'><a><b><c><d><e><f><g><h><i/></h></g></f></e></d></c></b></a></iq>");
                v.extend_from_slice(b"<message><![CDATA[ <x> ]]></message></stream:stream>");
                out.push((format!("stream-mode{mode}"), v));
            }
            out
        }
        "stanza" => {
            let mut out: Vec<(String, Vec<u8>)> = Vec::new();
            for (i, (n, t)) in caps.iter().enumerate() {
                let mut v = vec![(i % 3) as u8];
                v.extend_from_slice(t.as_bytes());
                out.push((n.clone(), v));
            }
            out.push(("cdata".into(), b"\x00<message xml:lang='en'><body>a &amp; &#x3c; <![CDATA[<b>]]></body><x xmlns='urn:x' a='&apos;'/></message>".to_vec()));
            out.push(("stream-prefix".into(), b"\x00<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>".to_vec()));
            out
        }
        "jid" => extra(&[
            ("full", "room1@conference.meet.test/focus"),
            ("bare", "a@b"),
            ("domain", "meet.test"),
            ("slash", "a@b/c/d@e"),
            ("unicode", "é@ß.example/ресурс"),
        ]),
        "conference_request" => {
            let mut v = stanzas(&["conference-iq"]);
            v.extend(extra(&[("props", "<iq type='set'><conference xmlns='http://jitsi.org/protocol/focus' room='r@conference.meet.test' machine-uid='m' session-id='s'><property name='startAudioMuted' value='9'/><property name='x'/></conference></iq>")]));
            v
        }
        "muc_presence" => {
            let mut v = stanzas(&["presence"]);
            v.extend(extra(&[("self", "<presence from='r@c/focus' type='unavailable'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='none'/><status code='110'/><destroy/></x></presence>"),
                ("features", "<presence from='r@c/n'><features><feature var='urn:xmpp:jingle:apps:rtp:audio'/></features><jitsi_participant_region>eu</jitsi_participant_region><stats-id>s</stats-id><videomuted xmlns='http://jitsi.org/jitmeet/video'>true</videomuted></presence>")]));
            v
        }
        "jingle" => {
            let mut v = stanzas(&["session-accept", "transport-info"]);
            v.extend(extra(&[("json", "<iq type='set'><jingle xmlns='urn:xmpp:jingle:1' action='source-add' sid='s'><json-message xmlns='http://jitsi.org/jitmeet'>{\"sources\":{\"p\":[[{\"s\":1,\"n\":\"p-a0\",\"m\":\"p-audio t\"}],[{\"s\":2,\"n\":\"p-v0\",\"v\":\"camera\"},{\"s\":3,\"n\":\"p-v1\"}],[[\"f\",2,3]]]}}</json-message><bridge-session xmlns='http://jitsi.org/protocol/focus' id='b' restart='true'/><reason><success/><text>t</text></reason></jingle></iq>"),
                ("groups", "<iq type='set'><jingle xmlns='urn:xmpp:jingle:1' action='source-add' sid='s'><content name='video'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='10' name='p-v0'><parameter name='msid' value='p-video-0 t'/></source><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='11' name='p-v0'/><ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source ssrc='10'/><source ssrc='11'/></ssrc-group></description></content></jingle></iq>")]));
            v
        }
        "colibri2_sources" => extra(&[("feedback", "<sources xmlns='jitsi:colibri2'><media-source type='audio' id='jvb-a0'><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='111' name='jvb-a0'/></media-source><media-source type='video' id='jvb-v0'><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='222' name='jvb-v0' videoType='camera'><parameter name='msid' value='a b'/></source><ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='SIM'><source ssrc='222'/><source ssrc='223'/></ssrc-group></media-source></sources>")]),
        "json_sources" => extra(&[
            ("basic", "{\"sources\":{\"p\":[[{\"s\":1,\"n\":\"p-a0\",\"m\":\"p-audio t\"}],[{\"s\":2,\"n\":\"p-v0\",\"v\":\"camera\"},{\"s\":3}],[[\"f\",2,3],[\"s\",2]]]}}"),
            ("two", "{\"sources\":{\"a\":[[],[{\"s\":4294967295}]],\"jvb\":[[{\"s\":5}],[]]}}"),
        ]),
        "incoming" => {
            let mut v = stanzas(&[]);
            v.extend(extra(&[
                ("answer", "<iq type='result' id='0123' from='jvbbrewery@internal.auth.meet.test/jvb1' to='focus@auth.meet.test/focus'/>"),
                ("error", "<iq type='error' id='7' from='b@x/y'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><error xmlns='jitsi:colibri2' reason='unknown_endpoint'/><endpoint xmlns='jitsi:colibri2' id='a'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>x</text></error></iq>"),
                ("colibri2", "<iq type='result' id='8' from='b@x/y'><conference-modified xmlns='jitsi:colibri2' meeting-id='m'><endpoint id='a1'><transport><transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='u' pwd='p'><rtcp-mux/><fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='actpass'>AA</fingerprint><web-socket xmlns='http://jitsi.org/protocol/colibri' url='wss://x'/><candidate ip='10.0.0.1' port='1'/></transport><sctp port='5000'/></transport></endpoint><sources><media-source type='video' id='jvb-v0'><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2' name='jvb-v0'/><ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='SIM'><source ssrc='2'/><source ssrc='3'/></ssrc-group></media-source></sources></conference-modified></iq>"),
                ("source-remove", "<iq type='set' id='9' from='r@c/p'><jingle xmlns='urn:xmpp:jingle:1' action='source-remove' sid='s1'><content name='video'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='11' name='p-v0'><parameter name='msid' value='a b'/></source><ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source ssrc='11'/><source ssrc='12'/></ssrc-group></description><initial-last-n xmlns='jitsi:colibri2' value='5'/></content><bridge-session xmlns='http://jitsi.org/protocol/focus' id='b' ice-restart='true'/><ice-state xmlns='http://jitsi.org/protocol/focus'>failed</ice-state><reason><success/><text>t</text></reason></jingle></iq>"),
                ("ping", "<iq type='get' id='p' from='meet.test'><ping xmlns='urn:xmpp:ping'/></iq>"),
                ("bridge", "<presence from='jvbbrewery@internal.auth.meet.test/jvb1'><stats xmlns='http://jitsi.org/protocol/colibri'><stat name='stress_level' value='0.1'/><stat name='drain' value='false'/></stats></presence>"),
                ("jibri", "<presence from='JibriBrewery@internal.auth.meet.test/j1'><jibri-status xmlns='http://jitsi.org/protocol/jibri'><busy-status status='idle'/><health-status xmlns='http://jitsi.org/protocol/health' status='healthy'/></jibri-status></presence>"),
                ("occupant", "<presence from='r@c/n' type='unavailable'><x xmlns='http://jabber.org/protocol/muc#user'><item jid='a@b/c' affiliation='owner' role='moderator'/><status code='110'/><destroy/></x><status>switch_room</status><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/><features><feature var='http://jitsi.org/protocol/jibri'/></features><region xmlns='http://jitsi.org/jitsi-meet' id='eu'/><audiomuted>true</audiomuted><videomuted xmlns='http://jitsi.org/jitmeet/video'>false</videomuted></presence>"),
                ("join-error", "<presence from='r@c/focus' type='error'><error type='cancel'><not-allowed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>no</text></error></presence>"),
                ("late-bail", "<iq type='set' id='j'><jingle xmlns='urn:xmpp:jingle:1' action='source-add' sid='s'/><x/></iq>"),
                ("deep", "<presence from='r@c/p'><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></a></presence>"),
            ]));
            v
        }
        "colibri2_answer" => extra(&[
            ("ok", "<iq type='result' from='b'><conference-modified xmlns='jitsi:colibri2'><endpoint id='a'><transport><transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='u' pwd='p'><fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='actpass'>AA</fingerprint></transport><sctp port='5000'/></transport></endpoint><sources><media-source type='audio' id='jvb-a0'><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1'/></media-source></sources></conference-modified></iq>"),
            ("err", "<iq type='error'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><error xmlns='jitsi:colibri2' reason='unknown_endpoint'/><endpoint xmlns='jitsi:colibri2' id='a'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>x</text></error></iq>"),
        ]),
        "caps" => extra(&[
            ("xep0115", "<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://code.google.com/p/exodus' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence><iq type='result'><query xmlns='http://jabber.org/protocol/disco#info' node='http://code.google.com/p/exodus#QgayPKawpkPSDYmwT/WM94uAlu0='><identity category='client' name='Exodus 0.9.1' type='pc'/><feature var='http://jabber.org/protocol/caps'/><feature var='http://jabber.org/protocol/disco#info'/><feature var='http://jabber.org/protocol/disco#items'/><feature var='http://jabber.org/protocol/muc'/></query></iq>"),
            ("form", "<query xmlns='http://jabber.org/protocol/disco#info'><identity category='client' type='pc' xml:lang='en' name='P'/><feature var='a'/><x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field><field var='os'><value>Mac</value><value>x</value></field></x></query>"),
        ]),
        "components" => extra(&[
            (
                "av-enable",
                "<message from='avmoderation.meet.test' to='focus@auth.meet.test/focus'><json-message xmlns='http://jitsi.org/jitmeet'>{\"type\":\"av_moderation\",\"room\":\"r@conference.meet.test\",\"enabled\":true,\"mediaType\":\"audio\",\"actor\":\"r@conference.meet.test/m\"}</json-message></message>",
            ),
            (
                "av-whitelists",
                "<message from='avmoderation.meet.test'><json-message xmlns='http://jitsi.org/jitmeet'>{\"type\":\"av_moderation\",\"room\":\"r@conference.meet.test\",\"whitelists\":{\"audio\":[\"r@conference.meet.test/a\"],\"video\":[]}}</json-message></message>",
            ),
            (
                "metadata",
                "<message from='metadata.meet.test'><json-message xmlns='http://jitsi.org/jitmeet' room='r@conference.meet.test'>{\"type\":\"room_metadata\",\"metadata\":{\"startMuted\":{\"audio\":true,\"video\":false},\"lobbyEnabled\":false,\"moderators\":[\"a@meet.test\"],\"participants\":[\"b@meet.test\"]}}</json-message></message>",
            ),
            (
                "disco",
                "<iq type='result' from='meet.test'><query xmlns='http://jabber.org/protocol/disco#info'><identity category='component' type='av_moderation' name='avmoderation.meet.test'/><identity category='component' type='room_metadata' name='metadata.meet.test'/><identity category='component' type='breakout_rooms' name='breakout.meet.test'/></query></iq>",
            ),
        ]),
        "gateways" => extra(&[
            (
                "jibri-start",
                "<iq type='set' id='r' from='r@conference.meet.test/m'><jibri xmlns='http://jitsi.org/protocol/jibri' action='start' recording_mode='stream' streamid='k' app_data='{}' sipaddress='sip:a@b'/></iq>",
            ),
            (
                "jibri-presence",
                "<presence from='JibriBrewery@internal.auth.meet.test/j1'><jibri-status xmlns='http://jitsi.org/protocol/jibri'><busy-status status='idle'/><health-status xmlns='http://jitsi.org/protocol/health' status='healthy'/></jibri-status></presence>",
            ),
            (
                "dial",
                "<iq type='set' id='d'><dial xmlns='urn:xmpp:rayo:1' to='+15551234567' from='x'><header name='JvbRoomName' value='r@conference.meet.test'/></dial></iq>",
            ),
            (
                "jigasi-presence",
                "<presence from='JigasiBrewery@internal.auth.meet.test/jg'><stats xmlns='http://jitsi.org/protocol/colibri'><stat name='supports_sip' value='true'/><stat name='participants' value='2'/><stat name='region' value='eu'/></stats><features><feature var='http://jitsi.org/protocol/jigasi'/></features></presence>",
            ),
            ("ref", "<iq type='result' id='x'><ref xmlns='urn:xmpp:rayo:1' uri='xmpp:r@c/jg'/></iq>"),
        ]),
        "mute" => extra(&[
            ("audio", "<iq type='set' from='r@c/m'><mute xmlns='http://jitsi.org/jitmeet/audio' jid='r@c/p'>true</mute></iq>"),
            ("video", "<iq type='set' from='r@c/m'><mute xmlns='http://jitsi.org/jitmeet/video' jid='r@c/m'> false </mute></iq>"),
        ]),
        "brewery" => extra(&[("bridges", "<presence from='jvbbrewery@internal.auth.meet.test/jvb1'><stats xmlns='http://jitsi.org/protocol/colibri'><stat name='stress_level' value='0.1'/><stat name='region' value='r1'/><stat name='drain' value='false'/></stats></presence><presence from='jvbbrewery@internal.auth.meet.test/jvb2'><stats xmlns='http://jitsi.org/protocol/colibri'><stat name='stress_level' value='0.9'/><stat name='shutdown_in_progress' value='true'/></stats></presence><iq type='error'><error type='cancel'><internal-server-error xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq><iq type='result'/><presence from='jvbbrewery@internal.auth.meet.test/jvb1' type='unavailable'/>")]),
        "pending" => vec![
            ("mixed".into(), vec![7, 0, 0, 0, 3, 10, 0, 1, 1, 5, 20, 1, 4, 0, 8, 30, 2, 0, 1, 3, 2, 2, 1, 1, 5, 2, 3, 0, 4, 5, 5, 1, 6, b'0', b'1', b'2', b'3', b'4', b'5', b'6', b'7', b'8', b'9', b'a', b'b', b'c', b'd', b'e', b'f', 2]),
            ("many".into(), (0..200u8).flat_map(|i| [0u8, i % 5, i & 1, i % 9, i]).collect()),
        ],
        "held_presences" => vec![
            ("churn".into(), vec![2, 0, 1, 2, 8, 0, 9, 3, 16, 4, 5, 12, 16, 16, 6, 7, 1, 9]),
            ("full".into(), (0..64u8).map(|i| i % 16 | if i % 5 == 0 { 16 } else { 0 }).collect()),
        ],
        "stanza_errors" => extra(&[
            ("iq", "<iq type='error' id='1' from='a' to='b'><error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>t</text><x xmlns='urn:x'/></error></iq>"),
            ("stream", "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>no</text></stream:error>"),
        ]),
        "negotiation" => {
            let client = |features: &str| -> String {
                format!("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='auth.meet.test' version='1.0'><stream:features>{features}</stream:features>")
            };
            let mech = "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism><mechanism>ANONYMOUS</mechanism></mechanisms>";
            let mut tls = vec![1u8];
            tls.extend_from_slice(client("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>").as_bytes());
            tls.extend_from_slice(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\x00");
            tls.extend_from_slice(client(mech).as_bytes());
            tls.extend_from_slice(b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>\x00");
            tls.extend_from_slice(client("<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>").as_bytes());
            tls.extend_from_slice(b"<iq type='result' id='bind_1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>abc@auth.meet.test/focus</jid></bind></iq><iq type='result' id='session_1'/>");
            let mut scram = vec![7u8];
            scram.extend_from_slice(client(mech).as_bytes());
            // r= must extend our random nonce: the fuzzer finds the failure paths.
            scram.extend_from_slice(b"<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>cj1meXVtYW5vbmNlLHM9UVNYQ1IrUTZzZWs4YmY5MixpPTQwOTY=</challenge><failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/><text>bad</text></failure>");
            let mut comp = vec![0u8];
            comp.extend_from_slice(b"<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='c1' from='focus.meet.test'><handshake/>");
            let mut err = vec![4u8];
            err.extend_from_slice(client("").as_bytes());
            err.extend_from_slice(b"<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>");
            vec![("tls-anonymous".into(), tls), ("scram".into(), scram), ("component".into(), comp), ("stream-error".into(), err)]
        }
        "http" => {
            let mut out = Vec::new();
            for (n, t) in [
                ("post", "POST /conference-request/v1?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 62\r\n\r\n{\"room\":\"r@conference.meet.test\",\"properties\":{\"a\":1,\"b\":\"c\"}}"),
                ("get", "GET /about/health HTTP/1.0\r\n\r\n"),
                ("continue", "POST /conference-request/v1 HTTP/1.1\r\nExpect: 100-continue\r\ncontent-length: 2\r\n\r\n{}"),
                ("chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            ] {
                let mut v = vec![2u8, 10, 0, 40, 0];
                v.extend_from_slice(t.as_bytes());
                out.push((n.to_string(), v));
            }
            out
        }
        "conference" => conference_seeds(),
        _ => Vec::new(),
    }
}

/// Hand-written op sequences: two participants join, get offers, accept, add and
/// remove sources, mute, leave; with errors, forged answers and a bridge failure.
fn conference_seeds() -> Vec<(String, Vec<u8>)> {
    // Ops (see `FuzzEnv::op`): 0 join i flags, 1 leave i, 4 accept i how sid, 5 add i
    // n.., 6 remove i n sid, 7 transport-info i sid, 8 terminate i reason sid, 9 mute
    // i t b, 10 answer k [mask], 11 error k cond kind, 13 forged i k, 14 time b, 15 ctl b.
    let happy: Vec<u8> = vec![
        0, // flags
        0, 0, 0, // p0 joins
        10, 0, 0xff, // disco answered (all features)
        0, 1, 8, // p1 joins with the captured presence extensions
        10, 0, 0x1f, // disco answered
        10, 0, // colibri allocation for p0 answered
        14, 5, // time
        10, 0, 0, // next pending answered (allocation/initiate)
        10, 0, 0, 10, 0, 0, 10, 0, 0, // more answers
        4, 0, 1, 1, // p0 accepts with the captured sources
        4, 1, 0, 1, 2, 1, 3, 1, // p1 accepts with generated sources
        5, 0, 2, 7, 9, 1, // p0 adds sources
        6, 0, 1, 1, // p0 removes one
        7, 1, 1, // transport-info
        9, 0, 1, 4, // p0 mutes p1
        14, 0x85, // 5 s
        8, 1, 0, 1, // p1 terminates
        1, 1, 1, 0, // both leave
    ];
    let mut hostile = happy.clone();
    hostile[0] = 2 | 8;
    hostile.extend_from_slice(&[0, 2, 3, 13, 2, 0, 11, 0, 1, 1, 15, 0x13, 15, 0x00, 15, 0x01, 14, 0xff]);
    let mut forged = vec![6u8, 0, 0, 0, 0, 1, 0, 10, 0, 0, 10, 0, 0, 13, 1, 0];
    forged.extend_from_slice(&[12, 0]);
    let body = b"<iq><conference-modified xmlns='jitsi:colibri2'><endpoint id='p0'/></conference-modified></iq>";
    forged.extend_from_slice(&(body.len() as u16).to_le_bytes());
    forged.extend_from_slice(body);
    forged.extend_from_slice(&[3, 1]);
    let raw = b"<iq type='set' id='x'><jingle xmlns='urn:xmpp:jingle:1' action='source-add' sid='s'><json-message xmlns='http://jitsi.org/jitmeet'>{\"sources\":{\"p1\":[[{\"s\":7}],[]]}}</json-message></jingle></iq>";
    forged.extend_from_slice(&(raw.len() as u16).to_le_bytes());
    forged.extend_from_slice(raw);
    forged.push(0);
    vec![("happy".into(), happy), ("hostile".into(), hostile), ("forged".into(), forged)]
}
