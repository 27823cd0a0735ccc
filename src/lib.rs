//! jicofo: a Jitsi Meet conference focus.
//!
//! Layers, bottom up: `xml` (framing, parsing, writing; no I/O), `jid`, `xmpp`
//! (stream negotiation, SASL and the component handshake as state machines),
//! `net` (the only module that touches sockets: one mio event loop), and the focus
//! logic above it, which runs on plain threads and talks to `net` through channels.

pub mod app;
pub mod conference;
pub mod config;
pub mod focus;
pub mod jid;
pub mod media;
pub mod net;
pub mod xml;
pub mod xmpp;
