#!/usr/bin/env bash
# Restore drill benchmark (not a test; figures go in notes and the README).
#
# Builds a cluster of ≥ 1 GB (pgbench, SCALE, default 70), takes a verified backup with
# `pgstate backup run`, writes ≥ 1 GB of WAL after it (WAL_MB, default 1100) through the copy
# archive, then times, RUNS times each and alternately:
#   - `pgstate restore drill` (the shipped Native AOT binary): choose the backup, copy it while
#     pg_verifybackup checks it beside the copy and the replay, write the recovery settings, start the server's pg_ctl, replay the
#     archive to its end, promote, probe, stop, remove;
#   - the same steps by hand: cp -a of the backup, the same recovery settings and server options,
#     pg_ctl start, wait for promotion (postmaster.pid says ready), stop, rm -rf.
# Prints wall times side by side, the drill's RTO and replay rate (MB/s of WAL), and the peak
# memory of the pgstate process itself (VmHWM sampled from /proc, children not included).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_dotnet
ensure_packages postgresql postgresql-contrib

SCALE=${SCALE:-70}
WAL_MB=${WAL_MB:-1100}
RUNS=${RUNS:-3}
PORT=${PORT:-54329}

bash scripts/publish.sh >&2
PGSTATE="$PWD/artifacts/aot/pgstate"
BIN=$(pg_bindir)

work=$(mktemp -d /tmp/pgstate-drill-bench.XXXXXX)
cleanup() {
  as_pg "$BIN/pg_ctl" -D "$work/byhand/data" -m immediate -w stop >/dev/null 2>&1 || true
  stop_scratch_cluster "$work"
  rm -rf "$work"
}
trap cleanup EXIT
start_scratch_cluster "$work" "$PORT"
mkdir -p "$work/archive" "$work/backups"
[ "$(id -u)" -eq 0 ] && chown postgres: "$work/archive" "$work/backups"
psql() { "$BIN/psql" -X -q -At -h "$work" -p "$PORT" -U postgres "$@"; }

manifest="$work/db.yaml"
cat > "$manifest" <<EOF
apiVersion: pgstate/v1
kind: PostgresHost
metadata: {name: bench}
spec:
  connection: {host: $work, port: $PORT, user: postgres}
  dataDirectory: $work/data
  restart: {policy: allowed, logFile: $work/server.log}
  archiving: {mode: "on", method: copy, destination: $work/archive}
  backupScheduling: {unitDirectory: $work/units, cronDirectory: $work/cron}
  backups:
    - name: nightly
      schedule: "*-*-* 02:30:00"
      destination: $work/backups
      drill:
        schedule: "*-*-* 04:00:00"
        target: latest
        timeout: 2h
        probes:
          - {name: branches, sql: "select count(*) from pgbench_branches", expect: $SCALE}
EOF
echo "==> archiving on (restart)" >&2
"$PGSTATE" apply --auto-approve "$manifest" >/dev/null

echo "==> pgbench -i -s $SCALE" >&2
"$BIN/pgbench" -i -q -s "$SCALE" -h "$work" -p "$PORT" -U postgres postgres >/dev/null 2>&1
db_mb=$(psql -c "select (sum(pg_database_size(oid)) / 1048576)::int from pg_database")

echo "==> pgstate backup run ($db_mb MB of databases)" >&2
"$PGSTATE" backup run nightly --manifest "$manifest" >&2
backup=$(ls -d "$work"/backups/2* | grep -v '\.verified$' | tail -n 1)
backup_mb=$(du -sm "$backup" | cut -f1)
start_lsn=$(sed -n 's/^START WAL LOCATION: \([^ ]*\).*/\1/p' "$backup/backup_label")

echo "==> writing ≥ $WAL_MB MB of WAL after the backup (pgbench)" >&2
while [ "$(psql -c "select (pg_wal_lsn_diff(pg_current_wal_lsn(), '$start_lsn') / 1048576)::int")" -lt "$WAL_MB" ]; do
  PGOPTIONS="-c synchronous_commit=off" "$BIN/pgbench" -n -c 4 -j 2 -T 20 -h "$work" -p "$PORT" -U postgres postgres >/dev/null 2>&1
done
last=$(psql -c "select pg_walfile_name(pg_switch_wal())")
until [ -f "$work/archive/$last" ]; do sleep 0.5; done
wal_mb=$(psql -c "select (pg_wal_lsn_diff(pg_current_wal_lsn(), '$start_lsn') / 1048576)::int")
archive_mb=$(du -sm "$work/archive" | cut -f1)
echo "==> cluster $db_mb MB, backup $backup_mb MB, WAL since the backup $wal_mb MB, archive $archive_mb MB" >&2

# The drill, with pgstate's own peak RSS sampled from /proc (its children are separate processes).
drill() {
  local out="$work/drill-$1.json" start end pid hwm=0 h
  start=$(date +%s.%N)
  "$PGSTATE" restore drill nightly --manifest "$manifest" --format json > "$out" &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    h=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ -n "$h" ] && [ "$h" -gt "$hwm" ] && hwm=$h
    sleep 0.05
  done
  wait "$pid" || { echo "drill failed:" >&2; cat "$out" >&2; exit 1; }
  end=$(date +%s.%N)
  python3 - "$out" "$start" "$end" "$hwm" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); wall = float(sys.argv[3]) - float(sys.argv[2])
print(f"drill {wall:.2f} {r['rtoSeconds']:.2f} {r['copySeconds']:.2f} {r['replaySeconds']:.2f} {r['walBytes']/1048576:.0f} {r['replayMegabytesPerSecond']:.1f} {int(sys.argv[4])/1024:.1f} {r['segmentsFromArchive']}")
PY
}

# The same steps by hand: copy, the same recovery settings and server options, start, wait for promotion, stop, remove.
byhand() {
  local d="$work/byhand" start ready end
  rm -rf "$d"
  mkdir -p "$d/socket"
  [ "$(id -u)" -eq 0 ] && chown -R postgres: "$d"
  chmod 700 "$d" "$d/socket"
  start=$(date +%s.%N)
  as_pg cp -a "$backup" "$d/data"
  as_pg sh -c "cat >> '$d/data/postgresql.auto.conf'" <<EOF
restore_command = 'cp -- $work/archive/%f %p'
recovery_target_timeline = 'latest'
recovery_target_action = 'promote'
EOF
  as_pg touch "$d/data/recovery.signal"
  as_pg "$BIN/pg_ctl" -D "$d/data" -l "$d/server.log" -W \
    -o "-c port=$((PORT + 1)) -c listen_addresses='' -c unix_socket_directories='$d/socket' -c archive_mode=off -c hot_standby=off -c shared_buffers=128MB -c huge_pages=off" start >/dev/null
  until [ "$(sed -n 8p "$d/data/postmaster.pid" 2>/dev/null | tr -d ' ')" = ready ]; do sleep 0.05; done
  ready=$(date +%s.%N)
  as_pg "$BIN/pg_ctl" -D "$d/data" -m immediate -w stop >/dev/null
  rm -rf "$d"
  end=$(date +%s.%N)
  python3 -c "print(f'byhand {$end - $start:.2f} {$ready - $start:.2f}')"
}

results="$work/results"
for i in $(seq 1 "$RUNS"); do
  echo "==> run $i of $RUNS" >&2
  sync; drill "$i" | tee -a "$results" >&2
  sync; byhand | tee -a "$results" >&2
done

python3 - "$results" "$db_mb" "$backup_mb" "$wal_mb" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
d = [list(map(float, r[1:])) for r in rows if r[0] == "drill"]
h = [list(map(float, r[1:])) for r in rows if r[0] == "byhand"]
med = lambda xs: st.median(xs)
print(f"\ncluster {sys.argv[2]} MB, backup {sys.argv[3]} MB, WAL replayed after the backup {sys.argv[4]} MB; {len(d)} runs each (median)\n")
print("| | pgstate restore drill | by hand (cp -a, same settings, pg_ctl start, wait, stop, rm) | ratio |")
print("|---|---|---|---|")
print(f"| wall time, start to removed | {med([x[0] for x in d]):.1f} s | {med([x[0] for x in h]):.1f} s | {med([x[0] for x in d]) / med([x[0] for x in h]):.2f}× |")
print(f"| start to promoted (RTO) | {med([x[1] for x in d]):.1f} s | {med([x[1] for x in h]):.1f} s | {med([x[1] for x in d]) / med([x[1] for x in h]):.2f}× |")
print(f"| copy (pg_verifybackup runs beside the copy and the replay) | {med([x[2] for x in d]):.1f} s | | |")
print(f"| start, replay, promote | {med([x[3] for x in d]):.1f} s | | |")
print(f"| WAL replayed / replay rate | {med([x[4] for x in d]):.0f} MB, {med([x[5] for x in d]):.1f} MB/s | | |")
print(f"| segments restored from the archive | {med([x[7] for x in d]):.0f} | | |")
print(f"| peak RSS of pgstate (VmHWM) | {max([x[6] for x in d]):.1f} MB (max of runs) | | |")
PY
