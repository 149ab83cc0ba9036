/*
 * Futures: the table of result slots in the arena, and gx_future_*.
 *
 * States, each move a CAS on one 64-bit word that carries the slot's
 * generation beside the state, with one owner per move:
 *
 *   FREE --alloc (submitter)--> PENDING --completer--> COMPLETING|w --> DONE
 *   PENDING --gx_future_free--> ABANDONED --completer--> FREEING --> FREE
 *   DONE --gx_future_free--> FREEING --the freer--> FREE (generation + 1)
 *   COMPLETING|w --gx_future_free--> COMPLETING|w|GONE --completer--> FREEING
 *   COMPLETING|w(|GONE) --supervisor, worker w died--> PENDING (ABANDONED)
 *
 * Invariants: a slot is on the free list iff it is FREE, and at most once
 * (only the owner of FREEING pushes it); a completion, a free or a wait
 * for an older generation of the slot changes nothing (the generation is
 * in every CAS); the result bytes are written only under COMPLETING and
 * read only in DONE (release/acquire on the word); a result chunk is named
 * in the slot before it is handed over, so whoever undoes or abandons a
 * completion frees it; gx_future_free never waits on a completer (a word
 * a peer set to COMPLETING would make it wait for ever). Waiters sleep on the
 * slot's eventcount. Free slots form a tagged Treiber stack of indexes in
 * the arena; a handle carries the generation, so a stale one is refused.
 *
 * Rejected: the generation in a word of its own (a completion could pass
 * its check, lose the slot to a free and a new submission, and then
 * complete the new task's future); a free of a DONE future marking it
 * ABANDONED (a late completer read that as "mine to release": the index
 * went on the free list twice).
 */
#include "par/par.h"

#include <string.h>

#include "core/sched.h"
#include "core/testpoint.h"
#include "core/wait.h"

/* ---- the state word: generation << 32 | state ---- */

static inline uint64_t gx_sw(uint32_t gen, uint32_t st)
{
	return (uint64_t)gen << 32 | st;
}

static inline uint32_t gx_sw_gen(uint64_t w)
{
	return (uint32_t)(w >> 32);
}

static inline uint32_t gx_sw_st(uint64_t w)
{
	return (uint32_t)w;
}

/* The slot a handle names (whatever its state), NULL when the index is out
 * of the table. */
static gx_fut *gx_fut_slot(uint64_t fh)
{
	uint32_t idx = (uint32_t)fh;
	return gx_pl.p && idx < gx_pl.nfut ? &gx_pl.futs[idx] : NULL;
}

/* The slot of a live handle: right generation, not free, not abandoned. */
static gx_fut *gx_fut_of(gx_future f)
{
	gx_fut *x = gx_fut_slot(f.h);
	uint32_t gen = (uint32_t)(f.h >> 32);
	if (!x || gen == 0)
		return NULL;
	/* acquire: pairs with the completer's release of DONE */
	uint64_t w = atomic_load_explicit(&x->sw, memory_order_acquire);
	uint32_t st = gx_sw_st(w);
	if (gx_sw_gen(w) != gen || st == GX_FUT_FREE || st == GX_FUT_ABANDONED || st == GX_FUT_FREEING ||
	    (st & GX_FUT_GONE))
		return NULL;
	return x;
}

/* Pop a slot off the free list and make it PENDING: 0 with its index and
 * handle, -EAGAIN when the table is full (or its list corrupt). */
int gx_fut_alloc(uint32_t *idx, uint64_t *fh)
{
	_Atomic uint64_t *head = &gx_pl.p->fut_head;
	/* acquire: pairs with gx_fut_release's push (its link first) */
	uint64_t h = atomic_load_explicit(head, memory_order_acquire);
	for (;;) {
		uint32_t i = GX_TAG_IDX(h);
		if (!i || i > gx_pl.nfut)
			return -EAGAIN; /* empty (or a corrupt head: refuse) */
		uint32_t next = atomic_load_explicit(&gx_pl.fut_next[i - 1], memory_order_relaxed);
		/* acq_rel: pairs with gx_fut_release's push */
		if (!atomic_compare_exchange_weak_explicit(head, &h, GX_TAG_MAKE(next, GX_TAG_CNT(h) + 1),
							   memory_order_acq_rel, memory_order_acquire))
			continue;
		gx_fut *x = &gx_pl.futs[i - 1];
		/* acquire: pairs with gx_fut_release's release of FREE */
		uint64_t w = atomic_load_explicit(&x->sw, memory_order_acquire);
		if (gx_sw_st(w) != GX_FUT_FREE ||
		    !atomic_compare_exchange_strong(&x->sw, &w, gx_sw(gx_sw_gen(w), GX_FUT_PENDING))) {
			/* acquire: as the first load of head */
			h = atomic_load_explicit(head, memory_order_acquire);
			continue; /* listed but in use: a corrupt list; that slot stays its user's */
		}
		x->err = 0;
		x->len = 0;
		x->chunk = 0;
		*idx = i - 1;
		*fh = gx_fh(i - 1, gx_sw_gen(w));
		return 0;
	}
}

/* Back on the free list, with the next generation (0 is skipped: handle 0
 * names nothing). Only the owner of the release calls it: the one that
 * moved the slot to FREEING (or a submission that never handed it out). */
void gx_fut_release(uint32_t idx)
{
	gx_fut *x = &gx_pl.futs[idx];
	uint32_t gen = gx_sw_gen(atomic_load_explicit(&x->sw, memory_order_relaxed)) + 1;
	/* release: the slot's last use before FREE (pairs with gx_fut_alloc) */
	atomic_store_explicit(&x->sw, gx_sw(gen ? gen : 1, GX_FUT_FREE), memory_order_release);
	_Atomic uint64_t *head = &gx_pl.p->fut_head;
	uint64_t h = atomic_load_explicit(head, memory_order_relaxed);
	for (;;) {
		atomic_store_explicit(&gx_pl.fut_next[idx], GX_TAG_IDX(h), memory_order_relaxed);
		/* release: the link and the FREE state before the slot is seen */
		if (atomic_compare_exchange_weak_explicit(head, &h, GX_TAG_MAKE(idx + 1, GX_TAG_CNT(h) + 1),
							  memory_order_acq_rel, memory_order_relaxed))
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
	gx_chunk_drop(x->chunk); /* 0 for an inline result */
	x->chunk = 0;
}

/* Write the result (we hold COMPLETING). */
static void gx_fut_write(gx_fut *x, int rc, const void *res, size_t len, uint32_t origin)
{
	x->err = rc;
	x->len = 0;
	x->chunk = 0;
	x->origin = origin;
	if (!res || !len)
		return;
	if (len <= GX_TASK_INLINE) {
		memcpy(x->data, res, len);
		x->len = (uint32_t)len;
		return;
	}
	int64_t c = gx_pool_alloc(gx_pl.a, len, -1);
	void *dst = c >= 0 ? gx_arena_ptr(gx_pl.a, (gx_off)c, len) : NULL;
	if (!dst) {
		if (c >= 0)
			gx_pool_free(gx_pl.a, (gx_off)c);
		x->err = c < 0 ? (int)c : -EBADMSG;
		return;
	}
	memcpy(dst, res, len);
	/* named before it is handed over: a supervisor undoing this
	 * completion (we died) finds it, owned by us (repair frees it) or
	 * handed over (the undo frees it) */
	x->chunk = (gx_off)c;
	GX_TEST_POINT("fut.result.named", &c);
	gx_pool_give(gx_pl.a, (gx_off)c, 1, (uint32_t)len);
	x->len = (uint32_t)len;
}

/* The completion holding `completing` lost its slot to gx_future_free
 * (or to a scribble): drop the result; release the slot if it was freed. */
static void gx_fut_complete_lost(gx_fut *x, uint64_t fh, uint64_t completing)
{
	gx_fut_drop_result(x);
	uint64_t gone = completing | GX_FUT_GONE;
	if (atomic_compare_exchange_strong(&x->sw, &gone, gx_sw((uint32_t)(fh >> 32), GX_FUT_FREEING)))
		gx_fut_release((uint32_t)fh);
}

/*
 * Complete a future with rc and the result bytes res/len. Exactly one
 * completion wins (a task re-run after its worker died, or answered by
 * the watchdog, may complete twice): it moves PENDING -> COMPLETING, writes
 * the result, then DONE, each by CAS on the word that carries the
 * generation, so a completion for an older use of the slot changes
 * nothing. One that finds the future ABANDONED (freed while pending) takes
 * the release: ABANDONED -> FREEING by CAS, so of two late completers one
 * releases.
 */
void gx_fut_complete_o(uint64_t fh, int rc, const void *res, size_t len, uint32_t origin)
{
	gx_fut *x = gx_fut_slot(fh);
	uint32_t gen = (uint32_t)(fh >> 32);
	if (!x)
		return;
	GX_TEST_POINT("fut.complete", &fh);
	uint64_t w = gx_sw(gen, GX_FUT_PENDING);
	uint64_t completing = gx_sw(gen, GX_FUT_COMPLETING | (uint32_t)(gx_pl.me + 1) << 8);
	if (!atomic_compare_exchange_strong(&x->sw, &w, completing)) {
		uint64_t ab = gx_sw(gen, GX_FUT_ABANDONED);
		if (w == ab && atomic_compare_exchange_strong(&x->sw, &ab, gx_sw(gen, GX_FUT_FREEING)))
			gx_fut_release((uint32_t)fh); /* abandoned by gx_future_free: ours to release */
		return; /* DONE, COMPLETING, FREEING or another generation: the first stands */
	}
	gx_fut_write(x, rc, res, len, origin);
	GX_TEST_POINT("fut.written", &fh);
	/* release: the result before DONE (pairs with gx_fut_ready's acquire);
	 * a CAS: a free may have marked the slot GONE meanwhile */
	uint64_t c = completing;
	if (!atomic_compare_exchange_strong_explicit(&x->sw, &c, gx_sw(gen, GX_FUT_DONE), memory_order_release,
						     memory_order_relaxed)) {
		gx_fut_complete_lost(x, fh, completing);
		return;
	}
	gx_ec_notify(&x->ec, NULL);
}

void gx_fut_complete(uint64_t fh, int rc, const void *res, size_t len)
{
	gx_fut_complete_o(fh, rc, res, len, GX_ORIGIN_TASK);
}

/* Still waiting for its answer (a fallback for a finished one is moot). */
int gx_fut_pending(uint64_t fh)
{
	gx_fut *x = gx_fut_slot(fh);
	if (!x)
		return 0;
	/* acquire: pairs with the completer's release of DONE (the result) */
	uint64_t w = atomic_load_explicit(&x->sw, memory_order_acquire);
	uint32_t st = gx_sw_st(w);
	return gx_sw_gen(w) == (uint32_t)(fh >> 32) && (st == GX_FUT_PENDING || st == GX_FUT_ABANDONED);
}

/* The completer that holds worker i's COMPLETING died: back to PENDING
 * (its task runs again), or ABANDONED when it was freed meanwhile (the
 * re-run's completion releases it). A result chunk it had handed over is
 * freed here; one it still owned is its arena slot's, for the repair that
 * follows. Main's supervisor only, before that repair. */
void gx_fut_undo_completing(int i)
{
	uint32_t mine = GX_FUT_COMPLETING | (uint32_t)(i + 1) << 8;
	for (uint32_t k = 0; k < gx_pl.nfut; k++) {
		gx_fut *x = &gx_pl.futs[k];
		uint64_t w = atomic_load_explicit(&x->sw, memory_order_relaxed);
		uint32_t st = gx_sw_st(w);
		if ((st & ~GX_FUT_GONE) != mine)
			continue;
		gx_fut_drop_result(x);
		uint32_t back = st & GX_FUT_GONE ? GX_FUT_ABANDONED : GX_FUT_PENDING;
		atomic_compare_exchange_strong(&x->sw, &w, gx_sw(gx_sw_gen(w), back));
	}
}

typedef struct {
	gx_fut *x;
	uint32_t gen;
} gx_fut_want;

/* Done, or no longer the future we wait for (freed, reused). */
static bool gx_fut_ready(void *arg)
{
	gx_fut_want *f = arg;
	/* acquire: pairs with the completer's release of DONE */
	uint64_t w = atomic_load_explicit(&f->x->sw, memory_order_acquire);
	uint32_t st = gx_sw_st(w);
	return gx_sw_gen(w) != f->gen || (st != GX_FUT_PENDING && GX_FUT_KIND(st) != GX_FUT_COMPLETING);
}

static int gx_fut_read(gx_fut *x, void *buf, size_t cap, size_t *len)
{
	uint32_t l = x->len;
	if (l > GX_TASK_MAX)
		return -EBADMSG;
	if (len)
		*len = l;
	if (buf && cap && l) {
		size_t n = l < cap ? l : cap;
		const void *src = l <= GX_TASK_INLINE ? (const void *)x->data : gx_arena_ptr(gx_pl.a, x->chunk, l);
		if (!src)
			return -EBADMSG;
		memcpy(buf, src, n);
	}
	return x->err;
}

/* After a wait: the future is still ours and DONE. */
static bool gx_fut_done(gx_fut *x, uint32_t gen)
{
	return atomic_load_explicit(&x->sw, memory_order_acquire) == gx_sw(gen, GX_FUT_DONE);
}

/* Without waiting: the slot of f once DONE (*xp), 0; -EAGAIN while it is
 * not ready; -EINVAL for a stale handle or a future freed meanwhile. */
static int gx_fut_done_now(gx_future f, gx_fut **xp)
{
	gx_fut *x = gx_fut_of(f);
	if (!x)
		return -EINVAL;
	gx_fut_want fw = {x, (uint32_t)(f.h >> 32)};
	if (!gx_fut_ready(&fw))
		return -EAGAIN;
	if (!gx_fut_done(x, fw.gen))
		return -EINVAL;
	*xp = x;
	return 0;
}

int gx_future_try(gx_future f, void *buf, size_t cap, size_t *len)
{
	gx_fut *x;
	int rc = gx_fut_done_now(f, &x);
	return rc < 0 ? rc : gx_fut_read(x, buf, cap, len);
}

/* gx_future_wait; *xp the slot when what it returns is the task's code
 * (the future was DONE), NULL when it is the wait's own error */
static int gx_fut_wait_x(gx_future f, void *buf, size_t cap, size_t *len, gx_until u, gx_fut **xp)
{
	*xp = NULL;
	gx_fut *x = gx_fut_of(f);
	if (!x)
		return -EINVAL;
	gx_fut_want fw = {x, (uint32_t)(f.h >> 32)};
	/* main helps: queued tasks run here while ours is not done (each
	 * started one runs when we yield to it) */
	if (gx_pl.cfg.main_helps && gx_pl.me < 0 && gx_pl.nslots > 0)
		while (!gx_fut_ready(&fw) && !gx_until_err(u, gx_now()) && gx_main_help())
			gx_yield();
	if (!gx_fut_ready(&fw)) {
		/* a tenth of the spin budget: a quick task (a dispatch round
		 * trip is ~250 ns) still completes within it, while a waiter
		 * that shares its CPU with a worker does not steal 20 us of
		 * that worker's time for every long task */
		int rc = gx_ec_wait(&x->ec, gx_fut_ready, &fw, gx_geo(gx_pl.a)->spin_ns / 10, u, NULL);
		if (rc < 0)
			return rc;
	}
	if (!gx_fut_done(x, fw.gen))
		return -EINVAL; /* freed while we waited */
	*xp = x;
	return gx_fut_read(x, buf, cap, len);
}

int gx_future_wait(gx_future f, void *buf, size_t cap, size_t *len, gx_until u)
{
	gx_fut *x;
	return gx_fut_wait_x(f, buf, cap, len, u, &x);
}

int gx_future_origin(gx_future f)
{
	gx_fut *x;
	int rc = gx_fut_done_now(f, &x);
	return rc < 0 ? rc : (int)x->origin;
}

/*
 * Free a future. PENDING -> ABANDONED and COMPLETING -> COMPLETING|GONE:
 * the completer will release it. DONE -> FREEING: we release it. Each by
 * CAS on the generation's word, so of a free and a completion, or of two
 * frees, exactly one releases; a free never waits.
 */
int gx_future_free(gx_future f)
{
	gx_fut *x = gx_fut_of(f);
	if (!x)
		return -EINVAL;
	uint32_t gen = (uint32_t)(f.h >> 32);
	uint64_t w = atomic_load(&x->sw);
	for (;;) {
		uint32_t st = gx_sw_st(w);
		uint64_t to;
		if (gx_sw_gen(w) != gen)
			return -EINVAL;
		if (st == GX_FUT_PENDING)
			to = gx_sw(gen, GX_FUT_ABANDONED);
		else if (GX_FUT_KIND(st) == GX_FUT_COMPLETING && !(st & GX_FUT_GONE))
			to = w | GX_FUT_GONE;
		else if (st == GX_FUT_DONE)
			to = gx_sw(gen, GX_FUT_FREEING);
		else
			return -EINVAL; /* freed already (by another free) */
		if (!atomic_compare_exchange_strong(&x->sw, &w, to))
			continue;
		if (st != GX_FUT_DONE)
			return 0; /* handles now fail; the completer releases it */
		GX_TEST_POINT("fut.free.claimed", &f);
		gx_fut_drop_result(x);
		gx_fut_release((uint32_t)f.h);
		return 0;
	}
}

int gx_future_get(gx_future f, void *buf, size_t cap, size_t *len, gx_until u)
{
	gx_fut *x;
	int rc = gx_fut_wait_x(f, buf, cap, len, u, &x);
	if (!x)
		return rc; /* the wait's own error: the future stays */
	/* the wait saw it DONE, whatever code the task gave (its own
	 * -ETIMEDOUT included): the free's one move, without looking the
	 * slot up again (gx_future_free for anything else, a scribble
	 * meanwhile included) */
	uint32_t gen = (uint32_t)(f.h >> 32);
	uint64_t done = gx_sw(gen, GX_FUT_DONE);
	if (atomic_compare_exchange_strong(&x->sw, &done, gx_sw(gen, GX_FUT_FREEING))) {
		GX_TEST_POINT("fut.free.claimed", &f);
		gx_fut_drop_result(x);
		gx_fut_release((uint32_t)f.h);
	} else {
		gx_future_free(f);
	}
	return rc;
}

