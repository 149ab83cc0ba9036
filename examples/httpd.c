/*
 * httpd: an HTTP/1.1 server on gx_serve, in the shape of any protocol
 * server on this library: one coroutine per connection, straight-line
 * code over a gx_conn.
 *
 * GET or HEAD of "/" answers 200 "Hello, World!" (13 bytes, text/plain),
 * any other path 404. Keep-alive (HTTP/1.1 by default, HTTP/1.0 when
 * asked) and pipelining: every request that has come is answered, and the
 * answers of one turn leave in one send (gx_conn corks them until the
 * connection waits for more). Bad requests get 400 and a close, headers
 * over 8 KiB 431 and a close, a request that stalls past --read-timeout
 * 408 and a close; a connection idle past --idle-timeout is closed.
 *
 *   build/examples/httpd --port 8080 --workers 2
 *   curl -s localhost:8080/
 */
#include "flags.h"
#include "http.h"

#define HTTP_408 \
	"HTTP/1.1 408 Request Timeout\r\nServer: gonex\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

static void reply(gx_conn *c, const char *s, gx_until u)
{
	gx_conn_write(c, s, strlen(s), u);
}

static void http_conn(gx_serve_conn *sc, void *arg)
{
	(void)arg;
	gx_conn *c = sc->conn;
	gx_until u = gx_ctx_until(sc->ctx); /* the drain's deadline */
	for (;;) {
		const char *p;
		size_t n = gx_conn_buffered(c, &p);
		gx_http_req r;
		enum gx_http_verdict v = gx_http_next(p, n, &r);
		if (v == GX_HTTP_NEED_MORE) {
			ssize_t got = gx_conn_fill(c, u); /* sends what is queued first */
			if (got == -ENOBUFS)
				v = GX_HTTP_TOO_LARGE;
			else if (got == -ETIMEDOUT && n > 0 && gx_conn_timed_out(c))
				return reply(c, HTTP_408, u);
			else if (got <= 0)
				return; /* closed, idle too long, or the drain */
			else
				continue;
		}
		if (v == GX_HTTP_BAD || v == GX_HTTP_TOO_LARGE)
			return reply(c, v == GX_HTTP_BAD ? GX_HTTP_400 : GX_HTTP_431, u);
		char out[sizeof GX_HTTP_200_CLOSE];
		size_t len = gx_http_answer(v, &r, out);
		gx_conn_skip(c, r.len);
		if (gx_conn_write(c, out, len, u) < 0 || !r.keep_alive)
			return;
	}
}

int main(int argc, char **argv)
{
	ex_opts o;
	ex_parse(&o, "httpd", argc, argv);
	o.cfg.conn_cap = 2 * GX_HTTP_MAX_HEADER; /* holds any request it accepts */
	return ex_serve(&o, http_conn, NULL);
}
