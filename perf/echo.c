/*
 * echo on libgonex-uring: one coroutine per connection, recv then send back
 * what came, until the peer closes. SIGINT/SIGTERM stop it cleanly.
 */
#include "rt_server.h"

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

static int serve_main(void *arg)
{
	(void)arg;
	return rt_serve("echo", conn);
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
