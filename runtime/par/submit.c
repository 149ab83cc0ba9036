/*
 * gx_go_parallel: a task record (function, future, argument bytes inline
 * or a pool chunk) into the chosen worker's inbox, an MPMC ring; with no
 * workers (or none left, degraded) the task runs in a local coroutine.
 */
#include "par/par.h"

#include <string.h>

#include "core/sched.h"

/* ---- gx_go_parallel ---- */

static int gx_par_local_init(void)
{
	/* workers == 0: futures need the table; make a small arena */
	gx_arena_opts o;
	gx_arena_opts_init(&o);
	o.size = (size_t)32 << 20;
	int rc = gx_arena_create(&gx_pl.a, &o);
	if (rc < 0)
		return rc;
	gx_pl.own_arena = 1;
	return 0;
}

gx_arena *gx_par_arena(int create)
{
	if (!gx_pl.p && create && gx_sched_active()) {
		if (gx_par_local_init() < 0)
			return NULL;
		if (gx_par_tables(gx_pl.a, 0) < 0)
			return NULL;
	}
	return gx_pl.p ? gx_pl.a : NULL;
}

int gx_par_slots(void)
{
	return gx_pl.p ? gx_pl.nslots : 0;
}

int gx_go_parallel(gx_future *out, gx_task_fn fn, const void *arg, size_t len, const gx_par_opts *opts)
{
	if (!out || !fn || (len && !arg))
		return -EINVAL;
	out->h = 0;
	if (len > GX_TASK_MAX)
		return -EMSGSIZE;
	if (!gx_sched_active())
		return -EPERM;
	if (!gx_par_is_code((const void *)(uintptr_t)fn))
		return -EINVAL;
	if (!gx_par_arena(1))
		return -ENOMEM;
	if (gx_pl.stopping || atomic_load(&gx_pl.p->stop))
		return -ESHUTDOWN;
	int target = opts ? opts->worker : -1;
	if (target >= gx_pl.nslots || target < -1 || (target >= 0 && gx_pl.nslots == 0))
		return -EINVAL;
	uint32_t idx;
	uint64_t fh;
	int rc = gx_fut_alloc(&idx, &fh);
	if (rc < 0)
		return rc;
	gx_task_rec r;
	r.fn = (uint64_t)(uintptr_t)fn;
	r.fut = fh;
	r.len = (uint32_t)len;
	r.flags = 0;
	r.chunk = 0;
	/* 0: nobody needs the times (see gx_task_run) */
	r.t_submit = gx_pl.cfg.autoscaling || gx_pl.cfg.balance == GX_BALANCE_PREDICTIVE ? gx_now() : 0;
	r.cost = 0;
	r.name = opts && opts->name && gx_in_image(opts->name) ? (uint64_t)(uintptr_t)opts->name : 0;
	if (len <= GX_TASK_INLINE) {
		if (len)
			memcpy(r.arg, arg, len);
	} else {
		int64_t c = gx_pool_alloc(gx_pl.a, len, -1);
		if (c < 0) {
			gx_fut_release(idx);
			return (int)c;
		}
		memcpy(gx_arena_ptr(gx_pl.a, (gx_off)c, len), arg, len);
		gx_pool_give(gx_pl.a, (gx_off)c, 1, (uint32_t)len);
		r.chunk = (gx_off)c;
	}
	out->h = r.fut;
	/* no breaker named, none made, none by default: no call at all */
	gx_brk *b = (opts && opts->breaker) || atomic_load_explicit(&gx_pl.p->nbrk, memory_order_relaxed) ||
			    gx_pl.cfg.circuit_breaker
		? gx_brk_pick(r.fn, opts)
		: NULL;
	if (b) {
		int adm = gx_brk_admit(b, gx_now());
		if (adm == GX_BRK_REJECT) {
			/* open: answer at once, without dispatching */
			atomic_fetch_add_explicit(&b->rejected, 1, memory_order_relaxed);
			gx_stat_fn *sf = gx_task_stat(r.fn, r.name);
			if (sf)
				gx_stat_add(&sf->rejected, 1);
			r.flags |= gx_brk_index(b) << GX_TASK_BRK_SHIFT;
			gx_task_answer(&r, b, -EBUSY, 1, 1);
			gx_chunk_drop(r.chunk);
			return 0;
		}
		r.flags |= gx_brk_index(b) << GX_TASK_BRK_SHIFT | (adm == GX_BRK_TRIAL ? GX_TASK_PROBE : 0);
	}
	if (gx_pl.nslots == 0 || gx_pl.degraded) {
		gx_task_start(&r, 0, 0);
		return 0;
	}
	if (gx_pl.cfg.balance == GX_BALANCE_PREDICTIVE) {
		int64_t c = opts && opts->weight > 0 ? opts->weight : gx_cost_of(r.fn);
		if (opts && opts->weight > 0)
			r.flags |= GX_TASK_HINTED; /* a given cost: nothing to learn */
		r.cost = c > 0 ? c : 10000;
	}
	for (;;) {
		int w = target >= 0 ? target : gx_par_pick(r.cost);
		for (int i = 0; w < 0 && i < gx_pl.nslots; i++)
			if (atomic_load(&gx_pl.p->w[i].state) == GX_W_SPAWN)
				w = i; /* being (re)started: its inbox waits for it */
		if (w < 0) {
			/* no worker takes tasks (all dead or draining) */
			if (b && (r.flags & GX_TASK_PROBE))
				gx_brk_report(b, 1, -ECANCELED, 0); /* not a verdict */
			gx_chunk_drop(r.chunk);
			gx_fut_release(idx);
			out->h = 0;
			return -ESHUTDOWN;
		}
		gx_ring *in = gx_inbox(w);
		if (r.cost)
			atomic_fetch_add_explicit(&gx_pl.p->w[w].backlog_ns, r.cost, memory_order_relaxed);
		rc = in ? gx_ring_send(in, &r, sizeof r, GX_FOREVER) : -EINVAL;
		if (rc == 0) {
			gx_nudge_idle(w);
			return 0;
		}
		if (r.cost)
			atomic_fetch_sub_explicit(&gx_pl.p->w[w].backlog_ns, r.cost, memory_order_relaxed);
		if (target >= 0 || rc != -EPIPE) {
			if (b && (r.flags & GX_TASK_PROBE))
				gx_brk_report(b, 1, -ECANCELED, 0);
			gx_chunk_drop(r.chunk);
			gx_fut_release(idx);
			out->h = 0;
			return rc == -EPIPE ? -ESHUTDOWN : rc;
		}
	}
}

