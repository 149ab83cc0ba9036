/*
 * gonex/chan.h: channels and select, with Go's semantics.
 *
 * A channel carries values of one fixed size (copied in and out, 0 bytes is
 * fine: a signal-only channel). Capacity 0 is a rendezvous: a send completes
 * only when a receiver has the value. A NULL gx_chan * is Go's nil channel:
 * sends and receives on it block until their gx_until ends (forever with
 * GX_FOREVER), and a select never picks it.
 *
 * Go's rules, as return values (Go panics where we return an error; the
 * channel is left intact):
 * - send on a closed channel: -EPIPE, nothing delivered;
 * - close of a closed channel: -EALREADY; close of a nil channel: -EINVAL;
 * - receive from a closed channel drains the buffer first, then returns at
 *   once with ok == false and the value zeroed;
 * - close wakes every blocked receiver (ok == false) and every blocked
 *   sender (-EPIPE);
 * - blocked senders are served in FIFO order, and so are blocked receivers.
 *
 * Blocking calls run in a coroutine (-EPERM elsewhere), take a gx_until
 * (see gonex/time.h) and return -ETIMEDOUT or the context's error when it
 * ends first; a value is then neither delivered nor consumed. Non-blocking
 * calls (try, len, cap, close) work anywhere inside gx_run's thread.
 *
 * GX_CHAN_DISTRIBUTED (gx_chan_make only) makes a channel in the parallel
 * runtime's shared arena: the same calls work on it from the main process
 * and every worker (pass the gx_chan * in a task's argument: it is the same
 * address everywhere). Its capacity is exact, cap 0 is a rendezvous, close
 * drains as above. Blocking calls spin, then sleep on a futex. A select
 * with a distributed case registers with each of its channels and sleeps
 * once, on all their futexes and its local channels at the same time
 * (io_uring; on the epoll backend it naps 20 us doubling to 1 ms between
 * looks). Values over 112 bytes travel as pool chunks. Limits: capacity x
 * slot must fit one ring (1 MiB; -EINVAL beyond), a value and an 8-byte
 * header one pool chunk (elem_size <= 1 MiB - 8), and it must be made
 * inside gx_run. On an unbuffered one, a send that ends first (deadline,
 * context, close) takes its value back unless a receiver took it: its
 * error then means the value was never received, and 0 that it was. A
 * try send (and a select's send case) there succeeds only when a receiver
 * is blocked in a receive and takes the value within 20 ms; otherwise it
 * takes the value back and returns -EAGAIN. gx_chan_free of a
 * distributed channel is -EBUSY while someone waits on it. The calls
 * that address workers directly are in gonex/fanout.h.
 */
#ifndef GONEX_CHAN_H
#define GONEX_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gonex/api.h>
#include <gonex/time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Storage for a channel, for gx_chan_init on caller memory. Opaque. */
typedef struct gx_chan {
	uint64_t opaque_[10];
} gx_chan;

/* Creation flags */
#define GX_CHAN_DISTRIBUTED 0x1u /* cross-process channel (gonex/parallel.h) */
/* With GX_CHAN_DISTRIBUTED: LZ4-compress values over 112 bytes when that
 * makes them smaller (meson option lz4; -ENOTSUP when built without it). */
#define GX_CHAN_COMPRESS 0x2u

#define GX_CHAN_ELEM_MAX (1u << 20) /* largest element: 1 MiB */
#define GX_CHAN_CAP_MAX (1u << 30)

/*
 * Make a channel of cap elements of elem_size bytes on the heap (one
 * allocation, buffer included). *out gets it. Errors: -EINVAL (NULL out,
 * elem_size > GX_CHAN_ELEM_MAX, cap > GX_CHAN_CAP_MAX, unknown flags),
 * -EPERM (GX_CHAN_DISTRIBUTED outside gx_run), -ENOMEM. Free with
 * gx_chan_free. gx_chan_init refuses
 * GX_CHAN_DISTRIBUTED (-ENOTSUP: caller storage is not shared).
 */
GX_API int gx_chan_make(gx_chan **out, size_t elem_size, size_t cap, unsigned flags);

/*
 * The same on caller storage: c is the channel, buf holds cap * elem_size
 * bytes (NULL when that is 0). Nothing is allocated; gx_chan_free is not
 * needed (nor allowed) afterwards, but no coroutine may still wait on c
 * when its storage goes away.
 */
GX_API int gx_chan_init(gx_chan *c, size_t elem_size, size_t cap, void *buf, unsigned flags);

/* Free a channel made by gx_chan_make. -EBUSY (and nothing freed) while a
 * coroutine waits on it; -EINVAL for a gx_chan_init channel. NULL is 0. */
GX_API int gx_chan_free(gx_chan *c);

/* Send *v (elem_size bytes; v may be NULL only when that is 0). 0, -EPIPE
 * (closed), -ETIMEDOUT/-ECANCELED, -EPERM outside a coroutine or on a
 * context's done channel, -EINVAL for a NULL v. */
GX_API int gx_chan_send(gx_chan *c, const void *v, gx_until u);

/* Receive into *v (may be NULL to discard). *ok (may be NULL) is true for
 * a value sent, false for the zero value of a closed, drained channel.
 * 0, -ETIMEDOUT/-ECANCELED, -EPERM outside a coroutine. */
GX_API int gx_chan_recv(gx_chan *c, void *v, bool *ok, gx_until u);

/* Non-blocking: 0 when done at once, -EAGAIN when it would block (a nil
 * channel always would), -EPIPE for a closed channel. */
GX_API int gx_chan_try_send(gx_chan *c, const void *v);
/* Non-blocking: 0 with *ok as for gx_chan_recv, or -EAGAIN. */
GX_API int gx_chan_try_recv(gx_chan *c, void *v, bool *ok);

/* Close: 0, -EALREADY, -EINVAL (nil), -EPERM (a context's done channel:
 * only its context closes it). */
GX_API int gx_chan_close(gx_chan *c);

/* Buffered values and capacity (0 for nil). */
GX_API size_t gx_chan_len(const gx_chan *c);
GX_API size_t gx_chan_cap(const gx_chan *c);

/* ---- select ---- */

enum { GX_RECV = 0, GX_SEND = 1 };

typedef struct gx_case {
	gx_chan *chan; /* NULL: never ready */
	int op;        /* GX_RECV or GX_SEND */
	void *elem;    /* send: the value (read only); recv: destination or NULL */
	bool ok;       /* recv, out: as gx_chan_recv's *ok */
} gx_case;

/*
 * Wait until one case can proceed, do it, return its index. Among cases
 * ready at the same time the choice is uniformly random; a case that is not
 * chosen neither consumes nor delivers a value. Errors: -ETIMEDOUT or the
 * context's error when u ends first (GX_FOREVER with only nil channels
 * blocks forever, like an empty Go select), -EPIPE when the chosen case is
 * a send on a closed channel, -EINVAL for a bad case, -EPERM outside a
 * coroutine, -ENOMEM for very many cases.
 */
GX_API int gx_select(gx_case *cases, size_t n, gx_until u);

/* select with a default: the index of a ready case, or -EAGAIN when none
 * is ready (the default branch). */
GX_API int gx_select_try(gx_case *cases, size_t n);

#ifdef __cplusplus
}
#endif

#endif
