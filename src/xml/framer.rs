//! The stream framer (sans-IO): raw bytes in, stream header / stanzas / stream end out.
//!
//! (interface fixed; implementation to be written)

/// The attributes of the `<stream:stream>` opening tag.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamHeader {
    /// Plain attributes (`id`, `from`, `to`, `version`, `xml:lang`), declarations excluded.
    pub attrs: Vec<(String, String)>,
    /// The default namespace the stream declared (`jabber:client`, `jabber:component:accept`).
    pub default_ns: String,
    /// Prefixed namespace declarations (`("stream", "http://etherx.jabber.org/streams")`).
    pub prefixes: Vec<(String, String)>,
}

impl StreamHeader {
    /// The value of attribute `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// One unit of the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    StreamHeader(StreamHeader),
    /// One complete top-level element, exactly as received (valid UTF-8).
    Stanza(String),
    StreamEnd,
}

/// Why the stream cannot go on; each maps to an RFC 6120 stream error condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FramerError {
    /// A stanza exceeded the size cap.
    PolicyViolation(String),
    /// Comment, DTD, processing instruction (other than the XML declaration) or entity declaration.
    RestrictedXml(String),
    NotWellFormed(String),
    /// Bytes that are not UTF-8.
    UnsupportedEncoding,
}
