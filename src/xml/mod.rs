//! The XML layer, sans-IO: the stream framer, the stanza parser and the serializer.
//!
//! `framer` splits raw stream bytes into the stream header, complete stanzas and the
//! stream end; `parse` turns one complete stanza (with the stream's namespaces in
//! scope) into an owned [`Element`]; `write` turns an `Element` back into text.

pub mod element;
pub mod framer;
pub mod parse;
pub mod write;

pub use element::{Element, Node};
pub use framer::{Frame, Framer, FramerError, StreamHeader, DEFAULT_MAX_STANZA};
pub use parse::{parse_fragment, parse_stanza, parse_stanza_with, ParseError, MAX_DEPTH, MAX_NODES};

/// Namespaces used throughout the crate.
pub mod ns {
    pub const CLIENT: &str = "jabber:client";
    pub const COMPONENT: &str = "jabber:component:accept";
    pub const STREAM: &str = "http://etherx.jabber.org/streams";
    pub const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
    pub const STREAMS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
    pub const TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
    pub const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
    pub const BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
    pub const SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
    pub const PING: &str = "urn:xmpp:ping";
    pub const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
    pub const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
    pub const CAPS: &str = "http://jabber.org/protocol/caps";
    pub const MUC: &str = "http://jabber.org/protocol/muc";
    pub const MUC_USER: &str = "http://jabber.org/protocol/muc#user";
    pub const MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
    pub const MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
    pub const DATA: &str = "jabber:x:data";
    pub const VERSION: &str = "jabber:iq:version";
    pub const FOCUS: &str = "http://jitsi.org/protocol/focus";
    pub const COLIBRI: &str = "http://jitsi.org/protocol/colibri";
    pub const COLIBRI2: &str = "jitsi:colibri2";
    pub const HEALTHCHECK: &str = "http://jitsi.org/protocol/healthcheck";
    pub const JINGLE: &str = "urn:xmpp:jingle:1";
    pub const JITMEET: &str = "http://jitsi.org/jitmeet";
    pub const AUDIO_MUTE: &str = "http://jitsi.org/jitmeet/audio";
    pub const VIDEO_MUTE: &str = "http://jitsi.org/jitmeet/video";
    pub const DESKTOP_MUTE: &str = "http://jitsi.org/jitmeet/desktop";
    pub const START_MUTED: &str = "http://jitsi.org/jitmeet/start-muted";
    pub const RTP: &str = "urn:xmpp:jingle:apps:rtp:1";
    pub const RTCP_FB: &str = "urn:xmpp:jingle:apps:rtp:rtcp-fb:0";
    pub const RTP_HDREXT: &str = "urn:xmpp:jingle:apps:rtp:rtp-hdrext:0";
    pub const SSMA: &str = "urn:xmpp:jingle:apps:rtp:ssma:0";
    pub const ICE_UDP: &str = "urn:xmpp:jingle:transports:ice-udp:1";
    pub const DTLS: &str = "urn:xmpp:jingle:apps:dtls:0";
    pub const DTLS_SCTP: &str = "urn:xmpp:jingle:transports:dtls-sctp:1";
    pub const GROUPING: &str = "urn:xmpp:jingle:apps:grouping:0";
}
