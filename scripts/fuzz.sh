#!/usr/bin/env bash
# scripts/fuzz.sh [SECONDS] [TARGET...] — run the coverage-guided fuzz targets (fuzz/,
# cargo fuzz on the nightly toolchain) one after the other for SECONDS each (default
# 60), on one core each (the machine has two, shared). Prints per target the number
# of executions and whether it crashed, then the total; exits 1 if any target crashed
# (the reproducer is in fuzz/artifacts/<target>/; copy it into fuzz/corpus/<target>/
# as crash-<what> once fixed, so tests/fuzz_corpus.rs replays it forever).
#
# Each target starts from its committed corpus (fuzz/corpus/<target>/) plus a working
# corpus kept in tmp/fuzz/<target>/ across runs, so longer fuzzing accumulates.
# FUZZ_MERGE=1 merges what the run found back into fuzz/corpus/<target>/, keeping only
# inputs that add coverage (libFuzzer -merge=1); commit that when it is worth it.
# Built without a sanitizer (the code is safe Rust: panics and overflow checks are
# what we look for; debug assertions are on), which runs 2-3x more executions.
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

secs="${1:-60}"
shift || true
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^jicofo-fuzz$')
fi

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz
fi
if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz.sh: the nightly toolchain is needed (rustup toolchain install nightly)" >&2
  exit 2
fi

cargo +nightly fuzz build -s none >/dev/null 2>&1 || cargo +nightly fuzz build -s none || exit 2

total=0
crashed=0
printf '%-20s %14s %8s %s\n' target executions exec/s result
for t in "${targets[@]}"; do
  work="tmp/fuzz/$t"
  mkdir -p "$work" "fuzz/corpus/$t" "fuzz/artifacts/$t"
  log="tmp/fuzz/$t.log"
  cargo +nightly fuzz run -s none "$t" "$work" "fuzz/corpus/$t" -- \
    -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
    -dict=fuzz/xmpp.dict -artifact_prefix="fuzz/artifacts/$t/" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\)/\1/p' "$log" | tail -1)
  if [ -z "$execs" ]; then
    execs=$(grep -Eo '^#[0-9]+' "$log" | tr -d '#' | sort -n | tail -1)
  fi
  execs=${execs:-0}
  rate=$(( execs / (secs > 0 ? secs : 1) ))
  if [ $rc -eq 0 ]; then
    result=ok
  else
    result="CRASH (exit $rc; see $log and fuzz/artifacts/$t/)"
    crashed=$((crashed + 1))
  fi
  printf '%-20s %14s %8s %s\n' "$t" "$execs" "$rate" "$result"
  total=$((total + execs))
  if [ "${FUZZ_MERGE:-}" = 1 ] && [ $rc -eq 0 ]; then
    cargo +nightly fuzz run -s none "$t" "fuzz/corpus/$t" "$work" -- -merge=1 -timeout=20 \
      -dict=fuzz/xmpp.dict >"tmp/fuzz/$t.merge.log" 2>&1 || true
  fi
done
printf '%-20s %14s\n' total "$total"
[ $crashed -eq 0 ] || { echo "fuzz.sh: $crashed target(s) crashed"; exit 1; }
