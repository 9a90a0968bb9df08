/*
 * tests/fuzz/standalone.c — runs a fuzz target without libFuzzer: main()
 * calls LLVMFuzzerTestOneInput once per file named on the command line (a
 * directory stands for the files in it), so `make check` can replay the
 * seed corpus and every saved crash input with the normal compiler.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Read the whole file into a malloc'd buffer; 0 or -errno. */
static int sa_read(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL, *nb;
	size_t cap = 0, n = 0, k;
	int rc = 0;

	if (!f)
		return -errno;
	do {
		if (n == cap) {
			cap = cap ? cap * 2 : 65536;
			nb = realloc(buf, cap);
			if (!nb) {
				rc = -ENOMEM;
				goto out;
			}
			buf = nb;
		}
		k = fread(buf + n, 1, cap - n, f);
		n += k;
	} while (k > 0);
	if (ferror(f))
		rc = -EIO;
out:
	fclose(f);
	if (rc) {
		free(buf);
		return rc;
	}
	*out = buf;
	*len = n;
	return 0;
}

static int sa_run_file(const char *path)
{
	uint8_t *buf = NULL, *exact;
	size_t len = 0;
	int rc = sa_read(path, &buf, &len);

	if (rc) {
		fprintf(stderr, "%s: %s\n", path, strerror(-rc));
		return 1;
	}
	/* An exact-size copy, as libFuzzer passes it, so a sanitizer build
	 * catches reads one byte past the input. */
	exact = malloc(len ? len : 1);
	if (!exact) {
		free(buf);
		return 1;
	}
	memcpy(exact, buf, len);
	free(buf);
	LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	return 0;
}

static int sa_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file in dir, in name order; returns the failures. */
static int sa_run_dir(const char *dir, unsigned *count)
{
	struct dirent *d;
	DIR *dp = opendir(dir);
	char **names = NULL, **nn, path[4096];
	size_t n = 0, cap = 0;
	int bad = 0;

	if (!dp) {
		fprintf(stderr, "%s: %s\n", dir, strerror(errno));
		return 1;
	}
	while ((d = readdir(dp))) {
		if (d->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			nn = realloc(names, cap * sizeof(*names));
			if (!nn)
				break;
			names = nn;
		}
		names[n] = strdup(d->d_name);
		if (names[n])
			n++;
	}
	closedir(dp);
	if (n)
		qsort(names, n, sizeof(*names), sa_cmp);
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		bad += sa_run_file(path);
		(*count)++;
		free(names[i]);
	}
	free(names);
	return bad;
}

int main(int argc, char **argv)
{
	unsigned count = 0;
	int bad = 0;
	struct stat st;

	for (int i = 1; i < argc; i++) {
		if (stat(argv[i], &st)) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			bad++;
		} else if (S_ISDIR(st.st_mode)) {
			bad += sa_run_dir(argv[i], &count);
		} else {
			bad += sa_run_file(argv[i]);
			count++;
		}
	}
	printf("%s: %u inputs run, %d unreadable\n", argv[0], count, bad);
	return bad ? 1 : 0;
}
