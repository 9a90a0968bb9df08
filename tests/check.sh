#!/bin/bash
# The full test suite on a fresh Debian 12 machine (as root): installs the
# packages it needs, builds gridvfs, runs `make check` (every unit and
# integration test), then the daemon's scenarios again under ASan+UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/tools/install-deps.sh
[ -x configure ] || autoreconf -fi
[ -f Makefile ] || ./configure --enable-werror
make -j"$(nproc)"
make -j"$(nproc)" check
bash tests/sanitize.sh
