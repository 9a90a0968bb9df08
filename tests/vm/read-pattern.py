#!/usr/bin/env python3
"""Summarises a guest read trace from `boot.sh --trace F` (lines "OFFSET
LENGTH", in issue order): how sequential it is and how it spreads over the
image, which is what a prefetch (boot-trace) design has to exploit.

    read-pattern.py TRACE [CHUNK_KIB ...]     (default chunks: 128 1024 4096)
"""
import collections
import sys


def main():
    reads = []
    with open(sys.argv[1]) as f:
        for line in f:
            off, length = map(int, line.split())
            reads.append((off, length))
    chunks = [int(c) for c in sys.argv[2:]] or [128, 1024, 4096]
    if not reads:
        print("no reads")
        return 1
    total = sum(n for _, n in reads)
    contiguous = fwd = back = 0
    end = None
    for off, n in reads:
        if end is not None:
            if off == end:
                contiguous += 1
            elif off > end:
                fwd += 1
            else:
                back += 1
        end = off + n
    merged = []
    for off, n in sorted(reads):
        if merged and off <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], off + n)
        else:
            merged.append([off, off + n])
    unique = sum(e - s for s, e in merged)
    lo = min(o for o, _ in reads)
    hi = max(o + n for o, n in reads)
    sizes = collections.Counter(n for _, n in reads)
    print("reads %d, bytes %d (%.1f MiB), unique bytes %d, re-read %d"
          % (len(reads), total, total / 2**20, unique, total - unique))
    print("mean read %.1f KiB; most common sizes (KiB x count): %s"
          % (total / len(reads) / 1024,
             ", ".join("%g x %d" % (s / 1024, c) for s, c in sizes.most_common(6))))
    print("next read starts where the previous ended: %d of %d (%.0f%%); "
          "jumps forward %d, backward %d"
          % (contiguous, len(reads) - 1, 100 * contiguous / max(1, len(reads) - 1),
             fwd, back))
    print("contiguous extents after merging: %d; span %.1f MiB of the image"
          % (len(merged), (hi - lo) / 2**20))
    for kib in chunks:
        size = kib * 1024
        touched = set()
        for off, n in reads:
            touched.update(range(off // size, (off + n - 1) // size + 1))
        print("%5d KiB chunks touched: %d (%.1f MiB to fetch whole chunks, "
              "%.0f%% of it used)" % (kib, len(touched), len(touched) * size / 2**20,
                                     100 * unique / (len(touched) * size)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
