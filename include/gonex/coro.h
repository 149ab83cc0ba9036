/*
 * gonex/coro.h: coroutines ("goroutines").
 *
 * A coroutine runs on its own stack inside the process that spawned it and
 * never migrates. One thread per process runs them, switching only where a
 * coroutine yields, parks (channel, lock, sleep, I/O) or exits; there is no
 * preemption. A new coroutine runs soon after its spawner next yields or
 * parks, as with `go f()`.
 *
 * All calls here are valid only inside gx_run (in a coroutine); elsewhere
 * they return -EPERM (or 0 / NULL where stated).
 */
#ifndef GONEX_CORO_H
#define GONEX_CORO_H

#include <stddef.h>
#include <stdint.h>

#include <gonex/api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Smallest stack a coroutine may have, descriptor included. */
#define GX_STACK_MIN (16 * 1024)
/* Largest stack a coroutine may have. */
#define GX_STACK_MAX (1024UL * 1024 * 1024)
/* Longest name kept (longer names are cut). */
#define GX_NAME_MAX 31

typedef void (*gx_fn)(void *arg);

/* Per-spawn options; zero means "the default". */
typedef struct gx_go_opts {
	size_t stack_size; /* bytes, GX_STACK_MIN..GX_STACK_MAX, or 0: cfg */
	const char *name;  /* shown in overflow reports and dumps; copied */
} gx_go_opts;

/*
 * Spawn fn(arg) as a new coroutine in this process. Returns its id (>= 1).
 * Errors: -EPERM outside gx_run, -EINVAL for a NULL fn or a stack size out
 * of range, -ENOMEM when no stack can be mapped. The caller keeps ownership
 * of arg.
 */
GX_API int64_t gx_go(gx_fn fn, void *arg);
GX_API int64_t gx_go_with(gx_fn fn, void *arg, const gx_go_opts *opts);

/* Let every other runnable coroutine run once, then continue. A no-op
 * outside a coroutine. */
GX_API void gx_yield(void);

/* The running coroutine's id (>= 1), 0 outside a coroutine. */
GX_API uint64_t gx_self(void);

/* The running coroutine's name, "" outside a coroutine. */
GX_API const char *gx_self_name(void);

/* End the running coroutine now, as if its function returned (the main
 * coroutine's result is then 0). Returns -EPERM outside a coroutine;
 * never returns otherwise. */
GX_API int gx_exit(void);

#ifdef __cplusplus
}
#endif

#endif
