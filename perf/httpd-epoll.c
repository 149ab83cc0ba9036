/* The epoll baseline of perf/httpd: the same parser and answers, a plain
 * level-triggered epoll loop (no read deadlines). */
#include "epoll_base.h"
#include "http.h"

static int eb_on_data(eb_conn *c)
{
	size_t off = 0;
	while (!c->close_after) {
		gx_http_req r;
		enum gx_http_verdict v = gx_http_next(c->in + off, c->in_len - off, &r);
		if (v == GX_HTTP_NEED_MORE)
			break;
		if (c->out_len + sizeof GX_HTTP_200_CLOSE > sizeof c->out)
			return -1; /* a client pipelining faster than it reads */
		if (v == GX_HTTP_BAD || v == GX_HTTP_TOO_LARGE) {
			const char *m = v == GX_HTTP_BAD ? GX_HTTP_400 : GX_HTTP_431;
			size_t ml = strlen(m);
			memcpy(c->out + c->out_len, m, ml);
			c->out_len += ml;
			c->close_after = 1;
			break;
		}
		c->out_len += gx_http_answer(v, &r, c->out + c->out_len);
		off += r.len;
		c->close_after = !r.keep_alive;
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
	return 0;
}

static int serve(gx_srv_opts *o)
{
	return eb_serve(o, "httpd-epoll");
}

int main(int argc, char **argv)
{
	return gx_srv_run(gx_srv_parse(argc, argv), serve);
}
