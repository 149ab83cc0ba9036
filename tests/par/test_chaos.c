/* Kill chaos: a worker SIGKILLed every 20-40 ms while tasks and distributed-channel traffic flow. Every future resolves, no wait outlasts its deadline, the channel keeps its exact capacity, no pool chunk leaks and the main process's memory stays flat. */
/*
 * GX_TEST_CHAOS_SECONDS sets the length (default 8; tests/run.sh --long
 * runs 60). The figures are logged (cr_log_info, --verbose): kills,
 * tasks, values through the channel, the worst wait, RSS at the first
 * quarter and at the end.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testing.h"

#include "harness.h"

#define WINDOW 64                     /* tasks in flight */
#define CHAN_CAP 50                   /* not a power of two on purpose */
#define WAIT (20 * GX_SECOND)         /* every wait's deadline */
#define SLACK (2 * GX_SECOND)         /* past its deadline by this much: a hang */

static int64_t run_ns;
static volatile int done;
static long kills, tasks_ok, tasks_bad, sent, got, overtime;
static int64_t worst;
static long rss_quarter, rss_end;
static uint64_t in_use_before, in_use_after;
static int cap_ok;

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "re");
	long pages = 0, res = 0;
	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &res) != 2)
			res = 0;
		fclose(f);
	}
	return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static uint64_t pools_in_use(void)
{
	gx_arena *a = gx_par_arena(0);
	uint64_t n = 0;
	for (int c = 0; c < GX_POOL_CLASSES; c++) {
		gx_pool_class_stats s;
		if (a && gx_pool_stats(a, 0, c, &s) == 0)
			n += s.in_use;
	}
	return n;
}

static void timed(int64_t t0, int64_t deadline)
{
	int64_t took = gx_now() - t0;
	if (took > worst)
		worst = took;
	if (took > deadline + SLACK)
		overtime++;
}

static int t_square(const void *arg, size_t len, gx_task_result *res)
{
	uint64_t i;
	if (len != sizeof i)
		return -EINVAL;
	memcpy(&i, arg, sizeof i);
	uint64_t x = 88172645463325252ull;
	for (int k = 0; k < 20000; k++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	uint64_t y = i * i + (x == 42);
	return gx_task_return(res, &y, sizeof y);
}

/* A consumer of the channel, in a worker: takes values until it is told
 * to stop (a value of 0), its deadline, or a thousand. Returns how many it
 * took (the values a killed consumer took are not counted). */
static int t_consume(const void *arg, size_t len, gx_task_result *res)
{
	(void)res;
	gx_chan *ch;
	if (len != sizeof ch)
		return -EINVAL;
	memcpy(&ch, arg, sizeof ch);
	int n = 0;
	while (n < 1000) { /* then report: a kill loses the count of a run */
		uint64_t v;
		bool ok;
		int rc = gx_chan_recv(ch, &v, &ok, gx_timeout(200 * GX_MILLISECOND));
		if (rc < 0 || !ok || v == 0)
			break;
		n++;
	}
	return n;
}

static void killer(void *arg)
{
	(void)arg;
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	while (!done) {
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		gx_sleep((20 + (int64_t)(seed % 21)) * GX_MILLISECOND);
		if (done)
			break;
		gx_stats_worker w = worker_info((int)(seed % 2));
		if (worker_active(&w) && kill_pid(w.pid, SIGKILL) == 0)
			kills++;
	}
}

static gx_chan *ch;

/* Main's producer: sequence numbers into the channel, each send with a
 * deadline; consumers are tasks that the kills restart. */
static void producer(void *arg)
{
	(void)arg;
	for (uint64_t v = 1; !done; v++) {
		int64_t t0 = gx_now();
		int rc = gx_chan_send(ch, &v, gx_timeout(WAIT));
		timed(t0, WAIT);
		if (rc == 0)
			sent++;
		if (v % 256 == 0)
			gx_yield();
	}
}

static void consumers(void *arg)
{
	(void)arg;
	while (!done) {
		gx_future f;
		if (gx_go_parallel(&f, t_consume, &ch, sizeof ch, NULL) != 0) {
			gx_sleep(GX_MILLISECOND);
			continue;
		}
		int64_t t0 = gx_now();
		int n = gx_future_get(f, NULL, 0, NULL, gx_timeout(WAIT));
		timed(t0, WAIT);
		if (n > 0)
			got += n;
	}
}

static void tasks_round(uint64_t *next)
{
	gx_future f[WINDOW];
	uint64_t id[WINDOW];
	int k = 0;
	for (; k < WINDOW; k++) {
		id[k] = (*next)++;
		if (gx_go_parallel(&f[k], t_square, &id[k], sizeof id[k], NULL) != 0)
			break;
	}
	for (int i = 0; i < k; i++) {
		uint64_t y = 0;
		int64_t t0 = gx_now();
		int rc = gx_future_get(f[i], &y, sizeof y, NULL, gx_timeout(WAIT));
		timed(t0, WAIT);
		if (rc == 0 && y == id[i] * id[i])
			tasks_ok++;
		else
			tasks_bad++;
	}
}

/* After the chaos: drain the channel, then exactly CHAN_CAP values fit. */
static int capacity_exact(void)
{
	uint64_t v;
	while (gx_chan_try_recv(ch, &v, NULL) == 0)
		;
	int n = 0;
	v = 1;
	while (n <= CHAN_CAP && gx_chan_try_send(ch, &v) == 0)
		n++;
	while (gx_chan_try_recv(ch, &v, NULL) == 0)
		;
	return n == CHAN_CAP;
}

static int chaos_main(void *arg)
{
	(void)arg;
	cr_assert_eq(gx_chan_make(&ch, sizeof(uint64_t), CHAN_CAP, GX_CHAN_DISTRIBUTED), 0);
	in_use_before = pools_in_use();
	gx_go(killer, NULL);
	gx_go(producer, NULL);
	gx_go(consumers, NULL);
	int64_t start = gx_now(), quarter = start + run_ns / 4, end = start + run_ns;
	uint64_t next = 1;
	while (gx_now() < end) {
		tasks_round(&next);
		if (!rss_quarter && gx_now() >= quarter)
			rss_quarter = rss_kib();
	}
	done = 1;
	gx_sleep(500 * GX_MILLISECOND); /* the producer, the consumer and the killer see it */
	uint64_t zero = 0;
	gx_chan_send(ch, &zero, gx_timeout(GX_SECOND)); /* a consumer still waiting ends */
	for (int t = 0; t < 500 && gx_workers() < 2; t++)
		gx_sleep(10 * GX_MILLISECOND);
	gx_sleep(300 * GX_MILLISECOND);
	cap_ok = capacity_exact();
	in_use_after = pools_in_use();
	rss_end = rss_kib();
	gx_chan_close(ch);
	return 0;
}

Test(chaos, workers_killed_every_20_to_40_ms_while_tasks_and_channel_traffic_flow, .timeout = 600)
{
	const char *env = getenv("GX_TEST_CHAOS_SECONDS");
	long secs = env ? strtol(env, NULL, 10) : 8;
	run_ns = (secs > 0 ? secs : 8) * GX_SECOND;
	gx_config c;
	gx_config_init(&c);
	c.workers = 2;
	c.restart_max = 1000;       /* within the window: */
	c.restart_window_ms = 1000; /* at most 1000 restarts a second */
	c.retry_attempts = 100;
	cr_assert_eq(gx_run(&c, chaos_main, NULL), 0);
	cr_log_info("chaos: %lld s, %ld kills, %ld tasks right, %ld wrong, %ld values sent, %ld taken, worst wait %lld ms, "
		    "RSS %ld KiB at a quarter, %ld KiB at the end, pool chunks in use %llu before, %llu after",
		    (long long)(run_ns / GX_SECOND), kills, tasks_ok, tasks_bad, sent, got,
		    (long long)(worst / GX_MILLISECOND), rss_quarter, rss_end, (unsigned long long)in_use_before,
		    (unsigned long long)in_use_after);
	cr_expect_gt(kills, 10, "the killer ran (%ld kills)", kills);
	cr_expect_gt(tasks_ok, 0);
	cr_expect_eq(tasks_bad, 0, "every future resolved with its value (%ld did not)", tasks_bad);
	cr_expect_eq(overtime, 0, "waits past their deadline: %ld (worst %lld ms)", overtime,
		     (long long)(worst / GX_MILLISECOND));
	cr_expect(cap_ok, "the channel holds exactly %d values after the chaos", CHAN_CAP);
	cr_expect_eq(in_use_after, in_use_before, "pool chunks in use: %llu before, %llu after",
		     (unsigned long long)in_use_before, (unsigned long long)in_use_after);
#if defined(__SANITIZE_ADDRESS__)
	/* ASan keeps freed memory in its quarantine (256 MiB): RSS grows with
	 * the churn, not with a leak; LSan checks leaks at exit instead */
	cr_log_info("ASan build: RSS not judged");
#else
	cr_expect_lt(rss_end, rss_quarter + 16 * 1024, "RSS grew from %ld KiB to %ld KiB", rss_quarter, rss_end);
#endif
	cr_expect(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD, "no child left");
}
