#!/bin/bash
# Regenerates the captured part of the seed corpus: runs nfsops (every
# NFSv3 procedure, MOUNT MNT/EXPORT/UMNT) against nfs-ganesha through
# capture.py, which saves real call, reply and record-stream samples into
# tests/fuzz/corpus/<target>/.  Not part of `make check`; run it by hand
# after protocol changes (as root: ganesha and nfsops need it).
# usage: tests/fuzz/make-corpus.sh [OUTDIR]   (default: the source corpus)
. "$(dirname "$0")/../lib/harness.sh"
h_init fuzz-corpus
OUTDIR=${1:-$top_srcdir/tests/fuzz/corpus}
h_ganesha
h_take_port CAP_NFS
h_take_port CAP_MNT
python3 "$top_srcdir/tests/fuzz/capture.py" "$H_DIR/cap" \
	"$CAP_NFS:$H_NFS_PORT" "$CAP_MNT:$H_MNT_PORT" >"$H_DIR/capture.log" 2>&1 &
H_PIDS+=($!)
h_wait_tcp "$CAP_NFS" 10 || h_fail "capture relay did not start"
h_wait_tcp "$CAP_MNT" 10 || h_fail "capture relay did not start"
NFSOPS=$(h_tool nfsops) || h_fail "no nfsops"
url=$(printf 'nfs://127.0.0.1%s?version=3&nfsport=%s&mountport=%s' \
	"$H_EXPORT" "$CAP_NFS" "$CAP_MNT")
"$NFSOPS" "$url" corpus >"$H_DIR/nfsops.log" 2>&1 ||
	h_fail "nfsops failed: $(tail -3 "$H_DIR/nfsops.log")"
sleep 1 # let the relay see the connections close and save the streams
for t in fuzz_call fuzz_reply fuzz_record; do
	mkdir -p "$OUTDIR/$t"
	n=$(find "$H_DIR/cap/$t" -type f | wc -l)
	[ "$n" -gt 0 ] || h_fail "nothing captured for $t"
	cp "$H_DIR/cap/$t"/* "$OUTDIR/$t/"
	echo "$t: $n captured inputs"
done
du -sh "$OUTDIR"
h_pass
