//! Colibri2 as the focus speaks it (`jitsi:colibri2`): typed requests built into
//! `conference-modify` IQs, `conference-modified` answers read into typed values
//! ([`ModifiedReader`], from the parser's events without a tree, `xmpp::incoming`; or
//! from a tree), and the bridge's errors classified into the reaction the focus owes
//! them (media.md §1, [`answer_outcome`]).

use crate::jid::Jid;
use crate::xml::{Element, Event, RawElement, RawWriter, RawXml};
use crate::xmpp::collect::{attr, take_attr, Depth, Step};
use crate::xmpp::jingle::sources::{ColibriSources, ColibriSourcesReader};
use crate::xmpp::jingle::transport::{IceTransport, TransportReader};
use crate::xmpp::ns;
use crate::xmpp::stanza::{parse_error, StanzaError};

/// One endpoint in a `conference-modify`.
#[derive(Clone, Debug, Default)]
pub struct EndpointRequest {
    /// The endpoint id (`<endpoint id>`): the participant's MUC nick.
    pub id: String,
    /// `create='true'`: allocate the endpoint (first request for it).
    pub create: bool,
    /// `expire='true'`: remove the endpoint from the bridge (nothing else is sent with it).
    pub expire: bool,
    /// The `stats-id` attribute, from the occupant's `<stats-id>` presence element.
    pub stats_id: Option<String>,
    /// `<media>` elements (create only), written ahead
    /// ([`crate::xmpp::jingle::codecs::OfferMedia::colibri`]).
    pub media: RawXml,
    /// Ask for an SCTP association (create only).
    pub sctp: bool,
    /// The participant's ICE transport (updates) — the inner ice-udp `<transport>`.
    pub transport: Option<Element>,
    /// A complete `<sources>` element (create: usually empty).
    pub sources: Option<Element>,
    /// `(audio, video)` force-mute state, when it changes.
    pub force_mute: Option<(bool, bool)>,
    /// `<capability name>` children (e.g. `source-names`, `ssrc-rewriting`).
    pub capabilities: Vec<String>,
    /// `<initial-last-n value>`: how many video streams to forward at first (never on create).
    pub initial_last_n: Option<u32>,
    /// Ask for an in-place ICE restart (`<transport ice-restart='true'/>`, media.md §1.10).
    pub ice_restart: bool,
}

impl EndpointRequest {
    fn to_element(&self) -> Element {
        let mut e = Element::new("endpoint", ns::COLIBRI2).attr("id", self.id.clone());
        if self.create {
            e.set_attr("create", "true");
        }
        if self.expire {
            e.set_attr("expire", "true");
            return e;
        }
        if let Some(s) = &self.stats_id {
            e.set_attr("stats-id", s.clone());
        }
        if !self.media.is_empty() {
            e = e.raw(self.media.clone());
        }
        if self.create {
            let mut t = Element::new("transport", ns::COLIBRI2).attr("ice-controlling", "true");
            if self.sctp {
                t = t.child(Element::new("sctp", ns::COLIBRI2));
            }
            e = e.child(t);
        } else if let Some(t) = &self.transport {
            e = e.child(Element::new("transport", ns::COLIBRI2).child(t.clone()));
        } else if self.ice_restart {
            e = e.child(Element::new("transport", ns::COLIBRI2).attr("ice-restart", "true"));
        }
        if let Some(s) = &self.sources {
            e = e.child(s.clone());
        } else if self.create {
            e = e.child(Element::new("sources", ns::COLIBRI2));
        }
        if let Some((a, v)) = self.force_mute {
            let mut fm = Element::new("force-mute", ns::COLIBRI2);
            if a {
                fm.set_attr("audio", "true");
            }
            if v {
                fm.set_attr("video", "true");
            }
            e = e.child(fm);
        }
        for c in &self.capabilities {
            e = e.child(Element::new("capability", ns::COLIBRI2).attr("name", c.clone()));
        }
        if let Some(n) = self.initial_last_n {
            e = e.child(Element::new("initial-last-n", ns::COLIBRI2).attr("value", n.to_string()));
        }
        e
    }

    /// [`Self::to_element`] written straight into `w` (no tree of its own: the media are
    /// shared, a transport or sources given as trees are written as they are).
    fn write(&self, w: &mut RawWriter) {
        let colibri = |w: &mut RawWriter, name: &'static str| w.start(name, ns::COLIBRI2);
        colibri(w, "endpoint");
        w.attr("id", &self.id);
        if self.create {
            w.attr("create", "true");
        }
        if self.expire {
            w.attr("expire", "true");
            w.end();
            return;
        }
        if let Some(s) = &self.stats_id {
            w.attr("stats-id", s);
        }
        w.share(&self.media);
        if self.create {
            colibri(w, "transport");
            w.attr("ice-controlling", "true");
            if self.sctp {
                colibri(w, "sctp");
                w.end();
            }
            w.end();
        } else if let Some(t) = &self.transport {
            colibri(w, "transport");
            w.element(t);
            w.end();
        } else if self.ice_restart {
            colibri(w, "transport");
            w.attr("ice-restart", "true");
            w.end();
        }
        if let Some(s) = &self.sources {
            w.element(s);
        } else if self.create {
            colibri(w, "sources");
            w.end();
        }
        if let Some((a, v)) = self.force_mute {
            colibri(w, "force-mute");
            if a {
                w.attr("audio", "true");
            }
            if v {
                w.attr("video", "true");
            }
            w.end();
        }
        for c in &self.capabilities {
            colibri(w, "capability");
            w.attr("name", c);
            w.end();
        }
        if let Some(n) = self.initial_last_n {
            colibri(w, "initial-last-n");
            w.attr("value", &n.to_string());
            w.end();
        }
        w.end();
    }
}

/// A `conference-modify` request.
#[derive(Clone, Debug, Default)]
pub struct ConferenceModify {
    /// The `meeting-id` attribute: the conference's UUID, the same on every bridge.
    pub meeting_id: String,
    /// Room JID; sent only with `create`.
    pub name: Option<String>,
    /// `create='true'`: create the conference (first request to this bridge only).
    pub create: bool,
    /// `expire='true'`: end the conference on this bridge.
    pub expire: bool,
    /// `Some(false)` sends `rtcstats-enabled='false'` on create (the room's `rtcstatsEnabled` property).
    pub rtcstats_enabled: Option<bool>,
    /// The `<endpoint>` children, in order.
    pub endpoints: Vec<EndpointRequest>,
}

impl ConferenceModify {
    /// The IQ (type get, as Jicofo sends it) to `bridge` with `id`.
    pub fn to_iq(&self, bridge: &Jid, id: &str) -> Element {
        let mut cm = Element::new("conference-modify", ns::COLIBRI2).attr("meeting-id", self.meeting_id.clone());
        if self.create {
            if let Some(n) = &self.name {
                cm.set_attr("name", n.clone());
            }
            cm.set_attr("create", "true");
            if self.rtcstats_enabled == Some(false) {
                cm.set_attr("rtcstats-enabled", "false");
            }
        }
        if self.expire {
            cm.set_attr("expire", "true");
        }
        cm = cm.children(self.endpoints.iter().map(EndpointRequest::to_element));
        Element::new("iq", ns::CLIENT).attr("type", "get").attr("id", id).attr("to", bridge.to_string()).child(cm)
    }

    /// [`Self::to_iq`] written straight into raw XML, without a tree: what the focus
    /// sends.
    pub fn to_stanza(&self, bridge: &Jid, id: &str) -> RawElement {
        let mut w = RawWriter::with_capacity(512);
        w.start("conference-modify", ns::COLIBRI2);
        w.attr("meeting-id", &self.meeting_id);
        if self.create {
            if let Some(n) = &self.name {
                w.attr("name", n);
            }
            w.attr("create", "true");
            if self.rtcstats_enabled == Some(false) {
                w.attr("rtcstats-enabled", "false");
            }
        }
        if self.expire {
            w.attr("expire", "true");
        }
        for e in &self.endpoints {
            e.write(&mut w);
        }
        w.end();
        RawElement::new("iq", ns::CLIENT, w.finish()).attr("type", "get").attr("id", id).attr("to", bridge.to_string())
    }
}

/// One endpoint of a `conference-modified` answer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EndpointAnswer {
    /// The `<endpoint id>` (the participant's nick).
    pub id: String,
    /// The inner ICE-UDP transport (ufrag, pwd, fingerprint, candidates, web-socket).
    pub transport: Option<IceTransport>,
    /// The `<sctp port>` the bridge allocated (when an SCTP association was asked for).
    pub sctp_port: Option<u16>,
    /// `expire='true'` on the answer: the bridge removed the endpoint.
    pub expired: bool,
}

/// A parsed `conference-modified`, typed (no part kept as XML).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConferenceModified {
    /// The `<endpoint>` children, in answer order.
    pub endpoints: Vec<EndpointAnswer>,
    /// The bridge's feedback `<sources>`, when present (checked when used:
    /// [`ColibriSources::bridge_feedback`]).
    pub sources: Option<ColibriSources>,
}

impl ConferenceModified {
    /// The answer for endpoint `id`, if the bridge sent one.
    pub fn endpoint(&self, id: &str) -> Option<&EndpointAnswer> {
        self.endpoints.iter().find(|e| e.id == id)
    }

    /// Read from a `<conference-modified>` element (the same reader as for events).
    pub fn from_element(el: &Element) -> ConferenceModified {
        let mut r = ModifiedReader::default();
        let mut first = true;
        crate::xml::parse::walk(el, &mut |ev| {
            if !std::mem::take(&mut first) {
                r.event(ev);
            }
        });
        r.finish()
    }

    /// Estimated heap memory held (see `Element::weight`).
    pub fn weight(&self) -> usize {
        self.endpoints.iter().map(|e| 96 + e.id.capacity() + e.transport.as_ref().map_or(0, IceTransport::weight)).sum::<usize>()
            + self.sources.as_ref().map_or(0, ColibriSources::weight)
    }

    /// The element (for test tools and logs).
    pub fn to_element(&self) -> Element {
        let mut cm = Element::new("conference-modified", ns::COLIBRI2);
        for e in &self.endpoints {
            let mut ep = Element::new("endpoint", ns::COLIBRI2).attr("id", e.id.clone());
            if e.expired {
                ep.set_attr("expire", "true");
            }
            if e.transport.is_some() || e.sctp_port.is_some() {
                let mut t = Element::new("transport", ns::COLIBRI2);
                if let Some(i) = &e.transport {
                    t = t.child(i.to_element());
                }
                if let Some(p) = e.sctp_port {
                    t = t.child(Element::new("sctp", ns::COLIBRI2).attr("port", p.to_string()));
                }
                ep = ep.child(t);
            }
            cm = cm.child(ep);
        }
        if let Some(s) = &self.sources {
            let mut el = Element::new("sources", ns::COLIBRI2);
            for m in &s.media_sources {
                let mut ms = Element::new("media-source", ns::COLIBRI2).attr_opt("type", m.media_type.clone());
                for src in &m.sources {
                    ms = ms.child(
                        Element::new("source", ns::SSMA)
                            .attr_opt("ssrc", src.ssrc.clone())
                            .attr_opt("name", src.name.clone())
                            .attr_opt("videoType", src.video_type.clone()),
                    );
                }
                for g in &m.groups {
                    ms = ms.child(
                        Element::new("ssrc-group", ns::SSMA)
                            .attr_opt("semantics", g.semantics.clone())
                            .children(g.ssrcs.iter().map(|x| Element::new("source", ns::SSMA).attr_opt("ssrc", x.clone()))),
                    );
                }
                el = el.child(ms);
            }
            cm = cm.child(el);
        }
        cm
    }
}

/// The child being read below `<conference-modified>`.
#[derive(Debug)]
enum ModifiedChild {
    Skip(Depth),
    Sources(ColibriSourcesReader),
    /// An `<endpoint>`, and inside it the part being read.
    Endpoint(EndpointAnswer, Option<EndpointChild>, bool),
}

/// The part of an `<endpoint>` being read.
#[derive(Debug)]
enum EndpointChild {
    Skip(Depth),
    /// The first colibri2 `<transport>`: inside it the ICE transport being read.
    Outer { ice: Option<TransportReader>, ice_seen: bool, sctp_seen: bool, depth: Depth },
}

/// Reads a [`ConferenceModified`] from the events below `<conference-modified>`: every
/// `<endpoint>` (its first colibri2 `<transport>`'s first ICE transport and first
/// `<sctp port>`), and the first `<sources>`.
#[derive(Debug, Default)]
pub struct ModifiedReader {
    out: ConferenceModified,
    sources_seen: bool,
    child: Option<ModifiedChild>,
}

impl ModifiedReader {
    /// The next event below `<conference-modified>`; [`Step::Closed`] at its end.
    pub fn event(&mut self, ev: Event) -> Step {
        let Some(child) = &mut self.child else {
            match ev {
                Event::Start { name, ns, mut attrs } => {
                    self.child = Some(match (name.as_str(), ns.as_str()) {
                        ("endpoint", ns::COLIBRI2) => {
                            let expired = attr(&attrs, "expire") == Some("true");
                            let id = take_attr(&mut attrs, "id").unwrap_or_default();
                            ModifiedChild::Endpoint(EndpointAnswer { id, expired, ..Default::default() }, None, false)
                        }
                        ("sources", ns::COLIBRI2) if !self.sources_seen => {
                            self.sources_seen = true;
                            ModifiedChild::Sources(ColibriSourcesReader::default())
                        }
                        _ => ModifiedChild::Skip(Depth::default()),
                    });
                }
                Event::Text(_) => {}
                Event::End => return Step::Closed,
            }
            return Step::Inside;
        };
        let closed = match child {
            ModifiedChild::Skip(d) => d.follow(&ev),
            ModifiedChild::Sources(r) => r.event(ev),
            ModifiedChild::Endpoint(ep, part, outer_seen) => match part {
                None => match ev {
                    Event::Start { name, ns, .. } => {
                        *part = Some(if name == "transport" && ns == ns::COLIBRI2 && !*outer_seen {
                            *outer_seen = true;
                            EndpointChild::Outer { ice: None, ice_seen: false, sctp_seen: false, depth: Depth::default() }
                        } else {
                            EndpointChild::Skip(Depth::default())
                        });
                        Step::Inside
                    }
                    Event::Text(_) => Step::Inside,
                    Event::End => Step::Closed,
                },
                Some(EndpointChild::Skip(d)) => {
                    if d.follow(&ev) == Step::Closed {
                        *part = None;
                    }
                    Step::Inside
                }
                Some(EndpointChild::Outer { ice, ice_seen, sctp_seen, depth }) => {
                    if let Some(r) = ice {
                        if r.event(ev) == Step::Closed {
                            ep.transport = ice.take().map(TransportReader::finish);
                        }
                    } else {
                        if let (Event::Start { name, ns, attrs }, 0) = (&ev, depth.0) {
                            match (name.as_str(), ns.as_str()) {
                                ("transport", ns::ICE_UDP) if !*ice_seen => {
                                    *ice_seen = true;
                                    *ice = Some(TransportReader::new(attrs.clone()));
                                    return Step::Inside;
                                }
                                ("sctp", ns::COLIBRI2) if !*sctp_seen => {
                                    *sctp_seen = true;
                                    ep.sctp_port = attr(attrs, "port").and_then(|p| p.parse().ok());
                                }
                                _ => {}
                            }
                        }
                        if depth.follow(&ev) == Step::Closed {
                            *part = None;
                        }
                    }
                    Step::Inside
                }
            },
        };
        if closed == Step::Closed {
            match self.child.take() {
                Some(ModifiedChild::Endpoint(ep, _, _)) => self.out.endpoints.push(ep),
                Some(ModifiedChild::Sources(r)) => self.out.sources = Some(r.finish()),
                _ => {}
            }
        }
        Step::Inside
    }

    /// The `<conference-modified>` as read.
    pub fn finish(self) -> ConferenceModified {
        self.out
    }
}

/// What the focus must do about a failed colibri request (media.md §1.9).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reaction {
    /// Fail only this invite (or only this update); keep the bridge session.
    FailInvite,
    /// Drop the whole session on this bridge and re-invite its participants.
    RemoveSession,
    /// Mark the bridge non-operational, then remove the session.
    BridgeFailed,
    /// The bridge is in graceful shutdown: remove the session.
    GracefulShutdown,
    /// Drop this endpoint's colibri state and re-invite it.
    UnknownEndpoint(String),
}

/// A colibri failure: the error condition, the colibri2 reason, and the reaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColibriError {
    /// The stanza error's condition name (RFC 6120, e.g. `item-not-found`), `unknown` when absent.
    pub condition: String,
    /// The colibri2 `<error reason>` (lower-cased, e.g. `conference_not_found`), when sent.
    pub reason: Option<String>,
    /// The error's `<text/>`, when sent.
    pub text: Option<String>,
    /// What the focus does about it.
    pub reaction: Reaction,
}

impl std::fmt::Display for ColibriError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.condition)?;
        if let Some(r) = &self.reason {
            write!(f, " ({})", r)?;
        }
        if let Some(t) = &self.text {
            write!(f, ": {}", t)?;
        }
        Ok(())
    }
}

/// A Colibri2 answer as the conference reads it (typed once where it was parsed:
/// `xmpp::incoming`).
#[derive(Clone, Copy, Debug)]
pub enum Colibri2Answer<'a> {
    /// A `result` carrying `<conference-modified>`.
    Modified(&'a ConferenceModified),
    /// A `result` without one.
    Result,
    /// An `error`, with its `<error/>` if it had one.
    Error(Option<&'a StanzaError>),
}

/// Parse the answer to a request; `allocation` selects the allocation reaction table.
pub fn parse_answer(iq: Option<&Element>, allocation: bool) -> Result<ConferenceModified, ColibriError> {
    let Some(iq) = iq else { return answer_outcome(None, allocation) };
    if iq.get_attr("type") == Some("result") {
        return match iq.get_child("conference-modified", ns::COLIBRI2) {
            Some(cm) => answer_outcome(Some(Colibri2Answer::Modified(&ConferenceModified::from_element(cm))), allocation),
            None => answer_outcome(Some(Colibri2Answer::Result), allocation),
        };
    }
    let err = parse_error(iq);
    answer_outcome(Some(Colibri2Answer::Error(err.as_ref())), allocation)
}

/// What an answer (`None`: none before the deadline) means: the allocation or update,
/// or the failure and the focus's reaction to it (media.md §1.9).
pub fn answer_outcome(answer: Option<Colibri2Answer<'_>>, allocation: bool) -> Result<ConferenceModified, ColibriError> {
    let err = match answer {
        None => {
            return Err(ColibriError {
                condition: "timeout".into(),
                reason: None,
                text: None,
                reaction: if allocation { Reaction::BridgeFailed } else { Reaction::FailInvite },
            })
        }
        Some(Colibri2Answer::Modified(cm)) => return Ok(cm.clone()),
        Some(Colibri2Answer::Result) => {
            return Err(ColibriError {
                condition: "not conference-modified".into(),
                reason: None,
                text: None,
                reaction: if allocation { Reaction::FailInvite } else { Reaction::RemoveSession },
            })
        }
        Some(Colibri2Answer::Error(e)) => e,
    };
    let condition = err.map(|e| e.condition_name.clone()).unwrap_or_else(|| "unknown".into());
    let text = err.and_then(|e| e.text.clone());
    let c2 = err.and_then(|e| e.extra.iter().find(|x| x.is("error", ns::COLIBRI2)));
    let reason = c2.and_then(|e| e.get_attr("reason")).map(|r| r.to_ascii_lowercase());
    let unknown_ep = err.and_then(|e| e.extra.iter().find(|x| x.is("endpoint", ns::COLIBRI2))).and_then(|e| e.get_attr("id")).map(str::to_string);
    let reaction = if allocation {
        match (condition.as_str(), reason.as_deref()) {
            ("bad-request", _) => Reaction::FailInvite,
            ("item-not-found", Some("conference_not_found")) => Reaction::RemoveSession,
            ("item-not-found", _) => Reaction::FailInvite,
            ("conflict", _) => Reaction::RemoveSession,
            ("service-unavailable", Some("graceful_shutdown")) => Reaction::GracefulShutdown,
            _ => Reaction::BridgeFailed,
        }
    } else {
        match (reason.as_deref(), unknown_ep) {
            (Some("unknown_endpoint"), Some(id)) => Reaction::UnknownEndpoint(id),
            _ => Reaction::RemoveSession,
        }
    };
    Err(ColibriError { condition, reason, text, reaction })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse::parse_fragment;

    fn bridge() -> Jid {
        Jid::parse("jvbbrewery@internal.auth.meet.test/jvb1").unwrap()
    }

    /// Every shape of request the focus sends, with participant-controlled values at
    /// their most hostile (nicks as endpoint ids, stats ids, a relayed transport, source
    /// names and msids), written straight ([`ConferenceModify::to_stanza`]) is the tree
    /// [`ConferenceModify::to_iq`] builds, byte for byte, and parses back to the values.
    #[test]
    fn requests_written_directly_equal_the_trees() {
        use crate::xmpp::jingle::codecs::{offer_media, Features};
        use crate::xmpp::jingle::sources::{EndpointSources, MediaType, Source};
        let hostile = ["a1", "n'i\"c<k>&]]>", "\u{1}x\u{fffe}", "\u{e9}t\u{e9} \u{1f600}"];
        let media = offer_media(&Features { rtx: true, tcc: true, ..Features::default_set() }).colibri.clone();
        let mut n = 0;
        for h in hostile {
            let transport = Element::new("transport", ns::ICE_UDP)
                .attr("ufrag", h)
                .attr("pwd", h)
                .child(Element::new("fingerprint", ns::DTLS).attr("hash", "sha-256").text(h))
                .child(Element::new("candidate", ns::ICE_UDP).attr("ip", h));
            let sources = EndpointSources {
                sources: vec![Source::new(1, MediaType::Audio).with_name(h).with_msid(h), Source::new(2, MediaType::Video).with_name(h)],
                groups: vec![],
            };
            let endpoints = [
                EndpointRequest {
                    id: h.into(),
                    create: true,
                    stats_id: Some(h.into()),
                    media: media.clone(),
                    sctp: true,
                    capabilities: vec!["source-names".into(), "ssrc-rewriting".into()],
                    force_mute: Some((true, false)),
                    ..Default::default()
                },
                EndpointRequest { id: h.into(), create: true, ..Default::default() },
                EndpointRequest { id: h.into(), expire: true, stats_id: Some(h.into()), ..Default::default() },
                EndpointRequest {
                    id: h.into(),
                    stats_id: Some(h.into()),
                    transport: Some(transport.clone()),
                    sources: Some(sources.to_colibri2(h)),
                    initial_last_n: Some(7),
                    ..Default::default()
                },
                EndpointRequest { id: h.into(), ice_restart: true, force_mute: Some((false, true)), ..Default::default() },
                EndpointRequest { id: h.into(), force_mute: Some((false, false)), ..Default::default() },
            ];
            for create in [false, true] {
                for expire in [false, true] {
                    for k in 0..=endpoints.len() {
                        let req = ConferenceModify {
                            meeting_id: h.into(),
                            name: Some(format!("{h}@conference.meet.test")),
                            create,
                            expire,
                            rtcstats_enabled: Some(!create),
                            endpoints: endpoints.iter().skip(k).take(2).cloned().collect(),
                        };
                        let (direct, tree) = (req.to_stanza(&bridge(), h), req.to_iq(&bridge(), h));
                        assert_eq!(direct.to_xml_in(ns::CLIENT), tree.to_xml_in(ns::CLIENT), "{req:?}");
                        let back = direct.reparsed().expect("well-formed");
                        assert_eq!(back, tree.reparsed().unwrap());
                        let cm = back.get_child("conference-modify", ns::COLIBRI2).unwrap();
                        let want = h.replace(['\u{1}', '\u{fffe}'], "\u{fffd}");
                        assert_eq!(cm.get_attr("meeting-id"), Some(want.as_str()));
                        assert!(cm.children_named("endpoint", ns::COLIBRI2).all(|e| e.get_attr("id") == Some(want.as_str())));
                        n += 1;
                    }
                }
            }
        }
        assert_eq!(n, 4 * 4 * 7);
    }

    #[test]
    fn create_request_shape() {
        let req = ConferenceModify {
            meeting_id: "m1".into(),
            name: Some("room1@conference.meet.test".into()),
            create: true,
            endpoints: vec![EndpointRequest {
                id: "a1".into(),
                create: true,
                stats_id: Some("Alice".into()),
                sctp: true,
                capabilities: vec!["source-names".into()],
                ..Default::default()
            }],
            ..Default::default()
        };
        let iq = req.to_iq(&bridge(), "x1");
        let cm = iq.get_child("conference-modify", ns::COLIBRI2).unwrap();
        assert_eq!(cm.get_attr("create"), Some("true"));
        assert_eq!(cm.get_attr("name"), Some("room1@conference.meet.test"));
        let ep = cm.get_child("endpoint", ns::COLIBRI2).unwrap();
        assert_eq!(ep.get_attr("create"), Some("true"));
        let t = ep.get_child("transport", ns::COLIBRI2).unwrap();
        assert_eq!(t.get_attr("ice-controlling"), Some("true"));
        assert!(t.get_child("sctp", ns::COLIBRI2).is_some());
        assert!(ep.get_child("sources", ns::COLIBRI2).is_some());
        assert_eq!(ep.get_child("capability", ns::COLIBRI2).unwrap().get_attr("name"), Some("source-names"));
    }

    #[test]
    fn parses_answers_and_errors() {
        let ok = parse_fragment(
            "<iq xmlns='jabber:client' type='result' id='x'><conference-modified xmlns='jitsi:colibri2'>\
             <endpoint id='a1'><transport><transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='u' pwd='p'/>\
             <sctp port='5000' role='server'/></transport></endpoint><sources><media-source type='audio' id='jvb-a0'/>\
             </sources></conference-modified></iq>",
        )
        .unwrap();
        let a = parse_answer(Some(&ok), true).unwrap();
        let ep = a.endpoint("a1").unwrap();
        assert_eq!(ep.transport.as_ref().unwrap().get_attr("ufrag"), Some("u"));
        assert_eq!(ep.sctp_port, Some(5000));
        assert!(a.sources.is_some());
        let err = |body: &str| {
            parse_fragment(&format!("<iq xmlns='jabber:client' type='error' id='x'><error type='cancel'>{}</error></iq>", body))
                .unwrap()
        };
        let nf = err("<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><error xmlns='jitsi:colibri2' reason='conference_not_found'/>");
        assert_eq!(parse_answer(Some(&nf), true).unwrap_err().reaction, Reaction::RemoveSession);
        let muc = err("<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>");
        assert_eq!(parse_answer(Some(&muc), true).unwrap_err().reaction, Reaction::FailInvite);
        let gs = err("<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><error xmlns='jitsi:colibri2' reason='graceful_shutdown'/>");
        assert_eq!(parse_answer(Some(&gs), true).unwrap_err().reaction, Reaction::GracefulShutdown);
        assert_eq!(parse_answer(None, true).unwrap_err().reaction, Reaction::BridgeFailed);
        let ue = err("<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><error xmlns='jitsi:colibri2' reason='unknown_endpoint'/><endpoint xmlns='jitsi:colibri2' id='b2'/>");
        assert_eq!(parse_answer(Some(&ue), false).unwrap_err().reaction, Reaction::UnknownEndpoint("b2".into()));
        assert_eq!(parse_answer(None, false).unwrap_err().reaction, Reaction::FailInvite);
    }
}
