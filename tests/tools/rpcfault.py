#!/usr/bin/env python3
"""rpcfault.py — an ONC RPC relay that injects NFS-level faults.

  rpcfault.py LISTEN_PORT UPSTREAM_PORT [--jukebox PROC:N[,PROC:N...]]
              [--arm FILE] [--log FILE]

Relays TCP connections from 127.0.0.1:LISTEN_PORT to 127.0.0.1:UPSTREAM_PORT
record by record. With --jukebox, the first N NFSv3 calls of procedure
PROC (number, e.g. 8 = CREATE) are not relayed but answered here with
NFS3ERR_JUKEBOX (10008), the reply a server sends while it cannot serve
the call yet (ganesha in its grace period). With --arm, faults are
injected only while FILE exists (so a mount can be made first). Every
injected reply adds a
line "jukebox PROC xid X" to the log (default stdout), flushed at once.
"""
import argparse
import os
import socket
import struct
import sys
import threading

NFS = 100003
JUKEBOX = 10008
# Zero words after the status in a failure reply (post_op_attr = 1,
# wcc_data = 2), as in proxy/ident.c.
FAIL_WORDS = {1: 0, 3: 1, 4: 1, 5: 1, 6: 1, 16: 1, 17: 1, 18: 1, 19: 1,
              20: 1, 15: 3, 14: 4}


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            return None
        b += c
    return b


def records(s):
    """Whole records (all fragments joined), as bytes without marks."""
    while True:
        data = b""
        while True:
            hdr = recv_exact(s, 4)
            if hdr is None:
                return
            mark = struct.unpack(">I", hdr)[0]
            frag = recv_exact(s, mark & 0x7FFFFFFF)
            if frag is None:
                return
            data += frag
            if mark & 0x80000000:
                break
        yield data


class Relay:
    def __init__(self, up_port, jukebox, log, arm):
        self.up_port, self.jukebox, self.log, self.arm = up_port, jukebox, log, arm
        self.mu = threading.Lock()

    def take(self, proc):
        if self.arm and not os.path.exists(self.arm):
            return False
        with self.mu:
            if self.jukebox.get(proc, 0) > 0:
                self.jukebox[proc] -= 1
                return True
            return False

    def serve(self, c):
        u = socket.create_connection(("127.0.0.1", self.up_port))
        wlock = threading.Lock()

        def send(sock, rec):
            with wlock:
                sock.sendall(struct.pack(">I", 0x80000000 | len(rec)) + rec)

        def close_both():
            for s in (c, u):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        def down():
            try:
                for rec in records(u):
                    send(c, rec)
            except OSError:
                pass
            close_both()

        threading.Thread(target=down, daemon=True).start()
        try:
            for rec in records(c):
                if len(rec) >= 24:
                    xid, mtype, _, prog, vers, proc = struct.unpack(">6I", rec[:24])
                    if mtype == 0 and prog == NFS and vers == 3 and self.take(proc):
                        words = FAIL_WORDS.get(proc, 2)
                        rep = struct.pack(">6I", xid, 1, 0, 0, 0, 0)
                        rep += struct.pack(">I", JUKEBOX) + b"\0" * (4 * words)
                        self.log.write("jukebox %d xid %08x\n" % (proc, xid))
                        self.log.flush()
                        send(c, rep)
                        continue
                send(u, rec)
        except OSError:
            pass
        close_both()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("listen", type=int)
    ap.add_argument("upstream", type=int)
    ap.add_argument("--jukebox", default="")
    ap.add_argument("--log")
    ap.add_argument("--arm")
    a = ap.parse_args()
    jb = {}
    for item in filter(None, a.jukebox.split(",")):
        p, n = item.split(":")
        jb[int(p)] = int(n)
    log = open(a.log, "a") if a.log else sys.stdout
    r = Relay(a.upstream, jb, log, a.arm)
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", a.listen))
    ls.listen(64)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=r.serve, args=(c,), daemon=True).start()


if __name__ == "__main__":
    main()
