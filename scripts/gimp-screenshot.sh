#!/usr/bin/env bash
# Screenshot of the GIMP plug-in's dialog from real GIMP 3 under Xvfb -> docs/gimp-dialog.png.
#
#   sudo scripts/gimp-screenshot.sh [OUT.png]
#
# Needs the GIMP root (scripts/install-gimp.sh builds it), the host's Xvfb and ImageMagick
# (`import`), and the project's venv (make install) for the server. Not part of `make test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/install-gimp.sh
exec .venv/bin/python -m tests.e2e.gimp.screenshot "$@"
