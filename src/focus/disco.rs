//! Service discovery of the focus itself: the disco#info answer on both JIDs and the
//! XEP-0115 caps `ver` computed from it.

use base64::Engine;
use sha1::{Digest, Sha1};

use crate::xml::{ns, Element};

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
}
