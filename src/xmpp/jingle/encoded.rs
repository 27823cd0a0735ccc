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
//! What a receiver gets is, byte for byte, what the element trees built from
//! `without(receiver)` + the bridge's sources + `filtered(audio, video, true)` serialize
//! to; [`SourceView::to_sources`] computes that copy, and the tests compare the two.

use std::collections::btree_map;
use std::fmt;
use std::iter::Peekable;
use std::sync::{Arc, OnceLock};

use crate::xml::{RawWriter, RawXml};

use super::sources::{ConferenceSources, EndpointSources, MediaType};

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
        let per_media = |m: MediaType| {
            let mut sources = RawWriter::new();
            for x in s.sources.iter().filter(|x| x.media == m) {
                sources.element(&x.to_jingle(owner));
            }
            let mut groups = RawWriter::new();
            for g in s.groups.iter().filter(|g| g.media == m) {
                groups.element(&g.to_element());
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
            .field("owners", &self.entries().map(|(o, _)| o).collect::<Vec<_>>())
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

    /// Leave out `owner` (a receiver never gets its own sources).
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
        self.entries().filter_map(move |(owner, c)| Some(c.encoded(owner, variant?))).filter(|e| !e.empty)
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
    /// `<description>`; `None` when there are none.
    pub fn jingle(&self, media: MediaType) -> Option<RawXml> {
        let i = media_index(media);
        let bytes: usize = self.owners().map(|e| e.sources[i].len() + e.groups[i].len()).sum();
        if bytes == 0 {
            return None;
        }
        let mut w = RawWriter::with_capacity(bytes);
        for e in self.owners() {
            w.raw(&e.sources[i]);
        }
        for e in self.owners() {
            w.raw(&e.groups[i]);
        }
        Some(w.finish())
    }

    /// The JSON encoding `{"sources":{owner:[…],…}}` (§2.4), escaped as XML character
    /// data for a `<json-message>`.
    pub fn json(&self) -> RawXml {
        let bytes: usize = self.owners().map(|e| e.json.len() + 1).sum();
        let mut w = RawWriter::with_capacity(bytes + 16);
        w.text("{\"sources\":{");
        for (n, e) in self.owners().enumerate() {
            if n > 0 {
                w.text(",");
            }
            w.raw(&e.json);
        }
        w.text("}}");
        w.finish()
    }

    /// The same sources as a map of their own (a copy, filtered): what the offers were
    /// built from before the cache. For tests and the benchmark's reference rows.
    pub fn to_sources(&self) -> ConferenceSources {
        let mut out = ConferenceSources::new();
        if let Some((audio, video)) = self.variant.map(filter_of) {
            for (owner, c) in self.entries() {
                out.insert(owner, c.set.filter_media(audio, video).strip_simulcast());
            }
        }
        out
    }
}

/// The entries of a [`SourceView`]: two maps merged in owner order.
struct Entries<'a> {
    base: Option<Peekable<btree_map::Iter<'a, String, Arc<Cached>>>>,
    extra: Option<Peekable<btree_map::Iter<'a, String, Arc<Cached>>>>,
    except: Option<&'a str>,
}

impl<'a> Iterator for Entries<'a> {
    type Item = (&'a str, &'a Cached);

    fn next(&mut self) -> Option<(&'a str, &'a Cached)> {
        loop {
            let b = self.base.as_mut().and_then(|i| i.peek().map(|&(k, _)| k.as_str()));
            let x = self.extra.as_mut().and_then(|i| i.peek().map(|&(k, _)| k.as_str()));
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
            if from_base && Some(owner.as_str()) == self.except {
                continue;
            }
            return Some((owner.as_str(), c));
        }
    }
}
