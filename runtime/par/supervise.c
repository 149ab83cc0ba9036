/*
 * The supervisor (main process): acts on dead workers. It re-queues what a
 * dead worker had taken or was running (a requeuer coroutine hands those to
 * the others as their inboxes have room, never blocking the supervisor),
 * repairs the worker's claims in the arena, and restarts it within the
 * restart intensity limit; with no worker left it degrades to running
 * tasks locally when allowed.
 *
 * gx_handle_death(i, pid) runs once per dead process (the watchers and the
 * spawner's reports see to that, watch.c); it may park (a pool repair
 * waits for live journals), and nothing else acts on slot i meanwhile.
 *
 * Invariants, once gx_handle_death(i, pid) returned:
 *  - every task worker i had taken and not finished is queued again
 *    exactly once: from the ring (a batch half copied out), its staging
 *    area, or its running table (TAKEN: no attempt used; RUNNING: one);
 *  - its arena slot is repaired (ring claims, pool chunks), its
 *    half-written future answers are PENDING again, its blocked channel
 *    receivers are no longer counted, and every sleeper of the arena was
 *    woken (gx_arena_wake_all: a wake-up it owed is not lost);
 *  - its slot is SPAWN (a replacement is asked for) or OFF.
 *
 * Rejected: re-running what the watchdog already answered (TIMEDOUT);
 * requeuing from the supervisor itself (a full inbox would block it while
 * other deaths wait).
 */
#include "par/par.h"

#include <stdlib.h>
#include <string.h>

#include "core/sched.h"

/* ---- the supervisor: deaths, re-runs, restarts ---- */

static int gx_restart_allowed(void)
{
	int64_t now = gx_now(), win = (int64_t)gx_pl.cfg.restart_window_ms * GX_MILLISECOND;
	int n = 0;
	for (int k = 0; k < gx_pl.nrestart; k++)
		if (now - gx_pl.restart_at[k] < win)
			gx_pl.restart_at[n++] = gx_pl.restart_at[k];
	gx_pl.nrestart = n;
	if ((uint32_t)n >= gx_pl.cfg.restart_max || n >= (int)(sizeof gx_pl.restart_at / sizeof gx_pl.restart_at[0]))
		return 0;
	gx_pl.restart_at[gx_pl.nrestart++] = now;
	return 1;
}

/* No worker left: tasks run here from now on (gx_pl.degraded, read by every
 * submission; the shared flag is for the figures). */
static void gx_degrade(void)
{
	gx_pl.degraded = 1;
	atomic_store(&gx_pl.p->degraded, 1);
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
	if (ran && attempt >= gx_pl.cfg.retry_attempts) {
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
	for (int i = 0; w < 0 && i < gx_pl.nslots; i++)
		if (atomic_load(&gx_pl.p->w[i].state) == GX_W_SPAWN)
			w = i;
	return w;
}

static void gx_requeuer(void *arg)
{
	(void)arg;
	while (!gx_pl.stopping) {
		if (RQ.head == RQ.n) {
			RQ.head = RQ.n = 0;
			gx_chan_recv(RQ.bell, NULL, NULL, gx_timeout(100 * GX_MILLISECOND));
			continue;
		}
		gx_task_rec *r = &RQ.v[RQ.head];
		int w = gx_requeue_target();
		if (w < 0) {
			if (gx_pl.degraded || gx_pl.cfg.graceful_degradation) {
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
	if (r.fut)
		gx_requeue(&r, 0); /* never ran (a worker answers a forged code -EBADMSG) */
}

/* The batch worker i (dead, arena slot as) was taking: from the ring if
 * the copies out may be partial, else from its staging area, minus what
 * reached its running table (that runs again from there). */
static void gx_death_salvage(int i, int32_t pid, int32_t as)
{
	gx_wk *w = &gx_pl.p->w[i];
	int from_ring = 0;
	if (pid > 0 && as >= 0 && as < GX_SHM_MAX_PROCS && atomic_load(&gx_ah(gx_pl.a)->proc[as].pid) == pid)
		for (int k = 0; k < gx_pl.nslots; k++) {
			gx_ring *in = gx_inbox(k);
			int rel = 0;
			if (in && gx_ring_salvage(gx_pl.a, in, as, gx_salvage_cb, NULL, &rel) >= 0) {
				from_ring = !rel; /* nothing released: the ring's copies count */
				break;
			}
		}
	uint32_t sk = atomic_load(&w->staging_k);
	gx_runtab *rt = gx_runtab_of(i);
	for (uint32_t k = 0; !from_ring && k < sk && k < 16; k++) {
		gx_task_rec r = w->staging[k];
		if (!r.fut)
			continue;
		int dup = 0;
		for (int e = 0; rt && e < GX_RUN_MAX && !dup; e++) {
			uint32_t st = GX_RT_ST(atomic_load(&rt->tag[e]));
			dup = st != GX_RT_FREE && rt->rec[e].fut == r.fut;
		}
		if (!dup)
			gx_requeue(&r, 0);
	}
	atomic_store(&w->staging_k, 0);
}

/* What dead worker i had taken or was running: again, elsewhere, before a
 * replacement starts filling the same table. A task that had started uses
 * up an attempt; one that never started does not; one the watchdog
 * answered (TIMEDOUT) is done with. */
static void gx_death_rerun(int i)
{
	gx_runtab *rt = gx_runtab_of(i);
	for (int e = 0; rt && e < GX_RUN_MAX; e++) {
		/* acquire: pairs with the worker's release of TAKEN/RUNNING (its record first) */
		uint64_t tag = atomic_load_explicit(&rt->tag[e], memory_order_acquire);
		uint32_t st = GX_RT_ST(tag);
		gx_task_rec r = rt->rec[e];
		atomic_store(&rt->tag[e], GX_RT_TAG(GX_RT_GEN(tag) + 1, GX_RT_FREE));
		if ((st == GX_RT_TAKEN || st == GX_RT_RUNNING) && r.fut)
			gx_requeue(&r, st == GX_RT_RUNNING);
	}
}

/* Worker i will not come back: its inbox goes to the others (or here,
 * degraded); those tasks never ran. */
static void gx_death_final(int i, int32_t pid)
{
	atomic_store(&gx_pl.p->w[i].state, GX_W_OFF);
	if (!gx_pl.stopping)
		gx_log("parallel: worker %d (pid %d) died; restart limit reached, not restarting", i, (int)pid);
	gx_ring *in = gx_inbox(i);
	gx_task_rec recs[16];
	int n;
	while (in && (n = gx_ring_try_recv_batch(in, recs, 16)) > 0)
		for (int k = 0; k < n; k++)
			gx_requeue(&recs[k], 0);
	if (!gx_workers()) {
		if (gx_pl.cfg.graceful_degradation)
			gx_degrade();
		else
			gx_log("parallel: no worker left; gx_go_parallel fails with -ESHUTDOWN");
	}
}

void gx_handle_death(int i, int32_t pid)
{
	gx_wk *w = &gx_pl.p->w[i];
	/* the slot's pid, for the figures: the process named pid is gone */
	atomic_store(&w->pid, 0);
	/* autoscaling retired it, or it was over the memory limit: handled as
	 * any death (it may have died with work), restarted only when asked */
	int retired = atomic_exchange(&w->retired, 0) != 0;
	int replacing = atomic_exchange(&w->replace, 0) != 0;
	int32_t as = atomic_load(&w->arena_slot);
	/* a worker replaced for its memory does not count against the limit */
	int restarting = !gx_pl.stopping && !retired &&
			 (replacing || (gx_pl.cfg.auto_restart && gx_restart_allowed()));
	/* a result it was writing when it died: back to pending (its task
	 * is in the table below and runs again); before the repair, so that
	 * a result chunk it still owned is the repair's to free, and one it
	 * handed over is freed here before anyone can reuse it */
	gx_fut_undo_completing(i);
	gx_death_salvage(i, pid, as);
	if (pid > 0 && as >= 0) {
		gx_repair_report rep;
		gx_arena_repair_slot(gx_pl.a, as, pid, &rep); /* its other ring and pool claims */
	}
	atomic_store(&w->arena_slot, -1);
	atomic_store(&w->running, 0);
	atomic_store(&w->backlog_ns, 0);
	atomic_store(&w->heartbeat, 0); /* the replacement stamps its own */
	gx_death_rerun(i);
	gx_dch_forget_worker(i);
	/* whatever wake-up it owed, even without an arena slot to repair */
	gx_arena_wake_all(gx_pl.a);
	if (restarting) {
		atomic_fetch_add(&w->restarts, 1);
		gx_request(i); /* state SPAWN: the spawner forks a new one */
		return;         /* it takes over the inbox */
	}
	if (retired) {
		atomic_store(&w->state, GX_W_OFF);
		return; /* what it had is queued again above */
	}
	gx_death_final(i, pid);
}

/* gx_par_fini: forget the requeue list (the runtime is down). */
void gx_requeue_fini(void)
{
	free(RQ.v);
	RQ.v = NULL;
	RQ.n = RQ.cap = RQ.head = 0;
	RQ.running = 0;
	if (RQ.bell)
		gx_chan_free(RQ.bell);
	RQ.bell = NULL;
}
