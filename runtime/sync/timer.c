/*
 * Timers and tickers on channels.
 *
 * A gx_timer is a node on the process's timer heap plus a capacity-1
 * channel of int64_t. Firing (on the loop context) try-sends gx_now():
 * straight to a waiting receiver, else into the buffer, else (a ticker
 * whose receiver is behind) dropped. Stop and reset disarm the node and
 * empty the buffer, so no value from before them is received afterwards
 * (Go 1.23 semantics). A ticker re-arms itself on its period grid,
 * skipping the ticks it missed.
 */
#include <errno.h>
#include <stdlib.h>

#include "core/timer.h"
#include "sync/chan.h"

#include <gonex/timer.h>

struct gx_timer {
	gx_tnode node;
	int64_t period; /* 0 for a one-shot timer */
	int64_t slot;
	gx_chan ch;
};

struct gx_ticker {
	struct gx_timer t;
};

static void gx_timer_fire_cb(gx_tnode *n)
{
	gx_timer *t = n->data;
	int64_t now = gx_clock_now();
	gx_chan_try_send(&t->ch, &now); /* -EAGAIN: receiver behind, drop */
	if (t->period > 0) {
		int64_t missed = (now - t->node.when) / t->period;
		t->node.when += (missed + 1) * t->period;
		gx_theap_add(&t->node); /* the heap has room: n was just removed */
	}
}

/* A timer armed to fire after d (then every period, when period > 0), or
 * NULL with *err: -EPERM outside gx_run, -ENOMEM. */
static gx_timer *gx_timer_new(int64_t d, int64_t period, int *err)
{
	if (!gx_sched_active()) {
		*err = -EPERM;
		return NULL;
	}
	gx_timer *t = calloc(1, sizeof *t);
	if (!t)
		goto err_nomem;
	gx_chan_init(&t->ch, sizeof(int64_t), 1, &t->slot, 0);
	t->period = period;
	t->node.fn = gx_timer_fire_cb;
	t->node.data = t;
	t->node.when = gx_time_after(d);
	if (gx_theap_add(&t->node) < 0)
		goto err_free;
	return t;
err_free:
	free(t);
err_nomem:
	*err = -ENOMEM;
	return NULL;
}

/* 1 when the timer was pending: armed, or fired with the value not yet
 * received (Go 1.23 drains it and reports the timer as stopped). */
static int gx_timer_disarm(gx_timer *t)
{
	int was = gx_theap_del(&t->node);
	while (gx_chan_try_recv(&t->ch, NULL, NULL) == 0)
		was = 1;
	return was;
}

static int gx_timer_arm(gx_timer *t, int64_t d)
{
	t->node.when = gx_time_after(d);
	return gx_theap_add(&t->node);
}

static int gx_timer_release(gx_timer *t)
{
	if (!gx_waitq_empty(&gx_chan_impl_of(&t->ch)->recvq))
		return -EBUSY;
	gx_theap_del(&t->node);
	free(t);
	return 0;
}

int gx_timer_make(gx_timer **out, int64_t d)
{
	if (!out)
		return -EINVAL;
	int rc;
	*out = gx_timer_new(d, 0, &rc);
	return *out ? 0 : rc;
}

gx_chan *gx_timer_chan(gx_timer *t)
{
	return t ? &t->ch : NULL;
}

int gx_timer_stop(gx_timer *t)
{
	return t ? gx_timer_disarm(t) : -EINVAL;
}

int gx_timer_reset(gx_timer *t, int64_t d)
{
	if (!t)
		return -EINVAL;
	int was = gx_timer_disarm(t);
	int rc = gx_timer_arm(t, d);
	return rc < 0 ? rc : was;
}

int gx_timer_free(gx_timer *t)
{
	return t ? gx_timer_release(t) : 0;
}

int gx_ticker_make(gx_ticker **out, int64_t period)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (period <= 0)
		return -EINVAL;
	int rc;
	gx_timer *t = gx_timer_new(period, period, &rc);
	if (!t)
		return rc;
	*out = (gx_ticker *)t; /* a ticker is a timer: its one member */
	return 0;
}

gx_chan *gx_ticker_chan(gx_ticker *t)
{
	return t ? &t->t.ch : NULL;
}

int gx_ticker_stop(gx_ticker *t)
{
	if (!t)
		return -EINVAL;
	gx_timer_disarm(&t->t);
	return 0;
}

int gx_ticker_reset(gx_ticker *t, int64_t period)
{
	if (!t || period <= 0)
		return -EINVAL;
	gx_timer_disarm(&t->t);
	t->t.period = period;
	return gx_timer_arm(&t->t, period);
}

int gx_ticker_free(gx_ticker *t)
{
	return t ? gx_timer_release(&t->t) : 0;
}
