//! The sans-IO media model: participant features and codecs (`codecs`), sources,
//! their validation and encodings (`sources`), and Jingle stanzas (`jingle`).
//!
//! Pure functions and values only: no sockets, no threads, no clocks. The
//! conference logic feeds parsed stanzas in and sends the returned elements out.

pub mod codecs;

pub use codecs::{colibri_media, offer_contents, Features};
