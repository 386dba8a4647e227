#!/usr/bin/env bash
# Runs the test suite: installs what the tests need (PostgreSQL server, SELinux tools, packaging
# tools, debootstrap and systemd-nspawn), fetches the server binaries of the other PostgreSQL majors
# (scripts/fetch-postgres.sh, cached), builds the Native AOT binary and the packages, runs every test
# (they start their own scratch PostgreSQL clusters: the whole suite on Debian's 15, the
# server-facing tests on 13 to 18), prints pass/fail counts per PostgreSQL version and ends with one
# line "N passed, N failed, N skipped". With --ci, a snapshot baseline that the run created or
# changed is a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ci=false
[ "${1:-}" = "--ci" ] && ci=true

ensure_dotnet
ensure_test_packages
# The version matrix: server binaries of 13, 14, 16, 17, 18 (15 is Debian's). Downloaded once per
# machine into a cache outside the work tree; nothing is downloaded while the tests run.
bash scripts/fetch-postgres.sh || { echo "error: could not fetch the PostgreSQL servers of the version matrix" >&2; exit 1; }

results=$(mktemp -d /tmp/pgstate-results.XXXXXX)
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

# The root filesystem the systemd container test boots (debootstrap once, cached outside the
# repository in $PGSTATE_CACHE_DIR): made in the background while pgstate compiles.
bash scripts/systemd-rootfs.sh > "$results/rootfs" 2> "$results/rootfs.log" &
rootfs_job=$!
rootfs_start=$SECONDS

# The end-to-end tests run the binary that ships: Native AOT (scripts/publish.sh).
bash scripts/publish.sh >&2 || { echo "error: the Native AOT build failed" >&2; exit 1; }
export PGSTATE_BINARY="$PWD/artifacts/aot/pgstate"

# The packages users install, checked (dpkg-deb -I/-c, lintian, rpm -qip/-qlp); the install tests use the .deb.
packages_start=$SECONDS
if ! bash packaging/build.sh > "$results/packages.log" 2>&1; then
  cat "$results/packages.log" >&2
  echo "error: packaging/build.sh failed" >&2
  exit 1
fi
echo "==> packages built and checked in $((SECONDS - packages_start)) s:" >&2
tail -n 3 "$results/packages.log" >&2
export PGSTATE_DEB=$(ls "$PWD"/artifacts/packages/pgstate_*_amd64.deb)
if wait "$rootfs_job"; then
  export PGSTATE_TEST_ROOTFS=$(cat "$results/rootfs")
  echo "==> container root filesystem $PGSTATE_TEST_ROOTFS ready $((SECONDS - rootfs_start)) s after it was started" >&2
  grep -h "ready in" "$results/rootfs.log" >&2 || echo "    (cached: $PGSTATE_TEST_ROOTFS)" >&2
else
  export PGSTATE_TEST_ROOTFS_SKIP=$(cat "${PGSTATE_CACHE_DIR:-/var/tmp/pgstate-cache}/rootfs-skip-reason" 2>/dev/null || tail -n 1 "$results/rootfs.log")
  echo "==> no container root filesystem, the systemd container test will be skipped: $PGSTATE_TEST_ROOTFS_SKIP" >&2
fi
$ci && export SNAPSHOOTER_STRICT_MODE=true

dotnet test PgState.sln -nologo --logger "trx;LogFilePrefix=results" --results-directory "$results" \
  --logger "console;verbosity=normal" 2>&1 | grep -vE '^\s*$'
rc=${PIPESTATUS[0]}

# One .trx per test project: sum their counters.
counter() { cat "$results"/*.trx 2>/dev/null | grep -o "<Counters [^>]*" | grep -o " $1=\"[0-9]*\"" | grep -o '[0-9]*' | awk '{s+=$1} END {print s+0}'; }
if ls "$results"/*.trx >/dev/null 2>&1; then
  passed=$(counter passed); failed=$(counter failed); total=$(counter total); executed=$(counter executed)
  skipped=$((total - executed))
else
  passed=0; failed=0; skipped=0
  [ $rc -eq 0 ] && rc=1
fi

# Per PostgreSQL version: matrix tests carry their major in the class name (…Tests+Pg17.…); the
# rest of the integration suite runs on Debian's major; the unit project needs no server.
if ls "$results"/*.trx >/dev/null 2>&1; then
  debian_major=$(basename "$(dirname "$(pg_bindir)")")
  cat "$results"/*.trx | grep -o '<UnitTestResult [^>]*' \
    | sed -E 's/.* testName="([^"]*)".* outcome="([^"]*)".*/\1\t\2/' \
    | awk -F'\t' -v debian="$debian_major" '
        {
          if (match($1, /\+Pg[0-9]+\./)) key = "PostgreSQL " substr($1, RSTART + 3, RLENGTH - 4)
          else if ($1 ~ /^PgState\.Tests\.Unit\./) key = "no server (unit tests)"
          else key = "PostgreSQL " debian
          keys[key] = 1
          if ($2 == "Passed") p[key]++; else if ($2 == "NotExecuted") s[key]++; else f[key]++
        }
        END { for (k in keys) printf "%s: %d passed, %d failed, %d skipped\n", k, p[k], f[k], s[k] }' \
    | sort -V
fi

# The version matrix by area (README's supported-versions table is filled from this).
if ls "$results"/*.trx >/dev/null 2>&1; then
  echo "version matrix (tests passed/run per area):"
  cat "$results"/*.trx | grep -o '<UnitTestResult [^>]*' \
    | sed -E 's/.* testName="([^"]*)".* outcome="([^"]*)".*/\1\t\2/' \
    | awk -F'\t' '
        match($1, /\+Pg[0-9]+\./) {
          major = substr($1, RSTART + 3, RLENGTH - 4)
          if ($1 ~ /ArchivingApplyTests|RestartTests|OverriddenTests/) area = "settings"
          else if ($1 ~ /HbaInclude/) area = "hba-include"
          else if ($1 ~ /HbaApplyTests/) area = "hba"
          else if ($1 ~ /ReplicationTests\+Pg[0-9]+\.(Role|Stored_verifier)/) area = "roles"
          else if ($1 ~ /ReplicationTests/) area = "slots"
          else if ($1 ~ /CheckTests/) area = "checks"
          else if ($1 ~ /Backup/) area = "backups"
          else area = "other"
          majors[major] = 1; run[major, area]++
          if ($2 == "Passed") ok[major, area]++
        }
        END {
          n = split("settings hba hba-include roles slots checks backups", areas, " ")
          printf "%-8s", "major"; for (i = 1; i <= n; i++) printf " %-12s", areas[i]; printf "\n"
          for (m = 13; m <= 30; m++) if (m in majors) {
            printf "%-8s", m
            for (i = 1; i <= n; i++) {
              a = areas[i]
              cell = run[m, a] == 0 ? "-" : (ok[m, a] == run[m, a] ? "pass " : "FAIL ") ok[m, a] + 0 "/" run[m, a]
              printf " %-12s", cell
            }
            printf "\n"
          }
        }'
fi

if $ci && [ "${skipped:-0}" -gt 0 ] && ls "$results"/*.trx >/dev/null 2>&1; then
  # CI runs as root on a machine with every tool: a skipped test there hides a feature (the packages,
  # the systemd container, SELinux labels), so it fails the run, naming the test and its reason.
  echo "error: $skipped test(s) skipped in CI:" >&2
  cat "$results"/*.trx | grep -o '<UnitTestResult [^>]*outcome="NotExecuted"[^>]*' | sed -E 's/.* testName="([^"]*)".*/  \1/' >&2
  failed=$((failed + skipped)); rc=1
fi
if $ci; then
  changed=$(git status --porcelain --untracked-files=all -- '*__snapshots__*' '*__mismatch__*')
  if [ -n "$changed" ]; then
    echo "error: the test run created or changed snapshot baselines (review and commit them):" >&2
    echo "$changed" >&2
    failed=$((failed + 1)); rc=1
  fi
fi
rm -rf "$results"
echo "$passed passed, $failed failed, $skipped skipped"
exit $rc
