#!/usr/bin/env bash
# Start a throw-away PostgreSQL cluster on 127.0.0.1 for the tests (installing Debian's postgresql if it is
# missing and we are root) and print its URL. Idempotent: a running cluster is reused.
set -euo pipefail
if [ -n "${TWB_TEST_PG_URL:-}" ]; then echo "$TWB_TEST_PG_URL"; exit 0; fi
port=${TWB_TEST_PG_PORT:-55432}
dir=${TWB_TEST_PG_DIR:-/tmp/twb-pgtest}
find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
bin=$(find_bin)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  if [ "$(id -u)" != 0 ]; then echo "PostgreSQL is not installed; run: sudo apt-get install -y postgresql" >&2; exit 1; fi
  echo "installing Debian's postgresql ..." >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
  bin=$(find_bin)
fi
as_pg=()
if [ "$(id -u)" = 0 ]; then as_pg=(runuser -u postgres --); fi   # initdb refuses to run as root
if ! "${as_pg[@]}" "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
  if [ ! -f "$dir/PG_VERSION" ]; then
    mkdir -p "$dir"; [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
    "${as_pg[@]}" "$bin/initdb" -D "$dir" -A trust -U twb -E UTF8 >/dev/null
  fi
  "${as_pg[@]}" "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off" start >&2
fi
if ! "$bin/psql" -h 127.0.0.1 -p "$port" -U twb -d postgres -tAc "select 1 from pg_database where datname='twb_test'" | grep -q 1; then
  "$bin/createdb" -h 127.0.0.1 -p "$port" -U twb twb_test
fi
echo "postgresql://twb@127.0.0.1:${port}/twb_test"
