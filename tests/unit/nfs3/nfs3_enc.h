/*
 * tests/unit/nfs3/nfs3_enc.h — an independent NFSv3 / MOUNTv3 encoder for
 * the walker tests, built on rpcgen's XDR routines for rpc/nfs3.x.  Its
 * implementation includes libtirpc, whose names clash with rpc/rpc.h, so
 * this interface uses plain C types only.
 *
 * Every message carries markers in message order, so a test can tell which
 * structure a callback pointer points at:
 *   i-th fattr3:     uid = o_fattr_uid + i, gid = 2000 + i,
 *                    fileid = 0xF000 + i, type = 1 + i % 7
 *   i-th wcc_attr:   size = 0x5000 + i
 *   i-th sattr3:     set_uid = o_sattr_uid + i (unset when sparse),
 *                    set_gid = 4000 + i (always set)
 *   i-th file handle: enc_fh_len(i) bytes, byte j = enc_fh_byte(i, j)
 */
#ifndef TEST_NFS3_ENC_H
#define TEST_NFS3_ENC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum enc_kind { ENC_CALL, ENC_OK, ENC_FAIL };

#define ENC_FAIL_STATUS 70u /* NFS3ERR_STALE */
#define ENC_MNT_FAIL_STATUS 13u /* MNT3ERR_ACCES */
#define ENC_MAX_ENTRIES 32u

struct enc_opts {
	bool o_sparse;        /* optional parts absent, sattr uid unset */
	uint32_t o_sub;       /* CREATE createmode3, MKNOD ftype3 */
	unsigned o_nentries;  /* READDIR(PLUS), DUMP, EXPORT list length */
	uint32_t o_datalen;   /* READ / WRITE data bytes */
	uint32_t o_fattr_uid; /* uid base for fattr3 markers (0: 1000) */
	uint32_t o_sattr_uid; /* uid base for sattr3 markers (0: 3000) */
};

unsigned enc_fh_len(unsigned i);
uint8_t enc_fh_byte(unsigned i, unsigned j);
uint8_t enc_data_byte(unsigned j);

/* Encode a call body or a reply body (after the RPC header) into buf:
 * bytes written, or -1 if the encoder failed. */
ssize_t enc_nfs3(uint32_t proc, enum enc_kind kind, const struct enc_opts *o,
		 uint8_t *buf, size_t cap);
ssize_t enc_mnt3(uint32_t proc, enum enc_kind kind, const struct enc_opts *o,
		 uint8_t *buf, size_t cap);

/* Decode a READDIRPLUS3res with rpcgen and list the entries' fattr3 uids
 * (UINT32_MAX for an entry without attributes): count, or -1. */
int enc_readdirplus_uids(const uint8_t *buf, size_t len, uint32_t *uids,
			 unsigned max);
/* Decode a SETATTR3args with rpcgen: the sattr3's uid, or -1 if unset. */
int64_t enc_setattr_uid(const uint8_t *buf, size_t len);

#endif
