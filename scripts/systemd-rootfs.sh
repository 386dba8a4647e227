#!/usr/bin/env bash
# Prepares, once, a Debian bookworm root filesystem that boots systemd under systemd-nspawn, with
# Debian's PostgreSQL installed: the machine of the test that installs pgstate's .deb and runs its
# backup service and timers under a real systemd (tests/PgState.Tests/Packaging). debootstrap from
# the Debian mirror this machine's apt already uses. Cached outside the repository, in
# $PGSTATE_CACHE_DIR (default /var/tmp/pgstate-cache), keyed by the recipe below; the test boots it
# with --volatile=overlay, so it is never changed and later runs of the same CI job reuse it.
# Prints the directory on stdout. When it cannot be made, prints the reason on stderr, writes it
# to $PGSTATE_CACHE_DIR/rootfs-skip-reason (the test's skip reason) and exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."

cache=${PGSTATE_CACHE_DIR:-/var/tmp/pgstate-cache}
suite=bookworm
include=systemd,systemd-sysv,dbus,postgresql-15
key=$(echo "v1 $suite minbase $include" | sha256sum | cut -c1-12)
dir=$cache/rootfs-$suite-$key

mkdir -p "$cache"
fail() { echo "$*" > "$cache/rootfs-skip-reason"; echo "systemd-rootfs: $*" >&2; exit 1; }
rm -f "$cache/rootfs-skip-reason"

[ "$(id -u)" -eq 0 ] || fail "needs root: debootstrap and systemd-nspawn run as root"
command -v debootstrap >/dev/null || fail "debootstrap is not installed (scripts/test.sh installs it)"
command -v systemd-nspawn >/dev/null || fail "systemd-nspawn is not installed (package systemd-container)"

# One builder at a time; a second one waits, then finds the finished tree.
exec 9>"$cache/.lock"
flock 9
if [ -f "$dir/.pgstate-rootfs-complete" ]; then
  echo "$dir"
  exit 0
fi

mirror=$(apt-cache policy 2>/dev/null | awk -v s="$suite/main" '$3 == s && $2 ~ /^https?:\/\// {print $2; exit}')
[ -n "$mirror" ] || fail "no '$suite main' mirror among this machine's apt sources (apt-cache policy), so debootstrap has nowhere to download from"

# Trees of another recipe, and a half-built one a killed run left.
for old in "$cache"/rootfs-*; do
  [ -e "$old" ] && [ "$old" != "$dir" ] && rm -rf "$old"
done
rm -rf "$dir"
echo "systemd-rootfs: debootstrap --variant=minbase --include=$include $suite from $mirror into $dir (once per cache)" >&2
start=$SECONDS
if ! timeout 30m debootstrap --variant=minbase --include="$include" "$suite" "$dir.tmp" "$mirror" > "$cache/debootstrap.log" 2>&1; then
  rm -rf "$dir.tmp"
  fail "debootstrap from $mirror failed: $(grep -E '^[EW]:' "$cache/debootstrap.log" | tail -n 1) (log: $cache/debootstrap.log)"
fi
# Downloaded archives and package lists are not needed to boot: ~90 MB less to keep.
rm -rf "$dir.tmp"/var/cache/apt/archives/*.deb "$dir.tmp"/var/lib/apt/lists/*
touch "$dir.tmp/.pgstate-rootfs-complete"
mv "$dir.tmp" "$dir"
echo "systemd-rootfs: ready in $((SECONDS - start)) s ($(du -sh "$dir" | cut -f1))" >&2
echo "$dir"
