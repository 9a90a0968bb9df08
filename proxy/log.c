/*
 * proxy/log.c — one logging path: stderr with a timestamp in the
 * foreground, syslog as a daemon.  Every line carries the function name.
 */
#include "config.h"
#include "proxy/px.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

int px_log_level = LOG_INFO;
static bool log_syslog;
static bool log_startup; /* detaching: errors go to stderr too */

void px_log_startup(bool on)
{
	log_startup = on;
}

void px_log_open(bool use_syslog, int level)
{
	px_log_level = level;
	log_syslog = use_syslog;
	if (use_syslog)
		openlog("gridvfsd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

int px_log_level_parse(const char *s)
{
	static const struct {
		const char *name;
		int level;
	} levels[] = {
		{"error", LOG_ERR}, {"warn", LOG_WARNING},
		{"warning", LOG_WARNING}, {"info", LOG_INFO},
		{"debug", LOG_DEBUG},
	};
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (!strcasecmp(s, levels[i].name))
			return levels[i].level;
	return -1;
}

static const char *prio_name(int prio)
{
	switch (prio) {
	case LOG_ERR: return "error";
	case LOG_WARNING: return "warn";
	case LOG_NOTICE: return "notice";
	case LOG_INFO: return "info";
	default: return "debug";
	}
}

void px_logf(int prio, const char *func, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (prio > px_log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (log_syslog) {
		syslog(prio, "%s: %s", func, msg);
		/* Until the daemon has started, whoever started it is still
		 * waiting on its stderr: a failure must not vanish into a
		 * syslog nobody reads (sshd and nginx do the same). */
		if (log_startup && prio <= LOG_ERR)
			fprintf(stderr, "gridvfsd: %s\n", msg);
		return;
	}
	struct timeval tv;
	struct tm tm;
	char ts[32];

	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ld gridvfsd[%s] %s: %s\n", ts,
		(long)(tv.tv_usec / 1000), prio_name(prio), func, msg);
}
