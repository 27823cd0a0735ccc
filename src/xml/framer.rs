//! The stream framer (sans-IO): raw bytes in, stream header / stanzas / stream end out.
//!
//! [`Framer`] buffers whatever bytes the transport hands it ([`Framer::feed`]; read
//! boundaries may fall anywhere, even inside a UTF-8 character, a tag, an attribute
//! value or a CDATA section) and cuts them into [`Frame`]s ([`Framer::next_frame`]):
//! the `<stream:stream …>` header (after an optional `<?xml …?>` declaration), every
//! complete top-level child of the stream as its exact text, and `</stream:stream>`.
//! Whitespace between stanzas (keepalives) is skipped.
//!
//! It does not build a tree: a hand-written byte state machine (memchr searches for
//! `<`, `>` and quotes) tracks only the element depth, quoted attribute values and
//! CDATA sections, so it runs at memory-scanning speed. The scan state survives
//! between `feed`s, so no byte is scanned twice however small the reads are. Full
//! well-formedness of a stanza is left to `parse::parse_stanza` (the `xml` crate).
//!
//! **Oversized and too-deep stanzas are skipped, not fatal.** The server's stream is
//! trusted to be well formed (Prosody parsed it), but a participant controls how large
//! and how deep its stanzas are, and Prosody's re-escaping can make a stanza several
//! times larger on the way. Once a stanza passes the size cap, or opens an element
//! deeper than the depth limit ([`crate::xml::MAX_DEPTH`] by default), the framer
//! switches to *skipping*: it keeps scanning to that stanza's end without buffering it
//! (only two bytes of look-behind are kept, so memory stays bounded by the cap however
//! large the stanza is) and then emits [`Frame::Skipped`] with the name and the
//! addressing attributes (`from`, `to`, `id`, `type`) of its opening tag, as far as
//! they lie within the first cap bytes. The stream goes on with the next stanza.
//!
//! It enforces the RFC 6120 restrictions it can see, and these do end the stream:
//! comments, DTDs, entity declarations and processing instructions (other than the
//! leading XML declaration) are refused (`restricted-xml`, §11.1); a stream header,
//! XML declaration or stream end longer than the cap (`policy-violation`); invalid
//! UTF-8 (`unsupported-encoding`); markup errors the scanner notices
//! (`not-well-formed`), inside skipped stanzas too. Errors are sticky until
//! [`Framer::reset`]. Input is checked for UTF-8 incrementally in `feed` and the
//! scanner never looks past the validated prefix, so the frames and the error
//! produced never depend on how the input was split into reads.

use std::fmt;

use memchr::{memchr, memchr2, memchr3};

/// The default stanza size cap (bytes).
pub const DEFAULT_MAX_STANZA: usize = 256 * 1024;

const STREAM_NS: &str = "http://etherx.jabber.org/streams";

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

/// Why a stanza was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// Longer than the size cap (`max` bytes).
    TooLarge {
        /// The size cap, in bytes.
        max: usize,
    },
    /// Elements nested deeper than `max` levels (the stanza element is level 1).
    TooDeep {
        /// The depth limit, in element levels.
        max: usize,
    },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::TooLarge { max } => write!(f, "stanza larger than {max} bytes"),
            SkipReason::TooDeep { max } => write!(f, "elements nested deeper than {max} levels"),
        }
    }
}

/// A stanza the framer scanned past without keeping it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// The element name as written (`iq`, `message`, possibly prefixed).
    pub name: String,
    /// `from`, `to`, `id` and `type` of the opening tag, in document order: those that
    /// were complete within the first cap bytes (values decoded).
    pub attrs: Vec<(String, String)>,
    /// Which limit it exceeded.
    pub reason: SkipReason,
    /// The stanza's whole length in bytes.
    pub len: usize,
}

impl Skipped {
    /// The value of attribute `name` (one of `from`, `to`, `id`, `type`).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// One unit of the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// The `<stream:stream>` opening tag (first frame of a stream, and after a restart).
    StreamHeader(StreamHeader),
    /// One complete top-level element, exactly as received (valid UTF-8).
    Stanza(String),
    /// A stanza over the size cap or the depth limit, scanned to its end and dropped.
    Skipped(Skipped),
    /// The `</stream:stream>` closing tag: the peer ended the stream.
    StreamEnd,
}

/// Why the stream cannot go on; each maps to an RFC 6120 stream error condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FramerError {
    /// The stream header, XML declaration or stream end exceeded the size cap
    /// (stanzas over the cap are skipped instead).
    PolicyViolation(String),
    /// Comment, DTD, processing instruction (other than the XML declaration) or entity declaration.
    RestrictedXml(String),
    /// Markup that is not well-formed XML or not a valid stream (bad syntax, text outside a stanza, a bad stream header).
    NotWellFormed(String),
    /// Bytes that are not UTF-8.
    UnsupportedEncoding,
}

impl FramerError {
    /// The RFC 6120 stream error condition to send before closing the stream.
    pub fn condition(&self) -> &'static str {
        match self {
            FramerError::PolicyViolation(_) => "policy-violation",
            FramerError::RestrictedXml(_) => "restricted-xml",
            FramerError::NotWellFormed(_) => "not-well-formed",
            FramerError::UnsupportedEncoding => "unsupported-encoding",
        }
    }
}

impl fmt::Display for FramerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FramerError::PolicyViolation(m) => write!(f, "policy-violation: {m}"),
            FramerError::RestrictedXml(m) => write!(f, "restricted-xml: {m}"),
            FramerError::NotWellFormed(m) => write!(f, "not-well-formed: {m}"),
            FramerError::UnsupportedEncoding => f.write_str("unsupported-encoding: input is not UTF-8"),
        }
    }
}

impl std::error::Error for FramerError {}

fn nwf(msg: &str) -> FramerError {
    FramerError::NotWellFormed(msg.to_string())
}

fn restricted(msg: &str) -> FramerError {
    FramerError::RestrictedXml(msg.to_string())
}

/// Where the scanner is inside the markup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lex {
    /// Character data (or whitespace between top-level frames).
    Text,
    /// Just after `<`.
    Lt,
    /// After `<!` plus this many bytes of `[CDATA[`.
    Bang(u8),
    /// Inside `<![CDATA[ … ]]>`.
    Cdata,
    /// After `<?` plus this many bytes of `xml`.
    PiName(u8),
    /// Inside the XML declaration, looking for `?>`.
    PiBody,
    /// Inside a start tag, outside quotes.
    StartTag,
    /// Inside a quoted attribute value (the quote byte).
    Quoted(u8),
    /// Inside an end tag.
    EndTag,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Before the stream header (the XML declaration may come).
    Prolog,
    /// Between the header and `</stream:stream>`.
    Stream,
    /// After `</stream:stream>`: only whitespace may follow.
    Ended,
}

/// What a completed token means for the caller (computed while the buffer is borrowed).
enum Done {
    Header,
    Stanza,
    StreamEnd,
    Decl,
    /// An element opened deeper than the depth limit: start skipping.
    TooDeep,
}

/// The stanza being skipped.
#[derive(Debug)]
struct Skip {
    name: String,
    attrs: Vec<(String, String)>,
    reason: SkipReason,
    /// Absolute stream offset of the stanza's `<`.
    start: usize,
}

/// Incremental XMPP stream framer; see the module documentation.
#[derive(Debug)]
pub struct Framer {
    max: usize,
    max_depth: usize,
    buf: Vec<u8>,
    /// Bytes dropped from the front of `buf` since the stream began (absolute offsets).
    discarded: usize,
    /// Bytes before this index are finished with (compacted away lazily).
    consumed: usize,
    /// Scan position.
    pos: usize,
    /// `buf[..valid]` is known to be UTF-8.
    valid: usize,
    /// The bytes at `valid` are not UTF-8 (not merely incomplete).
    bad_utf8: bool,
    lex: Lex,
    phase: Phase,
    /// Element depth below the stream element (0 = between stanzas).
    depth: usize,
    /// A top-level frame (declaration, header, stanza, stream end) is being scanned.
    in_frame: bool,
    /// Where that frame starts (its `<`); meaningless while skipping.
    frame_start: usize,
    /// That frame is a stanza (it opened with a start tag inside the stream).
    frame_is_stanza: bool,
    /// The stanza being skipped, if any.
    skip: Option<Skip>,
    /// No markup seen yet in this stream: the XML declaration is still allowed.
    decl_allowed: bool,
    header: Option<StreamHeader>,
    /// Qualified name of the stream element (`stream:stream`), for the end tag.
    stream_qname: String,
    error: Option<FramerError>,
}

impl Default for Framer {
    fn default() -> Framer {
        Framer::new(DEFAULT_MAX_STANZA)
    }
}

impl Framer {
    /// A framer skipping stanzas longer than `max_stanza` bytes or nested deeper than
    /// [`crate::xml::MAX_DEPTH`] (a stream header or XML declaration over the cap is an error).
    pub fn new(max_stanza: usize) -> Framer {
        Framer::with_limits(max_stanza, crate::xml::parse::MAX_DEPTH)
    }

    /// Like [`Framer::new`] with another depth limit (at least 1: the stanza element).
    pub fn with_limits(max_stanza: usize, max_depth: usize) -> Framer {
        Framer {
            max: max_stanza.max(1),
            max_depth: max_depth.max(1),
            buf: Vec::new(),
            discarded: 0,
            consumed: 0,
            pos: 0,
            valid: 0,
            bad_utf8: false,
            lex: Lex::Text,
            phase: Phase::Prolog,
            depth: 0,
            in_frame: false,
            frame_start: 0,
            frame_is_stanza: false,
            skip: None,
            decl_allowed: true,
            header: None,
            stream_qname: String::new(),
            error: None,
        }
    }

    /// Stream restart (after STARTTLS or SASL success): forget everything, including
    /// buffered bytes, and expect an optional XML declaration and a new stream header.
    pub fn reset(&mut self) {
        let (max, max_depth) = (self.max, self.max_depth);
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        *self = Framer::with_limits(max, max_depth);
        self.buf = buf;
    }

    /// The header of the current stream, once it has been framed.
    pub fn header(&self) -> Option<&StreamHeader> {
        self.header.as_ref()
    }

    /// Bytes held that have not been returned in a frame (or skipped) yet.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.consumed
    }

    /// Append bytes read from the transport. Ignored once the framer has failed.
    pub fn feed(&mut self, data: &[u8]) {
        if self.error.is_some() || data.is_empty() {
            return;
        }
        self.compact();
        self.buf.extend_from_slice(data);
        if !self.bad_utf8 {
            match std::str::from_utf8(&self.buf[self.valid..]) {
                Ok(_) => self.valid = self.buf.len(),
                Err(e) => {
                    self.valid += e.valid_up_to();
                    // error_len() None: an incomplete character at the end, wait for more.
                    self.bad_utf8 = e.error_len().is_some();
                }
            }
        }
    }

    /// Drop consumed bytes when that is cheap (all of them) or amortized (they are at
    /// least half the buffer, so each byte is moved at most once on average).
    fn compact(&mut self) {
        let c = self.consumed;
        if c == 0 {
            return;
        }
        if c == self.buf.len() {
            self.buf.clear();
        } else if c >= 4096 && c * 2 >= self.buf.len() {
            self.buf.drain(..c);
        } else {
            return;
        }
        self.pos -= c;
        self.valid -= c;
        if self.in_frame && self.skip.is_none() {
            self.frame_start -= c;
        }
        self.discarded += c;
        self.consumed = 0;
    }

    /// The next frame, `Ok(None)` when more bytes are needed. After an error every
    /// call returns that error again (until [`Framer::reset`]).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FramerError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let r = self.scan();
        if let Err(e) = &r {
            self.error = Some(e.clone());
        }
        r
    }

    fn scan(&mut self) -> Result<Option<Frame>, FramerError> {
        loop {
            let capped = self.in_frame && self.skip.is_none();
            let cap_end = self.frame_start.saturating_add(self.max);
            let limit = if capped { self.valid.min(cap_end) } else { self.valid };
            if self.pos >= limit {
                if capped && self.pos >= cap_end {
                    if self.frame_is_stanza {
                        self.begin_skip(SkipReason::TooLarge { max: self.max });
                        continue;
                    }
                    return Err(FramerError::PolicyViolation(format!(
                        "stream header or declaration larger than {} bytes",
                        self.max
                    )));
                }
                if self.bad_utf8 {
                    return Err(FramerError::UnsupportedEncoding);
                }
                if !self.in_frame {
                    self.consumed = self.pos;
                }
                return Ok(None);
            }
            let done = self.step(limit)?;
            if self.skip.is_some() {
                // Keep two bytes of look-behind (`]]>`, `/>`); drop the rest.
                self.consumed = self.consumed.max(self.pos.saturating_sub(2));
            }
            if let Some(done) = done {
                if let Done::TooDeep = done {
                    self.begin_skip(SkipReason::TooDeep { max: self.max_depth });
                    continue;
                }
                let end = self.pos;
                let start = self.frame_start;
                self.in_frame = false;
                self.consumed = end;
                match done {
                    Done::TooDeep => {} // handled above
                    Done::Decl => {
                        check_decl(&self.buf[start..end])?;
                    }
                    Done::Header => {
                        let (header, qname) = parse_header(&self.buf[start..end])?;
                        self.header = Some(header.clone());
                        self.stream_qname = qname;
                        self.phase = Phase::Stream;
                        return Ok(Some(Frame::StreamHeader(header)));
                    }
                    Done::StreamEnd => {
                        let tag = &self.buf[start + 2..end - 1];
                        let name = trim_ws_end(tag);
                        if name != self.stream_qname.as_bytes() {
                            return Err(nwf("end tag does not match the stream element"));
                        }
                        self.phase = Phase::Ended;
                        return Ok(Some(Frame::StreamEnd));
                    }
                    Done::Stanza => {
                        if let Some(skip) = self.skip.take() {
                            let len = self.discarded + end - skip.start;
                            return Ok(Some(Frame::Skipped(Skipped {
                                name: skip.name,
                                attrs: skip.attrs,
                                reason: skip.reason,
                                len,
                            })));
                        }
                        let text = std::str::from_utf8(&self.buf[start..end])
                            .map_err(|_| FramerError::UnsupportedEncoding)?;
                        return Ok(Some(Frame::Stanza(text.to_owned())));
                    }
                }
            }
        }
    }

    /// The current stanza is over a limit: note what its opening tag says (within the
    /// bytes scanned so far) and stop buffering it.
    fn begin_skip(&mut self, reason: SkipReason) {
        let seen = &self.buf[self.frame_start..self.pos.min(self.valid)];
        let text = match std::str::from_utf8(seen) {
            Ok(t) => t,
            // The cap may fall inside a character: use the complete ones.
            Err(e) => std::str::from_utf8(&seen[..e.valid_up_to()]).unwrap_or_default(),
        };
        let (name, mut attrs) = opening_tag(text);
        attrs.retain(|(k, _)| matches!(k.as_str(), "from" | "to" | "id" | "type"));
        self.skip = Some(Skip { name, attrs, reason, start: self.discarded + self.frame_start });
    }

    /// Advance the scan over `buf[pos..limit]` (non-empty) by at most one token.
    #[inline]
    fn step(&mut self, limit: usize) -> Result<Option<Done>, FramerError> {
        let buf = &self.buf[..limit];
        match self.lex {
            Lex::Text => {
                if self.depth == 0 {
                    let mut p = self.pos;
                    while p < limit && is_ws(buf[p]) {
                        p += 1;
                    }
                    self.pos = p;
                    if p == limit {
                        self.consumed = p;
                        return Ok(None);
                    }
                    if buf[p] != b'<' {
                        return Err(nwf("character data outside any stanza"));
                    }
                    if self.phase == Phase::Ended {
                        return Err(nwf("markup after the end of the stream"));
                    }
                    self.consumed = p;
                    self.in_frame = true;
                    self.frame_start = p;
                    self.frame_is_stanza = false;
                    self.pos = p + 1;
                    self.lex = Lex::Lt;
                } else {
                    match memchr(b'<', &buf[self.pos..]) {
                        Some(i) => {
                            self.pos += i + 1;
                            self.lex = Lex::Lt;
                        }
                        None => self.pos = limit,
                    }
                }
                Ok(None)
            }
            Lex::Lt => {
                let c = buf[self.pos];
                self.pos += 1;
                match c {
                    b'/' => {
                        if self.phase != Phase::Stream {
                            return Err(nwf("end tag before the stream header"));
                        }
                        self.lex = Lex::EndTag;
                    }
                    b'!' => self.lex = Lex::Bang(0),
                    b'?' => {
                        if self.phase == Phase::Prolog && self.decl_allowed {
                            self.lex = Lex::PiName(0);
                        } else {
                            return Err(restricted("processing instruction"));
                        }
                    }
                    c if is_name_start(c) => {
                        self.decl_allowed = false;
                        self.lex = Lex::StartTag;
                        if self.phase == Phase::Stream {
                            if self.depth == 0 {
                                self.frame_is_stanza = true;
                            }
                            // This element's level: the stanza element is level 1.
                            if self.depth + 1 > self.max_depth && self.skip.is_none() {
                                return Ok(Some(Done::TooDeep));
                            }
                        }
                    }
                    _ => return Err(nwf("invalid character after '<'")),
                }
                Ok(None)
            }
            Lex::Bang(n) => {
                let c = buf[self.pos];
                if n == 0 && c != b'[' {
                    return Err(match c {
                        b'-' => restricted("comment"),
                        b'D' | b'E' | b'A' | b'N' => restricted("DTD or markup declaration"),
                        _ => nwf("invalid markup after '<!'"),
                    });
                }
                if self.depth == 0 {
                    return Err(nwf("CDATA section outside any stanza"));
                }
                if c != b"[CDATA["[n as usize] {
                    return Err(nwf("invalid markup after '<!['"));
                }
                self.pos += 1;
                self.lex = if n == 6 { Lex::Cdata } else { Lex::Bang(n + 1) };
                Ok(None)
            }
            Lex::Cdata => {
                let mut p = self.pos;
                loop {
                    match memchr(b'>', &buf[p..]) {
                        Some(i) => {
                            let j = p + i;
                            p = j + 1;
                            // j >= 9 bytes past the `<` of `<![CDATA[`, so j - 2 is in range.
                            if buf[j - 1] == b']' && buf[j - 2] == b']' {
                                self.lex = Lex::Text;
                                break;
                            }
                        }
                        None => {
                            p = limit;
                            break;
                        }
                    }
                }
                self.pos = p;
                Ok(None)
            }
            Lex::PiName(n) => {
                let c = buf[self.pos];
                if n < 3 {
                    if c != b"xml"[n as usize] {
                        return Err(restricted("processing instruction"));
                    }
                    self.pos += 1;
                    self.lex = Lex::PiName(n + 1);
                } else {
                    if !(is_ws(c) || c == b'?') {
                        return Err(restricted("processing instruction"));
                    }
                    self.lex = Lex::PiBody;
                }
                Ok(None)
            }
            Lex::PiBody => match memchr(b'>', &buf[self.pos..]) {
                Some(i) => {
                    let j = self.pos + i;
                    self.pos = j + 1;
                    // The byte before is at least the `l` of `xml`, never the `?` of `<?`.
                    if buf[j - 1] == b'?' {
                        self.lex = Lex::Text;
                        self.decl_allowed = false;
                        return Ok(Some(Done::Decl));
                    }
                    Ok(None)
                }
                None => {
                    self.pos = limit;
                    Ok(None)
                }
            },
            Lex::StartTag => match memchr3(b'>', b'"', b'\'', &buf[self.pos..]) {
                Some(i) => {
                    let j = self.pos + i;
                    self.pos = j + 1;
                    let c = buf[j];
                    if c != b'>' {
                        self.lex = Lex::Quoted(c);
                        return Ok(None);
                    }
                    self.lex = Lex::Text;
                    // j - 1 is at least the name's first byte.
                    let self_closing = buf[j - 1] == b'/';
                    match self.phase {
                        Phase::Prolog => {
                            if self_closing {
                                return Err(nwf("empty stream element"));
                            }
                            Ok(Some(Done::Header))
                        }
                        _ => {
                            if self_closing {
                                Ok(if self.depth == 0 { Some(Done::Stanza) } else { None })
                            } else {
                                self.depth += 1;
                                Ok(None)
                            }
                        }
                    }
                }
                None => {
                    self.pos = limit;
                    Ok(None)
                }
            },
            Lex::Quoted(q) => match memchr2(q, b'<', &buf[self.pos..]) {
                Some(i) => {
                    let j = self.pos + i;
                    if buf[j] == b'<' {
                        return Err(nwf("'<' in an attribute value"));
                    }
                    self.pos = j + 1;
                    self.lex = Lex::StartTag;
                    Ok(None)
                }
                None => {
                    self.pos = limit;
                    Ok(None)
                }
            },
            Lex::EndTag => match memchr(b'>', &buf[self.pos..]) {
                Some(i) => {
                    self.pos += i + 1;
                    self.lex = Lex::Text;
                    if self.depth == 0 {
                        return Ok(Some(Done::StreamEnd));
                    }
                    self.depth -= 1;
                    Ok(if self.depth == 0 { Some(Done::Stanza) } else { None })
                }
                None => {
                    self.pos = limit;
                    Ok(None)
                }
            },
        }
    }
}

#[inline]
fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

#[inline]
fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':' || c >= 0x80
}

fn trim_ws_end(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., last] = s {
        if is_ws(*last) {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// The name and attributes of the start tag `text` begins with (`<name a='v' …`),
/// tolerant of a tag cut short: only attributes whose value is complete are returned,
/// values decoded; an undecodable value is left out. Never fails: a text that is not a
/// start tag gives an empty name.
pub fn opening_tag(text: &str) -> (String, Vec<(String, String)>) {
    let Some(rest) = text.strip_prefix('<') else {
        return (String::new(), Vec::new());
    };
    let name_end = rest.find(|c: char| is_ws_char(c) || c == '/' || c == '>').unwrap_or(rest.len());
    let name = rest[..name_end].to_string();
    let mut attrs = Vec::new();
    let mut rest = &rest[name_end..];
    loop {
        rest = rest.trim_start_matches(is_ws_char);
        if rest.is_empty() || rest.starts_with(['/', '>']) {
            break;
        }
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].trim_end_matches(is_ws_char);
        let after = rest[eq + 1..].trim_start_matches(is_ws_char);
        let Some(q) = after.chars().next().filter(|&c| c == '\'' || c == '"') else { break };
        let body = &after[1..];
        let Some(close) = body.find(q) else { break };
        if !key.is_empty() && !key.contains(|c: char| is_ws_char(c) || c == '"' || c == '\'' || c == '<') {
            if let Ok(v) = decode_attr(&body[..close]) {
                attrs.push((key.to_string(), v));
            }
        }
        rest = &body[close + 1..];
    }
    (name, attrs)
}

fn is_ws_char(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Check the XML declaration (`<?xml … ?>`): only UTF-8 is supported.
fn check_decl(decl: &[u8]) -> Result<(), FramerError> {
    let s = std::str::from_utf8(decl).map_err(|_| FramerError::UnsupportedEncoding)?;
    if let Some(i) = s.find("encoding") {
        let rest = s[i + "encoding".len()..].trim_start();
        let rest = rest.strip_prefix('=').ok_or_else(|| nwf("malformed XML declaration"))?.trim_start();
        let q = rest.chars().next().ok_or_else(|| nwf("malformed XML declaration"))?;
        if q != '\'' && q != '"' {
            return Err(nwf("malformed XML declaration"));
        }
        let value = &rest[1..];
        let end = value.find(q).ok_or_else(|| nwf("malformed XML declaration"))?;
        let enc = &value[..end];
        if !enc.eq_ignore_ascii_case("utf-8") && !enc.eq_ignore_ascii_case("utf8") {
            return Err(FramerError::UnsupportedEncoding);
        }
    }
    Ok(())
}

/// Parse the stream header tag `<p:stream …>` (complete, UTF-8 checked).
fn parse_header(tag: &[u8]) -> Result<(StreamHeader, String), FramerError> {
    let s = std::str::from_utf8(tag).map_err(|_| FramerError::UnsupportedEncoding)?;
    let inner = s
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .ok_or_else(|| nwf("malformed stream header"))?;
    let name_end = inner.find(|c: char| c.is_ascii_whitespace()).unwrap_or(inner.len());
    let qname = &inner[..name_end];
    let mut rest = &inner[name_end..];
    let mut header = StreamHeader::default();
    let mut seen: Vec<&str> = Vec::new();
    loop {
        let trimmed = rest.trim_start_matches(|c: char| c.is_ascii_whitespace());
        if trimmed.is_empty() {
            break;
        }
        if trimmed.len() == rest.len() {
            return Err(nwf("missing whitespace between attributes"));
        }
        let eq = trimmed.find('=').ok_or_else(|| nwf("attribute without value in stream header"))?;
        let name = trimmed[..eq].trim_end_matches(|c: char| c.is_ascii_whitespace());
        if name.is_empty() || name.contains(|c: char| c.is_ascii_whitespace() || c == '"' || c == '\'') {
            return Err(nwf("malformed attribute in stream header"));
        }
        let after = trimmed[eq + 1..].trim_start_matches(|c: char| c.is_ascii_whitespace());
        let q = after.chars().next().ok_or_else(|| nwf("attribute without value in stream header"))?;
        if q != '\'' && q != '"' {
            return Err(nwf("unquoted attribute value in stream header"));
        }
        let body = &after[1..];
        let close = body.find(q).ok_or_else(|| nwf("unterminated attribute value"))?;
        let value = decode_attr(&body[..close])?;
        rest = &body[close + 1..];
        if seen.contains(&name) {
            return Err(nwf("duplicate attribute in stream header"));
        }
        seen.push(name);
        if name == "xmlns" {
            header.default_ns = value;
        } else if let Some(prefix) = name.strip_prefix("xmlns:") {
            if prefix.is_empty() {
                return Err(nwf("empty namespace prefix"));
            }
            header.prefixes.push((prefix.to_string(), value));
        } else {
            header.attrs.push((name.to_string(), value));
        }
    }
    let (prefix, local) = qname.split_once(':').ok_or_else(|| nwf("stream element is not prefixed"))?;
    if local != "stream" {
        return Err(nwf("first element is not a stream header"));
    }
    if !header.prefixes.iter().any(|(p, ns)| p == prefix && ns == STREAM_NS) {
        return Err(nwf("stream element not in the streams namespace"));
    }
    Ok((header, qname.to_string()))
}

/// Decode the predefined entities and character references of an attribute value and
/// normalize literal tabs and line breaks to spaces (XML 1.0 §3.3.3).
fn decode_attr(raw: &str) -> Result<String, FramerError> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find(['&', '<', '\t', '\n', '\r']) {
        out.push_str(&rest[..i]);
        let c = rest.as_bytes()[i];
        if c == b'<' {
            return Err(nwf("'<' in an attribute value"));
        }
        if c != b'&' {
            out.push(' ');
            rest = &rest[i + 1..];
            continue;
        }
        let after = &rest[i + 1..];
        let semi = after.find(';').ok_or_else(|| nwf("unterminated entity reference"))?;
        let ent = &after[..semi];
        let ch = match ent {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "apos" => '\'',
            "quot" => '"',
            _ => {
                let code = if let Some(hex) = ent.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok().filter(|_| hex.bytes().all(|b| b.is_ascii_hexdigit()))
                } else if let Some(dec) = ent.strip_prefix('#') {
                    dec.parse::<u32>().ok().filter(|_| dec.bytes().all(|b| b.is_ascii_digit()))
                } else {
                    return Err(nwf("undefined entity reference"));
                };
                code.filter(|&c| c != 0)
                    .and_then(char::from_u32)
                    .ok_or_else(|| nwf("invalid character reference"))?
            }
        };
        out.push(ch);
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
        xmlns:stream='http://etherx.jabber.org/streams' id='abc' from='meet.test' version='1.0'>";

    /// The captured stanzas, leading comment stripped.
    pub(crate) fn captures() -> Vec<(String, String)> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/captures");
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("xml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let body = match text.find("-->") {
                Some(i) if text.trim_start().starts_with("<!--") => &text[i + 3..],
                _ => &text[..],
            };
            out.push((path.file_name().unwrap().to_string_lossy().into_owned(), body.trim().to_string()));
        }
        out.sort();
        assert!(!out.is_empty());
        out
    }

    /// Feed `chunks` in order, collecting frames after each; stops at the first error.
    fn run(max: usize, chunks: &[&[u8]]) -> (Vec<Frame>, Option<FramerError>) {
        run_limits(max, crate::xml::MAX_DEPTH, chunks)
    }

    /// [`run`] with a depth limit too.
    fn run_limits(max: usize, depth: usize, chunks: &[&[u8]]) -> (Vec<Frame>, Option<FramerError>) {
        let mut f = Framer::with_limits(max, depth);
        let mut frames = Vec::new();
        for c in chunks {
            f.feed(c);
            loop {
                match f.next_frame() {
                    Ok(Some(fr)) => frames.push(fr),
                    Ok(None) => break,
                    Err(e) => return (frames, Some(e)),
                }
            }
        }
        (frames, None)
    }

    fn whole(data: &[u8]) -> (Vec<Frame>, Option<FramerError>) {
        run(DEFAULT_MAX_STANZA, &[data])
    }

    /// Whole, every two-way split and byte-by-byte all give the same result.
    fn assert_split_invariant(data: &[u8], max: usize) -> (Vec<Frame>, Option<FramerError>) {
        let reference = run(max, &[data]);
        for i in 0..=data.len() {
            assert_eq!(run(max, &[&data[..i], &data[i..]]), reference, "split at {i}");
        }
        let bytes: Vec<&[u8]> = data.chunks(1).collect();
        assert_eq!(run(max, &bytes), reference, "byte by byte");
        reference
    }

    fn stream_of(stanzas: &[String]) -> String {
        let mut s = String::from(HEADER);
        for (i, st) in stanzas.iter().enumerate() {
            s.push_str(["\n", " ", "\r\n  ", ""][i % 4]);
            s.push_str(st);
        }
        s.push_str("\n</stream:stream>");
        s
    }

    #[test]
    fn captures_frame_identically_at_every_split() {
        let stanzas: Vec<String> = captures().into_iter().map(|(_, s)| s).collect();
        let data = stream_of(&stanzas);
        let (frames, err) = assert_split_invariant(data.as_bytes(), DEFAULT_MAX_STANZA);
        assert_eq!(err, None);
        assert_eq!(frames.len(), stanzas.len() + 2);
        match &frames[0] {
            Frame::StreamHeader(h) => {
                assert_eq!(h.default_ns, "jabber:client");
                assert_eq!(h.prefixes, vec![("stream".to_string(), STREAM_NS.to_string())]);
                assert_eq!(
                    h.attrs,
                    vec![
                        ("id".to_string(), "abc".to_string()),
                        ("from".to_string(), "meet.test".to_string()),
                        ("version".to_string(), "1.0".to_string())
                    ]
                );
                assert_eq!(h.get("id"), Some("abc"));
            }
            other => panic!("expected header, got {other:?}"),
        }
        for (fr, st) in frames[1..].iter().zip(&stanzas) {
            assert_eq!(fr, &Frame::Stanza(st.clone()));
        }
        assert_eq!(frames.last(), Some(&Frame::StreamEnd));
    }

    #[test]
    fn header_accessor_and_buffered() {
        let mut f = Framer::new(1024);
        assert!(f.header().is_none());
        f.feed(HEADER.as_bytes());
        f.feed(b"<presence/><iq type='get'");
        assert!(matches!(f.next_frame(), Ok(Some(Frame::StreamHeader(_)))));
        assert_eq!(f.header().unwrap().get("from"), Some("meet.test"));
        assert_eq!(f.next_frame(), Ok(Some(Frame::Stanza("<presence/>".into()))));
        assert_eq!(f.next_frame(), Ok(None));
        assert_eq!(f.buffered(), "<iq type='get'".len());
        f.feed(b"/>  ");
        assert_eq!(f.next_frame(), Ok(Some(Frame::Stanza("<iq type='get'/>".into()))));
        assert_eq!(f.next_frame(), Ok(None));
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn multibyte_utf8_split_inside_characters() {
        let st = "<message to='r@c/Zoë' id='日本'><body>Zoë 日本 🎉</body><nick xmlns='http://jabber.org/protocol/nick'>🎉🎉</nick></message>".to_string();
        let data = stream_of(&[st.clone(), st.clone()]);
        let (frames, err) = assert_split_invariant(data.as_bytes(), DEFAULT_MAX_STANZA);
        assert_eq!(err, None);
        assert_eq!(frames[1], Frame::Stanza(st.clone()));
        assert_eq!(frames[2], Frame::Stanza(st));
    }

    #[test]
    fn cdata_and_gt_in_attribute_values() {
        let stanzas = vec![
            "<message id='a>b' to=\"x>y/>\"><body><![CDATA[ </message> <b>]] > ]]></body></message>".to_string(),
            "<iq id=\"it's\" type='set'><q a='\"/>'/><![CDATA[]]><t>&lt;&gt;</t></iq>".to_string(),
            "<a><![CDATA[]]]]><![CDATA[>]]></a>".to_string(),
        ];
        let data = stream_of(&stanzas);
        let (frames, err) = assert_split_invariant(data.as_bytes(), DEFAULT_MAX_STANZA);
        assert_eq!(err, None);
        assert_eq!(frames.len(), 5);
        for (fr, st) in frames[1..4].iter().zip(&stanzas) {
            assert_eq!(fr, &Frame::Stanza(st.clone()));
        }
    }

    #[test]
    fn header_variants() {
        // No declaration, other prefix, double quotes, entities, xml:lang, declaration with UTF-8.
        let data = "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<s:stream xmlns:s=\"http://etherx.jabber.org/streams\" \
                    xmlns=\"jabber:component:accept\" to=\"a&amp;b&#x41;&#66;\" xml:lang='en'>\n<handshake>x</handshake></s:stream>";
        let (frames, err) = assert_split_invariant(data.as_bytes(), 1024);
        assert_eq!(err, None);
        let Frame::StreamHeader(h) = &frames[0] else { panic!() };
        assert_eq!(h.default_ns, "jabber:component:accept");
        assert_eq!(h.get("to"), Some("a&bAB"));
        assert_eq!(h.get("xml:lang"), Some("en"));
        assert_eq!(frames[1], Frame::Stanza("<handshake>x</handshake>".into()));
        assert_eq!(frames[2], Frame::StreamEnd);
        let (frames, err) = whole(b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>");
        assert_eq!((frames.len(), err), (1, None));
    }

    fn err_of(data: &str) -> FramerError {
        let (_, err) = assert_split_invariant(data.as_bytes(), 4096);
        err.unwrap_or_else(|| panic!("no error for {data:?}"))
    }

    #[test]
    fn restricted_xml_refused() {
        let h = HEADER;
        for bad in [
            format!("{h}<!-- hi -->"),
            format!("{h}<message><!-- hi --></message>"),
            format!("<!DOCTYPE stream [<!ENTITY x 'y'>]>{h}"),
            format!("{h}<message><!ENTITY x 'y'></message>"),
            format!("{h}<?pi x?>"),
            format!("{h}<message><?pi x?></message>"),
            format!("<?xml version='1.0'?><?xml version='1.0'?>{h}"),
            format!("<?xml-stylesheet href='x'?>{h}"),
            "<!-- x --><stream:stream xmlns:stream='http://etherx.jabber.org/streams'>".to_string(),
        ] {
            let e = err_of(&bad);
            assert!(matches!(e, FramerError::RestrictedXml(_)), "{bad}: {e:?}");
            assert_eq!(e.condition(), "restricted-xml");
        }
    }

    #[test]
    fn not_well_formed_refused() {
        let h = HEADER;
        for bad in [
            format!("{h}hello"),
            format!("{h}<a/>x"),
            format!("{h}</foo>"),
            format!("{h}<![CDATA[x]]>"),
            format!("{h}<a><![CDAT x]]></a>"),
            format!("{h}< a/>"),
            format!("{h}<a b='<'/>"),
            format!("{h}</stream:stream> <a/>"),
            "<a/>".to_string(),
            "</stream:stream>".to_string(),
            "<stream:stream xmlns:stream='urn:other'>".to_string(),
            "<stream xmlns='http://etherx.jabber.org/streams'>".to_string(),
            "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>".to_string(),
            "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' a='&foo;'>".to_string(),
            "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' a='&#x+41;'>".to_string(),
            "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' a='&#0;'>".to_string(),
            "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' a='1' a='2'>".to_string(),
            "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' a=1>".to_string(),
            "junk".to_string(),
        ] {
            let e = err_of(&bad);
            assert!(matches!(e, FramerError::NotWellFormed(_)), "{bad}: {e:?}");
            assert_eq!(e.condition(), "not-well-formed");
        }
    }

    #[test]
    fn invalid_utf8_refused() {
        let mut data = HEADER.as_bytes().to_vec();
        data.extend_from_slice(b"<message><body>ok</body></message><message><body>\xff\xfe</body></message>");
        let (frames, err) = assert_split_invariant(&data, 4096);
        assert_eq!(frames.len(), 2);
        assert_eq!(err, Some(FramerError::UnsupportedEncoding));
        assert_eq!(FramerError::UnsupportedEncoding.condition(), "unsupported-encoding");
        // A truncated multi-byte character followed by ASCII.
        let mut data = HEADER.as_bytes().to_vec();
        data.extend_from_slice(b"<a>\xe6\x97</a>");
        assert_eq!(whole(&data).1, Some(FramerError::UnsupportedEncoding));
        // Declared non-UTF-8 encoding.
        let e = err_of("<?xml version='1.0' encoding='ISO-8859-1'?><stream:stream>");
        assert_eq!(e, FramerError::UnsupportedEncoding);
    }

    fn skipped(frame: &Frame) -> &Skipped {
        match frame {
            Frame::Skipped(s) => s,
            other => panic!("expected a skipped stanza, got {other:?}"),
        }
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn size_cap_skips_the_stanza_and_the_stream_goes_on() {
        let cap = 1000;
        let head = "<iq type='set' id='big&apos;1' from='a@b/c' to='focus.test' other='x'><q xmlns='urn:q'>";
        let tail = "</q></iq>";
        let exact = format!("{head}{}{tail}", "a".repeat(cap - head.len() - tail.len()));
        assert_eq!(exact.len(), cap);
        let over = format!("{head}{}{tail}", "a".repeat(cap + 1 - head.len() - tail.len()));
        assert_eq!(over.len(), cap + 1);
        let next = "<message to='r@c' id='after'><body>next</body></message>".to_string();

        // Exactly the cap: delivered.
        let data = stream_of(&[exact.clone(), next.clone()]);
        let (frames, err) = run(cap, &[data.as_bytes()]);
        assert_eq!(err, None);
        assert_eq!(frames[1], Frame::Stanza(exact));
        assert_eq!(frames[2], Frame::Stanza(next.clone()));

        // One byte over: skipped with its addressing attributes, at every split point,
        // and the stanza after it is delivered intact.
        let data = stream_of(&[over.clone(), next.clone(), over.clone()]);
        let (frames, err) = assert_split_invariant(data.as_bytes(), cap);
        assert_eq!(err, None);
        assert_eq!(frames.len(), 5);
        let s = skipped(&frames[1]);
        assert_eq!(s.name, "iq");
        assert_eq!(s.attrs, pairs(&[("type", "set"), ("id", "big'1"), ("from", "a@b/c"), ("to", "focus.test")]));
        assert_eq!(s.get("id"), Some("big'1"));
        assert_eq!(s.reason, SkipReason::TooLarge { max: cap });
        assert_eq!(s.reason.to_string(), "stanza larger than 1000 bytes");
        assert_eq!(s.len, cap + 1);
        assert_eq!(frames[2], Frame::Stanza(next.clone()));
        assert_eq!(frames[3], frames[1]);
        assert_eq!(frames[4], Frame::StreamEnd);

        // The skip starts as soon as the cap is reached: nothing more is buffered.
        let mut f = Framer::new(cap);
        f.feed(HEADER.as_bytes());
        assert!(matches!(f.next_frame(), Ok(Some(Frame::StreamHeader(_)))));
        for (i, b) in over.bytes().enumerate() {
            f.feed(&[b]);
            if i + 1 < over.len() {
                assert_eq!(f.next_frame(), Ok(None));
                assert!(f.buffered() <= cap, "{} buffered at byte {i}", f.buffered());
                if i > cap {
                    assert!(f.buffered() <= 2);
                }
            } else {
                assert_eq!(skipped(&f.next_frame().unwrap().unwrap()).len, cap + 1);
            }
        }
        assert_eq!(f.buffered(), 0);

        // A self-closing stanza over the cap, and one whose opening tag alone is over it.
        let attrs_over = format!("<presence from='p@q/r' id='p1' x='{}' to='late'/>", "y".repeat(2 * cap));
        let empty_over = format!("<message id='m1' {}/>", " ".repeat(2 * cap));
        let data = stream_of(&[attrs_over.clone(), empty_over.clone(), next.clone()]);
        let (frames, err) = assert_split_invariant(data.as_bytes(), cap);
        assert_eq!(err, None);
        let s = skipped(&frames[1]);
        assert_eq!((s.name.as_str(), s.len), ("presence", attrs_over.len()));
        // `to` lies beyond the cap, so it is unknown.
        assert_eq!(s.attrs, pairs(&[("from", "p@q/r"), ("id", "p1")]));
        let s = skipped(&frames[2]);
        assert_eq!((s.name.as_str(), s.attrs.clone()), ("message", pairs(&[("id", "m1")])));
        assert_eq!(frames[3], Frame::Stanza(next.clone()));

        // The cap falling inside a character of an attribute value and of the text.
        for st in [format!("<m id='{}'>x</m>", "日".repeat(400)), format!("<m id='i'>{}</m>", "日".repeat(400))] {
            let data = stream_of(&[st.clone(), next.clone()]);
            let (frames, err) = assert_split_invariant(data.as_bytes(), cap);
            assert_eq!(err, None);
            assert_eq!(skipped(&frames[1]).len, st.len());
            assert_eq!(frames[2], Frame::Stanza(next.clone()));
        }
        // The value cut by the cap is left out.
        let data = stream_of(&[format!("<m id='{}'>x</m>", "日".repeat(400))]);
        let (frames, _) = run(cap, &[data.as_bytes()]);
        assert_eq!(skipped(&frames[1]).attrs, vec![]);
    }

    #[test]
    fn header_and_declaration_over_the_cap_are_still_stream_errors() {
        let cap = 200;
        let header = format!(
            "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:client' id='{}'>",
            "x".repeat(cap)
        );
        let e = err_of_cap(&header, cap);
        assert!(matches!(e, FramerError::PolicyViolation(_)), "{e:?}");
        assert_eq!(e.condition(), "policy-violation");
        let decl = format!("<?xml version='1.0' {}?>{HEADER}", " ".repeat(cap));
        assert!(matches!(err_of_cap(&decl, cap), FramerError::PolicyViolation(_)));
        let end = format!("{HEADER}</stream:stream{}>", " ".repeat(cap));
        assert!(matches!(err_of_cap(&end, cap), FramerError::PolicyViolation(_)));
    }

    fn err_of_cap(data: &str, cap: usize) -> FramerError {
        let (_, err) = assert_split_invariant(data.as_bytes(), cap);
        err.unwrap_or_else(|| panic!("no error for {data:?}"))
    }

    #[test]
    fn stream_errors_inside_a_skipped_stanza_still_end_the_stream() {
        let cap = HEADER.len() + 10;
        let big = "a".repeat(3 * cap);
        for (data, want) in [
            (format!("{HEADER}<message><body>{big}<!-- c --></body></message>"), "restricted-xml"),
            (format!("{HEADER}<message><body>{big}<?pi?></body></message>"), "restricted-xml"),
            (format!("{HEADER}<message><body>{big}<a b='<'/></body></message>"), "not-well-formed"),
            (format!("{HEADER}<message><body>{big}<![CDAT[x]]></body></message>"), "not-well-formed"),
        ] {
            assert_eq!(err_of_cap(&data, cap).condition(), want, "{data}");
        }
        let mut data = format!("{HEADER}<message><body>{big}").into_bytes();
        data.extend_from_slice(b"\xff</body></message>");
        assert_eq!(run(cap, &[&data]).1, Some(FramerError::UnsupportedEncoding));
    }

    #[test]
    fn too_deep_stanzas_are_skipped() {
        let depth = crate::xml::MAX_DEPTH;
        let nest = |n: usize, leaf: &str| format!("{}{leaf}{}", "<a>".repeat(n), "</a>".repeat(n));
        // The stanza element plus depth - 1 levels: exactly the limit, delivered and parsable.
        let at_limit = format!("<iq id='ok' type='get'>{}</iq>", nest(depth - 1, "x"));
        let self_closing_at_limit = format!("<iq id='ok2' type='get'>{}</iq>", nest(depth - 2, "<b/>"));
        let over = format!("<iq id='deep' type='get' from='a@b/c' to='f.t'>{}</iq>", nest(depth, "x"));
        let self_closing_over = format!("<iq id='deep2'>{}</iq>", nest(depth - 1, "<b/>"));
        let huge = format!("<message id='m'>{}</message>", nest(100_000, ""));
        let next = "<presence id='after'/>".to_string();
        let data = stream_of(&[at_limit.clone(), self_closing_at_limit.clone(), over.clone(), self_closing_over.clone(), next.clone()]);
        let (frames, err) = run(DEFAULT_MAX_STANZA, &[data.as_bytes()]);
        assert_eq!(err, None);
        assert_eq!(frames[1], Frame::Stanza(at_limit.clone()));
        assert_eq!(frames[2], Frame::Stanza(self_closing_at_limit.clone()));
        for st in [&at_limit, &self_closing_at_limit] {
            crate::xml::parse::parse_stanza(st, &StreamHeader::default()).unwrap();
        }
        let s = skipped(&frames[3]);
        assert_eq!(s.reason, SkipReason::TooDeep { max: depth });
        assert_eq!(s.attrs, pairs(&[("id", "deep"), ("type", "get"), ("from", "a@b/c"), ("to", "f.t")]));
        assert_eq!(s.len, over.len());
        assert_eq!(skipped(&frames[4]).get("id"), Some("deep2"));
        assert_eq!(frames[5], Frame::Stanza(next.clone()));

        // Every split point, with a small depth limit to keep it quick.
        let run_d = |chunks: &[&[u8]]| run_limits(1000, 3, chunks);
        let data = stream_of(&[nest(3, "x"), nest(4, "x"), "<a><a><a><b/></a></a></a>".into(), next.clone()]);
        let reference = run_d(&[data.as_bytes()]);
        for i in 0..=data.len() {
            assert_eq!(run_d(&[&data.as_bytes()[..i], &data.as_bytes()[i..]]), reference, "split at {i}");
        }
        let (frames, err) = reference;
        assert_eq!(err, None);
        assert_eq!(frames[1], Frame::Stanza(nest(3, "x")));
        assert_eq!(skipped(&frames[2]).reason, SkipReason::TooDeep { max: 3 });
        assert_eq!(skipped(&frames[3]).len, "<a><a><a><b/></a></a></a>".len());
        assert_eq!(frames[4], Frame::Stanza(next.clone()));

        // 100 000 levels (over the cap too): one skip, nothing kept, the next one intact.
        let data = stream_of(&[huge.clone(), next.clone()]);
        let (frames, err) = run(DEFAULT_MAX_STANZA, &[data.as_bytes()]);
        assert_eq!(err, None);
        assert_eq!(skipped(&frames[1]).len, huge.len());
        assert_eq!(frames[2], Frame::Stanza(next));
    }

    #[test]
    fn skipping_ten_megabytes_keeps_memory_within_the_cap() {
        let cap = DEFAULT_MAX_STANZA;
        // Text, CDATA holding markup and `]]` runs, quoted `>` and `/>`: the look-behind
        // across dropped bytes must get every one of them right.
        let unit = "<x a='>/>' b=\"'\"><![CDATA[ </x> ]] > ]]]]><y/>&amp;text</x>";
        let count = 10 * 1024 * 1024 / unit.len() + 1;
        let head = "<message from='p@q/r' id='flood' type='groupchat'>";
        let tail = "</message>";
        let next = "<iq type='get' id='after'/>";
        for chunk in [65536, 4093] {
            let mut f = Framer::new(cap);
            f.feed(HEADER.as_bytes());
            assert!(matches!(f.next_frame(), Ok(Some(Frame::StreamHeader(_)))));
            let mut pending: Vec<u8> = head.as_bytes().to_vec();
            let mut frames = Vec::new();
            let mut peak_buf = 0;
            let mut total = 0;
            let mut units = 0;
            let mut finished = false;
            while !finished || !pending.is_empty() {
                while pending.len() < chunk && !finished {
                    if units < count {
                        pending.extend_from_slice(unit.as_bytes());
                        units += 1;
                    } else {
                        pending.extend_from_slice(tail.as_bytes());
                        pending.extend_from_slice(next.as_bytes());
                        finished = true;
                    }
                }
                let n = chunk.min(pending.len());
                f.feed(&pending[..n]);
                total += n;
                pending.drain(..n);
                while let Some(fr) = f.next_frame().unwrap() {
                    frames.push(fr);
                }
                assert!(f.buffered() <= cap, "{} bytes buffered after {total}", f.buffered());
                peak_buf = peak_buf.max(f.buf.len());
            }
            assert!(total > 10 * 1024 * 1024);
            assert!(peak_buf <= cap + chunk + 4096, "buffer reached {peak_buf} bytes");
            assert_eq!(frames.len(), 2, "{:?}", frames.iter().map(|f| format!("{f:?}").chars().take(80).collect::<String>()).collect::<Vec<_>>());
            let s = skipped(&frames[0]);
            assert_eq!(s.len, head.len() + count * unit.len() + tail.len());
            assert_eq!(s.attrs, pairs(&[("from", "p@q/r"), ("id", "flood"), ("type", "groupchat")]));
            assert_eq!(frames[1], Frame::Stanza(next.to_string()));
        }
        // The same content at every small chunk size, over a smaller cap.
        let st = format!("{head}{}{tail}", unit.repeat(40));
        let data = stream_of(&[st.clone(), next.to_string()]);
        for size in [1, 2, 3, 5, 7, 13] {
            let chunks: Vec<&[u8]> = data.as_bytes().chunks(size).collect();
            let (frames, err) = run(300, &chunks);
            assert_eq!(err, None);
            assert_eq!(skipped(&frames[1]).len, st.len());
            assert_eq!(frames[2], Frame::Stanza(next.to_string()));
        }
    }

    #[test]
    fn opening_tag_is_tolerant() {
        let t = |s: &str| opening_tag(s);
        assert_eq!(t("<iq a='1' b = \"x&amp;y\" >"), ("iq".into(), pairs(&[("a", "1"), ("b", "x&y")])));
        assert_eq!(t("<iq a='1' b='unterminated"), ("iq".into(), pairs(&[("a", "1")])));
        assert_eq!(t("<iq a='1' b"), ("iq".into(), pairs(&[("a", "1")])));
        assert_eq!(t("<iq a='1'/><x c='2'/>"), ("iq".into(), pairs(&[("a", "1")])));
        assert_eq!(t("<iq a='&bogus;' b='2'>"), ("iq".into(), pairs(&[("b", "2")])));
        assert_eq!(t("<stream:features>"), ("stream:features".into(), vec![]));
        assert_eq!(t("<i"), ("i".into(), vec![]));
        for junk in ["", "<", "x", "<'", "<a ='x'>", "<a b=x>", "<a b='1'c='2'>", "<a\tb\n=\r'v'>"] {
            let _ = t(junk);
        }
        assert_eq!(t("<a\tb\n=\r'v'>").1, pairs(&[("b", "v")]));
    }

    #[test]
    fn keepalive_whitespace_is_not_buffered() {
        let mut f = Framer::new(300);
        f.feed(HEADER.as_bytes());
        f.next_frame().unwrap();
        for _ in 0..10_000 {
            f.feed(b" \n");
            assert_eq!(f.next_frame(), Ok(None));
        }
        assert_eq!(f.buffered(), 0);
        assert!(f.buf.len() < 100);
    }

    #[test]
    fn reset_expects_new_header() {
        let mut f = Framer::new(4096);
        f.feed(HEADER.as_bytes());
        f.feed(b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
        assert!(matches!(f.next_frame(), Ok(Some(Frame::StreamHeader(_)))));
        assert!(matches!(f.next_frame(), Ok(Some(Frame::Stanza(_)))));
        f.reset();
        assert!(f.header().is_none());
        assert_eq!(f.buffered(), 0);
        f.feed(b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='second'>");
        match f.next_frame() {
            Ok(Some(Frame::StreamHeader(h))) => assert_eq!(h.get("id"), Some("second")),
            other => panic!("{other:?}"),
        }
        assert_eq!(f.header().unwrap().get("id"), Some("second"));
        f.feed(b"<iq/></stream:stream>");
        assert_eq!(f.next_frame(), Ok(Some(Frame::Stanza("<iq/>".into()))));
        assert_eq!(f.next_frame(), Ok(Some(Frame::StreamEnd)));
        assert_eq!(f.next_frame(), Ok(None));
        // Reset also clears an error.
        f.feed(b"<a/>");
        assert!(f.next_frame().is_err());
        f.reset();
        f.feed(HEADER.as_bytes());
        assert!(matches!(f.next_frame(), Ok(Some(Frame::StreamHeader(_)))));
    }

    #[test]
    fn stream_end_must_match_header() {
        let e = err_of(&format!("{HEADER}</stream:streamx>"));
        assert!(matches!(e, FramerError::NotWellFormed(_)));
        let (frames, err) = whole(format!("{HEADER}</stream:stream >\n").as_bytes());
        assert_eq!((frames.last(), err), (Some(&Frame::StreamEnd), None));
    }

    #[test]
    fn compaction_keeps_frames_intact() {
        // Many stanzas fed in odd-sized chunks exercise compaction mid-stanza.
        let stanzas: Vec<String> = captures().into_iter().map(|(_, s)| s).collect();
        let mut all = Vec::new();
        for _ in 0..40 {
            all.extend(stanzas.iter().cloned());
        }
        let data = stream_of(&all);
        for size in [1, 13, 1000, 4095, 16384] {
            let chunks: Vec<&[u8]> = data.as_bytes().chunks(size).collect();
            let (frames, err) = run(DEFAULT_MAX_STANZA, &chunks);
            assert_eq!(err, None);
            assert_eq!(frames.len(), all.len() + 2);
            for (fr, st) in frames[1..].iter().zip(&all) {
                assert_eq!(fr, &Frame::Stanza(st.clone()));
            }
        }
    }

    /// A small deterministic PRNG (xorshift) so the fuzz test needs no dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    #[test]
    fn fuzz_random_bytes_and_mutations_never_panic() {
        let stanzas: Vec<String> = captures().into_iter().map(|(_, s)| s).collect();
        let base = stream_of(&stanzas).into_bytes();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let alphabet = b"<>/!?[]-'\"=&;: \nabcCDATA\xc3\xa9\xe6\x97\xa5\xff";
        for round in 0..600 {
            let data: Vec<u8> = if round % 3 == 0 {
                (0..rng.below(400)).map(|_| alphabet[rng.below(alphabet.len())]).collect()
            } else if round % 3 == 1 {
                let mut d = HEADER.as_bytes().to_vec();
                d.extend((0..rng.below(400)).map(|_| alphabet[rng.below(alphabet.len())]));
                d
            } else {
                let mut d = base.clone();
                for _ in 0..1 + rng.below(8) {
                    let i = rng.below(d.len());
                    match rng.below(4) {
                        0 => d[i] = alphabet[rng.below(alphabet.len())],
                        1 => {
                            d.remove(i);
                        }
                        2 => d.insert(i, alphabet[rng.below(alphabet.len())]),
                        _ => d.truncate(i),
                    }
                }
                d
            };
            let cap = 64 + rng.below(2000);
            let depth = if round % 2 == 0 { crate::xml::MAX_DEPTH } else { 1 + rng.below(8) };
            let reference = run_limits(cap, depth, &[&data]);
            // Random chunking gives the same outcome.
            let mut chunks = Vec::new();
            let mut rest = &data[..];
            while !rest.is_empty() {
                let n = 1 + rng.below(rest.len().min(50));
                chunks.push(&rest[..n]);
                rest = &rest[n..];
            }
            assert_eq!(run_limits(cap, depth, &chunks), reference, "round {round}");
            // Every stanza the framer accepts is valid UTF-8 text starting with '<'.
            for fr in &reference.0 {
                if let Frame::Stanza(s) = fr {
                    assert!(s.starts_with('<') && s.ends_with('>'));
                    // The parser must not panic either.
                    let _ = crate::xml::parse::parse_stanza(s, &StreamHeader::default());
                    let _ = crate::xml::parse::parse_fragment(s);
                }
            }
        }
    }
}
