#!/usr/bin/env bash
# Build an isolated Debian sid root holding today's hosts, GIMP 3.2 (sid) and Krita 6 with
# PyQt6 (experimental), beside the GIMP 3.0 root of scripts/install-gimp.sh.
#
#   sudo scripts/install-sid.sh         # root at ${STYLEBRIDGE_SID_ROOT:-<repo>/.hosts/sid-root}
#
# Run commands in it with `scripts/root-run.sh --root sid ...`. Same discipline as
# install-gimp.sh: idempotent (a marker file names the package set and the gimp and krita
# versions installed; a re-run with the same package set returns at once, one with a longer
# list only adds packages), a new root is built in ROOT.partial and renamed when complete so a
# failed run never looks finished, and everything debootstrap and apt mount lives in a private
# mount namespace. Prints the build time and the root's size.
# Krita 6 runs in the root under the root's own Xvfb (xvfb-run -n N: a display number free on
# the host, since the root shares the host's network namespace and so X's abstract sockets).
# python3-pyqt6 is only a Recommends of krita 6, and Python plug-ins need it: named here.
# On the host it only adds debootstrap (apt-get) when it is missing.
# Environment: STYLEBRIDGE_SID_ROOT, STYLEBRIDGE_SID_MIRROR (default: this machine's apt mirror).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=${STYLEBRIDGE_SID_ROOT:-$REPO/.hosts/sid-root}
MARKER=.stylebridge-sid-ready
SUITE=sid
# From sid: gimp 3.2 + its Python binding, Xvfb + xauth (xvfb-run) for Krita's window and
# GIMP's GUI, a font for readable dialog text, xdotool for key presses under Xvfb.
PACKAGES=(gimp python3-gi gir1.2-gimp-3.0 xvfb xauth fonts-dejavu-core xdotool)
# From experimental (sid has Krita 5.3): Krita 6 and the PyQt6 its Python plug-ins need.
EXPERIMENTAL=(krita python3-pyqt6)
STAMP="suite=$SUITE packages=${PACKAGES[*]} experimental=${EXPERIMENTAL[*]}"

log() { echo "install-sid: $*" >&2; }
die() { log "$*"; exit 1; }

[[ $(id -u) == 0 ]] || die "needs root (debootstrap, mounts, chroot)"

# The host's own Debian mirror: the first non-security URI of its apt sources that looks like
# a Debian archive (ends in /debian), else the first non-security one, else deb.debian.org.
host_mirror() {
  local uris uri
  uris=$(
    {
      grep -hE '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
        2>/dev/null | sed -E 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//' \
        | awk '{print $1}'
      grep -hE '^[[:space:]]*URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | sed -E 's/^[[:space:]]*URIs:[[:space:]]*//' | tr ' ' '\n'
    } | grep -E '^https?://' | grep -v security || true
  )
  uri=$(grep -E '/debian/?$' <<<"$uris" | head -n1 || true)
  [[ -n $uri ]] || uri=$(head -n1 <<<"$uris")
  echo "${uri:-http://deb.debian.org/debian}"
}

ensure_host_tools() {  # debootstrap builds the root; everything else is inside it
  command -v debootstrap >/dev/null && return 0
  log "installing debootstrap on the host"
  local apt=(apt-get -o DPkg::Lock::Timeout=900 -y -q)
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" install --no-install-recommends debootstrap ||
    { "${apt[@]}" update && DEBIAN_FRONTEND=noninteractive "${apt[@]}" install \
      --no-install-recommends debootstrap; }
}

# Inside a private mount namespace: whatever debootstrap or apt mount dies with the namespace.
in_namespace() { unshare --mount --propagation private -- "$@"; }

ensure_host_tools
if [[ -f $ROOT/$MARKER && $(head -n1 "$ROOT/$MARKER") == "$STAMP" ]]; then
  log "sid root ready at $ROOT ($(sed -n 2p "$ROOT/$MARKER"))"
  exit 0
fi

MIRROR=${STYLEBRIDGE_SID_MIRROR:-$(host_mirror)}
PARTIAL=$ROOT.partial

# apt's configuration in the root, before its first `apt-get update`: the mirror's sid and
# experimental Release files may carry an expired Valid-Until (a snapshot), and experimental
# is a source of its own (NotAutomatic: only `-t experimental` installs from it).
configure_apt() {
  local root=$1
  echo 'Acquire::Check-Valid-Until "false";' \
    >"$root/etc/apt/apt.conf.d/99stylebridge-no-valid-until"
  echo "deb $MIRROR experimental main" >"$root/etc/apt/sources.list.d/experimental.list"
}

# apt inside the root, in its own mount namespace (proc, sys and dev vanish with it).
apt_in_root() {
  local root=$1
  cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true  # the host's DNS, today's
  in_namespace bash -euc '
    root=$1 packages=$2 experimental=$3
    mount -t proc proc "$root/proc"
    mount -t sysfs sysfs "$root/sys"
    mount --rbind /dev "$root/dev"
    chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
      DEBIAN_FRONTEND=noninteractive sh -ec "
        apt-get -q update
        apt-get -q -y install --no-install-recommends $packages
        apt-get -q -y install --no-install-recommends -t experimental $experimental
        apt-get clean
        rm -rf /var/lib/apt/lists/*"
  ' inner "$root" "${PACKAGES[*]}" "${EXPERIMENTAL[*]}"
}

finish() {  # the marker: first line the stamp, then what was installed from where
  local root=$1 gimp krita
  gimp=$(chroot "$root" dpkg-query -W -f '${Version}' gimp)
  krita=$(chroot "$root" dpkg-query -W -f '${Version}' krita)
  { echo "$STAMP"; echo "gimp=$gimp krita=$krita mirror=$MIRROR"; } >"$root/$MARKER"
  log "GIMP $gimp and Krita $krita ready at $ROOT" \
    "($(du -sh --one-file-system "$root" | cut -f1), $((SECONDS - start)) s)"
}

start=$SECONDS
# A complete root from an older package list only needs the new packages.
if [[ -f $ROOT/$MARKER ]]; then
  log "adding ${PACKAGES[*]} and ${EXPERIMENTAL[*]} (experimental) to the root at $ROOT"
  configure_apt "$ROOT"
  apt_in_root "$ROOT" >>"$ROOT.log" 2>&1 ||
    { tail -n 30 "$ROOT.log" >&2; die "installing into the sid root failed (log: $ROOT.log)"; }
  finish "$ROOT"
  exit 0
fi

# Never delete a folder that is not ours: a complete root is only ever made by the rename below.
if [[ -e $ROOT ]]; then
  die "$ROOT exists but holds no complete sid root: remove it or set STYLEBRIDGE_SID_ROOT"
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
log "debootstrap done ($((SECONDS - start)) s)"

# No services start inside the root.
printf '#!/bin/sh\nexit 101\n' >"$PARTIAL/usr/sbin/policy-rc.d"
chmod +x "$PARTIAL/usr/sbin/policy-rc.d"
configure_apt "$PARTIAL"

log "installing ${PACKAGES[*]} and ${EXPERIMENTAL[*]} (experimental) inside the root"
apt_in_root "$PARTIAL" >>"$PARTIAL.log" 2>&1 ||
  { tail -n 30 "$PARTIAL.log" >&2; die "installing into the sid root failed (log: $PARTIAL.log)"; }
finish "$PARTIAL"
mv "$PARTIAL.log" "$ROOT.log"
mv "$PARTIAL" "$ROOT"
