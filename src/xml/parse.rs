//! The stanza parser: one framed stanza (or a standalone fragment) to an owned
//! [`Element`], using the `xml` crate (formerly xml-rs) on an in-memory slice (never a socket).
//!
//! [`parse_stanza`] parses a stanza cut out of a stream by the framer. Such a stanza
//! usually has no `xmlns` of its own and relies on the stream's declarations, so the
//! text is read as the only child of a synthetic wrapper element that re-declares the
//! stream header's default namespace and prefixes: the reader sees
//! `<w xmlns='…' xmlns:stream='…'>` + stanza + `</w>` from one cursor, and
//! the wrapper's single child becomes the result. Anything but exactly one element
//! (other text than whitespace, a second element, markup closing the wrapper) is an
//! error.
//!
//! Every rule is enforced in one place, [`Reader`], which gives a stanza's events
//! checked: the tree ([`build`]) is made from them, and so are the typed values the focus
//! reads straight from the events without a tree (`xmpp::incoming`), so both refuse
//! exactly the same inputs. [`walk`] replays a tree as events, for typed parsers to read
//! a tree the same way.
//!
//! [`parse_fragment`] parses a standalone element with no namespace in scope besides
//! its own declarations. Comments *before* the root element are skipped (so the
//! captured fixtures, which start with a comment, parse as they are); comments
//! anywhere else, processing instructions and DTDs are refused (RFC 6120 §11.1).
//!
//! Tree conventions (see `element.rs`): `ns` is the resolved namespace, `name` the
//! local name; attributes keep document order, prefixed ones are stored as
//! `prefix:local` (`xml:lang`), namespace declarations are never attributes. Adjacent
//! character data (text, references, CDATA) is merged into one text node; an element
//! that has child elements loses its whitespace-only text nodes (indentation), while
//! a text-only element keeps its text exactly, whitespace included. Nesting deeper
//! than [`MAX_DEPTH`] is refused, and so is a stanza of more than [`MAX_NODES`]
//! nodes (elements, attributes and text nodes) from the stream: a tree costs far more memory than its
//! text (about 50 times for `<a/><a/>…`), so the cap bounds what one stanza can cost
//! once parsed (see [`MAX_NODES`] and `Element::weight`).

use std::fmt;
use std::io::Read;

use xml::reader::{EventReader, ParserConfig, XmlEvent};

use super::element::{Element, Node};
use super::framer::StreamHeader;
use super::write::escape_attr;

/// Why a stanza could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The text is not well-formed or not namespace-well-formed (the parser's message).
    Syntax(String),
    /// A comment, processing instruction or DTD (RFC 6120 §11.1).
    Restricted(String),
    /// The text is not exactly one element.
    NotOneElement(String),
    /// Elements nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// More than [`MAX_NODES`] elements, attributes and text nodes.
    TooManyNodes,
}

/// The deepest element nesting accepted (the stanza element is level 1). `Element`
/// is cloned, dropped, compared and serialized recursively, on conference threads with
/// a small stack (`STACK_SIZE` in `conference::env`), so a hostile stanza of
/// `<a><a><a>…` must not reach them. Real stanzas nest at most 7 deep (Jingle
/// `iq/jingle/content/description/payload-type/rtcp-fb`, Colibri2 transports); 64
/// leaves room for extensions and costs about 30 KiB of stack (release build; 90 KiB
/// unoptimized) for every recursive operation at once. The framer skips deeper
/// stanzas before they get here (`framer.rs`); `src/stack_tests.rs` checks the budget.
pub const MAX_DEPTH: usize = 64;

/// The most nodes (elements + attributes + text nodes) a stanza may have. The largest
/// real stanzas the focus receives are far below it: the captured lib-jitsi-meet
/// session-accept has 166 nodes, a Jingle accept with the 20 SSRCs and groups the
/// source limits allow about 600, a disco#info answer with the 512 features the caps
/// parser takes about 1 100, a JVB brewery presence about 200, Prosody's room
/// configuration form about 500. A stanza over the cap is refused like a too-deep one
/// (`policy-violation` for an IQ request; the stream stays up). At the cap a parsed
/// stanza holds at most about 1.3 MB (flat empty elements; `tests/element_weight.rs`
/// measures it), which `messages::inbox` budgets for.
pub const MAX_NODES: usize = 8192;

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Syntax(m) => write!(f, "malformed XML: {m}"),
            ParseError::Restricted(m) => write!(f, "restricted XML: {m}"),
            ParseError::NotOneElement(m) => write!(f, "not a single element: {m}"),
            ParseError::TooDeep => write!(f, "elements nested deeper than {MAX_DEPTH}"),
            ParseError::TooManyNodes => write!(f, "more than {MAX_NODES} XML nodes"),
        }
    }
}

impl std::error::Error for ParseError {}

impl ParseError {
    /// The RFC 6120 stream error condition this maps to.
    pub fn condition(&self) -> &'static str {
        match self {
            ParseError::Restricted(_) => "restricted-xml",
            ParseError::TooDeep | ParseError::TooManyNodes => "policy-violation",
            _ => "not-well-formed",
        }
    }
}

/// The `xml` crate's (formerly xml-rs) configuration: keep whitespace, report it as characters, merge
/// character data and CDATA, report comments (so they can be refused), one root.
fn config() -> ParserConfig {
    ParserConfig::new()
        .trim_whitespace(false)
        .whitespace_to_characters(true)
        .cdata_to_characters(true)
        .coalesce_characters(true)
        .ignore_comments(false)
        .ignore_root_level_whitespace(true)
        .ignore_end_of_stream(false)
        .replace_unknown_entity_references(false)
        .allow_multiple_root_elements(false)
        .max_entity_expansion_length(0)
        .max_entity_expansion_depth(0)
}

/// Parse one stanza framed from a stream whose header is `header`, of at most
/// [`MAX_NODES`] nodes (what the focus accepts from its server).
pub fn parse_stanza(text: &str, header: &StreamHeader) -> Result<Element, ParseError> {
    parse_stanza_with(text, header, MAX_NODES)
}

/// [`parse_stanza`] with another node cap: a client of the focus (a test tool) receives
/// offers for large rooms, far over the cap on what the focus itself accepts.
pub fn parse_stanza_with(text: &str, header: &StreamHeader, max_nodes: usize) -> Result<Element, ParseError> {
    build(&mut Reader::stanza(text, header, max_nodes))
}

/// Parse a standalone element (only its own namespace declarations are in scope).
/// Comments before the root element are skipped. For fixtures, tests and tools: it
/// never sees network input, so it has the depth limit but no node cap (tests build
/// trees far over it to check the typed parsers' own bounds).
pub fn parse_fragment(text: &str) -> Result<Element, ParseError> {
    build(&mut Reader::fragment(text))
}

fn syntax(e: xml::reader::Error) -> ParseError {
    ParseError::Syntax(e.to_string())
}

/// One event of a stanza as [`Reader`] gives it, in the tree's conventions: the resolved
/// namespace, the local name, attributes in document order with prefixed ones as
/// `prefix:local` and namespace declarations left out. Character data comes as it is
/// (a text-only element's text exactly; whitespace between elements too, which the tree
/// drops and typed parsers ignore).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// An element opens (the stanza itself first).
    Start {
        /// The local name.
        name: String,
        /// The resolved namespace URI.
        ns: String,
        /// Attributes as (name, unescaped value) in document order (`prefix:local` when prefixed).
        attrs: Vec<(String, String)>,
    },
    /// Character data inside the open element.
    Text(String),
    /// The open element closes.
    End,
}

/// The reader's source: the synthetic wrapper's opening tag (owned), the text, and the
/// wrapper's end; for a standalone fragment just the text. The `xml` crate reads it one
/// byte at a time, so this is a plain cursor rather than a chain of readers.
struct Source<'a> {
    open: Box<[u8]>,
    text: &'a [u8],
    tail: &'static [u8],
    /// Which of the three is being read, and where in it.
    part: u8,
    pos: usize,
}

impl Read for Source<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let cur: &[u8] = match self.part {
                0 => &self.open,
                1 => self.text,
                2 => self.tail,
                _ => return Ok(0),
            };
            let rest = cur.get(self.pos..).unwrap_or_default();
            if rest.is_empty() {
                self.part += 1;
                self.pos = 0;
                continue;
            }
            let n = rest.len().min(buf.len());
            buf[..n].copy_from_slice(&rest[..n]);
            self.pos += n;
            return Ok(n);
        }
    }
}

/// A stanza's events, checked: every rule of the parser (well-formedness through the
/// `xml` crate, no comments, processing instructions or DTDs, exactly one element,
/// [`MAX_DEPTH`], the node cap) is enforced here, as the events are read. The tree
/// ([`parse_stanza`]) and the typed parsers that read the events directly
/// (`xmpp::incoming`) both read through it, so they refuse exactly the same inputs with
/// exactly the same error: a stanza is only accepted once [`Reader::next`] has returned
/// `Ok(None)`, after the end of the document was checked.
pub struct Reader<'a> {
    inner: EventReader<Source<'a>>,
    wrapped: bool,
    max_nodes: usize,
    nodes: usize,
    /// Elements open (the stanza is level 1).
    depth: usize,
    /// The last thing read in the open element was character data (a text node
    /// continues: it is not counted again).
    in_text: bool,
    in_wrapper: bool,
    wrapper_closed: bool,
    /// The stanza element has closed.
    done: bool,
    /// The end of the document has been read and checked.
    finished: bool,
}

impl<'a> Reader<'a> {
    /// The events of a stanza framed from a stream whose header is `header`, with at most
    /// `max_nodes` nodes. The stream's default namespace is always in scope; a prefix it
    /// declares only when the text uses it (`prefix:` occurs), since declaring costs the
    /// `xml` crate work on every element.
    pub fn stanza(text: &'a str, header: &StreamHeader, max_nodes: usize) -> Reader<'a> {
        let mut open = String::with_capacity(64);
        open.push_str("<w");
        if !header.default_ns.is_empty() {
            open.push_str(" xmlns='");
            escape_attr(&mut open, &header.default_ns);
            open.push('\'');
        }
        for (prefix, ns) in &header.prefixes {
            if prefix == "xml" || prefix == "xmlns" || ns.is_empty() || !uses_prefix(text, prefix) {
                continue;
            }
            open.push_str(" xmlns:");
            open.push_str(prefix);
            open.push_str("='");
            escape_attr(&mut open, ns);
            open.push('\'');
        }
        open.push('>');
        let source = Source { open: open.into_bytes().into_boxed_slice(), text: text.as_bytes(), tail: b"</w>", part: 0, pos: 0 };
        Reader::new(config().create_reader(source), true, max_nodes)
    }

    /// The events of a standalone element (no node cap; see [`parse_fragment`]).
    pub fn fragment(text: &'a str) -> Reader<'a> {
        let source = Source { open: Box::default(), text: text.as_bytes(), tail: b"", part: 0, pos: 0 };
        Reader::new(config().create_reader(source), false, usize::MAX)
    }

    fn new(inner: EventReader<Source<'a>>, wrapped: bool, max_nodes: usize) -> Reader<'a> {
        Reader {
            inner,
            wrapped,
            max_nodes,
            nodes: 0,
            depth: 0,
            in_text: false,
            in_wrapper: false,
            wrapper_closed: false,
            done: false,
            finished: false,
        }
    }

    fn count(&mut self, n: usize) -> Result<(), ParseError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > self.max_nodes {
            Err(ParseError::TooManyNodes)
        } else {
            Ok(())
        }
    }

    /// The next event of the stanza; `Ok(None)` once the stanza has closed and the rest
    /// of the input (the wrapper's end, the end of the document) has been checked.
    pub fn next(&mut self) -> Result<Option<Event>, ParseError> {
        if self.finished {
            return Ok(None);
        }
        loop {
            match self.inner.next().map_err(syntax)? {
                XmlEvent::StartDocument { .. } => {}
                XmlEvent::EndDocument => {
                    if self.wrapped && !self.wrapper_closed {
                        return Err(ParseError::Syntax("unexpected end of input".into()));
                    }
                    if !self.done {
                        return Err(ParseError::NotOneElement("no element".into()));
                    }
                    self.finished = true;
                    return Ok(None);
                }
                XmlEvent::ProcessingInstruction { name, .. } => {
                    return Err(ParseError::Restricted(format!("processing instruction '{name}'")));
                }
                XmlEvent::Comment(_) => {
                    if self.in_wrapper || self.depth > 0 || self.done || self.wrapper_closed {
                        return Err(ParseError::Restricted("comment".into()));
                    }
                }
                XmlEvent::Doctype { .. } => return Err(ParseError::Restricted("DTD".into())),
                XmlEvent::StartElement { name, attributes, .. } => {
                    if self.wrapped && !self.in_wrapper {
                        if self.wrapper_closed {
                            return Err(ParseError::NotOneElement("markup after the stanza".into()));
                        }
                        self.in_wrapper = true;
                        continue;
                    }
                    if self.depth >= MAX_DEPTH {
                        return Err(ParseError::TooDeep);
                    }
                    if self.depth == 0 && self.done {
                        return Err(ParseError::NotOneElement("more than one element".into()));
                    }
                    self.count(1 + attributes.len())?;
                    let mut attrs = Vec::with_capacity(attributes.len());
                    for a in attributes {
                        let key = match a.name.prefix.as_deref() {
                            Some("xmlns") => continue,
                            Some(p) => format!("{p}:{}", a.name.local_name),
                            None if a.name.local_name == "xmlns" => continue,
                            None => a.name.local_name,
                        };
                        attrs.push((key, a.value));
                    }
                    self.depth += 1;
                    self.in_text = false;
                    return Ok(Some(Event::Start { name: name.local_name, ns: name.namespace.unwrap_or_default(), attrs }));
                }
                XmlEvent::EndElement { .. } => {
                    if self.depth > 0 {
                        self.depth -= 1;
                        self.in_text = false;
                        if self.depth == 0 {
                            self.done = true;
                        }
                        return Ok(Some(Event::End));
                    }
                    // The wrapper itself closes.
                    self.in_wrapper = false;
                    self.wrapper_closed = true;
                }
                XmlEvent::Characters(t) | XmlEvent::Whitespace(t) | XmlEvent::CData(t) => {
                    if self.depth == 0 {
                        if !t.chars().all(char::is_whitespace) {
                            return Err(ParseError::NotOneElement("text outside the element".into()));
                        }
                        continue;
                    }
                    if !self.in_text {
                        self.count(1)?;
                        self.in_text = true;
                    }
                    return Ok(Some(Event::Text(t)));
                }
            }
        }
    }

    /// Read to the end without looking (the events still count and are checked).
    pub fn finish(&mut self) -> Result<(), ParseError> {
        while self.next()?.is_some() {}
        Ok(())
    }
}

/// Does `text` use namespace prefix `prefix` (does `prefix:` occur anywhere)? A prefix
/// that does not occur cannot be used, so leaving its declaration out changes nothing.
fn uses_prefix(text: &str, prefix: &str) -> bool {
    let mut needle = Vec::with_capacity(prefix.len() + 1);
    needle.extend_from_slice(prefix.as_bytes());
    needle.push(b':');
    memchr::memmem::find(text.as_bytes(), &needle).is_some()
}

/// Builds an [`Element`] from [`Event`]s (the tree's conventions: adjacent character
/// data merged into one text node, whitespace-only text dropped from an element that
/// has child elements).
#[derive(Debug, Default)]
pub struct TreeBuilder {
    stack: Vec<Element>,
    result: Option<Element>,
}

impl TreeBuilder {
    /// A builder with no element open yet.
    pub fn new() -> TreeBuilder {
        TreeBuilder::default()
    }

    /// Take one event.
    pub fn event(&mut self, ev: Event) {
        match ev {
            Event::Start { name, ns, attrs } => self.stack.push(Element { name, ns, attrs, children: Vec::new() }),
            Event::Text(t) => {
                if let Some(el) = self.stack.last_mut() {
                    match el.children.last_mut() {
                        Some(Node::Text(prev)) => prev.push_str(&t),
                        _ => el.children.push(Node::Text(t)),
                    }
                }
            }
            Event::End => {
                if let Some(mut el) = self.stack.pop() {
                    if el.children.iter().any(|n| matches!(n, Node::Element(_))) {
                        el.children.retain(|n| match n {
                            Node::Text(t) => !t.chars().all(char::is_whitespace),
                            Node::Element(_) | Node::Raw(_) => true,
                        });
                    }
                    match self.stack.last_mut() {
                        Some(parent) => parent.children.push(Node::Element(el)),
                        None => self.result = Some(el),
                    }
                }
            }
        }
    }

    /// The element, once it has closed.
    pub fn finish(self) -> Option<Element> {
        self.result
    }
}

/// Read every event of `reader` into a tree.
pub fn build(reader: &mut Reader<'_>) -> Result<Element, ParseError> {
    build_from(reader, TreeBuilder::new())
}

/// Read the rest of `reader` into `tree` (which may hold the first events already).
pub fn build_from(reader: &mut Reader<'_>, mut tree: TreeBuilder) -> Result<Element, ParseError> {
    while let Some(ev) = reader.next()? {
        tree.event(ev);
    }
    tree.finish().ok_or_else(|| ParseError::NotOneElement("no element".into()))
}

/// The events of a tree, as a [`Reader`] of its text would give them (modulo what the
/// tree dropped: whitespace-only text between child elements), to `f` in document order.
/// Typed parsers use it to read a tree the way they read a stanza's events. Raw XML
/// ([`Node::Raw`]) only occurs in stanzas the focus writes, never in parsed ones; it is
/// skipped here (reparse such a tree first: `Element::reparsed`).
pub fn walk(el: &Element, f: &mut dyn FnMut(Event)) {
    // Iterative, so no tree depth costs stack: (element, index of the next child).
    let mut stack: Vec<(&Element, usize)> = Vec::new();
    f(Event::Start { name: el.name.clone(), ns: el.ns.clone(), attrs: el.attrs.clone() });
    stack.push((el, 0));
    while let Some((e, i)) = stack.last_mut() {
        match e.children.get(*i) {
            None => {
                stack.pop();
                f(Event::End);
            }
            Some(child) => {
                *i += 1;
                match child {
                    Node::Text(t) => f(Event::Text(t.clone())),
                    Node::Raw(_) => {}
                    Node::Element(c) => {
                        f(Event::Start { name: c.name.clone(), ns: c.ns.clone(), attrs: c.attrs.clone() });
                        stack.push((c, 0));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::framer::{Frame, Framer};
    /// The namespaces these tests use (the XML layer knows none; `xmpp::ns` has them all).
    mod ns {
        pub const CLIENT: &str = "jabber:client";
        pub const COMPONENT: &str = "jabber:component:accept";
        pub const STREAM: &str = "http://etherx.jabber.org/streams";
        pub const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
        pub const PING: &str = "urn:xmpp:ping";
        pub const CAPS: &str = "http://jabber.org/protocol/caps";
        pub const MUC: &str = "http://jabber.org/protocol/muc";
        pub const VIDEO_MUTE: &str = "http://jitsi.org/jitmeet/video";
    }

    fn client_header() -> StreamHeader {
        StreamHeader {
            attrs: vec![("id".into(), "abc".into())],
            default_ns: ns::CLIENT.into(),
            prefixes: vec![("stream".into(), ns::STREAM.into())],
        }
    }

    fn captures() -> Vec<(String, String)> {
        crate::xml::framer::tests::captures()
    }

    #[test]
    fn every_capture_parses_and_round_trips() {
        let h = client_header();
        for (name, text) in captures() {
            let el = parse_stanza(&text, &h).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(el.ns, ns::CLIENT, "{name}");
            assert!(["iq", "presence", "message"].contains(&el.name.as_str()), "{name}");
            assert!(el.get_attr("xmlns").is_none());
            let again = parse_stanza(&el.to_xml_in(ns::CLIENT), &h).unwrap();
            assert_eq!(again, el, "{name}: round trip");
            // As a fragment (with the fixture's leading comment) it is the same tree.
            let file = std::fs::read_to_string(format!(
                "{}/tests/fixtures/captures/{name}",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap();
            assert_eq!(parse_fragment(&file).unwrap(), el, "{name}: fragment");
            assert_eq!(parse_fragment(&el.to_xml()).unwrap(), el, "{name}: fragment round trip");
        }
    }

    #[test]
    fn namespaces_resolve_from_stream_and_children() {
        let h = client_header();
        let text = captures().into_iter().find(|(n, _)| n == "dist-muc-join-presence.xml").unwrap().1;
        let p = parse_stanza(&text, &h).unwrap();
        assert!(p.is("presence", ns::CLIENT));
        assert_eq!(p.get_attr("to"), Some("room1@conference.meet.test/fc4ea35c"));
        assert!(p.get_child("x", ns::MUC).is_some());
        // Unqualified child inherits jabber:client; text kept.
        assert_eq!(p.get_child("stats-id", ns::CLIENT).unwrap().text_content(), "Kiara-tRL");
        assert_eq!(p.get_child("videomuted", ns::VIDEO_MUTE).unwrap().text_content(), "false");
        let c = p.get_child("c", ns::CAPS).unwrap();
        assert_eq!(c.attrs[0], ("hash".to_string(), "sha-1".to_string()));
        // Whitespace-only text between elements dropped.
        assert!(p.children.iter().all(|n| matches!(n, Node::Element(_))));

        // A stanza without xmlns inherits the stream's default namespace.
        let iq = parse_stanza("<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>", &h).unwrap();
        assert!(iq.is("iq", ns::CLIENT));
        assert!(iq.get_child("ping", ns::PING).is_some());
        let comp = StreamHeader { default_ns: ns::COMPONENT.into(), ..client_header() };
        assert!(parse_stanza("<iq/>", &comp).unwrap().is("iq", ns::COMPONENT));
        // Fragment: no namespace in scope.
        assert_eq!(parse_fragment("<iq/>").unwrap().ns, "");
    }

    #[test]
    fn stream_prefixes_resolve() {
        let h = StreamHeader {
            prefixes: vec![("stream".into(), ns::STREAM.into()), ("j".into(), "urn:j".into())],
            ..client_header()
        };
        let f = parse_stanza(
            "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms><j:x j:a='1'/></stream:features>",
            &h,
        )
        .unwrap();
        assert!(f.is("features", ns::STREAM));
        let m = f.get_child("mechanisms", ns::SASL).unwrap();
        assert_eq!(m.get_child("mechanism", ns::SASL).unwrap().text_content(), "PLAIN");
        let x = f.get_child("x", "urn:j").unwrap();
        assert_eq!(x.attrs, vec![("j:a".to_string(), "1".to_string())]);
        let e = parse_stanza(
            "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
            &h,
        )
        .unwrap();
        assert!(e.is("error", ns::STREAM));
        // An undeclared prefix is an error.
        assert!(matches!(parse_stanza("<q:iq/>", &h), Err(ParseError::Syntax(_))));
    }

    #[test]
    fn escapes_decoded() {
        let h = client_header();
        let m = parse_stanza(
            "<message id='a&amp;b&apos;c&quot;&lt;&gt;' xml:lang='en'><body>x &amp; y &lt;z&gt; &apos;q&apos; &#x1F389; &#233;<![CDATA[ <raw> & ]]></body></message>",
            &h,
        )
        .unwrap();
        assert_eq!(m.get_attr("id"), Some("a&b'c\"<>"));
        assert_eq!(m.get_attr("xml:lang"), Some("en"));
        let body = m.get_child("body", ns::CLIENT).unwrap();
        assert_eq!(body.children.len(), 1, "text merged: {:?}", body.children);
        assert_eq!(body.text_content(), "x & y <z> 'q' 🎉 é <raw> & ");
        let again = parse_stanza(&m.to_xml_in(ns::CLIENT), &h).unwrap();
        assert_eq!(again, m);
    }

    #[test]
    fn whitespace_rules() {
        let h = client_header();
        let m = parse_stanza("<message>\n  <body>  two  spaces \n</body>\n  <subject> </subject><x>a <b>c</b> d</x>\n</message>", &h).unwrap();
        assert_eq!(m.children.len(), 3);
        assert_eq!(m.get_child("body", ns::CLIENT).unwrap().text_content(), "  two  spaces \n");
        assert_eq!(m.get_child("subject", ns::CLIENT).unwrap().text_content(), " ");
        let x = m.get_child("x", ns::CLIENT).unwrap();
        assert_eq!(x.children.len(), 3);
        assert_eq!(x.children[0], Node::Text("a ".into()));
    }

    #[test]
    fn refusals() {
        let h = client_header();
        for bad in [
            "<iq><!-- c --></iq>",
            "<iq><?pi x?></iq>",
            "<iq/><!-- c -->",
        ] {
            assert!(matches!(parse_stanza(bad, &h), Err(ParseError::Restricted(_))), "{bad}");
        }
        for bad in [
            "",
            "text",
            "<iq/><iq/>",
            "<iq/>x",
            "<iq>",
            "<iq></message>",
            "</w><w>",
            "<iq/></w><w>",
            "<iq a='1' a='2'/>",
            "<iq>&foo;</iq>",
            "<!DOCTYPE x><iq/>",
        ] {
            let r = parse_stanza(bad, &h);
            assert!(r.is_err(), "{bad}: {r:?}");
            assert_eq!(r.unwrap_err().condition(), "not-well-formed", "{bad}");
        }
        assert!(matches!(
            parse_fragment("<!DOCTYPE x [<!ENTITY e 'boom'>]><x>&e;</x>"),
            Err(ParseError::Restricted(_) | ParseError::Syntax(_))
        ));
        assert!(matches!(parse_fragment("<?pi x?><x/>"), Err(ParseError::Restricted(_))));
        assert!(matches!(parse_fragment("<x/><!-- after -->"), Err(ParseError::Restricted(_))));
        assert!(matches!(parse_fragment("<x><!-- in --></x>"), Err(ParseError::Restricted(_))));
        assert!(parse_fragment("<?xml version='1.0'?><!-- before --><x/>").is_ok());
        assert!(ParseError::Syntax("x".into()).to_string().contains("malformed"));
        // Deep nesting is refused before it can overflow the stack in Drop.
        let deep = format!("{}{}", "<a>".repeat(100_000), "</a>".repeat(100_000));
        assert_eq!(parse_stanza(&deep, &h), Err(ParseError::TooDeep));
        assert_eq!(parse_fragment(&deep), Err(ParseError::TooDeep));
        let ok = format!("{}{}", "<a>".repeat(MAX_DEPTH), "</a>".repeat(MAX_DEPTH));
        assert!(parse_fragment(&ok).is_ok());
        assert_eq!(ParseError::TooDeep.condition(), "policy-violation");
    }

    #[test]
    fn a_stanza_of_too_many_nodes_is_refused() {
        let h = client_header();
        // 256 KiB of empty elements: 65 536 of them, each a heap-allocated element once parsed.
        let flat = format!("<iq type='set' id='x'>{}</iq>", "<a/>".repeat(65_536));
        assert_eq!(parse_stanza(&flat, &h), Err(ParseError::TooManyNodes));
        assert_eq!(ParseError::TooManyNodes.condition(), "policy-violation");
        // Attributes and text nodes count too.
        let attrs = format!("<iq>{}</iq>", "<a x='1' y='2' z='3'/>".repeat(MAX_NODES / 4 + 1));
        assert_eq!(parse_stanza(&attrs, &h), Err(ParseError::TooManyNodes));
        let texts = format!("<iq>{}</iq>", "t<a/>".repeat(MAX_NODES / 2 + 1));
        assert_eq!(parse_stanza(&texts, &h), Err(ParseError::TooManyNodes));
        // Exactly at the cap: accepted (the iq, its id attribute, MAX_NODES - 2 children).
        let at = format!("<iq id='x'>{}</iq>", "<a/>".repeat(MAX_NODES - 2));
        assert_eq!(parse_stanza(&at, &h).unwrap().children.len(), MAX_NODES - 2);
        let over = format!("<iq id='x'>{}</iq>", "<a/>".repeat(MAX_NODES - 1));
        assert_eq!(parse_stanza(&over, &h), Err(ParseError::TooManyNodes));
        // A disco#info answer with far more features than the caps parser takes is still below it.
        let disco = format!(
            "<iq type='result' id='d' from='r@c/p'><query xmlns='http://jabber.org/protocol/disco#info'>{}</query></iq>",
            (0..2048).map(|i| format!("<feature var='urn:f:{i}'/>")).collect::<String>()
        );
        assert!(parse_stanza(&disco, &h).is_ok());
    }

    #[test]
    fn framer_then_parser() {
        let mut stream = String::from(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='abc' from='meet.test' version='1.0'>",
        );
        let caps = captures();
        for (_, s) in &caps {
            stream.push_str(s);
            stream.push('\n');
        }
        stream.push_str("</stream:stream>");
        let mut f = Framer::new(crate::xml::framer::DEFAULT_MAX_STANZA);
        f.feed(stream.as_bytes());
        let mut n = 0;
        while let Some(fr) = f.next_frame().unwrap() {
            if let Frame::Stanza(s) = fr {
                let el = parse_stanza(&s, f.header().unwrap()).unwrap();
                assert_eq!(el.ns, ns::CLIENT);
                n += 1;
            }
        }
        assert_eq!(n, caps.len());
    }
}
