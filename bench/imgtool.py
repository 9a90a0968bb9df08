#!/usr/bin/env python3
"""imgtool: the seeded parts of bench/mkimage.sh (synthetic files, clones
that share most blocks with the golden image, a boot-like read trace, and
the manifest). Python's random.Random(int) sequence is stable across
versions, so a seed gives the same bytes and positions everywhere.

  imgtool.py synth DIR BYTES SEED
  imgtool.py clone GOLDEN OUT SEED PCT LO-HI[,LO-HI...]
  imgtool.py trace IMG OUT SEED BOOT_LO-BOOT_HI ROOT_LO-ROOT_HI
  imgtool.py stats IMG [GOLDEN]
  imgtool.py bytes N SEED          (N seeded random bytes to stdout)
"""
import os
import random
import sys

BLK = 4096
ZERO = bytes(BLK)
WORDS = ("kernel systemd udev mount unit started reached target network "
         "device dev sda1 eth0 link up ok failed retry service cgroup user "
         "session slice journal cron sshd accepted key audit apparmor loaded "
         "profile module firmware pci usb bus hub port irq memory zone dma").split()


def parse_ranges(spec):
    out = []
    for part in spec.split(","):
        lo, hi = part.split("-")
        out.append((int(lo), int(hi)))
    return out


def data_extents(path, lo, hi):
    """(start, end) of the allocated (non-hole) parts of [lo, hi)."""
    ext = []
    fd = os.open(path, os.O_RDONLY)
    try:
        pos = lo
        while pos < hi:
            try:
                d = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break
            if d >= hi:
                break
            h = min(os.lseek(fd, d, os.SEEK_HOLE), hi)
            ext.append((d, h))
            pos = h
    finally:
        os.close(fd)
    return ext


def pick_block(rng, ext, total):
    """A uniformly chosen 4 KiB-aligned offset inside the extents."""
    k = rng.randrange(total)
    for s, e in ext:
        n = (e - s) // BLK
        if k < n:
            return s + k * BLK
        k -= n
    raise AssertionError("extent walk")


def synth(d, nbytes, seed):
    """A var/ tree: compressible logs, incompressible blobs, a sparse db."""
    rng = random.Random(seed)
    os.makedirs(os.path.join(d, "var/log"), exist_ok=True)
    os.makedirs(os.path.join(d, "var/lib/blobs"), exist_ok=True)
    os.makedirs(os.path.join(d, "var/lib/db"), exist_ok=True)
    logs = nbytes // 4
    i = 0
    while logs > 0:
        lines = []
        size = min(logs, rng.choice((64, 256, 1024)) * 1024)
        n = 0
        while n < size:
            line = "Jan %2d %02d:%02d:%02d node%03d %s[%d]: %s\n" % (
                rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59),
                rng.randint(0, 59), rng.randint(0, 99), rng.choice(WORDS),
                rng.randint(100, 99999),
                " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))))
            lines.append(line)
            n += len(line)
        with open(os.path.join(d, "var/log/syslog.%d" % i), "w") as f:
            f.write("".join(lines))
        logs -= n
        i += 1
    blobs = nbytes // 2
    i = 0
    while blobs > 0:
        size = min(blobs, rng.choice((1, 4, 16)) * 1024 * 1024)
        with open(os.path.join(d, "var/lib/blobs/pack%03d.bin" % i), "wb") as f:
            f.write(rng.randbytes(size))
        blobs -= size
        i += 1
    # A database file with holes: 1/8 of its apparent size is written.
    dense = nbytes - nbytes // 4 - nbytes // 2
    with open(os.path.join(d, "var/lib/db/store.db"), "wb") as f:
        pos = 0
        while dense > 0:
            size = min(dense, 256 * 1024)
            f.seek(pos)
            f.write(rng.randbytes(size))
            dense -= size
            pos += size * 8
        f.truncate(pos)


def clone(golden, out, seed, pct, regions):
    """Overwrite about PCT % of the data blocks of OUT (a copy of GOLDEN)
    inside REGIONS with seeded bytes, in runs of 1-32 blocks, as guest
    writes would. Prints the number of distinct blocks changed."""
    rng = random.Random(seed)
    ext = []
    for lo, hi in regions:
        ext += data_extents(golden, lo, hi)
    total = sum((e - s) // BLK for s, e in ext)
    want = max(1, int(total * pct / 100))
    changed = set()
    with open(out, "r+b") as f:
        while len(changed) < want:
            off = pick_block(rng, ext, total)
            run = rng.randint(1, 32)
            for k in range(run):
                b = off + k * BLK
                if not any(s <= b < e for s, e in ext) or len(changed) >= want:
                    break
                f.seek(b)
                f.write(rng.randbytes(BLK))
                changed.add(b)
    print(len(changed))


def trace(img, out, seed, boot, root):
    """A boot-like read pattern: partition table and boot loader, the boot
    partition's files front to back in 128 KiB reads, the root file
    system's superblock area, then clusters of reads scattered over the root
    file system's data (plus some in never-written space) in a fixed seeded
    order: about 3 % of the image in all."""
    rng = random.Random(seed)
    size = os.path.getsize(img)
    ops = [(0, 4096), (4096, 16384)]
    ops += [((1 << 20) + i * 65536, 65536) for i in range(8)]
    ops.append((boot[0], 65536))
    for s, e in data_extents(img, boot[0], boot[1]):
        for p in range(s, e, 131072):
            ops.append((p, min(131072, e - p)))
    ops.append((root[0], 262144))
    ext = data_extents(img, root[0], root[1])
    total = sum((e - s) // BLK for s, e in ext)
    budget = size * 3 // 100
    while budget > 0 and total:
        ln = rng.choice((4096, 4096, 4096, 16384, 16384, 65536, 131072))
        if rng.random() < 0.1:
            off = rng.randrange(root[0], root[1] - ln) // BLK * BLK
        else:
            off = pick_block(rng, ext, total)
        for _ in range(rng.randint(1, 8)):
            if off + ln > root[1]:
                break
            ops.append((off, ln))
            budget -= ln
            off += ln
    with open(out, "w") as f:
        f.write("# boot trace for %s: OFFSET LENGTH per line, %d reads, %d bytes\n"
                % (os.path.basename(img), len(ops), sum(n for _, n in ops)))
        for o, n in ops:
            f.write("%d %d\n" % (o, n))


def stats(img, golden=None):
    """Prints: size nonzero_bytes zero_pct [differing_blocks_vs_golden]."""
    size = os.path.getsize(img)
    nonzero = 0
    diff = 0
    with open(img, "rb") as f, open(golden or img, "rb") as g:
        for s, e in data_extents(img, 0, size):
            f.seek(s)
            g.seek(s)
            for p in range(s, e, 1 << 20):
                a = f.read(min(1 << 20, e - p))
                b = g.read(len(a)) if golden else a
                for k in range(0, len(a), BLK):
                    blk = a[k:k + BLK]
                    if blk != ZERO[:len(blk)]:
                        nonzero += len(blk)
                    if golden and blk != b[k:k + BLK]:
                        diff += 1
    line = "%d %d %.1f" % (size, nonzero, 100.0 * (size - nonzero) / size)
    if golden:
        line += " %d" % diff
    print(line)


def main(a):
    if len(a) >= 4 and a[0] == "synth":
        synth(a[1], int(a[2]), int(a[3]))
    elif len(a) == 6 and a[0] == "clone":
        clone(a[1], a[2], int(a[3]), float(a[4]), parse_ranges(a[5]))
    elif len(a) == 6 and a[0] == "trace":
        trace(a[1], a[2], int(a[3]), parse_ranges(a[4])[0], parse_ranges(a[5])[0])
    elif len(a) == 3 and a[0] == "bytes":
        out = sys.stdout.buffer
        rng = random.Random(int(a[2]))
        left = int(a[1])
        while left > 0:
            out.write(rng.randbytes(min(left, 1 << 20)))
            left -= 1 << 20
    elif len(a) in (2, 3) and a[0] == "stats":
        stats(a[1], a[2] if len(a) == 3 else None)
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
