/*
 * echo: a TCP echo server on gx_serve. Each connection's coroutine sends
 * back what comes until the peer closes; what one turn received leaves in
 * one send (gx_conn corks the writes until the connection waits).
 *
 *   build/examples/echo --port 7000 --workers 2
 */
#include "flags.h"

static void echo_conn(gx_serve_conn *sc, void *arg)
{
	(void)arg;
	gx_conn *c = sc->conn;
	gx_until u = gx_ctx_until(sc->ctx);
	for (;;) {
		const char *p;
		size_t n = gx_conn_buffered(c, &p);
		if (n == 0) {
			if (gx_conn_fill(c, u) <= 0)
				return; /* closed, idle too long, or the drain */
			continue;
		}
		if (gx_conn_write(c, p, n, u) < 0)
			return;
		gx_conn_skip(c, n);
	}
}

int main(int argc, char **argv)
{
	ex_opts o;
	ex_parse(&o, "echo", argc, argv);
	return ex_serve(&o, echo_conn, NULL);
}
