/*
 * proxy/rpcbind.c — the portmapper, both ways: registering our NFS and
 * MOUNT programs with the local rpcbind (libtirpc), and asking a remote
 * rpcbind where MOUNT v3 lives, with a hard time limit (libtirpc's
 * pmap_getport may wait a minute on a dead host).
 */
#include "config.h"
#include "proxy/px.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#define PMAP_PROG 100000u
#define PMAP_VERS 2u
#define PMAPPROC_SET 1u
#define PMAPPROC_UNSET 2u
#define PMAPPROC_GETPORT 3u

/* One PMAP call over TCP to addr, answered within timeout_ms. */
static int pmap_call(const struct sockaddr_storage *addr, socklen_t alen,
		     uint32_t proc, const uint32_t args[4], uint32_t *result,
		     int timeout_ms)
{
	uint8_t buf[256];
	struct rpc_xdr x;
	struct rpc_reply r;
	struct pollfd pfd;
	size_t have = 0;
	int fd, rc = -ETIMEDOUT;

	rpc_xdr_init(&x, buf + 4, sizeof(buf) - 4);
	rpc_call_build(&x, (uint32_t)getpid() ^ (uint32_t)time(NULL), PMAP_PROG,
		       PMAP_VERS, proc, RPC_AUTH_NONE, NULL, 0, RPC_AUTH_NONE,
		       NULL, 0);
	for (int i = 0; i < 4; i++)
		rpc_xdr_put_u32(&x, args[i]);
	rpc_rec_mark(buf, x.x_pos);
	fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)addr, alen) < 0 &&
	    errno != EINPROGRESS) {
		rc = -errno;
		goto out;
	}
	pfd.fd = fd;
	pfd.events = POLLOUT;
	if (poll(&pfd, 1, timeout_ms) != 1 ||
	    write(fd, buf, x.x_pos + 4) != (ssize_t)(x.x_pos + 4))
		goto out;
	pfd.events = POLLIN;
	while (poll(&pfd, 1, timeout_ms) == 1) {
		ssize_t n = read(fd, buf + have, sizeof(buf) - have);

		if (n <= 0)
			break;
		have += (size_t)n;
		if (have >= 4 && have >= 4 + (rpc_get32(buf) & RPC_RM_LENMASK)) {
			size_t len = rpc_get32(buf) & RPC_RM_LENMASK;

			if (rpc_reply_parse(buf + 4, len, &r) ||
			    r.r_stat != RPC_MSG_ACCEPTED ||
			    r.r_accept_stat != RPC_ACC_SUCCESS ||
			    r.r_res_off + 4 > len) {
				rc = -EPROTO;
				break;
			}
			*result = rpc_get32(buf + 4 + r.r_res_off);
			rc = 0;
			break;
		}
	}
out:
	close(fd);
	return rc;
}

int px_rpcbind_getport(const struct sockaddr_storage *host, uint32_t prog,
		       uint32_t vers, uint16_t *port)
{
	struct sockaddr_storage ss = *host;
	uint32_t args[4] = {prog, vers, IPPROTO_TCP, 0}, res = 0;
	int rc;

	if (ss.ss_family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_port = htons(111);
	else if (ss.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(111);
	else
		return -EAFNOSUPPORT;
	rc = pmap_call(&ss, ss.ss_family == AF_INET ? sizeof(struct sockaddr_in)
						    : sizeof(struct sockaddr_in6),
		       PMAPPROC_GETPORT, args, &res, 1000);
	if (rc)
		return rc;
	if (res == 0 || res > 65535)
		return -ENOENT;
	*port = (uint16_t)res;
	return 0;
}

/* Register (on) or unregister NFS v3 and MOUNT v3 on port with the local
 * rpcbind.  Returns 0 or the first error. */
int px_rpcbind_register(bool on, uint16_t port)
{
	static const uint32_t progs[] = {RPC_PROG_NFS, RPC_PROG_MOUNT};
	struct sockaddr_in lo = {.sin_family = AF_INET,
				 .sin_port = htons(111),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct sockaddr_storage ss;
	int rc = 0;

	memcpy(&ss, &lo, sizeof(lo));
	for (int i = 0; i < 2; i++) {
		uint32_t args[4] = {progs[i], 3, IPPROTO_TCP, port}, res = 0;

		pmap_call(&ss, sizeof(lo), PMAPPROC_UNSET, args, &res, 1000);
		if (!on)
			continue;
		if (pmap_call(&ss, sizeof(lo), PMAPPROC_SET, args, &res, 1000) ||
		    !res) {
			px_warn("rpcbind: cannot register program %u v3 on "
				"port %u", progs[i], port);
			rc = rc ? rc : -EPROTO;
		}
	}
	return rc;
}
