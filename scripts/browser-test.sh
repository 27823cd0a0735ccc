#!/usr/bin/env bash
# scripts/browser-test.sh — the real Jitsi Meet client library (lib-jitsi-meet 2.6726.2, a Dec 2021
# build published as @lyno/lib-jitsi-meet) in headless Chromium against jicofo, a private Prosody
# and the bridge simulator (jvb-sim: signaling only, no media). See tests/browser/run.mjs for what
# is checked.
#
# Usage: scripts/browser-test.sh
#   Installs what is missing (Debian's chromium, the Node dependencies of tests/browser, the
#   library's npm tarball into the cache), builds the release binaries, runs the three-participant
#   test twice (without and with source-name signaling) in each mode, and stops everything it
#   started. Modes (scripts/run-local.sh JICOFO_MODE): seed-2020 (Prosody with focus.<domain> as
#   an external component; jicofo reads a 2020-era config + sip-communicator.properties) and
#   client-proxy (Prosody laid out like a current Debian install, focus.<domain> a client_proxy
#   with no component secret; jicofo --config=<a jicofo.conf written like the installer's>).
#   Works from a clean checkout, without a TTY (CI=true).
#
# Environment (optional):
#   BROWSER_CACHE   where the library tarball is unpacked (default <repo>/tmp/browser-cache)
#   ARTIFACTS       where stanzas, events, console and server logs go (default <repo>/tmp/browser-artifacts/<time>)
#   ROUNDS          "0,1" (default): without and with source names; "0" or "1" for one round
#   MODES           "seed-2020,client-proxy" (default); also "flags" (the seed's command line)
#   CARGO_TARGET_DIR  as for cargo
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
LJM_VERSION=2.6726.2
cache="${BROWSER_CACHE:-$repo/tmp/browser-cache}"
artifacts_base="${ARTIFACTS:-$repo/tmp/browser-artifacts/$(date -u +%Y%m%dT%H%M%SZ)}"
LOCAL_DIR=""
export DEBIAN_FRONTEND=noninteractive
log() { echo "browser-test.sh: $*"; }

# Stop whatever this script started, whatever happens (the runner cleans up after itself too;
# this catches a runner killed midway). run-local.sh --stop only acts on pids it recorded.
runner_pid=""
cleanup() {
  local rc=$?
  if [ -n "$runner_pid" ] && kill -0 "$runner_pid" 2>/dev/null; then
    kill -TERM "$runner_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$runner_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$runner_pid" 2>/dev/null || true
  fi
  if [ -n "$LOCAL_DIR" ] && [ -d "$LOCAL_DIR" ]; then
    LOCAL_DIR="$LOCAL_DIR" "$repo/scripts/run-local.sh" --stop >/dev/null 2>&1 || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

t0=$(date +%s)

# 1. Chromium (Debian's; playwright-core downloads no browser).
if [ ! -x /usr/bin/chromium ]; then
  log "installing chromium (apt-get)"
  if ! apt-get install -y -q chromium >/dev/null 2>&1; then
    apt-get update -q >/dev/null
    apt-get install -y -q chromium >/dev/null
  fi
fi
command -v node >/dev/null || { log "node is required"; exit 1; }

# 2. Node dependencies (playwright-core, jquery) from the lock file.
if [ ! -d tests/browser/node_modules/playwright-core ] || [ ! -d tests/browser/node_modules/jquery ] \
   || [ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]; then
  log "npm ci in tests/browser"
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

# 3. lib-jitsi-meet: its npm dependencies point at git repositories, so it is not npm-installed;
#    the published tarball carries the prebuilt bundle, which the page loads.
bundle="$cache/package/lib-jitsi-meet.min.js"
if [ ! -f "$bundle" ] || ! grep -q "\"version\": \"$LJM_VERSION\"" "$cache/package/package.json" 2>/dev/null; then
  log "fetching @lyno/lib-jitsi-meet@$LJM_VERSION (npm pack)"
  mkdir -p "$cache"
  rm -rf "$cache/package" "$cache"/lyno-lib-jitsi-meet-*.tgz
  tgz="$(cd "$cache" && npm pack --silent "@lyno/lib-jitsi-meet@$LJM_VERSION" | tail -1)"
  tar -xzf "$cache/$tgz" -C "$cache"
  [ -f "$bundle" ] || { log "no lib-jitsi-meet.min.js in $tgz"; exit 1; }
fi
export LJM_BUNDLE="$bundle"

# 4. Release binaries (jicofo, jvb-sim); run-local.sh builds too, but fails quieter.
log "building the release binaries"
cargo build --release --quiet --bins

# 5. The test, once per mode. In the background so that a signal reaches the trap (which stops it).
log "setup took $(( $(date +%s) - t0 ))s"
rc=0 passed=0 failed=0
IFS=, read -r -a modes <<<"${MODES:-seed-2020,client-proxy}"
for mode in "${modes[@]}"; do
  export JICOFO_MODE="$mode" ARTIFACTS="$artifacts_base/$mode"
  export LOCAL_DIR="$ARTIFACTS/deployment"
  t1=$(date +%s)
  log "mode $mode: running tests/browser/run.mjs (artifacts in $ARTIFACTS)"
  out="$(mktemp)"
  # Each mode's own count is prefixed, so that only the sum below reads as the closing line.
  RESULT_PREFIX="browser-test [$mode] " node tests/browser/run.mjs > >(tee "$out") 2>&1 &
  runner_pid=$!
  wait "$runner_pid" || rc=1
  runner_pid=""
  sleep 0.2 # let tee finish
  line="$(grep -Eo '[0-9]+ passed, [0-9]+ failed$' "$out" | tail -1)"
  rm -f "$out"
  [ -n "$line" ] || { rc=1; failed=$((failed + 1)); line="0 passed, 1 failed"; }
  passed=$((passed + ${line%% passed*}))
  failed=$((failed + $(echo "$line" | sed -E 's/.* ([0-9]+) failed$/\1/')))
  log "mode $mode took $(( $(date +%s) - t1 ))s: $line"
done
LOCAL_DIR=""
# The last line counts every mode.
echo "$passed passed, $failed failed"
exit "$rc"
