/*
 * httpd on libgonex-uring: one coroutine per connection, straight-line
 * recv / parse / send, HTTP/1.1 keep-alive and pipelining (every complete
 * request in a read is answered in one send). GET / answers 200 "Hello,
 * World!". Malformed requests get 400 and a close, headers over 8 KiB 431
 * and a close; a client that stalls mid-request is closed after
 * --read-timeout, an idle keep-alive connection after --idle-timeout.
 * SIGINT/SIGTERM stop it cleanly.
 */
#include "rt_server.h"

#include "http.h"

static void conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[GX_HTTP_MAX_HEADER];
	char out[16384];
	size_t have = 0;
	for (;;) {
		size_t off = 0, olen = 0;
		int close_after = 0;
		while (!close_after) {
			gx_http_req r;
			enum gx_http_verdict v = gx_http_next(buf + off, have - off, &r);
			if (v == GX_HTTP_NEED_MORE)
				break;
			if (olen + sizeof GX_HTTP_200_CLOSE > sizeof out) {
				if (gx_send(fd, out, olen, 0, gx_timeout(O.read_timeout_ms * GX_MILLISECOND)) < 0)
					goto done;
				olen = 0;
			}
			if (v == GX_HTTP_BAD || v == GX_HTTP_TOO_LARGE) {
				const char *m = v == GX_HTTP_BAD ? GX_HTTP_400 : GX_HTTP_431;
				size_t ml = v == GX_HTTP_BAD ? sizeof GX_HTTP_400 - 1 : sizeof GX_HTTP_431 - 1;
				memcpy(out + olen, m, ml);
				olen += ml;
				close_after = 1;
				break;
			}
			olen += gx_http_answer(v, &r, out + olen);
			off += r.len;
			close_after = !r.keep_alive;
		}
		if (olen && gx_send(fd, out, olen, 0, gx_timeout(O.read_timeout_ms * GX_MILLISECOND)) < 0)
			goto done;
		if (close_after)
			goto done;
		if (off) {
			memmove(buf, buf + off, have - off);
			have -= off;
		}
		int64_t limit = (have ? O.read_timeout_ms : O.idle_timeout_ms) * GX_MILLISECOND;
		ssize_t n = gx_recv(fd, buf + have, sizeof buf - have, 0, gx_timeout(limit));
		if (n <= 0)
			goto done;
		have += (size_t)n;
	}
done:
	gx_close(fd);
}

static int serve_main(void *arg)
{
	(void)arg;
	return rt_serve("httpd", conn);
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
