/*
 * proxy/main.c — gridvfsd: options, detaching, the pid file, then the
 * event loop.  Start-up failures are reported before detaching, so an init
 * system or a script sees them as a non-zero exit.
 */
#include "config.h"
#include "proxy/px.h"
#include "proxy/zlink.h"
#include "proxy/core.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * The pid file is often in a directory others can write (/tmp, a shared
 * /run): a symlink or hard link planted there must not make root
 * overwrite its target, and a FIFO must not hang the start.  So: no
 * symlink followed, no blocking open, only a regular file with one link,
 * truncated only after those checks.
 */
static int pidfile_write(const char *path)
{
	char buf[32];
	struct stat st;
	int fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK |
				    O_CLOEXEC, 0644);
	int n;

	if (fd < 0) /* ENXIO: a FIFO nobody reads */
		return errno == ENXIO ? -EPERM : -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
		close(fd);
		return -EPERM;
	}
	if (ftruncate(fd, 0) < 0) {
		int err = errno;

		close(fd);
		return -err;
	}
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (write(fd, buf, (size_t)n) != n) {
		int err = errno;

		close(fd);
		return -err;
	}
	return close(fd) < 0 ? -errno : 0;
}

/*
 * Detach: fork twice, new session, stdio on /dev/null.  The parent waits
 * on a pipe for the child's start-up verdict so its exit status is true.
 */
static int daemonize(int *notify_fd)
{
	int p[2];
	pid_t pid;
	char verdict = 1;

	if (pipe(p) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		close(p[1]);
		if (read(p[0], &verdict, 1) != 1)
			verdict = 1;
		_exit(verdict);
	}
	close(p[0]);
	if (setsid() < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0)
		_exit(0);
	if (chdir("/") < 0)
		return -errno;
	int fd = open("/dev/null", O_RDWR);

	/* stderr stays until start-up is over (px_log_detached()). */
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		if (fd > 2)
			close(fd);
	}
	*notify_fd = p[1];
	return 0;
}

void px_log_detached(void)
{
	int fd;

	px_log_startup(false);
	fflush(stderr);
	if ((fd = open("/dev/null", O_RDWR)) >= 0) {
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
}

/* Does export e's section set --key itself? */
static bool section_sets(const struct px_config_export *e, const char *key)
{
	size_t n = strlen(key);

	for (int i = 0; i < e->ce_argc; i++)
		if (!strncmp(e->ce_argv[i], "--", 2) &&
		    !strncmp(e->ce_argv[i] + 2, key, n) &&
		    (e->ce_argv[i][2 + n] == '\0' || e->ce_argv[i][2 + n] == '='))
			return true;
	return false;
}

/* Is the daemon's role (the last --role of file and command line) server? */
static bool role_server(const struct px_config *pc)
{
	const char *role = NULL;

	for (int i = 1; i < pc->pc_argc; i++) {
		if (!strcmp(pc->pc_argv[i], "--role") && i + 1 < pc->pc_argc)
			role = pc->pc_argv[++i];
		else if (!strncmp(pc->pc_argv[i], "--role=", 7))
			role = pc->pc_argv[i] + 7;
	}
	return role && !strcmp(role, "server");
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/*
 * Options for export i: the daemon's argv, then its section (which wins),
 * checked as a whole.  0, 1 (--help/--version served), or -errno after a
 * message naming the section.
 */
static int export_opts(const struct px_config *pc, unsigned i,
		       struct px_opts *o)
{
	const struct px_config_export *e = &pc->pc_exports[i];
	static const char *const daemon_tls[] = {"tls", "tls-cert", "tls-key",
						 "tls-ca", "tls-crl"};
	struct px_config epc;
	int rc;

	memset(o, 0, sizeof(*o));
	for (size_t k = 0; role_server(pc) && k < 5; k++)
		if (section_sets(e, daemon_tls[k])) {
			fprintf(stderr, "gridvfsd: %s: [export %s]: %s: the "
					"server role's TLS is the daemon's (a "
					"client is accepted before it names an "
					"export); set it before the first "
					"section\n", e->ce_where, e->ce_name,
				daemon_tls[k]);
			return -EINVAL;
		}
	if (px_config_for_export(pc, i, &epc))
		return -ENOMEM;
	rc = px_opts_parse(o, epc.pc_argc, epc.pc_argv, &epc);
	px_config_free(&epc);
	if (rc) {
		if (rc < 0)
			fprintf(stderr, "gridvfsd: in [export %s] (%s)\n",
				e->ce_name, e->ce_where);
		return rc;
	}
	if (!(o->o_export_name = strdup(e->ce_name)) ||
	    !(o->o_export_path = strdup(e->ce_path)) ||
	    (e->ce_upstream_path &&
	     !(o->o_upstream_path = dup_or_null(e->ce_upstream_path))))
		return -ENOMEM;
	/* A daemon-wide cache-dir is the parent of each export's cache. */
	if (o->o_cache_dir && !section_sets(e, "cache-dir")) {
		size_t n = strlen(o->o_cache_dir) + strlen(e->ce_name) + 2;
		char *d = malloc(n);

		if (!d)
			return -ENOMEM;
		snprintf(d, n, "%s/%s", o->o_cache_dir, e->ce_name);
		free(o->o_cache_dir);
		o->o_cache_dir = d;
	}
	return 0;
}

/* What must differ between exports. */
static int exports_check(const struct px_config *pc, struct px_opts *const *eo,
			 unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		for (unsigned j = 0; j < i; j++) {
			const char *w = pc->pc_exports[i].ce_where;

			if (!strcmp(eo[i]->o_export_path, eo[j]->o_export_path)) {
				fprintf(stderr, "gridvfsd: %s: [export %s]: path "
						"%s is export %s's already\n",
					w, eo[i]->o_export_name,
					eo[i]->o_export_path,
					eo[j]->o_export_name);
				return -EINVAL;
			}
			if (eo[i]->o_cache_dir && eo[j]->o_cache_dir &&
			    !strcmp(eo[i]->o_cache_dir, eo[j]->o_cache_dir)) {
				fprintf(stderr, "gridvfsd: %s: [export %s]: "
						"cache-dir %s is export %s's "
						"already (one cache per export)\n",
					w, eo[i]->o_export_name,
					eo[i]->o_cache_dir,
					eo[j]->o_export_name);
				return -EINVAL;
			}
		}
	return 0;
}

/* Every export's options from a loaded configuration (one entry when it
 * has no sections).  0, 1 (--help/--version served) or -errno after a
 * message on stderr; *neo entries of eo are set either way. */
static int parse_all(const struct px_config *pc, struct px_opts **eo,
		     unsigned *neo)
{
	unsigned n = pc->pc_nexports ? pc->pc_nexports : 1;
	int rc = 0;

	*neo = 0;
	for (unsigned i = 0; !rc && i < n; i++) {
		if (!(eo[i] = calloc(1, sizeof(**eo))))
			return -ENOMEM;
		++*neo;
		/* The file's items come first: the command line wins. */
		rc = pc->pc_nexports ? export_opts(pc, i, eo[i])
				     : px_opts_parse(eo[i], pc->pc_argc,
						     pc->pc_argv, pc);
	}
	if (!rc && pc->pc_nexports)
		rc = exports_check(pc, eo, *neo);
	return rc;
}

void px_opts_array_free(struct px_opts **eo, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		px_opts_free(eo[i]);
		free(eo[i]);
	}
}

/* What SIGHUP reads again: the same file and command line. */
static int saved_argc;
static char **saved_argv;

int px_reload_opts(struct px_opts **eo, unsigned *neo)
{
	struct px_config pc;
	char err[PX_CONFIG_MAX_LINE + 256], line[1024];
	int rc, saved = -1;
	FILE *t;

	*neo = 0;
	if ((rc = px_config_load(&pc, saved_argc, saved_argv,
				 px_opts_table(), err, sizeof(err)))) {
		px_err("SIGHUP: %s", err);
		return rc;
	}
	/* The option parser reports on stderr, which a daemon has closed:
	 * catch its lines for the log. */
	fflush(stderr);
	if ((t = tmpfile()) && (saved = dup(2)) >= 0)
		dup2(fileno(t), 2);
	rc = parse_all(&pc, eo, neo);
	px_config_free(&pc);
	fflush(stderr);
	if (saved >= 0) {
		dup2(saved, 2);
		close(saved);
		rewind(t);
		while (fgets(line, sizeof(line), t)) {
			line[strcspn(line, "\n")] = '\0';
			if (strncmp(line, "Try '", 5))
				px_err("SIGHUP: %s",
				       strncmp(line, "gridvfsd: ", 10) ? line
								   : line + 10);
		}
	}
	if (t)
		fclose(t);
	if (rc) {
		px_opts_array_free(eo, *neo);
		*neo = 0;
		return rc < 0 ? rc : -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct px_opts o, *eo[PX_EXPORTS_MAX];
	struct px_config pc;
	char err[PX_CONFIG_MAX_LINE + 256];
	int notify_fd = -1;
	unsigned neo = 0;
	int rc;

	/* Records of up to a MiB are allocated and freed all the time (READ
	 * and WRITE data): glibc would mmap and munmap each (or trim the heap
	 * after each), and every page of every record would fault in anew.
	 * Keep them in the heap, and never trim it during a burst: the
	 * loop's timer gives free memory back once the daemon is quiet
	 * (px_mem_tick; docs/benchmarks.md: a fifth of the cold read path's
	 * CPU was page faults). */
	mallopt(M_MMAP_THRESHOLD, 8 << 20);
	mallopt(M_TRIM_THRESHOLD, 1 << 30);
	px_peer_note_start(); /* before --user changes who we are */
	rc = px_config_load(&pc, argc, argv, px_opts_table(), err,
			    sizeof(err));
	if (rc) {
		fprintf(stderr, "gridvfsd: %s\n", err);
		return 2;
	}
	saved_argc = argc;
	saved_argv = argv;
	rc = parse_all(&pc, eo, &neo);
	if (rc == -ENOMEM)
		fprintf(stderr, "gridvfsd: out of memory\n");
	if (!rc && eo[0]->o_check_config)
		rc = px_config_dump(stdout, &pc, px_opts_table()) ? -EIO : 1;
	px_config_free(&pc);
	if (rc)
		goto out;
	o = *eo[0]; /* daemon-wide settings are every export's */
	px_log_open(o.o_syslog || !o.o_foreground, o.o_log_level);
	if (!o.o_foreground)
		px_log_startup(true);
	if (!o.o_foreground && daemonize(&notify_fd) < 0) {
		fprintf(stderr, "gridvfsd: cannot detach: %s\n", strerror(errno));
		return 1;
	}
	if (o.o_pidfile && (rc = pidfile_write(o.o_pidfile)) < 0) {
		px_err("cannot write pid file %s: %s", o.o_pidfile,
		       rc == -ELOOP ? "it is a symbolic link (refused)"
		       : rc == -EPERM ? "not a regular file with one link "
					"(refused)"
				      : strerror(-rc));
		rc = -EIO; /* exit 1, with the options freed */
		goto out;
	}
	/* px_run() tells the waiting parent (notify_fd) once it listens. */
	rc = px_run(eo, neo, notify_fd);
	zlink_thread_done(); /* the loop thread's zstd contexts */
	if (o.o_pidfile)
		unlink(o.o_pidfile);
	rc = rc < 0 ? -EIO : 0;
out:
	px_opts_array_free(eo, neo);
	return rc == 0 || rc == 1 ? 0 : rc == -EIO ? 1 : 2;
}
