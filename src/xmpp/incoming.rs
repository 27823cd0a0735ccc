//! Every stanza the focus receives, classified once where it is parsed ([`Incoming`]):
//! the network layer makes one of these per stanza ([`parse`]) and everything above
//! routes and handles it by variant, never by comparing names and namespaces again.
//!
//! | variant | what | read |
//! |---|---|---|
//! | [`Incoming::Answer`] | an IQ `result` without payload, or any IQ `error` (its `<error/>` typed) | without a tree |
//! | [`Incoming::Colibri2`] | an IQ `result` whose first child is `<conference-modified>` | without a tree |
//! | [`Incoming::Jingle`] | an IQ `set` whose only child is `<jingle>` | without a tree |
//! | [`Incoming::Conference`] | an IQ `set` whose only child is the focus `<conference>` request | without a tree |
//! | [`Incoming::Ping`] | an IQ `get` whose only child is `<ping>` | without a tree |
//! | [`Incoming::Presence`] | every presence (occupants, bridge and Jigasi stats, Jibri status, errors) | without a tree |
//! | [`Incoming::Other`] | everything else (disco, forms, mute, Jibri, Rayo, messages, stream errors, …) | as an [`Element`] tree |
//!
//! The hot kinds are read straight from the parser's checked events
//! ([`crate::xml::Reader`]): the typed value is built as the events come, with no tree in
//! between. Everything else is recognised by its first element or two, and the tree is
//! built from there on (the events read so far replayed into it), so no stanza is parsed
//! twice, except one that starts like a hot kind and turns out not to be one (a second
//! child after `<jingle>`, say): it is parsed again into a tree, which only odd or hostile
//! input costs.
//!
//! Both paths read through the same [`crate::xml::Reader`], so they refuse exactly the
//! same inputs with the same error (depth, node cap, restricted XML, well-formedness),
//! and a stanza is accepted only once its end was checked. [`Incoming::from_element`]
//! classifies a tree with the same readers (replaying it as events), so the fast path and
//! the tree path give the same value (`fuzzing::incoming` checks it on any input).

use crate::xml::parse::{build_from, walk, TreeBuilder};
use crate::xml::{Element, Event, ParseError, Reader, StreamHeader};
use crate::xmpp::colibri2::{answer_outcome, parse_answer, Colibri2Answer, ColibriError, ConferenceModified, ModifiedReader};
use crate::xmpp::collect::{attr, Depth, Step};
use crate::xmpp::conference_iq::{ConferenceReader, RequestFields};
use crate::xmpp::jingle::stanzas::{JingleError, JingleReader, JingleRequest};
use crate::xmpp::ns;
use crate::xmpp::presence::{Presence, PresenceReader};
use crate::xmpp::stanza::{Envelope, ErrorReader, IqHead, IqType, StanzaError};

/// An IQ `result` without payload, or an IQ `error`.
#[derive(Clone, Debug, PartialEq)]
pub struct IqAnswer {
    /// The IQ's envelope (`type`, `id`, `from`, `to`).
    pub head: IqHead,
    /// The `<error/>` of an error (`None` for a result, or an error without one).
    pub error: Option<StanzaError>,
}

/// A Colibri2 `conference-modified` answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Colibri2Iq {
    /// The IQ's envelope (`type`, `id`, `from`: the bridge).
    pub head: IqHead,
    /// The `<conference-modified>` payload, typed.
    pub modified: ConferenceModified,
}

/// A Jingle request (malformed ones are answered `bad-request` with the error's text).
#[derive(Clone, Debug, PartialEq)]
pub struct JingleIq {
    /// The IQ's envelope (`type` set, `id`, `from`: the participant's full JID).
    pub head: IqHead,
    /// The `<jingle>` payload, typed, or why it is malformed.
    pub request: Result<JingleRequest, JingleError>,
}

/// A conference request, as it came.
#[derive(Clone, Debug, PartialEq)]
pub struct ConferenceIq {
    /// The IQ's envelope (`type` set, `id`, `from`: the requester).
    pub head: IqHead,
    /// The `<conference>` payload's fields (room, session id, machine uid, properties).
    pub fields: RequestFields,
}

/// A stanza, classified (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub enum Incoming {
    /// An IQ `result` without payload, or any IQ `error` (an answer to a request of ours).
    Answer(Box<IqAnswer>),
    /// An IQ `result` carrying a Colibri2 `<conference-modified>` (a bridge's answer).
    Colibri2(Box<Colibri2Iq>),
    /// An IQ `set` whose only child is `<jingle>` (from a participant).
    Jingle(Box<JingleIq>),
    /// An IQ `set` whose only child is the focus `<conference>` request.
    Conference(Box<ConferenceIq>),
    /// An IQ `get` whose only child is XEP-0199 `<ping>` (answered with an empty result).
    Ping(IqHead),
    /// Any presence (occupants, bridge and Jigasi stats, Jibri status, presence errors).
    Presence(Box<Presence>),
    /// Everything else, as an element tree (disco, forms, mute, Jibri, Rayo, messages, stream errors, …).
    Other(Element),
}

impl From<Element> for Incoming {
    fn from(el: Element) -> Incoming {
        Incoming::from_element(el)
    }
}

impl Incoming {
    /// Classify a tree (tests, tools, and what the focus makes itself, e.g. the error
    /// the network layer answers for a peer that is not connected): the same readers as
    /// [`parse`], on the tree replayed as events.
    pub fn from_element(el: Element) -> Incoming {
        let mut c: Option<Classifier> = None;
        walk(&el, &mut |ev| match &mut c {
            None => c = Some(Classifier::new(ev, false)),
            Some(c) => c.event(ev),
        });
        match c.map(Classifier::finish) {
            Some(Classified::Typed(i)) => i,
            _ => Incoming::Other(el),
        }
    }

    /// The stanza's element name (`iq`, `presence`, `message`, …).
    pub fn name(&self) -> &str {
        match self {
            Incoming::Presence(_) => "presence",
            Incoming::Other(el) => &el.name,
            _ => "iq",
        }
    }

    /// The envelope of an IQ's head (`None` for a presence, or a stanza that is no IQ).
    pub fn head(&self) -> Option<&IqHead> {
        match self {
            Incoming::Answer(a) => Some(&a.head),
            Incoming::Colibri2(c) => Some(&c.head),
            Incoming::Jingle(j) => Some(&j.head),
            Incoming::Conference(c) => Some(&c.head),
            Incoming::Ping(h) => Some(h),
            Incoming::Presence(_) | Incoming::Other(_) => None,
        }
    }

    /// What a reply to this stanza needs (its namespace, `id`, `from`, `to`).
    pub fn envelope(&self) -> Option<&dyn Envelope> {
        match self {
            Incoming::Other(el) => Some(el),
            Incoming::Presence(_) => None,
            other => other.head().map(|h| h as &dyn Envelope),
        }
    }

    /// One of the stanza's addressing attributes (`id`, `from`, `to`, `type`).
    pub fn get_attr(&self, name: &str) -> Option<&str> {
        match self {
            Incoming::Presence(p) => match name {
                "from" => p.from.as_deref(),
                "id" => p.id.as_deref(),
                "type" => p.typ.as_deref(),
                _ => None,
            },
            Incoming::Other(el) => el.get_attr(name),
            other => other.head().and_then(|h| h.envelope_attr(name)),
        }
    }

    /// The type of an IQ (`None` for anything else, or an IQ without a valid type).
    pub fn iq_type(&self) -> Option<IqType> {
        match self {
            Incoming::Other(el) if el.name == "iq" => IqType::of(el),
            Incoming::Other(_) | Incoming::Presence(_) => None,
            other => other.head().map(|h| h.typ),
        }
    }

    /// True for an IQ `get` or `set`.
    pub fn is_iq_request(&self) -> bool {
        self.iq_type().is_some_and(IqType::is_request)
    }

    /// The tree of a stanza of no hot kind.
    pub fn element(&self) -> Option<&Element> {
        match self {
            Incoming::Other(el) => Some(el),
            _ => None,
        }
    }

    /// The stanza error of an error stanza (as `stanza::parse_error` reads it).
    pub fn stanza_error(&self) -> Option<StanzaError> {
        match self {
            Incoming::Answer(a) => a.error.clone(),
            Incoming::Presence(p) => p.error.clone(),
            Incoming::Other(el) => crate::xmpp::stanza::parse_error(el),
            _ => None,
        }
    }

    /// Estimated heap memory the value holds (see `Element::weight`), for the byte
    /// budgets of conference inboxes.
    pub fn weight(&self) -> usize {
        let size = std::mem::size_of::<Incoming>();
        size + match self {
            Incoming::Answer(a) => std::mem::size_of::<IqAnswer>() + a.head.weight() + a.error.as_ref().map_or(0, StanzaError::weight),
            Incoming::Colibri2(c) => std::mem::size_of::<Colibri2Iq>() + c.head.weight() + c.modified.weight(),
            Incoming::Jingle(j) => {
                std::mem::size_of::<JingleIq>() + j.head.weight() + j.request.as_ref().map_or_else(|e| e.0.capacity(), JingleRequest::weight)
            }
            Incoming::Conference(c) => std::mem::size_of::<ConferenceIq>() + c.head.weight() + c.fields.weight(),
            Incoming::Ping(h) => h.weight(),
            Incoming::Presence(p) => p.weight(),
            Incoming::Other(el) => el.weight(),
        }
    }

    /// The stanza as an element: the tree of [`Incoming::Other`], or what a typed value
    /// says written back in the usual form (what it was not read for is not there). For
    /// test tools, logs and the rare path that needs a tree.
    pub fn into_element(self) -> Element {
        match self {
            Incoming::Other(el) => el,
            Incoming::Answer(a) => {
                let mut iq = a.head.to_element();
                if let Some(e) = &a.error {
                    iq = iq.child(error_element(e, &a.head.ns));
                }
                iq
            }
            Incoming::Colibri2(c) => c.head.to_element().child(c.modified.to_element()),
            Incoming::Jingle(j) => {
                let mut jingle = Element::new("jingle", ns::JINGLE);
                if let Ok(r) = &j.request {
                    jingle = jingle.attr("action", r.action.as_str()).attr("sid", r.sid.clone());
                }
                j.head.to_element().child(jingle)
            }
            Incoming::Conference(c) => c.head.to_element().child(c.fields.to_element()),
            Incoming::Ping(h) => h.to_element().child(Element::new("ping", ns::PING)),
            Incoming::Presence(p) => p.to_element(ns::CLIENT),
        }
    }
}

/// What a Colibri2 answer (`None`: none before the deadline) means: the allocation or
/// update, or the failure and the focus's reaction (`colibri2::answer_outcome`; a tree
/// is read as `colibri2::parse_answer` reads it).
pub fn colibri2_outcome(answer: Option<&Incoming>, allocation: bool) -> Result<ConferenceModified, ColibriError> {
    let typed = match answer {
        None => None,
        Some(Incoming::Colibri2(c)) => Some(Colibri2Answer::Modified(&c.modified)),
        Some(Incoming::Answer(a)) if a.head.typ == IqType::Result => Some(Colibri2Answer::Result),
        Some(Incoming::Answer(a)) => Some(Colibri2Answer::Error(a.error.as_ref())),
        Some(Incoming::Other(el)) => return parse_answer(Some(el), allocation),
        Some(other) => return parse_answer(Some(&other.clone().into_element()), allocation),
    };
    answer_outcome(typed, allocation)
}

/// `e` as an `<error/>` element in `stanza_ns`.
fn error_element(e: &StanzaError, stanza_ns: &str) -> Element {
    let mut el = Element::new("error", stanza_ns).attr("type", e.error_type.clone());
    if !e.condition_name.is_empty() {
        el = el.child(Element::new(&e.condition_name, ns::STANZAS));
    }
    if let Some(t) = &e.text {
        el = el.child(Element::new("text", ns::STANZAS).text(t.clone()));
    }
    el.children(e.extra.iter().map(|a| a.to_element()))
}

/// Parse one stanza framed from a stream whose header is `header` (at most `max_nodes`
/// nodes) and classify it: the hot kinds without a tree. Refuses exactly what
/// [`crate::xml::parse_stanza_with`] refuses, with the same error.
pub fn parse(text: &str, header: &StreamHeader, max_nodes: usize) -> Result<Incoming, ParseError> {
    let mut reader = Reader::stanza(text, header, max_nodes);
    let Some(first) = reader.next()? else {
        return Err(ParseError::NotOneElement("no element".into()));
    };
    let mut c = Classifier::new(first, true);
    loop {
        if let State::Tree(Some(_)) = &c.state {
            // Not a hot kind: the rest goes straight into the tree.
            let State::Tree(Some(tree)) = std::mem::replace(&mut c.state, State::Tree(None)) else { unreachable!() };
            return build_from(&mut reader, tree).map(Incoming::Other);
        }
        match reader.next()? {
            Some(ev) => c.event(ev),
            None => break,
        }
        if c.state.is_late_bail() {
            // Started like a hot kind and is not one: read to the end (same checks), then
            // as a tree.
            reader.finish()?;
            return crate::xml::parse::parse_stanza_with(text, header, max_nodes).map(Incoming::Other);
        }
    }
    match c.finish() {
        Classified::Typed(i) => Ok(i),
        // Not reachable: a tree is built as soon as the classifier gives up (above).
        Classified::Tree(Some(tree)) => tree.finish().map(Incoming::Other).ok_or_else(|| ParseError::NotOneElement("no element".into())),
        Classified::Tree(None) | Classified::Bail => crate::xml::parse::parse_stanza_with(text, header, max_nodes).map(Incoming::Other),
    }
}

/// The typed reader of a committed IQ kind, and whether its child has closed (another
/// child element after it means the stanza is not that kind after all).
#[derive(Debug)]
enum IqBody {
    Colibri2(ModifiedReader),
    Jingle(JingleReader),
    Conference(ConferenceReader),
    Ping(Depth),
}

#[derive(Debug)]
enum State {
    /// Not a hot kind: the tree (the events so far replayed into it; `None` when the
    /// caller has the tree already).
    Tree(Option<TreeBuilder>),
    /// A hot kind after all not (see [`parse`]).
    LateBail,
    Presence(PresenceReader),
    /// An IQ `result`, `get` or `set` whose first child decides: the events so far.
    IqWait(Vec<Event>),
    /// An IQ `error`: the first `<error/>` in the stanza's namespace.
    IqError { head: IqHead, seen: bool, error: Option<StanzaError>, child: Option<ErrorChild> },
    /// A committed IQ kind; `closed` once its one child has closed.
    Iq { head: IqHead, body: IqBody, closed: bool },
    /// The stanza has closed.
    Done(Incoming),
}

#[derive(Debug)]
enum ErrorChild {
    Skip(Depth),
    Error(ErrorReader),
}

impl State {
    fn is_late_bail(&self) -> bool {
        matches!(self, State::LateBail)
    }
}

/// What the classifier made of a stanza.
enum Classified {
    Typed(Incoming),
    Tree(Option<TreeBuilder>),
    Bail,
}

/// Classifies one stanza from its events (the stanza's own start first).
#[derive(Debug)]
struct Classifier {
    state: State,
    /// Build the tree when giving up (the fast path); the tree path has it already.
    build: bool,
}

impl Classifier {
    fn new(start: Event, build: bool) -> Classifier {
        let state = match start {
            Event::Start { name, ns, attrs } if name == "presence" => State::Presence(PresenceReader::new(ns, attrs)),
            Event::Start { name, ns, mut attrs } if name == "iq" => match attr(&attrs, "type") {
                Some("error") => match IqHead::take(ns, &mut attrs) {
                    Some(head) => State::IqError { head, seen: false, error: None, child: None },
                    None => State::LateBail,
                },
                Some("result" | "get" | "set") => State::IqWait(vec![Event::Start { name, ns, attrs }]),
                _ => tree(vec![Event::Start { name, ns, attrs }], build),
            },
            other => tree(vec![other], build),
        };
        Classifier { state, build }
    }

    fn event(&mut self, ev: Event) {
        let next = match &mut self.state {
            State::Tree(Some(t)) => {
                t.event(ev);
                return;
            }
            State::Tree(None) | State::LateBail | State::Done(_) => return,
            State::Presence(r) => {
                if r.event(ev) == Step::Inside {
                    return;
                }
                let State::Presence(r) = std::mem::replace(&mut self.state, State::LateBail) else { unreachable!() };
                State::Done(Incoming::Presence(Box::new(r.finish())))
            }
            State::IqWait(seen) => match ev {
                Event::Text(_) => {
                    seen.push(ev);
                    return;
                }
                Event::End => {
                    let mut seen = std::mem::take(seen);
                    if iq_type(&seen) == Some(IqType::Result) {
                        match take_head(&mut seen) {
                            Some(head) => State::Done(Incoming::Answer(Box::new(IqAnswer { head, error: None }))),
                            None => State::LateBail,
                        }
                    } else {
                        seen.push(Event::End);
                        tree(seen, self.build)
                    }
                }
                Event::Start { name, ns, attrs } => {
                    let body = match (iq_type(seen), name.as_str(), ns.as_str()) {
                        (Some(IqType::Result), "conference-modified", ns::COLIBRI2) => Some(IqBody::Colibri2(ModifiedReader::default())),
                        (Some(IqType::Set), "jingle", ns::JINGLE) => Some(IqBody::Jingle(JingleReader::new(attrs.clone()))),
                        (Some(IqType::Set), "conference", ns::FOCUS) => Some(IqBody::Conference(ConferenceReader::new(attrs.clone()))),
                        (Some(IqType::Get), "ping", ns::PING) => Some(IqBody::Ping(Depth::default())),
                        _ => None,
                    };
                    let mut seen = std::mem::take(seen);
                    match body {
                        Some(body) => match take_head(&mut seen) {
                            Some(head) => State::Iq { head, body, closed: false },
                            None => State::LateBail,
                        },
                        None => {
                            seen.push(Event::Start { name, ns, attrs });
                            tree(seen, self.build)
                        }
                    }
                }
            },
            State::IqError { head, seen, error, child } => {
                match child {
                    Some(c) => {
                        let closed = match c {
                            ErrorChild::Skip(d) => d.follow(&ev),
                            ErrorChild::Error(r) => r.event(ev),
                        };
                        if closed == Step::Closed {
                            if let Some(ErrorChild::Error(r)) = child.take() {
                                *error = Some(r.finish());
                            }
                        }
                        return;
                    }
                    None => match ev {
                        Event::Start { name, ns, attrs } => {
                            *child = Some(if name == "error" && ns == head.ns && !*seen {
                                *seen = true;
                                ErrorChild::Error(ErrorReader::new(&attrs))
                            } else {
                                ErrorChild::Skip(Depth::default())
                            });
                            return;
                        }
                        Event::Text(_) => return,
                        Event::End => {
                            let State::IqError { head, error, .. } = std::mem::replace(&mut self.state, State::LateBail) else { unreachable!() };
                            State::Done(Incoming::Answer(Box::new(IqAnswer { head, error })))
                        }
                    },
                }
            }
            State::Iq { body, closed, .. } => {
                if *closed {
                    match ev {
                        Event::Start { .. } => State::LateBail,
                        Event::Text(_) => return,
                        Event::End => {
                            let State::Iq { head, body, .. } = std::mem::replace(&mut self.state, State::LateBail) else { unreachable!() };
                            State::Done(finish_iq(head, body))
                        }
                    }
                } else {
                    let step = match body {
                        IqBody::Colibri2(r) => r.event(ev),
                        IqBody::Jingle(r) => r.event(ev),
                        IqBody::Conference(r) => r.event(ev),
                        IqBody::Ping(d) => d.follow(&ev),
                    };
                    *closed = step == Step::Closed;
                    return;
                }
            }
        };
        self.state = next;
    }

    fn finish(self) -> Classified {
        match self.state {
            State::Done(i) => Classified::Typed(i),
            State::Tree(t) => Classified::Tree(t),
            _ => Classified::Bail,
        }
    }
}

/// Give up on a hot kind: a tree of `events` (or none, when the caller has the tree).
fn tree(events: Vec<Event>, build: bool) -> State {
    if !build {
        return State::Tree(None);
    }
    let mut t = TreeBuilder::new();
    for ev in events {
        t.event(ev);
    }
    State::Tree(Some(t))
}

/// The type of the IQ whose start is the first of `seen`.
fn iq_type(seen: &[Event]) -> Option<IqType> {
    match seen.first() {
        Some(Event::Start { attrs, .. }) => attr(attrs, "type").and_then(IqType::parse),
        _ => None,
    }
}

/// The IQ head, moved out of the IQ's start (the first of `seen`).
fn take_head(seen: &mut [Event]) -> Option<IqHead> {
    match seen.first_mut() {
        Some(Event::Start { ns, attrs, .. }) => IqHead::take(std::mem::take(ns), attrs),
        _ => None,
    }
}

fn finish_iq(head: IqHead, body: IqBody) -> Incoming {
    match body {
        IqBody::Colibri2(r) => Incoming::Colibri2(Box::new(Colibri2Iq { head, modified: r.finish() })),
        IqBody::Jingle(r) => Incoming::Jingle(Box::new(JingleIq { head, request: r.finish() })),
        IqBody::Conference(r) => Incoming::Conference(Box::new(ConferenceIq { head, fields: r.finish() })),
        IqBody::Ping(_) => Incoming::Ping(head),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{parse_stanza, parse_stanza_with, MAX_DEPTH, MAX_NODES};
    use crate::xmpp::jingle::stanzas::JingleAction;

    fn header(ns: &str) -> StreamHeader {
        StreamHeader {
            attrs: vec![("id".into(), "abc".into())],
            default_ns: ns.into(),
            prefixes: vec![("stream".into(), ns::STREAM.into())],
        }
    }

    /// Both paths on `text`: the same verdict, and on success the same value, which is
    /// returned.
    fn both(text: &str, max_nodes: usize) -> Result<Incoming, ParseError> {
        let h = header(ns::CLIENT);
        let fast = parse(text, &h, max_nodes);
        let tree = parse_stanza_with(text, &h, max_nodes);
        match (&fast, tree) {
            (Ok(f), Ok(t)) => assert_eq!(*f, Incoming::from_element(t), "{text}"),
            (Err(a), Err(b)) => assert_eq!(*a, b, "{text}"),
            (a, b) => panic!("verdicts differ on {text}: fast {a:?}, tree {b:?}"),
        }
        fast
    }

    fn ok(text: &str) -> Incoming {
        both(text, MAX_NODES).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn captures() -> Vec<(String, String)> {
        crate::xml::framer::tests::captures()
    }

    #[test]
    fn every_capture_classifies_the_same_both_ways() {
        for (name, text) in captures() {
            let st = ok(&text);
            let kind = match &st {
                Incoming::Presence(_) => "presence",
                Incoming::Jingle(_) => "jingle",
                Incoming::Conference(_) => "conference",
                Incoming::Other(_) => "other",
                other => panic!("{name}: {other:?}"),
            };
            let want = if name.contains("presence") {
                "presence"
            } else if name.contains("session-accept") || name.contains("transport-info") {
                "jingle"
            } else if name.contains("conference-iq") {
                "conference"
            } else {
                "other"
            };
            assert_eq!(kind, want, "{name}");
        }
    }

    #[test]
    fn the_hot_kinds_are_typed() {
        let a = ok("<iq type='result' id='0123' from='jvb@internal.auth.meet.test/jvb1' to='focus@auth.meet.test/focus'/>");
        let Incoming::Answer(a) = a else { panic!() };
        assert_eq!((a.head.typ, a.head.id.as_deref(), a.error.is_none()), (IqType::Result, Some("0123"), true));

        let e = ok("<iq type='error' id='7' from='b@x/y'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
                    <error xmlns='jitsi:colibri2' reason='conference_not_found'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>gone</text></error></iq>");
        let err = e.stanza_error().unwrap();
        assert_eq!((err.condition_name.as_str(), err.text.as_deref(), err.extra[0].get_attr("reason")), ("item-not-found", Some("gone"), Some("conference_not_found")));
        assert_eq!(colibri2_outcome(Some(&e), true).unwrap_err().reaction, crate::xmpp::colibri2::Reaction::RemoveSession);

        let c = ok("<iq type='result' id='8' from='b@x/y'><conference-modified xmlns='jitsi:colibri2' meeting-id='m'>\
                    <endpoint id='a1'><transport><transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='u' pwd='p'>\
                    <candidate ip='10.0.0.1' port='1'/></transport><sctp port='5000'/></transport></endpoint>\
                    <sources><media-source type='audio' id='jvb-a0'><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1'/></media-source></sources>\
                    </conference-modified></iq>");
        let Incoming::Colibri2(c) = &c else { panic!("{c:?}") };
        let ep = c.modified.endpoint("a1").unwrap();
        assert_eq!((ep.transport.as_ref().unwrap().get_attr("ufrag"), ep.sctp_port), (Some("u"), Some(5000)));
        assert_eq!(c.modified.sources.as_ref().unwrap().bridge_feedback().unwrap().sources.len(), 1);

        let j = ok("<iq type='set' id='9' from='r@c/p'><jingle xmlns='urn:xmpp:jingle:1' action='source-remove' sid='s1'>\
                    <content name='audio'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>\
                    <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='11'/></description></content></jingle></iq>");
        let Incoming::Jingle(j) = &j else { panic!() };
        let r = j.request.as_ref().unwrap();
        assert_eq!((&r.action, r.sid.as_str(), r.sources().unwrap().sources[0].ssrc), (&JingleAction::SourceRemove, "s1", 11));

        assert!(matches!(ok("<iq type='get' id='p' from='meet.test'><ping xmlns='urn:xmpp:ping'/></iq>"), Incoming::Ping(_)));

        let b = ok("<presence from='jvbbrewery@internal.auth.meet.test/jvb1'><stats xmlns='http://jitsi.org/protocol/colibri'>\
                    <stat name='stress_level' value='0.1'/><stat name='drain' value='false'/></stats></presence>");
        let Incoming::Presence(b) = &b else { panic!() };
        assert_eq!(b.stats.as_ref().unwrap().len(), 2);

        let q = ok("<iq type='set' id='c1' from='u@meet.test/r' to='focus.meet.test'><conference xmlns='http://jitsi.org/protocol/focus' \
                    room='r1@conference.meet.test' machine-uid='m'><property name='startAudioMuted' value='2'/></conference></iq>");
        let Incoming::Conference(q) = &q else { panic!() };
        assert_eq!((q.fields.room.as_str(), q.fields.properties.len()), ("r1@conference.meet.test", 1));
    }

    #[test]
    fn other_shapes_are_trees() {
        for text in [
            // Not one of the kinds.
            "<message from='a@b/c'><body>x</body></message>",
            "<iq type='get' id='d'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
            "<iq type='result' id='d'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
            "<iq type='set' id='e'/>",
            "<iq id='no-type'/>",
            "<iq type='bogus' id='x'/>",
            "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
            // Starts like a hot kind, turns out not to be one (read again as a tree).
            "<iq type='set' id='j'><jingle xmlns='urn:xmpp:jingle:1' action='source-add' sid='s'/><mute xmlns='http://jitsi.org/jitmeet/audio'/></iq>",
            "<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
            "<iq type='result' id='r'><conference-modified xmlns='jitsi:colibri2'/><x/></iq>",
            "<iq type='result' id='r'>text <x/><conference-modified xmlns='jitsi:colibri2'/></iq>",
        ] {
            let st = ok(text);
            assert!(matches!(st, Incoming::Other(_)), "{text}: {st:?}");
        }
        // A colibri2 answer read from a tree means what the typed one would.
        let late = ok("<iq type='result' id='r'><x/><conference-modified xmlns='jitsi:colibri2'><endpoint id='e'/></conference-modified></iq>");
        assert_eq!(colibri2_outcome(Some(&late), false).unwrap().endpoints[0].id, "e");
    }

    #[test]
    fn hostile_inputs_get_the_same_verdict_both_ways() {
        let deep = |open: &str, close: &str, n: usize| format!("{open}{}{}{close}", "<a>".repeat(n), "</a>".repeat(n));
        let cases: Vec<String> = vec![
            // Too deep inside each hot kind (the stanza and its first child count).
            deep("<presence from='r@c/p'>", "</presence>", MAX_DEPTH),
            deep("<presence from='r@c/p'>", "</presence>", MAX_DEPTH - 1),
            deep("<iq type='set' id='1'><jingle xmlns='urn:xmpp:jingle:1' action='x' sid='s'>", "</jingle></iq>", MAX_DEPTH),
            deep("<iq type='set' id='1'><jingle xmlns='urn:xmpp:jingle:1' action='x' sid='s'>", "</jingle></iq>", MAX_DEPTH - 2),
            deep("<iq type='result' id='1'><conference-modified xmlns='jitsi:colibri2'>", "</conference-modified></iq>", MAX_DEPTH),
            deep("<iq type='error' id='1'>", "</iq>", MAX_DEPTH),
            // Restricted XML, anywhere.
            "<presence from='r@c/p'><!-- c --></presence>".into(),
            "<iq type='result' id='1'><?pi x?></iq>".into(),
            "<iq type='set' id='1'><jingle xmlns='urn:xmpp:jingle:1' action='x' sid='s'><!-- c --></jingle></iq>".into(),
            "<iq type='result' id='1'/><!-- after -->".into(),
            "<!DOCTYPE x><presence/>".into(),
            // Not well-formed or not one element.
            "<presence from='r@c/p'><x></presence>".into(),
            "<iq type='result' id='1'/><iq type='result' id='2'/>".into(),
            "<iq type='result' id='1' id='2'/>".into(),
            "<presence>&bogus;</presence>".into(),
            "<presence from='r@c/p'><q:x/></presence>".into(),
            "<iq type='result' id='1'/>text".into(),
            "<iq type='result' id='1'".into(),
            "".into(),
            "<iq type='result' id='1'/></w><w>".into(),
            // Prefixes of the stream are in scope only as the stream declares them.
            "<stream:features/>".into(),
            "<presence from='r@c/p'><stream:x/></presence>".into(),
            // Entities and CDATA in typed values.
            "<presence from='r@c/p&amp;q'><stats-id>a&lt;<![CDATA[b]]></stats-id></presence>".into(),
        ];
        for text in &cases {
            let _ = both(text, MAX_NODES);
        }
        assert_eq!(both(&cases[0], MAX_NODES), Err(ParseError::TooDeep));
        assert!(both(&cases[1], MAX_NODES).is_ok());
    }

    #[test]
    fn the_node_cap_is_the_same_both_ways() {
        // Elements, attributes and text nodes count alike, in every hot kind.
        for (open, close) in [
            ("<presence from='r@c/p'>", "</presence>"),
            ("<iq type='set' id='1'><jingle xmlns='urn:xmpp:jingle:1' action='source-add' sid='s'>", "</jingle></iq>"),
            ("<iq type='result' id='1'><conference-modified xmlns='jitsi:colibri2'>", "</conference-modified></iq>"),
            ("<iq type='error' id='1'>", "</iq>"),
            ("<iq type='result' id='1'>", "</iq>"),
        ] {
            for fill in ["<a/>", "<a x='1'/>", "t<a/>", " <a/>"] {
                for n in [10, 100, 1000, 3000] {
                    let text = format!("{open}{}{close}", fill.repeat(n));
                    for cap in [64, 1000, 4000, MAX_NODES] {
                        let _ = both(&text, cap);
                    }
                }
            }
            // Exactly at a cap and one over it (the smallest cap the tree accepts).
            let text = format!("{open}{}{close}", "<a/>".repeat(100));
            let at = (1..MAX_NODES).find(|&cap| parse_stanza_with(&text, &header(ns::CLIENT), cap).is_ok()).unwrap();
            assert!(at > 100);
            assert!(both(&text, at).is_ok(), "{open}");
            assert_eq!(both(&text, at - 1), Err(ParseError::TooManyNodes), "{open}");
        }
    }

    #[test]
    fn a_component_stream_types_the_same() {
        let h = header(ns::COMPONENT);
        let text = "<iq type='error' id='1' from='a@b/c'><error type='wait'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>";
        let st = parse(text, &h, MAX_NODES).unwrap();
        assert_eq!(st, Incoming::from_element(parse_stanza(text, &h).unwrap()));
        assert_eq!(st.head().unwrap().ns, ns::COMPONENT);
        assert_eq!(st.stanza_error().unwrap().condition_name, "resource-constraint");
        // An <error/> in another namespace than the stanza's is not its error.
        let other = "<iq type='error' id='1'><error xmlns='jabber:client'><x xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>";
        let st = parse(other, &h, MAX_NODES).unwrap();
        assert_eq!(st.stanza_error(), None);
        assert_eq!(st, Incoming::from_element(parse_stanza(other, &h).unwrap()));
    }

    #[test]
    fn typed_values_write_back_what_they_say() {
        for (_, text) in captures() {
            let st = ok(&text);
            let again = Incoming::from_element(st.clone().into_element());
            match (&st, &again) {
                (Incoming::Presence(a), Incoming::Presence(b)) => assert_eq!(a.occupant, b.occupant),
                (Incoming::Conference(a), Incoming::Conference(b)) => assert_eq!(a.fields, b.fields),
                (a, b) => assert_eq!(a.name(), b.name()),
            }
            assert!(st.weight() > 0);
        }
    }
}
