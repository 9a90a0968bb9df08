/*
 * proxy/main.c — gridvfsd: options, detaching, the pid file, then the
 * event loop.  Start-up failures are reported before detaching, so an init
 * system or a script sees them as a non-zero exit.
 */
#include "config.h"
#include "proxy/px.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int pidfile_write(const char *path)
{
	char buf[32];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int n;

	if (fd < 0)
		return -errno;
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

	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	*notify_fd = p[1];
	return 0;
}

int main(int argc, char **argv)
{
	struct px_opts o;
	struct px_config pc;
	char err[PX_CONFIG_MAX_LINE + 256];
	int notify_fd = -1;
	int rc = px_config_load(&pc, argc, argv, px_opts_table(), err,
				sizeof(err));

	if (rc) {
		fprintf(stderr, "gridvfsd: %s\n", err);
		return 2;
	}
	/* The file's items come first: the command line wins. */
	rc = px_opts_parse(&o, pc.pc_argc, pc.pc_argv, &pc);
	if (!rc && o.o_check_config)
		rc = px_config_dump(stdout, &pc, px_opts_table()) ? -EIO : 1;
	px_config_free(&pc);
	if (rc) {
		px_opts_free(&o);
		return rc > 0 ? 0 : rc == -EIO ? 1 : 2;
	}
	px_log_open(o.o_syslog || !o.o_foreground, o.o_log_level);
	if (!o.o_foreground && daemonize(&notify_fd) < 0) {
		fprintf(stderr, "gridvfsd: cannot detach: %s\n", strerror(errno));
		return 1;
	}
	if (o.o_pidfile && (rc = pidfile_write(o.o_pidfile)) < 0) {
		px_err("cannot write pid file %s: %s", o.o_pidfile,
		       strerror(-rc));
		return 1;
	}
	/* px_run() tells the waiting parent (notify_fd) once it listens. */
	rc = px_run(&o, notify_fd);
	if (o.o_pidfile)
		unlink(o.o_pidfile);
	px_opts_free(&o);
	return rc < 0 ? 1 : 0;
}
