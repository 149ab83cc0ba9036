/*
 * gonex/context.h: Go's context package.
 *
 * A context carries a cancellation signal, an optional deadline and values
 * down a tree. Cancelling a context cancels all its descendants at once
 * (before the call returns). Its done channel (gx_ctx_done) is closed on
 * cancellation, so it works in gx_select; the background context's done
 * channel is nil (never ready), as in Go.
 *
 * Errors (gx_ctx_err): 0 while alive, -ECANCELED after a cancel,
 * -ETIMEDOUT after the deadline passed. Any blocking call given
 * gx_ctx_until(ctx) returns that error when ctx ends first.
 *
 * Memory: every gx_ctx_with_* result must be released with
 * gx_ctx_release (Go's `defer cancel()`): it cancels the context if it is
 * cancellable and drops the creator's reference. A context is freed once
 * no reference, no descendant and no waiter is left. A coroutine that may
 * use a context after its creator released it (Go code simply keeps the
 * ctx) takes its own reference with gx_ctx_retain and drops it with
 * gx_ctx_put, which does not cancel. Contexts belong to the process's
 * gx_run thread.
 */
#ifndef GONEX_CONTEXT_H
#define GONEX_CONTEXT_H

#include <stdint.h>

#include <gonex/api.h>
#include <gonex/chan.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gx_ctx gx_ctx;

/* The root: never cancelled, no deadline, no values. Never released. */
GX_API gx_ctx *gx_ctx_background(void);

/* A cancellable child. 0, -EINVAL (NULL parent or out), -ENOMEM. A child
 * of an already cancelled parent starts cancelled. */
GX_API int gx_ctx_with_cancel(gx_ctx *parent, gx_ctx **out);

/* A cancellable child that cancels itself with -ETIMEDOUT at deadline
 * (CLOCK_MONOTONIC ns; the parent's deadline if earlier). -EPERM outside
 * gx_run (the deadline needs the process's timers). */
GX_API int gx_ctx_with_deadline(gx_ctx *parent, int64_t deadline, gx_ctx **out);
GX_API int gx_ctx_with_timeout(gx_ctx *parent, int64_t ns, gx_ctx **out);

/* A child carrying key -> value (compared by pointer); cancelled with its
 * parent, not cancellable by itself. */
GX_API int gx_ctx_with_value(gx_ctx *parent, const void *key, void *value, gx_ctx **out);

/* A cancellable child that SIGINT or SIGTERM cancels, with cause -EINTR
 * (Go's signal.NotifyContext): a program under gx_run stops cleanly by
 * waiting on it, e.g. gx_listener_accept(l, gx_ctx_until(stop)). The two
 * signals are blocked in the process from this call until the context
 * ends (by a signal, a cancel or its release), then the signal mask is
 * put back, so a second signal acts as it would have without this call.
 * 0, -EINVAL, -EPERM outside a coroutine, -ENOMEM, signalfd's error.
 * One at a time per process. The mask is the calling thread's: in a
 * process with other threads, they must block SIGINT and SIGTERM too, or
 * the kernel may hand the signal to one of them. */
GX_API int gx_ctx_with_signals(gx_ctx *parent, gx_ctx **out);

/* Cancel ctx and its descendants with -ECANCELED (cause -ECANCELED), or
 * with a cause (a negative errno of the caller's choosing; 0 means
 * -ECANCELED, as Go's cancel(nil)). Cancelling twice does nothing.
 * -EINVAL for the background, a value context or a positive cause. */
GX_API int gx_ctx_cancel(gx_ctx *ctx);
GX_API int gx_ctx_cancel_cause(gx_ctx *ctx, int cause);

/* 0, -ECANCELED or -ETIMEDOUT. */
GX_API int gx_ctx_err(gx_ctx *ctx);
/* Why it ended: the cause given to gx_ctx_cancel_cause (inherited by
 * descendants), otherwise gx_ctx_err. 0 while alive. */
GX_API int gx_ctx_cause(gx_ctx *ctx);

/* Closed when ctx ends; NULL (a nil channel) for a context that can never
 * end. Receive-only: sending on it or closing it returns -EPERM. */
GX_API gx_chan *gx_ctx_done(gx_ctx *ctx);

/* The value for key from ctx or its nearest ancestor that has it; NULL. */
GX_API void *gx_ctx_value(gx_ctx *ctx, const void *key);

/* The deadline in force (CLOCK_MONOTONIC ns), -1 for none. */
GX_API int64_t gx_ctx_deadline(gx_ctx *ctx);

/* Cancel (when cancellable) and give up the creator's reference. NULL and
 * the background are ignored. */
GX_API void gx_ctx_release(gx_ctx *ctx);

/* Take / drop an extra reference (no cancel). Retain returns ctx. */
GX_API gx_ctx *gx_ctx_retain(gx_ctx *ctx);
GX_API void gx_ctx_put(gx_ctx *ctx);

#ifdef __cplusplus
}
#endif

#endif
