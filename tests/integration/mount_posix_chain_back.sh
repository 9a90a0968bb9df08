#!/bin/bash
# mount_posix_chain_back.sh — mount_posix_chain.sh with the client role in
# --write-policy back (the FUSE mount's writes absorbed by the dirty log and
# flushed through the server role): the same POSIX checks must hold.
WB=1 exec bash "$(dirname "$0")/mount_posix_chain.sh"
