//! The fuzz corpora as regression tests (stable toolchain): every file committed in
//! `fuzz/corpus/<target>/` and every seed of [`jicofo::fuzzing::seeds`] runs through the
//! same harness the coverage-guided target uses (`fuzz/fuzz_targets/<target>.rs`).
//! Crash reproducers found by the fuzzer live in `fuzz/corpus/<target>/` too, named
//! `crash-*`, with a regular unit test next to the fixed code.

use std::path::PathBuf;
use std::time::Instant;

use jicofo::fuzzing::{run, seeds, TARGETS};

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz").join("corpus").join(target)
}

/// Run every input of one target, naming the one that panics.
fn replay(target: &str) -> usize {
    let mut inputs: Vec<(String, Vec<u8>)> = seeds(target).into_iter().map(|(n, b)| (format!("seed {n}"), b)).collect();
    if let Ok(dir) = std::fs::read_dir(corpus_dir(target)) {
        let mut files: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
        files.sort();
        for p in files {
            let bytes = std::fs::read(&p).unwrap();
            inputs.push((p.display().to_string(), bytes));
        }
    }
    for (name, bytes) in &inputs {
        let r = std::panic::catch_unwind(|| assert!(run(target, bytes)));
        if r.is_err() {
            panic!("fuzz target {target}: {name} fails");
        }
    }
    inputs.len()
}

#[test]
fn every_target_has_a_corpus_and_replays_it() {
    let start = Instant::now();
    let mut total = 0;
    for t in TARGETS {
        let n = replay(t);
        assert!(n > 0, "target {t} has no inputs");
        eprintln!("{t}: {n} inputs");
        total += n;
    }
    eprintln!("{total} inputs in {:?}", start.elapsed());
}

#[test]
fn every_target_has_a_fuzz_target_file() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz").join("fuzz_targets");
    for t in TARGETS {
        let f = dir.join(format!("{t}.rs"));
        let text = std::fs::read_to_string(&f).unwrap_or_else(|_| panic!("{} is missing", f.display()));
        assert!(text.contains(&format!("run(\"{t}\"")), "{} does not run its harness", f.display());
    }
}

/// Writes every target's seeds into `fuzz/corpus/<target>/seed-<name>` (run by hand:
/// `cargo test --release --test fuzz_corpus -- --ignored write_seeds`), the starting
/// point of a fresh corpus.
#[test]
#[ignore]
fn write_seeds() {
    for t in TARGETS {
        let dir = corpus_dir(t);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in seeds(t) {
            std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
        }
    }
}
