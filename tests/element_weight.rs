//! `Element::weight` against what the allocator is really asked for: a counting global
//! allocator measures the heap a parsed stanza holds, for the shapes the inbox budget
//! must hold to (flat empty elements at the node cap, attributes, text, real captures).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use jicofo::xml::{framer::StreamHeader, parse_stanza, Element, MAX_NODES};

/// Bytes requested and not yet freed, and the blocks they are in.
static LIVE: AtomicIsize = AtomicIsize::new(0);
static BLOCKS: AtomicIsize = AtomicIsize::new(0);

struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::SeqCst);
        BLOCKS.fetch_add(1, Ordering::SeqCst);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::SeqCst);
        BLOCKS.fetch_sub(1, Ordering::SeqCst);
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::SeqCst);
        System.realloc(p, l, new)
    }
}

#[global_allocator]
static A: Counting = Counting;

fn header() -> StreamHeader {
    StreamHeader {
        attrs: vec![],
        default_ns: "jabber:client".into(),
        prefixes: vec![("stream".into(), "http://etherx.jabber.org/streams".into())],
    }
}

/// (requested bytes, blocks) the parsed tree of `text` holds.
fn held(text: &str, h: &StreamHeader) -> (Element, usize, usize) {
    let (l0, b0) = (LIVE.load(Ordering::SeqCst), BLOCKS.load(Ordering::SeqCst));
    let el = parse_stanza(text, h).unwrap();
    let (l1, b1) = (LIVE.load(Ordering::SeqCst), BLOCKS.load(Ordering::SeqCst));
    (el, (l1 - l0) as usize, (b1 - b0) as usize)
}

#[test]
fn the_weight_follows_the_heap_a_parsed_stanza_holds() {
    let h = header();
    let captures = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/captures")).unwrap();
    let mut cases: Vec<(String, String)> = captures
        .map(|e| {
            let p = e.unwrap().path();
            let t = std::fs::read_to_string(&p).unwrap();
            let start = t.find("-->").map(|i| i + 3).unwrap_or(0);
            (p.file_name().unwrap().to_string_lossy().into_owned(), t[start..].trim().to_string())
        })
        .collect();
    cases.push(("flat at the node cap".into(), format!("<iq id='x'>{}</iq>", "<a/>".repeat(MAX_NODES - 2))));
    cases.push((
        "attributes".into(),
        format!("<iq>{}</iq>", "<a x='1' y='22' z='333'/>".repeat(MAX_NODES / 4 - 1)),
    ));
    cases.push(("text".into(), format!("<iq>{}</iq>", "some text<b/>".repeat(MAX_NODES / 2 - 1))));
    cases.push(("one long text".into(), format!("<message><body>{}</body></message>", "x".repeat(200_000))));
    for (name, text) in cases {
        let (el, requested, blocks) = held(&text, &h);
        // What glibc hands out for these requests: at least the bytes, plus a header per block.
        let lower = requested + 8 * blocks;
        let upper = requested + 32 * blocks;
        let w = el.weight() - std::mem::size_of::<jicofo::xml::Node>();
        assert!(w >= lower && w <= upper, "{name}: weight {w}, heap {requested} in {blocks} blocks");
        println!("{name}: {} bytes of text, weight {w} ({} per byte)", text.len(), w / text.len().max(1));
    }
    // The heaviest stanza the parser lets through stays under 2 MB: the budgets rely on it.
    let (el, _, _) = held(&format!("<iq id='x'>{}</iq>", "<a/>".repeat(MAX_NODES - 2)), &h);
    assert!(el.weight() < 2 << 20, "{}", el.weight());
}
