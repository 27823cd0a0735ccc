#!/usr/bin/env bash
# scripts/bench-flood.sh — the flood benchmark (issue #11): 20 conferences of 3 churning for 30 s
# (scripts/bench.sh flood-calm), then the same while one more anonymous participant sends stanzas at
# the focus as fast as Prosody lets it (scripts/bench.sh flood: presence updates in its own room, IQs
# to the focus, forged IQ answers, stanzas that Prosody's re-escaping grows past the focus's 256 KiB
# cap, stanzas nested past the parser's depth limit). Each run gets a fresh Prosody, jvb-sim and jicofo.
#
# Prints one table (the other conferences' request → ready and join → offer p50/p99, cycles that
# got no offers, jicofo's peak RSS and threads, CPU of jicofo and Prosody, jicofo's reconnects) and
# the flood/calm ratios, and writes tmp/bench/flood-calm.json, tmp/bench/flood.json and the combined
# tmp/bench/flood-summary.json. About 2 minutes on 2 cores.
#
# Usage: scripts/bench-flood.sh [SCENARIO...]   default: flood-calm flood
#        (flood-KINDS runs one kind or a comma list: presence, iq, forged, oversize, deep)
# Environment: as scripts/bench.sh; BENCH_FLOOD_SECS (default 30). Analysis: docs/benchmark.md.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
scenarios=("$@")
[ "${#scenarios[@]}" -gt 0 ] || scenarios=(flood-calm flood)
for s in "${scenarios[@]}"; do
  case "$s" in flood-calm|flood|flood-*) ;; *) echo "bench-flood: not a flood scenario: $s" >&2; exit 2 ;; esac
done
export BENCH_SUMMARY="${BENCH_SUMMARY:-flood-summary.json}"
exec "$repo/scripts/bench.sh" "${scenarios[@]}"
