//! The checks of a mute IQ in current Jicofo's order (moderation.md §2), as a pure
//! function of typed inputs, and what an accepted request does.
//!
//! | # | condition | reply |
//! |---|---|---|
//! | 1 | no text, or no `jid` | `bad-request` ([`crate::xmpp::mute::MuteRequest::parse`]) |
//! | 2 | the room has no conference | `item-not-found` ([`MuteRefusal::NoConference`]) |
//! | 3 | requester has no Participant (not invited yet) | `internal-server-error` |
//! | 4 | someone else's mute, requester not owner/moderator | `not-allowed` |
//! | 5 | target has no Participant | `internal-server-error` |
//! | 6 | unmute of someone else, even by a moderator | `not-allowed` |
//! | 7 | self-unmute, requester not moderator, `!allowed(T)` | `not-allowed` |
//! | 8 | target is Jibri, Jigasi without audio-mute, or a visitor | `not-allowed` |
//! | 9 | any exception | `internal-server-error` |
//!
//! Row 9 has no counterpart here: these checks cannot fail otherwise (a panic in a
//! conference ends it through the thread's cleanup, `conference::env`). A "Participant"
//! is an occupant the focus has invited (it has a Jingle session), as in Jicofo.
//!
//! On success the bridge flag of the target is recomputed from AV moderation only
//! ([`AvModeration::bridge_flags`]): a plain moderator mute is enforced by the client,
//! and with moderation off any accepted request clears a leftover force-mute.

use crate::moderation::av::AvModeration;
use crate::xmpp::av_moderation::MediaType;
use crate::xmpp::stanza::ErrorCondition;

/// A party to a mute request (requester or target) that has a Participant object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its occupant JID (`room/nick`), as whitelists name it.
    pub occupant_jid: String,
    /// Owner or moderator (affiliation owner/admin or role moderator).
    pub moderator: bool,
    /// Jibri, Jigasi without `http://jitsi.org/protocol/audio-mute`, or a visitor.
    pub exempt: bool,
}

/// A mute request as the checks see it (row 1 already passed).
#[derive(Clone, Debug)]
pub struct MuteAsk<'a> {
    /// The room has a conference (row 2).
    pub conference: bool,
    /// The requester, `None` when it has no Participant object.
    pub requester: Option<&'a Member>,
    /// The target, `None` when it has no Participant object.
    pub target: Option<&'a Member>,
    /// `jid` equals `from`.
    pub own: bool,
    /// Mute (`true`) or unmute (`false`).
    pub mute: bool,
    /// Which media, from the `<mute>` namespace.
    pub media: MediaType,
}

/// Why a mute request is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MuteRefusal {
    /// Row 2: the room has no conference (`item-not-found`).
    NoConference,
    /// Row 3: the requester has not been invited yet (`internal-server-error`).
    RequesterNotParticipant,
    /// Row 4: muting someone else needs owner or moderator rights (`not-allowed`).
    NotModerator,
    /// Row 5: the target has not been invited (`internal-server-error`).
    TargetNotParticipant,
    /// Row 6: an unmute of someone else, which nobody may do (`not-allowed`).
    UnmuteOther,
    /// Row 7: a self-unmute by a non-moderator that AV moderation does not allow (`not-allowed`).
    NotAllowedToUnmute,
    /// Row 8: the target is Jibri, a Jigasi without audio-mute, or a visitor (`not-allowed`).
    Exempt,
}

impl MuteRefusal {
    /// The table's row.
    pub fn row(self) -> u8 {
        match self {
            MuteRefusal::NoConference => 2,
            MuteRefusal::RequesterNotParticipant => 3,
            MuteRefusal::NotModerator => 4,
            MuteRefusal::TargetNotParticipant => 5,
            MuteRefusal::UnmuteOther => 6,
            MuteRefusal::NotAllowedToUnmute => 7,
            MuteRefusal::Exempt => 8,
        }
    }

    /// The error condition of the answer.
    pub fn condition(self) -> ErrorCondition {
        match self {
            MuteRefusal::NoConference => ErrorCondition::ItemNotFound,
            MuteRefusal::RequesterNotParticipant | MuteRefusal::TargetNotParticipant => ErrorCondition::InternalServerError,
            MuteRefusal::NotModerator | MuteRefusal::UnmuteOther | MuteRefusal::NotAllowedToUnmute | MuteRefusal::Exempt => {
                ErrorCondition::NotAllowed
            }
        }
    }

    /// The error text.
    pub fn text(self) -> &'static str {
        match self {
            MuteRefusal::NoConference => "no conference for this room",
            MuteRefusal::RequesterNotParticipant => "the requester is not a participant yet",
            MuteRefusal::NotModerator => "only moderators may mute others",
            MuteRefusal::TargetNotParticipant => "the target is not a participant",
            MuteRefusal::UnmuteOther => "nobody may unmute someone else",
            MuteRefusal::NotAllowedToUnmute => "not allowed to unmute (AV moderation)",
            MuteRefusal::Exempt => "this participant cannot be muted",
        }
    }
}

/// The bridge force-mute flag to set for the target after an accepted request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BridgeFlag {
    /// The Colibri2 `<force-mute audio>` of the target's endpoint: `true` makes the bridge
    /// drop the target's audio.
    Audio(bool),
    /// The Colibri2 `<force-mute video>` of the target's endpoint (camera and screen share
    /// share it): `true` makes the bridge drop the target's video.
    Video(bool),
}

/// What an accepted mute request does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MuteOutcome {
    /// The target's bridge flag for this media (sent only if it changed).
    pub bridge: BridgeFlag,
    /// Forward `<mute actor>true</mute>` to the target (a remote mute).
    pub notify_target: bool,
}

/// Rows 2–8 in order; the outcome of an accepted request.
pub fn check(ask: &MuteAsk<'_>, av: &AvModeration) -> Result<MuteOutcome, MuteRefusal> {
    if !ask.conference {
        return Err(MuteRefusal::NoConference);
    }
    let requester = ask.requester.ok_or(MuteRefusal::RequesterNotParticipant)?;
    if !ask.own && !requester.moderator {
        return Err(MuteRefusal::NotModerator);
    }
    let target = ask.target.ok_or(MuteRefusal::TargetNotParticipant)?;
    if !ask.own && !ask.mute {
        return Err(MuteRefusal::UnmuteOther);
    }
    if ask.own && !ask.mute && !requester.moderator && !av.allowed(&requester.occupant_jid, ask.media) {
        return Err(MuteRefusal::NotAllowedToUnmute);
    }
    if target.exempt {
        return Err(MuteRefusal::Exempt);
    }
    let (a, v) = av.bridge_flags(&target.occupant_jid);
    let bridge = match ask.media {
        MediaType::Audio => BridgeFlag::Audio(a),
        MediaType::Video | MediaType::Desktop => BridgeFlag::Video(v),
    };
    Ok(MuteOutcome { bridge, notify_target: !ask.own })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jid::Jid;
    use crate::xmpp::av_moderation::AvModerationMessage;

    fn member(nick: &str, moderator: bool, exempt: bool) -> Member {
        Member { occupant_jid: format!("r@conference.meet.test/{nick}"), moderator, exempt }
    }

    fn av(enable: &[MediaType], whitelist: &[(MediaType, &str)]) -> AvModeration {
        let mut av = AvModeration::default();
        for t in enable {
            av.apply(&AvModerationMessage {
                room: Jid::parse("r@conference.meet.test").unwrap(),
                enabled: Some(true),
                media_type: Some(*t),
                actor: None,
                whitelists: vec![],
            });
        }
        for (t, nick) in whitelist {
            let mut list = av.whitelist(*t).to_vec();
            list.push(format!("r@conference.meet.test/{nick}"));
            av.apply(&AvModerationMessage {
                room: Jid::parse("r@conference.meet.test").unwrap(),
                enabled: None,
                media_type: None,
                actor: None,
                whitelists: vec![(*t, list)],
            });
        }
        av
    }

    fn ask<'a>(req: Option<&'a Member>, tgt: Option<&'a Member>, own: bool, mute: bool, media: MediaType) -> MuteAsk<'a> {
        MuteAsk { conference: true, requester: req, target: tgt, own, mute, media }
    }

    #[test]
    fn every_row_of_the_table_in_order() {
        let m = member("m", true, false);
        let p = member("p", false, false);
        let jibri = member("jibri", false, true);
        let none = AvModeration::default();
        // Row 2.
        let mut a = ask(Some(&m), Some(&p), false, true, MediaType::Audio);
        a.conference = false;
        assert_eq!(check(&a, &none), Err(MuteRefusal::NoConference));
        // Row 3 precedes everything after it (also a target that is missing too).
        assert_eq!(check(&ask(None, None, false, true, MediaType::Audio), &none), Err(MuteRefusal::RequesterNotParticipant));
        // Row 4 precedes row 5: a non-moderator muting a non-participant.
        assert_eq!(check(&ask(Some(&p), None, false, true, MediaType::Audio), &none), Err(MuteRefusal::NotModerator));
        // Row 5.
        assert_eq!(check(&ask(Some(&m), None, false, true, MediaType::Audio), &none), Err(MuteRefusal::TargetNotParticipant));
        // Row 6: even a moderator may not unmute someone else.
        assert_eq!(check(&ask(Some(&m), Some(&p), false, false, MediaType::Video), &none), Err(MuteRefusal::UnmuteOther));
        // Row 7: self-unmute under moderation, not whitelisted.
        let audio_on = av(&[MediaType::Audio], &[]);
        assert_eq!(check(&ask(Some(&p), Some(&p), true, false, MediaType::Audio), &audio_on), Err(MuteRefusal::NotAllowedToUnmute));
        // … whitelisted: allowed, and the bridge flag is cleared.
        let wl = av(&[MediaType::Audio], &[(MediaType::Audio, "p")]);
        assert_eq!(
            check(&ask(Some(&p), Some(&p), true, false, MediaType::Audio), &wl),
            Ok(MuteOutcome { bridge: BridgeFlag::Audio(false), notify_target: false })
        );
        // … a moderator passes row 7, but the flag ignores moderator rights.
        assert_eq!(
            check(&ask(Some(&m), Some(&m), true, false, MediaType::Audio), &audio_on),
            Ok(MuteOutcome { bridge: BridgeFlag::Audio(true), notify_target: false })
        );
        // Row 8: Jibri/Jigasi/visitor, for a moderator's mute and for a self-mute alike.
        assert_eq!(check(&ask(Some(&m), Some(&jibri), false, true, MediaType::Audio), &none), Err(MuteRefusal::Exempt));
        assert_eq!(check(&ask(Some(&jibri), Some(&jibri), true, true, MediaType::Video), &none), Err(MuteRefusal::Exempt));
        // Conditions of each row.
        assert_eq!(MuteRefusal::NoConference.condition(), ErrorCondition::ItemNotFound);
        assert_eq!(MuteRefusal::RequesterNotParticipant.condition(), ErrorCondition::InternalServerError);
        assert_eq!(MuteRefusal::TargetNotParticipant.condition(), ErrorCondition::InternalServerError);
        for r in [MuteRefusal::NotModerator, MuteRefusal::UnmuteOther, MuteRefusal::NotAllowedToUnmute, MuteRefusal::Exempt] {
            assert_eq!(r.condition(), ErrorCondition::NotAllowed);
        }
        let rows: Vec<u8> = [
            MuteRefusal::NoConference,
            MuteRefusal::RequesterNotParticipant,
            MuteRefusal::NotModerator,
            MuteRefusal::TargetNotParticipant,
            MuteRefusal::UnmuteOther,
            MuteRefusal::NotAllowedToUnmute,
            MuteRefusal::Exempt,
        ]
        .iter()
        .map(|r| r.row())
        .collect();
        assert_eq!(rows, vec![2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn a_moderators_mute_without_moderation_does_not_force_mute_the_bridge() {
        let m = member("m", true, false);
        let p = member("p", false, false);
        let none = AvModeration::default();
        assert_eq!(
            check(&ask(Some(&m), Some(&p), false, true, MediaType::Audio), &none),
            Ok(MuteOutcome { bridge: BridgeFlag::Audio(false), notify_target: true })
        );
        // A screen share muted by a moderator: the shared video flag stays off, so the
        // camera keeps flowing.
        assert_eq!(
            check(&ask(Some(&m), Some(&p), false, true, MediaType::Desktop), &none),
            Ok(MuteOutcome { bridge: BridgeFlag::Video(false), notify_target: true })
        );
        // Under video + desktop moderation a remote mute keeps the target blocked.
        let both = av(&[MediaType::Video, MediaType::Desktop], &[]);
        assert_eq!(
            check(&ask(Some(&m), Some(&p), false, true, MediaType::Desktop), &both),
            Ok(MuteOutcome { bridge: BridgeFlag::Video(true), notify_target: true })
        );
        // Video moderated but desktop not: the flag is off (desktop is allowed).
        let video = av(&[MediaType::Video], &[]);
        assert_eq!(
            check(&ask(Some(&p), Some(&p), true, true, MediaType::Video), &video),
            Ok(MuteOutcome { bridge: BridgeFlag::Video(false), notify_target: false })
        );
        // A self-mute by a plain participant is always accepted.
        assert!(check(&ask(Some(&p), Some(&p), true, true, MediaType::Audio), &av(&[MediaType::Audio], &[])).is_ok());
    }
}
