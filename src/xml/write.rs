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
        }
    }
    out.push_str("</");
    out.push_str(&el.name);
    out.push('>');
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
