/*
 * gx_go_parallel: a task record (function, future, argument bytes inline
 * or a pool chunk) into the chosen worker's inbox, an MPMC ring; with no
 * workers (or none left, degraded) the task runs in a local coroutine.
 *
 * Invariants: a submission either hands its record to one inbox, with its
 * future PENDING and its argument chunk in RING state, or returns an
 * error with the future released and the chunk freed; it waits for room
 * in a full inbox at most as long as opts.until allows, and tries each
 * worker at most once when inboxes turn out closed.
 *
 * gx_go_parallel_n packs up to GX_BATCH records on its stack and sends
 * them with one ring batch (one publish, one wake-up check) to the worker
 * picked for that share; a share is at most the batch divided among the
 * active workers, so a short batch of long tasks still spreads. Records
 * the inbox did not take have their futures released before the next
 * share; the caller learns the count submitted.
 *
 * Rejected: a submission that waits for ever on a full inbox (an inbox a
 * peer made look full held the caller for good); retrying closed inboxes
 * without end; batching inside gx_go_parallel itself, records held back
 * until the caller waits or yields (a task submitted before a long
 * computation in main would not start until it ended).
 */
#include "par/par.h"

#include <limits.h>
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
		if (gx_seal_init() < 0 || gx_par_local_init() < 0)
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

/* The checks after the argument's own, in the order callers see them; the
 * local table is made here when missing. *target: the worker asked for, -1
 * for any. 0 or -errno. */
static int gx_go_admissible(gx_task_fn fn, size_t len, const gx_par_opts *opts, int *target)
{
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
	*target = opts ? opts->worker : -1;
	if (*target >= gx_pl.nslots || *target < -1 || (*target >= 0 && gx_pl.nslots == 0))
		return -EINVAL;
	return 0;
}

/* r as the record of fn(arg) answering future fh, the argument inline or
 * in a pool chunk. 0, or -errno with no chunk taken. */
static int gx_task_pack(gx_task_rec *r, uint64_t fh, gx_task_fn fn, const void *arg, size_t len,
			const gx_par_opts *opts)
{
	r->code = gx_code_seal((uint64_t)(uintptr_t)fn);
	if (!r->code)
		return -EINVAL; /* no key: the runtime is not set up */
	r->fut = fh;
	r->len = (uint32_t)len;
	r->flags = 0;
	r->chunk = 0;
	/* 0: nobody needs the times (see gx_task_run) */
	r->t_submit = gx_pl.cfg.autoscaling || gx_pl.cfg.balance == GX_BALANCE_PREDICTIVE ? gx_now() : 0;
	r->cost = 0;
	r->name = opts && opts->name && gx_in_image(opts->name) ? (uint64_t)(uintptr_t)opts->name : 0;
	if (len <= GX_TASK_INLINE) {
		if (len)
			memcpy(r->arg, arg, len);
		return 0;
	}
	int64_t c = gx_pool_alloc(gx_pl.a, len, -1);
	if (c < 0)
		return (int)c;
	void *dst = gx_arena_ptr(gx_pl.a, (gx_off)c, len);
	if (!dst) {
		gx_pool_free(gx_pl.a, (gx_off)c);
		return -EBADMSG; /* a pool a peer scribbled over */
	}
	memcpy(dst, arg, len);
	gx_pool_give(gx_pl.a, (gx_off)c, 1, (uint32_t)len);
	r->chunk = (gx_off)c;
	return 0;
}

/* Ask r's breaker, if any (*bp), to admit it; r then carries the breaker's
 * index and GX_TASK_PROBE for a trial. 1 when the breaker is open and r
 * was answered here as refused (gx_task_answer), its chunk dropped; 0 to
 * dispatch r. */
static int gx_task_admit(gx_task_rec *r, uint64_t fn, const gx_par_opts *opts, gx_brk **bp)
{
	/* no breaker named, none made, none by default: no call at all */
	gx_brk *b = (opts && opts->breaker) || atomic_load_explicit(&gx_pl.p->nbrk, memory_order_relaxed) ||
			    gx_pl.cfg.circuit_breaker
		? gx_brk_pick(fn, opts)
		: NULL;
	*bp = b;
	if (!b)
		return 0;
	int adm = gx_brk_admit(b, gx_now());
	if (adm == GX_BRK_REJECT) {
		/* open: answer at once, without dispatching */
		atomic_fetch_add_explicit(&b->rejected, 1, memory_order_relaxed);
		gx_stat_fn *sf = gx_task_stat(fn, r->name);
		if (sf)
			gx_stat_add(&sf->rejected, 1);
		r->flags |= gx_brk_index(b) << GX_TASK_BRK_SHIFT;
		gx_task_answer(r, b, -EBUSY, 1, 1);
		gx_chunk_drop(r->chunk);
		return 1;
	}
	r->flags |= gx_brk_index(b) << GX_TASK_BRK_SHIFT | (adm == GX_BRK_TRIAL ? GX_TASK_PROBE : 0);
	return 0;
}

/* Predictive balance: r's expected cost, the caller's weight or what
 * fn's past runs cost. */
static void gx_task_cost(gx_task_rec *r, uint64_t fn, const gx_par_opts *opts)
{
	int64_t c = opts && opts->weight > 0 ? opts->weight : gx_cost_of(fn);
	if (opts && opts->weight > 0)
		r->flags |= GX_TASK_HINTED; /* a given cost: nothing to learn */
	r->cost = c > 0 ? c : 10000;
}

/* How long a submission may wait for room: opts.until, where an all-zero
 * one (options zeroed by hand) is forever. */
static gx_until gx_send_until(const gx_par_opts *opts)
{
	if (!opts || (opts->until.deadline == 0 && !opts->until.ctx))
		return GX_FOREVER;
	return opts->until;
}

/* Send the k records at r (k > 1 only with no costs: see
 * gx_go_parallel_n) to worker target, or (target -1) to the one the
 * balancer picks, picking again while the picked inbox turns out closed.
 * The count sent (at least 1: a batch into a full inbox sends what fits),
 * or -errno with none sent. */
static int gx_task_send(gx_task_rec *r, int k, int target, gx_until u)
{
	/* a closed inbox (the runtime stopping, or a close a peer scribbled
	 * in) sends the task to another worker: each gets one try */
	for (int tries = 0; tries <= gx_pl.nslots; tries++) {
		int w = target >= 0 ? target : gx_par_pick(r->cost);
		for (int i = 0; w < 0 && i < gx_pl.nslots; i++)
			if (atomic_load(&gx_pl.p->w[i].state) == GX_W_SPAWN)
				w = i; /* being (re)started: its inbox waits for it */
		if (w < 0)
			return -ESHUTDOWN; /* no worker takes tasks (all dead or draining) */
		gx_ring *in = gx_inbox(w);
		if (r->cost)
			atomic_fetch_add_explicit(&gx_pl.p->w[w].backlog_ns, r->cost, memory_order_relaxed);
		int rc = !in ? -EINVAL : k == 1 ? gx_ring_send(in, r, sizeof *r, u) : gx_ring_send_batch(in, r, (size_t)k, u);
		if (rc >= 0) {
			gx_nudge_idle(w);
			return k == 1 ? 1 : rc;
		}
		if (r->cost)
			atomic_fetch_sub_explicit(&gx_pl.p->w[w].backlog_ns, r->cost, memory_order_relaxed);
		if (target >= 0 || rc != -EPIPE)
			return rc == -EPIPE ? -ESHUTDOWN : rc;
	}
	return -ESHUTDOWN;
}

int gx_go_parallel(gx_future *out, gx_task_fn fn, const void *arg, size_t len, const gx_par_opts *opts)
{
	if (!out || !fn || (len && !arg))
		return -EINVAL;
	out->h = 0;
	int target;
	int rc = gx_go_admissible(fn, len, opts, &target);
	if (rc < 0)
		return rc;
	uint32_t idx;
	uint64_t fh;
	rc = gx_fut_alloc(&idx, &fh);
	if (rc < 0)
		return rc;
	gx_task_rec r;
	rc = gx_task_pack(&r, fh, fn, arg, len, opts);
	if (rc < 0) {
		gx_fut_release(idx);
		return rc;
	}
	out->h = r.fut;
	gx_brk *b;
	if (gx_task_admit(&r, (uint64_t)(uintptr_t)fn, opts, &b))
		return 0; /* refused by an open breaker, and answered */
	if (gx_pl.nslots == 0 || gx_pl.degraded) {
		gx_task_start(&r, 0, 0);
		return 0;
	}
	if (gx_pl.cfg.balance == GX_BALANCE_PREDICTIVE)
		gx_task_cost(&r, (uint64_t)(uintptr_t)fn, opts);
	rc = gx_task_send(&r, 1, target, gx_send_until(opts));
	if (rc < 0) {
		if (b && (r.flags & GX_TASK_PROBE))
			gx_brk_report(b, 1, -ECANCELED, 0); /* not a verdict */
		gx_chunk_drop(r.chunk);
		gx_fut_release(idx);
		out->h = 0;
	}
	return rc < 0 ? rc : 0;
}

/* ---- gx_go_parallel_n ---- */

/* Records a batch sends at most: one share of a worker's inbox. 16 keeps
 * the records on the stack under 2 KiB (a coroutine's stack may be 16). */
#define GX_BATCH 16

/* The workers a batch is shared among: the active ones (at least 1). */
static int gx_batch_ways(int target)
{
	if (target >= 0)
		return 1;
	int n = 0;
	for (int i = 0; i < gx_pl.nslots; i++)
		n += gx_active(i);
	return n ? n : 1;
}

/* A batch of what the plain call would do alike for each task: workers
 * to send to, no breaker for fn to ask, no cost to learn, arguments
 * inline. */
static bool gx_batchable(gx_task_fn fn, size_t len, const gx_par_opts *opts)
{
	if (gx_pl.nslots == 0 || gx_pl.degraded || len > GX_TASK_INLINE || gx_pl.cfg.balance == GX_BALANCE_PREDICTIVE)
		return false;
	/* as gx_task_admit looks: only when some breaker may apply */
	bool may = (opts && opts->breaker) || atomic_load_explicit(&gx_pl.p->nbrk, memory_order_relaxed) ||
		   gx_pl.cfg.circuit_breaker;
	return !may || !gx_brk_pick((uint64_t)(uintptr_t)fn, opts);
}

int gx_go_parallel_n(gx_future *out, size_t n, gx_task_fn fn, const void *args, size_t len, const gx_par_opts *opts)
{
	if (!out || n > INT_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		out[i].h = 0;
	if (!fn || (n && len && !args))
		return -EINVAL;
	if (!n)
		return 0;
	int target;
	int rc = gx_go_admissible(fn, len, opts, &target);
	if (rc < 0)
		return rc;
	const unsigned char *a = args; /* NULL only with len 0 */
	if (!gx_batchable(fn, len, opts)) {
		/* one at a time, each as gx_go_parallel does it */
		for (size_t i = 0; i < n; i++) {
			rc = gx_go_parallel(&out[i], fn, a ? a + i * len : NULL, len, opts);
			if (rc < 0)
				return i ? (int)i : rc;
		}
		return (int)n;
	}
	gx_until u = gx_send_until(opts);
	/* a share per worker, so that a batch of two long tasks starts on
	 * two workers: the same size for every share of the call */
	size_t ways = (size_t)gx_batch_ways(target), share = (n + ways - 1) / ways;
	if (share > GX_BATCH)
		share = GX_BATCH;
	gx_task_rec recs[GX_BATCH];
	uint32_t idx[GX_BATCH];
	size_t done = 0;
	while (done < n) {
		size_t k = n - done < share ? n - done : share;
		size_t packed = 0;
		for (; packed < k; packed++) {
			uint64_t fh;
			rc = gx_fut_alloc(&idx[packed], &fh);
			if (rc < 0)
				break; /* the table is full */
			rc = gx_task_pack(&recs[packed], fh, fn, a ? a + (done + packed) * len : NULL, len, opts);
			if (rc < 0) {
				gx_fut_release(idx[packed]);
				break;
			}
		}
		int sent = packed ? gx_task_send(recs, (int)packed, target, u) : rc;
		for (int i = sent > 0 ? sent : 0; i < (int)packed; i++)
			gx_fut_release(idx[i]); /* not sent: back, and tried again next round */
		if (sent <= 0)
			return done ? (int)done : sent;
		for (int i = 0; i < sent; i++)
			out[done + (size_t)i].h = recs[i].fut;
		done += (size_t)sent;
		/* on: a round that packs nothing (the table full, rc) ends
		 * the call, so a partial count means the next call fails */
	}
	return (int)done;
}

