#!/usr/bin/env bash
# scripts/prosody.sh — a private Prosody (Debian's 0.12) laid out like a Jitsi Meet single host,
# for jicofo's tests and local runs.
#
# Usage:
#   scripts/prosody.sh start  [DIR]   create DIR if needed, write config/certs/users, start Prosody,
#                                     wait until its ports accept connections, print the env
#   scripts/prosody.sh stop   [DIR]   stop it (SIGTERM, SIGKILL after 5 s), remove DIR/prosody.pid
#   scripts/prosody.sh status [DIR]   print "running"/"stopped" on stderr and the env on stdout;
#                                     exit 0 when running, 3 when not
#   scripts/prosody.sh env    [DIR]   print DIR/env (exit 1 when the instance was never started)
#
#   DIR defaults to $PROSODY_DIR, else <repo>/tmp/prosody.
#   Everything printed on stdout is shell-sourceable (`export KEY='value'` lines); diagnostics go
#   to stderr, so this works:   eval "$(scripts/prosody.sh start)"
#   The same lines are written to DIR/env (`. DIR/env`).
#
# Environment (optional):
#   PROSODY_C2S_PORT, PROSODY_COMPONENT_PORT, PROSODY_HTTP_PORT  fixed ports (else free ports in
#       20000-31999 are picked on first start and persisted in DIR/state, so a later `start` of the
#       same DIR — e.g. a restart in a reconnect test — reuses the same ports and secrets)
#   XMPP_DOMAIN       domain (default meet.test; fixed once DIR exists)
#   PROSODY_LAYOUT    seed (default) | client_proxy (fixed once DIR exists):
#       seed          focus.D is an external component (XEP-0114) with FOCUS_SECRET, as the
#                     2020-era installers and jicofo's seed README set it up
#       client_proxy  focus.D is a client_proxy component forwarding to focus@auth.D, with no
#                     component secret (FOCUS_SECRET is empty in DIR/env), as Jitsi's Debian
#                     installers set it up since 2021; served by the project's test module
#                     scripts/prosody-modules/mod_jicofo_test_client_proxy.lua
#   PROSODY_PROXY_SUBSCRIBED  1 (default) | 0, client_proxy layout only: whether focus.D is
#       subscribed to the focus user's presence in focus's roster, as the Debian installer does
#       with `prosodyctl mod_roster_command subscribe focus.D focus@auth.D` (then the focus's
#       initial presence reaches the proxy); with 0 only a directed presence does
#   PROSODY_LOG_LEVEL debug|info|warn (default info)
#   PROSODY_GC        incremental|generational: Lua garbage collector mode (default: Prosody's own,
#       incremental with pause 105 %, which under load costs Prosody more than half its CPU:
#       the load benchmark's storm used 19.7 s of Prosody CPU with it, 8.5 s with generational)
#
# Variables in DIR/env:
#   PROSODY_DIR PROSODY_PID PROSODY_LAYOUT XMPP_DOMAIN XMPP_HOST C2S_PORT COMPONENT_PORT HTTP_PORT
#   FOCUS_SECRET FOCUS_PASSWORD JVB_PASSWORD USER1_PASSWORD USER2_PASSWORD CA_FILE
#   GATEWAY_PASSWORD (of jibri@auth.D, recorder@recorder.D and jigasi@recorder.D)
#   plus conveniences: XMPP_AUTH_DOMAIN XMPP_MUC_DOMAIN XMPP_INTERNAL_MUC_DOMAIN
#   FOCUS_COMPONENT BREWERY_JID WEBSOCKET_URL BOSH_URL
#
# Layout (domain D = meet.test), mirroring jitsi-meet's Debian prosody config:
#   VirtualHost D               anonymous auth, bosh (/http-bind), websocket (/xmpp-websocket);
#                               c2s encryption optional (anonymous clients on loopback)
#   VirtualHost auth.D          internal_hashed (SCRAM-SHA-1, PLAIN after TLS); users focus, jvb,
#                               user1, user2, jibri; STARTTLS required (Prosody default)
#   VirtualHost recorder.D      internal_hashed: the hidden domain of Jibri's recorder user and
#                               of the test Jigasi (users recorder, jigasi): jicofo's default
#                               --trusted_domain, so their members count as Jibri/Jigasi
#   Component conference.D      MUC, memory storage, no room locking, no tombstones, cache 1000;
#                               anyone may create rooms (Prosody default; real Jitsi sets
#                               restrict_room_creation = true so only the focus creates rooms);
#                               whois default (semi-anonymous) so jicofo must submit
#                               muc#roomconfig_whois=anyone itself
#   Component internal.auth.D   brewery MUCs (JvbBrewery, JibriBrewery, JigasiBrewery @internal.auth.D;
#                               created by whoever joins first), no locking, public jids, admins
#                               focus+jvb
#   Components avmoderation.D, metadata.D, breakout.D (MUC): test stand-ins for Jitsi's AV
#                               moderation, room metadata and breakout rooms plugins, advertised
#                               as disco identities of D (scripts/prosody-modules/mod_jicofo_test_*)
#   Component focus.D           seed layout: external component (XEP-0114), secret FOCUS_SECRET;
#                               client_proxy layout: "jicofo_test_client_proxy" component with
#                               target_address = focus@auth.D (see PROSODY_LAYOUT)
#   global admins = { focus@auth.D }  (so the focus is owner in every MUC room)
#   TLS: a per-DIR test CA (DIR/certs/ca.crt = CA_FILE) signs DIR/certs/D.crt with SANs
#        D, *.D, auth.D, *.auth.D, conference.D, internal.auth.D, focus.D, localhost, IP 127.0.0.1.
#        (A separate CA rather than one self-signed leaf: webpki/rustls reject a CA:TRUE cert
#        used as the server cert, and OpenSSL/Java are happy with either.)
#   Only 127.0.0.1 is bound; s2s is disabled; no https port; mod_limits is not loaded (no rate
#   limiting); stanza size limits raised to 10 MiB.
#
# Prosody quirks handled here (verified on Debian 12, prosody 0.12.3):
#   * As root, mod_posix refuses to run ("Danger, Will Robinson!") and prosodyctl switches to the
#     `prosody` user (which then cannot write DIR). `run_as_root = true` in the config fixes both.
#   * Prosody is run in the foreground (-F) under nohup; its own `pidfile` is DIR/prosody.pid,
#     which holds the same pid as the one this script records.
#   * A port that cannot be bound is only logged ("Failed to open server port"), Prosody keeps
#     running; start treats that as a failure (and retries with other ports if it picked them).
#   * Concurrent starts (parallel tests) serialise port picking and binding on
#     ${TMPDIR:-/tmp}/jicofo-prosody-ports.lock (flock; the fd is closed for prosody).
#   * s2s would bind the default 5269; it is disabled (modules_disabled = { "s2s" }).
#   * http requests whose Host header is not a VirtualHost (127.0.0.1:PORT) are routed to
#     http_default_host = D.
#   * c2s_require_encryption defaults to true, so even SASL ANONYMOUS is not offered before
#     STARTTLS; it is set to false on VirtualHost D only, so anonymous clients may use plain c2s,
#     and websocket/bosh are considered secure (consider_*_secure).
#
# Verified on Debian 12 / prosody 0.12.3 (scripts/check-prosody.py DIR, standard library only):
#   * component port: XEP-0114 handshake for focus.D with sha1(stream id + FOCUS_SECRET) accepted,
#     a wrong secret refused ("Given token does not match calculated token")
#   * c2s auth.D: <starttls><required/></starttls>, no SASL before TLS; the certificate validates
#     against CA_FILE for auth.D (`openssl s_client -starttls xmpp -xmpphost auth.D -connect
#     127.0.0.1:$C2S_PORT -CAfile $CA_FILE -verify_hostname auth.D` → "Verify return code: 0 (ok)",
#     TLSv1.3); after TLS: SCRAM-SHA-1 and PLAIN (no -PLUS: TLS 1.3 has no tls-unique);
#     focus logs in with SCRAM-SHA-1, user1 with PLAIN
#   * c2s D: STARTTLS optional (and valid for D); ANONYMOUS offered and working over plain c2s
#   * MUC: the focus (admin) gets affiliation owner in a room it creates; the room is not locked
#     (an anonymous user joins before any configuration); in the brewery the real jid of jvb is
#     visible to the focus
#   * ws://127.0.0.1:HTTP_PORT/xmpp-websocket → "HTTP/1.1 101 Switching Protocols" (with any
#     Origin, CORS headers echo it) and offers ANONYMOUS; BOSH /http-bind creates a session
#   * restart on the same ports; concurrent starts of 5 instances get distinct ports
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
PORT_LOCK="${TMPDIR:-/tmp}/jicofo-prosody-ports.lock"

log() { echo "prosody.sh: $*" >&2; }
die() { log "$*"; exit 1; }

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
    exit 2
}

cmd="${1:-}"
[ -n "$cmd" ] || usage
shift || true
DIR="${1:-${PROSODY_DIR:-$REPO_ROOT/tmp/prosody}}"
[ "$cmd" != start ] || mkdir -p "$DIR"
if [ -d "$DIR" ]; then
    DIR="$(cd "$DIR" && pwd)"
elif [ "$cmd" = stop ] || [ "$cmd" = status ] || [ "$cmd" = env ]; then
    log "no instance directory $DIR"
    [ "$cmd" = stop ] && exit 0
    [ "$cmd" = status ] && exit 3
    exit 1
fi

CONFIG="$DIR/prosody.cfg.lua"
STATE="$DIR/state"
PIDFILE="$DIR/prosody.pid"
LOGFILE="$DIR/prosody.log"
ENVFILE="$DIR/env"
CERTS="$DIR/certs"

# ---------------------------------------------------------------------------------------------
# helpers

port_in_use() { # port → 0 when something accepts connections on 127.0.0.1:port
    timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

pick_port() { # prints a port in 20000-31999 (below Linux's ephemeral range) that is not in use
    local p i
    for i in $(seq 1 200); do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
        case " ${PICKED_PORTS:-} " in *" $p "*) continue ;; esac
        if ! port_in_use "$p"; then
            PICKED_PORTS="${PICKED_PORTS:-} $p"
            echo "$p"
            return 0
        fi
    done
    die "could not find a free port"
}

random_secret() { openssl rand -hex 16; }

alive() { # pid → 0 when the process exists and is not a zombie (pid 1 may not reap orphans)
    local state
    kill -0 "$1" 2>/dev/null || return 1
    state="$(sed -e 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" || return 0
    [ "$state" != Z ]
}

running_pid() { # prints the pid when the instance in DIR runs
    local pid
    [ -f "$PIDFILE" ] || return 1
    pid="$(tr -dc 0-9 <"$PIDFILE")"
    [ -n "$pid" ] || return 1
    alive "$pid" || return 1
    # make sure the pid is our prosody (pids get reused)
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$CONFIG" || return 1
    echo "$pid"
}

ensure_prosody() {
    command -v prosody >/dev/null && command -v prosodyctl >/dev/null && return 0
    log "prosody is not installed; installing it with apt-get"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    # Do not let the package start the system-wide instance (it would listen on all interfaces).
    local policy=/usr/sbin/policy-rc.d added_policy=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
        $sudo chmod 755 "$policy"
        added_policy=1
    fi
    local rc=0
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y prosody >&2 || {
        DEBIAN_FRONTEND=noninteractive $sudo apt-get update >&2 &&
            DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y prosody >&2
    } || rc=$?
    [ -z "$added_policy" ] || $sudo rm -f "$policy"
    [ "$rc" = 0 ] || die "apt-get install prosody failed"
    command -v openssl >/dev/null || DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y openssl >&2
}

lua_str() { # a Lua long-bracket string literal
    printf '[==[%s]==]' "$1"
}

# ---------------------------------------------------------------------------------------------
# state: domain, ports, secrets (persisted so restarts reuse them)

load_state() {
    DOMAIN="" LAYOUT="" C2S_PORT="" COMPONENT_PORT="" HTTP_PORT=""
    FOCUS_SECRET="" FOCUS_PASSWORD="" JVB_PASSWORD="" USER1_PASSWORD="" USER2_PASSWORD="" GATEWAY_PASSWORD=""
    # shellcheck disable=SC1090
    [ ! -f "$STATE" ] || . "$STATE"
    if [ -n "$DOMAIN" ] && [ -n "${XMPP_DOMAIN:-}" ] && [ "$XMPP_DOMAIN" != "$DOMAIN" ]; then
        die "$DIR was created for domain $DOMAIN, not $XMPP_DOMAIN; remove $DIR first"
    fi
    DOMAIN="${DOMAIN:-${XMPP_DOMAIN:-meet.test}}"
    if [ -n "$LAYOUT" ] && [ -n "${PROSODY_LAYOUT:-}" ] && [ "$PROSODY_LAYOUT" != "$LAYOUT" ]; then
        die "$DIR was created with layout $LAYOUT, not $PROSODY_LAYOUT; remove $DIR first"
    fi
    LAYOUT="${LAYOUT:-${PROSODY_LAYOUT:-seed}}"
    case "$LAYOUT" in
        seed|client_proxy) ;;
        *) die "PROSODY_LAYOUT must be seed or client_proxy, not $LAYOUT" ;;
    esac
    FOCUS_SECRET="${FOCUS_SECRET:-$(random_secret)}"
    FOCUS_PASSWORD="${FOCUS_PASSWORD:-$(random_secret)}"
    JVB_PASSWORD="${JVB_PASSWORD:-$(random_secret)}"
    USER1_PASSWORD="${USER1_PASSWORD:-$(random_secret)}"
    USER2_PASSWORD="${USER2_PASSWORD:-$(random_secret)}"
    GATEWAY_PASSWORD="${GATEWAY_PASSWORD:-$(random_secret)}"
    C2S_PORT="${PROSODY_C2S_PORT:-$C2S_PORT}"
    COMPONENT_PORT="${PROSODY_COMPONENT_PORT:-$COMPONENT_PORT}"
    HTTP_PORT="${PROSODY_HTTP_PORT:-$HTTP_PORT}"
}

save_state() {
    cat >"$STATE.tmp" <<EOF
DOMAIN='$DOMAIN'
LAYOUT='$LAYOUT'
C2S_PORT='$C2S_PORT'
COMPONENT_PORT='$COMPONENT_PORT'
HTTP_PORT='$HTTP_PORT'
FOCUS_SECRET='$FOCUS_SECRET'
FOCUS_PASSWORD='$FOCUS_PASSWORD'
JVB_PASSWORD='$JVB_PASSWORD'
USER1_PASSWORD='$USER1_PASSWORD'
USER2_PASSWORD='$USER2_PASSWORD'
GATEWAY_PASSWORD='$GATEWAY_PASSWORD'
EOF
    chmod 600 "$STATE.tmp"
    mv "$STATE.tmp" "$STATE"
}

write_env() { # $1 = pid
    local secret="$FOCUS_SECRET"
    [ "$LAYOUT" = seed ] || secret=""
    cat >"$ENVFILE.tmp" <<EOF
export PROSODY_DIR='$DIR'
export PROSODY_PID='$1'
export PROSODY_LAYOUT='$LAYOUT'
export XMPP_DOMAIN='$DOMAIN'
export XMPP_HOST='127.0.0.1'
export C2S_PORT='$C2S_PORT'
export COMPONENT_PORT='$COMPONENT_PORT'
export HTTP_PORT='$HTTP_PORT'
export FOCUS_SECRET='$secret'
export FOCUS_PASSWORD='$FOCUS_PASSWORD'
export JVB_PASSWORD='$JVB_PASSWORD'
export USER1_PASSWORD='$USER1_PASSWORD'
export USER2_PASSWORD='$USER2_PASSWORD'
export GATEWAY_PASSWORD='$GATEWAY_PASSWORD'
export JIBRI_BREWERY_JID='JibriBrewery@internal.auth.$DOMAIN'
export JIGASI_BREWERY_JID='JigasiBrewery@internal.auth.$DOMAIN'
export XMPP_RECORDER_DOMAIN='recorder.$DOMAIN'
export CA_FILE='$CERTS/ca.crt'
export XMPP_AUTH_DOMAIN='auth.$DOMAIN'
export XMPP_MUC_DOMAIN='conference.$DOMAIN'
export XMPP_INTERNAL_MUC_DOMAIN='internal.auth.$DOMAIN'
export FOCUS_COMPONENT='focus.$DOMAIN'
export BREWERY_JID='JvbBrewery@internal.auth.$DOMAIN'
export WEBSOCKET_URL='ws://127.0.0.1:$HTTP_PORT/xmpp-websocket'
export BOSH_URL='http://127.0.0.1:$HTTP_PORT/http-bind'
EOF
    mv "$ENVFILE.tmp" "$ENVFILE"
}

# ---------------------------------------------------------------------------------------------
# certificates

make_certs() {
    local leaf="$CERTS/$DOMAIN.crt" key="$CERTS/$DOMAIN.key"
    [ -s "$leaf" ] && [ -s "$key" ] && [ -s "$CERTS/ca.crt" ] && return 0
    mkdir -p "$CERTS"
    log "generating test CA and certificate for $DOMAIN in $CERTS"
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
        -keyout "$CERTS/ca.key" -out "$CERTS/ca.crt" \
        -subj "/O=jicofo tests/CN=jicofo test CA ($DOMAIN)" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -new -newkey rsa:2048 -nodes -sha256 \
        -keyout "$key" -out "$CERTS/$DOMAIN.csr" -subj "/O=jicofo tests/CN=$DOMAIN" 2>/dev/null
    cat >"$CERTS/$DOMAIN.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:$DOMAIN,DNS:*.$DOMAIN,DNS:auth.$DOMAIN,DNS:*.auth.$DOMAIN,DNS:conference.$DOMAIN,DNS:internal.auth.$DOMAIN,DNS:focus.$DOMAIN,DNS:localhost,IP:127.0.0.1
EOF
    openssl x509 -req -sha256 -days 3650 -in "$CERTS/$DOMAIN.csr" \
        -CA "$CERTS/ca.crt" -CAkey "$CERTS/ca.key" -set_serial "0x$(openssl rand -hex 8)" \
        -extfile "$CERTS/$DOMAIN.ext" -out "$leaf" 2>/dev/null
    rm -f "$CERTS/$DOMAIN.csr"
    chmod 600 "$CERTS/ca.key" "$key"
}

# ---------------------------------------------------------------------------------------------
# config

write_config() {
    local d="$DOMAIN" level="${PROSODY_LOG_LEVEL:-info}" gc=""
    case "${PROSODY_GC:-}" in
        "") ;;
        incremental|generational) gc="gc = { mode = \"$PROSODY_GC\" }" ;;
        *) die "PROSODY_GC must be incremental or generational, not $PROSODY_GC" ;;
    esac
    cat >"$CONFIG" <<EOF
-- Generated by scripts/prosody.sh (rewritten on every start). Jitsi Meet single-host layout.

-- Prosody refuses to run as root (mod_posix) and prosodyctl would switch to the 'prosody' user.
run_as_root = true
pidfile = $(lua_str "$PIDFILE")
data_path = $(lua_str "$DIR/data")
log = {
    { levels = { min = "$level" }, to = "file", filename = $(lua_str "$LOGFILE") };
}

-- Loopback only, private ports.
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { $C2S_PORT }
c2s_interfaces = { "127.0.0.1" }
c2s_direct_tls_ports = {}
legacy_ssl_ports = {}
s2s_ports = {}
component_ports = { $COMPONENT_PORT }
component_interfaces = { "127.0.0.1" }
http_ports = { $HTTP_PORT }
http_interfaces = { "127.0.0.1" }
https_ports = {}
https_interfaces = { "127.0.0.1" }
http_default_host = "$d"

admins = { "focus@auth.$d" }
-- The project's test modules (mod_jicofo_test_client_proxy for PROSODY_LAYOUT=client_proxy).
plugin_paths = { $(lua_str "$SCRIPT_DIR/prosody-modules") }

modules_enabled = {
    "roster"; "saslauth"; "tls"; "disco"; "ping"; "smacks"; "time"; "version"; "uptime";
}
-- no s2s (it would bind 5269); posix stays (auto-loaded: pidfile, signals)
modules_disabled = { "s2s"; "s2s_auth_certs" }

certificates = $(lua_str "$CERTS")
ssl = {
    certificate = $(lua_str "$CERTS/$d.crt");
    key = $(lua_str "$CERTS/$d.key");
}

-- Small stanzas go out at once: with Nagle on, a second small write waits for the ACK the peer
-- delays by up to 40 ms (Linux delayed ACK), which adds ~40 ms steps to every exchange.
network_settings = { nagle = false }
$gc

-- No mod_limits (no rate limiting); big stanzas (jingle with many sources).
c2s_stanza_size_limit = 10 * 1024 * 1024
component_stanza_size_limit = 10 * 1024 * 1024
http_max_content_size = 10 * 1024 * 1024

consider_websocket_secure = true
consider_bosh_secure = true
-- Browsers from other origins: in 0.12 cross_domain_websocket/cross_domain_bosh are deprecated
-- no-ops; CORS is on by default for both (any origin). Stated explicitly:
http_cors_override = {
    bosh = { enabled = true };
    websocket = { enabled = true };
}

-- XEP-0198 as in jitsi-meet's config (only clients that enable resumption hibernate).
smacks_max_unacked_stanzas = 5
smacks_hibernation_time = 60
smacks_max_old_sessions = 1

VirtualHost "$d"
    authentication = "anonymous"
    -- anonymous web clients: plain c2s on loopback is fine; ws/bosh count as secure anyway
    c2s_require_encryption = false
    modules_enabled = { "bosh"; "websocket"; "ping"; "jicofo_test_components_identity" }
    -- The Jitsi components the focus discovers (disco#info identities), as Jitsi's plugins
    -- advertise them; served below by the project's test modules.
    jicofo_test_component_identities = {
        av_moderation = "avmoderation.$d";
        breakout_rooms = "breakout.$d";
        room_metadata = "metadata.$d";
    }

VirtualHost "auth.$d"
    authentication = "internal_hashed"
    -- c2s_require_encryption: Prosody default (true) => STARTTLS before SASL

-- Jibri's hidden domain (jitsi-meet config.hiddenDomain), also the test Jigasi's login.
VirtualHost "recorder.$d"
    authentication = "internal_hashed"

Component "conference.$d" "muc"
    storage = "memory"
    muc_room_locking = false
    muc_tombstones = false
    muc_room_cache_size = 1000
    admins = { "focus@auth.$d" }

Component "internal.auth.$d" "muc"
    storage = "memory"
    muc_room_locking = false
    muc_room_default_public_jids = true
    muc_tombstones = false
    admins = { "focus@auth.$d", "jvb@auth.$d" }

-- Test stand-ins for Jitsi's AV moderation, room metadata and breakout rooms plugins
-- (scripts/prosody-modules/mod_jicofo_test_*.lua).
Component "avmoderation.$d" "jicofo_test_av_moderation_component"
    muc_component = "conference.$d"

Component "metadata.$d" "jicofo_test_room_metadata_component"
    muc_component = "conference.$d"

Component "breakout.$d" "muc"
    storage = "memory"
    muc_room_locking = false
    muc_tombstones = false
    admins = { "focus@auth.$d" }
    modules_enabled = { "jicofo_test_breakout_rooms" }
    breakout_rooms_main_muc = "conference.$d"

$(focus_component)
EOF
}

focus_component() { # the focus.D component of the layout
    if [ "$LAYOUT" = client_proxy ]; then
        cat <<EOF
-- The Debian installers' client_proxy, served by the project's test module.
Component "focus.$DOMAIN" "jicofo_test_client_proxy"
    target_address = "focus@auth.$DOMAIN"
EOF
    else
        cat <<EOF
Component "focus.$DOMAIN"
    component_secret = "$FOCUS_SECRET"
EOF
    fi
}

subscribe_proxy() { # client_proxy layout: focus.D subscribed to focus's presence (roster item)
    local roster="$DIR/data/auth%2e${DOMAIN//./%2e}/roster/focus.dat"
    if [ "$LAYOUT" != client_proxy ] || [ "${PROSODY_PROXY_SUBSCRIBED:-1}" = 0 ]; then
        rm -f "$roster"
        return 0
    fi
    # What `prosodyctl mod_roster_command subscribe focus.D focus@auth.D` leaves in Prosody's
    # file storage: focus.D may see focus's presence (subscription "from").
    mkdir -p "$(dirname "$roster")"
    cat >"$roster" <<EOF
return {
	[false] = { version = 1; pending = {}; };
	["focus.$DOMAIN"] = { subscription = "from"; groups = {}; };
};
EOF
}

register_users() {
    local uh u h p acct
    for uh in focus@auth jvb@auth user1@auth user2@auth jibri@auth recorder@recorder jigasi@recorder; do
        u="${uh%@*}" h="${uh#*@}.$DOMAIN"
        case "$u" in
            focus) p="$FOCUS_PASSWORD" ;; jvb) p="$JVB_PASSWORD" ;;
            user1) p="$USER1_PASSWORD" ;; user2) p="$USER2_PASSWORD" ;;
            *) p="$GATEWAY_PASSWORD" ;;
        esac
        # prosody's datamanager encodes "." in host names as %2e
        acct="$DIR/data/${h//./%2e}/accounts/$u.dat"
        [ -f "$acct" ] && continue
        prosodyctl --config "$CONFIG" register "$u" "$h" "$p" >&2 ||
            die "prosodyctl register $u@$h failed"
        [ -f "$acct" ] || die "registered $u@$h but $acct does not exist"
    done
}

# ---------------------------------------------------------------------------------------------
# commands

print_env() { cat "$ENVFILE"; }

wait_ready() { # $1 = pid; 0 ready, 1 failed, 2 port bind failure
    local pid="$1" deadline=$((SECONDS + 15)) p ok
    while [ "$SECONDS" -lt "$deadline" ]; do
        alive "$pid" || return 1
        grep -q "Failed to open server port" "$LOGFILE" 2>/dev/null && return 2
        ok=1
        # (no external component in the client_proxy layout: Prosody opens no component port)
        for p in "$C2S_PORT" "$HTTP_PORT" $([ "$LAYOUT" = client_proxy ] || echo "$COMPONENT_PORT"); do
            port_in_use "$p" || { ok=""; break; }
        done
        if [ -n "$ok" ]; then
            # the ports answer; make sure they are ours (another process could hold one)
            grep -q "Failed to open server port" "$LOGFILE" 2>/dev/null && return 2
            return 0
        fi
        sleep 0.1
    done
    return 1
}

stop_pid() {
    local pid="$1" i
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 1 50); do
        alive "$pid" || return 0
        sleep 0.1
    done
    log "prosody (pid $pid) did not stop after SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for i in $(seq 1 20); do
        alive "$pid" || return 0
        sleep 0.1
    done
}

cmd_start() {
    local pid
    if pid="$(running_pid)"; then
        log "already running (pid $pid) in $DIR"
        print_env
        return 0
    fi
    ensure_prosody
    command -v openssl >/dev/null || die "openssl is required"

    # Serialise port picking + binding between concurrent starts (parallel tests).
    exec 9>>"$PORT_LOCK"
    flock -w 120 9 || die "timed out waiting for $PORT_LOCK"

    load_state
    local may_retry="" attempt rc
    # retry with other ports only when this start picked all of them (none given, none persisted)
    [ -z "$C2S_PORT$COMPONENT_PORT$HTTP_PORT" ] && may_retry=1
    mkdir -p "$DIR/data"
    chmod 700 "$DIR/data"
    make_certs

    for attempt in 1 2 3; do
        PICKED_PORTS="$C2S_PORT $COMPONENT_PORT $HTTP_PORT"
        [ -n "$C2S_PORT" ] || C2S_PORT="$(pick_port)"
        PICKED_PORTS="$PICKED_PORTS $C2S_PORT"
        [ -n "$COMPONENT_PORT" ] || COMPONENT_PORT="$(pick_port)"
        PICKED_PORTS="$PICKED_PORTS $COMPONENT_PORT"
        [ -n "$HTTP_PORT" ] || HTTP_PORT="$(pick_port)"
        save_state
        write_config
        register_users
        subscribe_proxy

        rm -f "$PIDFILE"
        [ ! -f "$LOGFILE" ] || mv "$LOGFILE" "$LOGFILE.prev"
        # fd 9 (the lock) must not leak into prosody, or the lock would be held forever
        nohup prosody --config "$CONFIG" -F >>"$LOGFILE" 2>&1 </dev/null 9>&- &
        pid=$!
        echo "$pid" >"$PIDFILE"
        rc=0
        wait_ready "$pid" || rc=$?
        if [ "$rc" = 0 ]; then
            write_env "$pid"
            flock -u 9
            exec 9>&-
            log "prosody running (pid $pid): c2s $C2S_PORT, component $COMPONENT_PORT, http $HTTP_PORT, dir $DIR"
            print_env
            return 0
        fi
        stop_pid "$pid"
        rm -f "$PIDFILE"
        if [ "$rc" = 2 ] && [ -n "$may_retry" ] && [ "$attempt" -lt 3 ]; then
            log "a port was taken (attempt $attempt); retrying with other ports"
            mv "$LOGFILE" "$LOGFILE.failed-$attempt"
            C2S_PORT="" COMPONENT_PORT="" HTTP_PORT=""
            continue
        fi
        [ "$rc" != 2 ] || log "a port is taken by another process"
        break
    done
    log "prosody failed to start; last lines of $LOGFILE:"
    tail -n 40 "$LOGFILE" >&2 || true
    exit 1
}

cmd_stop() {
    local pid
    if pid="$(running_pid)"; then
        stop_pid "$pid"
        log "stopped prosody (pid $pid) in $DIR"
    else
        log "not running in $DIR"
    fi
    rm -f "$PIDFILE"
}

cmd_status() {
    local pid
    if pid="$(running_pid)"; then
        log "running (pid $pid) in $DIR"
        print_env
        return 0
    fi
    log "stopped ($DIR)"
    [ ! -f "$ENVFILE" ] || print_env
    return 3
}

cmd_env() {
    [ -f "$ENVFILE" ] || die "no env in $DIR (never started?)"
    print_env
}

case "$cmd" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) cmd_env ;;
    -h | --help | help) usage ;;
    *) log "unknown command: $cmd"; usage ;;
esac
