#!/usr/bin/env python3
"""nfswriter.py — a fault-test NFSv3 writer that behaves like a real client
across a server's death: it writes NAME sequentially in CHUNK-byte UNSTABLE
WRITEs (content a function of TAG and the offset), and when the connection
breaks it reconnects (MOUNT again, LOOKUP again) and resends the WRITE that
was not answered.  It records what each WRITE got, so a test can check that
every acknowledged byte arrived and that refusals were clean.

  nfswriter.py write HOST PORT EXPORT NAME --mib N [--tag T] [--chunk C]
        [--progress FILE] [--acked FILE] [--go FILE] [--reconnect SECS]
        [--allow-nospc] [--commit] [--timeout SECS] [--offset-mib M]
  nfswriter.py check PATH --mib N [--tag T] [--chunk C] [--acked FILE]
        [--offset-mib M] [--refused-absent]
  nfswriter.py expect --mib N [--tag T] [--chunk C]      (to stdout)

write: --progress gets the bytes answered so far (renamed into place),
--acked one line per WRITE answered: "ok OFF" or "nospc OFF"; with --go
the writer mounts and looks NAME up, creates FILE.ready, then waits for
FILE to exist.  --allow-nospc: NFS3ERR_NOSPC is recorded and the writer
goes on (any other NFS error is fatal).  --commit: COMMIT at the end
(through reconnects too); when the COMMIT's verifier differs from the one
a WRITE was acknowledged with, those WRITEs are resent and committed again,
as a kernel client does.  Prints "acked A nospc N reconnects R resent S
verf HEX" and exits 0; exit 1 on an NFS error, 2 when the server stayed
away longer than --reconnect seconds.
check: every chunk listed "ok" in --acked (all chunks without --acked) must
hold its bytes in PATH; with --refused-absent, no chunk listed "nospc" may
(a refused WRITE must take no effect); prints the mismatches, exits 1 on any.
"""
import argparse
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nfsmodel import Client  # noqa: E402
from nfsrpc import NfsError  # noqa: E402

NFS3ERR_NOSPC = 28
BROKEN = (EOFError, OSError, socket.timeout, ConnectionError)


def chunk_data(tag, off, size):
    unit = tag.encode().ljust(8, b"_")[:8] + off.to_bytes(8, "big")
    return (unit * (size // 16 + 1))[:size]


class Writer:
    def __init__(self, a):
        self.a = a
        self.c = None
        self.fh = None
        self.reconnects = 0

    def connect(self):
        deadline = time.time() + self.a.reconnect
        while True:
            try:
                c = Client("127.0.0.1" if self.a.host == "localhost"
                           else self.a.host, int(self.a.port), self.a.export)
                c.s.settimeout(self.a.timeout)
                self.fh = c.fh(self.a.name)
                # An open, as a kernel client makes it: LOOKUP, ACCESS.
                c.access(self.fh)
                self.c = c
                return
            except BROKEN:
                if time.time() > deadline:
                    print("server away for more than %d s" % self.a.reconnect,
                          file=sys.stderr)
                    sys.exit(2)
                time.sleep(0.2)

    def call(self, fn):
        """Run fn(client, fh) until it gets an answer, reconnecting."""
        while True:
            try:
                return fn(self.c, self.fh)
            except BROKEN as e:
                print("connection lost (%s): reconnecting" % e, file=sys.stderr)
                self.reconnects += 1
                try:
                    self.c.s.close()
                except OSError:
                    pass
                self.connect()


def do_write(a):
    w = Writer(a)
    w.connect()
    if a.go:
        open(a.go + ".ready", "w").close()
        while not os.path.exists(a.go):
            time.sleep(0.02)
    base = a.offset_mib << 20
    total = a.mib << 20
    acked = open(a.acked, "w") if a.acked else None
    verfs = {}
    nospc = 0
    for off in range(base, base + total, a.chunk):
        data = chunk_data(a.tag, off, a.chunk)
        try:
            _, verf, _ = w.call(lambda c, fh: c.write_at(fh, off, data))
            verfs[off] = verf
            state = "ok"
        except NfsError as e:
            if e.status != NFS3ERR_NOSPC or not a.allow_nospc:
                print("WRITE at %d: %s" % (off, e), file=sys.stderr)
                sys.exit(1)
            nospc += 1
            state = "nospc"
        if acked:
            acked.write("%s %d\n" % (state, off))
            acked.flush()
        if a.progress:
            with open(a.progress + ".tmp", "w") as f:
                f.write(str(off + a.chunk - base))
            os.rename(a.progress + ".tmp", a.progress)
    resent = 0
    verf = b""
    if a.commit:
        for _ in range(4):
            verf = w.call(lambda c, fh: c.commit(fh))
            stale = [o for o, v in verfs.items() if v != verf]
            if not stale:
                break
            # The server lost unstable data: resend, as a kernel client does.
            for off in stale:
                data = chunk_data(a.tag, off, a.chunk)
                _, verfs[off], _ = w.call(lambda c, fh: c.write_at(fh, off, data))
                resent += 1
        else:
            print("verifier kept changing", file=sys.stderr)
            sys.exit(1)
    print("acked %d nospc %d reconnects %d resent %d verf %s"
          % (len(verfs), nospc, w.reconnects, resent, verf.hex()))


def do_check(a):
    base = a.offset_mib << 20
    if a.acked:
        offs = [int(line.split()[1]) for line in open(a.acked)
                if line.startswith("ok ")]
    else:
        offs = list(range(base, base + (a.mib << 20), a.chunk))
    refused = []
    if a.acked and a.refused_absent:
        refused = [int(line.split()[1]) for line in open(a.acked)
                   if line.startswith("nospc ")]
    bad = 0
    with open(a.path, "rb") as f:
        for off in offs:
            f.seek(off)
            if f.read(a.chunk) != chunk_data(a.tag, off, a.chunk):
                bad += 1
                if bad <= 5:
                    print("chunk at %d differs" % off)
        for off in refused:
            f.seek(off)
            if f.read(a.chunk) == chunk_data(a.tag, off, a.chunk):
                bad += 1
                if bad <= 5:
                    print("refused chunk at %d arrived" % off)
    print("checked %d chunks and %d refused ones, %d wrong"
          % (len(offs), len(refused), bad))
    sys.exit(1 if bad else 0)


def do_expect(a):
    out = sys.stdout.buffer
    base = a.offset_mib << 20
    for off in range(base, base + (a.mib << 20), a.chunk):
        out.write(chunk_data(a.tag, off, a.chunk))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("write", "check", "expect"):
        s = sub.add_parser(name)
        if name == "write":
            for arg in ("host", "port", "export", "name"):
                s.add_argument(arg)
            s.add_argument("--progress")
            s.add_argument("--go")
            s.add_argument("--reconnect", type=int, default=60)
            s.add_argument("--timeout", type=float, default=120)
            s.add_argument("--allow-nospc", action="store_true")
            s.add_argument("--commit", action="store_true")
        if name == "check":
            s.add_argument("path")
            s.add_argument("--refused-absent", action="store_true")
        if name != "expect":
            s.add_argument("--acked")
        s.add_argument("--mib", type=int, required=True)
        s.add_argument("--offset-mib", type=int, default=0)
        s.add_argument("--tag", default="nfswrite")
        s.add_argument("--chunk", type=int, default=65536)
    a = p.parse_args()
    {"write": do_write, "check": do_check, "expect": do_expect}[a.cmd](a)


if __name__ == "__main__":
    main()
