#!/usr/bin/env bash
# scripts/run-local.sh — a complete local deployment on 127.0.0.1, for trying jicofo:
# a private Prosody laid out like a Jitsi single host (scripts/prosody.sh), a bridge
# SIMULATOR (jvb-sim: a test/demo tool that answers Colibri2 like a videobridge but
# carries no media), a Jibri SIMULATOR (jibri-sim: says "on" to Record / Start live stream
# but records nothing), a Jigasi SIMULATOR (jigasi-sim: answers dial-out and
# transcription with a participant that joins the room, no SIP, no media), and jicofo
# itself. Everything runs in the background and stays up.
#
# Usage:
#   scripts/run-local.sh            build, start everything, print what to point a client at
#   scripts/run-local.sh --stop     stop what it started (by pid)
#   scripts/run-local.sh --status   show what is running
#
# State, logs and pids live in $LOCAL_DIR (default <repo>/tmp/local).
#
# JICOFO_MODE picks how Prosody is laid out and how jicofo is configured:
#   flags (default)  seed layout (focus.<domain> an external component); jicofo gets flags and
#                    JICOFO_SECRET / JICOFO_AUTH_PASSWORD
#   seed-2020        seed layout; jicofo reads a 2020-era `config` + `sip-communicator.properties`
#                    (tests/fixtures/config/debian-2020, the instance's domain, secret, password
#                    and ports filled in) from $LOCAL_DIR/etc-jitsi-jicofo via JICOFO_CONFIG_DIR
#   client-proxy     current Debian layout (focus.<domain> a client_proxy, no component secret);
#                    jicofo --config=$LOCAL_DIR/jicofo.conf, written like the Debian installer's
#                    (tests/fixtures/config/debian-current/jicofo.conf, filled in likewise)
#   In the file modes only what a test host needs besides the files is given as flags: the
#   client port, the test CA, the REST port, and 127.0.0.1 for "localhost" (Prosody listens
#   on 127.0.0.1 only).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${LOCAL_DIR:-$repo/tmp/local}"
mkdir -p "$dir"

stop_pid() { # name pidfile
  local f="$2"
  [ -f "$f" ] || return 0
  local pid; pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    echo "run-local: stopped $1 (pid $pid)"
  fi
  rm -f "$f"
}

case "${1:-start}" in
  --stop|stop)
    stop_pid jicofo "$dir/jicofo.pid"
    stop_pid jvb-sim "$dir/jvb-sim.pid"
    stop_pid jibri-sim "$dir/jibri-sim.pid"
    stop_pid jigasi-sim "$dir/jigasi-sim.pid"
    "$repo/scripts/prosody.sh" stop "$dir/prosody" >/dev/null || true
    echo "run-local: stopped"
    exit 0 ;;
  --status|status)
    for n in jicofo jvb-sim jibri-sim jigasi-sim; do
      if [ -f "$dir/$n.pid" ] && kill -0 "$(cat "$dir/$n.pid")" 2>/dev/null; then echo "$n: running (pid $(cat "$dir/$n.pid"))"; else echo "$n: stopped"; fi
    done
    "$repo/scripts/prosody.sh" status "$dir/prosody" >/dev/null && echo "prosody: running" || echo "prosody: stopped"
    exit 0 ;;
  --help|-h) sed -n '2,13p' "$0"; exit 0 ;;
  start|"") ;;
  *) echo "run-local: unknown argument $1 (use --stop, --status)" >&2; exit 2 ;;
esac

command -v cargo >/dev/null || { echo "run-local: cargo is required" >&2; exit 1; }
echo "run-local: building (release)..."
cargo build --release --quiet --manifest-path "$repo/Cargo.toml" --bins
bin="${CARGO_TARGET_DIR:-$repo/target}/release"

mode="${JICOFO_MODE:-flags}"
case "$mode" in
  flags|seed-2020) layout=seed ;;
  client-proxy) layout=client_proxy ;;
  *) echo "run-local: JICOFO_MODE must be flags, seed-2020 or client-proxy, not $mode" >&2; exit 2 ;;
esac
PROSODY_LAYOUT="$layout" "$repo/scripts/prosody.sh" start "$dir/prosody" > "$dir/prosody.env"
# shellcheck disable=SC1091
. "$dir/prosody.env"

if ! { [ -f "$dir/jvb-sim.pid" ] && kill -0 "$(cat "$dir/jvb-sim.pid")" 2>/dev/null; }; then
  JVB_PASSWORD="$JVB_PASSWORD" nohup "$bin/jvb-sim" --host 127.0.0.1 --port "$C2S_PORT" --domain "$XMPP_AUTH_DOMAIN" \
    --brewery "$BREWERY_JID" --nick jvb1 --ws-domain "127.0.0.1:$HTTP_PORT" --tls_ca_file "$CA_FILE" \
    --record "$dir/jvb-sim.jsonl" </dev/null >"$dir/jvb-sim.log" 2>&1 &
  echo $! > "$dir/jvb-sim.pid"
fi
if ! { [ -f "$dir/jibri-sim.pid" ] && kill -0 "$(cat "$dir/jibri-sim.pid")" 2>/dev/null; }; then
  GATEWAY_PASSWORD="$GATEWAY_PASSWORD" nohup "$bin/jibri-sim" --host 127.0.0.1 --port "$C2S_PORT" --domain "$XMPP_AUTH_DOMAIN" \
    --user jibri --brewery "$JIBRI_BREWERY_JID" --nick jibri-1 --tls_ca_file "$CA_FILE" --trace \
    </dev/null >"$dir/jibri-sim.log" 2>&1 &
  echo $! > "$dir/jibri-sim.pid"
fi
if ! { [ -f "$dir/jigasi-sim.pid" ] && kill -0 "$(cat "$dir/jigasi-sim.pid")" 2>/dev/null; }; then
  GATEWAY_PASSWORD="$GATEWAY_PASSWORD" nohup "$bin/jigasi-sim" --host 127.0.0.1 --port "$C2S_PORT" --domain "$XMPP_RECORDER_DOMAIN" \
    --user jigasi --brewery "$JIGASI_BREWERY_JID" --nick jg-1 --transcription --focus "$FOCUS_COMPONENT" --tls_ca_file "$CA_FILE" --trace \
    </dev/null >"$dir/jigasi-sim.log" 2>&1 &
  echo $! > "$dir/jigasi-sim.pid"
fi

# A fixture of tests/fixtures/config with this instance's domain, password, secret and port.
fill() { # fixture → stdout
  sed -e "s/meet\.example\.com/$XMPP_DOMAIN/g" -e "s/Tz8kW3qLm5RvX2pN/$FOCUS_PASSWORD/" \
      -e "s/W@9m#Lp4/$FOCUS_PASSWORD/" -e "s/k#7Rq@2x/$FOCUS_SECRET/" \
      -e "s/^JICOFO_PORT=5347\$/JICOFO_PORT=$COMPONENT_PORT/" -e "s/^JICOFO_HOST=localhost\$/JICOFO_HOST=127.0.0.1/" \
      "$repo/tests/fixtures/config/$1"
}

if ! { [ -f "$dir/jicofo.pid" ] && kill -0 "$(cat "$dir/jicofo.pid")" 2>/dev/null; }; then
  test_flags=(--user_port="$C2S_PORT" --tls_ca_file="$CA_FILE" --rest_port="${REST_PORT:-8888}")
  case "$mode" in
    flags)
      JICOFO_SECRET="$FOCUS_SECRET" JICOFO_AUTH_PASSWORD="$FOCUS_PASSWORD" RUST_LOG="${RUST_LOG:-info}" \
        nohup "$bin/jicofo" --domain="$XMPP_DOMAIN" --host=127.0.0.1 --port="$COMPONENT_PORT" "${test_flags[@]}" \
        </dev/null >"$dir/jicofo.log" 2>&1 &
      ;;
    seed-2020)
      mkdir -p "$dir/etc-jitsi-jicofo"
      fill debian-2020/config > "$dir/etc-jitsi-jicofo/config"
      fill debian-2020/sip-communicator.properties > "$dir/etc-jitsi-jicofo/sip-communicator.properties"
      env -u JICOFO_SECRET -u JICOFO_AUTH_PASSWORD JICOFO_CONFIG_DIR="$dir/etc-jitsi-jicofo" RUST_LOG="${RUST_LOG:-info}" \
        nohup "$bin/jicofo" "${test_flags[@]}" </dev/null >"$dir/jicofo.log" 2>&1 &
      ;;
    client-proxy)
      fill debian-current/jicofo.conf > "$dir/jicofo.conf"
      env -u JICOFO_SECRET -u JICOFO_AUTH_PASSWORD RUST_LOG="${RUST_LOG:-info}" \
        nohup "$bin/jicofo" --config="$dir/jicofo.conf" --host=127.0.0.1 "${test_flags[@]}" \
        </dev/null >"$dir/jicofo.log" 2>&1 &
      ;;
  esac
  echo $! > "$dir/jicofo.pid"
fi

# Wait until jicofo reports healthy (both connections up and a bridge in the brewery).
ok=""
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:${REST_PORT:-8888}/about/health" >/dev/null 2>&1; then ok=1; break; fi
  sleep 0.2
done
if [ -z "$ok" ]; then
  echo "run-local: jicofo did not become healthy; see $dir/jicofo.log and $dir/jvb-sim.log" >&2
  tail -5 "$dir/jicofo.log" >&2 || true
  exit 1
fi

cat <<EOF
run-local: running (logs in $dir), JICOFO_MODE=$mode
  Prosody     c2s 127.0.0.1:$C2S_PORT   component 127.0.0.1:$COMPONENT_PORT   http 127.0.0.1:$HTTP_PORT
  jicofo      pid $(cat "$dir/jicofo.pid")   REST http://127.0.0.1:${REST_PORT:-8888}/stats
  jvb-sim     pid $(cat "$dir/jvb-sim.pid")   (bridge simulator, no media)
  jibri-sim   pid $(cat "$dir/jibri-sim.pid")   (Jibri simulator: Record / live stream turn on, nothing is recorded)
  jigasi-sim  pid $(cat "$dir/jigasi-sim.pid")   (Jigasi simulator: dial-out and transcription join the room, no SIP)
Point a Jitsi Meet client (lib-jitsi-meet) at:
  hosts.domain = '$XMPP_DOMAIN'
  hosts.muc    = '$XMPP_MUC_DOMAIN'
  hosts.focus  = '$FOCUS_COMPONENT'
  serviceUrl   = '$WEBSOCKET_URL'   (or BOSH: $BOSH_URL)
Stop with: scripts/run-local.sh --stop
EOF
