//! Colibri2 / health logic of the simulator, without sockets.

use std::time::{Duration, Instant};

use crossbeam_channel::bounded;

use super::colibri::*;
use super::*;
use jicofo::xml::{parse_fragment, Element};
use jicofo::xmpp::incoming::Incoming;
use jicofo::xmpp::ns;
use jicofo::xmpp::stanza::parse_error;

const MID: &str = "5b1c7a8e-2f4d-4c1e-9a3b-7d2e6f0a1b2c";

fn bridge() -> Bridge {
    Bridge::seeded(BridgeConfig::default(), 7)
}

/// An IQ around a conference-modify given as XML (default namespace jitsi:colibri2).
fn iq(id: &str, body: &str) -> Element {
    let cm = parse_fragment(body).expect("test XML parses");
    Element::new("iq", ns::CLIENT)
        .attr("type", "get")
        .attr("id", id)
        .attr("from", "jvbbrewery@internal.auth.meet.test/focus")
        .attr("to", "jvbbrewery@internal.auth.meet.test/jvb1")
        .child(cm)
}

fn create_body(ep: &str) -> String {
    format!(
        "<conference-modify xmlns='jitsi:colibri2' meeting-id='{MID}' name='room1@conference.meet.test' create='true'>\
           <endpoint id='{ep}' create='true' stats-id='Alice-X1'>\
             <media type='audio'><payload-type xmlns='urn:xmpp:jingle:apps:rtp:1' id='111' name='opus' clockrate='48000' channels='2'/></media>\
             <transport ice-controlling='true'><sctp/></transport>\
             <sources/>\
             <capability name='source-names'/><capability name='ssrc-rewriting'/>\
           </endpoint>\
         </conference-modify>"
    )
}

fn add_body(ep: &str) -> String {
    format!(
        "<conference-modify xmlns='jitsi:colibri2' meeting-id='{MID}'>\
           <endpoint id='{ep}' create='true'>\
             <transport ice-controlling='true'/><sources/><capability name='source-names'/>\
           </endpoint>\
         </conference-modify>"
    )
}

fn modified(reply: &Element) -> &Element {
    assert_eq!(reply.get_attr("type"), Some("result"), "{}", reply);
    reply.get_child("conference-modified", ns::COLIBRI2).expect("conference-modified")
}

/// Check an error reply: condition, text, colibri2 reason (None = no colibri2 child).
fn assert_error(reply: &Element, cond: ErrorCondition, text: &str, reason: Option<&str>) {
    assert_eq!(reply.get_attr("type"), Some("error"), "{}", reply);
    let e = parse_error(reply).expect("error");
    assert_eq!(e.condition, cond, "{}", reply);
    assert_eq!(e.text.as_deref(), Some(text));
    let c2 = e.extra.iter().find(|x| x.is("error", ns::COLIBRI2));
    assert_eq!(c2.and_then(|x| x.get_attr("reason")), reason, "{}", reply);
    assert!(reply.get_child("conference-modify", ns::COLIBRI2).is_none(), "payload echoed");
}

fn feedback(m: &Element) -> (u32, u32) {
    let s = m.get_child("sources", ns::COLIBRI2).expect("feedback sources");
    let get = |id: &str, ty: &str| {
        let ms = s.children_named("media-source", ns::COLIBRI2).find(|x| x.get_attr("id") == Some(id)).unwrap();
        assert_eq!(ms.get_attr("type"), Some(ty));
        let src = ms.get_child("source", NS_SSMA).unwrap();
        assert_eq!(src.get_attr("name"), Some(id));
        src.get_attr("ssrc").unwrap().parse::<u32>().unwrap()
    };
    (get("jvb-a0", "audio"), get("jvb-v0", "video"))
}

#[test]
fn create_answers_transport_and_feedback_sources() {
    let mut b = bridge();
    let now = Instant::now();
    let req = iq("alloc-1", &create_body("a1b2c3d4"));
    let reply = b.colibri_iq(&req, now);
    assert_eq!(reply.get_attr("id"), Some("alloc-1"));
    assert_eq!(reply.get_attr("to"), req.get_attr("from"));
    assert_eq!(reply.get_attr("from"), req.get_attr("to"));
    let m = modified(&reply);
    assert!(m.attrs.is_empty(), "conference-modified has no attributes");
    let ep = m.get_child("endpoint", ns::COLIBRI2).unwrap();
    assert_eq!(ep.get_attr("id"), Some("a1b2c3d4"));
    let outer = ep.get_child("transport", ns::COLIBRI2).unwrap();
    let ice = outer.get_child("transport", NS_ICE).unwrap();
    let ufrag = ice.get_attr("ufrag").unwrap();
    assert_eq!(ufrag.len(), 14);
    assert!(ufrag.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    assert_eq!(ice.get_attr("pwd").unwrap().len(), 26);
    assert!(ice.get_child("rtcp-mux", NS_ICE).is_some());
    let fp = ice.get_child("fingerprint", NS_DTLS).unwrap();
    assert_eq!(fp.get_attr("hash"), Some("sha-256"));
    assert_eq!(fp.get_attr("setup"), Some("actpass"));
    let bytes: Vec<String> = fp.text_content().split(':').map(str::to_string).collect();
    assert_eq!(bytes.len(), 32);
    assert!(bytes.iter().all(|x| x.len() == 2 && x.chars().all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c))));
    let ws = ice.get_child("web-socket", ns::COLIBRI).unwrap().get_attr("url").unwrap();
    let conf = &b.conferences[MID];
    let prefix = format!("wss://meet.test/colibri-ws/jvb1/{}/a1b2c3d4?pwd=", conf.internal_id);
    assert!(ws.starts_with(&prefix), "{}", ws);
    assert!(ws.len() > prefix.len());
    let cands: Vec<&Element> = ice.children_named("candidate", NS_ICE).collect();
    assert_eq!(cands.len(), 1);
    let c = cands[0];
    for (k, v) in [("component", "1"), ("generation", "0"), ("network", "0"), ("protocol", "udp"), ("type", "host"), ("ip", "127.0.0.1"), ("port", "10000")] {
        assert_eq!(c.get_attr(k), Some(v), "{}", k);
    }
    for k in ["foundation", "id", "priority"] {
        assert!(c.get_attr(k).is_some(), "{}", k);
    }
    let sctp = outer.get_child("sctp", ns::COLIBRI2).unwrap();
    assert_eq!((sctp.get_attr("port"), sctp.get_attr("role")), (Some("5000"), Some("server")));
    let (a, v) = feedback(m);
    assert_eq!((a, v), (conf.audio_ssrc, conf.video_ssrc));
    // Endpoint before sources.
    let names: Vec<&str> = m.elements().map(|e| e.name.as_str()).collect();
    assert_eq!(names, vec!["endpoint", "sources"]);
    assert_eq!(b.participants(), 1);
    assert_eq!(conf.name.as_deref(), Some("room1@conference.meet.test"));
}

#[test]
fn second_endpoint_without_conference_create() {
    let mut b = bridge();
    let now = Instant::now();
    let first = b.colibri_iq(&iq("1", &create_body("a1")), now);
    let fb1 = feedback(modified(&first));
    let reply = b.colibri_iq(&iq("2", &add_body("b2")), now);
    let m = modified(&reply);
    let ep = m.get_child("endpoint", ns::COLIBRI2).unwrap();
    assert_eq!(ep.get_attr("id"), Some("b2"));
    let ice = ep.get_child("transport", ns::COLIBRI2).unwrap().get_child("transport", NS_ICE).unwrap();
    // No <sctp/> requested: none answered.
    assert!(ep.get_child("transport", ns::COLIBRI2).unwrap().get_child("sctp", ns::COLIBRI2).is_none());
    assert!(ice.get_child("web-socket", ns::COLIBRI).unwrap().get_attr("url").unwrap().contains("/b2?pwd="));
    // Same feedback SSRCs for the whole conference.
    assert_eq!(feedback(m), fb1);
    assert_eq!(b.participants(), 2);

    // An update: bare echo, no transport, no feedback sources; sources replaced.
    let upd = format!(
        "<conference-modify xmlns='jitsi:colibri2' meeting-id='{MID}'>\
           <endpoint id='b2' stats-id='Bob'>\
             <transport><transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='x' pwd='y'>\
               <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='active'>AA</fingerprint></transport></transport>\
             <sources><media-source id='b2-a0' type='audio'><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1'/></media-source></sources>\
             <initial-last-n value='10'/>\
           </endpoint>\
         </conference-modify>"
    );
    let reply = b.colibri_iq(&iq("3", &upd), now);
    let m = modified(&reply);
    assert_eq!(m.to_xml(), "<conference-modified xmlns='jitsi:colibri2'><endpoint id='b2'/></conference-modified>");
    let ep = b.conferences[MID].endpoint("b2").unwrap();
    assert_eq!(ep.sources.len(), 1);
    assert_eq!(ep.dtls_server, Some(true));
    assert_eq!(ep.initial_last_n.as_deref(), Some("10"));
    assert_eq!(ep.stats_id.as_deref(), Some("Bob"));

    // Force-mute (several endpoints allowed).
    let fm = format!(
        "<conference-modify xmlns='jitsi:colibri2' meeting-id='{MID}'>\
           <endpoint id='a1'><force-mute audio='true'/></endpoint>\
           <endpoint id='b2'><force-mute audio='true' video='true'/></endpoint>\
         </conference-modify>"
    );
    modified(&b.colibri_iq(&iq("4", &fm), now));
    let c = &b.conferences[MID];
    assert!(c.endpoint("a1").unwrap().force_mute_audio && !c.endpoint("a1").unwrap().force_mute_video);
    assert!(c.endpoint("b2").unwrap().force_mute_video);
}

#[test]
fn conference_recreate_is_conflict() {
    let mut b = bridge();
    let now = Instant::now();
    modified(&b.colibri_iq(&iq("1", &create_body("a1")), now));
    let reply = b.colibri_iq(&iq("2", &create_body("b2")), now);
    assert_error(&reply, ErrorCondition::Conflict, &format!("Conference already exists for ID: {MID}"), Some("conference_already_exists"));
    assert_eq!(reply.get_child("error", ns::CLIENT).unwrap().get_attr("type"), Some("cancel"));
    // Endpoint id already in use.
    let reply = b.colibri_iq(&iq("3", &add_body("a1")), now);
    assert_error(&reply, ErrorCondition::Conflict, "Endpoint with ID a1 already exists", None);
}

#[test]
fn unknown_conference_is_not_found() {
    let mut b = bridge();
    let reply = b.colibri_iq(&iq("1", &add_body("a1")), Instant::now());
    assert_error(&reply, ErrorCondition::ItemNotFound, &format!("Conference not found for ID: {MID}"), Some("conference_not_found"));
    let xml = reply.to_xml_in(ns::CLIENT);
    assert!(xml.contains("<error xmlns='jitsi:colibri2' reason='conference_not_found'/>"), "{}", xml);
}

#[test]
fn unknown_endpoint_update_names_the_endpoint() {
    let mut b = bridge();
    let now = Instant::now();
    modified(&b.colibri_iq(&iq("1", &create_body("a1")), now));
    let upd = format!(
        "<conference-modify xmlns='jitsi:colibri2' meeting-id='{MID}'><endpoint id='zz'><sources/></endpoint></conference-modify>"
    );
    let reply = b.colibri_iq(&iq("2", &upd), now);
    assert_error(&reply, ErrorCondition::ItemNotFound, "Endpoint not found for ID: zz", Some("unknown_endpoint"));
    let e = parse_error(&reply).unwrap();
    let ep = e.extra.iter().find(|x| x.is("endpoint", ns::COLIBRI2)).expect("<endpoint> child");
    assert_eq!(ep.get_attr("id"), Some("zz"));
}

#[test]
fn expire_only_ignores_unknown_endpoints() {
    let mut b = bridge();
    let now = Instant::now();
    modified(&b.colibri_iq(&iq("1", &create_body("a1")), now));
    modified(&b.colibri_iq(&iq("2", &add_body("b2")), now));
    let body = format!(
        "<conference-modify xmlns='jitsi:colibri2' meeting-id='{MID}'>\
           <endpoint id='ghost' expire='true'/><endpoint id='b2' expire='true'/><endpoint id='other'><force-mute/></endpoint>\
         </conference-modify>"
    );
    let reply = b.colibri_iq(&iq("3", &body), now);
    assert_eq!(
        modified(&reply).to_xml(),
        "<conference-modified xmlns='jitsi:colibri2'><endpoint id='ghost' expire='true'/>\
         <endpoint id='b2' expire='true'/><endpoint id='other'/></conference-modified>"
    );
    assert_eq!(b.participants(), 1);
    assert!(b.conferences.contains_key(MID));
}

#[test]
fn create_without_source_names_is_bad_request() {
    let mut b = bridge();
    let body = format!(
        "<conference-modify xmlns='jitsi:colibri2' meeting-id='{MID}' create='true'>\
           <endpoint id='a1' create='true'><transport/><capability name='ssrc-rewriting'/></endpoint>\
         </conference-modify>"
    );
    let reply = b.colibri_iq(&iq("1", &body), Instant::now());
    assert_error(&reply, ErrorCondition::BadRequest, "Source name support is mandatory.", None);
    assert_eq!(reply.get_child("error", ns::CLIENT).unwrap().get_attr("type"), Some("modify"));
    // Without a transport.
    let body = format!(
        "<conference-modify xmlns='jitsi:colibri2' meeting-id='{MID}'>\
           <endpoint id='a1' create='true'><capability name='source-names'/></endpoint>\
         </conference-modify>"
    );
    let reply = b.colibri_iq(&iq("2", &body), Instant::now());
    assert_error(&reply, ErrorCondition::BadRequest, "Attempt to create endpoint a1 with no <transport>", None);
}

#[test]
fn sctp_port_other_than_5000_is_bad_request_and_leaves_endpoint() {
    let mut b = bridge();
    let now = Instant::now();
    let body = |port: &str| {
        format!(
            "<conference-modify xmlns='jitsi:colibri2' meeting-id='{MID}' create='true'>\
               <endpoint id='a1' create='true'><transport><sctp port='{port}'/></transport><capability name='source-names'/></endpoint>\
             </conference-modify>"
        )
    };
    let reply = b.colibri_iq(&iq("1", &body("5001")), now);
    assert_error(&reply, ErrorCondition::BadRequest, "Specific SCTP port requested, not supported.", None);
    // The endpoint object was created before the SCTP check.
    assert_eq!(b.participants(), 1);
    let role = format!(
        "<conference-modify xmlns='jitsi:colibri2' meeting-id='{MID}'>\
           <endpoint id='b2' create='true'><transport><sctp role='client'/></transport><capability name='source-names'/></endpoint>\
         </conference-modify>"
    );
    let reply = b.colibri_iq(&iq("2", &role), now);
    assert_error(&reply, ErrorCondition::FeatureNotImplemented, "Unsupported SCTP role: client", None);
}

#[test]
fn expiring_the_last_endpoint_expires_the_conference() {
    let mut b = bridge();
    let now = Instant::now();
    modified(&b.colibri_iq(&iq("1", &create_body("a1")), now));
    let body = format!("<conference-modify xmlns='jitsi:colibri2' meeting-id='{MID}'><endpoint id='a1' expire='true'/></conference-modify>");
    let reply = b.colibri_iq(&iq("2", &body), now);
    assert_eq!(modified(&reply).to_xml(), "<conference-modified xmlns='jitsi:colibri2'><endpoint id='a1' expire='true'/></conference-modified>");
    assert!(b.conferences.is_empty());
    // A later conference expire gets item-not-found.
    let exp = format!("<conference-modify xmlns='jitsi:colibri2' meeting-id='{MID}' expire='true'/>");
    assert_error(&b.colibri_iq(&iq("3", &exp), now), ErrorCondition::ItemNotFound, &format!("Conference not found for ID: {MID}"), Some("conference_not_found"));
}

#[test]
fn explicit_conference_expire() {
    let mut b = bridge();
    let now = Instant::now();
    modified(&b.colibri_iq(&iq("1", &create_body("a1")), now));
    modified(&b.colibri_iq(&iq("2", &add_body("b2")), now));
    let exp = format!("<conference-modify xmlns='jitsi:colibri2' meeting-id='{MID}' expire='true'/>");
    let reply = b.colibri_iq(&iq("3", &exp), now);
    assert_eq!(modified(&reply).to_xml(), "<conference-modified xmlns='jitsi:colibri2'/>");
    assert!(b.conferences.is_empty());
    assert_eq!(b.participants(), 0);
    // The meeting-id can be created again, with new feedback SSRCs.
    modified(&b.colibri_iq(&iq("4", &create_body("a1")), now));
}

#[test]
fn graceful_shutdown_refuses_create_only() {
    let mut b = bridge();
    let now = Instant::now();
    modified(&b.colibri_iq(&iq("1", &create_body("a1")), now));
    b.graceful_shutdown = true;
    // Existing conference continues.
    modified(&b.colibri_iq(&iq("2", &add_body("b2")), now));
    let other = create_body("a1").replace(MID, "other-meeting");
    let reply = b.colibri_iq(&iq("3", &other), now);
    assert_error(&reply, ErrorCondition::ServiceUnavailable, "In graceful shutdown", Some("graceful_shutdown"));
    assert!(!b.conferences.contains_key("other-meeting"));
}

#[test]
fn health_ok_and_fail() {
    let mut b = bridge();
    let req = Element::new("iq", ns::CLIENT)
        .attr("type", "get")
        .attr("id", "h1")
        .attr("from", "jvbbrewery@internal.auth.meet.test/focus")
        .attr("to", "jvbbrewery@internal.auth.meet.test/jvb1")
        .child(Element::new("healthcheck", ns::HEALTHCHECK));
    assert_eq!(
        b.health_iq(&req).to_xml_in(ns::CLIENT),
        "<iq type='result' id='h1' to='jvbbrewery@internal.auth.meet.test/focus' from='jvbbrewery@internal.auth.meet.test/jvb1'/>"
    );
    b.health_failure = Some(HEALTH_FAILURE_TEXT.into());
    let reply = b.health_iq(&req);
    let e = parse_error(&reply).unwrap();
    assert_eq!(e.condition, ErrorCondition::InternalServerError);
    assert_eq!(e.error_type, "cancel");
    assert_eq!(e.text.as_deref(), Some(HEALTH_FAILURE_TEXT));
}

#[test]
fn relays_are_not_implemented() {
    let mut b = bridge();
    let now = Instant::now();
    modified(&b.colibri_iq(&iq("1", &create_body("a1")), now));
    let body = format!(
        "<conference-modify xmlns='jitsi:colibri2' meeting-id='{MID}'>\
           <relay id='jvb2' mesh-id='0' create='true'><transport ice-controlling='true'/></relay>\
         </conference-modify>"
    );
    let reply = b.colibri_iq(&iq("2", &body), now);
    assert_error(&reply, ErrorCondition::FeatureNotImplemented, "Octo is disabled in configuration.", None);
    // Endpoints and relays together: structural error with a reason.
    let both = format!(
        "<conference-modify xmlns='jitsi:colibri2' meeting-id='{MID}'><endpoint id='a1'/><relay id='jvb2' expire='true'/></conference-modify>"
    );
    let reply = b.colibri_iq(&iq("3", &both), now);
    assert_eq!(parse_error(&reply).unwrap().condition, ErrorCondition::FeatureNotImplemented);
    assert_eq!(
        parse_error(&reply).unwrap().extra[0].get_attr("reason"),
        Some("feature_not_implemented")
    );
}

#[test]
fn structural_and_name_checks() {
    let mut b = bridge();
    let now = Instant::now();
    let bad_name = create_body("a1").replace("room1@conference.meet.test", "room1@conference.meet.test/nick");
    assert_error(&b.colibri_iq(&iq("1", &bad_name), now), ErrorCondition::BadRequest, "Invalid conference name (not a JID)", None);
    modified(&b.colibri_iq(&iq("2", &create_body("a1")), now));
    let two = format!(
        "<conference-modify xmlns='jitsi:colibri2' meeting-id='{MID}'><endpoint id='a1'><sources/></endpoint><endpoint id='b2' expire='true'/></conference-modify>"
    );
    let reply = b.colibri_iq(&iq("3", &two), now);
    assert_eq!(parse_error(&reply).unwrap().condition, ErrorCondition::FeatureNotImplemented);
    // Visitor with sources.
    let visitor = format!(
        "<conference-modify xmlns='jitsi:colibri2' meeting-id='{MID}'><endpoint id='v1' create='true' muc-role='visitor'>\
           <transport/><sources><media-source id='v1-a0' type='audio'/></sources><capability name='source-names'/></endpoint></conference-modify>"
    );
    assert_error(&b.colibri_iq(&iq("4", &visitor), now), ErrorCondition::BadRequest, "Attempt to set sources for visitor endpoint v1", None);
}

#[test]
fn empty_conference_expires_after_twenty_seconds() {
    let mut b = bridge();
    let now = Instant::now();
    let body = format!("<conference-modify xmlns='jitsi:colibri2' meeting-id='{MID}' create='true'/>");
    let reply = b.colibri_iq(&iq("1", &body), now);
    // Create without endpoints still carries the feedback sources, and is not auto-expired.
    feedback(modified(&reply));
    assert!(b.conferences.contains_key(MID));
    assert_eq!(b.next_expiry(), Some(now + EMPTY_CONFERENCE_TIMEOUT));
    assert!(b.expire_idle(now + Duration::from_secs(19)).is_empty());
    assert_eq!(b.expire_idle(now + Duration::from_secs(21)), vec![MID.to_string()]);
    assert!(b.conferences.is_empty());
}

#[test]
fn ice_restart_keeps_existing_transport() {
    let mut b = bridge();
    let now = Instant::now();
    let first = b.colibri_iq(&iq("1", &create_body("a1")), now);
    let ufrag = modified(&first)
        .get_child("endpoint", ns::COLIBRI2).unwrap()
        .get_child("transport", ns::COLIBRI2).unwrap()
        .get_child("transport", NS_ICE).unwrap()
        .get_attr("ufrag").unwrap().to_string();
    let body = format!("<conference-modify xmlns='jitsi:colibri2' meeting-id='{MID}'><endpoint id='a1'><transport ice-restart='true'/></endpoint></conference-modify>");
    let reply = b.colibri_iq(&iq("2", &body), now);
    let ice = modified(&reply)
        .get_child("endpoint", ns::COLIBRI2).unwrap()
        .get_child("transport", ns::COLIBRI2).unwrap()
        .get_child("transport", NS_ICE).unwrap();
    assert_eq!(ice.get_attr("ufrag"), Some(ufrag.as_str()));
    assert_eq!(ice.get_attr("ice-generation"), None);
}

#[test]
fn ice_restart_once_established_gives_new_credentials_and_the_next_generation() {
    let mut b = bridge();
    let now = Instant::now();
    let ice_of = |reply: &Element| {
        modified(reply)
            .get_child("endpoint", ns::COLIBRI2).unwrap()
            .get_child("transport", ns::COLIBRI2).unwrap()
            .get_child("transport", NS_ICE).unwrap()
            .clone()
    };
    let first = ice_of(&b.colibri_iq(&iq("1", &create_body("a1")), now));
    // The participant's transport arrives (session-accept): ICE counts as established.
    let remote = format!(
        "<conference-modify xmlns='jitsi:colibri2' meeting-id='{MID}'><endpoint id='a1'><transport>\
         <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='x' pwd='y'/></transport></endpoint></conference-modify>"
    );
    b.colibri_iq(&iq("2", &remote), now);
    let body = format!("<conference-modify xmlns='jitsi:colibri2' meeting-id='{MID}'><endpoint id='a1'><transport ice-restart='true'/></endpoint></conference-modify>");
    let one = ice_of(&b.colibri_iq(&iq("3", &body), now));
    assert_ne!(one.get_attr("ufrag"), first.get_attr("ufrag"));
    assert_ne!(one.get_attr("pwd"), first.get_attr("pwd"));
    assert_eq!(one.get_attr("ice-generation"), Some("1"));
    let two = ice_of(&b.colibri_iq(&iq("4", &body), now));
    assert_eq!(two.get_attr("ice-generation"), Some("2"));
    assert_ne!(two.get_attr("ufrag"), one.get_attr("ufrag"));
}

// ---- router ---------------------------------------------------------------------------

fn router() -> (SimRouter, Sender<Command>, Receiver<Event>) {
    let (ctx, crx) = bounded(16);
    let (etx, erx) = bounded(16);
    (SimRouter::new(Settings::default(), crx, etx, None), ctx, erx)
}

fn jid(s: &str) -> Jid {
    Jid::parse(s).unwrap()
}

#[test]
fn router_joins_with_stats_and_answers() {
    let (mut r, ctx, erx) = router();
    let mut out = Outbox::default();
    r.connected(CONN, &jid("jvb@auth.meet.test/jvb1"), &mut out);
    let sent = out.drain();
    assert_eq!(sent.len(), 1);
    let p = &sent[0].1;
    assert_eq!(p.get_attr("to"), Some("JvbBrewery@internal.auth.meet.test/jvb1"));
    assert!(p.get_child("x", ns::MUC).is_some());
    let stats = p.get_child("stats", ns::COLIBRI).unwrap();
    let names: Vec<&str> = stats.elements().filter_map(|s| s.get_attr("name")).collect();
    assert_eq!(
        names,
        vec!["stress_level", "average_participant_stress", "drain", "graceful_shutdown", "shutting_down", "healthy",
             "version", "relay_id", "conferences", "participants", "current_timestamp"]
    );
    // Own presence back (room created: unlocked with an instant-room form).
    let own = parse_fragment(
        "<presence xmlns='jabber:client' from='jvbbrewery@internal.auth.meet.test/jvb1'>\
           <x xmlns='http://jabber.org/protocol/muc#user'><status code='110'/><status code='201'/></x></presence>",
    )
    .unwrap();
    r.stanza(CONN, Incoming::Other(own), &mut out);
    assert_eq!(erx.try_recv().unwrap(), Event::Joined("JvbBrewery@internal.auth.meet.test/jvb1".into()));
    let cfg = out.drain();
    assert_eq!(cfg.len(), 1);
    assert!(cfg[0].1.get_child("query", ns::MUC_OWNER).is_some());

    // Unknown IQ.
    let ver = Element::new("iq", ns::CLIENT).attr("type", "set").attr("id", "u1").child(Element::new("foo", "urn:x"));
    r.stanza(CONN, Incoming::Other(ver), &mut out);
    let e = parse_error(&out.drain()[0].1).unwrap();
    assert_eq!(e.condition, ErrorCondition::ServiceUnavailable);
    assert_eq!(e.text.as_deref(), Some("Unsupported IQ request foo"));

    // Controls: a stats presence at once, without the MUC <x/>.
    ctx.send(Command::Graceful(true)).unwrap();
    let now = Instant::now();
    r.tick(now, &mut out);
    let p = &out.drain()[0].1;
    assert!(p.get_child("x", ns::MUC).is_none());
    let stat = |p: &Element, n: &str| {
        p.get_child("stats", ns::COLIBRI).unwrap().elements().find(|s| s.get_attr("name") == Some(n)).unwrap().get_attr("value").unwrap().to_string()
    };
    assert_eq!(stat(p, "graceful_shutdown"), "true");

    // Delay: the answer waits for its due time.
    ctx.send(Command::Graceful(false)).unwrap();
    ctx.send(Command::Delay(Duration::from_millis(300))).unwrap();
    r.tick(now, &mut out);
    out.drain();
    r.stanza(CONN, Incoming::Other(iq("c1", &create_body("a1"))), &mut out);
    assert!(out.drain().is_empty());
    let due = r.next_deadline().unwrap();
    assert!(due > now && due <= Instant::now() + Duration::from_millis(300));
    r.tick(due, &mut out);
    let sent = out.drain();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1.get_attr("id"), Some("c1"));

    // Silent: nothing at all.
    ctx.send(Command::Silent(true)).unwrap();
    r.tick(Instant::now(), &mut out);
    out.drain();
    let h = Element::new("iq", ns::CLIENT).attr("type", "get").attr("id", "h").child(Element::new("healthcheck", ns::HEALTHCHECK));
    r.stanza(CONN, Incoming::Other(h), &mut out);
    assert!(out.drain().is_empty());

    // Shutdown: unavailable presence.
    r.shutting_down(&mut out);
    let sent = out.drain();
    assert_eq!(sent[0].1.get_attr("type"), Some("unavailable"));
}

#[test]
fn commands_parse() {
    assert_eq!(Command::parse("health fail"), Ok(Some(Command::Health(false))));
    assert_eq!(Command::parse("  stress 0.85 "), Ok(Some(Command::Stress(0.85))));
    assert_eq!(Command::parse("shutting-down true"), Ok(Some(Command::ShuttingDown(true))));
    assert_eq!(Command::parse("delay 250"), Ok(Some(Command::Delay(Duration::from_millis(250)))));
    assert_eq!(Command::parse("leave"), Ok(Some(Command::Leave)));
    assert_eq!(Command::parse(""), Ok(None));
    assert!(Command::parse("drain maybe").is_err());
    assert!(Command::parse("explode").is_err());
    assert!(Command::parse("crash now").is_err());
}

#[test]
fn timestamp_and_record_line() {
    let t = UNIX_EPOCH + Duration::from_millis(1_787_133_605_123);
    assert_eq!(utc_timestamp(t), "2026-08-19 10:00:05.123");
    assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01 00:00:00.000");
    let el = Element::new("iq", ns::CLIENT).attr("id", "a'b");
    let line = record_line(5, "in", "health", None, &el);
    assert!(line.ends_with('\n'));
    let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
    assert_eq!(v["t_ms"], 5);
    assert_eq!(v["dir"], "in");
    assert_eq!(v["kind"], "health");
    assert!(v["meeting_id"].is_null());
    assert_eq!(v["xml"], "<iq id='a&apos;b'/>");
}
