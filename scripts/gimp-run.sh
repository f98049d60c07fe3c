#!/usr/bin/env bash
# Run a command inside the GIMP root that scripts/install-gimp.sh builds.
#
#   scripts/gimp-run.sh [--bind DIR]... [--env NAME=VALUE]... [--x11] [--] COMMAND [ARG]...
#
# --bind DIR        DIR (a host folder) appears at the same path inside the root (whose /tmp
#                   is a fresh tmpfs for each run)
# --env NAME=VALUE  set in the command's otherwise empty environment (PATH, HOME=/root, LANG)
# --x11             share the host's X server: /tmp/.X11-unix and $DISPLAY
#
# The same as `scripts/root-run.sh --root gimp ...` (one implementation of the namespace, the
# mounts and the chroot, for every root): everything is mounted inside a private mount
# namespace, so nothing is ever left mounted on the host; the network namespace is the host's.
# It execs into the command (its pid is the command's); the command's exit status is this
# script's. Environment: STYLEBRIDGE_GIMP_ROOT.
exec "$(dirname "${BASH_SOURCE[0]}")/root-run.sh" --root gimp "$@"
