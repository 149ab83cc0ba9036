/* Kill points and races in the parallel runtime, each made to happen at one chosen place every time (a seccomp filter at a FUTEX_WAKE, a test point, a worker stopped in a task): every future resolves, no wait outlasts what it waited for, no place of a channel is lost. */
/*
 * How: tasks run in worker processes and report through their codes and
 * the page S (MAP_SHARED, made before gx_run). A kill point is armed in S
 * and fires once (atomic exchange), so the replacement worker, forked from
 * the same image, does not die again. Tests that need test points
 * (-Dtest_points=true, tests/run.sh's builds) skip without them.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "testing.h"

#include "../common/killpoint.h"
#include "harness.h"

typedef struct {
	_Atomic int armed;       /* a kill point fires once */
	_Atomic int seccomp_bad; /* the filter could not be installed */
	_Atomic int ran[16];     /* batch-mates that ran */
	_Atomic int started;
	char point[64];          /* the test point that kills a worker */
} shared;

static shared *S;

static void shared_init(void)
{
	S = shared_page(sizeof *S);
}

static gx_config config(int workers)
{
	gx_config c;
	gx_config_init(&c);
	c.workers = workers;
	return c;
}

static void run(const gx_config *c, gx_main_fn fn, void *arg)
{
	int rc = gx_run(c, fn, arg);
	cr_assert_eq(rc, 0, "gx_run returned %d (%s)", rc, strerror(-rc));
}

/* Arm the seccomp kill at this worker's next shared FUTEX_WAKE, once. */
static void die_at_next_wake(void)
{
	if (atomic_exchange(&S->armed, 0) && kp_kill_at_futex_wake() < 0)
		atomic_store(&S->seccomp_bad, 1);
}

static void nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

/* ---- lost wake-ups in the parallel layer ---- */

static int t_late_answer(const void *arg, size_t len, gx_task_result *res)
{
	(void)arg;
	(void)len;
	(void)res;
	gx_sleep(100 * GX_MILLISECOND); /* the main process is asleep by now */
	die_at_next_wake();             /* ... at the wake of its future */
	return 7;
}

static int fw_rc;

static int future_wake_main(void *arg)
{
	(void)arg;
	gx_future f;
	cr_assert_eq(gx_go_parallel(&f, t_late_answer, NULL, 0, NULL), 0);
	fw_rc = gx_future_get(f, NULL, 0, NULL, GX_FOREVER);
	return 0;
}

Test(killpoint, a_future_waited_forever_is_answered_though_its_worker_died_before_the_wake, .timeout = 60)
{
	shared_init();
	atomic_store(&S->armed, 1);
	gx_config c = config(1);
	run(&c, future_wake_main, NULL);
	if (atomic_load(&S->seccomp_bad))
		cr_skip_test("seccomp filters are not allowed here");
	cr_expect_eq(atomic_load(&S->armed), 0, "the kill point was reached");
	cr_expect_eq(fw_rc, 7, "the future's answer, written before the worker died: %d", fw_rc);
}

static int t_take_one(const void *arg, size_t len, gx_task_result *res)
{
	(void)len;
	(void)res;
	gx_chan *ch;
	memcpy(&ch, arg, sizeof ch);
	gx_sleep(100 * GX_MILLISECOND); /* the sender is asleep on the full channel */
	die_at_next_wake();             /* ... at the wake of the sender */
	int v;
	return gx_chan_recv(ch, &v, NULL, gx_timeout(10 * GX_SECOND));
}

static int cw_rc = 1;

static int chan_wake_main(void *arg)
{
	(void)arg;
	gx_chan *ch;
	cr_assert_eq(gx_chan_make(&ch, sizeof(int), 2, GX_CHAN_DISTRIBUTED), 0);
	int v = 1;
	cr_assert_eq(gx_chan_send(ch, &v, GX_FOREVER), 0);
	cr_assert_eq(gx_chan_send(ch, &v, GX_FOREVER), 0);
	gx_future f;
	cr_assert_eq(gx_go_parallel(&f, t_take_one, &ch, sizeof ch, NULL), 0);
	v = 3;
	cw_rc = gx_chan_send(ch, &v, GX_FOREVER); /* full: sleeps until the taker's wake */
	gx_future_free(f);
	return 0;
}

Test(killpoint, a_channel_send_waited_forever_goes_through_though_the_receiver_died_before_the_wake, .timeout = 60)
{
	shared_init();
	atomic_store(&S->armed, 1);
	gx_config c = config(1);
	run(&c, chan_wake_main, NULL);
	if (atomic_load(&S->seccomp_bad))
		cr_skip_test("seccomp filters are not allowed here");
	cr_expect_eq(atomic_load(&S->armed), 0, "the kill point was reached");
	cr_expect_eq(cw_rc, 0, "the send, once the dead receiver was repaired: %d", cw_rc);
}

/* ---- shutdown ---- */

static int sd_main(void *arg)
{
	(void)arg;
	gx_stats_worker w = worker_info(0);
	cr_assert_gt(w.pid, 0);
	cr_assert_eq(kill_pid(w.pid, SIGKILL), 0);
	/* wait for the spawner to reap it without letting any coroutine of
	 * ours run (nanosleep blocks the whole process): main_fn returns
	 * before the runtime has looked at the death */
	for (int i = 0; i < 5000 && kill(w.pid, 0) == 0; i++)
		nap_ms(1);
	cr_assert_neq(kill(w.pid, 0), 0, "the killed worker was reaped");
	return 0;
}

Test(killpoint, gx_run_returns_at_once_when_a_worker_died_just_before_main_returned, .timeout = 25)
{
	shared_init();
	gx_config c = config(2);
	int64_t t0 = gx_now();
	run(&c, sd_main, NULL);
	int64_t took = gx_now() - t0;
	/* a hang bound, not a timing: the stop's own limit is 30 s */
	cr_expect_lt(took, 15 * GX_SECOND, "gx_run took %lld ms to stop", (long long)(took / GX_MILLISECOND));
}

/* ---- a hung task's batch-mates ---- */

static int t_block(const void *arg, size_t len, gx_task_result *res)
{
	(void)arg;
	(void)len;
	(void)res;
	atomic_store(&S->started, 1);
	nap_ms(300); /* the whole worker: what main queues meanwhile is taken in one batch */
	return 0;
}

static int t_hang(const void *arg, size_t len, gx_task_result *res)
{
	(void)arg;
	(void)len;
	(void)res;
	for (;;)
		nap_ms(1000); /* hangs its worker for good (no yield) */
	return 0;
}

static int t_mate(const void *arg, size_t len, gx_task_result *res)
{
	(void)len;
	(void)res;
	int k;
	memcpy(&k, arg, sizeof k);
	atomic_fetch_add(&S->ran[k], 1);
	return 100 + k;
}

#define MATES 8
static int mate_rc[MATES], hang_rc;

static int mates_main(void *arg)
{
	(void)arg;
	gx_par_opts o = GX_PAR_OPTS_INIT;
	o.worker = 0;
	gx_future b, h, m[MATES];
	cr_assert_eq(gx_go_parallel(&b, t_block, NULL, 0, &o), 0);
	while (!atomic_load(&S->started))
		gx_sleep(GX_MILLISECOND);
	cr_assert_eq(gx_go_parallel(&h, t_hang, NULL, 0, &o), 0);
	for (int k = 0; k < MATES; k++)
		cr_assert_eq(gx_go_parallel(&m[k], t_mate, &k, sizeof k, &o), 0);
	cr_expect_eq(gx_future_get(b, NULL, 0, NULL, gx_timeout(20 * GX_SECOND)), 0);
	hang_rc = gx_future_get(h, NULL, 0, NULL, gx_timeout(20 * GX_SECOND));
	for (int k = 0; k < MATES; k++)
		mate_rc[k] = gx_future_get(m[k], NULL, 0, NULL, gx_timeout(20 * GX_SECOND));
	return 0;
}

Test(killpoint, the_tasks_taken_with_a_task_that_hangs_run_again, .timeout = 90)
{
	shared_init();
	gx_config c = config(1);
	c.worker_timeout_ms = 500;
	c.work_stealing = 0;
	run(&c, mates_main, NULL);
	cr_expect_eq(hang_rc, -ETIMEDOUT, "the hung task: %d", hang_rc);
	for (int k = 0; k < MATES; k++) {
		cr_expect_eq(mate_rc[k], 100 + k, "batch-mate %d: %d (ran %d times)", k, mate_rc[k],
			     atomic_load(&S->ran[k]));
		cr_expect_eq(atomic_load(&S->ran[k]), 1, "batch-mate %d ran once", k);
	}
}

/* ---- races in the future table (test points) ---- */

#if GX_TEST_POINTS
static gx_future race_f;

/* The late completer arrives right after the free claimed a DONE future. */
static void late_completer(const char *name, void *arg)
{
	(void)arg;
	if (strcmp(name, "fut.free.claimed") == 0 && race_f.h) {
		uint64_t fh = race_f.h;
		race_f.h = 0;
		gx_fut_complete(fh, -ETIMEDOUT, NULL, 0);
	}
}
#endif

__attribute__((unused)) /* only with test points */
static int t_quick(const void *arg, size_t len, gx_task_result *res)
{
	(void)arg;
	(void)len;
	(void)res;
	return 5;
}

#if GX_TEST_POINTS
/* A slot that went back to the free list once: two new futures get two
 * slots (a slot listed twice would give both the same one). */
static void expect_slot_back_once(void)
{
	gx_future a, b;
	cr_assert_eq(gx_go_parallel(&a, t_quick, NULL, 0, NULL), 0);
	cr_assert_eq(gx_go_parallel(&b, t_quick, NULL, 0, NULL), 0);
	cr_expect_neq((uint32_t)a.h, (uint32_t)b.h, "two live futures share slot %u", (uint32_t)a.h);
	cr_expect_eq(gx_future_get(a, NULL, 0, NULL, gx_timeout(10 * GX_SECOND)), 5);
	cr_expect_eq(gx_future_get(b, NULL, 0, NULL, gx_timeout(10 * GX_SECOND)), 5);
}
#endif

static int free_race_main(void *arg)
{
	(void)arg;
#if GX_TEST_POINTS
	gx_future f;
	cr_assert_eq(gx_go_parallel(&f, t_quick, NULL, 0, NULL), 0);
	cr_assert_eq(gx_future_wait(f, NULL, 0, NULL, gx_timeout(10 * GX_SECOND)), 5);
	race_f = f;
	gx_test_point_fn = late_completer;
	cr_expect_eq(gx_future_free(f), 0);
	gx_test_point_fn = NULL;
	cr_expect_eq(race_f.h, 0, "the late completion ran inside the free");
	expect_slot_back_once();
#endif
	return 0;
}

Test(killpoint, a_late_completion_of_a_freed_done_future_releases_nothing, .timeout = 30)
{
#if !GX_TEST_POINTS
	cr_skip_test("built without -Dtest_points=true");
#endif
	gx_config c = config(0);
	run(&c, free_race_main, NULL);
}

/* ---- the watchdog and a reused entry of the running table ---- */

#if GX_TEST_POINTS
static gx_future entry_f2;

/* Between the watchdog's copy of an entry and its claim, the worker
 * finishes that task and starts another in the same entry. */
static void reuse_entry(const char *name, void *arg)
{
	if (strcmp(name, "watchdog.copied") != 0 || !entry_f2.h)
		return;
	int e = *(int *)arg;
	gx_runtab *rt = gx_runtab_of(0);
	uint64_t gen = GX_RT_GEN(atomic_load(&rt->tag[e])) + 1;
	rt->rec[e].fut = entry_f2.h;
	atomic_store(&rt->tag[e], GX_RT_TAG(gen, GX_RT_RUNNING));
	entry_f2.h = 0;
}
#endif

static int entry_main(void *arg)
{
	(void)arg;
#if GX_TEST_POINTS
	/* two futures of tasks that will never run (queued nowhere): the
	 * old one, whose entry looks past its time, and the new one */
	uint32_t i1, i2;
	uint64_t f1, f2;
	cr_assert_eq(gx_fut_alloc(&i1, &f1), 0);
	cr_assert_eq(gx_fut_alloc(&i2, &f2), 0);
	gx_runtab *rt = gx_runtab_of(0);
	int e = GX_RUN_MAX - 1; /* an entry the idle worker 0 does not use */
	memset(&rt->rec[e], 0, sizeof rt->rec[e]);
	rt->rec[e].fut = f1;
	atomic_store(&rt->start[e], gx_now() - 10 * GX_SECOND);
	atomic_store(&rt->tag[e], GX_RT_TAG(7, GX_RT_RUNNING));
	entry_f2 = (gx_future){f2};
	gx_test_point_fn = reuse_entry;
	gx_check_timeouts(0, gx_now(), GX_SECOND);
	gx_test_point_fn = NULL;
	cr_expect_eq(entry_f2.h, 0, "the worker reused the entry in between");
	cr_expect(gx_fut_pending(f2), "the new task's future is not failed for the old one");
	cr_expect(gx_fut_pending(f1), "nor is the old one: its entry changed under the copy");
	/* the next look sees the new task for what it is (still past the
	 * limit here: its start was not reset), and answers it */
	gx_check_timeouts(0, gx_now(), GX_SECOND);
	cr_expect(!gx_fut_pending(f2), "the new task, past the limit, is timed out on the next look");
	atomic_store(&rt->tag[e], GX_RT_TAG(9, GX_RT_FREE));
	gx_future_free((gx_future){f1});
	gx_future_free((gx_future){f2});
#endif
	return 0;
}

Test(killpoint, the_watchdog_never_times_out_a_task_for_the_one_before_it_in_the_entry, .timeout = 30)
{
#if !GX_TEST_POINTS
	cr_skip_test("built without -Dtest_points=true");
#endif
	gx_config c = config(1);
	run(&c, entry_main, NULL);
}

/* ---- distributed channels: receivers killed at chosen points ---- */

#if GX_TEST_POINTS
/* In a worker, at the armed point: die there. */
static void kill_here(const char *name, void *arg)
{
	(void)arg;
	if (gx_worker_id() >= 0 && strcmp(name, S->point) == 0 && atomic_exchange(&S->armed, 0))
		raise(SIGKILL);
}
#endif

static int t_recv_forever(const void *arg, size_t len, gx_task_result *res)
{
	(void)len;
	(void)res;
	gx_chan *ch;
	memcpy(&ch, arg, sizeof ch);
	int v = 0;
	int rc = gx_chan_recv(ch, &v, NULL, gx_timeout(20 * GX_SECOND));
	return rc < 0 ? rc : v;
}

/* Wait until worker 0 died once and its replacement takes tasks. */
static void wait_replaced(void)
{
	for (int t = 0; t < 2000; t++) {
		gx_stats_worker w = worker_info(0);
		if (w.restarts >= 1 && worker_active(&w))
			return;
		gx_sleep(5 * GX_MILLISECOND);
	}
	cr_assert_fail("worker 0 was not replaced");
}

static int phantom_rc, phantom_later;

__attribute__((unused)) /* only with test points */
static int phantom_main(void *arg)
{
	(void)arg;
	gx_chan *ch;
	cr_assert_eq(gx_chan_make(&ch, sizeof(int), 0, GX_CHAN_DISTRIBUTED), 0);
	gx_future f;
	cr_assert_eq(gx_go_parallel(&f, t_recv_forever, &ch, sizeof ch, NULL), 0);
	wait_replaced(); /* killed while blocked in gx_chan_recv */
	gx_sleep(50 * GX_MILLISECOND);
	int v = 9;
	/* nobody waits now: a try send on a rendezvous must not succeed */
	phantom_rc = gx_chan_try_send(ch, &v);
	/* and the channel still works: a new receiver gets a value */
	gx_future g;
	cr_assert_eq(gx_go_parallel(&g, t_recv_forever, &ch, sizeof ch, NULL), 0);
	v = 11;
	cr_expect_eq(gx_chan_send(ch, &v, gx_timeout(10 * GX_SECOND)), 0);
	phantom_later = gx_future_get(g, NULL, 0, NULL, gx_timeout(10 * GX_SECOND));
	gx_future_free(f);
	gx_chan_close(ch);
	return 0;
}

Test(killpoint, a_receiver_killed_while_blocked_leaves_no_phantom_receiver, .timeout = 60)
{
#if !GX_TEST_POINTS
	cr_skip_test("built without -Dtest_points=true");
#else
	shared_init();
	snprintf(S->point, sizeof S->point, "dchan.recv.wait");
	atomic_store(&S->armed, 1);
	gx_test_point_fn = kill_here;
	gx_config c = config(1);
	c.retry_attempts = 0; /* the killed receiver's task is not run again */
	run(&c, phantom_main, NULL);
	gx_test_point_fn = NULL;
	cr_expect_eq(atomic_load(&S->armed), 0, "the receiver was killed in its wait");
	cr_expect_eq(phantom_rc, -EAGAIN, "a try send with no receiver: %d", phantom_rc);
	cr_expect_eq(phantom_later, 11, "a new receiver got the next value: %d", phantom_later);
#endif
}

static size_t place_cap;
static int place_sent, place_rc;

__attribute__((unused)) /* only with test points */
static int place_main(void *arg)
{
	(void)arg;
	gx_chan *ch;
	cr_assert_eq(gx_chan_make(&ch, sizeof(int), place_cap, GX_CHAN_DISTRIBUTED), 0);
	gx_future f;
	cr_assert_eq(gx_go_parallel(&f, t_recv_forever, &ch, sizeof ch, NULL), 0);
	int v = 5;
	/* the receiver takes it and dies holding it (before it returns) */
	place_rc = gx_chan_send(ch, &v, gx_timeout(20 * GX_SECOND));
	wait_replaced();
	gx_future_free(f);
	/* every place is there: cap values go in without a receiver */
	place_sent = 0;
	while (gx_chan_try_send(ch, &v) == 0 && place_sent <= (int)place_cap + 1)
		place_sent++;
	gx_chan_close(ch);
	return 0;
}

static void place_case(size_t cap)
{
#if !GX_TEST_POINTS
	(void)cap;
	cr_skip_test("built without -Dtest_points=true");
#else
	shared_init();
	snprintf(S->point, sizeof S->point, "dchan.recv.took");
	atomic_store(&S->armed, 1);
	gx_test_point_fn = kill_here;
	place_cap = cap;
	gx_config c = config(1);
	c.retry_attempts = 0; /* the killed receiver's task is not run again */
	run(&c, place_main, NULL);
	gx_test_point_fn = NULL;
	cr_expect_eq(atomic_load(&S->armed), 0, "the receiver was killed holding the value");
	cr_expect_eq(place_rc, 0, "the send whose value was taken: %d", place_rc);
	cr_expect_eq(place_sent, (int)cap, "try sends that went in after repair: %d of capacity %zu", place_sent, cap);
#endif
}

Test(killpoint, a_receiver_killed_holding_a_value_gives_its_place_back_cap_100, .timeout = 60)
{
	place_case(100);
}

Test(killpoint, a_receiver_killed_holding_a_value_gives_its_place_back_cap_1, .timeout = 60)
{
	place_case(1);
}

Test(killpoint, a_rendezvous_whose_receiver_died_holding_the_value_is_not_stuck, .timeout = 60)
{
	place_case(0);
}

/* ---- distributed channels: senders killed, receivers stalled ---- */

/* Set in a worker only while its task is in the channel call the test
 * aims at: a point of the ring fires for the runtime's own rings too. */
static _Atomic int in_call;

#if GX_TEST_POINTS
/* In a worker, in the aimed call, at the armed point: die there. */
static void kill_in_call(const char *name, void *arg)
{
	(void)arg;
	if (gx_worker_id() >= 0 && atomic_load(&in_call) && strcmp(name, S->point) == 0 &&
	    atomic_exchange(&S->armed, 0))
		raise(SIGKILL);
}

/* In a worker, in the aimed call, at the armed point: stop there 300 ms
 * (the whole process: no other coroutine of it runs meanwhile). */
static void stall_in_call(const char *name, void *arg)
{
	(void)arg;
	if (gx_worker_id() >= 0 && atomic_load(&in_call) && strcmp(name, S->point) == 0 &&
	    atomic_exchange(&S->armed, 0)) {
		atomic_store(&S->started, 1);
		nap_ms(300);
	}
}
#endif

static int t_send_one(const void *arg, size_t len, gx_task_result *res)
{
	(void)len;
	(void)res;
	gx_chan *ch;
	memcpy(&ch, arg, sizeof ch);
	int v = 1;
	atomic_store(&in_call, 1);
	int rc = gx_chan_send(ch, &v, gx_timeout(20 * GX_SECOND));
	atomic_store(&in_call, 0);
	return rc;
}

static int t_recv_aimed(const void *arg, size_t len, gx_task_result *res)
{
	(void)len;
	(void)res;
	gx_chan *ch;
	memcpy(&ch, arg, sizeof ch);
	int v = 0;
	atomic_store(&in_call, 1);
	int rc = gx_chan_recv(ch, &v, NULL, gx_timeout(20 * GX_SECOND));
	atomic_store(&in_call, 0);
	return rc < 0 ? rc : v;
}

static size_t claimed_cap;
static int claimed_sent, claimed_order, claimed_rdv, claimed_got;

__attribute__((unused)) /* only with test points */
static int claimed_main(void *arg)
{
	(void)arg;
	gx_chan *ch;
	cr_assert_eq(gx_chan_make(&ch, sizeof(int), claimed_cap, GX_CHAN_DISTRIBUTED), 0);
	gx_future f;
	cr_assert_eq(gx_go_parallel(&f, t_send_one, &ch, sizeof ch, NULL), 0);
	wait_replaced(); /* killed with a slot claimed and nothing in it */
	gx_future_free(f);
	if (claimed_cap) {
		/* every place is there: cap values go in without a receiver */
		claimed_sent = 0;
		int v = 100;
		while (claimed_sent <= (int)claimed_cap + 1 && gx_chan_try_send(ch, &v) == 0) {
			claimed_sent++;
			v++;
		}
		/* and come out in order, the dead claim passed over */
		claimed_order = 1;
		for (int i = 0; i < claimed_sent; i++) {
			bool ok = false;
			int got = -1;
			if (gx_chan_recv(ch, &got, &ok, gx_timeout(5 * GX_SECOND)) < 0 || !ok || got != 100 + i)
				claimed_order = 0;
		}
	}
	/* a rendezvous (or a send into the emptied buffer) goes through */
	gx_future g;
	cr_assert_eq(gx_go_parallel(&g, t_recv_forever, &ch, sizeof ch, NULL), 0);
	int v = 11;
	claimed_rdv = gx_chan_send(ch, &v, gx_timeout(10 * GX_SECOND));
	claimed_got = gx_future_get(g, NULL, 0, NULL, gx_timeout(10 * GX_SECOND));
	gx_chan_close(ch);
	return 0;
}

static void claimed_case(size_t cap)
{
#if !GX_TEST_POINTS
	(void)cap;
	cr_skip_test("built without -Dtest_points=true");
#else
	shared_init();
	snprintf(S->point, sizeof S->point, "ring.send.claimed");
	atomic_store(&S->armed, 1);
	gx_test_point_fn = kill_in_call;
	claimed_cap = cap;
	gx_config c = config(1);
	c.retry_attempts = 0; /* the killed sender's task is not run again */
	run(&c, claimed_main, NULL);
	gx_test_point_fn = NULL;
	cr_expect_eq(atomic_load(&S->armed), 0, "the sender was killed with its slot claimed");
	if (cap) {
		cr_expect_eq(claimed_sent, (int)cap, "try sends that went in after repair: %d of capacity %zu",
			     claimed_sent, cap);
		cr_expect(claimed_order, "the values came out in order");
	}
	cr_expect_eq(claimed_rdv, 0, "a send after repair: %d", claimed_rdv);
	cr_expect_eq(claimed_got, 11, "its receiver got: %d", claimed_got);
#endif
}

Test(killpoint, a_sender_killed_between_claim_and_publish_loses_no_place_cap_0, .timeout = 60)
{
	claimed_case(0);
}

Test(killpoint, a_sender_killed_between_claim_and_publish_loses_no_place_cap_1, .timeout = 60)
{
	claimed_case(1);
}

Test(killpoint, a_sender_killed_between_claim_and_publish_loses_no_place_cap_3, .timeout = 60)
{
	claimed_case(3);
}

Test(killpoint, a_sender_killed_between_claim_and_publish_loses_no_place_cap_4, .timeout = 60)
{
	claimed_case(4);
}

static int closed_rc, closed_ok = -1;

__attribute__((unused)) /* only with test points */
static int closed_claim_main(void *arg)
{
	(void)arg;
	gx_chan *ch;
	cr_assert_eq(gx_chan_make(&ch, sizeof(int), 1, GX_CHAN_DISTRIBUTED), 0);
	gx_future f;
	cr_assert_eq(gx_go_parallel(&f, t_send_one, &ch, sizeof ch, NULL), 0);
	/* wait for the kill without yielding: the supervisor (a coroutine
	 * of this process) has not repaired the dead claim yet */
	for (int i = 0; i < 20000 && atomic_load(&S->armed); i++)
		nap_ms(1);
	nap_ms(20); /* dead for sure, not only signalled */
	gx_chan_close(ch);
	/* closed, with a claim that will never be published: the receive
	 * must let the repair run, then see the channel closed and empty */
	int v = -1;
	bool ok = true;
	closed_rc = gx_chan_recv(ch, &v, &ok, gx_timeout(10 * GX_SECOND));
	closed_ok = ok;
	gx_future_free(f);
	return 0;
}

Test(killpoint, a_receive_on_a_closed_channel_waits_out_a_dead_senders_claim, .timeout = 60)
{
#if !GX_TEST_POINTS
	cr_skip_test("built without -Dtest_points=true");
#else
	shared_init();
	snprintf(S->point, sizeof S->point, "ring.send.claimed");
	atomic_store(&S->armed, 1);
	gx_test_point_fn = kill_in_call;
	gx_config c = config(1);
	c.retry_attempts = 0;
	run(&c, closed_claim_main, NULL);
	gx_test_point_fn = NULL;
	cr_expect_eq(atomic_load(&S->armed), 0, "the sender was killed with its slot claimed");
	cr_expect_eq(closed_rc, 0, "the receive: %d", closed_rc);
	cr_expect_eq(closed_ok, 0, "closed and empty: ok false");
#endif
}

/* A try receive stopped between its claim and its take while the
 * sender gives up: it must report nothing and leave its element alone. */
static int t_try_recv_aimed(const void *arg, size_t len, gx_task_result *res)
{
	(void)len;
	(void)res;
	gx_chan *ch;
	memcpy(&ch, arg, sizeof ch);
	gx_sleep(30 * GX_MILLISECOND); /* the value is in the ring by now */
	int v = -1;
	atomic_store(&in_call, 1);
	int rc = gx_chan_try_recv(ch, &v, NULL);
	atomic_store(&in_call, 0);
	atomic_store(&S->ran[0], v);
	return rc;
}

static int lost_send, lost_recv;

__attribute__((unused)) /* only with test points */
static int lost_main(void *arg)
{
	(void)arg;
	gx_chan *ch;
	cr_assert_eq(gx_chan_make(&ch, sizeof(int), 0, GX_CHAN_DISTRIBUTED), 0);
	gx_future f;
	cr_assert_eq(gx_go_parallel(&f, t_try_recv_aimed, &ch, sizeof ch, NULL), 0);
	int v = 4242;
	lost_send = gx_chan_send(ch, &v, gx_timeout(100 * GX_MILLISECOND));
	lost_recv = gx_future_get(f, NULL, 0, NULL, gx_timeout(10 * GX_SECOND));
	gx_future_free(f);
	gx_chan_close(ch);
	return 0;
}

Test(killpoint, a_try_receive_that_lost_to_a_withdraw_leaves_its_element_alone, .timeout = 60)
{
#if !GX_TEST_POINTS
	cr_skip_test("built without -Dtest_points=true");
#else
	shared_init();
	snprintf(S->point, sizeof S->point, "ring.recv.claimed");
	atomic_store(&S->armed, 1);
	gx_test_point_fn = stall_in_call;
	gx_config c = config(1);
	run(&c, lost_main, NULL);
	gx_test_point_fn = NULL;
	cr_expect_eq(atomic_load(&S->armed), 0, "the receiver stopped at its claim");
	cr_expect_eq(lost_send, -ETIMEDOUT, "the send gave up: %d", lost_send);
	cr_expect_eq(lost_recv, -EAGAIN, "the try receive found nothing: %d", lost_recv);
	cr_expect_eq(atomic_load(&S->ran[0]), -1, "its element holds %d", atomic_load(&S->ran[0]));
#endif
}

static int stalled_first, stalled_second, stalled_got;

__attribute__((unused)) /* only with test points */
static int stalled_main(void *arg)
{
	(void)arg;
	gx_chan *ch;
	cr_assert_eq(gx_chan_make(&ch, sizeof(int), 0, GX_CHAN_DISTRIBUTED), 0);
	gx_future f;
	cr_assert_eq(gx_go_parallel(&f, t_recv_aimed, &ch, sizeof ch, NULL), 0);
	gx_sleep(100 * GX_MILLISECOND); /* the receiver waits */
	int v = 1;
	/* the receiver claims the value and stops there past our deadline */
	stalled_first = gx_chan_send(ch, &v, gx_timeout(30 * GX_MILLISECOND));
	v = 2;
	stalled_second = gx_chan_send(ch, &v, gx_timeout(10 * GX_SECOND));
	stalled_got = gx_future_get(f, NULL, 0, NULL, gx_timeout(10 * GX_SECOND));
	gx_chan_close(ch);
	return 0;
}

Test(killpoint, a_rendezvous_send_that_timed_out_is_not_received_by_a_receiver_that_had_claimed_it,
     .timeout = 60)
{
#if !GX_TEST_POINTS
	cr_skip_test("built without -Dtest_points=true");
#else
	shared_init();
	snprintf(S->point, sizeof S->point, "ring.recv.claimed");
	atomic_store(&S->armed, 1);
	gx_test_point_fn = stall_in_call;
	gx_config c = config(1);
	run(&c, stalled_main, NULL);
	gx_test_point_fn = NULL;
	cr_expect_eq(atomic_load(&S->armed), 0, "the receiver stopped between its claim and its take");
	cr_expect_eq(stalled_first, -ETIMEDOUT, "the first send: %d", stalled_first);
	cr_expect_eq(stalled_second, 0, "the second send: %d", stalled_second);
	cr_expect_eq(stalled_got, 2, "the receiver got the second value, never the withdrawn one: %d", stalled_got);
#endif
}

/* ---- a completion cut short: its result chunk ---- */

static uint64_t chunks_in_use(void)
{
	uint64_t n = 0;
	gx_arena *a = gx_par_arena(0);
	for (int c = 0; a && c < GX_POOL_CLASSES; c++) {
		gx_pool_class_stats s;
		if (gx_pool_stats(a, 0, c, &s) == 0)
			n += s.in_use;
	}
	return n;
}

/* A result too big to go inline: the completion puts it in a chunk. */
static int t_big_result(const void *arg, size_t len, gx_task_result *res)
{
	(void)arg;
	(void)len;
	char big[1000];
	memset(big, 'r', sizeof big);
	gx_task_return(res, big, sizeof big);
	return 9;
}

static uint64_t big_before, big_after;
static int big_rc;
static size_t big_len;

static int big_result_main(void *arg)
{
	(void)arg;
	gx_future f;
	char buf[1000];
	big_before = chunks_in_use();
	cr_assert_eq(gx_go_parallel(&f, t_big_result, NULL, 0, NULL), 0);
	big_rc = gx_future_get(f, buf, sizeof buf, &big_len, gx_timeout(20 * GX_SECOND));
	gx_sleep(100 * GX_MILLISECOND); /* the repair of the dead worker is done */
	big_after = chunks_in_use();
	return 0;
}

/* The worker dies at `point` while completing a future with a chunk: the
 * task runs again, its answer arrives, and no chunk stays in use. */
static void die_completing(const char *point)
{
	shared_init();
	atomic_store(&S->armed, 1);
	snprintf(S->point, sizeof S->point, "%s", point);
#if GX_TEST_POINTS
	gx_test_point_fn = kill_here;
#endif
	gx_config c = config(1);
	run(&c, big_result_main, NULL);
#if GX_TEST_POINTS
	gx_test_point_fn = NULL;
#endif
	cr_expect_eq(atomic_load(&S->armed), 0, "the worker died at %s", point);
	cr_expect_eq(big_rc, 9, "the re-run's answer: %d", big_rc);
	cr_expect_eq(big_len, 1000);
	cr_expect_eq(big_after, big_before, "pool chunks in use: %llu before, %llu after",
		     (unsigned long long)big_before, (unsigned long long)big_after);
}

Test(killpoint, a_worker_killed_after_handing_over_its_result_leaves_no_chunk, .timeout = 60)
{
#if !GX_TEST_POINTS
	cr_skip_test("built without -Dtest_points=true");
#endif
	die_completing("fut.written");
}

Test(killpoint, a_worker_killed_before_handing_over_its_result_leaves_no_chunk, .timeout = 60)
{
#if !GX_TEST_POINTS
	cr_skip_test("built without -Dtest_points=true");
#endif
	die_completing("fut.result.named");
}

/* ---- a free while the result is being written ---- */

static int writing_free_rc = 1;
#if GX_TEST_POINTS
static gx_future writing_f;

/* Main completes a local task's future; between its result and DONE, the
 * owner frees the future. */
static void free_while_writing(const char *name, void *arg)
{
	(void)arg;
	if (strcmp(name, "fut.written") == 0 && writing_f.h) {
		gx_future f = writing_f;
		writing_f.h = 0;
		writing_free_rc = gx_future_free(f);
	}
}
#endif

static uint64_t writing_before, writing_after;

static int writing_main(void *arg)
{
	(void)arg;
#if GX_TEST_POINTS
	writing_before = chunks_in_use();
	gx_future f;
	/* no workers: the task runs here, in a coroutine started later */
	cr_assert_eq(gx_go_parallel(&f, t_big_result, NULL, 0, NULL), 0);
	writing_f = f;
	gx_test_point_fn = free_while_writing;
	gx_sleep(50 * GX_MILLISECOND);
	gx_test_point_fn = NULL;
	writing_after = chunks_in_use();
	expect_slot_back_once();
#endif
	return 0;
}

Test(killpoint, a_future_freed_while_its_result_is_written_is_released_once_without_its_chunk, .timeout = 30)
{
#if !GX_TEST_POINTS
	cr_skip_test("built without -Dtest_points=true");
#endif
	gx_config c = config(0);
	run(&c, writing_main, NULL);
	cr_expect_eq(writing_free_rc, 0, "the free during the completion: %d", writing_free_rc);
	cr_expect_eq(writing_after, writing_before, "pool chunks in use: %llu before, %llu after",
		     (unsigned long long)writing_before, (unsigned long long)writing_after);
}
