/* Contexts: cancellation down the tree, deadlines, causes, values, done in select, release while waited on, SIGTERM cancelling a signal context. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <gonex/gonex.h>

#include "harness.h"

static void cancel_it(void *arg)
{
	rec('x');
	cr_expect_eq(gx_ctx_cancel(arg), 0);
}

static gx_ctx *new_cancel(gx_ctx *parent)
{
	gx_ctx *c = NULL;
	cr_assert_eq(gx_ctx_with_cancel(parent, &c), 0);
	cr_assert_not_null(c);
	return c;
}

static gx_ctx *new_value(gx_ctx *parent, const void *key, void *value)
{
	gx_ctx *c = NULL;
	cr_assert_eq(gx_ctx_with_value(parent, key, value, &c), 0);
	cr_assert_not_null(c);
	return c;
}

static gx_ctx *new_timeout(gx_ctx *parent, int64_t ns)
{
	gx_ctx *c = NULL;
	cr_assert_eq(gx_ctx_with_timeout(parent, ns, &c), 0);
	cr_assert_not_null(c);
	return c;
}

/* Done channel closed: a receive gives the zero value with ok == false. */
static bool done_closed(gx_ctx *c)
{
	bool ok = true;
	return gx_ctx_done(c) && gx_chan_try_recv(gx_ctx_done(c), NULL, &ok) == 0 && !ok;
}

static bool done_open(gx_ctx *c)
{
	return gx_ctx_done(c) && gx_chan_try_recv(gx_ctx_done(c), NULL, NULL) == -EAGAIN;
}

/* A channel nobody ever sends on. */
static gx_chan never;

static void never_init(void)
{
	cr_assert_eq(gx_chan_init(&never, sizeof(int), 0, NULL, 0), 0);
}

/* A coroutine blocked in a receive on `never` until its context ends. */
static gx_ctx *wait_ctx;
static int wait_rc;

static void recv_until_ctx(void *arg)
{
	(void)arg;
	int v = 7;
	arrived++;
	wait_rc = gx_chan_recv(&never, &v, NULL, gx_ctx_until(wait_ctx));
	cr_expect_eq(v, 7, "nothing received");
	rec('w');
	finished++;
}

/* ================================================================ background */

static int key_a, key_b, key_c;

static void check_background(void)
{
	gx_ctx *bg = gx_ctx_background();
	cr_assert_not_null(bg);
	cr_expect_eq(gx_ctx_background(), bg, "one root");
	cr_expect_eq(gx_ctx_err(bg), 0);
	cr_expect_eq(gx_ctx_cause(bg), 0);
	cr_expect_null(gx_ctx_done(bg), "a nil channel: never ready");
	cr_expect_eq(gx_ctx_deadline(bg), -1);
	cr_expect_null(gx_ctx_value(bg, &key_a));
	cr_expect_eq(gx_ctx_cancel(bg), -EINVAL);
	cr_expect_eq(gx_ctx_cancel_cause(bg, -EPIPE), -EINVAL);
	gx_ctx_release(bg);
	gx_ctx_release(bg);
	cr_expect_eq(gx_ctx_err(bg), 0, "release is ignored");
	cr_expect_null(gx_ctx_done(bg));
}

static int background_main(void *arg)
{
	(void)arg;
	check_background();
	/* waits with the background never end by it */
	never_init();
	gx_until u = {.deadline = gx_now() + 2 * GX_MILLISECOND, .ctx = gx_ctx_background()};
	cr_expect_eq(gx_chan_recv(&never, NULL, NULL, u), -ETIMEDOUT);
	/* its nil done channel is never picked */
	gx_chan *ready;
	int one = 1;
	cr_assert_eq(gx_chan_make(&ready, sizeof(int), 1, 0), 0);
	cr_expect_eq(gx_chan_try_send(ready, &one), 0);
	gx_case cases[] = {
		{.chan = gx_ctx_done(gx_ctx_background()), .op = GX_RECV},
		{.chan = ready, .op = GX_RECV},
	};
	cr_expect_eq(gx_select(cases, 2, GX_FOREVER), 1);
	cr_expect_eq(gx_select_try(cases, 2), -EAGAIN);
	cr_expect_eq(gx_chan_free(ready), 0);
	return 0;
}

Test(context, background)
{
	check_background();
	RUN(background_main, NULL);
}

/* ============================================================ with_cancel */

static int cancel_main(void *arg)
{
	(void)arg;
	gx_ctx *c = new_cancel(gx_ctx_background());
	cr_expect_eq(gx_ctx_err(c), 0);
	cr_expect_eq(gx_ctx_cause(c), 0);
	cr_expect_eq(gx_ctx_deadline(c), -1);
	cr_expect(done_open(c), "open while alive");
	cr_expect_eq(gx_ctx_cancel(c), 0);
	cr_expect_eq(gx_ctx_err(c), -ECANCELED);
	cr_expect_eq(gx_ctx_cause(c), -ECANCELED);
	cr_expect(done_closed(c));
	cr_expect(done_closed(c), "and stays closed");
	cr_expect_eq(gx_ctx_cancel(c), 0, "cancelling twice does nothing");
	cr_expect_eq(gx_ctx_err(c), -ECANCELED);
	gx_ctx_release(c);
	return 0;
}

Test(context, with_cancel_then_cancel)
{
	RUN(cancel_main, NULL);
}

static void recv_done(void *arg)
{
	gx_ctx *c = arg;
	bool ok = true;
	int rc;
	arrived++;
	rc = gx_chan_recv(gx_ctx_done(c), NULL, &ok, GX_FOREVER);
	cr_expect_eq(rc, 0);
	cr_expect_eq(ok, false, "woken by the close");
	rec('d');
	finished++;
}

static int cascade_main(void *arg)
{
	(void)arg;
	reset();
	int v = 1;
	gx_ctx *p = new_cancel(gx_ctx_background());
	gx_ctx *val = new_value(p, &key_a, &v);
	gx_ctx *c = new_cancel(val);
	gx_ctx *g = new_cancel(c);
	gx_ctx *gv = new_value(g, &key_b, &v);
	gx_ctx *sib = new_cancel(p);
	gx_ctx *t = new_timeout(c, 100 * GX_SECOND);
	gx_ctx *all[] = {p, val, c, g, gv, sib, t};
	go_arrive(recv_done, gv);
	for (size_t i = 0; i < 7; i++) {
		cr_expect_eq(gx_ctx_err(all[i]), 0, "ctx %zu alive", i);
		cr_expect(done_open(all[i]), "ctx %zu open", i);
	}
	cr_expect_eq(gx_ctx_cancel(p), 0);
	/* no switch since: every descendant ended within the call */
	for (size_t i = 0; i < 7; i++) {
		cr_expect_eq(gx_ctx_err(all[i]), -ECANCELED, "ctx %zu", i);
		cr_expect_eq(gx_ctx_cause(all[i]), -ECANCELED, "ctx %zu", i);
		cr_expect(done_closed(all[i]), "ctx %zu closed", i);
	}
	cr_expect_eq(finished, 0);
	cr_assert(wait_for(&finished, 1));
	cr_expect_str_eq(trace, "d");
	/* release parents first: the children keep what they need alive */
	for (size_t i = 0; i < 7; i++)
		gx_ctx_release(all[i]);
	return 0;
}

Test(context, cancelling_a_parent_cancels_every_descendant_at_once)
{
	RUN(cascade_main, NULL);
}

static int child_cancel_main(void *arg)
{
	(void)arg;
	gx_ctx *p = new_cancel(gx_ctx_background());
	gx_ctx *c = new_cancel(p);
	gx_ctx *cv = new_value(c, &key_a, NULL);
	gx_ctx *sib = new_cancel(p);
	cr_expect_eq(gx_ctx_cancel(c), 0);
	cr_expect_eq(gx_ctx_err(c), -ECANCELED);
	cr_expect_eq(gx_ctx_err(cv), -ECANCELED);
	cr_expect_eq(gx_ctx_err(p), 0, "the parent lives on");
	cr_expect(done_open(p));
	cr_expect_eq(gx_ctx_err(sib), 0, "and so does the sibling");
	cr_expect(done_open(sib));
	gx_ctx_release(cv);
	gx_ctx_release(c);
	cr_expect_eq(gx_ctx_err(p), 0, "releasing the child does not end the parent");
	gx_ctx_release(sib);
	gx_ctx_release(p);
	return 0;
}

Test(context, cancelling_a_child_leaves_the_parent)
{
	RUN(child_cancel_main, NULL);
}

static int born_cancelled_main(void *arg)
{
	(void)arg;
	reset();
	never_init();
	gx_ctx *p = new_cancel(gx_ctx_background());
	cr_expect_eq(gx_ctx_cancel_cause(p, -EPIPE), 0);
	gx_ctx *c = new_cancel(p);
	gx_ctx *v = new_value(p, &key_a, NULL);
	gx_ctx *cv = new_cancel(v);
	gx_ctx *t = new_timeout(p, 100 * GX_SECOND);
	gx_ctx *all[] = {c, v, cv, t};
	for (size_t i = 0; i < 4; i++) {
		cr_expect_eq(gx_ctx_err(all[i]), -ECANCELED, "ctx %zu", i);
		cr_expect_eq(gx_ctx_cause(all[i]), -EPIPE, "ctx %zu", i);
		cr_expect(done_closed(all[i]), "ctx %zu", i);
	}
	wait_ctx = cv;
	go(recv_until_ctx, NULL);
	yields(1);
	cr_assert(wait_for(&finished, 1));
	cr_expect_eq(wait_rc, -ECANCELED, "a wait on it ends at once");
	for (size_t i = 0; i < 4; i++)
		gx_ctx_release(all[i]);
	gx_ctx_release(p);
	return 0;
}

Test(context, child_of_a_cancelled_parent_starts_cancelled)
{
	RUN(born_cancelled_main, NULL);
}

/* ================================================================ deadlines */

static int timeout_main(void *arg)
{
	(void)arg;
	reset();
	never_init();
	int64_t t0 = gx_now();
	gx_ctx *c = new_timeout(gx_ctx_background(), 5 * GX_MILLISECOND);
	int64_t t1 = gx_now();
	int64_t d = gx_ctx_deadline(c);
	cr_expect(d >= t0 + 5 * GX_MILLISECOND && d <= t1 + 5 * GX_MILLISECOND, "deadline %lld", (long long)d);
	cr_expect_eq(gx_ctx_err(c), 0);
	wait_ctx = c;
	wait_rc = 1;
	go_arrive(recv_until_ctx, NULL);
	cr_assert(wait_for(&finished, 1));
	cr_expect_eq(wait_rc, -ETIMEDOUT, "the blocked receive ended with the deadline");
	cr_expect_geq(gx_now(), d, "not before the deadline");
	cr_expect_eq(gx_ctx_err(c), -ETIMEDOUT);
	cr_expect_eq(gx_ctx_cause(c), -ETIMEDOUT);
	cr_expect(done_closed(c));
	cr_expect_eq(gx_ctx_cancel(c), 0);
	cr_expect_eq(gx_ctx_err(c), -ETIMEDOUT, "a later cancel changes nothing");
	gx_ctx_release(c);

	/* with_deadline, the main coroutine itself blocked */
	int64_t dl = gx_now() + 5 * GX_MILLISECOND;
	gx_ctx *c2 = NULL;
	cr_assert_eq(gx_ctx_with_deadline(gx_ctx_background(), dl, &c2), 0);
	cr_expect_eq(gx_ctx_deadline(c2), dl);
	cr_expect_eq(gx_chan_recv(&never, NULL, NULL, gx_ctx_until(c2)), -ETIMEDOUT);
	cr_expect_geq(gx_now(), dl);
	cr_expect_eq(gx_ctx_err(c2), -ETIMEDOUT);
	cr_expect(done_closed(c2));
	gx_ctx_release(c2);
	return 0;
}

Test(context, deadline_and_timeout_end_with_etimedout)
{
	RUN(timeout_main, NULL);
}

static int parent_deadline_main(void *arg)
{
	(void)arg;
	reset();
	never_init();
	/* a parent with a far deadline: a child's earlier deadline holds */
	gx_ctx *far = new_timeout(gx_ctx_background(), 100 * GX_SECOND);
	gx_ctx *later = NULL;
	cr_assert_eq(gx_ctx_with_deadline(far, gx_ctx_deadline(far) + GX_SECOND, &later), 0);
	cr_expect_eq(gx_ctx_deadline(later), gx_ctx_deadline(far), "the parent's deadline comes first");
	gx_ctx *soon = new_timeout(far, 5 * GX_MILLISECOND);
	cr_expect_lt(gx_ctx_deadline(soon), gx_ctx_deadline(far));
	cr_expect_eq(gx_chan_recv(&never, NULL, NULL, gx_ctx_until(soon)), -ETIMEDOUT);
	cr_expect_eq(gx_ctx_err(soon), -ETIMEDOUT);
	cr_expect_eq(gx_ctx_err(far), 0, "a child's deadline does not end the parent");
	cr_expect_eq(gx_ctx_err(later), 0);

	/* a parent with a near deadline: the child with a later one ends with it */
	gx_ctx *near = new_timeout(gx_ctx_background(), 5 * GX_MILLISECOND);
	gx_ctx *v = new_value(near, &key_a, NULL);
	gx_ctx *child = new_timeout(v, 100 * GX_SECOND);
	cr_expect_eq(gx_ctx_deadline(child), gx_ctx_deadline(near));
	cr_expect_eq(gx_ctx_deadline(v), gx_ctx_deadline(near));
	wait_ctx = child;
	wait_rc = 1;
	go_arrive(recv_until_ctx, NULL);
	cr_assert(wait_for(&finished, 1));
	cr_expect_eq(wait_rc, -ETIMEDOUT);
	cr_expect_eq(gx_ctx_err(child), -ETIMEDOUT);
	cr_expect_eq(gx_ctx_cause(child), -ETIMEDOUT);
	cr_expect_eq(gx_ctx_err(near), -ETIMEDOUT);
	gx_ctx_release(child);
	gx_ctx_release(v);
	gx_ctx_release(near);
	gx_ctx_release(soon);
	gx_ctx_release(later);
	gx_ctx_release(far);
	return 0;
}

Test(context, child_deadline_is_never_later_than_the_parents)
{
	RUN(parent_deadline_main, NULL);
}

static int past_deadline_main(void *arg)
{
	(void)arg;
	never_init();
	int64_t past = gx_now() - 1;
	gx_ctx *c = NULL;
	cr_assert_eq(gx_ctx_with_deadline(gx_ctx_background(), past, &c), 0);
	cr_expect_eq(gx_ctx_err(c), -ETIMEDOUT);
	cr_expect_eq(gx_ctx_cause(c), -ETIMEDOUT);
	cr_expect_eq(gx_ctx_deadline(c), past);
	cr_expect(done_closed(c));
	cr_expect_eq(gx_chan_recv(&never, NULL, NULL, gx_ctx_until(c)), -ETIMEDOUT, "at once");
	gx_ctx_release(c);
	gx_ctx *z = new_timeout(gx_ctx_background(), 0);
	cr_expect_eq(gx_ctx_err(z), -ETIMEDOUT, "timeout 0");
	gx_ctx_release(z);
	gx_ctx *n = new_timeout(gx_ctx_background(), -5 * GX_SECOND);
	cr_expect_eq(gx_ctx_err(n), -ETIMEDOUT, "negative timeout");
	gx_ctx_release(n);
	return 0;
}

Test(context, deadline_in_the_past_ends_at_once)
{
	RUN(past_deadline_main, NULL);
}

static int huge_timeout_main(void *arg)
{
	(void)arg;
	gx_ctx *c = new_timeout(gx_ctx_background(), INT64_MAX);
	cr_expect_eq(gx_ctx_err(c), 0, "a timeout of ~292 years has not passed yet");
	cr_expect_gt(gx_ctx_deadline(c), gx_now());
	gx_ctx_release(c);
	return 0;
}

/* Regression: now + ns overflowed for a huge ns, so the context started
 * out ended with -ETIMEDOUT. As in Go, a huge timeout means "practically
 * never" (the deadline saturates). */
Test(context, huge_timeout_does_not_end_at_once)
{
	RUN(huge_timeout_main, NULL);
}

Test(context, with_deadline_outside_run_is_eperm)
{
	gx_ctx *c = (gx_ctx *)&key_a;
	cr_expect_eq(gx_ctx_with_deadline(gx_ctx_background(), gx_now() + GX_SECOND, &c), -EPERM);
	cr_expect_null(c);
	c = (gx_ctx *)&key_a;
	cr_expect_eq(gx_ctx_with_timeout(gx_ctx_background(), GX_SECOND, &c), -EPERM);
	cr_expect_null(c);
}

/* =================================================================== causes */

static int cause_main(void *arg)
{
	(void)arg;
	gx_ctx *p = new_cancel(gx_ctx_background());
	gx_ctx *v = new_value(p, &key_a, NULL);
	gx_ctx *c = new_cancel(v);
	gx_ctx *own = new_cancel(p);
	cr_expect_eq(gx_ctx_cause(p), 0, "0 while alive");
	cr_expect_eq(gx_ctx_cancel_cause(own, -EIO), 0, "a child ended first, with its own cause");
	cr_expect_eq(gx_ctx_cancel_cause(p, -EPIPE), 0);
	cr_expect_eq(gx_ctx_err(p), -ECANCELED);
	cr_expect_eq(gx_ctx_cause(p), -EPIPE);
	cr_expect_eq(gx_ctx_err(v), -ECANCELED);
	cr_expect_eq(gx_ctx_cause(v), -EPIPE, "inherited through a value context");
	cr_expect_eq(gx_ctx_err(c), -ECANCELED);
	cr_expect_eq(gx_ctx_cause(c), -EPIPE, "inherited by the grandchild");
	cr_expect_eq(gx_ctx_cause(own), -EIO, "the first cause stays");
	gx_ctx *late = new_cancel(c);
	cr_expect_eq(gx_ctx_cause(late), -EPIPE, "and by a child made afterwards");
	cr_expect_eq(gx_ctx_cancel_cause(p, -EIO), 0);
	cr_expect_eq(gx_ctx_cause(p), -EPIPE, "cancelling again changes nothing");
	cr_expect_eq(gx_ctx_cancel_cause(v, -EIO), -EINVAL, "a value context is not cancellable");
	gx_ctx *all[] = {late, own, c, v, p};
	for (size_t i = 0; i < 5; i++)
		gx_ctx_release(all[i]);
	return 0;
}

Test(context, cancel_cause_is_kept_and_inherited)
{
	RUN(cause_main, NULL);
}

static int cause_plain_main(void *arg)
{
	(void)arg;
	never_init();
	gx_ctx *c = new_cancel(gx_ctx_background());
	cr_expect_eq(gx_ctx_cancel(c), 0);
	cr_expect_eq(gx_ctx_cause(c), gx_ctx_err(c));
	cr_expect_eq(gx_ctx_cause(c), -ECANCELED);
	gx_ctx_release(c);
	gx_ctx *t = new_timeout(gx_ctx_background(), GX_MILLISECOND);
	gx_ctx *tc = new_cancel(t);
	cr_expect_eq(gx_chan_recv(&never, NULL, NULL, gx_ctx_until(tc)), -ETIMEDOUT);
	cr_expect_eq(gx_ctx_cause(t), -ETIMEDOUT);
	cr_expect_eq(gx_ctx_cause(tc), -ETIMEDOUT);
	cr_expect_eq(gx_ctx_cause(tc), gx_ctx_err(tc));
	gx_ctx_release(tc);
	gx_ctx_release(t);
	return 0;
}

Test(context, cause_is_the_error_without_an_explicit_cause)
{
	RUN(cause_plain_main, NULL);
}

static int cause_zero_main(void *arg)
{
	(void)arg;
	gx_ctx *c = new_cancel(gx_ctx_background());
	int rc = gx_ctx_cancel_cause(c, 0);
	if (rc == 0) {
		cr_expect_eq(gx_ctx_err(c), -ECANCELED);
		cr_expect_eq(gx_ctx_cause(c), -ECANCELED, "no cause: the error (Go: cancel(nil) -> Canceled)");
	} else {
		cr_expect_eq(rc, -EINVAL);
		cr_expect_eq(gx_ctx_err(c), 0);
	}
	gx_ctx_release(c);
	return 0;
}

/* Regression: a cause of 0 was stored as is, so an ended context reported
 * gx_ctx_cause() == 0 ("alive"). As Go's cancel(nil), it is -ECANCELED. */
Test(context, cancel_cause_zero_reports_ecanceled)
{
	RUN(cause_zero_main, NULL);
}

/* =================================================================== values */

static int values_main(void *arg)
{
	(void)arg;
	int a1 = 1, a2 = 2, b = 3;
	gx_ctx *v1 = new_value(gx_ctx_background(), &key_a, &a1);
	gx_ctx *c = new_cancel(v1);
	gx_ctx *v2 = new_value(c, &key_b, &b);
	gx_ctx *v3 = new_value(v2, &key_a, &a2);
	cr_expect_eq(gx_ctx_value(v3, &key_a), &a2, "the nearest wins");
	cr_expect_eq(gx_ctx_value(v3, &key_b), &b, "found in an ancestor");
	cr_expect_eq(gx_ctx_value(c, &key_a), &a1, "through a cancel context");
	cr_expect_eq(gx_ctx_value(v2, &key_a), &a1);
	cr_expect_null(gx_ctx_value(v3, &key_c), "missing key");
	cr_expect_null(gx_ctx_value(v1, &key_b), "not from descendants");
	/* a value context of the background can never end */
	cr_expect_eq(gx_ctx_err(v1), 0);
	cr_expect_null(gx_ctx_done(v1));
	cr_expect_eq(gx_ctx_deadline(v1), -1);
	cr_expect_eq(gx_ctx_cancel(v1), -EINVAL);
	/* below a cancel context it shares that context's end */
	cr_expect_eq(gx_ctx_done(v3), gx_ctx_done(c));
	cr_expect_eq(gx_ctx_cancel(c), 0);
	cr_expect_eq(gx_ctx_err(v3), -ECANCELED);
	cr_expect_eq(gx_ctx_value(v3, &key_a), &a2, "values outlive cancellation");
	gx_ctx *all[] = {v1, c, v2, v3};
	for (size_t i = 0; i < 4; i++)
		gx_ctx_release(all[i]);
	return 0;
}

Test(context, values_are_found_up_the_tree)
{
	RUN(values_main, NULL);
}

/* =================================================================== select */

static gx_ctx *sel_ctx;
static int sel_rc;
static bool sel_ok;

static void select_with_done(void *arg)
{
	(void)arg;
	int v = 7;
	gx_case cases[] = {
		{.chan = &never, .op = GX_RECV, .elem = &v},
		{.chan = gx_ctx_done(sel_ctx), .op = GX_RECV},
	};
	cases[1].ok = true;
	arrived++;
	sel_rc = gx_select(cases, 2, GX_FOREVER);
	sel_ok = cases[1].ok;
	cr_expect_eq(v, 7);
	finished++;
}

static int select_done_main(void *arg)
{
	(void)arg;
	reset();
	never_init();
	sel_ctx = new_cancel(gx_ctx_background());
	sel_rc = -1;
	gx_case probe[] = {
		{.chan = &never, .op = GX_RECV},
		{.chan = gx_ctx_done(sel_ctx), .op = GX_RECV},
	};
	cr_expect_eq(gx_select_try(probe, 2), -EAGAIN, "nothing ready while alive");
	go_arrive(select_with_done, NULL);
	yields(3);
	cr_expect_eq(finished, 0);
	go(cancel_it, sel_ctx);
	cr_assert(wait_for(&finished, 1));
	cr_expect_eq(sel_rc, 1, "the done case");
	cr_expect_eq(sel_ok, false, "a closed channel");
	cr_expect_eq(gx_select_try(probe, 2), 1, "done stays ready");
	gx_ctx_release(sel_ctx);
	return 0;
}

Test(context, done_channel_works_in_select)
{
	RUN(select_done_main, NULL);
}

static gx_chan never_send;

static void select_until_ctx(void *arg)
{
	(void)arg;
	int v = 7, out = 9;
	gx_case cases[] = {
		{.chan = &never, .op = GX_RECV, .elem = &v},
		{.chan = &never_send, .op = GX_SEND, .elem = &out},
		{.chan = NULL, .op = GX_RECV},
	};
	arrived++;
	sel_rc = gx_select(cases, 3, gx_ctx_until(sel_ctx));
	cr_expect_eq(v, 7);
	finished++;
}

static int select_ctx_main(void *arg)
{
	(void)arg;
	reset();
	never_init();
	cr_assert_eq(gx_chan_init(&never_send, sizeof(int), 0, NULL, 0), 0);
	sel_ctx = new_cancel(gx_ctx_background());
	sel_rc = 1;
	go_arrive(select_until_ctx, NULL);
	yields(3);
	cr_expect_eq(finished, 0);
	go(cancel_it, sel_ctx);
	cr_assert(wait_for(&finished, 1));
	cr_expect_eq(sel_rc, -ECANCELED);
	cr_expect_eq(gx_chan_try_recv(&never_send, NULL, NULL), -EAGAIN, "the send case left nothing behind");
	int one = 1;
	cr_expect_eq(gx_chan_try_send(&never, &one), -EAGAIN, "nor did the receive case");
	gx_ctx_release(sel_ctx);

	/* the same with a context that times out */
	sel_ctx = new_timeout(gx_ctx_background(), 2 * GX_MILLISECOND);
	go_arrive(select_until_ctx, NULL);
	cr_assert(wait_for(&finished, 2));
	cr_expect_eq(sel_rc, -ETIMEDOUT);
	gx_ctx_release(sel_ctx);
	return 0;
}

Test(context, blocked_select_ends_with_its_context)
{
	RUN(select_ctx_main, NULL);
}

/* ======================================================= release while used */

static int release_waited_main(void *arg)
{
	(void)arg;
	reset();
	never_init();
	/* the only handle released while a coroutine waits with it */
	wait_ctx = new_cancel(gx_ctx_background());
	wait_rc = 1;
	go_arrive(recv_until_ctx, NULL);
	yields(2);
	gx_ctx_release(wait_ctx);
	cr_assert(wait_for(&finished, 1));
	cr_expect_eq(wait_rc, -ECANCELED, "release cancels");

	/* a value child waited on: its handle goes first, then the parent's */
	gx_ctx *p = new_cancel(gx_ctx_background());
	wait_ctx = new_value(p, &key_a, NULL);
	go_arrive(recv_until_ctx, NULL);
	gx_ctx_release(wait_ctx);
	yields(2);
	cr_expect_eq(finished, 1, "releasing a value context cancels nothing");
	gx_ctx_release(p);
	cr_assert(wait_for(&finished, 2));
	cr_expect_eq(wait_rc, -ECANCELED);

	/* a timeout context released while waited on: its timer goes too */
	wait_ctx = new_timeout(gx_ctx_background(), 100 * GX_SECOND);
	go_arrive(recv_until_ctx, NULL);
	gx_ctx_release(wait_ctx);
	cr_assert(wait_for(&finished, 3));
	cr_expect_eq(wait_rc, -ECANCELED);

	/* the parent released while a coroutine waits on a child that is
	 * still held: the child ends, and stays readable until released */
	p = new_cancel(gx_ctx_background());
	gx_ctx *c = new_cancel(p);
	wait_ctx = c;
	go_arrive(recv_until_ctx, NULL);
	gx_ctx_release(p);
	cr_assert(wait_for(&finished, 4));
	cr_expect_eq(wait_rc, -ECANCELED);
	cr_expect_eq(gx_ctx_err(c), -ECANCELED);
	cr_expect(done_closed(c));
	gx_ctx_release(c);
	return 0;
}

Test(context, release_while_a_coroutine_waits)
{
	RUN(release_waited_main, NULL);
}

static int release_done_waiter_main(void *arg)
{
	(void)arg;
	reset();
	/* Go's `<-ctx.Done()` in one goroutine, `cancel()` in another */
	gx_ctx *c = new_cancel(gx_ctx_background());
	go_arrive(recv_done, c);
	go_arrive(recv_done, c);
	gx_ctx_release(c);
	cr_assert(wait_for(&finished, 2));
	cr_expect_str_eq(trace, "dd");
	return 0;
}

Test(context, release_while_coroutines_receive_from_done)
{
	RUN(release_done_waiter_main, NULL);
}

/* ========================================================== bad arguments */

static int null_args_main(void *arg)
{
	(void)arg;
	gx_ctx *bg = gx_ctx_background();
	gx_ctx *out = (gx_ctx *)&key_a;
	cr_expect_eq(gx_ctx_with_cancel(NULL, &out), -EINVAL);
	cr_expect_null(out, "out is cleared");
	cr_expect_eq(gx_ctx_with_cancel(bg, NULL), -EINVAL);
	out = (gx_ctx *)&key_a;
	cr_expect_eq(gx_ctx_with_value(NULL, &key_a, NULL, &out), -EINVAL);
	cr_expect_null(out);
	cr_expect_eq(gx_ctx_with_value(bg, &key_a, NULL, NULL), -EINVAL);
	out = (gx_ctx *)&key_a;
	cr_expect_eq(gx_ctx_with_deadline(NULL, gx_now() + GX_SECOND, &out), -EINVAL);
	cr_expect_null(out);
	cr_expect_eq(gx_ctx_with_deadline(bg, gx_now() + GX_SECOND, NULL), -EINVAL);
	out = (gx_ctx *)&key_a;
	cr_expect_eq(gx_ctx_with_timeout(NULL, GX_SECOND, &out), -EINVAL);
	cr_expect_null(out);
	cr_expect_eq(gx_ctx_with_timeout(bg, GX_SECOND, NULL), -EINVAL);
	cr_expect_eq(gx_ctx_cancel(NULL), -EINVAL);
	cr_expect_eq(gx_ctx_cancel_cause(NULL, -EIO), -EINVAL);
	/* the queries treat NULL as "nothing": no crash */
	cr_expect_eq(gx_ctx_err(NULL), 0);
	cr_expect_eq(gx_ctx_cause(NULL), 0);
	cr_expect_null(gx_ctx_done(NULL));
	cr_expect_null(gx_ctx_value(NULL, &key_a));
	cr_expect_eq(gx_ctx_deadline(NULL), -1);
	gx_ctx_release(NULL);
	return 0;
}

Test(context, null_arguments)
{
	RUN(null_args_main, NULL);
}

/* ---- lifetime and misuse ---- */

static int retained_err;
static void use_after_creator_released(void *arg)
{
	gx_ctx *c = arg;
	gx_yield(); /* the creator releases it meanwhile */
	retained_err = gx_ctx_err(c);
	gx_ctx_put(c);
}

static int retain_main(void *arg)
{
	(void)arg;
	gx_ctx *c;
	cr_assert_eq(gx_ctx_with_cancel(gx_ctx_background(), &c), 0);
	go(use_after_creator_released, gx_ctx_retain(c));
	gx_ctx_release(c); /* Go's defer cancel() */
	yields(2);
	cr_expect_eq(retained_err, -ECANCELED, "still readable through the retained reference");
	cr_expect_eq(gx_ctx_retain(gx_ctx_background()), gx_ctx_background());
	gx_ctx_put(gx_ctx_background());
	return 0;
}

Test(context, a_retained_context_outlives_its_creators_release)
{
	RUN(retain_main, NULL);
}

#define DEEP 20000
static int deep_main(void *arg)
{
	(void)arg;
	static gx_ctx *chain[DEEP];
	gx_ctx *root;
	cr_assert_eq(gx_ctx_with_cancel(gx_ctx_background(), &root), 0);
	gx_ctx *p = root;
	for (int i = 0; i < DEEP; i++) {
		int rc = i % 2 ? gx_ctx_with_cancel(p, &chain[i]) : gx_ctx_with_value(p, &chain[i], p, &chain[i]);
		cr_assert_eq(rc, 0);
		p = chain[i];
	}
	cr_expect_eq(gx_ctx_cancel(root), 0, "no recursion: a deep tree cannot overflow the stack");
	cr_expect_eq(gx_ctx_err(chain[DEEP - 1]), -ECANCELED);
	for (int i = DEEP - 1; i >= 0; i--)
		gx_ctx_release(chain[i]);
	gx_ctx_release(root);
	return 0;
}

Test(context, cancelling_a_very_deep_tree)
{
	RUN(deep_main, NULL);
}

static int done_is_receive_only(void *arg)
{
	(void)arg;
	gx_ctx *c;
	cr_assert_eq(gx_ctx_with_cancel(gx_ctx_background(), &c), 0);
	cr_expect_eq(gx_chan_close(gx_ctx_done(c)), -EPERM);
	cr_expect_eq(gx_chan_try_send(gx_ctx_done(c), NULL), -EPERM);
	cr_expect_eq(gx_chan_send(gx_ctx_done(c), NULL, GX_FOREVER), -EPERM);
	gx_case cs[1] = {{.chan = gx_ctx_done(c), .op = GX_SEND}};
	cr_expect_eq(gx_select(cs, 1, GX_FOREVER), -EPERM);
	cr_expect_eq(gx_ctx_err(c), 0, "still alive");
	gx_ctx_release(c);
	return 0;
}

Test(context, done_channel_cannot_be_closed_or_sent_on)
{
	RUN(done_is_receive_only, NULL);
}

static int deadline_of_cancelled(void *arg)
{
	(void)arg;
	gx_ctx *p, *c;
	gx_ctx_with_cancel(gx_ctx_background(), &p);
	gx_ctx_cancel(p);
	int64_t d = gx_now() + GX_SECOND;
	cr_assert_eq(gx_ctx_with_deadline(p, d, &c), 0);
	cr_expect_eq(gx_ctx_err(c), -ECANCELED);
	cr_expect_eq(gx_ctx_deadline(c), d, "the deadline asked for, as Go's Deadline()");
	gx_ctx_release(c);
	gx_ctx_release(p);
	return 0;
}

Test(context, deadline_is_reported_on_a_child_born_cancelled)
{
	RUN(deadline_of_cancelled, NULL);
}

/* ---- a context that signals cancel ---- */

static bool term_blocked(void)
{
	sigset_t now;
	sigprocmask(SIG_BLOCK, NULL, &now);
	return sigismember(&now, SIGTERM) == 1;
}

static int on_signal(void *arg)
{
	(void)arg;
	gx_ctx *stop;
	cr_assert_eq(gx_ctx_with_signals(gx_ctx_background(), &stop), 0);
	cr_expect(term_blocked(), "SIGTERM is held for the context");
	cr_expect_eq(gx_sleep_for(20 * GX_MILLISECOND, gx_ctx_until(stop)), 0, "no signal yet");
	/* to this thread: Criterion's own threads do not block SIGTERM, and a
	 * process-directed signal may go to one of them */
	syscall(SYS_tgkill, getpid(), gettid(), SIGTERM);
	cr_expect_eq(gx_sleep_for(5 * GX_SECOND, gx_ctx_until(stop)), -ECANCELED, "SIGTERM ended the wait");
	cr_expect_eq(gx_ctx_cause(stop), -EINTR);
	for (int i = 0; i < 100 && term_blocked(); i++)
		gx_sleep(GX_MILLISECOND); /* the watcher's read is cancelled by the loop */
	cr_expect_not(term_blocked(), "the mask is put back once it ended");
	gx_ctx_release(stop);

	cr_assert_eq(gx_ctx_with_signals(gx_ctx_background(), &stop), 0);
	gx_ctx_release(stop); /* ended without a signal */
	for (int i = 0; i < 100 && term_blocked(); i++)
		gx_sleep(GX_MILLISECOND); /* the watcher's read is cancelled by the loop */
	cr_expect_not(term_blocked(), "and when it is released unsignalled");
	return 0;
}

Test(context, sigterm_cancels_a_signal_context_and_the_mask_comes_back)
{
	RUN(on_signal, NULL);
	gx_ctx *c = (gx_ctx *)1;
	cr_expect_eq(gx_ctx_with_signals(gx_ctx_background(), &c), -EPERM, "outside gx_run");
	cr_expect_null(c);
}
