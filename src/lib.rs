//! jicofo: a Jitsi Meet conference focus.
//!
//! Layers, bottom up; a module uses only modules of lower layers (`tests/layers.rs`
//! checks it on every `cargo test`, and README.md's "Architecture" says the same):
//!
//! | layer | modules | what |
//! |---|---|---|
//! | 0 | `jid`, `ids`, `log_throttle` | plain values and helpers (JIDs; identifiers as types: conference id, nick, Jingle sid, meeting id, bridge-session id) |
//! | 1 | `xml`, `config` | framing, parsing, writing (no I/O, no namespaces); flags, files and limits |
//! | 2 | `xmpp` | stream negotiation, and every protocol's typed stanzas: stanza envelope and errors (`stanza`), namespaces (`ns`), MUC presence (`muc`), the focus conference IQ (`conference_iq`), disco and caps (`disco`, `caps`), Jingle and sources (`jingle`), Colibri2 (`colibri2`), mute (`mute`) |
//! | 3 | `net` | the only module that touches sockets: one mio event loop, TLS, the generic HTTP server |
//! | 4 | `messages`, `auth`, `metrics` | what crosses threads (inbox, control, reply targets, pending table); authentication sessions (secure domain, JWT authority); counters |
//! | 5 | `bridge`, `jibri`, `jigasi`, `moderation` | bridge registry, selection, health checks; the Jibri and Jigasi breweries and the Jibri session state machine (sans-IO; the conference side is `conference::recording` and `conference::dial`); moderation policies as pure functions and state (AV moderation, the mute IQ checks, ICE recovery, breakout rooms) |
//! | 6 | `conference` | one room, on its own thread |
//! | 7 | `focus` | the router: classifies stanzas, starts conferences, routes answers |
//! | 8 | `ops` | the HTTP API handler, `/stats` and `/metrics`, `--check` |
//! | 9 | `app` | configuration to running focus |
//!
//! `fuzzing` (doc-hidden fuzz harnesses) sits above everything and nothing imports it.
//! The test tools `jvb-sim` (a Jitsi Videobridge *simulator*: brewery presence,
//! Colibri2 and health answers, no media) and `jicofo-load` are binaries of their own
//! (`src/bin/`) that use this library's public API only.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod app;
pub mod auth;
pub mod bridge;
pub mod conference;
pub mod config;
pub mod focus;
#[doc(hidden)]
pub mod fuzzing;
pub mod ids;
pub mod jibri;
pub mod jid;
pub mod jigasi;
pub mod log_throttle;
pub mod messages;
pub mod metrics;
pub mod moderation;
pub mod net;
pub mod ops;
pub mod xml;
pub mod xmpp;

#[cfg(test)]
mod stack_tests;
