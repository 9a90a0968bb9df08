/*
 * idmap/idmap.h — identity mapping between an NFS client's domain and an
 * image store's domain: static uid/gid range maps (classic nfsd map_static
 * format), squash rules, and the Globus grid-mapfile (certificate DN →
 * accounts).  Pure code: files in, decisions out; it never touches the wire.
 *
 * Terms used throughout:
 *   client id — a uid/gid as the NFS client sends it in AUTH_SYS and sattr3,
 *               and as it must see it in fattr3 replies;
 *   store id  — a uid/gid on the image store's file system.
 * Requests go client → store (idmap_*_to_store), replies store → client
 * (idmap_*_to_client).  Format, policies and rules: docs/idmap.md.
 *
 * Errors are 0 or a negative errno value.  Lookups may also return the
 * positive code IDMAP_SQUASHED.
 *
 * Threads: a map (struct idmap) and a grid-map (struct idmap_gridmap) are
 * immutable once loaded, so any number of threads may look up in one at
 * the same time without locks.  Lifetime is a reference count: the loader
 * owns one reference; idmap_ref() takes another, idmap_unref() drops one
 * and frees the map with the last.  struct idmap_slot publishes "the
 * current map" to many threads and replaces it on reload (SIGHUP).
 */
#ifndef GRIDVFS_IDMAP_H
#define GRIDVFS_IDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* A lookup result: the id was mapped to the anonymous id (squashed). */
#define IDMAP_SQUASHED 1

/* Longest accepted line of a map or grid-map file, without its newline. */
#define IDMAP_LINE_MAX 4096u

/* Most supplementary gids an AUTH_SYS credential carries (RFC 5531). */
#define IDMAP_MAX_GIDS 16u

/* The default anonymous id (nobody/nogroup on Debian and RHEL). */
#define IDMAP_ANON_DEFAULT 65534u

enum idmap_kind { IDMAP_UID = 0, IDMAP_GID = 1 };

/* Which client ids are squashed before any map line is consulted. */
enum idmap_squash {
	IDMAP_SQUASH_ROOT = 0, /* client uid 0 and gid 0 (default)        */
	IDMAP_SQUASH_ALL = 1,  /* every client id; supplementary gids dropped */
	IDMAP_SQUASH_NONE = 2, /* none: map lines decide, even for root   */
};

/* What a request with a client id that no map line covers gets. */
enum idmap_unmapped {
	IDMAP_UNMAPPED_SQUASH = 0, /* the anonymous id (default)         */
	IDMAP_UNMAPPED_DENY = 1,   /* -EACCES                            */
};

struct idmap_opts {
	enum idmap_squash io_squash;
	enum idmap_unmapped io_unmapped;
	uint32_t io_anonuid; /* store uid of squashed users; 0 is refused */
	uint32_t io_anongid; /* store gid of squashed groups; 0 is refused */
};

#define IDMAP_OPTS_INIT                                                      \
	{ IDMAP_SQUASH_ROOT, IDMAP_UNMAPPED_SQUASH, IDMAP_ANON_DEFAULT,      \
	  IDMAP_ANON_DEFAULT }

/* Fill o with the defaults (same as IDMAP_OPTS_INIT). */
void idmap_opts_default(struct idmap_opts *o);

/* ---------------------------------------------------------------------- */
/* Static uid/gid maps                                                     */

struct idmap;

/*
 * Load a map file ("uid|gid CLIENT[-CLIENT_HI] STORE[-STORE_HI]|-" lines).
 * opts may be NULL for the defaults.  Names are resolved with getpwnam_r /
 * getgrnam_r now, never at lookup time.
 * Returns 0 and *out (one reference, owned by the caller), or:
 *   -EINVAL  bad opts, or the file is malformed: err holds "FILE:LINE: why"
 *   -ENOMEM  out of memory
 *   -errno   the file cannot be opened or read (err says so)
 * On error nothing is allocated and *out is untouched.  err may be NULL;
 * messages are truncated to errlen (128 bytes or more suffices in practice).
 */
int idmap_load(const char *path, const struct idmap_opts *opts,
	       struct idmap **out, char *err, size_t errlen);

/*
 * A map without lines: every id maps to itself, except that the squash
 * rules still apply to requests.  The unmapped policy has nothing to act on.
 * Returns 0, -EINVAL (bad opts) or -ENOMEM.
 */
int idmap_new_empty(const struct idmap_opts *opts, struct idmap **out);

/* Take one more reference; returns m.  NULL-safe. */
struct idmap *idmap_ref(struct idmap *m);
/* Drop one reference; the last one frees the map.  NULL-safe. */
void idmap_unref(struct idmap *m);
/* The same as idmap_unref(): drops the caller's (the loader's) reference. */
void idmap_free(struct idmap *m);

/*
 * Requests, client → store.  Returns:
 *   0               *store_id = the mapped id
 *   IDMAP_SQUASHED  *store_id = the anonymous id (squash rule, a "-" line,
 *                   or an unmapped id under IDMAP_UNMAPPED_SQUASH)
 *   -EACCES         unmapped id under IDMAP_UNMAPPED_DENY; *store_id untouched
 */
int idmap_uid_to_store(const struct idmap *m, uint32_t client_uid,
		       uint32_t *store_uid);
int idmap_gid_to_store(const struct idmap *m, uint32_t client_gid,
		       uint32_t *store_gid);

/*
 * Replies, store → client.  Squash rules and the unmapped policy do not
 * apply to replies.  Returns:
 *   0               *client_id = the id a map line maps back to (identity
 *                   for an empty map)
 *   IDMAP_SQUASHED  no line maps this store id back: *client_id = the
 *                   anonymous id.  The store's own anonymous id shows as the
 *                   anonymous id too, unless a line maps it explicitly.
 */
int idmap_uid_to_client(const struct idmap *m, uint32_t store_uid,
			uint32_t *client_uid);
int idmap_gid_to_client(const struct idmap *m, uint32_t store_gid,
			uint32_t *client_gid);

/* The same four lookups, with the kind as a parameter. */
int idmap_id_to_store(const struct idmap *m, enum idmap_kind k,
		      uint32_t client_id, uint32_t *store_id);
int idmap_id_to_client(const struct idmap *m, enum idmap_kind k,
		       uint32_t store_id, uint32_t *client_id);

/*
 * Map an AUTH_SYS credential in place, client → store.  gids holds *ngids
 * supplementary gids (any number; the array is rewritten in place).  Each
 * supplementary gid is mapped; squashed ones become the anonymous gid,
 * unmapped ones under the deny policy are dropped; duplicates are dropped
 * (first occurrence kept, order kept); at most IDMAP_MAX_GIDS remain.
 * Under IDMAP_SQUASH_ALL the supplementary list is emptied.
 * Returns 0, IDMAP_SQUASHED (the uid was squashed), or -EACCES (the uid or
 * the primary gid is unmapped under the deny policy; nothing is changed).
 */
int idmap_cred_to_store(const struct idmap *m, uint32_t *uid, uint32_t *gid,
			uint32_t *gids, uint32_t *ngids);

/* The options the map was made with. */
const struct idmap_opts *idmap_opts_of(const struct idmap *m);

/* One map line, for inspection (gridvfs idmap check, logs). */
struct idmap_range {
	uint32_t r_client_lo;
	uint32_t r_client_hi; /* inclusive */
	uint32_t r_store_lo;  /* store id of r_client_lo; 0 when r_squash */
	bool r_squash;        /* a "-" line: the range squashes */
	unsigned r_line;      /* line number in the file */
};

/* Number of lines of kind k (0 for an empty map). */
size_t idmap_range_count(const struct idmap *m, enum idmap_kind k);
/* The i-th line of kind k, ordered by client id.  0 or -ERANGE. */
int idmap_range_get(const struct idmap *m, enum idmap_kind k, size_t i,
		    struct idmap_range *out);

/* ---------------------------------------------------------------------- */
/* Publishing the current map to many threads                              */

/*
 * A slot holds the current map.  Readers call idmap_slot_get() once per
 * request and idmap_unref() when done; a reload calls idmap_slot_set().
 * The old map is freed when its last in-flight user drops it.  The slot's
 * mutex is held only for a pointer copy and a reference increment.
 */
struct idmap_slot;

/* Create a slot holding m (takes over the caller's reference; m non-NULL).
 * Returns 0 or -ENOMEM (m is then still the caller's). */
int idmap_slot_new(struct idmap *m, struct idmap_slot **out);
/* The current map with a new reference the caller must drop. */
struct idmap *idmap_slot_get(struct idmap_slot *s);
/* Make m current (takes over the caller's reference) and drop the slot's
 * reference to the previous map. */
void idmap_slot_set(struct idmap_slot *s, struct idmap *m);
/* Free the slot and drop its reference.  No thread may use it any more. */
void idmap_slot_free(struct idmap_slot *s);

/* ---------------------------------------------------------------------- */
/* Grid-mapfile: certificate subject DN → local accounts                   */

struct idmap_gridmap;

/*
 * Load a Globus grid-mapfile: lines `"/C=../O=../CN=.." acct1,acct2`.
 * Returns 0 and *out (one reference), -EINVAL with "FILE:LINE: why" in err
 * (malformed line, duplicate DN), -ENOMEM, or -errno if unreadable.
 * Account names are not resolved here (see idmap_gridmap_ids()).
 */
int idmap_gridmap_load(const char *path, struct idmap_gridmap **out,
		       char *err, size_t errlen);
struct idmap_gridmap *idmap_gridmap_ref(struct idmap_gridmap *g);
void idmap_gridmap_unref(struct idmap_gridmap *g);
void idmap_gridmap_free(struct idmap_gridmap *g); /* = idmap_gridmap_unref */

/* Number of DNs in the grid-map. */
size_t idmap_gridmap_count(const struct idmap_gridmap *g);

/*
 * Exact, case-sensitive match of dn (slash form, unescaped).  Returns 0 with
 * *accounts = the account names (the first is the default) and *n >= 1, or
 * -ENOENT.  The strings live as long as the caller holds a reference to g.
 */
int idmap_gridmap_lookup(const struct idmap_gridmap *g, const char *dn,
			 const char *const **accounts, size_t *n);

/* What a TLS peer may claim to be: its accounts' uids and groups. */
struct idmap_peer_ids {
	uint32_t pi_uid;   /* the default (first) account's uid */
	uint32_t pi_gid;   /* the default account's primary gid */
	uint32_t *pi_uids; /* sorted, unique; owned, see _clear() */
	size_t pi_nuids;
	uint32_t *pi_gids; /* sorted, unique: primary + supplementary groups */
	size_t pi_ngids;
};

/*
 * Resolve dn's accounts with getpwnam_r and getgrouplist.  Accounts that do
 * not exist locally are skipped.  Returns 0 (fill *out; free it with
 * idmap_peer_ids_clear()), -ENOENT (dn not in the map), -ESRCH (the default
 * account does not exist locally) or -ENOMEM.
 */
int idmap_gridmap_ids(const struct idmap_gridmap *g, const char *dn,
		      struct idmap_peer_ids *out);
/* The same for a list of account names (the first is the default): what
 * a plaintext client may act as under --plaintext-accounts. */
int idmap_accounts_ids(const char *const *accts, size_t n,
		       struct idmap_peer_ids *out);
void idmap_peer_ids_clear(struct idmap_peer_ids *p);
bool idmap_peer_ids_has_uid(const struct idmap_peer_ids *p, uint32_t uid);
bool idmap_peer_ids_has_gid(const struct idmap_peer_ids *p, uint32_t gid);

/* ---------------------------------------------------------------------- */
/* Admin CLI: gridvfs idmap check FILE [options] [uid:N|gid:N ...]         */

/*
 * Validate a map file and show how sample ids map both ways.  argv[0] is
 * the command's name (e.g. "check"), as for main().  Writes the report to
 * out and errors to errf.  Returns the exit status: 0 valid, 1 invalid map,
 * 2 usage error.  idmap_check_main() is the same on stdout/stderr.
 */
int idmap_check(int argc, char **argv, FILE *out, FILE *errf);
int idmap_check_main(int argc, char **argv);

#endif /* GRIDVFS_IDMAP_H */
