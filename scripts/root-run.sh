#!/usr/bin/env bash
# Run a command inside one of the isolated host roots under .hosts/.
#
#   scripts/root-run.sh --root NAME [--bind DIR]... [--env NAME=VALUE]... [--x11] [--] COMMAND [ARG]...
#
# --root NAME       which root (required):
#                     gimp  Debian 13 with GIMP 3.0 (scripts/install-gimp.sh,
#                           ${STYLEBRIDGE_GIMP_ROOT:-<repo>/.hosts/gimp-root})
#                     sid   Debian sid with GIMP 3.2 and Krita 6 (scripts/install-sid.sh,
#                           ${STYLEBRIDGE_SID_ROOT:-<repo>/.hosts/sid-root})
# --bind DIR        DIR (a host folder) appears at the same path inside the root (whose /tmp
#                   is a fresh tmpfs for each run, so a folder under /tmp can be bound too)
# --env NAME=VALUE  set in the command's otherwise empty environment (PATH, HOME=/root, LANG)
# --x11             share the host's X server: /tmp/.X11-unix and $DISPLAY
#
# Everything is mounted (proc, sys, dev, binds) inside a private mount namespace (unshare -m),
# so the mounts vanish with the command, however it ends: nothing is ever left mounted on the
# host, not even after a crash or a SIGKILL. The network namespace is the host's: a server on
# 127.0.0.1 is reachable from inside (and so is an X server's abstract socket: an Xvfb started
# inside the root must use a display number that is free on the host). The script execs into
# the command (its pid is the command's) and the command's exit status is this script's.
# scripts/gimp-run.sh is this script with --root gimp.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() { echo "root-run: $*" >&2; exit 2; }

name="" binds=() envs=() x11=0
while (($#)); do
  case $1 in
    --root) [[ $# -ge 2 ]] || die "--root needs a name (gimp or sid)"; name=$2; shift 2 ;;
    --bind) [[ $# -ge 2 ]] || die "--bind needs a folder"; binds+=("$(realpath "$2")"); shift 2 ;;
    --env) [[ $# -ge 2 && $2 == *=* ]] || die "--env needs NAME=VALUE"; envs+=("$2"); shift 2 ;;
    --x11) x11=1; shift ;;
    --) shift; break ;;
    -*) die "unknown option $1" ;;
    *) break ;;
  esac
done

# Each root: its folder, the marker its install script writes last, what it is, that script.
case $name in
  gimp)
    ROOT=${STYLEBRIDGE_GIMP_ROOT:-$REPO/.hosts/gimp-root}
    MARKER=.stylebridge-gimp-ready WHAT="GIMP root" INSTALL=scripts/install-gimp.sh ;;
  sid)
    ROOT=${STYLEBRIDGE_SID_ROOT:-$REPO/.hosts/sid-root}
    MARKER=.stylebridge-sid-ready WHAT="sid root (GIMP 3.2, Krita 6)" INSTALL=scripts/install-sid.sh ;;
  "") die "no root given (--root gimp or --root sid)" ;;
  *) die "unknown root '$name' (gimp or sid)" ;;
esac

(($#)) || die "no command given"
[[ $(id -u) == 0 ]] || die "needs root (mounts and chroot)"
[[ -f $ROOT/$MARKER ]] || die "no $WHAT at $ROOT (build it with $INSTALL)"
for dir in "${binds[@]}"; do [[ -d $dir ]] || die "--bind $dir: not a folder"; done

if ((x11)); then
  [[ -n ${DISPLAY:-} ]] || die "--x11 but DISPLAY is not set"
  binds+=(/tmp/.X11-unix)
  envs+=("DISPLAY=$DISPLAY")
fi

# The inner part runs in the new mount namespace; its arguments: ROOT, binds, --, env, --, cmd.
inner() {
  local root=$1; shift
  local -a bind=() env=()
  while [[ $1 != -- ]]; do bind+=("$1"); shift; done; shift
  while [[ $1 != -- ]]; do env+=("$1"); shift; done; shift
  mount -t proc proc "$root/proc"
  mount -t sysfs sysfs "$root/sys"
  mount --rbind /dev "$root/dev"
  mount -t tmpfs tmpfs "$root/tmp"  # what the hosts and the binds leave in /tmp goes with us
  for dir in "${bind[@]}"; do
    mkdir -p "$root$dir"
    mount --bind "$dir" "$root$dir"
  done
  exec chroot "$root" /usr/bin/env -i \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 "${env[@]}" "$@"
}

exec unshare --mount --propagation private -- bash -c "$(declare -f inner); inner \"\$@\"" \
  inner "$ROOT" "${binds[@]}" -- "${envs[@]}" -- "$@"
