/*
 * gx_serve's listening sockets, bound by the master before any worker
 * exists and held open by it until gx_serve returns.
 *
 * Two ways to spread connections over the workers (cfg->reuseport):
 *  - reuseport (the default for TCP): worker i has socket i of an
 *    SO_REUSEPORT group, and the kernel hashes each new connection to one
 *    socket of the group. Balanced, and no worker's accept wakes another.
 *    The master holds every socket, so a worker that dies or is rolled
 *    closes none of them: its queue waits for the worker that takes its
 *    slot (the new one of a rolling restart accepts from it before the
 *    old one stops).
 *  - shared: one socket that every worker accepts from. A slow worker's
 *    share goes to the others, but the kernel wakes one waiter per
 *    connection, and often the same one, so one worker may take most
 *    connections (measured: all 64 of wrk's, with two workers). Unix sockets are always
 *    shared (AF_UNIX has no SO_REUSEPORT).
 *
 * Rejected: a socket per worker that the worker binds itself (closing it
 * at its exit drops its queue unless net.ipv4.tcp_migrate_req is set,
 * which is system-wide and needs root).
 */
#include "serve/serve.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <gonex/io.h>

static int gx_serve_unix(const char *path, int backlog, char *keep)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (!*path || strlen(path) >= sizeof sa.sun_path)
		return -EINVAL;
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, backlog) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	strcpy(keep, path);
	return fd;
}

/* "host:port", "[v6]:port" or ":port" into host (empty: any IPv4) and
 * *port: 0, or -EINVAL. */
static int gx_serve_parse(const char *spec, char host[64], int *port)
{
	const char *colon = strrchr(spec, ':');
	if (!colon)
		return -EINVAL;
	size_t hl = (size_t)(colon - spec);
	if (hl >= 2 && spec[0] == '[' && spec[hl - 1] == ']') {
		spec++;
		hl -= 2;
	}
	if (hl >= 64)
		return -EINVAL;
	memcpy(host, spec, hl);
	host[hl] = 0;
	char *end;
	errno = 0;
	long p = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || p < 0 || p > 65535)
		return -EINVAL;
	*port = (int)p;
	return 0;
}

/* The options accepted sockets inherit from their listener (the kernel
 * clones the listening socket): one setsockopt per listener, none per
 * connection. 0, or -errno naming the option in *what. */
static int gx_serve_sockopts(const gx_server *s, int fd, const char **what)
{
	int v = s->cfg.nodelay;
	*what = "TCP_NODELAY";
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v) < 0)
		return -errno;
	v = s->cfg.busy_poll_us;
	*what = "SO_BUSY_POLL";
	if (v && setsockopt(fd, SOL_SOCKET, SO_BUSY_POLL, &v, sizeof v) < 0)
		return -errno;
	return 0;
}

/* Bind listener li for every worker: 0 or -errno (*what names the
 * socket option that failed, NULL when binding did). */
static int gx_serve_bind(gx_server *s, int li, const char **what)
{
	const char *spec = s->cfg.listen[li];
	int *fds = s->lfd[li];
	if (!strncmp(spec, "unix:", 5)) {
		int fd = gx_serve_unix(spec + 5, s->cfg.backlog, s->upath[li]);
		for (int i = 0; i < s->nworkers; i++)
			fds[i] = fd;
		return fd < 0 ? fd : 0;
	}
	char host[64];
	int port;
	if (gx_serve_parse(spec, host, &port) < 0)
		return -EINVAL;
	int n = s->cfg.reuseport ? s->nworkers : 1;
	for (int i = 0; i < n; i++) {
		int fd = gx_listen_tcp(host[0] ? host : NULL, (uint16_t)port, s->cfg.backlog, s->cfg.reuseport);
		if (fd < 0)
			return fd;
		fds[i] = fd;
		int rc = gx_serve_sockopts(s, fd, what);
		if (rc < 0)
			return rc;
		if (i == 0)
			port = s->port[li] = gx_local_port(fd); /* port 0: the rest join the first */
	}
	for (int i = n; i < s->nworkers; i++)
		fds[i] = fds[0];
	return 0;
}

void gx_serve_unbind(gx_server *s)
{
	for (int li = 0; li < s->nlisten; li++) {
		for (int i = 0; i < s->nworkers; i++)
			if (s->lfd[li][i] >= 0 && (i == 0 || s->lfd[li][i] != s->lfd[li][0]))
				close(s->lfd[li][i]);
		if (s->upath[li][0])
			unlink(s->upath[li]);
	}
	s->nlisten = 0;
}

int gx_serve_listen(gx_server *s)
{
	for (int li = 0; li < GX_SERVE_MAX_LISTEN && s->cfg.listen[li]; li++) {
		for (int i = 0; i < GX_SERVE_MAX_WORKERS; i++)
			s->lfd[li][i] = -1;
		s->nlisten = li + 1;
		const char *what = NULL;
		int rc = gx_serve_bind(s, li, &what);
		if (rc < 0) {
			if (what)
				fprintf(stderr, "gonex: serve: cannot set %s on \"%s\": %s\n", what,
					s->cfg.listen[li], strerror(-rc));
			else
				fprintf(stderr, "gonex: serve: cannot listen on \"%s\": %s\n", s->cfg.listen[li],
					rc == -EINVAL ? "not host:port or unix:/path" : strerror(-rc));
			gx_serve_unbind(s);
			return rc;
		}
	}
	return 0;
}
