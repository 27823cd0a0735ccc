//! The XML layer, sans-IO: the stream framer, the stanza parser and the serializer.
//!
//! `framer` splits raw stream bytes into the stream header, complete stanzas and the
//! stream end; `parse` turns one complete stanza (with the stream's namespaces in
//! scope) into an owned [`Element`]; `write` turns an `Element` back into text, and
//! makes [`RawXml`]: pre-serialised XML an `Element` carries and the writer copies,
//! written from trees or piece by piece without one ([`RawWriter`]); a [`RawElement`] is
//! a whole stanza written ahead, which the event loop only copies ([`Outgoing`]).

pub mod element;
pub mod framer;
pub mod parse;
pub mod write;

pub use element::{Element, Node};
pub use framer::{Frame, Framer, FramerError, StreamHeader, DEFAULT_MAX_STANZA};
pub use write::{Outgoing, RawElement, RawOpen, RawWriter, RawXml};
pub use parse::{parse_fragment, parse_stanza, parse_stanza_with, Event, ParseError, Reader, TreeBuilder, MAX_DEPTH, MAX_NODES};

