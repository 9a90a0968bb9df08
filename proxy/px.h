/*
 * proxy/px.h — gridvfsd's internal interfaces: the event loop, client
 * connections, upstream links, the per-request pipeline, options, logging.
 * Private to proxy/; nothing here is a library interface.
 */
#ifndef GRIDVFS_PX_H
#define GRIDVFS_PX_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <syslog.h>
#include <time.h>

#include "rpc/rpc.h"

/* ---------------------------------------------------------------------- */
/* Logging: stderr in the foreground, syslog as a daemon.                  */

void px_log_open(bool use_syslog, int level);
/* While starting detached: errors go to stderr as well as syslog.  Off
 * once the daemon is ready (px_log_detached() then closes stderr). */
void px_log_startup(bool on);
void px_log_detached(void);
void px_logf(int prio, const char *func, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
extern int px_log_level;
#define px_err(...) px_logf(LOG_ERR, __func__, __VA_ARGS__)
#define px_warn(...) px_logf(LOG_WARNING, __func__, __VA_ARGS__)
#define px_info(...) px_logf(LOG_INFO, __func__, __VA_ARGS__)
#define px_debug(...)                                               \
	do {                                                        \
		if (px_log_level >= LOG_DEBUG)                      \
			px_logf(LOG_DEBUG, __func__, __VA_ARGS__);  \
	} while (0)
/* At most one line per interval per call site, counting what it skipped. */
#define px_warn_rl(...)                                                    \
	do {                                                               \
		static time_t px__last;                                    \
		static unsigned px__skipped;                               \
		time_t px__now = time(NULL);                               \
		if (px__now - px__last >= 5) {                             \
			if (px__skipped)                                   \
				px_warn("(%u similar lines suppressed)",   \
					px__skipped);                      \
			px_warn(__VA_ARGS__);                              \
			px__last = px__now;                                \
			px__skipped = 0;                                   \
		} else {                                                   \
			px__skipped++;                                     \
		}                                                          \
	} while (0)
#define px_err_rl(...)                                                     \
	do {                                                               \
		static time_t px__last_e;                                  \
		time_t px__now_e = time(NULL);                             \
		if (px__now_e - px__last_e >= 5) {                         \
			px_err(__VA_ARGS__);                               \
			px__last_e = px__now_e;                            \
		}                                                          \
	} while (0)
#define px_info_rl(...)                                                    \
	do {                                                               \
		static time_t px__last_i;                                  \
		time_t px__now_i = time(NULL);                             \
		if (px__now_i - px__last_i >= 5) {                         \
			px_info(__VA_ARGS__);                              \
			px__last_i = px__now_i;                            \
		}                                                          \
	} while (0)
int px_log_level_parse(const char *s);

/* ---------------------------------------------------------------------- */
/* Options                                                                 */

enum px_role { PX_ROLE_CLIENT, PX_ROLE_SERVER };

struct px_opts {
	enum px_role o_role;
	char *o_listen;         /* ADDR:PORT */
	char *o_upstream;       /* HOST:PORT (NFS) */
	char *o_mount_upstream; /* HOST:PORT (MOUNT), NULL: ask rpcbind */
	bool o_register;        /* register NFS and MOUNT with rpcbind */
	bool o_foreground;
	char *o_pidfile;
	int o_log_level;
	bool o_syslog;
	size_t o_max_record;
	unsigned o_max_conns;
	unsigned o_max_client_calls;
	size_t o_max_client_out;
	unsigned o_max_pending;
	unsigned o_record_timeout;   /* s: a half-received record */
	unsigned o_handshake_timeout; /* s: TLS probe + handshake */
	unsigned o_max_unauth_per_addr; /* unauthenticated conns per source */
	unsigned o_upstream_timeout; /* s: calls wait this long for upstream */
	unsigned o_drain_timeout;    /* s: SIGTERM grace for outstanding calls */
	unsigned o_dup_window;       /* s: remember completed non-idempotent calls */
	/* identity mapping (idmap/) */
	char *o_map;                 /* static map file, NULL: none */
	int o_squash;                /* enum idmap_squash, -1: not given */
	int o_unmapped;              /* enum idmap_unmapped, -1: not given */
	int64_t o_anonuid, o_anongid; /* -1: not given */
	/* RPC-with-TLS (RFC 9289) */
	int o_tls;                   /* enum px_tls_mode after parsing */
	char *o_tls_cert, *o_tls_key, *o_tls_ca, *o_tls_crl;
	char *o_tls_server_name;     /* client role; default: upstream host */
	int o_compress;              /* enum zlink_mode (zlink.h) */
	unsigned o_compress_below;   /* Mbit/s: auto compresses below it */
	char *o_grid_mapfile;        /* server role: cert DN -> accounts */
	char *o_plaintext_accounts;  /* --tls optional: "a,b", NULL: anonymous */
	/* read cache (client role) */
	char *o_cache_dir;           /* NULL: no cache */
	uint64_t o_cache_size;
	uint32_t o_cache_block;
	int o_consistency;           /* enum px_consistency */
	unsigned o_immutable_ttl;    /* s */
	unsigned o_access_ttl;       /* s */
	bool o_readahead;            /* stream detection on images with metadata */
	bool o_bg_fetch;             /* background fetch of non-zero blocks */
	unsigned o_bg_share;         /* its cap, % of the measured upstream rate */
	/* write policy (client role) */
	int o_write_policy;          /* enum px_write_policy */
	uint64_t o_dirty_max;
	/* learned profiles (issue 19, learn.c) */
	int o_learn;                 /* 1 on, 0 off; default: server role on */
	unsigned o_learn_idle;       /* s without a new block: the boot is over */
	unsigned o_learn_boots;      /* boots a learned profile is built from */
	uint64_t o_learn_min_size;   /* smaller files are not learned */
	bool o_check_config;         /* --check-config: print, do not run */        /* bytes of unflushed data before writes wait */
	char *o_control;             /* control socket path, NULL: none */
	bool o_control_default;      /* not asked for: failure only warns */
	unsigned o_busy_poll_us;     /* spin this long for replies, 0: never */
	char *o_user;                /* drop to this user after start-up */
	char *o_metrics;             /* Prometheus endpoint ADDR:PORT, NULL */
	bool o_upstream_privport;    /* connect upstream from ports < 1024 */
	bool o_insecure;             /* client role: believe any AUTH_SYS */
	char *o_state_dir;           /* the handle key's directory */
	/* [export NAME] (NULL name: the daemon serves one export, the
	 * upstream's own paths, and handles pass unchanged) */
	char *o_export_name;
	char *o_export_path;         /* the path clients mount */
	char *o_upstream_path;       /* what it is upstream, NULL: the same */
};

enum px_write_policy { PX_WRITE_THROUGH = 0, PX_WRITE_BACK = 1 };

enum px_consistency { PX_CONS_STRICT = 0, PX_CONS_IMMUTABLE = 1 };

enum px_tls_mode { PX_TLS_OFF = 0, PX_TLS_OPTIONAL = 1, PX_TLS_REQUIRE = 2 };

/* Is identity mapping on?  Any idmap option turns it on; the server role
 * (facing other domains) has it on by default, with root squashed. */
bool px_opts_idmap_active(const struct px_opts *o);

struct px_config;
/* pc (or NULL): where file items came from, for error messages. */
int px_opts_parse(struct px_opts *o, int argc, char **argv,
		  const struct px_config *pc);
/* getopt's table of every long option (the configuration file's keys). */
const struct option *px_opts_table(void);
void px_opts_free(struct px_opts *o);
/* Parse "HOST:PORT", "[V6]:PORT", or "HOST" (default port). */
int px_addr_parse(const char *s, uint16_t defport, struct sockaddr_storage *ss,
		  socklen_t *len);
const char *px_addr_str(const struct sockaddr_storage *ss, char *buf,
			size_t len);

/* ---------------------------------------------------------------------- */
/* Messages and output queues                                              */

/*
 * One RPC message with RPC_REC_HEADROOM bytes in front for its record mark.
 * Refcounted: a forwarded request lives in the upstream output queue and in
 * its pending call (kept for resending after a reconnect).  A message is in
 * at most one output queue at a time.
 */
struct px_msg {
	struct px_msg *m_next; /* output queue link */
	size_t m_off;          /* bytes of mark+message already written */
	_Atomic uint32_t m_refs; /* the cache's writer drops fills' refs */
	size_t m_len;          /* message bytes */
	uint8_t *m_mem;        /* headroom + message, owned */
};

static inline uint8_t *px_msg_data(struct px_msg *m)
{
	return m->m_mem + RPC_REC_HEADROOM;
}
struct px_msg *px_msg_wrap(uint8_t *mem, size_t len); /* takes mem */
struct px_msg *px_msg_new(size_t len);
void px_msg_unref(struct px_msg *m);
void px_mem_tick(void); /* once a second: trim the heap when quiet */

struct zlink_out;
struct px_outq {
	struct px_msg *q_head, *q_tail;
	size_t q_bytes; /* queued bytes not yet written */
	uint64_t q_sent; /* bytes written, all time */
	struct zlink_out *q_z; /* compressed link (zlink.h), NULL: plain */
};
/* Queue m (takes a ref), or, on a compressed link when zlink says so, a
 * compressed copy of it. */
void px_outq_push(struct px_outq *q, struct px_msg *m);
/* writev as much as the socket takes (up to budget bytes).  Returns 0 when
 * the queue is empty, 1 when bytes remain, -errno on a socket error. */
struct tls_conn;
int px_outq_flush(struct px_outq *q, int fd, struct tls_conn *tls,
		  size_t budget);
/* Drop every queued message; the queue forgets its compression too. */
void px_outq_clear(struct px_outq *q);

/* Compressed links, all of the daemon's (io.c; one loop thread). */
struct zlink_stats;
extern struct zlink_stats px_zstats;
/* Compress this connection from now on (its handshake agreed
 * gridvfs-z1): the output queue packs, the reader unpacks. */
struct px_reader;
void px_zlink_start(const struct px_opts *o, struct px_outq *q,
		    struct zlink_out *z, struct px_reader *rd);

/* Monotonic clock in milliseconds. */
uint64_t px_now_ms(void);

/* Reassembling reader for one stream. */
struct px_reader {
	struct rpc_rec rd_rec;
	uint8_t *rd_stage;
	size_t rd_pos, rd_len;
	size_t rd_stage_cap;       /* bytes of rd_stage */
	uint64_t rd_partial_since; /* monotonic ms a partial record started, 0: none */
	uint64_t rd_bytes;         /* bytes read, all time */
	struct zlink_out *rd_zo;   /* compressed link (px_zlink_start): its
				    * sending half (the ask, the counters) */
	char rd_why[160];          /* why a compressed record was refused */
};
int px_reader_init(struct px_reader *rd, size_t max_record);
void px_reader_free(struct px_reader *rd);
/* A new bound on records (the stage grows with it); 0 or -ENOMEM. */
int px_reader_set_max(struct px_reader *rd, size_t max_record);
/*
 * Read from fd and deliver whole messages to on_msg (which takes ownership
 * of the buffer; it returns false to stop delivery for now).  Returns 1 if
 * more may be read later, 0 on EOF, -errno on error (-EMSGSIZE, -EBADMSG
 * for framing faults).
 */
typedef bool (*px_msg_fn)(void *ctx, uint8_t *mem, size_t len);
int px_reader_run(struct px_reader *rd, int fd, struct tls_conn *tls,
		  size_t budget, px_msg_fn on_msg, void *ctx);
/* Bytes already received but not yet delivered (staged here or buffered
 * inside TLS): epoll will not signal them. */
bool px_reader_has_staged(const struct px_reader *rd, struct tls_conn *tls);
/* Bytes staged beyond the last delivered message (RFC 9289: none may
 * follow the STARTTLS probe). */
static inline bool px_reader_has_extra(const struct px_reader *rd)
{
	return rd->rd_pos < rd->rd_len || rpc_rec_partial(&rd->rd_rec);
}

/* ---------------------------------------------------------------------- */
/* Event loop                                                              */

struct px_ev;
typedef void (*px_ev_fn)(struct px_ev *ev, uint32_t events);
struct px_ev {
	int ev_fd;
	px_ev_fn ev_fn;
	uint32_t ev_mask; /* events currently registered */
};

struct px_loop;
int px_ev_add(struct px_loop *l, struct px_ev *ev, uint32_t mask);
int px_ev_mod(struct px_loop *l, struct px_ev *ev, uint32_t mask);
void px_ev_del(struct px_loop *l, struct px_ev *ev);

/* ---------------------------------------------------------------------- */
/* Statistics                                                              */

#define PX_LAT_BUCKETS 128u /* four per power of two of microseconds */

struct px_stats {
	uint64_t s_calls[2][NFS3_NPROC]; /* [0] NFS, [1] MOUNT */
	uint64_t s_lat[2][NFS3_NPROC][PX_LAT_BUCKETS]; /* latency histograms */
	uint64_t s_replies, s_errors_local, s_garbage, s_dups_dropped;
	uint64_t s_dups_retargeted, s_dups_reused, s_resent, s_unknown_xid;
	uint64_t s_conns_accepted, s_conns_refused, s_conns_closed;
	uint64_t s_upstream_connects, s_upstream_failures;
	uint64_t s_bytes_in, s_bytes_out;
};

/* privs.c: --user and --upstream-privport. */
int px_privs_drop(const struct px_opts *o);
int px_privs_bind_reserved(int fd, int family);

/* rpcbind.c: ask host's rpcbind (1 s limit); (un)register our programs. */
int px_rpcbind_getport(const struct sockaddr_storage *host, uint32_t prog,
		       uint32_t vers, uint16_t *port);
int px_rpcbind_register(bool on, uint16_t port);

/* ---------------------------------------------------------------------- */
/* Daemon entry                                                            */

/* Run until SIGTERM/SIGINT with one engine per export (eo[0] also holds
 * the daemon-wide settings).  notify_fd (or -1) gets one byte once the
 * daemon listens: 0 ready, 1 failed; then it is closed. */
int px_run(struct px_opts *const *eo, unsigned neo, int notify_fd);
/* main.c: SIGHUP reads the same file and command line again into eo[]
 * (up to PX_EXPORTS_MAX, *neo set); the reasons for a refusal go to the
 * log.  0 or -errno (then nothing is left to free). */
int px_reload_opts(struct px_opts **eo, unsigned *neo);
void px_opts_array_free(struct px_opts **eo, unsigned n);

/* ====================================================================== */
/* Configuration file (proxy/config.c) — owned by the operations work;     */
/* keys are gridvfsd's long option names, see gridvfs.conf(5).             */

#include <stdio.h>

struct option; /* <getopt.h> */

#ifndef PX_CONFIG_PATH /* the build may set it from $(sysconfdir) */
#define PX_CONFIG_PATH "/etc/gridvfs/gridvfsd.conf"
#endif
#ifndef PX_STATE_DIR /* the build may set it from $(localstatedir) */
#define PX_STATE_DIR "/var/lib/gridvfs"
#endif
#define PX_CONFIG_MAX_LINE 4096          /* bytes, newline included */
#define PX_CONFIG_MAX_SIZE (1024u * 1024) /* bytes per file */

/*
 * Read a configuration file into an argv of "--key", "value" and "--flag"
 * items (a flag set to no gives nothing), checking every key against
 * known (getopt's table, ending in a NULL name).  A missing file is an
 * empty one unless must_exist.  Returns 0, or -errno with a one-line
 * "FILE:LINE: KEY: reason" (or "FILE: reason") in err: -EINVAL for a syntax
 * error, unknown or repeated key, bad flag value, missing value, control
 * or NUL bytes, a line of PX_CONFIG_MAX_LINE bytes or more; -EFBIG for a
 * file above PX_CONFIG_MAX_SIZE; -ENOENT, -EACCES, -EISDIR... for the file.
 * *argv_out (NULL-terminated, *argc_out items, no argv[0]) is the caller's:
 * free with px_config_argv_free().
 */
int px_config_argv(const char *path, bool must_exist,
		   const struct option *known, int *argc_out, char ***argv_out,
		   char *err, size_t errlen);
void px_config_argv_free(int argc, char **argv);

/*
 * The command line merged with its configuration file: pc_argv is argv[0],
 * the file's items, then argv[1..] unchanged, so getopt sees the command
 * line last and it wins.  The file is the last -c FILE / --config FILE of
 * argv (then it must exist) or PX_CONFIG_PATH (skipped if absent);
 * "-c /dev/null" reads none.  pc_where[i] is "FILE:LINE" for items from the
 * file, NULL for the command line's.  Everything is owned by pc.
 */
#define PX_EXPORTS_MAX 32
#define PX_EXPORT_NAME_MAX 64

/* One [export NAME] section: the path clients mount, what it becomes
 * upstream, and the section's own option items ("--key", "value"). */
struct px_config_export {
	char ce_name[PX_EXPORT_NAME_MAX];
	char *ce_where;         /* "FILE:LINE" of the section header */
	char *ce_path;          /* path = ... (required) */
	char *ce_upstream_path; /* upstream-path = ..., NULL: the same */
	int ce_argc;
	char **ce_argv, **ce_witems;
};

struct px_config {
	int pc_argc;
	char **pc_argv;
	char **pc_where;
	int pc_file_items; /* pc_argv[1 .. pc_file_items] came from the file */
	char *pc_path;     /* the file looked at */
	unsigned pc_nexports;
	struct px_config_export *pc_exports;
};
/* 0 or -errno with the reason (file:line) in err; pc is then empty. */
int px_config_load(struct px_config *pc, int argc, char **argv,
		   const struct option *known, char *err, size_t errlen);
void px_config_free(struct px_config *pc);
/* The argv export i runs with: pc's (file, then command line), then its
 * section's items, which win.  Free out with px_config_free(). */
int px_config_for_export(const struct px_config *pc, unsigned i,
			 struct px_config *out);
/* "FILE:LINE" of pc_argv[idx], NULL if it came from the command line. */
const char *px_config_where(const struct px_config *pc, int idx);
/*
 * For --check-config: print the options pc_argv sets, one "key = value"
 * line each (the last occurrence wins, as in the parse), with the origin
 * as a comment; the output is itself a valid configuration file.  Call it
 * after px_opts_parse() accepted pc_argv.  0 or -ENOMEM/-EIO.
 */
int px_config_dump(FILE *out, const struct px_config *pc,
		   const struct option *known);

#endif /* GRIDVFS_PX_H */
