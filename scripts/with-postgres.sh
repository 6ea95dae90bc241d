#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL server: installs Debian's `postgresql` when
# its server binaries are missing, creates a cluster in a temporary directory, starts it
# on a free port on 127.0.0.1, exports FOREMAN_TEST_PG_URL (a superuser URL the tests
# create their own databases with), runs the command, then stops the server and deletes
# the cluster, whatever the command did. Exits with the command's status.
#
#   scripts/with-postgres.sh cargo test -p foreman-server
set -euo pipefail

find_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [[ -x $dir/initdb && -x $dir/pg_ctl ]] && { echo "$dir"; return 0; }
  done
  return 1
}

if ! bin=$(find_bin); then
  echo "with-postgres: installing Debian's postgresql" >&2
  if [[ $(id -u) -eq 0 ]]; then sudo=(); else sudo=(sudo); fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq postgresql >/dev/null
  bin=$(find_bin)
fi

# initdb and postgres refuse to run as root: run them as the `postgres` user the package
# creates.
as_owner=()
if [[ $(id -u) -eq 0 ]]; then as_owner=(runuser -u postgres --); fi

dir=$(mktemp -d /tmp/foreman-pg.XXXXXX)
# Set before anything else can fail, so the directory never outlives the script.
stop() {
  "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT
chmod 755 "$dir"
[[ $(id -u) -eq 0 ]] && chown postgres "$dir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

"${as_owner[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 \
  >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
# fsync stays on: the replica tests kill foreman processes, not the database, but the
# server should behave as it would in production. Enough connections for many tests at
# once, each with its own pool.
"${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=500" start >/dev/null \
  || { cat "$dir/server.log" >&2; exit 1; }
echo "with-postgres: PostgreSQL on 127.0.0.1:$port ($dir)" >&2

export FOREMAN_TEST_PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
set +e
"$@"
status=$?
set -e
exit $status
