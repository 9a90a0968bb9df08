#!/bin/bash
# mount_posix_exports: mount_posix's whole scenario (file life cycle,
# errno, ownership, links, renames, truncation, special files, a 10 000-
# entry readdir, concurrency) through a gridvfsd with two [export]
# sections, so that every handle the FUSE mount sees carries an export tag
# and every procedure goes through the tag routing of proxy/exports.c.
MP_EXPORTS=1 MP_NAME=mount_posix_exports exec bash "$(dirname "${BASH_SOURCE[0]}")/mount_posix.sh"
