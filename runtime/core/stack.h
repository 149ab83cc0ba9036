/*
 * Coroutine stacks: carved from large MAP_NORESERVE slabs, one guard page
 * under each, kept in a per-process LIFO pool per size. See stack.c.
 */
#ifndef GX_CORE_STACK_H
#define GX_CORE_STACK_H

#include <stddef.h>

#include "core/co.h"

#include <gonex/config.h>

/* Probe the guard mechanism, install the overflow handler. 0 or -errno. */
int gx_stack_init(gx_guard_kind guard);

/* Unmap every slab, restore the previous SIGSEGV handler and altstack. */
void gx_stack_fini(void);

/* A stack of at least `size` usable bytes (page multiple). Returns its
 * descriptor (cls, stack_lo, stack_size set; the rest is the caller's), or
 * NULL with *err = -ENOMEM. */
gx_co *gx_stack_get(size_t size, int *err);

/* Return a stack to its pool (LIFO: the next get reuses it first). */
void gx_stack_put(gx_co *co);

/* "madvise" or "mprotect": the guard mechanism in force. */
const char *gx_stack_guard_name(void);

/* Counters for tests and stats. */
typedef struct gx_stack_stats {
	size_t slabs;      /* slabs mapped */
	size_t carved;     /* stacks ever carved (each got a guard) */
	size_t in_use;     /* stacks handed out and not returned */
} gx_stack_stats;
void gx_stack_stats_get(gx_stack_stats *out);

#endif
