/*
 * Running a task: the coroutine that calls the function, the running table
 * a supervisor re-runs from after a death, the figures, and the breaker's
 * answer (fallback, last good result, error) for a task that failed.
 *
 * Invariants:
 *  - a task taken by a worker is in its running table from the moment it
 *    is taken (TAKEN) until its future was completed (then FREE with the
 *    next generation): a death at any point in between leaves it there
 *    for the supervisor to run again;
 *  - the argument chunk is freed only after the future is complete and
 *    the entry FREE: a re-run never finds it freed;
 *  - the function called is the one the submitter sealed (seal.c) and code
 *    of the image, never a word of the arena taken on trust; a name is
 *    printed only when it is a string of the image.
 *
 * Who writes what: the worker writes its running table (rec, start, tag);
 * main's watchdog moves RUNNING to TIMEDOUT by CAS; main's supervisor
 * resets a dead worker's table. Ordering: rec and start before the tag
 * (release), read by main under acquire (par.h names the pairs).
 *
 * Tasks start in the order they were taken (gx_go_fifo), each in its own
 * coroutine.
 *
 * Rejected: a used-bit per entry with the start time as its claim (the
 * watchdog's CAS on a start time could fail the next task of the entry);
 * starting the clock when a task is taken (its batch-mates timed out
 * behind one that hung, without ever running).
 */
#include "par/par.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rand.h"
#include "core/sched.h"

/* ---- running a task ---- */

gx_runtab *gx_runtab_of(int i)
{
	return i >= 0 && i < gx_pl.nslots ? gx_pl.runtab[i] : NULL; /* this process's copy */
}

/* Worker: record r in the running table (TAKEN); the entry, or -1 when
 * full. */
static int gx_rt_put(const gx_task_rec *r)
{
	if (!gx_pl.rt || !gx_pl.rt_nfree)
		return -1;
	int e = gx_pl.rt_free[--gx_pl.rt_nfree];
	uint64_t gen = GX_RT_GEN(atomic_load_explicit(&gx_pl.rt->tag[e], memory_order_relaxed));
	gx_pl.rt->rec[e] = *r;
	atomic_store_explicit(&gx_pl.rt->start[e], 0, memory_order_relaxed);
	/* release: the record before TAKEN (pairs with the readers' acquire) */
	atomic_store_explicit(&gx_pl.rt->tag[e], GX_RT_TAG(gen, GX_RT_TAKEN), memory_order_release);
	return e;
}

/* Worker: the task of entry e begins to run (RUNNING, with its start time
 * when tasks have a timeout). */
static void gx_rt_running(int e)
{
	if (e < 0 || !gx_pl.rt)
		return;
	uint64_t gen = GX_RT_GEN(atomic_load_explicit(&gx_pl.rt->tag[e], memory_order_relaxed));
	atomic_store_explicit(&gx_pl.rt->start[e], gx_pl.cfg.worker_timeout_ms ? gx_now() : 0, memory_order_relaxed);
	/* release: the start time before RUNNING (pairs with the watchdog's acquire) */
	atomic_store_explicit(&gx_pl.rt->tag[e], GX_RT_TAG(gen, GX_RT_RUNNING), memory_order_release);
}

/* Worker: entry e's task is done: FREE, next generation (whatever the
 * watchdog made of it meanwhile). */
static void gx_rt_clear(int e)
{
	if (e < 0 || !gx_pl.rt)
		return;
	uint64_t gen = GX_RT_GEN(atomic_load_explicit(&gx_pl.rt->tag[e], memory_order_relaxed));
	/* acq_rel: ends the entry's generation; the watchdog's CAS from the old tag fails after it */
	atomic_exchange_explicit(&gx_pl.rt->tag[e], GX_RT_TAG(gen + 1, GX_RT_FREE), memory_order_acq_rel);
	gx_pl.rt_free[gx_pl.rt_nfree++] = (uint8_t)e;
}

/* A result of up to GX_RESULT_SMALL bytes is kept in the run's own frame:
 * a tiny task's malloc and free cost more than the task (callgrind: ~260
 * instructions a task, of ~1,100 on the worker). */
#define GX_RESULT_SMALL 64
struct gx_task_result {
	const void *data;
	size_t len;
	void *own; /* malloc'd copy of a larger one */
	_Alignas(16) unsigned char small[GX_RESULT_SMALL];
};

int gx_task_return(gx_task_result *res, const void *data, size_t len)
{
	if (!res || (len && !data))
		return -EINVAL;
	if (len > GX_TASK_MAX)
		return -EMSGSIZE;
	if (len <= GX_RESULT_SMALL) {
		if (len)
			memcpy(res->small, data, len);
		free(res->own);
		res->own = NULL;
		res->data = res->small;
		res->len = len;
		return 0;
	}
	void *c = malloc(len);
	if (!c)
		return -ENOMEM;
	memcpy(c, data, len);
	free(res->own);
	res->own = c;
	res->data = c;
	res->len = len;
	return 0;
}

/* ---- figures ---- */

/* The display name of a task: its gx_par_opts.name, else the symbol of fn,
 * else module+offset. */
static void gx_fn_name(uint64_t fn, uint64_t name, char *buf, size_t cap)
{
	/* the name came through the arena: a string of the image, or none */
	if (name && gx_in_image((const char *)(uintptr_t)name)) {
		snprintf(buf, cap, "%s", (const char *)(uintptr_t)name);
		return;
	}
	Dl_info di;
	if (dladdr((void *)(uintptr_t)fn, &di) && di.dli_fname) {
		if (di.dli_sname && di.dli_saddr == (void *)(uintptr_t)fn) {
			snprintf(buf, cap, "%s", di.dli_sname);
			return;
		}
		const char *m = strrchr(di.dli_fname, '/');
		snprintf(buf, cap, "%s+0x%llx", m ? m + 1 : di.dli_fname,
			 (unsigned long long)(fn - (uint64_t)(uintptr_t)di.dli_fbase));
		return;
	}
	snprintf(buf, cap, "0x%llx", (unsigned long long)fn);
}

/* This process's entry for tasks (fn, name), or NULL with stats off. A
 * one-entry cache keeps a run of the same function to two compares. */
gx_stat_fn *gx_task_stat(uint64_t fn, uint64_t name)
{
	static gx_stat_shard *cs;
	static gx_stat_fn *cf;
	if (!gx_pl.shard || !fn)
		return NULL; /* stats off, or a forged function: not counted */
	if (cs == gx_pl.shard && cf && cf->fn == fn && cf->nameptr == name && cf->kind == GX_STAT_TASK)
		return cf;
	char nm[GX_STAT_NAME];
	gx_fn_name(fn, name, nm, sizeof nm);
	cs = gx_pl.shard;
	cf = gx_stat_entry(gx_pl.shard, GX_STAT_TASK, fn, name, nm);
	return cf;
}

/* ---- breakers: answering for a task that failed or was refused ---- */

void gx_task_start(const gx_task_rec *r, int stolen, int cancel);

/*
 * A task of breaker b ends with rc and no answer of its own worth giving
 * (failed for good, or refused by an open breaker): its fallback runs in
 * a local coroutine, or the last good result answers, or the future gets
 * rc (-EBUSY for a refusal, with origin REJECTED). may_run: r's argument
 * can be read now (a fallback gets its own copy; r's chunk stays the
 * caller's).
 */
void gx_task_answer(const gx_task_rec *r, gx_brk *b, int rc, int refused, int may_run)
{
	if (!gx_fut_pending(r->fut))
		return; /* answered already (a timeout): nothing to add */
	if (b->fallback && may_run) {
		gx_task_rec f = *r;
		f.flags = (r->flags & ~GX_TASK_PROBE) | GX_TASK_FALLBACK;
		f.cost = 0;
		int ok = 1;
		if (r->len > GX_TASK_INLINE) {
			const void *src = gx_arena_ptr(gx_pl.a, r->chunk, r->len);
			int64_t c = src ? gx_pool_alloc(gx_pl.a, r->len, -1) : -EBADMSG;
			void *dst = c >= 0 ? gx_arena_ptr(gx_pl.a, (gx_off)c, r->len) : NULL;
			if (c >= 0 && !dst) {
				gx_pool_free(gx_pl.a, (gx_off)c);
				c = -EBADMSG;
			}
			if (c >= 0) {
				memcpy(dst, src, r->len);
				gx_pool_give(gx_pl.a, (gx_off)c, 1, r->len);
				f.chunk = (gx_off)c;
			} else {
				ok = 0; /* no room for the copy: answer as without one */
			}
		}
		if (ok) {
			atomic_fetch_add_explicit(&b->fallbacks, 1, memory_order_relaxed);
			gx_task_start(&f, 0, 0);
			return;
		}
	}
	if (b->last_good) {
		uint8_t buf[GX_BREAKER_LAST_MAX];
		int lrc;
		size_t len;
		if (gx_brk_last(b, &lrc, buf, &len)) {
			atomic_fetch_add_explicit(&b->last_goods, 1, memory_order_relaxed);
			gx_fut_complete_o(r->fut, lrc, buf, len, GX_ORIGIN_LAST_GOOD);
			return;
		}
	}
	gx_fut_complete_o(r->fut, refused ? -EBUSY : rc, NULL, 0, refused ? GX_ORIGIN_REJECTED : GX_ORIGIN_TASK);
}

/* A task that will not run again ended with rc outside the task itself
 * (its re-runs ran out, it timed out): the breaker hears of it and may
 * answer. may_run: as for gx_task_answer; r's chunk stays the caller's. */
void gx_task_fail(const gx_task_rec *r, int rc, int may_run)
{
	gx_stat_fn *sf = gx_task_stat(gx_code_open(r->code), r->name);
	if (sf && rc < 0)
		gx_stat_add(&sf->errors, 1);
	gx_brk *b = gx_brk_at(GX_TASK_BRK(r->flags));
	if (b && !(r->flags & GX_TASK_FALLBACK)) {
		gx_brk_report(b, (r->flags & GX_TASK_PROBE) != 0, rc, gx_now());
		if (gx_brk_failed(rc)) {
			gx_task_answer(r, b, rc, 0, may_run);
			return;
		}
	}
	gx_fut_complete(r->fut, rc, NULL, 0);
}

/* Breaker retry delay before re-run k (1, 2, ...): backoff doubling up to
 * backoff_max, +-25% jitter. */
static int64_t gx_backoff(const gx_brk *b, uint32_t k)
{
	/* the breaker is in the arena: bounded as gx_breaker_make bounds it */
	int64_t most = b->backoff_max > 0 && b->backoff_max <= 60 * GX_SECOND ? b->backoff_max : 60 * GX_SECOND;
	int64_t d = b->backoff > 0 && b->backoff <= most ? b->backoff : 0;
	for (uint32_t i = 1; i < k && d < most; i++)
		d *= 2;
	if (d > most)
		d = most;
	if (d >= 4)
		d += (int64_t)(gx_rand64() % (uint64_t)(d / 2)) - d / 4;
	return d;
}

/* What a run needs beside the record. */
typedef struct {
	gx_wk *w;
	gx_brk *b;
	gx_stat_fn *sf;
	uint64_t fn; /* the record's function, opened (0: forged) */
	int fallback;
	int timed, sample;
	int64_t t0, ns;
	uint32_t retries;
	const void *argp;
	gx_task_result res;
} gx_run_ctx;

/* Call the function, with the breaker's retries. Returns its code. */
static int gx_task_call(const gx_task_rec *r, gx_run_ctx *c)
{
	uint64_t f = c->fallback ? gx_code_open(c->b->fallback) : c->fn;
	if (!f)
		return -EBADMSG; /* a sealed word that opens to no code: scribbled over */
	gx_task_fn fn = (gx_task_fn)(uintptr_t)f;
	for (;;) {
		int rc = c->argp ? fn(c->argp, r->len, &c->res) : -EBADMSG;
		gx_brk *b = c->b;
		if (!b || c->fallback || !gx_fut_pending(r->fut))
			return rc; /* no breaker, or answered already (timed out) */
		gx_brk_report(b, (r->flags & GX_TASK_PROBE) != 0, rc, gx_now());
		uint32_t most = b->retries <= 100 ? b->retries : 100; /* as gx_breaker_make allows */
		if (!gx_brk_failed(rc) || c->retries >= most || !gx_brk_closed(b) || gx_pl.stopping ||
		    atomic_load(&gx_pl.p->stop))
			return rc;
		c->retries++;
		gx_sleep(gx_backoff(b, c->retries));
		c->res.len = 0;
	}
}

/* The figures of a run that ended with rc, before the future: whoever saw
 * it done sees them. */
static void gx_task_figures(const gx_task_rec *r, gx_run_ctx *c, int rc)
{
	gx_stat_fn *sf = c->sf;
	if (sf && c->fallback) {
		gx_stat_add(&sf->fallbacks, 1); /* the function itself did not run */
	} else if (sf) {
		gx_stat_add(&sf->count, 1 + c->retries);
		if (rc < 0)
			gx_stat_add(&sf->errors, 1);
		uint32_t retries = c->retries + ((r->flags >> GX_TASK_ATTEMPT_SHIFT) & 0xffu);
		if (retries)
			gx_stat_add(&sf->retries, retries);
		if (c->sample)
			gx_stat_time(sf, c->ns);
	}
	if (c->timed && gx_pl.cfg.balance == GX_BALANCE_PREDICTIVE && !(r->flags & GX_TASK_HINTED) && !c->fallback)
		gx_cost_learn(c->fn, c->ns);
	gx_wk *w = c->w;
	if (w) {
		atomic_fetch_sub_explicit(&w->running, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&w->tasks, 1, memory_order_relaxed);
		if (r->cost)
			atomic_fetch_sub_explicit(&w->backlog_ns, r->cost, memory_order_relaxed);
	}
}

/* Task structs of this process, kept for the next task instead of freed:
 * a worker takes and ends tasks at the same pace, so the list stays as
 * long as the most ever running at once (at most GX_TASK_KEEP kept). */
#define GX_TASK_KEEP 256
static gx_task *gx_task_spare;
static unsigned gx_task_nspare;

static gx_task *gx_task_get(void)
{
	gx_task *t = gx_task_spare;
	if (!t)
		return malloc(sizeof *t);
	gx_task_spare = t->next;
	gx_task_nspare--;
	return t;
}

/* gx_par_fini: the spare task structs back to malloc (no task runs). */
void gx_task_spares_fini(void)
{
	while (gx_task_spare) {
		gx_task *t = gx_task_spare;
		gx_task_spare = t->next;
		free(t);
	}
	gx_task_nspare = 0;
}

static void gx_task_put(gx_task *t)
{
	if (gx_task_nspare >= GX_TASK_KEEP) {
		free(t);
		return;
	}
	t->next = gx_task_spare;
	gx_task_spare = t;
	gx_task_nspare++;
}

static void gx_task_run(void *arg)
{
	gx_task *t = arg;
	gx_task_rec *r = &t->rec;
	gx_rt_running(t->slot);
	gx_run_ctx c = {.w = gx_pl.me >= 0 ? &gx_pl.p->w[gx_pl.me] : NULL};
	c.b = GX_TASK_BRK(r->flags) ? gx_brk_at(GX_TASK_BRK(r->flags)) : NULL;
	c.fallback = (r->flags & GX_TASK_FALLBACK) != 0 && c.b && c.b->fallback;
	c.fn = gx_code_open(r->code);
	c.sf = gx_task_stat(c.fn, r->name);
	/* clocks cost ~20 ns each here: read them only for what needs them
	 * (autoscaling's wait average, predictive's run times, a sample
	 * for the figures) */
	c.timed = r->t_submit != 0;
	c.sample = c.sf && gx_stat_sample(gx_pl.shard, c.sf);
	c.t0 = c.timed || c.sample ? gx_now() : 0;
	if (c.w && c.timed) {
		int64_t waited = c.t0 - r->t_submit;
		int64_t old = atomic_load_explicit(&c.w->wait_ewma_ns, memory_order_relaxed);
		atomic_store_explicit(&c.w->wait_ewma_ns, old + (waited - old) / 8, memory_order_relaxed);
	}
	c.argp = r->len > GX_TASK_INLINE ? gx_arena_ptr(gx_pl.a, r->chunk, r->len) : r->arg;
	int rc = gx_task_call(r, &c);
	c.ns = c.timed || c.sample ? gx_now() - c.t0 : 0;
	gx_task_figures(r, &c, rc);
	gx_brk *b = c.b;
	if (b && !c.fallback && gx_brk_failed(rc) && (b->fallback || b->last_good)) {
		gx_task_answer(r, b, rc, 0, c.argp != NULL); /* failed for good */
	} else {
		if (b && !c.fallback && rc >= 0)
			gx_brk_keep(b, rc, c.res.data, c.res.len);
		gx_fut_complete_o(r->fut, rc, c.res.data, c.res.len, c.fallback ? GX_ORIGIN_FALLBACK : GX_ORIGIN_TASK);
	}
	gx_rt_clear(t->slot); /* done: nothing to run again */
	/* the argument chunk only now: a re-run after a death in between
	 * must not find it freed (and maybe reused) */
	if (r->len > GX_TASK_INLINE && c.argp)
		gx_chunk_drop(r->chunk);
	free(c.res.own);
	if (t->helped)
		gx_pl.helped_running--;
	gx_task_put(t);
	gx_wg_done(&gx_pl.tasks_wg);
}

/* A task that will not run: its future gets rc (its breaker hears of it,
 * a trial gives its place back), its argument chunk is freed. */
void gx_task_drop(const gx_task_rec *r, int rc)
{
	gx_task_fail(r, rc, 0);
	if (r->len > GX_TASK_INLINE)
		gx_chunk_drop(r->chunk);
}

static void gx_task_begin(const gx_task_rec *r, int stolen, int cancel, int helped)
{
	gx_wk *w = gx_pl.me >= 0 ? &gx_pl.p->w[gx_pl.me] : NULL;
	if (cancel) {
		gx_task_drop(r, -ECANCELED);
		return;
	}
	gx_task *t = gx_task_get();
	if (!t) {
		gx_task_drop(r, -ENOMEM);
		return;
	}
	t->rec = *r;
	t->stolen = stolen;
	t->helped = helped;
	t->slot = gx_rt_put(r);
	if (w) {
		atomic_fetch_add_explicit(&w->running, 1, memory_order_relaxed);
		if (stolen)
			atomic_fetch_add_explicit(&w->steals, 1, memory_order_relaxed);
	}
	gx_wg_add(&gx_pl.tasks_wg, 1);
	/* FIFO: tasks taken together start in the order they were sent */
	if (helped) {
		gx_pl.helped_running++;
		atomic_fetch_add_explicit(&gx_pl.p->main_helped, 1, memory_order_relaxed);
	}
	if (gx_go_fifo(gx_task_run, t) < 0) {
		gx_wg_done(&gx_pl.tasks_wg);
		gx_rt_clear(t->slot);
		if (w)
			atomic_fetch_sub(&w->running, 1);
		if (helped) {
			gx_pl.helped_running--;
			atomic_fetch_sub_explicit(&gx_pl.p->main_helped, 1, memory_order_relaxed);
		}
		gx_task_put(t);
		gx_task_drop(r, -ENOMEM);
	}
}

void gx_task_start(const gx_task_rec *r, int stolen, int cancel)
{
	gx_task_begin(r, stolen, cancel, 0);
}

/* Main, helping (gx_main_help): counted in the figures, and while it
 * runs (gx_pl.helped_running). */
void gx_task_start_helped(const gx_task_rec *r)
{
	gx_task_begin(r, 0, 0, 1);
}

