#!/usr/bin/env python3
"""capture.py — a transparent TCP relay that saves real RPC traffic as fuzz
seeds.  Used by make-corpus.sh between a libnfs client and nfs-ganesha.

usage: capture.py OUTDIR LISTEN_PORT:UPSTREAM_PORT [...]
Listens on 127.0.0.1:LISTEN_PORT for each pair and relays to
127.0.0.1:UPSTREAM_PORT until SIGTERM.  Writes, below OUTDIR:
  fuzz_call/    each distinct call message (record mark removed)
  fuzz_reply/   a selector byte (fuzz_reply.c: NFSv3 proc, or 0x80|MOUNT
                proc) followed by the reply message
  fuzz_record/  the first bytes of each direction's raw record stream
A few samples per (program, procedure, direction) are kept, small ones
first, so the corpus stays small.
"""
import hashlib
import os
import signal
import socket
import struct
import sys
import threading

OUT = sys.argv[1]
PAIRS = [tuple(int(x) for x in a.split(":")) for a in sys.argv[2:]]
NFS, MOUNT = 100003, 100005
PER_KIND = 3          # samples per (prog, proc, direction)
BIG = 16384           # messages above this: one sample per kind at most
MAX_MSG = 70000       # the fuzzers' -max_len
STREAM_KEEP = 32768   # raw stream bytes kept per direction and connection

lock = threading.Lock()
pending = {}          # xid -> (prog, proc)
kept = {}             # (dir, prog, proc) -> [count, bigcount]
for d in ("fuzz_call", "fuzz_reply", "fuzz_record"):
    os.makedirs(os.path.join(OUT, d), exist_ok=True)


def save(sub, name, data):
    digest = hashlib.sha1(data).hexdigest()[:12]
    with open(os.path.join(OUT, sub, "%s-%s" % (name, digest)), "wb") as f:
        f.write(data)


def keep(kind, size):
    """Whether another sample of this kind and size is wanted."""
    if size > MAX_MSG:
        return False
    with lock:
        n = kept.setdefault(kind, [0, 0])
        if n[0] >= PER_KIND or (size > BIG and n[1] >= 1):
            return False
        n[0] += 1
        n[1] += size > BIG
        return True


def on_message(is_call, msg):
    if len(msg) < 8:
        return
    xid, mtype = struct.unpack(">II", msg[:8])
    if is_call and mtype == 0 and len(msg) >= 24:
        prog, _vers, proc = struct.unpack(">III", msg[12:24])
        with lock:
            pending[xid] = (prog, proc)
        if keep(("call", prog, proc), len(msg)):
            save("fuzz_call", "%d-%d" % (prog, proc), msg)
    elif not is_call and mtype == 1:
        with lock:
            prog, proc = pending.pop(xid, (None, None))
        if prog not in (NFS, MOUNT):
            return
        sel = proc if prog == NFS else 0x80 | proc
        if keep(("reply", prog, proc), len(msg)):
            save("fuzz_reply", "%d-%d" % (prog, proc), bytes([sel]) + msg)


def pump(src, dst, is_call, tag):
    """Relay src to dst, reassembling records on the way."""
    buf, msg, raw = b"", b"", b""
    try:
        while True:
            data = src.recv(262144)
            if not data:
                break
            dst.sendall(data)
            if len(raw) < STREAM_KEEP:
                raw += data[:STREAM_KEEP - len(raw)]
            buf += data
            while len(buf) >= 4:
                mark = struct.unpack(">I", buf[:4])[0]
                flen = mark & 0x7FFFFFFF
                if len(buf) < 4 + flen:
                    break
                msg += buf[4:4 + flen]
                buf = buf[4 + flen:]
                if mark & 0x80000000:
                    on_message(is_call, msg)
                    msg = b""
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if raw:
            save("fuzz_record", tag, raw)


def serve(listen_port, upstream_port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", listen_port))
    ls.listen(16)
    while True:
        c, _ = ls.accept()
        u = socket.create_connection(("127.0.0.1", upstream_port))
        for a, b, is_call, tag in ((c, u, True, "calls"),
                                   (u, c, False, "replies")):
            threading.Thread(target=pump, args=(a, b, is_call, tag),
                             daemon=True).start()


signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
for lp, up in PAIRS:
    threading.Thread(target=serve, args=(lp, up), daemon=True).start()
print("capture: ready", flush=True)
threading.Event().wait()
