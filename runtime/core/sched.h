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

int gx_sched_init(const gx_config *cfg);
void gx_sched_fini(void);
void gx_sched_set_poller(const gx_poller *p);

/* Run main_fn as the main coroutine and the loop until it returns.
 * Returns its result, -EDEADLK, or -errno from spawning it. */
int gx_sched_run(int (*main_fn)(void *), void *arg);

/* The running coroutine, NULL on the root context or outside gx_run. */
gx_co *gx_co_current(void);

/* Spawn: returns the new coroutine (already runnable) or NULL with *err. */
gx_co *gx_co_spawn(gx_fn fn, void *arg, size_t stack_size, const char *name, int *err);

/* Park the running coroutine until gx_ready(co). reason must outlive the
 * park (a string literal). Must be called from a coroutine. */
void gx_park(const char *reason);

/* Make a parked coroutine runnable. From a coroutine it goes to the
 * run-next slot (it runs right after the caller parks or yields); from the
 * loop it goes to the tail of the queue, so wake-ups keep their order. */
void gx_ready(gx_co *co);

/* Number of coroutines alive (spawned, not yet exited). */
uint64_t gx_sched_alive(void);

/* True inside gx_run on this process. */
bool gx_sched_active(void);

#endif
