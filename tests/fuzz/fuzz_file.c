/*
 * tests/fuzz/fuzz_file.c — input-as-a-file helper for the idmap and
 * grid-mapfile fuzz targets (see fuzz_file.h).
 */
#define _GNU_SOURCE
#include "tests/fuzz/fuzz_file.h"

#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

int fz_file_make(const uint8_t *data, size_t size, char *path, size_t plen)
{
	int fd = memfd_create("fuzz-input", MFD_CLOEXEC);
	size_t done = 0;

	if (fd < 0)
		return -1;
	while (done < size) {
		ssize_t k = write(fd, data + done, size - done);

		if (k <= 0) {
			close(fd);
			return -1;
		}
		done += (size_t)k;
	}
	snprintf(path, plen, "/proc/self/fd/%d", fd);
	return fd;
}

uint64_t fz_hash(const uint8_t *p, size_t n)
{
	uint64_t h = 14695981039346656037ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}
