#!/usr/bin/env bash
# scripts/install.sh — install jicofo (Rust) as a systemd service on a single Jitsi host, in
# place of the Java Jicofo of Jitsi's Debian packages.
#
# Usage (as root):  scripts/install.sh [--no-build]
#
#   1. builds the release binary (cargo build --release --bin jicofo), unless --no-build or
#      JICOFO_BIN=<path of a built binary> is given;
#   2. installs it as $PREFIX/bin/jicofo (PREFIX defaults to /usr/local);
#   3. installs the unit /etc/systemd/system/jicofo-rs.service and, when absent,
#      /etc/default/jicofo-rs (RUST_LOG, JICOFO_* variables, JICOFO_RS_ARGS);
#   4. keeps the host's configuration in /etc/jitsi/jicofo (jicofo.conf, config,
#      sip-communicator.properties): jicofo reads those files itself; only when there is
#      neither jicofo.conf nor config, a commented jicofo.conf template is installed there;
#   5. creates the unprivileged user jicofo (group jitsi) when missing, as Debian's package
#      does, and lets it read /etc/jitsi/jicofo;
#   6. on a host with the Java Jicofo (its jicofo.service, init script or /usr/share/jicofo):
#      stops, disables and masks jicofo.service (masked, so that an apt upgrade of the Java
#      package cannot start it again next to ours; `systemctl unmask jicofo.service` and
#      `systemctl enable --now jicofo.service` bring it back). Its files are left alone;
#   7. systemctl daemon-reload, enable --now jicofo-rs.service.
#
# Why a unit of its own (jicofo-rs.service) rather than replacing jicofo.service: the Java
# package owns that name (its init script, through systemd's sysv generator) and would take it
# back on upgrade; two names keep both packages' files intact and the switch reversible.
#
# Environment:
#   DESTDIR    install into this throw-away root instead of /: nothing outside DESTDIR is
#              touched, no systemctl, useradd or chown runs; what would run is printed as
#              "would run: ..." lines (CI tests the script this way)
#   PREFIX     /usr/local
#   JICOFO_BIN a built binary to install (skips the build)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DESTDIR="${DESTDIR:-}"
PREFIX="${PREFIX:-/usr/local}"
build=1
for arg in "$@"; do
    case "$arg" in
        --no-build) build="" ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown argument $arg (see --help)" >&2; exit 2 ;;
    esac
done
log() { echo "install.sh: $*"; }
die() { echo "install.sh: $*" >&2; exit 1; }

# Every command with an effect outside DESTDIR goes through here.
host() {
    if [ -n "$DESTDIR" ]; then
        echo "would run: $*"
    else
        "$@"
    fi
}

if [ -z "$DESTDIR" ] && [ "$(id -u)" != 0 ]; then
    die "run as root (or set DESTDIR=<dir> to install into a throw-away root)"
fi

# 1. The binary.
bin="${JICOFO_BIN:-}"
if [ -z "$bin" ]; then
    bin="${CARGO_TARGET_DIR:-$repo/target}/release/jicofo"
    if [ -n "$build" ]; then
        log "building the release binary"
        (cd "$repo" && cargo build --release --quiet --bin jicofo)
    fi
fi
[ -x "$bin" ] || die "no binary at $bin (build it, or drop --no-build)"

# 2-3. Binary, unit, defaults.
bindir="$PREFIX/bin"
install -D -m 0755 "$bin" "$DESTDIR$bindir/jicofo"
log "installed $DESTDIR$bindir/jicofo ($("$DESTDIR$bindir/jicofo" --version))"
unit="$DESTDIR/etc/systemd/system/jicofo-rs.service"
mkdir -p "$(dirname "$unit")"
sed "s|@BINDIR@|$bindir|g" "$repo/scripts/systemd/jicofo-rs.service" >"$unit.tmp"
chmod 0644 "$unit.tmp"
mv "$unit.tmp" "$unit"
log "installed $unit"
defaults="$DESTDIR/etc/default/jicofo-rs"
if [ -e "$defaults" ]; then
    log "keeping $defaults"
else
    install -D -m 0644 "$repo/scripts/systemd/jicofo-rs.default" "$defaults"
    log "installed $defaults"
fi

# 4. Configuration: the host's is kept; a template only where there is none.
confdir="$DESTDIR/etc/jitsi/jicofo"
if [ -e "$confdir/jicofo.conf" ] || [ -e "$confdir/config" ]; then
    for f in jicofo.conf config sip-communicator.properties; do
        [ ! -e "$confdir/$f" ] || log "keeping $confdir/$f"
    done
else
    install -D -m 0640 "$repo/scripts/systemd/jicofo.conf.example" "$confdir/jicofo.conf"
    log "installed a template $confdir/jicofo.conf: fill in the domain and the focus password"
fi

# 5. The user (Debian's package: user jicofo, group jitsi) and its access to the configuration.
if [ -n "$DESTDIR" ] || ! getent group jitsi >/dev/null; then
    [ -n "$DESTDIR" ] || log "creating group jitsi"
    host groupadd -f jitsi
fi
if [ -n "$DESTDIR" ] || ! getent passwd jicofo >/dev/null; then
    [ -n "$DESTDIR" ] || log "creating user jicofo"
    host useradd -r -g jitsi -M -d /nonexistent -s /usr/sbin/nologin jicofo
fi
host chown -R jicofo:jitsi /etc/jitsi/jicofo
host chmod 0750 /etc/jitsi/jicofo

# 6. The Java Jicofo.
java=""
for f in /etc/init.d/jicofo /lib/systemd/system/jicofo.service /etc/systemd/system/jicofo.service /usr/share/jicofo/jicofo.sh; do
    [ ! -e "$DESTDIR$f" ] || java="$f"
done
if [ -n "$java" ]; then
    log "found the Java Jicofo ($java): stopping, disabling and masking jicofo.service; its configuration stays"
    host systemctl stop jicofo.service
    host systemctl disable jicofo.service
    host systemctl mask jicofo.service
fi

# 7. Start ours.
host systemctl daemon-reload
host systemctl enable --now jicofo-rs.service
if [ -z "$DESTDIR" ]; then
    log "started; check it with: $bindir/jicofo --check   (and journalctl -u jicofo-rs)"
else
    log "installed into $DESTDIR (nothing outside it was changed)"
fi
