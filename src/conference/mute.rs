//! The bridge's force-mute state of one participant ([`ForceMute`], kept in its
//! [`super::participant::Participant`]): every change states the endpoint's complete state
//! (media.md §1.7) and nothing is sent when it does not change. Who may mute whom is
//! `moderation::mute_rules`; the mute IQ itself is typed in `xmpp::mute`.

/// The bridge force-mute state `(audio, video)` of one participant.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ForceMute {
    state: (bool, bool),
}

impl ForceMute {
    /// Set the force-mute of `media` ("audio"/"video"): the complete new state when that
    /// changed, `None` when there is nothing to tell the bridge.
    pub fn set(&mut self, media: &str, muted: bool) -> Option<(bool, bool)> {
        let before = self.state;
        match media {
            "audio" => self.state.0 = muted,
            _ => self.state.1 = muted,
        }
        (self.state != before).then_some(self.state)
    }

    /// The state as sent in the endpoint's creation (AV moderation at allocation).
    pub fn created(&mut self, state: (bool, bool)) {
        self.state = state;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn force_mute_states_the_complete_state_and_only_changes() {
        let mut p = ForceMute::default();
        assert_eq!(p.set("audio", true), Some((true, false)));
        assert_eq!(p.set("audio", true), None);
        assert_eq!(p.set("video", true), Some((true, true)));
        assert_eq!(p.set("audio", false), Some((false, true)));
        let mut q = ForceMute::default();
        assert_eq!(q.set("video", false), None, "nothing forced, nothing to lift");
        // A participant that leaves takes its state along: a new one starts unforced.
        let mut again = ForceMute::default();
        assert_eq!(again.set("video", false), None);
        // Created force-muted (AV moderation on at allocation): lifting is a change.
        let mut r = ForceMute::default();
        r.created((true, true));
        assert_eq!(r.set("audio", false), Some((false, true)));
    }
}
