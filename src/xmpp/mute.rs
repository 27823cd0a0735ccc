//! The mute request IQ (§6.1), parsed as a value: who asks (the sender's MUC nick), whom
//! to mute (the `jid` attribute's nick), true or false, and which media namespace.
//! The conference decides what is allowed (`Conference::on_mute`).

use crate::jid::Jid;
use crate::xml::Element;
use crate::xmpp::ns;

/// A well-formed mute request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MuteRequest {
    /// The requester's nick (resource of the IQ's `from`).
    pub from_nick: String,
    /// The target's nick (resource of the `jid` attribute).
    pub target_nick: String,
    pub mute: bool,
    /// The namespace of the `<mute>` child: audio, video or desktop.
    pub ns: String,
}

/// Why a mute request is malformed (answered `bad-request`).
pub const BAD_MUTE: &str = "mute needs a target jid and true or false";

impl MuteRequest {
    /// The `<mute>` child of an IQ in one of the three mute namespaces, if any.
    pub fn mute_child(iq: &Element) -> Option<&Element> {
        iq.elements().find(|c| c.name == "mute" && (c.ns == ns::AUDIO_MUTE || c.ns == ns::VIDEO_MUTE || c.ns == ns::DESKTOP_MUTE))
    }

    /// `None` when the IQ is not a mute request; `Some(Err)` when it is a malformed one.
    pub fn parse(iq: &Element) -> Option<Result<MuteRequest, &'static str>> {
        let m = Self::mute_child(iq)?;
        let nick_of = |s: Option<&str>| s.and_then(|f| Jid::parse(f).ok()).and_then(|j| j.resource().map(str::to_string));
        let mute = match m.text_content().trim() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        };
        Some(match (nick_of(iq.get_attr("from")), nick_of(m.get_attr("jid")), mute) {
            (Some(from_nick), Some(target_nick), Some(mute)) => Ok(MuteRequest { from_nick, target_nick, mute, ns: m.ns.clone() }),
            _ => Err(BAD_MUTE),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mute_requests_parse_and_malformed_ones_are_errors() {
        let iq = |from: &str, jid: Option<&str>, ns: &str, text: &str| {
            Element::new("iq", ns::CLIENT)
                .attr("type", "set")
                .attr("from", from)
                .child(Element::new("mute", ns).attr_opt("jid", jid).text(text))
        };
        let ok = iq("r@conference.meet.test/m", Some("r@conference.meet.test/p"), ns::VIDEO_MUTE, " true ");
        assert_eq!(
            MuteRequest::parse(&ok),
            Some(Ok(MuteRequest { from_nick: "m".into(), target_nick: "p".into(), mute: true, ns: ns::VIDEO_MUTE.into() }))
        );
        assert_eq!(MuteRequest::parse(&iq("r@c/m", None, ns::AUDIO_MUTE, "true")), Some(Err(BAD_MUTE)));
        assert_eq!(MuteRequest::parse(&iq("r@c", Some("r@c/p"), ns::AUDIO_MUTE, "true")), Some(Err(BAD_MUTE)));
        assert_eq!(MuteRequest::parse(&iq("r@c/m", Some("r@c/p"), ns::DESKTOP_MUTE, "yes")), Some(Err(BAD_MUTE)));
        assert_eq!(MuteRequest::parse(&iq("r@c/m", Some("r@c/p"), "urn:other", "true")), None);
    }
}
