/*
 * The per-process scheduler: run queue, run-next slot, park/ready, and the
 * root context that runs the event loop. See sched.c for the design.
 *
 * The park/ready interface is what every blocking primitive builds on:
 *
 *     waiter.co = gx_co_current();  enlist &waiter somewhere;
 *     gx_park("chan receive");      // returns after someone calls gx_ready
 *
 * gx_ready must be called exactly once per park, from any coroutine or from
 * the loop (root); it never switches, it only queues.
 */
#ifndef GX_CORE_SCHED_H
#define GX_CORE_SCHED_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/co.h"

#include <gonex/config.h>

/* What the loop layer (runtime/io) registers so the scheduler can wait
 * without including it. */
typedef struct gx_poller {
	/* Submit what is queued, wait for completions until deadline
	 * (CLOCK_MONOTONIC ns; -1 forever, 0 do not block), dispatch them.
	 * Returns 0 or -errno (-EINTR is fine). */
	int (*wait)(void *state, int64_t deadline);
	/* True while operations are in flight (a wait may complete them). */
	bool (*busy)(void *state);
	void *state;
} gx_poller;

/* ---- the scheduler's state and hot paths (inline; see sched.c) ---- */

#include "arch/switch.h"
#include "core/panic.h"

#if GX_SANITIZE_HOOKS && defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define GX_ASAN_FIBERS 1
#else
#define GX_ASAN_FIBERS 0
#endif

/* Switches between two visits of the loop while coroutines stay runnable. */
#define GX_POLL_EVERY 64

struct gx_sched {
	gx_co *cur;
	gx_co *runnext;
	gx_co *head, *tail;
	uint32_t tick;
	bool active;
	bool main_done;
	int main_result;
	uint64_t next_id;
	uint64_t alive;
	size_t default_stack;
	size_t page;
	gx_poller poller;
	gx_co *all; /* every live coroutine, through all_next/all_prev */
	gx_co root;
};

extern struct gx_sched gx_sched_state;

static inline void gx_runq_push(gx_co *co)
{
	struct gx_sched *s = &gx_sched_state;
	co->next = NULL;
	if (s->tail)
		s->tail->next = co;
	else
		s->head = co;
	s->tail = co;
}

static inline gx_co *gx_runq_pop(void)
{
	struct gx_sched *s = &gx_sched_state;
	gx_co *co = s->head;
	if (co) {
		s->head = co->next;
		if (!s->head)
			s->tail = NULL;
	}
	return co;
}

/* The next context to run when the current coroutine gives up the CPU. */
static inline gx_co *gx_pick(void)
{
	struct gx_sched *s = &gx_sched_state;
	gx_co *n;
	if (++s->tick < GX_POLL_EVERY) {
		if ((n = s->runnext) != NULL) {
			s->runnext = NULL;
			return n;
		}
		if ((n = gx_runq_pop()) != NULL)
			return n;
	}
	s->tick = 0;
	return &s->root;
}

/* Keep the switch the last thing done (see the invariants in sched.c). */
static inline void gx_switch(gx_co *from, gx_co *to)
{
	to->state = GX_CO_RUNNING;
	gx_sched_state.cur = to;
#if GX_ASAN_FIBERS
	__sanitizer_start_switch_fiber(&from->asan_fake_stack, to->stack_lo, to->stack_size);
	gx_arch_switch(&from->sp, to->sp, NULL);
	__sanitizer_finish_switch_fiber(from->asan_fake_stack, NULL, NULL);
#else
	gx_arch_switch(&from->sp, to->sp, NULL);
#endif
}

/* Where the scheduler accounts the time it blocks with nothing to run
 * (the process is idle: no coroutine runnable, waiting for I/O or a
 * timer). Plain memory, written by this process only; all NULL: none
 * (the default; gx_sched_fini clears it). */
typedef struct gx_idle_sink {
	_Atomic int64_t *since;  /* CLOCK_MONOTONIC ns blocked since, 0 when not */
	_Atomic int64_t *total;  /* ns blocked, summed */
	_Atomic uint64_t *wakes; /* blocks that ended */
} gx_idle_sink;
void gx_sched_set_idle_sink(const gx_idle_sink *s);

int gx_sched_init(const gx_config *cfg);
void gx_sched_fini(void);
void gx_sched_set_poller(const gx_poller *p);

/* Run main_fn as the main coroutine and the loop until it returns.
 * Returns its result, -EDEADLK, or -errno from spawning it. */
int gx_sched_run(int (*main_fn)(void *), void *arg);

/* The running coroutine, NULL on the root context or outside gx_run. */
static inline gx_co *gx_co_current(void)
{
	gx_co *c = gx_sched_state.cur;
	return c == &gx_sched_state.root ? NULL : c;
}

/* Spawn: returns the new coroutine (already runnable) or NULL with *err. */
gx_co *gx_co_spawn(gx_fn fn, void *arg, size_t stack_size, const char *name, int *err);
/* gx_go, but the new coroutine runs after every coroutine already
 * runnable (the queue's tail, not the run-next slot): coroutines spawned
 * one after another this way start in the order they were spawned. */
int64_t gx_go_fifo(gx_fn fn, void *arg);

/* Park the running coroutine until gx_ready(co). reason must outlive the
 * park (a string literal). Must be called from a coroutine. */
static inline void gx_park(const char *reason)
{
	gx_co *self = gx_sched_state.cur;
	if (self == &gx_sched_state.root)
		gx_panic("sched", "gx_park on the loop context (%s)", reason);
	self->state = GX_CO_PARKED;
	self->wait_reason = reason;
	gx_switch(self, gx_pick());
}

/* Make a parked coroutine runnable. From a coroutine it goes to the
 * run-next slot (it runs right after the caller parks or yields); from the
 * loop it goes to the tail of the queue, so wake-ups keep their order. */
static inline void gx_ready(gx_co *co)
{
	struct gx_sched *s = &gx_sched_state;
	if (co->state != GX_CO_PARKED)
		gx_panic("sched", "gx_ready of coroutine %llu in state %u", (unsigned long long)co->id,
			 co->state);
	co->state = GX_CO_RUNNABLE;
	co->wait_reason = NULL;
	if (s->cur != &s->root) {
		if (s->runnext)
			gx_runq_push(s->runnext);
		s->runnext = co;
	} else {
		gx_runq_push(co);
	}
}

/* Number of coroutines alive (spawned, not yet exited). */
uint64_t gx_sched_alive(void);

/* True inside gx_run on this process. */
bool gx_sched_active(void);

#endif
