/*
 * proxy/config.c — gridvfsd's configuration file: "key = value" lines whose
 * keys are the long option names, turned into an argv that goes in front of
 * the command line's, so getopt sees the command line last and it wins.
 *
 * Hand-written rather than Debian's libinih (r55): its handler gets no line
 * number (INI_HANDLER_LINENO is 0 in Debian's build), lines are cut at 200
 * bytes and the rest parsed as a new line, indented lines silently continue
 * the previous value, and ';' starts an inline comment.  File:line on every
 * error and paths up to PATH_MAX matter more to operators than the ~200
 * lines of parsing below.
 */
#include "config.h"
#include "proxy/px.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A growing argv with a parallel "FILE:LINE" origin per item. */
struct cfg_vec {
	int v_n, v_cap;
	char **v_argv;
	char **v_where;
};

static int vec_push(struct cfg_vec *v, const char *item, const char *where)
{
	if (v->v_n + 2 > v->v_cap) {
		int cap = v->v_cap ? v->v_cap * 2 : 16;
		char **a = realloc(v->v_argv, sizeof(*a) * (size_t)cap);

		if (!a)
			return -ENOMEM;
		v->v_argv = a;
		a = realloc(v->v_where, sizeof(*a) * (size_t)cap);
		if (!a)
			return -ENOMEM;
		v->v_where = a;
		v->v_cap = cap;
	}
	v->v_argv[v->v_n] = strdup(item);
	v->v_where[v->v_n] = where ? strdup(where) : NULL;
	if (!v->v_argv[v->v_n] || (where && !v->v_where[v->v_n])) {
		free(v->v_argv[v->v_n]);
		free(v->v_where[v->v_n]);
		return -ENOMEM;
	}
	v->v_n++;
	v->v_argv[v->v_n] = NULL; /* argv convention: NULL-terminated */
	v->v_where[v->v_n] = NULL;
	return 0;
}

static void vec_free(struct cfg_vec *v)
{
	for (int i = 0; i < v->v_n; i++) {
		free(v->v_argv[i]);
		free(v->v_where[i]);
	}
	free(v->v_argv);
	free(v->v_where);
	memset(v, 0, sizeof(*v));
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Keys a file may not set: they act on the file itself or end the run. */
static bool key_forbidden(const char *k)
{
	static const char *const no[] = {"config", "check-config", "help",
					 "version"};

	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (!strcmp(k, no[i]))
			return true;
	return false;
}

static const struct option *key_find(const struct option *known,
				     const char *k)
{
	for (; known && known->name; known++)
		if (!strcmp(known->name, k))
			return known;
	return NULL;
}

/* yes/no for flags; -1 when it is neither. */
static int flag_value(const char *v)
{
	static const char *const t[] = {"yes", "true", "on", "1"};
	static const char *const f[] = {"no", "false", "off", "0"};

	for (int i = 0; i < 4; i++) {
		if (!strcasecmp(v, t[i]))
			return 1;
		if (!strcasecmp(v, f[i]))
			return 0;
	}
	return -1;
}

/*
 * Split one line (NUL-free, no newline) in place.  Returns 0 with *key and
 * *val set (*key NULL for a blank or comment line), or a message.
 */
static const char *line_split(char *s, char **key, char **val)
{
	char *p, *end, c;

	*key = *val = NULL;
	for (p = s; *p; p++)
		if ((unsigned char)*p < 0x20 && *p != '\t')
			return "control character (is this a text file?)";
	while (*s == ' ' || *s == '\t')
		s++;
	if (!*s || *s == '#')
		return NULL;
	if (*s == '[')
		return "section header where none is allowed";
	*key = s;
	while (*s && (islower((unsigned char)*s) || isdigit((unsigned char)*s) ||
		      *s == '-'))
		s++;
	if (s == *key) {
		*key = NULL;
		return "expected KEY = VALUE";
	}
	end = s;
	while (*s == ' ' || *s == '\t')
		s++;
	c = *s;
	*end = '\0'; /* the key, for the message or for use */
	if (c != '=')
		return c ? "expected KEY = VALUE (keys are lower-case long "
			   "option names)"
			 : "expected KEY = VALUE (flags too: KEY = yes)";
	s++;
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '"') {
		/* Quoted: \" and \\ are the only escapes; then a comment. */
		char *w = ++s;

		*val = w;
		for (; *s && *s != '"'; s++) {
			if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
				s++;
			*w++ = *s;
		}
		if (*s != '"')
			return "unterminated quoted value";
		*w = '\0';
		for (s++; *s == ' ' || *s == '\t'; s++)
			;
		if (*s && *s != '#')
			return "text after the closing quote";
		return **val ? NULL : "missing value";
	}
	*val = s;
	/* '#' after white space starts a comment, as in the shell. */
	for (p = s; *p; p++)
		if (*p == '#' && p > s && (p[-1] == ' ' || p[-1] == '\t')) {
			*p = '\0';
			break;
		}
	for (p = s + strlen(s); p > s && (p[-1] == ' ' || p[-1] == '\t');)
		*--p = '\0';
	return *s ? NULL : "missing value";
}

/*
 * "[export NAME]" (surrounding blanks and a trailing comment allowed): NAME
 * into name (letters, digits, '.', '_', '-'; 1..PX_EXPORT_NAME_MAX).  NULL,
 * or why it is not one.
 */
static const char *section_split(char *s, char *name, size_t namelen)
{
	char *p, *e;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s != '[')
		return "";
	if (strncmp(s, "[export", 7) ||
	    (s[7] != ' ' && s[7] != '\t' && s[7] != ']'))
		return "unknown section (only [export NAME] sections exist)";
	for (p = s + 7; *p == ' ' || *p == '\t'; p++)
		;
	for (e = p; isalnum((unsigned char)*e) || *e == '.' || *e == '_' ||
		    *e == '-';
	     e++)
		;
	if (e == p || (size_t)(e - p) >= namelen)
		return "[export NAME]: NAME is 1-63 letters, digits, '.', '_' "
		       "or '-'";
	memcpy(name, p, (size_t)(e - p));
	name[e - p] = '\0';
	while (*e == ' ' || *e == '\t')
		e++;
	if (*e != ']')
		return "[export NAME]: expected ']' after the name";
	for (e++; *e == ' ' || *e == '\t'; e++)
		;
	return *e && *e != '#' ? "text after the section header" : NULL;
}

/* Options an [export NAME] section may set: the ones that belong to one
 * upstream and its policies.  Everything else is the daemon's. */
static bool key_per_export(const char *k)
{
	static const char *const ok[] = {
		"upstream", "mount-upstream", "upstream-timeout",
		"upstream-privport", "tls", "tls-cert", "tls-key", "tls-ca",
		"tls-crl", "tls-server-name", "map", "squash", "anonuid",
		"anongid", "unmapped", "cache-dir", "cache-size",
		"cache-block", "consistency", "immutable-ttl", "access-ttl",
		"write-policy", "dirty-max",
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (!strcmp(k, ok[i]))
			return true;
	return false;
}

/* Check one key = value against the option table and append its items. */
static const char *line_apply(const struct option *known, const char *key,
			      const char *val, const char *where,
			      struct cfg_vec *v, int *rc, unsigned *seen,
			      unsigned lineno, char *dup, size_t duplen)
{
	const struct option *o;
	char item[PX_CONFIG_MAX_LINE + 8];

	if (key_forbidden(key))
		return "not allowed in a configuration file";
	if (!(o = key_find(known, key)))
		return "unknown key (see gridvfsd --help)";
	if (seen[o - known]) {
		snprintf(dup, duplen, "set twice (first at line %u)",
			 seen[o - known]);
		return dup;
	}
	seen[o - known] = lineno;
	if (o->has_arg == no_argument) {
		int f = flag_value(val);

		if (f < 0)
			return "a flag takes yes or no (true/false, on/off, 1/0)";
		snprintf(item, sizeof(item), "--%s", key);
		/* "no" is the default: nothing to pass (flags cannot be
		 * turned off on the command line either). */
		*rc = f ? vec_push(v, item, where) : 0;
	} else if (o->has_arg == optional_argument) {
		snprintf(item, sizeof(item), "--%s=%s", key, val);
		*rc = vec_push(v, item, where);
	} else {
		snprintf(item, sizeof(item), "--%s", key);
		*rc = vec_push(v, item, where);
		if (!*rc)
			*rc = vec_push(v, val, where);
	}
	return NULL;
}

/* The [export NAME] sections of a file, in file order. */
struct cfg_exports {
	unsigned n;
	struct px_config_export e[PX_EXPORTS_MAX];
	struct cfg_vec v[PX_EXPORTS_MAX];
};

static void exports_free(struct cfg_exports *x)
{
	for (unsigned i = 0; i < x->n; i++) {
		free(x->e[i].ce_where);
		free(x->e[i].ce_path);
		free(x->e[i].ce_upstream_path);
		vec_free(&x->v[i]);
	}
	x->n = 0;
}

/* path / upstream-path in a section; NULL or why not. */
static const char *export_key(struct px_config_export *e, const char *key,
			      const char *val, unsigned lineno, unsigned *seen2,
			      int *rc)
{
	bool up = !strcmp(key, "upstream-path");
	char **dst = up ? &e->ce_upstream_path : &e->ce_path;

	if (seen2[up])
		return "set twice in this section";
	seen2[up] = lineno;
	if (val[0] != '/')
		return "an absolute path (starting with '/')";
	if (strlen(val) > MNT3_PATHLEN)
		return "longer than MOUNT's 1024 bytes";
	if (!(*dst = strdup(val)))
		*rc = -ENOMEM;
	/* "/images/" and "/images" are one export. */
	for (size_t n = strlen(*dst); *dst && n > 1 && (*dst)[n - 1] == '/';)
		(*dst)[--n] = '\0';
	return NULL;
}

/* Parse an open file into v (and its sections into x, NULL: sections are
 * an error); -EINVAL with "FILE:LINE: KEY: why" in err. */
static int file_parse(FILE *f, const char *path, const struct option *known,
		      struct cfg_vec *v, struct cfg_exports *x, char *err,
		      size_t errlen)
{
	struct cfg_vec *cur = v;
	struct px_config_export *ex = NULL;
	unsigned seen2[2] = {0, 0};
	char name[PX_EXPORT_NAME_MAX];
	char *line = NULL, *key, *val, where[PX_CONFIG_MAX_LINE];
	size_t cap = 0, total = 0;
	ssize_t n;
	unsigned lineno = 0;
	int rc = 0;
	const char *why;
	char dup[64];
	unsigned *seen; /* per option: the line that set it, 0: none */
	int nknown = 0;

	for (const struct option *k = known; k && k->name; k++)
		nknown++;
	if (!(seen = calloc((size_t)nknown + 1, sizeof(*seen)))) {
		seterr(err, errlen, "out of memory");
		return -ENOMEM;
	}
	while ((n = getline(&line, &cap, f)) >= 0) {
		lineno++;
		total += (size_t)n;
		snprintf(where, sizeof(where), "%s:%u", path, lineno);
		if (total > PX_CONFIG_MAX_SIZE) {
			seterr(err, errlen, "%s: file larger than %u bytes",
			       where, PX_CONFIG_MAX_SIZE);
			rc = -EFBIG;
			goto out;
		}
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		if (n > 0 && line[n - 1] == '\r') /* edited on Windows */
			line[--n] = '\0';
		if (lineno == 1 && !strncmp(line, "\xef\xbb\xbf", 3))
			memmove(line, line + 3, (size_t)(n -= 3) + 1);
		if (strlen(line) != (size_t)n) {
			seterr(err, errlen, "%s: NUL byte (is this a text "
			       "file?)", where);
			rc = -EINVAL;
			goto out;
		}
		if (n >= PX_CONFIG_MAX_LINE) {
			seterr(err, errlen, "%s: line longer than %d bytes",
			       where, PX_CONFIG_MAX_LINE - 1);
			rc = -EINVAL;
			goto out;
		}
		key = NULL;
		why = section_split(line, name, sizeof(name));
		if (!why) {
			/* A new [export NAME] section: its own items. */
			if (!x)
				why = "[export NAME] sections belong in "
				      "gridvfsd's own configuration file";
			else if (x->n == PX_EXPORTS_MAX)
				why = "too many [export] sections";
			for (unsigned i = 0; !why && i < x->n; i++)
				if (!strcmp(x->e[i].ce_name, name))
					why = "a second [export] section with "
					      "this name";
			if (why)
				goto bad;
			ex = &x->e[x->n];
			cur = &x->v[x->n++];
			memset(ex, 0, sizeof(*ex));
			memset(cur, 0, sizeof(*cur));
			snprintf(ex->ce_name, sizeof(ex->ce_name), "%s", name);
			if (!(ex->ce_where = strdup(where)))
				rc = -ENOMEM;
			memset(seen, 0, sizeof(*seen) * ((size_t)nknown + 1));
			seen2[0] = seen2[1] = 0;
			if (rc)
				goto bad;
			continue;
		}
		if (*why)
			goto bad;
		why = line_split(line, &key, &val);
		if (!why && key && ex &&
		    (!strcmp(key, "path") || !strcmp(key, "upstream-path")))
			why = export_key(ex, key, val, lineno, seen2, &rc);
		else if (!why && key && ex && !key_per_export(key) &&
			 key_find(known, key) && !key_forbidden(key))
			why = "daemon-wide: set it before the first [export] "
			      "section";
		else if (!why && key)
			why = line_apply(known, key, val, where, cur, &rc, seen,
					 lineno, dup, sizeof(dup));
bad:
		if (why || rc) {
			if (key && why)
				seterr(err, errlen, "%s: %s: %s", where, key, why);
			else
				seterr(err, errlen, "%s: %s", where,
				       why ? why : strerror(-rc));
			rc = rc ? rc : -EINVAL;
			goto out;
		}
	}
	if (ferror(f)) {
		rc = -errno;
		seterr(err, errlen, "%s: %s", path, strerror(errno));
	}
	for (unsigned i = 0; !rc && x && i < x->n; i++)
		if (!x->e[i].ce_path) {
			seterr(err, errlen, "%s: [export %s]: no 'path = /DIR' "
			       "(the path clients mount)", x->e[i].ce_where,
			       x->e[i].ce_name);
			rc = -EINVAL;
		}
out:
	free(seen);
	free(line);
	return rc;
}

static int config_read(const char *path, bool must_exist,
		       const struct option *known, struct cfg_vec *v,
		       struct cfg_exports *x, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	struct stat st;
	int rc;

	if (!f) {
		rc = -errno;
		if (rc == -ENOENT && !must_exist)
			return 0;
		seterr(err, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		fclose(f);
		seterr(err, errlen, "%s: is a directory", path);
		return -EISDIR;
	}
	rc = file_parse(f, path, known, v, x, err, errlen);
	fclose(f);
	return rc;
}

int px_config_argv(const char *path, bool must_exist,
		   const struct option *known, int *argc_out, char ***argv_out,
		   char *err, size_t errlen)
{
	struct cfg_vec v = {0};
	int rc = config_read(path, must_exist, known, &v, NULL, err, errlen);

	if (!rc && !v.v_argv && !(v.v_argv = calloc(1, sizeof(char *))))
		rc = -ENOMEM;
	if (rc) {
		vec_free(&v);
		return rc;
	}
	for (int i = 0; i < v.v_n; i++)
		free(v.v_where[i]);
	free(v.v_where);
	*argc_out = v.v_n;
	*argv_out = v.v_argv;
	return 0;
}

void px_config_argv_free(int argc, char **argv)
{
	for (int i = 0; argv && i < argc; i++)
		free(argv[i]);
	free(argv);
}

/* getopt's view of the table: "c:" plus each one-letter option. */
static void short_opts(const struct option *known, char *buf, size_t len)
{
	size_t n = 0;

	buf[n++] = ':'; /* report a missing argument as ':', quietly */
	buf[n++] = 'c';
	buf[n++] = ':';
	for (; known && known->name && n + 3 < len; known++)
		if (known->val > 0 && known->val < 128 &&
		    isalnum(known->val) && known->val != 'c') {
			buf[n++] = (char)known->val;
			if (known->has_arg != no_argument)
				buf[n++] = ':';
		}
	buf[n] = '\0';
}

/* The last -c FILE / --config FILE on the command line, or NULL. */
static const char *config_option(int argc, char **argv,
				 const struct option *known)
{
	char shorts[128];
	const char *path = NULL;
	char **copy = calloc((size_t)argc + 1, sizeof(*copy));
	int c, n = 0;
	struct option *lo;

	for (const struct option *k = known; k && k->name; k++)
		n++;
	lo = calloc((size_t)n + 2, sizeof(*lo));
	if (!copy || !lo) {
		free(copy);
		free(lo);
		return NULL;
	}
	memcpy(copy, argv, sizeof(*copy) * (size_t)argc);
	memcpy(lo, known, sizeof(*lo) * (size_t)n);
	if (!key_find(known, "config"))
		lo[n] = (struct option){"config", required_argument, NULL, 'c'};
	short_opts(known, shorts, sizeof(shorts));
	opterr = 0;
	optind = 0; /* GNU: full re-initialisation */
	while ((c = getopt_long(argc, copy, shorts, lo, NULL)) != -1)
		if (c == 'c')
			path = optarg;
	opterr = 1;
	optind = 0;
	free(copy);
	free(lo);
	return path;
}

int px_config_load(struct px_config *pc, int argc, char **argv,
		   const struct option *known, char *err, size_t errlen)
{
	struct cfg_vec v = {0};
	const char *path = config_option(argc, argv, known);
	bool must_exist = path != NULL;
	int rc;

	struct cfg_exports *x = calloc(1, sizeof(*x));

	memset(pc, 0, sizeof(*pc));
	if (!x)
		return -ENOMEM;
	if (!path)
		path = PX_CONFIG_PATH;
	if ((rc = vec_push(&v, argc > 0 ? argv[0] : "gridvfsd", NULL)))
		goto fail;
	if ((rc = config_read(path, must_exist, known, &v, x, err, errlen)))
		goto fail;
	pc->pc_file_items = v.v_n - 1;
	for (int i = 1; i < argc; i++)
		if ((rc = vec_push(&v, argv[i], NULL)))
			goto fail;
	if (!(pc->pc_path = strdup(path))) {
		rc = -ENOMEM;
		goto fail;
	}
	pc->pc_argc = v.v_n;
	pc->pc_argv = v.v_argv;
	pc->pc_where = v.v_where;
	if (x->n && !(pc->pc_exports = calloc(x->n, sizeof(*pc->pc_exports)))) {
		rc = -ENOMEM;
		memset(&v, 0, sizeof(v));
		px_config_free(pc);
		goto fail;
	}
	for (unsigned i = 0; i < x->n; i++) {
		pc->pc_exports[i] = x->e[i];
		pc->pc_exports[i].ce_argc = x->v[i].v_n;
		pc->pc_exports[i].ce_argv = x->v[i].v_argv;
		pc->pc_exports[i].ce_witems = x->v[i].v_where;
	}
	pc->pc_nexports = x->n;
	free(x);
	return 0;
fail:
	if (rc == -ENOMEM)
		seterr(err, errlen, "out of memory");
	vec_free(&v);
	exports_free(x);
	free(x);
	return rc;
}

void px_config_free(struct px_config *pc)
{
	struct cfg_vec v = {pc->pc_argc, pc->pc_argc, pc->pc_argv,
			    pc->pc_where};

	vec_free(&v);
	for (unsigned i = 0; i < pc->pc_nexports; i++) {
		struct px_config_export *e = &pc->pc_exports[i];
		struct cfg_vec ev = {e->ce_argc, e->ce_argc, e->ce_argv,
				     e->ce_witems};

		vec_free(&ev);
		free(e->ce_where);
		free(e->ce_path);
		free(e->ce_upstream_path);
	}
	free(pc->pc_exports);
	free(pc->pc_path);
	memset(pc, 0, sizeof(*pc));
}

int px_config_for_export(const struct px_config *pc, unsigned i,
			 struct px_config *out)
{
	const struct px_config_export *e = &pc->pc_exports[i];
	struct cfg_vec v = {0};
	int rc = 0;

	memset(out, 0, sizeof(*out));
	for (int k = 0; !rc && k < pc->pc_argc; k++)
		rc = vec_push(&v, pc->pc_argv[k], pc->pc_where[k]);
	for (int k = 0; !rc && k < e->ce_argc; k++)
		rc = vec_push(&v, e->ce_argv[k], e->ce_witems[k]);
	if (!rc && !(out->pc_path = strdup(pc->pc_path ? pc->pc_path : "")))
		rc = -ENOMEM;
	if (rc) {
		vec_free(&v);
		free(out->pc_path);
		out->pc_path = NULL;
		return rc;
	}
	out->pc_argc = v.v_n;
	out->pc_argv = v.v_argv;
	out->pc_where = v.v_where;
	out->pc_file_items = pc->pc_file_items;
	return 0;
}

const char *px_config_where(const struct px_config *pc, int idx)
{
	if (!pc || !pc->pc_where || idx < 0 || idx >= pc->pc_argc)
		return NULL;
	return pc->pc_where[idx];
}

/* Print a value so that px_config_argv reads it back unchanged. */
static void value_print(FILE *out, const char *s)
{
	bool plain = *s && !strchr(s, '"') && !strchr(s, '\\') &&
		     s[0] != ' ' && s[0] != '\t' && !strstr(s, " #") &&
		     !strstr(s, "\t#") && s[strlen(s) - 1] != ' ' &&
		     s[strlen(s) - 1] != '\t';

	if (plain) {
		fputs(s, out);
		return;
	}
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', out);
		fputc(*s, out);
	}
	fputc('"', out);
}

int px_config_dump(FILE *out, const struct px_config *pc,
		   const struct option *known)
{
	int n = 0, c, idx;
	char shorts[128];
	char **copy;
	const char **val;
	int *from;

	for (const struct option *k = known; k && k->name; k++)
		n++;
	copy = calloc((size_t)pc->pc_argc + 1, sizeof(*copy));
	val = calloc((size_t)n + 1, sizeof(*val));
	from = calloc((size_t)n + 1, sizeof(*from));
	if (!copy || !val || !from) {
		free(copy), free(val), free(from);
		return -ENOMEM;
	}
	/* getopt itself decides what each item means (abbreviations,
	 * --key=value, -F), so the dump cannot disagree with the parse. */
	memcpy(copy, pc->pc_argv, sizeof(*copy) * (size_t)pc->pc_argc);
	short_opts(known, shorts, sizeof(shorts));
	opterr = 0;
	optind = 0;
	while (idx = -1,
	       (c = getopt_long(pc->pc_argc, copy, shorts, known, &idx)) != -1) {
		if (idx < 0)
			for (int i = 0; i < n; i++)
				if (known[i].val == c)
					idx = i;
		if (idx < 0 || c == '?' || c == ':')
			continue;
		val[idx] = known[idx].has_arg == no_argument ? "yes"
			   : optarg				  ? optarg
								  : "";
		from[idx] = optind - 1;
	}
	opterr = 1;
	optind = 0;
	fprintf(out, "# gridvfsd effective configuration (file: %s)\n"
		     "# options not listed have their defaults "
		     "(gridvfsd --help)\n",
		pc->pc_path ? pc->pc_path : "none");
	for (int i = 0; i < n; i++) {
		const char *w;

		if (!val[i] || key_forbidden(known[i].name))
			continue;
		fprintf(out, "%s = ", known[i].name);
		value_print(out, val[i]);
		w = px_config_where(pc, from[i]);
		fprintf(out, "\t# %s\n", w ? w : "command line");
	}
	free(copy), free(val), free(from);
	for (unsigned i = 0; i < pc->pc_nexports; i++) {
		const struct px_config_export *e = &pc->pc_exports[i];

		fprintf(out, "\n[export %s]\t# %s\npath = ", e->ce_name,
			e->ce_where);
		value_print(out, e->ce_path);
		fputc('\n', out);
		if (e->ce_upstream_path) {
			fputs("upstream-path = ", out);
			value_print(out, e->ce_upstream_path);
			fputc('\n', out);
		}
		/* The section's items as line_apply() made them: "--key"
		 * and a value, "--key=value", or a lone flag. */
		for (int k = 0; k < e->ce_argc; k++) {
			const char *it = e->ce_argv[k] + 2, *eq = strchr(it, '=');
			const struct option *o = key_find(known, it);

			if (eq) {
				fprintf(out, "%.*s = ", (int)(eq - it), it);
				value_print(out, eq + 1);
			} else if (o && o->has_arg == required_argument &&
				   k + 1 < e->ce_argc) {
				fprintf(out, "%s = ", it);
				value_print(out, e->ce_argv[++k]);
			} else {
				fprintf(out, "%s = yes", it);
			}
			fprintf(out, "\t# %s\n", e->ce_witems[k]);
		}
	}
	return ferror(out) ? -EIO : 0;
}
