#!/usr/bin/env bash
# Times `pgstate plan` side by side, in one run, against one scratch cluster:
#   - pgstate as it ships now (Native AOT, scripts/publish.sh),
#   - the previous release (BASELINE_REF, default ec6cb67: self-contained single-file ReadyToRun),
#   - the floor: an AOT process that connects and reads pg_settings + pg_hba_file_rules (bench/Floor).
# Manifests: the 12-resource one of issue 8/9, examples/sandbox.yaml, 1k/5k/20k hba rules, 500 slots,
# 200 roles with passwords. Prints hyperfine medians, peak RSS, binary sizes and a phase breakdown.
# Not a test: the figures go in the README and closing notes.  RUNS=20 by default.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_dotnet
ensure_packages postgresql hyperfine time
RUNS=${RUNS:-20}
BASELINE_REF=${BASELINE_REF:-ec6cb67}

work=$(mktemp -d /tmp/pgstate-bench.XXXXXX)
port=55432
cleanup() { stop_scratch_cluster "$work"; command -v semanage >/dev/null && semanage fcontext -d "$work/archive(/.*)?" >/dev/null 2>&1; git worktree remove --force "$work/baseline-src" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

bash scripts/publish.sh >&2
NEW="$PWD/artifacts/aot/pgstate"

echo "==> building the previous release ($BASELINE_REF) as it shipped: single-file ReadyToRun" >&2
git worktree add -f "$work/baseline-src" "$BASELINE_REF" >/dev/null 2>&1
(cd "$work/baseline-src" && dotnet publish engine/PgState.Cli -c Release -r linux-x64 --self-contained \
  -p:PublishSingleFile=true -p:PublishReadyToRun=true -o "$work/baseline" -nologo -v quiet >&2)
OLD="$work/baseline/pgstate"

echo "==> building the floor (bench/Floor, Native AOT)" >&2
dotnet publish bench/Floor -c Release -r linux-x64 -o "$work/floor" -nologo -v quiet >&2
FLOOR="$work/floor/Floor"

start_scratch_cluster "$work" "$port"
psql() { "$(pg_bindir)/psql" -X -q -At -h "$work" -p "$port" -U postgres "$@"; }
export PGSTATE_UNIT_DIR="$work/units" PGSTATE_CRON_DIR="$work/cron" PGSTATE_LOCK_DIR="$work/lock" \
  PGSTATE_CONFIG_DIR="$work/etc" PGSTATE_CREDENTIALS_DIR="$work/credentials" PGSTATE_STATE_DIR="$work/state" \
  PGSTATE_SANDBOX="$work" PGSTATE_SANDBOX_PORT="$port" PG_BACKUP_PASSWORD=bench-password
mkdir -p "$work/archive" "$work/backups" && chown -R postgres: "$work/archive" "$work/backups" 2>/dev/null || true
yaml_head() { printf 'apiVersion: pgstate/v1\nkind: PostgresHost\nmetadata: {name: %s}\nspec:\n  connection: {host: %s, port: %s, user: postgres}\n' "$1" "$work" "$port"; }

# The 12-resource manifest of issue 8/9: archiving (3 parameters), 2 settings, a directory, a file
# context, 2 hba rules, a role, 2 slots, a backup schedule. Written for both versions.
twelve="$work/twelve.yaml"
{ yaml_head twelve
  printf '  restart: {policy: never}\n  archiving: {walLevel: replica, method: copy, destination: %s/archive, timeout: 5min}\n' "$work"
  printf '  settings: {max_wal_senders: 10, wal_keep_size: 256MB}\n'
  printf '  directories: [{path: %s/archive, owner: postgres, group: postgres, mode: "0700"}]\n' "$work"
  printf '  selinux: {fileContexts: [{path: "%s/archive(/.*)?", type: postgresql_db_t}]}\n' "$work"
  printf '  hba: {mode: managed-block, rules: [{type: local, database: all, user: postgres, method: trust}, {type: host, database: replication, user: backup_user, address: 127.0.0.1/32, method: scram-sha-256}]}\n'
  printf '  roles: [{name: backup_user, replication: true, password: {fromEnv: PG_BACKUP_PASSWORD}}]\n'
  printf '  slots: [{name: standby1}, {name: standby2}]\n'
  printf '  backups: [{name: nightly, schedule: "*-*-* 02:30:00", destination: %s/backups, retention: {count: 7}}]\n' "$work"
  printf '  backupScheduling: {unitDirectory: %s/units, cronDirectory: %s/cron, pgstatePath: %s, manifestPath: %s}\n' "$work" "$work" "$NEW" "$work/twelve.yaml"
} > "$twelve"

hba_manifest() { # N rules
  local n=$1 f="$work/hba-$1.yaml"
  { yaml_head "hba$n"; printf '  hba:\n    rules:\n      - {type: local, database: [all, replication], user: postgres, method: trust}\n'
    for i in $(seq 1 $((n - 1))); do
      printf '      - {type: host, database: db%d, user: app%d, address: 10.%d.%d.0/24, method: scram-sha-256}\n' $((i % 50)) "$i" $((i / 256 % 256)) $((i % 256))
    done; } > "$f"; echo "$f"; }
slots="$work/slots-500.yaml"
{ yaml_head slots500; printf '  settings: {max_replication_slots: 600}\n  slots:\n'; for i in $(seq 1 500); do printf '    - {name: slot_%d}\n' "$i"; done; } > "$slots"
roles="$work/roles-200.yaml"
{ yaml_head roles200; printf '  roles:\n'; for i in $(seq 1 200); do printf '    - {name: role_%d, replication: true, password: {fromEnv: PG_BACKUP_PASSWORD}}\n' "$i"; done; } > "$roles"
hba1k=$(hba_manifest 1000); hba5k=$(hba_manifest 5000); hba20k=$(hba_manifest 20000)

# Converge what can be converged (slots need max_replication_slots live: one restart).
"$NEW" apply --auto-approve "$slots" >/dev/null 2>&1 || true
as_pg "$(pg_bindir)/pg_ctl" -D "$work/data" -w restart -m fast -l "$work/server.log" >/dev/null
for f in "$twelve" "$slots" "$roles"; do "$NEW" apply --auto-approve "$f" >/dev/null 2>&1 || true; done
cp "$work/data/pg_hba.conf" "$work/pg_hba.conf.converged-twelve"

results="$work/results.md"
echo "| manifest | pgstate now (AOT) | previous release (R2R) | floor (AOT connect + 2 catalogs) |" > "$results"
echo "|---|---:|---:|---:|" >> "$results"
median() { # hyperfine json -> median ms
  python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][0]; print(f\"{r['median']*1000:.0f} ms\")" "$1"; }
time_plan() { # name, manifest
  local name=$1 manifest=$2
  hyperfine -N -i --warmup 3 --runs "$RUNS" --export-json "$work/new.json" "$NEW plan $manifest" >/dev/null 2>&1
  hyperfine -N -i --warmup 2 --runs "$RUNS" --export-json "$work/old.json" "$OLD plan $manifest" >/dev/null 2>&1 || echo '{"results":[{"median":0}]}' > "$work/old.json"
  hyperfine -N -i --warmup 3 --runs "$RUNS" --export-json "$work/floor.json" "$FLOOR $work $port" >/dev/null 2>&1
  echo "| $name | $(median "$work/new.json") | $(median "$work/old.json") | $(median "$work/floor.json") |" >> "$results"
}
time_plan "12 resources (converged)" "$twelve"
time_plan "examples/sandbox.yaml" examples/sandbox.yaml
time_plan "1,000 hba rules (to add)" "$hba1k"
time_plan "5,000 hba rules (to add)" "$hba5k"
time_plan "20,000 hba rules (to add)" "$hba20k"
time_plan "500 slots (converged)" "$slots"
time_plan "200 roles with passwords (converged)" "$roles"

echo >> "$results"
echo "| peak RSS (plan) | pgstate now | previous release |" >> "$results"
echo "|---|---:|---:|" >> "$results"
rss() { /usr/bin/time -f %M "$@" >/dev/null 2>"$work/rss" || true; echo "$(($(tail -n 1 "$work/rss") / 1024)) MB"; }
for m in "$twelve" "$hba5k" "$hba20k" "$slots"; do
  echo "| $(basename "$m") | $(rss "$NEW" plan "$m") | $(rss "$OLD" plan "$m") |" >> "$results"
done
echo >> "$results"
echo "Binary: pgstate now $(du -m "$NEW" | cut -f1) MB (Native AOT); previous release $(du -m "$OLD" | cut -f1) MB (single-file R2R)." >> "$results"
echo >> "$results"
echo '```' >> "$results"
echo "phase breakdown, 12 resources:" >> "$results"
PGSTATE_TIMINGS=1 "$NEW" plan "$twelve" 2>&1 >/dev/null | grep -i timing >> "$results" || true
echo "phase breakdown, 5,000 hba rules:" >> "$results"
PGSTATE_TIMINGS=1 "$NEW" plan "$hba5k" 2>&1 >/dev/null | grep -i timing >> "$results" || true
echo '```' >> "$results"
cat "$results"
