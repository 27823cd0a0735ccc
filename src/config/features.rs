//! Settings of the Jibri sessions, of the moderation features and of the authentication
//! authority as configured (flags and their defaults). The code that follows them is in
//! `jibri::session`, `moderation` and `auth`, which re-export these types.

use std::fmt;
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

/// Which of Jicofo's authentication authorities the focus plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthorityKind {
    /// `--auth_domain` (Jicofo `type = XMPP`, `org.jitsi.jicofo.auth.URL=XMPP:<domain>`).
    XmppDomain,
    /// `--jwt_auth_domain` (Jicofo `type = JWT`, `org.jitsi.jicofo.auth.URL=EXT_JWT:<domain>`).
    ExternalJwt,
}

/// The authentication authority the focus runs: its kind and the domain users log in on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authority {
    /// Which authority.
    pub kind: AuthorityKind,
    /// The domain its users log in on (Jicofo's `login-url`).
    pub domain: String,
}

impl fmt::Display for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            AuthorityKind::XmppDomain => write!(
                f,
                "secure domain {} (its users create rooms and are made owners; sessions 24 h, kept after the conference)",
                self.domain
            ),
            AuthorityKind::ExternalJwt => write!(
                f,
                "Jicofo's JWT authority for {} (Prosody checks the tokens; senders of that domain get a session of 1 min, dropped when its conference ends, create rooms and are made owners)",
                self.domain
            ),
        }
    }
}
