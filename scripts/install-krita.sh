#!/usr/bin/env bash
# Install the real Krita the end-to-end tests drive: Debian 12's krita 5.1.5 with PyQt5, Xvfb
# (xvfb-run) to give it a screen. Idempotent; about 320 MB the first time.
set -euo pipefail
if command -v krita >/dev/null && command -v xvfb-run >/dev/null \
    && [ -f /usr/share/krita/pykrita/plugin_importer/plugin_importer.py ] \
    && /usr/bin/python3 -c 'import PyQt5.QtWidgets' 2>/dev/null; then
    echo "krita: already installed ($(dpkg-query -W -f='${Version}' krita))"
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q krita python3-pyqt5 xvfb xauth
echo "krita: installed $(dpkg-query -W -f='${Version}' krita)"
