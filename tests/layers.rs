//! The layering of `src/`, checked on every `cargo test`: which top-level module may
//! import which.
//!
//! Every `crate::<module>` path in a file of `src/` (code and doc links alike) is an
//! edge from the file's top-level module to `<module>`. [`LAYERS`] lists the top-level
//! modules bottom up; a module may use only modules of lower layers (never one of its
//! own layer or above), and the module graph must have no cycle. A module missing from
//! the table is an error too, so a new module gets a place before it gets imports. The
//! binaries (`src/main.rs`, `src/bin/`) see the library only through `jicofo::` (its
//! public API) and are not checked here; `super::` paths stay inside their top-level
//! module by construction (none climbs to the crate root).
//!
//! The checker itself is tested on small fake trees (an import from a lower layer to a
//! higher one, a cycle, an unknown module, a clean tree), so a green run means something.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// Top-level modules of the library, bottom up. See README.md, "Architecture".
const LAYERS: &[&[&str]] = &[
    // Plain values and helpers with no dependency inside the crate.
    &["jid", "ids", "log_throttle"],
    // XML framing/parsing/writing; the configuration (flags, files, limits).
    &["xml", "config"],
    // XMPP: stream negotiation and every protocol's typed stanzas (parsers, writers).
    &["xmpp"],
    // Sockets, TLS, the event loop, the generic HTTP server.
    &["net"],
    // What crosses threads; authentication sessions (secure domain, JWT authority); the process counters.
    &["messages", "auth", "metrics"],
    // The breweries (bridges: registry, selection, health checks; Jibri and Jigasi:
    // selection, the Jibri session state machine) and the moderation policies (pure
    // functions and state: AV moderation, mute checks, ICE recovery, breakout rooms).
    &["bridge", "jibri", "jigasi", "moderation"],
    // One conference (a thread per room).
    &["conference"],
    // The router: classifies stanzas, starts conferences, routes answers.
    &["focus"],
    // Operations: the HTTP API handler, /stats and /metrics rendering, --check.
    &["ops"],
    // Wiring: configuration to running focus.
    &["app"],
    // Test-only code: fuzz harnesses (doc-hidden) and stack-depth tests.
    &["fuzzing", "stack_tests"],
];

/// One forbidden import.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Violation {
    /// `from` (layer `from_layer`) uses `to` of the same or a higher layer.
    Upward { from: String, to: String, file: PathBuf, line: usize },
    /// A module the table does not list.
    Unknown { module: String, file: PathBuf },
    /// These modules import each other in a circle.
    Cycle(Vec<String>),
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Upward { from, to, file, line } => {
                write!(f, "{}:{}: `{}` imports `{}`, which is not in a lower layer", file.display(), line, from, to)
            }
            Violation::Unknown { module, file } => {
                write!(f, "{}: module `{}` is not in the layer table (tests/layers.rs)", file.display(), module)
            }
            Violation::Cycle(ms) => write!(f, "import cycle among: {}", ms.join(", ")),
        }
    }
}

/// The top-level module a file of `src/` belongs to (`None`: the crate root or a binary).
fn module_of(rel: &Path) -> Option<String> {
    let mut parts = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned());
    let first = parts.next()?;
    let rest = parts.next();
    match (first.as_str(), rest) {
        ("lib.rs" | "main.rs", None) | ("bin", _) => None,
        (file, None) => file.strip_suffix(".rs").map(str::to_string),
        (dir, Some(_)) => Some(dir.to_string()),
    }
}

/// `(line, module)` for every `crate::<module>` in `text`.
fn imports(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(p) = rest.find("crate::") {
            // `jicofo_crate::x` or `some_crate::x` is not ours.
            let before = rest[..p].chars().next_back();
            let name: String =
                rest[p + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') && !name.is_empty() {
                out.push((i + 1, name));
            }
            rest = &rest[p + 7..];
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Check the tree under `src` against `layers`.
fn check(src: &Path, layers: &[&[&str]]) -> Vec<Violation> {
    let layer: BTreeMap<&str, usize> =
        layers.iter().enumerate().flat_map(|(i, ms)| ms.iter().map(move |m| (*m, i))).collect();
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut out = BTreeSet::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(src).unwrap().to_path_buf();
        let Some(from) = module_of(&rel) else { continue };
        let Some(&lf) = layer.get(from.as_str()) else {
            out.insert(Violation::Unknown { module: from.clone(), file: rel.clone() });
            continue;
        };
        graph.entry(from.clone()).or_default();
        let text = fs::read_to_string(&file).unwrap();
        for (line, to) in imports(&text) {
            if to == from {
                continue;
            }
            graph.get_mut(&from).unwrap().insert(to.clone());
            match layer.get(to.as_str()) {
                None => {
                    out.insert(Violation::Unknown { module: to.clone(), file: rel.clone() });
                }
                Some(&lt) if lt >= lf => {
                    out.insert(Violation::Upward { from: from.clone(), to, file: rel.clone(), line });
                }
                Some(_) => {}
            }
        }
    }
    for c in cycles(&graph) {
        out.insert(Violation::Cycle(c));
    }
    out.into_iter().collect()
}

/// Every cycle of the graph, as its strongly connected components of more than one
/// module (Tarjan), each listed from its smallest name.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    impl<'a> T<'a> {
        fn visit(&mut self, v: &'a str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on.insert(v);
            for w in self.g.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let l = self.low[v].min(self.low[w]);
                    self.low.insert(v, l);
                } else if self.on.contains(w) {
                    let l = self.low[v].min(self.index[w]);
                    self.low.insert(v, l);
                }
            }
            if self.low[v] == self.index[v] {
                let mut scc = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on.remove(w);
                    scc.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if scc.len() > 1 {
                    scc.sort();
                    self.out.push(scc);
                }
            }
        }
    }
    let mut t = T { g: graph, index: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), on: BTreeSet::new(), out: Vec::new() };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.out
}

#[test]
fn the_modules_of_src_point_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let v = check(&src, LAYERS);
    let report: Vec<String> = v.iter().map(|v| v.to_string()).collect();
    assert!(v.is_empty(), "{} layering violations:\n{}", v.len(), report.join("\n"));
}

/// A fake `src/` in a fresh temporary directory.
fn fake_tree(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("jicofo-layers-{}-{}", name, std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    for (path, text) in files {
        let p = dir.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
    dir
}

const FAKE_LAYERS: &[&[&str]] = &[&["xml"], &["net"], &["focus"]];

#[test]
fn the_checker_passes_a_clean_tree() {
    let src = fake_tree(
        "clean",
        &[
            ("lib.rs", "pub mod xml; pub mod net; pub mod focus;"),
            ("xml.rs", "//! xml\nuse crate::xml::inner; // itself is fine\n"),
            ("net/mod.rs", "use crate::xml::Element;\n"),
            ("net/conn.rs", "use super::x; use crate::xml::{self};\n"),
            ("focus/mod.rs", "use crate::net::Conn;\nfn f() { crate::xml::parse(); }\n"),
            ("bin/tool/main.rs", "use jicofo::focus::Router;\n"),
        ],
    );
    assert_eq!(check(&src, FAKE_LAYERS), vec![]);
    fs::remove_dir_all(src).unwrap();
}

#[test]
fn the_checker_refuses_an_import_from_a_lower_layer_to_a_higher_one() {
    let src = fake_tree(
        "upward",
        &[
            ("xml.rs", ""),
            ("net/mod.rs", "use crate::xml::Element;\n"),
            ("net/http.rs", "//! docs\n\n/// see [`Router`](crate::focus::Router)\nfn f() {}\n"),
            ("focus/mod.rs", "use crate::net::Conn;\n"),
        ],
    );
    let v = check(&src, FAKE_LAYERS);
    assert!(
        v.contains(&Violation::Upward { from: "net".into(), to: "focus".into(), file: "net/http.rs".into(), line: 3 }),
        "{v:?}"
    );
    // net -> focus -> net is a cycle, reported as such too.
    assert!(v.contains(&Violation::Cycle(vec!["focus".into(), "net".into()])), "{v:?}");
    assert_eq!(v.len(), 2, "{v:?}");
    fs::remove_dir_all(src).unwrap();
}

#[test]
fn the_checker_refuses_imports_within_a_layer_and_unknown_modules() {
    let layers: &[&[&str]] = &[&["a", "b"], &["c"]];
    let src = fake_tree(
        "sideways",
        &[
            ("a.rs", "use crate::b::X;\n"),
            ("b.rs", ""),
            ("c.rs", "use crate::a::X; use crate::d::Y;\n"),
            ("d/mod.rs", ""),
        ],
    );
    let v = check(&src, layers);
    assert!(v.contains(&Violation::Upward { from: "a".into(), to: "b".into(), file: "a.rs".into(), line: 1 }), "{v:?}");
    assert!(v.contains(&Violation::Unknown { module: "d".into(), file: "c.rs".into() }), "{v:?}");
    assert!(v.contains(&Violation::Unknown { module: "d".into(), file: "d/mod.rs".into() }), "{v:?}");
    assert_eq!(v.len(), 3, "{v:?}");
    fs::remove_dir_all(src).unwrap();
}

#[test]
fn the_checker_finds_a_cycle_through_three_modules() {
    let g: BTreeMap<String, BTreeSet<String>> = [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]
        .into_iter()
        .fold(BTreeMap::new(), |mut g, (x, y)| {
            g.entry(x.to_string()).or_insert_with(BTreeSet::new).insert(y.to_string());
            g
        });
    assert_eq!(cycles(&g), vec![vec!["a".to_string(), "b".into(), "c".into()]]);
    // `crate::` inside another crate's path is not ours.
    assert_eq!(imports("use other_crate::x; use crate::y::Z;"), vec![(1, "y".to_string())]);
}
