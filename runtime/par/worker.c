/*
 * The worker process: its loop takes batches from its inbox (through a
 * staging area in the arena, so a death mid-batch loses nothing), runs each
 * task in a coroutine of its own, steals half of the fullest other inbox
 * when its own is empty, and sleeps on its inbox's eventcount otherwise.
 * A heartbeat coroutine stamps the slot while there is work.
 *
 * Invariants:
 *  - a record is in the staging area (count published with release) from
 *    before the ring releases its slot until it is in the running table:
 *    a death in between leaves it where the supervisor looks;
 *  - the loop ends when its inbox is closed and drained, when the runtime
 *    stops and a take finds nothing, or when it was retired; then it waits
 *    for its running tasks;
 *  - it never spins on what only looks like work: a thousand empty takes
 *    after as many wake-ups cost a millisecond's sleep (gx_ec_pause).
 *
 * Who writes what: this worker writes its slot's counters, heartbeat,
 * staging area and state READY; main writes its state otherwise. Its
 * inbox, CPU and shard are this process's copies, set before any fork.
 *
 * Rejected: taking one task at a time (a ring round trip per task);
 * a heartbeat on a timer when idle (an idle runtime would wake for it).
 */
#include "par/par.h"

#include <sched.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "core/sched.h"

#include <gonex/dump.h>
#include <gonex/runtime.h>

/* ---- the worker ---- */

static bool gx_worker_ready(void *arg)
{
	(void)arg;
	gx_wk *w = &gx_pl.p->w[gx_pl.me];
	if (atomic_load(&w->state) != GX_W_READY || atomic_load(&gx_pl.p->stop))
		return true;
	gx_ring *in = gx_inbox(gx_pl.me);
	if (gx_ring_depth(in))
		return true;
	if (atomic_load_explicit(&gx_pl.p->dump_seq, memory_order_relaxed) != atomic_load(&w->dump_seen))
		return true;
	if (gx_pl.cfg.work_stealing)
		for (int i = 0; i < gx_pl.nslots; i++)
			if (i != gx_pl.me) {
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
	gx_wk *w = &gx_pl.p->w[gx_pl.me];
	for (size_t i = 0; i < k; i++)
		w->staging[i].fut = 0;
	/* release: the cleared staging futures before the count (pairs with the supervisor's read) */
	atomic_store_explicit(&w->staging_k, (uint32_t)k, memory_order_release);
	int n = gx_ring_try_recv_batch(from, w->staging, k);
	if (n > 0 && gx_pl.hb_resting) {
		/* work after a rest: the heartbeat is fresh from now on */
		atomic_store_explicit(&w->heartbeat, gx_now(), memory_order_relaxed);
		gx_chan_try_send(gx_pl.hb_bell, NULL);
	}
	for (int i = 0; i < n; i++)
		gx_task_start(&w->staging[i], stolen, cancel);
	/* release: the batch is in the running table before the staging area is let go */
	atomic_store_explicit(&w->staging_k, 0, memory_order_release);
	return n;
}

/* A thief's victim: the inbox with the most queued, two at least (a lone
 * task is left to its worker), other than this process's own. Its index
 * and depth (*most), or -1. */
static int gx_fullest_inbox(uint64_t *most)
{
	int victim = -1;
	*most = 1;
	for (int i = 0; i < gx_pl.nslots; i++) {
		if (i == gx_pl.me)
			continue;
		gx_ring *o = gx_inbox(i);
		uint64_t d = o ? gx_ring_depth(o) : 0;
		if (d > *most) {
			*most = d;
			victim = i;
		}
	}
	return victim;
}

/* Take half of the fullest other inbox. Returns tasks started. */
static int gx_steal(int cancel)
{
	uint64_t most;
	int victim = gx_fullest_inbox(&most);
	if (victim < 0)
		return 0;
	uint64_t want = most / 2;
	if (want > (uint64_t)gx_pl.rt_nfree)
		want = (uint64_t)gx_pl.rt_nfree;
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

/* Main helps (cfg.main_helps): one queued task from the fullest inbox,
 * started in a coroutine of the main process, as a run with no workers
 * starts it (no running table: main's death is the program's). It takes
 * as a thief does (gx_steal): only with work stealing on, so a task sent
 * to a worker with stealing off stays there (distributed channels' tasks
 * rely on that), and only from an inbox with two or more queued. 1 when
 * one was started; 0 when none was, also while the runtime stops (queued
 * tasks are the drain's or the cancel's) and while a task main took is
 * still running: one that blocks (a nap, a channel) must not make main
 * take the whole queue from the workers, one after the other. */
int gx_main_help(void)
{
	if (gx_pl.helped_running > 0 || !gx_pl.cfg.work_stealing || gx_pl.stopping ||
	    atomic_load_explicit(&gx_pl.p->stop, memory_order_relaxed))
		return 0;
	uint64_t most;
	int victim = gx_fullest_inbox(&most); /* main's me is -1: any inbox */
	if (victim < 0)
		return 0;
	gx_task_rec r;
	if (gx_ring_try_recv_batch(gx_inbox(victim), &r, 1) != 1)
		return 0; /* taken meanwhile, or not a record: the worker's */
	if (r.cost) /* it was counted in the worker's backlog (predictive) */
		atomic_fetch_sub_explicit(&gx_pl.p->w[victim].backlog_ns, r.cost, memory_order_relaxed);
	gx_task_start_helped(&r);
	return 1;
}

/* How often a worker stamps its heartbeat: a quarter of the task timeout,
 * at most 100 ms. */
int64_t gx_heartbeat_every(void)
{
	int64_t every = 100 * GX_MILLISECOND;
	int64_t q = (int64_t)gx_pl.cfg.worker_timeout_ms * GX_MILLISECOND / 4;
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
	gx_wk *w = &gx_pl.p->w[gx_pl.me];
	gx_ring *in = gx_inbox(gx_pl.me);
	int64_t every = gx_heartbeat_every();
	while (!atomic_load(&gx_pl.p->stop)) {
		atomic_store_explicit(&w->heartbeat, gx_now(), memory_order_relaxed);
		if (gx_pl.hb_bell && !atomic_load(&w->running) && !gx_ring_depth(in)) {
			gx_pl.hb_resting = 1;
			atomic_store(&w->hb_rest, 1);
			gx_chan_recv(gx_pl.hb_bell, NULL, NULL, GX_FOREVER);
			atomic_store(&w->hb_rest, 0);
			gx_pl.hb_resting = 0;
			continue;
		}
		gx_sleep(every);
	}
}

/* gx_dump_all asked (the sequence moved): dump this worker's coroutines. */
static void gx_worker_dump_check(gx_wk *w)
{
	uint32_t seq = atomic_load(&gx_pl.p->dump_seq);
	if (seq == atomic_load(&w->dump_seen))
		return;
	atomic_store(&w->dump_seen, seq);
	char hdr[64];
	int l = snprintf(hdr, sizeof hdr, "gonex: worker %d dump\n", gx_pl.me);
	if (write(2, hdr, (size_t)l) < 0) {
		/* stderr is gone: nothing to dump to */
	}
	gx_coro_dump(2);
}

static int gx_worker_loop(void *arg)
{
	(void)arg;
	gx_wk *w = &gx_pl.p->w[gx_pl.me];
	gx_ring *in = gx_inbox(gx_pl.me);
	/* everything set before READY: main goes on the moment it sees it */
	atomic_store(&w->arena_slot, gx_arena_attach(gx_pl.a));
	atomic_store(&w->idle_ns, 0);
	atomic_store(&w->idle_since, 0);
	atomic_store(&w->unhealthy, 0);
	atomic_store(&w->dump_seen, atomic_load(&gx_pl.p->dump_seq));
	atomic_store(&w->started, gx_now());
	gx_pl.shard = gx_pl.shards ? gx_arena_ptr(gx_pl.a, gx_pl.shards + (gx_off)(gx_pl.me + 1) * sizeof(gx_stat_shard),
					      sizeof(gx_stat_shard))
				: NULL;
	if (gx_pl.cfg.worker_timeout_ms || gx_pl.cfg.health_monitoring) {
		atomic_store(&w->heartbeat, gx_now());
		atomic_store(&w->hb_rest, 0);
		gx_pl.hb_resting = 0;
		if (gx_chan_make(&gx_pl.hb_bell, 0, 1, 0) < 0)
			gx_pl.hb_bell = NULL; /* then it never rests */
		gx_go(gx_heartbeat, NULL);
	}
	/* idle: the process blocks with nothing to run (tasks waiting on I/O
	 * or timers count as idle, tasks computing as busy) */
	gx_idle_sink idle = {&w->idle_since, &w->idle_ns, &w->wakeups};
	gx_sched_set_idle_sink(&idle);
	gx_pl.rt = gx_runtab_of(gx_pl.me);
	gx_pl.rt_nfree = 0;
	for (int e = GX_RUN_MAX - 1; e >= 0; e--)
		gx_pl.rt_free[gx_pl.rt_nfree++] = (uint8_t)e;
	atomic_store(&w->ready_pid, (int32_t)getpid());
	atomic_store(&w->state, GX_W_READY);
	gx_ec_notify(&gx_pl.p->events, NULL);
	for (unsigned misses = 0;;) {
		gx_worker_dump_check(w);
		int cancel = atomic_load(&gx_pl.p->stop) && gx_pl.cfg.shutdown == GX_SHUTDOWN_CANCEL;
		if (gx_pl.rt_nfree == 0) {
			/* the running table is full: finish some first */
			gx_sleep(50 * GX_MICROSECOND);
			continue;
		}
		int n = gx_take(in, gx_pl.rt_nfree < 16 ? (size_t)gx_pl.rt_nfree : 16, 0, cancel);
		if (n > 0) {
			misses = 0;
			gx_yield();
			continue;
		}
		if (n == -EPIPE)
			break; /* closed and drained: shutting down */
		if (n <= 0 && atomic_load(&gx_pl.p->stop))
			break; /* stopping and nothing left to take (or an inbox
				* whose close was scribbled away) */
		if (n == -EMSGSIZE || n == -EBADMSG) {
			/* not a task record: drop it rather than spin on it */
			char junk[GX_RING_INLINE_MAX];
			gx_off ck = 0;
			if (gx_ring_try_recv(in, junk, sizeof junk, &ck) >= 0 && ck)
				gx_pool_free(gx_pl.a, ck);
			continue;
		}
		if (atomic_load(&w->state) == GX_W_DRAIN && gx_ring_depth(in) == 0)
			break; /* retired by autoscaling */
		if (gx_pl.cfg.work_stealing && gx_steal(cancel) > 0) {
			gx_yield();
			continue;
		}
		atomic_store(&w->idle, 1);
		atomic_fetch_add(&gx_pl.p->idle_workers, 1);
		gx_ec_wait(gx_ring_consumer_ec(in), gx_worker_ready, NULL, gx_geo(gx_pl.a)->spin_ns, GX_FOREVER, NULL);
		atomic_fetch_sub(&gx_pl.p->idle_workers, 1);
		atomic_store(&w->idle, 0);
		/* woken, yet the take finds nothing, a thousand times in a row:
		 * garbage that looks like work; do not spin a core on it */
		gx_ec_pause(&misses, GX_FOREVER);
	}
	gx_wg_wait(&gx_pl.tasks_wg, GX_FOREVER);
	return 0;
}

_Noreturn void gx_worker_main(int i)
{
	gx_pl.me = i;
	/* "gonex-worker N" in ps, top and ss (15 bytes at most) */
	char name[16];
	snprintf(name, sizeof name, "gonex-worker %d", i);
	prctl(PR_SET_NAME, name);
	int cpu = gx_pl.cpu[i]; /* this process's copy, not the slot's */
	if (gx_pl.cfg.cpu_affinity && cpu >= 0 && cpu < CPU_SETSIZE) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		sched_setaffinity(0, sizeof set, &set);
	}
	gx_config c = gx_pl.cfg;
	c.workers = 0; /* a worker starts no workers of its own */
	gx_pl.enabled = 0;
	int rc = gx_run(&c, gx_worker_loop, NULL);
	gx_arena_detach(gx_pl.a);
	_exit(rc == 0 ? 0 : 1);
}

