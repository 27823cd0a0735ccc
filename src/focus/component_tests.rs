//! The router and the Jitsi Prosody components (moderation.md §0, §2 row 2, §3):
//! discovery, messages accepted only from the discovered addresses, breakout rooms
//! admitted and exempt from authentication.

use super::*;
use crate::messages::ComponentMessage;

use super::tests::router;

fn fake_route(r: &mut FocusRouter, id: u64, room: &str) -> Receiver<Inbox> {
    let id = ConferenceId(id);
    let room = Jid::parse(room).unwrap();
    let (tx, rx) = unbounded();
    let load = Arc::new(crate::messages::InboxLoad::new(r.inbox_total.clone()));
    r.rooms.insert(room.clone(), Route::new(id, tx, rx.clone(), None, load, 1000 + inbox::HOLD_SLACK));
    r.by_id.insert(id, room);
    rx
}

/// Connect, and answer the discovery request with these identities (type, name).
fn discovered(r: &mut FocusRouter, identities: &[(&str, &str)]) {
    let mut out = Outbox::default();
    r.connected(CLIENT, &Jid::parse("focus@auth.meet.test/focus").unwrap(), &mut out);
    r.connected(COMPONENT, &Jid::parse("focus.meet.test").unwrap(), &mut out);
    let disco = out
        .drain()
        .into_iter()
        .map(|(_, e)| e)
        .find(|e| e.get_attr("to") == Some("meet.test") && e.get_child("query", ns::DISCO_INFO).is_some())
        .expect("a disco#info to the domain");
    let mut q = Element::new("query", ns::DISCO_INFO);
    for (t, n) in identities {
        q = q.child(Element::new("identity", ns::DISCO_INFO).attr("category", "component").attr("type", *t).attr("name", *n));
    }
    let mut a = iq_result(&disco).child(q);
    a.set_attr("from", "meet.test");
    r.stanza(CLIENT, Incoming::from(a), &mut out);
}

fn json_message(from: &str, json: &str, room_attr: Option<&str>) -> Element {
    Element::new("message", ns::CLIENT)
        .attr("from", from)
        .attr("to", "focus@auth.meet.test/focus")
        .child(Element::new("json-message", ns::JITMEET).attr_opt("room", room_attr).text(json))
}

const ENABLE: &str = r#"{"type":"av_moderation","enabled":true,"room":"room1@conference.meet.test","actor":"room1@conference.meet.test/m","mediaType":"audio"}"#;

#[test]
fn component_messages_are_accepted_only_from_the_discovered_addresses() {
    let mut r = router(&[]);
    discovered(&mut r, &[("av_moderation", "avmoderation.meet.test"), ("room_metadata", "metadata.meet.test")]);
    let inbox = fake_route(&mut r, 3, "room1@conference.meet.test");
    let mut out = Outbox::default();
    // Forged by a participant (from its occupant JID, or its own JID), or from another
    // component, or with the right host but a resource: ignored and counted.
    for from in ["room1@conference.meet.test/mallory", "mallory@meet.test/x", "metadata2.meet.test", "avmoderation.meet.test/x"] {
        r.stanza(CLIENT, Incoming::from(json_message(from, ENABLE, None)), &mut out);
    }
    assert!(inbox.is_empty());
    assert_eq!(r.shared.metrics.component_messages_ignored.load(Ordering::Relaxed), 4);
    // Malformed JSON, a bad media type, a huge whitelist, the wrong type: refused and counted.
    let many: Vec<String> = (0..2000).map(|i| format!("\"room1@conference.meet.test/{}\"", i)).collect();
    let huge = format!(r#"{{"type":"av_moderation","room":"room1@conference.meet.test","whitelists":{{"audio":[{}]}}}}"#, many.join(","));
    for bad in ["{not json", r#"{"type":"av_moderation","room":"room1@conference.meet.test","mediaType":"smell"}"#, &huge, r#"{"type":"room_metadata"}"#] {
        r.stanza(CLIENT, Incoming::from(json_message("avmoderation.meet.test", bad, None)), &mut out);
    }
    assert!(inbox.is_empty());
    assert_eq!(r.shared.metrics.component_messages_invalid.load(Ordering::Relaxed), 4);
    // The real component's message reaches the conference, typed.
    r.stanza(CLIENT, Incoming::from(json_message("avmoderation.meet.test", ENABLE, None)), &mut out);
    match inbox.try_recv() {
        Ok(Inbox::Component(ComponentMessage::AvModeration(m))) => assert_eq!(m.enabled, Some(true)),
        other => panic!("{:?}", other),
    }
    // Metadata names its room in the attribute.
    let md = r#"{"type":"room_metadata","metadata":{"startMuted":{"audio":true}}}"#;
    r.stanza(CLIENT, Incoming::from(json_message("metadata.meet.test", md, Some("room1@conference.meet.test"))), &mut out);
    assert!(matches!(inbox.try_recv(), Ok(Inbox::Component(ComponentMessage::RoomMetadata(_)))));
    // A room without a conference: nothing to do.
    r.stanza(CLIENT, Incoming::from(json_message("metadata.meet.test", md, Some("other@conference.meet.test"))), &mut out);
    assert_eq!(r.shared.metrics.component_messages.load(Ordering::Relaxed), 2);
    assert!(out.drain().is_empty(), "the focus never replies to component messages");
}

#[test]
fn without_discovery_no_component_is_trusted_and_breakout_rooms_are_refused() {
    let mut r = router(&[]);
    discovered(&mut r, &[]);
    let inbox = fake_route(&mut r, 3, "room1@conference.meet.test");
    let mut out = Outbox::default();
    r.stanza(CLIENT, Incoming::from(json_message("avmoderation.meet.test", ENABLE, None)), &mut out);
    assert!(inbox.is_empty());
    assert_eq!(r.shared.metrics.component_messages_ignored.load(Ordering::Relaxed), 1);
    let req = ConferenceRequest::parse(&Element::new("conference", ns::FOCUS).attr("room", "b1@breakout.meet.test")).unwrap();
    assert!(matches!(r.start_conference(&req, None), Err(StartError::Room(RequestError::ForeignService { .. }))));
}

fn request(from: &str, room: &str) -> Element {
    Element::new("iq", ns::COMPONENT)
        .attr("type", "set")
        .attr("id", "c1")
        .attr("from", from)
        .attr("to", "focus.meet.test")
        .child(Element::new("conference", ns::FOCUS).attr("room", room).attr("machine-uid", "m"))
}

#[test]
fn breakout_rooms_are_admitted_and_need_no_authentication() {
    let mut r = router(&["--auth_domain=auth.meet.test"]);
    discovered(&mut r, &[("breakout_rooms", "breakout.meet.test")]);
    let mut out = Outbox::default();
    // A guest may not create a main room…
    r.stanza(COMPONENT, Incoming::from(request("guest@guest.meet.test/1", "main@conference.meet.test")), &mut out);
    let e = out.drain().remove(0).1;
    assert_eq!(crate::xmpp::stanza::parse_error(&e).unwrap().condition_name, "not-authorized");
    // …but may create a breakout room (no session check).
    let _inbox = fake_route(&mut r, 9, "b1@breakout.meet.test");
    r.stanza(COMPONENT, Incoming::from(request("guest@guest.meet.test/1", "b1@breakout.meet.test")), &mut out);
    assert!(out.drain().is_empty(), "no error: the request went to the breakout conference");
    // …and may return to a main room whose breakout conferences run.
    r.shared.breakouts.lock().add(&Jid::parse("main@conference.meet.test").unwrap());
    let _main = fake_route(&mut r, 10, "main@conference.meet.test");
    r.stanza(COMPONENT, Incoming::from(request("guest@guest.meet.test/1", "main@conference.meet.test")), &mut out);
    assert!(out.drain().is_empty());
    // Other services stay refused.
    r.stanza(COMPONENT, Incoming::from(request("guest@guest.meet.test/1", "x@lobby.meet.test")), &mut out);
    let e = out.drain().remove(0).1;
    assert_eq!(crate::xmpp::stanza::parse_error(&e).unwrap().condition_name, "bad-request");
    let req = ConferenceRequest::parse(&Element::new("conference", ns::FOCUS).attr("room", "b2@breakout.meet.test")).unwrap();
    assert!(r.room_services.admit(&req.room).is_ok());
}

#[test]
fn a_mute_request_for_a_room_without_conference_is_item_not_found() {
    let mut r = router(&[]);
    discovered(&mut r, &[]);
    let mut out = Outbox::default();
    let mute = |text: &str| {
        Element::new("iq", ns::CLIENT)
            .attr("type", "set")
            .attr("id", "m1")
            .attr("from", "u@meet.test/1")
            .attr("to", "focus@auth.meet.test/focus")
            .child(Element::new("mute", ns::AUDIO_MUTE).attr("jid", "nowhere@conference.meet.test/p").text(text))
    };
    r.stanza(CLIENT, Incoming::from(mute("true")), &mut out);
    let e = out.drain().remove(0).1;
    assert_eq!(crate::xmpp::stanza::parse_error(&e).unwrap().condition_name, "item-not-found");
    r.stanza(CLIENT, Incoming::from(mute("")), &mut out);
    let e = out.drain().remove(0).1;
    assert_eq!(crate::xmpp::stanza::parse_error(&e).unwrap().condition_name, "bad-request", "row 1 comes first");
}
