/*
 * Futures: the table of result slots in the arena, and gx_future_*.
 *
 * A slot's state word moves FREE -> PENDING (gx_go_parallel) -> COMPLETING
 * (one completer, by CAS) -> DONE, or to ABANDONED when the caller frees it
 * first; the word doubles as what waiters sleep on (its eventcount). Free
 * slots form a tagged Treiber stack of indexes in the arena; a handle
 * carries the slot's generation, bumped on every release, so a stale handle
 * is refused.
 */
#include "par/par.h"

#include <string.h>

#include "core/sched.h"

/* ---- futures ---- */

/* gx_fut_release bumps the generation; it skips 0 when it wraps */
static inline void gx_fut_bump(gx_fut *x)
{
	if (atomic_fetch_add(&x->gen, 1) == UINT32_MAX)
		atomic_fetch_add(&x->gen, 1);
}

static gx_fut *gx_fut_of(gx_future f)
{
	if (!gx_pl.p)
		return NULL;
	uint32_t idx = (uint32_t)f.h, gen = (uint32_t)(f.h >> 32);
	if (idx >= gx_pl.nfut || gen == 0)
		return NULL;
	gx_fut *x = &gx_pl.futs[idx];
	if (atomic_load(&x->gen) != gen || atomic_load(&x->state) == GX_FUT_FREE)
		return NULL;
	return x;
}

int gx_fut_alloc(uint32_t *idx)
{
	_Atomic uint64_t *head = &gx_pl.p->fut_head;
	uint64_t h = atomic_load(head);
	for (;;) {
		uint32_t i = GX_TAG_IDX(h);
		if (!i || i > gx_pl.nfut)
			return -EAGAIN; /* empty (or a corrupt head: refuse) */
		uint32_t next = atomic_load(&gx_pl.fut_next[i - 1]);
		if (atomic_compare_exchange_weak(head, &h, GX_TAG_MAKE(next, GX_TAG_CNT(h) + 1))) {
			*idx = i - 1;
			return 0;
		}
	}
}

void gx_fut_release(uint32_t idx)
{
	gx_fut *x = &gx_pl.futs[idx];
	gx_fut_bump(x);
	atomic_store(&x->state, GX_FUT_FREE);
	_Atomic uint64_t *head = &gx_pl.p->fut_head;
	uint64_t h = atomic_load(head);
	for (;;) {
		atomic_store(&gx_pl.fut_next[idx], GX_TAG_IDX(h));
		if (atomic_compare_exchange_weak(head, &h, GX_TAG_MAKE(idx + 1, GX_TAG_CNT(h) + 1)))
			return;
	}
}

/* Free a chunk that was handed over (an argument or a result): take it
 * from its RING state, then free it. Nothing when it is not one. */
void gx_chunk_drop(gx_off off)
{
	uint32_t l;
	if (off && gx_pool_take(gx_pl.a, off, &l) == 0)
		gx_pool_free(gx_pl.a, off);
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
void gx_fut_complete_o(uint64_t fh, int rc, const void *res, size_t len, uint32_t origin)
{
	uint32_t idx = (uint32_t)fh;
	gx_fut *x = idx < gx_pl.nfut ? &gx_pl.futs[idx] : NULL;
	if (!x || atomic_load(&x->gen) != (uint32_t)(fh >> 32))
		return;
	uint32_t st = GX_FUT_PENDING;
	uint32_t completing = GX_FUT_COMPLETING | (uint32_t)(gx_pl.me + 1) << 8;
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
			int64_t c = gx_pool_alloc(gx_pl.a, len, -1);
			if (c < 0) {
				x->err = (int)c;
			} else {
				memcpy(gx_arena_ptr(gx_pl.a, (gx_off)c, len), res, len);
				gx_pool_give(gx_pl.a, (gx_off)c, 1, (uint32_t)len);
				x->chunk = (gx_off)c;
				x->len = (uint32_t)len;
			}
		}
	}
	atomic_store_explicit(&x->state, GX_FUT_DONE, memory_order_release);
	gx_ec_notify(&x->ec, NULL);
}

void gx_fut_complete(uint64_t fh, int rc, const void *res, size_t len)
{
	gx_fut_complete_o(fh, rc, res, len, GX_ORIGIN_TASK);
}

/* Still waiting for its answer (a fallback for a finished one is moot). */
int gx_fut_pending(uint64_t fh)
{
	uint32_t idx = (uint32_t)fh;
	gx_fut *x = idx < gx_pl.nfut ? &gx_pl.futs[idx] : NULL;
	if (!x || atomic_load(&x->gen) != (uint32_t)(fh >> 32))
		return 0;
	uint32_t st = atomic_load(&x->state);
	return st == GX_FUT_PENDING || st == GX_FUT_ABANDONED;
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
							   : gx_arena_ptr(gx_pl.a, x->chunk, x->len);
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
		int rc = gx_ec_wait(&x->ec, gx_fut_ready, x, gx_pl.a ? gx_ah(gx_pl.a)->spin_ns / 10 : 0, u, NULL);
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

