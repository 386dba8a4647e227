#!/usr/bin/env bash
# What pgstate adds to an Ansible run, per host: wall time of `ansible-playbook --check` with the
# pgstate module over 3 hosts (forks 5) and 10 hosts (forks 10), next to the same playbook with a
# module that does nothing (bench/ansible/noop.yml: Ansible's own cost) and next to one local
# `pgstate plan`. The hosts are scripts/ansible-lab.sh's: aliases of 127.0.0.1 over a real sshd,
# each with its own scratch cluster. The pgstate binary is in place on the hosts (as the package
# would put it) for the steady-state rows; the "first contact" row removes it before each run, so
# the module copies it (check mode copies it to Ansible's temporary directory only).
# Not a test: figures go to the README and the notes. RUNS=N sets the runs (default 5). On a machine
# others share, BENCH_NICE=-10 runs the hosts (sshd, clusters) and the playbooks at that priority so
# their load weighs less on the comparison; the table's last column says what the load was.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_dotnet
ensure_packages postgresql ansible openssh-server sudo hyperfine
bash scripts/publish.sh >&2
binary="$PWD/artifacts/aot/pgstate"
runs=${RUNS:-5}
root=$(mktemp -d /tmp/pgstate-ansible-bench.XXXXXX)
chmod 755 "$root"
trap 'for n in 3 10; do bash scripts/ansible-lab.sh down "$root/lab$n" || true; done; rm -rf "$root"' EXIT

export PG_APP_PASSWORD=bench-secret
for n in 3 10; do
  forks=$([ "$n" -le 3 ] && echo 5 || echo 10)
  lab="$root/lab$n"
  echo "==> $n hosts (forks $forks)" >&2
  nice -n "${BENCH_NICE:-0}" bash scripts/ansible-lab.sh up "$lab" "$n" "$binary"
  printf 'pgstate_secrets:\n  PG_APP_PASSWORD: "{{ lookup('"'"'env'"'"', '"'"'PG_APP_PASSWORD'"'"') }}"\n' > "$lab/secrets.yml"
  for i in $(seq 1 "$n"); do install -m 0755 "$binary" "$lab/db$i/bin/pgstate"; done
  cp -r bench/ansible/library "$lab/library"
  cp bench/ansible/noop.yml "$lab/noop.yml"
  env="nice -n ${BENCH_NICE:-0} env ANSIBLE_CONFIG=$lab/ansible.cfg HOME=$lab/controller-home ANSIBLE_LIBRARY=$lab/library ANSIBLE_NOCOLOR=1"
  play="ansible-playbook -f $forks -e @$lab/secrets.yml"
  # One run to warm the SSH control connections and page caches; its output shows what is measured.
  $env $play --check examples/gitops/ansible/pgstate.yml | tail -n $((n + 2)) >&2
  rm_binaries=""
  for i in $(seq 1 "$n"); do rm_binaries="$rm_binaries $lab/db$i/bin/pgstate"; done
  hyperfine -N --warmup 1 --runs "$((runs * 2))" -i --export-markdown "$root/local$n.md" \
    -n "local pgstate plan (one host)" "nice -n ${BENCH_NICE:-0} env PGSTATE_UNIT_DIR=$lab/db1/host/systemd PGSTATE_LOCK_DIR=$lab/db1/host/lock PGSTATE_CONFIG_DIR=$lab/db1/host/etc PGSTATE_STATE_DIR=$lab/db1/host/state $binary plan $lab/hosts/db1.yaml" >&2
  # The playbooks alternate run by run, so that a load that drifts on this shared machine weighs on both alike.
  for r in $(seq 1 "$runs"); do
    t0=$(date +%s%N); $env $play --check "$lab/noop.yml" >/dev/null; t1=$(date +%s%N)
    $env $play --check examples/gitops/ansible/pgstate.yml >/dev/null; t2=$(date +%s%N)
    rm -f $rm_binaries
    $env $play --check examples/gitops/ansible/pgstate.yml >/dev/null; t3=$(date +%s%N)
    for i in $(seq 1 "$n"); do install -m 0755 "$binary" "$lab/db$i/bin/pgstate"; done
    echo "$n $forks $(( (t1 - t0) / 1000000 )) $(( (t2 - t1) / 1000000 )) $(( (t3 - t2) / 1000000 )) $(cut -d' ' -f1 /proc/loadavg)" >> "$root/times"
    tail -n 1 "$root/times" >&2
  done
  for i in $(seq 1 "$n"); do install -m 0755 "$binary" "$lab/db$i/bin/pgstate"; done
  bash scripts/ansible-lab.sh down "$lab"
done
echo
cat "$root"/local3.md
echo
echo "| hosts (forks) | no-op module | pgstate --check, binary in place | pgstate adds | pgstate --check, binary copied | load (1 min) |"
echo "|---|---:|---:|---:|---:|---:|"
awk '{ k = $1 " (" $2 ")"; n[k]++; a[k] += $3; b[k] += $4; c[k] += $5; l[k] += $6; a2[k] += $3 * $3; b2[k] += $4 * $4 }
     END { for (k in n) { ma = a[k] / n[k]; mb = b[k] / n[k]; sa = sqrt(a2[k] / n[k] - ma * ma); sb = sqrt(b2[k] / n[k] - mb * mb);
       printf "| %s | %.2f s ± %.2f | %.2f s ± %.2f | +%.2f s (%.0f%%) | %.2f s | %.1f |\n", k, ma / 1000, sa / 1000, mb / 1000, sb / 1000, (mb - ma) / 1000, 100 * (mb - ma) / mb, c[k] / n[k] / 1000, l[k] / n[k] } }' "$root/times" | sort -n
