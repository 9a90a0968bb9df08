/*
 * idmap/util.c — what the map and grid-map parsers share: a line reader that
 * refuses binary bytes and overlong lines without ever buffering more than
 * one line, error formatting, and account name checks and resolution.
 */
#include "idmap/idmap_int.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int idmap_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

int idmap_lines_open(struct idmap_lines *l, const char *path, char *err,
		     size_t errlen)
{
	int e;

	memset(l, 0, sizeof(*l));
	l->l_path = path;
	l->l_f = fopen(path, "re");
	if (!l->l_f) {
		e = errno;
		idmap_errf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	return 0;
}

void idmap_lines_close(struct idmap_lines *l)
{
	if (l->l_f)
		fclose(l->l_f);
	l->l_f = NULL;
}

/* Bytes a text line may hold: tab, printable ASCII, and UTF-8 (>= 0x80). */
static bool byte_ok(int c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* The file ended or failed: 0 at a clean end, -errno on a read error. */
static int lines_eof(struct idmap_lines *l, char *err, size_t errlen)
{
	int e = errno ? errno : EIO;

	if (!ferror(l->l_f))
		return 0;
	idmap_errf(err, errlen, "%s:%u: read error: %s", l->l_path,
		   l->l_no + 1, strerror(e));
	return -e;
}

int idmap_lines_next(struct idmap_lines *l, char **line, char *err,
		     size_t errlen)
{
	size_t n = 0;
	int c;

	errno = 0;
	c = getc(l->l_f);
	if (c == EOF)
		return lines_eof(l, err, errlen);
	l->l_no++;
	for (; c != EOF && c != '\n'; c = getc(l->l_f)) {
		if (n == IDMAP_LINE_MAX + 1) /* room for a CR before LF */
			goto too_long;
		l->l_buf[n++] = (char)c;
	}
	if (c == EOF && ferror(l->l_f))
		return lines_eof(l, err, errlen);
	if (n && l->l_buf[n - 1] == '\r')
		n--; /* CRLF files */
	if (n > IDMAP_LINE_MAX)
		goto too_long;
	l->l_buf[n] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (!byte_ok((unsigned char)l->l_buf[i]))
			return idmap_errf(err, errlen,
					  "%s:%u: binary byte 0x%02x in column %zu",
					  l->l_path, l->l_no,
					  (unsigned char)l->l_buf[i], i + 1);
	}
	*line = l->l_buf;
	return 1;
too_long:
	return idmap_errf(err, errlen, "%s:%u: line longer than %u bytes",
			  l->l_path, l->l_no, IDMAP_LINE_MAX);
}

bool idmap_name_valid(const char *s, size_t len)
{
	if (len == 0 || len > 255)
		return false;
	if (!(s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z') ||
	      (s[0] >= 'A' && s[0] <= 'Z')))
		return false;
	for (size_t i = 1; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '$' && i == len - 1)
			continue; /* Samba machine accounts */
		if (!(c == '_' || c == '.' || c == '-' ||
		      (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

/* A buffer size for the *_r calls; they report ERANGE when it is short. */
static size_t nss_bufsize(void)
{
	long n = sysconf(_SC_GETPW_R_SIZE_MAX);

	return n > 0 ? (size_t)n : 16384;
}

int idmap_user_lookup(const char *name, uint32_t *uid, uint32_t *gid)
{
	struct passwd pw, *res = NULL;
	size_t size = nss_bufsize();
	char *buf = NULL;
	int rc;

	for (;;) {
		char *nb = realloc(buf, size);

		if (!nb) {
			free(buf);
			return -ENOMEM;
		}
		buf = nb;
		rc = getpwnam_r(name, &pw, buf, size, &res);
		if (rc != ERANGE || size >= (1u << 20))
			break;
		size *= 2;
	}
	if (rc == 0 && res) {
		*uid = (uint32_t)pw.pw_uid;
		if (gid)
			*gid = (uint32_t)pw.pw_gid;
	}
	free(buf);
	return res ? 0 : (rc == ENOMEM ? -ENOMEM : -ENOENT);
}

int idmap_group_lookup(const char *name, uint32_t *gid)
{
	struct group gr, *res = NULL;
	size_t size = nss_bufsize();
	char *buf = NULL;
	int rc;

	for (;;) {
		char *nb = realloc(buf, size);

		if (!nb) {
			free(buf);
			return -ENOMEM;
		}
		buf = nb;
		rc = getgrnam_r(name, &gr, buf, size, &res);
		if (rc != ERANGE || size >= (1u << 20))
			break;
		size *= 2;
	}
	if (rc == 0 && res)
		*gid = (uint32_t)gr.gr_gid;
	free(buf);
	return res ? 0 : (rc == ENOMEM ? -ENOMEM : -ENOENT);
}
