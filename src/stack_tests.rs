//! The stack budget of a conference thread: on a thread with half of
//! [`STACK_SIZE`] (the other half is left for the conference code that holds the
//! value), the deepest stanza the framer and parser accept survives parsing and every
//! recursive `Element` operation (clone, equality, serialization, `Debug`, drop), and
//! the deepest JSON sources serde_json accepts survive `ConferenceSources::from_json`.
//! Input one level deeper is skipped by the framer or refused by the parser.

use crate::conference::env::STACK_SIZE;
use crate::xmpp::jingle::sources::ConferenceSources;
use crate::xml::framer::{Frame, Framer, SkipReason, StreamHeader};
use crate::xml::{parse_fragment, parse_stanza, Element, ParseError, DEFAULT_MAX_STANZA, MAX_DEPTH};
use crate::xmpp::ns;

/// Run `f` on a thread with `stack` bytes of stack (a stack overflow aborts the test binary).
fn on_stack<T: Send + 'static>(stack: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new().stack_size(stack).spawn(f).unwrap().join().unwrap()
}

/// A stanza nesting `levels` elements (the stanza element is level 1), each level
/// with attributes, text and a sibling, so that every recursive path is exercised.
fn deep_stanza(levels: usize) -> String {
    let mut s = String::from("<iq type='set' id='deep' from='a@b/c' to='focus.meet.test'>");
    for i in 1..levels {
        s.push_str(&format!("<e{} xmlns='urn:x:{}' a='{}&amp;' b=\"&apos;\">t{}", i % 7, i % 3, i, i));
        if i + 1 < levels {
            s.push_str("<s/>");
        }
    }
    s.push_str("leaf");
    for i in (1..levels).rev() {
        s.push_str(&format!("</e{}>", i % 7));
    }
    s.push_str("</iq>");
    s
}

fn client_header() -> StreamHeader {
    StreamHeader { default_ns: ns::CLIENT.into(), prefixes: vec![("stream".into(), ns::STREAM.into())], ..Default::default() }
}

fn depth_of(el: &Element) -> usize {
    1 + el.elements().map(depth_of).max().unwrap_or(0)
}

#[test]
fn the_deepest_accepted_stanza_fits_half_a_conference_stack() {
    let at_limit = deep_stanza(MAX_DEPTH);
    let over = deep_stanza(MAX_DEPTH + 1);
    // The framer delivers the one at the limit and skips the one over it.
    let mut f = Framer::new(DEFAULT_MAX_STANZA);
    f.feed(b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>");
    f.feed(at_limit.as_bytes());
    f.feed(over.as_bytes());
    assert!(matches!(f.next_frame(), Ok(Some(Frame::StreamHeader(_)))));
    assert_eq!(f.next_frame(), Ok(Some(Frame::Stanza(at_limit.clone()))));
    match f.next_frame() {
        Ok(Some(Frame::Skipped(s))) => assert_eq!(s.reason, SkipReason::TooDeep { max: MAX_DEPTH }),
        other => panic!("{other:?}"),
    }
    let text = at_limit.clone();
    let out = on_stack(STACK_SIZE / 2, move || {
        let el = parse_stanza(&text, &client_header()).expect("the deepest accepted stanza parses");
        let copy = el.clone();
        assert!(copy == el);
        let xml = copy.to_xml();
        let xml_in = copy.to_xml_in(ns::CLIENT);
        let debug = format!("{copy:?}");
        let display = copy.to_string();
        let again = parse_stanza(&xml_in, &client_header()).unwrap();
        assert_eq!(again, el);
        let mut inner = &el;
        while let Some(c) = inner.first_element() {
            inner = c;
        }
        let leaf_text = inner.text_content();
        let depth = depth_of(&el);
        drop(copy);
        drop(again);
        drop(el);
        (depth, xml.len(), debug.len(), display.len(), leaf_text)
    });
    assert_eq!(out.0, MAX_DEPTH);
    assert!(out.1 > at_limit.len() / 2 && out.2 > 0 && out.3 == out.1);
    assert_eq!(out.4, "");
    // The parser refuses the deeper one on its own too (for callers without the framer).
    let out = on_stack(STACK_SIZE / 2, move || {
        (parse_stanza(&over, &client_header()).err(), parse_fragment(&format!("{}{}", "<a>".repeat(1_000_000), "</a>".repeat(1_000_000))).err())
    });
    assert_eq!(out, (Some(ParseError::TooDeep), Some(ParseError::TooDeep)));
}

/// `{"sources":{"a": …}}` with `levels` nested arrays or objects in place of the owner's sources.
fn deep_json(levels: usize, objects: bool) -> String {
    let (open, close) = if objects { ("{\"k\":", "}") } else { ("[", "]") };
    format!("{{\"sources\":{{\"a\":{}1{}}}}}", open.repeat(levels), close.repeat(levels))
}

/// The nesting was refused: by the sources' own depth pre-scan (`MAX_JSON_DEPTH`) or,
/// should that ever be lifted, by serde_json's recursion limit.
fn recursion_limit_hit(r: &Result<ConferenceSources, impl std::fmt::Display>) -> bool {
    matches!(r, Err(e) if e.to_string().contains("recursion limit") || e.to_string().contains("nested too deep"))
}

#[test]
fn the_deepest_accepted_json_sources_fit_half_a_conference_stack() {
    let out = on_stack(STACK_SIZE / 2, || {
        let mut deepest = Vec::new();
        for objects in [false, true] {
            // Find the deepest nesting serde_json still parses (it has a recursion limit).
            let mut n = 1;
            while n < 10_000 && !recursion_limit_hit(&ConferenceSources::from_json(&deep_json(n, objects))) {
                n += 1;
            }
            let accepted = n - 1;
            // At that depth it parses (and fails only as sources), built and dropped here.
            let r = ConferenceSources::from_json(&deep_json(accepted, objects));
            assert!(r.is_err() && !recursion_limit_hit(&r));
            deepest.push(accepted);
        }
        // Far deeper input is refused (here by its size, as 2 MB of text), not a crash.
        let r = ConferenceSources::from_json(&deep_json(1_000_000, false));
        (deepest, r.is_err())
    });
    let (deepest, refused) = out;
    assert!(refused);
    for d in deepest {
        assert!((2..200).contains(&d), "JSON sources must keep a recursion limit (accepted {d} levels)");
    }
}
