/*
 * idmap/check.c — `gridvfs idmap check`: lets an administrator validate a
 * map file before gridvfsd loads it, and see how chosen ids map both ways
 * under the squash and unmapped policies they intend to run with.
 */
#include "idmap/idmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SAMPLES_MAX 256
#define LINES_SAMPLED 10 /* lines per kind whose ends are sampled */

static const char usage[] =
	"usage: gridvfs idmap check FILE [--squash root|all|none] [--anonuid N]\n"
	"                             [--anongid N] [--unmapped squash|deny] [ID...]\n"
	"\n"
	"Validate a uid/gid map file and show how ids map in both directions:\n"
	"requests (client id -> store id) and replies (store id -> client id).\n"
	"\n"
	"  FILE               lines 'uid|gid CLIENT[-CLIENT_HI] STORE|-' (docs/idmap.md)\n"
	"  --squash MODE      root: client uid/gid 0 become anonymous (default);\n"
	"                     all: every client id does; none: only map lines decide\n"
	"  --anonuid N        store uid of squashed users (default 65534)\n"
	"  --anongid N        store gid of squashed groups (default 65534)\n"
	"  --unmapped POLICY  squash: client ids no line lists become anonymous\n"
	"                     (default); deny: requests with them are refused\n"
	"  ID                 uid:N or gid:N to show; by default 0, the first and\n"
	"                     last client and store id of each line (first 10\n"
	"                     lines per kind) and the lowest client id above 0 that\n"
	"                     no line lists\n"
	"\n"
	"Each id is shown twice: as a client id in a request (client->store) and\n"
	"as a store id in a reply (store->client).\n"
	"  -h, --help         show this text\n"
	"\n"
	"Exit status: 0 the map is valid, 1 it is not (FILE:LINE: reason on\n"
	"stderr), 2 usage error.\n";

struct sample {
	enum idmap_kind s_kind;
	uint32_t s_id;
};

struct check_args {
	const char *a_file;
	struct idmap_opts a_opts;
	struct sample a_ids[SAMPLES_MAX];
	size_t a_nids;
};

static const char *const kname[2] = { "uid", "gid" };

static int parse_num(const char *s, uint32_t *v)
{
	unsigned long long n;
	char *end;

	if (!s || s[0] < '0' || s[0] > '9')
		return -EINVAL;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno || *end || n > 4294967294ull)
		return -EINVAL;
	*v = (uint32_t)n;
	return 0;
}

static void sample_add(struct check_args *a, enum idmap_kind k, uint32_t id)
{
	for (size_t i = 0; i < a->a_nids; i++)
		if (a->a_ids[i].s_kind == k && a->a_ids[i].s_id == id)
			return;
	if (a->a_nids < SAMPLES_MAX)
		a->a_ids[a->a_nids++] = (struct sample){ k, id };
}

static int parse_sample(struct check_args *a, const char *s)
{
	enum idmap_kind k;
	uint32_t id;

	if (strncmp(s, "uid:", 4) == 0)
		k = IDMAP_UID;
	else if (strncmp(s, "gid:", 4) == 0)
		k = IDMAP_GID;
	else
		return -EINVAL;
	if (parse_num(s + 4, &id))
		return -EINVAL;
	sample_add(a, k, id);
	return 0;
}

/* Apply one option with its value; 0 or -EINVAL. */
static int parse_opt(struct check_args *a, const char *name, const char *val)
{
	struct idmap_opts *o = &a->a_opts;

	if (!val)
		return -EINVAL;
	if (strcmp(name, "--squash") == 0) {
		if (strcmp(val, "root") == 0)
			o->io_squash = IDMAP_SQUASH_ROOT;
		else if (strcmp(val, "all") == 0)
			o->io_squash = IDMAP_SQUASH_ALL;
		else if (strcmp(val, "none") == 0)
			o->io_squash = IDMAP_SQUASH_NONE;
		else
			return -EINVAL;
		return 0;
	}
	if (strcmp(name, "--unmapped") == 0) {
		if (strcmp(val, "squash") == 0)
			o->io_unmapped = IDMAP_UNMAPPED_SQUASH;
		else if (strcmp(val, "deny") == 0)
			o->io_unmapped = IDMAP_UNMAPPED_DENY;
		else
			return -EINVAL;
		return 0;
	}
	/* An anonymous id of 0 would make squashed users root: refused. */
	if (strcmp(name, "--anonuid") == 0)
		return parse_num(val, &o->io_anonuid) || !o->io_anonuid ? -EINVAL : 0;
	if (strcmp(name, "--anongid") == 0)
		return parse_num(val, &o->io_anongid) || !o->io_anongid ? -EINVAL : 0;
	return -EINVAL;
}

/* 0 parsed, 1 --help shown, 2 usage error (reported on errf). */
static int parse_args(int argc, char **argv, struct check_args *a, FILE *out,
		      FILE *errf)
{
	bool opts_done = false;

	for (int i = 1; i < argc; i++) {
		char *arg = argv[i], *eq, *val;

		if (!opts_done && (!strcmp(arg, "-h") || !strcmp(arg, "--help"))) {
			fputs(usage, out);
			return 1;
		}
		if (!opts_done && !strcmp(arg, "--")) {
			opts_done = true;
		} else if (!opts_done && !strncmp(arg, "--", 2)) {
			char name[32];

			eq = strchr(arg, '=');
			val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
			snprintf(name, sizeof(name), "%.*s",
				 (int)(eq ? (size_t)(eq - arg) : strlen(arg)), arg);
			if (parse_opt(a, name, val)) {
				fprintf(errf, "idmap check: bad option or value: %s%s%s\n",
					arg, val && !eq ? " " : "", val && !eq ? val : "");
				return 2;
			}
		} else if (!a->a_file) {
			a->a_file = arg;
		} else if (parse_sample(a, arg)) {
			fprintf(errf, "idmap check: bad id '%s' (expected uid:N or gid:N)\n",
				arg);
			return 2;
		}
	}
	if (!a->a_file) {
		fputs("idmap check: missing FILE\n", errf);
		fputs(usage, errf);
		return 2;
	}
	return 0;
}

/* The lowest client id above 0 no line lists, or -1 if there is none
 * (0 is always sampled anyway). */
static long long first_unmapped(const struct idmap *m, enum idmap_kind k)
{
	long long cand = 1;
	struct idmap_range r;

	for (size_t i = 0; idmap_range_get(m, k, i, &r) == 0; i++) {
		if (r.r_client_lo > cand)
			break;
		if ((long long)r.r_client_hi + 1 > cand)
			cand = (long long)r.r_client_hi + 1;
	}
	return cand > 4294967294ll ? -1 : cand;
}

static void default_samples(const struct idmap *m, struct check_args *a)
{
	struct idmap_range r;

	for (int k = IDMAP_UID; k <= IDMAP_GID; k++) {
		long long un = first_unmapped(m, (enum idmap_kind)k);

		sample_add(a, (enum idmap_kind)k, 0);
		for (size_t i = 0; i < LINES_SAMPLED &&
				   idmap_range_get(m, (enum idmap_kind)k, i, &r) == 0; i++) {
			sample_add(a, (enum idmap_kind)k, r.r_client_lo);
			sample_add(a, (enum idmap_kind)k, r.r_client_hi);
			if (r.r_squash)
				continue;
			/* and the line's store ends, to show replies mapped back */
			sample_add(a, (enum idmap_kind)k, r.r_store_lo);
			sample_add(a, (enum idmap_kind)k, r.r_store_lo +
				   (r.r_client_hi - r.r_client_lo));
		}
		if (un >= 0)
			sample_add(a, (enum idmap_kind)k, (uint32_t)un);
	}
}

static void print_summary(const struct idmap *m, const struct check_args *a,
			  FILE *out)
{
	static const char *const sq[] = { "root", "all", "none" };
	const struct idmap_opts *o = &a->a_opts;
	struct idmap_range r;

	fprintf(out, "%s: valid\n", a->a_file);
	fprintf(out, "options: squash=%s unmapped=%s anonuid=%u anongid=%u\n",
		sq[o->io_squash],
		o->io_unmapped == IDMAP_UNMAPPED_DENY ? "deny" : "squash",
		o->io_anonuid, o->io_anongid);
	if (o->io_squash == IDMAP_SQUASH_ALL)
		fputs("note: squash=all: requests ignore every line; lines only "
		      "map replies\n", out);
	for (int k = IDMAP_UID; k <= IDMAP_GID; k++) {
		size_t n = idmap_range_count(m, (enum idmap_kind)k);
		size_t ranges = 0, squash = 0;
		unsigned long long ids = 0;

		for (size_t i = 0; idmap_range_get(m, (enum idmap_kind)k, i, &r) == 0; i++) {
			ranges += r.r_client_hi != r.r_client_lo;
			squash += r.r_squash;
			ids += (unsigned long long)r.r_client_hi - r.r_client_lo + 1;
			if (r.r_client_lo == 0 && o->io_squash == IDMAP_SQUASH_ROOT)
				fprintf(out, "note: line %u maps client %s 0, but squash=%s "
					"squashes it in requests\n", r.r_line, kname[k],
					sq[o->io_squash]);
		}
		fprintf(out, "%s: %zu lines, %zu ranges, %zu squashing lines, "
			"%llu client ids listed\n", kname[k], n, ranges, squash, ids);
	}
}

/* The line covering id on the client (or store) side, 0 if none.  A linear
 * scan is fine for the few hundred samples this prints. */
static unsigned line_of(const struct idmap *m, enum idmap_kind k, uint32_t id,
			bool store)
{
	struct idmap_range r;

	for (size_t i = 0; idmap_range_get(m, k, i, &r) == 0; i++) {
		uint32_t lo = store ? r.r_store_lo : r.r_client_lo;
		uint32_t hi = lo + (r.r_client_hi - r.r_client_lo);

		if ((!store || !r.r_squash) && id >= lo && id <= hi)
			return r.r_line;
	}
	return 0;
}

/* Why a request's id was squashed, denied or mapped. */
static void request_note(const struct idmap *m, const struct sample *s,
			 int rs, char *buf, size_t len)
{
	enum idmap_squash sq = idmap_opts_of(m)->io_squash;
	unsigned line = line_of(m, s->s_kind, s->s_id, false);

	if (rs == IDMAP_SQUASHED && sq == IDMAP_SQUASH_ALL)
		snprintf(buf, len, "squashed: squash=all");
	else if (rs == IDMAP_SQUASHED && sq == IDMAP_SQUASH_ROOT && !s->s_id)
		snprintf(buf, len, "squashed: squash=root");
	else if (line)
		snprintf(buf, len, "%sline %u", rs ? "squashed: " : "", line);
	else
		snprintf(buf, len, "%s: unmapped", rs < 0 ? "denied" : "squashed");
}

static void print_sample(const struct idmap *m, const struct sample *s,
			 FILE *out)
{
	uint32_t to = 0, back = 0;
	int rs = idmap_id_to_store(m, s->s_kind, s->s_id, &to);
	int rc = idmap_id_to_client(m, s->s_kind, s->s_id, &back);
	unsigned line = line_of(m, s->s_kind, s->s_id, true);
	char note[64], req[96], id[24];

	request_note(m, s, rs, note, sizeof(note));
	if (rs < 0)
		snprintf(req, sizeof(req), "refused (%s)", note);
	else
		snprintf(req, sizeof(req), "%u (%s)", to, note);
	snprintf(id, sizeof(id), "%s:%u", kname[s->s_kind], s->s_id);
	if (rc == IDMAP_SQUASHED)
		fprintf(out, "%-16s -> store %-32s <- client %u (anonymous: no line)\n",
			id, req, back);
	else
		fprintf(out, "%-16s -> store %-32s <- client %u (line %u)\n",
			id, req, back, line);
}

int idmap_check(int argc, char **argv, FILE *out, FILE *errf)
{
	struct check_args *a = calloc(1, sizeof(*a));
	struct idmap *m = NULL;
	char err[512];
	int rc;

	if (!a) {
		fputs("idmap check: out of memory\n", errf);
		return 1;
	}
	idmap_opts_default(&a->a_opts);
	rc = parse_args(argc, argv, a, out, errf);
	if (rc) {
		rc = rc == 1 ? 0 : 2;
		goto out;
	}
	if (idmap_load(a->a_file, &a->a_opts, &m, err, sizeof(err))) {
		fprintf(errf, "%s\n", err);
		rc = 1;
		goto out;
	}
	if (a->a_nids == 0)
		default_samples(m, a);
	print_summary(m, a, out);
	fprintf(out, "%-17s%-42s%s\n", "id", "request: as a client id",
		"reply: as a store id");
	for (size_t i = 0; i < a->a_nids; i++)
		print_sample(m, &a->a_ids[i], out);
	idmap_unref(m);
out:
	free(a);
	return rc;
}

int idmap_check_main(int argc, char **argv)
{
	int rc = idmap_check(argc, argv, stdout, stderr);

	fflush(stdout);
	return rc;
}
