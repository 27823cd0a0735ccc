//! Each owner's sources encoded once for the wire and reused in every offer and
//! source-add / source-remove: the cache behind [`ConferenceSources`], and
//! [`SourceView`], the sources one receiver is to get, read from the conference's map
//! without copying it.
//!
//! An owner's entry ([`Cached`]) is made when its set is stored and never changed
//! afterwards: a changed set is a new entry, so an encoding cannot go stale. The
//! encodings are built on first use, one per receiver filter (audio and video, audio
//! only, video only), always with simulcast stripped (§2.4): per media type the Jingle
//! ssma `<source>`s and `<ssrc-group>`s tagged with the owner, and the owner's member of
//! the JSON `sources` object (`"owner":[…]`). They are [`RawXml`] (see the raw invariant
//! in `xml::write`): written by the escaping writer from typed, validated values, never
//! copied from a participant's text.
//!
//! Entries are shared (`Arc`) between maps: a source change queued for 499 receivers
//! (`conference::signaling`) is one entry, encoded once; an offer in a room of 500 is a
//! copy of 500 cached encodings.
//!
//! Memory: at most three encodings per stored owner, each no larger than that owner's
//! part of an offer (bounded by the map's limits: 20 sources of bounded names, msids and
//! video types); in practice one (receivers take audio and video), about 1 KB per owner
//! of a 2021 client. An entry a queue still holds after the owner changed is dropped
//! with that queue.
//!
//! What a receiver gets is, byte for byte, what the element trees built from
//! `without(receiver)` + the bridge's sources + `filtered(audio, video, true)` serialize
//! to; [`SourceView::to_sources`] computes that copy, and the tests compare the two.

use std::collections::btree_map;
use std::fmt;
use std::iter::Peekable;
use std::sync::{Arc, OnceLock};

use crate::xml::{RawWriter, RawXml};
use crate::xmpp::ns;

use super::sources::{ConferenceSources, EndpointSources, MediaType, SourceOwner};

/// Receiver filters an owner's encodings are kept for.
const VARIANTS: usize = 3;

/// The encoding slot of a receiver taking `audio` / `video`; `None`: it takes neither.
fn variant(audio: bool, video: bool) -> Option<usize> {
    match (audio, video) {
        (true, true) => Some(0),
        (true, false) => Some(1),
        (false, true) => Some(2),
        (false, false) => None,
    }
}

/// The (audio, video) filter of an encoding slot.
fn filter_of(variant: usize) -> (bool, bool) {
    match variant {
        0 => (true, true),
        1 => (true, false),
        _ => (false, true),
    }
}

fn media_index(m: MediaType) -> usize {
    match m {
        MediaType::Audio => 0,
        MediaType::Video => 1,
    }
}

/// One owner's stored set and its encodings, built on first use. Never mutated: a new
/// set is a new `Cached`.
pub(crate) struct Cached {
    pub(crate) set: EndpointSources,
    encoded: [OnceLock<Encoded>; VARIANTS],
}

impl Cached {
    /// An entry for `set`, nothing encoded yet.
    pub(crate) fn new(set: EndpointSources) -> Arc<Cached> {
        Arc::new(Cached { set, encoded: Default::default() })
    }

    /// The encoding for receivers of filter `variant`, built now if it was not yet.
    fn encoded(&self, owner: &str, variant: usize) -> &Encoded {
        self.encoded[variant].get_or_init(|| {
            let (audio, video) = filter_of(variant);
            Encoded::new(owner, &self.set, audio, video)
        })
    }

    /// Encodings built so far (tests).
    #[cfg(test)]
    pub(crate) fn encoded_count(&self) -> usize {
        self.encoded.iter().filter(|e| e.get().is_some()).count()
    }
}

impl PartialEq for Cached {
    fn eq(&self, other: &Cached) -> bool {
        self.set == other.set
    }
}

impl Eq for Cached {}

impl fmt::Debug for Cached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.set.fmt(f)
    }
}

/// One owner's sources as one kind of receiver gets them.
#[derive(Debug)]
struct Encoded {
    /// Nothing is left for such a receiver (the owner is left out).
    empty: bool,
    /// Per media type (audio, video): the ssma `<source>` elements.
    sources: [RawXml; 2],
    /// Per media type: the `<ssrc-group>` elements.
    groups: [RawXml; 2],
    /// `"owner":[…]`, escaped as XML character data; empty when `empty`.
    json: RawXml,
}

impl Encoded {
    fn new(owner: &str, set: &EndpointSources, audio: bool, video: bool) -> Encoded {
        let s = set.filter_media(audio, video).strip_simulcast();
        // Written directly: what `Source::to_jingle` and `SsrcGroup::to_element` build
        // as trees (the tests compare the two), without the trees.
        let per_media = |m: MediaType| {
            let mut sources = RawWriter::new();
            for x in s.sources.iter().filter(|x| x.media == m) {
                sources.start("source", ns::SSMA);
                sources.attr("ssrc", &x.ssrc.to_string());
                if let Some(n) = &x.name {
                    sources.attr("name", n);
                }
                if let Some(v) = &x.video_type {
                    sources.attr("videoType", v);
                }
                sources.start("ssrc-info", ns::JITMEET);
                sources.attr("owner", owner);
                sources.end();
                if let Some(msid) = &x.msid {
                    sources.start("parameter", ns::RTP);
                    sources.attr("name", "msid");
                    sources.attr("value", msid);
                    sources.end();
                }
                sources.end();
            }
            let mut groups = RawWriter::new();
            for g in s.groups.iter().filter(|g| g.media == m) {
                groups.start("ssrc-group", ns::SSMA);
                groups.attr("semantics", g.semantics.as_str());
                for ssrc in &g.ssrcs {
                    groups.start("source", ns::SSMA);
                    groups.attr("ssrc", &ssrc.to_string());
                    groups.end();
                }
                groups.end();
            }
            (sources.finish(), groups.finish())
        };
        let (audio_sources, audio_groups) = per_media(MediaType::Audio);
        let (video_sources, video_groups) = per_media(MediaType::Video);
        let mut json = RawWriter::new();
        if !s.is_empty() {
            json.text(&serde_json::Value::from(owner).to_string());
            json.text(":");
            json.text(&s.to_json_value().to_string());
        }
        Encoded {
            empty: s.is_empty(),
            sources: [audio_sources, video_sources],
            groups: [audio_groups, video_groups],
            json: json.finish(),
        }
    }

    fn has_media(&self, m: MediaType) -> bool {
        !self.sources[media_index(m)].is_empty() || !self.groups[media_index(m)].is_empty()
    }
}

/// The sources one receiver is to get, read in place: the owners of a map (less one,
/// the receiver itself), plus those of a second map (the bridge's feedback sources,
/// which replace a same-named owner of the first), filtered to the media types the
/// receiver takes, simulcast stripped. Copy-cheap; nothing is cloned until written.
#[derive(Clone, Copy)]
pub struct SourceView<'a> {
    base: Option<&'a ConferenceSources>,
    except: Option<&'a str>,
    extra: Option<&'a ConferenceSources>,
    variant: Option<usize>,
}

impl<'a> From<&'a ConferenceSources> for SourceView<'a> {
    fn from(sources: &'a ConferenceSources) -> SourceView<'a> {
        SourceView::new(sources)
    }
}

impl fmt::Debug for SourceView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceView")
            .field("owners", &self.entries().map(|(o, _)| o.wire_name()).collect::<Vec<_>>())
            .field("filter", &self.variant.map(filter_of))
            .finish()
    }
}

impl<'a> SourceView<'a> {
    /// Every owner of `sources`, audio and video.
    pub fn new(sources: &'a ConferenceSources) -> SourceView<'a> {
        SourceView { base: Some(sources), except: None, extra: None, variant: variant(true, true) }
    }

    /// No sources (a receiver the bridge rewrites SSRCs for gets only the bridge's).
    pub fn none() -> SourceView<'a> {
        SourceView { base: None, except: None, extra: None, variant: variant(true, true) }
    }

    /// Leave out the participant `owner` (a receiver never gets its own sources).
    pub fn except(self, owner: &'a str) -> SourceView<'a> {
        SourceView { except: Some(owner), ..self }
    }

    /// Add the owners of `extra` (replacing a same-named owner of the first map).
    pub fn plus(self, extra: &'a ConferenceSources) -> SourceView<'a> {
        SourceView { extra: Some(extra), ..self }
    }

    /// Only the media types the receiver takes.
    pub fn media(self, audio: bool, video: bool) -> SourceView<'a> {
        SourceView { variant: variant(audio, video), ..self }
    }

    /// The owners' entries in owner order, before filtering.
    fn entries(&self) -> Entries<'a> {
        Entries {
            base: self.base.map(|b| b.entries().peekable()),
            extra: self.extra.map(|e| e.entries().peekable()),
            except: self.except,
        }
    }

    /// The owners with something for this receiver, in owner order, with their encodings.
    fn owners(&self) -> impl Iterator<Item = &'a Encoded> + 'a {
        let variant = self.variant;
        self.entries().filter_map(move |(owner, c)| Some(c.encoded(owner.wire_name(), variant?))).filter(|e| !e.empty)
    }

    /// True when the receiver gets nothing.
    pub fn is_empty(&self) -> bool {
        self.owners().next().is_none()
    }

    /// True when some owner has sources or groups of `media` for this receiver.
    pub fn has_media(&self, media: MediaType) -> bool {
        self.owners().any(|e| e.has_media(media))
    }

    /// The ssma `<source>`s then `<ssrc-group>`s of `media` of every owner, for a Jingle
    /// `<description>`; `None` when there are none. The cached pieces are shared, not
    /// copied.
    pub fn jingle(&self, media: MediaType) -> Option<RawXml> {
        let i = media_index(media);
        let raw = RawXml::concat(self.owners().map(|e| &e.sources[i]).chain(self.owners().map(|e| &e.groups[i])));
        (!raw.is_empty()).then_some(raw)
    }

    /// The JSON encoding `{"sources":{owner:[…],…}}` (§2.4), escaped as XML character
    /// data for a `<json-message>`; the owners' cached pieces are shared, not copied.
    pub fn json(&self) -> RawXml {
        let piece = |text: &str| {
            let mut w = RawWriter::new();
            w.text(text);
            w.finish()
        };
        let (open, comma, close) = (piece("{\"sources\":{"), piece(","), piece("}}"));
        let mut parts = vec![&open];
        for (n, e) in self.owners().enumerate() {
            if n > 0 {
                parts.push(&comma);
            }
            parts.push(&e.json);
        }
        parts.push(&close);
        RawXml::concat(parts)
    }

    /// The same sources as a map of their own (a copy, filtered): what the offers were
    /// built from before the cache. For tests and the benchmark's reference rows.
    pub fn to_sources(&self) -> ConferenceSources {
        let mut out = ConferenceSources::new();
        if let Some((audio, video)) = self.variant.map(filter_of) {
            for (owner, c) in self.entries() {
                out.insert(owner.clone(), c.set.filter_media(audio, video).strip_simulcast());
            }
        }
        out
    }
}

/// The entries of a [`SourceView`]: two maps merged in owner order.
struct Entries<'a> {
    base: Option<Peekable<btree_map::Iter<'a, SourceOwner, Arc<Cached>>>>,
    extra: Option<Peekable<btree_map::Iter<'a, SourceOwner, Arc<Cached>>>>,
    except: Option<&'a str>,
}

impl<'a> Iterator for Entries<'a> {
    type Item = (&'a SourceOwner, &'a Cached);

    fn next(&mut self) -> Option<(&'a SourceOwner, &'a Cached)> {
        loop {
            let b = self.base.as_mut().and_then(|i| i.peek().map(|&(k, _)| k));
            let x = self.extra.as_mut().and_then(|i| i.peek().map(|&(k, _)| k));
            let from_base = match (b, x) {
                (None, None) => return None,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                // The second map's owner replaces the first's.
                (Some(b), Some(x)) if b == x => {
                    self.base.as_mut().and_then(Iterator::next);
                    continue;
                }
                (Some(b), Some(x)) => b < x,
            };
            let next = if from_base { self.base.as_mut() } else { self.extra.as_mut() };
            let (owner, c) = next.and_then(Iterator::next)?;
            if from_base && matches!((owner, self.except), (SourceOwner::Participant(n), Some(e)) if n.as_str() == e) {
                continue;
            }
            return Some((owner, c));
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::xml::Element;
    use crate::xmpp::jingle::codecs::{offer_media_with, CodecConfig, Features};
    use crate::xmpp::jingle::sources::{Semantics, Source, SsrcGroup, BRIDGE_OWNER};
    use crate::xmpp::jingle::stanzas::{self, tree, JingleRequest, Offer};
    use crate::xmpp::ns;

    const FOCUS: &str = "focus@auth.meet.example/focus";
    const TO: &str = "room@conference.meet.example/r1";

    fn set(sources: Vec<Source>, groups: Vec<SsrcGroup>) -> EndpointSources {
        EndpointSources { sources, groups }
    }

    fn audio(ssrc: u32, owner: &str) -> Source {
        Source::new(ssrc, MediaType::Audio).with_name(&format!("{owner}-a0")).with_msid(&format!("{owner}-audio m"))
    }

    fn video(ssrc: u32, owner: &str) -> Source {
        Source::new(ssrc, MediaType::Video).with_name(&format!("{owner}-v0")).with_msid(&format!("{owner}-video m"))
    }

    fn ssrcs_sent(iq: &Element) -> Vec<u32> {
        let j = iq.reparsed().unwrap();
        let j = j.get_child("jingle", ns::JINGLE).unwrap();
        let r = JingleRequest::from_jingle(j).unwrap();
        let mut v: Vec<u32> = r.sources().unwrap().sources.iter().map(|s| s.ssrc).collect();
        v.sort();
        v
    }

    fn add_iq(view: SourceView, json: bool) -> Element {
        stanzas::source_add(FOCUS, TO, "sid", "id", view, json).reparsed().expect("well-formed")
    }

    /// An owner's encoding is built when first used, reused after, and gone with the set
    /// it was made from: every change (validated add/remove, insert, merge) makes a new
    /// entry, and the other owners' entries stay as they were.
    #[test]
    fn an_owners_encoding_is_built_once_and_replaced_when_its_sources_change() {
        let mut c = ConferenceSources::new();
        c.try_add("a", set(vec![audio(1, "a")], vec![])).unwrap();
        c.try_add("b", set(vec![audio(2, "b")], vec![])).unwrap();
        assert_eq!(c.encoded_count("a"), 0, "nothing encoded before use");
        for json in [false, true] {
            assert_eq!(ssrcs_sent(&add_iq(SourceView::new(&c), json)), vec![1, 2]);
        }
        assert_eq!(c.encoded_count("a"), 1, "one receiver kind, one encoding, used for XML and JSON");
        let first = add_iq(SourceView::new(&c), false).to_xml();
        assert_eq!(add_iq(SourceView::new(&c), false).to_xml(), first, "reused");
        // Audio-only receivers: a second encoding, for them.
        assert_eq!(ssrcs_sent(&add_iq(SourceView::new(&c).media(true, false), false)), vec![1, 2]);
        assert_eq!(c.encoded_count("a"), 2);

        let before = c.clone();
        assert!(before.shares_entry(&c, "a"), "clones share the entries");
        c.try_add("a", set(vec![video(3, "a")], vec![])).unwrap();
        assert_eq!(c.encoded_count("a"), 0, "a changed set starts without encodings");
        assert!(!before.shares_entry(&c, "a") && before.shares_entry(&c, "b"), "b's entry untouched");
        for json in [false, true] {
            assert_eq!(ssrcs_sent(&add_iq(SourceView::new(&c), json)), vec![1, 2, 3]);
        }
        c.try_remove("a", &set(vec![Source::new(1, MediaType::Audio)], vec![])).unwrap();
        for json in [false, true] {
            assert_eq!(ssrcs_sent(&add_iq(SourceView::new(&c), json)), vec![2, 3]);
        }
        c.insert("b", set(vec![audio(4, "b")], vec![]));
        assert_eq!(ssrcs_sent(&add_iq(SourceView::new(&c), true)), vec![3, 4]);
        c.merge(&ConferenceSources::single("b", set(vec![audio(5, "b")], vec![])));
        assert_eq!(ssrcs_sent(&add_iq(SourceView::new(&c), false)), vec![3, 4, 5]);
        assert_eq!(c.remove_owner("b").unwrap().sources.len(), 2);
        assert_eq!(ssrcs_sent(&add_iq(SourceView::new(&c), true)), vec![3]);
        // The owner that was left out and the bridge's added in.
        let bridge = ConferenceSources::single(BRIDGE_OWNER, set(vec![Source::new(9, MediaType::Audio)], vec![]));
        assert_eq!(ssrcs_sent(&add_iq(SourceView::new(&c).except("a").plus(&bridge), false)), vec![9]);
        assert!(SourceView::new(&c).except("a").is_empty() && SourceView::new(&c).media(false, false).is_empty());
        // A merge into a map without that owner shares the entry, encodings included.
        let mut queue = ConferenceSources::new();
        queue.merge(&c);
        assert!(queue.shares_entry(&c, "a"));
    }

    /// Names and msids with every character XML escapes travel through the cached
    /// encodings (Jingle and JSON) and parse back to the same values.
    #[test]
    fn escaped_names_and_msids_round_trip_through_the_cache() {
        let msid = "a'b\"c<d>&e]]>\\ \u{e9}\u{1f600} x";
        let name = "p1-<&'\">\u{e9}";
        let mut c = ConferenceSources::new();
        let sources = vec![
            Source::new(10, MediaType::Video).with_name(name).with_msid(msid).with_video_type("desktop"),
            Source::new(11, MediaType::Video).with_name(name).with_msid(msid).with_video_type("desktop"),
            Source::new(12, MediaType::Audio).with_name("p1-a&0").with_msid("q'\"<"),
        ];
        let groups = vec![SsrcGroup::new(Semantics::Fid, MediaType::Video, vec![10, 11])];
        c.try_add("p1", set(sources.clone(), groups.clone())).unwrap();
        let view = SourceView::new(&c);
        // Jingle: the client-side parser reads back exactly what was stored.
        let iq = add_iq(view, false).reparsed().unwrap();
        let r = JingleRequest::from_jingle(iq.get_child("jingle", ns::JINGLE).unwrap()).unwrap();
        let mut got = r.sources().unwrap();
        got.sources.sort_by_key(|s| s.ssrc); // audio content first
        assert_eq!(got, set(sources.clone(), groups.clone()));
        let owner = iq.get_child("jingle", ns::JINGLE).unwrap().elements().flat_map(|c| c.elements()).flat_map(|d| d.elements());
        assert!(owner.filter(|s| s.name == "source").all(|s| s.get_child("ssrc-info", ns::JITMEET).unwrap().get_attr("owner") == Some("p1")));
        // JSON: the same (JSON keeps only `desktop` of the video types, which these are).
        let iq = add_iq(view, true).reparsed().unwrap();
        let text = iq.get_child("jingle", ns::JINGLE).unwrap().get_child("json-message", ns::JITMEET).unwrap().text_content();
        let back = ConferenceSources::from_json(&text).unwrap();
        let mut got = back.get("p1").unwrap().clone();
        got.sources.sort_by_key(|s| s.ssrc);
        assert_eq!(got, set(sources, groups));
        assert_eq!(text, c.to_json(), "the same text the tree path writes");
    }

    /// What participants (and bridges) choose and the focus writes into an offer: the
    /// nick in the occupant JID and in `owner`, source names and msids, the bridge's
    /// region and transport values. Written straight into the stanza they are escaped:
    /// the receiver parses back exactly those values and no element of an attacker's.
    #[test]
    fn hostile_values_in_offers_written_directly_are_escaped() {
        let nick = "m'a\"l<evil a='1'/>&amp;]]>";
        let msid = "</description><evil/>' \" & ]]>";
        let name = "m'a\"l<evil a='1'/>&amp;]]>-v0";
        let mut c = ConferenceSources::new();
        let sources = vec![
            Source::new(10, MediaType::Video).with_name(name).with_msid(msid).with_video_type("desktop"),
            Source::new(11, MediaType::Audio).with_name("x-a0").with_msid(msid),
        ];
        c.insert(nick, set(sources.clone(), vec![]));
        let to = format!("room@conference.meet.example/{nick}");
        for json in [false, true] {
            let f = Features { json_sources: json, ..Features::default_set() };
            let offer = Offer {
                contents: crate::xmpp::jingle::codecs::offer_media(&f),
                bridge_transport: Element::new("transport", ns::ICE_UDP).attr("ufrag", msid).attr("pwd", nick),
                sctp_port: Some(5000),
                sources: SourceView::new(&c).except("someone else"),
                json,
                start_muted: (true, true),
                bridge_session_id: msid.into(),
                region: Some(nick.into()),
            };
            for iq in [offer.session_initiate(FOCUS, &to, msid, nick), stanzas::source_add(FOCUS, &to, msid, nick, SourceView::new(&c), json)] {
                let back = iq.reparsed().expect("well-formed");
                assert_eq!((back.get_attr("to"), back.get_attr("id")), (Some(to.as_str()), Some(nick)));
                let mut todo = vec![&back];
                while let Some(e) = todo.pop() {
                    assert_ne!(e.name, "evil", "an element of the attacker's");
                    todo.extend(e.elements());
                }
                let j = back.get_child("jingle", ns::JINGLE).unwrap();
                assert_eq!(j.get_attr("sid"), Some(msid));
                let r = JingleRequest::from_jingle(j).unwrap();
                let mut got = r.sources().unwrap();
                got.sources.sort_by_key(|s| s.ssrc);
                assert_eq!(got.sources, sources, "json: {json}");
                if let Some(bs) = j.get_child("bridge-session", ns::FOCUS) {
                    assert_eq!((bs.get_attr("id"), bs.get_attr("region")), (Some(msid), Some(nick)));
                    let t = j.get_child("content", ns::JINGLE).unwrap().get_child("transport", ns::ICE_UDP).unwrap();
                    assert_eq!((t.get_attr("ufrag"), t.get_attr("pwd")), (Some(msid), Some(nick)));
                }
                if !json {
                    let owners: Vec<&str> = j.elements().flat_map(|c| c.elements()).flat_map(|d| d.children_named("source", ns::SSMA))
                        .map(|s| s.get_child("ssrc-info", ns::JITMEET).unwrap().get_attr("owner").unwrap())
                        .collect();
                    assert_eq!(owners, [nick, nick]);
                }
            }
        }
    }

    // ------------------------------------------------------------ equivalence with the trees

    const NAMES: &[&str] = &["a", "b", "jvb", "p<&>", "p'\"q", "z9", "\u{e9}t\u{e9}", "ab", "a-b"];
    const TEXTS: &[&str] = &["m1 t1", "x'y\"z", "<&>", "]]>", "\u{1f600}", "c\u{1}d", "m1 t1"];

    fn random_set(rng: &mut StdRng) -> EndpointSources {
        let mut s = EndpointSources::new();
        for _ in 0..rng.gen_range(0..7) {
            let media = if rng.gen_bool(0.5) { MediaType::Audio } else { MediaType::Video };
            let mut x = Source::new(rng.gen_range(1..40), media);
            if rng.gen_bool(0.7) {
                x = x.with_name(TEXTS[rng.gen_range(0..TEXTS.len())]);
            }
            if rng.gen_bool(0.7) {
                x = x.with_msid(TEXTS[rng.gen_range(0..TEXTS.len())]);
            }
            if rng.gen_bool(0.4) {
                x = x.with_video_type(["camera", "desktop", "DeskTop", "none"][rng.gen_range(0..4)]);
            }
            s.sources.push(x);
        }
        for _ in 0..rng.gen_range(0..4) {
            let semantics = if rng.gen_bool(0.5) { Semantics::Sim } else { Semantics::Fid };
            let media = if rng.gen_bool(0.8) { MediaType::Video } else { MediaType::Audio };
            let ssrcs = (0..rng.gen_range(1..4)).map(|_| rng.gen_range(1..40)).collect();
            s.groups.push(SsrcGroup::new(semantics, media, ssrcs));
        }
        s
    }

    fn random_map(rng: &mut StdRng, owners: usize) -> ConferenceSources {
        let mut c = ConferenceSources::new();
        for _ in 0..owners {
            let owner = NAMES[rng.gen_range(0..NAMES.len())];
            if rng.gen_bool(0.3) {
                c.merge(&ConferenceSources::single(owner, random_set(rng)));
            } else {
                c.insert(owner, random_set(rng));
            }
        }
        c
    }

    /// For random source maps (unvalidated: any names, msids, groups, media mixes), random
    /// receivers (left-out owner, bridge sources, media filter, JSON or not, any codec
    /// features and configuration, SCTP or not, start-muted, region, hostile JIDs, sids
    /// and bridge-session ids, transports with and without candidates), the offers
    /// (session-initiate, transport-replace) and source-add / source-remove written
    /// straight from the parts written ahead are byte for byte the stanzas built as
    /// element trees, and those parse; the view's copy is what the conference computed
    /// before the cache.
    #[test]
    fn cached_stanzas_equal_the_trees_for_random_source_sets() {
        let mut rng = StdRng::seed_from_u64(12);
        let (mut xml_sources, mut json_owners) = (0, 0);
        for case in 0..600 {
            let owners = rng.gen_range(0..8);
            let base = random_map(&mut rng, owners);
            let bridge = ConferenceSources::single(BRIDGE_OWNER, random_set(&mut rng));
            let except = NAMES[rng.gen_range(0..NAMES.len())];
            let (audio, video, json) = (rng.gen_bool(0.8), rng.gen_bool(0.8), rng.gen_bool(0.5));
            let mut view = if rng.gen_bool(0.1) { SourceView::none() } else { SourceView::new(&base) };
            if rng.gen_bool(0.7) {
                view = view.except(except);
            }
            let with_bridge = !bridge.is_empty() && rng.gen_bool(0.7);
            if with_bridge {
                view = view.plus(&bridge);
            }
            let view = view.media(audio, video);

            // What the conference built before: copies, then filtered.
            if view.base.is_some() {
                let mut old = if view.except.is_some() { base.without(except) } else { base.clone() };
                if with_bridge {
                    old.insert(BRIDGE_OWNER, bridge.get(BRIDGE_OWNER).unwrap().clone());
                }
                let old = old.filtered(audio, video, true);
                let got = view.to_sources();
                assert!(old.iter().eq(got.iter()), "case {case}: {old:?} vs {got:?}");
            }

            let mut b = || rng.gen_bool(0.5);
            let f = Features {
                audio,
                video,
                json_sources: json,
                sctp: b(),
                rtx: b(),
                tcc: b(),
                remb: b(),
                opus_red: b(),
                ssrc_rewriting: b(),
                source_names: b(),
            };
            let cfg = CodecConfig { opus_red: b(), sctp: b() };
            let hostile = TEXTS[rng.gen_range(0..TEXTS.len())];
            let mut transport = Element::new("transport", ns::ICE_UDP).attr("ufrag", "u").attr("pwd", hostile);
            for _ in 0..rng.gen_range(0..3) {
                transport = transport.child(Element::new("fingerprint", ns::DTLS).attr("hash", "sha-256").text(hostile));
            }
            for i in 0..rng.gen_range(0..3) {
                transport = transport.child(Element::new("candidate", ns::ICE_UDP).attr("id", format!("c{i}")).attr("ip", hostile));
            }
            if rng.gen_bool(0.3) {
                transport = transport.child(Element::new("rtcp-mux", ns::ICE_UDP));
            }
            let offer = Offer {
                contents: offer_media_with(&f, &cfg),
                bridge_transport: transport,
                sctp_port: rng.gen_bool(0.8).then(|| rng.gen_range(0..=u16::MAX)),
                sources: view,
                json,
                start_muted: (rng.gen_bool(0.5), rng.gen_bool(0.5)),
                bridge_session_id: TEXTS[rng.gen_range(0..TEXTS.len())].into(),
                region: rng.gen_bool(0.5).then(|| TEXTS[rng.gen_range(0..TEXTS.len())].to_string()),
            };
            let (from, to) = if rng.gen_bool(0.5) { (FOCUS, TO) } else { ("f'oc\"us@a<u>th/f&x", "r@c.m/n'i\"c<k>&\u{1}") };
            let (sid, id) = (TEXTS[rng.gen_range(0..TEXTS.len())], TEXTS[rng.gen_range(0..TEXTS.len())]);
            let pairs = [
                (offer.session_initiate(from, to, sid, id), tree::session_initiate(&offer, from, to, sid, id)),
                (offer.transport_replace(from, to, sid, id), tree::transport_replace(&offer, from, to, sid, id)),
                (stanzas::source_add(from, to, sid, id, view, json), tree::source_add(from, to, sid, id, view, json)),
                (stanzas::source_remove(from, to, sid, id, view, json), tree::source_remove(from, to, sid, id, view, json)),
            ];
            for (cached, tree) in pairs {
                let (a, b) = (cached.to_xml_in(ns::CLIENT), tree.to_xml_in(ns::CLIENT));
                assert_eq!(a, b, "case {case}");
                assert_eq!(cached.reparsed().unwrap(), tree.reparsed().unwrap(), "case {case}");
            }
            assert_eq!(view.is_empty(), view.to_sources().is_empty());
            xml_sources += pairs_sources(&offer);
            json_owners += view.to_sources().iter().count();
        }
        assert!(xml_sources > 1000 && json_owners > 1000, "the cases carry sources: {xml_sources} {json_owners}");
    }

    /// `<source>` and `<ssrc-group>` elements in an offer's contents.
    fn pairs_sources(offer: &Offer) -> usize {
        let iq = offer.session_initiate(FOCUS, TO, "s", "i").reparsed().unwrap();
        let j = iq.get_child("jingle", ns::JINGLE).unwrap().clone();
        j.elements().flat_map(|c| c.elements()).flat_map(|d| d.elements()).filter(|e| e.name == "source" || e.name == "ssrc-group").count()
    }
}
