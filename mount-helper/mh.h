/* mount-helper/mh.h: mount.gridvfs's one internal header.
 * Option parsing and command-line building (opts.c, pure, unit-tested),
 * the client-role gridvfsd supervisor (proxy.c), the libnfs context pool
 * (nfsc.c) and the FUSE3 file system built on it (fuse.c). */
#ifndef GRIDVFS_MH_H
#define GRIDVFS_MH_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

/* Exit codes. 1 and 2 are mount(8)'s; every mount failure has bit 32 set
 * so that scripts testing `rc & 32` (mount(8)'s "mount failure") still
 * work, and the low bits say why. */
enum {
	MH_EXIT_OK = 0,
	MH_EXIT_USAGE = 1,       /* bad invocation or option */
	MH_EXIT_SYSERR = 2,      /* fork, memory, pipe... */
	MH_EXIT_FAIL = 32,       /* mount point missing/busy, FUSE or mount(8) failed */
	MH_EXIT_UNREACHABLE = 33, /* the store (or proxy=) refuses/drops TCP */
	MH_EXIT_NOEXPORT = 34,   /* MNT answered: no such export / access denied */
	MH_EXIT_PROXY = 35,      /* gridvfsd did not start (bad option, crash) */
	MH_EXIT_PROXYMNT = 36,   /* gridvfsd up but MNT through it failed (TLS...) */
};

enum mh_mode { MH_MODE_AUTO, MH_MODE_FUSE, MH_MODE_KERNEL };
enum mh_consistency { MH_CONS_STRICT, MH_CONS_IMMUTABLE };

/* A growable NULL-terminated argv; owns its strings. */
struct mh_argv {
	char **v;
	int n;
	int cap;
};
int mh_argv_push(struct mh_argv *a, const char *s);
int mh_argv_pushf(struct mh_argv *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void mh_argv_free(struct mh_argv *a);
/* Print as one shell-quoted line (for dry-run and logs). */
void mh_argv_print(const struct mh_argv *a, FILE *f);

/* Everything the command line says. Strings are owned (mh_opts_free). */
struct mh_opts {
	char *source;           /* as given, for fsname= and messages */
	char *host;             /* store host (brackets stripped) */
	unsigned port;          /* store NFS port (default 2049) */
	char *path;             /* exported path, starts with '/' */
	char *dir;              /* mount point as given */
	unsigned mountport;     /* store MOUNT port (default: port) */
	enum mh_mode mode;
	enum mh_consistency consistency;
	int consistency_set;    /* consistency= given (maybe passed on) */
	char *proxy_host;       /* proxy=: use a running gridvfsd */
	unsigned proxy_port;
	unsigned localport;     /* localport=: the started proxy's port */
	char *gridvfsd;         /* gridvfsd=PATH */
	int foreground, debug, dry_run, verbose, fake, nomtab, sloppy;
	unsigned conns;         /* libnfs contexts in the pool */
	unsigned timeout;       /* seconds to wait for reachability/readiness */
	unsigned max_io;        /* cap on READ/WRITE size */
	unsigned readahead_kb;  /* FUSE bdi readahead (0: kernel default) */
	int soft;               /* soft: calls fail after timeo x (retrans+1) */
	unsigned timeo;         /* deciseconds (nfs(5)); 0: not given (600) */
	unsigned retrans;       /* retransmissions; retrans_set: given */
	int retrans_set;
	int log_level_set;      /* log-level= given: debug must not add one */
	struct mh_argv mntopts; /* generic mount flags: ro, nosuid, ... */
	struct mh_argv pass;    /* --name value pairs for gridvfsd */
};

/* Parse argv (mount(8) calling convention). Returns 0, MH_EXIT_USAGE with
 * a message in err, or -1 when --help/-V was handled (exit 0). */
int mh_opts_parse(struct mh_opts *o, int argc, char **argv, char *err,
		  size_t errlen);
void mh_opts_free(struct mh_opts *o);
/* SOURCE = HOST[:PORT]:/path or [V6ADDR][:PORT]:/path. 0 or -EINVAL. */
int mh_source_parse(const char *src, char **host, unsigned *port, char **path);
/* "HOST:PORT" with IPv6 literals bracketed, into buf. */
void mh_hostport(char *buf, size_t len, const char *host, unsigned port);

/* The gridvfsd command line for a client-role proxy on 127.0.0.1:lport.
 * pass_consistency: gridvfsd knows --consistency (see gridvfsd --help). */
int mh_proxy_argv(const struct mh_opts *o, const char *bin, unsigned lport,
		  int pass_consistency, struct mh_argv *out);
/* The kernel-mode mount(8) command line against the proxy at
 * phost:pport. */
int mh_kernel_argv(const struct mh_opts *o, const char *phost, unsigned pport,
		   struct mh_argv *out);
/* nfs(5)'s soft major timeout in ms for o (0 for hard). */
int mh_soft_ms(const struct mh_opts *o);
/* The FUSE mount options string ("fsname=...,subtype=gridvfs,..."). */
int mh_fuse_optstr(const struct mh_opts *o, int is_root, char *buf, size_t len);

void mh_usage(FILE *f);
/* The mount works: tell the waiting parent (ready_fd from the detach
 * fork, -1 in the foreground) and, detached, drop the terminal. */
void mh_ready(const struct mh_opts *o, int ready_fd);

/* --- proxy.c: the supervised client-role gridvfsd --------------------- */
struct mh_proxy;
/* Start gridvfsd from bin (argv built by mh_proxy_argv) on a free loopback
 * port (localport= or one we pick; retried if gridvfsd finds it taken),
 * and wait until it accepts TCP. The child dies with our thread
 * (PR_SET_PDEATHSIG). Returns 0 or an MH_EXIT_* code with a message
 * printed. The caller must be the thread that lives as long as the mount. */
int mh_proxy_start(const struct mh_opts *o, const char *bin,
		   int pass_consistency, struct mh_proxy **out);
unsigned mh_proxy_port(const struct mh_proxy *p);
pid_t mh_proxy_pid(const struct mh_proxy *p);
/* After the mount works: forward its stderr to syslog (or to ours when
 * foreground). */
void mh_proxy_detach_log(struct mh_proxy *p, int to_stderr);
/* Print the last lines the proxy wrote to stderr, indented, to f. */
void mh_proxy_print_tail(struct mh_proxy *p, FILE *f);
/* SIGTERM, wait (SIGKILL after a grace period), reap, free. NULL is ok. */
void mh_proxy_stop(struct mh_proxy *p);
/* A free loopback port (from the kernel's ephemeral range), 0 if none. */
unsigned mh_port_pick(void);
/* TCP connect to host:port within timeout_ms: 0 or -errno. */
int mh_tcp_probe(const char *host, unsigned port, int timeout_ms);

/* --- nfsc.c: a pool of libnfs contexts mounted through the proxy ------- */
struct mh_pool;
struct nfs_context;
/* Mount n contexts of path via MOUNT+NFS at host:port. On failure returns
 * an MH_EXIT_* code with a message in err. */
int mh_pool_open(const char *host, unsigned port, const char *path,
		 unsigned n, unsigned timeout_s, struct mh_pool **out,
		 char *err, size_t errlen);
/* soft_ms > 0: every call that gets no reply within soft_ms fails
 * (-ETIMEDOUT from libnfs); 0: calls wait (hard). */
void mh_pool_set_soft(struct mh_pool *p, int soft_ms);
/* How long the oldest call in progress has been waiting (ms, 0: none). */
long mh_pool_stuck_ms(struct mh_pool *p);
/* The soft timeout set (0: hard). */
int mh_pool_soft_ms(const struct mh_pool *p);
void mh_pool_close(struct mh_pool *p);
/* Borrow a context with AUTH_SYS uid/gid/groups set; blocks while all are
 * lent out. */
struct nfs_context *mh_pool_get(struct mh_pool *p, uid_t uid, gid_t gid,
				int ngroups, const gid_t *groups);
void mh_pool_put(struct mh_pool *p, struct nfs_context *nfs);
/* rtmax/wtmax libnfs took from FSINFO. */
size_t mh_pool_readmax(struct mh_pool *p);
size_t mh_pool_writemax(struct mh_pool *p);

/* --- fuse.c ----------------------------------------------------------- */
/* Mount dir with FUSE and serve until unmounted. ready_fd (-1: none) gets
 * one byte 0 once the mount works. Returns an MH_EXIT_* code. */
int mh_fuse_run(const struct mh_opts *o, struct mh_pool *pool,
		struct mh_proxy *proxy, int ready_fd);

#endif
