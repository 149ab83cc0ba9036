/*
 * The accept loop of the example servers on the runtime (httpd, echo):
 * a listener (multishot accept on io_uring), one coroutine per connection,
 * and a coroutine that turns SIGINT/SIGTERM into a clean stop.
 */
#ifndef GX_PERF_RT_SERVER_H
#define GX_PERF_RT_SERVER_H

#include "server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <gonex/gonex.h>

static gx_srv_opts O;
static gx_listener *rt_listener;
static int rt_stopping;

static void rt_on_signal(void *arg)
{
	struct signalfd_siginfo si;
	if (gx_read((int)(intptr_t)arg, &si, sizeof si, GX_FOREVER) == sizeof si) {
		rt_stopping = 1;
		gx_listener_stop(rt_listener); /* wakes the acceptor with -ECANCELED */
	}
}

/* Accept until stopped, serving each connection with conn(fd). */
static int rt_serve(const char *name, gx_fn conn)
{
	int lfd = gx_listen_tcp("0.0.0.0", (uint16_t)O.port, 4096, O.workers > 1);
	if (lfd < 0) {
		fprintf(stderr, "%s: listen on port %d: %s\n", name, O.port, strerror(-lfd));
		return 1;
	}
	int sfd = gx_srv_signalfd();
	gx_listener *l;
	if (gx_listener_start(&l, lfd) < 0)
		return 1;
	rt_listener = l;
	gx_go(rt_on_signal, (void *)(intptr_t)sfd);
	if (O.worker_index == 0)
		fprintf(stderr, "%s: listening on port %d (%d worker%s)\n", name, gx_local_port(lfd), O.workers,
			O.workers > 1 ? "s" : "");
	while (!rt_stopping) {
		int fd = gx_listener_accept(l, GX_FOREVER);
		if (fd < 0) {
			if (!rt_stopping && fd != -ECANCELED)
				gx_sleep(10 * GX_MILLISECOND); /* out of fds: let some close */
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if (gx_go(conn, (void *)(intptr_t)fd) < 0)
			gx_close(fd);
	}
	gx_close(lfd);
	gx_close(sfd);
	return 0;
}

#endif
