#!/usr/bin/env python3
"""badrpc.py — sends malformed and unexpected ONC RPC to a gridvfsd and
checks each answer: the right RPC error reply, or the connection closed.

usage: badrpc.py HOST PORT EXPORT_PATH [--record-timeout S] [--max-conns N]
Prints one 'ok NAME' or 'FAIL NAME: why' line per case; exits 1 on any
failure.  A healthy call (MOUNT + GETATTR) is made between cases to show
the daemon keeps serving.
"""
import socket
import struct
import sys
import time

HOST, PORT, EXPORT = sys.argv[1], int(sys.argv[2]), sys.argv[3]
RECORD_TIMEOUT = None
MAX_CONNS = None
args = sys.argv[4:]
while args:
    if args[0] == "--record-timeout":
        RECORD_TIMEOUT = float(args[1])
    elif args[0] == "--max-conns":
        MAX_CONNS = int(args[1])
    args = args[2:]

NFS, MOUNT = 100003, 100005
failures = 0


def u32(v):
    return struct.pack(">I", v & 0xFFFFFFFF)


def opaque(b):
    pad = (4 - len(b) % 4) % 4
    return u32(len(b)) + b + b"\0" * pad


def authsys(uid=0, gid=0, gids=(), machine=b"badrpc", raw=None):
    body = raw if raw is not None else (
        u32(1) + opaque(machine) + u32(uid) + u32(gid) + u32(len(gids))
        + b"".join(u32(g) for g in gids))
    return u32(1) + opaque(body)


NONE_AUTH = u32(0) + u32(0)


def call(xid, prog, vers, proc, cred=None, verf=NONE_AUTH, args=b"",
         rpcvers=2, mtype=0):
    cred = authsys() if cred is None else cred
    return (u32(xid) + u32(mtype) + u32(rpcvers) + u32(prog) + u32(vers)
            + u32(proc) + cred + verf + args)


def record(msg):
    return u32(0x80000000 | len(msg)) + msg


def connect():
    s = socket.create_connection((HOST, PORT), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError("closed")
        b += c
    return b


def read_reply(s):
    msg = b""
    while True:
        mark = struct.unpack(">I", recv_exact(s, 4))[0]
        msg += recv_exact(s, mark & 0x7FFFFFFF)
        if mark & 0x80000000:
            return msg


def parse_reply(msg):
    xid, mtype, stat = struct.unpack(">III", msg[:12])
    assert mtype == 1
    if stat == 0:  # accepted
        flav, vlen = struct.unpack(">II", msg[12:20])
        off = 20 + (vlen + 3) // 4 * 4
        acc = struct.unpack(">I", msg[off:off + 4])[0]
        rest = msg[off + 4:]
        return xid, ("accepted", acc), rest
    rej = struct.unpack(">I", msg[12:16])[0]
    if rej == 0:
        return xid, ("rpc_mismatch",) + struct.unpack(">II", msg[16:24]), b""
    return xid, ("auth_error", struct.unpack(">I", msg[16:20])[0]), b""


def result(name, ok, why=""):
    global failures
    if ok:
        print(f"ok {name}")
    else:
        failures += 1
        print(f"FAIL {name}: {why}")


def expect_reply(name, msg, want, xid=None):
    s = connect()
    try:
        s.sendall(record(msg))
        got_xid, got, _ = parse_reply(read_reply(s))
        want_xid = struct.unpack(">I", msg[:4])[0] if xid is None else xid
        result(name, got == want and got_xid == want_xid,
               f"got {got} xid {got_xid:#x}, want {want} xid {want_xid:#x}")
    except Exception as e:  # noqa: BLE001
        result(name, False, f"no reply: {e}")
    finally:
        s.close()


def expect_close(name, data, settle=None):
    s = connect()
    try:
        s.sendall(data)
        if settle:
            time.sleep(settle)
        s.settimeout(15)
        d = s.recv(65536)
        result(name, d == b"", f"got {len(d)} bytes instead of a close")
    except (ConnectionResetError, BrokenPipeError):
        result(name, True)
    except socket.timeout:
        result(name, False, "connection left open")
    finally:
        s.close()


def healthy(tag):
    """MOUNT the export and GETATTR its root: the daemon still serves."""
    try:
        s = connect()
        s.sendall(record(call(0x5000, MOUNT, 3, 1, args=opaque(EXPORT.encode()))))
        _, st, rest = parse_reply(read_reply(s))
        assert st == ("accepted", 0), st
        status, fhlen = struct.unpack(">II", rest[:8])
        assert status == 0, f"mountstat {status}"
        fh = rest[8:8 + fhlen]
        s.sendall(record(call(0x5001, NFS, 3, 1, args=opaque(fh))))
        _, st, rest = parse_reply(read_reply(s))
        assert st == ("accepted", 0) and rest[:4] == u32(0), st
        s.close()
        return fh
    except Exception as e:  # noqa: BLE001
        result(f"healthy after {tag}", False, str(e))
        return None


fh = healthy("start") or b"\0" * 8
GETATTR = opaque(fh)

expect_reply("unknown program", call(1, 100099, 1, 0), ("accepted", 1))
expect_reply("NLM not proxied", call(2, 100021, 4, 0), ("accepted", 1))
expect_reply("NFS version 2", call(3, NFS, 2, 0), ("accepted", 2))
expect_reply("NFS version 4", call(4, NFS, 4, 0), ("accepted", 2))
expect_reply("NFS procedure 22", call(5, NFS, 3, 22), ("accepted", 3))
expect_reply("MOUNT procedure 6", call(6, MOUNT, 3, 6), ("accepted", 3))
expect_reply("rpcvers 3", call(7, NFS, 3, 0, rpcvers=3), ("rpc_mismatch", 2, 2))
expect_reply("AUTH_SYS with 17 gids",
             call(8, NFS, 3, 1, cred=authsys(gids=range(17)), args=GETATTR),
             ("auth_error", 1))
expect_reply("AUTH_SYS with 16 gids is fine",
             call(9, NFS, 3, 1, cred=authsys(gids=range(16)), args=GETATTR),
             ("accepted", 0))
expect_reply("AUTH_SYS 300-byte machine name",
             call(10, NFS, 3, 0, cred=authsys(machine=b"m" * 300)),
             ("auth_error", 1))
expect_reply("AUTH_SYS truncated body",
             call(11, NFS, 3, 0, cred=authsys(raw=u32(1) + u32(5) + b"ab")),
             ("auth_error", 1))
expect_reply("credential longer than 400 bytes",
             call(12, NFS, 3, 0, cred=u32(1) + opaque(b"\0" * 404)),
             ("auth_error", 1))
expect_reply("RPCSEC_GSS not supported",
             call(13, NFS, 3, 0, cred=u32(6) + opaque(b"\0" * 20)),
             ("auth_error", 1))
expect_reply("AUTH_TLS probe with TLS off",
             call(14, NFS, 3, 0, cred=u32(7) + u32(0)), ("auth_error", 1))
expect_reply("GETATTR handle of 65 bytes",
             call(15, NFS, 3, 1, args=opaque(b"h" * 65)), ("accepted", 4))
expect_reply("GETATTR truncated arguments",
             call(16, NFS, 3, 1, args=u32(32) + b"abc"), ("accepted", 4))
expect_reply("trailing garbage after arguments",
             call(17, NFS, 3, 1, args=GETATTR + b"JUNKJUNK"), ("accepted", 4))
expect_reply("header cut after the procedure",
             u32(18) + u32(0) + u32(2) + u32(NFS) + u32(3) + u32(1) + u32(1),
             ("auth_error", 1))
expect_reply("AUTH_NONE NULL works", call(19, NFS, 3, 0, cred=NONE_AUTH),
             ("accepted", 0))
healthy("error replies")

expect_close("fragment larger than --max-record", u32(0x80000000 | (64 << 20)))
expect_close("zero-length record", u32(0x80000000))
expect_close("reply sent as a call", record(call(20, NFS, 3, 0, mtype=1)))
expect_close("message shorter than a header", record(b"\0\0\0\1\0"))
# endless non-final fragments: refused once the fragment bound is hit
expect_close("endless non-final fragments",
             (u32(4) + b"xxxx") * 2000)
healthy("closed connections")

if RECORD_TIMEOUT:
    t0 = time.time()
    expect_close("half-sent record times out", u32(0x80000000 | 100) + b"abc")
    took = time.time() - t0
    result("half-sent record closed near --record-timeout",
           RECORD_TIMEOUT - 0.5 <= took <= RECORD_TIMEOUT + 3, f"took {took:.1f}s")

if MAX_CONNS:
    # 1 000 connections at once (the flood), or more than the
    # limit if it is set higher; raise our own fd limit to hold them.
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(1000, MAX_CONNS + 50)
    if soft < want + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, want + 64), hard))
    socks, refused = [], 0
    for i in range(want):
        try:
            socks.append(connect())
        except OSError:
            refused += 1
    time.sleep(0.5)
    closed = 0
    for s in socks:
        s.settimeout(0.2)
        try:
            if s.recv(1) == b"":
                closed += 1
        except socket.timeout:
            pass
        except ConnectionResetError:
            closed += 1
    result(f"{want} connections at once: those past --max-conns are closed",
           closed + refused >= want - MAX_CONNS, f"closed {closed} refused {refused}")
    for s in socks:
        s.close()
    time.sleep(0.5)
    healthy("connection flood")

# Many calls pipelined on one connection, answered in any order but all.
s = connect()
s.sendall(b"".join(record(call(0x9000 + i, NFS, 3, 1, args=GETATTR))
                   for i in range(200)))
xids = set()
try:
    for _ in range(200):
        xid, st, _ = parse_reply(read_reply(s))
        if st == ("accepted", 0):
            xids.add(xid)
except Exception as e:  # noqa: BLE001
    pass
result("200 pipelined calls all answered", len(xids) == 200,
       f"{len(xids)} answered")
s.close()
healthy("pipelining")

print(f"badrpc: {failures} failure(s)")
sys.exit(1 if failures else 0)
