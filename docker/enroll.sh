#!/bin/sh
# One-shot enrollment of the compose nodes with the compose hub (the `enroll` service).
#
# For every "COUNTRY:DATA_DIR" in NODES whose country the hub does not list yet: make a one-time
# invitation on the hub's data dir (`ncc hub invite`) and enroll the node with it (`ncc enroll`,
# which signs a proof with the node's key and posts it to the running hub). Already enrolled nodes
# are skipped, so running it again is harmless. The token goes from one command to the other through
# a private file (umask 077), never on a command line (where `ps` would show it).
#
# Environment (not ncc settings; each instance's own settings come from its config.toml):
#   HUB_DATA_DIR  the hub's data dir, mounted from its volumes   (default /hub)
#   HUB_URL       the hub's URL as the nodes reach it           (default http://hub:8080)
#   NODES         space-separated COUNTRY:DATA_DIR pairs         (e.g. "DE:/nodes/de FR:/nodes/fr")
set -eu
umask 077

hub_dir="${HUB_DATA_DIR:-/hub}"
hub_url="${HUB_URL:-http://hub:8080}"
: "${NODES:?NODES must list COUNTRY:DATA_DIR pairs}"

token_file="$(mktemp)"
trap 'rm -f "$token_file"' EXIT INT TERM

for pair in $NODES; do
    country="${pair%%:*}"
    node_dir="${pair#*:}"
    if ncc hub nodes --data-dir "$hub_dir" | grep -q "\"country\":\"$country\""; then
        echo "ncc-enroll-all: $country is already enrolled" >&2
        continue
    fi
    ncc hub invite --data-dir "$hub_dir" "$country" | tail -n 1 > "$token_file"
    ncc enroll --data-dir "$node_dir" --hub "$hub_url" --token-file "$token_file"
    : > "$token_file"
done

ncc hub nodes --data-dir "$hub_dir"
touch /tmp/enrolled
