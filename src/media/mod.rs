//! The sans-IO media model: participant features and codecs (`codecs`), sources,
//! their validation and encodings (`sources`), and Jingle stanzas (`jingle`).
//!
//! Pure functions and values only: no sockets, no threads, no clocks. The
//! conference logic feeds parsed stanzas in and sends the returned elements out.

pub mod codecs;
pub mod jingle;
pub mod sources;

pub use codecs::{colibri_media, has_data_content, offer_contents, offer_contents_with, CodecConfig, Features};
pub use jingle::{
    first_ice_transport, initial_last_n, new_sid, session_terminate, source_add, source_remove, transport_info, BridgeSession,
    JingleAction, JingleError, JingleRequest, Offer,
};
pub use sources::{
    ConferenceSources, EndpointSources, MediaType, Semantics, Source, SourceError, SourceLimits, SsrcGroup, BRIDGE_OWNER,
};

#[cfg(test)]
mod tests;
