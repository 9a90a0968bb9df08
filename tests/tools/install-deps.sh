#!/bin/bash
# Installs the Debian 12 packages gridvfs needs to build, test and demo.
# Only missing packages are installed, so a second run costs nothing.
# nfs-ganesha-proxy-v4 (FSAL PROXY_V4) is only for `make bench`: ganesha's
# own proxy is the peer the bench compares gridvfs with.
set -euo pipefail
PKGS=(build-essential autoconf automake libtool pkg-config
      libtirpc-dev libssl-dev openssl libzstd-dev liblmdb-dev lmdb-utils libfuse3-dev fuse3
      libcunit1-dev rpcsvc-proto python3 procps psmisc iproute2
      nfs-ganesha nfs-ganesha-vfs nfs-ganesha-proxy-v4 rpcbind libnfs-utils libnfs-dev fdisk e2fsprogs gnuplot-nox
      tcpdump tshark bc man-db groff-base systemd)
PKGS+=("$@")
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "install-deps: missing packages: ${missing[*]} (run as root)" >&2
		exit 1
	fi
	echo "install-deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# tshark asks whether non-root users may capture: they may not.
	echo "wireshark-common wireshark-common/install-setuid boolean false" |
		debconf-set-selections
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
