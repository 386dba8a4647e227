#!/usr/bin/env bash
# A fleet of database hosts on this machine, for the Ansible tests and benchmark:
#   ansible-lab.sh up DIR N BINARY   sshd on 127.0.0.1 and a spare port, from a config of its own
#                                    (host key made here, UsePAM no), a non-root user with key auth
#                                    and sudo (a sudoers drop-in), N scratch clusters each with its own
#                                    socket, port and host directories (units, cron, locks, config,
#                                    state), N inventory aliases of 127.0.0.1, their manifests, the
#                                    collection built and installed, an ansible.cfg. Prints nothing
#                                    on stdout; DIR/lab.env says what was made.
#   ansible-lab.sh down DIR          stops sshd, its sessions and the clusters, removes the user,
#                                    the sudoers drop-in and DIR. Safe to run twice, or after a failed up.
# Needs root (useradd, sudoers, sshd). Never touches the machine's own sshd, /etc/pgstate or units.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

up() {
  local dir=$1 n=$2 binary=$3 user port i
  [ "$(id -u)" -eq 0 ] || { echo "ansible-lab: needs root (useradd, sudoers, sshd)" >&2; exit 1; }
  [ -x "$binary" ] || { echo "ansible-lab: $binary is not an executable pgstate" >&2; exit 1; }
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  chmod 755 "$dir"
  user="pgstate-lab-$(printf %s "$dir" | sha256sum | cut -c1-8)"
  port=$(free_port)
  printf 'LAB_USER=%s\nLAB_SSH_PORT=%s\nLAB_HOSTS=%s\n' "$user" "$port" "$n" > "$dir/lab.env"

  # The user Ansible connects as: key authentication only, sudo for become.
  ssh-keygen -q -t ed25519 -N '' -C pgstate-lab-host -f "$dir/ssh_host_ed25519_key"
  ssh-keygen -q -t ed25519 -N '' -C pgstate-lab-user -f "$dir/id_ed25519"
  useradd -M -d "$dir/home" -s /bin/sh "$user"
  usermod -p '*' "$user"     # a new user is locked ('!'), and sshd refuses a locked one
  mkdir -p "$dir/home/.ssh"
  cp "$dir/id_ed25519.pub" "$dir/home/.ssh/authorized_keys"
  chown -R "$user:" "$dir/home"
  chmod 700 "$dir/home" "$dir/home/.ssh"
  chmod 600 "$dir/home/.ssh/authorized_keys"
  printf '%s ALL=(ALL) NOPASSWD: ALL\n' "$user" > "$dir/sudoers.tmp"
  visudo -cqf "$dir/sudoers.tmp"
  install -m 0440 "$dir/sudoers.tmp" "/etc/sudoers.d/$user"
  rm -f "$dir/sudoers.tmp"

  cat > "$dir/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $dir/ssh_host_ed25519_key
PidFile $dir/sshd.pid
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin no
AllowUsers $user
MaxStartups 200
MaxSessions 200
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
  mkdir -p /run/sshd
  /usr/sbin/sshd -t -f "$dir/sshd_config"
  /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"

  # The database hosts: a cluster each, with its own host directories and pgstate path.
  mkdir -p "$dir/hosts" "$dir/plans"
  {
    echo "databases:"
    echo "  hosts:"
  } > "$dir/inventory.yml"
  for i in $(seq 1 "$n"); do
    local h="$dir/db$i" pgport=$((54320 + i))
    mkdir -p "$h/cluster" "$h/bin"
    start_scratch_cluster "$h/cluster" "$pgport"
    mkdir -p "$h/host/systemd" "$h/host/cron.d" "$h/host/lock" "$h/host/etc" "$h/host/credentials" "$h/host/state"
    cat > "$dir/hosts/db$i.yaml" <<EOF
apiVersion: pgstate/v1
kind: PostgresHost
metadata: {name: db$i}
spec:
  connection: {host: $h/cluster, port: $pgport, user: postgres}
  dataDirectory: $h/cluster/data
  settings:
    archive_timeout: 5min
    work_mem: 8MB
  hba:
    rules:
      - {type: local, database: all, user: postgres, method: trust}
      - {type: local, database: all, user: all, method: scram-sha-256}
      - {type: host, database: all, user: app_rw, address: 10.20.0.0/16, method: scram-sha-256}
  roles:
    - {name: app_rw, login: true, password: {fromEnv: PG_APP_PASSWORD}}
EOF
    cat >> "$dir/inventory.yml" <<EOF
    db$i:
      pgstate_socket: $h/cluster
      pgstate_port: $pgport
      pgstate_executable: $h/bin/pgstate
      pgstate_env:
        PGSTATE_UNIT_DIR: $h/host/systemd
        PGSTATE_CRON_DIR: $h/host/cron.d
        PGSTATE_LOCK_DIR: $h/host/lock
        PGSTATE_CONFIG_DIR: $h/host/etc
        PGSTATE_CREDENTIALS_DIR: $h/host/credentials
        PGSTATE_STATE_DIR: $h/host/state
EOF
  done
  cat >> "$dir/inventory.yml" <<EOF
  vars:
    ansible_host: 127.0.0.1
    ansible_port: $port
    ansible_user: $user
    ansible_ssh_private_key_file: $dir/id_ed25519
    ansible_python_interpreter: /usr/bin/python3
    ansible_remote_tmp: $dir/remote-tmp
    pgstate_binary: $binary
    pgstate_manifest: "$dir/hosts/{{ inventory_hostname }}.yaml"
EOF
  mkdir -p "$dir/remote-tmp" "$dir/local-tmp" "$dir/cp" "$dir/collections" "$dir/controller-home"
  chmod 1777 "$dir/remote-tmp"
  cat > "$dir/ansible.cfg" <<EOF
[defaults]
inventory = $dir/inventory.yml
collections_path = $dir/collections
local_tmp = $dir/local-tmp
host_key_checking = False
retry_files_enabled = False
interpreter_python = /usr/bin/python3
forks = 10

[ssh_connection]
pipelining = True
control_path_dir = $dir/cp
ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -o LogLevel=ERROR
EOF
  local tarball
  tarball=$(bash "$here/../integrations/ansible/build.sh" "$dir/collection-build")
  HOME="$dir/controller-home" ansible-galaxy collection install -p "$dir/collections" "$tarball" --force >/dev/null 2>&1
}

down() {
  local dir=$1 user="" pid
  [ -d "$dir" ] || return 0
  dir=$(cd "$dir" && pwd)
  [ -f "$dir/lab.env" ] && user=$(sed -n 's/^LAB_USER=//p' "$dir/lab.env")
  # The controller's persistent SSH connections first, so the server side's sessions end.
  for socket in "$dir"/cp/*; do
    [ -S "$socket" ] && ssh -o ControlPath="$socket" -O exit placeholder >/dev/null 2>&1 || true
  done
  if [ -f "$dir/sshd.pid" ]; then
    pid=$(cat "$dir/sshd.pid")
    kill "$pid" 2>/dev/null || true
  fi
  for i in $(seq 1 50); do
    [ -d "$dir/db$i" ] || continue
    stop_scratch_cluster "$dir/db$i/cluster"
  done
  if [ -n "$user" ] && id "$user" >/dev/null 2>&1; then
    # What the lab user still runs (sshd session children), by process id.
    for pid in $(ps -o pid= -u "$user" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
    sleep 0.2
    userdel "$user" 2>/dev/null || { sleep 1; userdel "$user"; }
  fi
  [ -n "$user" ] && rm -f "/etc/sudoers.d/$user"
  rm -rf "$dir"
}

case "${1:-}" in
  up) up "$2" "$3" "$4" ;;
  down) down "$2" ;;
  *) echo "usage: $0 up DIR N BINARY | down DIR" >&2; exit 2 ;;
esac
