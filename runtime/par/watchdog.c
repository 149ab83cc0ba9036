/*
 * The watchdog (main process): the memory limit, task timeouts and health
 * (heartbeats).
 *
 * It reads what workers write (heartbeats, counters, the running tables)
 * and acts only through this process's own handles: a pidfd (or a pid it
 * checked is the spawner's child) to kill, the pid its watcher validated
 * for /proc. The running table is read under the tag protocol of par.h: an
 * entry is timed out only by a CAS from the very RUNNING tag it was copied
 * under.
 */
#include "par/par.h"

#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/sched.h"
#include "core/testpoint.h"

static uint64_t gx_rss(int32_t pid)
{
	char buf[128];
	unsigned long long size, res;
	if (gx_proc_read(pid, "statm", buf, sizeof buf) < 0 || sscanf(buf, "%llu %llu", &size, &res) != 2)
		return 0;
	return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Kill worker i (hung): through the pidfd its watcher holds, or, where
 * there is none, by a pid this process checked is the spawner's child. */
static void gx_kill_worker(int i)
{
	if (gx_pl.pidfd[i] >= 0) {
		syscall(SYS_pidfd_send_signal, gx_pl.pidfd[i], SIGKILL, NULL, 0);
		return;
	}
	int32_t pid = gx_pl.spid[i];
	char st;
	int32_t pp;
	if (pid > 0 && gx_proc_stat(pid, &st, &pp) == 0 && pp == gx_pl.spawner_pid)
		kill(pid, SIGKILL);
}

/* Memory limit: worker i over it is drained and replaced. 1 when it was. */
static int gx_check_rss(int i)
{
	if (!gx_pl.cfg.worker_max_rss || gx_rss(gx_pl.spid[i]) <= gx_pl.cfg.worker_max_rss)
		return 0;
	/* drain: no new tasks, it finishes what it has and leaves; the
	 * supervisor then puts a new one there */
	gx_log("parallel: worker %d is over %zu bytes resident: replacing it", i, gx_pl.cfg.worker_max_rss);
	atomic_store(&gx_pl.p->w[i].replace, 1);
	atomic_store(&gx_pl.p->w[i].state, GX_W_DRAIN);
	gx_ring_kick(gx_inbox(i));
	return 1;
}

/* Health: a heartbeat older than ten periods (1 s at least) while the
 * worker has work, on two looks in a row (a resting worker stamps when it
 * takes work): a task hogs the CPU, or the worker is stopped. Returns
 * whether the worker's heartbeat rests with nothing to do. */
static int gx_check_health(int i, int64_t now)
{
	gx_wk *hw = &gx_pl.p->w[i];
	int64_t hb = atomic_load(&hw->heartbeat);
	int64_t stale = 10 * gx_heartbeat_every();
	stale = stale < GX_SECOND ? GX_SECOND : stale;
	int rest = atomic_load(&hw->hb_rest) != 0;
	int work = atomic_load(&hw->running) || gx_ring_depth(gx_inbox(i));
	int late = hb && now - hb > stale && (work || !rest);
	gx_pl.stale_looks[i] = late ? (uint8_t)(gx_pl.stale_looks[i] < 2 ? gx_pl.stale_looks[i] + 1 : 2) : 0;
	uint32_t bad = gx_pl.stale_looks[i] >= 2;
	if (atomic_exchange(&hw->unhealthy, bad) != bad)
		gx_log("parallel: worker %d (pid %d) %s", i, (int)gx_pl.spid[i],
		       bad ? "stopped answering its heartbeat" : "answers its heartbeat again");
	return rest && !work;
}

/* Task timeout: fail the futures of worker i's tasks running longer than
 * limit with -ETIMEDOUT, each once (RUNNING -> TIMEDOUT by CAS on the
 * entry's tag, so a copy of an entry the worker reused meanwhile is never
 * acted on). Returns how many of its tasks are past the limit. */
int gx_check_timeouts(int i, int64_t now, int64_t limit)
{
	gx_runtab *rt = gx_runtab_of(i);
	int over = 0;
	for (int e = 0; rt && e < GX_RUN_MAX; e++) {
		/* acquire: pairs with the worker's release of RUNNING */
		uint64_t tag = atomic_load_explicit(&rt->tag[e], memory_order_acquire);
		if (GX_RT_ST(tag) == GX_RT_TIMEDOUT) {
			over++; /* answered on an earlier look, still running */
			continue;
		}
		int64_t st = atomic_load_explicit(&rt->start[e], memory_order_relaxed);
		if (GX_RT_ST(tag) != GX_RT_RUNNING || !st || now - st <= limit)
			continue;
		gx_task_rec rec = rt->rec[e];
		GX_TEST_POINT("watchdog.copied", &e);
		/* acq_rel: the copy above is of this tag's task if the CAS wins */
		if (!atomic_compare_exchange_strong(&rt->tag[e], &tag, GX_RT_TAG(GX_RT_GEN(tag), GX_RT_TIMEDOUT)))
			continue;
		if (gx_fut_pending(rec.fut))
			gx_task_fail(&rec, -ETIMEDOUT, rec.len <= GX_TASK_INLINE);
		over++;
	}
	return over;
}

/* The watchdog (main process): the memory limit, health, and task
 * timeouts, every quarter of the timeout (100 ms at most). A worker whose
 * heartbeat is older than the timeout while tasks of it are past the limit
 * is hung: it is killed; its timed-out tasks do not run again, the rest
 * (started or not) run elsewhere (gx_handle_death). */
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
		for (int i = 0; i < gx_pl.nslots; i++) {
			/* draining workers too: a task can hang on one */
			uint32_t st = atomic_load(&gx_pl.p->w[i].state);
			if ((st != GX_W_READY && st != GX_W_DRAIN) || gx_pl.spid[i] <= 0)
				continue;
			if (st == GX_W_READY && gx_check_rss(i))
				continue;
			if (gx_pl.cfg.health_monitoring)
				resting = gx_check_health(i, now) && resting;
			if (!limit || !gx_check_timeouts(i, now, limit))
				continue;
			int64_t hb = atomic_load(&gx_pl.p->w[i].heartbeat);
			if (hb && now - hb > limit) {
				gx_log("parallel: worker %d hung in a task past %u ms: killing it", i,
				       gx_pl.cfg.worker_timeout_ms);
				gx_kill_worker(i);
			}
		}
	}
}
