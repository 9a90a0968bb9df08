#!/bin/bash
# The full test suite on a fresh Debian 12 machine (as root): installs the
# packages it needs, builds gridvfs, and runs `make check`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/tools/install-deps.sh
[ -x configure ] || autoreconf -fi
[ -f Makefile ] || ./configure --enable-werror
make -j"$(nproc)"
make -j"$(nproc)" check
