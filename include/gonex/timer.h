/*
 * gonex/timer.h: Go's time.Timer and time.Ticker, delivering on channels.
 *
 * Each value sent is an int64_t: gx_now() when the timer fired. The
 * channel has capacity 1. As in Go 1.23 and later, once gx_timer_stop or
 * gx_timer_reset returns, no value from before the call is received.
 * A ticker whose receiver is slow drops ticks rather than queueing them,
 * and keeps its phase (the next tick is on the period grid).
 *
 * Timers belong to the gx_run of the process that made them (-EPERM
 * outside it) and must be freed before it returns.
 */
#ifndef GONEX_TIMER_H
#define GONEX_TIMER_H

#include <stdint.h>

#include <gonex/api.h>
#include <gonex/chan.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gx_timer gx_timer;
typedef struct gx_ticker gx_ticker;

/* A timer that sends once after d ns (d <= 0: at the next loop turn).
 * 0, -EINVAL, -EPERM, -ENOMEM. */
GX_API int gx_timer_make(gx_timer **out, int64_t d);
GX_API gx_chan *gx_timer_chan(gx_timer *t);
/* 1 when this call stopped a pending timer (one not yet fired, or fired
 * with its value not yet received: the value is discarded), 0 when it had
 * been received or stopped already; -EINVAL for NULL. So Go's
 * `if (!t.Stop()) <-t.C` idiom is neither needed nor safe here. */
GX_API int gx_timer_stop(gx_timer *t);
/* Re-arm for d ns from now: 1 when it was pending (as for stop), 0
 * otherwise. */
GX_API int gx_timer_reset(gx_timer *t, int64_t d);
/* Stop and free: 0, -EBUSY (nothing freed) while a coroutine waits on its
 * channel. NULL is 0. */
GX_API int gx_timer_free(gx_timer *t);

/* A ticker that sends every period ns (> 0, else -EINVAL). */
GX_API int gx_ticker_make(gx_ticker **out, int64_t period);
GX_API gx_chan *gx_ticker_chan(gx_ticker *t);
/* Stop ticking: 0. A stopped ticker sends nothing until reset. */
GX_API int gx_ticker_stop(gx_ticker *t);
/* Tick every period ns from now on: 0, -EINVAL. */
GX_API int gx_ticker_reset(gx_ticker *t, int64_t period);
GX_API int gx_ticker_free(gx_ticker *t);

#ifdef __cplusplus
}
#endif

#endif
