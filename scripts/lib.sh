# Shared helpers for pgstate's scripts (sourced, not run).

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs the Debian packages that are missing (apt-get update only when something is).
ensure_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}" >&2
    as_root apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
}

# What the tests and the sandbox need: a PostgreSQL server, the SELinux tools and policy, attr;
# systemd-analyze with the zone files (the calendar tests compare CalendarSpec with it); the package
# tools (rpm, lintian), and debootstrap + systemd-nspawn for the test under a real systemd; Ansible,
# sshd and sudo for the collection's tests (they start their own sshd, never the system's).
ensure_test_packages() {
  ensure_packages postgresql postgresql-contrib pgbackrest util-linux coreutils \
    policycoreutils policycoreutils-python-utils semanage-utils selinux-policy-default selinux-utils attr \
    systemd tzdata rpm lintian debootstrap systemd-container ansible openssh-server openssh-client sudo strace
}

ensure_dotnet() {
  if ! command -v dotnet >/dev/null 2>&1; then
    echo "error: the .NET SDK (dotnet) is not on PATH; install the .NET 10 SDK first" >&2
    exit 1
  fi
}

# Where scripts/fetch-postgres.sh keeps the server binaries of the majors Debian does not package
# (one directory per major). Outside the work tree, so a CI run on the same machine reuses them.
pg_cache_dir() {
  echo "${PGSTATE_PG_CACHE:-/var/cache/pgstate-tests/postgres}"
}

pg_bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] || { echo "error: PostgreSQL server binaries not found" >&2; exit 1; }
  echo "$d"
}

# Runs a command as the PostgreSQL OS user when we are root (initdb and pg_ctl refuse root).
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# start_scratch_cluster DIR PORT: initdb into DIR/data and start it on a Unix socket in DIR.
start_scratch_cluster() {
  local dir=$1 port=$2 bin
  bin=$(pg_bindir)
  chmod 755 "$dir"
  mkdir -p "$dir/data"
  [ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$dir"
  as_pg "$bin/initdb" -N -A trust -U postgres -D "$dir/data" >/dev/null
  as_pg "$bin/pg_ctl" -D "$dir/data" -o "-k $dir -p $port -c listen_addresses=''" -l "$dir/server.log" -w start >/dev/null
}

stop_scratch_cluster() {
  as_pg "$(pg_bindir)/pg_ctl" -D "$1/data" -m fast -w stop >/dev/null 2>&1 || true
}
