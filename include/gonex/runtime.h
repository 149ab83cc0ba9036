/*
 * gonex/runtime.h: starting the runtime, and what it chose.
 */
#ifndef GONEX_RUNTIME_H
#define GONEX_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include <gonex/api.h>
#include <gonex/config.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int (*gx_main_fn)(void *arg);

/*
 * Run main_fn(arg) as the first coroutine of this process and return its
 * result once it returns and the runtime has shut down.
 *
 * cfg may be NULL for the defaults; GONEX_* variables override it. Before
 * anything starts, a bad configuration returns -EINVAL (with one line on
 * stderr naming the variable or field). Other errors: -EBUSY when gx_run is
 * already running in this process, -ENOMEM, and the backend's setup error
 * when GONEX_BACKEND forces a backend that cannot start. When main_fn parks
 * and nothing can ever wake it (no runnable coroutine, no timer, no I/O in
 * flight), gx_run prints "all coroutines are asleep - deadlock" and returns
 * -EDEADLK. Coroutines still alive when main_fn returns are abandoned, as
 * Go abandons goroutines when main returns: their stacks are unmapped and
 * nothing of theirs runs again.
 */
GX_API int gx_run(const gx_config *cfg, gx_main_fn main_fn, void *arg);

/* What this process's runtime chose; see gx_info(). */
typedef struct gx_runtime_info {
	const char *arch;         /* "x86_64" or "aarch64" */
	const char *backend;      /* "io_uring" or "epoll" */
	const char *guard;        /* "madvise" or "mprotect" */
	uint32_t ring_flags;      /* IORING_SETUP_* in force (0 on epoll) */
	uint32_t ring_features;   /* IORING_FEAT_* reported by the kernel */
	uint32_t sq_entries;      /* 0 on epoll */
	uint32_t cq_entries;      /* 0 on epoll */
	size_t stack_size;        /* default stack size in force */
	int fp_env;               /* 1 when the FP control state is per coroutine */
	int sanitize_hooks;       /* 1 when ASan/Valgrind annotations are built in */
	char ring_flags_str[160]; /* ring_flags spelled out, "-" when none */
	char missing[160];        /* features asked for but not available, "-" */
	char kernel[65];          /* uname release */
	uint32_t napi_busy_us;    /* NAPI busy poll in force (GONEX_NAPI_BUSY_US), 0: off */
	uint32_t fixed_files;     /* registered file slots (GONEX_FIXED_FILES), 0 on epoll */
	uint32_t fixed_in_use;    /* ... held now by sockets of this process */
} gx_runtime_info;

/* Fill *out. Returns 0, or -EPERM outside gx_run, -EINVAL for NULL. */
GX_API int gx_info(gx_runtime_info *out);

/* The configuration this process's gx_run is using: the struct it was
 * given with the GONEX_* variables applied (a worker's has workers = 0).
 * 0, -EPERM outside gx_run, -EINVAL for NULL. */
GX_API int gx_config_get(gx_config *out);

/* Library version string, e.g. "0.1.0". Valid anywhere. */
GX_API const char *gx_version(void);

#ifdef __cplusplus
}
#endif

#endif
