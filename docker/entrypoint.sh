#!/bin/sh
# Container start of one ncc instance: on the first start (no config.toml in the data dir) run
# `ncc init` from the NCC_* settings in the environment, then `exec ncc serve`.
#
# Environment (all are ncc settings, see config/*.example.toml):
#   NCC_ROLE     node | hub                                   (required on the first start)
#   NCC_COUNTRY  ISO 3166-1 alpha-2 country of a node         (node role)
#   NCC_URL      public base URL others reach this instance at (e.g. http://node-de:8080)
#   NCC_PORT     listen port (default 8080)       NCC_HOST  listen address (use 0.0.0.0 in a container)
#   NCC_DB       postgres://user@host:5432/database  (empty: SQLite in the data dir)
#   NCC_DB_PASSWORD  the database password, read at every start and never written to config.toml
#                (or NCC_DB_PASSWORD_FILE naming a 0600 file, e.g. a Docker secret under /run/secrets;
#                a password inside NCC_DB is moved by `ncc init` to <data dir>/keys/db-password, 0600)
# Everything ncc writes in the data dir is private (dir 0700, files 0600).
# DATA_DIR (not a setting) overrides the data dir, default /data.
set -eu
umask 077

data_dir="${DATA_DIR:-/data}"

if [ ! -f "$data_dir/config.toml" ]; then
    : "${NCC_ROLE:?NCC_ROLE (node or hub) is required to initialise $data_dir}"
    set -- --role "$NCC_ROLE" --data-dir "$data_dir"
    if [ "$NCC_ROLE" = "node" ]; then
        : "${NCC_COUNTRY:?NCC_COUNTRY is required for a node}"
        set -- "$@" --country "$NCC_COUNTRY"
    fi
    [ -n "${NCC_URL:-}" ] && set -- "$@" --url "$NCC_URL"
    [ -n "${NCC_PORT:-}" ] && set -- "$@" --port "$NCC_PORT"
    [ -n "${NCC_HOST:-}" ] && set -- "$@" --host "$NCC_HOST"
    [ -n "${NCC_DB:-}" ] && set -- "$@" --db "$NCC_DB"
    echo "ncc-entrypoint: initialising $data_dir" >&2
    ncc init "$@"
fi

exec ncc serve --data-dir "$data_dir"
