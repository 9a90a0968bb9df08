#!/usr/bin/env python3
"""nfsmodel.py — drive a seeded random sequence of NFSv3 writes (UNSTABLE,
any offset), truncates, extends, reads and GETATTRs over one connection,
checking every read and size against an in-memory model of each file, and
resending uncommitted writes when the server's write verifier changes (as
a kernel client does).  The model is saved to / loaded from a state dir so
a run can be split around a proxy restart.

  nfsmodel.py HOST PORT EXPORT STATEDIR --seed S --from I --to J
              [--files K] [--writes-only] [--create] [--final]
              [--no-commit-truncate]
--create: create files f0..fK-1 (empty) first.  --final: COMMIT every file
and write the model to STATEDIR/model-fN for comparison with the export.
--no-commit-truncate: truncate without COMMITting first (a proxy must
order the SETATTR after the file's unflushed writes itself).
Every WRITE and SETATTR reply's post-op size, every GETATTR size and every
READ's data, post-op size and eof are checked against the model.
Prints "verf HEX" (the last write verifier seen) and "ops N" on success;
exit 1 with a message on the first mismatch or NFS error.
"""
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nfsrpc import Nfs, NfsError, opaque, u32, u64  # noqa: E402

MAXSIZE = 512 * 1024


class Client(Nfs):
    def fh(self, name):
        return self.lookup_path(name)

    def write_at(self, fh, off, data, stable=0):
        st, r = self.call(7, opaque(fh) + u64(off) + u32(len(data))
                          + u32(stable) + opaque(data))
        if st:
            raise NfsError(st, "WRITE")
        a = r.wcc()
        count, committed = r.u32(), r.u32()
        verf = r.b[r.p:r.p + 8]
        if count != len(data):
            raise NfsError(9999, "short WRITE")
        return committed, verf, a

    def access(self, fh, bits=0x3f):
        """ACCESS, as a kernel client sends at open: the granted bits."""
        st, r = self.call(4, opaque(fh) + u32(bits))
        if st:
            raise NfsError(st, "ACCESS")
        r.post_op_attr()
        return r.u32()

    def commit(self, fh):
        st, r = self.call(21, opaque(fh) + u64(0) + u32(0))
        if st:
            raise NfsError(st, "COMMIT")
        r.wcc()
        return r.b[r.p:r.p + 8]

    def read_at(self, fh, off, count):
        st, r = self.call(6, opaque(fh) + u64(off) + u32(count))
        if st:
            raise NfsError(st, "READ")
        a = r.post_op_attr()
        r.u32()
        eof = r.u32()
        return r.opaque(), eof, a

    def size(self, fh):
        st, r = self.call(1, opaque(fh))
        if st:
            raise NfsError(st, "GETATTR")
        return r.fattr()["size"]

    def truncate(self, fh, size):
        args = (opaque(fh) + u32(0) + u32(0) + u32(0) + u32(1) + u64(size)
                + u32(0) + u32(0) + u32(0))
        st, r = self.call(2, args)
        if st:
            raise NfsError(st, "SETATTR")
        return r.wcc()


class Driver:
    def __init__(self, c, state, nfiles, commit_truncate=True):
        self.c, self.state, self.n = c, state, nfiles
        self.commit_truncate = commit_truncate
        self.opno = 0
        self.model = {}
        self.fhs = {}
        self.pending = {}   # file -> [(off, data, verf)] not yet committed
        self.verf = None

    def load(self):
        for i in range(self.n):
            p = os.path.join(self.state, f"model-f{i}")
            self.model[i] = bytearray(open(p, "rb").read()) \
                if os.path.exists(p) else bytearray()
            self.pending[i] = []
        meta = os.path.join(self.state, "meta.json")
        if os.path.exists(meta):
            m = json.load(open(meta))
            self.verf = bytes.fromhex(m["verf"]) if m.get("verf") else None
            # Handles are kept: a LOOKUP would wait for a paused upstream.
            for k, h in m.get("fhs", {}).items():
                self.fhs.setdefault(int(k), bytes.fromhex(h))
            for k, lst in m.get("pending", {}).items():
                self.pending[int(k)] = [(o, bytes.fromhex(d), bytes.fromhex(v))
                                        for o, d, v in lst]

    def save(self):
        for i, b in self.model.items():
            with open(os.path.join(self.state, f"model-f{i}"), "wb") as f:
                f.write(b)
        pend = {str(k): [(o, d.hex(), v.hex()) for o, d, v in lst]
                for k, lst in self.pending.items()}
        json.dump({"verf": self.verf.hex() if self.verf else None,
                   "pending": pend,
                   "fhs": {str(k): h.hex() for k, h in self.fhs.items()}},
                  open(os.path.join(self.state, "meta.json"), "w"))

    def fh(self, i):
        if i not in self.fhs:
            self.fhs[i] = self.c.fh(f"f{i}")
        return self.fhs[i]

    def do_write(self, i, off, data):
        m = self.model[i]
        if off > len(m):
            m.extend(b"\0" * (off - len(m)))
        m[off:off + len(data)] = data
        committed, verf, a = self.c.write_at(self.fh(i), off, data)
        if a and a["size"] != len(m):
            raise SystemExit(f"op {self.opno}: WRITE f{i} [{off},+{len(data)})"
                             f" post-op size {a['size']} != model {len(m)}")
        self.verf = verf
        if committed == 0:
            self.pending[i].append((off, data, verf))

    def do_commit(self, i):
        verf = self.c.commit(self.fh(i))
        stale = [p for p in self.pending[i] if p[2] != verf]
        if stale:
            # The server lost unstable data: resend it all, in order.
            print(f"verifier changed for f{i}: resending {len(stale)}",
                  file=sys.stderr)
            for off, data, _ in self.pending[i]:
                self.c.write_at(self.fh(i), off, data, 2)
        self.pending[i] = []

    def do_truncate(self, i, size):
        m = self.model[i]
        if size < len(m):
            del m[size:]
        else:
            m.extend(b"\0" * (size - len(m)))
        if self.commit_truncate:
            # As a kernel client does: flush and COMMIT, then SETATTR.
            self.do_commit(i)
        else:
            # Uncommitted writes stay pending, clipped to the new size: a
            # resend after a verifier change must not bring back bytes
            # the truncate removed.
            self.pending[i] = [(o, d[:max(0, size - o)], v)
                               for o, d, v in self.pending[i] if o < size]
        a = self.c.truncate(self.fh(i), size)
        if a and a["size"] != size:
            raise SystemExit(f"op {self.opno}: SETATTR f{i} size {size}: "
                             f"post-op size {a['size']}")

    def check_read(self, i, off, count, opno):
        data, eof, a = self.c.read_at(self.fh(i), off, count)
        m = self.model[i]
        want = bytes(m[off:off + count])
        if data != want:
            first = next((k for k in range(min(len(data), len(want)))
                          if data[k] != want[k]), min(len(data), len(want)))
            raise SystemExit(f"op {opno}: READ f{i} [{off},+{count}) got "
                             f"{len(data)} bytes, want {len(want)}; first "
                             f"difference at +{first}")
        if a and a["size"] != len(m):
            raise SystemExit(f"op {opno}: READ f{i} post-op size {a['size']}"
                             f" != model {len(m)}")
        if bool(eof) != (off + len(data) >= len(m)):
            raise SystemExit(f"op {opno}: READ f{i} eof {eof} wrong")

    def check_size(self, i, opno):
        s = self.c.size(self.fh(i))
        if s != len(self.model[i]):
            raise SystemExit(f"op {opno}: GETATTR f{i} size {s} != model "
                             f"{len(self.model[i])}")

    def step(self, rng, opno, writes_only):
        self.opno = opno
        i = rng.randrange(self.n)
        size = len(self.model[i])
        k = rng.random()
        if writes_only:
            k = k * 0.45
        if k < 0.30:                                   # overwrite / append
            off = rng.randrange(0, size + 1) if size else 0
            if rng.random() < 0.5:
                off = off // 4096 * 4096
                ln = 4096 * rng.randint(1, 4)
            else:
                ln = rng.randint(1, 20000)
            ln = max(1, min(ln, MAXSIZE - off)) if off < MAXSIZE else 1
            off = min(off, MAXSIZE - ln)
            self.do_write(i, off, rng.randbytes(ln))
        elif k < 0.40:                                 # extend with a hole
            off = min(size + rng.randint(1, 70000), MAXSIZE - 1)
            ln = min(rng.randint(1, 9000), MAXSIZE - off)
            self.do_write(i, off, rng.randbytes(ln))
        elif k < 0.45:                                 # small scattered
            off = rng.randrange(0, MAXSIZE - 512)
            self.do_write(i, off, rng.randbytes(rng.randint(1, 512)))
        elif k < 0.50:                                 # truncate
            self.do_truncate(i, rng.randint(0, size + 10000) if size else 0)
        elif k < 0.80:                                 # read
            off = rng.randrange(0, size + 100) if size else 0
            self.check_read(i, off, rng.choice([512, 4096, 65536, 70000,
                                                rng.randint(1, 100000)]),
                            opno)
        elif k < 0.93:
            self.check_size(i, opno)
        else:
            self.do_commit(i)


def main(argv):
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("export")
    ap.add_argument("state")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--from", dest="start", type=int, default=0)
    ap.add_argument("--to", type=int, default=1000)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--writes-only", action="store_true")
    ap.add_argument("--create", action="store_true")
    ap.add_argument("--final", action="store_true")
    ap.add_argument("--no-commit-truncate", action="store_true")
    a = ap.parse_args(argv[1:])
    c = Client(a.host, a.port, a.export)
    d = Driver(c, a.state, a.files, not a.no_commit_truncate)
    try:
        if a.create:
            for i in range(a.files):
                c.create(f"f{i}")
                d.fh(i)
                c.truncate(d.fh(i), 0)
        d.load()
        for opno in range(a.start, a.to):
            # One generator per op: a split run does the same sequence.
            d.step(random.Random(a.seed * 1000003 + opno), opno,
                   a.writes_only)
        if a.final:
            for i in range(a.files):
                d.check_size(i, a.to)
                d.do_commit(i)
        d.save()
    except NfsError as e:
        print(f"nfs error {e.status}: {e}", file=sys.stderr)
        d.save()
        return 1
    print(f"verf {d.verf.hex() if d.verf else '-'}")
    print(f"ops {a.to - a.start}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
