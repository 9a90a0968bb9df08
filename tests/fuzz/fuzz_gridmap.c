/*
 * tests/fuzz/fuzz_gridmap.c — libFuzzer target: the input is a Globus
 * grid-mapfile.  When it loads, every DN line in it, decoded here
 * independently, must be found with exactly its account list, and the map
 * must hold no other entry.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "idmap/idmap.h"
#include "tests/fuzz/fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void gm_fail(const char *why, const char *dn)
{
	fprintf(stderr, "fuzz_gridmap: %s: \"%s\"\n", why, dn);
	abort();
}

static int gm_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decode the DN of a line that loaded (so it is well-formed); returns the
 * rest of the line after the closing quote. */
static const char *gm_dn(const char *p, char *dn)
{
	size_t n = 0;

	for (; *p != '"'; p++) {
		if (*p != '\\') {
			dn[n++] = *p;
		} else if (p[1] == 'x') {
			dn[n++] = (char)(gm_hex(p[2]) * 16 + gm_hex(p[3]));
			p += 3;
		} else {
			dn[n++] = *++p;
		}
	}
	dn[n] = '\0';
	return p + 1;
}

/* Check one line; returns 1 if it held an entry. */
static int gm_check_line(const struct idmap_gridmap *g, char *line, char *dn)
{
	const char *const *acc;
	const char *p = line;
	size_t n, i = 0, len;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '"')
		return 0;
	p = gm_dn(p + 1, dn);
	while (*p == ' ' || *p == '\t')
		p++;
	if (idmap_gridmap_lookup(g, dn, &acc, &n) || n < 1)
		gm_fail("DN of a loaded line not found", dn);
	/* The account field: up to a blank or the end, commas between. */
	for (;;) {
		len = strcspn(p, ", \t");
		if (i >= n || strlen(acc[i]) != len || memcmp(acc[i], p, len))
			gm_fail("account list differs", dn);
		i++;
		p += len;
		if (*p != ',')
			break;
		p++;
	}
	if (i != n)
		gm_fail("more accounts than the line has", dn);
	return 1;
}

static void gm_check(const struct idmap_gridmap *g, const uint8_t *data,
		     size_t size)
{
	char *text = malloc(size + 1), *dn = malloc(size + 1);
	char *first = malloc(size + 1), *line, *save = NULL;
	const char *const *acc;
	size_t entries = 0, n;
	struct idmap_peer_ids ids;

	if (!text || !dn || !first)
		goto out;
	first[0] = '\0';
	memcpy(text, data, size);
	text[size] = '\0';
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		size_t l = strlen(line);

		if (l && line[l - 1] == '\r')
			line[l - 1] = '\0';
		entries += (size_t)gm_check_line(g, line, dn);
		if (entries == 1 && !first[0])
			strcpy(first, dn);
	}
	if (entries != idmap_gridmap_count(g))
		gm_fail("entry count differs from the DN lines", "");
	if (idmap_gridmap_lookup(g, "", &acc, &n) != -ENOENT)
		gm_fail("the empty DN was found", "");
	/* Resolving accounts allocates and frees: run it on the first DN. */
	if (first[0] && idmap_gridmap_ids(g, first, &ids) == 0)
		idmap_peer_ids_clear(&ids);
out:
	free(first);
	free(dn);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct idmap_gridmap *g = NULL;
	char path[64], err[256];
	int fd, rc;

	fd = fz_file_make(data, size, path, sizeof(path));
	if (fd < 0)
		return 0;
	rc = idmap_gridmap_load(path, &g, err, sizeof(err));
	close(fd);
	if (rc)
		return 0;
	gm_check(g, data, size);
	idmap_gridmap_ref(g);
	idmap_gridmap_unref(g);
	idmap_gridmap_free(g);
	return 0;
}
