//! XML namespaces of the protocols the focus speaks (was `xml::ns`: the XML layer
//! itself knows no namespace).

/// Client stream content, RFC 6120 (`jabber:client`): the default namespace of stanzas on the c2s connection.
pub const CLIENT: &str = "jabber:client";
/// External component stream content, XEP-0114 (`jabber:component:accept`): the default namespace of stanzas on the component connection.
pub const COMPONENT: &str = "jabber:component:accept";
/// XMPP stream envelope, RFC 6120 (`http://etherx.jabber.org/streams`): `<stream:stream>`, `<stream:features>`, `<stream:error>`.
pub const STREAM: &str = "http://etherx.jabber.org/streams";
/// Stanza error conditions, RFC 6120 §8.3 (`urn:ietf:params:xml:ns:xmpp-stanzas`): the condition and `<text>` inside an `<error>`.
pub const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
/// Stream error conditions, RFC 6120 §4.9 (`urn:ietf:params:xml:ns:xmpp-streams`): the condition and `<text>` inside a `<stream:error>`.
pub const STREAMS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
/// STARTTLS, RFC 6120 §5 (`urn:ietf:params:xml:ns:xmpp-tls`): `<starttls>`, `<required>`, `<proceed>`.
pub const TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
/// SASL authentication, RFC 6120 §6 (`urn:ietf:params:xml:ns:xmpp-sasl`): `<mechanisms>`, `<auth>`, `<challenge>`, `<response>`, `<success>`, `<failure>`.
pub const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
/// Resource binding, RFC 6120 §7 (`urn:ietf:params:xml:ns:xmpp-bind`): the bind IQ that gives the focus user its full JID.
pub const BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
/// Session establishment, RFC 3921 §3 (`urn:ietf:params:xml:ns:xmpp-session`): the legacy session IQ, sent only when the server does not mark it `<optional/>`.
pub const SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
/// XMPP Ping, XEP-0199 (`urn:xmpp:ping`): keepalive IQs the focus sends and answers.
pub const PING: &str = "urn:xmpp:ping";
/// Service Discovery info, XEP-0030 (`http://jabber.org/protocol/disco#info`): identities and features of an entity.
pub const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
/// Service Discovery items, XEP-0030 (`http://jabber.org/protocol/disco#items`): the items an entity lists, e.g. a domain's components.
pub const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
/// Entity Capabilities, XEP-0115 (`http://jabber.org/protocol/caps`): the `<c>` element with a verification hash in presence.
pub const CAPS: &str = "http://jabber.org/protocol/caps";
/// Multi-User Chat, XEP-0045 (`http://jabber.org/protocol/muc`): the `<x>` of a join presence, and the MUC feature in disco.
pub const MUC: &str = "http://jabber.org/protocol/muc";
/// MUC occupant extension, XEP-0045 (`http://jabber.org/protocol/muc#user`): `<x>` with `<item affiliation role jid>` and `<status code>` in room presence.
pub const MUC_USER: &str = "http://jabber.org/protocol/muc#user";
/// MUC admin use case, XEP-0045 §9 (`http://jabber.org/protocol/muc#admin`): the IQ that grants or revokes affiliations (owner).
pub const MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
/// MUC owner use case, XEP-0045 §10 (`http://jabber.org/protocol/muc#owner`): fetching and submitting the room configuration form.
pub const MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
/// Data Forms, XEP-0004 (`jabber:x:data`): the room configuration and room info forms.
pub const DATA: &str = "jabber:x:data";
/// Software Version, XEP-0092 (`jabber:iq:version`).
pub const VERSION: &str = "jabber:iq:version";
/// Jitsi focus protocol (`http://jitsi.org/protocol/focus`): the conference IQ `<conference>`, `<conference-properties>` in the focus's presence, and `<bridge-session>` / `<ice-state>` in Jingle.
pub const FOCUS: &str = "http://jitsi.org/protocol/focus";
/// Colibri v1 (`http://jitsi.org/protocol/colibri`): the `<stats>` bridges and Jigasis publish in brewery presence, and the bridge's `graceful-shutdown` error condition.
pub const COLIBRI: &str = "http://jitsi.org/protocol/colibri";
/// Colibri2 (`jitsi:colibri2`): the focus's conference-modify IQs to the bridge and their answers.
pub const COLIBRI2: &str = "jitsi:colibri2";
/// Jitsi bridge health check (`http://jitsi.org/protocol/healthcheck`): the `<healthcheck>` IQ the focus sends each bridge.
pub const HEALTHCHECK: &str = "http://jitsi.org/protocol/healthcheck";
/// Jingle, XEP-0166 (`urn:xmpp:jingle:1`): the session signaling between focus and participant.
pub const JINGLE: &str = "urn:xmpp:jingle:1";
/// Jitsi Meet extensions (`http://jitsi.org/jitmeet`): `<json-message>` (messages of the Prosody components: room metadata, AV moderation), `<versions>` in the focus's presence.
pub const JITMEET: &str = "http://jitsi.org/jitmeet";
/// Jitsi audio mute (`http://jitsi.org/jitmeet/audio`): the `<mute>` IQ for audio, and `<audiomuted>` in presence.
pub const AUDIO_MUTE: &str = "http://jitsi.org/jitmeet/audio";
/// Jitsi video mute (`http://jitsi.org/jitmeet/video`): the `<mute>` IQ for video, and `<videomuted>` in presence.
pub const VIDEO_MUTE: &str = "http://jitsi.org/jitmeet/video";
/// Jitsi desktop-sharing mute (`http://jitsi.org/jitmeet/desktop`): the `<mute>` IQ for screen sharing.
pub const DESKTOP_MUTE: &str = "http://jitsi.org/jitmeet/desktop";
/// Jitsi start muted (`http://jitsi.org/jitmeet/start-muted`): `<startmuted audio video>` in a session-initiate.
pub const START_MUTED: &str = "http://jitsi.org/jitmeet/start-muted";
/// Jingle RTP sessions, XEP-0167 (`urn:xmpp:jingle:apps:rtp:1`): `<description>` and `<payload-type>` of audio and video contents.
pub const RTP: &str = "urn:xmpp:jingle:apps:rtp:1";
/// Jingle RTCP feedback, XEP-0293 (`urn:xmpp:jingle:apps:rtp:rtcp-fb:0`): `<rtcp-fb>` of a payload type.
pub const RTCP_FB: &str = "urn:xmpp:jingle:apps:rtp:rtcp-fb:0";
/// Jingle RTP header extensions, XEP-0294 (`urn:xmpp:jingle:apps:rtp:rtp-hdrext:0`): `<rtp-hdrext>` and `<extmap-allow-mixed>`.
pub const RTP_HDREXT: &str = "urn:xmpp:jingle:apps:rtp:rtp-hdrext:0";
/// Jingle source-specific media attributes, XEP-0339 (`urn:xmpp:jingle:apps:rtp:ssma:0`): `<source>` (SSRC) and `<ssrc-group>`.
pub const SSMA: &str = "urn:xmpp:jingle:apps:rtp:ssma:0";
/// Jingle ICE-UDP transport, XEP-0176 (`urn:xmpp:jingle:transports:ice-udp:1`): ufrag, password and candidates.
pub const ICE_UDP: &str = "urn:xmpp:jingle:transports:ice-udp:1";
/// Jingle DTLS-SRTP, XEP-0320 (`urn:xmpp:jingle:apps:dtls:0`): the `<fingerprint>` and setup role in a transport.
pub const DTLS: &str = "urn:xmpp:jingle:apps:dtls:0";
/// Jingle WebRTC data channels, XEP-0343 (`urn:xmpp:jingle:transports:dtls-sctp:1`): the legacy `<sctpmap>` in the data transport.
pub const DTLS_SCTP: &str = "urn:xmpp:jingle:transports:dtls-sctp:1";
/// Jingle grouping framework, XEP-0338 (`urn:xmpp:jingle:apps:grouping:0`): the BUNDLE `<group>` of contents.
pub const GROUPING: &str = "urn:xmpp:jingle:apps:grouping:0";
