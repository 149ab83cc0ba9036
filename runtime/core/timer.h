/*
 * Timers: a binary min-heap of records that live on their owners' stacks,
 * ordered by (deadline, sequence), so equal deadlines fire in the order set.
 */
#ifndef GX_CORE_TIMER_H
#define GX_CORE_TIMER_H

#include <stdint.h>

typedef struct gx_timer gx_timer;
typedef void (*gx_timer_fn)(gx_timer *t);

struct gx_timer {
	int64_t when;   /* CLOCK_MONOTONIC ns */
	uint64_t seq;   /* tie-break: set order */
	uint32_t idx;   /* heap index + 1; 0 when not armed */
	gx_timer_fn fn; /* runs on the root context when due */
	void *data;
};

/* Arm t (not armed) for t->when. 0 or -ENOMEM. */
int gx_timer_add(gx_timer *t);
/* Disarm t if armed. Returns 1 if it was armed, 0 if it already fired. */
int gx_timer_del(gx_timer *t);
/* Earliest deadline, -1 when no timer is armed. */
int64_t gx_timer_next(void);
/* Fire every timer with when <= now, earliest first. Returns how many. */
unsigned gx_timer_fire(int64_t now);
/* Number of armed timers. */
uint32_t gx_timer_count(void);
void gx_timer_fini(void);

int64_t gx_clock_now(void);

#endif
