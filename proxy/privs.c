/*
 * proxy/privs.c — dropping root after start-up (--user), keeping only
 * CAP_NET_BIND_SERVICE when upstream servers demand a reserved source port
 * (--upstream-privport, for Linux "secure" exports), and binding those
 * ports.  Everything that needs root — the listening socket, key files,
 * the cache and its lock, the control socket, the pid file — is opened
 * before the drop.
 */
#include "config.h"
#include "proxy/core.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int cap_keep_bind(void)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	d[0].effective = d[0].permitted = 1u << CAP_NET_BIND_SERVICE;
	return syscall(SYS_capset, &h, d) < 0 ? -errno : 0;
}

int px_privs_drop(const struct px_opts *o)
{
	struct passwd *pw;
	int rc;

	if (!o->o_user)
		return 0;
	if (!(pw = getpwnam(o->o_user))) {
		px_err("--user %s: no such user", o->o_user);
		return -ENOENT;
	}
	if (o->o_upstream_privport &&
	    prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) {
		px_err("--user: cannot keep capabilities: %s", strerror(errno));
		return -errno;
	}
	if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0) {
		rc = -errno;
		px_err("--user %s: cannot switch: %s", o->o_user, strerror(-rc));
		return rc;
	}
	/* There is no way back. */
	if (setuid(0) == 0) {
		px_err("--user %s: root could be regained; refusing to run",
		       o->o_user);
		return -EPERM;
	}
	if (o->o_upstream_privport && (rc = cap_keep_bind()) < 0) {
		px_err("--user: cannot keep CAP_NET_BIND_SERVICE: %s",
		       strerror(-rc));
		return rc;
	}
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); /* no core files with keys */
	px_info("running as %s (uid %u)%s", o->o_user, (unsigned)pw->pw_uid,
		o->o_upstream_privport ? ", keeping CAP_NET_BIND_SERVICE" : "");
	return 0;
}

/* Bind fd to a free reserved port (1023 downwards), as secure exports
 * demand of their clients. */
int px_privs_bind_reserved(int fd, int family)
{
	for (unsigned port = 1023; port >= 600; port--) {
		struct sockaddr_storage ss;
		socklen_t sl;

		memset(&ss, 0, sizeof(ss));
		ss.ss_family = (sa_family_t)family;
		if (family == AF_INET6) {
			((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
			sl = sizeof(struct sockaddr_in6);
		} else {
			((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
			sl = sizeof(struct sockaddr_in);
		}
		if (bind(fd, (struct sockaddr *)&ss, sl) == 0)
			return (int)port;
		if (errno != EADDRINUSE)
			return -errno;
	}
	return -EADDRINUSE;
}
