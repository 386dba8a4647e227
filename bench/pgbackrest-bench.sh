#!/usr/bin/env bash
# pgBackRest benchmark (not a test; figures go in notes and the README).
#
# Builds a cluster of ≥ 1 GB: TABLES tables of ~11 MB each (default 100), so that "1% of the
# pages" can be one table's worth. pgstate writes the pgBackRest configuration, creates the
# stanza and turns archiving on (`pgstate apply`), then, on the same cluster, side by side:
#   - pg_basebackup -D DIR -X stream -c fast (one stream, uncompressed: what `tool: pg_basebackup` runs);
#   - `pgstate backup run full` → pgbackrest backup --type=full (process-max 2, lz4);
#   - 1% of the pages changed in one table (every row of 1 table in TABLES rewritten), then
#     `pgstate backup run incr` → pgbackrest backup --type=incr;
#   - 1% of the pages changed spread over every table (one row per 100 pages in each), then incr
#     again: pgBackRest 2.45 copies whole changed files (block incremental came in 2.46), so this
#     one shows the worst case.
# Prints wall times, MB/s and repository sizes side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_dotnet
ensure_packages postgresql postgresql-contrib pgbackrest

TABLES=${TABLES:-100}
ROWS=${ROWS:-85000}
PORT=${PORT:-54331}

bash scripts/publish.sh >&2
PGSTATE="$PWD/artifacts/aot/pgstate"
BIN=$(pg_bindir)

work=$(mktemp -d /tmp/pgstate-pgbackrest-bench.XXXXXX)
cleanup() {
  stop_scratch_cluster "$work"
  rm -rf "$work"
}
trap cleanup EXIT
# Every host path pgstate writes goes under the benchmark's directory.
export PGSTATE_UNIT_DIR=$work/units PGSTATE_CRON_DIR=$work/cron PGSTATE_LOCK_DIR=$work/lock PGSTATE_CONFIG_DIR=$work/etc \
  PGSTATE_CREDENTIALS_DIR=$work/credentials PGSTATE_STATE_DIR=$work/state
start_scratch_cluster "$work" "$PORT"
mkdir -p "$work/repo" "$work/etc" "$work/log" "$work/lock" "$work/jobs" "$work/basebackup"
[ "$(id -u)" -eq 0 ] && chown postgres: "$work/repo" "$work/etc" "$work/log" "$work/lock" "$work/jobs" "$work/basebackup"
psql() { "$BIN/psql" -X -q -At -h "$work" -p "$PORT" -U postgres "$@"; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

manifest="$work/db.yaml"
cat > "$manifest" <<EOF
apiVersion: pgstate/v1
kind: PostgresHost
metadata: {name: bench}
spec:
  connection: {host: $work, port: $PORT, user: postgres}
  dataDirectory: $work/data
  restart: {policy: allowed, logFile: $work/server.log}
  archiving: {walLevel: replica, mode: "on", method: pgbackrest, stanza: main}
  pgbackrest:
    stanza: main
    configPath: $work/etc/pgbackrest.conf
    repositories:
      - {type: posix, path: $work/repo, retention: {full: 2}}
    processMax: 2
    compress: {type: lz4}
    startFast: true
    options: {lock-path: $work/lock, log-path: $work/log, log-level-file: "off"}
  backupScheduling: {unitDirectory: $work/units, cronDirectory: $work/cron}
  backups:
    - {name: full, tool: pgbackrest, type: full, schedule: "Sun *-*-* 01:00:00", destination: $work/jobs}
    - {name: incr, tool: pgbackrest, type: incr, schedule: "*-*-* 01:00:00", destination: $work/jobs}
EOF
echo "==> pgstate apply: pgbackrest.conf, stanza, archiving on (restart)" >&2
"$PGSTATE" apply --auto-approve "$manifest" >/dev/null

echo "==> $TABLES tables of $ROWS rows" >&2
for i in $(seq 1 "$TABLES"); do
  echo "create table t$i as select g as id, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text) as payload from generate_series(1, $ROWS) g;"
done | psql >/dev/null
# Hint bits, visibility maps and statistics written now, not between the backups: the incrementals
# then see only the pages the benchmark changes (autovacuum off for the same reason).
psql -c "alter system set autovacuum = off" -c "select pg_reload_conf()" >/dev/null
psql -c "vacuum (freeze, analyze)" >/dev/null
psql -c "checkpoint" >/dev/null
db_mb=$(psql -c "select (pg_database_size('postgres') / 1048576)::int")
pages=$(psql -c "select sum(relpages) from pg_class where relname ~ '^t[0-9]+$'")
echo "==> $db_mb MB in database postgres ($pages heap pages in the tables)" >&2

run() { # NAME: pgstate backup run NAME, prints seconds
  local t0 t1
  t0=$(now)
  "$PGSTATE" backup run "$1" --manifest "$manifest" >&2
  t1=$(now)
  secs "$t0" "$t1"
}

echo "==> pg_basebackup (one stream, uncompressed)" >&2
t0=$(now)
as_pg "$BIN/pg_basebackup" -D "$work/basebackup/b" -X stream -c fast -h "$work" -p "$PORT" -U postgres
t1=$(now)
bb=$(secs "$t0" "$t1")
bb_mb=$(du -sm "$work/basebackup/b" | cut -f1)
rm -rf "$work/basebackup/b"

echo "==> pgbackrest full (process-max 2, lz4)" >&2
full=$(run full)
repo_full_mb=$(du -sm "$work/repo/backup" | cut -f1)

echo "==> 1% of the pages in one table, then incr" >&2
psql -c "update t1 set payload = upper(payload)" >/dev/null
psql -c "checkpoint" >/dev/null
incr_local=$(run incr)
repo_local_mb=$(( $(du -sm "$work/repo/backup" | cut -f1) - repo_full_mb ))

echo "==> 1% of the pages spread over every table, then incr" >&2
for i in $(seq 1 "$TABLES"); do
  echo "update t$i set payload = lower(payload) where (ctid::text::point)[0]::int % 100 = 0 and (ctid::text::point)[1] = 1;"
done | psql >/dev/null
psql -c "checkpoint" >/dev/null
before=$(du -sm "$work/repo/backup" | cut -f1)
incr_spread=$(run incr)
repo_spread_mb=$(( $(du -sm "$work/repo/backup" | cut -f1) - before ))

rate() { awk -v mb="$1" -v s="$2" 'BEGIN { printf "%.0f", mb / s }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", 100 * a / b }'; }
echo
echo "pgBackRest $(pgbackrest version | cut -d' ' -f2) vs pg_basebackup, PostgreSQL $(psql -c 'show server_version' | cut -d' ' -f1), $(nproc) cores, database $db_mb MB"
printf '%-52s %8s %8s %10s\n' "" "seconds" "MB/s" "stored MB"
printf '%-52s %8s %8s %10s\n' "pg_basebackup -X stream (plain, uncompressed)" "$bb" "$(rate "$db_mb" "$bb")" "$bb_mb"
printf '%-52s %8s %8s %10s\n' "pgbackrest full (process-max 2, lz4)" "$full" "$(rate "$db_mb" "$full")" "$repo_full_mb"
printf '%-52s %8s %8s %10s\n' "pgbackrest incr, 1% of pages in one table" "$incr_local" "-" "$repo_local_mb"
printf '%-52s %8s %8s %10s\n' "pgbackrest incr, 1% of pages spread over all tables" "$incr_spread" "-" "$repo_spread_mb"
echo "incremental / full: $(pct "$incr_local" "$full")% (one table), $(pct "$incr_spread" "$full")% (spread; 2.45 copies whole changed files)"
