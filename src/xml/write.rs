//! The serializer: an [`Element`] tree to XML text with correct escaping.
//!
//! Namespaces are written as default-namespace declarations (`xmlns='…'`) on every
//! element whose namespace differs from its parent's; prefixes are never invented.
//! Attribute values use `'` quotes and escape `& < > ' "`; text escapes `& < >`.
//! Characters XML 1.0 does not allow in a document at all (the C0 controls other than
//! tab, line feed and carriage return, U+FFFE, U+FFFF: §2.2 `Char`) cannot be written
//! even as references; they are written as U+FFFD, so that whatever a value holds (a
//! participant's JSON-encoded source name, say) the output is well-formed and the
//! server does not close our stream over it.
//!
//! [`RawWriter`] writes into a [`RawXml`]: pre-serialised XML that an [`Element`] can
//! carry as a child ([`Node::Raw`]) and that is then copied into the output verbatim.
//! The focus caches each endpoint's encoded sources this way, so an offer in a room of
//! 500 is a copy of cached bytes rather than a tree of 20 000 elements
//! (`xmpp::jingle::encoded`).
//!
//! **The raw invariant.** A `RawXml` holds only what this module's writer produced:
//! complete elements, each declaring its own namespace (so the text means the same under
//! any parent), and escaped character data, in sequence. It has no constructor from a
//! string; the only way in is [`RawWriter`], whose methods take an [`Element`], text to
//! escape, or another `RawXml`. So a participant's input can never become raw XML: it
//! reaches one only as the values of typed sources written through the escaping above.

use std::borrow::Cow;
use std::sync::Arc;

use super::element::{Element, Node};

/// Append `el` to `out`; `parent_ns` is the namespace in scope (the stream's default
/// namespace for a top-level stanza, or "" for a standalone fragment).
pub fn write_element(out: &mut String, el: &Element, parent_ns: &str) {
    out.push('<');
    out.push_str(&el.name);
    if el.ns != parent_ns {
        out.push_str(" xmlns='");
        escape_attr(out, &el.ns);
        out.push('\'');
    }
    for (k, v) in &el.attrs {
        out.push(' ');
        out.push_str(k);
        out.push_str("='");
        escape_attr(out, v);
        out.push('\'');
    }
    if el.children.is_empty() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    for child in &el.children {
        match child {
            Node::Element(c) => write_element(out, c, &el.ns),
            Node::Text(t) => escape_text(out, t),
            Node::Raw(r) => r.write_to(out),
        }
    }
    out.push_str("</");
    out.push_str(&el.name);
    out.push('>');
}

/// Pre-serialised XML written by [`RawWriter`] (see the raw invariant in the module
/// doc), written out verbatim as a child of an [`Element`]: one shared text, or a
/// sequence of them ([`RawXml::concat`]: cached pieces spliced without copying them).
/// Cheap to clone.
#[derive(Clone, Default)]
pub struct RawXml(Repr);

#[derive(Clone)]
enum Repr {
    One(Arc<str>),
    Many(Arc<[Arc<str>]>),
}

impl Default for Repr {
    fn default() -> Repr {
        Repr::Many(Arc::new([]))
    }
}

impl RawXml {
    /// The pieces, in order.
    fn pieces(&self) -> &[Arc<str>] {
        match &self.0 {
            Repr::One(t) => std::slice::from_ref(t),
            Repr::Many(v) => v,
        }
    }

    /// `parts` one after the other, sharing their text (no copy).
    pub fn concat<'a>(parts: impl IntoIterator<Item = &'a RawXml>) -> RawXml {
        let pieces: Vec<Arc<str>> = parts.into_iter().flat_map(|p| p.pieces()).filter(|t| !t.is_empty()).cloned().collect();
        match <[Arc<str>; 1]>::try_from(pieces) {
            Ok([one]) => RawXml(Repr::One(one)),
            Err(many) => RawXml(Repr::Many(many.into())),
        }
    }

    /// Append the XML text to `out`.
    pub fn write_to(&self, out: &mut String) {
        for t in self.pieces() {
            out.push_str(t);
        }
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.pieces().iter().map(|t| t.len()).sum()
    }

    /// True when it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.pieces().iter().all(|t| t.is_empty())
    }

    /// Memory it holds, as [`Element::weight`] counts it: every shared block (two
    /// reference counts and the bytes), counted whole even when a cache shares it, and
    /// the list of pieces, with allocator overhead.
    pub fn weight(&self) -> usize {
        let block = |size: usize| ((size + 8 + 15) & !15).max(32);
        let counts = 2 * std::mem::size_of::<usize>();
        let texts: usize = self.pieces().iter().map(|t| block(t.len() + counts)).sum();
        match &self.0 {
            Repr::One(_) => texts,
            Repr::Many(v) => texts + block(counts + v.len() * std::mem::size_of::<Arc<str>>()),
        }
    }
}

impl PartialEq for RawXml {
    /// The same text, however it is split.
    fn eq(&self, other: &RawXml) -> bool {
        let (mut a, mut b) = (String::new(), String::new());
        self.write_to(&mut a);
        other.write_to(&mut b);
        a == b
    }
}

impl Eq for RawXml {}

impl std::fmt::Debug for RawXml {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut text = String::new();
        self.write_to(&mut text);
        write!(f, "Raw({text:?})")
    }
}

/// Writes elements, escaped text and earlier [`RawXml`] into a new `RawXml`: with
/// [`RawXml::concat`], the only way to make one.
///
/// Besides whole [`Element`]s it writes elements piece by piece, without a tree:
/// [`RawWriter::start`] (a name and namespace the focus chose, `&'static str`) or
/// [`RawWriter::start_element`] (the start tag of a tree's element), then
/// [`RawWriter::attr`] (escaped values), children, and [`RawWriter::end`]. It keeps the
/// open elements, so whatever is called, [`RawWriter::finish`] closes them and the text
/// is complete, well-formed elements: the raw invariant holds. A namespace is declared
/// on an element whose parent (here) has another one, and always at the top level.
/// [`RawWriter::share`] appends earlier raw XML without copying it; [`RawOpen`] is a
/// start tag and children written ahead and left open, which only a writer can take up
/// again ([`RawWriter::resume`]) and must then close.
///
/// ```compile_fail
/// // Raw XML cannot be made from a string: no conversion, no public field.
/// let raw: jicofo::xml::RawXml = String::from("<x/>").into();
/// ```
#[derive(Debug, Default)]
pub struct RawWriter {
    /// Pieces already finished (shared or flushed), in order, before `out`.
    pieces: Vec<Arc<str>>,
    out: String,
    /// The open elements: name and namespace.
    open: Vec<(Cow<'static, str>, Cow<'static, str>)>,
    /// The last start tag is not closed yet (attributes may follow).
    in_tag: bool,
    /// Where the top-level element's name ends and how long its namespace declaration
    /// is, while the writer holds a single top-level element written in `out` (for
    /// [`RawWriter::finish_open`]).
    top: Option<(usize, usize)>,
    /// Top-level elements started.
    tops: usize,
}

impl RawWriter {
    /// An empty writer.
    pub fn new() -> RawWriter {
        RawWriter::default()
    }

    /// An empty writer with room for `bytes`.
    pub fn with_capacity(bytes: usize) -> RawWriter {
        RawWriter { out: String::with_capacity(bytes), ..RawWriter::default() }
    }

    /// The namespace of the innermost open element ("" at the top level).
    fn parent_ns(&self) -> &str {
        self.open.last().map_or("", |(_, ns)| ns)
    }

    /// Close a pending start tag: content follows.
    fn content(&mut self) {
        if self.in_tag {
            self.out.push('>');
            self.in_tag = false;
        }
    }

    fn open_tag(&mut self, name: Cow<'static, str>, ns: Cow<'static, str>) {
        self.content();
        let top = self.open.is_empty();
        if top {
            self.tops += 1;
        }
        let start = self.out.len();
        self.out.push('<');
        self.out.push_str(&name);
        let name_end = self.out.len();
        if top || self.parent_ns() != ns {
            self.out.push_str(" xmlns='");
            escape_attr(&mut self.out, &ns);
            self.out.push('\'');
        }
        if top {
            self.top = (start == 0 && self.pieces.is_empty() && self.tops == 1).then_some((name_end, self.out.len() - name_end));
        }
        self.open.push((name, ns));
        self.in_tag = true;
    }

    /// Start an element `name` in `ns` (names are the focus's own constants); attributes
    /// may follow until anything else is written.
    pub fn start(&mut self, name: &'static str, ns: &'static str) {
        self.open_tag(Cow::Borrowed(name), Cow::Borrowed(ns));
    }

    /// Start an element with the name, namespace and attributes of `el` (its children are
    /// not written: they follow, then [`RawWriter::end`]).
    pub fn start_element(&mut self, el: &Element) {
        self.open_tag(Cow::Owned(el.name.clone()), Cow::Owned(el.ns.clone()));
        for (k, v) in &el.attrs {
            self.put_attr(k, v);
        }
    }

    fn put_attr(&mut self, name: &str, value: &str) {
        self.out.push(' ');
        self.out.push_str(name);
        self.out.push_str("='");
        escape_attr(&mut self.out, value);
        self.out.push('\'');
    }

    /// An attribute of the element just started, its value escaped. Ignored (a bug in
    /// the caller, caught in debug builds) when content was written since the start.
    pub fn attr(&mut self, name: &'static str, value: &str) {
        debug_assert!(self.in_tag, "attribute {name} after content");
        if self.in_tag {
            self.put_attr(name, value);
        }
    }

    /// Close the innermost open element (nothing when none is open).
    pub fn end(&mut self) {
        let Some((name, _)) = self.open.pop() else { return };
        if self.in_tag {
            self.out.push_str("/>");
            self.in_tag = false;
        } else {
            self.out.push_str("</");
            self.out.push_str(&name);
            self.out.push('>');
        }
    }

    /// Append `el` (declaring its namespace unless the open parent has the same).
    pub fn element(&mut self, el: &Element) {
        self.content();
        if self.open.is_empty() {
            self.tops += 1;
            self.top = None;
        }
        let parent = self.open.last().map_or(String::new(), |(_, ns)| ns.to_string());
        write_element(&mut self.out, el, &parent);
    }

    /// Append character data, escaped.
    pub fn text(&mut self, text: &str) {
        self.content();
        escape_text(&mut self.out, text);
    }

    /// Append XML written earlier (a copy).
    pub fn raw(&mut self, raw: &RawXml) {
        self.content();
        raw.write_to(&mut self.out);
        if self.open.is_empty() && !raw.is_empty() {
            self.tops += 1;
            self.top = None;
        }
    }

    /// Append XML written earlier, sharing its text (no copy).
    pub fn share(&mut self, raw: &RawXml) {
        if raw.is_empty() {
            return;
        }
        self.content();
        if self.open.is_empty() {
            self.tops += 1;
        }
        self.top = None;
        self.flush();
        self.pieces.extend(raw.pieces().iter().filter(|t| !t.is_empty()).cloned());
    }

    /// Move `out` into the finished pieces.
    fn flush(&mut self) {
        if !self.out.is_empty() {
            self.pieces.push(Arc::from(std::mem::take(&mut self.out).as_str()));
        }
    }

    /// Take up an element written ahead: its start tag (declaring its namespace only
    /// when the open parent has another one) and children, shared; it and the elements
    /// it left open are now open here.
    pub fn resume(&mut self, o: &RawOpen) {
        self.content();
        if self.open.is_empty() {
            self.tops += 1;
        }
        self.top = None;
        let declare = self.open.is_empty() || self.parent_ns() != o.ns();
        self.flush();
        self.pieces.push(o.head.clone());
        if declare {
            self.out.push_str(" xmlns='");
            escape_attr(&mut self.out, o.ns());
            self.out.push('\'');
            self.flush();
        }
        self.pieces.push(o.rest.clone());
        self.open.extend(o.open.iter().cloned());
        self.in_tag = o.in_tag;
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.pieces.iter().map(|t| t.len()).sum::<usize>() + self.out.len()
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What was written, every element still open closed.
    pub fn finish(mut self) -> RawXml {
        while !self.open.is_empty() {
            self.end();
        }
        if self.pieces.is_empty() {
            return RawXml(Repr::One(Arc::from(self.out)));
        }
        self.flush();
        match <[Arc<str>; 1]>::try_from(self.pieces) {
            Ok([one]) => RawXml(Repr::One(one)),
            Err(many) => RawXml(Repr::Many(many.into())),
        }
    }

    /// What was written, left open for a later [`RawWriter::resume`]: `None` unless it
    /// is exactly one top-level element written here (started with [`RawWriter::start`]
    /// or [`RawWriter::start_element`], nothing shared), open or closed.
    pub fn finish_open(self) -> Option<RawOpen> {
        let (name_end, decl) = self.top?;
        if !self.pieces.is_empty() || self.tops != 1 {
            return None;
        }
        let ns = self.open.first().map(|(_, ns)| ns.clone());
        let ns = match ns {
            Some(ns) => ns,
            // Closed already: the declaration tells the namespace.
            None => Cow::Owned(unescape_decl(&self.out[name_end..name_end + decl])),
        };
        Some(RawOpen {
            head: Arc::from(&self.out[..name_end]),
            rest: Arc::from(&self.out[name_end + decl..]),
            ns_decl: ns,
            open: self.open,
            in_tag: self.in_tag,
        })
    }
}

/// The namespace in a declaration `xmlns='…'` our writer wrote.
fn unescape_decl(decl: &str) -> String {
    let v = decl.trim_start().trim_start_matches("xmlns='").trim_end_matches('\'');
    v.replace("&apos;", "'").replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// One element our writer wrote ahead (start tag, attributes, children), possibly left
/// open: e.g. an offer's `<content><description>` with its codecs, to which each offer
/// adds its sources and transport. Only [`RawWriter::resume`] takes it, declaring its
/// namespace only where the parent's differs (so the text is what a tree would give),
/// and then owns its open elements. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RawOpen {
    /// `<name`.
    head: Arc<str>,
    /// The attributes, `>` and children (or `/>`), without the namespace declaration.
    rest: Arc<str>,
    ns_decl: Cow<'static, str>,
    /// The elements left open, outermost first.
    open: Vec<(Cow<'static, str>, Cow<'static, str>)>,
    in_tag: bool,
}

impl RawOpen {
    /// The element's namespace.
    fn ns(&self) -> &str {
        &self.ns_decl
    }

    /// Its bytes (without the namespace declaration and the closing tags).
    pub fn len(&self) -> usize {
        self.head.len() + self.rest.len()
    }

    /// True for an empty element name (never: there is always a start tag).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A top-level element (a stanza) whose content our writer wrote ahead: the name,
/// namespace and attributes of its start tag, kept apart so that the event loop can
/// still add `from` and declare the namespace as its stream needs, and its children as
/// [`RawXml`]. Writing it is copying: a few escaped attribute values and the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawElement {
    name: &'static str,
    ns: &'static str,
    attrs: Vec<(&'static str, String)>,
    body: RawXml,
}

impl RawElement {
    /// `<name xmlns=ns>` with `body` as its content.
    pub fn new(name: &'static str, ns: &'static str, body: RawXml) -> RawElement {
        RawElement { name, ns, attrs: Vec::new(), body }
    }

    /// Builder: set attribute `name`.
    pub fn attr(mut self, name: &'static str, value: impl Into<String>) -> RawElement {
        self.set_attr(name, value);
        self
    }

    /// Set attribute `name`, replacing an earlier value in place.
    pub fn set_attr(&mut self, name: &'static str, value: impl Into<String>) {
        let value = value.into();
        match self.attrs.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.attrs.push((name, value)),
        }
    }

    /// The value of attribute `name`.
    pub fn get_attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    /// The element's name.
    pub fn name(&self) -> &str {
        self.name
    }

    /// The element's namespace.
    pub fn ns(&self) -> &str {
        self.ns
    }

    /// Its content.
    pub fn body(&self) -> &RawXml {
        &self.body
    }

    /// The start tag, for a parent (or stream) whose namespace is `parent_ns`.
    fn write_head(&self, out: &mut String, parent_ns: &str) {
        out.push('<');
        out.push_str(self.name);
        if self.ns != parent_ns {
            out.push_str(" xmlns='");
            escape_attr(out, self.ns);
            out.push('\'');
        }
        for (k, v) in &self.attrs {
            out.push(' ');
            out.push_str(k);
            out.push_str("='");
            escape_attr(out, v);
            out.push('\'');
        }
    }

    /// Append the element to `out` (see [`write_element`]).
    pub fn write_to(&self, out: &mut String, parent_ns: &str) {
        self.write_head(out, parent_ns);
        if self.body.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        self.body.write_to(out);
        out.push_str("</");
        out.push_str(self.name);
        out.push('>');
    }

    /// Append the element's bytes to `out`: the start tag written into `scratch` (cleared
    /// first), the body copied piece by piece.
    pub fn write_bytes(&self, out: &mut Vec<u8>, parent_ns: &str, scratch: &mut String) {
        scratch.clear();
        self.write_head(scratch, parent_ns);
        if self.body.is_empty() {
            scratch.push_str("/>");
            out.extend_from_slice(scratch.as_bytes());
            return;
        }
        scratch.push('>');
        out.reserve(scratch.len() + self.body.len() + self.name.len() + 3);
        out.extend_from_slice(scratch.as_bytes());
        for t in self.body.pieces() {
            out.extend_from_slice(t.as_bytes());
        }
        out.extend_from_slice(b"</");
        out.extend_from_slice(self.name.as_bytes());
        out.push(b'>');
    }

    /// Serialize for a stream whose default namespace is `stream_ns`.
    pub fn to_xml_in(&self, stream_ns: &str) -> String {
        let mut out = String::new();
        self.write_to(&mut out, stream_ns);
        out
    }

    /// Serialize as a standalone fragment.
    pub fn to_xml(&self) -> String {
        self.to_xml_in("")
    }

    /// The start tag as a tree without children (what a local error reply to it needs).
    pub fn head(&self) -> Element {
        Element {
            name: self.name.to_string(),
            ns: self.ns.to_string(),
            attrs: self.attrs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
            children: Vec::new(),
        }
    }

    /// The element as a receiver sees it: written and parsed again (tests and checks).
    pub fn reparsed(&self) -> Result<Element, super::ParseError> {
        super::parse_fragment(&self.to_xml())
    }
}

/// A stanza to send: a tree, or an element whose content was written ahead
/// ([`RawElement`]). What the event loop takes from other threads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outgoing {
    /// An element tree (which may carry raw children).
    Tree(Element),
    /// Written ahead.
    Raw(RawElement),
}

impl From<Element> for Outgoing {
    fn from(el: Element) -> Outgoing {
        Outgoing::Tree(el)
    }
}

impl From<RawElement> for Outgoing {
    fn from(el: RawElement) -> Outgoing {
        Outgoing::Raw(el)
    }
}

impl Outgoing {
    /// The top element's name.
    pub fn name(&self) -> &str {
        match self {
            Outgoing::Tree(e) => &e.name,
            Outgoing::Raw(r) => r.name,
        }
    }

    /// The top element's namespace.
    pub fn ns(&self) -> &str {
        match self {
            Outgoing::Tree(e) => &e.ns,
            Outgoing::Raw(r) => r.ns,
        }
    }

    /// An attribute of the top element.
    pub fn get_attr(&self, name: &str) -> Option<&str> {
        match self {
            Outgoing::Tree(e) => e.get_attr(name),
            Outgoing::Raw(r) => r.get_attr(name),
        }
    }

    /// Set an attribute of the top element.
    pub fn set_attr(&mut self, name: &'static str, value: impl Into<String>) {
        match self {
            Outgoing::Tree(e) => e.set_attr(name, value),
            Outgoing::Raw(r) => r.set_attr(name, value),
        }
    }

    /// Serialize for a stream whose default namespace is `stream_ns`.
    pub fn to_xml_in(&self, stream_ns: &str) -> String {
        match self {
            Outgoing::Tree(e) => e.to_xml_in(stream_ns),
            Outgoing::Raw(r) => r.to_xml_in(stream_ns),
        }
    }

    /// Append the stanza's bytes to `out` for a stream whose default namespace is
    /// `stream_ns` (`scratch`: a reused buffer).
    pub fn write_bytes(&self, out: &mut Vec<u8>, stream_ns: &str, scratch: &mut String) {
        match self {
            Outgoing::Tree(e) => {
                scratch.clear();
                write_element(scratch, e, stream_ns);
                out.extend_from_slice(scratch.as_bytes());
            }
            Outgoing::Raw(r) => r.write_bytes(out, stream_ns, scratch),
        }
    }

    /// The stanza as a tree a receiver would parse: a tree without raw parts as it is,
    /// anything else written and parsed again.
    pub fn into_tree(self) -> Result<Element, super::ParseError> {
        match self {
            Outgoing::Tree(e) if !e.contains_raw() => Ok(e),
            Outgoing::Tree(e) => e.reparsed(),
            Outgoing::Raw(r) => r.reparsed(),
        }
    }
}

/// Escape an attribute value (quoted with `'`).
pub fn escape_attr(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if !is_xml_char(c) => out.push(char::REPLACEMENT_CHARACTER),
            c => out.push(c),
        }
    }
}

/// A character XML 1.0 allows in a document (§2.2; Rust strings hold no surrogates).
#[inline]
pub fn is_xml_char(c: char) -> bool {
    !matches!(c, '\0'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}')
}

/// Escape character data.
pub fn escape_text(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c if !is_xml_char(c) => out.push(char::REPLACEMENT_CHARACTER),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Raw XML is written verbatim, means the same under any parent (its elements declare
    /// their namespace), escapes what it was given, and counts in the tree's weight.
    #[test]
    fn raw_xml_is_written_verbatim_and_parses_back_to_the_tree_it_replaces() {
        let hostile = "a'b\"c<d>&e]]>\u{1}f";
        let inner = Element::new("source", "urn:x:ssma").attr("name", hostile).child(Element::new("p", "urn:x:rtp").attr("v", "1"));
        let mut w = RawWriter::new();
        w.element(&inner);
        w.text(hostile);
        let raw = w.finish();
        let text = format!("{raw:?}");
        assert!(text.starts_with("Raw(\"<source xmlns='urn:x:ssma' name='a&apos;b&quot;c&lt;d&gt;&amp;e]]&gt;"), "{text}");
        assert!(!text.contains("]]>") && !text.contains("<d>"), "{text}");
        // Under a parent of any namespace, the same tree as without the cache.
        for parent_ns in ["urn:x:rtp", "urn:x:ssma", "jabber:client"] {
            let tree = Element::new("description", parent_ns).child(inner.clone()).text(hostile);
            let spliced = Element::new("description", parent_ns).raw(raw.clone());
            assert!(spliced.contains_raw() && !tree.contains_raw());
            assert_eq!(spliced.reparsed().unwrap(), tree.reparsed().unwrap(), "under {parent_ns}");
            assert!(spliced.elements().next().is_none() && spliced.text_content().is_empty(), "accessors do not look into raw XML");
        }
        // Concatenation of raw pieces is raw XML too, copied or shared.
        let mut w = RawWriter::with_capacity(2 * raw.len());
        w.raw(&raw);
        w.raw(&raw);
        let twice = w.finish();
        assert_eq!(twice.len(), 2 * raw.len());
        let shared = RawXml::concat([&raw, &RawXml::default(), &raw]);
        assert_eq!(shared, twice);
        assert_eq!(RawXml::concat([&shared, &raw]).len(), 3 * raw.len());
        assert!(shared.weight() >= 2 * raw.len());
        let back = Element::new("d", "urn:y").raw(twice).reparsed().unwrap();
        assert_eq!(back.elements().count(), 2);
        assert_eq!(back.elements().next().unwrap().get_attr("name"), Some("a'b\"c<d>&e]]>\u{fffd}f"));
        // The weight counts the raw bytes.
        let small = Element::new("d", "urn:y");
        let big = Element::new("d", "urn:y").raw(raw.clone());
        assert!(big.weight() >= small.weight() + raw.len(), "{} vs {}", big.weight(), small.weight());
        assert!(RawXml::default().is_empty() && RawWriter::new().is_empty());
    }

    /// Elements written piece by piece are what the same tree serializes to: namespaces
    /// declared where the parent's differ, values escaped, open elements closed by
    /// `finish`; an element written ahead and left open ([`RawOpen`]) is taken up under
    /// any parent with its namespace declared only where needed, and is then closed by
    /// the writer that took it.
    #[test]
    fn elements_written_piece_by_piece_equal_the_tree() {
        let hostile = "a'b\"c<d>&e]]>\u{1}f";
        let child = Element::new("p", "urn:x:rtp").attr("v", hostile).text(hostile);
        let tree = Element::new("content", "urn:x:j")
            .attr("name", hostile)
            .child(Element::new("description", "urn:x:rtp").attr("media", "audio").child(child.clone()).child(Element::new("mux", "urn:x:rtp")))
            .child(Element::new("empty", "urn:x:j"))
            .text(hostile);
        let mut w = RawWriter::new();
        w.start("content", "urn:x:j");
        w.attr("name", hostile);
        w.start("description", "urn:x:rtp");
        w.attr("media", "audio");
        w.element(&child);
        w.start("mux", "urn:x:rtp");
        w.end();
        w.end();
        w.start("empty", "urn:x:j");
        w.end();
        w.text(hostile);
        // `content` is left open: finish closes it.
        let raw = w.finish();
        assert_eq!(format!("{raw:?}"), format!("Raw({:?})", tree.to_xml()), "byte for byte");

        // Written ahead and left open inside the description, then taken up: under a
        // parent of the same namespace no declaration, under another one declared.
        let mut w = RawWriter::new();
        w.start_element(&tree);
        w.start("description", "urn:x:rtp");
        w.attr("media", "audio");
        w.element(&child);
        let open = w.finish_open().expect("one top-level element");
        assert!(!open.is_empty() && open.len() > "<content".len());
        for parent in ["urn:x:j", "urn:x:other"] {
            let mut w = RawWriter::new();
            w.start("jingle", parent);
            w.resume(&open);
            w.start("mux", "urn:x:rtp");
            w.end();
            w.end(); // description
            w.start("empty", "urn:x:j");
            w.end();
            w.text(hostile);
            w.end(); // content
            let got = w.finish();
            let want = Element::new("jingle", parent).child(tree.clone());
            assert_eq!(format!("{got:?}"), format!("Raw({:?})", want.to_xml()), "under {parent}");
        }
        // Taken up at the top level, it declares its namespace; a writer closes it.
        let mut w = RawWriter::new();
        w.resume(&open);
        let text = format!("{:?}", w.finish());
        assert!(text.starts_with("Raw(\"<content xmlns='urn:x:j' name="), "{text}");
        assert!(text.ends_with("</description></content>\")"), "{text}");
        // Only a single element written here can be left open.
        let mut two = RawWriter::new();
        two.start("a", "urn:x");
        two.end();
        two.start("b", "urn:x");
        assert!(two.finish_open().is_none());
        let mut shared = RawWriter::new();
        shared.start("a", "urn:x");
        shared.share(&raw);
        assert!(shared.finish_open().is_none());
        let mut closed = RawWriter::new();
        closed.start("a", "urn:x:c");
        closed.end();
        let closed = closed.finish_open().expect("a closed element");
        let mut w = RawWriter::new();
        w.start("p", "urn:x:c");
        w.resume(&closed);
        assert_eq!(format!("{:?}", w.finish()), "Raw(\"<p xmlns='urn:x:c'><a/></p>\")");
        // Ending more than was started changes nothing.
        let mut w = RawWriter::new();
        w.end();
        w.start("a", "urn:x");
        w.end();
        w.end();
        assert_eq!(format!("{:?}", w.finish()), "Raw(\"<a xmlns='urn:x'/>\")");
    }

    /// A stanza written ahead serializes like the tree it stands for, for any stream
    /// namespace, with escaped attributes; its bytes are the same; a missing attribute
    /// can be added later (the event loop adds `from`).
    #[test]
    fn raw_elements_serialize_like_trees() {
        let hostile = "x'y\"<&>\u{1}";
        let body_tree = Element::new("query", "urn:x").attr("k", hostile).text(hostile);
        let mut w = RawWriter::new();
        w.element(&body_tree);
        let mut raw = RawElement::new("iq", "jabber:client", w.finish()).attr("type", "set").attr("id", hostile);
        let mut tree = Element::new("iq", "jabber:client").attr("type", "set").attr("id", hostile).child(body_tree);
        raw.set_attr("from", "f@x/y");
        tree.set_attr("from", "f@x/y");
        raw.set_attr("type", "get");
        tree.set_attr("type", "get");
        let mut scratch = String::new();
        for ns in ["jabber:client", "jabber:component:accept", ""] {
            assert_eq!(raw.to_xml_in(ns), tree.to_xml_in(ns));
            let mut bytes = Vec::new();
            Outgoing::from(raw.clone()).write_bytes(&mut bytes, ns, &mut scratch);
            assert_eq!(String::from_utf8(bytes).unwrap(), tree.to_xml_in(ns));
        }
        assert_eq!(raw.reparsed().unwrap(), tree.reparsed().unwrap());
        assert_eq!(raw.head().attrs, tree.attrs);
        let out = Outgoing::from(raw);
        assert_eq!((out.name(), out.ns(), out.get_attr("id")), ("iq", "jabber:client", Some(hostile)));
        assert_eq!(out.into_tree().unwrap(), tree.reparsed().unwrap(), "as a receiver parses it");
        let empty = RawElement::new("presence", "jabber:client", RawXml::default());
        assert_eq!(empty.to_xml_in("jabber:client"), "<presence/>");
    }

    #[test]
    fn escapes_and_namespaces() {
        let el = Element::new("iq", "jabber:client")
            .attr("id", "a'b\"<&>")
            .child(Element::new("query", "urn:x").text("1 < 2 & 3 > 0"));
        assert_eq!(
            el.to_xml_in("jabber:client"),
            "<iq id='a&apos;b&quot;&lt;&amp;&gt;'><query xmlns='urn:x'>1 &lt; 2 &amp; 3 &gt; 0</query></iq>"
        );
        assert_eq!(el.to_xml().starts_with("<iq xmlns='jabber:client'"), true);
    }

    /// Found by the `framer` fuzz target: a refusal echoing the `id` of an unparsable
    /// stanza with a U+0001 in it was not well-formed (the same holds for any value from
    /// JSON, e.g. a source name `"p1-\u0001"`). Such characters become U+FFFD.
    #[test]
    fn characters_xml_forbids_are_replaced_so_the_output_always_parses() {
        let bad = "a\u{1}b\u{0}c\u{b}\u{1f}\u{fffe}\u{ffff}d\t\n\r\u{7f}\u{85}é";
        let el = Element::new("iq", "jabber:client").attr("id", bad).child(Element::new("body", "jabber:client").text(bad));
        let xml = el.to_xml();
        let back = crate::xml::parse_fragment(&xml).expect("well-formed");
        let want = "a\u{fffd}b\u{fffd}c\u{fffd}\u{fffd}\u{fffd}\u{fffd}d";
        assert!(back.get_attr("id").unwrap().starts_with(want), "{:?}", back.get_attr("id"));
        assert!(back.get_attr("id").unwrap().ends_with("\u{7f}\u{85}é"));
        assert!(back.get_child("body", "jabber:client").unwrap().text_content().starts_with(want));
        assert!((0..=0x10ffff).filter_map(char::from_u32).filter(|c| !is_xml_char(*c)).count() == 31);
    }
}
