//! jicofo: a Jitsi Meet conference focus.
//!
//! Layers, bottom up: `xml` (framing, parsing, writing; no I/O), `jid`, `xmpp`
//! (stream negotiation, SASL and the component handshake as state machines),
//! `net` (the only module that touches sockets: one mio event loop), and the focus
//! logic above it, which runs on plain threads and talks to `net` through channels.
//!
//! `jvbsim` is not part of the focus: it is a Jitsi Videobridge *simulator* for tests
//! and demos (brewery presence, Colibri2 and health answers, no media), run by the
//! `jvb-sim` binary.

pub mod app;
pub mod auth;
pub mod bridge;
pub mod conference;
pub mod config;
pub mod focus;
#[doc(hidden)]
pub mod fuzzing;
pub mod jid;
pub mod log_throttle;
pub mod messages;
pub mod metrics;
pub mod net;
pub mod ops;
pub mod xml;
pub mod xmpp;

#[cfg(test)]
mod stack_tests;
