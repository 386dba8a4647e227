#!/usr/bin/env bash
# The main job on a self-contained sandbox: start a scratch PostgreSQL cluster in a temporary
# directory, validate, plan and apply examples/sandbox.yaml against it, show that the second plan
# is empty and that WAL archiving really works, then stop the cluster (--keep leaves it running).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

keep=false
[ "${1:-}" = "--keep" ] && keep=true

ensure_dotnet
ensure_packages postgresql
BIN=$(pg_bindir)

echo "==> building pgstate" >&2
dotnet build engine/PgState.Cli -c Release -nologo -v quiet -clp:ErrorsOnly >&2
PGSTATE="$PWD/engine/PgState.Cli/bin/Release/net10.0/pgstate"

SANDBOX=$(mktemp -d /tmp/pgstate-sandbox.XXXXXX)
export PGSTATE_SANDBOX="$SANDBOX" PGSTATE_SANDBOX_PORT=5432
# The apply lock of this throw-away cluster lives with it, not in the host's /run/pgstate.
export PGSTATE_LOCK_DIR="$SANDBOX/lock"

cleanup() {
  if ! $keep; then
    stop_scratch_cluster "$SANDBOX"
    rm -rf "$SANDBOX"
  fi
}
trap cleanup EXIT

echo "==> starting a scratch cluster in $SANDBOX (Unix socket only)" >&2
start_scratch_cluster "$SANDBOX" "$PGSTATE_SANDBOX_PORT"
# The archive directory belongs to the server's user: postgres when the sandbox runs as root, you
# otherwise. Made here, not in the manifest (spec.directories), so the same manifest fits both.
mkdir -p "$SANDBOX/archive"
[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$SANDBOX/archive"

step() { echo; echo "\$ pgstate $*"; }

step validate examples/sandbox.yaml
"$PGSTATE" validate examples/sandbox.yaml

step plan examples/sandbox.yaml
set +e; "$PGSTATE" plan examples/sandbox.yaml; rc=$?; set -e
[ $rc -eq 2 ] || { echo "expected exit 2 (changes) from the first plan, got $rc" >&2; exit 1; }

step apply --auto-approve examples/sandbox.yaml
"$PGSTATE" apply --auto-approve examples/sandbox.yaml

step plan examples/sandbox.yaml
set +e; "$PGSTATE" plan examples/sandbox.yaml; rc=$?; set -e
[ $rc -eq 0 ] || { echo "expected exit 0 (no changes) from the second plan, got $rc" >&2; exit 1; }

echo
echo "==> proving archiving works: pg_switch_wal() and look in the archive"
psql() { "$BIN/psql" -X -q -At -h "$SANDBOX" -p "$PGSTATE_SANDBOX_PORT" -U postgres "$@"; }
psql -c "create table sandbox_proof(x int); insert into sandbox_proof values (1)"
segment=$(psql -c "select pg_walfile_name(pg_switch_wal())")
for _ in $(seq 1 100); do [ -f "$SANDBOX/archive/$segment" ] && break; sleep 0.1; done
if [ -f "$SANDBOX/archive/$segment" ]; then
  echo "segment $segment archived to $SANDBOX/archive ($(stat -c %s "$SANDBOX/archive/$segment") bytes)"
else
  echo "segment $segment did not reach the archive" >&2; exit 1
fi
step check --probe-archive examples/sandbox.yaml
"$PGSTATE" check --probe-archive examples/sandbox.yaml

echo
echo "Sandbox OK: plan showed the changes, apply made them, the second plan is empty, WAL is archived."
echo
echo "The pgstate it used: $PGSTATE"
echo "  (the binary that ships is Native AOT: scripts/publish.sh -> artifacts/aot/pgstate;"
echo "   packaging/build.sh -> .deb, .rpm and tarball in artifacts/packages)"
if $keep; then
  echo "Cluster left running: export PGSTATE_SANDBOX=$SANDBOX PGSTATE_SANDBOX_PORT=$PGSTATE_SANDBOX_PORT PGSTATE_LOCK_DIR=$PGSTATE_LOCK_DIR"
  echo "Try next:"
  echo "  $PGSTATE drift --report /tmp/pgstate-drift.json --metrics /tmp/pgstate.prom examples/sandbox.yaml"
  echo "  edit examples/sandbox.yaml (say wal_keep_size: 512MB), then $PGSTATE plan --format markdown examples/sandbox.yaml"
  echo "  and $PGSTATE apply examples/sandbox.yaml; add a spec.hba or spec.backups section from examples/"
  if [ "$(id -u)" -eq 0 ]; then
    echo "Stop it: runuser -u postgres -- $(pg_bindir)/pg_ctl -D $SANDBOX/data stop && rm -rf $SANDBOX"
  else
    echo "Stop it: $(pg_bindir)/pg_ctl -D $SANDBOX/data stop && rm -rf $SANDBOX"
  fi
else
  echo "Try next: scripts/sandbox.sh --keep leaves the cluster running to experiment with, and prints how;"
  echo "  examples/ holds manifests for hba, replication, backups and SELinux; man pgstate once installed."
fi
