//! The ICE-UDP `<transport>` (XEP-0176) as the focus relays it, typed: its attributes
//! (`ufrag`, `pwd`, `ice-generation`, …) and, in document order, its candidates, DTLS
//! fingerprints (XEP-0320), Jitsi's `<web-socket>`, `<rtcp-mux/>` and `<sctpmap>`. A
//! participant's transport goes to the bridge in a Colibri2 request, the bridge's comes
//! back in the offer and in a `transport-info`: what else a transport might carry
//! (unknown children, text) is not read and not relayed.
//!
//! [`TransportReader`] reads it from the events below `<transport>` (from the parser or a
//! tree replayed as events); [`IceTransport::to_element`] writes it. How large it is as
//! the focus writes it ([`IceTransport::written_len`]) is what the Jingle parser bounds
//! (`MAX_TRANSPORT_BYTES`), so no participant can make the focus send a stanza too big
//! for the server.

use crate::xml::{Element, Event};
use crate::xmpp::collect::{Depth, Step, TextReader};
use crate::xmpp::ns;

/// A child of an ICE-UDP transport.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransportChild {
    /// `<candidate>` (ICE-UDP namespace): its attributes.
    Candidate(Vec<(String, String)>),
    /// `<fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0'>`: attributes (`hash`, `setup`,
    /// `required`) and the fingerprint itself.
    Fingerprint {
        /// Its attributes (`hash`, `setup`, `required`) in document order.
        attrs: Vec<(String, String)>,
        /// The fingerprint (the element's text: colon-separated hex bytes).
        value: String,
    },
    /// `<web-socket xmlns='http://jitsi.org/protocol/colibri' url>`: its attributes.
    WebSocket(Vec<(String, String)>),
    /// `<rtcp-mux/>` (ICE-UDP namespace).
    RtcpMux,
    /// `<sctpmap xmlns='urn:xmpp:jingle:transports:dtls-sctp:1'>`: its attributes.
    SctpMap(Vec<(String, String)>),
}

/// An ICE-UDP transport.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IceTransport {
    /// The transport's attributes, in order.
    pub attrs: Vec<(String, String)>,
    /// Its children the focus relays, in document order.
    pub children: Vec<TransportChild>,
}

impl IceTransport {
    /// Read from a `<transport>` element (the same reader as for the parser's events);
    /// `None` when `el` is not an ICE-UDP transport.
    pub fn from_element(el: &Element) -> Option<IceTransport> {
        if !el.is("transport", ns::ICE_UDP) {
            return None;
        }
        let mut r = TransportReader::new(el.attrs.clone());
        let mut first = true;
        crate::xml::parse::walk(el, &mut |ev| {
            if !std::mem::take(&mut first) {
                r.event(ev);
            }
        });
        Some(r.finish())
    }

    /// The value of attribute `name`.
    pub fn get_attr(&self, name: &str) -> Option<&str> {
        crate::xmpp::collect::attr(&self.attrs, name)
    }

    /// True when it has `<rtcp-mux/>`.
    pub fn has_rtcp_mux(&self) -> bool {
        self.children.contains(&TransportChild::RtcpMux)
    }

    /// The same with `<rtcp-mux/>` added at the end if it had none (§1.5, §3.3).
    pub fn with_rtcp_mux(mut self) -> IceTransport {
        if !self.has_rtcp_mux() {
            self.children.push(TransportChild::RtcpMux);
        }
        self
    }

    /// The candidates' attributes, in order.
    pub fn candidates(&self) -> impl Iterator<Item = &[(String, String)]> {
        self.children.iter().filter_map(|c| match c {
            TransportChild::Candidate(a) => Some(a.as_slice()),
            _ => None,
        })
    }

    /// The `<transport>` element.
    pub fn to_element(&self) -> Element {
        let with = |name: &str, ns: &str, attrs: &Vec<(String, String)>| Element { name: name.into(), ns: ns.into(), attrs: attrs.clone(), children: Vec::new() };
        let mut t = Element { name: "transport".into(), ns: ns::ICE_UDP.into(), attrs: self.attrs.clone(), children: Vec::new() };
        for c in &self.children {
            let el = match c {
                TransportChild::Candidate(a) => with("candidate", ns::ICE_UDP, a),
                TransportChild::Fingerprint { attrs, value } if value.is_empty() => with("fingerprint", ns::DTLS, attrs),
                TransportChild::Fingerprint { attrs, value } => with("fingerprint", ns::DTLS, attrs).text(value.clone()),
                TransportChild::WebSocket(a) => with("web-socket", ns::COLIBRI, a),
                TransportChild::RtcpMux => Element::new("rtcp-mux", ns::ICE_UDP),
                TransportChild::SctpMap(a) => with("sctpmap", ns::DTLS_SCTP, a),
            };
            t = t.child(el);
        }
        t
    }

    /// Its length as the focus writes it (as a standalone element).
    pub fn written_len(&self) -> usize {
        self.to_element().to_xml().len()
    }

    /// Estimated heap memory held (see `Element::weight`).
    pub fn weight(&self) -> usize {
        let attrs = |a: &Vec<(String, String)>| 32 + a.iter().map(|(k, v)| k.capacity() + v.capacity() + 64).sum::<usize>();
        let children: usize = self
            .children
            .iter()
            .map(|c| {
                64 + match c {
                    TransportChild::Candidate(a) | TransportChild::WebSocket(a) | TransportChild::SctpMap(a) => attrs(a),
                    TransportChild::Fingerprint { attrs: a, value } => attrs(a) + value.capacity(),
                    TransportChild::RtcpMux => 0,
                }
            })
            .sum();
        attrs(&self.attrs) + children
    }
}

/// The child being read.
#[derive(Debug)]
enum Child {
    Skip(Depth),
    Fingerprint(Vec<(String, String)>, TextReader),
}

/// Reads an [`IceTransport`] from the events below `<transport>`.
#[derive(Debug)]
pub struct TransportReader {
    t: IceTransport,
    child: Option<Child>,
}

impl TransportReader {
    /// A transport whose opening tag had `attrs`.
    pub fn new(attrs: Vec<(String, String)>) -> TransportReader {
        TransportReader { t: IceTransport { attrs, children: Vec::new() }, child: None }
    }

    /// The next event below `<transport>`; [`Step::Closed`] at its end.
    pub fn event(&mut self, ev: Event) -> Step {
        let Some(child) = &mut self.child else {
            match ev {
                Event::Start { name, ns, attrs } => {
                    let kept = match (name.as_str(), ns.as_str()) {
                        ("candidate", ns::ICE_UDP) => Some(TransportChild::Candidate(attrs)),
                        ("web-socket", ns::COLIBRI) => Some(TransportChild::WebSocket(attrs)),
                        ("rtcp-mux", ns::ICE_UDP) => Some(TransportChild::RtcpMux),
                        ("sctpmap", ns::DTLS_SCTP) => Some(TransportChild::SctpMap(attrs)),
                        ("fingerprint", ns::DTLS) => {
                            self.child = Some(Child::Fingerprint(attrs, TextReader::default()));
                            return Step::Inside;
                        }
                        _ => None,
                    };
                    self.t.children.extend(kept);
                    self.child = Some(Child::Skip(Depth::default()));
                }
                Event::Text(_) => {}
                Event::End => return Step::Closed,
            }
            return Step::Inside;
        };
        let closed = match child {
            Child::Skip(d) => d.follow(&ev),
            Child::Fingerprint(_, r) => r.event(ev),
        };
        if closed == Step::Closed {
            if let Some(Child::Fingerprint(attrs, r)) = self.child.take() {
                self.t.children.push(TransportChild::Fingerprint { attrs, value: r.finish() });
            }
        }
        Step::Inside
    }

    /// The transport read.
    pub fn finish(self) -> IceTransport {
        self.t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse_fragment;

    #[test]
    fn a_transport_reads_and_writes_back_in_order() {
        let text = "<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='u' pwd='p' ice-generation='2'>\
            <rtcp-mux/><fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='actpass'>8E:2C</fingerprint>\
            <web-socket xmlns='http://jitsi.org/protocol/colibri' url='wss://x/y'/>\
            <candidate component='1' foundation='1' ip='10.0.0.1' port='10000'/>\
            <unknown xmlns='urn:x'><deep/></unknown> text </transport>";
        let el = parse_fragment(text).unwrap();
        let t = IceTransport::from_element(&el).unwrap();
        assert_eq!(t.get_attr("ice-generation"), Some("2"));
        assert!(t.has_rtcp_mux());
        assert_eq!(t.candidates().count(), 1);
        let back = t.to_element();
        let mut want = el.clone();
        want.children.retain(|n| matches!(n, crate::xml::Node::Element(e) if e.name != "unknown"));
        assert_eq!(back, want, "what is relayed comes back as it was, in order");
        assert_eq!(IceTransport::from_element(&back).unwrap(), t);
        assert_eq!(t.written_len(), back.to_xml().len());
        let no_mux = IceTransport { children: vec![], ..t.clone() }.with_rtcp_mux();
        assert_eq!(no_mux.children, vec![TransportChild::RtcpMux]);
        assert_eq!(t.clone().with_rtcp_mux(), t, "not added twice");
        assert!(IceTransport::from_element(&parse_fragment("<transport xmlns='urn:other'/>").unwrap()).is_none());
    }
}
