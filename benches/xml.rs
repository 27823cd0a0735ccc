//! XML layer benchmark (`cargo bench --bench xml`, no external harness).
//!
//! Builds a ~50 MB client stream by repeating the captured lib-jitsi-meet stanzas
//! (tests/fixtures/captures, leading comment stripped), then measures, taking the
//! median of 5 runs each:
//!  (a) the framer alone, fed 16 KiB chunks: MB/s and stanzas/s;
//!  (b) framer + `parse_stanza` on every stanza: MB/s and stanzas/s.
//! Prints a small table. Then the offers of a room of 500 (`offer_rows`): each
//! participant with the captured session-accept's sources, session-initiates for 100
//! receivers written to text, as element trees built from a filtered copy (the focus
//! before the per-owner cache) and from the cached encodings (the focus now): MB/s of
//! text, offers/s, and the time to build one (without writing it: the conference
//! thread's share).

use std::hint::black_box;
use std::time::Instant;

use jicofo::xml::{parse_stanza, Frame, Framer, DEFAULT_MAX_STANZA};

const TARGET_BYTES: usize = 50 * 1000 * 1000;
const CHUNK: usize = 16 * 1024;
const RUNS: usize = 5;

fn load_stanzas() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/captures");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .expect("fixtures")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("xml"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).expect("fixture");
            let body = match text.find("-->") {
                Some(i) => &text[i + 3..],
                None => &text[..],
            };
            body.trim().to_string()
        })
        .collect()
}

fn build_stream(stanzas: &[String]) -> (Vec<u8>, usize) {
    let mut s = String::from(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
         xmlns:stream='http://etherx.jabber.org/streams' id='abc' from='meet.test' version='1.0'>",
    );
    let mut n = 0;
    while s.len() < TARGET_BYTES {
        for st in stanzas {
            s.push_str(st);
            s.push('\n');
            n += 1;
        }
    }
    s.push_str("</stream:stream>");
    (s.into_bytes(), n)
}

/// Frame the whole stream in 16 KiB chunks; returns the number of stanzas.
fn frame_only(data: &[u8]) -> usize {
    let mut f = Framer::new(DEFAULT_MAX_STANZA);
    let mut n = 0;
    for chunk in data.chunks(CHUNK) {
        f.feed(chunk);
        while let Some(fr) = f.next_frame().expect("framing") {
            if let Frame::Stanza(s) = fr {
                black_box(&s);
                n += 1;
            }
        }
    }
    n
}

/// Frame and parse every stanza; returns the number of stanzas.
fn frame_and_parse(data: &[u8]) -> usize {
    let mut f = Framer::new(DEFAULT_MAX_STANZA);
    let mut n = 0;
    for chunk in data.chunks(CHUNK) {
        f.feed(chunk);
        while let Some(fr) = f.next_frame().expect("framing") {
            if let Frame::Stanza(s) = fr {
                let el = parse_stanza(&s, f.header().expect("header")).expect("parse");
                black_box(el);
                n += 1;
            }
        }
    }
    n
}

fn median_secs(mut run: impl FnMut() -> usize, expect: usize) -> f64 {
    let mut times: Vec<f64> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            let n = run();
            let dt = t.elapsed().as_secs_f64();
            assert_eq!(n, expect);
            dt
        })
        .collect();
    times.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    times[RUNS / 2]
}

fn main() {
    let stanzas = load_stanzas();
    let (data, n) = build_stream(&stanzas);
    let mb = data.len() as f64 / 1e6;
    println!(
        "stream: {:.1} MB, {} stanzas ({} distinct captures, avg {} bytes), {} KiB chunks, median of {}",
        mb,
        n,
        stanzas.len(),
        data.len() / n,
        CHUNK / 1024,
        RUNS
    );
    let t_frame = median_secs(|| frame_only(&data), n);
    let t_parse = median_secs(|| frame_and_parse(&data), n);
    println!("{:<24} {:>10} {:>12} {:>10}", "benchmark", "MB/s", "stanzas/s", "time (s)");
    for (name, t) in [("framer", t_frame), ("framer + parse_stanza", t_parse)] {
        println!("{:<24} {:>10.1} {:>12.0} {:>10.3}", name, mb / t, n as f64 / t, t);
    }
    offer_rows();
}

/// Participants in the room of the offer rows, and receivers written per run.
const ROOM: usize = 500;
const RECEIVERS: usize = 100;

/// The offers of a room of [`ROOM`]: [`RECEIVERS`] session-initiates (XML sources, then
/// JSON sources) written to text per run, the tree way and the cached way; MB/s of
/// output and offers/s. Also the cost of encoding every owner once (a cold cache).
fn offer_rows() {
    use jicofo::xml::{parse_fragment, Element};
    use jicofo::xmpp::jingle::codecs::{offer_contents, Features};
    use jicofo::xmpp::jingle::stanzas::{tree, JingleRequest, Offer};
    use jicofo::xmpp::jingle::{ConferenceSources, SourceView};
    use jicofo::xmpp::ns;

    // The session-accept jicofo-load answers with (2021 lib-jitsi-meet: 7 SSRCs, 4 groups).
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/captures/lyno-session-accept.xml")).expect("capture");
    let accept = text.find("-->").map_or(&text[..], |i| &text[i + 3..]).trim();
    let captured = JingleRequest::parse(&parse_fragment(accept).expect("capture")).expect("jingle").sources().expect("sources");
    let room = |n: usize| {
        let mut c = ConferenceSources::new();
        for i in 0..n {
            let nick = format!("p{i:03}");
            let mut set = captured.clone();
            let off = |x: u32| x.wrapping_add(16 * i as u32);
            for s in &mut set.sources {
                s.ssrc = off(s.ssrc);
                s.msid = s.msid.as_ref().map(|m| format!("{nick}-{m}"));
            }
            for g in &mut set.groups {
                g.ssrcs.iter_mut().for_each(|x| *x = off(*x));
            }
            c.try_add(nick.as_str(), set).expect("valid sources");
        }
        c
    };
    let conference = room(ROOM);
    let bridge = ConferenceSources::single(jicofo::xmpp::jingle::sources::SourceOwner::Bridge, captured.filter_media(true, false));
    let transport = Element::new("transport", ns::ICE_UDP).attr("ufrag", "4hc3m1fq0i4ct6").attr("pwd", "2v4d5vl8l5t9tbbmrs1o2v7ad");
    let nicks: Vec<String> = (0..RECEIVERS).map(|i| format!("p{i:03}")).collect();
    // Build the stanza (what the conference thread does) and, with `write`, serialize it
    // (what the event loop does); returns the bytes written.
    let run = |conference: &ConferenceSources, json: bool, cached: bool, write: bool| -> (usize, usize) {
        let f = Features { json_sources: json, ..Features::default_set() };
        let mut bytes = 0;
        for nick in &nicks {
            let o = Offer {
                contents: offer_contents(&f),
                bridge_transport: transport.clone(),
                sctp_port: Some(5000),
                sources: SourceView::new(conference).except(nick).plus(&bridge).media(f.audio, f.video),
                json,
                start_muted: (false, false),
                bridge_session_id: "0c9f3b1e".into(),
                region: None,
            };
            let iq = if cached { o.session_initiate("focus@auth.meet.test/focus", nick, "sid", "id") } else { tree::session_initiate(&o, "focus@auth.meet.test/focus", nick, "sid", "id") };
            if write {
                bytes += black_box(iq.to_xml_in(ns::CLIENT)).len();
            } else {
                black_box(iq);
            }
        }
        (bytes, nicks.len())
    };
    println!();
    println!("offers in a room of {ROOM} ({} receivers per run, median of {RUNS})", RECEIVERS);
    println!(
        "{:<30} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "benchmark", "MB/s", "offers/s", "KB/offer", "ms/offer", "build ms"
    );
    for json in [false, true] {
        for cached in [false, true] {
            let mut bytes = 0;
            let t = median_secs(
                || {
                    let (b, n) = run(&conference, json, cached, true);
                    bytes = b;
                    n
                },
                RECEIVERS,
            );
            let build = median_secs(|| run(&conference, json, cached, false).1, RECEIVERS);
            let name = format!("offer, {} sources, {}", if json { "JSON" } else { "XML" }, if cached { "cached" } else { "tree" });
            let n = RECEIVERS as f64;
            println!(
                "{:<30} {:>10.1} {:>10.0} {:>10.1} {:>10.3} {:>10.3}",
                name,
                bytes as f64 / 1e6 / t,
                n / t,
                bytes as f64 / n / 1e3,
                t / n * 1e3,
                build / n * 1e3
            );
        }
    }
    // A cold cache: the first offer after every owner's sources changed encodes them all.
    let mut cold = Vec::new();
    for _ in 0..RUNS {
        let fresh = room(ROOM);
        let view = SourceView::new(&fresh).except("p000").plus(&bridge);
        let t = Instant::now();
        black_box(view.jingle(jicofo::xmpp::jingle::MediaType::Video));
        cold.push(t.elapsed().as_secs_f64());
    }
    cold.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    println!("{:<30} {:>10} {:>10} {:>10} {:>10.3}", "cache fill: encode 500 owners", "", "", "", cold[RUNS / 2] * 1e3);
}
