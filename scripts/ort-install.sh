#!/bin/sh
# Installs onnxruntime-node (CPU binaries bundled, no install scripts) under scripts/ort/.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if [ -d "$here/ort/node_modules/onnxruntime-node" ]; then
    exit 0
fi
command -v npm >/dev/null || { echo "ort-install: npm is missing (apt-get install npm)" >&2; exit 1; }
cd "$here/ort" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error >&2
