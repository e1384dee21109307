#!/bin/sh
# The one list of Debian 12 packages fleetinfer needs; installs whatever is missing.
# usage: scripts/deps.sh [build|bench|train|all]   (default: build)
set -eu
build="build-essential cmake pkg-config clang libclang-rt-14-dev valgrind
  protobuf-c-compiler libprotobuf-c-dev libonnx-dev libxnnpack-dev libpthreadpool-dev
  libcmocka-dev zlib1g-dev libssl-dev libpaho-mqtt-dev libmsgpack-dev mosquitto mosquitto-clients
  dataset-fashion-mnist"
bench="python3-torch python3-numpy"
# Node may come from elsewhere than Debian (a newer nodejs); only a missing one is installed.
command -v node >/dev/null 2>&1 || bench="$bench nodejs"
command -v npm >/dev/null 2>&1 || bench="$bench npm"
train="python3-torch python3-torchvision python3-numpy dataset-fashion-mnist"
case "${1:-build}" in
build) want=$build ;;
bench) want="$build $bench" ;;
train) want="$train" ;;
all) want="$build $bench $train" ;;
*) echo "usage: $0 [build|bench|train|all]" >&2; exit 2 ;;
esac
missing=""
for pkg in $want; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing" >&2
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "deps: run as root to install:$missing" >&2; exit 1; }
    SUDO=sudo
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >&2
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing >&2
