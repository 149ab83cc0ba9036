/* Timers and tickers on channels: fire once, stop, reset, ticks dropped for a slow receiver. */
#include <criterion/criterion.h>
#include <errno.h>

#include "testing.h"

#define RUN(fn) cr_assert_eq(gx_run(NULL, fn, NULL), 0)

static int fires_once(void *arg)
{
	(void)arg;
	gx_timer *t;
	int64_t t0 = gx_now();
	cr_assert_eq(gx_timer_make(&t, 2 * GX_MILLISECOND), 0);
	int64_t when = 0;
	cr_expect_eq(gx_chan_recv(gx_timer_chan(t), &when, NULL, GX_FOREVER), 0);
	cr_expect_geq(when, t0 + 2 * GX_MILLISECOND, "never early");
	cr_expect_geq(gx_now(), when);
	cr_expect_eq(gx_chan_recv(gx_timer_chan(t), &when, NULL, gx_timeout(5 * GX_MILLISECOND)), -ETIMEDOUT,
		     "one-shot");
	cr_expect_eq(gx_timer_stop(t), 0, "already fired");
	cr_expect_eq(gx_timer_free(t), 0);
	return 0;
}

Test(timer, fires_once_never_early)
{
	RUN(fires_once);
}

static int stop_and_reset(void *arg)
{
	(void)arg;
	gx_timer *t;
	cr_assert_eq(gx_timer_make(&t, 2 * GX_MILLISECOND), 0);
	cr_expect_eq(gx_timer_stop(t), 1, "stopped before it fired");
	int64_t v;
	cr_expect_eq(gx_chan_recv(gx_timer_chan(t), &v, NULL, gx_timeout(5 * GX_MILLISECOND)), -ETIMEDOUT);

	cr_expect_eq(gx_timer_reset(t, GX_MILLISECOND), 0, "was not pending");
	gx_sleep(3 * GX_MILLISECOND);
	cr_expect_eq(gx_chan_len(gx_timer_chan(t)), 1, "fired into the buffer");
	cr_expect_eq(gx_timer_stop(t), 1, "fired but not received counts as pending (Go 1.23)");
	cr_expect_eq(gx_timer_stop(t), 0, "stopped already");
	cr_expect_eq(gx_chan_try_recv(gx_timer_chan(t), &v, NULL), -EAGAIN,
		     "no stale value after stop (Go 1.23)");

	cr_expect_eq(gx_timer_reset(t, 50 * GX_MILLISECOND), 0);
	cr_expect_eq(gx_timer_reset(t, GX_MILLISECOND), 1, "was pending");
	int64_t t0 = gx_now();
	cr_expect_eq(gx_chan_recv(gx_timer_chan(t), &v, NULL, GX_FOREVER), 0);
	cr_expect_lt(gx_now() - t0, 40 * GX_MILLISECOND, "the reset deadline, not the first");
	cr_expect_eq(gx_timer_stop(NULL), -EINVAL);
	gx_timer_free(t);
	return 0;
}

Test(timer, stop_and_reset)
{
	RUN(stop_and_reset);
}

static int ticker(void *arg)
{
	(void)arg;
	gx_ticker *tk;
	cr_expect_eq(gx_ticker_make(&tk, 0), -EINVAL);
	cr_assert_eq(gx_ticker_make(&tk, GX_MILLISECOND), 0);
	int64_t prev = 0, v;
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(gx_chan_recv(gx_ticker_chan(tk), &v, NULL, GX_FOREVER), 0);
		cr_expect_gt(v, prev);
		prev = v;
	}
	/* a slow receiver: ticks are dropped, not queued */
	gx_sleep(10 * GX_MILLISECOND);
	cr_expect_eq(gx_chan_len(gx_ticker_chan(tk)), 1, "at most one tick waits");
	cr_expect_eq(gx_ticker_stop(tk), 0);
	cr_expect_eq(gx_chan_try_recv(gx_ticker_chan(tk), &v, NULL), -EAGAIN);
	gx_sleep(5 * GX_MILLISECOND);
	cr_expect_eq(gx_chan_len(gx_ticker_chan(tk)), 0, "a stopped ticker is quiet");
	int64_t t0 = gx_now();
	cr_expect_eq(gx_ticker_reset(tk, 2 * GX_MILLISECOND), 0);
	cr_expect_eq(gx_chan_recv(gx_ticker_chan(tk), &v, NULL, GX_FOREVER), 0);
	cr_expect_geq(v - t0, 2 * GX_MILLISECOND);
	cr_expect_eq(gx_ticker_free(tk), 0);
	return 0;
}

Test(timer, ticker_ticks_and_drops_for_a_slow_receiver)
{
	RUN(ticker);
}

static gx_timer *blocked_t;
static void wait_timer(void *arg)
{
	(void)arg;
	gx_chan_recv(gx_timer_chan(blocked_t), NULL, NULL, GX_FOREVER);
}

static int in_select(void *arg)
{
	(void)arg;
	gx_chan *never;
	gx_chan_make(&never, 1, 0, 0);
	gx_timer *t;
	gx_timer_make(&t, GX_MILLISECOND);
	int64_t v;
	gx_case cs[2] = {{.chan = never, .op = GX_RECV}, {.chan = gx_timer_chan(t), .op = GX_RECV, .elem = &v}};
	cr_expect_eq(gx_select(cs, 2, GX_FOREVER), 1);
	gx_timer_free(t);
	gx_chan_free(never);

	gx_timer_make(&blocked_t, GX_SECOND);
	gx_go(wait_timer, NULL);
	gx_yield();
	cr_expect_eq(gx_timer_free(blocked_t), -EBUSY, "a coroutine waits on it");
	gx_timer_reset(blocked_t, 0);
	gx_sleep(GX_MILLISECOND);
	cr_expect_eq(gx_timer_free(blocked_t), 0);
	return 0;
}

Test(timer, works_in_select_and_is_not_freed_under_a_waiter)
{
	RUN(in_select);
}

Test(timer, outside_run_is_refused)
{
	gx_timer *t = (gx_timer *)1;
	gx_ticker *k;
	cr_expect_eq(gx_timer_make(&t, 1), -EPERM);
	cr_expect_null(t);
	cr_expect_eq(gx_ticker_make(&k, 1), -EPERM);
	cr_expect_eq(gx_timer_free(NULL), 0);
}

/* ---- a coroutine's deadline timer, reused across waits ---- */

/* A coroutine waits on a channel with a deadline far off and is woken
 * early (its timer stays armed, far off); then waits with a near
 * deadline: that one must end the wait, on time. */
static gx_chan *wake_a;
static int order[2], norder, a_ready;

static void wake_soon(void *arg)
{
	(void)arg;
	int v = 1;
	gx_chan_send(wake_a, &v, GX_FOREVER);
}

static void b_waits(void *arg)
{
	int64_t d = *(int64_t *)arg;
	int v;
	cr_expect_eq(gx_chan_recv(wake_a, &v, NULL, gx_deadline(d)), -ETIMEDOUT);
	cr_expect_geq(gx_now(), d, "B never early");
	order[norder++] = 'B';
}

static int reused_timer(void *arg)
{
	(void)arg;
	int v;
	cr_assert_eq(gx_chan_make(&wake_a, sizeof(int), 0, 0), 0);
	/* far deadline, woken early; then a nearer one must still fire */
	gx_go(wake_soon, NULL);
	cr_expect_eq(gx_chan_recv(wake_a, &v, NULL, gx_timeout(10 * GX_SECOND)), 0);
	int64_t t0 = gx_now(), near = t0 + 5 * GX_MILLISECOND;
	cr_expect_eq(gx_chan_recv(wake_a, &v, NULL, gx_deadline(near)), -ETIMEDOUT);
	cr_expect_geq(gx_now(), near, "never early");
	cr_expect_lt(gx_now(), t0 + 5 * GX_SECOND, "the near deadline ended it, not the far one");
	gx_chan_free(wake_a);
	return 0;
}

Test(timer, a_coroutines_timer_serves_every_wait_never_early)
{
	RUN(reused_timer);
}

/* A is woken early from a near deadline, then waits for a later one set
 * before B's equal one: A's timer fires early and re-arms, and A still
 * times out first, never before its deadline. */
static int64_t tie;
static void a_waits(void *arg)
{
	(void)arg;
	int v;
	/* armed early and left: fires at +1 ms, re-arms at the tie */
	gx_go(wake_soon, NULL);
	cr_expect_eq(gx_chan_recv(wake_a, &v, NULL, gx_timeout(GX_MILLISECOND)), 0);
	a_ready = 1; /* no park between this and the wait below */
	cr_expect_eq(gx_chan_recv(wake_a, &v, NULL, gx_deadline(tie)), -ETIMEDOUT);
	cr_expect_geq(gx_now(), tie, "A never early");
	order[norder++] = 'A';
}

static int tie_order(void *arg)
{
	(void)arg;
	cr_assert_eq(gx_chan_make(&wake_a, sizeof(int), 0, 0), 0);
	norder = a_ready = 0;
	tie = gx_now() + 30 * GX_MILLISECOND;
	gx_go(a_waits, NULL);
	while (!a_ready) /* A sets its deadline first */
		gx_yield();
	gx_go(b_waits, &tie);
	gx_sleep(60 * GX_MILLISECOND);
	cr_expect_eq(norder, 2);
	cr_expect(order[0] == 'A' && order[1] == 'B', "equal deadlines end in the order they were set, "
						      "even when one timer was re-armed (got %c%c)",
		  order[0], order[1]);
	gx_chan_free(wake_a);
	return 0;
}

Test(timer, a_rearmed_timer_keeps_its_place_among_equal_deadlines)
{
	RUN(tie_order);
}
