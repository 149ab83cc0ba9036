/*
 * Figures and dumps (gonex/stats.h, gonex/dump.h): counts match what ran
 * (per function, per section, per worker), the histogram holds what was
 * timed, JSON, the figures read from another process (gx_stats_open),
 * stats off, idle workers' heartbeats and a stopped worker reported
 * unhealthy, and the coroutine dump (API, gx_dump_all across processes,
 * SIGQUIT).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gonex/gonex.h>

#include "harness.h"

static int alpha(const void *arg, size_t len, gx_task_result *res)
{
	(void)res;
	uint32_t i;
	if (len != 4)
		return -EINVAL;
	memcpy(&i, arg, 4);
	return i % 10 == 9 ? -EIO : 0;
}

static int beta(const void *arg, size_t len, gx_task_result *res)
{
	(void)arg;
	(void)len;
	(void)res;
	gx_sleep(20 * GX_MILLISECOND);
	return 0;
}

static const gx_stats_fn *find_fn(const gx_stats *s, const char *name, gx_stats_kind kind)
{
	for (int i = 0; i < s->nfn; i++)
		if (s->fn[i].kind == kind && strcmp(s->fn[i].name, name) == 0)
			return &s->fn[i];
	return NULL;
}

static gx_stats *snap; /* big: keep it off coroutine stacks */
static int c_rc;
static uint64_t c_child_count;
static char c_json[65536];

static int counts_main(void *arg)
{
	int workers = *(int *)arg;
	gx_par_opts o = GX_PAR_OPTS_INIT;
	o.name = "alpha";
	static gx_future f[1000];
	for (uint32_t i = 0; i < 1000; i++)
		if (gx_go_parallel(&f[i], alpha, &i, 4, &o) != 0)
			return 1;
	for (int i = 0; i < 1000; i++)
		gx_future_get(f[i], NULL, 0, NULL, gx_timeout(20 * GX_SECOND));
	for (int i = 0; i < 20; i++) /* unnamed: shown by symbol or address */
		gx_go_parallel(&f[i], beta, NULL, 0, NULL);
	for (int i = 0; i < 20; i++)
		gx_future_get(f[i], NULL, 0, NULL, gx_timeout(20 * GX_SECOND));
	for (int i = 0; i < 10; i++) {
		gx_prof p = gx_prof_begin("section-a");
		gx_sleep(GX_MILLISECOND);
		if (i < 3)
			gx_prof_end_err(&p, -EIO);
		else
			gx_prof_end(&p);
	}
	c_rc = gx_stats_snapshot(snap);
	/* JSON through a pipe */
	int pfd[2];
	if (pipe(pfd) != 0)
		return 1;
	gx_stats_json(snap, pfd[1]);
	close(pfd[1]);
	ssize_t n = read(pfd[0], c_json, sizeof c_json - 1);
	c_json[n > 0 ? n : 0] = 0;
	close(pfd[0]);
	/* another process reads our figures from outside */
	if (workers) {
		int cfd[2];
		if (pipe(cfd) != 0)
			return 1;
		pid_t me = getpid(), ch = fork();
		if (ch == 0) {
			gx_stats_src *src;
			static gx_stats s2;
			uint64_t cnt = 0;
			if (gx_stats_open(me, &src) == 0) {
				if (gx_stats_read(src, &s2) == 0) {
					const gx_stats_fn *a = find_fn(&s2, "alpha", GX_STATS_TASK);
					cnt = a ? a->count : 1;
				}
				gx_stats_close(src);
			}
			if (write(cfd[1], &cnt, 8) != 8)
				_exit(1);
			_exit(0);
		}
		close(cfd[1]);
		c_child_count = 0;
		gx_sleep(50 * GX_MILLISECOND);
		if (read(cfd[0], &c_child_count, 8) != 8)
			c_child_count = 2;
		close(cfd[0]);
		waitpid(ch, NULL, 0);
	}
	return 0;
}

static void check_counts(int workers)
{
	cr_assert_eq(c_rc, 0);
	cr_expect(snap->enabled);
	const gx_stats_fn *a = find_fn(snap, "alpha", GX_STATS_TASK);
	cr_assert_not_null(a, "alpha has figures");
	cr_expect_eq(a->count, 1000);
	cr_expect_eq(a->errors, 100);
	cr_expect_eq(a->retries, 0);
	cr_expect(a->timed >= 64 && a->timed <= 1000, "timed %llu", (unsigned long long)a->timed);
	cr_expect(a->p50_ns <= a->p90_ns && a->p90_ns <= a->p99_ns && a->p99_ns <= a->p999_ns);
	const gx_stats_fn *b = NULL;
	for (int i = 0; i < snap->nfn; i++)
		if (snap->fn[i].kind == GX_STATS_TASK && snap->fn[i].count == 20)
			b = &snap->fn[i];
	cr_assert_not_null(b, "the unnamed function has figures");
	cr_expect(b->name[0] != 0);
	cr_expect_eq(b->timed, 20, "every call of the first 64 is timed");
	/* each run slept 20 ms: the histogram's buckets are at most 19% wide */
	cr_expect(b->p50_ns >= 16 * GX_MILLISECOND, "p50 %lld", (long long)b->p50_ns);
	cr_expect(b->max_ns >= 20 * GX_MILLISECOND);
	const gx_stats_fn *s = find_fn(snap, "section-a", GX_STATS_SECTION);
	cr_assert_not_null(s, "the section has figures");
	cr_expect_eq(s->count, 10);
	cr_expect_eq(s->errors, 3);
	cr_expect_eq(s->timed, 10);
	cr_expect(s->p50_ns >= 800 * GX_MICROSECOND);
	cr_expect_eq(snap->nworkers, workers);
	uint64_t tasks = 0;
	for (int i = 0; i < snap->nworkers; i++) {
		const gx_stats_worker *w = &snap->w[i];
		tasks += w->tasks;
		cr_expect(w->pid > 0 && w->state == 2 && w->healthy, "worker %d ready and healthy", i);
		cr_expect(w->util >= 0 && w->util <= 1);
		cr_expect(w->busy_ns + w->idle_ns > 0);
		/* -1: done with its tasks, the heartbeat rests */
		cr_expect(w->heartbeat_age_ns >= -1 && w->heartbeat_age_ns < GX_SECOND, "heartbeat age %lld",
			  (long long)w->heartbeat_age_ns);
	}
	if (workers)
		cr_expect_eq(tasks, 1020, "the workers ran every task: %llu", (unsigned long long)tasks);
	cr_expect(strstr(c_json, "\"name\":\"alpha\",\"kind\":\"task\",\"count\":1000,\"errors\":100") != NULL,
		  "JSON: %.300s", c_json);
	cr_expect(strstr(c_json, "\"name\":\"section-a\",\"kind\":\"section\",\"count\":10") != NULL);
	cr_expect(c_json[strlen(c_json) - 2] == '}');
}

Test(stats, counts_match_what_ran_on_workers, .timeout = 60)
{
	snap = calloc(1, sizeof *snap);
	gx_config c;
	gx_config_init(&c);
	c.workers = 2;
	int w = 2;
	cr_assert_eq(gx_run(&c, counts_main, &w), 0);
	check_counts(2);
	cr_expect_eq(c_child_count, 1000, "another process read the same count: %llu",
		     (unsigned long long)c_child_count);
	free(snap);
}

Test(stats, counts_match_what_ran_without_workers, .timeout = 60)
{
	snap = calloc(1, sizeof *snap);
	gx_config c;
	gx_config_init(&c);
	int w = 0;
	cr_assert_eq(gx_run(&c, counts_main, &w), 0);
	check_counts(0);
	free(snap);
}

static int off_main(void *arg)
{
	(void)arg;
	gx_par_opts o = GX_PAR_OPTS_INIT;
	o.name = "alpha";
	gx_future f;
	uint32_t i = 1;
	gx_go_parallel(&f, alpha, &i, 4, &o);
	gx_future_get(f, NULL, 0, NULL, gx_timeout(10 * GX_SECOND));
	gx_prof p = gx_prof_begin("section-a");
	gx_prof_end(&p);
	c_rc = gx_stats_snapshot(snap);
	return 0;
}

Test(stats, off_keeps_nothing, .timeout = 60)
{
	snap = calloc(1, sizeof *snap);
	gx_config c;
	gx_config_init(&c);
	c.workers = 1;
	c.stats = 0;
	cr_assert_eq(gx_run(&c, off_main, NULL), 0);
	cr_expect_eq(c_rc, 0);
	cr_expect(!snap->enabled);
	cr_expect_eq(snap->nfn, 0);
	cr_expect_eq(snap->w[0].tasks, 1, "worker counters stay");
	free(snap);
}

Test(stats, bad_input)
{
	gx_stats s;
	cr_expect_eq(gx_stats_snapshot(NULL), -EINVAL);
	cr_expect_eq(gx_stats_snapshot(&s), -EPERM, "outside gx_run");
	gx_stats_src *src = (gx_stats_src *)1;
	cr_expect_eq(gx_stats_open(0, &src), -EINVAL);
	cr_expect_eq(gx_stats_open(getpid(), &src), -ENOENT, "no arena here");
	cr_expect_null(src);
	cr_expect_eq(gx_stats_open(1, &src), -ENOENT, "init has none");
	cr_expect_eq(gx_stats_json(NULL, 1), -EINVAL);
	gx_prof p = gx_prof_begin("outside");
	gx_prof_end(&p); /* a no-op */
	cr_expect_eq(gx_coro_dump(1), -EPERM);
	cr_expect_eq(gx_dump_all(), -EPERM);
}

/* ---- health: a resting heartbeat, a stopped worker with work ---- */

static int h_idle_ok, h_busy_ok, h_stopped_idle_ok, h_stopped_unhealthy, h_back, h_ran;

static int napping(const void *arg, size_t len, gx_task_result *res)
{
	(void)arg;
	(void)len;
	(void)res;
	gx_sleep(400 * GX_MILLISECOND);
	return 0;
}

static int health_main(void *arg)
{
	(void)arg;
	gx_sleep(400 * GX_MILLISECOND); /* idle: the heartbeat rests */
	gx_stats_snapshot(snap);
	h_idle_ok = snap->w[0].healthy && snap->w[0].heartbeat_age_ns == -1 && snap->w[0].tasks == 0;
	/* with a task it beats every 100 ms */
	gx_future f;
	gx_go_parallel(&f, napping, NULL, 0, NULL);
	gx_sleep(250 * GX_MILLISECOND);
	gx_stats_snapshot(snap);
	h_busy_ok = snap->w[0].healthy && snap->w[0].heartbeat_age_ns >= 0 &&
		    snap->w[0].heartbeat_age_ns < 300 * GX_MILLISECOND;
	gx_future_get(f, NULL, 0, NULL, gx_timeout(10 * GX_SECOND));
	/* its heartbeat rests again once it has nothing to do (how soon
	 * depends on the machine: under ASan 50 ms was not always enough) */
	for (int t = 0; t < 500; t++) {
		gx_sleep(10 * GX_MILLISECOND);
		gx_stats_snapshot(snap);
		if (snap->w[0].heartbeat_age_ns == -1)
			break;
	}
	/* stopped with nothing to do: nothing is late */
	int pid = snap->w[0].pid;
	cr_assert_gt(pid, 0, "worker 0's pid in the figures");
	kill_pid(pid, SIGSTOP);
	gx_sleep(1500 * GX_MILLISECOND);
	gx_stats_snapshot(snap);
	h_stopped_idle_ok = snap->w[0].healthy;
	/* stopped with work waiting: reported */
	uint32_t v = 1;
	gx_go_parallel(&f, alpha, &v, 4, NULL);
	for (int t = 0; t < 40 && !h_stopped_unhealthy; t++) {
		gx_sleep(100 * GX_MILLISECOND);
		gx_stats_snapshot(snap);
		h_stopped_unhealthy = !snap->w[0].healthy;
	}
	kill_pid(pid, SIGCONT);
	h_ran = gx_future_get(f, NULL, 0, NULL, gx_timeout(10 * GX_SECOND)) == 0;
	for (int t = 0; t < 40 && !h_back; t++) {
		gx_sleep(100 * GX_MILLISECOND);
		gx_stats_snapshot(snap);
		h_back = snap->w[0].healthy && snap->w[0].pid == pid;
	}
	return 0;
}

Test(stats, heartbeats_rest_when_idle_and_a_stopped_worker_with_work_is_unhealthy, .timeout = 60)
{
	snap = calloc(1, sizeof *snap);
	gx_config c;
	gx_config_init(&c);
	c.workers = 1;
	cr_assert_eq(gx_run(&c, health_main, NULL), 0);
	cr_expect(h_idle_ok, "an idle worker is healthy, its heartbeat resting");
	cr_expect(h_busy_ok, "a worker with a task beats");
	cr_expect(h_stopped_idle_ok, "stopped with nothing to do: not reported");
	cr_expect(h_stopped_unhealthy, "a stopped worker with work waiting is reported");
	cr_expect(h_ran, "its task runs once it is continued");
	cr_expect(h_back, "and it is healthy again");
	free(snap);
}

/* ---- busy and idle: a worker computing (and yielding) is busy ---- */

static int compute(const void *arg, size_t len, gx_task_result *res)
{
	(void)arg;
	(void)len;
	(void)res;
	int64_t end = gx_now() + 300 * GX_MILLISECOND;
	volatile uint64_t x = 1;
	while (gx_now() < end) {
		for (int i = 0; i < 10000; i++)
			x = x * 6364136223846793005ull + 1;
		gx_yield(); /* a well-behaved long task */
	}
	return 0;
}

static int64_t u_idle, u_wall;

static int util_main(void *arg)
{
	(void)arg;
	gx_sleep(100 * GX_MILLISECOND);
	gx_stats_snapshot(snap);
	int64_t i0 = snap->w[0].idle_ns, b0 = snap->w[0].busy_ns;
	gx_future f;
	gx_go_parallel(&f, compute, NULL, 0, NULL);
	gx_future_get(f, NULL, 0, NULL, gx_timeout(10 * GX_SECOND));
	gx_stats_snapshot(snap);
	u_idle = snap->w[0].idle_ns - i0;
	u_wall = snap->w[0].idle_ns + snap->w[0].busy_ns - i0 - b0;
	return 0;
}

Test(stats, a_computing_worker_is_busy_an_idle_one_idle, .timeout = 60)
{
	snap = calloc(1, sizeof *snap);
	gx_config c;
	gx_config_init(&c);
	c.workers = 1;
	cr_assert_eq(gx_run(&c, util_main, NULL), 0);
	cr_expect(u_wall >= 250 * GX_MILLISECOND, "wall %lld", (long long)u_wall);
	cr_expect(u_idle < u_wall / 2, "idle %lld of %lld ns while computing", (long long)u_idle, (long long)u_wall);
	free(snap);
}

/* ---- coroutine dump ---- */

static gx_chan *d_ch;
static char d_out[65536];
static int d_rc;

static void parked_one(void *arg)
{
	(void)arg;
	int v;
	gx_chan_recv(d_ch, &v, NULL, GX_FOREVER);
}

static void read_memfd(int fd, char *buf, size_t cap)
{
	ssize_t n = pread(fd, buf, cap - 1, 0);
	buf[n > 0 ? n : 0] = 0;
}

static int dump_main(void *arg)
{
	(void)arg;
	gx_chan_make(&d_ch, sizeof(int), 0, 0);
	gx_go_opts o = {.stack_size = 0, .name = "parked-one"};
	gx_go_with(parked_one, NULL, &o);
	gx_yield(); /* let it park */
	int fd = memfd_create("dump", 0);
	d_rc = gx_coro_dump(fd);
	read_memfd(fd, d_out, sizeof d_out);
	close(fd);
	gx_chan_close(d_ch);
	gx_yield();
	gx_chan_free(d_ch);
	return 0;
}

Test(dump, a_parked_coroutine_shows_with_its_wait_reason_and_frames)
{
	gx_config c;
	gx_config_init(&c);
	cr_assert_eq(gx_run(&c, dump_main, NULL), 0);
	cr_expect(d_rc >= 2, "main and the parked one: %d", d_rc);
	cr_expect(strstr(d_out, "\"parked-one\" parked: chan receive\n  #0 0x") != NULL, "%s", d_out);
	cr_expect(strstr(d_out, "running") != NULL, "the dumping coroutine is running");
}

/* gx_dump_all and SIGQUIT: the main process and each worker dump to their
 * stderr (a memfd here, set before gx_run so the workers inherit it). */
static int all_n;

static int dump_all_main(void *arg)
{
	int by_signal = *(int *)arg;
	gx_chan_make(&d_ch, sizeof(int), 0, 0);
	gx_go_opts o = {.stack_size = 0, .name = "parked-one"};
	gx_go_with(parked_one, NULL, &o);
	gx_yield();
	if (by_signal)
		kill(getpid(), SIGQUIT);
	else
		all_n = gx_dump_all();
	gx_sleep(300 * GX_MILLISECOND); /* the workers' loops run */
	gx_chan_close(d_ch);
	gx_yield();
	gx_chan_free(d_ch);
	return 0;
}

static void run_dump_all(int by_signal)
{
	fflush(stderr);
	int fd = memfd_create("stderr", 0), saved = dup(2);
	fcntl(fd, F_SETFL, O_APPEND); /* several processes write */
	dup2(fd, 2);
	gx_config c;
	gx_config_init(&c);
	c.workers = 2;
	c.dump_signal = by_signal;
	int rc = gx_run(&c, dump_all_main, &by_signal);
	dup2(saved, 2);
	close(saved);
	read_memfd(fd, d_out, sizeof d_out);
	close(fd);
	cr_assert_eq(rc, 0);
	cr_expect(strstr(d_out, "gonex: main process dump") != NULL, "%s", d_out);
	cr_expect(strstr(d_out, "\"parked-one\" parked: chan receive") != NULL);
	cr_expect(strstr(d_out, "gonex: worker 0 dump") != NULL, "%s", d_out);
	cr_expect(strstr(d_out, "gonex: worker 1 dump") != NULL);
	/* a worker's loop coroutine waits for tasks */
	cr_expect(strstr(d_out, "parked: ") != NULL);
}

Test(dump, dump_all_reaches_every_process, .timeout = 60)
{
	run_dump_all(0);
	cr_expect_eq(all_n, 3, "three processes asked: %d", all_n);
}

Test(dump, sigquit_dumps_when_enabled, .timeout = 60)
{
	/* what was in force before comes back (a shell's background job
	 * starts with SIGQUIT ignored, a terminal's with the default) */
	void (*before)(int) = signal(SIGQUIT, SIG_DFL);
	signal(SIGQUIT, before);
	run_dump_all(1);
	cr_expect_eq(signal(SIGQUIT, before), before, "the disposition before gx_run comes back after it");
}

/* Ctrl-\ reaches the whole process group, the spawner included: with
 * dumps on, the runtime lives on. */
static int q_rc, q_workers;

static int ppid_of(int pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	int pp = -1;
	if (f) {
		if (fscanf(f, "%*d %*s %*c %d", &pp) != 1)
			pp = -1;
		fclose(f);
	}
	return pp;
}

static int quit_group_main(void *arg)
{
	(void)arg;
	int spawner = ppid_of(worker_info(0).pid);
	kill_pid(spawner, SIGQUIT);
	for (int i = 0; i < 2; i++)
		kill_pid(worker_info(i).pid, SIGQUIT);
	gx_sleep(200 * GX_MILLISECOND);
	gx_future f;
	uint32_t v = 1;
	q_rc = gx_go_parallel(&f, alpha, &v, 4, NULL);
	if (q_rc == 0)
		q_rc = gx_future_get(f, NULL, 0, NULL, gx_timeout(10 * GX_SECOND));
	q_workers = gx_workers();
	return 0;
}

Test(dump, sigquit_to_every_process_keeps_the_runtime, .timeout = 60)
{
	fflush(stderr);
	int fd = memfd_create("stderr", 0), saved = dup(2);
	dup2(fd, 2);
	gx_config c;
	gx_config_init(&c);
	c.workers = 2;
	c.dump_signal = 1;
	signal(SIGQUIT, SIG_DFL); /* as in a shell (the test runner may ignore it) */
	int rc = gx_run(&c, quit_group_main, NULL);
	dup2(saved, 2);
	close(saved);
	close(fd);
	cr_assert_eq(rc, 0);
	cr_expect_eq(q_rc, 0, "a task still runs: %d", q_rc);
	cr_expect_eq(q_workers, 2);
}
