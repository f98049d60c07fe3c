#!/usr/bin/env bash
# Build an isolated Debian 13 (trixie) root holding GIMP 3.0 for the GIMP plug-in's end-to-end
# tests and its dialog screenshot (tests/e2e/gimp/test_gimp_e2e.py, scripts/gimp-screenshot.sh).
#
#   sudo scripts/install-gimp.sh        # root at ${STYLEBRIDGE_GIMP_ROOT:-<repo>/.hosts/gimp-root}
#
# Debian 12 only ships GIMP 2.10, so GIMP 3.0.4 comes from trixie, in a debootstrap root that
# leaves the host untouched (run commands in it with scripts/gimp-run.sh). Idempotent: a marker
# file names what was installed; a re-run with the same package set returns at once, one with a
# longer list only adds packages. A new root is built in ROOT.partial and renamed when complete,
# so a failed run never looks finished.
# Only the standard-library bridge talks to the server: no python3-zmq or python3-msgpack here.
# On the host it only adds debootstrap and Xvfb (apt-get) when they are missing.
# Environment: STYLEBRIDGE_GIMP_ROOT, STYLEBRIDGE_GIMP_MIRROR (default: this machine's apt mirror).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=${STYLEBRIDGE_GIMP_ROOT:-$REPO/.hosts/gimp-root}
MARKER=.stylebridge-gimp-ready
SUITE=trixie
# gimp + its Python binding; a font for readable dialog text (GIMP's fonts are only
# recommended); xdotool presses keys in GIMP's window under Xvfb (the undo test, the dialog).
PACKAGES=(gimp python3-gi gir1.2-gimp-3.0 fonts-dejavu-core xdotool)
STAMP="suite=$SUITE packages=${PACKAGES[*]}"

log() { echo "install-gimp: $*" >&2; }
die() { log "$*"; exit 1; }

[[ $(id -u) == 0 ]] || die "needs root (debootstrap, mounts, chroot)"

# The host's own apt mirror (first non-security URI), so this works wherever apt works.
host_mirror() {
  local uri
  uri=$(
    {
      grep -hE '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
        2>/dev/null | sed -E 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//' \
        | awk '{print $1}'
      grep -hE '^[[:space:]]*URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | sed -E 's/^[[:space:]]*URIs:[[:space:]]*//' | tr ' ' '\n'
    } | grep -E '^https?://' | grep -v security | head -n1
  )
  echo "${uri:-http://deb.debian.org/debian}"
}

# Host tools: debootstrap builds the root, Xvfb runs GIMP's GUI for the undo/cancel/dialog
# tests (everything else they need is inside the root).
ensure_host_tools() {
  local missing=()
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v Xvfb >/dev/null || missing+=(xvfb)
  ((${#missing[@]})) || return 0
  log "installing ${missing[*]} on the host"
  local apt=(apt-get -o DPkg::Lock::Timeout=900 -y -q)
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" install --no-install-recommends "${missing[@]}" ||
    { "${apt[@]}" update && DEBIAN_FRONTEND=noninteractive "${apt[@]}" install \
      --no-install-recommends "${missing[@]}"; }
}

# Inside a private mount namespace: whatever debootstrap or apt mount dies with the namespace.
in_namespace() { unshare --mount --propagation private -- "$@"; }

ensure_host_tools
if [[ -f $ROOT/$MARKER && $(head -n1 "$ROOT/$MARKER") == "$STAMP" ]]; then
  log "GIMP root ready at $ROOT"
  exit 0
fi

MIRROR=${STYLEBRIDGE_GIMP_MIRROR:-$(host_mirror)}
PARTIAL=$ROOT.partial

# apt inside the root, in its own mount namespace (proc, sys and dev vanish with it).
apt_in_root() {
  local root=$1; shift
  cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true  # the host's DNS, today's
  in_namespace bash -euc '
    root=$1; shift
    mount -t proc proc "$root/proc"
    mount -t sysfs sysfs "$root/sys"
    mount --rbind /dev "$root/dev"
    chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
      DEBIAN_FRONTEND=noninteractive sh -ec "
        apt-get -q update
        apt-get -q -y install --no-install-recommends $*
        apt-get clean
        rm -rf /var/lib/apt/lists/*"
  ' inner "$root" "$@"
}

finish() {  # the marker: first line the stamp, then what was installed from where
  local root=$1 version
  version=$(chroot "$root" dpkg-query -W -f '${Version}' gimp)
  { echo "$STAMP"; echo "gimp=$version mirror=$MIRROR"; } >"$root/$MARKER"
  log "GIMP $version ready at $ROOT ($(du -sh --one-file-system "$root" | cut -f1), $((SECONDS - start)) s)"
}

start=$SECONDS
# A complete root from an older package list only needs the new packages.
if [[ -f $ROOT/$MARKER ]]; then
  log "adding ${PACKAGES[*]} to the root at $ROOT"
  apt_in_root "$ROOT" "${PACKAGES[@]}" >>"$ROOT.log" 2>&1 ||
    { tail -n 30 "$ROOT.log" >&2; die "installing into the GIMP root failed (log: $ROOT.log)"; }
  finish "$ROOT"
  exit 0
fi

# Never delete a folder that is not ours: a complete root is only ever made by the rename below.
if [[ -e $ROOT ]]; then
  die "$ROOT exists but holds no complete GIMP root: remove it or set STYLEBRIDGE_GIMP_ROOT"
fi
mkdir -p "$(dirname "$ROOT")"
# A leftover of an interrupted run: nothing can be mounted in it (namespaces), so rm is safe.
rm -rf --one-file-system "$PARTIAL"

log "debootstrap $SUITE from $MIRROR into $PARTIAL"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
keyopt=()
[[ -f $keyring ]] && keyopt=(--keyring="$keyring")
in_namespace debootstrap --variant=minbase "${keyopt[@]}" "$SUITE" "$PARTIAL" "$MIRROR" \
  >"$PARTIAL.log" 2>&1 || { tail -n 30 "$PARTIAL.log" >&2; die "debootstrap failed"; }

# No services start inside the root.
printf '#!/bin/sh\nexit 101\n' >"$PARTIAL/usr/sbin/policy-rc.d"
chmod +x "$PARTIAL/usr/sbin/policy-rc.d"

log "installing ${PACKAGES[*]} inside the root"
apt_in_root "$PARTIAL" "${PACKAGES[@]}" >>"$PARTIAL.log" 2>&1 ||
  { tail -n 30 "$PARTIAL.log" >&2; die "installing GIMP in the root failed (log: $PARTIAL.log)"; }
finish "$PARTIAL"
mv "$PARTIAL.log" "$ROOT.log"
mv "$PARTIAL" "$ROOT"
