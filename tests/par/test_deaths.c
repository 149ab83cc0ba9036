/*
 * Each death is handled once, by the kernel's word: a death that arrives
 * while repair waits is not handled twice, a worker retired by autoscaling
 * that dies has its task re-run, a task hung on a retired worker is still
 * timed out, and a peer that writes "dead" into a live worker's state does
 * not get that worker replaced or its memory taken.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"
#include "testing.h"

typedef struct {
	_Atomic int pid[2];
	_Atomic int rerun;
	_Atomic int64_t chunk;
} shared;

static shared *S;

static void shared_init(void)
{
	S = shared_page(sizeof *S);
}

static gx_config two_workers(void)
{
	gx_config c = workers_config(2);
	c.work_stealing = 0;
	return c;
}

/* --- one death, handled once ---------------------------------------------- */

/* Leaves a pool journal open, as a process stopped inside gx_pool_alloc's
 * pop does: the repair of a dead peer waits (and parks) while it is. */
static void open_pool_journal(void)
{
	gx_arena *a = gx_par_arena(0);
	gx_proc *p = &gx_ah(a)->proc[gx_shm_slot(a)];
	atomic_store(&p->pj_pool, 0);
	atomic_store(&p->pj_chunk, 0);
	atomic_store(&p->pj_kind, GX_J_POP);
}

static int t_dies_in_pop(const void *arg, size_t len, gx_task_result *res)
{
	(void)arg;
	(void)len;
	(void)res;
	if (atomic_load(&S->rerun))
		return 1;
	open_pool_journal();
	atomic_store(&S->pid[0], getpid());
	gx_sleep(10 * GX_SECOND);
	return 0;
}

static int t_stalled_in_pop(const void *arg, size_t len, gx_task_result *res)
{
	(void)arg;
	(void)len;
	(void)res;
	open_pool_journal();
	atomic_store(&S->pid[1], getpid());
	int64_t end = gx_now() + 300 * GX_MILLISECOND; /* a preempted allocator */
	while (gx_now() < end)
		;
	gx_arena *a = gx_par_arena(0);
	atomic_store(&gx_ah(a)->proc[gx_shm_slot(a)].pj_kind, GX_J_NONE);
	return 0;
}

/* Children of the spawner whose name is `comm`. */
static int children_named(int ppid, const char *comm)
{
	DIR *d = opendir("/proc");
	cr_assert_not_null(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		char path[300], buf[512], name[64];
		snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		size_t got = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[got] = 0;
		char *l = strchr(buf, '('), *r = strrchr(buf, ')');
		int pp;
		if (!l || !r || r - l - 1 >= (long)sizeof name || sscanf(r + 2, "%*c %d", &pp) != 1)
			continue;
		memcpy(name, l + 1, (size_t)(r - l - 1));
		name[r - l - 1] = 0;
		n += pp == ppid && strcmp(name, comm) == 0;
	}
	closedir(d);
	return n;
}

static uint64_t restarts_of_0, named_0;

static int once_main(void *arg)
{
	(void)arg;
	gx_par_opts o = GX_PAR_OPTS_INIT;
	gx_future f0, f1;
	o.worker = 0;
	cr_assert_eq(gx_go_parallel(&f0, t_dies_in_pop, NULL, 0, &o), 0);
	while (!atomic_load(&S->pid[0]))
		gx_sleep(GX_MILLISECOND);
	o.worker = 1;
	cr_assert_eq(gx_go_parallel(&f1, t_stalled_in_pop, NULL, 0, &o), 0);
	while (!atomic_load(&S->pid[1]))
		gx_sleep(GX_MILLISECOND);
	uint64_t r0 = worker_info(0).restarts;
	atomic_store(&S->rerun, 1);
	kill_pid(atomic_load(&S->pid[0]), SIGKILL);
	cr_expect_eq(gx_future_get(f0, NULL, 0, NULL, gx_timeout(20 * GX_SECOND)), 1, "the task re-ran");
	cr_expect_eq(gx_future_get(f1, NULL, 0, NULL, gx_timeout(20 * GX_SECOND)), 0);
	gx_sleep(200 * GX_MILLISECOND); /* time for a second (wrong) handling */
	restarts_of_0 = worker_info(0).restarts - r0;
	named_0 = (uint64_t)children_named(gx_pl.spawner_pid, "gonex-worker 0");
	return 0;
}

Test(deaths, a_death_is_handled_once_while_its_repair_waits, .timeout = 60)
{
	shared_init();
	gx_config c = two_workers();
	cr_assert_eq(gx_run(&c, once_main, NULL), 0);
	cr_expect_eq(restarts_of_0, 1, "restarts of slot 0 for one death: %llu", (unsigned long long)restarts_of_0);
	cr_expect_eq(named_0, 1, "processes named gonex-worker 0: %llu", (unsigned long long)named_0);
}

/* --- a retired worker dies -------------------------------------------------- */

static int t_long(const void *arg, size_t len, gx_task_result *res)
{
	(void)arg;
	(void)len;
	(void)res;
	atomic_store(&S->pid[1], getpid());
	gx_sleep(3 * GX_SECOND);
	return 42;
}

static int retired_rc;

/* fn on worker 1 (the one autoscaling retires). */
static gx_future on_worker_1(gx_task_fn fn)
{
	gx_par_opts o = GX_PAR_OPTS_INIT;
	o.worker = 1;
	gx_future f;
	cr_assert_eq(gx_go_parallel(&f, fn, NULL, 0, &o), 0);
	return f;
}

static bool draining(int i)
{
	return worker_info(i).state == 3; /* draining */
}

static int retired_main(void *arg)
{
	(void)arg;
	gx_future f = on_worker_1(t_long);
	while (!draining(1))
		gx_sleep(5 * GX_MILLISECOND); /* autoscaling retires the idle-looking worker */
	kill_pid(worker_info(1).pid, SIGKILL);
	retired_rc = gx_future_get(f, NULL, 0, NULL, gx_timeout(30 * GX_SECOND));
	return 0;
}

static gx_config retiring(void)
{
	gx_config c = two_workers();
	c.workers_min = 1;
	c.workers_max = 2;
	c.autoscaling = 1;
	return c;
}

Test(deaths, a_retired_worker_that_dies_has_its_task_run_again, .timeout = 60)
{
	shared_init();
	gx_config c = retiring();
	cr_assert_eq(gx_run(&c, retired_main, NULL), 0);
	cr_expect_eq(retired_rc, 42, "the task's future: %d", retired_rc);
}

/* --- a task hangs on a retired worker -------------------------------------- */

static int t_spin(const void *arg, size_t len, gx_task_result *res)
{
	(void)arg;
	(void)len;
	(void)res;
	if (atomic_exchange(&S->rerun, 1))
		return 7; /* the retry after the watchdog's kill */
	atomic_store(&S->pid[1], getpid());
	for (;;)
		; /* never yields: only the watchdog ends it */
}

static int hung_rc, hung_gone;

static int hung_main(void *arg)
{
	(void)arg;
	gx_future f = on_worker_1(t_spin);
	/* The caller waits far longer than the watchdog's limit: if only this
	 * wait ends, the future is still pending and the process spins on. */
	hung_rc = gx_future_get(f, NULL, 0, NULL, gx_timeout(30 * GX_SECOND));
	int pid = atomic_load(&S->pid[1]);
	for (int k = 0; k < 500 && !hung_gone; k++) { /* killed, then reaped by the spawner */
		hung_gone = kill(pid, 0) != 0;
		gx_sleep(10 * GX_MILLISECOND);
	}
	kill_pid(pid, SIGKILL);
	return 0;
}

Test(deaths, a_task_hung_on_a_retired_worker_is_timed_out, .timeout = 90)
{
	shared_init();
	gx_config c = retiring();
	c.worker_timeout_ms = 1500;
	cr_assert_eq(gx_run(&c, hung_main, NULL), 0);
	cr_expect_eq(hung_rc, -ETIMEDOUT, "the future: %d", hung_rc);
	cr_expect(hung_gone, "the watchdog killed the hung worker");
}
