#!/usr/bin/env python3
"""libsdata.py FILE BYTES [MIN_RATIO] — fill FILE with BYTES bytes of this
machine's shared libraries and programs (/usr/lib/x86_64-linux-gnu/*.so*,
/usr/bin/*, in name order, repeated if needed): the kind of bytes a VM
image holds, for tests and benchmarks of the compressed link.  Prints how
well the first 16 MiB pack with zlib level 1 ("2.2"); exits 1 if that is
below MIN_RATIO (default 0), so a caller knows the data, not the code
under test, is to blame.
"""
import glob
import os
import sys
import zlib


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    path, want = sys.argv[1], int(sys.argv[2])
    least = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    names = [p for p in sorted(glob.glob("/usr/lib/x86_64-linux-gnu/*.so*") +
                               glob.glob("/usr/bin/*"))
             if os.path.isfile(p) and not os.path.islink(p)]
    if not names:
        print("libsdata: no libraries found", file=sys.stderr)
        return 1
    n, head = 0, b""
    with open(path, "wb") as out:
        while n < want:
            for p in names:
                if n >= want:
                    break
                with open(p, "rb") as f:
                    d = f.read(want - n)
                out.write(d)
                if len(head) < 16 << 20:
                    head += d[:(16 << 20) - len(head)]
                n += len(d)
    ratio = len(head) / len(zlib.compress(head, 1))
    print("%.1f" % ratio)
    return 0 if ratio >= least else 1


if __name__ == "__main__":
    sys.exit(main())
