//! Jingle and sources (was `media`): participant features and the codecs offered
//! (`codecs`), sources, their validation and their encodings in Jingle, JSON and
//! Colibri2 (`sources`), each owner's encodings cached for the wire and the per-receiver
//! view that writes them (`encoded`), the Jingle stanzas themselves (`stanzas`:
//! session-initiate, session-accept, transport-info, source-add/remove, session-terminate),
//! and the ICE transport the focus relays between participants and the bridge (`transport`).
//! What clients send is read into typed values (`JingleRequest`, `JingleContent`,
//! `IceTransport`) from the parser's events, without a tree (`xmpp::incoming`).
//!
//! Pure functions and values only: no sockets, no threads, no clocks. The
//! conference logic feeds parsed stanzas in and sends the returned elements out.

pub mod codecs;
pub mod encoded;
pub mod stanzas;
pub mod sources;
pub mod transport;

pub use codecs::{colibri_media, has_data_content, offer_contents, offer_contents_with, CodecConfig, Features};
pub use stanzas::{
    first_ice_transport, initial_last_n, session_terminate, source_add, source_remove, transport_info, BridgeSession,
    JingleAction, JingleError, JingleReader, JingleRequest, Offer,
};
pub use encoded::SourceView;
pub use sources::{
    ColibriSources, ConferenceSources, EndpointSources, JingleContent, MediaType, Semantics, Source, SourceError, SourceLimits, SourceOwner, SsrcGroup,
    BRIDGE_OWNER,
};
pub use transport::{IceTransport, TransportChild};

#[cfg(test)]
mod tests;
