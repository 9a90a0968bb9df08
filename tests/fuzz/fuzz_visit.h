/*
 * tests/fuzz/fuzz_visit.h — walker visitors shared by the call and reply
 * fuzz targets: they check that every pointer a walker reports lies inside
 * the body it claims to have walked, and write through it the way the
 * proxy patches ids, handles and verifiers in place.
 */
#ifndef GRIDVFS_FUZZ_VISIT_H
#define GRIDVFS_FUZZ_VISIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "rpc/rpc.h"

/* One walk's record of what the visitors saw. */
struct fz_walk {
	const uint8_t *fw_base; /* body start */
	size_t fw_len;          /* body bytes handed to the walker */
	unsigned fw_calls;      /* callbacks, all kinds */
	unsigned fw_status;     /* v_status callbacks */
	unsigned fw_first;      /* 1 + index of the first callback kind */
	uint32_t fw_sum;        /* checksum of (kind, length) in order */
	int fw_patch;           /* 0: rewrite bytes unchanged; 1: change them */
};

/* Visitors that check bounds, then patch (see fw_patch). */
extern const struct rpc_nfs3_visit fz_visit;

/*
 * Walk the body buf[0..len) with walk() twice (once rewriting every
 * reported byte with its own value, once changing it) and abort() on any
 * broken invariant: a pointer outside the walked body, callbacks after a
 * failed walk, a different result or callback sequence the second time,
 * a reply whose status is not reported first.
 */
typedef ssize_t (*fz_walk_fn)(uint32_t proc, uint8_t *buf, size_t len,
			      const struct rpc_nfs3_visit *v, void *ctx);
void fz_walk_check(fz_walk_fn walk, uint32_t proc, uint8_t *buf, size_t len,
		   int nfs3_reply);

#endif /* GRIDVFS_FUZZ_VISIT_H */
