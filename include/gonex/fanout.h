/*
 * gonex/fanout.h: fan-out and fan-in on distributed channels: the calls
 * that address the workers directly (broadcast, scatter, gather, route,
 * balance). They work only on a channel made with GX_CHAN_DISTRIBUTED
 * (-EINVAL on a local one); its semantics and limits are in gonex/chan.h,
 * the workers in gonex/parallel.h.
 */
#ifndef GONEX_FANOUT_H
#define GONEX_FANOUT_H

#include <stddef.h>

#include <gonex/api.h>
#include <gonex/chan.h>
#include <gonex/time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Send one copy of *v to every active worker (each receives it before
 * anything from the shared queue). Returns the number of workers. */
GX_API int gx_chan_broadcast(gx_chan *c, const void *v, gx_until u);

/* Spread n values (n * elem_size bytes) over the active workers, value k
 * to the k-th worker modulo their number. Returns n. */
GX_API int gx_chan_scatter(gx_chan *c, const void *vals, size_t n, gx_until u);

/* Receive one value from each active worker (sent with gx_chan_send from
 * inside a task): out gets gx_workers() values in arrival order, from[k]
 * (when from is non-NULL) the worker that sent value k. A second value
 * from a worker already gathered goes back into the queue. Returns the
 * count, or -ETIMEDOUT/-ECANCELED/-EPIPE (closed before all arrived). */
GX_API int gx_chan_gather(gx_chan *c, void *out, int *from, gx_until u);

/* Pin the shared queue's receives to one worker (-1: anyone again). Other
 * processes still receive what was addressed to them. */
GX_API int gx_chan_route(gx_chan *c, int worker);

/* Move what is queued in the shared queue to the active workers' own
 * queues, spread evenly. Returns how many moved. */
GX_API int gx_chan_balance(gx_chan *c);

#ifdef __cplusplus
}
#endif

#endif
