/* Worker processes as a user sees them: tasks sent to one worker start in the order they were sent, and each worker is named "gonex-worker N" in ps, top and ss. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <gonex/gonex.h>

#include "harness.h"

#define ORDER_N 12

typedef struct {
	_Atomic int blocked;
	_Atomic int next;          /* start tickets */
	_Atomic int order[ORDER_N]; /* task k started as the order[k]-th */
} shared;

static shared *S;

static void shared_init(void)
{
	S = shared_page(sizeof *S);
}

/* Blocks its whole worker (no yield) for a while: what main sends
 * meanwhile is queued, and taken together afterwards. */
static int t_block(const void *arg, size_t len, gx_task_result *res)
{
	(void)arg;
	(void)len;
	(void)res;
	atomic_store(&S->blocked, 1);
	struct timespec ts = {0, 200 * 1000 * 1000};
	nanosleep(&ts, NULL);
	return 0;
}

static int t_ticket(const void *arg, size_t len, gx_task_result *res)
{
	(void)len;
	(void)res;
	int k;
	memcpy(&k, arg, sizeof k);
	atomic_store(&S->order[k], atomic_fetch_add(&S->next, 1));
	gx_yield(); /* let the others start: their order is what counts */
	return 0;
}

static int order_main(void *arg)
{
	(void)arg;
	gx_par_opts o = GX_PAR_OPTS_INIT;
	o.worker = 0;
	gx_future b, f[ORDER_N];
	cr_assert_eq(gx_go_parallel(&b, t_block, NULL, 0, &o), 0);
	while (!atomic_load(&S->blocked))
		gx_sleep(GX_MILLISECOND);
	for (int k = 0; k < ORDER_N; k++)
		cr_assert_eq(gx_go_parallel(&f[k], t_ticket, &k, sizeof k, &o), 0);
	cr_expect_eq(gx_future_get(b, NULL, 0, NULL, gx_timeout(10 * GX_SECOND)), 0);
	for (int k = 0; k < ORDER_N; k++)
		cr_expect_eq(gx_future_get(f[k], NULL, 0, NULL, gx_timeout(10 * GX_SECOND)), 0);
	return 0;
}

Test(workers, tasks_sent_to_one_worker_start_in_the_order_they_were_sent, .timeout = 60)
{
	shared_init();
	gx_config c;
	gx_config_init(&c);
	c.workers = 1;
	cr_assert_eq(gx_run(&c, order_main, NULL), 0);
	char got[ORDER_N * 4 + 1] = "";
	for (int k = 0; k < ORDER_N; k++)
		snprintf(got + strlen(got), sizeof got - strlen(got), "%d ", atomic_load(&S->order[k]));
	for (int k = 0; k < ORDER_N; k++)
		cr_expect_eq(atomic_load(&S->order[k]), k, "start order by task: %s", got);
}

static char names[2][32];

static void comm_of(int pid, char *buf, size_t cap)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/comm", pid);
	FILE *f = fopen(path, "re");
	buf[0] = 0;
	if (f) {
		if (fgets(buf, (int)cap, f))
			buf[strcspn(buf, "\n")] = 0;
		fclose(f);
	}
}

static int names_main(void *arg)
{
	(void)arg;
	for (int i = 0; i < 2; i++) {
		gx_stats_worker w = worker_info(i);
		cr_assert_gt(w.pid, 0, "worker %d's pid", i);
		comm_of(w.pid, names[i], sizeof names[i]);
	}
	return 0;
}

Test(workers, each_worker_is_named_gonex_worker_n, .timeout = 60)
{
	gx_config c = workers_config(2);
	cr_assert_eq(gx_run(&c, names_main, NULL), 0);
	cr_expect_str_eq(names[0], "gonex-worker 0");
	cr_expect_str_eq(names[1], "gonex-worker 1");
}
