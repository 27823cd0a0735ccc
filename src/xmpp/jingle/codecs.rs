//! Participant features and the codec part of the Jingle offer (media.md §2.3, §2.5).
//!
//! [`Features`] is read from a participant's disco#info feature list. From it,
//! [`offer_contents`] builds the `<content>` elements of the offer (descriptions with
//! payload types, rtcp-fb, header extensions; no transport yet), and
//! [`colibri_media`] turns the audio/video contents into the colibri2 `<media>`
//! elements of an endpoint allocation (§1.2). Everything here is a pure function of
//! its inputs with the default jicofo codec configuration.
//!
//! The focus itself does not build those trees per invitation: [`offer_media`] gives the
//! same contents and Colibri2 media written ahead ([`OfferMedia`]), built once per kind
//! of participant (the features that shape the offer, and the codec configuration) and
//! kept in a small bounded cache shared by every conference.

use std::sync::Arc;

use crate::xml::{Element, RawOpen, RawWriter, RawXml};

use crate::xmpp::ns;

use super::sources::MediaType;

/// Disco feature: the participant can receive/send audio.
pub const FEATURE_AUDIO: &str = "urn:xmpp:jingle:apps:rtp:audio";
/// Disco feature: video.
pub const FEATURE_VIDEO: &str = "urn:xmpp:jingle:apps:rtp:video";
/// Disco feature: SCTP data channels over DTLS.
pub const FEATURE_SCTP: &str = "urn:xmpp:jingle:transports:dtls-sctp:1";
/// Disco feature: RTX (RFC 4588).
pub const FEATURE_RTX: &str = "urn:ietf:rfc:4588";
/// Disco feature: transport-wide congestion control.
pub const FEATURE_TCC: &str = "http://jitsi.org/tcc";
/// Disco feature: REMB.
pub const FEATURE_REMB: &str = "http://jitsi.org/remb";
/// Disco feature: opus RED.
pub const FEATURE_OPUS_RED: &str = "http://jitsi.org/opus-red";
/// Disco feature: JSON-encoded sources in Jingle.
pub const FEATURE_JSON_SOURCES: &str = "http://jitsi.org/json-encoded-sources";
/// Disco feature: SSRC rewriting.
pub const FEATURE_SSRC_REWRITING: &str = "http://jitsi.org/ssrc-rewriting-1";
/// Disco feature: source names.
pub const FEATURE_SOURCE_NAMES: &str = "http://jitsi.org/source-name";

/// The disco features a 2021 lib-jitsi-meet advertises (no JSON sources, no SSRC
/// rewriting); the test tools' scripted participants advertise these.
pub const LIB_JITSI_MEET_2021_FEATURES: &[&str] = &[
    "urn:xmpp:jingle:1",
    "urn:xmpp:jingle:apps:rtp:1",
    FEATURE_AUDIO,
    FEATURE_VIDEO,
    "urn:xmpp:jingle:transports:ice-udp:1",
    "urn:xmpp:jingle:apps:dtls:0",
    FEATURE_SCTP,
    FEATURE_RTX,
    "urn:ietf:rfc:5761",
    "urn:ietf:rfc:5888",
    FEATURE_TCC,
    FEATURE_REMB,
];

/// The media-relevant features a participant advertises.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    /// Receives audio ([`FEATURE_AUDIO`], `urn:xmpp:jingle:apps:rtp:audio`).
    pub audio: bool,
    /// Receives video ([`FEATURE_VIDEO`], `urn:xmpp:jingle:apps:rtp:video`).
    pub video: bool,
    /// Supports an SCTP data channel over DTLS ([`FEATURE_SCTP`]).
    pub sctp: bool,
    /// Supports RTX retransmission, RFC 4588 ([`FEATURE_RTX`]): offered with `rtx` payload types.
    pub rtx: bool,
    /// Supports transport-wide congestion control ([`FEATURE_TCC`]): offered with the TCC header extension and `transport-cc` feedback.
    pub tcc: bool,
    /// Supports REMB bandwidth estimation ([`FEATURE_REMB`]): `goog-remb` feedback is offered when TCC is not.
    pub remb: bool,
    /// Supports Opus RED redundancy ([`FEATURE_OPUS_RED`]); offered only when also enabled in [`CodecConfig`].
    pub opus_red: bool,
    /// Accepts sources as compact JSON (`<json-message>`) instead of ssma XML ([`FEATURE_JSON_SOURCES`]).
    pub json_sources: bool,
    /// Supports the bridge rewriting SSRCs to a fixed set ([`FEATURE_SSRC_REWRITING`]).
    pub ssrc_rewriting: bool,
    /// Uses source names ([`FEATURE_SOURCE_NAMES`]), one name per source.
    pub source_names: bool,
}

impl Features {
    /// Features from a disco#info `<feature var>` list (unknown vars are ignored).
    pub fn from_vars(vars: &[String]) -> Features {
        let has = |v: &str| vars.iter().any(|x| x == v);
        Features {
            audio: has(FEATURE_AUDIO),
            video: has(FEATURE_VIDEO),
            sctp: has(FEATURE_SCTP),
            rtx: has(FEATURE_RTX),
            tcc: has(FEATURE_TCC),
            remb: has(FEATURE_REMB),
            opus_red: has(FEATURE_OPUS_RED),
            json_sources: has(FEATURE_JSON_SOURCES),
            ssrc_rewriting: has(FEATURE_SSRC_REWRITING),
            source_names: has(FEATURE_SOURCE_NAMES),
        }
    }

    /// What is assumed when discovery fails: audio, video and SCTP only.
    pub fn default_set() -> Features {
        Features { audio: true, video: true, sctp: true, ..Features::default() }
    }
}

/// Offer options coming from jicofo's configuration rather than from the participant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodecConfig {
    /// `codec.audio.opus.red.enabled` (default false).
    pub opus_red: bool,
    /// `jicofo.sctp.enabled` (default true).
    pub sctp: bool,
}

impl Default for CodecConfig {
    fn default() -> CodecConfig {
        CodecConfig { opus_red: false, sctp: true }
    }
}

const URI_AUDIO_LEVEL: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
const URI_MID: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
const URI_TCC: &str = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
const URI_AV1_DD: &str = "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension";
const URI_ABS_SEND_TIME: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time";
const H264_PROFILE: &str = "42e01f;level-asymmetry-allowed=1;packetization-mode=1;";

fn payload_type(id: u32, name: &str, clockrate: u32, channels: Option<u32>) -> Element {
    Element::new("payload-type", ns::RTP)
        .attr("id", id.to_string())
        .attr("name", name)
        .attr("clockrate", clockrate.to_string())
        .attr_opt("channels", channels.map(|c| c.to_string()))
}

fn parameter(name: &str, value: &str) -> Element {
    Element::new("parameter", ns::RTP).attr("name", name).attr("value", value)
}

fn rtcp_fb(kind: &str, subtype: Option<&str>) -> Element {
    Element::new("rtcp-fb", ns::RTCP_FB).attr("type", kind).attr_opt("subtype", subtype)
}

fn hdrext(id: u32, uri: &str) -> Element {
    Element::new("rtp-hdrext", ns::RTP_HDREXT).attr("id", id.to_string()).attr("uri", uri)
}

fn content(name: &str, description: Element) -> Element {
    Element::new("content", ns::JINGLE)
        .attr("creator", "initiator")
        .attr("name", name)
        .attr("senders", "both")
        .child(description)
}

/// The audio `<description>` (§2.3).
fn audio_description(f: &Features, cfg: &CodecConfig) -> Element {
    let red = cfg.opus_red && f.opus_red;
    let mut d = Element::new("description", ns::RTP).attr("media", "audio").attr("maxptime", "60");
    if red {
        d = d.child(
            payload_type(112, "red", 48000, Some(2)).child(Element::new("parameter", ns::RTP).attr("value", "111/111")),
        );
    }
    let mut opus = payload_type(111, "opus", 48000, Some(2)).child(parameter("minptime", "10"));
    if !cfg.opus_red {
        opus = opus.child(parameter("useinbandfec", "1"));
    }
    if f.tcc {
        opus = opus.child(rtcp_fb("transport-cc", None));
    }
    d = d.child(opus).child(payload_type(126, "telephone-event", 8000, None));
    d = d.child(hdrext(1, URI_AUDIO_LEVEL)).child(hdrext(10, URI_MID));
    if f.tcc {
        d = d.child(hdrext(5, URI_TCC));
    }
    d.child(Element::new("extmap-allow-mixed", ns::RTP_HDREXT))
}

/// The video `<description>` (§2.3): AV1, VP8, H264, VP9, then rtx for AV1, VP8, VP9, H264.
fn video_description(f: &Features) -> Element {
    let video_fb = || {
        let mut v = vec![rtcp_fb("ccm", Some("fir")), rtcp_fb("nack", None), rtcp_fb("nack", Some("pli"))];
        if !f.tcc && f.remb {
            v.push(rtcp_fb("goog-remb", None));
        }
        if f.tcc {
            v.push(rtcp_fb("transport-cc", None));
        }
        v
    };
    let rtx_fb = || vec![rtcp_fb("ccm", Some("fir")), rtcp_fb("nack", None), rtcp_fb("nack", Some("pli"))];
    let mut d = Element::new("description", ns::RTP).attr("media", "video");
    d = d.child(payload_type(41, "AV1", 90000, None).children(video_fb()));
    d = d.child(payload_type(100, "VP8", 90000, None).children(video_fb()));
    d = d.child(payload_type(107, "H264", 90000, None).children(video_fb()).child(parameter("profile-level-id", H264_PROFILE)));
    d = d.child(payload_type(101, "VP9", 90000, None).children(video_fb()));
    if f.rtx {
        d = d.child(payload_type(42, "rtx", 90000, None).child(parameter("apt", "41")).children(rtx_fb()));
        d = d.child(payload_type(96, "rtx", 90000, None).child(parameter("apt", "100")).children(rtx_fb()));
        d = d.child(payload_type(97, "rtx", 90000, None).child(parameter("apt", "101")).children(rtx_fb()));
        d = d.child(payload_type(99, "rtx", 90000, None).child(parameter("apt", "107")));
    }
    d = d.child(hdrext(11, URI_AV1_DD)).child(hdrext(10, URI_MID)).child(hdrext(3, URI_ABS_SEND_TIME));
    if f.tcc {
        d = d.child(hdrext(5, URI_TCC));
    }
    d.child(Element::new("extmap-allow-mixed", ns::RTP_HDREXT))
}

/// The offer's `<content>` elements (audio, video, data as the features allow) with
/// the default configuration; no transport, no rtcp-mux, no sources yet.
pub fn offer_contents(f: &Features) -> Vec<Element> {
    offer_contents_with(f, &CodecConfig::default())
}

/// [`offer_contents`] with an explicit codec configuration.
pub fn offer_contents_with(f: &Features, cfg: &CodecConfig) -> Vec<Element> {
    let mut out = Vec::new();
    if f.audio {
        out.push(content("audio", audio_description(f, cfg)));
    }
    if f.video {
        out.push(content("video", video_description(f)));
    }
    if f.sctp && cfg.sctp {
        out.push(content("data", Element::new("description", ns::RTP).attr("media", "application")));
    }
    out
}

/// One content of an offer written ahead: `<content><description>` with the codecs and
/// `<rtcp-mux/>`, left open for each offer's sources and transport.
#[derive(Clone, Debug)]
pub struct EncodedContent {
    /// The content's name (`audio`, `video`, `data`).
    pub name: String,
    /// The media type whose sources go into its description (none for `data`).
    pub source_media: Option<MediaType>,
    /// The description is open inside the content (it always is for our contents).
    pub described: bool,
    /// The content (and its description) open.
    pub open: RawOpen,
}

/// What an offer and the Colibri2 allocation take from a participant's features and the
/// codec configuration, built once ([`offer_media`]) and shared: the contents as trees
/// (the reference for the tree builders and tests) and written ahead.
#[derive(Debug)]
pub struct OfferMedia {
    /// [`offer_contents_with`]: the contents as element trees.
    pub trees: Vec<Element>,
    /// The same contents written ahead, in order.
    pub contents: Vec<EncodedContent>,
    /// [`colibri_media`] of the contents, written (`<media>` elements).
    pub colibri: RawXml,
    /// A `data` content is offered (Colibri2 `<sctp/>` wanted).
    pub sctp: bool,
    /// The BUNDLE `<group>` over every content (JSON receivers) …
    group_all: RawXml,
    /// … and over the audio and video contents only (the others, §2.4).
    group_av: RawXml,
}

impl OfferMedia {
    fn new(f: &Features, cfg: &CodecConfig) -> OfferMedia {
        let trees = offer_contents_with(f, cfg);
        let mut contents = Vec::new();
        for c in &trees {
            let name = c.get_attr("name").unwrap_or("").to_string();
            let mut w = RawWriter::new();
            w.start_element(c);
            let mut source_media = None;
            let d = c.get_child("description", ns::RTP);
            if let Some(d) = d {
                w.start_element(d);
                for e in d.elements() {
                    w.element(e);
                }
                if d.get_child("rtcp-mux", ns::RTP).is_none() {
                    w.start("rtcp-mux", ns::RTP);
                    w.end();
                }
                source_media = d.get_attr("media").and_then(MediaType::parse).or_else(|| MediaType::parse(&name));
            }
            let Some(open) = w.finish_open() else { continue };
            contents.push(EncodedContent { name, source_media, described: d.is_some(), open });
        }
        let group = |all: bool| {
            let mut w = RawWriter::new();
            w.start("group", ns::GROUPING);
            w.attr("semantics", "BUNDLE");
            for c in contents.iter().filter(|c| all || c.name == "audio" || c.name == "video") {
                w.start("content", ns::GROUPING);
                w.attr("name", &c.name);
                w.end();
            }
            w.finish()
        };
        let (group_all, group_av) = (group(true), group(false));
        let mut colibri = RawWriter::new();
        for m in colibri_media(&trees) {
            colibri.element(&m);
        }
        OfferMedia { sctp: has_data_content(&trees), trees, colibri: colibri.finish(), group_all, group_av, contents }
    }

    /// The BUNDLE group of the contents a receiver gets (all for JSON receivers, else
    /// audio and video).
    pub fn group(&self, json: bool) -> &RawXml {
        if json {
            &self.group_all
        } else {
            &self.group_av
        }
    }
}

/// Kinds of participant whose [`OfferMedia`] the cache keeps (the key is a handful of
/// booleans; past this the oldest entry goes).
pub const OFFER_MEDIA_CACHE: usize = 32;

/// The cache behind [`offer_media_with`]: a kind of participant and its offer media.
type OfferMediaCache = Vec<((Features, CodecConfig), Arc<OfferMedia>)>;

static OFFER_MEDIA: parking_lot::Mutex<OfferMediaCache> = parking_lot::const_mutex(Vec::new());

/// [`offer_media_with`] the default configuration.
pub fn offer_media(f: &Features) -> Arc<OfferMedia> {
    offer_media_with(f, &CodecConfig::default())
}

/// The offer's contents and Colibri2 media for a participant with `f` under `cfg`,
/// from the cache (built on the first use of such a participant).
pub fn offer_media_with(f: &Features, cfg: &CodecConfig) -> Arc<OfferMedia> {
    // Features that do not shape the contents are not part of the key.
    let key = (Features { json_sources: false, ssrc_rewriting: false, source_names: false, ..*f }, *cfg);
    if let Some((_, m)) = OFFER_MEDIA.lock().iter().find(|(k, _)| *k == key) {
        return m.clone();
    }
    let built = Arc::new(OfferMedia::new(&key.0, cfg));
    let mut cache = OFFER_MEDIA.lock();
    if let Some((_, m)) = cache.iter().find(|(k, _)| *k == key) {
        return m.clone();
    }
    if cache.len() >= OFFER_MEDIA_CACHE {
        cache.remove(0);
    }
    cache.push((key, built.clone()));
    built
}

/// Entries in the cache (tests).
#[cfg(test)]
pub(crate) fn offer_media_cached() -> usize {
    OFFER_MEDIA.lock().len()
}

/// True when the offer contents include a `data` content (colibri2 `<sctp/>` wanted).
pub fn has_data_content(contents: &[Element]) -> bool {
    contents.iter().any(|c| c.get_attr("name") == Some("data"))
}

/// The colibri2 `<media type>` elements for the audio/video contents of an offer
/// (payload types, header extensions and extmap-allow-mixed copied from the
/// descriptions), in content order.
pub fn colibri_media(contents: &[Element]) -> Vec<Element> {
    let mut out = Vec::new();
    for c in contents {
        let Some(name) = c.get_attr("name") else { continue };
        if name != "audio" && name != "video" {
            continue;
        }
        let mut media = Element::new("media", ns::COLIBRI2).attr("type", name);
        if let Some(d) = c.get_child("description", ns::RTP) {
            for e in d.elements() {
                if e.is("payload-type", ns::RTP)
                    || e.is("rtp-hdrext", ns::RTP_HDREXT)
                    || e.is("extmap-allow-mixed", ns::RTP_HDREXT)
                {
                    media = media.child(e.clone());
                }
            }
        }
        out.push(media);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_features() -> Features {
        let vars: Vec<String> = [
            FEATURE_AUDIO,
            FEATURE_VIDEO,
            FEATURE_SCTP,
            FEATURE_RTX,
            FEATURE_TCC,
            FEATURE_REMB,
            FEATURE_OPUS_RED,
            FEATURE_JSON_SOURCES,
            FEATURE_SOURCE_NAMES,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        Features::from_vars(&vars)
    }

    fn pt_ids(d: &Element) -> Vec<String> {
        d.children_named("payload-type", ns::RTP).map(|p| p.get_attr("id").unwrap().to_string()).collect()
    }

    #[test]
    fn features_from_vars() {
        let f = all_features();
        assert!(f.audio && f.video && f.sctp && f.rtx && f.tcc && f.remb && f.opus_red && f.json_sources);
        assert!(f.source_names && !f.ssrc_rewriting);
        let d = Features::default_set();
        assert!(d.audio && d.video && d.sctp && !d.rtx && !d.tcc && !d.json_sources);
    }

    #[test]
    fn video_payload_order() {
        let c = offer_contents(&all_features());
        assert_eq!(c.len(), 3);
        let names: Vec<_> = c.iter().map(|c| c.get_attr("name").unwrap()).collect();
        assert_eq!(names, ["audio", "video", "data"]);
        let v = c[1].get_child("description", ns::RTP).unwrap();
        assert_eq!(pt_ids(v), ["41", "100", "107", "101", "42", "96", "97", "99"]);
        let h264 = v.children_named("payload-type", ns::RTP).nth(2).unwrap();
        let fb: Vec<_> = h264.children_named("rtcp-fb", ns::RTCP_FB).map(|e| e.get_attr("type").unwrap()).collect();
        // TCC wins over REMB.
        assert_eq!(fb, ["ccm", "nack", "nack", "transport-cc"]);
        assert_eq!(
            h264.get_child("parameter", ns::RTP).unwrap().get_attr("value"),
            Some("42e01f;level-asymmetry-allowed=1;packetization-mode=1;")
        );
        let rtx99 = v.children_named("payload-type", ns::RTP).nth(7).unwrap();
        assert_eq!(rtx99.children_named("rtcp-fb", ns::RTCP_FB).count(), 0);
        let rtx42 = v.children_named("payload-type", ns::RTP).nth(4).unwrap();
        assert_eq!(rtx42.children_named("rtcp-fb", ns::RTCP_FB).count(), 3);
        let ids: Vec<_> = v.children_named("rtp-hdrext", ns::RTP_HDREXT).map(|e| e.get_attr("id").unwrap()).collect();
        assert_eq!(ids, ["11", "10", "3", "5"]);
        assert!(v.get_child("extmap-allow-mixed", ns::RTP_HDREXT).is_some());
        assert!(c[1].get_child("transport", ns::ICE_UDP).is_none());
    }

    #[test]
    fn audio_description_defaults() {
        let c = offer_contents(&all_features());
        let a = c[0].get_child("description", ns::RTP).unwrap();
        assert_eq!(a.get_attr("maxptime"), Some("60"));
        // RED is off in the default config even if the client supports it.
        assert_eq!(pt_ids(a), ["111", "126"]);
        let opus = a.get_child("payload-type", ns::RTP).unwrap();
        let params: Vec<_> = opus.children_named("parameter", ns::RTP).map(|p| p.get_attr("name").unwrap()).collect();
        assert_eq!(params, ["minptime", "useinbandfec"]);
        let ids: Vec<_> = a.children_named("rtp-hdrext", ns::RTP_HDREXT).map(|e| e.get_attr("id").unwrap()).collect();
        assert_eq!(ids, ["1", "10", "5"]);
        let red = offer_contents_with(&all_features(), &CodecConfig { opus_red: true, sctp: true });
        let a = red[0].get_child("description", ns::RTP).unwrap();
        assert_eq!(pt_ids(a), ["112", "111", "126"]);
    }

    #[test]
    fn features_shape_offer() {
        let f = Features::default_set();
        let c = offer_contents(&f);
        assert_eq!(c.len(), 3);
        let v = c[1].get_child("description", ns::RTP).unwrap();
        assert_eq!(pt_ids(v), ["41", "100", "107", "101"]);
        let vp8 = v.children_named("payload-type", ns::RTP).nth(1).unwrap();
        assert_eq!(vp8.children_named("rtcp-fb", ns::RTCP_FB).count(), 3);
        assert_eq!(v.children_named("rtp-hdrext", ns::RTP_HDREXT).count(), 3);
        let remb = Features { remb: true, ..f };
        let v = offer_contents(&remb)[1].clone();
        let d = v.get_child("description", ns::RTP).unwrap();
        let vp8 = d.children_named("payload-type", ns::RTP).nth(1).unwrap();
        assert!(vp8.children_named("rtcp-fb", ns::RTCP_FB).any(|e| e.get_attr("type") == Some("goog-remb")));
        let audio_only = Features { audio: true, ..Features::default() };
        let c = offer_contents(&audio_only);
        assert_eq!(c.len(), 1);
        assert!(!has_data_content(&c));
        assert_eq!(offer_contents(&Features { sctp: true, ..Features::default() }).len(), 1);
        let no_sctp = offer_contents_with(&f, &CodecConfig { opus_red: false, sctp: false });
        assert!(!has_data_content(&no_sctp));
    }

    /// The contents and Colibri2 media written ahead are the trees, for every kind of
    /// participant and configuration; one entry per kind, shared, and the cache stays
    /// within its bound however many kinds come.
    #[test]
    fn offer_media_written_ahead_equals_the_trees_and_the_cache_is_bounded() {
        for bits in 0..(1u32 << 9) {
            let b = |i: u32| bits & (1 << i) != 0;
            let f = Features { audio: b(0), video: b(1), sctp: b(2), rtx: b(3), tcc: b(4), remb: b(5), opus_red: b(6), ..Features::default() };
            let cfg = CodecConfig { opus_red: b(7), sctp: b(8) };
            let m = offer_media_with(&f, &cfg);
            assert_eq!(m.trees, offer_contents_with(&f, &cfg));
            assert_eq!(m.sctp, has_data_content(&m.trees));
            let media = crate::xml::Element::new("endpoint", ns::COLIBRI2).raw(m.colibri.clone()).reparsed().unwrap();
            assert_eq!(media.elements().cloned().collect::<Vec<_>>(), colibri_media(&m.trees));
            let names: Vec<&str> = m.contents.iter().map(|c| c.name.as_str()).collect();
            let tree_names: Vec<&str> = m.trees.iter().map(|c| c.get_attr("name").unwrap()).collect();
            assert_eq!(names, tree_names);
            assert!(m.contents.iter().all(|c| c.described));
            // Shared while cached; the features that do not shape the offer are no key.
            let again = offer_media_with(&Features { json_sources: true, source_names: true, ssrc_rewriting: true, ..f }, &cfg);
            assert!(Arc::ptr_eq(&m, &again));
            assert!(offer_media_cached() <= OFFER_MEDIA_CACHE);
        }
    }

    #[test]
    fn colibri_media_from_contents() {
        let c = offer_contents(&all_features());
        let m = colibri_media(&c);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].get_attr("type"), Some("audio"));
        assert_eq!(m[1].get_attr("type"), Some("video"));
        assert!(m[0].is("media", ns::COLIBRI2));
        assert_eq!(pt_ids(&m[1]), ["41", "100", "107", "101", "42", "96", "97", "99"]);
        assert_eq!(m[0].children_named("rtp-hdrext", ns::RTP_HDREXT).count(), 3);
        assert!(m[1].get_child("extmap-allow-mixed", ns::RTP_HDREXT).is_some());
        let xml = m[0].to_xml();
        assert!(xml.starts_with("<media xmlns='jitsi:colibri2' type='audio'><payload-type xmlns='urn:xmpp:jingle:apps:rtp:1' id='111'"), "{xml}");
    }
}
