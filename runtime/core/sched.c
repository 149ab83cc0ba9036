/*
 * The per-process scheduler.
 *
 * What: one thread per process runs coroutines. A coroutine that parks,
 * yields or exits switches straight to the next runnable coroutine (one
 * gx_arch_switch, no trip through a scheduler stack). The root context (the
 * thread stack gx_run was called on) runs the event loop: it is switched to
 * when nothing is runnable, and every GX_POLL_EVERY switches so that I/O
 * completions and timers are seen under load.
 *
 * Run order: the run-next slot first, then the FIFO queue. gx_ready from a
 * coroutine puts the woken one in run-next (a ping-pong pair stays on a
 * warm cache, as Go's runnext does) and pushes the previous occupant to the
 * queue tail; gx_ready from the loop appends to the tail, so wake-ups of one
 * loop turn (timers in deadline order) run in order. The root takes the
 * queue head before run-next, so a ping-pong pair cannot starve the queue
 * for more than GX_POLL_EVERY switches.
 *
 * Invariants:
 * - S.cur is the running context: &S.root while the loop runs;
 * - a coroutine is in exactly one of: running (S.cur), run-next, run queue,
 *   parked (owned by whoever will gx_ready it), stack pool;
 * - an exiting coroutine returns its stack to the pool just before its last
 *   switch, while still running on it: nothing can take a stack from the
 *   pool before that switch completes (one thread, and the signal handler
 *   never spawns), and the last switch writes nothing to the old stack;
 * - nothing runs after gx_arch_switch in gx_switch (without ASan), so a
 *   yield or park ends in a tail call and the switch's indirect jump lands
 *   straight in the resumed coroutine's caller: no return is mispredicted;
 * - the root never parks; gx_park on it panics.
 *
 * Deadlock: when nothing is runnable, no timer is armed and the poller has
 * nothing in flight, nothing can ever run again; gx_run reports it and
 * returns -EDEADLK rather than sleeping forever (Go: "all goroutines are
 * asleep - deadlock!").
 *
 * Rejected: a scheduler context between every two coroutines (twice the
 * switches per yield); preemption by signals (a coroutine interrupted inside
 * a non-reentrant libc call would corrupt it).
 */
#include "core/sched.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "arch/switch.h"
#include "core/list.h"
#include "core/panic.h"
#include "core/rand.h"
#include "core/stack.h"
#include "core/timer.h"
#include "core/wait.h"

#define S gx_sched_state

struct gx_sched gx_sched_state;

static atomic_flag gx_running = ATOMIC_FLAG_INIT;

static _Noreturn void gx_co_finish(gx_co *self)
{
	if (self->flags & GX_CO_F_MAIN)
		S.main_done = true;
	S.alive--;
	GX_LIST_UNLINK(&S.all, self, all_next, all_prev);
	gx_theap_del(&self->tn); /* a lazy deadline timer may still be armed */
	gx_co *to = S.main_done ? &S.root : gx_pick();
	gx_stack_put(self); /* still running on it: see the invariants */
	to->state = GX_CO_RUNNING;
	S.cur = to;
	void *gone;
#if GX_ASAN_FIBERS
	__sanitizer_start_switch_fiber(NULL, to->stack_lo, to->stack_size);
#endif
	gx_arch_switch(&gone, to->sp, NULL);
	gx_panic("sched", "dead coroutine %llu resumed", (unsigned long long)self->id);
}

static void gx_co_entry(void *arg, void *unused)
{
	(void)unused;
	gx_co *self = arg;
#if GX_ASAN_FIBERS
	__sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
	self->fn(self->arg);
	gx_co_finish(self);
}

uint64_t gx_sched_alive(void)
{
	return S.alive;
}

bool gx_sched_active(void)
{
	return S.active;
}

/* ---- spawning ---- */

/* A new coroutine, PARKED: the caller makes it runnable. */
static gx_co *gx_co_new(gx_fn fn, void *arg, size_t stack_size, const char *name, int *err)
{
	gx_co *co = gx_stack_get(stack_size, err);
	if (!co)
		return NULL;
	co->fn = fn;
	co->arg = arg;
	co->id = ++S.next_id;
	co->flags = 0;
	co->wait_reason = NULL;
	co->waiter = NULL;
	co->tn.idx = 0;
	co->due = -1;
	GX_LIST_PUSH(&S.all, co, all_next, all_prev);
	size_t i = 0;
	if (name)
		for (; i < GX_NAME_MAX && name[i]; i++)
			co->name[i] = name[i];
	co->name[i] = '\0';
	co->sp = gx_arch_stack_init(co, gx_co_entry, co);
	S.alive++;
	co->state = GX_CO_PARKED;
	return co;
}

gx_co *gx_co_spawn(gx_fn fn, void *arg, size_t stack_size, const char *name, int *err)
{
	gx_co *co = gx_co_new(fn, arg, stack_size, name, err);
	if (co)
		gx_ready(co);
	return co;
}

int64_t gx_go_fifo(gx_fn fn, void *arg)
{
	if (!S.active)
		return -EPERM;
	if (!fn)
		return -EINVAL;
	int err = 0;
	gx_co *co = gx_co_new(fn, arg, S.default_stack, NULL, &err);
	if (!co)
		return err;
	/* the tail of the queue, behind every coroutine made runnable before
	 * it, never the run-next slot */
	co->state = GX_CO_RUNNABLE;
	gx_runq_push(co);
	return (int64_t)co->id;
}

int64_t gx_go_with(gx_fn fn, void *arg, const gx_go_opts *opts)
{
	if (!S.active)
		return -EPERM;
	size_t size = opts && opts->stack_size ? opts->stack_size : S.default_stack;
	if (!fn || size < GX_STACK_MIN || size > GX_STACK_MAX)
		return -EINVAL;
	size = (size + S.page - 1) & ~(S.page - 1);
	int err = 0;
	gx_co *co = gx_co_spawn(fn, arg, size, opts ? opts->name : NULL, &err);
	return co ? (int64_t)co->id : err;
}

int64_t gx_go(gx_fn fn, void *arg)
{
	return gx_go_with(fn, arg, NULL);
}

void gx_yield(void)
{
	gx_co *self = S.cur;
	if (!S.active || self == &S.root)
		return;
	self->state = GX_CO_RUNNABLE;
	gx_runq_push(self);
	gx_co *next = gx_pick();
	if (next == self) { /* nothing else runnable: gx_pick took it back */
		self->state = GX_CO_RUNNING;
		return;
	}
	gx_switch(self, next);
}

uint64_t gx_self(void)
{
	gx_co *co = S.active ? gx_co_current() : NULL;
	return co ? co->id : 0;
}

const char *gx_self_name(void)
{
	gx_co *co = S.active ? gx_co_current() : NULL;
	return co ? co->name : "";
}

int gx_exit(void)
{
	gx_co *self = S.active ? gx_co_current() : NULL;
	if (!self)
		return -EPERM;
	gx_co_finish(self);
}

/* ---- the loop ---- */

static int gx_sleep_wait(void *state, int64_t deadline)
{
	(void)state;
	if (deadline < 0)
		gx_panic("sched", "no poller and nothing to wait for");
	if (deadline > 0) {
		struct timespec ts = {.tv_sec = deadline / 1000000000, .tv_nsec = deadline % 1000000000};
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
	}
	return 0;
}

static bool gx_never_busy(void *state)
{
	(void)state;
	return false;
}

void gx_sched_set_poller(const gx_poller *p)
{
	S.poller = *p;
}

int gx_sched_init(const gx_config *cfg)
{
	if (atomic_flag_test_and_set(&gx_running))
		return -EBUSY;
	memset(&S, 0, sizeof S);
	S.page = (size_t)sysconf(_SC_PAGESIZE);
	S.default_stack = (cfg->stack_size + S.page - 1) & ~(S.page - 1);
	S.poller.wait = gx_sleep_wait;
	S.poller.busy = gx_never_busy;
	S.root.state = GX_CO_RUNNING;
	strcpy(S.root.name, "loop");
#if GX_ASAN_FIBERS
	pthread_attr_t attr;
	if (pthread_getattr_np(pthread_self(), &attr) == 0) {
		void *lo;
		size_t size;
		pthread_attr_getstack(&attr, &lo, &size);
		S.root.stack_lo = lo;
		S.root.stack_size = size;
		pthread_attr_destroy(&attr);
	}
#endif
	S.cur = &S.root;
	S.active = true;
	gx_rand_seed();
	return 0;
}

void gx_sched_fini(void)
{
	gx_sched_set_idle_sink(NULL);
	memset(&S, 0, sizeof S);
	atomic_flag_clear(&gx_running);
}

typedef struct {
	int (*fn)(void *);
	void *arg;
} gx_main_call;

static void gx_main_entry(void *p)
{
	gx_main_call *m = p;
	S.main_result = m->fn(m->arg);
}

static gx_idle_sink gx_idle;

void gx_sched_set_idle_sink(const gx_idle_sink *sink)
{
	if (sink && sink->since && sink->total && sink->wakes)
		gx_idle = *sink;
	else
		gx_idle = (gx_idle_sink){0, 0, 0};
}

int gx_sched_run(int (*main_fn)(void *), void *arg)
{
	gx_main_call m = {main_fn, arg};
	int err = 0;
	gx_co *mco = gx_co_spawn(gx_main_entry, &m, S.default_stack, "main", &err);
	if (!mco)
		return err;
	mco->flags |= GX_CO_F_MAIN;

	int rc;
	for (;;) {
		if (S.main_done) {
			rc = S.main_result;
			break;
		}
		bool runnable = S.head || S.runnext;
		int64_t next_timer = gx_theap_next();
		bool busy = S.poller.busy(S.poller.state);
		if (!runnable && next_timer < 0 && !busy) {
			gx_log("all coroutines are asleep - deadlock (%llu parked)",
			       (unsigned long long)S.alive);
			rc = -EDEADLK;
			break;
		}
		if (busy || (!runnable && next_timer >= 0)) {
			/* two clock reads around a block that costs a syscall
			 * and a sleep; only where a sink is set (workers) */
			bool idle = !runnable && gx_idle.total;
			int64_t t0 = idle ? gx_clock_now() : 0;
			if (idle)
				atomic_store_explicit(gx_idle.since, t0, memory_order_relaxed);
			S.poller.wait(S.poller.state, runnable ? 0 : next_timer);
			if (idle) {
				int64_t d = gx_clock_now() - t0;
				atomic_store_explicit(gx_idle.since, 0, memory_order_relaxed);
				atomic_store_explicit(gx_idle.total,
						      atomic_load_explicit(gx_idle.total, memory_order_relaxed) + d,
						      memory_order_relaxed);
				atomic_store_explicit(gx_idle.wakes,
						      atomic_load_explicit(gx_idle.wakes, memory_order_relaxed) + 1,
						      memory_order_relaxed);
			}
		}
		if (next_timer >= 0)
			gx_theap_fire(gx_clock_now());
		gx_co *n = gx_runq_pop();
		if (!n && (n = S.runnext) != NULL)
			S.runnext = NULL;
		if (n) {
			S.tick = 0;
			gx_switch(&S.root, n);
		}
	}
	/* The coroutines still alive never run again and their stacks are
	 * about to be unmapped: no object may keep pointing into them. */
	for (gx_co *co = S.all; co; co = co->all_next)
		gx_wait_abandon(co);
	return rc;
}
