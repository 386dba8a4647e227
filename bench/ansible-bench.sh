#!/usr/bin/env bash
# What pgstate adds to an Ansible run, per host: wall time of `ansible-playbook --check` with the
# pgstate module over 3 hosts (forks 5) and 10 hosts (forks 10), next to the same playbook with a
# module that does nothing (bench/ansible/noop.yml: Ansible's own cost) and next to one local
# `pgstate plan`. The hosts are scripts/ansible-lab.sh's: aliases of 127.0.0.1 over a real sshd,
# each with its own scratch cluster. The pgstate binary is in place on the hosts (as the package
# would put it) for the steady-state rows; the "first contact" row removes it before each run, so
# the module copies it (check mode copies it to Ansible's temporary directory only).
# Not a test: figures go to the README and the notes. RUNS=N sets hyperfine's runs (default 5).
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
  bash scripts/ansible-lab.sh up "$lab" "$n" "$binary"
  printf 'pgstate_secrets:\n  PG_APP_PASSWORD: "{{ lookup('"'"'env'"'"', '"'"'PG_APP_PASSWORD'"'"') }}"\n' > "$lab/secrets.yml"
  for i in $(seq 1 "$n"); do install -m 0755 "$binary" "$lab/db$i/bin/pgstate"; done
  cp -r bench/ansible/library "$lab/library"
  cp bench/ansible/noop.yml "$lab/noop.yml"
  env="env ANSIBLE_CONFIG=$lab/ansible.cfg HOME=$lab/controller-home ANSIBLE_LIBRARY=$lab/library ANSIBLE_NOCOLOR=1"
  play="ansible-playbook -f $forks -e @$lab/secrets.yml"
  # One run to warm the SSH control connections and page caches; its output shows what is measured.
  $env $play --check examples/gitops/ansible/pgstate.yml | tail -n $((n + 2)) >&2
  rm_binaries=""
  for i in $(seq 1 "$n"); do rm_binaries="$rm_binaries $lab/db$i/bin/pgstate"; done
  hyperfine -N --warmup 1 --runs "$runs" --export-markdown "$root/hosts$n.md" \
    -n "local pgstate plan (one host)" "env PGSTATE_UNIT_DIR=$lab/db1/host/systemd PGSTATE_LOCK_DIR=$lab/db1/host/lock PGSTATE_CONFIG_DIR=$lab/db1/host/etc PGSTATE_STATE_DIR=$lab/db1/host/state $binary plan $lab/hosts/db1.yaml" \
    -n "$n hosts, forks $forks: no-op module" "$env $play --check $lab/noop.yml" \
    -n "$n hosts, forks $forks: pgstate --check (binary in place)" "$env $play --check examples/gitops/ansible/pgstate.yml" \
    -i
  hyperfine -N --runs "$runs" --export-markdown "$root/hosts$n-copy.md" \
    --prepare "rm -f$rm_binaries" \
    -n "$n hosts, forks $forks: pgstate --check (binary copied)" "$env $play --check examples/gitops/ansible/pgstate.yml"
  for i in $(seq 1 "$n"); do install -m 0755 "$binary" "$lab/db$i/bin/pgstate"; done
  bash scripts/ansible-lab.sh down "$lab"
done
echo
cat "$root"/hosts3.md "$root"/hosts3-copy.md "$root"/hosts10.md "$root"/hosts10-copy.md
