#!/usr/bin/env bash
# Build an isolated Debian sid root holding today's hosts, GIMP 3.2 (sid) and Krita 6 with
# PyQt6 (experimental), beside the GIMP 3.0 root of scripts/install-gimp.sh.
#
#   sudo scripts/install-sid.sh         # root at ${STYLEBRIDGE_SID_ROOT:-<repo>/.hosts/sid-root}
#
# Run commands in it with `scripts/root-run.sh --root sid ...`. How the root is built
# (idempotent, complete or absent, mounts in a private namespace): scripts/lib/debian-root.sh.
# Krita 6 runs in the root under the root's own Xvfb (xvfb-run -n N: a display number free on
# the host, since the root shares the host's network namespace and so X's abstract sockets).
# python3-pyqt6 is only a Recommends of krita 6, and Python plug-ins need it: named here.
# On the host it only adds debootstrap (apt-get) when it is missing.
# Environment: STYLEBRIDGE_SID_ROOT, STYLEBRIDGE_SID_MIRROR (default: this machine's apt mirror).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$REPO/scripts/lib/debian-root.sh"

WHO=install-sid WHAT="sid root"
ROOT=${STYLEBRIDGE_SID_ROOT:-$REPO/.hosts/sid-root}
MARKER=.stylebridge-sid-ready
SUITE=sid
# From sid: gimp 3.2 + its Python binding, Xvfb + xauth (xvfb-run) for Krita's window and
# GIMP's GUI, a font for readable dialog text, xdotool for key presses under Xvfb.
PACKAGES=(gimp python3-gi gir1.2-gimp-3.0 xvfb xauth fonts-dejavu-core xdotool)
# From experimental (sid has Krita 5.3): Krita 6 and the PyQt6 its Python plug-ins need.
EXPERIMENTAL=(krita python3-pyqt6)
STAMP="suite=$SUITE packages=${PACKAGES[*]} experimental=${EXPERIMENTAL[*]}"
HOST_TOOLS="debootstrap:debootstrap"  # everything else is inside the root
MIRROR=${STYLEBRIDGE_SID_MIRROR:-$(host_mirror)}

# apt's configuration in the root, before its first `apt-get update`: the mirror's sid and
# experimental Release files may carry an expired Valid-Until (a snapshot), and experimental
# is a source of its own (NotAutomatic: only `-t experimental` installs from it).
configure_root() {
  echo 'Acquire::Check-Valid-Until "false";' \
    >"$1/etc/apt/apt.conf.d/99stylebridge-no-valid-until"
  echo "deb $MIRROR experimental main" >"$1/etc/apt/sources.list.d/experimental.list"
}

install_packages() {
  apt_in_root "$1" "apt-get -q update
    apt-get -q -y install --no-install-recommends ${PACKAGES[*]}
    apt-get -q -y install --no-install-recommends -t experimental ${EXPERIMENTAL[*]}"
}

versions() {
  echo "gimp=$(chroot "$1" dpkg-query -W -f '${Version}' gimp)" \
    "krita=$(chroot "$1" dpkg-query -W -f '${Version}' krita)"
}

build_root
