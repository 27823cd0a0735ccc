#!/usr/bin/env bash
# scripts/test.sh — every test of the project, on a fresh machine: unit tests, the
# integration tests against private Prosody instances (scripts/prosody.sh installs
# Debian's prosody when it is missing), the bridge simulator, and (when present) the
# browser test with the real lib-jitsi-meet in headless Chromium.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

# Install Prosody (and openssl) up front, once, rather than from parallel tests.
if ! command -v prosody >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1; then
  scripts/prosody.sh start "$repo/target/test-prosody/install-check" >/dev/null
  scripts/prosody.sh stop "$repo/target/test-prosody/install-check" >/dev/null
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

# Unit and integration tests (each integration test runs its own private Prosody).
status=0
cargo test --release --lib --bins --tests -- --test-threads="${TEST_THREADS:-4}" 2>&1 | tee "$log" || status=1

if [ -x "$repo/scripts/browser-test.sh" ] && [ "${SKIP_BROWSER:-}" != 1 ]; then
  "$repo/scripts/browser-test.sh" 2>&1 | tee -a "$log" || status=1
fi

# One closing line for everything that ran.
passed=$(grep -Eo '(^test result: [a-zA-Z]+\. |^)[0-9]+ passed' "$log" | grep -Eo '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s+=$1} END {print s+0}')
[ "$failed" = 0 ] || status=1
echo "tests: $passed passed, $failed failed"
exit $status
