//! The bridge's force-mute state per participant ([`ForceMute`]), as the conference keeps
//! it: every change states the endpoint's complete state (media.md §1.7) and nothing is
//! sent when it does not change. Who may mute whom is `moderation::mute_rules`; the mute
//! IQ itself is typed in `xmpp::mute`.

use std::collections::HashMap;

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

    /// `nick`'s state as sent in its endpoint's creation (AV moderation at allocation).
    pub fn created(&mut self, nick: &str, state: (bool, bool)) {
        self.state.insert(nick.to_string(), state);
    }

    /// `nick` left: its state goes with it.
    pub fn forget(&mut self, nick: &str) {
        self.state.remove(nick);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
