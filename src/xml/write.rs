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
/// ```compile_fail
/// // Raw XML cannot be made from a string: no conversion, no public field.
/// let raw: jicofo::xml::RawXml = String::from("<x/>").into();
/// ```
#[derive(Debug, Default)]
pub struct RawWriter {
    out: String,
}

impl RawWriter {
    /// An empty writer.
    pub fn new() -> RawWriter {
        RawWriter::default()
    }

    /// An empty writer with room for `bytes`.
    pub fn with_capacity(bytes: usize) -> RawWriter {
        RawWriter { out: String::with_capacity(bytes) }
    }

    /// Append `el` as a standalone element (declaring its namespace).
    pub fn element(&mut self, el: &Element) {
        write_element(&mut self.out, el, "");
    }

    /// Append character data, escaped.
    pub fn text(&mut self, text: &str) {
        escape_text(&mut self.out, text);
    }

    /// Append XML written earlier (a copy).
    pub fn raw(&mut self, raw: &RawXml) {
        raw.write_to(&mut self.out);
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.out.len()
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// What was written.
    pub fn finish(self) -> RawXml {
        RawXml(Repr::One(Arc::from(self.out)))
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
