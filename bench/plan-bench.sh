#!/usr/bin/env bash
# Times `pgstate plan` (the published self-contained single-file ReadyToRun binary) on a small
# manifest (examples/sandbox.yaml) and a large one (every settable non-string parameter of the
# server), against a scratch cluster. Prints hyperfine's table. Not a test: figures go in notes.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_dotnet
ensure_packages postgresql hyperfine

out=artifacts/pgstate
echo "==> publishing pgstate (self-contained, single file, ReadyToRun)" >&2
dotnet publish engine/PgState.Cli -c Release -r linux-x64 --self-contained \
  -p:PublishSingleFile=true -p:PublishReadyToRun=true -o "$out" -nologo -v quiet >&2
PGSTATE="$PWD/$out/pgstate"

work=$(mktemp -d /tmp/pgstate-bench.XXXXXX)
trap 'stop_scratch_cluster "$work"; rm -rf "$work"' EXIT
start_scratch_cluster "$work" 5432
export PGSTATE_SANDBOX="$work" PGSTATE_SANDBOX_PORT=5432

psql() { "$(pg_bindir)/psql" -X -q -At -h "$work" -p 5432 -U postgres "$@"; }
large="$work/large.yaml"
{
  printf 'apiVersion: pgstate/v1\nkind: PostgresHost\nmetadata: {name: large}\nspec:\n'
  printf '  connection: {host: %s, port: 5432, user: postgres}\n  settings:\n' "$work"
  psql -c "select '    ' || name || ': \"' || reset_val || coalesce(unit, '') || '\"' from pg_settings
           where context in ('user', 'superuser', 'sighup') and vartype <> 'string' and name not like '%.%'
             and unit is distinct from '8kB' and unit is distinct from '16MB' order by name"
} > "$large"
count=$(grep -c '^    ' "$large")
echo "==> large manifest: $count parameters" >&2
"$PGSTATE" validate "$large" >&2

# 5,000 hba rules: one per application user and subnet, after the local rule pgstate itself uses.
hba="$work/hba-5000.yaml"
{
  printf 'apiVersion: pgstate/v1\nkind: PostgresHost\nmetadata: {name: hba5000}\nspec:\n'
  printf '  connection: {host: %s, port: 5432, user: postgres}\n  hba:\n    rules:\n' "$work"
  printf '      - {type: local, database: [all, replication], user: postgres, method: trust}\n'
  for i in $(seq 0 4998); do
    printf '      - {type: host, database: db%d, user: app%d, address: 10.%d.%d.0/24, method: scram-sha-256}\n' \
      $((i % 50)) "$i" $((i / 256)) $((i % 256))
  done
} > "$hba"
"$PGSTATE" validate "$hba" >&2
cp "$work/data/pg_hba.conf" "$work/pg_hba.conf.initdb"

hyperfine -N --warmup 3 --runs "${RUNS:-20}" -i \
  -n "plan small (examples/sandbox.yaml, 7 parameters)" "$PGSTATE plan examples/sandbox.yaml" \
  -n "plan large ($count parameters)" "$PGSTATE plan $large" \
  -n "plan 5000 hba rules (5000 to add)" "$PGSTATE plan $hba" \
  -n "validate --offline small" "$PGSTATE validate --offline examples/sandbox.yaml"

# 200 roles with passwords and 500 physical slots.
repl="$work/repl.yaml"
{
  printf 'apiVersion: pgstate/v1\nkind: PostgresHost\nmetadata: {name: repl}\nspec:\n'
  printf '  connection: {host: %s, port: 5432, user: postgres}\n  settings: {max_replication_slots: 600, max_wal_senders: 20}\n' "$work"
  printf '  restart: {policy: allowed, logFile: %s/server.log}\n  roles:\n' "$work"
  for i in $(seq 1 200); do printf '    - {name: role%d, replication: true, password: {fromEnv: BENCH_PW}}\n' "$i"; done
  printf '  slots:\n'
  for i in $(seq 1 500); do printf '    - {name: slot%d}\n' "$i"; done
} > "$repl"
export BENCH_PW=bench-password
"$PGSTATE" apply --auto-approve "$repl" >/dev/null 2>&1 || true
"$PGSTATE" apply --auto-approve "$repl" >/dev/null   # slots need max_replication_slots (restart) first
hyperfine -N --warmup 3 --runs "${RUNS:-20}" \
  -n "plan 200 roles + 500 slots (converged)" "$PGSTATE plan $repl"

echo "==> applying the 5000-rule pg_hba.conf, then timing the converged plan" >&2
"$PGSTATE" apply --auto-approve "$hba" >/dev/null
hyperfine -N --warmup 3 --runs "${RUNS:-20}" \
  -n "plan 5000 hba rules (converged)" "$PGSTATE plan $hba"

# Backup throughput: pgstate backup run (pg_basebackup + rename + pg_verifybackup + status) against
# a bare pg_basebackup of the same cluster, on pgbench data.
echo "==> backup throughput (pgbench scale ${SCALE:-20})" >&2
"$(pg_bindir)/pgbench" -i -q -s "${SCALE:-20}" -h "$work" -p 5432 -U postgres postgres >/dev/null 2>&1
bk="$work/backup.yaml"
{
  printf 'apiVersion: pgstate/v1\nkind: PostgresHost\nmetadata: {name: bk}\nspec:\n'
  printf '  connection: {host: %s, port: 5432, user: postgres}\n' "$work"
  printf '  backups:\n    - {name: bench, schedule: "*-*-* 02:30:00", destination: %s/bk, retention: {count: 1}}\n' "$work"
} > "$bk"
size_mb=$(psql -c "select (sum(pg_database_size(oid)) / 1048576)::int from pg_database")
hyperfine -N --warmup 1 --runs "${BACKUP_RUNS:-5}" \
  --prepare "rm -rf $work/bare" -n "bare pg_basebackup -X stream (${size_mb} MB)" \
  "$(pg_bindir)/pg_basebackup -D $work/bare -X stream -c fast -h $work -p 5432 -U postgres -w" \
  -n "pgstate backup run, with pg_verifybackup (${size_mb} MB)" "$PGSTATE backup run bench --manifest $bk"
