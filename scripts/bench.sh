#!/usr/bin/env bash
# scripts/bench.sh — the load benchmark: jicofo (release binary, RUST_LOG=info) with a private
# Prosody (scripts/prosody.sh) and the bridge simulator jvb-sim (a test tool, answers at once),
# loaded by jicofo-load (a test tool: anonymous participants that request the conference, join the
# room and answer Jingle with a captured lib-jitsi-meet session-accept). Everything on 127.0.0.1.
#
# Usage:
#   scripts/bench.sh [SCENARIO...]      default: storm large large-fast idle
#
# Scenarios (each on a freshly started Prosody, jvb-sim and jicofo):
#   storm       200 rooms x 5 participants, conference requests spread at random over 10 s
#   large       one room, 500 participants joining one after another at $BENCH_RATE/s (default 5)
#   large-fast  one room, 500 participants, each starting as soon as the previous one is in the room
#               (as fast as Prosody lets them in: all at once only overloads Prosody)
#   large-json  as large, but the participants also advertise JSON-encoded sources (newer
#               lib-jitsi-meet: compact source signaling); not in the default set
#   idle        the focus connected (one bridge) with no conferences, measured for 10 s
#   smoke       3 rooms x 3 participants within 1 s (a quick check of the setup; not in the default)
#   flood-calm  20 rooms x 3 participants churning for $BENCH_FLOOD_SECS s (default 30): each room starts
#               over with a new name once everyone had an offer and stayed 2 s (not in the default)
#   flood       as flood-calm, while one more participant floods the focus as fast as Prosody lets it
#               with every kind of hostile stanza (presence updates in its room, IQs to the focus, forged
#               answers, stanzas grown past the focus's cap by Prosody's re-escaping, too-deep stanzas)
#   flood-KINDS as flood with only KINDS (comma list of presence, iq, forged, oversize, deep)
#               scripts/bench-flood.sh runs flood-calm and flood and compares them (docs/benchmark.md)
#
# Prints a table on stdout (p50/p99 latencies, stanzas sent by jicofo per participant, CPU seconds
# of jicofo and Prosody over the same run and their ratio, jicofo's peak RSS and thread count) and
# writes every scenario's JSON plus the combined $BENCH_DIR/bench.json ($BENCH_SUMMARY names it otherwise).
# Logs are in $BENCH_DIR.
#
# What it measures, the Prosody settings it relies on, results and analysis: docs/benchmark.md.
#
# Environment: BENCH_DIR (default <repo>/tmp/bench), BENCH_RATE (default 5), BENCH_NO_BUILD=1 to
# use the binaries already built, CARGO_TARGET_DIR as for cargo, BENCH_JICOFO_LOG (jicofo's RUST_LOG,
# default info; anything more is for diagnosis only: debug logging distorts the CPU figures),
# BENCH_PERF=1 to record jicofo with `perf record -g` during each scenario ($BENCH_DIR/NAME.perf.data),
# BENCH_PERF=prosody to record Prosody instead, BENCH_PROSODY_GC (generational by default;
# incremental, or default for Prosody's own setting).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${BENCH_DIR:-$repo/tmp/bench}"
rate="${BENCH_RATE:-5}"
mkdir -p "$dir"
bin="${CARGO_TARGET_DIR:-$repo/target}/release"
scenarios=("$@")
[ "${#scenarios[@]}" -gt 0 ] || scenarios=(storm large large-fast idle)
for s in "${scenarios[@]}"; do
  case "$s" in storm|large|large-fast|large-json|idle|smoke|flood-calm|flood|flood-*) ;; *) echo "bench: unknown scenario $s" >&2; exit 2 ;; esac
done

# Prosody's Lua GC: generational unless BENCH_PROSODY_GC says otherwise ("default" = Prosody's own
# incremental GC, which more than doubles Prosody's CPU under this load; see scripts/prosody.sh).
gc="${BENCH_PROSODY_GC:-generational}"
[ "$gc" != default ] || gc=""
export PROSODY_GC="$gc"

log() { echo "bench: $*" >&2; }
began=$SECONDS

if [ -z "${BENCH_NO_BUILD:-}" ]; then
  log "building (release)..."
  cargo build --release --quiet --manifest-path "$repo/Cargo.toml" --bins
fi

JICOFO_PID="" JVB_PID=""
stop_pid() { # pid
  local pid="$1" i
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
stop_stack() {
  stop_pid "$JICOFO_PID"; JICOFO_PID=""
  stop_pid "$JVB_PID"; JVB_PID=""
  "$repo/scripts/prosody.sh" stop "$dir/prosody" 2>/dev/null || true
}
trap stop_stack EXIT
trap 'exit 130' INT TERM

free_port() { # a port in 12000-19999 (below the ephemeral range the participants' sockets use) nothing listens on
  local p
  for _ in $(seq 1 100); do
    p=$((12000 + RANDOM % 8000))
    timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$p" 2>/dev/null || { echo "$p"; return 0; }
  done
  return 1
}

start_stack() { # name
  local name="$1"
  "$repo/scripts/prosody.sh" start "$dir/prosody" >"$dir/prosody.env"
  # shellcheck disable=SC1091
  . "$dir/prosody.env"
  REST_PORT="$(free_port)"
  JVB_PASSWORD="$JVB_PASSWORD" RUST_LOG=info "$bin/jvb-sim" --host 127.0.0.1 --port "$C2S_PORT" \
    --domain "$XMPP_AUTH_DOMAIN" --brewery "$BREWERY_JID" --nick jvb1 --ws-domain "127.0.0.1:$HTTP_PORT" \
    --tls_ca_file "$CA_FILE" </dev/null >"$dir/$name.jvb-sim.log" 2>&1 &
  JVB_PID=$!
  JICOFO_SECRET="$FOCUS_SECRET" JICOFO_AUTH_PASSWORD="$FOCUS_PASSWORD" RUST_LOG="${BENCH_JICOFO_LOG:-info}" \
    "$bin/jicofo" --domain="$XMPP_DOMAIN" --host=127.0.0.1 --port="$COMPONENT_PORT" --user_port="$C2S_PORT" \
    --tls_ca_file="$CA_FILE" --rest_port="$REST_PORT" </dev/null >"$dir/$name.jicofo.log" 2>&1 &
  JICOFO_PID=$!
  for _ in $(seq 1 150); do
    curl -fsS "http://127.0.0.1:$REST_PORT/about/health" >/dev/null 2>&1 && return 0
    kill -0 "$JICOFO_PID" 2>/dev/null || break
    sleep 0.1
  done
  log "jicofo did not become healthy; see $dir/$name.jicofo.log"
  tail -5 "$dir/$name.jicofo.log" >&2 || true
  exit 1
}

run() { # name, jicofo-load args...
  local name="$1"; shift
  local t=$SECONDS
  log "$name: starting Prosody, jvb-sim and jicofo"
  start_stack "$name"
  # Let the focus settle (brewery joined, first stats presence) before measuring.
  sleep 1
  local perf=""
  if [ -n "${BENCH_PERF:-}" ]; then
    local target="$JICOFO_PID"; [ "${BENCH_PERF}" != prosody ] || target="$PROSODY_PID"
    perf record -q -F 999 --call-graph dwarf,16384 -o "$dir/$name.perf.data" -p "$target" 2>"$dir/$name.perf.log" &
    perf=$!
  fi
  "$bin/jicofo-load" --name "$name" --port "$C2S_PORT" --domain "$XMPP_DOMAIN" --rest-port "$REST_PORT" \
    --jicofo-pid "$JICOFO_PID" --pid "prosody=$PROSODY_PID" --pid "jvb-sim=$JVB_PID" \
    --capture "$repo/tests/fixtures/captures/lyno-session-accept.xml" --out "$dir/$name.json" \
    --jicofo-log "$dir/$name.jicofo.log" "$@" \
    2> >(tee "$dir/$name.load.log" >&2)
  if [ -n "$perf" ]; then kill -INT "$perf"; wait "$perf" || true; log "$name: perf data in $dir/$name.perf.data"; fi
  stop_stack
  log "$name: done in $((SECONDS - t)) s"
  files+=("$dir/$name.json")
}

files=()
for s in "${scenarios[@]}"; do
  case "$s" in
    storm) run storm --rooms 200 --per-room 5 --window 10 --timeout 60 ;;
    large) run large --rooms 1 --per-room 500 --rate "$rate" --timeout 30 ;;
    large-fast) run large-fast --rooms 1 --per-room 500 --closed-loop --timeout 75 ;;
    large-json) run large-json --rooms 1 --per-room 500 --rate "$rate" --timeout 20 --json-sources ;;
    idle) run idle --rooms 0 --hold 10 ;;
    smoke) run smoke --rooms 3 --per-room 3 --window 1 --timeout 20 ;;
    flood-calm) run flood-calm --rooms 20 --per-room 3 --churn "${BENCH_FLOOD_SECS:-30}" ;;
    flood) run flood --rooms 20 --per-room 3 --churn "${BENCH_FLOOD_SECS:-30}" --flood all ;;
    flood-*) run "$s" --rooms 20 --per-room 3 --churn "${BENCH_FLOOD_SECS:-30}" --flood "${s#flood-}" ;;
  esac
done

echo
summary="$dir/${BENCH_SUMMARY:-bench.json}"
"$bin/jicofo-load" --table "${files[@]}" --out "$summary"
echo "bench: Prosody GC ${PROSODY_GC:-default}; JSON in $summary; total $((SECONDS - began)) s"
