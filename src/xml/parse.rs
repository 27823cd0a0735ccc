//! The stanza parser: one framed stanza (or a standalone fragment) to an owned
//! [`Element`], using xml-rs on an in-memory slice (never a socket).
//!
//! [`parse_stanza`] parses a stanza cut out of a stream by the framer. Such a stanza
//! usually has no `xmlns` of its own and relies on the stream's declarations, so the
//! text is read as the only child of a synthetic wrapper element that re-declares the
//! stream header's default namespace and prefixes: the reader sees
//! `<w xmlns='…' xmlns:stream='…'>` + stanza + `</w>` through a chained `Read`, and
//! the wrapper's single child becomes the result. Anything but exactly one element
//! (other text than whitespace, a second element, markup closing the wrapper) is an
//! error.
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
//! a text-only element keeps its text exactly, whitespace included.

use std::fmt;
use std::io::Read;

use xml::reader::{EventReader, ParserConfig, ParserConfig2, XmlEvent};

use super::element::{Element, Node};
use super::framer::StreamHeader;
use super::write::escape_attr;

/// Why a stanza could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The text is not well-formed or not namespace-well-formed (xml-rs's message).
    Syntax(String),
    /// A comment, processing instruction or DTD (RFC 6120 §11.1).
    Restricted(String),
    /// The text is not exactly one element.
    NotOneElement(String),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Syntax(m) => write!(f, "malformed XML: {m}"),
            ParseError::Restricted(m) => write!(f, "restricted XML: {m}"),
            ParseError::NotOneElement(m) => write!(f, "not a single element: {m}"),
        }
    }
}

impl std::error::Error for ParseError {}

impl ParseError {
    /// The RFC 6120 stream error condition this maps to.
    pub fn condition(&self) -> &'static str {
        match self {
            ParseError::Restricted(_) => "restricted-xml",
            _ => "not-well-formed",
        }
    }
}

/// The xml-rs configuration: keep whitespace, report it as characters, merge
/// character data and CDATA, report comments (so they can be refused), one root.
fn config() -> ParserConfig2 {
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

/// Parse one stanza framed from a stream whose header is `header`: the stream's
/// default namespace and prefixes are in scope.
pub fn parse_stanza(text: &str, header: &StreamHeader) -> Result<Element, ParseError> {
    let mut open = String::with_capacity(64);
    open.push_str("<w");
    if !header.default_ns.is_empty() {
        open.push_str(" xmlns='");
        escape_attr(&mut open, &header.default_ns);
        open.push('\'');
    }
    for (prefix, ns) in &header.prefixes {
        if prefix == "xml" || prefix == "xmlns" || ns.is_empty() {
            continue;
        }
        open.push_str(" xmlns:");
        open.push_str(prefix);
        open.push_str("='");
        escape_attr(&mut open, ns);
        open.push('\'');
    }
    open.push('>');
    let source = open.as_bytes().chain(text.as_bytes()).chain(&b"</w>"[..]);
    build(config().create_reader(source), true)
}

/// Parse a standalone element (only its own namespace declarations are in scope).
/// Comments before the root element are skipped.
pub fn parse_fragment(text: &str) -> Result<Element, ParseError> {
    build(config().create_reader(text.as_bytes()), false)
}

fn syntax(e: xml::reader::Error) -> ParseError {
    ParseError::Syntax(e.to_string())
}

/// Drive the reader and build the tree. With `wrapped`, the document element is the
/// synthetic wrapper and the result is its only child element.
fn build<R: Read>(mut reader: EventReader<R>, wrapped: bool) -> Result<Element, ParseError> {
    let mut stack: Vec<Element> = Vec::new();
    let mut result: Option<Element> = None;
    let mut in_wrapper = false;
    let mut wrapper_closed = false;
    loop {
        match reader.next().map_err(syntax)? {
            XmlEvent::StartDocument { .. } => {}
            XmlEvent::EndDocument => break,
            XmlEvent::ProcessingInstruction { name, .. } => {
                return Err(ParseError::Restricted(format!("processing instruction '{name}'")));
            }
            XmlEvent::Comment(_) => {
                if in_wrapper || !stack.is_empty() || result.is_some() || wrapper_closed {
                    return Err(ParseError::Restricted("comment".into()));
                }
            }
            XmlEvent::StartElement { name, attributes, .. } => {
                if reader.doctype().is_some() {
                    return Err(ParseError::Restricted("DTD".into()));
                }
                if wrapped && !in_wrapper {
                    if wrapper_closed {
                        return Err(ParseError::NotOneElement("markup after the stanza".into()));
                    }
                    in_wrapper = true;
                    continue;
                }
                if stack.is_empty() && result.is_some() {
                    return Err(ParseError::NotOneElement("more than one element".into()));
                }
                let mut el = Element {
                    name: name.local_name,
                    ns: name.namespace.unwrap_or_default(),
                    attrs: Vec::with_capacity(attributes.len()),
                    children: Vec::new(),
                };
                for a in attributes {
                    let key = match a.name.prefix.as_deref() {
                        Some("xmlns") => continue,
                        Some(p) => format!("{p}:{}", a.name.local_name),
                        None if a.name.local_name == "xmlns" => continue,
                        None => a.name.local_name,
                    };
                    el.attrs.push((key, a.value));
                }
                stack.push(el);
            }
            XmlEvent::EndElement { .. } => match stack.pop() {
                Some(mut el) => {
                    if el.children.iter().any(|n| matches!(n, Node::Element(_))) {
                        el.children.retain(|n| match n {
                            Node::Text(t) => !t.chars().all(char::is_whitespace),
                            Node::Element(_) => true,
                        });
                    }
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(Node::Element(el)),
                        None => result = Some(el),
                    }
                }
                None => {
                    // The wrapper itself closes.
                    in_wrapper = false;
                    wrapper_closed = true;
                }
            },
            XmlEvent::Characters(t) | XmlEvent::Whitespace(t) | XmlEvent::CData(t) => match stack.last_mut() {
                Some(el) => match el.children.last_mut() {
                    Some(Node::Text(prev)) => prev.push_str(&t),
                    _ => el.children.push(Node::Text(t)),
                },
                None => {
                    if !t.chars().all(char::is_whitespace) {
                        return Err(ParseError::NotOneElement("text outside the element".into()));
                    }
                }
            },
        }
    }
    if wrapped && !wrapper_closed {
        return Err(ParseError::Syntax("unexpected end of input".into()));
    }
    result.ok_or_else(|| ParseError::NotOneElement("no element".into()))
}
