#!/bin/sh
# Writes a Mosquitto password file: coordinator, operator, client, camera, dashboard, agents.
# usage: make-passwords.sh PASSWD_FILE SECRET AGENT_ID...   (every user gets SECRET; use
#        mosquitto_passwd afterwards to give each its own)
set -eu
[ $# -ge 2 ] || { echo "usage: $0 PASSWD_FILE SECRET [AGENT_ID...]" >&2; exit 2; }
file=$1 secret=$2
shift 2
: >"$file"
chmod 600 "$file"
for user in coordinator operator client camera dashboard "$@"; do
    mosquitto_passwd -b "$file" "$user" "$secret"
done
