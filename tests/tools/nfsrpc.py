#!/usr/bin/env python3
"""nfsrpc.py — a tiny NFSv3 client over raw ONC RPC, for tests that need
what libnfs cannot set: any AUTH_SYS credential (uid, gid, up to and past
16 supplementary gids), explicit sattr3 owners, and a look at the raw
fattr3 owners in GETATTR and every READDIRPLUS entry.

Used as a module (from nfsrpc import Nfs) or as a command:
  nfsrpc.py HOST PORT EXPORT [--uid N --gid N --gids a,b,c]
            [--mountport P] [--mountcred UID:GID] CMD ARGS
    getattr PATH            -> "uid gid mode size"
    create PATH [UID GID]   -> create (UNCHECKED, mode 0644, optional owner)
    mkdir PATH              -> create a directory (mode 0755)
    symlink PATH TARGET     -> create a symbolic link to TARGET
    setattr PATH UID GID    -> chown
    read PATH               -> file content to stdout
    write PATH TEXT         -> write TEXT at offset 0 (FILE_SYNC)
    lsplus DIR              -> "name uid gid" per READDIRPLUS entry
Exit status: 0 ok, 1 on an NFS error (printed as "nfs error N"), 2 usage.
"""
import socket
import struct
import sys

NFS, MOUNT = 100003, 100005


def u32(v):
    return struct.pack(">I", v & 0xFFFFFFFF)


def u64(v):
    return struct.pack(">Q", v)


def opaque(b):
    return u32(len(b)) + b + b"\0" * ((4 - len(b) % 4) % 4)


class NfsError(Exception):
    def __init__(self, status, proc):
        super().__init__(f"nfs error {status} in proc {proc}")
        self.status = status


class Reader:
    def __init__(self, b):
        self.b, self.p = b, 0

    def u32(self):
        v = struct.unpack(">I", self.b[self.p:self.p + 4])[0]
        self.p += 4
        return v

    def u64(self):
        v = struct.unpack(">Q", self.b[self.p:self.p + 8])[0]
        self.p += 8
        return v

    def opaque(self):
        n = self.u32()
        v = self.b[self.p:self.p + n]
        self.p += (n + 3) // 4 * 4
        return v

    def fattr(self):
        ftype, mode, nlink, uid, gid = (self.u32() for _ in range(5))
        size = self.u64()
        self.p += 8 * 2 + 8 + 8 + 8 * 3  # used, rdev, fsid, fileid, times
        return {"type": ftype, "mode": mode, "uid": uid, "gid": gid,
                "size": size}

    def post_op_attr(self):
        return self.fattr() if self.u32() else None

    def wcc(self):
        if self.u32():
            self.p += 24
        return self.post_op_attr()


class Nfs:
    def __init__(self, host, port, export, uid=0, gid=0, gids=(),
                 mountport=None, mount_cred=(0, 0, [])):
        # The mount is made as root, as a kernel client does (unless
        # mount_cred says otherwise); the calls that follow carry the
        # test's credential.
        self.cred = mount_cred
        self.xid = 0x7000
        ms = socket.create_connection((host, mountport or port), timeout=30)
        rep = self._call(ms, MOUNT, 1, opaque(export.encode()))
        ms.close()
        st = rep.u32()
        if st != 0:
            raise NfsError(st, "MNT")
        self.root = rep.opaque()
        self.cred = (uid, gid, list(gids))
        self.s = socket.create_connection((host, port), timeout=30)

    def _cred(self):
        uid, gid, gids = self.cred
        body = (u32(0) + opaque(b"nfsrpc") + u32(uid) + u32(gid)
                + u32(len(gids)) + b"".join(u32(g) for g in gids))
        return u32(1) + opaque(body)

    def _call(self, s, prog, proc, args):
        self.xid += 1
        msg = (u32(self.xid) + u32(0) + u32(2) + u32(prog) + u32(3)
               + u32(proc) + self._cred() + u32(0) + u32(0) + args)
        s.sendall(u32(0x80000000 | len(msg)) + msg)
        data = b""
        while True:
            hdr = self._recv(s, 4)
            mark = struct.unpack(">I", hdr)[0]
            data += self._recv(s, mark & 0x7FFFFFFF)
            if mark & 0x80000000:
                break
        r = Reader(data)
        xid, mtype, stat = r.u32(), r.u32(), r.u32()
        if stat != 0:
            rej = r.u32()
            raise NfsError(1000 + r.u32() if rej == 1 else 999, proc)
        r.u32()
        r.opaque()
        acc = r.u32()
        if acc != 0:
            raise NfsError(2000 + acc, proc)
        return r

    @staticmethod
    def _recv(s, n):
        b = b""
        while len(b) < n:
            c = s.recv(n - len(b))
            if not c:
                raise EOFError("connection closed")
            b += c
        return b

    def call(self, proc, args):
        r = self._call(self.s, NFS, proc, args)
        if proc == 0:
            return 0, r
        return r.u32(), r

    def lookup_path(self, path):
        fh = self.root
        for part in [p for p in path.split("/") if p]:
            st, r = self.call(3, opaque(fh) + opaque(part.encode()))
            if st:
                raise NfsError(st, "LOOKUP")
            fh = r.opaque()
        return fh

    def split(self, path):
        parts = [p for p in path.split("/") if p]
        return self.lookup_path("/".join(parts[:-1])), parts[-1].encode()

    def getattr(self, path):
        st, r = self.call(1, opaque(self.lookup_path(path)))
        if st:
            raise NfsError(st, "GETATTR")
        return r.fattr()

    @staticmethod
    def sattr(mode=None, uid=None, gid=None):
        def opt(v):
            return u32(0) if v is None else u32(1) + u32(v)
        return opt(mode) + opt(uid) + opt(gid) + u32(0) + u32(0) + u32(0)

    def create(self, path, uid=None, gid=None, mode=0o644):
        d, name = self.split(path)
        st, r = self.call(8, opaque(d) + opaque(name) + u32(0)
                          + self.sattr(mode, uid, gid))
        if st:
            raise NfsError(st, "CREATE")

    def symlink(self, path, target):
        d, name = self.split(path)
        st, r = self.call(10, opaque(d) + opaque(name) + self.sattr(0o777)
                          + opaque(target))
        if st:
            raise NfsError(st, "SYMLINK")

    def mkdir(self, path, mode=0o755):
        d, name = self.split(path)
        st, r = self.call(9, opaque(d) + opaque(name) + self.sattr(mode))
        if st:
            raise NfsError(st, "MKDIR")

    def setattr(self, path, uid=None, gid=None, mode=None):
        st, r = self.call(2, opaque(self.lookup_path(path))
                          + self.sattr(mode, uid, gid) + u32(0))
        if st:
            raise NfsError(st, "SETATTR")
        return r.wcc()

    def read(self, path, count=1 << 20):
        st, r = self.call(6, opaque(self.lookup_path(path)) + u64(0) + u32(count))
        if st:
            raise NfsError(st, "READ")
        r.post_op_attr()
        r.u32()
        r.u32()
        return r.opaque()

    def write(self, path, data):
        st, r = self.call(7, opaque(self.lookup_path(path)) + u64(0)
                          + u32(len(data)) + u32(2) + opaque(data))
        if st:
            raise NfsError(st, "WRITE")

    def lsplus(self, path):
        fh = self.lookup_path(path)
        out, cookie, verf = [], 0, b"\0" * 8
        while True:
            st, r = self.call(17, opaque(fh) + u64(cookie) + verf
                              + u32(8192) + u32(65536))
            if st:
                raise NfsError(st, "READDIRPLUS")
            r.post_op_attr()
            verf = r.b[r.p:r.p + 8]
            r.p += 8
            while r.u32():
                r.u64()
                name = r.opaque().decode()
                cookie = r.u64()
                attr = r.post_op_attr()
                if r.u32():
                    r.opaque()
                out.append((name, attr))
            if r.u32():
                return out


def main(argv):
    if len(argv) < 5:
        print(__doc__, file=sys.stderr)
        return 2
    host, port, export = argv[1], int(argv[2]), argv[3]
    uid = gid = 0
    gids = []
    mport = None
    mcred = (0, 0, [])
    rest = argv[4:]
    while rest and rest[0].startswith("--"):
        opt, val = rest[0], rest[1]
        if opt == "--uid":
            uid = int(val)
        elif opt == "--gid":
            gid = int(val)
        elif opt == "--gids":
            gids = [int(g) for g in val.split(",") if g]
        elif opt == "--mountport":
            mport = int(val)
        elif opt == "--mountcred":
            mu, mg = (int(x) for x in val.split(":"))
            mcred = (mu, mg, [])
        rest = rest[2:]
    cmd, args = rest[0], rest[1:]
    try:
        c = Nfs(host, port, export, uid, gid, gids, mport, mcred)
        if cmd == "getattr":
            a = c.getattr(args[0])
            print(a["uid"], a["gid"], oct(a["mode"] & 0o7777), a["size"])
        elif cmd == "create":
            own = [int(x) for x in args[1:3]] if len(args) >= 3 else [None, None]
            c.create(args[0], *own)
        elif cmd == "mkdir":
            c.mkdir(args[0])
        elif cmd == "symlink":
            c.symlink(args[0], args[1].encode())
        elif cmd == "setattr":
            c.setattr(args[0], int(args[1]), int(args[2]))
        elif cmd == "read":
            sys.stdout.buffer.write(c.read(args[0]))
        elif cmd == "write":
            c.write(args[0], args[1].encode())
        elif cmd == "lsplus":
            for name, a in c.lsplus(args[0]):
                if a:
                    print(name, a["uid"], a["gid"])
        else:
            print(f"unknown command {cmd}", file=sys.stderr)
            return 2
    except NfsError as e:
        print(f"nfs error {e.status}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
