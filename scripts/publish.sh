#!/usr/bin/env bash
# Publishes pgstate as the binary that ships: Native AOT, linux-x64, into artifacts/aot/pgstate.
# Skips the (~1.5 min) native compile when no source file changed since the last publish.
set -euo pipefail
cd "$(dirname "$0")/.."
out=artifacts/aot
stamp=$(git ls-files -s -- engine modules schemas Directory.Build.props Directory.Packages.props BannedSymbols.txt 2>/dev/null | sha256sum | cut -c1-16)
dirty=$(git status --porcelain -- engine modules schemas 2>/dev/null | wc -l)
if [ "$dirty" = 0 ] && [ -x "$out/pgstate" ] && [ "$(cat "$out/.stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "pgstate (Native AOT) is up to date in $out" >&2
  exit 0
fi
echo "==> publishing pgstate (Native AOT) to $out" >&2
dotnet publish engine/PgState.Cli -c Release -r linux-x64 -p:PublishAot=true -nologo -v q -o "$out" >&2
rm -f "$out"/*.dbg
echo "$stamp" > "$out/.stamp"
ls -la "$out/pgstate" >&2
