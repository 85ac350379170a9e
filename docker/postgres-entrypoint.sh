#!/usr/bin/env bash
# Initialise the cluster once (the volume keeps it), then run PostgreSQL on 127.0.0.1 only.
set -euo pipefail
PGDATA="${PGDATA:-/var/lib/postgresql/data}"
PGPORT="${PGPORT:-5432}"
DATABASE="${ZENLOOP_DATABASE:-zenloop}"
BIN=/usr/lib/postgresql/15/bin
if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
    "$BIN/initdb" -D "$PGDATA" --auth=trust --username=zenloop >/dev/null
    "$BIN/pg_ctl" -D "$PGDATA" -o "-c listen_addresses=127.0.0.1 -p $PGPORT" -w start >/dev/null
    "$BIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U zenloop "$DATABASE"
    "$BIN/pg_ctl" -D "$PGDATA" -w stop >/dev/null
fi
exec "$BIN/postgres" -D "$PGDATA" -c listen_addresses=127.0.0.1 -p "$PGPORT"
