//! XML layer benchmark (`cargo bench --bench xml`, no external harness).
//!
//! Builds a ~50 MB client stream by repeating the captured lib-jitsi-meet stanzas
//! (tests/fixtures/captures, leading comment stripped), then measures, taking the
//! median of 5 runs each:
//!  (a) the framer alone, fed 16 KiB chunks: MB/s and stanzas/s;
//!  (b) framer + `parse_stanza` on every stanza: MB/s and stanzas/s.
//! Prints a small table.

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
}
