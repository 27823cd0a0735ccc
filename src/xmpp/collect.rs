//! The toolkit of the typed parsers that read a stanza's events ([`crate::xml::Event`])
//! instead of a tree: [`Depth`] to follow the events below one element (and skip what is
//! not read), [`TextReader`]/[`TextBuf`] for an element's text as
//! [`Element::text_content`](crate::xml::Element::text_content) gives it, and attribute
//! helpers. Each typed parser is a reader of the events below its element that says
//! [`Step::Closed`] at that element's end.
//!
//! Every typed parser of `xmpp::incoming` is written once, against these events, and
//! reads both a stanza's events straight from the parser (no tree) and a tree replayed as
//! events (`xml::parse::walk`): the two give the same value by construction. Where a tree
//! differs from the events it came from (whitespace-only text between child elements is
//! dropped, adjacent character data merged), [`TextBuf`] reads both the same way.

use crate::xml::Event;

/// The first attribute named `name`.
pub fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Move the first attribute named `name` out of `attrs` (its slot left empty).
pub fn take_attr(attrs: &mut [(String, String)], name: &str) -> Option<String> {
    attrs.iter_mut().find(|(k, _)| k == name).map(|(k, v)| {
        k.clear();
        std::mem::take(v)
    })
}

/// Character data directly inside one element, read as the tree would keep it: adjacent
/// pieces merged, and once the element turns out to have child elements, the pieces that
/// are whitespace only left out (the tree drops them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TextBuf {
    pieces: Vec<String>,
    /// The last thing seen was character data (a piece continues).
    in_text: bool,
    has_children: bool,
}

impl TextBuf {
    /// Character data directly inside the element.
    pub fn text(&mut self, t: String) {
        match self.pieces.last_mut() {
            Some(last) if self.in_text => last.push_str(&t),
            _ => self.pieces.push(t),
        }
        self.in_text = true;
    }

    /// A child element opened (or closed) inside the element.
    pub fn child(&mut self) {
        self.in_text = false;
        self.has_children = true;
    }

    /// The text content, as `Element::text_content` of the tree.
    pub fn finish(self) -> String {
        let keep = |p: &String| !self.has_children || !p.chars().all(char::is_whitespace);
        let mut pieces = self.pieces.iter().filter(|p| keep(p));
        let Some(first) = pieces.next() else { return String::new() };
        let mut out = first.clone();
        for p in pieces {
            out.push_str(p);
        }
        out
    }
}

/// What a reader of the events below one element says after each event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Still inside the element.
    Inside,
    /// The element has closed (its own `End`): the reader is done.
    Closed,
}

/// Counts the open elements below one element, to tell its own `End` (the first `End`
/// at depth 0) from its children's. The readers below are built on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Depth(pub usize);

impl Depth {
    /// Follow one event; [`Step::Closed`] at the element's own end.
    pub fn follow(&mut self, ev: &Event) -> Step {
        match ev {
            Event::Start { .. } => self.0 += 1,
            Event::Text(_) => {}
            Event::End => {
                if self.0 == 0 {
                    return Step::Closed;
                }
                self.0 -= 1;
            }
        }
        Step::Inside
    }
}

/// Reads the text content of one element from the events below it (its own start not
/// given): what `Element::text_content` gives for it.
#[derive(Clone, Debug, Default)]
pub struct TextReader {
    buf: TextBuf,
    depth: Depth,
}

impl TextReader {
    /// The next event below the element.
    pub fn event(&mut self, ev: Event) -> Step {
        match (&ev, self.depth.0) {
            (Event::Text(_), 0) => {
                if let Event::Text(t) = ev {
                    self.buf.text(t);
                }
                return Step::Inside;
            }
            (Event::Start { .. }, 0) => self.buf.child(),
            (Event::End, 1) => self.buf.child(),
            _ => {}
        }
        self.depth.follow(&ev)
    }

    /// The text content.
    pub fn finish(self) -> String {
        self.buf.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{parse_fragment, Element};

    /// The text of every `<t>` child of the root, in order, read from `events` (the root's
    /// own start first).
    fn texts(events: Vec<Event>) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur: Option<TextReader> = None;
        let mut skip = Depth::default();
        let mut skipping = false;
        for ev in events.into_iter().skip(1) {
            if let Some(r) = &mut cur {
                if r.event(ev) == Step::Closed {
                    out.push(cur.take().unwrap().finish());
                }
                continue;
            }
            if skipping {
                if skip.follow(&ev) == Step::Closed {
                    skipping = false;
                }
                continue;
            }
            match ev {
                Event::Start { name, .. } if name == "t" => cur = Some(TextReader::default()),
                Event::Start { .. } => {
                    skipping = true;
                    skip = Depth::default();
                }
                _ => {}
            }
        }
        out
    }

    fn events_of_text(text: &str) -> Vec<Event> {
        let mut r = crate::xml::Reader::fragment(text);
        let mut v = Vec::new();
        while let Some(ev) = r.next().unwrap() {
            v.push(ev);
        }
        v
    }

    fn events_of_tree(el: &Element) -> Vec<Event> {
        let mut v = Vec::new();
        crate::xml::parse::walk(el, &mut |ev| v.push(ev));
        v
    }

    #[test]
    fn text_reads_as_the_tree_keeps_it() {
        let text = "<r><t>  a b </t><t> <x/> y <x>z</x>  </t><t>\n</t><t/><u><t>skipped</t></u><t>p<![CDATA[&q]]>r</t></r>";
        let el = parse_fragment(text).unwrap();
        let want: Vec<String> = el.children_named("t", "").map(|t| t.text_content()).collect();
        assert_eq!(want, vec!["  a b ", " y ", "\n", "", "p&qr"]);
        assert_eq!(texts(events_of_text(text)), want);
        assert_eq!(texts(events_of_tree(&el)), want);
    }

    #[test]
    fn attributes_are_found_and_taken() {
        let mut a = vec![("id".to_string(), "1".to_string()), ("to".into(), "x".into())];
        assert_eq!(attr(&a, "to"), Some("x"));
        assert_eq!(take_attr(&mut a, "id").as_deref(), Some("1"));
        assert_eq!(attr(&a, "id"), None);
        assert_eq!(take_attr(&mut a, "nope"), None);
    }
}
