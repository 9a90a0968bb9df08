/* mount-helper/main.c: mount.gridvfs — checks the mount point and the
 * store, starts and supervises a client-role gridvfsd, checks that MNT of
 * the path works through it, then serves the mount with FUSE or hands it
 * to the kernel NFS client; detaches once the mount works. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "mount-helper/mh.h"

/* A kernel NFS client: the mount.nfs helper and the nfs file system. */
static int have_kernel_nfs(void)
{
	char line[256];
	FILE *f;
	int found = 0;

	if (access("/sbin/mount.nfs", X_OK) && access("/usr/sbin/mount.nfs", X_OK))
		return 0;
	if (!(f = fopen("/proc/filesystems", "r")))
		return 0;
	while (!found && fgets(line, sizeof(line), f))
		found = !strcmp(line, "nodev\tnfs\n");
	fclose(f);
	return found;
}

/* gridvfsd next to us (the build tree, or sbin), else $PATH. */
static char *find_gridvfsd(const struct mh_opts *o)
{
	char self[PATH_MAX], *slash;
	ssize_t n;

	if (o->gridvfsd)
		return strdup(o->gridvfsd);
	n = readlink("/proc/self/exe", self, sizeof(self) - 16);
	if (n > 0) {
		self[n] = '\0';
		if ((slash = strrchr(self, '/'))) {
			strcpy(slash + 1, "gridvfsd");
			if (!access(self, X_OK))
				return strdup(self);
		}
	}
	return strdup("gridvfsd");
}

/* Does `bin --help` mention opt? Options the helper also uses itself
 * (consistency=) are only passed to a gridvfsd that knows them. */
static int gridvfsd_knows(const char *bin, const char *opt)
{
	char cmd[PATH_MAX + 64], buf[512];
	FILE *f;
	int found = 0;

	if (strchr(bin, '\''))
		return 0;
	snprintf(cmd, sizeof(cmd), "'%s' --help 2>/dev/null", bin);
	if (!(f = popen(cmd, "r")))
		return 0;
	while (fgets(buf, sizeof(buf), f))
		found |= strstr(buf, opt) != NULL;
	pclose(f);
	return found;
}

static int is_mountpoint(const char *dir)
{
	char line[4096], mp[PATH_MAX];
	FILE *f = fopen("/proc/self/mountinfo", "r");
	int found = 0;

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		char *o = mp, *s;
		/* field 5 is the mount point, with octal escapes (\040) */
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1)
			continue;
		for (s = mp; *s; s++, o++) {
			if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] && s[3]) {
				*o = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
				s += 3;
			} else {
				*o = *s;
			}
		}
		*o = '\0';
		found = !strcmp(mp, dir);
	}
	fclose(f);
	return found;
}

/* DIR must exist, be a directory and not be mounted on already; it is
 * made absolute because a detached helper runs in /. */
static int check_dir(struct mh_opts *o)
{
	char real[PATH_MAX];
	struct stat st;

	if (stat(o->dir, &st)) {
		fprintf(stderr, "mount.gridvfs: mount point %s: %s\n", o->dir,
			errno == ENOTCONN ? "a dead gridvfs mount (run umount on it)" :
			strerror(errno));
		return MH_EXIT_FAIL;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "mount.gridvfs: mount point %s is not a directory\n", o->dir);
		return MH_EXIT_FAIL;
	}
	if (!realpath(o->dir, real))
		return MH_EXIT_SYSERR;
	if (is_mountpoint(real)) {
		fprintf(stderr, "mount.gridvfs: %s is busy: already a mount point\n", real);
		return MH_EXIT_FAIL;
	}
	free(o->dir);
	o->dir = strdup(real);
	return o->dir ? 0 : MH_EXIT_SYSERR;
}

static int check_reachable(const struct mh_opts *o)
{
	char hp[300];
	const char *h = o->proxy_host ? o->proxy_host : o->host;
	unsigned ports[2] = { o->proxy_host ? o->proxy_port : o->port,
			      o->proxy_host ? 0 : o->mountport };
	int rc;

	for (int i = 0; i < 2; i++) {
		if (!ports[i] || (i && ports[1] == ports[0]))
			continue;
		rc = mh_tcp_probe(h, ports[i], (int)o->timeout * 1000);
		if (rc) {
			mh_hostport(hp, sizeof(hp), h, ports[i]);
			fprintf(stderr, "mount.gridvfs: cannot reach %s at %s: %s\n",
				o->proxy_host ? "gridvfsd (proxy=)" : "the store", hp,
				strerror(-rc));
			return MH_EXIT_UNREACHABLE;
		}
	}
	return 0;
}

static int dry_run(const struct mh_opts *o, const char *bin, int pass_cons)
{
	struct mh_argv av = { 0 };
	const char *phost = o->proxy_host ? o->proxy_host : "127.0.0.1";
	unsigned pport = o->proxy_host ? o->proxy_port :
			 o->localport ? o->localport : mh_port_pick();
	char optstr[4096];

	if (!o->proxy_host) {
		if (mh_proxy_argv(o, bin, pport, pass_cons, &av))
			return MH_EXIT_SYSERR;
		mh_argv_print(&av, stdout);
		mh_argv_free(&av);
	}
	if (o->mode == MH_MODE_KERNEL) {
		if (mh_kernel_argv(o, phost, pport, &av))
			return MH_EXIT_SYSERR;
		mh_argv_print(&av, stdout);
		mh_argv_free(&av);
		return 0;
	}
	if (mh_fuse_optstr(o, geteuid() == 0, optstr, sizeof(optstr)))
		return MH_EXIT_USAGE;
	printf("# FUSE mount of %s on %s through %s:%u, -o %s\n", o->path, o->dir,
	       phost, pport, optstr);
	return 0;
}

/* Fork; the parent waits for one status byte (0 = mounted) or the child's
 * exit, and exits with it, so `mount` returns once the mount works. */
static int daemonize(int *ready_fd)
{
	int pfd[2], st;
	pid_t pid;
	unsigned char code;

	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	if ((pid = fork()) < 0)
		return -errno;
	if (pid > 0) {
		close(pfd[1]);
		if (read(pfd[0], &code, 1) == 1)
			_exit(code);
		if (waitpid(pid, &st, 0) == pid && WIFEXITED(st))
			_exit(WEXITSTATUS(st) ? WEXITSTATUS(st) : MH_EXIT_SYSERR);
		_exit(MH_EXIT_SYSERR);
	}
	close(pfd[0]);
	setsid();
	*ready_fd = pfd[1];
	return 0;
}

void mh_ready(const struct mh_opts *o, int ready_fd)
{
	char ok = 0;
	int fd;

	if (ready_fd < 0)
		return;
	(void)!write(ready_fd, &ok, 1);
	close(ready_fd);
	if (o->foreground || (fd = open("/dev/null", O_RDWR)) < 0)
		return;
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
	(void)!chdir("/");
}

static int run_cmd(const struct mh_argv *av)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		execvp(av->v[0], av->v);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) != pid)
		return -ECHILD;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static volatile sig_atomic_t stop_flag;
static void on_term(int sig)
{
	(void)sig;
	stop_flag = 1;
}

/* Kernel mode: the proxy must live as long as the NFS mount, which the
 * kernel owns; stay as its supervisor until DIR leaves the mount table
 * (poll on mountinfo reports every change). */
static int kernel_mount(const struct mh_opts *o, struct mh_proxy *px, int ready_fd)
{
	struct mh_argv av = { 0 };
	struct pollfd pfd;
	int rc;

	if (mh_kernel_argv(o, "127.0.0.1", px ? mh_proxy_port(px) : o->proxy_port, &av))
		return MH_EXIT_SYSERR;
	if (o->proxy_host) {
		mh_argv_free(&av);
		if (mh_kernel_argv(o, o->proxy_host, o->proxy_port, &av))
			return MH_EXIT_SYSERR;
	}
	rc = run_cmd(&av);
	if (rc) {
		fprintf(stderr, "mount.gridvfs: ");
		mh_argv_print(&av, stderr);
		fprintf(stderr, "mount.gridvfs: mount -t nfs failed (%s %d)\n",
			rc < 0 ? "error" : "exit", rc < 0 ? -rc : rc);
	}
	mh_argv_free(&av);
	if (rc)
		return MH_EXIT_FAIL;
	if (px)
		mh_proxy_detach_log(px, o->foreground);
	mh_ready(o, ready_fd);
	if (!px)
		return 0;
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	if ((pfd.fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC)) < 0)
		return MH_EXIT_SYSERR;
	pfd.events = POLLPRI;
	while (!stop_flag && is_mountpoint(o->dir))
		poll(&pfd, 1, 5000);
	close(pfd.fd);
	return 0;
}

/* Everything after the checks, in the process that will serve the mount. */
static int serve(const struct mh_opts *o, const char *bin, int pass_cons,
		 int ready_fd)
{
	struct mh_proxy *px = NULL;
	struct mh_pool *pool = NULL;
	char err[1024];
	const char *phost = o->proxy_host ? o->proxy_host : "127.0.0.1";
	unsigned pport = o->proxy_port;
	int rc;

	if (!o->proxy_host) {
		if ((rc = mh_proxy_start(o, bin, pass_cons, &px)))
			return rc;
		pport = mh_proxy_port(px);
	}
	rc = mh_pool_open(phost, pport, o->path, o->mode == MH_MODE_FUSE ? o->conns : 1,
			  o->timeout, &pool, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "mount.gridvfs: MNT of %s through gridvfsd at %s:%u failed: %s\n",
			o->path, phost, pport, err);
		if (rc == MH_EXIT_NOEXPORT)
			fprintf(stderr, "mount.gridvfs: %s is not exported by %s, or "
				"access to it is denied\n", o->path, o->host);
		else if (px)
			mh_proxy_print_tail(px, stderr);
		goto out;
	}
	if (o->mode == MH_MODE_FUSE) {
		if (o->soft)
			mh_pool_set_soft(pool, mh_soft_ms(o));
		rc = mh_fuse_run(o, pool, px, ready_fd);
	} else {
		mh_pool_close(pool);
		pool = NULL;
		rc = kernel_mount(o, px, ready_fd);
	}
out:
	mh_pool_close(pool);
	mh_proxy_stop(px);
	return rc;
}

int main(int argc, char **argv)
{
	struct mh_opts o;
	char err[512], *bin = NULL;
	int rc, pass_cons = 0, ready_fd = -1;

	openlog("mount.gridvfs", LOG_PID, LOG_DAEMON);
	signal(SIGPIPE, SIG_IGN);
	rc = mh_opts_parse(&o, argc, argv, err, sizeof(err));
	if (rc < 0) {
		mh_opts_free(&o);
		return 0;
	}
	if (rc) {
		fprintf(stderr, "mount.gridvfs: %s\n", err);
		goto out;
	}
	if (o.mode == MH_MODE_AUTO)
		o.mode = geteuid() == 0 && have_kernel_nfs() ? MH_MODE_KERNEL : MH_MODE_FUSE;
	if (!o.proxy_host) {
		if (!(bin = find_gridvfsd(&o)))
			return MH_EXIT_SYSERR;
		pass_cons = o.consistency_set && gridvfsd_knows(bin, "--consistency");
	}
	if (o.dry_run) {
		rc = dry_run(&o, bin, pass_cons);
		goto out;
	}
	if ((rc = check_dir(&o)) || (rc = check_reachable(&o)))
		goto out;
	if (!o.foreground && (rc = daemonize(&ready_fd))) {
		fprintf(stderr, "mount.gridvfs: cannot detach: %s\n", strerror(-rc));
		rc = MH_EXIT_SYSERR;
		goto out;
	}
	rc = serve(&o, bin, pass_cons, ready_fd);
out:
	free(bin);
	mh_opts_free(&o);
	return rc;
}
