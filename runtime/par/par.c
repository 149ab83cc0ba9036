/*
 * The parallel runtime: worker processes, gx_go_parallel, futures, load
 * balancing, work stealing, autoscaling.
 *
 * Processes. gx_run (workers != 0) creates the arena and, before its own
 * scheduler exists, forks a spawner: a small process with no runtime that
 * forks workers on request (a byte on a pipe) and reaps them (SIGCHLD via
 * signalfd), recording each exit in the worker's slot. A worker therefore
 * starts from a clean image: it runs gx_run of its own with the worker
 * loop as its main coroutine. Deaths chain: a worker dies with the spawner,
 * the spawner with the main process (PR_SET_PDEATHSIG, checked against a
 * parent that died before the prctl).
 *
 * Tasks. A task record (function, future, argument bytes inline or a pool
 * chunk) goes into the chosen worker's inbox, an MPMC ring. The worker loop
 * takes batches, runs each task in a coroutine of its own, and when its
 * inbox is empty and work stealing is on, takes half of the fullest other
 * inbox (any process may consume any ring). Results come back in the
 * future's slot (inline bytes, or a chunk handed over), and its state word
 * wakes the waiter (eventcount: spin, then futex through the loop).
 *
 * Strategies: round-robin (a counter per submitting process), least-busy
 * (queued + running, read from the shared counters), weighted (smooth
 * weighted round-robin, per submitting process), predictive (per-function
 * average run time; each worker's backlog of expected nanoseconds; the
 * earliest expected finish wins).
 *
 * Autoscaling (main process): a coroutine looks every 20 ms at how long
 * tasks waited in the inboxes; three looks in a row over 1 ms add a worker
 * (up to max), fifty looks with every inbox empty and no task started
 * retire the last worker (down to min): hysteresis both ways.
 */
#include "par/par.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/config.h"
#include "core/panic.h"
#include "core/rand.h"
#include "core/sched.h"

#include <gonex/chan.h>
#include <gonex/context.h>
#include <gonex/coro.h>
#include <gonex/dump.h>
#include <gonex/io.h>
#include <gonex/runtime.h>
#include <gonex/shm.h>
#include <gonex/stats.h>
#include <gonex/sync.h>

/* ---- process-local state ---- */

static struct {
	gx_arena *a;
	gx_par *p;
	gx_fut *futs;
	uint32_t nfut;   /* future slots (an eighth of the arena) */
	_Atomic uint32_t *fut_next;
	gx_config cfg;
	int me;          /* worker index, -1 in the main process */
	int nworkers;    /* started at boot (autoscaling moves it) */
	int wmin, wmax;
	int pipe_w;      /* main -> spawner requests */
	int own_arena;   /* workers == 0: a lazily made arena of our own */
	uint32_t rr;     /* round-robin */
	int64_t swrr[GX_MAX_WORKERS];
	int enabled;
	int stopping;
	gx_wg tasks_wg;  /* a worker's running tasks */
	gx_runtab *rt;   /* a worker's running table */
	uint8_t rt_free[GX_RUN_MAX];
	int rt_nfree;
	int degraded;    /* no worker left and none may restart: run locally */
	int64_t restart_at[1000]; /* supervisor: times of recent restarts */
	int nrestart;
	int64_t code_lo[64], code_hi[64];
	int ncode;
	int64_t img_lo[128], img_hi[128];
	int nimg;
	gx_stat_shard *shard; /* this process's figures, NULL with stats off */
	gx_ctx *stop_ctx;     /* main: cancelled when the runtime stops */
	gx_chan *hb_bell;     /* worker: wakes a resting heartbeat */
	int hb_resting;
	uint8_t stale_looks[GX_MAX_WORKERS]; /* main: watchdog looks in a row */
} Q = {.me = -1, .pipe_w = -1};

gx_par *gx_par_table(void)
{
	return Q.p;
}

void gx_par_configure(const gx_config *cfg)
{
	Q.cfg = *cfg;
}


const gx_config *gx_par_cfg(void)
{
	return &Q.cfg;
}

gx_stat_shard *gx_par_shard(void)
{
	return Q.shard;
}

int gx_par_enabled(void)
{
	return Q.enabled;
}

int gx_worker_id(void)
{
	return Q.me;
}

int gx_par_in_worker(void)
{
	return Q.me >= 0;
}

static inline gx_ring *gx_inbox(int i)
{
	return gx_ring_at(Q.a, Q.p->w[i].inbox);
}

int gx_dump_all(void)
{
	if (!gx_sched_active())
		return -EPERM;
	int n = 1;
	if (Q.p && Q.me < 0 && Q.p->nslots) {
		atomic_fetch_add(&Q.p->dump_seq, 1);
		for (int i = 0; i < (int)Q.p->nslots; i++) {
			uint32_t st = atomic_load(&Q.p->w[i].state);
			if (st != GX_W_READY && st != GX_W_DRAIN)
				continue;
			gx_ring *in = gx_inbox(i);
			if (in)
				gx_ring_kick(in);
			n++;
		}
	}
	char hdr[64];
	int l = snprintf(hdr, sizeof hdr, "gonex: %s dump\n", Q.me >= 0 ? "worker" : "main process");
	if (write(2, hdr, (size_t)l) < 0)
		return -errno;
	int rc = gx_coro_dump(2);
	return rc < 0 ? rc : n;
}

/* ---- code ranges: a task function must be in executable code ---- */

/* The loaded segments (executable ones for code, all for names), taken
 * once: by gx_par_init before the workers fork, so that nothing loaded
 * later (dlopen), which the workers would not have, is accepted. */
static int gx_phdr_cb(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	(void)data;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD)
			continue;
		int64_t lo = (int64_t)(info->dlpi_addr + ph->p_vaddr), hi = lo + (int64_t)ph->p_memsz;
		if ((ph->p_flags & PF_X) && Q.ncode < 64) {
			Q.code_lo[Q.ncode] = lo;
			Q.code_hi[Q.ncode] = hi;
			Q.ncode++;
		}
		if ((ph->p_flags & PF_R) && Q.nimg < 128) {
			Q.img_lo[Q.nimg] = lo;
			Q.img_hi[Q.nimg] = hi;
			Q.nimg++;
		}
	}
	return 0;
}

static void gx_image_ranges(void)
{
	if (!Q.ncode)
		dl_iterate_phdr(gx_phdr_cb, NULL);
}

int gx_par_is_code(const void *fn)
{
	gx_image_ranges();
	int64_t x = (int64_t)(uintptr_t)fn;
	for (int i = 0; i < Q.ncode; i++)
		if (x >= Q.code_lo[i] && x < Q.code_hi[i])
			return 1;
	return 0;
}

/* A name the workers can read too: a string inside a loaded segment of
 * the program or a library (a string literal), ending there. */
static int gx_in_image(const char *p)
{
	gx_image_ranges();
	int64_t x = (int64_t)(uintptr_t)p;
	for (int i = 0; i < Q.nimg; i++)
		if (x >= Q.img_lo[i] && x < Q.img_hi[i])
			return memchr(p, 0, (size_t)(Q.img_hi[i] - x)) != NULL;
	return 0;
}

/* ---- futures ---- */

static inline uint64_t gx_fh(uint32_t idx, uint32_t gen)
{
	return (uint64_t)gen << 32 | idx;
}

/* gx_fut_release bumps the generation; it skips 0 when it wraps */
static inline void gx_fut_bump(gx_fut *x)
{
	if (atomic_fetch_add(&x->gen, 1) == UINT32_MAX)
		atomic_fetch_add(&x->gen, 1);
}

static gx_fut *gx_fut_of(gx_future f)
{
	if (!Q.p)
		return NULL;
	uint32_t idx = (uint32_t)f.h, gen = (uint32_t)(f.h >> 32);
	if (idx >= Q.nfut || gen == 0)
		return NULL;
	gx_fut *x = &Q.futs[idx];
	if (atomic_load(&x->gen) != gen || atomic_load(&x->state) == GX_FUT_FREE)
		return NULL;
	return x;
}

static int gx_fut_alloc(uint32_t *idx)
{
	_Atomic uint64_t *head = &Q.p->fut_head;
	uint64_t h = atomic_load(head);
	for (;;) {
		uint32_t i = GX_TAG_IDX(h);
		if (!i || i > Q.nfut)
			return -EAGAIN; /* empty (or a corrupt head: refuse) */
		uint32_t next = atomic_load(&Q.fut_next[i - 1]);
		if (atomic_compare_exchange_weak(head, &h, GX_TAG_MAKE(next, GX_TAG_CNT(h) + 1))) {
			*idx = i - 1;
			return 0;
		}
	}
}

static void gx_fut_release(uint32_t idx)
{
	gx_fut *x = &Q.futs[idx];
	gx_fut_bump(x);
	atomic_store(&x->state, GX_FUT_FREE);
	_Atomic uint64_t *head = &Q.p->fut_head;
	uint64_t h = atomic_load(head);
	for (;;) {
		atomic_store(&Q.fut_next[idx], GX_TAG_IDX(h));
		if (atomic_compare_exchange_weak(head, &h, GX_TAG_MAKE(idx + 1, GX_TAG_CNT(h) + 1)))
			return;
	}
}

/* Free a chunk that was handed over (an argument or a result): take it
 * from its RING state, then free it. Nothing when it is not one. */
static void gx_chunk_drop(gx_off off)
{
	uint32_t l;
	if (off && gx_pool_take(Q.a, off, &l) == 0)
		gx_pool_free(Q.a, off);
}

static void gx_fut_drop_result(gx_fut *x)
{
	if (x->len > GX_TASK_INLINE) {
		gx_chunk_drop(x->chunk);
		x->chunk = 0;
	}
}

/* Complete a future with rc and the result bytes res/len. Exactly one
 * completion wins (a task re-run after its worker died may complete
 * twice): it moves PENDING -> COMPLETING, writes the result, then DONE. */
static void gx_fut_complete_o(uint64_t fh, int rc, const void *res, size_t len, uint32_t origin)
{
	uint32_t idx = (uint32_t)fh;
	gx_fut *x = idx < Q.nfut ? &Q.futs[idx] : NULL;
	if (!x || atomic_load(&x->gen) != (uint32_t)(fh >> 32))
		return;
	uint32_t st = GX_FUT_PENDING;
	uint32_t completing = GX_FUT_COMPLETING | (uint32_t)(Q.me + 1) << 8;
	if (!atomic_compare_exchange_strong(&x->state, &st, completing)) {
		if (st == GX_FUT_ABANDONED) {
			/* abandoned by gx_future_free: the slot is ours to release */
			gx_fut_drop_result(x);
			gx_fut_release(idx);
		}
		return; /* DONE or COMPLETING: a second completion; the first stands */
	}
	x->err = rc;
	x->len = 0;
	x->chunk = 0;
	x->origin = origin;
	if (res && len) {
		if (len <= GX_TASK_INLINE) {
			memcpy(x->data, res, len);
			x->len = (uint32_t)len;
		} else {
			int64_t c = gx_pool_alloc(Q.a, len, -1);
			if (c < 0) {
				x->err = (int)c;
			} else {
				memcpy(gx_arena_ptr(Q.a, (gx_off)c, len), res, len);
				gx_pool_give(Q.a, (gx_off)c, 1, (uint32_t)len);
				x->chunk = (gx_off)c;
				x->len = (uint32_t)len;
			}
		}
	}
	atomic_store_explicit(&x->state, GX_FUT_DONE, memory_order_release);
	gx_ec_notify(&x->ec, NULL);
}

static void gx_fut_complete(uint64_t fh, int rc, const void *res, size_t len)
{
	gx_fut_complete_o(fh, rc, res, len, GX_ORIGIN_TASK);
}

/* Still waiting for its answer (a fallback for a finished one is moot). */
static int gx_fut_pending(uint64_t fh)
{
	uint32_t idx = (uint32_t)fh;
	gx_fut *x = idx < Q.nfut ? &Q.futs[idx] : NULL;
	if (!x || atomic_load(&x->gen) != (uint32_t)(fh >> 32))
		return 0;
	uint32_t st = atomic_load(&x->state);
	return st == GX_FUT_PENDING || st == GX_FUT_ABANDONED;
}

struct gx_task_result {
	const void *data;
	size_t len;
	void *own; /* malloc'd copy */
};

int gx_task_return(gx_task_result *res, const void *data, size_t len)
{
	if (!res || (len && !data))
		return -EINVAL;
	if (len > GX_TASK_MAX)
		return -EMSGSIZE;
	void *c = NULL;
	if (len) {
		c = malloc(len);
		if (!c)
			return -ENOMEM;
		memcpy(c, data, len);
	}
	free(res->own);
	res->own = c;
	res->data = c;
	res->len = len;
	return 0;
}

static bool gx_fut_ready(void *arg)
{
	gx_fut *x = arg;
	uint32_t st = atomic_load_explicit(&x->state, memory_order_acquire);
	return st != GX_FUT_PENDING && GX_FUT_KIND(st) != GX_FUT_COMPLETING;
}

static int gx_fut_read(gx_fut *x, void *buf, size_t cap, size_t *len)
{
	if (len)
		*len = x->len;
	if (buf && cap && x->len) {
		size_t n = x->len < cap ? x->len : cap;
		const void *src = x->len <= GX_TASK_INLINE ? (const void *)x->data
							   : gx_arena_ptr(Q.a, x->chunk, x->len);
		if (!src)
			return -EBADMSG;
		memcpy(buf, src, n);
	}
	return x->err;
}

int gx_future_try(gx_future f, void *buf, size_t cap, size_t *len)
{
	gx_fut *x = gx_fut_of(f);
	if (!x || atomic_load(&x->state) == GX_FUT_ABANDONED)
		return -EINVAL;
	if (!gx_fut_ready(x))
		return -EAGAIN;
	return gx_fut_read(x, buf, cap, len);
}

int gx_future_wait(gx_future f, void *buf, size_t cap, size_t *len, gx_until u)
{
	gx_fut *x = gx_fut_of(f);
	if (!x || atomic_load(&x->state) == GX_FUT_ABANDONED)
		return -EINVAL;
	if (!gx_fut_ready(x)) {
		/* a tenth of the spin budget: a quick task (a dispatch round
		 * trip is ~250 ns) still completes within it, while a waiter
		 * that shares its CPU with a worker does not steal 20 us of
		 * that worker's time for every long task */
		int rc = gx_ec_wait(&x->ec, gx_fut_ready, x, Q.a ? gx_ah(Q.a)->spin_ns / 10 : 0, u, NULL);
		if (rc < 0)
			return rc;
	}
	if (atomic_load(&x->gen) != (uint32_t)(f.h >> 32) || atomic_load(&x->state) != GX_FUT_DONE)
		return -EINVAL; /* freed while we waited */
	return gx_fut_read(x, buf, cap, len);
}

int gx_future_origin(gx_future f)
{
	gx_fut *x = gx_fut_of(f);
	if (!x || atomic_load(&x->state) == GX_FUT_ABANDONED)
		return -EINVAL;
	if (!gx_fut_ready(x))
		return -EAGAIN;
	return (int)x->origin;
}

int gx_future_free(gx_future f)
{
	gx_fut *x = gx_fut_of(f);
	if (!x)
		return -EINVAL;
	uint32_t st = GX_FUT_PENDING;
	if (atomic_compare_exchange_strong(&x->state, &st, GX_FUT_ABANDONED))
		return 0; /* handles now fail (ABANDONED); the completer releases it */
	while (GX_FUT_KIND(st) == GX_FUT_COMPLETING) {
		/* a completion is writing the result: a few stores away (or
		 * its worker died and the supervisor sets it back) */
		gx_sleep(10 * GX_MICROSECOND);
		st = atomic_load_explicit(&x->state, memory_order_acquire);
		if (st == GX_FUT_PENDING && atomic_compare_exchange_strong(&x->state, &st, GX_FUT_ABANDONED))
			return 0;
	}
	/* DONE -> ABANDONED by CAS: of two concurrent frees one wins */
	if (st != GX_FUT_DONE || !atomic_compare_exchange_strong(&x->state, &st, GX_FUT_ABANDONED))
		return -EINVAL;
	gx_fut_drop_result(x);
	gx_fut_release((uint32_t)f.h);
	return 0;
}

int gx_future_get(gx_future f, void *buf, size_t cap, size_t *len, gx_until u)
{
	int rc = gx_future_wait(f, buf, cap, len, u);
	if (rc == -ETIMEDOUT || rc == -ECANCELED || rc == -EINVAL)
		return rc;
	gx_future_free(f);
	return rc;
}

/* ---- running a task ---- */

typedef struct {
	gx_task_rec rec;
	int stolen;
	int slot; /* entry in the worker's running table, -1 for none */
} gx_task;

static gx_runtab *gx_runtab_of(int i)
{
	return gx_arena_ptr(Q.a, Q.p->w[i].runtab, sizeof(gx_runtab));
}

/* Worker: record r in the running table; the entry, or -1 when full. */
static int gx_rt_put(const gx_task_rec *r)
{
	if (!Q.rt || !Q.rt_nfree)
		return -1;
	int e = Q.rt_free[--Q.rt_nfree];
	Q.rt->rec[e] = *r;
	atomic_store_explicit(&Q.rt->start[e], Q.cfg.worker_timeout_ms ? gx_now() : 0, memory_order_relaxed);
	atomic_fetch_or(&Q.rt->used[e / 64], 1ull << (e % 64));
	return e;
}

static void gx_rt_clear(int e)
{
	if (e < 0 || !Q.rt)
		return;
	atomic_fetch_and(&Q.rt->used[e / 64], ~(1ull << (e % 64)));
	Q.rt_free[Q.rt_nfree++] = (uint8_t)e;
}

static void gx_cost_learn(uint64_t fn, int64_t ns)
{
	gx_cost *c = NULL;
	for (uint32_t i = 0, k = (uint32_t)(fn >> 4) % GX_COSTS; i < 8; i++, k = (k + 1) % GX_COSTS) {
		uint64_t cur = atomic_load(&Q.p->cost[k].fn);
		if (cur == fn) {
			c = &Q.p->cost[k];
			break;
		}
		if (!cur) {
			uint64_t z = 0;
			if (atomic_compare_exchange_strong(&Q.p->cost[k].fn, &z, fn) || z == fn) {
				c = &Q.p->cost[k];
				break;
			}
		}
	}
	if (!c)
		return;
	int64_t old = atomic_load(&c->avg_ns);
	atomic_store(&c->avg_ns, old ? old + (ns - old) / 8 : ns);
}

static int64_t gx_cost_of(uint64_t fn)
{
	for (uint32_t i = 0, k = (uint32_t)(fn >> 4) % GX_COSTS; i < 8; i++, k = (k + 1) % GX_COSTS) {
		uint64_t cur = atomic_load(&Q.p->cost[k].fn);
		if (cur == fn)
			return atomic_load(&Q.p->cost[k].avg_ns);
		if (!cur)
			break;
	}
	return 0;
}

/* ---- figures ---- */

/* The display name of a task: its gx_par_opts.name, else the symbol of fn,
 * else module+offset. */
static void gx_fn_name(uint64_t fn, uint64_t name, char *buf, size_t cap)
{
	if (name) {
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
static gx_stat_fn *gx_task_stat(uint64_t fn, uint64_t name)
{
	static gx_stat_shard *cs;
	static gx_stat_fn *cf;
	if (!Q.shard)
		return NULL;
	if (cs == Q.shard && cf && cf->fn == fn && cf->nameptr == name && cf->kind == GX_STAT_TASK)
		return cf;
	char nm[GX_STAT_NAME];
	gx_fn_name(fn, name, nm, sizeof nm);
	cs = Q.shard;
	cf = gx_stat_entry(Q.shard, GX_STAT_TASK, fn, name, nm);
	return cf;
}

/* ---- breakers: answering for a task that failed or was refused ---- */

static void gx_task_start(const gx_task_rec *r, int stolen, int cancel);

/*
 * A task of breaker b ends with rc and no answer of its own worth giving
 * (failed for good, or refused by an open breaker): its fallback runs in
 * a local coroutine, or the last good result answers, or the future gets
 * rc (-EBUSY for a refusal, with origin REJECTED). may_run: r's argument
 * can be read now (a fallback gets its own copy; r's chunk stays the
 * caller's).
 */
static void gx_task_answer(const gx_task_rec *r, gx_brk *b, int rc, int refused, int may_run)
{
	if (!gx_fut_pending(r->fut))
		return; /* answered already (a timeout): nothing to add */
	if (b->fallback && may_run) {
		gx_task_rec f = *r;
		f.flags = (r->flags & ~GX_TASK_PROBE) | GX_TASK_FALLBACK;
		f.cost = 0;
		int ok = 1;
		if (r->len > GX_TASK_INLINE) {
			const void *src = gx_arena_ptr(Q.a, r->chunk, r->len);
			int64_t c = src ? gx_pool_alloc(Q.a, r->len, -1) : -EBADMSG;
			if (c >= 0) {
				memcpy(gx_arena_ptr(Q.a, (gx_off)c, r->len), src, r->len);
				gx_pool_give(Q.a, (gx_off)c, 1, r->len);
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
static void gx_task_fail(const gx_task_rec *r, int rc, int may_run)
{
	gx_stat_fn *sf = gx_task_stat(r->fn, r->name);
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
	int64_t d = b->backoff;
	for (uint32_t i = 1; i < k && d < b->backoff_max; i++)
		d *= 2;
	if (d > b->backoff_max)
		d = b->backoff_max;
	if (d >= 4)
		d += (int64_t)(gx_rand64() % (uint64_t)(d / 2)) - d / 4;
	return d;
}

static void gx_task_run(void *arg)
{
	gx_task *t = arg;
	gx_task_rec *r = &t->rec;
	gx_wk *w = Q.me >= 0 ? &Q.p->w[Q.me] : NULL;
	gx_brk *b = GX_TASK_BRK(r->flags) ? gx_brk_at(GX_TASK_BRK(r->flags)) : NULL;
	int fallback = (r->flags & GX_TASK_FALLBACK) != 0 && b && b->fallback;
	gx_stat_fn *sf = gx_task_stat(r->fn, r->name);
	/* clocks cost ~20 ns each here: read them only for what needs them
	 * (autoscaling's wait average, predictive's run times, a sample
	 * for the figures) */
	int timed = r->t_submit != 0;
	int sample = sf && gx_stat_sample(Q.shard, sf);
	int64_t t0 = timed || sample ? gx_now() : 0;
	if (w && timed) {
		int64_t waited = t0 - r->t_submit;
		int64_t old = atomic_load_explicit(&w->wait_ewma_ns, memory_order_relaxed);
		atomic_store_explicit(&w->wait_ewma_ns, old + (waited - old) / 8, memory_order_relaxed);
	}
	const void *argp = r->arg;
	if (r->len > GX_TASK_INLINE)
		argp = gx_arena_ptr(Q.a, r->chunk, r->len);
	gx_task_result res = {0};
	gx_task_fn fn = (gx_task_fn)(uintptr_t)(fallback ? b->fallback : r->fn);
	int rc;
	uint32_t retries = 0;
	for (;;) {
		rc = argp ? fn(argp, r->len, &res) : -EBADMSG;
		if (!b || fallback || !gx_fut_pending(r->fut))
			break; /* no breaker, or answered already (timed out) */
		gx_brk_report(b, (r->flags & GX_TASK_PROBE) != 0, rc, gx_now());
		if (!gx_brk_failed(rc) || retries >= b->retries || !gx_brk_closed(b) || Q.stopping ||
		    atomic_load(&Q.p->stop))
			break;
		retries++;
		gx_sleep(gx_backoff(b, retries));
		res.len = 0;
	}
	int64_t ns = timed || sample ? gx_now() - t0 : 0;
	/* the figures before the future: whoever saw it done sees them */
	if (sf && fallback) {
		gx_stat_add(&sf->fallbacks, 1); /* the function itself did not run */
	} else if (sf) {
		gx_stat_add(&sf->count, 1 + retries);
		if (rc < 0)
			gx_stat_add(&sf->errors, 1);
		retries += (r->flags >> GX_TASK_ATTEMPT_SHIFT) & 0xffu;
		if (retries)
			gx_stat_add(&sf->retries, retries);
		if (sample)
			gx_stat_time(sf, ns);
	}
	if (timed && Q.cfg.balance == GX_BALANCE_PREDICTIVE && !(r->flags & GX_TASK_HINTED) && !fallback)
		gx_cost_learn(r->fn, ns);
	if (w) {
		atomic_fetch_sub_explicit(&w->running, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&w->tasks, 1, memory_order_relaxed);
		if (r->cost)
			atomic_fetch_sub_explicit(&w->backlog_ns, r->cost, memory_order_relaxed);
	}
	if (b && !fallback && gx_brk_failed(rc) && (b->fallback || b->last_good)) {
		gx_task_answer(r, b, rc, 0, argp != NULL); /* failed for good */
	} else {
		if (b && !fallback && rc >= 0)
			gx_brk_keep(b, rc, res.data, res.len);
		gx_fut_complete_o(r->fut, rc, res.data, res.len, fallback ? GX_ORIGIN_FALLBACK : GX_ORIGIN_TASK);
	}
	gx_rt_clear(t->slot); /* done: nothing to run again */
	/* the argument chunk only now: a re-run after a death in between
	 * must not find it freed (and maybe reused) */
	if (r->len > GX_TASK_INLINE && argp)
		gx_chunk_drop(r->chunk);
	free(res.own);
	free(t);
	gx_wg_done(&Q.tasks_wg);
}

/* A task that will not run: its future gets rc (its breaker hears of it,
 * a trial gives its place back), its argument chunk is freed. */
static void gx_task_drop(const gx_task_rec *r, int rc)
{
	gx_task_fail(r, rc, 0);
	if (r->len > GX_TASK_INLINE)
		gx_chunk_drop(r->chunk);
}

static void gx_task_start(const gx_task_rec *r, int stolen, int cancel)
{
	gx_wk *w = Q.me >= 0 ? &Q.p->w[Q.me] : NULL;
	if (cancel) {
		gx_task_drop(r, -ECANCELED);
		return;
	}
	gx_task *t = malloc(sizeof *t);
	if (!t) {
		gx_task_drop(r, -ENOMEM);
		return;
	}
	t->rec = *r;
	t->stolen = stolen;
	t->slot = gx_rt_put(r);
	if (w) {
		atomic_fetch_add_explicit(&w->running, 1, memory_order_relaxed);
		if (stolen)
			atomic_fetch_add_explicit(&w->steals, 1, memory_order_relaxed);
	}
	gx_wg_add(&Q.tasks_wg, 1);
	if (gx_go(gx_task_run, t) < 0) {
		gx_wg_done(&Q.tasks_wg);
		gx_rt_clear(t->slot);
		if (w)
			atomic_fetch_sub(&w->running, 1);
		free(t);
		gx_task_drop(r, -ENOMEM);
	}
}

/* ---- choosing a worker ---- */

static int gx_active(int i)
{
	return atomic_load_explicit(&Q.p->w[i].state, memory_order_relaxed) == GX_W_READY;
}

static int gx_par_pick(int64_t cost)
{
	int n = (int)Q.p->nslots, best = -1;
	switch (Q.cfg.balance) {
	case GX_BALANCE_ROUND_ROBIN:
		for (int k = 0; k < n; k++) {
			int i = (int)(Q.rr++ % (uint32_t)n);
			if (gx_active(i))
				return i;
		}
		return -1;
	case GX_BALANCE_WEIGHTED: {
		/* smooth weighted round-robin (nginx): add each weight, take
		 * the largest, subtract the total from it */
		int64_t total = 0;
		for (int i = 0; i < n; i++) {
			if (!gx_active(i))
				continue;
			int64_t wt = Q.p->w[i].weight > 0 ? Q.p->w[i].weight : 1;
			Q.swrr[i] += wt;
			total += wt;
			if (best < 0 || Q.swrr[i] > Q.swrr[best])
				best = i;
		}
		if (best >= 0)
			Q.swrr[best] -= total;
		return best;
	}
	case GX_BALANCE_PREDICTIVE: {
		int64_t bl = 0;
		for (int i = 0; i < n; i++) {
			if (!gx_active(i))
				continue;
			int64_t b = atomic_load_explicit(&Q.p->w[i].backlog_ns, memory_order_relaxed);
			if (best < 0 || b < bl) {
				best = i;
				bl = b;
			}
		}
		(void)cost;
		return best;
	}
	case GX_BALANCE_LEAST_BUSY:
	default: {
		uint64_t load = 0;
		uint32_t start = Q.rr++; /* ties go round */
		for (int k = 0; k < n; k++) {
			int i = (int)((start + (uint32_t)k) % (uint32_t)n);
			if (!gx_active(i))
				continue;
			gx_ring *in = gx_inbox(i);
			uint64_t l = (in ? gx_ring_depth(in) : 0) +
				     atomic_load_explicit(&Q.p->w[i].running, memory_order_relaxed);
			if (best < 0 || l < load) {
				best = i;
				load = l;
				if (!l)
					break;
			}
		}
		return best;
	}
	}
}

/* A worker is asleep and this inbox has a backlog: nudge a sleeper. */
static void gx_nudge_idle(int busy)
{
	if (!Q.cfg.work_stealing || !atomic_load_explicit(&Q.p->idle_workers, memory_order_relaxed))
		return;
	gx_ring *in = gx_inbox(busy);
	if (!in || gx_ring_depth(in) < 2)
		return;
	for (int i = 0; i < (int)Q.p->nslots; i++)
		if (i != busy && atomic_load(&Q.p->w[i].idle)) {
			gx_ring *o = gx_inbox(i);
			if (o)
				gx_ring_kick(o);
			return;
		}
}

/* ---- gx_go_parallel ---- */

static int gx_par_local_init(void)
{
	/* workers == 0: futures need the table; make a small arena */
	gx_arena_opts o;
	gx_arena_opts_init(&o);
	o.size = (size_t)32 << 20;
	int rc = gx_arena_create(&Q.a, &o);
	if (rc < 0)
		return rc;
	Q.own_arena = 1;
	return 0;
}

static int gx_par_tables(gx_arena *a, int nslots);

gx_arena *gx_par_arena(int create)
{
	if (!Q.p && create && gx_sched_active()) {
		if (gx_par_local_init() < 0)
			return NULL;
		if (gx_par_tables(Q.a, 0) < 0)
			return NULL;
	}
	return Q.p ? Q.a : NULL;
}

int gx_par_slots(void)
{
	return Q.p ? (int)Q.p->nslots : 0;
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
	if (Q.stopping || atomic_load(&Q.p->stop))
		return -ESHUTDOWN;
	int target = opts ? opts->worker : -1;
	if (target >= (int)Q.p->nslots || target < -1 || (target >= 0 && Q.p->nslots == 0))
		return -EINVAL;
	uint32_t idx;
	int rc = gx_fut_alloc(&idx);
	if (rc < 0)
		return rc;
	gx_fut *x = &Q.futs[idx];
	uint32_t gen = atomic_load(&x->gen);
	x->err = 0;
	x->len = 0;
	x->chunk = 0;
	atomic_store(&x->state, GX_FUT_PENDING);
	gx_task_rec r;
	r.fn = (uint64_t)(uintptr_t)fn;
	r.fut = gx_fh(idx, gen);
	r.len = (uint32_t)len;
	r.flags = 0;
	r.chunk = 0;
	/* 0: nobody needs the times (see gx_task_run) */
	r.t_submit = Q.cfg.autoscaling || Q.cfg.balance == GX_BALANCE_PREDICTIVE ? gx_now() : 0;
	r.cost = 0;
	r.name = opts && opts->name && gx_in_image(opts->name) ? (uint64_t)(uintptr_t)opts->name : 0;
	if (len <= GX_TASK_INLINE) {
		if (len)
			memcpy(r.arg, arg, len);
	} else {
		int64_t c = gx_pool_alloc(Q.a, len, -1);
		if (c < 0) {
			gx_fut_release(idx);
			return (int)c;
		}
		memcpy(gx_arena_ptr(Q.a, (gx_off)c, len), arg, len);
		gx_pool_give(Q.a, (gx_off)c, 1, (uint32_t)len);
		r.chunk = (gx_off)c;
	}
	out->h = r.fut;
	/* no breaker named, none made, none by default: no call at all */
	gx_brk *b = (opts && opts->breaker) || atomic_load_explicit(&Q.p->nbrk, memory_order_relaxed) ||
			    Q.cfg.circuit_breaker
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
	if (Q.p->nslots == 0 || Q.degraded) {
		gx_task_start(&r, 0, 0);
		return 0;
	}
	if (Q.cfg.balance == GX_BALANCE_PREDICTIVE) {
		int64_t c = opts && opts->weight > 0 ? opts->weight : gx_cost_of(r.fn);
		if (opts && opts->weight > 0)
			r.flags |= GX_TASK_HINTED; /* a given cost: nothing to learn */
		r.cost = c > 0 ? c : 10000;
	}
	for (;;) {
		int w = target >= 0 ? target : gx_par_pick(r.cost);
		for (int i = 0; w < 0 && i < (int)Q.p->nslots; i++)
			if (atomic_load(&Q.p->w[i].state) == GX_W_SPAWN)
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
			atomic_fetch_add_explicit(&Q.p->w[w].backlog_ns, r.cost, memory_order_relaxed);
		rc = in ? gx_ring_send(in, &r, sizeof r, GX_FOREVER) : -EINVAL;
		if (rc == 0) {
			gx_nudge_idle(w);
			return 0;
		}
		if (r.cost)
			atomic_fetch_sub_explicit(&Q.p->w[w].backlog_ns, r.cost, memory_order_relaxed);
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

/* ---- the worker ---- */

static bool gx_worker_ready(void *arg)
{
	(void)arg;
	gx_wk *w = &Q.p->w[Q.me];
	if (atomic_load(&w->state) != GX_W_READY || atomic_load(&Q.p->stop))
		return true;
	gx_ring *in = gx_inbox(Q.me);
	if (gx_ring_depth(in))
		return true;
	if (atomic_load_explicit(&Q.p->dump_seq, memory_order_relaxed) != atomic_load(&w->dump_seen))
		return true;
	if (Q.cfg.work_stealing)
		for (int i = 0; i < (int)Q.p->nslots; i++)
			if (i != Q.me) {
				gx_ring *o = gx_inbox(i);
				if (o && gx_ring_depth(o) >= 2)
					return true;
			}
	return false;
}

/* Take up to k records from ring `from` through this worker's staging
 * area in the arena and start them. Returns the count or the ring's error. */
static int gx_take(gx_ring *from, size_t k, int stolen, int cancel)
{
	gx_wk *w = &Q.p->w[Q.me];
	for (size_t i = 0; i < k; i++)
		w->staging[i].fut = 0;
	atomic_store_explicit(&w->staging_k, (uint32_t)k, memory_order_release);
	int n = gx_ring_try_recv_batch(from, w->staging, k);
	if (n > 0 && Q.hb_resting) {
		/* work after a rest: the heartbeat is fresh from now on */
		atomic_store_explicit(&w->heartbeat, gx_now(), memory_order_relaxed);
		gx_chan_try_send(Q.hb_bell, NULL);
	}
	for (int i = 0; i < n; i++)
		gx_task_start(&w->staging[i], stolen, cancel);
	atomic_store_explicit(&w->staging_k, 0, memory_order_release);
	return n;
}

/* Take half of the fullest other inbox. Returns tasks started. */
static int gx_steal(int cancel)
{
	int victim = -1;
	uint64_t most = 1;
	for (int i = 0; i < (int)Q.p->nslots; i++) {
		if (i == Q.me)
			continue;
		gx_ring *o = gx_inbox(i);
		uint64_t d = o ? gx_ring_depth(o) : 0;
		if (d > most) {
			most = d;
			victim = i;
		}
	}
	if (victim < 0)
		return 0;
	uint64_t want = most / 2;
	if (want > (uint64_t)Q.rt_nfree)
		want = (uint64_t)Q.rt_nfree;
	int got = 0;
	while (want) {
		int n = gx_take(gx_inbox(victim), want < 16 ? want : 16, 1, cancel);
		if (n <= 0)
			break;
		got += n;
		want -= (uint64_t)n < want ? (uint64_t)n : want;
	}
	return got;
}

/* How often a worker stamps its heartbeat: a quarter of the task timeout,
 * at most 100 ms. */
static int64_t gx_heartbeat_every(void)
{
	int64_t every = 100 * GX_MILLISECOND;
	int64_t q = (int64_t)Q.cfg.worker_timeout_ms * GX_MILLISECOND / 4;
	if (q > 0 && q < every)
		every = q > GX_MILLISECOND ? q : GX_MILLISECOND;
	return every;
}

/* With health monitoring or a task timeout: a coroutine that stamps the
 * worker's heartbeat while it has tasks. A task that hogs the CPU keeps it
 * from running: that is what "the worker does not come back" means to the
 * watchdog. With nothing to run it rests (hb_rest), so an idle worker
 * does not wake for it; taking work stamps it and wakes it. */
static void gx_heartbeat(void *arg)
{
	(void)arg;
	gx_wk *w = &Q.p->w[Q.me];
	gx_ring *in = gx_inbox(Q.me);
	int64_t every = gx_heartbeat_every();
	while (!atomic_load(&Q.p->stop)) {
		atomic_store_explicit(&w->heartbeat, gx_now(), memory_order_relaxed);
		if (Q.hb_bell && !atomic_load(&w->running) && !gx_ring_depth(in)) {
			Q.hb_resting = 1;
			atomic_store(&w->hb_rest, 1);
			gx_chan_recv(Q.hb_bell, NULL, NULL, GX_FOREVER);
			atomic_store(&w->hb_rest, 0);
			Q.hb_resting = 0;
			continue;
		}
		gx_sleep(every);
	}
}

/* gx_dump_all asked (the sequence moved): dump this worker's coroutines. */
static void gx_worker_dump_check(gx_wk *w)
{
	uint32_t seq = atomic_load(&Q.p->dump_seq);
	if (seq == atomic_load(&w->dump_seen))
		return;
	atomic_store(&w->dump_seen, seq);
	char hdr[64];
	int l = snprintf(hdr, sizeof hdr, "gonex: worker %d dump\n", Q.me);
	if (write(2, hdr, (size_t)l) < 0) {
		/* stderr is gone: nothing to dump to */
	}
	gx_coro_dump(2);
}

static int gx_worker_loop(void *arg)
{
	(void)arg;
	gx_wk *w = &Q.p->w[Q.me];
	gx_ring *in = gx_inbox(Q.me);
	/* everything set before READY: main goes on the moment it sees it */
	atomic_store(&w->arena_slot, gx_arena_attach(Q.a));
	atomic_store(&w->idle_ns, 0);
	atomic_store(&w->idle_since, 0);
	atomic_store(&w->unhealthy, 0);
	atomic_store(&w->dump_seen, atomic_load(&Q.p->dump_seq));
	atomic_store(&w->started, gx_now());
	Q.shard = Q.p->stats_on ? gx_arena_ptr(Q.a, Q.p->shards + (gx_off)(Q.me + 1) * sizeof(gx_stat_shard),
					      sizeof(gx_stat_shard))
				: NULL;
	if (Q.cfg.worker_timeout_ms || Q.cfg.health_monitoring) {
		atomic_store(&w->heartbeat, gx_now());
		atomic_store(&w->hb_rest, 0);
		Q.hb_resting = 0;
		if (gx_chan_make(&Q.hb_bell, 0, 1, 0) < 0)
			Q.hb_bell = NULL; /* then it never rests */
		gx_go(gx_heartbeat, NULL);
	}
	/* idle: the process blocks with nothing to run (tasks waiting on I/O
	 * or timers count as idle, tasks computing as busy) */
	gx_idle_sink idle = {&w->idle_since, &w->idle_ns, &w->wakeups};
	gx_sched_set_idle_sink(&idle);
	Q.rt = gx_runtab_of(Q.me);
	Q.rt_nfree = 0;
	for (int e = GX_RUN_MAX - 1; e >= 0; e--)
		Q.rt_free[Q.rt_nfree++] = (uint8_t)e;
	atomic_store(&w->ready_pid, (int32_t)getpid());
	atomic_store(&w->state, GX_W_READY);
	gx_ec_notify(&Q.p->events, NULL);
	for (;;) {
		gx_worker_dump_check(w);
		int cancel = atomic_load(&Q.p->stop) && Q.cfg.shutdown == GX_SHUTDOWN_CANCEL;
		if (Q.rt_nfree == 0) {
			/* the running table is full: finish some first */
			gx_sleep(50 * GX_MICROSECOND);
			continue;
		}
		int n = gx_take(in, Q.rt_nfree < 16 ? (size_t)Q.rt_nfree : 16, 0, cancel);
		if (n > 0) {
			gx_yield();
			continue;
		}
		if (n == -EPIPE)
			break; /* closed and drained: shutting down */
		if (n == -EMSGSIZE || n == -EBADMSG) {
			/* not a task record: drop it rather than spin on it */
			char junk[GX_RING_INLINE_MAX];
			gx_off ck = 0;
			if (gx_ring_try_recv(in, junk, sizeof junk, &ck) >= 0 && ck)
				gx_pool_free(Q.a, ck);
			continue;
		}
		if (atomic_load(&w->state) == GX_W_DRAIN && gx_ring_depth(in) == 0)
			break; /* retired by autoscaling */
		if (Q.cfg.work_stealing && gx_steal(cancel) > 0) {
			gx_yield();
			continue;
		}
		atomic_store(&w->idle, 1);
		atomic_fetch_add(&Q.p->idle_workers, 1);
		gx_ec_wait(gx_ring_consumer_ec(in), gx_worker_ready, NULL, gx_ah(Q.a)->spin_ns, GX_FOREVER, NULL);
		atomic_fetch_sub(&Q.p->idle_workers, 1);
		atomic_store(&w->idle, 0);
	}
	gx_wg_wait(&Q.tasks_wg, GX_FOREVER);
	return 0;
}

static _Noreturn void gx_worker_main(int i)
{
	Q.me = i;
	gx_wk *w = &Q.p->w[i];
	if (Q.cfg.cpu_affinity && w->cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(w->cpu, &set);
		sched_setaffinity(0, sizeof set, &set);
	}
	gx_config c = Q.cfg;
	c.workers = 0; /* a worker starts no workers of its own */
	Q.enabled = 0;
	int rc = gx_run(&c, gx_worker_loop, NULL);
	gx_arena_detach(Q.a);
	_exit(rc == 0 ? 0 : 1);
}

/* ---- the spawner ---- */

/*
 * The spawner reaped pid, its latest child for slot i. A worker that
 * became ready is main's to see dying (its pidfd, gx_watch), so that only
 * one side reports each death; the spawner reports one that died starting
 * up (it never became ready: SPAWN -> DEAD), every death when main has no
 * pidfds, and any while stopping. Only states that still belong to pid
 * move: main may have handled it and asked for a replacement already.
 */
static void gx_spawner_reaped(int i, pid_t pid, int st)
{
	gx_wk *w = &Q.p->w[i];
	atomic_store(&w->exit_status, st);
	if (atomic_load(&Q.p->stop)) {
		atomic_store(&w->state, GX_W_DEAD);
		return;
	}
	int was_ready = atomic_load(&w->ready_pid) == pid;
	uint32_t cur = atomic_load(&w->state);
	if (atomic_load(&Q.p->pidfd_watch)) {
		if (!was_ready && cur == GX_W_SPAWN)
			atomic_compare_exchange_strong(&w->state, &cur, GX_W_DEAD);
		return;
	}
	if ((cur == GX_W_SPAWN && !was_ready) ||
	    ((cur == GX_W_READY || cur == GX_W_DRAIN) && atomic_load(&w->pid) == pid))
		atomic_compare_exchange_strong(&w->state, &cur, GX_W_DEAD);
}

static _Noreturn void gx_spawner(int rfd, int parent)
{
	pid_t forked[GX_MAX_WORKERS] = {0};
	prctl(PR_SET_NAME, "gonex-spawner");
	if (Q.cfg.dump_signal)
		signal(SIGQUIT, SIG_IGN); /* Ctrl-\ reaches the whole group: the
					   * spawner has nothing to dump and must live */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(0);
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	int quit = 0;
	for (;;) {
		/* reap */
		int st;
		pid_t pid;
		while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
			for (int i = 0; i < (int)Q.p->nslots; i++)
				if (forked[i] == pid)
					gx_spawner_reaped(i, pid, st);
			gx_ec_notify(&Q.p->events, NULL);
		}
		if (quit) {
			/* orderly: main saw every worker exit already; on a
			 * signal or main's death: kill what is left */
			for (int i = 0; i < (int)Q.p->nslots; i++) {
				int32_t p = atomic_load(&Q.p->w[i].pid);
				if (p > 0 && atomic_load(&Q.p->w[i].state) != GX_W_DEAD)
					kill(p, SIGKILL);
			}
			while ((pid = waitpid(-1, &st, 0)) > 0 || errno == EINTR)
				for (int i = 0; pid > 0 && i < (int)Q.p->nslots; i++)
					if (atomic_load(&Q.p->w[i].pid) == pid) {
						atomic_store(&Q.p->w[i].exit_status, st);
						atomic_store(&Q.p->w[i].state, GX_W_DEAD);
					}
			gx_ec_notify(&Q.p->events, NULL);
			_exit(0);
		}
		struct pollfd pf[2] = {{.fd = rfd, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
		if (poll(pf, 2, -1) < 0 && errno != EINTR)
			_exit(1);
		if (pf[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof si) == sizeof si)
				if (si.ssi_signo != SIGCHLD)
					quit = 2;
		}
		if (pf[0].revents & (POLLIN | POLLHUP)) {
			uint8_t req[64];
			ssize_t n = read(rfd, req, sizeof req);
			if (n <= 0) {
				quit = quit ? quit : 2; /* main is gone */
				continue;
			}
			for (ssize_t k = 0; k < n; k++) {
				if (req[k] == 0xff) {
					quit = quit ? quit : 1;
					continue;
				}
				int i = req[k];
				if (i >= (int)Q.p->nslots || quit)
					continue;
				pid_t c = fork();
				if (c == 0) {
					/* our own pid first: READY can come before
					 * the spawner's store after fork returns */
					atomic_store(&Q.p->w[i].pid, getpid());
					close(rfd);
					close(sfd);
					sigprocmask(SIG_UNBLOCK, &mask, NULL);
					prctl(PR_SET_PDEATHSIG, SIGKILL);
					if (getppid() != Q.p->spawner_pid)
						_exit(1);
					gx_worker_main(i);
				}
				if (c > 0) {
					forked[i] = c;
					atomic_store(&Q.p->w[i].pid, c);
				} else {
					atomic_store(&Q.p->w[i].state, GX_W_DEAD);
					gx_ec_notify(&Q.p->events, NULL);
				}
			}
		}
	}
}

/* ---- SIGINT / SIGTERM in the main process ---- */

static void gx_par_on_signal(int sig)
{
	/* async-signal-safe only: stop the spawner (it kills and reaps the
	 * workers), reap it, leave */
	pid_t s = Q.p && Q.p->main_pid == getpid() ? Q.p->spawner_pid : 0;
	if (s > 0) {
		kill(s, SIGTERM);
		while (waitpid(s, NULL, 0) < 0 && errno == EINTR)
			;
	}
	_exit(128 + sig);
}

static void gx_par_signals(void)
{
	int sigs[] = {SIGINT, SIGTERM};
	for (int k = 0; k < 2; k++) {
		struct sigaction old;
		if (sigaction(sigs[k], NULL, &old) != 0 || old.sa_handler != SIG_DFL)
			continue; /* the program handles it (or ignores it) */
		struct sigaction sa = {.sa_handler = gx_par_on_signal};
		sigemptyset(&sa.sa_mask);
		sigaction(sigs[k], &sa, NULL);
	}
}

static void gx_par_signals_reset(void)
{
	int sigs[] = {SIGINT, SIGTERM};
	for (int k = 0; k < 2; k++) {
		struct sigaction old;
		if (sigaction(sigs[k], NULL, &old) == 0 && old.sa_handler == gx_par_on_signal)
			signal(sigs[k], SIG_DFL);
	}
}

/* ---- setting up ---- */

static int gx_par_tables(gx_arena *a, int nslots)
{
	/* the future table: an eighth of the arena, 1024..GX_FUT_N slots */
	uint64_t nf = a->h.size / 8 / (sizeof(gx_fut) + sizeof(uint32_t));
	Q.nfut = nf < 1024 ? 1024 : nf > GX_FUT_N ? GX_FUT_N : (uint32_t)nf;
	int64_t off = gx_arena_carve(a, sizeof(gx_par));
	int64_t foff = gx_arena_carve(a, (size_t)Q.nfut * sizeof(gx_fut) + (size_t)Q.nfut * sizeof(uint32_t));
	if (off < 0 || foff < 0)
		return -ENOMEM;
	gx_par *p = gx_arena_ptr(a, (gx_off)off, sizeof *p);
	memset(p, 0, sizeof *p);
	p->nslots = (uint32_t)nslots;
	p->main_pid = (int32_t)getpid();
	p->futs = (gx_off)foff;
	p->fut_next = (gx_off)foff + (gx_off)Q.nfut * sizeof(gx_fut);
	Q.futs = gx_arena_ptr(a, p->futs, (size_t)Q.nfut * sizeof(gx_fut));
	Q.fut_next = gx_arena_ptr(a, p->fut_next, (size_t)Q.nfut * sizeof(uint32_t));
	for (uint32_t i = 0; i < Q.nfut; i++) {
		atomic_store_explicit(&Q.fut_next[i], i + 1 < Q.nfut ? i + 2 : 0, memory_order_relaxed);
		/* generations start at 1: handle 0 (what a refused call
		 * leaves in *out) never names a future */
		atomic_store_explicit(&Q.futs[i].gen, 1, memory_order_relaxed);
	}
	atomic_store(&p->fut_head, GX_TAG_MAKE(1, 0));
	if (Q.cfg.stats) {
		/* fresh arena memory reads as zeros: nothing to clear */
		int64_t so = gx_arena_carve(a, (size_t)(nslots + 1) * sizeof(gx_stat_shard));
		if (so >= 0) {
			p->shards = (gx_off)so;
			p->nshards = (uint32_t)nslots + 1;
			p->stats_on = 1;
			Q.shard = gx_arena_ptr(a, p->shards, sizeof(gx_stat_shard));
		} else {
			gx_log("stats: no room in the arena for the figures; GONEX_STATS is off");
		}
	}
	p->magic = GX_PAR_MAGIC;
	Q.p = p;
	atomic_store(&gx_ah(a)->runtime_table, (uint64_t)off);
	return 0;
}

/* The i-th CPU of the affinity mask, -1 when there are fewer. */
static int gx_nth_cpu(int i)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) != 0)
		return -1;
	for (int c = 0, k = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set) && k++ == i)
			return c;
	return -1;
}

static int gx_ncpus(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) != 0)
		return 1;
	return CPU_COUNT(&set);
}

int gx_par_init(const gx_config *cfg)
{
	Q.cfg = *cfg;
	gx_image_ranges(); /* what the workers will have mapped */
	int n = cfg->workers < 0 ? gx_ncpus() : cfg->workers;
	if (n > GX_MAX_WORKERS)
		n = GX_MAX_WORKERS;
	Q.wmin = cfg->workers_min ? cfg->workers_min : n;
	Q.wmax = cfg->workers_max ? cfg->workers_max : n;
	if (Q.wmin > n)
		n = Q.wmin;
	if (Q.wmax < n)
		Q.wmax = n;
	if (n == 0)
		return 0;
	Q.nworkers = n;
	gx_arena_opts o;
	gx_arena_opts_init(&o);
	o.size = cfg->shm_size;
	o.tier = (gx_mem_tier)cfg->hugepages;
	o.numa = cfg->numa_aware;
	o.spin_ns = cfg->spin_ns;
	o.pool_size = cfg->pool_size;
	int rc = gx_arena_create(&Q.a, &o);
	if (rc < 0)
		return rc;
	rc = gx_par_tables(Q.a, Q.wmax);
	if (rc < 0)
		goto fail;
	int64_t rto = gx_arena_carve(Q.a, (size_t)Q.wmax * sizeof(gx_runtab));
	if (rto < 0) {
		rc = (int)rto;
		goto fail;
	}
	for (int i = 0; i < Q.wmax; i++) {
		Q.p->w[i].runtab = (gx_off)rto + (gx_off)i * sizeof(gx_runtab);
		memset(gx_runtab_of(i), 0, sizeof(gx_runtab));
		gx_ring *r;
		rc = gx_ring_create(Q.a, &r, 1024, sizeof(gx_task_rec), 0);
		if (rc < 0)
			goto fail;
		gx_wk *w = &Q.p->w[i];
		w->inbox = gx_ring_off(r);
		w->cpu = cfg->cpu_affinity ? gx_nth_cpu(i % gx_ncpus()) : -1;
		w->weight = gx_config_weight(cfg, i);
		atomic_store(&w->arena_slot, -1);
	}
	int pfd[2];
	/* a socket, not a pipe: main writes with MSG_NOSIGNAL, so a spawner
	 * that died gives -EPIPE rather than SIGPIPE */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pfd) != 0) {
		rc = -errno;
		goto fail;
	}
	int parent = getpid();
	fflush(NULL);
	pid_t s = fork();
	if (s < 0) {
		rc = -errno;
		close(pfd[0]);
		close(pfd[1]);
		goto fail;
	}
	if (s == 0) {
		close(pfd[1]);
		Q.p->spawner_pid = getpid();
		gx_spawner(pfd[0], parent);
	}
	Q.p->spawner_pid = s;
	close(pfd[0]);
	Q.pipe_w = pfd[1];
	Q.enabled = 1;
	gx_par_signals();
	return 0;
fail:
	gx_arena_destroy(Q.a);
	Q.a = NULL;
	Q.p = NULL;
	return rc;
}

static int gx_request(int i)
{
	uint8_t b = (uint8_t)i;
	atomic_store(&Q.p->w[i].state, GX_W_SPAWN);
	return send(Q.pipe_w, &b, 1, MSG_NOSIGNAL) == 1 ? 0 : -errno;
}

typedef struct {
	int want;
} gx_boot_arg;

static bool gx_boot_done(void *arg)
{
	gx_boot_arg *b = arg;
	for (int i = 0; i < b->want; i++) {
		uint32_t st = atomic_load(&Q.p->w[i].state);
		if (st == GX_W_SPAWN)
			return false;
	}
	return true;
}

static bool gx_all_dead(void *arg)
{
	(void)arg;
	for (int i = 0; i < (int)Q.p->nslots; i++) {
		uint32_t st = atomic_load(&Q.p->w[i].state);
		if (st != GX_W_OFF && st != GX_W_DEAD)
			return false;
	}
	return true;
}

/* ---- autoscaling ---- */

static void gx_autoscale(void *arg)
{
	(void)arg;
	int hot = 0, cold = 0;
	uint64_t last_tasks = 0;
	while (!Q.stopping) {
		if (gx_sleep(20 * GX_MILLISECOND) < 0 || Q.stopping)
			break;
		int active = 0;
		int64_t wait = 0;
		uint64_t depth = 0, tasks = 0;
		for (int i = 0; i < (int)Q.p->nslots; i++) {
			if (!gx_active(i))
				continue;
			active++;
			int64_t e = atomic_load(&Q.p->w[i].wait_ewma_ns);
			if (e > wait)
				wait = e;
			depth += gx_ring_depth(gx_inbox(i));
			tasks += atomic_load(&Q.p->w[i].tasks);
		}
		hot = (wait > GX_MILLISECOND && depth > 0) ? hot + 1 : 0;
		cold = (depth == 0 && tasks == last_tasks) ? cold + 1 : 0;
		last_tasks = tasks;
		if (hot >= 3 && active < Q.wmax) {
			for (int i = 0; i < (int)Q.p->nslots; i++) {
				uint32_t st = atomic_load(&Q.p->w[i].state);
				if (st == GX_W_OFF) { /* DEAD ones are the supervisor's */
					atomic_store(&Q.p->w[i].wait_ewma_ns, 0);
					gx_request(i);
					break;
				}
			}
			hot = 0;
		} else if (cold >= 50 && active > Q.wmin) {
			for (int i = (int)Q.p->nslots - 1; i >= 0; i--)
				if (gx_active(i)) {
					atomic_store(&Q.p->w[i].retired, 1);
					atomic_store(&Q.p->w[i].state, GX_W_DRAIN);
					gx_ring_kick(gx_inbox(i));
					break;
				}
			cold = 0;
		}
		for (int i = 0; i < (int)Q.p->nslots; i++)
			if (gx_active(i))
				atomic_store(&Q.p->w[i].wait_ewma_ns, atomic_load(&Q.p->w[i].wait_ewma_ns) / 2);
	}
}

int gx_workers(void)
{
	if (!Q.p)
		return 0;
	int n = 0;
	for (int i = 0; i < (int)Q.p->nslots; i++)
		n += gx_active(i);
	return n;
}

int gx_worker_stats_get(int worker, gx_worker_stats *out)
{
	if (!out || !Q.p || worker < 0 || worker >= (int)Q.p->nslots)
		return -EINVAL;
	gx_wk *w = &Q.p->w[worker];
	memset(out, 0, sizeof *out);
	out->pid = atomic_load(&w->pid);
	out->cpu = w->cpu;
	out->active = gx_active(worker);
	out->tasks = atomic_load(&w->tasks);
	out->steals = atomic_load(&w->steals);
	out->running = atomic_load(&w->running);
	out->restarts = atomic_load(&w->restarts);
	gx_ring *in = gx_inbox(worker);
	out->queued = in ? gx_ring_depth(in) : 0;
	return 0;
}


/* ---- the supervisor: deaths, re-runs, restarts ---- */

static int gx_restart_allowed(void)
{
	int64_t now = gx_now(), win = (int64_t)Q.cfg.restart_window_ms * GX_MILLISECOND;
	int n = 0;
	for (int k = 0; k < Q.nrestart; k++)
		if (now - Q.restart_at[k] < win)
			Q.restart_at[n++] = Q.restart_at[k];
	Q.nrestart = n;
	if ((uint32_t)n >= Q.cfg.restart_max || n >= (int)(sizeof Q.restart_at / sizeof Q.restart_at[0]))
		return 0;
	Q.restart_at[Q.nrestart++] = now;
	return 1;
}

/* No worker left: tasks run here from now on (Q.degraded, read by every
 * submission; the shared flag is for the figures). */
static void gx_degrade(void)
{
	Q.degraded = 1;
	atomic_store(&Q.p->degraded, 1);
}

/* Tasks to queue again, in the main process: the supervisor appends and
 * never blocks; a requeuer coroutine hands them to workers as their
 * inboxes have room (or runs them here once degraded). */
static struct {
	gx_task_rec *v;
	size_t n, cap, head;
	gx_chan *bell;
	int running;
} RQ;

static void gx_requeuer(void *arg);

/* Queue r again; ran: it had started, so it uses up an attempt. */
static void gx_requeue(gx_task_rec *r, int ran)
{
	uint32_t attempt = (r->flags >> GX_TASK_ATTEMPT_SHIFT) & 0xff;
	if (ran && attempt >= Q.cfg.retry_attempts) {
		gx_task_fail(r, -EOWNERDEAD, 1);
		if (r->len > GX_TASK_INLINE)
			gx_chunk_drop(r->chunk);
		return;
	}
	if (ran)
		r->flags = (r->flags & ~(0xffu << GX_TASK_ATTEMPT_SHIFT)) | (attempt + 1) << GX_TASK_ATTEMPT_SHIFT;
	if (RQ.n == RQ.cap) {
		size_t cap = RQ.cap ? RQ.cap * 2 : 256;
		gx_task_rec *v = realloc(RQ.v, cap * sizeof *v);
		if (!v) {
			gx_task_drop(r, -ENOMEM);
			return;
		}
		RQ.v = v;
		RQ.cap = cap;
	}
	RQ.v[RQ.n++] = *r;
	if (!RQ.bell)
		gx_chan_make(&RQ.bell, 0, 1, 0);
	if (!RQ.running) {
		RQ.running = 1;
		gx_go(gx_requeuer, NULL);
	}
	if (RQ.bell)
		gx_chan_try_send(RQ.bell, NULL);
}

/* A worker that will take tasks: READY, else one being (re)started. */
static int gx_requeue_target(void)
{
	int w = gx_par_pick(0);
	for (int i = 0; w < 0 && i < (int)Q.p->nslots; i++)
		if (atomic_load(&Q.p->w[i].state) == GX_W_SPAWN)
			w = i;
	return w;
}

static void gx_requeuer(void *arg)
{
	(void)arg;
	while (!Q.stopping) {
		if (RQ.head == RQ.n) {
			RQ.head = RQ.n = 0;
			gx_chan_recv(RQ.bell, NULL, NULL, gx_timeout(100 * GX_MILLISECOND));
			continue;
		}
		gx_task_rec *r = &RQ.v[RQ.head];
		int w = gx_requeue_target();
		if (w < 0) {
			if (Q.degraded || Q.cfg.graceful_degradation) {
				gx_degrade();
				gx_task_start(r, 0, 0); /* run it here */
			} else {
				gx_task_fail(r, -EOWNERDEAD, 1);
				if (r->len > GX_TASK_INLINE)
					gx_chunk_drop(r->chunk);
			}
			RQ.head++;
			continue;
		}
		gx_ring *in = gx_inbox(w);
		if (in && gx_ring_try_send(in, r, sizeof *r) == 0) {
			gx_nudge_idle(w);
			RQ.head++;
			continue;
		}
		gx_sleep(100 * GX_MICROSECOND); /* inboxes full: let them drain */
	}
	RQ.running = 0;
}

static void gx_salvage_cb(const void *msg, size_t len, void *arg)
{
	(void)arg;
	if (len != sizeof(gx_task_rec))
		return;
	gx_task_rec r;
	memcpy(&r, msg, sizeof r);
	if (r.fut && gx_par_is_code((const void *)(uintptr_t)r.fn))
		gx_requeue(&r, 0); /* never ran */
}

static void gx_handle_death(int i)
{
	gx_wk *w = &Q.p->w[i];
	int32_t pid = atomic_load(&w->pid);
	/* the spawner may reap this pid later: the slot no longer names it */
	atomic_store(&w->pid, 0);
	if (atomic_exchange(&w->retired, 0)) {
		atomic_store(&w->state, GX_W_OFF); /* autoscaling retired it */
		return;
	}
	int replacing = atomic_exchange(&w->replace, 0);
	int32_t as = atomic_load(&w->arena_slot);
	/* a worker replaced for its memory does not count against the limit */
	int restarting = !Q.stopping && (replacing || (Q.cfg.auto_restart && gx_restart_allowed()));
	/* a batch it was taking: from the ring if the copies out may be
	 * partial, else from its staging area (minus what reached its table) */
	int from_ring = 0;
	if (pid > 0 && as >= 0 && atomic_load(&Q.a->h.proc[as].pid) == pid)
		for (int k = 0; k < (int)Q.p->nslots; k++) {
			gx_ring *in = gx_inbox(k);
			int rel = 0;
			if (in && gx_ring_salvage(Q.a, in, as, gx_salvage_cb, NULL, &rel) >= 0) {
				from_ring = !rel; /* nothing released: the ring's copies count */
				break;
			}
		}
	uint32_t sk = atomic_load(&w->staging_k);
	if (!from_ring && sk) {
		gx_runtab *rt0 = gx_runtab_of(i);
		for (uint32_t k = 0; k < sk && k < 16; k++) {
			gx_task_rec r = w->staging[k];
			if (!r.fut || !gx_par_is_code((const void *)(uintptr_t)r.fn))
				continue;
			int dup = 0;
			for (int e = 0; rt0 && e < GX_RUN_MAX && !dup; e++)
				dup = (atomic_load(&rt0->used[e / 64]) >> (e % 64) & 1) && rt0->rec[e].fut == r.fut;
			if (!dup)
				gx_requeue(&r, 0);
		}
	}
	atomic_store(&w->staging_k, 0);
	if (pid > 0 && as >= 0) {
		gx_repair_report rep;
		gx_arena_repair_slot(Q.a, as, pid, &rep); /* its other ring and pool claims */
	}
	atomic_store(&w->arena_slot, -1);
	/* a result it was writing when it died: back to pending (its task
	 * is in the table below and runs again) */
	uint32_t mine = GX_FUT_COMPLETING | (uint32_t)(i + 1) << 8;
	for (uint32_t k = 0; k < Q.nfut; k++) {
		uint32_t st = mine;
		if (atomic_load_explicit(&Q.futs[k].state, memory_order_relaxed) == mine)
			atomic_compare_exchange_strong(&Q.futs[k].state, &st, GX_FUT_PENDING);
	}
	atomic_store(&w->running, 0);
	atomic_store(&w->backlog_ns, 0);
	atomic_store(&w->heartbeat, 0); /* the replacement stamps its own */
	/* what it was running (or had taken): again, elsewhere, before a
	 * replacement starts filling the same table */
	gx_runtab *rt = gx_runtab_of(i);
	for (int e = 0; rt && e < GX_RUN_MAX; e++) {
		if (!(atomic_load(&rt->used[e / 64]) >> (e % 64) & 1))
			continue;
		gx_task_rec r = rt->rec[e];
		atomic_fetch_and(&rt->used[e / 64], ~(1ull << (e % 64)));
		if (gx_par_is_code((const void *)(uintptr_t)r.fn))
			gx_requeue(&r, 1);
	}
	if (restarting) {
		atomic_fetch_add(&w->restarts, 1);
		gx_request(i); /* state SPAWN: the spawner forks a new one */
		return;         /* it takes over the inbox */
	}
	atomic_store(&w->state, GX_W_OFF);
	if (!Q.stopping)
		gx_log("parallel: worker %d (pid %d) died; restart limit reached, not restarting", i, (int)pid);
	/* its inbox: to the others (or here, degraded); those never ran */
	gx_ring *in = gx_inbox(i);
	gx_task_rec recs[16];
	int n;
	while (in && (n = gx_ring_try_recv_batch(in, recs, 16)) > 0)
		for (int k = 0; k < n; k++)
			gx_requeue(&recs[k], 0);
	if (!gx_workers()) {
		if (Q.cfg.graceful_degradation)
			gx_degrade();
		else
			gx_log("parallel: no worker left; gx_go_parallel fails with -ESHUTDOWN");
	}
}

/* Resident bytes of pid, or 0 when it cannot be read. */
static uint64_t gx_rss(int32_t pid)
{
	char buf[128];
	unsigned long long size, res;
	if (gx_proc_read(pid, "statm", buf, sizeof buf) < 0 || sscanf(buf, "%llu %llu", &size, &res) != 2)
		return 0;
	return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* The watchdog (main process). Memory limit: a worker over it is drained
 * and replaced. Task timeout: every quarter of it, fail the
 * futures of tasks running longer with -ETIMEDOUT; a worker whose
 * heartbeat is older than the timeout while it runs tasks is hung: take
 * its timed-out tasks off its table (they are not to run again) and kill
 * it; the supervisor replaces it and re-runs the rest. */
static void gx_watchdog(void *arg)
{
	(void)arg;
	int64_t limit = (int64_t)Q.cfg.worker_timeout_ms * GX_MILLISECOND;
	int64_t every = 100 * GX_MILLISECOND;
	if (limit && limit / 4 < every)
		every = limit / 4 > GX_MILLISECOND ? limit / 4 : GX_MILLISECOND;
	int resting = 0; /* every worker's heartbeat rested at the last look */
	while (!Q.stopping) {
		/* with health monitoring alone and every worker resting, look
		 * once a second: an idle runtime barely wakes */
		int64_t d = resting && !limit && !Q.cfg.worker_max_rss ? GX_SECOND : every;
		if (gx_sleep(d) < 0 || Q.stopping)
			break;
		int64_t now = gx_now();
		resting = 1;
		for (int i = 0; i < (int)Q.p->nslots; i++) {
			if (!gx_active(i))
				continue;
			if (Q.cfg.worker_max_rss && gx_rss(atomic_load(&Q.p->w[i].pid)) > Q.cfg.worker_max_rss) {
				/* drain: no new tasks, it finishes what it has and
				 * leaves; the supervisor then puts a new one there */
				gx_log("parallel: worker %d is over %zu bytes resident: replacing it", i,
				       Q.cfg.worker_max_rss);
				atomic_store(&Q.p->w[i].replace, 1);
				atomic_store(&Q.p->w[i].state, GX_W_DRAIN);
				gx_ring_kick(gx_inbox(i));
				continue;
			}
			if (Q.cfg.health_monitoring) {
				/* a heartbeat older than ten periods (1 s at least)
				 * while the worker has work, on two looks in a row
				 * (a resting worker stamps when it takes work): a task
				 * hogs the CPU, or the worker is stopped */
				gx_wk *hw = &Q.p->w[i];
				int64_t hb = atomic_load(&hw->heartbeat);
				int64_t stale = 10 * gx_heartbeat_every();
				stale = stale < GX_SECOND ? GX_SECOND : stale;
				int rest = atomic_load(&hw->hb_rest) != 0;
				int work = atomic_load(&hw->running) || gx_ring_depth(gx_inbox(i));
				resting = resting && rest && !work;
				int late = hb && now - hb > stale && (work || !rest);
				Q.stale_looks[i] = late ? (uint8_t)(Q.stale_looks[i] < 2 ? Q.stale_looks[i] + 1 : 2) : 0;
				uint32_t bad = Q.stale_looks[i] >= 2;
				if (atomic_exchange(&hw->unhealthy, bad) != bad)
					gx_log("parallel: worker %d (pid %d) %s", i, (int)atomic_load(&Q.p->w[i].pid),
					       bad ? "stopped answering its heartbeat" : "answers its heartbeat again");
			}
			if (!limit)
				continue;
			gx_runtab *rt = gx_runtab_of(i);
			int over = 0;
			for (int e = 0; rt && e < GX_RUN_MAX; e++) {
				int64_t st = atomic_load_explicit(&rt->start[e], memory_order_relaxed);
				if (!(atomic_load(&rt->used[e / 64]) >> (e % 64) & 1) || !st)
					continue;
				if (st < 0) { /* answered on an earlier look, still running */
					over++;
					continue;
				}
				if (now - st <= limit)
					continue;
				gx_task_rec rec = rt->rec[e];
				/* once per task: the start turns negative (the worker
				 * writes a fresh one when it reuses the entry) */
				if (atomic_compare_exchange_strong(&rt->start[e], &st, -st) && gx_fut_pending(rec.fut))
					gx_task_fail(&rec, -ETIMEDOUT, rec.len <= GX_TASK_INLINE);
				over++;
			}
			gx_wk *w = &Q.p->w[i];
			int64_t hb = atomic_load(&w->heartbeat);
			int32_t wpid = atomic_load(&w->pid);
			if (over && hb && now - hb > limit && wpid > 0 && gx_active(i)) {
				for (int e = 0; rt && e < GX_RUN_MAX; e++) {
					int64_t st = atomic_load_explicit(&rt->start[e], memory_order_relaxed);
					if (st < 0 || (st > 0 && now - st > limit))
						atomic_fetch_and(&rt->used[e / 64], ~(1ull << (e % 64)));
				}
				gx_log("parallel: worker %d hung in a task past %u ms: killing it", i,
				       Q.cfg.worker_timeout_ms);
				kill(wpid, SIGKILL);
			}
		}
	}
}

/* ---- death detection: a pidfd per running worker (main process) ---- */

static int gx_pidfd_open(int32_t pid)
{
	return (int)syscall(SYS_pidfd_open, (int)pid, 0);
}

/* The parent of pid; -ESRCH when it is gone (or a zombie), another
 * -errno when /proc could not tell (no fd left, say). */
static int32_t gx_ppid(int32_t pid)
{
	char st;
	int32_t pp;
	int rc = gx_proc_stat(pid, &st, &pp);
	if (rc < 0)
		return rc;
	return st == 'Z' || st == 'X' ? -ESRCH : pp;
}

/* Has the worker pid, seen running in a slot, exited? 1 yes, 0 no, -1
 * cannot tell now (out of fds: try again later). Opens *fd on the way. */
static int gx_worker_gone(int32_t pid, int *fd)
{
	*fd = gx_pidfd_open(pid);
	if (*fd < 0 && errno == ESRCH)
		return 1; /* reaped already */
	int32_t pp = gx_ppid(pid);
	if (pp == -ESRCH || (pp > 0 && pp != Q.p->spawner_pid))
		return 1; /* exited; or reaped and its pid reused elsewhere */
	if (*fd < 0 || pp < 0)
		return kill(pid, 0) != 0 && errno == ESRCH ? 1 : -1;
	return 0;
}

static bool gx_watch_ready(void *arg)
{
	int i = (int)(intptr_t)arg;
	uint32_t st = atomic_load(&Q.p->w[i].state);
	return Q.stopping || st == GX_W_READY || st == GX_W_DRAIN;
}

/*
 * One per worker slot: wait on the running worker's pidfd and, when it
 * exits, mark the slot dead and act on it at once (gx_handle_death never
 * parks, so no other coroutine sees the slot half-handled). A pid that
 * is gone before its pidfd is open (reaped, perhaps reused: its parent is
 * no longer the spawner) is as dead.
 */
static void gx_watch(void *arg)
{
	int i = (int)(intptr_t)arg;
	gx_wk *w = &Q.p->w[i];
	/* no timeouts: an idle runtime does not wake for this; the stop
	 * context ends the waits */
	gx_ctx *ctx = Q.stop_ctx;
	gx_ctx_retain(ctx);
	gx_until u = gx_ctx_until(ctx);
	while (!Q.stopping) {
		uint32_t st = atomic_load(&w->state);
		int32_t pid = atomic_load(&w->pid);
		if ((st != GX_W_READY && st != GX_W_DRAIN) || pid <= 0) {
			gx_ec_wait(&Q.p->events, gx_watch_ready, arg, 0, u, NULL);
			continue;
		}
		int fd = -1;
		int gone = gx_worker_gone(pid, &fd);
		/* the slot's pid changes only through gx_handle_death, which
		 * this watcher or the supervisor (a death before ready, the
		 * shutdown) runs: then the pidfd is readable anyway */
		while (!gone && !Q.stopping && atomic_load(&w->pid) == pid) {
			int rc = gx_poll(fd, POLLIN, u);
			if (rc == -ECANCELED)
				break;
			if (rc > 0)
				gone = 1;
			else if (rc < 0 && rc != -ETIMEDOUT && !(gone = kill(pid, 0) != 0 && errno == ESRCH))
				gx_sleep(10 * GX_MILLISECOND); /* the poll failed: do not spin on it */
		}
		if (fd >= 0)
			gx_close(fd); /* the loop forgets it (the epoll backend keeps per-fd state) */
		if (Q.stopping)
			break;
		if (gone <= 0) {
			/* replaced meanwhile, or nothing could be told (no fd
			 * left): look again shortly */
			gx_sleep(gone < 0 ? 10 * GX_MILLISECOND : 0);
			continue;
		}
		st = atomic_load(&w->state);
		if ((st == GX_W_READY || st == GX_W_DRAIN) && atomic_load(&w->pid) == pid &&
		    atomic_compare_exchange_strong(&w->state, &st, GX_W_DEAD))
			gx_handle_death(i); /* clears the slot's pid: the next one is new */
	}
	gx_ctx_put(ctx);
}

static bool gx_sup_ready(void *arg)
{
	(void)arg;
	if (Q.stopping)
		return true;
	for (int i = 0; i < (int)Q.p->nslots; i++)
		if (atomic_load(&Q.p->w[i].state) == GX_W_DEAD)
			return true;
	return false;
}

/* The supervisor acts on DEAD slots and leaves each SPAWN (restarting) or
 * OFF; only it moves a slot out of DEAD while the runtime runs. */
static void gx_supervise(void *arg)
{
	(void)arg;
	while (!Q.stopping) {
		gx_ec_wait(&Q.p->events, gx_sup_ready, NULL, 0, GX_FOREVER, NULL);
		if (Q.stopping)
			break;
		for (int i = 0; i < (int)Q.p->nslots; i++)
			if (atomic_load(&Q.p->w[i].state) == GX_W_DEAD)
				gx_handle_death(i);
	}
}

/* ---- gx_run's first coroutine ---- */

static void gx_par_stop(void)
{
	Q.stopping = 1;
	atomic_store(&Q.p->stop, 1);
	if (Q.stop_ctx) {
		gx_ctx_release(Q.stop_ctx); /* cancels: the watchers leave */
		Q.stop_ctx = NULL;
	}
	for (int i = 0; i < (int)Q.p->nslots; i++) {
		gx_ring *in = gx_inbox(i);
		if (in)
			gx_ring_close(in);
	}
	/* workers drain (or cancel), then exit; the spawner reaps them */
	int rc = gx_ec_wait(&Q.p->events, gx_all_dead, NULL, 0, gx_timeout(30 * GX_SECOND), NULL);
	if (rc < 0)
		gx_log("parallel: workers did not stop within 30 s; killing them");
	uint8_t q = 0xff;
	if (send(Q.pipe_w, &q, 1, MSG_NOSIGNAL) != 1)
		gx_log("parallel: spawner pipe: %s", strerror(errno));
}

int gx_par_main(int (*main_fn)(void *), void *arg)
{
	gx_boot_arg b = {.want = Q.nworkers};
	int self = gx_pidfd_open(getpid());
	if (self >= 0) {
		close(self);
		atomic_store(&Q.p->pidfd_watch, 1); /* else the spawner reports every death */
	}
	for (int i = 0; i < Q.nworkers; i++)
		gx_request(i);
	int rc = gx_ec_wait(&Q.p->events, gx_boot_done, &b, 0, gx_timeout(30 * GX_SECOND), NULL);
	if (rc < 0 || gx_workers() < Q.nworkers) {
		gx_log("parallel: %d of %d workers started", gx_workers(), Q.nworkers);
		if (!gx_workers()) {
			gx_par_stop();
			return -ECHILD;
		}
	}
	if (Q.cfg.autoscaling && Q.wmax > Q.wmin)
		gx_go(gx_autoscale, NULL);
	gx_go(gx_supervise, NULL);
	if (atomic_load(&Q.p->pidfd_watch) && gx_ctx_with_cancel(gx_ctx_background(), &Q.stop_ctx) == 0)
		for (int i = 0; i < (int)Q.p->nslots; i++)
			gx_go(gx_watch, (void *)(intptr_t)i);
	else
		atomic_store(&Q.p->pidfd_watch, 0); /* the spawner reports every death */
	if (Q.cfg.worker_timeout_ms || Q.cfg.worker_max_rss || Q.cfg.health_monitoring)
		gx_go(gx_watchdog, NULL);
	rc = main_fn(arg);
	gx_par_stop();
	return rc;
}

void gx_par_fini(void)
{
	if (Q.enabled) {
		gx_par_signals_reset(); /* before the spawner's pid can be reused */
		if (Q.pipe_w >= 0)
			close(Q.pipe_w); /* the spawner sees EOF if the quit byte was lost */
		int st;
		while (waitpid(Q.p->spawner_pid, &st, 0) < 0 && errno == EINTR)
			;
		Q.pipe_w = -1;
		Q.enabled = 0;
	}
	if (Q.a && Q.me < 0) {
		gx_arena_destroy(Q.a);
		Q.a = NULL;
		Q.p = NULL;
		Q.futs = NULL;
	}
	Q.shard = NULL;
	Q.stopping = 0;
	Q.nworkers = 0;
	Q.degraded = 0;
	Q.nrestart = 0;
	free(RQ.v);
	RQ.v = NULL;
	RQ.n = RQ.cap = RQ.head = 0;
	RQ.running = 0;
	if (RQ.bell)
		gx_chan_free(RQ.bell);
	RQ.bell = NULL;
}
