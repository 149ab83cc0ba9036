/*
 * Timers: a 4-ary min-heap of records that live on their owners' stacks,
 * ordered by (deadline, sequence), so equal deadlines fire in the order set.
 */
#ifndef GX_CORE_TIMER_H
#define GX_CORE_TIMER_H

#include <stdint.h>

typedef struct gx_tnode gx_tnode;
typedef void (*gx_tnode_fn)(gx_tnode *t);

struct gx_tnode {
	int64_t when;   /* CLOCK_MONOTONIC ns */
	uint64_t seq;   /* tie-break: set order */
	uint32_t idx;   /* heap index + 1; 0 when not armed */
	gx_tnode_fn fn; /* runs on the root context when due */
	void *data;
};

/* Arm t (not armed) for t->when. 0 or -ENOMEM. */
int gx_theap_add(gx_tnode *t);
/* A place in the order of equal deadlines, as gx_theap_add would give. */
uint64_t gx_theap_seq(void);
/* Arm t (not armed) for t->when at place seq (from gx_theap_seq): it
 * fires as if it had been added when seq was handed out. 0 or -ENOMEM. */
int gx_theap_add_seq(gx_tnode *t, uint64_t seq);
/* The time the loop last fired timers at (0 before the first turn): a
 * lower bound of the clock, for "has this deadline surely passed". */
int64_t gx_theap_last_now(void);
/* Disarm t if armed. Returns 1 if it was armed, 0 if it already fired. */
int gx_theap_del(gx_tnode *t);
/* Earliest deadline, -1 when no timer is armed. */
int64_t gx_theap_next(void);
/* Fire every timer with when <= now, earliest first. Returns how many. */
unsigned gx_theap_fire(int64_t now);
/* Number of armed timers. */
uint32_t gx_theap_count(void);
void gx_theap_fini(void);

int64_t gx_clock_now(void);

#endif
