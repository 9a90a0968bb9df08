/*
 * tests/fuzz/fuzz_record.c — libFuzzer target: the input is a TCP byte
 * stream of record-marked RPC messages.  It is fed to rpc_rec_* in chunks
 * whose sizes (and the choice between rpc_rec_feed and the zero-copy
 * rpc_rec_direct/commit path) come from a PRNG seeded by a hash of the
 * input, and every message it yields is compared with a one-pass reference
 * decoder: same messages, same error, same "partial" state at the end.
 * For half the inputs the stream is a gridvfs-z1 link (r_zok): mark bit 30
 * says "compressed, one whole record" and bit 29 "answer compressed", and
 * the flags each message ends with must match the reference's too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/rpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* xorshift64*, seeded from FNV-1a of the input: deterministic per input. */
static uint64_t rec_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static uint64_t rec_seed(const uint8_t *p, size_t n)
{
	uint64_t h = 14695981039346656037ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h ? h : 1;
}

/* What the reference decoder found: the messages, and how it ended. */
struct rec_ref {
	uint8_t *rf_msgs;   /* the payloads of all complete messages */
	size_t rf_total;    /* bytes in rf_msgs */
	size_t rf_lens[4096];
	bool rf_z[4096];    /* the message came compressed (bit 30) */
	bool rf_w[4096];    /* its last mark asked for compression (bit 29) */
	size_t rf_n;        /* complete messages */
	int rf_err;         /* 0 or the error that stops the stream */
	bool rf_partial;    /* the stream ends inside a message */
};

static void rec_fail(const char *why)
{
	fprintf(stderr, "fuzz_record: %s\n", why);
	abort();
}

/* One pass over the whole stream, straight from RFC 5531 section 11 plus
 * the bounds rpc/rpc.h documents. */
static void rec_reference(const uint8_t *p, size_t n, size_t max, bool zok,
			  struct rec_ref *f)
{
	size_t pos = 0, mlen = 0, nfrags = 0;
	bool z = false, w = false;

	f->rf_total = f->rf_n = 0;
	f->rf_err = 0;
	while (pos + 4 <= n) {
		uint32_t mark = rpc_get32(p + pos);
		size_t flen = mark & RPC_RM_LENMASK;
		bool last = mark & RPC_RM_LAST;

		pos += 4;
		if (zok) {
			/* On an agreed link bits 29-30 are flags, not length;
			 * a compressed fragment is a whole, non-empty record. */
			w = mark & RPC_RM_ZWANT;
			flen &= ~(size_t)(RPC_RM_ZWANT | RPC_RM_ZSTD);
			if (mark & RPC_RM_ZSTD) {
				if (!last || nfrags || !flen) {
					f->rf_err = -EBADMSG;
					return;
				}
				z = true;
			}
		}
		if (++nfrags > RPC_REC_MAX_FRAGS || flen > max - mlen) {
			f->rf_err = -EMSGSIZE;
			return;
		}
		if (last && mlen + flen == 0) {
			f->rf_err = -EBADMSG;
			return;
		}
		if (flen > n - pos)
			break;
		memcpy(f->rf_msgs + f->rf_total + mlen, p + pos, flen);
		mlen += flen;
		pos += flen;
		if (last) {
			if (f->rf_n == sizeof(f->rf_lens) / sizeof(f->rf_lens[0]))
				return; /* enough: compare this many */
			f->rf_z[f->rf_n] = z;
			f->rf_w[f->rf_n] = w;
			f->rf_lens[f->rf_n++] = mlen;
			f->rf_total += mlen;
			mlen = nfrags = 0;
			z = false;
		}
	}
	/* Inside a message: a header or body cut short, or fragments of an
	 * unfinished message already read. */
	f->rf_partial = pos != n || nfrags != 0;
}

/* Compare one message from the reassembler with the reference's next. */
static void rec_check_msg(struct rpc_rec *r, const struct rec_ref *f,
			  size_t *idx, size_t *off)
{
	size_t len;
	bool z = r->r_zstd, w = r->r_zwant;
	uint8_t *buf = rpc_rec_take(r, &len);

	if (!buf)
		rec_fail("ready but nothing to take");
	if (*idx >= f->rf_n)
		rec_fail("more messages than the reference");
	if (z != f->rf_z[*idx] || w != f->rf_w[*idx])
		rec_fail("compression flags differ from the reference");
	if (r->r_zstd)
		rec_fail("the compressed flag outlived its message");
	if (len != f->rf_lens[*idx] ||
	    memcmp(buf + RPC_REC_HEADROOM, f->rf_msgs + *off, len))
		rec_fail("message differs from the reference");
	/* The headroom belongs to the caller: it must be writable. */
	rpc_rec_mark(buf, len);
	*off += len;
	(*idx)++;
	free(buf);
}

/* Feed one chunk, by copy or through the direct path; the error or 0. */
static int rec_step(struct rpc_rec *r, const uint8_t *p, size_t k, int direct,
		    size_t *used)
{
	size_t room;
	uint8_t *dst;
	ssize_t got;

	dst = direct ? rpc_rec_direct(r, &room) : NULL;
	if (dst) {
		if (!room)
			rec_fail("direct path with no room");
		if (k > room)
			k = room;
		if (rpc_rec_commit(r, room + 1) != -EINVAL)
			rec_fail("commit beyond room accepted");
		memcpy(dst, p, k);
		if (rpc_rec_commit(r, k))
			rec_fail("commit within room refused");
		*used = k;
		return 0;
	}
	got = rpc_rec_feed(r, p, k);
	if (got < 0)
		return (int)got;
	if ((size_t)got > k || (got == 0 && k && !rpc_rec_ready(r)))
		rec_fail("feed consumed a wrong count");
	*used = (size_t)got;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t maxes[] = { 0, 8, 100, 4096, 65536, 1u << 20 };
	static struct rec_ref f;
	uint64_t s = rec_seed(data, size);
	size_t max = maxes[rec_rand(&s) % 6], pos = 0, idx = 0, off = 0;
	bool zok = rec_rand(&s) & 1;
	struct rpc_rec r;
	int err = 0;

	f.rf_msgs = malloc(size + 1);
	if (!f.rf_msgs)
		return 0;
	rec_reference(data, size, max, zok, &f);
	rpc_rec_init(&r, max);
	r.r_zok = zok;
	while (pos < size && idx < f.rf_n + 1) {
		uint64_t v = rec_rand(&s);
		size_t k = 1 + (size_t)(v % ((v >> 40) & 1 ? 7 : 4096));
		size_t used = 0;

		if (k > size - pos)
			k = size - pos;
		err = rec_step(&r, data + pos, k, (v >> 41) & 1, &used);
		if (err)
			break;
		pos += used;
		if (rpc_rec_ready(&r))
			rec_check_msg(&r, &f, &idx, &off);
		if (f.rf_n == sizeof(f.rf_lens) / sizeof(f.rf_lens[0]) &&
		    idx == f.rf_n)
			goto out; /* compared as many as the reference kept */
	}
	if (idx != f.rf_n)
		rec_fail("fewer messages than the reference");
	if (err != f.rf_err)
		rec_fail("different error than the reference");
	if (!err && rpc_rec_partial(&r) != f.rf_partial)
		rec_fail("partial state differs from the reference");
out:
	rpc_rec_free(&r);
	free(f.rf_msgs);
	return 0;
}
