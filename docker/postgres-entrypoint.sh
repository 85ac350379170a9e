#!/usr/bin/env bash
# PostgreSQL on 127.0.0.1 only, with a password: connections over TCP authenticate with
# scram-sha-256 against PGPASSWORD (from the environment, i.e. compose's secret); the unix
# socket inside the container trusts its own users (no one else reaches it). The password
# is set on every start, so rotating the secret needs only a restart. The cluster is
# initialised once (the volume keeps it).
set -euo pipefail
PGDATA="${PGDATA:-/var/lib/postgresql/data}"
PGPORT="${PGPORT:-5432}"
PGPASSWORD="${PGPASSWORD:?set PGPASSWORD (compose: ZENLOOP_PG_PASSWORD)}"
DATABASE="${ZENLOOP_DATABASE:-zenloop}"
ROLE=zenloop
BIN=/usr/lib/postgresql/15/bin
SOCKETS=/var/run/postgresql
if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
    "$BIN/initdb" -D "$PGDATA" --username="$ROLE" >/dev/null
fi
cat > "$PGDATA/pg_hba.conf" <<HBA
local all all trust
host all all 127.0.0.1/32 scram-sha-256
host all all ::1/128 scram-sha-256
HBA
"$BIN/pg_ctl" -D "$PGDATA" -o "-c listen_addresses= -p $PGPORT -k $SOCKETS" -w start >/dev/null
psql -h "$SOCKETS" -p "$PGPORT" -U "$ROLE" -d postgres -v ON_ERROR_STOP=1 -q -v pw="$PGPASSWORD" \
    <<<"SET password_encryption = 'scram-sha-256'; ALTER ROLE $ROLE PASSWORD :'pw';"
if ! psql -h "$SOCKETS" -p "$PGPORT" -U "$ROLE" -d postgres -tAc \
    "select 1 from pg_database where datname = '$DATABASE'" | grep -q 1; then
    "$BIN/createdb" -h "$SOCKETS" -p "$PGPORT" -U "$ROLE" "$DATABASE"
fi
"$BIN/pg_ctl" -D "$PGDATA" -w stop >/dev/null
exec "$BIN/postgres" -D "$PGDATA" -c listen_addresses=127.0.0.1 -p "$PGPORT" -k "$SOCKETS"
