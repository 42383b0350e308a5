#!/usr/bin/env bash
# Makes sure Postgres and Redis answer on loopback, installing them with apt when missing.
# Used by `make dev` and `make test`. Set MEISA_SKIP_DEPS=1 to manage them yourself.
#
# Postgres is reached as postgres:postgres@127.0.0.1:5432 (a fresh Debian install gets that
# password; a trust-auth server ignores it). Point DATABASE_URL/REDIS_URL elsewhere to use
# servers you already run.
set -euo pipefail

[ "${MEISA_SKIP_DEPS:-0}" = 1 ] && exit 0

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  echo "need root to install $*; install Postgres and Redis yourself, or run as root" >&2; exit 1; fi; }

apt_updated=0
apt_install() {
  if ! command -v apt-get >/dev/null; then
    echo "apt-get not found: install $* yourself (Postgres 13+ on :5432, Redis 6.2+ on :6379)" >&2
    exit 1
  fi
  if [ "$apt_updated" = 0 ]; then say "apt-get update"; as_root apt-get update -qq; apt_updated=1; fi
  say "installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

wait_port() {
  for _ in $(seq 1 100); do up "$1" && return 0; sleep 0.1; done
  echo "$2 did not come up on 127.0.0.1:$1" >&2; exit 1
}

if ! up 5432; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_install postgresql
    fresh_pg=1
  fi
  say "starting Postgres"
  ver=$(ls /etc/postgresql | sort -V | tail -n1)
  as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start 2>/dev/null \
    || as_root pg_ctlcluster "$ver" main start
  wait_port 5432 Postgres
  if [ "${fresh_pg:-0}" = 1 ]; then
    as_root su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\""
  fi
fi

if ! up 6379; then
  command -v redis-server >/dev/null || apt_install redis-server
  say "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  wait_port 6379 Redis
fi
