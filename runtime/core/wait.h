/*
 * The one wait core: every blocking primitive (channels, select, locks,
 * wait groups, semaphores, sleep, and later I/O and futex waits) is a set of
 * clauses enlisted on the waiting coroutine's own stack, one park, and the
 * first clause to fire wins. See wait.c.
 *
 *     gx_waiter w;  gx_waiter_init(&w);
 *     gx_wq_node n = {.w = &w, .idx = 0, .elem = buf};
 *     gx_waitq_push(&obj->q, &n);           // one node per clause
 *     int f = gx_wait(&w, until, "reason"); // >= 0: n.idx of the winner
 *     gx_waitq_unlink(&obj->q, &n);         // always: it may be stale
 *
 * A waker calls gx_wake(node): it succeeds only for the first clause of a
 * waiter; later clauses of the same waiter are stale and skipped by
 * gx_waitq_first()/gx_waitq_pop(), which unlink them on the way.
 */
#ifndef GX_CORE_WAIT_H
#define GX_CORE_WAIT_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/list.h"
#include "core/sched.h"

#include <gonex/time.h>

/* gx_waiter.fired values other than a clause index (>= 0) */
enum {
	GX_FIRED_NONE = -1,    /* still waiting */
	GX_FIRED_TIMEOUT = -2, /* the deadline came */
	GX_FIRED_CTX = -3,     /* the context ended */
};

struct gx_wq_node;
struct gx_waitq;

typedef struct gx_waiter {
	gx_co *co;
	struct gx_wq_node *nodes; /* every node ever enlisted, through wnext */
	int32_t fired;
} gx_waiter;

typedef struct gx_wq_node {
	struct gx_wq_node *next, *prev;
	gx_waiter *w;
	struct gx_waitq *q;       /* the queue it was enlisted on */
	struct gx_wq_node *wnext; /* the waiter's next node */
	void *elem;     /* channel: source (send) or destination (recv) */
	uint64_t n;     /* semaphore: weight */
	int32_t idx;    /* what gx_wait returns when this clause fires */
	bool linked;
	bool ok;        /* set by the waker: value delivered (false: closed) */
} gx_wq_node;

typedef struct gx_waitq {
	gx_wq_node *head, *tail;
} gx_waitq;

static inline void gx_waiter_init(gx_waiter *w, gx_co *co)
{
	w->co = co;
	w->nodes = NULL;
	w->fired = GX_FIRED_NONE;
}

static inline void gx_waitq_push(gx_waitq *q, gx_wq_node *n)
{
	n->q = q;
	n->wnext = n->w->nodes;
	n->w->nodes = n;
	n->next = NULL;
	n->prev = q->tail;
	if (q->tail)
		q->tail->next = n;
	else
		q->head = n;
	q->tail = n;
	n->linked = true;
}

static inline void gx_waitq_unlink(gx_waitq *q, gx_wq_node *n)
{
	if (!n->linked)
		return;
	if (!n->next)
		q->tail = n->prev;
	GX_LIST_UNLINK(&q->head, n, next, prev);
	n->linked = false;
}

/* The first node whose waiter has not fired yet (stale ones are unlinked),
 * or NULL. It stays in the queue. */
static inline gx_wq_node *gx_waitq_first(gx_waitq *q)
{
	gx_wq_node *n;
	while ((n = q->head) != NULL && n->w->fired != GX_FIRED_NONE)
		gx_waitq_unlink(q, n);
	return n;
}

/* gx_waitq_first, removed from the queue. */
static inline gx_wq_node *gx_waitq_pop(gx_waitq *q)
{
	gx_wq_node *n = gx_waitq_first(q);
	if (n)
		gx_waitq_unlink(q, n);
	return n;
}

static inline bool gx_waitq_empty(gx_waitq *q)
{
	return gx_waitq_first(q) == NULL;
}

/* Fire n's clause: its waiter wakes with n->idx. False when the waiter had
 * already fired (n was stale). Never switches. */
static inline bool gx_wake(gx_wq_node *n)
{
	gx_waiter *w = n->w;
	if (w->fired != GX_FIRED_NONE)
		return false;
	w->fired = n->idx;
	gx_ready(w->co);
	return true;
}

/* Wake every live waiter of q, emptying it. */
static inline void gx_waitq_wake_all(gx_waitq *q)
{
	gx_wq_node *n;
	while ((n = gx_waitq_pop(q)) != NULL)
		gx_wake(n);
}

/*
 * Park the running coroutine until one of its enlisted clauses fires or u
 * ends. Returns the winning clause's idx (>= 0), -ETIMEDOUT when the
 * deadline came first, the context's error when it ended first. When u has
 * already ended, returns its error without parking. Must run in a
 * coroutine (callers check).
 */
int gx_wait_slow(gx_waiter *w, gx_until u, const char *reason);

static inline int gx_wait(gx_waiter *w, gx_until u, const char *reason)
{
	if (u.deadline < 0 && !u.ctx) {
		w->co->waiter = w; /* for gx_wait_abandon */
		gx_park(reason);
		w->co->waiter = NULL;
		return w->fired;
	}
	return gx_wait_slow(w, u, reason);
}

/*
 * The common single-clause wait: enlist n on q (the caller set n->elem and
 * n->n as needed), wait, unlink. Returns as gx_wait, or -EPERM outside a
 * coroutine. n->ok is the waker's word afterwards.
 */
static inline int gx_wait_in(gx_waitq *q, gx_wq_node *n, gx_until u, const char *reason)
{
	gx_co *self = gx_co_current();
	if (!self)
		return -EPERM;
	gx_waiter w;
	gx_waiter_init(&w, self);
	n->w = &w;
	n->idx = 0;
	gx_waitq_push(q, n);
	int rc = gx_wait(&w, u, reason);
	gx_waitq_unlink(q, n);
	return rc;
}

/* At shutdown, for a coroutine that will never run again: take every node
 * of its wait out of the queues it is in (they live on a stack about to be
 * unmapped) and drop the context reference its wait held. */
void gx_wait_abandon(gx_co *co);

/* Wait with no clause at all: until u ends (forever for GX_FOREVER, which
 * parks for good, as Go's nil-channel operations do). */
int gx_wait_until(gx_until u, const char *reason);

/* How contexts plug into the core (registered by runtime/sync/context.c):
 * enlist puts n (idx GX_FIRED_CTX) among ctx's waiters, or returns ctx's
 * error when it has already ended; delist removes it; err gives the error. */
typedef struct gx_ctx_hooks {
	int (*enlist)(struct gx_ctx *ctx, gx_wq_node *n);
	void (*delist)(struct gx_ctx *ctx, gx_wq_node *n);
	int (*err)(struct gx_ctx *ctx);
} gx_ctx_hooks;

void gx_wait_set_ctx_hooks(const gx_ctx_hooks *h);

/* u's error if it has ended by now (CLOCK_MONOTONIC ns): -ETIMEDOUT for a
 * deadline, the context's error (through the hooks); 0 while it lasts.
 * For waits that poll rather than park (the eventcount's spin). */
int gx_until_err(gx_until u, int64_t now);

#endif
