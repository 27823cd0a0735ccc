//! AV moderation state of one conference (moderation.md §1.3): per media type whether
//! moderation is on, and its whitelist (occupant JIDs, exact string compare). Messages
//! from the component are applied with [`AvModeration::apply`], which reports the
//! false→true transitions the conference must act on (force-mute and mute IQs); every
//! other change is state only. Whitelists are bounded by the parser
//! ([`crate::xmpp::av_moderation::MAX_WHITELIST`]).

use crate::xmpp::av_moderation::{AvModerationMessage, MediaType};

/// Moderation of `media` was just turned on by `actor` (an occupant JID, if given).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enabled {
    /// The media type now moderated.
    pub media: MediaType,
    /// The moderator who turned it on (the message's `actor`), if given.
    pub actor: Option<String>,
}

/// AV moderation of one conference.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AvModeration {
    enabled: [bool; 3],
    whitelists: [Vec<String>; 3],
}

impl AvModeration {
    /// Is moderation of `t` on?
    pub fn enabled(&self, t: MediaType) -> bool {
        self.enabled[t.index()]
    }

    /// The whitelist of `t`.
    pub fn whitelist(&self, t: MediaType) -> &[String] {
        &self.whitelists[t.index()]
    }

    /// `allowed(jid, T) = !enabled(T) || whitelist(T) contains jid`.
    pub fn allowed(&self, occupant_jid: &str, t: MediaType) -> bool {
        !self.enabled(t) || self.whitelist(t).iter().any(|j| j == occupant_jid)
    }

    /// The bridge force-mute flags of an occupant: audio = `!allowed(AUDIO)`, video =
    /// `!allowed(VIDEO) && !allowed(DESKTOP)` (camera and screen share one flag).
    pub fn bridge_flags(&self, occupant_jid: &str) -> (bool, bool) {
        (
            !self.allowed(occupant_jid, MediaType::Audio),
            !self.allowed(occupant_jid, MediaType::Video) && !self.allowed(occupant_jid, MediaType::Desktop),
        )
    }

    /// Force-mute `(audio, video)` for a non-moderator, non-exempt joiner at allocation:
    /// audio when audio moderation is on, video when video moderation is on (desktop is
    /// not checked there, nor the whitelist).
    pub fn join_flags(&self) -> (bool, bool) {
        (self.enabled(MediaType::Audio), self.enabled(MediaType::Video))
    }

    /// Apply a message: each whitelist present replaces that type's list, then when both
    /// `enabled` and `mediaType` are present the flag is set. Returns the transition
    /// false→true, if this message made one.
    pub fn apply(&mut self, m: &AvModerationMessage) -> Option<Enabled> {
        for (t, list) in &m.whitelists {
            self.whitelists[t.index()] = list.clone();
        }
        let (Some(on), Some(t)) = (m.enabled, m.media_type) else { return None };
        let was = std::mem::replace(&mut self.enabled[t.index()], on);
        (on && !was).then(|| Enabled { media: t, actor: m.actor.clone() })
    }

    /// Forget everything (the focus (re)joined the room).
    pub fn reset(&mut self) {
        *self = AvModeration::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jid::Jid;

    const M: &str = "r@conference.meet.test/m";
    const P: &str = "r@conference.meet.test/p";

    fn msg(enabled: Option<bool>, t: Option<MediaType>, wl: Vec<(MediaType, Vec<&str>)>) -> AvModerationMessage {
        AvModerationMessage {
            room: Jid::parse("r@conference.meet.test").unwrap(),
            enabled,
            media_type: t,
            actor: Some(M.into()),
            whitelists: wl.into_iter().map(|(t, l)| (t, l.into_iter().map(String::from).collect())).collect(),
        }
    }

    #[test]
    fn enable_is_a_transition_once_and_disable_is_state_only() {
        let mut av = AvModeration::default();
        assert!(av.allowed(P, MediaType::Audio));
        assert_eq!(av.apply(&msg(Some(true), Some(MediaType::Audio), vec![])), Some(Enabled { media: MediaType::Audio, actor: Some(M.into()) }));
        assert!(!av.allowed(P, MediaType::Audio));
        assert!(av.allowed(P, MediaType::Video));
        // Repeated enable: no transition.
        assert_eq!(av.apply(&msg(Some(true), Some(MediaType::Audio), vec![])), None);
        // Disable: state only.
        assert_eq!(av.apply(&msg(Some(false), Some(MediaType::Audio), vec![])), None);
        assert!(av.allowed(P, MediaType::Audio));
        // Enable again is a transition again.
        assert!(av.apply(&msg(Some(true), Some(MediaType::Audio), vec![])).is_some());
        // enabled without mediaType, or mediaType without enabled: nothing.
        assert_eq!(av.apply(&msg(Some(true), None, vec![])), None);
        assert_eq!(av.apply(&msg(None, Some(MediaType::Video), vec![])), None);
        assert!(!av.enabled(MediaType::Video));
    }

    #[test]
    fn whitelists_replace_only_their_type_and_decide_allowed() {
        let mut av = AvModeration::default();
        av.apply(&msg(Some(true), Some(MediaType::Audio), vec![]));
        assert_eq!(av.apply(&msg(None, Some(MediaType::Audio), vec![(MediaType::Audio, vec![M, P])])), None);
        assert!(av.allowed(P, MediaType::Audio));
        av.apply(&msg(None, None, vec![(MediaType::Video, vec![P])]));
        assert_eq!(av.whitelist(MediaType::Audio), &[M.to_string(), P.to_string()]);
        // Replaced, not merged.
        av.apply(&msg(None, None, vec![(MediaType::Audio, vec![M])]));
        assert!(!av.allowed(P, MediaType::Audio));
        // Exact string compare.
        assert!(!av.allowed("R@conference.meet.test/m", MediaType::Audio));
        // A whitelist in the same message as the enable is applied first.
        let mut b = AvModeration::default();
        assert!(b.apply(&msg(Some(true), Some(MediaType::Video), vec![(MediaType::Video, vec![P])])).is_some());
        assert!(b.allowed(P, MediaType::Video));
        b.reset();
        assert_eq!(b, AvModeration::default());
    }

    #[test]
    fn camera_and_screen_share_the_bridge_video_flag() {
        let mut av = AvModeration::default();
        av.apply(&msg(Some(true), Some(MediaType::Video), vec![]));
        // Video moderated, desktop not: desktop allowed, so the video flag stays off.
        assert_eq!(av.bridge_flags(P), (false, false));
        av.apply(&msg(Some(true), Some(MediaType::Desktop), vec![]));
        assert_eq!(av.bridge_flags(P), (false, true));
        av.apply(&msg(None, None, vec![(MediaType::Desktop, vec![P])]));
        assert_eq!(av.bridge_flags(P), (false, false));
        av.apply(&msg(Some(true), Some(MediaType::Audio), vec![]));
        assert_eq!(av.bridge_flags(P), (true, false));
        assert_eq!(av.join_flags(), (true, true));
    }
}
