//! Service discovery of the focus itself: the disco#info answer on both JIDs and the
//! XEP-0115 caps `ver` computed from it.

use base64::Engine;
use sha1::{Digest, Sha1};

use crate::xml::Element;

use crate::xmpp::ns;
use crate::xmpp::stanza::{iq_error, iq_result, ErrorCondition};

/// Features the focus advertises.
pub const FEATURES: &[&str] = &[
    ns::DISCO_INFO,
    ns::PING,
    ns::FOCUS,
    "https://jitsi.org/meet/jicofo/terminate-restart",
    "urn:xmpp:jingle:1",
    "urn:xmpp:jingle:apps:rtp:1",
    "urn:xmpp:jingle:apps:rtp:audio",
    "urn:xmpp:jingle:apps:rtp:video",
    "urn:xmpp:jingle:transports:ice-udp:1",
    "urn:xmpp:jingle:apps:dtls:0",
    "urn:xmpp:jingle:transports:dtls-sctp:1",
];

const IDENTITY: (&str, &str, &str) = ("component", "generic", "Jitsi Meet Focus");

/// The `<query xmlns='disco#info'>` payload of the answer.
pub fn info_query(node: Option<&str>) -> Element {
    let mut q = Element::new("query", ns::DISCO_INFO).attr_opt("node", node.map(str::to_string)).child(
        Element::new("identity", ns::DISCO_INFO)
            .attr("category", IDENTITY.0)
            .attr("type", IDENTITY.1)
            .attr("name", IDENTITY.2),
    );
    for f in FEATURES {
        q = q.child(Element::new("feature", ns::DISCO_INFO).attr("var", *f));
    }
    q
}

/// The answer to a disco#info request `req` (its `<query node>` echoed). A node longer
/// than [`crate::xmpp::caps::MAX_CAPS_NODE`] is no node of ours and would make the
/// answer grow with the request: `item-not-found`.
pub fn info_answer(req: &Element) -> Element {
    let node = req.get_child("query", ns::DISCO_INFO).and_then(|q| q.get_attr("node"));
    if node.is_some_and(|n| n.len() > crate::xmpp::caps::MAX_CAPS_NODE) {
        return iq_error(req, ErrorCondition::ItemNotFound, None);
    }
    iq_result(req).child(info_query(node))
}

/// XEP-0115 verification string of [`info_query`].
pub fn caps_ver() -> String {
    let mut s = format!("{}/{}//{}<", IDENTITY.0, IDENTITY.1, IDENTITY.2);
    let mut feats: Vec<&str> = FEATURES.to_vec();
    feats.sort();
    for f in feats {
        s.push_str(f);
        s.push('<');
    }
    base64::engine::general_purpose::STANDARD.encode(Sha1::digest(s.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertises_the_focus_feature() {
        let q = info_query(None);
        assert!(q.children_named("feature", ns::DISCO_INFO).any(|f| f.get_attr("var") == Some(ns::FOCUS)));
        assert_eq!(caps_ver().len(), 28);
    }

    #[test]
    fn the_answer_echoes_a_node_only_of_bounded_length() {
        let req = |node: &str| {
            Element::new("iq", ns::CLIENT)
                .attr("type", "get")
                .attr("id", "d1")
                .attr("from", "r@conference.meet.test/p")
                .child(Element::new("query", ns::DISCO_INFO).attr("node", node))
        };
        let ours = format!("http://jitsi.org/jicofo#{}", caps_ver());
        let a = info_answer(&req(&ours));
        assert_eq!(a.get_attr("type"), Some("result"));
        assert_eq!(a.get_child("query", ns::DISCO_INFO).unwrap().get_attr("node"), Some(ours.as_str()));
        let huge = info_answer(&req(&"'".repeat(200_000)));
        assert_eq!(crate::xmpp::stanza::parse_error(&huge).unwrap().condition, ErrorCondition::ItemNotFound);
        assert!(huge.to_xml().len() < 500, "{}", huge.to_xml().len());
        let plain = Element::new("iq", ns::CLIENT).attr("type", "get").attr("id", "d2").child(Element::new("query", ns::DISCO_INFO));
        assert!(info_answer(&plain).get_child("query", ns::DISCO_INFO).unwrap().get_attr("node").is_none());
    }
}
