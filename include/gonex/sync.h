/*
 * gonex/sync.h: WaitGroup, Mutex, RWMutex, Once, Cond, Semaphore, as Go's
 * sync package (and golang.org/x/sync/semaphore) define them.
 *
 * Each lives in caller storage; all-zero storage (the _INIT macros, or
 * memset 0, or a static) is a ready, unlocked, empty object, as Go's zero
 * values are. No allocation, nothing to destroy; no coroutine may be
 * blocked on one when its storage goes away.
 *
 * Blocking calls run in a coroutine (-EPERM elsewhere when they would
 * block) and take a gx_until (GX_FOREVER, gx_deadline, gx_timeout,
 * gx_ctx_until); they return -ETIMEDOUT or the context's error when it ends
 * first, having acquired nothing. Where Go panics (negative counter, unlock
 * of an unlocked lock, releasing more than held) these return a distinct
 * negative errno and leave the object as it was.
 *
 * Waiters are served in FIFO order: Mutex hands the lock straight to the
 * longest waiter on unlock, so no waiter starves.
 */
#ifndef GONEX_SYNC_H
#define GONEX_SYNC_H

#include <stdint.h>

#include <gonex/api.h>
#include <gonex/time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- WaitGroup ---- */
typedef struct gx_wg {
	uint64_t opaque_[3];
} gx_wg;
#define GX_WG_INIT {{0}}

/* Add delta (may be negative) to the counter; at 0, every waiter wakes.
 * -ERANGE when the counter would go below 0 (unchanged). */
GX_API int gx_wg_add(gx_wg *wg, int64_t delta);
/* gx_wg_add(wg, -1). */
GX_API int gx_wg_done(gx_wg *wg);
/* Wait until the counter is 0: 0, or u's error. */
GX_API int gx_wg_wait(gx_wg *wg, gx_until u);

/* ---- Mutex ---- */
typedef struct gx_mutex {
	uint64_t opaque_[3];
} gx_mutex;
#define GX_MUTEX_INIT {{0}}

/* Lock: 0, or u's error. Not reentrant: locking a mutex the caller holds
 * waits forever (or until u ends), as in Go. */
GX_API int gx_mutex_lock(gx_mutex *m, gx_until u);
/* 0 when locked now, -EBUSY when held. */
GX_API int gx_mutex_trylock(gx_mutex *m);
/* 0, or -EPERM when not locked. Any coroutine may unlock (as in Go). */
GX_API int gx_mutex_unlock(gx_mutex *m);

/* ---- RWMutex ---- */
typedef struct gx_rwmutex {
	uint64_t opaque_[6];
} gx_rwmutex;
#define GX_RWMUTEX_INIT {{0}}

/* Shared lock. A writer waiting for the lock blocks new readers (so
 * writers do not starve); readers blocked behind a writer get the lock
 * when that writer unlocks, before the next writer. */
GX_API int gx_rwmutex_rlock(gx_rwmutex *m, gx_until u);
GX_API int gx_rwmutex_tryrlock(gx_rwmutex *m); /* 0 or -EBUSY */
GX_API int gx_rwmutex_runlock(gx_rwmutex *m);  /* 0 or -EPERM */
/* Exclusive lock. */
GX_API int gx_rwmutex_lock(gx_rwmutex *m, gx_until u);
GX_API int gx_rwmutex_trylock(gx_rwmutex *m); /* 0 or -EBUSY */
GX_API int gx_rwmutex_unlock(gx_rwmutex *m);  /* 0 or -EPERM */

/* ---- Once ---- */
typedef struct gx_once {
	uint64_t opaque_[4];
} gx_once;
#define GX_ONCE_INIT {{0}}

/* Run fn(arg) if no call on o ever ran it; callers arriving while it runs
 * wait until it returned. Returns 0 once fn has run; -EDEADLK when fn
 * itself calls gx_once_do on the same o; -EPERM outside a coroutine while
 * another call is running fn. fn must return: if it ends its coroutine
 * (gx_exit), C has no defer to mark o done, and later callers wait
 * forever. */
GX_API int gx_once_do(gx_once *o, void (*fn)(void *), void *arg);

/* ---- Cond ---- */
typedef struct gx_cond {
	uint64_t opaque_[2];
} gx_cond;
#define GX_COND_INIT {{0}}

struct gx_mutex;
/* Unlock m, wait for a signal (or u's end), lock m again (always, also on
 * error). 0 when signalled, u's error, -EPERM when m is not locked. */
GX_API int gx_cond_wait(gx_cond *c, gx_mutex *m, gx_until u);
/* Wake the longest waiter / every waiter (if any). 0. */
GX_API int gx_cond_signal(gx_cond *c);
GX_API int gx_cond_broadcast(gx_cond *c);

/* ---- Semaphore (weighted) ---- */
typedef struct gx_sem {
	uint64_t opaque_[4];
} gx_sem;

/* A semaphore of total weight size (>= 1). -EINVAL otherwise. */
GX_API int gx_sem_init(gx_sem *s, int64_t size);
/* Acquire weight n (1..size) in FIFO order: a large request is not passed
 * by smaller ones. 0, u's error, -EINVAL for n out of range. As every call
 * here, it completes when it can without blocking, even if u has already
 * ended (x/sync's Acquire fails first on a done context). */
GX_API int gx_sem_acquire(gx_sem *s, int64_t n, gx_until u);
/* 0, or -EAGAIN when it cannot be had at once (or others wait). */
GX_API int gx_sem_try_acquire(gx_sem *s, int64_t n);
/* Release weight n: 0, -EINVAL when more than is held. */
GX_API int gx_sem_release(gx_sem *s, int64_t n);

#ifdef __cplusplus
}
#endif

#endif
