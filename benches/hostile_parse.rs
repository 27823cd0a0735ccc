//! What bounded parsing costs (`cargo bench --bench hostile_parse`, no external
//! harness): the typed parsers of `media` and `xmpp::caps` on the captured
//! lib-jitsi-meet stanzas and on hostile inputs at and over their bounds. The XML
//! parse itself (the `xml` crate) is not timed here; `benches/xml.rs` measures it.
//!
//! Each case runs for about 0.3 s per round, 5 rounds; the median time per call is
//! printed. A refused input should cost no more than an accepted one of similar size.

use std::hint::black_box;
use std::time::{Duration, Instant};

use jicofo::xmpp::jingle::{ConferenceSources, EndpointSources, JingleRequest};
use jicofo::xml::{parse_fragment, Element};
use jicofo::xmpp::ns;
use jicofo::xmpp::caps::{Caps, CapsCache, DiscoInfo};

const ROUNDS: usize = 5;
const ROUND: Duration = Duration::from_millis(300);

fn capture(name: &str) -> Element {
    let path = format!("{}/tests/fixtures/captures/{}", env!("CARGO_MANIFEST_DIR"), name);
    let text = std::fs::read_to_string(path).expect("fixture");
    let body = text.find("-->").map(|i| &text[i + 3..]).unwrap_or(&text);
    parse_fragment(body.trim()).expect("capture parses")
}

/// Median nanoseconds per call of `f`.
fn time<F: FnMut()>(mut f: F) -> f64 {
    let mut per_call = Vec::new();
    for _ in 0..ROUNDS {
        let (start, mut n) = (Instant::now(), 0u64);
        while start.elapsed() < ROUND {
            f();
            n += 1;
        }
        per_call.push(start.elapsed().as_nanos() as f64 / n as f64);
    }
    per_call.sort_by(|a, b| a.total_cmp(b));
    per_call[ROUNDS / 2]
}

fn row(what: &str, input_bytes: usize, ns: f64) {
    println!("{:<58} {:>9} B {:>12.1} µs", what, input_bytes, ns / 1000.0);
}

fn jingle(inner: &str) -> Element {
    parse_fragment(&format!("<jingle xmlns='urn:xmpp:jingle:1' action='source-add' sid='s'>{inner}</jingle>")).unwrap()
}

fn main() {
    println!("{:<58} {:>11} {:>15}", "case", "input", "median/call");
    let accept = capture("lyno-session-accept-source-names.xml");
    let j = accept.get_child("jingle", ns::JINGLE).unwrap().clone();
    row("session-accept (captured, 7 sources): parse + sources", j.to_xml().len(), time(|| {
        let r = JingleRequest::from_jingle(black_box(&j)).unwrap();
        black_box(r.sources().unwrap());
    }));
    let named = JingleRequest::from_jingle(&j).unwrap().sources().unwrap();
    row("  … + try_add into a 50-endpoint conference", 0, time(|| {
        let mut c = ConferenceSources::new();
        for i in 0..50u32 {
            let s = jicofo::xmpp::jingle::Source::new(10_000 + i, jicofo::xmpp::jingle::MediaType::Audio).with_msid(&format!("m{i}"));
            c.insert(format!("e{i}").as_str(), EndpointSources { sources: vec![s], groups: vec![] });
        }
        black_box(c.try_add("d8c2803e", named.clone()).unwrap());
    }));

    let src = |i: u32| {
        format!(
            "<source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='{i}' name='x-v0'><parameter name='msid' value='m'/></source>"
        )
    };
    let content = |n: u32| {
        format!(
            "<content name='video'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'>{}</description></content>",
            (1..=n).map(src).collect::<String>()
        )
    };
    for n in [128u32, 10_000] {
        let el = jingle(&content(n));
        let r = JingleRequest::from_jingle(&el).unwrap();
        let verdict = if r.sources().is_ok() { "accepted" } else { "refused" };
        row(&format!("{n} sources in one stanza ({verdict})"), el.to_xml().len(), time(|| {
            black_box(r.sources().is_ok());
        }));
    }
    let big_group = jingle(&format!(
        "<content name='video'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'>{}\
         <ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='SIM'>{}</ssrc-group></description></content>",
        src(1),
        "<source ssrc='1'/>".repeat(10_000)
    ));
    let r = JingleRequest::from_jingle(&big_group).unwrap();
    row("one group of 10 000 SSRCs (refused)", big_group.to_xml().len(), time(|| {
        black_box(r.sources().is_ok());
    }));
    let transport = jingle(&format!(
        "<content name='audio'><transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag=\"{}\" pwd='p'/></content>",
        "'".repeat(30_000)
    ));
    row("30 000 apostrophes in a transport attribute (refused)", 30_100, time(|| {
        black_box(JingleRequest::from_jingle(&transport).is_ok());
    }));

    let deep = "[".repeat(60_000);
    row("JSON sources nested 60 000 deep (refused)", deep.len(), time(|| {
        black_box(ConferenceSources::from_json(&deep).is_ok());
    }));
    let wide = format!(
        "{{\"sources\":{{\"a\":[[],[],[{}]]}}}}",
        (0..5000).map(|i| format!("{{\"s\":{}}}", i + 1)).collect::<Vec<_>>().join(",")
    );
    row("JSON sources, 5 000 in one owner (refused)", wide.len(), time(|| {
        black_box(ConferenceSources::from_json(&wide).is_ok());
    }));

    let presence = capture("lyno-muc-join-presence.xml");
    let caps = Caps::from_presence(&presence).unwrap();
    let features = [
        "http://jabber.org/protocol/caps", "urn:xmpp:jingle:1", "urn:xmpp:jingle:apps:rtp:1",
        "urn:xmpp:jingle:transports:ice-udp:1", "urn:xmpp:jingle:apps:dtls:0", "urn:xmpp:jingle:transports:dtls-sctp:1",
        "urn:xmpp:jingle:apps:rtp:audio", "urn:xmpp:jingle:apps:rtp:video", "http://jitsi.org/json-encoded-sources",
        "urn:ietf:rfc:4588", "http://jitsi.org/remb", "http://jitsi.org/tcc", "urn:ietf:rfc:5761", "urn:ietf:rfc:5888",
        "urn:xmpp:rayo:client:1",
    ];
    let q = |fs: &[String]| {
        Element::new("query", ns::DISCO_INFO).children(fs.iter().map(|f| Element::new("feature", ns::DISCO_INFO).attr("var", f.as_str())))
    };
    let ljm = q(&features.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    row("disco answer of lib-jitsi-meet: parse + verify (sha-1)", ljm.to_xml().len(), time(|| {
        let info = DiscoInfo::parse(black_box(&ljm));
        black_box(jicofo::xmpp::caps::verify(&caps, &info));
    }));
    let flood = q(&(0..5000).map(|i| format!("urn:flood:{i}")).collect::<Vec<_>>());
    row("disco answer with 5 000 features: parse (512 kept)", flood.to_xml().len(), time(|| {
        black_box(DiscoInfo::parse(black_box(&flood)));
    }));
    let mut cache = CapsCache::new();
    let now = Instant::now();
    let mut i = 0u64;
    row("caps cache: learn a new verified entry (full cache, evicting)", 0, time(|| {
        i += 1;
        let info = DiscoInfo::parse(&q(&[format!("urn:x:{i}"), "urn:y".to_string()]));
        let c = Caps { ver: info.sha1_ver(), ..caps.clone() };
        black_box(cache.learn(&c, &info, "bench", now));
    }));
    println!("caps cache after the run: {} entries, {} bytes", cache.len(), cache.bytes());
}
