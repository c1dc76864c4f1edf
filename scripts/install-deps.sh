#!/usr/bin/env bash
# Installs, with apt-get, what `make test` needs and a fresh Debian machine
# lacks: redis-cli (protocol tests); openssl (the TLS tests' certificates);
# cc, g++, pkg-config, cmake and valgrind
# (libdkv's C and C++ tests); iptables and libfaketime (the fault suite's
# link cuts and clock offsets); python3-venv (Debian's python3 makes
# virtualenvs only with it). Does nothing when all are there.
set -euo pipefail

missing=""
for tool in redis-cli:redis-tools openssl:openssl cc:gcc g++:g++ pkg-config:pkg-config cmake:cmake valgrind:valgrind iptables:iptables faketime:faketime; do
  command -v "${tool%%:*}" >/dev/null || missing="$missing ${tool#*:}"
done
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || [ "$(uname -m)" != x86_64 ] || missing="$missing libfaketime"
python3 -c "import ensurepip" 2>/dev/null || missing="$missing python3-venv"
[ -z "$missing" ] && exit 0

echo "installing:$missing" >&2
if ! command -v apt-get >/dev/null; then
  echo "apt-get not found: install$missing by hand, then run make test again" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "not root and no sudo: install$missing by hand" >&2; exit 1; }
  SUDO="sudo"
fi
$SUDO apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
