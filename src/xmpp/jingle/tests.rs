//! Tests of the media model against the captured client stanzas and media.md.

use serde_json::Value;

use super::codecs::{offer_media, Features};
use super::encoded::SourceView;
use super::stanzas::*;
use super::sources::*;
use crate::xml::{parse_fragment, Element};
use crate::xmpp::ns;

const ACCEPT: &str = include_str!("../../../tests/fixtures/captures/lyno-session-accept.xml");
const ACCEPT_NAMES: &str = include_str!("../../../tests/fixtures/captures/lyno-session-accept-source-names.xml");
const TRANSPORT_INFO: &str = include_str!("../../../tests/fixtures/captures/lyno-transport-info.xml");

/// Parse a capture after stripping its leading comment.
fn capture(text: &str) -> Element {
    let body = match text.find("-->") {
        Some(i) if text.trim_start().starts_with("<!--") => &text[i + 3..],
        _ => text,
    };
    parse_fragment(body.trim()).expect("capture parses")
}

fn accept_request(text: &str) -> JingleRequest {
    JingleRequest::parse(&capture(text)).expect("jingle parses")
}

fn video(ssrc: u32, msid: &str) -> Source {
    Source::new(ssrc, MediaType::Video).with_msid(msid)
}

fn audio(ssrc: u32, msid: &str) -> Source {
    Source::new(ssrc, MediaType::Audio).with_msid(msid)
}

fn set(sources: Vec<Source>, groups: Vec<SsrcGroup>) -> EndpointSources {
    EndpointSources { sources, groups }
}

fn fid(a: u32, b: u32) -> SsrcGroup {
    SsrcGroup::new(Semantics::Fid, MediaType::Video, vec![a, b])
}

fn sim(ssrcs: &[u32]) -> SsrcGroup {
    SsrcGroup::new(Semantics::Sim, MediaType::Video, ssrcs.to_vec())
}

/// Wrap `<content>`s in a `<jingle>` and parse their sources.
fn sources_of(xml: &str) -> Result<EndpointSources, SourceError> {
    let j = parse_fragment(&format!("<jingle xmlns='urn:xmpp:jingle:1' action='source-add' sid='s'>{xml}</jingle>"))
        .unwrap();
    JingleRequest::from_jingle(&j).unwrap().sources()
}

// ---------------------------------------------------------------- parsing captures

#[test]
fn parse_captured_session_accept() {
    let r = accept_request(ACCEPT);
    assert_eq!(r.action, JingleAction::SessionAccept);
    assert_eq!(r.sid, "9918c21de2c1");
    assert_eq!(r.initiator.as_deref(), Some("room1@conference.meet.test/focus"));
    assert_eq!(r.contents.len(), 2);
    assert_eq!(r.json_sources, None);
    let s = r.sources().unwrap();
    let audio: Vec<_> = s.sources.iter().filter(|s| s.media == MediaType::Audio).collect();
    let video: Vec<_> = s.sources.iter().filter(|s| s.media == MediaType::Video).collect();
    assert_eq!(audio.len(), 1);
    assert_eq!(audio[0].ssrc, 321107647);
    assert_eq!(audio[0].msid.as_deref(), Some("19c373a4-audio-1 4f9f7271-3ebe-4084-aedc-2c3dd5238e4f-1"));
    assert_eq!(audio[0].name, None);
    assert_eq!(video.len(), 6);
    assert!(video.iter().all(|v| v.msid.as_deref() == Some("19c373a4-video-1 5fd38161-6140-4446-9dcd-84cf71900afc-1")));
    assert_eq!(s.groups.len(), 4);
    assert_eq!(s.groups[1], sim(&[334353260, 759798554, 268296348]));
    assert_eq!(s.groups.iter().filter(|g| g.semantics == Semantics::Fid).count(), 3);
    assert!(s.validate().is_ok());

    let t = first_ice_transport(&r.contents).unwrap().to_element();
    assert!(t.is("transport", ns::ICE_UDP));
    assert_eq!(t.get_attr("ufrag"), Some("WsNX"));
    assert_eq!(t.get_attr("pwd"), Some("5ygD0p/YdaNs63bzS8KdFDhG"));
    assert_eq!(t.get_child("fingerprint", ns::DTLS).unwrap().get_attr("setup"), Some("active"));
    assert!(t.get_child("rtcp-mux", ns::ICE_UDP).is_some(), "rtcp-mux added");
    assert_eq!(initial_last_n(&r.contents), None);
}

#[test]
fn parse_captured_session_accept_with_source_names() {
    let r = accept_request(ACCEPT_NAMES);
    assert_eq!(r.sid, "ffda5662e9cf");
    let s = r.sources().unwrap();
    assert_eq!(s.sources.len(), 7);
    assert_eq!(s.source(4263851834).unwrap().name.as_deref(), Some("d8c2803e-a0"));
    assert!(s.sources.iter().filter(|x| x.media == MediaType::Video).all(|x| x.name.as_deref() == Some("d8c2803e-v0")));
    assert_eq!(s.groups.len(), 4);
    let t = first_ice_transport(&r.contents).unwrap().to_element();
    assert_eq!(t.get_attr("ufrag"), Some("Gr7R"));
}

#[test]
fn parse_captured_transport_info() {
    let r = accept_request(TRANSPORT_INFO);
    assert_eq!(r.action, JingleAction::TransportInfo);
    assert!(r.sources().unwrap().is_empty(), "a content named '0' without sources is fine");
    let t = first_ice_transport(&r.contents).unwrap().to_element();
    assert_eq!(t.children_named("candidate", ns::ICE_UDP).count(), 4);
    assert_eq!(t.children_named("rtcp-mux", ns::ICE_UDP).count(), 1);
    // An existing rtcp-mux is not duplicated.
    let again = first_ice_transport(&[JingleContent::from_element(&Element::new("content", ns::JINGLE).child(t.clone()))]).unwrap().to_element();
    assert_eq!(again.children_named("rtcp-mux", ns::ICE_UDP).count(), 1);
    assert_eq!(first_ice_transport(&[JingleContent::from_element(&Element::new("content", ns::JINGLE))]), None);
}

#[test]
fn parse_initial_last_n_and_session_info() {
    let j = parse_fragment(
        "<jingle xmlns='urn:xmpp:jingle:1' action='session-accept' sid='x'>\
         <content name='audio'/><content name='video'><initial-last-n xmlns='jitsi:colibri2' value='10'/></content>\
         </jingle>",
    )
    .unwrap();
    let r = JingleRequest::from_jingle(&j).unwrap();
    assert_eq!(initial_last_n(&r.contents), Some(10));
    let bad = parse_fragment(
        "<content xmlns='urn:xmpp:jingle:1' name='video'><initial-last-n xmlns='jitsi:colibri2' value='-3'/></content>",
    )
    .unwrap();
    assert_eq!(initial_last_n(&[JingleContent::from_element(&bad)]), None);

    let term = parse_fragment(
        "<iq xmlns='jabber:client' type='set'><jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='6rbn2k8ahd2ns'>\
         <reason><connectivity-error/><text>ICE FAILED</text></reason>\
         <bridge-session xmlns='http://jitsi.org/protocol/focus' id='0c9f' restart='true'/></jingle></iq>",
    )
    .unwrap();
    let r = JingleRequest::parse(&term).unwrap();
    assert_eq!(r.action, JingleAction::SessionTerminate);
    assert_eq!(r.reason, Some(("connectivity-error".to_string(), Some("ICE FAILED".to_string()))));
    assert_eq!(r.bridge_session, Some(BridgeSession { id: Some("0c9f".into()), restart: true, ice_restart: false }));

    let info = parse_fragment(
        "<jingle xmlns='urn:xmpp:jingle:1' action='session-info' sid='s'>\
         <ice-state xmlns='http://jitsi.org/protocol/focus'>failed</ice-state>\
         <bridge-session xmlns='http://jitsi.org/protocol/focus' id='b' ice-restart='true'/></jingle>",
    )
    .unwrap();
    let r = JingleRequest::from_jingle(&info).unwrap();
    assert_eq!(r.ice_state.as_deref(), Some("failed"));
    assert!(r.bridge_session.as_ref().unwrap().ice_restart);
}

#[test]
fn jingle_request_errors_and_actions() {
    let no_action = parse_fragment("<jingle xmlns='urn:xmpp:jingle:1' sid='s'/>").unwrap();
    let e = JingleRequest::from_jingle(&no_action).unwrap_err();
    assert_eq!(e.to_string(), "Missing 'action'");
    assert_eq!(e.condition(), "bad-request");
    let no_sid = parse_fragment("<jingle xmlns='urn:xmpp:jingle:1' action='source-add'/>").unwrap();
    assert_eq!(JingleRequest::from_jingle(&no_sid).unwrap_err().to_string(), "Missing 'sid'");
    let no_jingle = parse_fragment("<iq xmlns='jabber:client' type='set'/>").unwrap();
    assert!(JingleRequest::parse(&no_jingle).is_err());
    assert_eq!(JingleAction::parse("addsource"), JingleAction::SourceAdd);
    assert_eq!(JingleAction::parse("removesource"), JingleAction::SourceRemove);
    assert_eq!(JingleAction::parse("content-add"), JingleAction::Other("content-add".into()));
    assert_eq!(JingleAction::parse("transport-accept").as_str(), "transport-accept");
}

// ---------------------------------------------------------------- parsing edge cases

#[test]
fn parse_source_variants() {
    // Sources as children of the content, msid in the rtp namespace, semantics lower case.
    let s = sources_of(
        "<content name='video'>\
           <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1' videoType='desktop'>\
             <parameter xmlns='urn:xmpp:jingle:apps:rtp:1' name='msid' value='m1'/></source>\
           <description xmlns='urn:xmpp:jingle:apps:rtp:1'>\
             <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2'><parameter name='msid' value='m1'/></source>\
             <ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='fid'><source ssrc='1'/><source ssrc='2'/></ssrc-group>\
           </description></content>\
         <content name='data'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='application'/></content>",
    )
    .unwrap();
    assert_eq!(s.sources.len(), 2);
    assert_eq!(s.sources[0], video(1, "m1").with_video_type("desktop"));
    assert_eq!(s.sources[1], video(2, "m1"));
    assert_eq!(s.groups, vec![fid(1, 2)]);
    // Description media wins over the content name.
    let s = sources_of(
        "<content name='x'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>\
         <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='7'/></description></content>",
    )
    .unwrap();
    assert_eq!(s.sources, vec![Source::new(7, MediaType::Audio)]);
}

#[test]
fn parse_hostile_sources() {
    let src = |ssrc: &str| {
        format!(
            "<content name='audio'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>\
             <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' {ssrc}/></description></content>"
        )
    };
    for bad in ["ssrc='abc'", "ssrc='99999999999999999999999'", "ssrc='4294967296'", "ssrc='-1'", "ssrc=''", ""] {
        let e = sources_of(&src(bad)).unwrap_err();
        assert!(matches!(e, SourceError::Parse(_)), "{bad}: {e}");
    }
    assert_eq!(sources_of(&src("ssrc='4294967295'")).unwrap().sources[0].ssrc, u32::MAX);
    let e = sources_of(
        "<content name='video'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'>\
         <ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FEC'><source ssrc='1'/></ssrc-group>\
         </description></content>",
    )
    .unwrap_err();
    assert!(e.to_string().contains("semantics"), "{e}");
    let e = sources_of(
        "<content name='video'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'>\
         <ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'><source ssrc='1'/></ssrc-group></description></content>",
    )
    .unwrap_err();
    assert!(matches!(e, SourceError::Parse(_)));
    let e = sources_of(
        "<content name='screen'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='screen'>\
         <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1'/></description></content>",
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "Unknown media type: screen");
    let e = sources_of(
        "<content name='video'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'>\
         <ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='SIM'><source ssrc='x'/></ssrc-group>\
         </description></content>",
    )
    .unwrap_err();
    assert!(matches!(e, SourceError::Parse(_)));
    // Garbage JSON never panics.
    for j in ["", "{}", "{\"sources\":1}", "{\"sources\":{\"a\":[[{\"s\":-1}]]}}", "{\"sources\":{\"a\":[[],[[\"x\",1]]]}}",
              "{\"sources\":{\"a\":[[{\"s\":4294967296}]]}}", "{\"sources\":{\"a\":[[],[[]]]}}", "{\"sources\":{\"a\":7}}"] {
        assert!(ConferenceSources::from_json(j).is_err(), "{j}");
    }
}

// ---------------------------------------------------------------- validation: adding

fn captured_set() -> EndpointSources {
    accept_request(ACCEPT).sources().unwrap()
}

#[test]
fn add_captured_sources() {
    let mut c = ConferenceSources::new();
    let accepted = c.try_add("a", captured_set()).unwrap();
    assert_eq!(accepted, captured_set());
    assert_eq!(c.get("a").unwrap().sources.len(), 7);
    // Adding the very same sources again: SSRC is already used (same endpoint).
    let before = c.clone();
    let e = c.try_add("a", captured_set()).unwrap_err();
    assert!(e.to_string().starts_with("SSRC is already used"), "{e}");
    assert_eq!(c, before);
}

/// Asserts the add fails with a message starting with `prefix` and leaves the map alone.
fn add_fails(c: &mut ConferenceSources, owner: &str, add: EndpointSources, prefix: &str) {
    let before = c.clone();
    let e = c.try_add(owner, add).unwrap_err();
    assert!(matches!(e, SourceError::Invalid(_)));
    assert!(e.to_string().starts_with(prefix), "expected '{prefix}', got '{e}'");
    assert_eq!(*c, before, "failed add changed the map");
}

#[test]
fn add_invalid_ssrc() {
    let mut c = ConferenceSources::new();
    add_fails(&mut c, "a", set(vec![audio(0, "m")], vec![]), "Invalid SSRC");
    add_fails(&mut c, "a", set(vec![audio(5, "m"), audio(0, "n")], vec![]), "Invalid SSRC");
    assert!(c.try_add("a", set(vec![audio(u32::MAX, "m"), audio(1, "n")], vec![])).is_ok());
}

#[test]
fn add_ssrc_already_used() {
    let mut c = ConferenceSources::new();
    c.try_add("a", set(vec![audio(1, "ma")], vec![])).unwrap();
    add_fails(&mut c, "b", set(vec![audio(1, "mb")], vec![]), "SSRC is already used");
    add_fails(&mut c, "a", set(vec![audio(1, "ma")], vec![]), "SSRC is already used");
    add_fails(&mut c, "b", set(vec![audio(2, "mb"), video(2, "mv")], vec![]), "SSRC is already used");
    // Identical duplicates inside one request collapse.
    let d = c.try_add("b", set(vec![audio(2, "mb"), audio(2, "mb")], vec![])).unwrap();
    assert_eq!(d.sources.len(), 1);
}

#[test]
fn add_msid_conflicts() {
    let mut c = ConferenceSources::new();
    c.try_add("a", set(vec![audio(1, "shared")], vec![])).unwrap();
    add_fails(&mut c, "b", set(vec![audio(2, "shared")], vec![]), "MSID is already used");
    // Audio and video of one endpoint may share an msid.
    c.try_add("a", set(vec![video(3, "shared")], vec![])).unwrap();
    // Two ungrouped sources with one msid within a media type are two extended groups.
    add_fails(&mut c, "a", set(vec![audio(4, "shared")], vec![]), "MSID");
    // Two simulcast stacks with the same msid within video.
    let mut c = ConferenceSources::new();
    let first = set(vec![video(10, "m"), video(11, "m"), video(12, "m")], vec![sim(&[10, 11]), fid(10, 12)]);
    c.try_add("a", first).unwrap();
    add_fails(&mut c, "a", set(vec![video(20, "m"), video(21, "m")], vec![fid(20, 21)]), "MSID");
    c.try_add("a", set(vec![video(20, "n"), video(21, "n")], vec![fid(20, 21)])).unwrap();
}

#[test]
fn add_ssrc_limit() {
    let mut c = ConferenceSources::new();
    let twenty: Vec<Source> = (1..=20).map(|i| Source::new(i, MediaType::Audio)).collect();
    c.try_add("a", set(twenty[..15].to_vec(), vec![])).unwrap();
    add_fails(&mut c, "a", set((100..106).map(|i| Source::new(i, MediaType::Audio)).collect(), vec![]), "SSRC limit (20) exceeded");
    c.try_add("a", set(twenty[15..].to_vec(), vec![])).unwrap();
    assert_eq!(c.get("a").unwrap().sources.len(), 20);
    add_fails(&mut c, "a", set(vec![Source::new(500, MediaType::Video)], vec![]), "SSRC limit (20) exceeded");
    // The limit is per endpoint.
    c.try_add("b", set(vec![Source::new(500, MediaType::Video)], vec![])).unwrap();
}

#[test]
fn add_group_rules() {
    let limits = SourceLimits { max_ssrcs: 20, max_groups: 1 };
    let mut c = ConferenceSources::with_limits(limits);
    // Empty groups and duplicates inside the request are silently dropped.
    let empty = SsrcGroup::new(Semantics::Sim, MediaType::Video, vec![]);
    let d = c.try_add("a", set(vec![video(1, "m"), video(2, "m")], vec![fid(1, 2), empty.clone(), fid(1, 2)])).unwrap();
    assert_eq!(d.groups, vec![fid(1, 2)]);
    // A group identical to a stored one is silently dropped.
    let d = c.try_add("a", set(vec![], vec![fid(1, 2), empty])).unwrap();
    assert!(d.is_empty());
    // Group referencing an SSRC that is neither stored nor added.
    add_fails(&mut c, "a", set(vec![video(3, "n")], vec![fid(3, 99)]), "An SSRC group contains an SSRC");
    // Group limit (existing + accepted).
    add_fails(&mut c, "a", set(vec![], vec![sim(&[1])]), "ssrc-group limit (1) exceeded");
    assert_eq!(c.get("a").unwrap().groups, vec![fid(1, 2)]);
    // Under the default limit a group over already stored sources is accepted.
    let mut c = ConferenceSources::new();
    c.try_add("a", set(vec![video(1, "m"), video(2, "m")], vec![fid(1, 2)])).unwrap();
    let d = c.try_add("a", set(vec![], vec![sim(&[1])])).unwrap();
    assert_eq!(d.groups, vec![sim(&[1])]);
    assert_eq!(c.get("a").unwrap().groups.len(), 2);
}

#[test]
fn add_fid_must_have_two_ssrcs() {
    let mut c = ConferenceSources::new();
    let three = SsrcGroup::new(Semantics::Fid, MediaType::Video, vec![1, 2, 3]);
    add_fails(&mut c, "a", set(vec![video(1, "m"), video(2, "m"), video(3, "m")], vec![three]), "Invalid FID group");
    let one = SsrcGroup::new(Semantics::Fid, MediaType::Video, vec![1]);
    add_fails(&mut c, "a", set(vec![video(1, "m")], vec![one]), "Invalid FID group");
    c.try_add("a", set(vec![video(1, "m"), video(2, "m")], vec![fid(1, 2)])).unwrap();
}

#[test]
fn add_grouped_sources_need_msid() {
    let mut c = ConferenceSources::new();
    let no_msid = set(vec![video(1, "m"), Source::new(2, MediaType::Video)], vec![fid(1, 2)]);
    add_fails(&mut c, "a", no_msid, "Required source parameter 'msid'");
    // Ungrouped sources without msid are fine.
    c.try_add("a", set(vec![Source::new(2, MediaType::Video), Source::new(3, MediaType::Video)], vec![])).unwrap();
}

#[test]
fn add_group_members_share_msid() {
    let mut c = ConferenceSources::new();
    add_fails(&mut c, "a", set(vec![video(1, "m"), video(2, "other")], vec![fid(1, 2)]), "SSRC group contains sources with different MSIDs");
    add_fails(
        &mut c,
        "a",
        set(vec![video(1, "m"), video(2, "m"), video(3, "x")], vec![sim(&[1, 2, 3])]),
        "SSRC group contains sources with different MSIDs",
    );
    c.try_add("a", set(vec![video(1, "m"), video(2, "m"), video(3, "m")], vec![sim(&[1, 2, 3])])).unwrap();
}

// ---------------------------------------------------------------- hostile input: bounds

/// One video `<content>` with the given `<source>`/`<ssrc-group>` XML inside its description.
fn video_content(inner: &str) -> String {
    format!("<content name='video'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'>{inner}</description></content>")
}

fn ssma_source(ssrc: u32, attrs: &str, msid: &str) -> String {
    format!(
        "<source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='{ssrc}' {attrs}>\
         <parameter name='msid' value='{msid}'/></source>"
    )
}

#[test]
fn oversized_source_attributes_are_refused() {
    let long_name = format!("ep-{}", "n".repeat(MAX_SOURCE_NAME_LEN));
    let e = sources_of(&video_content(&ssma_source(1, &format!("name='{long_name}'"), "m"))).unwrap_err();
    assert!(matches!(e, SourceError::Parse(_)));
    assert!(e.to_string().starts_with("Source name too long (more than 64 bytes)"), "{e}");
    assert!(e.to_string().len() < 200, "the name is not echoed in full: {e}");
    let e = sources_of(&video_content(&ssma_source(1, "name=''", "m"))).unwrap_err();
    assert_eq!(e.to_string(), "Empty source name");
    let at_limit = format!("ep-{}", "n".repeat(MAX_SOURCE_NAME_LEN - 3));
    assert!(sources_of(&video_content(&ssma_source(1, &format!("name='{at_limit}'"), "m"))).is_ok());

    let long_msid = "m".repeat(MAX_MSID_LEN + 1);
    let e = sources_of(&video_content(&ssma_source(1, "", &long_msid))).unwrap_err();
    assert!(e.to_string().starts_with("msid too long (more than 256 bytes)"), "{e}");
    assert!(sources_of(&video_content(&ssma_source(1, "", &"m".repeat(MAX_MSID_LEN)))).is_ok());

    for ok in ["camera", "desktop", "DESKTOP", "desktop_high_fps", "none", "disabled"] {
        let s = sources_of(&video_content(&ssma_source(1, &format!("videoType='{ok}'"), "m"))).unwrap();
        assert_eq!(s.sources[0].video_type.as_deref(), Some(ok));
    }
    for bad in ["screen", "", &"c".repeat(100_000)] {
        let e = sources_of(&video_content(&ssma_source(1, &format!("videoType='{bad}'"), "m"))).unwrap_err();
        assert!(e.to_string().starts_with("Invalid videoType"), "{e}");
        assert!(e.to_string().len() < 200);
    }
    // A huge SSRC value is refused without echoing it back whole.
    let e = sources_of(&video_content(&format!("<source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='{}'/>", "&amp;".repeat(50_000)))).unwrap_err();
    assert!(e.to_string().starts_with("Invalid SSRC") && e.to_string().len() < 200, "{}", e.to_string().len());
}

#[test]
fn ten_thousand_sources_in_one_stanza_are_refused_at_parse() {
    let many: String = (1..=10_000).map(|i| ssma_source(i, "", "m")).collect();
    let e = sources_of(&video_content(&many)).unwrap_err();
    assert_eq!(e.to_string(), "Too many sources in one request (more than 128)");
    // Spread over many contents, the total still counts.
    let per: String = (1..=100).map(|i| ssma_source(i, "", "m")).collect();
    let e = sources_of(&format!("{}{}", video_content(&per), video_content(&per))).unwrap_err();
    assert!(e.to_string().starts_with("Too many sources"), "{e}");
    let groups: String = (0..200)
        .map(|i| format!("<ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source ssrc='{}'/><source ssrc='{}'/></ssrc-group>", 2 * i + 1, 2 * i + 2))
        .collect();
    let e = sources_of(&video_content(&groups)).unwrap_err();
    assert!(e.to_string().starts_with("Too many SSRC groups"), "{e}");
    let big_group = format!(
        "{}<ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='SIM'>{}</ssrc-group>",
        ssma_source(1, "", "m"),
        (0..10_000).map(|_| "<source ssrc='1'/>").collect::<String>()
    );
    let e = sources_of(&video_content(&big_group)).unwrap_err();
    assert!(e.to_string().starts_with("SSRC group too large"), "{e}");
    // Colibri2 sources are bounded the same way.
    let ms = parse_fragment(&format!(
        "<sources xmlns='jitsi:colibri2'><media-source type='video' id='x'>{many}</media-source></sources>"
    ))
    .unwrap();
    assert!(EndpointSources::from_colibri2(&ms).unwrap_err().to_string().starts_with("Too many sources"));
}

#[test]
fn a_group_repeating_an_ssrc_is_refused() {
    let mut c = ConferenceSources::new();
    let two = set(vec![video(1, "m"), video(2, "m")], vec![]);
    add_fails(&mut c, "a", EndpointSources { groups: vec![fid(1, 1)], ..two.clone() }, "SSRC group contains a repeated SSRC");
    add_fails(&mut c, "a", EndpointSources { groups: vec![sim(&[1, 2, 1])], ..two.clone() }, "SSRC group contains a repeated SSRC");
    add_fails(&mut c, "a", EndpointSources { groups: vec![sim(&[1, 1, 1])], ..two.clone() }, "SSRC group contains a repeated SSRC");
    c.try_add("a", EndpointSources { groups: vec![fid(1, 2)], ..two }).unwrap();
}

#[test]
fn a_group_may_only_list_the_endpoints_own_ssrcs() {
    let mut c = ConferenceSources::new();
    c.try_add("victim", set(vec![video(7, "v"), video(8, "v")], vec![fid(7, 8)])).unwrap();
    add_fails(&mut c, "evil", set(vec![video(1, "m")], vec![fid(1, 7)]), "An SSRC group contains an SSRC which has not been signaled");
    add_fails(&mut c, "evil", set(vec![], vec![sim(&[7, 8])]), "An SSRC group contains an SSRC which has not been signaled");
    assert!(c.get("evil").is_none());
}

#[test]
fn captured_source_names_are_accepted_for_their_endpoint_only() {
    let named = accept_request(ACCEPT_NAMES).sources().unwrap();
    let mut c = ConferenceSources::new();
    add_fails(&mut c, "19c373a4", named.clone(), "Source name must start with the endpoint id ('19c373a4-'): d8c2803e-");
    let accepted = c.try_add("d8c2803e", named.clone()).unwrap();
    assert_eq!(accepted, named);
    // The other captured client (no names) joins the same conference.
    c.try_add("19c373a4", captured_set()).unwrap();
    assert_eq!(c.get("d8c2803e").unwrap().sources.len(), 7);
}

#[test]
fn source_names_belong_to_one_endpoint() {
    let mut c = ConferenceSources::new();
    c.try_add("a1", set(vec![video(1, "ma").with_name("a1-v0"), audio(2, "ma").with_name("a1-a0")], vec![])).unwrap();
    // Another endpoint taking a1's name (or one a1 will use) is refused.
    add_fails(&mut c, "b2", set(vec![video(3, "mb").with_name("a1-v0")], vec![]), "Source name is already used: a1-v0");
    add_fails(&mut c, "b2", set(vec![video(3, "mb").with_name("a1-v1")], vec![]), "Source name must start with the endpoint id ('b2-')");
    for bad in ["b2", "b2-", "b2x-v0", "x", "-v0"] {
        add_fails(&mut c, "b2", set(vec![video(3, "mb").with_name(bad)], vec![]), "Source name must start with the endpoint id");
    }
    // One name for audio and video: refused, within one request or across requests.
    add_fails(&mut c, "b2", set(vec![video(3, "mb").with_name("b2-x"), audio(4, "mb").with_name("b2-x")], vec![]), "Source name is used for audio and video");
    add_fails(&mut c, "a1", set(vec![video(5, "mc").with_name("a1-a0")], vec![]), "Source name is used for audio and video");
    // Several SSRCs (simulcast, RTX) share one name, as lib-jitsi-meet sends them.
    c.try_add("b2", set(vec![video(3, "mb").with_name("b2-v0"), video(4, "mb").with_name("b2-v0")], vec![fid(3, 4)])).unwrap();
    // Once a1 is gone its names are free for a1 again (a rejoin with the same id).
    c.remove_owner("a1");
    c.try_add("a1", set(vec![video(1, "ma").with_name("a1-v0")], vec![])).unwrap();
    // The bridge's owner id is reserved.
    add_fails(&mut c, BRIDGE_OWNER, set(vec![audio(9, "j")], vec![]), "Endpoint id 'jvb' is reserved");
}

#[test]
fn the_bridge_and_the_participants_are_separate_owners() {
    let mut c = ConferenceSources::new();
    c.insert(SourceOwner::Bridge, set(vec![audio(9, BRIDGE_AUDIO_MSID)], vec![]));
    // A participant whose nick is the bridge's wire name is still a participant…
    assert_eq!(SourceOwner::from(BRIDGE_OWNER), SourceOwner::Participant(crate::ids::Nick::from("jvb")));
    assert!(c.get(BRIDGE_OWNER).is_none(), "the bridge's sources are not a participant's");
    assert!(c.remove_owner(BRIDGE_OWNER).is_none());
    assert_eq!(c.get(SourceOwner::Bridge).unwrap().sources[0].ssrc, 9);
    // …whose sources are refused, since clients could not tell them from the bridge's.
    add_fails(&mut c, BRIDGE_OWNER, set(vec![audio(10, "j")], vec![]), "Endpoint id 'jvb' is reserved");
    // On the wire the bridge is "jvb", and "jvb" read back is the bridge.
    assert_eq!(SourceOwner::Bridge.wire_name(), BRIDGE_OWNER);
    assert_eq!(SourceOwner::from_wire(BRIDGE_OWNER), SourceOwner::Bridge);
    assert_eq!(SourceOwner::from_wire("a"), SourceOwner::from("a"));
    // Owners are listed by wire name, as the encodings always listed them.
    c.try_add("zed", set(vec![audio(11, "z")], vec![])).unwrap();
    c.try_add("abe", set(vec![audio(12, "a")], vec![])).unwrap();
    let owners: Vec<&str> = c.iter().map(|(o, _)| o).collect();
    assert_eq!(owners, ["abe", "jvb", "zed"]);
    assert_eq!(c.owners().nth(1).map(|(o, _)| o.clone()), Some(SourceOwner::Bridge));
}

/// JSON can carry characters XML cannot: a source name or msid with a control
/// character would be forwarded, as an attribute of a source-add, to every other
/// participant (and such a stanza, not well-formed, makes the server close the focus's
/// stream). They are refused, like other bad sources.
#[test]
fn control_characters_in_json_source_names_and_msids_are_refused() {
    let e = ConferenceSources::from_json("{\"sources\":{\"p1\":[[{\"s\":7,\"n\":\"p1-v\\u0001\"}],[]]}}").unwrap_err();
    assert!(e.to_string().starts_with("Source name with a control character"), "{e}");
    let e = ConferenceSources::from_json("{\"sources\":{\"p1\":[[{\"s\":7,\"m\":\"x\\u001f y\"}],[]]}}").unwrap_err();
    assert!(e.to_string().starts_with("msid with a control character"), "{e}");
    // The XML path refuses them too (a tab is a character reference away).
    let el = crate::xml::parse_fragment(
        "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1' name='p-&#9;'/></description>",
    )
    .unwrap();
    let content = Element::new("content", ns::JINGLE).attr("name", "audio").child(el);
    assert!(EndpointSources::from_jingle_contents(&[content]).is_err());
}

#[test]
fn hostile_json_sources_are_bounded() {
    let e = ConferenceSources::from_json(&" ".repeat(MAX_JSON_BYTES + 1)).unwrap_err();
    assert!(e.to_string().starts_with("JSON sources too large"), "{e}");
    // Deep nesting is refused before the parser sees it (no recursion, no stack use).
    for deep in ["[".repeat(60_000), format!("{{\"sources\":{{\"a\":{}}}}}", "[".repeat(10)), "{\"a\":".repeat(20)] {
        let e = ConferenceSources::from_json(&deep).unwrap_err();
        assert!(e.to_string().starts_with("JSON sources nested too deep"), "{e}");
    }
    // Brackets inside strings do not count.
    let quoted = format!("{{\"sources\":{{\"{}\":[[],[],[]]}}}}", "[{\\\"".repeat(100));
    assert!(ConferenceSources::from_json(&quoted).is_ok());
    // Too many sources or groups, also when spread over owners.
    let srcs = |n: u32, base: u32| (0..n).map(|i| format!("{{\"s\":{}}}", base + i)).collect::<Vec<_>>().join(",");
    let e = ConferenceSources::from_json(&format!("{{\"sources\":{{\"a\":[[],[],[{}]]}}}}", srcs(200, 1))).unwrap_err();
    assert!(e.to_string().starts_with("Too many sources"), "{e}");
    let e = ConferenceSources::from_json(&format!(
        "{{\"sources\":{{\"a\":[[],[],[{}]],\"b\":[[],[],[{}]]}}}}",
        srcs(100, 1),
        srcs(100, 1000)
    ))
    .unwrap_err();
    assert!(e.to_string().starts_with("Too many sources"), "{e}");
    let groups = (0..200).map(|_| "[\"f\",1,2]").collect::<Vec<_>>().join(",");
    let e = ConferenceSources::from_json(&format!("{{\"sources\":{{\"a\":[[],[{groups}],[]]}}}}")).unwrap_err();
    assert!(e.to_string().starts_with("Too many SSRC groups"), "{e}");
    let big = (0..100).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    let e = ConferenceSources::from_json(&format!("{{\"sources\":{{\"a\":[[],[[\"s\",{big}]],[]]}}}}")).unwrap_err();
    assert!(e.to_string().starts_with("SSRC group too large"), "{e}");
    // Attribute caps apply to JSON too.
    let e = ConferenceSources::from_json(&format!("{{\"sources\":{{\"a\":[[{{\"s\":1,\"n\":\"{}\"}}]]}}}}", "n".repeat(65))).unwrap_err();
    assert!(e.to_string().starts_with("Source name too long"), "{e}");
    let e = ConferenceSources::from_json(&format!("{{\"sources\":{{\"a\":[[{{\"s\":1,\"m\":\"{}\"}}]]}}}}", "m".repeat(257))).unwrap_err();
    assert!(e.to_string().starts_with("msid too long"), "{e}");
    // What jicofo itself encodes still parses.
    let c = sample_conference();
    let back = ConferenceSources::from_json(&c.to_json()).unwrap();
    assert_eq!(back.get("a1b2c3d4"), c.get("a1b2c3d4"));
}

#[test]
fn oversized_transports_are_refused() {
    // The captured transports are far below the bound.
    for cap in [ACCEPT, ACCEPT_NAMES, TRANSPORT_INFO] {
        let r = accept_request(cap);
        let t = first_ice_transport(&r.contents).unwrap().to_element();
        assert!(t.to_xml().len() < MAX_TRANSPORT_BYTES / 4, "{}", t.to_xml().len());
    }
    // 3 KB of apostrophes in an attribute grow six-fold when the focus writes them.
    let jingle = |attr: &str| {
        parse_fragment(&format!(
            "<jingle xmlns='urn:xmpp:jingle:1' action='transport-info' sid='s'><content name='audio'>\
             <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag=\"{attr}\" pwd='p'/></content></jingle>"
        ))
        .unwrap()
    };
    let e = JingleRequest::from_jingle(&jingle(&"'".repeat(3000))).unwrap_err();
    assert_eq!(e.to_string(), "transport too large (more than 16384 bytes)");
    assert!(JingleRequest::from_jingle(&jingle(&"u".repeat(3000))).is_ok());
    let many: String = (0..1000)
        .map(|i| format!("<candidate foundation='{i}' component='1' protocol='udp' priority='1' ip='10.0.0.1' port='{i}' type='host' generation='0' network='1' id='c{i}'/>"))
        .collect();
    let j = parse_fragment(&format!(
        "<jingle xmlns='urn:xmpp:jingle:1' action='session-accept' sid='s'><content name='audio'>\
         <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='u' pwd='p'>{many}</transport></content></jingle>"
    ))
    .unwrap();
    assert!(JingleRequest::from_jingle(&j).unwrap_err().to_string().starts_with("transport too large"));
}

// ---------------------------------------------------------------- validation: removing

#[test]
fn remove_semantics() {
    let mut c = ConferenceSources::new();
    c.try_add("a", captured_set()).unwrap();
    c.try_add("b", set(vec![audio(42, "b-audio")], vec![])).unwrap();

    // Not owned / unknown owner / unknown group: errors, map unchanged.
    let before = c.clone();
    assert!(c.try_remove("a", &set(vec![Source::new(42, MediaType::Audio)], vec![])).unwrap_err().to_string().starts_with("Source does not exist"));
    assert!(c.try_remove("zz", &set(vec![Source::new(42, MediaType::Audio)], vec![])).is_err());
    assert!(c.try_remove("a", &set(vec![], vec![fid(1, 2)])).unwrap_err().to_string().starts_with("Source group does not exist"));
    // Removing the first simulcast layer would leave two FID stacks with one msid.
    assert!(c.try_remove("a", &set(vec![Source::new(334353260, MediaType::Video)], vec![])).is_err());
    assert_eq!(c, before);
    assert!(c.try_remove("a", &EndpointSources::new()).unwrap().is_empty());

    // Remove the audio source, matched by SSRC only: the stored source (with msid) comes back.
    let r = c.try_remove("a", &set(vec![Source::new(321107647, MediaType::Audio).with_msid("ignored")], vec![])).unwrap();
    assert_eq!(r.sources, vec![audio(321107647, "19c373a4-audio-1 4f9f7271-3ebe-4084-aedc-2c3dd5238e4f-1")]);
    assert!(r.groups.is_empty());

    // Remove all video sources: every group touching them goes too, the owner disappears.
    let all_video: Vec<Source> = captured_set().sources.into_iter().filter(|s| s.media == MediaType::Video).collect();
    let r = c.try_remove("a", &set(all_video.clone(), vec![])).unwrap();
    assert_eq!(r.sources.len(), 6);
    assert_eq!(r.groups.len(), 4);
    assert!(c.get("a").is_none());
    assert!(c.get("b").is_some());

    // Removing only a group.
    let mut c = ConferenceSources::new();
    c.try_add("a", set(vec![video(1, "m"), video(2, "m")], vec![fid(1, 2), sim(&[1])])).unwrap();
    let r = c.try_remove("a", &set(vec![], vec![sim(&[1])])).unwrap();
    assert_eq!(r.groups, vec![sim(&[1])]);
    assert!(r.sources.is_empty());
    assert_eq!(c.get("a").unwrap().sources.len(), 2);
    assert_eq!(c.get("a").unwrap().groups, vec![fid(1, 2)]);
    // Removing the FID group alone would leave two ungrouped sources with one msid.
    let before = c.clone();
    assert!(c.try_remove("a", &set(vec![], vec![fid(1, 2)])).unwrap_err().to_string().starts_with("MSID"));
    assert_eq!(c, before);
    // Removing one SSRC of a FID pair removes the group.
    let r = c.try_remove("a", &set(vec![Source::new(2, MediaType::Video)], vec![])).unwrap();
    assert_eq!(r.groups, vec![fid(1, 2)]);
    assert_eq!(c.get("a").unwrap().sources, vec![video(1, "m")]);
    assert!(c.get("a").unwrap().groups.is_empty());

    assert!(c.remove_owner("a").is_some());
    assert!(c.remove_owner("a").is_none());
    assert!(c.is_empty());
}

// ---------------------------------------------------------------- filtering

#[test]
fn strip_simulcast_on_capture() {
    let s = captured_set().strip_simulcast();
    let video_ssrcs: Vec<u32> = s.sources.iter().filter(|x| x.media == MediaType::Video).map(|x| x.ssrc).collect();
    assert_eq!(video_ssrcs, vec![334353260, 255174283]);
    assert_eq!(s.groups, vec![fid(334353260, 255174283)]);
    assert_eq!(s.sources.iter().filter(|x| x.media == MediaType::Audio).count(), 1);

    let mut c = ConferenceSources::new();
    c.try_add("a", captured_set()).unwrap();
    c.insert(SourceOwner::Bridge, set(vec![audio(9, BRIDGE_AUDIO_MSID), video(8, BRIDGE_VIDEO_MSID)], vec![]));
    let f = c.filtered(false, true, true);
    assert_eq!(f.get("a").unwrap().sources.len(), 2);
    assert!(!f.has_media(MediaType::Audio));
    let f = c.filtered(true, false, true);
    assert_eq!(f.get("a").unwrap().sources.len(), 1);
    assert!(f.get("a").unwrap().groups.is_empty());
    let f = c.filtered(true, true, false);
    assert_eq!(f.get("a").unwrap().sources.len(), 7);
    assert!(c.filtered(false, false, true).is_empty());
    assert!(c.without("a").get("a").is_none());
}

// ---------------------------------------------------------------- encodings

fn sample_conference() -> ConferenceSources {
    let mut c = ConferenceSources::new();
    c.insert(SourceOwner::Bridge, set(vec![audio(2849270913, BRIDGE_AUDIO_MSID).with_name("jvb-a0"), video(1205367291, BRIDGE_VIDEO_MSID).with_name("jvb-v0")], vec![]));
    c.try_add(
        "a1b2c3d4",
        set(
            vec![
                video(2595344399, "a1b2c3d4-video-0 7f0e").with_name("a1b2c3d4-v0").with_video_type("camera"),
                video(2874594781, "a1b2c3d4-video-0 7f0e").with_name("a1b2c3d4-v0").with_video_type("camera"),
                audio(1808569840, "a1b2c3d4-audio-0 91c2").with_name("a1b2c3d4-a0"),
            ],
            vec![fid(2595344399, 2874594781)],
        ),
    )
    .unwrap();
    c
}

#[test]
fn json_encoding_shape() {
    let c = sample_conference();
    let v: Value = serde_json::from_str(&c.to_json()).unwrap();
    let expected: Value = serde_json::from_str(
        r#"{"sources":{"jvb":[[{"s":1205367291,"n":"jvb-v0","m":"mixedmslabel mixedlabelvideo0"}],[],[{"s":2849270913,"n":"jvb-a0","m":"mixedmslabel mixedlabelaudio0"}]],
            "a1b2c3d4":[[{"s":2595344399,"n":"a1b2c3d4-v0","m":"a1b2c3d4-video-0 7f0e"},{"s":2874594781,"n":"a1b2c3d4-v0","m":"a1b2c3d4-video-0 7f0e"}],[["f",2595344399,2874594781]],[{"s":1808569840,"n":"a1b2c3d4-a0","m":"a1b2c3d4-audio-0 91c2"}]]}}"#,
    )
    .unwrap();
    assert_eq!(v, expected);

    // Desktop marker, audio groups as the fourth element, escaping, round trip.
    let mut d = ConferenceSources::new();
    d.insert(
        "b",
        set(
            vec![video(5, "q\"uote\\").with_video_type("desktop"), audio(6, "m"), audio(7, "m")],
            vec![sim(&[5]), SsrcGroup::new(Semantics::Fid, MediaType::Audio, vec![6, 7])],
        ),
    );
    let text = d.to_json();
    let v: Value = serde_json::from_str(&text).unwrap();
    let b = v["sources"]["b"].as_array().unwrap();
    assert_eq!(b.len(), 4);
    assert_eq!(b[0][0]["v"], "d");
    // videoType is accepted in any case; a desktop source in capitals is still desktop in JSON.
    let mut caps = ConferenceSources::new();
    caps.insert("c", set(vec![video(8, "m").with_video_type("DeskTop")], vec![]));
    let v: Value = serde_json::from_str(&caps.to_json()).unwrap();
    assert_eq!(v["sources"]["c"][0][0]["v"], "d");
    assert_eq!(b[0][0]["m"], "q\"uote\\");
    assert_eq!(b[1][0], serde_json::json!(["s", 5]));
    assert_eq!(b[3][0], serde_json::json!(["f", 6, 7]));
    assert_eq!(ConferenceSources::from_json(&text).unwrap(), d);
    // JSON order is video first; compare as sets.
    let sorted = |e: &EndpointSources| {
        let mut v = e.sources.clone();
        v.sort_by_key(|s| s.ssrc);
        v
    };
    let back = ConferenceSources::from_json(&c.to_json()).unwrap();
    assert_eq!(back.get(SourceOwner::Bridge).unwrap().sources[0].video_type.as_deref(), Some("camera"));
    for (owner, set) in c.iter().filter(|(o, _)| *o != "jvb") {
        assert_eq!(sorted(back.get(owner).unwrap()), sorted(set), "{owner}");
        assert_eq!(back.get(owner).unwrap().groups, set.groups);
    }
}

#[test]
fn jingle_source_encoding() {
    let c = sample_conference();
    let els = c.jingle_elements(MediaType::Video);
    let xml: Vec<String> = els.iter().map(|e| e.to_xml()).collect();
    assert!(xml.contains(&"<source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2595344399' name='a1b2c3d4-v0' videoType='camera'><ssrc-info xmlns='http://jitsi.org/jitmeet' owner='a1b2c3d4'/><parameter xmlns='urn:xmpp:jingle:apps:rtp:1' name='msid' value='a1b2c3d4-video-0 7f0e'/></source>".to_string()), "{xml:?}");
    assert!(xml.contains(&"<ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'><source ssrc='2595344399'/><source ssrc='2874594781'/></ssrc-group>".to_string()));
    assert!(xml.iter().any(|x| x.contains("owner='jvb'") && x.contains("1205367291")));
    // The encoding parses back to the same sources.
    let content = Element::new("content", ns::JINGLE)
        .attr("name", "video")
        .child(Element::new("description", ns::RTP).attr("media", "video").children(els));
    let parsed = EndpointSources::from_jingle_contents(&[content]).unwrap();
    assert_eq!(parsed.sources.len(), 3);
    assert_eq!(parsed.source(2595344399), c.get("a1b2c3d4").unwrap().source(2595344399));
}

#[test]
fn colibri2_sources_of_captured_answer() {
    let named = accept_request(ACCEPT_NAMES).sources().unwrap();
    let el = named.to_colibri2("d8c2803e");
    assert!(el.is("sources", ns::COLIBRI2));
    let ms: Vec<&Element> = el.children_named("media-source", ns::COLIBRI2).collect();
    assert_eq!(ms.len(), 2);
    assert_eq!((ms[0].get_attr("type"), ms[0].get_attr("id")), (Some("audio"), Some("d8c2803e-a0")));
    assert_eq!((ms[1].get_attr("type"), ms[1].get_attr("id")), (Some("video"), Some("d8c2803e-v0")));
    assert_eq!(ms[1].children_named("source", ns::SSMA).count(), 6);
    assert_eq!(ms[1].children_named("ssrc-group", ns::SSMA).count(), 4);
    let xml = el.to_xml();
    assert!(!xml.contains("msid") && !xml.contains("ssrc-info"), "{xml}");
    assert!(xml.contains("<source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='4263851834' name='d8c2803e-a0'/>"), "{xml}");
    // Round trip through the colibri2 parser (msids are not on this wire).
    let back = EndpointSources::from_colibri2(&el).unwrap();
    assert_eq!(back.sources.len(), 7);
    assert_eq!(back.groups, named.groups);

    // Unnamed sources go to <endpoint>-a0 / -v0.
    let el = captured_set().to_colibri2("ep1");
    let ids: Vec<_> = el.elements().map(|m| m.get_attr("id").unwrap().to_string()).collect();
    assert_eq!(ids, ["ep1-a0", "ep1-v0"]);
    assert_eq!(EndpointSources::new().to_colibri2("ep1").to_xml(), "<sources xmlns='jitsi:colibri2'/>");

    // A group goes into the media-source of its first SSRC's source.
    let s = set(
        vec![video(1, "m").with_name("x-v0"), video(2, "m").with_name("x-v1"), video(3, "m").with_name("x-v1")],
        vec![fid(2, 1)],
    );
    let el = s.to_colibri2("x");
    let ms: Vec<&Element> = el.elements().collect();
    assert_eq!(ms.len(), 2);
    assert_eq!(ms[0].children_named("ssrc-group", ns::SSMA).count(), 0);
    assert_eq!(ms[1].children_named("ssrc-group", ns::SSMA).count(), 1);
}

#[test]
fn bridge_feedback_sources() {
    let el = parse_fragment(
        "<sources xmlns='jitsi:colibri2'>\
           <media-source type='audio' id='jvb-a0'><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='2849270913' name='jvb-a0'/></media-source>\
           <media-source type='video' id='jvb-v0'><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1205367291' name='jvb-v0'/></media-source>\
         </sources>",
    )
    .unwrap();
    let fb = EndpointSources::bridge_feedback(&el).unwrap();
    assert_eq!(
        fb.sources,
        vec![
            audio(2849270913, BRIDGE_AUDIO_MSID).with_name("jvb-a0"),
            video(1205367291, BRIDGE_VIDEO_MSID).with_name("jvb-v0"),
        ]
    );
    let bad = parse_fragment("<sources xmlns='jitsi:colibri2'><media-source type='data'/></sources>").unwrap();
    assert!(EndpointSources::bridge_feedback(&bad).is_err());
    let bad = parse_fragment(
        "<sources xmlns='jitsi:colibri2'><media-source type='audio'><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0'/></media-source></sources>",
    )
    .unwrap();
    assert!(EndpointSources::from_colibri2(&bad).is_err());
}

// ---------------------------------------------------------------- offers and outgoing IQs

const FOCUS: &str = "focus@auth.meet.example/focus";
const OCCUPANT: &str = "room1@conference.meet.example/c3d4e5f6";

fn bridge_transport() -> Element {
    parse_fragment(
        "<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='4hc3m1fq0i4ct6' pwd='2v4d5vl8l5t9tbbmrs1o2v7ad'>\
           <rtcp-mux/>\
           <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='actpass'>8E:2C:4A:19:7B</fingerprint>\
           <web-socket xmlns='http://jitsi.org/protocol/colibri' url='wss://meet.example/colibri-ws/jvb1/1d2c/c3d4e5f6?pwd=6k2a'/>\
           <candidate component='1' foundation='1' generation='0' id='53a7' network='0' priority='2130706431' protocol='udp' type='host' ip='10.0.0.12' port='10000'/>\
         </transport>",
    )
    .unwrap()
}

fn json_features() -> Features {
    Features { rtx: true, tcc: true, json_sources: true, source_names: true, ..Features::default_set() }
}

fn offer(json: bool) -> Offer<'static> {
    static SAMPLE: std::sync::OnceLock<ConferenceSources> = std::sync::OnceLock::new();
    let f = Features { json_sources: json, ..json_features() };
    Offer {
        contents: offer_media(&f),
        bridge_transport: bridge_transport(),
        sctp_port: Some(5000),
        sources: SourceView::new(SAMPLE.get_or_init(sample_conference)).media(f.audio, f.video),
        json,
        start_muted: (true, false),
        bridge_session_id: "0c9f3b1e-6d2a-4e7f-8b5c-1a2b3c4d5e6f".into(),
        region: Some("eu-west-1".into()),
    }
}

#[test]
fn offer_for_json_client() {
    let iq = offer(true).session_initiate(FOCUS, OCCUPANT, "6rbn2k8ahd2ns", "si-1");
    // Serialize and reparse: what goes on the wire is well-formed.
    let iq = parse_fragment(&iq.to_xml()).unwrap();
    assert_eq!(iq.get_attr("type"), Some("set"));
    assert_eq!(iq.get_attr("id"), Some("si-1"));
    assert_eq!(iq.get_attr("from"), Some(FOCUS));
    assert_eq!(iq.get_attr("to"), Some(OCCUPANT));
    let j = iq.get_child("jingle", ns::JINGLE).unwrap();
    assert_eq!(j.get_attr("action"), Some("session-initiate"));
    assert_eq!(j.get_attr("initiator"), Some(FOCUS));
    assert_eq!(j.get_attr("sid"), Some("6rbn2k8ahd2ns"));
    assert_eq!(j.get_attr("responder"), None);

    let contents: Vec<&Element> = j.children_named("content", ns::JINGLE).collect();
    let names: Vec<_> = contents.iter().map(|c| c.get_attr("name").unwrap()).collect();
    assert_eq!(names, ["audio", "video", "data"]);
    for c in &contents {
        assert_eq!(c.get_attr("creator"), Some("initiator"));
        assert_eq!(c.get_attr("senders"), Some("both"));
        let t = c.get_child("transport", ns::ICE_UDP).unwrap();
        assert_eq!(t.get_attr("ufrag"), Some("4hc3m1fq0i4ct6"));
        assert!(t.get_child("fingerprint", ns::DTLS).is_some());
        assert!(t.get_child("web-socket", ns::COLIBRI).is_some());
        assert_eq!(t.children_named("candidate", ns::ICE_UDP).count(), 1);
        let d = c.get_child("description", ns::RTP).unwrap();
        assert!(d.get_child("rtcp-mux", ns::RTP).is_some());
        assert_eq!(d.children_named("source", ns::SSMA).count(), 0, "JSON clients get no sources in contents");
    }
    let data_t = contents[2].get_child("transport", ns::ICE_UDP).unwrap();
    let map = data_t.get_child("sctpmap", ns::DTLS_SCTP).unwrap();
    assert_eq!(map.get_attr("number"), Some("5000"));
    assert_eq!(map.get_attr("protocol"), Some("webrtc-datachannel"));
    assert_eq!(map.get_attr("streams"), Some("1024"));
    assert!(contents[0].get_child("transport", ns::ICE_UDP).unwrap().get_child("sctpmap", ns::DTLS_SCTP).is_none());
    assert_eq!(contents[2].get_child("description", ns::RTP).unwrap().get_attr("media"), Some("application"));

    let video_pts: Vec<_> = contents[1]
        .get_child("description", ns::RTP)
        .unwrap()
        .children_named("payload-type", ns::RTP)
        .map(|p| (p.get_attr("id").unwrap().to_string(), p.get_attr("name").unwrap().to_string()))
        .collect();
    let expect: Vec<(String, String)> = [("41", "AV1"), ("100", "VP8"), ("107", "H264"), ("101", "VP9"), ("42", "rtx"), ("96", "rtx"), ("97", "rtx"), ("99", "rtx")]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(video_pts, expect);

    let group = j.get_child("group", ns::GROUPING).unwrap();
    assert_eq!(group.get_attr("semantics"), Some("BUNDLE"));
    let bundle: Vec<_> = group.elements().map(|c| c.get_attr("name").unwrap()).collect();
    assert_eq!(bundle, ["audio", "video", "data"]);
    let sm = j.get_child("startmuted", ns::START_MUTED).unwrap();
    assert_eq!((sm.get_attr("audio"), sm.get_attr("video")), (Some("true"), Some("false")));
    let bs = j.get_child("bridge-session", ns::FOCUS).unwrap();
    assert_eq!(bs.get_attr("id"), Some("0c9f3b1e-6d2a-4e7f-8b5c-1a2b3c4d5e6f"));
    assert_eq!(bs.get_attr("region"), Some("eu-west-1"));
    let json = j.get_child("json-message", ns::JITMEET).unwrap().text_content();
    let back = ConferenceSources::from_json(&json).unwrap();
    assert_eq!(back.get(SourceOwner::Bridge).unwrap().sources.len(), 2);
    assert_eq!(back.get("a1b2c3d4").unwrap().groups, vec![fid(2595344399, 2874594781)]);

    // Element order under <jingle>: contents, group, startmuted, bridge-session, json-message.
    let order: Vec<_> = j.elements().map(|e| e.name.as_str()).collect();
    assert_eq!(order, ["content", "content", "content", "group", "startmuted", "bridge-session", "json-message"]);

    // No startmuted when neither is set; no region when unknown.
    let mut o = offer(true);
    o.start_muted = (false, false);
    o.region = None;
    let j = o.session_initiate(FOCUS, OCCUPANT, "s", "i").reparsed().unwrap().get_child("jingle", ns::JINGLE).unwrap().clone();
    assert!(j.get_child("startmuted", ns::START_MUTED).is_none());
    assert_eq!(j.get_child("bridge-session", ns::FOCUS).unwrap().get_attr("region"), None);
    let tr = o.transport_replace(FOCUS, OCCUPANT, "s", "i");
    assert_eq!(tr.reparsed().unwrap().get_child("jingle", ns::JINGLE).unwrap().get_attr("action"), Some("transport-replace"));
}

#[test]
fn offer_for_non_json_client() {
    let iq = offer(false).session_initiate(FOCUS, OCCUPANT, "sid1", "si-2");
    let iq = parse_fragment(&iq.to_xml()).unwrap();
    let j = iq.get_child("jingle", ns::JINGLE).unwrap();
    let names: Vec<_> = j.children_named("content", ns::JINGLE).map(|c| c.get_attr("name").unwrap()).collect();
    assert_eq!(names, ["audio", "video"], "data content dropped (§2.4 quirk)");
    let bundle: Vec<_> = j.get_child("group", ns::GROUPING).unwrap().elements().map(|c| c.get_attr("name").unwrap()).collect();
    assert_eq!(bundle, ["audio", "video"]);
    assert!(j.get_child("json-message", ns::JITMEET).is_none());
    let v = j.children_named("content", ns::JINGLE).nth(1).unwrap().get_child("description", ns::RTP).unwrap();
    // Serialization order: payload types, hdrexts, extmap-allow-mixed, rtcp-mux, sources.
    let tail: Vec<_> = v.elements().skip_while(|e| e.name != "rtcp-mux").map(|e| e.name.as_str()).collect();
    assert_eq!(tail, ["rtcp-mux", "source", "source", "source", "ssrc-group"]);
    let owners: Vec<_> = v
        .children_named("source", ns::SSMA)
        .map(|s| s.get_child("ssrc-info", ns::JITMEET).unwrap().get_attr("owner").unwrap())
        .collect();
    assert_eq!(owners, ["a1b2c3d4", "a1b2c3d4", "jvb"]);
    let msid = v.children_named("source", ns::SSMA).next().unwrap().get_child("parameter", ns::RTP).unwrap();
    assert_eq!((msid.get_attr("name"), msid.get_attr("value")), (Some("msid"), Some("a1b2c3d4-video-0 7f0e")));
    let a = j.children_named("content", ns::JINGLE).next().unwrap().get_child("description", ns::RTP).unwrap();
    assert_eq!(a.children_named("source", ns::SSMA).count(), 2);
    // Sources parse back through the client-side parser.
    let contents: Vec<Element> = j.children_named("content", ns::JINGLE).cloned().collect();
    assert_eq!(EndpointSources::from_jingle_contents(&contents).unwrap().sources.len(), 5);
}

#[test]
fn source_add_and_remove_iqs() {
    let delta = ConferenceSources::single(
        "b2c3d4e5",
        set(
            vec![
                video(3735928559, "b2c3d4e5-video-1 aa11").with_name("b2c3d4e5-v1").with_video_type("desktop"),
                video(3735928560, "b2c3d4e5-video-1 aa11").with_name("b2c3d4e5-v1").with_video_type("desktop"),
            ],
            vec![fid(3735928559, 3735928560)],
        ),
    );
    // Reparsed: the sources are cached encodings (raw XML) until written.
    let iq = source_add(FOCUS, OCCUPANT, "sid", "sa-9", &delta, true).reparsed().unwrap();
    let j = iq.get_child("jingle", ns::JINGLE).unwrap();
    let attrs: Vec<_> = j.attrs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(attrs, ["action", "sid"]);
    assert_eq!(j.get_attr("action"), Some("source-add"));
    assert_eq!(j.elements().count(), 1);
    let v: Value = serde_json::from_str(&j.get_child("json-message", ns::JITMEET).unwrap().text_content()).unwrap();
    let expected: Value = serde_json::from_str(
        r#"{"sources":{"b2c3d4e5":[[{"s":3735928559,"n":"b2c3d4e5-v1","m":"b2c3d4e5-video-1 aa11","v":"d"},{"s":3735928560,"n":"b2c3d4e5-v1","m":"b2c3d4e5-video-1 aa11","v":"d"}],[["f",3735928559,3735928560]],[]]}}"#,
    )
    .unwrap();
    assert_eq!(v, expected);

    let iq = source_remove(FOCUS, OCCUPANT, "sid", "sr-1", &delta, false);
    let iq = parse_fragment(&iq.to_xml()).unwrap();
    let j = iq.get_child("jingle", ns::JINGLE).unwrap();
    assert_eq!(j.get_attr("action"), Some("source-remove"));
    assert_eq!(j.get_attr("initiator"), None);
    let contents: Vec<Element> = j.children_named("content", ns::JINGLE).cloned().collect();
    assert_eq!(contents.len(), 1, "only media types with sources");
    assert_eq!(contents[0].get_attr("name"), Some("video"));
    assert_eq!(contents[0].get_child("description", ns::RTP).unwrap().get_attr("media"), Some("video"));
    let r = JingleRequest::from_jingle(j).unwrap();
    assert_eq!(r.sources().unwrap(), delta.get("b2c3d4e5").unwrap().clone());
}

#[test]
fn session_terminate_and_transport_info_iqs() {
    let iq = session_terminate(FOCUS, OCCUPANT, "6rbn2k8ahd2ns", "st-3", "success", Some("moving"));
    assert_eq!(
        iq.to_xml_in(ns::CLIENT),
        format!(
            "<iq type='set' id='st-3' from='{FOCUS}' to='{OCCUPANT}'><jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='6rbn2k8ahd2ns'><reason><success/><text>moving</text></reason></jingle></iq>"
        )
    );
    let iq = session_terminate(FOCUS, OCCUPANT, "s", "i", "general-error", None);
    assert!(iq.to_xml().contains("<reason><general-error/></reason>"));
    let r = JingleRequest::parse(&session_terminate(FOCUS, OCCUPANT, "s", "i", "expired", Some("Idle session timeout"))).unwrap();
    assert_eq!(r.reason, Some(("expired".into(), Some("Idle session timeout".into()))));

    let ti = transport_info(FOCUS, OCCUPANT, "s", "i", "audio", &bridge_transport());
    let r = JingleRequest::parse(&ti).unwrap();
    assert_eq!(r.action, JingleAction::TransportInfo);
    assert_eq!(first_ice_transport(&r.contents).unwrap().to_element(), bridge_transport());
}
