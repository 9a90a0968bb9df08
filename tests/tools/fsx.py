#!/usr/bin/env python3
"""fsx.py — an fsx-like random file exerciser checked against a model.

  fsx.py [--seed N] [--ops N] [--maxlen BYTES] FILE [DISKFILE]

Runs N random operations on FILE (created empty) and keeps the expected
content in memory: pwrite (also far past EOF, leaving a hole), pread,
truncate down and up (ftruncate), writes through a shared mmap followed
by msync, reads through a private mmap, copy_file_range from a second
file (FILE.src) and within FILE, O_APPEND writes, close and reopen
(close-to-open), fsync. Every read is compared with the model at once,
and the whole file after each reopen and at the end. With DISKFILE (the
same file seen on the store's disk), the end state is compared there too
once FILE is closed. Any difference prints the operation log tail and
the first differing offset, and exits 1; an unexpected errno exits 1
too. Prints "fsx: N ops ok (seed S)" on success.
"""
import argparse
import mmap
import os
import random
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ops", type=int, default=2000)
    ap.add_argument("--maxlen", type=int, default=256 * 1024)
    ap.add_argument("file")
    ap.add_argument("disk", nargs="?")
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    path, src_path = a.file, a.file + ".src"
    log = []
    model = bytearray()

    def fail(msg):
        sys.stderr.write("fsx: FAIL (seed %d): %s\n" % (a.seed, msg))
        for line in log[-25:]:
            sys.stderr.write("  %s\n" % line)
        sys.exit(1)

    def compare(got, off, what):
        want = bytes(model[off:off + len(got)])
        if got != want:
            i = next((k for k in range(min(len(got), len(want)))
                      if got[k] != want[k]), min(len(got), len(want)))
            fail("%s: differs at offset %d (got %d bytes, want %d)"
                 % (what, off + i, len(got), len(want)))

    def whole(fd, what):
        st = os.fstat(fd)
        if st.st_size != len(model):
            fail("%s: size %d, model %d" % (what, st.st_size, len(model)))
        got = os.pread(fd, len(model) + 1, 0)
        if len(got) != len(model):
            fail("%s: read %d bytes of %d" % (what, len(got), len(model)))
        compare(got, 0, what)

    def data(n):
        return rnd.getrandbits(8 * n).to_bytes(n, "little") if n else b""

    def model_write(off, buf):
        if off > len(model):
            model.extend(b"\0" * (off - len(model)))
        model[off:off + len(buf)] = buf

    src = data(a.maxlen)
    with open(src_path, "wb") as f:
        f.write(src)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    maxsize = 4 * a.maxlen
    ops = ["write", "write", "read", "read", "trunc", "hole", "mmapw",
           "mmapr", "cfr", "cfr_self", "append", "reopen", "fsync"]
    for n in range(a.ops):
        op = rnd.choice(ops)
        size = len(model)
        try:
            if op == "write":
                off = rnd.randrange(0, max(size, 1) + a.maxlen // 4)
                buf = data(rnd.randrange(1, a.maxlen // 4))
                log.append("%d write off %d len %d" % (n, off, len(buf)))
                if os.pwrite(fd, buf, off) != len(buf):
                    fail("short write")
                model_write(off, buf)
            elif op == "hole":
                off = size + rnd.randrange(1, a.maxlen)
                if off > maxsize:
                    continue
                buf = data(rnd.randrange(1, 4096))
                log.append("%d hole-write off %d len %d" % (n, off, len(buf)))
                os.pwrite(fd, buf, off)
                model_write(off, buf)
            elif op == "read":
                off = rnd.randrange(0, size + 100)
                ln = rnd.randrange(1, a.maxlen // 4)
                log.append("%d read off %d len %d" % (n, off, ln))
                compare(os.pread(fd, ln, off), off, "read")
            elif op == "trunc":
                ln = rnd.randrange(0, min(maxsize, size * 2 + a.maxlen))
                log.append("%d truncate %d -> %d" % (n, size, ln))
                os.ftruncate(fd, ln)
                if ln < size:
                    del model[ln:]
                else:
                    model.extend(b"\0" * (ln - size))
                if os.fstat(fd).st_size != ln:
                    fail("size after truncate %d: %d" % (ln, os.fstat(fd).st_size))
            elif op == "mmapw":
                if size == 0:
                    continue
                off = rnd.randrange(0, size)
                ln = rnd.randrange(1, min(size - off, a.maxlen // 8) + 1)
                buf = data(ln)
                log.append("%d mmap-write off %d len %d" % (n, off, ln))
                m = mmap.mmap(fd, size, mmap.MAP_SHARED,
                              mmap.PROT_READ | mmap.PROT_WRITE)
                m[off:off + ln] = buf
                m.flush()
                m.close()
                model_write(off, buf)
            elif op == "mmapr":
                if size == 0:
                    continue
                off = rnd.randrange(0, size)
                ln = rnd.randrange(1, min(size - off, a.maxlen // 4) + 1)
                log.append("%d mmap-read off %d len %d" % (n, off, ln))
                m = mmap.mmap(fd, size, mmap.MAP_PRIVATE, mmap.PROT_READ)
                got = m[off:off + ln]
                m.close()
                compare(got, off, "mmap read")
            elif op == "cfr":
                soff = rnd.randrange(0, a.maxlen)
                ln = rnd.randrange(1, a.maxlen - soff + 1)
                off = rnd.randrange(0, size + 4096)
                log.append("%d copy_file_range src %d -> %d len %d" % (n, soff, off, ln))
                sfd = os.open(src_path, os.O_RDONLY)
                done = 0
                while done < ln:
                    r = os.copy_file_range(sfd, fd, ln - done, soff + done, off + done)
                    if r <= 0:
                        fail("copy_file_range returned %d" % r)
                    done += r
                os.close(sfd)
                model_write(off, src[soff:soff + ln])
            elif op == "cfr_self":
                if size < 2:
                    continue
                ln = rnd.randrange(1, size // 2 + 1)
                soff = rnd.randrange(0, size - ln + 1)
                # a destination that does not overlap the source
                off = rnd.choice([soff + ln + rnd.randrange(0, 4096),
                                  max(0, soff - ln - rnd.randrange(0, 4096))])
                if off < soff + ln and off + ln > soff:
                    continue
                log.append("%d copy_file_range self %d -> %d len %d" % (n, soff, off, ln))
                done = 0
                while done < ln:
                    r = os.copy_file_range(fd, fd, ln - done, soff + done, off + done)
                    if r <= 0:
                        fail("copy_file_range (self) returned %d" % r)
                    done += r
                model_write(off, bytes(model[soff:soff + ln]))
            elif op == "append":
                buf = data(rnd.randrange(1, 8192))
                log.append("%d O_APPEND write len %d at %d" % (n, len(buf), size))
                afd = os.open(path, os.O_WRONLY | os.O_APPEND)
                os.lseek(afd, 0, os.SEEK_SET)  # O_APPEND ignores the offset
                os.write(afd, buf)
                os.close(afd)
                model_write(size, buf)
            elif op == "reopen":
                log.append("%d close+reopen" % n)
                os.close(fd)
                fd = os.open(path, os.O_RDWR)
                whole(fd, "after reopen")
            elif op == "fsync":
                log.append("%d fsync" % n)
                os.fsync(fd)
        except OSError as e:
            fail("%s: %s" % (log[-1] if log else op, e))
    whole(fd, "end")
    os.close(fd)
    if a.disk:
        with open(a.disk, "rb") as f:
            got = f.read()
        if len(got) != len(model):
            fail("on disk: size %d, model %d" % (len(got), len(model)))
        compare(got, 0, "on disk")
    os.unlink(src_path)
    print("fsx: %d ops ok (seed %d, final size %d)" % (a.ops, a.seed, len(model)))


if __name__ == "__main__":
    main()
