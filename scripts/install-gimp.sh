#!/usr/bin/env bash
# Build an isolated Debian 13 (trixie) root holding GIMP 3.0 for the GIMP plug-in's end-to-end
# tests and its dialog screenshot (tests/e2e/gimp/test_gimp_e2e.py, scripts/gimp-screenshot.sh).
#
#   sudo scripts/install-gimp.sh        # root at ${STYLEBRIDGE_GIMP_ROOT:-<repo>/.hosts/gimp-root}
#
# Debian 12 only ships GIMP 2.10, so GIMP 3.0.4 comes from trixie, in a debootstrap root that
# leaves the host untouched (run commands in it with scripts/gimp-run.sh). How the root is built
# (idempotent, complete or absent, mounts in a private namespace): scripts/lib/debian-root.sh.
# Only the standard-library bridge talks to the server: no python3-zmq or python3-msgpack here.
# On the host it only adds debootstrap and Xvfb (apt-get) when they are missing.
# Environment: STYLEBRIDGE_GIMP_ROOT, STYLEBRIDGE_GIMP_MIRROR (default: this machine's apt mirror).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$REPO/scripts/lib/debian-root.sh"

WHO=install-gimp WHAT="GIMP root"
ROOT=${STYLEBRIDGE_GIMP_ROOT:-$REPO/.hosts/gimp-root}
MARKER=.stylebridge-gimp-ready
SUITE=trixie
# gimp + its Python binding; a font for readable dialog text (GIMP's fonts are only
# recommended); xdotool presses keys in GIMP's window under Xvfb (the undo test, the dialog).
PACKAGES=(gimp python3-gi gir1.2-gimp-3.0 fonts-dejavu-core xdotool)
STAMP="suite=$SUITE packages=${PACKAGES[*]}"
# debootstrap builds the root; the host's Xvfb runs GIMP's GUI for the undo/cancel/dialog tests
HOST_TOOLS="debootstrap:debootstrap Xvfb:xvfb"
MIRROR=${STYLEBRIDGE_GIMP_MIRROR:-$(host_mirror)}

install_packages() {
  apt_in_root "$1" "apt-get -q update
    apt-get -q -y install --no-install-recommends ${PACKAGES[*]}"
}

versions() { echo "gimp=$(chroot "$1" dpkg-query -W -f '${Version}' gimp)"; }

build_root
