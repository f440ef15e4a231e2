#!/usr/bin/env bash
# The clean-room check: do the README's two set-up commands work on a fresh Debian 12 machine?
#
# Makes a minimal Debian 12 root file system with Debian's own mmdebstrap (variant minbase: the
# Essential packages and apt, nothing else), clones this checkout's HEAD into it (what a user's
# `git clone` gets), and runs there, as root and with an empty environment, the two commands of
# the README's "Quick start" section, read from README.md itself: the quick-start command, then
# the test command's first pass (`--quick`). Nothing this machine has installed is visible
# inside, so a package that only a hand install provides fails here although CI's own build
# passes. ../shared is not there either, as on a user's machine: the tests that need it skip.
#
#   bash scripts/fresh_machine_check.sh                 the check (~25 min on 2 cores)
#   bash scripts/fresh_machine_check.sh --without PKG   PKG taken out of install-deps.sh's list
#        in the copy: the check must then FAIL (proves it sees a missing install step); exits 0
#        only if the quick start failed (and, with --expect TEXT, its log says TEXT)
#   --keep        keep the root file system afterwards (its path is printed)
#   --full        run the whole test command (with the sanitizer and fuzzing passes)
#
# Needs root (chroot, mounts in a private mount namespace) and the network to Debian's archive.
# The bootstrap tarball is cached in $RNNFLOW_FRESH_CACHE (default /var/cache/rnnflow-fresh) and
# made again when it is older than 7 days or missing; a miss costs about a minute.
# RNNFLOW_FRESH_MIRROR (default http://deb.debian.org) sets the archive.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)

without="" expect="" keep=0 test_args=(--quick)
while [ $# -gt 0 ]; do
  case "$1" in
    --without) without=${2:?--without needs a package name}; shift 2 ;;
    --expect) expect=${2:?--expect needs a text}; shift 2 ;;
    --keep) keep=1; shift ;;
    --full) test_args=(); shift ;;
    *) echo "fresh_machine_check.sh: unknown option '$1' (see the comment at the top)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "fresh_machine_check.sh: needs root (chroot and mounts)" >&2; exit 2; }
stamp() { printf '[fresh %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# --- the README's two commands, in its order -------------------------------------------------
mapfile -t readme_cmds < <(awk '
  /^## / { in_qs = ($0 ~ /^## Quick start/) }
  in_qs && /^```/ { fence = !fence; if (!fence) blocks++; next }
  in_qs && fence && blocks < 2 && NF && $1 !~ /^#/ { print }' README.md)
if [ ${#readme_cmds[@]} != 2 ]; then
  echo "fresh_machine_check.sh: expected one command in each of the first two code blocks of the" >&2
  echo "README's 'Quick start' section, found ${#readme_cmds[@]}: ${readme_cmds[*]:-none}" >&2
  exit 2
fi
quick_cmd=${readme_cmds[0]}
test_cmd="${readme_cmds[1]}${test_args[*]:+ ${test_args[*]}}"

# --- a minimal Debian 12 root, from a cached tarball --------------------------------------------
command -v mmdebstrap >/dev/null || {
  stamp "installing mmdebstrap (the check's own tool)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
}
cache=${RNNFLOW_FRESH_CACHE:-/var/cache/rnnflow-fresh}
mirror=${RNNFLOW_FRESH_MIRROR:-http://deb.debian.org}
tarball=$cache/bookworm-minbase.tar
mkdir -p "$cache"
if [ -z "$(find "$tarball" -mtime -7 2>/dev/null)" ]; then
  stamp "bootstrapping a minimal Debian 12 root (mmdebstrap --variant=minbase) into $tarball"
  # Check-Valid-Until off: the archive may be a dated snapshot; it changes nothing else.
  mmdebstrap --quiet --format=tar --variant=minbase --aptopt='Acquire::Check-Valid-Until "false"' bookworm \
    "$tarball.tmp" "deb $mirror/debian bookworm main" "deb $mirror/debian bookworm-updates main" \
    "deb $mirror/debian-security bookworm-security main"
  mv "$tarball.tmp" "$tarball"
fi

work=$(mktemp -d /var/tmp/rnnflow-fresh.XXXXXX)
root=$work/root
log=$work/log.txt
cleanup() {
  # The mounts live in the namespace of `unshare` below and are gone with it; never delete
  # through a mount that is somehow still there.
  if findmnt -rno TARGET | grep -q "^$root/"; then
    echo "fresh_machine_check.sh: mounts remain under $root; not deleting it" >&2
  elif [ "$keep" = 1 ]; then
    echo "fresh_machine_check.sh: the root file system is kept in $root (log: $log)"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
mkdir -p "$root"
tar -xf "$tarball" -C "$root"
cp /etc/resolv.conf "$root/etc/resolv.conf"
git clone --quiet --no-local "$src" "$root/root/rnnflow"
if [ -n "$without" ]; then
  deps=$root/root/rnnflow/scripts/install-deps.sh
  sed -i -E "s/^([[:space:]]*)$without([[:space:]]|$)/\1\2/; s/[[:space:]]$without([[:space:]]|$)/ \1/" "$deps"
  if grep -qE "(^|[[:space:]])$without([[:space:]]|$)" "$deps"; then
    echo "fresh_machine_check.sh: could not take '$without' out of install-deps.sh" >&2; exit 2
  fi
  stamp "install-deps.sh without '$without': the quick start must fail"
fi

# --- the README's commands inside it ----------------------------------------------------------
in_root() {  # in_root COMMAND: run it in the fresh root as a new user's root shell would
  unshare --mount --propagation private -- bash -c '
    set -e; r=$1; shift
    mount -t proc proc "$r/proc"
    mount --rbind /sys "$r/sys"
    mount --rbind /dev "$r/dev"
    exec chroot "$r" /usr/bin/env -i HOME=/root TERM=dumb \
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      bash -c "cd /root/rnnflow && $1"' in_root "$root" "$1"
}
run_step() {  # run_step NAME COMMAND: log to $log, tail it on failure
  local start=$SECONDS status=0
  stamp "$1: $2"
  in_root "$2" >>"$log" 2>&1 || status=$?
  stamp "$1: exit $status after $((SECONDS - start)) s"
  return $status
}

if [ -n "$without" ]; then
  if run_step quick-start "$quick_cmd"; then
    tail -n 30 "$log"
    echo "fresh_machine_check.sh: FAILED: the quick start passed without '$without'," >&2
    echo "  so this check cannot see that package missing" >&2
    exit 1
  fi
  tail -n 8 "$log"
  if [ -n "$expect" ] && ! grep -qF -- "$expect" "$log"; then
    echo "fresh_machine_check.sh: FAILED: the quick start failed without '$without', but its log" >&2
    echo "  does not say '$expect': it failed for another reason (whole log: $log)" >&2
    keep=1
    exit 1
  fi
  stamp "as it must: the quick start fails without '$without'"
  exit 0
fi
for step in quick-start tests; do
  cmd=$quick_cmd; [ $step = tests ] && cmd=$test_cmd
  if ! run_step $step "$cmd"; then
    tail -n 60 "$log"
    echo "fresh_machine_check.sh: FAILED on a fresh Debian 12 root: '$cmd' (whole log: $log)" >&2
    keep=1
    exit 1
  fi
done
grep -E "^test: |% tests passed|tests failed out of" "$log" | tail -n 3
stamp "passed: the README's two commands work on a fresh Debian 12 root"
