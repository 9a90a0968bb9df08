/*
 * idmap/idmap.c — static uid/gid maps: the map_static file parser, the two
 * sorted range tables per kind (client → store for requests, store → client
 * for replies), squash rules, and the reference-counted map lifetime.
 */
#include "idmap/idmap_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define ID_MAX 4294967294u /* 4294967295 is (uid_t)-1: "no id" to chown */

/* One line: ids lo..hi (inclusive) map to to..to+(hi-lo), or squash. */
struct rng {
	uint32_t r_lo;
	uint32_t r_hi;
	uint32_t r_to;
	unsigned r_line;
	bool r_squash;
};

/* Ranges sorted by r_lo, never overlapping once the map is loaded. */
struct dir {
	struct rng *d_r;
	size_t d_n;
	size_t d_cap;
};

struct idmap {
	atomic_uint m_refs;
	struct idmap_opts m_opts;
	bool m_empty;          /* idmap_new_empty(): identity, no tables */
	struct dir m_fwd[2];   /* client → store, by enum idmap_kind */
	struct dir m_rev[2];   /* store → client, lines without "-" only */
};

static const char *const kind_name[2] = { "uid", "gid" };

void idmap_opts_default(struct idmap_opts *o)
{
	const struct idmap_opts d = IDMAP_OPTS_INIT;

	*o = d;
}

static bool opts_valid(const struct idmap_opts *o)
{
	/* An anonymous id of 0 would turn every squashed user into root. */
	return (unsigned)o->io_squash <= IDMAP_SQUASH_NONE &&
	       (unsigned)o->io_unmapped <= IDMAP_UNMAPPED_DENY &&
	       o->io_anonuid != 0 && o->io_anonuid <= ID_MAX &&
	       o->io_anongid != 0 && o->io_anongid <= ID_MAX;
}

static int map_alloc(const struct idmap_opts *opts, struct idmap **out)
{
	struct idmap *m;

	if (opts && !opts_valid(opts))
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	if (opts)
		m->m_opts = *opts;
	else
		idmap_opts_default(&m->m_opts);
	atomic_init(&m->m_refs, 1);
	*out = m;
	return 0;
}

static void map_destroy(struct idmap *m)
{
	for (int k = 0; k < 2; k++) {
		free(m->m_fwd[k].d_r);
		free(m->m_rev[k].d_r);
	}
	free(m);
}

/* ---------------------------------------------------------------------- */
/* Parsing one line                                                        */

/* One side of a line as written: an id, a range, or "-" (store side). */
struct side {
	uint32_t s_lo;
	uint32_t s_hi;
	bool s_squash;
};

/* Strict decimal: no sign, no leading zero, nothing after the digits. */
static const char *parse_u32(const char *s, uint32_t *v)
{
	uint64_t n = 0;
	size_t i;

	if (s[0] == '\0')
		return "empty number";
	if (s[0] == '-')
		return "negative number";
	for (i = 0; s[i] >= '0' && s[i] <= '9'; i++) {
		if (n <= ID_MAX)
			n = n * 10 + (uint64_t)(s[i] - '0');
	}
	if (i == 0 || s[i] != '\0')
		return "trailing junk in number";
	if (s[0] == '0' && i > 1)
		return "leading zero in number (octal is not accepted)";
	if (n == 4294967295u)
		return "id 4294967295 is reserved ((uid_t)-1)";
	if (n > ID_MAX)
		return "number out of range (largest id is 4294967294)";
	*v = (uint32_t)n;
	return NULL;
}

/* "N" or "LO-HI"; tok starts with a digit or '-'. */
static const char *parse_ids(char *tok, struct side *sd)
{
	char *dash = strchr(tok + 1, '-');
	const char *why;

	if (tok[0] == '-')
		return "negative number";
	if (dash)
		*dash = '\0';
	why = parse_u32(tok, &sd->s_lo);
	if (!why && dash)
		why = parse_u32(dash + 1, &sd->s_hi);
	else
		sd->s_hi = sd->s_lo;
	if (dash)
		*dash = '-'; /* keep the token whole for the message */
	if (!why && sd->s_lo > sd->s_hi)
		why = "range start is above its end";
	return why;
}

static const char *parse_name(const char *tok, enum idmap_kind k,
			      struct side *sd)
{
	int rc;

	if (!idmap_name_valid(tok, strlen(tok)))
		return "not a number, range or valid name";
	if (k == IDMAP_UID)
		rc = idmap_user_lookup(tok, &sd->s_lo, NULL);
	else
		rc = idmap_group_lookup(tok, &sd->s_lo);
	if (rc == -ENOMEM)
		return "out of memory resolving name";
	if (rc)
		return k == IDMAP_UID ? "unknown user name" :
					"unknown group name";
	if (sd->s_lo > ID_MAX)
		return "name resolves to the reserved id 4294967295";
	sd->s_hi = sd->s_lo;
	return NULL;
}

static const char *parse_side(char *tok, enum idmap_kind k, bool store,
			      struct side *sd)
{
	memset(sd, 0, sizeof(*sd));
	if (strcmp(tok, "-") == 0) {
		sd->s_squash = true;
		return store ? NULL :
			       "'-' (squash) is only allowed on the store side";
	}
	if ((tok[0] >= '0' && tok[0] <= '9') || tok[0] == '-')
		return parse_ids(tok, sd);
	return parse_name(tok, k, sd);
}

/* Split at blanks into at most max tokens, stopping at a '#' comment. */
static size_t split(char *s, char **tok, size_t max)
{
	size_t n = 0;

	for (;;) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0' || *s == '#' || n == max)
			return n;
		tok[n++] = s;
		while (*s && *s != ' ' && *s != '\t')
			s++;
		if (*s)
			*s++ = '\0';
	}
}

static int dir_push(struct dir *d, const struct rng *r)
{
	if (d->d_n == d->d_cap) {
		size_t cap = d->d_cap ? d->d_cap * 2 : 16;
		struct rng *nr = realloc(d->d_r, cap * sizeof(*nr));

		if (!nr)
			return -ENOMEM;
		d->d_r = nr;
		d->d_cap = cap;
	}
	d->d_r[d->d_n++] = *r;
	return 0;
}

/* Combine the two sides into one range; NULL or the reason it is wrong. */
static const char *make_rng(const struct side *c, const struct side *s,
			    unsigned line, struct rng *r)
{
	uint64_t span = (uint64_t)c->s_hi - c->s_lo;

	r->r_lo = c->s_lo;
	r->r_hi = c->s_hi;
	r->r_line = line;
	r->r_squash = s->s_squash;
	r->r_to = s->s_squash ? 0 : s->s_lo;
	if (s->s_squash)
		return NULL;
	if (s->s_hi != s->s_lo && (uint64_t)s->s_hi - s->s_lo != span)
		return "store range and client range differ in length";
	if ((uint64_t)s->s_lo + span > ID_MAX)
		return "store range runs past 4294967294";
	return NULL;
}

static int parse_line(struct idmap *m, char *line, const char *path,
		      unsigned no, char *err, size_t errlen)
{
	char *tok[4];
	size_t n = split(line, tok, 4);
	struct side c, s;
	const char *why;
	struct rng r;
	int k;

	if (n == 0)
		return 0;
	if (strcmp(tok[0], "uid") == 0)
		k = IDMAP_UID;
	else if (strcmp(tok[0], "gid") == 0)
		k = IDMAP_GID;
	else
		return idmap_errf(err, errlen,
				  "%s:%u: unknown kind '%s' (expected uid or gid)",
				  path, no, tok[0]);
	if (n < 3)
		return idmap_errf(err, errlen, "%s:%u: missing %s %s", path, no,
				  n == 1 ? "client" : "store", kind_name[k]);
	if (n > 3)
		return idmap_errf(err, errlen, "%s:%u: extra field '%s'", path,
				  no, tok[3]);
	why = parse_side(tok[1], k, false, &c);
	if (why)
		return idmap_errf(err, errlen, "%s:%u: client %s '%s': %s", path,
				  no, kind_name[k], tok[1], why);
	why = parse_side(tok[2], k, true, &s);
	if (!why)
		why = make_rng(&c, &s, no, &r);
	if (why)
		return idmap_errf(err, errlen, "%s:%u: store %s '%s': %s", path,
				  no, kind_name[k], tok[2], why);
	return dir_push(&m->m_fwd[k], &r);
}

/* ---------------------------------------------------------------------- */
/* Building the tables                                                     */

static int rng_cmp(const void *a, const void *b)
{
	const struct rng *x = a, *y = b;

	if (x->r_lo != y->r_lo)
		return x->r_lo < y->r_lo ? -1 : 1;
	return x->r_line < y->r_line ? -1 : x->r_line > y->r_line;
}

/*
 * In a sorted table, find two overlapping ranges.  Comparing each range
 * with the one reaching furthest so far finds an overlap if there is any.
 */
static bool dir_overlap(const struct dir *d, size_t *a, size_t *b)
{
	size_t far = 0;

	for (size_t i = 1; i < d->d_n; i++) {
		if (d->d_r[i].r_lo <= d->d_r[far].r_hi) {
			*a = far;
			*b = i;
			return true;
		}
		if (d->d_r[i].r_hi > d->d_r[far].r_hi)
			far = i;
	}
	return false;
}

/* Report an overlap at the later of the two lines, naming the earlier. */
static int overlap_err(const struct dir *d, size_t a, size_t b, bool rev,
		       int k, const char *path, char *err, size_t errlen)
{
	const struct rng *x = &d->d_r[a], *y = &d->d_r[b];

	if (x->r_line > y->r_line) {
		const struct rng *t = x;

		x = y;
		y = t;
	}
	if (!rev)
		return idmap_errf(err, errlen,
				  "%s:%u: client %s range %u-%u overlaps line %u (client %u-%u)",
				  path, y->r_line, kind_name[k], y->r_lo,
				  y->r_hi, x->r_line, x->r_lo, x->r_hi);
	return idmap_errf(err, errlen,
			  "%s:%u: store %s range %u-%u overlaps line %u (store %u-%u): "
			  "replies could not be mapped back",
			  path, y->r_line, kind_name[k], y->r_lo, y->r_hi,
			  x->r_line, x->r_lo, x->r_hi);
}

/* The reverse table: every non-squash line, keyed by its store range. */
static int build_rev(const struct dir *fwd, struct dir *rev)
{
	size_t n = 0;

	for (size_t i = 0; i < fwd->d_n; i++)
		n += !fwd->d_r[i].r_squash;
	if (n == 0)
		return 0;
	rev->d_r = malloc(n * sizeof(*rev->d_r));
	if (!rev->d_r)
		return -ENOMEM;
	rev->d_cap = n;
	for (size_t i = 0; i < fwd->d_n; i++) {
		const struct rng *f = &fwd->d_r[i];

		if (f->r_squash)
			continue;
		rev->d_r[rev->d_n++] = (struct rng){
			.r_lo = f->r_to,
			.r_hi = f->r_to + (f->r_hi - f->r_lo),
			.r_to = f->r_lo,
			.r_line = f->r_line,
		};
	}
	return 0;
}

static int map_finish(struct idmap *m, const char *path, char *err,
		      size_t errlen)
{
	size_t a, b;
	int rc;

	for (int k = 0; k < 2; k++) {
		struct dir *f = &m->m_fwd[k], *r = &m->m_rev[k];

		if (f->d_n > 1) /* qsort(NULL, 0) is undefined */
			qsort(f->d_r, f->d_n, sizeof(*f->d_r), rng_cmp);
		if (dir_overlap(f, &a, &b))
			return overlap_err(f, a, b, false, k, path, err, errlen);
		rc = build_rev(f, r);
		if (rc)
			return rc;
		if (r->d_n > 1)
			qsort(r->d_r, r->d_n, sizeof(*r->d_r), rng_cmp);
		if (dir_overlap(r, &a, &b))
			return overlap_err(r, a, b, true, k, path, err, errlen);
	}
	return 0;
}

int idmap_load(const char *path, const struct idmap_opts *opts,
	       struct idmap **out, char *err, size_t errlen)
{
	struct idmap_lines lines;
	struct idmap *m = NULL;
	char *line;
	int rc;

	rc = map_alloc(opts, &m);
	if (rc == -EINVAL)
		return idmap_errf(err, errlen, "%s: invalid options", path);
	if (rc)
		return rc;
	rc = idmap_lines_open(&lines, path, err, errlen);
	if (rc)
		goto fail_map;
	while ((rc = idmap_lines_next(&lines, &line, err, errlen)) > 0) {
		rc = parse_line(m, line, path, lines.l_no, err, errlen);
		if (rc)
			goto fail_lines;
	}
	if (rc)
		goto fail_lines;
	rc = map_finish(m, path, err, errlen);
	if (rc)
		goto fail_lines;
	idmap_lines_close(&lines);
	*out = m;
	return 0;

fail_lines:
	idmap_lines_close(&lines);
	if (rc == -ENOMEM)
		idmap_errf(err, errlen, "%s: out of memory", path);
fail_map:
	map_destroy(m);
	return rc;
}

int idmap_new_empty(const struct idmap_opts *opts, struct idmap **out)
{
	struct idmap *m;
	int rc = map_alloc(opts, &m);

	if (rc)
		return rc;
	m->m_empty = true;
	*out = m;
	return 0;
}

struct idmap *idmap_ref(struct idmap *m)
{
	if (m)
		atomic_fetch_add_explicit(&m->m_refs, 1, memory_order_relaxed);
	return m;
}

void idmap_unref(struct idmap *m)
{
	/* acq_rel: the thread that frees sees every other user's accesses. */
	if (m && atomic_fetch_sub_explicit(&m->m_refs, 1,
					   memory_order_acq_rel) == 1)
		map_destroy(m);
}

void idmap_free(struct idmap *m)
{
	idmap_unref(m);
}

/* ---------------------------------------------------------------------- */
/* Lookups                                                                 */

static const struct rng *dir_find(const struct dir *d, uint32_t id)
{
	size_t lo = 0, hi = d->d_n;

	while (lo < hi) { /* first range starting above id */
		size_t mid = lo + (hi - lo) / 2;

		if (d->d_r[mid].r_lo <= id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || id > d->d_r[lo - 1].r_hi)
		return NULL;
	return &d->d_r[lo - 1];
}

static uint32_t anon_of(const struct idmap *m, enum idmap_kind k)
{
	return k == IDMAP_UID ? m->m_opts.io_anonuid : m->m_opts.io_anongid;
}

int idmap_id_to_store(const struct idmap *m, enum idmap_kind k,
		      uint32_t client_id, uint32_t *store_id)
{
	enum idmap_squash sq = m->m_opts.io_squash;
	const struct rng *r;

	if (sq == IDMAP_SQUASH_ALL || (sq == IDMAP_SQUASH_ROOT && client_id == 0))
		goto squash;
	if (m->m_empty) {
		*store_id = client_id;
		return 0;
	}
	r = dir_find(&m->m_fwd[k], client_id);
	if (!r && m->m_opts.io_unmapped == IDMAP_UNMAPPED_DENY)
		return -EACCES;
	if (!r || r->r_squash)
		goto squash;
	*store_id = r->r_to + (client_id - r->r_lo);
	return 0;
squash:
	*store_id = anon_of(m, k);
	return IDMAP_SQUASHED;
}

int idmap_id_to_client(const struct idmap *m, enum idmap_kind k,
		       uint32_t store_id, uint32_t *client_id)
{
	const struct rng *r;

	if (m->m_empty) {
		*client_id = store_id;
		return 0;
	}
	r = dir_find(&m->m_rev[k], store_id);
	if (!r) {
		*client_id = anon_of(m, k);
		return IDMAP_SQUASHED;
	}
	*client_id = r->r_to + (store_id - r->r_lo);
	return 0;
}

int idmap_uid_to_store(const struct idmap *m, uint32_t client_uid,
		       uint32_t *store_uid)
{
	return idmap_id_to_store(m, IDMAP_UID, client_uid, store_uid);
}

int idmap_gid_to_store(const struct idmap *m, uint32_t client_gid,
		       uint32_t *store_gid)
{
	return idmap_id_to_store(m, IDMAP_GID, client_gid, store_gid);
}

int idmap_uid_to_client(const struct idmap *m, uint32_t store_uid,
			uint32_t *client_uid)
{
	return idmap_id_to_client(m, IDMAP_UID, store_uid, client_uid);
}

int idmap_gid_to_client(const struct idmap *m, uint32_t store_gid,
			uint32_t *client_gid)
{
	return idmap_id_to_client(m, IDMAP_GID, store_gid, client_gid);
}

static bool gids_contain(const uint32_t *gids, size_t n, uint32_t g)
{
	for (size_t i = 0; i < n; i++)
		if (gids[i] == g)
			return true;
	return false;
}

int idmap_cred_to_store(const struct idmap *m, uint32_t *uid, uint32_t *gid,
			uint32_t *gids, uint32_t *ngids)
{
	uint32_t u, g, out = 0;
	int ru, rg;

	ru = idmap_uid_to_store(m, *uid, &u);
	if (ru < 0)
		return ru;
	rg = idmap_gid_to_store(m, *gid, &g);
	if (rg < 0)
		return rg;
	/* Like knfsd: all_squash leaves a squashed user no extra groups. */
	for (uint32_t i = 0; m->m_opts.io_squash != IDMAP_SQUASH_ALL &&
			     i < *ngids && out < IDMAP_MAX_GIDS; i++) {
		uint32_t sg;

		/* Writing slot out <= i never clobbers an unread entry. */
		if (idmap_gid_to_store(m, gids[i], &sg) < 0)
			continue; /* denied: dropping a group only removes access */
		if (!gids_contain(gids, out, sg))
			gids[out++] = sg;
	}
	*uid = u;
	*gid = g;
	*ngids = out;
	return ru;
}

/* ---------------------------------------------------------------------- */
/* Inspection                                                              */

const struct idmap_opts *idmap_opts_of(const struct idmap *m)
{
	return &m->m_opts;
}

size_t idmap_range_count(const struct idmap *m, enum idmap_kind k)
{
	return (unsigned)k <= IDMAP_GID ? m->m_fwd[k].d_n : 0;
}

int idmap_range_get(const struct idmap *m, enum idmap_kind k, size_t i,
		    struct idmap_range *out)
{
	const struct rng *r;

	if ((unsigned)k > IDMAP_GID || i >= m->m_fwd[k].d_n)
		return -ERANGE;
	r = &m->m_fwd[k].d_r[i];
	out->r_client_lo = r->r_lo;
	out->r_client_hi = r->r_hi;
	out->r_store_lo = r->r_to;
	out->r_squash = r->r_squash;
	out->r_line = r->r_line;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* The current map, shared by many threads                                 */

struct idmap_slot {
	pthread_mutex_t s_lock; /* guards s_map's pointer, not the map */
	struct idmap *s_map;
};

int idmap_slot_new(struct idmap *m, struct idmap_slot **out)
{
	struct idmap_slot *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->s_lock, NULL);
	s->s_map = m;
	*out = s;
	return 0;
}

struct idmap *idmap_slot_get(struct idmap_slot *s)
{
	struct idmap *m;

	/* Loading the pointer and taking the reference must be one step, or
	 * a reload could free the map in between. */
	pthread_mutex_lock(&s->s_lock);
	m = idmap_ref(s->s_map);
	pthread_mutex_unlock(&s->s_lock);
	return m;
}

void idmap_slot_set(struct idmap_slot *s, struct idmap *m)
{
	struct idmap *old;

	pthread_mutex_lock(&s->s_lock);
	old = s->s_map;
	s->s_map = m;
	pthread_mutex_unlock(&s->s_lock);
	idmap_unref(old); /* outside the lock: freeing may take a while */
}

void idmap_slot_free(struct idmap_slot *s)
{
	if (!s)
		return;
	idmap_unref(s->s_map);
	pthread_mutex_destroy(&s->s_lock);
	free(s);
}
