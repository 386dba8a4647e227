#!/usr/bin/env bash
# Builds the pgstate.pgstate collection tarball with ansible-galaxy: build.sh [OUTPUT_DIR]
# (default artifacts/ansible at the repository root). Prints the tarball's path on stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../../artifacts/ansible}
mkdir -p "$out"
out=$(cd "$out" && pwd)
ansible-galaxy collection build "$here" --output-path "$out" --force >&2
version=$(sed -n 's/^version: *//p' "$here/galaxy.yml")
echo "$out/pgstate-pgstate-$version.tar.gz"
