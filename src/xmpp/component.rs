//! XEP-0114 external component negotiation (`jabber:component:accept`) as a
//! sans-IO state machine: jicofo attaching to Prosody as `focus.<domain>`.
//!
//! ```text
//!  start() ── Send(<stream:stream to=jid>) ─▶ AwaitHeader
//!                                               │ header with id
//!                  Send(<handshake>sha1(id+secret)</handshake>)
//!                                               ▼
//!                                         AwaitHandshake
//!                       <handshake/> ──────────┤────────── <stream:error/>
//!                            ▼                              ▼
//!                   Ready{jid} ─▶ Ready                  Failed
//!                                          (not-authorized: wrong secret;
//!                                           host-unknown: no such component)
//! ```

use super::handshake::handshake_digest;
use super::stanza::parse_stream_error;
use super::{attr_escape, describe, Action, NegotiationError};
use crate::jid::Jid;
use crate::xml::framer::StreamHeader;
use crate::xml::Element;
use crate::xmpp::ns;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Idle,
    AwaitHeader,
    AwaitHandshake,
    Ready,
    Failed,
}

/// The component stream negotiator. `Debug` never shows the secret.
pub struct ComponentNegotiator {
    jid: String,
    secret: String,
    state: State,
    stream_id: Option<String>,
}

impl std::fmt::Debug for ComponentNegotiator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentNegotiator")
            .field("jid", &self.jid)
            .field("state", &self.state)
            .field("stream_id", &self.stream_id)
            .finish_non_exhaustive()
    }
}

impl ComponentNegotiator {
    /// `jid`: the component's address (`focus.meet.test`); `secret`: the shared
    /// secret from Prosody's `component_secret`.
    pub fn new(jid: String, secret: String) -> Self {
        ComponentNegotiator { jid, secret, state: State::Idle, stream_id: None }
    }

    /// Open the stream.
    pub fn start(&mut self) -> Vec<Action> {
        self.state = State::AwaitHeader;
        vec![Action::Send(format!(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='{}'>",
            attr_escape(&self.jid)
        ))]
    }

    /// True once the server accepted the handshake.
    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    /// The id of the server's stream header.
    pub fn stream_id(&self) -> Option<&str> {
        self.stream_id.as_deref()
    }

    fn fail<T>(&mut self, e: NegotiationError) -> Result<T, NegotiationError> {
        self.state = State::Failed;
        Err(e)
    }

    fn unexpected<T>(&mut self, got: String, expected: &str) -> Result<T, NegotiationError> {
        let e = NegotiationError::Unexpected { peer: self.jid.clone(), expected: expected.to_string(), got };
        self.fail(e)
    }

    /// The server's stream header: answer with the handshake.
    pub fn on_stream_header(&mut self, h: &StreamHeader) -> Result<Vec<Action>, NegotiationError> {
        if self.state != State::AwaitHeader {
            return self.unexpected("a stream header".to_string(), "nothing");
        }
        if !h.default_ns.is_empty() && h.default_ns != ns::COMPONENT {
            let e = NegotiationError::BadStreamHeader {
                peer: self.jid.clone(),
                reason: format!(
                    "stream namespace is {:?}, expected {:?} (is this port Prosody's component port?)",
                    h.default_ns,
                    ns::COMPONENT
                ),
            };
            return self.fail(e);
        }
        let id = match h.get("id") {
            Some(id) if !id.is_empty() => id.to_string(),
            _ => {
                let e = NegotiationError::BadStreamHeader {
                    peer: self.jid.clone(),
                    reason: "no stream id: cannot compute the XEP-0114 handshake".to_string(),
                };
                return self.fail(e);
            }
        };
        let digest = handshake_digest(&id, &self.secret);
        self.stream_id = Some(id);
        self.state = State::AwaitHandshake;
        let hs = Element::new("handshake", ns::COMPONENT).text(digest);
        Ok(vec![Action::Send(hs.to_xml_in(ns::COMPONENT))])
    }

    /// A top-level element from the server during negotiation.
    pub fn on_element(&mut self, el: &Element) -> Result<Vec<Action>, NegotiationError> {
        match self.state {
            State::Failed => {
                return Err(NegotiationError::InvalidState("element after negotiation failed".to_string()))
            }
            State::Ready => {
                return Err(NegotiationError::InvalidState(
                    "element after negotiation finished: route it as a stanza".to_string(),
                ))
            }
            _ => {}
        }
        if let Some(se) = parse_stream_error(el) {
            let jid = self.jid.clone();
            let e = match se.condition.as_str() {
                "not-authorized" => NegotiationError::ComponentSecretRejected { jid },
                "host-unknown" => NegotiationError::ComponentUnknown { jid },
                _ => NegotiationError::StreamError { peer: jid, condition: se.condition, text: se.text },
            };
            return self.fail(e);
        }
        if self.state != State::AwaitHandshake {
            return self.unexpected(describe(el), "the stream header");
        }
        if !el.is("handshake", ns::COMPONENT) {
            return self.unexpected(describe(el), "<handshake/>");
        }
        if el.elements().next().is_some() || !el.text_content().trim().is_empty() {
            return self.unexpected("a non-empty <handshake>".to_string(), "an empty <handshake/>");
        }
        let jid = match Jid::parse(&self.jid) {
            Ok(j) => j,
            Err(e) => {
                let e = NegotiationError::Config(format!("component JID {:?} is invalid: {}", self.jid, e));
                return self.fail(e);
            }
        };
        self.state = State::Ready;
        Ok(vec![Action::Ready { jid }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(id: Option<&str>) -> StreamHeader {
        let mut attrs = vec![("from".to_string(), "focus.meet.test".to_string())];
        if let Some(id) = id {
            attrs.push(("id".to_string(), id.to_string()));
        }
        StreamHeader { attrs, default_ns: ns::COMPONENT.into(), prefixes: vec![("stream".into(), ns::STREAM.into())] }
    }

    fn negotiator() -> ComponentNegotiator {
        ComponentNegotiator::new("focus.meet.test".into(), "secret".into())
    }

    fn stream_error(cond: &str, text: Option<&str>) -> Element {
        let mut e = Element::new("error", ns::STREAM).child(Element::new(cond, ns::STREAMS));
        if let Some(t) = text {
            e = e.child(Element::new("text", ns::STREAMS).text(t));
        }
        e
    }

    #[test]
    fn happy_path() {
        let mut n = negotiator();
        assert_eq!(
            n.start(),
            vec![Action::Send(
                "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='focus.meet.test'>".into()
            )]
        );
        assert_eq!(
            n.on_stream_header(&header(Some("3BF96D32"))).unwrap(),
            vec![Action::Send("<handshake>b09ea9b3b7f586be8a08d0a3dd7466f110aeb136</handshake>".into())]
        );
        assert_eq!(n.stream_id(), Some("3BF96D32"));
        assert!(!n.is_ready());
        assert_eq!(
            n.on_element(&Element::new("handshake", ns::COMPONENT)).unwrap(),
            vec![Action::Ready { jid: Jid::parse("focus.meet.test").unwrap() }]
        );
        assert!(n.is_ready());
        assert!(matches!(n.on_element(&Element::new("iq", ns::COMPONENT)), Err(NegotiationError::InvalidState(_))));
    }

    #[test]
    fn debug_hides_secret() {
        let n = ComponentNegotiator::new("focus.meet.test".into(), "hunter2".into());
        assert!(!format!("{:?}", n).contains("hunter2"));
    }

    #[test]
    fn wrong_secret() {
        let mut n = negotiator();
        n.start();
        n.on_stream_header(&header(Some("abc"))).unwrap();
        let e = n.on_element(&stream_error("not-authorized", None)).unwrap_err();
        assert!(e.is_auth_failure());
        assert_eq!(
            e.to_string(),
            "component handshake refused for focus.meet.test: wrong secret (check --secret / JICOFO_SECRET and Prosody's component_secret)"
        );
        assert!(!n.is_ready());
    }

    #[test]
    fn unknown_component() {
        let mut n = negotiator();
        n.start();
        // Prosody may refuse right after our header, before sending its own.
        let e = n.on_element(&stream_error("host-unknown", None)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Prosody has no component focus.meet.test (check --domain/--subdomain and the Prosody config)"
        );
        assert!(!e.is_auth_failure());
    }

    #[test]
    fn other_stream_error_keeps_condition_and_text() {
        let mut n = negotiator();
        n.start();
        n.on_stream_header(&header(Some("abc"))).unwrap();
        let e = n.on_element(&stream_error("conflict", Some("already connected"))).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("conflict") && msg.contains("already connected"), "{}", msg);
    }

    #[test]
    fn bad_headers_and_elements() {
        let mut n = negotiator();
        n.start();
        assert!(matches!(n.on_stream_header(&header(None)), Err(NegotiationError::BadStreamHeader { .. })));
        let mut n = negotiator();
        n.start();
        assert!(n.on_stream_header(&header(Some(""))).is_err());
        let mut n = negotiator();
        n.start();
        let mut h = header(Some("x"));
        h.default_ns = ns::CLIENT.into();
        assert!(matches!(n.on_stream_header(&h), Err(NegotiationError::BadStreamHeader { .. })));
        // Header before start.
        assert!(negotiator().on_stream_header(&header(Some("x"))).is_err());
        // Element before the header.
        let mut n = negotiator();
        n.start();
        assert!(n.on_element(&Element::new("handshake", ns::COMPONENT)).is_err());
        // Non-empty handshake, wrong element.
        let mut n = negotiator();
        n.start();
        n.on_stream_header(&header(Some("x"))).unwrap();
        assert!(n.on_element(&Element::new("handshake", ns::COMPONENT).text("nope")).is_err());
        let mut n = negotiator();
        n.start();
        n.on_stream_header(&header(Some("x"))).unwrap();
        assert!(n.on_element(&Element::new("message", ns::COMPONENT)).is_err());
        // Invalid configured JID.
        let mut n = ComponentNegotiator::new("".into(), "s".into());
        n.start();
        n.on_stream_header(&header(Some("x"))).unwrap();
        assert!(matches!(n.on_element(&Element::new("handshake", ns::COMPONENT)), Err(NegotiationError::Config(_))));
    }
}
