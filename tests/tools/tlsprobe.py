#!/usr/bin/env python3
"""tlsprobe.py — one RPC-with-TLS (RFC 9289) client attempt against a
gridvfsd server role, with a chosen certificate and a chosen misbehaviour;
says whether the daemon accepted or refused it.

usage: tlsprobe.py HOST PORT MODE [--ca F] [--cert F] [--key F]
MODE:
  ok          probe, TLS 1.3 + ALPN sunrpc, NFS NULL inside: expects a reply
  refused     like ok, but expects the daemon to refuse (handshake error or
              the connection closed before any reply)
  tls12       probe, then a TLS 1.2-only handshake: must fail
  noalpn      probe, then TLS 1.3 without ALPN: must fail
  plaintext   an AUTH_SYS NULL call in the clear: expects AUTH_ERROR
              AUTH_TOOWEAK, then the connection closed
  garbage     probe, then 4 KiB of random bytes: expects a close
  truncated   probe, then half a ClientHello and a half-close: expects a close
  zstd-ok     ALPN gridvfs-z1 then sunrpc; the daemon must select gridvfs-z1,
              and a NULL call sent as a compressed record (RPC_RM_ZSTD, a
              hand-made zstd frame) gets a reply
  zstd-garbage, zstd-bomb, zstd-short, zstd-frags
              gridvfs-z1 agreed, then a compressed record that is garbage,
              that states 64 MiB, that states more than it holds, or that
              is a first fragment only: expects a close
  zstd-unagreed
              ALPN sunrpc only, then a record with the compressed bit: it
              must be read as a 1 GiB length and refused with a close
Prints "accepted" or "refused: why"; exit 0 when the outcome is the one
MODE expects, 1 otherwise.
"""
import os
import socket
import ssl
import struct
import sys


def u32(v):
    return struct.pack(">I", v)


def call(xid, flavor, body=b""):
    pad = b"\0" * ((4 - len(body) % 4) % 4)
    msg = (u32(xid) + u32(0) + u32(2) + u32(100003) + u32(3) + u32(0)
           + u32(flavor) + u32(len(body)) + body + pad + u32(0) + u32(0))
    return u32(0x80000000 | len(msg)) + msg


def recv_record(s):
    def exact(n):
        b = b""
        while len(b) < n:
            c = s.recv(n - len(b))
            if not c:
                raise EOFError("closed")
            b += c
        return b
    mark = struct.unpack(">I", exact(4))[0]
    return exact(mark & 0x7FFFFFFF)


def closes(s):
    """True when the peer closes (perhaps after a TLS alert) in time."""
    try:
        while True:
            if s.recv(4096) == b"":
                return True
    except (ConnectionError, socket.timeout):
        return False


RM_ZSTD = 0x40000000


def zframe(data, state=None):
    """One zstd frame of raw blocks stating `state` (default len(data))."""
    size = len(data) if state is None else state
    out = b"\x28\xb5\x2f\xfd" + bytes([0xA0]) + struct.pack("<I", size)
    pos = 0
    while True:
        chunk = data[pos:pos + 65536]
        pos += len(chunk)
        last = pos >= len(data)
        out += struct.pack("<I", int(last) | (len(chunk) << 3))[:3] + chunk
        if last:
            return out


def probe(s):
    s.sendall(call(0x51, 7))
    rep = recv_record(s)
    xid, mtype, stat, flav, vlen = struct.unpack(">IIIII", rep[:20])
    if stat != 0 or rep[20:28] != b"STARTTLS":
        raise RuntimeError(f"probe not answered with STARTTLS: {rep!r}")


def tls_ctx(args, maxver=None, alpn=True, protos=("sunrpc",)):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = maxver or ssl.TLSVersion.TLSv1_3
    if maxver is None:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    if args.get("ca"):
        ctx.load_verify_locations(args["ca"])
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if args.get("cert"):
        ctx.load_cert_chain(args["cert"], args["key"])
    if alpn:
        ctx.set_alpn_protocols(list(protos))
    return ctx


def zstd_attempt(s, host, mode, args):
    agreed = mode != "zstd-unagreed"
    protos = ("gridvfs-z1", "sunrpc") if agreed else ("sunrpc",)
    t = tls_ctx(args, protos=protos).wrap_socket(s, server_hostname=host)
    got = t.selected_alpn_protocol()
    if got != ("gridvfs-z1" if agreed else "sunrpc"):
        return f"refused: the daemon selected ALPN {got!r}"
    body = call(0x81, 1, u32(0) + u32(1) + b"x\0\0\0" + u32(0) * 3)[4:]
    if mode == "zstd-ok" or mode == "zstd-unagreed":
        f = zframe(body)
        t.sendall(u32(0x80000000 | RM_ZSTD | len(f)) + f)
        if mode == "zstd-unagreed":
            return "refused: closed" if closes(t) else "accepted"
        rep = recv_record(t)
        stat = struct.unpack(">I", rep[8:12])[0]
        return "accepted" if stat == 0 else f"refused: reply stat {stat}"
    if mode == "zstd-garbage":
        f = os.urandom(512)
    elif mode == "zstd-bomb":
        f = zframe(body, state=64 << 20)
    elif mode == "zstd-short":
        f = zframe(body, state=len(body) + 100)
    else:  # zstd-frags: a compressed first fragment that is not the last
        f = zframe(body)
        t.sendall(u32(RM_ZSTD | len(f)) + f)
        return "refused: closed" if closes(t) else "accepted"
    t.sendall(u32(0x80000000 | RM_ZSTD | len(f)) + f)
    return "refused: closed" if closes(t) else "accepted"


def attempt(host, port, mode, args):
    s = socket.create_connection((host, port), timeout=15)
    if mode == "plaintext":
        s.sendall(call(0x61, 1, u32(0) + u32(1) + b"x\0\0\0" + u32(0) * 3))
        rep = recv_record(s)
        stat, rej, why = struct.unpack(">III", rep[8:20])
        if (stat, rej, why) != (1, 1, 5):
            return f"accepted (reply {stat},{rej},{why})"
        if s.recv(1) != b"":
            return "accepted (connection left open after AUTH_TOOWEAK)"
        return "refused: AUTH_TOOWEAK and closed"
    probe(s)
    if mode == "garbage":
        s.sendall(os.urandom(4096))
        return "refused: closed" if closes(s) else "accepted"
    if mode == "truncated":
        ctx = tls_ctx(args)
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(inc, out)
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        hello = out.read()
        s.sendall(hello[:len(hello) // 2])
        s.shutdown(socket.SHUT_WR)
        return "refused: closed" if closes(s) else "accepted"
    if mode.startswith("zstd-"):
        try:
            return zstd_attempt(s, host, mode, args)
        except (ssl.SSLError, EOFError, ConnectionError, OSError) as e:
            return f"refused: {e}"
    maxver = ssl.TLSVersion.TLSv1_2 if mode == "tls12" else None
    ctx = tls_ctx(args, maxver, alpn=(mode != "noalpn"))
    try:
        t = ctx.wrap_socket(s, server_hostname=host)
        t.sendall(call(0x71, 1, u32(0) + u32(1) + b"x\0\0\0" + u32(0) * 3))
        rep = recv_record(t)
    except (ssl.SSLError, EOFError, ConnectionError, OSError) as e:
        return f"refused: {e}"
    stat = struct.unpack(">I", rep[8:12])[0]
    return "accepted" if stat == 0 else f"refused: reply stat {stat}"


def main():
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    args, rest = {}, sys.argv[4:]
    while rest:
        args[rest[0].lstrip("-")] = rest[1]
        rest = rest[2:]
    try:
        out = attempt(host, port, mode, args)
    except (EOFError, ConnectionError) as e:
        out = f"refused: {e}"
    print(out)
    want_accept = mode in ("ok", "zstd-ok")
    return 0 if out.startswith("accepted") == want_accept else 1


if __name__ == "__main__":
    sys.exit(main())
