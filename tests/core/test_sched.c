/* The scheduler: spawn, run order, yield, park/ready, exit, stack reuse, many coroutines. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/scenarios.h"

static gx_config small_cfg(void)
{
	gx_config c;
	gx_config_init(&c);
	c.stack_size = 16 * 1024;
	return c;
}

/* ---- basics ---- */

static int return_42(void *arg)
{
	(void)arg;
	return 42;
}

Test(sched, run_returns_main_result)
{
	cr_expect_eq(gx_run(NULL, return_42, NULL), 42);
	cr_expect_eq(gx_run(NULL, return_42, NULL), 42, "gx_run can run again");
}

Test(sched, calls_outside_run_are_refused)
{
	cr_expect_eq(gx_go(NULL, NULL), -EPERM);
	cr_expect_eq(gx_self(), 0);
	cr_expect_str_eq(gx_self_name(), "");
	cr_expect_eq(gx_exit(), -EPERM);
	cr_expect_eq(gx_sleep(1), -EPERM);
	gx_runtime_info info;
	cr_expect_eq(gx_info(&info), -EPERM);
	gx_yield(); /* a no-op, not a crash */
	cr_expect_eq(gx_run(NULL, NULL, NULL), -EINVAL);
}

static int nested(void *arg)
{
	(void)arg;
	return gx_run(NULL, return_42, NULL);
}

Test(sched, nested_run_is_busy)
{
	cr_expect_eq(gx_run(NULL, nested, NULL), -EBUSY);
}

static void nop(void *arg)
{
	(void)arg;
}

static int bad_spawns(void *arg)
{
	(void)arg;
	gx_go_opts small = {.stack_size = GX_STACK_MIN - 1};
	gx_go_opts huge = {.stack_size = GX_STACK_MAX + 1};
	cr_expect_eq(gx_go(NULL, NULL), -EINVAL);
	cr_expect_eq(gx_go_with(nop, NULL, &small), -EINVAL);
	cr_expect_eq(gx_go_with(nop, NULL, &huge), -EINVAL);
	return 0;
}

Test(sched, bad_spawn_arguments_are_refused)
{
	cr_expect_eq(gx_run(NULL, bad_spawns, NULL), 0);
}

/* ---- identity ---- */

static uint64_t seen_id;
static char seen_name[64];
static void record_self(void *arg)
{
	(void)arg;
	seen_id = gx_self();
	snprintf(seen_name, sizeof seen_name, "%s", gx_self_name());
}

static int identity(void *arg)
{
	(void)arg;
	cr_expect_str_eq(gx_self_name(), "main");
	uint64_t me = gx_self();
	cr_expect_geq(me, 1);
	gx_go_opts o = {.name = "a-rather-long-coroutine-name-that-will-be-cut"};
	int64_t id = gx_go_with(record_self, NULL, &o);
	cr_expect_gt(id, (int64_t)me);
	gx_yield();
	cr_expect_eq(seen_id, (uint64_t)id);
	cr_expect_eq(strlen(seen_name), GX_NAME_MAX);
	cr_expect(strncmp(seen_name, "a-rather-long", 13) == 0);
	return 0;
}

Test(sched, ids_and_names)
{
	cr_expect_eq(gx_run(NULL, identity, NULL), 0);
}

/* ---- order ---- */

static int order[16], norder;
static void push_order(void *arg)
{
	order[norder++] = (int)(intptr_t)arg;
}

static int spawn_order(void *arg)
{
	(void)arg;
	norder = 0;
	for (int i = 1; i <= 4; i++)
		gx_go(push_order, (void *)(intptr_t)i);
	cr_expect_eq(norder, 0, "spawning does not switch");
	gx_yield();
	/* Go's order: the newest is in run-next, the others queue FIFO */
	cr_expect_eq(norder, 4);
	int want[] = {4, 1, 2, 3};
	for (int i = 0; i < 4; i++)
		cr_expect_eq(order[i], want[i], "position %d", i);
	return 0;
}

Test(sched, new_coroutine_runs_next_then_queue_in_order)
{
	cr_expect_eq(gx_run(NULL, spawn_order, NULL), 0);
}

Test(sched, yield_round_robins)
{
	cr_expect_eq(gx_scn_yield(), 9);
	cr_expect_str_eq(gx_scn_trace, "bababa");
}

/* ---- park / ready ---- */

static gx_co *parked;
static int woke;
static void parker(void *arg)
{
	(void)arg;
	parked = gx_co_current();
	gx_park("test");
	woke = 1;
}

static int park_ready(void *arg)
{
	(void)arg;
	woke = 0;
	gx_go(parker, NULL);
	gx_yield();
	cr_expect_eq(parked->state, GX_CO_PARKED);
	cr_expect_str_eq(parked->wait_reason, "test");
	for (int i = 0; i < 3; i++)
		gx_yield();
	cr_expect_eq(woke, 0, "a parked coroutine stays parked");
	gx_ready(parked);
	gx_yield();
	cr_expect_eq(woke, 1);
	return 0;
}

Test(sched, park_until_ready)
{
	cr_expect_eq(gx_run(NULL, park_ready, NULL), 0);
}

static void park_forever(void *arg)
{
	(void)arg;
	gx_park("forever");
}

static int main_parks_forever(void *arg)
{
	(void)arg;
	gx_go(park_forever, NULL);
	gx_park("forever");
	return 0;
}

Test(sched, deadlock_is_reported)
{
	cr_expect_eq(gx_run(NULL, main_parks_forever, NULL), -EDEADLK);
}

static int abandon(void *arg)
{
	(void)arg;
	for (int i = 0; i < 100; i++)
		gx_go(park_forever, NULL);
	gx_yield();
	return 7;
}

Test(sched, coroutines_alive_at_main_return_are_abandoned)
{
	cr_expect_eq(gx_run(NULL, abandon, NULL), 7);
}

/* ---- exit ---- */

static int after_exit;
static void exits_early(void *arg)
{
	(void)arg;
	gx_exit();
	after_exit = 1;
}

static int exit_main(void *arg)
{
	(void)arg;
	after_exit = 0;
	gx_go(exits_early, NULL);
	gx_yield();
	cr_expect_eq(after_exit, 0);
	cr_expect_eq(gx_sched_alive(), 1);
	gx_exit();
	return 5;
}

Test(sched, exit_ends_the_coroutine)
{
	cr_expect_eq(gx_run(NULL, exit_main, NULL), 0, "main ended by gx_exit returns 0");
}

/* ---- many coroutines ---- */

static uint64_t counter;
static void bump_and_park(void *arg)
{
	(void)arg;
	counter++;
	gx_park("many");
	counter--;
}

#define ALIVE 100000
static int hundred_thousand(void *arg)
{
	(void)arg;
	counter = 0;
	for (int i = 0; i < ALIVE; i++)
		cr_assert_geq(gx_go(bump_and_park, NULL), 1);
	gx_yield();
	cr_expect_eq(counter, ALIVE);
	cr_expect_eq(gx_sched_alive(), ALIVE + 1);
	gx_stack_stats st;
	gx_stack_stats_get(&st);
	cr_expect_geq(st.in_use, ALIVE + 1);
	return 0;
}

Test(sched, hundred_thousand_alive_at_once, .timeout = 60)
{
	gx_config c = small_cfg();
	cr_expect_eq(gx_run(&c, hundred_thousand, NULL), 0);
}

static void count_once(void *arg)
{
	(void)arg;
	counter++;
}

static int million_in_sequence(void *arg)
{
	(void)arg;
	counter = 0;
	for (int batch = 0; batch < 1000; batch++) {
		for (int i = 0; i < 1000; i++)
			gx_go(count_once, NULL);
		gx_yield();
	}
	gx_yield();
	cr_expect_eq(counter, 1000000);
	gx_stack_stats st;
	gx_stack_stats_get(&st);
	cr_expect_leq(st.carved, 1002, "stacks are reused: %zu carved", st.carved);
	cr_expect_eq(st.in_use, 1);
	return 0;
}

Test(sched, million_spawned_in_sequence_reuse_stacks, .timeout = 60)
{
	gx_config c = small_cfg();
	cr_expect_eq(gx_run(&c, million_in_sequence, NULL), 0);
}

static void deep(void *arg)
{
	/* use most of a 256 KiB stack: the per-spawn size is honoured */
	volatile char buf[200 * 1024];
	buf[0] = 1;
	buf[sizeof buf - 1] = 1;
	*(int *)arg = buf[0] + buf[sizeof buf - 1];
}

static int per_spawn_size(void *arg)
{
	(void)arg;
	int r = 0;
	gx_go_opts o = {.stack_size = 256 * 1024, .name = "deep"};
	cr_assert_geq(gx_go_with(deep, &r, &o), 1);
	gx_yield();
	cr_expect_eq(r, 2);
	return 0;
}

Test(sched, per_spawn_stack_size)
{
	gx_config c = small_cfg();
	cr_expect_eq(gx_run(&c, per_spawn_size, NULL), 0);
}
