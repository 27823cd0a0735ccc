//! The serializer: an [`Element`] tree to XML text with correct escaping.
//!
//! Namespaces are written as default-namespace declarations (`xmlns='…'`) on every
//! element whose namespace differs from its parent's; prefixes are never invented.
//! Attribute values use `'` quotes and escape `& < > ' "`; text escapes `& < >`.

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
            c => out.push(c),
        }
    }
}

/// Escape character data.
pub fn escape_text(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
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
}
