//! The mute request IQ (focus.md §6.1, moderation.md §2), parsed as a value: who asks
//! (the sender's MUC nick), whom to mute (the `jid` attribute), true or false (Java's
//! `Boolean.parseBoolean`: only `true`, in any case, is true), and which media
//! namespace. Row 1 of §2 is decided here (no text or no `jid`: `bad-request`); the
//! other rows by `moderation::mute_rules::check` in `Conference::on_mute`.


use crate::jid::Jid;
use crate::xml::Element;
use crate::xmpp::ns;

/// A well-formed mute request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MuteRequest {
    /// The requester's nick (resource of the IQ's `from`), if it has one.
    pub from_nick: Option<String>,
    /// The target (the `jid` attribute), when it is a JID.
    pub target: Option<Jid>,
    /// The element's text: `true` (any case) asks to mute, anything else to unmute.
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
        let text = m.text_content();
        let text = text.trim();
        let Some(jid) = m.get_attr("jid") else { return Some(Err(BAD_MUTE)) };
        if text.is_empty() {
            return Some(Err(BAD_MUTE));
        }
        let from_nick = iq.get_attr("from").and_then(|f| Jid::parse(f).ok()).and_then(|j| j.resource().map(str::to_string));
        Some(Ok(MuteRequest { from_nick, target: Jid::parse(jid).ok(), mute: text.eq_ignore_ascii_case("true"), ns: m.ns.clone() }))
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
            Some(Ok(MuteRequest {
                from_nick: Some("m".into()),
                target: Some(Jid::parse("r@conference.meet.test/p").unwrap()),
                mute: true,
                ns: ns::VIDEO_MUTE.into()
            }))
        );
        // Row 1: no jid, or no text.
        assert_eq!(MuteRequest::parse(&iq("r@c/m", None, ns::AUDIO_MUTE, "true")), Some(Err(BAD_MUTE)));
        assert_eq!(MuteRequest::parse(&iq("r@c/m", Some("r@c/p"), ns::AUDIO_MUTE, "  ")), Some(Err(BAD_MUTE)));
        // Boolean.parseBoolean: anything but "true" (any case) is false.
        let yes = MuteRequest::parse(&iq("r@c/m", Some("r@c/p"), ns::DESKTOP_MUTE, "yes")).unwrap().unwrap();
        assert!(!yes.mute);
        assert!(MuteRequest::parse(&iq("r@c/m", Some("r@c/p"), ns::AUDIO_MUTE, "TRUE")).unwrap().unwrap().mute);
        // A requester without a nick, or a target that is no JID, are for the later rows.
        let r = MuteRequest::parse(&iq("r@c", Some("@@"), ns::AUDIO_MUTE, "true")).unwrap().unwrap();
        assert_eq!((r.from_nick, r.target), (None, None));
        assert_eq!(MuteRequest::parse(&iq("r@c/m", Some("r@c/p"), "urn:other", "true")), None);
    }
}
