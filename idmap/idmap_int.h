/*
 * idmap/idmap_int.h — helpers shared by the files of idmap/ only (not part
 * of the public API): a strict line reader for map files, error message
 * formatting, and account name checks and resolution.
 */
#ifndef GRIDVFS_IDMAP_INT_H
#define GRIDVFS_IDMAP_INT_H

#include "idmap/idmap.h"

#include <stdarg.h>

struct idmap_lines {
	FILE *l_f;
	const char *l_path;
	unsigned l_no;                      /* number of the last line read */
	char l_buf[IDMAP_LINE_MAX + 2];
};

/* Open path for reading.  0, or -errno with "PATH: why" in err. */
int idmap_lines_open(struct idmap_lines *l, const char *path, char *err,
		     size_t errlen);
/*
 * Read the next line into l->l_buf (NUL-terminated, newline and a trailing
 * CR removed).  Returns 1 and *line, 0 at end of file, -EINVAL for a line
 * that is too long or holds control or NUL bytes, -errno for a read error;
 * err then holds "FILE:LINE: why".
 */
int idmap_lines_next(struct idmap_lines *l, char **line, char *err,
		     size_t errlen);
void idmap_lines_close(struct idmap_lines *l);

/* snprintf into err when err is non-NULL; returns -EINVAL for chaining. */
int idmap_errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Does s look like an account or group name ([A-Za-z_][A-Za-z0-9_.-]*$?)? */
bool idmap_name_valid(const char *s, size_t len);

/*
 * Resolve a user (getpwnam_r) or group (getgrnam_r) name.  For a user,
 * *gid gets its primary group (gid may be NULL).  0, -ENOENT or -ENOMEM.
 */
int idmap_user_lookup(const char *name, uint32_t *uid, uint32_t *gid);
int idmap_group_lookup(const char *name, uint32_t *gid);

#endif /* GRIDVFS_IDMAP_INT_H */
