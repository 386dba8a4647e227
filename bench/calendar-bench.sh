#!/usr/bin/env bash
# Times CalendarSpec (parse + next elapse, in process, Native AOT as pgstate ships) against one
# `systemd-analyze calendar` process per expression, which is what the plan path ran before.
# Prints per-expression figures and hyperfine's table. Not a test: figures go in notes.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_dotnet
ensure_packages systemd tzdata hyperfine

out=artifacts/calendar-bench
echo "==> publishing the calendar benchmark (Native AOT)" >&2
dotnet publish bench/CalendarBench -c Release -r linux-x64 -p:PublishAot=true -nologo -v q -o "$out" >&2
BENCH="$PWD/$out/calendar-bench"
export TZ="${TZ:-:Europe/Paris}"

echo "==> in process, TZ=$TZ" >&2
"$BENCH" loop "$TZ"

echo "==> one process per expression" >&2
hyperfine -N --warmup 5 --runs "${RUNS:-50}" \
  -n "systemd-analyze calendar '*-*-* 02:30:00'" "systemd-analyze calendar '*-*-* 02:30:00'" \
  -n "calendar-bench once '*-*-* 02:30:00'" "$BENCH once '*-*-* 02:30:00' $TZ" \
  -n "systemd-analyze calendar '2026-11-* 02:00 Europe/Paris'" "systemd-analyze calendar '2026-11-* 02:00 Europe/Paris'" \
  -n "calendar-bench once '2026-11-* 02:00 Europe/Paris'" "$BENCH once '2026-11-* 02:00 Europe/Paris' $TZ"
