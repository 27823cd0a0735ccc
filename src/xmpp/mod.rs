//! XMPP session establishment, sans-IO: state machines that turn what the server
//! sent (stream headers, top-level elements) into [`Action`]s for the network
//! layer, plus stanza helpers. No sockets, threads or clocks here.
//!
//! * [`c2s::ClientNegotiator`]: RFC 6120 client stream (STARTTLS, SASL, bind,
//!   session, initial presence) for `focus@auth.<domain>/focus`.
//! * [`component::ComponentNegotiator`]: XEP-0114 component stream for
//!   `focus.<domain>`.
//! * [`sasl`], [`handshake`]: the authentication computations they use.
//! * [`stanza`]: IQ replies, stanza and stream errors.
//! * [`components`], [`json_message`], [`av_moderation`], [`room_metadata`]: the Jitsi
//!   Prosody components (discovery, their JSON messages) as typed values.
//! * [`caps`]: XEP-0115 entity capabilities: hash verification and the bounded
//!   LRU cache of verified disco#info features.
//! * [`jibri`], [`rayo`], [`jigasi`]: the Jibri IQ and status elements, Rayo dial /
//!   ref / hangup, Jigasi's brewery stats and members' presence features (typed,
//!   `TryFrom<&Element>` parsers and writers).
//!
//! And every protocol the focus speaks, one module each: typed values parsed from a
//! stanza's `Element` and written back to one (everything else imports them from here):
//!
//! * [`ns`]: the namespaces.
//! * [`incoming`]: every stanza the focus receives, classified once where it is parsed
//!   (`Incoming`): the hot kinds read into typed values straight from the parser's
//!   events, without a tree (the readers of [`collect`], [`presence`], `jingle`,
//!   [`colibri2`], [`conference_iq`], [`stanza`]), the rest as a tree.
//! * [`presence`]: every presence, typed (occupants, bridge and Jigasi stats, Jibri status).
//! * [`muc`]: MUC occupant presence, the focus's own presences, owner form, affiliation.
//! * [`conference_iq`]: the focus conference request (`<conference>`), its reply, the
//!   rooms the focus serves.
//! * [`disco`]: the focus's own disco#info and caps `ver`.
//! * [`jingle`]: Jingle stanzas, sources (Jingle/SSMA, JSON, Colibri2 forms) and codecs.
//! * [`colibri2`]: Colibri2 conference-modify requests and answers.
//! * [`mute`]: the mute IQ.
//!
//! The caller owns the socket and the framer: it writes every `Action::Send`,
//! wraps the socket on `Action::StartTls`, resets its framer on
//! `Action::ResetStream`, and on `Action::Ready` hands the stream over to the
//! stanza router. Errors are [`NegotiationError`]s whose `Display` names the
//! cause and the setting that fixes it, ready to log.

use std::fmt;

use crate::jid::Jid;

pub mod av_moderation;
pub mod c2s;
pub mod caps;
pub mod colibri2;
pub mod collect;
pub mod component;
pub mod components;
pub mod conference_iq;
pub mod disco;
pub mod handshake;
pub mod incoming;
pub mod jibri;
pub mod jigasi;
pub mod jingle;
pub mod json_message;
pub mod muc;
pub mod mute;
pub mod ns;
pub mod presence;
pub mod rayo;
pub mod room_metadata;
pub mod sasl;
pub mod stanza;

/// What the network layer must do next, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Write this text to the socket.
    Send(String),
    /// Wrap the socket in TLS now, then call `on_tls_established`.
    StartTls,
    /// Reset the stream framer: a new stream header will arrive.
    ResetStream,
    /// Negotiation is complete; the stream carries stanzas as `jid`. Anything
    /// that had to be sent first (initial presence) was queued before this.
    Ready {
        /// The JID the stream now stands for: the bound full JID of the focus user, or the component JID.
        jid: Jid,
    },
}

/// Why stream negotiation failed. `Display` is meant for an operator's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NegotiationError {
    /// The server's stream header is unusable (wrong namespace, no XMPP 1.0, no id).
    BadStreamHeader {
        /// The server's name as we address it: the XMPP domain (client stream) or the component JID.
        peer: String,
        /// What is wrong with the header.
        reason: String,
    },
    /// The server closed the stream with `<stream:error/>`.
    StreamError {
        /// The server's name as we address it: the XMPP domain (client stream) or the component JID.
        peer: String,
        /// The RFC 6120 stream error condition, e.g. `host-unknown`.
        condition: String,
        /// The error's `<text>`, if the server sent one.
        text: Option<String>,
    },
    /// TLS policy is `Required` but the server did not offer STARTTLS.
    TlsNotOffered {
        /// The XMPP domain of the client stream.
        domain: String,
    },
    /// The server requires STARTTLS but TLS policy is `Disabled`.
    TlsRequiredByServer {
        /// The XMPP domain of the client stream.
        domain: String,
    },
    /// The server answered `<starttls/>` with `<failure/>`.
    TlsFailed {
        /// The XMPP domain of the client stream.
        domain: String,
    },
    /// No offered SASL mechanism fits our credentials and transport.
    NoUsableMechanism {
        /// The XMPP domain of the client stream.
        domain: String,
        /// Which mechanisms were offered and why none fits.
        reason: String,
    },
    /// The server rejected our credentials (SASL `<failure/>`).
    AuthFailed {
        /// The account we tried to log in as (`user@domain`; the bare domain for SASL ANONYMOUS).
        jid: String,
        /// The SASL mechanism that was refused.
        mechanism: sasl::Mechanism,
        /// The RFC 6120 SASL failure condition, e.g. `not-authorized`.
        condition: String,
        /// The failure's `<text>`, if the server sent one.
        text: Option<String>,
    },
    /// The SASL exchange broke on the server's side (bad SCRAM message, server
    /// signature mismatch: the server could not prove it knows the password).
    SaslProtocol {
        /// The XMPP domain of the client stream.
        domain: String,
        /// What broke in the exchange.
        error: sasl::SaslError,
    },
    /// Resource binding failed.
    BindFailed {
        /// The account that was binding a resource (`user@domain`; the bare domain for SASL ANONYMOUS).
        jid: String,
        /// The server's error, or what was missing in its answer.
        reason: String,
    },
    /// The legacy session IQ failed.
    SessionFailed {
        /// The account whose session IQ failed (`user@domain`; the bare domain for SASL ANONYMOUS).
        jid: String,
        /// The server's error, or what was wrong with its answer.
        reason: String,
    },
    /// The component handshake was refused: wrong shared secret.
    ComponentSecretRejected {
        /// The component JID (`focus.<domain>`).
        jid: String,
    },
    /// Prosody has no component by this name.
    ComponentUnknown {
        /// The component JID Prosody does not know (`focus.<domain>`).
        jid: String,
    },
    /// A local setting is unusable (e.g. the component JID does not parse).
    Config(String),
    /// The server sent something that does not fit the current step.
    Unexpected {
        /// The server's name as we address it: the XMPP domain (client stream) or the component JID.
        peer: String,
        /// What the current step waits for.
        expected: String,
        /// A short description of what arrived instead.
        got: String,
    },
    /// A call that does not fit the negotiator's state (already failed or done).
    InvalidState(String),
}

impl NegotiationError {
    /// True when the server refused our credentials (wrong password, wrong
    /// component secret): retrying with the same configuration will fail again,
    /// but a reconnect loop may keep trying while an operator fixes it.
    pub fn is_auth_failure(&self) -> bool {
        matches!(self, NegotiationError::AuthFailed { .. } | NegotiationError::ComponentSecretRejected { .. })
    }
}

fn opt_text(text: &Option<String>) -> String {
    match text {
        Some(t) if !t.trim().is_empty() => format!(" ({})", t.trim()),
        _ => String::new(),
    }
}

impl fmt::Display for NegotiationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use NegotiationError::*;
        match self {
            BadStreamHeader { peer, reason } => write!(f, "bad stream header from {}: {}", peer, reason),
            StreamError { peer, condition, text } => {
                write!(f, "{} closed the stream with error {}{}", peer, condition, opt_text(text))?;
                match condition.as_str() {
                    "host-unknown" => write!(
                        f,
                        ": Prosody does not serve {} (check --domain and the Prosody VirtualHost config)",
                        peer
                    ),
                    "see-other-host" => write!(f, ": the server redirects elsewhere; point the connection at that host"),
                    "conflict" => write!(f, ": another session with the same JID replaced this one (is a second jicofo running?)"),
                    "system-shutdown" => write!(f, ": the server is shutting down"),
                    _ => Ok(()),
                }
            }
            TlsNotOffered { domain } => write!(
                f,
                "TLS is required but {} did not offer STARTTLS on the client connection (Prosody has no certificate for it, or someone between strips STARTTLS): give Prosody a certificate for {} so it offers STARTTLS on c2s, run the focus on the Prosody host with --host=127.0.0.1, or pass --tls_insecure to allow an unencrypted connection",
                domain, domain
            ),
            TlsRequiredByServer { domain } => write!(
                f,
                "{} requires STARTTLS but the client TLS policy is Disabled: allow TLS, or set c2s_require_encryption = false in Prosody",
                domain
            ),
            TlsFailed { domain } => write!(
                f,
                "{} refused STARTTLS (<failure/>): check the TLS certificate and key Prosody uses for {}",
                domain, domain
            ),
            NoUsableMechanism { domain, reason } => {
                write!(f, "cannot authenticate to {}: {}", domain, reason)
            }
            AuthFailed { jid, mechanism, condition, text } => match (mechanism, condition.as_str()) {
                (sasl::Mechanism::Anonymous, _) => write!(
                    f,
                    "anonymous login to {} refused ({}{}): the server wants credentials; set --user_name and --user_password (or JICOFO_AUTH_PASSWORD)",
                    jid, condition, opt_text(text)
                ),
                (_, "not-authorized") => write!(
                    f,
                    "authentication failed for {}: wrong user name or password (check --user_name, --user_password / JICOFO_AUTH_PASSWORD){}",
                    jid,
                    opt_text(text)
                ),
                (_, "account-disabled") => {
                    write!(f, "authentication failed for {}: the account is disabled in Prosody{}", jid, opt_text(text))
                }
                (_, "credentials-expired") => write!(
                    f,
                    "authentication failed for {}: the password has expired; set a new one in Prosody and in --user_password / JICOFO_AUTH_PASSWORD{}",
                    jid,
                    opt_text(text)
                ),
                (_, "encryption-required") | (_, "mechanism-too-weak") => write!(
                    f,
                    "authentication failed for {}: the server refuses {} on this stream ({}{}); enable TLS or SCRAM in Prosody",
                    jid,
                    mechanism,
                    condition,
                    opt_text(text)
                ),
                (_, "temporary-auth-failure") => write!(
                    f,
                    "authentication failed for {}: temporary failure on the server{}; will retry",
                    jid,
                    opt_text(text)
                ),
                _ => write!(f, "authentication failed for {} with {}: {}{}", jid, mechanism, condition, opt_text(text)),
            },
            SaslProtocol { domain, error } => write!(f, "SASL exchange with {} failed: {}", domain, error),
            BindFailed { jid, reason } => write!(f, "resource binding for {} failed: {}", jid, reason),
            SessionFailed { jid, reason } => write!(f, "session establishment for {} failed: {}", jid, reason),
            ComponentSecretRejected { jid } => write!(
                f,
                "component handshake refused for {}: wrong secret (check --secret / JICOFO_SECRET and Prosody's component_secret)",
                jid
            ),
            ComponentUnknown { jid } => write!(
                f,
                "Prosody has no component {} (check --domain/--subdomain and the Prosody config)",
                jid
            ),
            Config(why) => write!(f, "configuration error: {}", why),
            Unexpected { peer, expected, got } => {
                write!(f, "unexpected {} from {} while waiting for {}", got, peer, expected)
            }
            InvalidState(why) => write!(f, "negotiation state error: {}", why),
        }
    }
}

impl std::error::Error for NegotiationError {}

/// A short description of an element for error messages (never its content,
/// which may be large or hostile).
pub(crate) fn describe(el: &crate::xml::Element) -> String {
    let mut name: String = el.name.chars().take(64).collect();
    if el.name.chars().count() > 64 {
        name.push('…');
    }
    let mut ns: String = el.ns.chars().take(128).collect();
    if el.ns.chars().count() > 128 {
        ns.push('…');
    }
    format!("<{} xmlns='{}'>", name, ns)
}

/// Escape text for an attribute value in hand-written stream headers.
pub(crate) fn attr_escape(s: &str) -> String {
    let mut out = String::new();
    crate::xml::write::escape_attr(&mut out, s);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_failure_classification() {
        let e = NegotiationError::AuthFailed {
            jid: "focus@auth.meet.test".into(),
            mechanism: sasl::Mechanism::ScramSha1,
            condition: "not-authorized".into(),
            text: None,
        };
        assert!(e.is_auth_failure());
        assert!(NegotiationError::ComponentSecretRejected { jid: "focus.meet.test".into() }.is_auth_failure());
        assert!(!NegotiationError::TlsNotOffered { domain: "x".into() }.is_auth_failure());
        assert!(!NegotiationError::StreamError { peer: "x".into(), condition: "conflict".into(), text: None }
            .is_auth_failure());
    }

    #[test]
    fn describe_truncates() {
        let el = crate::xml::Element::new(&"a".repeat(500), "urn:x");
        let d = describe(&el);
        assert!(d.len() < 120, "{}", d);
    }
}
