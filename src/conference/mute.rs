//! Mute (§6.1) as values: the request IQ ([`MuteRequest`]: who asks, by MUC nick, whom to
//! mute, true or false, which media namespace), the rules ([`decide`]: anyone may mute or
//! unmute themselves; only a moderator mutes others; nobody unmutes someone else; Jibri
//! and Jigasi are never muted by others), and the bridge's force-mute state per participant
//! ([`ForceMute`]): a moderator's mute is enforced by the bridge and lifted when the
//! participant unmutes itself; every change states the endpoint's complete state
//! (media.md §1.7) and nothing is sent when it does not change.

use std::collections::HashMap;

use crate::jid::Jid;
use crate::xml::{ns, Element};
use crate::xmpp::stanza::ErrorCondition;

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

/// What the rules need to know of the requester and the target.
#[derive(Clone, Copy, Debug)]
pub struct Party<'a> {
    pub nick: &'a str,
    pub is_moderator: bool,
    pub is_jibri_or_jigasi: bool,
}

/// What an allowed mute request does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MuteAction {
    /// Forward the request to the target (with the requester as actor): someone else's mute.
    pub forward: bool,
    /// Set the target's bridge force-mute for this media to this value.
    pub force: Option<(&'static str, bool)>,
}

/// The rules of §6.1: the action, or the error to answer. `requester` and `target` are
/// `None` when they are not participants.
pub fn decide(req: &MuteRequest, requester: Option<Party>, target: Option<Party>) -> Result<MuteAction, (ErrorCondition, &'static str)> {
    let requester = requester.ok_or((ErrorCondition::Forbidden, "only participants may mute"))?;
    let target = target.ok_or((ErrorCondition::ItemNotFound, "no such participant"))?;
    let own = requester.nick == target.nick;
    if !own && !req.mute {
        return Err((ErrorCondition::NotAllowed, "nobody may unmute someone else"));
    }
    if !own && !requester.is_moderator {
        return Err((ErrorCondition::Forbidden, "only moderators may mute others"));
    }
    if target.is_jibri_or_jigasi && !own {
        return Err((ErrorCondition::NotAllowed, "Jibri and Jigasi are never muted"));
    }
    // The bridge enforces a moderator's mute and lifts it when the participant unmutes
    // itself (desktop sharing is video on the bridge).
    let media = if req.ns == ns::AUDIO_MUTE { "audio" } else { "video" };
    Ok(MuteAction { forward: !own, force: (!own || !req.mute).then_some((media, req.mute)) })
}

/// The bridge force-mute state `(audio, video)` per participant.
#[derive(Debug, Default)]
pub struct ForceMute {
    state: HashMap<String, (bool, bool)>,
}

impl ForceMute {
    /// Set `nick`'s force-mute of `media` ("audio"/"video"): its complete new state when
    /// that changed, `None` when there is nothing to tell the bridge.
    pub fn set(&mut self, nick: &str, media: &str, muted: bool) -> Option<(bool, bool)> {
        let state = self.state.entry(nick.to_string()).or_default();
        let before = *state;
        match media {
            "audio" => state.0 = muted,
            _ => state.1 = muted,
        }
        (*state != before).then_some(*state)
    }

    /// `nick` left: its state goes with it.
    pub fn forget(&mut self, nick: &str) {
        self.state.remove(nick);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(from: &str, target: &str, mute: bool, ns: &str) -> MuteRequest {
        MuteRequest { from_nick: from.into(), target_nick: target.into(), mute, ns: ns.into() }
    }

    fn party(nick: &str, is_moderator: bool) -> Party<'_> {
        Party { nick, is_moderator, is_jibri_or_jigasi: false }
    }

    #[test]
    fn the_mute_rules() {
        let m = Some(party("mod", true));
        let p = Some(party("p", false));
        let jibri = Some(Party { nick: "jibri", is_moderator: false, is_jibri_or_jigasi: true });
        let a = ns::AUDIO_MUTE;
        let ok = |forward, force| Ok(MuteAction { forward, force });
        assert_eq!(decide(&req("mod", "p", true, a), m, p), ok(true, Some(("audio", true))));
        assert_eq!(decide(&req("mod", "p", true, ns::DESKTOP_MUTE), m, p), ok(true, Some(("video", true))));
        assert_eq!(decide(&req("p", "p", false, a), p, p), ok(false, Some(("audio", false))), "unmuting oneself lifts a force-mute");
        assert_eq!(decide(&req("p", "p", true, a), p, p), ok(false, None), "muting oneself is not forced");
        assert_eq!(decide(&req("mod", "p", false, a), m, p), Err((ErrorCondition::NotAllowed, "nobody may unmute someone else")));
        assert_eq!(decide(&req("p", "mod", true, a), p, m), Err((ErrorCondition::Forbidden, "only moderators may mute others")));
        assert_eq!(decide(&req("mod", "jibri", true, a), m, jibri), Err((ErrorCondition::NotAllowed, "Jibri and Jigasi are never muted")));
        assert_eq!(decide(&req("x", "p", true, a), None, p), Err((ErrorCondition::Forbidden, "only participants may mute")));
        assert_eq!(decide(&req("mod", "x", true, a), m, None), Err((ErrorCondition::ItemNotFound, "no such participant")));
    }

    #[test]
    fn force_mute_states_the_complete_state_and_only_changes() {
        let mut f = ForceMute::default();
        assert_eq!(f.set("p", "audio", true), Some((true, false)));
        assert_eq!(f.set("p", "audio", true), None);
        assert_eq!(f.set("p", "video", true), Some((true, true)));
        assert_eq!(f.set("p", "audio", false), Some((false, true)));
        assert_eq!(f.set("q", "video", false), None, "nothing forced, nothing to lift");
        f.forget("p");
        assert_eq!(f.set("p", "video", false), None);
    }

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
