# Shared by scripts/install-gimp.sh and scripts/install-sid.sh (sourced, not run): build an
# isolated Debian root with debootstrap, idempotently.
#
# The sourcing script sets WHO (its name in messages), WHAT (the root in words), ROOT, MARKER,
# SUITE, STAMP (first line of the marker: the package set), MIRROR, HOST_TOOLS ("command:package"
# pairs the host needs), and defines two functions:
#   install_packages ROOT   apt work inside ROOT, through `apt_in_root ROOT SCRIPT`
#   versions ROOT           what got installed, one line (e.g. "gimp=3.0.4-3")
# and may define `configure_root ROOT` (run before the first apt-get update).
# Then `build_root` does the rest. The discipline: a re-run with the same STAMP returns at once,
# one with a new STAMP only adds packages; a new root is built in ROOT.partial and renamed when
# complete, so a failed run never looks finished; everything debootstrap and apt mount lives in
# a private mount namespace and vanishes with it.

log() { echo "$WHO: $*" >&2; }
die() { log "$*"; exit 1; }

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

ensure_host_tools() {  # HOST_TOOLS: "command:package" pairs; apt-get adds what is missing
  local missing=() pair
  for pair in $HOST_TOOLS; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
  done
  ((${#missing[@]})) || return 0
  log "installing ${missing[*]} on the host"
  local apt=(apt-get -o DPkg::Lock::Timeout=900 -y -q)
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" install --no-install-recommends "${missing[@]}" ||
    { "${apt[@]}" update && DEBIAN_FRONTEND=noninteractive "${apt[@]}" install \
      --no-install-recommends "${missing[@]}"; }
}

in_namespace() { unshare --mount --propagation private -- "$@"; }

# `apt_in_root ROOT SCRIPT`: the sh SCRIPT in the root (proc, sys and dev mounted in its own
# mount namespace), then apt's caches emptied.
apt_in_root() {
  local root=$1 script=$2
  cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true  # the host's DNS, today's
  in_namespace bash -euc '
    root=$1 script=$2
    mount -t proc proc "$root/proc"
    mount -t sysfs sysfs "$root/sys"
    mount --rbind /dev "$root/dev"
    chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
      DEBIAN_FRONTEND=noninteractive sh -ec "$script
        apt-get clean
        rm -rf /var/lib/apt/lists/*"
  ' inner "$root" "$script"
}

finish() {  # the marker: first line the stamp, then what was installed from where
  local root=$1 installed
  installed=$(versions "$root")
  { echo "$STAMP"; echo "$installed mirror=$MIRROR"; } >"$root/$MARKER"
  log "$installed ready at $ROOT ($(du -sh --one-file-system "$root" | cut -f1), $((SECONDS - start)) s)"
}

build_root() {
  [[ $(id -u) == 0 ]] || die "needs root (debootstrap, mounts, chroot)"
  ensure_host_tools
  if [[ -f $ROOT/$MARKER && $(head -n1 "$ROOT/$MARKER") == "$STAMP" ]]; then
    log "$WHAT ready at $ROOT ($(sed -n 2p "$ROOT/$MARKER"))"
    return 0
  fi
  start=$SECONDS
  # A complete root from an older package list only needs the new packages.
  if [[ -f $ROOT/$MARKER ]]; then
    log "adding packages to the root at $ROOT"
    if declare -F configure_root >/dev/null; then configure_root "$ROOT"; fi
    install_packages "$ROOT" >>"$ROOT.log" 2>&1 ||
      { tail -n 30 "$ROOT.log" >&2; die "installing into the $WHAT failed (log: $ROOT.log)"; }
    finish "$ROOT"
    return 0
  fi
  # Never delete a folder that is not ours: a complete root is only ever made by the rename.
  [[ ! -e $ROOT ]] || die "$ROOT exists but holds no complete $WHAT: remove it or set another"
  mkdir -p "$(dirname "$ROOT")"
  local partial=$ROOT.partial
  # A leftover of an interrupted run: nothing can be mounted in it (namespaces), so rm is safe.
  rm -rf --one-file-system "$partial"

  log "debootstrap $SUITE from $MIRROR into $partial"
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg keyopt=()
  [[ -f $keyring ]] && keyopt=(--keyring="$keyring")
  in_namespace debootstrap --variant=minbase "${keyopt[@]}" "$SUITE" "$partial" "$MIRROR" \
    >"$partial.log" 2>&1 || { tail -n 30 "$partial.log" >&2; die "debootstrap failed"; }
  log "debootstrap done ($((SECONDS - start)) s)"

  # No services start inside the root.
  printf '#!/bin/sh\nexit 101\n' >"$partial/usr/sbin/policy-rc.d"
  chmod +x "$partial/usr/sbin/policy-rc.d"
  if declare -F configure_root >/dev/null; then configure_root "$partial"; fi

  log "installing packages inside the root"
  install_packages "$partial" >>"$partial.log" 2>&1 ||
    { tail -n 30 "$partial.log" >&2; die "installing into the $WHAT failed (log: $partial.log)"; }
  finish "$partial"
  mv "$partial.log" "$ROOT.log"
  mv "$partial" "$ROOT"
}
