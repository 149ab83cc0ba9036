/* The epoll baseline of perf/echo: a plain level-triggered epoll loop. */
#include "epoll_base.h"

static int eb_on_data(eb_conn *c)
{
	if (c->out_len + c->in_len > sizeof c->out)
		return -1;
	memcpy(c->out + c->out_len, c->in, c->in_len);
	c->out_len += c->in_len;
	c->in_len = 0;
	return 0;
}

static int serve(gx_srv_opts *o)
{
	return eb_serve(o, "echo-epoll");
}

int main(int argc, char **argv)
{
	return gx_srv_run(gx_srv_parse(argc, argv), serve);
}
