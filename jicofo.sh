#!/usr/bin/env bash
# Run the jicofo focus: builds the release binary if it is missing, then execs it
# with the given flags. Secrets: JICOFO_SECRET and JICOFO_AUTH_PASSWORD in the
# environment (never on the command line). Log level: RUST_LOG (default info).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="${CARGO_TARGET_DIR:-$here/target}/release/jicofo"
if [ ! -x "$bin" ]; then
  echo "jicofo.sh: building the release binary (first run)..." >&2
  cargo build --release --manifest-path "$here/Cargo.toml" --bin jicofo >&2
fi
export RUST_LOG="${RUST_LOG:-info}"
exec "$bin" "$@"
