/*
 * echo on libgonex-uring: one coroutine per connection, recv then send back
 * what came, until the peer closes. SIGINT/SIGTERM stop it cleanly.
 */
#include "server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <gonex/gonex.h>

static gx_srv_opts O;
static gx_listener *L;
static int stopping;

static void conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[16384];
	for (;;) {
		ssize_t n = gx_recv(fd, buf, sizeof buf, 0, gx_timeout(O.idle_timeout_ms * GX_MILLISECOND));
		if (n <= 0 || gx_send(fd, buf, (size_t)n, 0, gx_timeout(O.read_timeout_ms * GX_MILLISECOND)) < 0)
			break;
	}
	gx_close(fd);
}

static void on_signal(void *arg)
{
	struct signalfd_siginfo si;
	if (gx_read((int)(intptr_t)arg, &si, sizeof si, GX_FOREVER) == sizeof si) {
		stopping = 1;
		gx_listener_stop(L);
	}
}

static int serve_main(void *arg)
{
	(void)arg;
	int lfd = gx_listen_tcp("0.0.0.0", (uint16_t)O.port, 4096, O.workers > 1);
	if (lfd < 0) {
		fprintf(stderr, "echo: listen on port %d: %s\n", O.port, strerror(-lfd));
		return 1;
	}
	int sfd = gx_srv_signalfd();
	if (gx_listener_start(&L, lfd) < 0)
		return 1;
	gx_listener *mine = L;
	gx_go(on_signal, (void *)(intptr_t)sfd);
	if (O.worker_index == 0)
		fprintf(stderr, "echo: listening on port %d\n", gx_local_port(lfd));
	while (!stopping) {
		int fd = gx_listener_accept(mine, GX_FOREVER);
		if (fd < 0) {
			if (!stopping && fd != -ECANCELED)
				gx_sleep(10 * GX_MILLISECOND);
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

static int serve(gx_srv_opts *o)
{
	O = *o;
	return gx_run(NULL, serve_main, NULL) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	return gx_srv_run(gx_srv_parse(argc, argv), serve);
}
