#!/usr/bin/env python3
"""meta_replay.py — replay a read trace ("OFFSET LENGTH" lines, as
tests/vm/boot.sh --trace writes) against an NFSv3 server, one READ at a
time like a booting guest with queue depth 1, and check every byte against
the local copy of the file.

  meta_replay.py HOST PORT EXPORT PATH LOCAL TRACE [SLOW_MS]

Prints "reads N bytes B secs S waits W" where W counts READs slower than
SLOW_MS (default 10): the synchronous waits for the WAN.  Exit 1 on any
wrong byte or NFS error.

REPLAY_AT=EPOCH_SECONDS in the environment: wait until then before the
LOOKUP (which opens the image: a client role with metadata starts its
background fetch there), so several replays (a herd of nodes) start at the
same moment and none gives the others' site a head start; secs counts
from there, the LOOKUP included.
"""
import mmap
import os
import sys
import time

from nfsrpc import Nfs, opaque, u32, u64


def main(argv):
    host, port, export, path, local, trace = argv[1:7]
    slow = float(argv[7]) / 1000 if len(argv) > 7 else 0.010
    with open(local, "rb") as f:  # mapped: a herd of replays shares it
        truth = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    n = Nfs(host, int(port), export)
    start = float(os.environ.get("REPLAY_AT", "0"))
    if start > time.time():
        time.sleep(start - time.time())
    t0 = time.monotonic()
    fh = n.lookup_path(path)
    reads = nbytes = waits = 0
    for line in open(trace):
        if not line.strip() or line.startswith("#"):
            continue
        off, length = map(int, line.split()[:2])
        while length > 0:
            cnt = min(length, 1 << 20)
            t = time.monotonic()
            st, r = n.call(6, opaque(fh) + u64(off) + u32(cnt))
            if time.monotonic() - t > slow:
                waits += 1
            if st:
                print(f"READ {off} {cnt}: nfs error {st}")
                return 1
            r.post_op_attr()
            r.u32()
            r.u32()
            got = r.opaque()
            if got != truth[off:off + cnt]:
                print(f"READ {off} {cnt}: wrong data")
                return 1
            reads += 1
            nbytes += len(got)
            off += cnt
            length -= cnt
    print(f"reads {reads} bytes {nbytes} secs {time.monotonic() - t0:.3f} "
          f"waits {waits}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
