/*
 * idmap/gridmap.c — the Globus grid-mapfile: which local accounts a peer
 * whose certificate names subject DN may act as.  Entries are kept sorted by
 * DN for binary search; account names are resolved only on request.
 */
#include "idmap/idmap_int.h"

#include <errno.h>
#include <grp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* One line; e_accts, the account strings and e_dn share one allocation. */
struct gm_entry {
	const char **e_accts;
	size_t e_n;
	const char *e_dn;
	unsigned e_line;
};

struct idmap_gridmap {
	atomic_uint g_refs;
	struct gm_entry *g_e; /* sorted by e_dn */
	size_t g_n;
	size_t g_cap;
};

static void gridmap_destroy(struct idmap_gridmap *g)
{
	for (size_t i = 0; i < g->g_n; i++)
		free(g->g_e[i].e_accts);
	free(g->g_e);
	free(g);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Decode the quoted DN starting at *pp (just after the opening quote) into
 * dn, which has room for the rest of the line.  Leaves *pp after the
 * closing quote.  NULL, or the reason the DN is malformed.
 */
static const char *parse_dn(const char **pp, char *dn)
{
	const char *p = *pp;
	size_t n = 0;

	for (;; p++) {
		if (*p == '\0')
			return "unterminated DN (missing closing quote)";
		if (*p == '"')
			break;
		if (*p != '\\') {
			dn[n++] = *p;
			continue;
		}
		p++;
		if (*p == '"' || *p == '\\') {
			dn[n++] = *p;
		} else if (*p == 'x') {
			int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);

			if (lo < 0)
				return "\\x must be followed by two hex digits";
			if (hi == 0 && lo == 0)
				return "\\x00 is not allowed in a DN";
			dn[n++] = (char)(hi * 16 + lo);
			p += 2;
		} else if (*p == '\0') {
			return "unterminated DN (missing closing quote)";
		} else {
			return "unknown escape in DN (use \\\", \\\\ or \\xHH)";
		}
	}
	dn[n] = '\0';
	*pp = p + 1;
	if (n == 0)
		return "empty DN";
	if (dn[0] != '/')
		return "DN is not in slash form (must start with '/')";
	return NULL;
}

/* Check "a,b,c": names, none empty, none twice.  NULL or the reason. */
static const char *check_accounts(const char *s, size_t len, size_t *count)
{
	size_t n = 0, start = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != ',')
			continue;
		if (i == start)
			return "empty account name";
		if (!idmap_name_valid(s + start, i - start))
			return "invalid account name";
		for (size_t j = 0; j < start;) { /* earlier names */
			size_t e = j;

			while (s[e] != ',')
				e++;
			if (e - j == i - start && !memcmp(s + j, s + start, e - j))
				return "account listed twice";
			j = e + 1;
		}
		n++;
		start = i + 1;
	}
	*count = n;
	return NULL;
}

/* Build the entry's single allocation from the DN and the account list. */
static int entry_make(struct gm_entry *e, const char *dn, const char *acc,
		      size_t acclen, size_t n, unsigned line)
{
	size_t dnlen = strlen(dn);
	char *blk = malloc(n * sizeof(char *) + acclen + 1 + dnlen + 1);
	char *names, *dnc;

	if (!blk)
		return -ENOMEM;
	e->e_accts = (const char **)(void *)blk;
	names = blk + n * sizeof(char *);
	memcpy(names, acc, acclen);
	names[acclen] = '\0';
	dnc = names + acclen + 1;
	memcpy(dnc, dn, dnlen + 1);
	for (size_t i = 0; i < n; i++) {
		char *comma = strchr(names, ',');

		e->e_accts[i] = names;
		if (comma) {
			*comma = '\0';
			names = comma + 1;
		}
	}
	e->e_n = n;
	e->e_dn = dnc;
	e->e_line = line;
	return 0;
}

static int gridmap_push(struct idmap_gridmap *g, const struct gm_entry *e)
{
	if (g->g_n == g->g_cap) {
		size_t cap = g->g_cap ? g->g_cap * 2 : 16;
		struct gm_entry *ne = realloc(g->g_e, cap * sizeof(*ne));

		if (!ne)
			return -ENOMEM;
		g->g_e = ne;
		g->g_cap = cap;
	}
	g->g_e[g->g_n++] = *e;
	return 0;
}

static bool blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Parse one line into *e.  1 entry made, 0 blank/comment, or -errno. */
static int parse_line(const char *line, const char *path, unsigned no,
		      char *dn, struct gm_entry *e, char *err, size_t errlen)
{
	const char *p = line, *acc, *why;
	size_t acclen, n;

	while (blank(*p))
		p++;
	if (*p == '\0' || *p == '#')
		return 0;
	if (*p != '"')
		return idmap_errf(err, errlen, "%s:%u: DN must be in double quotes",
				  path, no);
	p++;
	why = parse_dn(&p, dn);
	if (!why && *p && !blank(*p))
		why = "missing blank after the closing quote";
	if (why)
		return idmap_errf(err, errlen, "%s:%u: %s", path, no, why);
	while (blank(*p))
		p++;
	if (*p == '\0' || *p == '#')
		return idmap_errf(err, errlen, "%s:%u: missing account list",
				  path, no);
	acc = p;
	while (*p && !blank(*p))
		p++;
	acclen = (size_t)(p - acc);
	while (blank(*p))
		p++;
	if (*p && *p != '#')
		return idmap_errf(err, errlen,
				  "%s:%u: extra field after the account list (accounts are "
				  "separated by commas without blanks)", path, no);
	why = check_accounts(acc, acclen, &n);
	if (why)
		return idmap_errf(err, errlen, "%s:%u: %s in '%.*s'", path, no,
				  why, (int)acclen, acc);
	if (entry_make(e, dn, acc, acclen, n, no))
		return -ENOMEM;
	return 1;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct gm_entry *x = a, *y = b;
	int c = strcmp(x->e_dn, y->e_dn);

	if (c)
		return c;
	return x->e_line < y->e_line ? -1 : x->e_line > y->e_line;
}

static int gridmap_finish(struct idmap_gridmap *g, const char *path,
			  char *err, size_t errlen)
{
	if (g->g_n > 1) /* qsort(NULL, 0) is undefined */
		qsort(g->g_e, g->g_n, sizeof(*g->g_e), entry_cmp);
	for (size_t i = 1; i < g->g_n; i++) {
		if (strcmp(g->g_e[i - 1].e_dn, g->g_e[i].e_dn) == 0)
			return idmap_errf(err, errlen,
					  "%s:%u: duplicate DN (already on line %u)",
					  path, g->g_e[i].e_line,
					  g->g_e[i - 1].e_line);
	}
	return 0;
}

int idmap_gridmap_load(const char *path, struct idmap_gridmap **out,
		       char *err, size_t errlen)
{
	struct idmap_lines lines;
	struct idmap_gridmap *g;
	char dn[IDMAP_LINE_MAX + 1];
	struct gm_entry e = { 0 };
	char *line;
	int rc;

	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	atomic_init(&g->g_refs, 1);
	rc = idmap_lines_open(&lines, path, err, errlen);
	if (rc)
		goto fail_map;
	while ((rc = idmap_lines_next(&lines, &line, err, errlen)) > 0) {
		rc = parse_line(line, path, lines.l_no, dn, &e, err, errlen);
		if (rc == 1 && (rc = gridmap_push(g, &e)) != 0)
			free(e.e_accts);
		if (rc < 0)
			goto fail_lines;
	}
	if (!rc)
		rc = gridmap_finish(g, path, err, errlen);
	if (rc)
		goto fail_lines;
	idmap_lines_close(&lines);
	*out = g;
	return 0;

fail_lines:
	idmap_lines_close(&lines);
	if (rc == -ENOMEM)
		idmap_errf(err, errlen, "%s: out of memory", path);
fail_map:
	gridmap_destroy(g);
	return rc;
}

struct idmap_gridmap *idmap_gridmap_ref(struct idmap_gridmap *g)
{
	if (g)
		atomic_fetch_add_explicit(&g->g_refs, 1, memory_order_relaxed);
	return g;
}

void idmap_gridmap_unref(struct idmap_gridmap *g)
{
	if (g && atomic_fetch_sub_explicit(&g->g_refs, 1,
					   memory_order_acq_rel) == 1)
		gridmap_destroy(g);
}

void idmap_gridmap_free(struct idmap_gridmap *g)
{
	idmap_gridmap_unref(g);
}

size_t idmap_gridmap_count(const struct idmap_gridmap *g)
{
	return g->g_n;
}

static const struct gm_entry *gridmap_find(const struct idmap_gridmap *g,
					   const char *dn)
{
	size_t lo = 0, hi = g->g_n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(dn, g->g_e[mid].e_dn);

		if (c == 0)
			return &g->g_e[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

int idmap_gridmap_lookup(const struct idmap_gridmap *g, const char *dn,
			 const char *const **accounts, size_t *n)
{
	const struct gm_entry *e = gridmap_find(g, dn);

	if (!e)
		return -ENOENT;
	*accounts = e->e_accts;
	*n = e->e_n;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Resolving a peer's accounts                                             */

struct idvec {
	uint32_t *v;
	size_t n;
	size_t cap;
};

static int idvec_add(struct idvec *iv, uint32_t id)
{
	if (iv->n == iv->cap) {
		size_t cap = iv->cap ? iv->cap * 2 : 16;
		uint32_t *nv = realloc(iv->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		iv->v = nv;
		iv->cap = cap;
	}
	iv->v[iv->n++] = id;
	return 0;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static void idvec_sort_unique(struct idvec *iv)
{
	size_t out = 0;

	if (iv->n > 1) /* qsort(NULL, 0) is undefined */
		qsort(iv->v, iv->n, sizeof(*iv->v), u32_cmp);
	for (size_t i = 0; i < iv->n; i++)
		if (out == 0 || iv->v[out - 1] != iv->v[i])
			iv->v[out++] = iv->v[i];
	iv->n = out;
}

/* Add name's primary and supplementary groups to gids. */
static int add_groups(const char *name, uint32_t gid, struct idvec *gids)
{
	int want = 32, ng = want, rc = 0;
	gid_t *groups = NULL;

	for (;;) {
		gid_t *ngr = realloc(groups, (size_t)want * sizeof(*ngr));

		if (!ngr) {
			free(groups);
			return -ENOMEM;
		}
		groups = ngr;
		ng = want;
		if (getgrouplist(name, (gid_t)gid, groups, &ng) >= 0)
			break;
		/* Too small: ng says how many there are; cap runaway lists. */
		if (want >= 65536) {
			ng = want;
			break;
		}
		want = ng > want ? ng : want * 2;
		if (want > 65536)
			want = 65536;
	}
	for (int i = 0; i < ng && !rc; i++)
		rc = idvec_add(gids, (uint32_t)groups[i]);
	if (!rc)
		rc = idvec_add(gids, gid); /* getgrouplist includes it; be sure */
	free(groups);
	return rc;
}

int idmap_accounts_ids(const char *const *accts, size_t n,
		       struct idmap_peer_ids *out)
{
	struct idvec uids = { 0 }, gids = { 0 };
	uint32_t uid, gid;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < n && !rc; i++) {
		rc = idmap_user_lookup(accts[i], &uid, &gid);
		if (rc == -ENOENT) {
			rc = i == 0 ? -ESRCH : 0; /* unknown here: not claimable */
			continue;
		}
		if (!rc && i == 0) {
			out->pi_uid = uid;
			out->pi_gid = gid;
		}
		if (!rc)
			rc = idvec_add(&uids, uid);
		if (!rc)
			rc = add_groups(accts[i], gid, &gids);
	}
	if (rc) {
		free(uids.v);
		free(gids.v);
		return rc;
	}
	idvec_sort_unique(&uids);
	idvec_sort_unique(&gids);
	out->pi_uids = uids.v;
	out->pi_nuids = uids.n;
	out->pi_gids = gids.v;
	out->pi_ngids = gids.n;
	return 0;
}

int idmap_gridmap_ids(const struct idmap_gridmap *g, const char *dn,
		      struct idmap_peer_ids *out)
{
	const struct gm_entry *e = gridmap_find(g, dn);

	if (!e)
		return -ENOENT;
	return idmap_accounts_ids((const char *const *)e->e_accts, e->e_n,
				  out);
}

void idmap_peer_ids_clear(struct idmap_peer_ids *p)
{
	free(p->pi_uids);
	free(p->pi_gids);
	memset(p, 0, sizeof(*p));
}

static bool ids_has(const uint32_t *v, size_t n, uint32_t id)
{
	return v && bsearch(&id, v, n, sizeof(*v), u32_cmp) != NULL;
}

bool idmap_peer_ids_has_uid(const struct idmap_peer_ids *p, uint32_t uid)
{
	return ids_has(p->pi_uids, p->pi_nuids, uid);
}

bool idmap_peer_ids_has_gid(const struct idmap_peer_ids *p, uint32_t gid)
{
	return ids_has(p->pi_gids, p->pi_ngids, gid);
}
