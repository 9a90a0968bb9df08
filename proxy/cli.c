/*
 * proxy/cli.c — gridvfs, the admin command line: dispatches subcommands to
 * the module that owns them (idmap/, crypto/; cache/ and the control
 * socket as they land).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

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
"  version        print the version\n"
"  help           show this text\n"
"\n"
"Exit status: 0 on success, 1 when the command failed, 2 on a usage error.\n";

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
	if (!strcmp(argv[1], "cache"))
		return cache_cli_main(argc - 1, argv + 1);
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
