#!/usr/bin/env python3
"""nfsrace.py — races that once made a caching client role lie, checked
byte for byte, each N times:

  nfsrace.py HOST PORT EXPORT clean N
      WRITE (UNSTABLE), COMMIT, then at once a truncating SETATTR: the
      SETATTR's post-op size, a GETATTR and a READ's length and eof must
      all say the new size (the file became clean the instant the COMMIT
      was answered; a reply patched by a stale local view said the old
      size).
  nfsrace.py HOST PORT EXPORT fill N
      A READ of a block and an overwrite of it (same size: the version may
      not change within a timestamp tick) sent back to back, answers in
      any order; then a READ must return the new bytes (a fill from the
      first READ that landed after the write's invalidation served the
      old ones).

Exit 0 when every round held, 1 with the first difference.
"""
import os
import random
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nfsrpc import NFS, Nfs, Reader, opaque, u32, u64  # noqa: E402


class Pipe(Nfs):
    """Several NFS calls sent before any answer is read."""

    def send(self, proc, args):
        self.xid += 1
        msg = (u32(self.xid) + u32(0) + u32(2) + u32(NFS) + u32(3)
               + u32(proc) + self._cred() + u32(0) + u32(0) + args)
        self.s.sendall(u32(0x80000000 | len(msg)) + msg)
        return self.xid

    def recv(self):
        data = b""
        while True:
            mark = struct.unpack(">I", self._recv(self.s, 4))[0]
            data += self._recv(self.s, mark & 0x7FFFFFFF)
            if mark & 0x80000000:
                break
        r = Reader(data)
        xid, _, stat = r.u32(), r.u32(), r.u32()
        if stat:
            raise SystemExit(f"call {xid:x} denied")
        r.u32()
        r.opaque()
        if r.u32():
            raise SystemExit(f"call {xid:x}: RPC error")
        return xid, r

    def gather(self, xids):
        got = {}
        while len(got) < len(xids):
            xid, r = self.recv()
            got[xid] = r
        return [got[x] for x in xids]


def read_res(r):
    st = r.u32()
    a = r.post_op_attr()
    if st:
        raise SystemExit(f"READ status {st}")
    r.u32()
    eof = r.u32()
    return r.opaque(), eof, a


def write_args(fh, off, data, stable):
    return opaque(fh) + u64(off) + u32(len(data)) + u32(stable) + opaque(data)


def setsize_args(fh, size):
    return (opaque(fh) + u32(0) + u32(0) + u32(0) + u32(1) + u64(size)
            + u32(0) + u32(0) + u32(0))


def race_clean(c, fh, n, rng):
    for k in range(n):
        big = rng.randint(8193, 60000)
        small = rng.randint(0, 8192)
        x1 = c.send(7, write_args(fh, 0, rng.randbytes(big), 0))
        c.gather([x1])
        x2 = c.send(21, opaque(fh) + u64(0) + u32(0))
        c.gather([x2])
        # The SETATTR leaves the moment the COMMIT is answered.
        x3 = c.send(2, setsize_args(fh, small))
        (r,) = c.gather([x3])
        st = r.u32()
        a = r.wcc()
        if st or not a or a["size"] != small:
            raise SystemExit(f"round {k}: SETATTR to {small} after {big}: "
                             f"status {st}, post-op size "
                             f"{a and a['size']}")
        x4 = c.send(1, opaque(fh))
        x5 = c.send(6, opaque(fh) + u64(0) + u32(65536))
        ga, rd = c.gather([x4, x5])
        st = ga.u32()
        size = ga.fattr()["size"]
        data, eof, ra = read_res(rd)
        if size != small or len(data) != small or not eof or \
                (ra and ra["size"] != small):
            raise SystemExit(f"round {k}: after truncating {big} to {small}: "
                             f"GETATTR {size}, READ {len(data)} bytes eof "
                             f"{eof} size {ra and ra['size']}")


def race_fill(c, fh, n, rng, bs=65536):
    cur = rng.randbytes(bs)
    c.send(7, write_args(fh, 0, cur, 2))
    c.gather([c.xid])
    for k in range(n):
        new = rng.randbytes(bs)
        xr = c.send(6, opaque(fh) + u64(0) + u32(bs))
        xw = c.send(7, write_args(fh, 0, new, 2))
        rr, rw = c.gather([xr, xw])
        data, _, _ = read_res(rr)
        if data not in (cur, new):
            raise SystemExit(f"round {k}: the racing READ got neither "
                             "the old nor the new bytes")
        if rw.u32():
            raise SystemExit(f"round {k}: WRITE failed")
        cur = new
        for _ in range(2):  # the first may be a miss, the second a hit
            xv = c.send(6, opaque(fh) + u64(0) + u32(bs))
            (rv,) = c.gather([xv])
            data, _, _ = read_res(rv)
            if data != cur:
                first = next(i for i in range(min(len(data), bs))
                             if data[i] != cur[i]) if len(data) else 0
                raise SystemExit(f"round {k}: READ after the WRITE returned "
                                 f"stale bytes (first at {first})")


def main(argv):
    if len(argv) != 6 or argv[4] not in ("clean", "fill"):
        print(__doc__, file=sys.stderr)
        return 2
    host, port, export, mode, n = argv[1], int(argv[2]), argv[3], argv[4], \
        int(argv[5])
    c = Pipe(host, port, export)
    name = f"race-{mode}-{os.getpid()}"
    c.create(name)
    fh = c.lookup_path(name)
    rng = random.Random(int(os.environ.get("RACE_SEED", "1")))
    (race_clean if mode == "clean" else race_fill)(c, fh, n, rng)
    print(f"{mode}: {n} rounds held")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
