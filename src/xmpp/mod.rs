//! XMPP session establishment, sans-IO: state machines that turn what the server
//! sent into actions for the network layer, plus stanza helpers. No sockets,
//! threads or clocks here.
//!
//! * [`sasl`], [`handshake`]: the authentication computations.
//! * [`stanza`]: IQ replies, stanza and stream errors.

pub mod handshake;
pub mod sasl;
pub mod stanza;
