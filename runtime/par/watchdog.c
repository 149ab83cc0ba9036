/*
 * The watchdog (main process): the memory limit, task timeouts and health
 * (heartbeats).
 */
#include "par/par.h"

#include <stdio.h>
#include <sys/wait.h>

#include "core/sched.h"

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
void gx_watchdog(void *arg)
{
	(void)arg;
	int64_t limit = (int64_t)gx_pl.cfg.worker_timeout_ms * GX_MILLISECOND;
	int64_t every = 100 * GX_MILLISECOND;
	if (limit && limit / 4 < every)
		every = limit / 4 > GX_MILLISECOND ? limit / 4 : GX_MILLISECOND;
	int resting = 0; /* every worker's heartbeat rested at the last look */
	while (!gx_pl.stopping) {
		/* with health monitoring alone and every worker resting, look
		 * once a second: an idle runtime barely wakes */
		int64_t d = resting && !limit && !gx_pl.cfg.worker_max_rss ? GX_SECOND : every;
		if (gx_sleep(d) < 0 || gx_pl.stopping)
			break;
		int64_t now = gx_now();
		resting = 1;
		for (int i = 0; i < (int)gx_pl.p->nslots; i++) {
			if (!gx_active(i))
				continue;
			if (gx_pl.cfg.worker_max_rss && gx_rss(atomic_load(&gx_pl.p->w[i].pid)) > gx_pl.cfg.worker_max_rss) {
				/* drain: no new tasks, it finishes what it has and
				 * leaves; the supervisor then puts a new one there */
				gx_log("parallel: worker %d is over %zu bytes resident: replacing it", i,
				       gx_pl.cfg.worker_max_rss);
				atomic_store(&gx_pl.p->w[i].replace, 1);
				atomic_store(&gx_pl.p->w[i].state, GX_W_DRAIN);
				gx_ring_kick(gx_inbox(i));
				continue;
			}
			if (gx_pl.cfg.health_monitoring) {
				/* a heartbeat older than ten periods (1 s at least)
				 * while the worker has work, on two looks in a row
				 * (a resting worker stamps when it takes work): a task
				 * hogs the CPU, or the worker is stopped */
				gx_wk *hw = &gx_pl.p->w[i];
				int64_t hb = atomic_load(&hw->heartbeat);
				int64_t stale = 10 * gx_heartbeat_every();
				stale = stale < GX_SECOND ? GX_SECOND : stale;
				int rest = atomic_load(&hw->hb_rest) != 0;
				int work = atomic_load(&hw->running) || gx_ring_depth(gx_inbox(i));
				resting = resting && rest && !work;
				int late = hb && now - hb > stale && (work || !rest);
				gx_pl.stale_looks[i] = late ? (uint8_t)(gx_pl.stale_looks[i] < 2 ? gx_pl.stale_looks[i] + 1 : 2) : 0;
				uint32_t bad = gx_pl.stale_looks[i] >= 2;
				if (atomic_exchange(&hw->unhealthy, bad) != bad)
					gx_log("parallel: worker %d (pid %d) %s", i, (int)atomic_load(&gx_pl.p->w[i].pid),
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
			gx_wk *w = &gx_pl.p->w[i];
			int64_t hb = atomic_load(&w->heartbeat);
			int32_t wpid = atomic_load(&w->pid);
			if (over && hb && now - hb > limit && wpid > 0 && gx_active(i)) {
				for (int e = 0; rt && e < GX_RUN_MAX; e++) {
					int64_t st = atomic_load_explicit(&rt->start[e], memory_order_relaxed);
					if (st < 0 || (st > 0 && now - st > limit))
						atomic_fetch_and(&rt->used[e / 64], ~(1ull << (e % 64)));
				}
				gx_log("parallel: worker %d hung in a task past %u ms: killing it", i,
				       gx_pl.cfg.worker_timeout_ms);
				kill(wpid, SIGKILL);
			}
		}
	}
}

