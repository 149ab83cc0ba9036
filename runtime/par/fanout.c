/*
 * Distributed channels: broadcast, scatter, gather, route and balance
 * (gonex/fanout.h). Broadcast, scatter and balance address one worker's
 * own ring of the channel; gather takes one value from each worker off the
 * shared queue; route pins the shared queue to one worker.
 *
 * The values addressed to a worker do not count against the channel's
 * capacity. Worker indexes come from this process's copy of the slot
 * count; a worker's ring is found anew (and checked) on every call.
 */
#include "par/dchan.h"

#include <stdlib.h>
#include <string.h>

#include <gonex/chan.h>
#include <gonex/coro.h>
#include <gonex/fanout.h>

/* c's view, into the caller's own copy *out (dchan.h): out, or NULL. */
static const gx_dview *gx_dch_check(gx_chan *c, gx_dview *out)
{
	return c && gx_chan_is_d(c) && gx_dch_view(c, out) ? out : NULL;
}

/* The view of c into *out for a fan-out call, made from a coroutine;
 * no_buf: the caller passed no values (fine only for empty elements).
 * 0, -EINVAL or -EPERM. */
static int gx_dch_enter(gx_chan *c, gx_dview *out, bool no_buf)
{
	if (!gx_dch_check(c, out) || (no_buf && out->elem_size))
		return -EINVAL;
	return gx_co_current() ? 0 : -EPERM;
}

/* The workers of the channel taking tasks now, into act: their count. */
static int gx_dch_active(const gx_dview *d, int *act)
{
	int na = 0;
	for (uint32_t i = 0; i < d->nw && (int)i < gx_pl.nslots; i++)
		if (gx_active((int)i))
			act[na++] = (int)i;
	return na;
}

/* Put v into worker i's ring, waiting as u allows while it is full. */
static int gx_dch_put_worker(const gx_dview *d, uint32_t i, const void *v, gx_until u)
{
	gx_ring *r = gx_dch_wring(d, i);
	if (!r)
		return -EINVAL;
	for (;;) {
		if (atomic_load(&d->d->closed))
			return -EPIPE;
		int rc = gx_dch_put(d, r, v, NULL);
		if (rc != -EAGAIN)
			return rc;
		rc = gx_sleep_for(20 * GX_MICROSECOND, u);
		if (rc < 0)
			return rc;
	}
}

int gx_chan_broadcast(gx_chan *c, const void *v, gx_until u)
{
	gx_dview view;
	const gx_dview *d = &view;
	int bad = gx_dch_enter(c, &view, !v);
	if (bad < 0)
		return bad;
	int n = 0;
	for (uint32_t i = 0; i < d->nw && (int)i < gx_pl.nslots; i++) {
		if (!gx_active((int)i))
			continue;
		int rc = gx_dch_put_worker(d, i, v, u);
		if (rc < 0)
			return rc;
		n++;
	}
	gx_ec_notify(&d->d->data, NULL);
	return n;
}

int gx_chan_scatter(gx_chan *c, const void *vals, size_t n, gx_until u)
{
	gx_dview view;
	const gx_dview *d = &view;
	int bad = gx_dch_enter(c, &view, n && !vals);
	if (bad < 0)
		return bad;
	int act[GX_MAX_WORKERS], na = gx_dch_active(d, act);
	if (!na)
		return -ESHUTDOWN;
	for (size_t k = 0; k < n; k++) {
		int rc = gx_dch_put_worker(d, (uint32_t)act[k % (size_t)na],
					   (const char *)vals + k * d->elem_size, u);
		if (rc < 0)
			return rc;
		if (k % 32 == 31)
			gx_ec_notify(&d->d->data, NULL);
	}
	gx_ec_notify(&d->d->data, NULL);
	return (int)n;
}

int gx_chan_gather(gx_chan *c, void *out, int *from, gx_until u)
{
	gx_dview view;
	const gx_dview *d = &view;
	int bad = gx_dch_enter(c, &view, !out);
	if (bad < 0)
		return bad;
	int want = gx_workers();
	bool have[GX_MAX_WORKERS] = {0};
	char *tmp = d->elem_size ? malloc(d->elem_size) : NULL;
	if (d->elem_size && !tmp)
		return -ENOMEM;
	int got = 0, rc = 0;
	while (got < want) {
		int32_t sender = -1;
		rc = gx_dch_take(d, gx_dch_main(d), tmp, &sender);
		if (rc == 0) {
			gx_dch_took(d);
			if (sender >= 0 && sender < GX_MAX_WORKERS && !have[sender]) {
				have[sender] = true;
				if (d->elem_size)
					memcpy((char *)out + (size_t)got * d->elem_size, tmp, d->elem_size);
				if (from)
					from[got] = sender;
				got++;
			} else {
				/* a second value from one worker (or from the main
				 * process): back in the queue for someone else */
				int rc2 = gx_dch_send(c, tmp, u, false);
				if (rc2 < 0) {
					rc = rc2;
					break;
				}
				gx_sleep_for(20 * GX_MICROSECOND, u);
			}
			continue;
		}
		if (rc == -EBADMSG)
			gx_dch_took(d); /* garbage consumed: its place is free */
		if (rc != -EAGAIN)
			break;
		if (atomic_load(&d->d->closed)) {
			rc = -EPIPE;
			break;
		}
		rc = gx_ec_wait_spin(&d->d->data, gx_dch_ready, gx_dch_ready_spin, (void *)d, gx_dspin(d->a), u, NULL);
		if (rc < 0)
			break;
	}
	if (got < want) {
		/* ended early: what was taken goes back, so that a failed
		 * gather consumes nothing (the order among them changes) */
		gx_ring *m = gx_dch_main(d);
		for (int k = 0; k < got && m; k++) {
			const void *v = d->elem_size ? (char *)out + (size_t)k * d->elem_size : NULL;
			int32_t hdr_from = from ? from[k] : -1;
			(void)hdr_from;
			gx_dch_put(d, m, v, NULL);
		}
		gx_ec_notify(&d->d->data, NULL);
	}
	free(tmp);
	return got == want ? got : (rc < 0 ? rc : got);
}

int gx_chan_route(gx_chan *c, int worker)
{
	gx_dview view;
	const gx_dview *d = gx_dch_check(c, &view);
	if (!d || worker < -1 || worker >= (int)d->nw)
		return -EINVAL;
	atomic_store(&d->d->route, worker);
	gx_ec_notify(&d->d->data, NULL);
	return 0;
}

int gx_chan_balance(gx_chan *c)
{
	gx_dview view;
	const gx_dview *d = gx_dch_check(c, &view);
	if (!d)
		return -EINVAL;
	int act[GX_MAX_WORKERS], na = gx_dch_active(d, act);
	if (!na)
		return -ESHUTDOWN;
	char *tmp = d->elem_size ? malloc(d->elem_size) : NULL;
	if (d->elem_size && !tmp)
		return -ENOMEM;
	int moved = 0;
	gx_ring *m = gx_dch_main(d);
	while (gx_dch_take(d, m, tmp, NULL) == 0) {
		gx_ring *r = gx_dch_wring(d, (uint32_t)act[moved % na]);
		if (!r || gx_dch_put(d, r, tmp, NULL) < 0) {
			/* that worker's queue is full: back to the shared queue
			 * (its place there was just given back) */
			gx_dch_put(d, m, tmp, NULL);
			break;
		}
		gx_dch_took(d);
		moved++;
	}
	free(tmp);
	gx_ec_notify(&d->d->data, NULL);
	gx_ec_notify(&d->d->space, NULL);
	return moved;
}
