#!/bin/sh
# Makes a private CA and a broker certificate for tls.conf (self-signed; for labs and tests).
# usage: make-tls.sh OUT_DIR BROKER_HOSTNAME
set -eu
[ $# -eq 2 ] || { echo "usage: $0 OUT_DIR BROKER_HOSTNAME" >&2; exit 2; }
out=$1 host=$2
mkdir -p "$out"
openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=fleetinfer CA" \
    -keyout "$out/fleet-ca.key" -out "$out/fleet-ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=$host" \
    -keyout "$out/fleet-broker.key" -out "$out/fleet-broker.csr" 2>/dev/null
printf 'subjectAltName=DNS:%s,IP:127.0.0.1\n' "$host" >"$out/san.ext"
openssl x509 -req -in "$out/fleet-broker.csr" -CA "$out/fleet-ca.crt" -CAkey "$out/fleet-ca.key" \
    -CAcreateserial -days 825 -extfile "$out/san.ext" -out "$out/fleet-broker.crt" 2>/dev/null
rm -f "$out/fleet-broker.csr" "$out/san.ext"
chmod 600 "$out"/*.key
echo "wrote $out/fleet-ca.crt, fleet-broker.crt, fleet-broker.key"
