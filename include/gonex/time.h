/*
 * gonex/time.h: clocks and sleeping.
 *
 * Times are int64_t nanoseconds on CLOCK_MONOTONIC. A sleeping coroutine is
 * parked on the process's timer heap; the loop waits (in io_uring, or epoll)
 * only until the nearest deadline, so sleepers cost no CPU. A sleep never
 * ends before its deadline; sleepers with earlier deadlines wake first, and
 * equal deadlines wake in the order they were set.
 */
#ifndef GONEX_TIME_H
#define GONEX_TIME_H

#include <stdint.h>

#include <gonex/api.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GX_NANOSECOND ((int64_t)1)
#define GX_MICROSECOND ((int64_t)1000)
#define GX_MILLISECOND ((int64_t)1000000)
#define GX_SECOND ((int64_t)1000000000)

/* Now on CLOCK_MONOTONIC, in nanoseconds. Valid anywhere. */
GX_API int64_t gx_now(void);

/* Park the running coroutine for at least ns nanoseconds (ns <= 0 returns
 * at once). Returns 0, -EPERM outside a coroutine, -ENOMEM when the timer
 * heap cannot grow. */
GX_API int gx_sleep(int64_t ns);

/* Park the running coroutine until gx_now() >= deadline. Same errors. */
GX_API int gx_sleep_until(int64_t deadline);

#ifdef __cplusplus
}
#endif

#endif
