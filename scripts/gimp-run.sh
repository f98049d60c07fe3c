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
# Everything is mounted (proc, sys, dev, binds) inside a private mount namespace (unshare -m),
# so the mounts vanish with the command, however it ends: nothing is ever left mounted on the
# host, not even after a crash or a SIGKILL. The network namespace is the host's: a server on
# 127.0.0.1 is reachable from inside. The command's exit status is this script's.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=${STYLEBRIDGE_GIMP_ROOT:-$REPO/.hosts/gimp-root}
MARKER=.stylebridge-gimp-ready

die() { echo "gimp-run: $*" >&2; exit 2; }

binds=() envs=() x11=0
while (($#)); do
  case $1 in
    --bind) [[ $# -ge 2 ]] || die "--bind needs a folder"; binds+=("$(realpath "$2")"); shift 2 ;;
    --env) [[ $# -ge 2 && $2 == *=* ]] || die "--env needs NAME=VALUE"; envs+=("$2"); shift 2 ;;
    --x11) x11=1; shift ;;
    --) shift; break ;;
    -*) die "unknown option $1" ;;
    *) break ;;
  esac
done
(($#)) || die "no command given"
[[ $(id -u) == 0 ]] || die "needs root (mounts and chroot)"
[[ -f $ROOT/$MARKER ]] || die "no GIMP root at $ROOT (build it with scripts/install-gimp.sh)"
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
  mount -t tmpfs tmpfs "$root/tmp"  # what GIMP and the binds leave in /tmp goes with us
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
