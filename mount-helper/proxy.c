/* mount-helper/proxy.c: the client-role gridvfsd a mount runs through.
 * Started as our child on a free loopback port, killed with us
 * (PR_SET_PDEATHSIG), its stderr kept as a tail for error reports and
 * forwarded to syslog once the mount works. Supervised: if it dies while
 * the mount is up, it is started again at once on the same port, and the
 * NFS contexts (autoreconnect) resend what was in flight, as a hard NFS
 * mount does when its server comes back. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "mount-helper/mh.h"

#define TAIL_MAX 4096
#define PORT_TRIES 5
#define STOP_GRACE_MS 15000 /* gridvfsd's drain timeout (10 s) + margin */

struct mh_proxy {
	pid_t pid;
	unsigned port;
	int errfd;
	pthread_t drain;
	int drain_started;
	pthread_mutex_t mu;
	char tail[TAIL_MAX];
	size_t tail_len;
	int detached;  /* mount is up: forward instead of only keeping */
	int to_stderr;
	char line[1024]; /* partial line for syslog */
	size_t line_len;
	/* supervision */
	const struct mh_opts *o;
	const char *bin;
	int pass_consistency;
	pthread_t sup;
	int sup_started;
	int stopping;
	unsigned restarts;
	pthread_cond_t cv; /* with mu: pid became 0 while stopping */
};

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void tail_add(struct mh_proxy *p, const char *buf, size_t n)
{
	if (n >= TAIL_MAX) {
		buf += n - TAIL_MAX;
		n = TAIL_MAX;
	}
	if (p->tail_len + n > TAIL_MAX) {
		size_t drop = p->tail_len + n - TAIL_MAX;
		memmove(p->tail, p->tail + drop, p->tail_len - drop);
		p->tail_len -= drop;
	}
	memcpy(p->tail + p->tail_len, buf, n);
	p->tail_len += n;
}

static void syslog_lines(struct mh_proxy *p, const char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (buf[i] != '\n' && p->line_len < sizeof(p->line) - 1) {
			p->line[p->line_len++] = buf[i];
			continue;
		}
		p->line[p->line_len] = '\0';
		if (p->line_len)
			syslog(LOG_INFO, "gridvfsd[%d]: %s", (int)p->pid, p->line);
		p->line_len = 0;
	}
}

/* Drains the proxy's stderr so it never blocks on a full pipe. */
static void *drain_main(void *arg)
{
	struct mh_proxy *p = arg;
	char buf[4096];
	ssize_t n;

	while ((n = read(p->errfd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		pthread_mutex_lock(&p->mu);
		tail_add(p, buf, (size_t)n);
		if (p->detached && p->to_stderr)
			(void)!write(STDERR_FILENO, buf, (size_t)n);
		else if (p->detached)
			syslog_lines(p, buf, (size_t)n);
		pthread_mutex_unlock(&p->mu);
	}
	return NULL;
}

int mh_tcp_probe(const char *host, unsigned port, int timeout_ms)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	char ps[8];
	int rc = -EHOSTUNREACH;

	snprintf(ps, sizeof(ps), "%u", port);
	if (getaddrinfo(host, ps, &hints, &res))
		return -EHOSTUNREACH;
	for (ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
				SOCK_CLOEXEC, 0), err = 0;
		socklen_t el = sizeof(err);
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };

		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			rc = 0;
		} else if (errno != EINPROGRESS) {
			rc = -errno;
		} else if (poll(&pfd, 1, timeout_ms) <= 0) {
			rc = -ETIMEDOUT;
		} else {
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
			rc = -err;
		}
		close(fd);
		if (rc == 0)
			break;
	}
	freeaddrinfo(res);
	return rc;
}

/* A port the kernel just gave out from its ephemeral range: the harness
 * and the other tests take theirs from below that range. */
unsigned mh_port_pick(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sin);
	unsigned port = 0;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return 0;
	if (!bind(fd, (struct sockaddr *)&sin, sizeof(sin)) &&
	    !getsockname(fd, (struct sockaddr *)&sin, &sl))
		port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

static void child_exec(const struct mh_argv *av, int errw, pid_t parent)
{
	int devnull = open("/dev/null", O_RDWR);

	/* Dies with the thread that started it, so a killed mount.gridvfs
	 * (even SIGKILL) leaves no proxy behind. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(127);
	if (devnull >= 0)
		dup2(devnull, STDIN_FILENO);
	dup2(errw, STDOUT_FILENO);
	dup2(errw, STDERR_FILENO);
	/* Our own session-related signals (^C at the terminal in foreground
	 * mode) should reach it only through us. */
	setpgid(0, 0);
	signal(SIGPIPE, SIG_DFL);
	execvp(av->v[0], av->v);
	dprintf(STDERR_FILENO, "cannot run %s: %s\n", av->v[0], strerror(errno));
	_exit(127);
}

static int spawn(struct mh_proxy *p, const struct mh_argv *av)
{
	int pfd[2];
	pid_t parent = getpid();

	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	p->pid = fork();
	if (p->pid < 0) {
		int e = errno;
		close(pfd[0]);
		close(pfd[1]);
		return -e;
	}
	if (p->pid == 0)
		child_exec(av, pfd[1], parent);
	pthread_mutex_lock(&p->mu);
	if (p->stopping) /* mh_proxy_stop ran meanwhile: it missed this one */
		kill(p->pid, SIGTERM);
	pthread_mutex_unlock(&p->mu);
	close(pfd[1]);
	p->errfd = pfd[0];
	p->tail_len = 0;
	if (pthread_create(&p->drain, NULL, drain_main, p) == 0)
		p->drain_started = 1;
	return 0;
}

/* After the child is gone: its stderr reaches EOF; collect the rest. */
static void drain_finish(struct mh_proxy *p)
{
	if (p->drain_started)
		pthread_join(p->drain, NULL);
	p->drain_started = 0;
	if (p->errfd >= 0)
		close(p->errfd);
	p->errfd = -1;
}

/* 0: accepting; 1: exited (reaped, status in *st); -ETIMEDOUT. */
static int wait_ready(struct mh_proxy *p, unsigned timeout_s, int *st)
{
	long deadline = now_ms() + (long)timeout_s * 1000;

	while (now_ms() < deadline) {
		if (waitpid(p->pid, st, WNOHANG) == p->pid) {
			pthread_mutex_lock(&p->mu);
			p->pid = 0;
			pthread_cond_broadcast(&p->cv);
			pthread_mutex_unlock(&p->mu);
			drain_finish(p);
			return 1;
		}
		if (mh_tcp_probe("127.0.0.1", p->port, 200) == 0)
			return 0;
		usleep(20000);
	}
	return -ETIMEDOUT;
}

static void describe_exit(int st, char *buf, size_t len)
{
	if (WIFEXITED(st))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, len, "was killed by signal %d", WTERMSIG(st));
	else
		snprintf(buf, len, "stopped");
}

static struct mh_proxy *proxy_new(void)
{
	struct mh_proxy *p = calloc(1, sizeof(*p));

	if (p) {
		pthread_mutex_init(&p->mu, NULL);
		pthread_cond_init(&p->cv, NULL);
		p->errfd = -1;
	}
	return p;
}

/* One start attempt on one port: 0 ready, 1 port taken (retry), else an
 * MH_EXIT_* code (message printed). */
static int start_once(struct mh_proxy *p, const struct mh_opts *o,
		      const char *bin, int pass_consistency)
{
	struct mh_argv av = { 0 };
	char why[64];
	int rc, st = 0;

	if (mh_proxy_argv(o, bin, p->port, pass_consistency, &av))
		return MH_EXIT_SYSERR;
	if (o->verbose || o->debug) {
		fprintf(stderr, "mount.gridvfs: starting ");
		mh_argv_print(&av, stderr);
	}
	rc = spawn(p, &av);
	mh_argv_free(&av);
	if (rc) {
		fprintf(stderr, "mount.gridvfs: cannot start gridvfsd: %s\n", strerror(-rc));
		return MH_EXIT_SYSERR;
	}
	rc = wait_ready(p, o->timeout, &st);
	if (rc == 0)
		return 0;
	if (rc == 1 && !o->localport && memmem(p->tail, p->tail_len, "in use", 6))
		return 1;
	if (rc == 1) {
		describe_exit(st, why, sizeof(why));
		fprintf(stderr, "mount.gridvfs: gridvfsd %s before it was ready%s\n", why,
			WIFEXITED(st) && WEXITSTATUS(st) == 2 ?
			" (an -o option it does not know?)" : "");
	} else {
		fprintf(stderr, "mount.gridvfs: gridvfsd did not accept connections on "
			"127.0.0.1:%u within %u s\n", p->port, o->timeout);
	}
	mh_proxy_print_tail(p, stderr);
	return MH_EXIT_PROXY;
}

/*
 * The supervisor: waits for the running gridvfsd; if it ends while the
 * mount is up (crash, OOM kill, kill -9), starts it again on the same
 * port at once (retrying every second while that fails). Restarted
 * children are this thread's, so PR_SET_PDEATHSIG ties them to it: it
 * lives until mh_proxy_stop.
 */
static void *supervise_main(void *arg)
{
	struct mh_proxy *p = arg;
	char why[64];
	int st, rc;
	pid_t pid;

	for (;;) {
		pthread_mutex_lock(&p->mu);
		pid = p->pid;
		pthread_mutex_unlock(&p->mu);
		if (pid > 0) {
			while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
				;
			pthread_mutex_lock(&p->mu);
			p->pid = 0;
			pthread_cond_broadcast(&p->cv);
			pthread_mutex_unlock(&p->mu);
			drain_finish(p);
		}
		pthread_mutex_lock(&p->mu);
		if (p->stopping) {
			pthread_mutex_unlock(&p->mu);
			return NULL;
		}
		pthread_mutex_unlock(&p->mu);
		describe_exit(st, why, sizeof(why));
		syslog(LOG_WARNING, "gridvfsd %s while mounted; restarting it on "
		       "127.0.0.1:%u", why, p->port);
		rc = start_once(p, p->o, p->bin, p->pass_consistency);
		if (rc == 0) {
			p->restarts++;
			syslog(LOG_NOTICE, "gridvfsd restarted (pid %d, restart %u)",
			       (int)p->pid, p->restarts);
			continue;
		}
		pthread_mutex_lock(&p->mu);
		if (!p->stopping)
			syslog(LOG_ERR, "gridvfsd restart failed; trying again in 1 s");
		pthread_mutex_unlock(&p->mu);
		st = 0;
		sleep(1);
	}
}

int mh_proxy_start(const struct mh_opts *o, const char *bin,
		   int pass_consistency, struct mh_proxy **out)
{
	struct mh_proxy *p = proxy_new();
	int rc = 1;

	if (!p)
		return MH_EXIT_SYSERR;
	for (int i = 0; i < PORT_TRIES && rc == 1; i++) {
		p->port = o->localport ? o->localport : mh_port_pick();
		rc = start_once(p, o, bin, pass_consistency);
	}
	if (rc == 1) {
		fprintf(stderr, "mount.gridvfs: no free loopback port for gridvfsd "
			"after %d tries\n", PORT_TRIES);
		rc = MH_EXIT_PROXY;
	}
	if (rc) {
		mh_proxy_stop(p);
		return rc;
	}
	p->o = o;
	p->bin = bin;
	p->pass_consistency = pass_consistency;
	if (pthread_create(&p->sup, NULL, supervise_main, p) == 0)
		p->sup_started = 1;
	*out = p;
	return 0;
}

unsigned mh_proxy_port(const struct mh_proxy *p)
{
	return p->port;
}

pid_t mh_proxy_pid(const struct mh_proxy *p)
{
	return p->pid;
}

void mh_proxy_detach_log(struct mh_proxy *p, int to_stderr)
{
	pthread_mutex_lock(&p->mu);
	p->detached = 1;
	p->to_stderr = to_stderr;
	pthread_mutex_unlock(&p->mu);
}

void mh_proxy_print_tail(struct mh_proxy *p, FILE *f)
{
	const char *s, *e;
	int lines = 0;

	pthread_mutex_lock(&p->mu);
	/* The last ~12 lines are what explains a failure. */
	s = p->tail + p->tail_len;
	while (s > p->tail && lines < 13)
		if (*--s == '\n')
			lines++;
	if (s > p->tail || (p->tail_len && *s == '\n'))
		s++;
	if (s < p->tail + p->tail_len)
		fprintf(f, "mount.gridvfs: last lines of gridvfsd's output:\n");
	for (; s < p->tail + p->tail_len; s = e + 1) {
		e = memchr(s, '\n', (size_t)(p->tail + p->tail_len - s));
		if (!e)
			e = p->tail + p->tail_len;
		fprintf(f, "    %.*s\n", (int)(e - s), s);
	}
	pthread_mutex_unlock(&p->mu);
}

/* With the supervisor: it reaps; we signal and wait for pid 0. */
static void stop_supervised(struct mh_proxy *p)
{
	struct timespec ts;
	pid_t pid;

	pthread_mutex_lock(&p->mu);
	p->stopping = 1;
	if ((pid = p->pid) > 0)
		kill(pid, SIGTERM);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += STOP_GRACE_MS / 1000;
	while (p->pid > 0 &&
	       pthread_cond_timedwait(&p->cv, &p->mu, &ts) != ETIMEDOUT)
		;
	if (p->pid > 0)
		kill(p->pid, SIGKILL);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->sup, NULL);
	p->sup_started = 0;
}

void mh_proxy_stop(struct mh_proxy *p)
{
	long deadline;
	int st, gone = 0;

	if (!p)
		return;
	if (p->sup_started)
		stop_supervised(p);
	if (p->pid > 0) {
		kill(p->pid, SIGTERM);
		deadline = now_ms() + STOP_GRACE_MS;
		while (!(gone = waitpid(p->pid, &st, WNOHANG) == p->pid) &&
		       now_ms() < deadline)
			usleep(20000);
		if (!gone) {
			kill(p->pid, SIGKILL);
			waitpid(p->pid, &st, 0);
		}
		p->pid = 0;
	}
	drain_finish(p);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
}
