#!/usr/bin/env bash
# Times `pgstate import` (Native AOT, scripts/publish.sh) on a scratch cluster with 1,000 pg_hba
# rules (a hand-made file: comments, mask-form addresses) and 100 replication slots, then plans
# the imported manifest against the same host (the acceptance test: no changes). Side by side:
# `pgstate plan` of the imported manifest and `import --check` (import + that plan in one run).
# Not a test: the figures go in the README and closing notes.  RUNS=20 by default.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_dotnet
ensure_packages postgresql hyperfine
RUNS=${RUNS:-20}

work=$(mktemp -d /tmp/pgstate-import-bench.XXXXXX)
port=${PORT:-$((50000 + RANDOM % 10000))}
cleanup() { stop_scratch_cluster "$work"; rm -rf "$work"; }
trap cleanup EXIT

bash scripts/publish.sh >&2
PGSTATE="$PWD/artifacts/aot/pgstate"

start_scratch_cluster "$work" "$port"
psql() { "$(pg_bindir)/psql" -X -q -At -h "$work" -p "$port" -U postgres "$@"; }
export PGSTATE_UNIT_DIR="$work/units" PGSTATE_CRON_DIR="$work/cron" PGSTATE_LOCK_DIR="$work/lock" \
  PGSTATE_CONFIG_DIR="$work/etc" PGSTATE_CREDENTIALS_DIR="$work/credentials" PGSTATE_STATE_DIR="$work/state"

# 1,000 rules written by hand: a comment every tenth rule, mask-form and CIDR addresses, lists, quoted names.
hba="$work/data/pg_hba.conf"
{ echo "# pg_hba.conf of a host adopted by pgstate"; echo
  echo "# the benchmark connects over the socket"; echo "local   all   all   trust"
  for i in $(seq 1 999); do
    [ $((i % 10)) = 0 ] && printf '\n# block %d: application subnet\n' "$i"
    if [ $((i % 2)) = 0 ]; then
      printf 'host\tdb%d,"Reporting"\tapp%d\t10.%d.%d.0\t255.255.255.0\tscram-sha-256\n' $((i % 50)) "$i" $((i / 256 % 256)) $((i % 256))
    else
      printf 'host  db%d  app%d,+ops  10.%d.%d.0/24  scram-sha-256   # rule %d\n' $((i % 50)) "$i" $((i / 256 % 256)) $((i % 256)) "$i"
    fi
  done; } > "$hba"
chown postgres: "$hba" 2>/dev/null || true
psql -c "alter system set max_replication_slots = 120" -c "alter system set work_mem = '65536'" >/dev/null
as_pg "$(pg_bindir)/pg_ctl" -D "$work/data" -w restart -m fast -l "$work/server.log" >/dev/null
for i in $(seq 1 100); do echo "select pg_create_physical_replication_slot('slot_$i', $([ $((i % 2)) = 0 ] && echo true || echo false));"; done | psql >/dev/null
echo "rules the server reads: $(psql -c "select count(*) from pg_hba_file_rules where error is null")" >&2

out="$work/imported.yaml"
args=(import --pg-host "$work" --pg-port "$port" --name bench --out "$out")
"$PGSTATE" "${args[@]}" 2>"$work/notes"
echo "==> plan of the imported manifest (must be: exit 0, no changes)" >&2
set +e; "$PGSTATE" plan "$out" > "$work/plan.txt" 2>&1; plan_exit=$?; set -e
check_exit=0; "$PGSTATE" "${args[@]}" --check >/dev/null 2>&1 || check_exit=$?

median() { python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][0]; print(f\"{r['median']*1000:.0f} ms (min {r['min']*1000:.0f}, max {r['max']*1000:.0f})\")" "$1"; }
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$work/import.json" "$PGSTATE ${args[*]}" >/dev/null 2>&1
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$work/plan.json" "$PGSTATE plan $out" >/dev/null 2>&1
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$work/check.json" "$PGSTATE ${args[*]} --check" >/dev/null 2>&1

echo "| run (1,000 hba rules, 100 slots, Native AOT) | median | goal |"
echo "|---|---:|---:|"
echo "| \`pgstate import\` | $(median "$work/import.json") | ≤ 1 s |"
echo "| \`pgstate plan\` of the imported manifest | $(median "$work/plan.json") | |"
echo "| \`pgstate import --check\` (import, validate, plan) | $(median "$work/check.json") | |"
echo
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) (shared)"
echo
echo "imported: $(grep -c '^      - {type:' "$out") hba rules, $(grep -c '{name: slot_' "$out") slots, $(wc -c < "$out") bytes"
echo "plan of the imported manifest: exit $plan_exit — $(grep '^Plan:' "$work/plan.txt")"
echo "import --check: exit $check_exit"
echo
echo '```'
echo "phase breakdown (PGSTATE_TIMINGS=1):"
PGSTATE_TIMINGS=1 "$PGSTATE" "${args[@]}" 2>&1 >/dev/null | grep timing || true
echo '```'
