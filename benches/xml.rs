//! XML layer benchmark (`cargo bench --bench xml`, no external harness).
//!
//! Builds a ~50 MB client stream by repeating the captured lib-jitsi-meet stanzas
//! (tests/fixtures/captures, leading comment stripped), then measures, taking the
//! median of 5 runs each:
//!  (a) the framer alone, fed 16 KiB chunks: MB/s and stanzas/s;
//!  (b) framer + `parse_stanza` on every stanza: MB/s and stanzas/s;
//!  (c) framer + `xmpp::incoming::parse` (what the focus does: classify, the hot kinds
//!      typed without a tree).
//! Then per hot kind (the stanzas the focus receives most), three ways of getting the
//! typed value from the stanza's text, each timed in CPU time of the thread (so other
//! load on the machine does not count), median of 9 rounds of about 0.2 s, the three
//! interleaved:
//!  - `tree`: `parse_stanza` only (the tree, no typed value yet);
//!  - `tree + typed`: the tree, then the typed value read from it
//!    (`Incoming::from_element`, as the focus did before the typed fast path);
//!  - `typed`: `incoming::parse`, the typed value straight from the parser's events.
//! Prints a small table: MB/s and stanzas/s per kind and way.
//! Then the offers of a room of 500 (`offer_rows`): each
//! participant with the captured session-accept's sources, session-initiates for 100
//! receivers written to text, as element trees built from a filtered copy (the focus
//! before the per-owner cache) and from the cached encodings (the focus now): MB/s of
//! text, offers/s, and the time to build one (without writing it: the conference
//! thread's share). Then a storm-like room of 5 (`small_room_rows`): per invitation the
//! offer and the Colibri2 allocation, as trees and written directly, µs per stanza.
//! `XML_BENCH=offers` runs only the offer rows.

use std::hint::black_box;
use std::time::Instant;

use jicofo::xml::{parse_stanza, Frame, Framer, StreamHeader, DEFAULT_MAX_STANZA, MAX_NODES};
use jicofo::xmpp::incoming::{self, Incoming};

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

/// Frame, parse and classify every stanza as the focus does; returns the number of stanzas.
fn frame_and_classify(data: &[u8]) -> usize {
    let mut f = Framer::new(DEFAULT_MAX_STANZA);
    let mut n = 0;
    for chunk in data.chunks(CHUNK) {
        f.feed(chunk);
        while let Some(fr) = f.next_frame().expect("framing") {
            if let Frame::Stanza(s) = fr {
                let st = incoming::parse(&s, f.header().expect("header"), MAX_NODES).expect("parse");
                black_box(st);
                n += 1;
            }
        }
    }
    n
}

/// CPU time of this thread so far (Linux: /proc/thread-self/schedstat, in ns); the
/// wall clock elsewhere.
fn cpu_now() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat").ok()?.split_whitespace().next()?.parse().ok()
}

/// Median seconds of CPU time per pass over `stanzas`, for each of `ways`: [`per_op`]
/// with one pass as the operation.
fn per_pass(stanzas: &[String], ways: &[&dyn Fn(&str)]) -> Vec<f64> {
    let passes: Vec<Box<dyn Fn() -> usize + '_>> = ways
        .iter()
        .map(|f| {
            Box::new(move || {
                for s in stanzas {
                    f(s);
                }
                stanzas.len()
            }) as Box<dyn Fn() -> usize + '_>
        })
        .collect();
    let refs: Vec<&dyn Fn() -> usize> = passes.iter().map(|f| f.as_ref()).collect();
    per_op(&refs)
}

/// The hot kinds, as the focus receives them (from captures, with the MUC's additions
/// for presences; Colibri2 answers and brewery presences as jvb-sim and JVB send them).
fn hot_kinds(caps: &[String]) -> Vec<(&'static str, Vec<String>)> {
    let find = |what: &str| caps.iter().filter(|s| s.contains(what)).cloned().collect::<Vec<_>>();
    let muc = "<x xmlns='http://jabber.org/protocol/muc#user'><item jid='abc@meet.test/xyz' affiliation='none' role='participant'/></x>";
    let presences: Vec<String> = find("<presence")
        .into_iter()
        .map(|p| {
            let p = p.replacen("<presence", "<presence from='room1@conference.meet.test/19c373a4'", 1);
            match p.rfind("</presence>") {
                Some(i) => format!("{}{muc}{}", &p[..i], &p[i..]),
                None => p,
            }
        })
        .collect();
    let accepts = find("session-accept");
    let source_add: Vec<String> = accepts.iter().map(|a| a.replace("session-accept", "source-add")).collect();
    let source_remove: Vec<String> = accepts.iter().map(|a| a.replace("session-accept", "source-remove")).collect();
    let results: Vec<String> = (0..8)
        .map(|i| format!("<iq type='result' id='{:016x}' from='room1@conference.meet.test/{:08x}' to='focus@auth.meet.test/focus'/>", 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(i + 1), i * 7919))
        .collect();
    let colibri2 = vec![format!(
        "<iq type='result' id='a1b2c3d4e5f60718' from='jvbbrewery@internal.auth.meet.test/jvb1' to='focus@auth.meet.test/focus'>\
         <conference-modified xmlns='jitsi:colibri2' meeting-id='4e8b3c1a-2f3d-4c5e-9a7b-1c2d3e4f5a6b'><endpoint id='19c373a4'><transport>\
         <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='4hc3m1fq0i4ct6' pwd='2v4d5vl8l5t9tbbmrs1o2v7ad'><rtcp-mux/>\
         <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='actpass' cryptex='false'>8E:2C:4A:19:7B:12:34:56:78:9A:BC:DE:F0:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33</fingerprint>\
         <web-socket xmlns='http://jitsi.org/protocol/colibri' url='wss://meet.example/colibri-ws/jvb1/1d2c/19c373a4?pwd=2v4d5vl8l5t9tbbmrs1o2v7ad'/>\
         {}</transport><sctp port='5000'/></transport></endpoint><sources>\
         <media-source type='audio' id='jvb-a0'><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='411312308' name='jvb-a0'/></media-source>\
         <media-source type='video' id='jvb-v0'><source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='3303440564' name='jvb-v0'/></media-source>\
         </sources></conference-modified></iq>",
        (0..2)
            .map(|i| format!("<candidate component='1' foundation='{i}' generation='0' id='53a7{i}' network='0' priority='2130706431' protocol='udp' type='host' ip='10.0.0.1{i}' port='10000'/>"))
            .collect::<String>()
    )];
    let stats = [
        ("stress_level", "0.04"), ("average_participant_stress", "0.01"), ("version", "2.3.65"), ("region", "eu-west-1"),
        ("relay_id", "jvb1"), ("drain", "false"), ("graceful_shutdown", "false"), ("shutting_down", "false"),
        ("conferences", "42"), ("participants", "210"), ("largest_conference", "25"), ("endpoints_sending_audio", "61"),
        ("endpoints_sending_video", "120"), ("bit_rate_download", "52311"), ("bit_rate_upload", "211334"), ("packet_rate_download", "4100"),
        ("packet_rate_upload", "17000"), ("rtt_aggregate", "31.2"), ("threads", "180"), ("healthy", "true"),
    ];
    let bridge = vec![format!(
        "<presence from='jvbbrewery@internal.auth.meet.test/jvb1' to='focus@auth.meet.test/focus'><x xmlns='http://jabber.org/protocol/muc#user'>\
         <item affiliation='none' role='participant'/></x><stats xmlns='http://jitsi.org/protocol/colibri'>{}</stats></presence>",
        stats.iter().map(|(n, v)| format!("<stat name='{n}' value='{v}'/>")).collect::<String>()
    )];
    vec![
        ("presence (participant)", presences),
        ("IQ result, no payload", results),
        ("session-accept", accepts),
        ("source-add", source_add),
        ("source-remove", source_remove),
        ("transport-info", find("transport-info")),
        ("Colibri2 answer", colibri2),
        ("bridge stats presence", bridge),
    ]
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
    // `XML_BENCH=offers`: only the offer rows (what the focus writes).
    if std::env::var("XML_BENCH").as_deref() == Ok("offers") {
        offer_rows();
        return;
    }
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
    let t_classify = median_secs(|| frame_and_classify(&data), n);
    println!("{:<34} {:>10} {:>12} {:>10}", "benchmark", "MB/s", "stanzas/s", "time (s)");
    for (name, t) in [("framer", t_frame), ("framer + parse_stanza (tree)", t_parse), ("framer + incoming::parse (typed)", t_classify)] {
        println!("{:<34} {:>10.1} {:>12.0} {:>10.3}", name, mb / t, n as f64 / t, t);
    }

    let header = StreamHeader {
        attrs: vec![("id".into(), "abc".into())],
        default_ns: "jabber:client".into(),
        prefixes: vec![("stream".into(), "http://etherx.jabber.org/streams".into())],
    };
    println!();
    println!("per hot kind, CPU time of the thread (median of 9 interleaved rounds):");
    println!("{:<24} {:>7} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}", "kind", "bytes", "tree MB/s", "st/s", "+typed MB/s", "st/s", "typed MB/s", "st/s", "speedup");
    for (kind, stanzas) in hot_kinds(&stanzas) {
        assert!(!stanzas.is_empty(), "{kind}: no stanzas");
        for s in &stanzas {
            let fast = incoming::parse(s, &header, MAX_NODES).expect("parses");
            assert!(!matches!(fast, Incoming::Other(_)), "{kind}: not typed: {s}");
            assert_eq!(fast, Incoming::from_element(parse_stanza(s, &header).expect("parses")), "{kind}: the paths differ");
        }
        let bytes: usize = stanzas.iter().map(String::len).sum();
        let tree = |s: &str| {
            black_box(parse_stanza(s, &header).expect("parses"));
        };
        let tree_typed = |s: &str| {
            black_box(Incoming::from_element(parse_stanza(s, &header).expect("parses")));
        };
        let typed = |s: &str| {
            black_box(incoming::parse(s, &header, MAX_NODES).expect("parses"));
        };
        let t = per_pass(&stanzas, &[&tree, &tree_typed, &typed]);
        let (tree, tree_typed, typed) = (t[0], t[1], t[2]);
        let k = stanzas.len() as f64;
        let mbs = |t: f64| bytes as f64 / t / 1e6;
        println!(
            "{:<24} {:>7} {:>10.1} {:>10.0} {:>10.1} {:>10.0} {:>10.1} {:>10.0} {:>7.2}x",
            kind,
            bytes / stanzas.len(),
            mbs(tree),
            k / tree,
            mbs(tree_typed),
            k / tree_typed,
            mbs(typed),
            k / typed,
            tree_typed / typed
        );
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
    use jicofo::xmpp::jingle::codecs::{offer_media, Features};
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
                contents: offer_media(&f),
                bridge_transport: transport.clone(),
                sctp_port: Some(5000),
                sources: SourceView::new(conference).except(nick).plus(&bridge).media(f.audio, f.video),
                json,
                start_muted: (false, false),
                bridge_session_id: "0c9f3b1e".into(),
                region: None,
            };
            let iq: jicofo::xml::Outgoing =
                if cached { o.session_initiate("focus@auth.meet.test/focus", nick, "sid", "id").into() } else { tree::session_initiate(&o, "focus@auth.meet.test/focus", nick, "sid", "id").into() };
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
    small_room_rows(&room(5), &bridge, &transport);
}

/// Median seconds of CPU time per call of each of `ways`: rounds of about 0.2 s per
/// way, the ways interleaved (so drift in the machine's load hits all alike), 9 rounds.
fn per_op(ways: &[&dyn Fn() -> usize]) -> Vec<f64> {
    const ROUNDS: usize = 9;
    let mut per: Vec<Vec<f64>> = vec![Vec::new(); ways.len()];
    for _ in 0..ROUNDS {
        for (i, f) in ways.iter().enumerate() {
            let (wall, cpu) = (Instant::now(), cpu_now());
            let mut n = 0u64;
            while wall.elapsed().as_secs_f64() < 0.2 {
                black_box(f());
                n += 1;
            }
            let secs = match (cpu, cpu_now()) {
                (Some(a), Some(b)) => (b - a) as f64 / 1e9,
                _ => wall.elapsed().as_secs_f64(),
            };
            per[i].push(secs / n as f64);
        }
    }
    per.into_iter()
        .map(|mut v| {
            v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
            v[ROUNDS / 2]
        })
        .collect()
}

/// A storm-like room of 5 (`conference`: five participants with the captured sources):
/// per invitation, the offer to one participant and its Colibri2 allocation, built as
/// trees (the contents built per invitation, as the focus did before: `offer_contents`,
/// `colibri_media`; sources as trees) and written directly (contents and media written
/// once per kind of participant, sources cached), each without and with writing it to
/// the bytes the event loop sends. µs of CPU time per stanza.
fn small_room_rows(conference: &jicofo::xmpp::jingle::ConferenceSources, bridge: &jicofo::xmpp::jingle::ConferenceSources, transport: &jicofo::xml::Element) {
    use jicofo::jid::Jid;
    use jicofo::xml::Outgoing;
    use jicofo::xmpp::colibri2::{ConferenceModify, EndpointRequest};
    use jicofo::xmpp::jingle::codecs::{colibri_media, has_data_content, offer_contents, offer_media, Features};
    use jicofo::xmpp::jingle::stanzas::{tree, Offer};
    use jicofo::xmpp::jingle::SourceView;
    use jicofo::xmpp::ns;

    let focus = "focus@auth.meet.test/focus";
    let jvb = Jid::parse("jvbbrewery@internal.auth.meet.test/jvb1").expect("jid");
    let out = std::cell::RefCell::new((Vec::<u8>::with_capacity(64 * 1024), String::new()));
    // What the event loop does with it: serialize or copy into its write buffer.
    let write = |st: Outgoing| {
        let (buf, scratch) = &mut *out.borrow_mut();
        buf.clear();
        st.write_bytes(buf, ns::CLIENT, scratch);
        buf.len()
    };
    println!();
    println!("a room of 5 (storm): per invitation, µs of CPU time per stanza (median of 9 rounds)");
    println!("{:<40} {:>10} {:>10} {:>10}", "stanza", "bytes", "build µs", "+write µs");
    for json in [false, true] {
        let f = Features { json_sources: json, rtx: true, tcc: true, ..Features::default_set() };
        let offer = |direct: bool, nick: &str| -> Outgoing {
            if !direct {
                black_box(offer_contents(&f));
            }
            let o = Offer {
                contents: offer_media(&f),
                bridge_transport: transport.clone(),
                sctp_port: Some(5000),
                sources: SourceView::new(conference).except(nick).plus(bridge).media(f.audio, f.video),
                json,
                start_muted: (false, false),
                bridge_session_id: "0c9f3b1e-6d2a-4e7f-8b5c-1a2b3c4d5e6f".into(),
                region: Some("eu-west-1".into()),
            };
            let to = format!("room1@conference.meet.test/{nick}");
            if direct {
                o.session_initiate(focus, &to, "6rbn2k8ahd2ns", "a1b2c3d4e5f60718").into()
            } else {
                tree::session_initiate(&o, focus, &to, "6rbn2k8ahd2ns", "a1b2c3d4e5f60718").into()
            }
        };
        for direct in [false, true] {
            let bytes = write(offer(direct, "p002"));
            let t = per_op(&[&|| match offer(direct, "p002") {
                Outgoing::Tree(e) => e.children.len(),
                Outgoing::Raw(r) => r.body().len(),
            }, &|| write(offer(direct, "p002"))]);
            let name = format!("offer, {} sources, {}", if json { "JSON" } else { "XML" }, if direct { "direct" } else { "tree" });
            println!("{:<40} {:>10} {:>10.2} {:>10.2}", name, bytes, t[0] * 1e6, t[1] * 1e6);
        }
    }
    let f = Features { rtx: true, tcc: true, ..Features::default_set() };
    let alloc = |direct: bool| -> Outgoing {
        let (media, trees, sctp) = if direct {
            let m = offer_media(&f);
            (Some(m.colibri.clone()), Vec::new(), m.sctp)
        } else {
            let c = offer_contents(&f);
            (None, colibri_media(&c), has_data_content(&c))
        };
        let mut req = ConferenceModify {
            meeting_id: "4e8b3c1a-2f3d-4c5e-9a7b-1c2d3e4f5a6b".into(),
            name: Some("room1@conference.meet.test".into()),
            create: false,
            endpoints: vec![EndpointRequest {
                id: "19c373a4".into(),
                create: true,
                stats_id: Some("Alice-Xyz".into()),
                sctp,
                capabilities: vec!["source-names".into()],
                ..Default::default()
            }],
            ..Default::default()
        };
        if direct {
            req.endpoints[0].media = media.unwrap_or_default();
            req.to_stanza(&jvb, "a1b2c3d4e5f60718").into()
        } else {
            // The media elements `colibri_media` gave, first in the endpoint as the tree had them.
            let mut iq = req.to_iq(&jvb, "a1b2c3d4e5f60718");
            if let Some(ep) = iq.elements_mut().next().and_then(|cm| cm.elements_mut().next()) {
                for (i, m) in trees.into_iter().enumerate() {
                    ep.children.insert(i, jicofo::xml::Node::Element(m));
                }
            }
            iq.into()
        }
    };
    for direct in [false, true] {
        let bytes = write(alloc(direct));
        let t = per_op(&[&|| alloc(direct).name().len(), &|| write(alloc(direct))]);
        let name = format!("Colibri2 allocation, {}", if direct { "direct" } else { "tree" });
        println!("{:<40} {:>10} {:>10.2} {:>10.2}", name, bytes, t[0] * 1e6, t[1] * 1e6);
    }
}
