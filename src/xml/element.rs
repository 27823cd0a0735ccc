//! The owned XML element tree every layer above the framer works with.
//!
//! An [`Element`] has a resolved namespace (`ns`, never a prefix), a local name,
//! attributes in document order and child nodes. Attribute names are stored as
//! written without namespace resolution except for the `xml:` prefix, which is kept
//! literally (`xml:lang`). Namespace declarations (`xmlns`, `xmlns:p`) are never
//! stored as attributes: the serializer re-creates them from `ns`.
//!
//! [`Element::weight`] estimates the memory a tree holds, for budgets of queued input
//! (`messages::inbox`): a parsed stanza costs far more than its text, since every element
//! is a struct with two owned strings and two vectors.
//!
//! A child may also be [`Node::Raw`]: XML our own writer serialised earlier ([`RawXml`],
//! e.g. an endpoint's cached sources), written out verbatim. The parser never makes one,
//! and the tree accessors (`elements`, `get_child`, `text_content`) do not look into it:
//! to inspect a stanza holding one, serialise and parse it again ([`Element::reparsed`]).

use std::fmt;

use super::write::RawXml;

/// A child of an element: another element, character data (unescaped), or XML written
/// earlier by our writer ([`RawXml`]; never from the parser).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// A child element.
    Element(Element),
    /// Character data, unescaped.
    Text(String),
    /// Already serialised XML from our writer, emitted as is.
    Raw(RawXml),
}

/// An owned XML element with its namespace resolved.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Element {
    /// The local name (without prefix).
    pub name: String,
    /// The resolved namespace URI (`""` when none is in scope).
    pub ns: String,
    /// Attributes as (name, unescaped value) in document order (`prefix:local` when prefixed; namespace declarations excluded).
    pub attrs: Vec<(String, String)>,
    /// Child nodes in document order.
    pub children: Vec<Node>,
}

/// Bytes a heap block of `size` requested bytes takes (glibc on 64 bit: an 8-byte
/// header, 16-byte granules, 32 bytes at least); nothing for an empty `size`.
fn block(size: usize) -> usize {
    if size == 0 {
        0
    } else {
        ((size + 8 + 15) & !15).max(32)
    }
}

impl Element {
    /// Estimated memory this tree holds, in bytes: the element's slot in its parent, every
    /// heap block of its strings and vectors (by capacity, with allocator overhead), and
    /// the same for everything below it. Within a few percent of what glibc allocates for
    /// a parsed stanza (`tests/element_weight.rs` measures it). O(nodes), no recursion.
    pub fn weight(&self) -> usize {
        let mut total = std::mem::size_of::<Node>();
        let mut todo = vec![self];
        while let Some(e) = todo.pop() {
            total += block(e.name.capacity())
                + block(e.ns.capacity())
                + block(e.attrs.capacity() * std::mem::size_of::<(String, String)>())
                + block(e.children.capacity() * std::mem::size_of::<Node>());
            for (k, v) in &e.attrs {
                total += block(k.capacity()) + block(v.capacity());
            }
            for c in &e.children {
                match c {
                    Node::Element(x) => todo.push(x),
                    Node::Text(t) => total += block(t.capacity()),
                    // Counted whole even when the bytes are shared with a cache.
                    Node::Raw(r) => total += r.weight(),
                }
            }
        }
        total
    }

    /// A new empty element `name` in namespace `ns`.
    pub fn new(name: &str, ns: &str) -> Element {
        Element { name: name.to_string(), ns: ns.to_string(), attrs: Vec::new(), children: Vec::new() }
    }

    /// Builder: set attribute `name` (replacing an earlier value).
    pub fn attr(mut self, name: &str, value: impl Into<String>) -> Element {
        self.set_attr(name, value);
        self
    }

    /// Builder: set attribute `name` only when `value` is `Some`.
    pub fn attr_opt(mut self, name: &str, value: Option<impl Into<String>>) -> Element {
        if let Some(v) = value {
            self.set_attr(name, v);
        }
        self
    }

    /// Builder: append a child element.
    pub fn child(mut self, child: Element) -> Element {
        self.children.push(Node::Element(child));
        self
    }

    /// Builder: append child elements.
    pub fn children(mut self, children: impl IntoIterator<Item = Element>) -> Element {
        self.children.extend(children.into_iter().map(Node::Element));
        self
    }

    /// Builder: append character data.
    pub fn text(mut self, text: impl Into<String>) -> Element {
        self.children.push(Node::Text(text.into()));
        self
    }

    /// Builder: append XML our writer serialised earlier, to be written verbatim.
    pub fn raw(mut self, raw: RawXml) -> Element {
        self.children.push(Node::Raw(raw));
        self
    }

    /// The value of attribute `name`, if present.
    pub fn get_attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Set attribute `name`, replacing an earlier value in place.
    pub fn set_attr(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        if let Some(slot) = self.attrs.iter_mut().find(|(k, _)| k == name) {
            slot.1 = value;
        } else {
            self.attrs.push((name.to_string(), value));
        }
    }

    /// Remove attribute `name`, returning its value.
    pub fn remove_attr(&mut self, name: &str) -> Option<String> {
        let pos = self.attrs.iter().position(|(k, _)| k == name)?;
        Some(self.attrs.remove(pos).1)
    }

    /// True when this element is `name` in namespace `ns`.
    pub fn is(&self, name: &str, ns: &str) -> bool {
        self.name == name && self.ns == ns
    }

    /// Child elements in order.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) | Node::Raw(_) => None,
        })
    }

    /// Mutable child elements in order.
    pub fn elements_mut(&mut self) -> impl Iterator<Item = &mut Element> {
        self.children.iter_mut().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) | Node::Raw(_) => None,
        })
    }

    /// The first child element named `name` in namespace `ns`.
    pub fn get_child(&self, name: &str, ns: &str) -> Option<&Element> {
        self.elements().find(|e| e.is(name, ns))
    }

    /// The first child element named `name` in namespace `ns`, mutably.
    pub fn get_child_mut(&mut self, name: &str, ns: &str) -> Option<&mut Element> {
        self.elements_mut().find(|e| e.is(name, ns))
    }

    /// All child elements named `name` in namespace `ns`.
    pub fn children_named<'a>(&'a self, name: &'a str, ns: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.elements().filter(move |e| e.is(name, ns))
    }

    /// The first child element, whatever its name.
    pub fn first_element(&self) -> Option<&Element> {
        self.elements().next()
    }

    /// Remove every child element named `name` in `ns`; returns how many were removed.
    pub fn remove_children(&mut self, name: &str, ns: &str) -> usize {
        let before = self.children.len();
        self.children.retain(|n| !matches!(n, Node::Element(e) if e.is(name, ns)));
        before - self.children.len()
    }

    /// True when a [`Node::Raw`] is anywhere in this tree.
    pub fn contains_raw(&self) -> bool {
        let mut todo = vec![self];
        while let Some(e) = todo.pop() {
            for c in &e.children {
                match c {
                    Node::Element(x) => todo.push(x),
                    Node::Raw(_) => return true,
                    Node::Text(_) => {}
                }
            }
        }
        false
    }

    /// This tree as a receiver sees it: serialised and parsed again, so every
    /// [`Node::Raw`] becomes the elements and text it holds. For tests and checks that look
    /// into what the focus sends; an error means the writer produced malformed XML.
    pub fn reparsed(&self) -> Result<Element, super::ParseError> {
        super::parse_fragment(&self.to_xml())
    }

    /// The concatenated character data directly inside this element (not what a
    /// [`Node::Raw`] child holds: see [`Element::reparsed`]).
    pub fn text_content(&self) -> String {
        let mut s = String::new();
        for n in &self.children {
            if let Node::Text(t) = n {
                s.push_str(t);
            }
        }
        s
    }

    /// Serialize as a standalone fragment (the element declares its own namespace).
    pub fn to_xml(&self) -> String {
        let mut out = String::new();
        crate::xml::write::write_element(&mut out, self, "");
        out
    }

    /// Serialize for a stream whose default namespace is `stream_ns` (no `xmlns`
    /// attribute on the top element when it is in that namespace).
    pub fn to_xml_in(&self, stream_ns: &str) -> String {
        let mut out = String::new();
        crate::xml::write::write_element(&mut out, self, stream_ns);
        out
    }
}

impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_xml())
    }
}
