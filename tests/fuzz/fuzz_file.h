/*
 * tests/fuzz/fuzz_file.h — the map parsers take a path, so the idmap fuzz
 * targets hand them the input as an in-memory file (memfd) named through
 * /proc/self/fd: no disk I/O per execution and nothing left behind.
 */
#ifndef GRIDVFS_FUZZ_FILE_H
#define GRIDVFS_FUZZ_FILE_H

#include <stddef.h>
#include <stdint.h>

/* Write data into a fresh memfd; its path goes to path (>= 32 bytes).
 * Returns the fd (close it when done) or -1. */
int fz_file_make(const uint8_t *data, size_t size, char *path, size_t plen);

/* FNV-1a of the input: the targets draw options from it. */
uint64_t fz_hash(const uint8_t *p, size_t n);

#endif /* GRIDVFS_FUZZ_FILE_H */
