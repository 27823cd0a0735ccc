//! Settings of the Jibri sessions and of the moderation features as configured (flags
//! and their defaults). The code that follows them is in `jibri::session` and
//! `moderation`, which re-export these types under their own names.

use std::time::Duration;

/// Jibri session settings (`--jibri_pending_timeout`, `--jibri_num_retries`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JibriSessionSettings {
    /// `None`: no pending timer.
    pub pending_timeout: Option<Duration>,
    /// `None`: unlimited.
    pub num_retries: Option<u32>,
}

impl Default for JibriSessionSettings {
    fn default() -> Self {
        JibriSessionSettings { pending_timeout: Some(Duration::from_secs(90)), num_retries: Some(5) }
    }
}

/// Settings of the moderation features, from the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModerationSettings {
    /// `--enable_auto_owner`: the focus makes the first eligible participant owner
    /// (without a secure domain, outside breakout rooms).
    pub auto_owner: bool,
    /// `--enable_ice_restart`: in-place ICE restarts are served.
    pub ice_restart: bool,
}

impl Default for ModerationSettings {
    fn default() -> ModerationSettings {
        ModerationSettings { auto_owner: true, ice_restart: true }
    }
}
