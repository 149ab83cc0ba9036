/* select: uniform choice among ready cases, losers untouched, nil cases, default, deadlines. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "testing.h"

#define RUN(fn) cr_assert_eq(gx_run(NULL, fn, NULL), 0)

static gx_chan *mk(size_t elem, size_t cap)
{
	gx_chan *c;
	cr_assert_eq(gx_chan_make(&c, elem, cap, 0), 0);
	return c;
}

static int ready_case_only(void *arg)
{
	(void)arg;
	gx_chan *a = mk(sizeof(int), 1), *b = mk(sizeof(int), 1);
	int v = 5, out = 0;
	gx_chan_try_send(b, &v);
	gx_case cs[3] = {{.chan = a, .op = GX_RECV, .elem = &out},
			 {.chan = NULL, .op = GX_RECV, .elem = &out},
			 {.chan = b, .op = GX_RECV, .elem = &out}};
	for (int i = 0; i < 3; i++) {
		cs[2].ok = false;
		cr_expect_eq(gx_select(cs, 3, GX_FOREVER), 2);
		cr_expect_eq(out, 5);
		cr_expect(cs[2].ok);
		gx_chan_try_send(b, &v);
	}
	gx_chan_free(a);
	gx_chan_free(b);
	return 0;
}

Test(select, picks_the_ready_case_and_never_a_nil_one)
{
	RUN(ready_case_only);
}

#define ROUNDS 30000
static int uniform(void *arg)
{
	(void)arg;
	enum { K = 3 };
	gx_chan *c[K];
	int counts[K] = {0}, v = 1, out;
	gx_case cs[K];
	for (int i = 0; i < K; i++) {
		c[i] = mk(sizeof(int), 1);
		gx_chan_try_send(c[i], &v);
		cs[i] = (gx_case){.chan = c[i], .op = GX_RECV, .elem = &out};
	}
	for (int r = 0; r < ROUNDS; r++) {
		int k = gx_select(cs, K, GX_FOREVER);
		cr_assert(k >= 0 && k < K);
		counts[k]++;
		for (int i = 0; i < K; i++)
			cr_assert_eq(gx_chan_len(c[i]), i == k ? 0u : 1u, "a losing case consumed nothing");
		gx_chan_try_send(c[k], &v);
	}
	/* chi-square with 2 degrees of freedom; 18.4 is the 0.9999 quantile */
	double chi = 0, e = ROUNDS / (double)K;
	for (int i = 0; i < K; i++)
		chi += (counts[i] - e) * (counts[i] - e) / e;
	cr_expect_lt(chi, 18.4, "counts %d %d %d (chi-square %.1f)", counts[0], counts[1], counts[2], chi);
	for (int i = 0; i < K; i++)
		gx_chan_free(c[i]);
	return 0;
}

Test(select, choice_among_ready_cases_is_uniform)
{
	RUN(uniform);
}

static int send_and_recv_mix(void *arg)
{
	(void)arg;
	/* a ready send and a ready receive: both chosen, each time exactly one happens */
	gx_chan *in = mk(sizeof(int), 1), *outc = mk(sizeof(int), 1);
	int sends = 0, recvs = 0, v = 3, got;
	for (int r = 0; r < 2000; r++) {
		gx_chan_try_send(in, &v);
		gx_case cs[2] = {{.chan = in, .op = GX_RECV, .elem = &got},
				 {.chan = outc, .op = GX_SEND, .elem = &v}};
		int k = gx_select(cs, 2, GX_FOREVER);
		if (k == 0) {
			recvs++;
			cr_assert_eq(gx_chan_len(outc), 0);
		} else {
			sends++;
			cr_assert_eq(gx_chan_len(in), 1);
			gx_chan_try_recv(outc, NULL, NULL);
		}
		gx_chan_try_recv(in, NULL, NULL);
	}
	cr_expect_gt(sends, 800);
	cr_expect_gt(recvs, 800);
	gx_chan_free(in);
	gx_chan_free(outc);
	return 0;
}

Test(select, send_and_receive_cases_mix)
{
	RUN(send_and_recv_mix);
}

static int defaults(void *arg)
{
	(void)arg;
	gx_chan *a = mk(sizeof(int), 0);
	int v = 0;
	gx_case cs[2] = {{.chan = a, .op = GX_RECV, .elem = &v}, {.chan = NULL, .op = GX_SEND, .elem = &v}};
	cr_expect_eq(gx_select_try(cs, 2), -EAGAIN, "nothing ready: the default");
	cr_expect_eq(gx_select_try(NULL, 0), -EAGAIN);
	cr_expect_eq(gx_select(cs, 2, gx_timeout(GX_MILLISECOND)), -ETIMEDOUT);
	gx_case bad = {.chan = a, .op = 7};
	cr_expect_eq(gx_select(&bad, 1, GX_FOREVER), -EINVAL);
	cr_expect_eq(gx_select(NULL, 3, GX_FOREVER), -EINVAL);
	gx_chan_free(a);
	return 0;
}

Test(select, default_deadline_and_bad_cases)
{
	RUN(defaults);
}

static gx_chan *ca, *cb;
static int selected = -1;
static int sel_val;

static void blocked_select(void *arg)
{
	(void)arg;
	gx_case cs[2] = {{.chan = ca, .op = GX_RECV, .elem = &sel_val},
			 {.chan = cb, .op = GX_RECV, .elem = &sel_val}};
	selected = gx_select(cs, 2, GX_FOREVER);
}

static int loser_untouched(void *arg)
{
	(void)arg;
	ca = mk(sizeof(int), 0);
	cb = mk(sizeof(int), 0);
	selected = -1;
	gx_go(blocked_select, NULL);
	gx_yield();
	int v = 11;
	cr_expect_eq(gx_chan_try_send(cb, &v), 0, "the select takes it");
	gx_yield();
	cr_expect_eq(selected, 1);
	cr_expect_eq(sel_val, 11);
	cr_expect_eq(gx_chan_try_send(ca, &v), -EAGAIN, "the losing case left no receiver behind");
	cr_expect_eq(gx_chan_try_send(cb, &v), -EAGAIN);
	gx_chan_free(ca);
	gx_chan_free(cb);
	return 0;
}

Test(select, blocked_select_wakes_once_and_losers_stay_untouched)
{
	RUN(loser_untouched);
}

static int send_case_taken;
static void blocked_send_select(void *arg)
{
	(void)arg;
	static int v = 21, r;
	gx_case cs[2] = {{.chan = ca, .op = GX_SEND, .elem = &v}, {.chan = ca, .op = GX_RECV, .elem = &r}};
	send_case_taken = gx_select(cs, 2, GX_FOREVER);
}

static int send_case(void *arg)
{
	(void)arg;
	ca = mk(sizeof(int), 0);
	send_case_taken = -1;
	gx_go(blocked_send_select, NULL);
	gx_yield();
	cr_expect_eq(send_case_taken, -1, "send and receive on one channel in one select do not pair");
	int got = 0;
	cr_expect_eq(gx_chan_recv(ca, &got, NULL, GX_FOREVER), 0);
	cr_expect_eq(got, 21);
	gx_yield();
	cr_expect_eq(send_case_taken, 0);
	gx_chan_free(ca);
	return 0;
}

Test(select, blocked_send_case_delivers_to_a_receiver)
{
	RUN(send_case);
}

static int closed_cases(void *arg)
{
	(void)arg;
	gx_chan *c = mk(sizeof(int), 0), *never = mk(sizeof(int), 0);
	gx_chan_close(c);
	int v = 9;
	gx_case s[2] = {{.chan = c, .op = GX_SEND, .elem = &v}, {.chan = never, .op = GX_RECV, .elem = &v}};
	cr_expect_eq(gx_select(s, 2, GX_FOREVER), -EPIPE, "a send on a closed channel is an error");
	gx_case r[2] = {{.chan = never, .op = GX_RECV, .elem = &v}, {.chan = c, .op = GX_RECV, .elem = &v, .ok = true}};
	cr_expect_eq(gx_select(r, 2, GX_FOREVER), 1);
	cr_expect(!r[1].ok);
	cr_expect_eq(v, 0);
	gx_chan_free(c);
	gx_chan_free(never);
	return 0;
}

Test(select, closed_channels_are_ready)
{
	RUN(closed_cases);
}

static int close_in_select_result;
static void select_then_close(void *arg)
{
	(void)arg;
	int v;
	gx_case cs[1] = {{.chan = ca, .op = GX_SEND, .elem = &v}};
	close_in_select_result = gx_select(cs, 1, GX_FOREVER);
}

static int close_wakes_select(void *arg)
{
	(void)arg;
	ca = mk(sizeof(int), 0);
	gx_go(select_then_close, NULL);
	gx_yield();
	gx_chan_close(ca);
	gx_yield();
	cr_expect_eq(close_in_select_result, -EPIPE);
	gx_chan_free(ca);
	return 0;
}

Test(select, close_wakes_a_blocked_send_case_with_an_error)
{
	RUN(close_wakes_select);
}

static gx_ctx *sctx;
static void cancel_soon(void *arg)
{
	(void)arg;
	gx_yield();
	gx_ctx_cancel(sctx);
}

static int ctx_select(void *arg)
{
	(void)arg;
	ca = mk(sizeof(int), 0);
	gx_ctx_with_cancel(gx_ctx_background(), &sctx);
	gx_go(cancel_soon, NULL);
	int v;
	gx_case cs[2] = {{.chan = ca, .op = GX_RECV, .elem = &v}, {.chan = NULL, .op = GX_RECV}};
	cr_expect_eq(gx_select(cs, 2, gx_ctx_until(sctx)), -ECANCELED);
	gx_ctx_release(sctx);
	cr_expect_eq(gx_chan_try_send(ca, &v), -EAGAIN, "no receiver left behind");
	gx_chan_free(ca);
	return 0;
}

Test(select, context_ends_a_blocked_select)
{
	RUN(ctx_select);
}

#define MANY 40
static gx_chan *many[MANY];
static int many_sel;
static void many_select(void *arg)
{
	(void)arg;
	gx_case cs[MANY];
	int v;
	for (int i = 0; i < MANY; i++)
		cs[i] = (gx_case){.chan = many[i], .op = GX_RECV, .elem = &v};
	many_sel = gx_select(cs, MANY, GX_FOREVER);
}

static int many_cases(void *arg)
{
	(void)arg;
	for (int i = 0; i < MANY; i++)
		many[i] = mk(sizeof(int), 0);
	many_sel = -1;
	gx_go(many_select, NULL);
	gx_yield();
	int v = 1;
	cr_expect_eq(gx_chan_try_send(many[33], &v), 0);
	gx_yield();
	cr_expect_eq(many_sel, 33);
	for (int i = 0; i < MANY; i++) {
		cr_expect_eq(gx_chan_try_send(many[i], &v), -EAGAIN);
		gx_chan_free(many[i]);
	}
	return 0;
}

Test(select, many_cases)
{
	RUN(many_cases);
}
