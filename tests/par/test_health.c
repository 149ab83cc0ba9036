/*
 * Worker deaths: a worker SIGKILLed under load is replaced, what it was
 * running runs again elsewhere, every future resolves once with the right
 * value; past the restart limit a slot stays dead and the runtime degrades.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <gonex/gonex.h>

#include "harness.h"

static int slow_triple(const void *arg, size_t len, gx_task_result *res)
{
	uint64_t i;
	if (len != 8)
		return -EINVAL;
	memcpy(&i, arg, 8);
	gx_sleep(20 * GX_MILLISECOND);
	uint64_t y = i * 3 + 1;
	gx_task_return(res, &y, 8);
	return 0;
}

#define KN 2000
static gx_future kf[KN];
static int k_bad, k_dead, k_workers, k_killed;
static uint64_t k_restarts;

static int kill_main(void *arg)
{
	int kills = *(int *)arg;
	for (uint64_t i = 0; i < KN; i++)
		if (gx_go_parallel(&kf[i], slow_triple, &i, 8, NULL) != 0)
			return 1;
	for (int k = 0; k < kills; k++) {
		gx_sleep(20 * GX_MILLISECOND);
		/* a running worker: one being replaced has no pid yet */
		gx_stats_worker s = worker_info(k % 2);
		for (int t = 0; t < 200 && (!worker_active(&s) || s.pid <= 0); t++) {
			gx_sleep(GX_MILLISECOND);
			s = worker_info(k % 2);
		}
		if (worker_active(&s) && kill_pid(s.pid, SIGKILL) == 0)
			k_killed++;
	}
	for (uint64_t i = 0; i < KN; i++) {
		uint64_t y = 0;
		int rc = gx_future_get(kf[i], &y, 8, NULL, gx_timeout(60 * GX_SECOND));
		if (rc == -EOWNERDEAD)
			k_dead++;
		else if (rc != 0 || y != i * 3 + 1)
			k_bad++;
	}
	/* the replacements come up */
	for (int t = 0; t < 500 && gx_workers() < 2; t++)
		gx_sleep(10 * GX_MILLISECOND);
	k_workers = gx_workers();
	k_restarts = 0;
	for (int w = 0; w < 2; w++) {
		k_restarts += worker_info(w).restarts;
	}
	return 0;
}

Test(health, killed_workers_are_replaced_and_their_tasks_run_again, .timeout = 120)
{
	gx_config c;
	gx_config_init(&c);
	c.workers = 2;
	c.restart_max = 100;
	c.retry_attempts = 10;
	int kills = 6;
	k_bad = k_dead = k_workers = k_killed = 0;
	cr_assert_eq(gx_run(&c, kill_main, &kills), 0);
	cr_expect_eq(k_bad, 0, "every future has the right value");
	cr_expect_eq(k_dead, 0, "no task ran out of attempts");
	cr_expect_eq(k_workers, 2, "both slots have a worker again");
	cr_expect_eq(k_killed, kills, "every kill hit a running worker");
	cr_expect_eq(k_restarts, (uint64_t)kills, "one restart per kill (%llu)", (unsigned long long)k_restarts);
	cr_expect(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD, "no child left");
}

static int lim_workers, lim_local_ok, lim_first;

static int where(const void *arg, size_t len, gx_task_result *res)
{
	(void)arg;
	(void)len;
	(void)res;
	return gx_worker_id();
}

static int limit_main(void *arg)
{
	(void)arg;
	for (int k = 0; k < 2; k++) {
		gx_stats_worker s = worker_info(0);
		kill_pid(s.pid, SIGKILL);
		/* wait for the supervisor to act on it */
		for (int t = 0; t < 500; t++) {
			gx_stats_worker s2 = worker_info(0);
			if ((k == 0 && worker_active(&s2) && s2.pid != s.pid) ||
			    (k == 1 && !worker_active(&s2) && gx_workers() == 0))
				break;
			gx_sleep(10 * GX_MILLISECOND);
		}
		if (k == 0) {
			gx_future f;
			gx_go_parallel(&f, where, NULL, 0, NULL);
			lim_first = gx_future_get(f, NULL, 0, NULL, gx_timeout(10 * GX_SECOND));
		}
	}
	lim_workers = gx_workers();
	/* degraded: tasks run here, in the main process */
	gx_future f;
	int rc = gx_go_parallel(&f, where, NULL, 0, NULL);
	lim_local_ok = rc == 0 && gx_future_get(f, NULL, 0, NULL, gx_timeout(10 * GX_SECOND)) == -1;
	return 0;
}

Test(health, past_the_restart_limit_the_runtime_degrades, .timeout = 60)
{
	gx_config c;
	gx_config_init(&c);
	c.workers = 1;
	c.restart_max = 1;
	c.restart_window_ms = 60000;
	c.graceful_degradation = 1;
	cr_assert_eq(gx_run(&c, limit_main, NULL), 0);
	cr_expect_eq(lim_first, 0, "the first death is restarted: worker 0 runs tasks again");
	cr_expect_eq(lim_workers, 0, "the second death, past the limit, is not");
	cr_expect(lim_local_ok, "degraded: the task ran in the main process (worker id -1)");
}

/* The chaos test of issue 7: 20,000 tasks while a random worker is
 * SIGKILLed every 50 ms. Every future resolves exactly once with the
 * right value (re-runs are at-least-once, completions exactly once), and
 * the runtime ends with its full worker count. */
static int chaos_work(const void *arg, size_t len, gx_task_result *res)
{
	uint64_t i;
	if (len != 8)
		return -EINVAL;
	memcpy(&i, arg, 8);
	uint64_t x = 88172645463325252ull;
	for (int k = 0; k < 100000; k++) { /* ~100 us: the run spans many kills */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	uint64_t y = i * 7 + (x == 42); /* x is 42 never: y stays i * 7 */
	gx_task_return(res, &y, 8);
	return 0;
}

#define CN 20000
static gx_future cf[CN];
static volatile int c_done;
static int c_kills, c_bad, c_workers;

static void chaos_killer(void *arg)
{
	(void)arg;
	uint64_t seed = 88172645463325252ull;
	while (!c_done) {
		gx_sleep(50 * GX_MILLISECOND);
		if (c_done)
			break;
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		gx_stats_worker s = worker_info((int)(seed % 2));
		if (worker_active(&s) && kill_pid(s.pid, SIGKILL) == 0) {
			c_kills++;
		}
	}
}

static int chaos_main(void *arg)
{
	(void)arg;
	gx_go(chaos_killer, NULL);
	for (uint64_t i = 0; i < CN; i++)
		if (gx_go_parallel(&cf[i], chaos_work, &i, 8, NULL) != 0)
			return 1;
	for (uint64_t i = 0; i < CN; i++) {
		uint64_t y = 0;
		gx_yield(); /* let the killer in */
		int rc = gx_future_get(cf[i], &y, 8, NULL, gx_timeout(60 * GX_SECOND));
		if (rc != 0 || y != i * 7)
			c_bad++;
	}
	c_done = 1;
	for (int t = 0; t < 500 && gx_workers() < 2; t++)
		gx_sleep(10 * GX_MILLISECOND);
	c_workers = gx_workers();
	return 0;
}

Test(health, chaos_twenty_thousand_tasks_under_sigkill, .timeout = 240)
{
	gx_config c;
	gx_config_init(&c);
	c.workers = 2;
	c.restart_max = 1000;
	c.retry_attempts = 100;
	c_done = 0;
	c_kills = c_bad = c_workers = 0;
	cr_assert_eq(gx_run(&c, chaos_main, NULL), 0);
	cr_log_info("chaos: %d kills", c_kills);
	cr_expect_gt(c_kills, 5, "the killer ran (%d kills)", c_kills);
	cr_expect_eq(c_bad, 0, "every future resolved with the right value");
	cr_expect_eq(c_workers, 2, "full worker count at the end");
	cr_expect(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD, "no child left");
}

/* Task timeouts (GONEX_WORKER_TIMEOUT_MS): a task past it fails its future
 * with -ETIMEDOUT. A worker hung in a task (it stops coming back to its
 * own loop) is killed and replaced; one whose task merely waits is not. */
static int hog(const void *arg, size_t len, gx_task_result *res)
{
	(void)arg;
	(void)len;
	(void)res;
	for (volatile uint64_t x = 0;; x++)
		; /* never yields: the worker does not come back */
	return 0;
}

static int napper(const void *arg, size_t len, gx_task_result *res)
{
	(void)arg;
	(void)len;
	(void)res;
	gx_sleep(2 * GX_SECOND);
	return 0;
}

static int to_hog, to_nap, to_after, to_restarts_nap, to_restarts_hog;

static int timeout_main(void *arg)
{
	(void)arg;
	gx_par_opts o = GX_PAR_OPTS_INIT;
	gx_future f;
	o.worker = 1;
	gx_go_parallel(&f, napper, NULL, 0, &o);
	to_nap = gx_future_get(f, NULL, 0, NULL, gx_timeout(10 * GX_SECOND));
	gx_stats_worker s = worker_info(1);
	to_restarts_nap = (int)s.restarts;
	o.worker = 0;
	gx_go_parallel(&f, hog, NULL, 0, &o);
	to_hog = gx_future_get(f, NULL, 0, NULL, gx_timeout(10 * GX_SECOND));
	/* the replacement of worker 0 runs tasks */
	for (int t = 0; t < 500; t++) {
		s = worker_info(0);
		if (s.restarts >= 1 && worker_active(&s))
			break;
		gx_sleep(10 * GX_MILLISECOND);
	}
	to_restarts_hog = (int)s.restarts;
	gx_go_parallel(&f, where, NULL, 0, &o);
	to_after = gx_future_get(f, NULL, 0, NULL, gx_timeout(10 * GX_SECOND));
	return 0;
}

Test(health, a_task_over_its_timeout_fails_and_a_hung_worker_is_replaced, .timeout = 60)
{
	gx_config c;
	gx_config_init(&c);
	c.workers = 2;
	c.work_stealing = 0;
	c.worker_timeout_ms = 200;
	cr_assert_eq(gx_run(&c, timeout_main, NULL), 0);
	cr_expect_eq(to_nap, -ETIMEDOUT, "a waiting task past its timeout");
	cr_expect_eq(to_restarts_nap, 0, "its worker kept coming back: not killed");
	cr_expect_eq(to_hog, -ETIMEDOUT, "a hogging task past its timeout");
	cr_expect_eq(to_restarts_hog, 1, "its worker was killed and replaced");
	cr_expect_eq(to_after, 0, "the replacement runs tasks (worker id 0)");
}

/* GONEX_WORKER_MAX_RSS: a worker that grows past it finishes what it has
 * and is replaced; the replacement takes tasks. */
void *gx_test_bloat_keep; /* not static: the stores must stay */

static int bloat(const void *arg, size_t len, gx_task_result *res)
{
	(void)arg;
	(void)len;
	(void)res;
	size_t n = (size_t)96 << 20;
	char *p = malloc(n);
	if (!p)
		return -ENOMEM;
	memset(p, 1, n); /* resident now */
	gx_test_bloat_keep = p; /* and kept: the worker stays big */
	return 0;
}

static int rss_bloat, rss_after, rss_restarts;

static int rss_main(void *arg)
{
	(void)arg;
	gx_par_opts o = GX_PAR_OPTS_INIT;
	o.worker = 0;
	gx_future f;
	gx_go_parallel(&f, bloat, NULL, 0, &o);
	rss_bloat = gx_future_get(f, NULL, 0, NULL, gx_timeout(10 * GX_SECOND));
	gx_stats_worker s = {0};
	for (int t = 0; t < 1000; t++) {
		s = worker_info(0);
		if (s.restarts >= 1 && worker_active(&s))
			break;
		gx_sleep(10 * GX_MILLISECOND);
	}
	rss_restarts = (int)s.restarts;
	gx_go_parallel(&f, where, NULL, 0, &o);
	rss_after = gx_future_get(f, NULL, 0, NULL, gx_timeout(10 * GX_SECOND));
	return 0;
}

Test(health, a_worker_over_its_memory_limit_is_replaced, .timeout = 60)
{
	gx_config c;
	gx_config_init(&c);
	c.workers = 2;
	c.work_stealing = 0;
	c.worker_max_rss = (size_t)64 << 20;
	cr_assert_eq(gx_run(&c, rss_main, NULL), 0);
	cr_expect_eq(rss_bloat, 0, "the bloating task itself completed");
	cr_expect_eq(rss_restarts, 1, "worker 0 was replaced once");
	cr_expect_eq(rss_after, 0, "the replacement runs tasks (worker id 0)");
}
