/*
 * proxy/cli.c — gridvfs, the admin command line: dispatches subcommands to
 * the module that owns them (idmap/, crypto/; cache/ and the control
 * socket as they land).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cache/cache.h"
#include "crypto/tls.h"
#include "idmap/idmap.h"

static const char usage[] =
"Usage: gridvfs COMMAND [ARGS]\n"
"\n"
"The gridvfs administration tool.\n"
"\n"
"Commands:\n"
"  idmap check FILE [OPTIONS] [uid:N|gid:N ...]\n"
"                 validate a uid/gid map file and show how ids map both\n"
"                 ways ('gridvfs idmap check --help')\n"
"  ca init DIR    create a small certificate authority for quick starts\n"
"  ca issue DIR --name NAME [--server HOSTNAME] [--days N]\n"
"                 issue a node (client) or server certificate and print\n"
"                 the subject DN to put in a grid-mapfile\n"
"  ca revoke DIR --name NAME\n"
"                 revoke a certificate into DIR/crl.pem\n"
"  cache stat|verify|evict DIR [--all|--bytes N]\n"
"                 inspect, check (every block's CRC, length, version) or\n"
"                 shrink a cache directory ('gridvfs cache --help')\n"
"  cache prefetch --proxy HOST:PORT --export PATH FILE\n"
"                 warm a running proxy's cache with FILE, pipelined\n"
"  meta scan|show|record|attach ...\n"
"                 VM-image metadata: zero map, block hashes, prefetch\n"
"                 profile ('gridvfs meta --help'; docs/metadata.md)\n"
"  status [--json] [--socket PATH]\n"
"                 a running gridvfsd's figures: connections, outstanding\n"
"                 calls, per-procedure counts and latency percentiles,\n"
"                 upstream links, cache; PATH defaults to the one socket\n"
"                 in /run/gridvfs\n"
"  version        print the version\n"
"  help           show this text\n"
"\n"
"Exit status: 0 on success, 1 when the command failed, 2 on a usage error.\n";

/* The only socket in /run/gridvfs, or an explanation. */
static int default_socket(char *out, size_t len)
{
	DIR *d = opendir("/run/gridvfs");
	struct dirent *e;
	int n = 0;

	if (!d) {
		fprintf(stderr, "gridvfs status: /run/gridvfs: %s (is gridvfsd "
				"running? else give --socket PATH)\n",
			strerror(errno));
		return -1;
	}
	while ((e = readdir(d)))
		if (strstr(e->d_name, ".sock")) {
			if (n++ == 0)
				snprintf(out, len, "/run/gridvfs/%s", e->d_name);
			else
				fprintf(stderr, "%s/run/gridvfs/%s\n",
					n == 2 ? "gridvfs status: several daemons; "
						 "choose with --socket:\n  "
					       : "  ",
					e->d_name);
		}
	closedir(d);
	if (n == 1)
		return 0;
	if (n == 0)
		fprintf(stderr, "gridvfs status: no daemon socket in "
				"/run/gridvfs\n");
	else
		fprintf(stderr, "  %s\n", out);
	return -1;
}

static int status_main(int argc, char **argv)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const char *path = NULL;
	char buf[4096], def[300];
	bool json = false;
	int fd;
	ssize_t n;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--socket") && i + 1 < argc)
			path = argv[++i];
		else {
			fprintf(stderr, "usage: gridvfs status [--json] "
					"[--socket PATH]\n");
			return 2;
		}
	}
	if (!path) {
		if (default_socket(def, sizeof(def)))
			return 1;
		path = def;
	}
	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "gridvfs status: socket path too long\n");
		return 2;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "gridvfs status: %s: %s\n", path, strerror(errno));
		return 1;
	}
	n = snprintf(buf, sizeof(buf), json ? "status json\n" : "status\n");
	if (write(fd, buf, (size_t)n) != n) {
		fprintf(stderr, "gridvfs status: %s: %s\n", path, strerror(errno));
		return 1;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, (size_t)n, stdout);
	close(fd);
	return n < 0 ? 1 : 0;
}

int prefetch_main(int argc, char **argv); /* proxy/prefetch.c */

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "-h")) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
		printf("gridvfs %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "status"))
		return status_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "cache") && argc > 2 &&
	    !strcmp(argv[2], "prefetch"))
		return prefetch_main(argc - 2, argv + 2);
	if (!strcmp(argv[1], "cache"))
		return cache_cli_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "meta"))
		return cache_meta_cli_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "ca"))
		return tls_ca_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "idmap")) {
		if (argc >= 3 && !strcmp(argv[2], "check"))
			return idmap_check_main(argc - 2, argv + 2);
		fprintf(stderr, "gridvfs idmap: unknown subcommand%s%s\n"
				"Usage: gridvfs idmap check FILE ...\n",
			argc >= 3 ? " " : "", argc >= 3 ? argv[2] : "");
		return 2;
	}
	fprintf(stderr, "gridvfs: unknown command '%s'\nTry 'gridvfs help'.\n",
		argv[1]);
	return 2;
}
