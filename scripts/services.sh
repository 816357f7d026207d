#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on 127.0.0.1 (starting them, or installing them with apt when
# missing), and optionally Debian's Chromium for the browser tests. Sourced by test.sh and dev.sh.
set -euo pipefail

say() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }
warn() { printf '\033[1;33m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m==>\033[0m %s\n' "$*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_port() {
  local host=$1 port=$2 tries=${3:-50}
  for _ in $(seq "$tries"); do port_open "$host" "$port" && return 0; sleep 0.2; done
  return 1
}

can_apt() { command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; }

APT_UPDATED=0
apt_install() {
  can_apt || return 1
  if [ "$APT_UPDATED" = 0 ]; then
    say "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    APT_UPDATED=1
  fi
  say "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_postgres() {
  port_open 127.0.0.1 5432 && return 0
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    apt_install postgresql || die "PostgreSQL is not installed and apt-get is not available to install it.
    Install PostgreSQL 13+ listening on 127.0.0.1:5432 (user postgres), or set TEST_DATABASE_URL."
  fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -1)
  say "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null \
    || pg_ctlcluster "$version" main start
  wait_port 127.0.0.1 5432 || die "PostgreSQL did not start on 127.0.0.1:5432"
}

# A stock Debian cluster asks for a password over TCP: when the tests' credentials do not work and
# we are root, give the postgres role the password the default TEST_DATABASE_URL uses.
ensure_postgres_login() {
  command -v psql >/dev/null 2>&1 || return 0  # no client to check with: the tests will say
  PGPASSWORD=postgres PGCONNECT_TIMEOUT=5 psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'select 1' \
    >/dev/null 2>&1 && return 0
  [ "$(id -u)" = 0 ] || die "Cannot sign in to PostgreSQL on 127.0.0.1 as postgres/postgres; set TEST_DATABASE_URL."
  say "setting the postgres role's password for local TCP sign-in"
  su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
}

ensure_redis() {
  local port=${1:-6379}
  port_open 127.0.0.1 "$port" && return 0
  if ! command -v redis-server >/dev/null 2>&1; then
    apt_install redis-server || die "Redis is not installed and apt-get is not available to install it.
    Install Redis (e.g. 'sudo apt-get install redis-server' or 'brew install redis'), or set REDIS_URL."
  fi
  say "starting redis-server on 127.0.0.1:$port"
  mkdir -p /tmp/broadcaster-redis
  redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
    --dir /tmp/broadcaster-redis --logfile /tmp/broadcaster-redis/redis.log
  wait_port 127.0.0.1 "$port" || die "redis-server did not start on port $port"
}

ensure_chromium() {
  [ -x /usr/bin/chromium ] && return 0
  apt_install chromium || warn "Debian's chromium is not installed: browser tests will be skipped."
}
