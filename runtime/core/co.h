/*
 * The coroutine descriptor. It sits at the top of the coroutine's own stack
 * (one mapping per coroutine, nothing else allocated); the first frame is
 * built just below it.
 */
#ifndef GX_CORE_CO_H
#define GX_CORE_CO_H

#include <stddef.h>
#include <stdint.h>

#include "gx_build_config.h"
#include "core/timer.h"

#include <gonex/coro.h>

typedef enum gx_co_state {
	GX_CO_FREE = 0,   /* stack in the pool, no coroutine */
	GX_CO_RUNNABLE,   /* in the run queue or the run-next slot */
	GX_CO_RUNNING,    /* the current coroutine */
	GX_CO_PARKED,     /* waiting for gx_ready */
} gx_co_state;

enum {
	GX_CO_F_MAIN = 1u << 0, /* the coroutine running gx_run's main_fn */
};

struct gx_stack_class;
struct gx_waiter;

typedef struct gx_co {
	void *sp;                   /* saved stack pointer while not running */
	struct gx_co *next;         /* run queue, free list or wait-queue link */
	uint64_t id;                /* >= 1, unique per process run */
	uint32_t state;             /* gx_co_state */
	uint32_t flags;             /* GX_CO_F_* */
	gx_fn fn;
	void *arg;
	const char *wait_reason;    /* what a parked coroutine waits on */
	struct gx_waiter *waiter;   /* its wait clauses while parked in gx_wait */
	gx_tnode tn;                /* its deadline timer, armed lazily (wait.c) */
	int64_t due;                /* deadline of the wait in progress, -1: none */
	uint64_t due_seq;           /* its place among equal deadlines */
	struct gx_co *all_next;     /* every live coroutine of the process */
	struct gx_co *all_prev;
	struct gx_stack_class *cls; /* the pool the stack returns to */
	char *stack_lo;             /* lowest usable byte (above the guard) */
	size_t stack_size;          /* usable bytes, this descriptor included */
#if GX_SANITIZE_HOOKS
	void *asan_fake_stack;      /* ASan's fake-stack handle while away */
	unsigned vg_stack_id;       /* Valgrind stack registration */
#endif
	char name[GX_NAME_MAX + 1];
} gx_co;

/* Where the descriptor of the stack [lo, lo + size) lives. */
#define GX_CO_DESC_BYTES ((sizeof(gx_co) + 63) & ~(size_t)63)

static inline gx_co *gx_co_of_stack(char *lo, size_t size)
{
	return (gx_co *)(lo + size - GX_CO_DESC_BYTES);
}

#endif
